//! Dates, months, years and instants as clients send them. chrono reads years out to about
//! ±262,000, and a step of arithmetic near those ends (a day's start in Vietnam time, the day
//! after) overflows and panics; PostgreSQL's range is different again. So every date a request carries
//! is read through this module, which accepts the years [`YEARS`] and refuses any other.
//!
//! Use the functions with serde's `deserialize_with` (`default` too on an `Option`, which
//! serde no longer defaults by itself once `deserialize_with` is set), and [`Day`] for a date in
//! a path. A refusal is a serde error whose text begins with [`YEAR_REFUSED`]; our extractors
//! ([`super::extract`]) answer it 422 `validation_failed` naming the field, with
//! [`year_refused_message`].

use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::messages::Message;

/// The years a client may name: wide enough for any record and plan, far from chrono's limits.
pub const YEARS: RangeInclusive<i32> = 2000..=2100;

/// How a refused year reads inside serde, where errors are only text.
pub const YEAR_REFUSED: &str = "civicpay: year outside the accepted range";

/// Whether a year is one a client may name.
pub fn accepted(year: i32) -> bool {
    YEARS.contains(&year)
}

/// The year of a text that reads as a date or an RFC 3339 instant, if it is one.
pub fn year_in_text(text: &str) -> Option<i32> {
    <NaiveDate as Calendar>::parse(text)
        .map(|date| Calendar::year(&date))
        .or_else(|_| <DateTime<Utc> as Calendar>::parse(text).map(|at| Calendar::year(&at)))
        .ok()
}

/// Whether a serde error's text is a refused year.
pub fn is_year_refused(description: &str) -> bool {
    description.starts_with(YEAR_REFUSED)
}

/// What a client reads for a refused year.
pub fn year_refused_message() -> Message {
    Message::YearOutOfRange {
        min: *YEARS.start(),
        max: *YEARS.end(),
    }
}

/// A calendar day read from a path segment (`/settlements/{date}`): a `NaiveDate` in [`YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        date(deserializer).map(Day)
    }
}

/// `YYYY-MM-DD`.
pub fn date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    Checked::<NaiveDate>::deserialize(deserializer).map(|c| c.0)
}

pub fn opt_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
    Ok(Option::<Checked<NaiveDate>>::deserialize(deserializer)?.map(|c| c.0))
}

/// An RFC 3339 instant, any offset, as UTC (its year is checked in UTC).
pub fn instant<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    Checked::<DateTime<Utc>>::deserialize(deserializer).map(|c| c.0)
}

pub fn opt_instant<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<Checked<DateTime<Utc>>>::deserialize(deserializer)?.map(|c| c.0))
}

/// A month, `YYYY-MM`, as its first day.
pub fn month<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    Checked::<FirstOfMonth>::deserialize(deserializer).map(|c| c.0.0)
}

pub fn opt_month<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    Ok(Option::<Checked<FirstOfMonth>>::deserialize(deserializer)?.map(|c| c.0.0))
}

/// A calendar year, as a number (`?year=2026`).
pub fn year<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let year = i32::deserialize(deserializer)?;
    if YEARS.contains(&year) {
        Ok(year)
    } else {
        Err(de::Error::custom(YEAR_REFUSED))
    }
}

/// Something a client writes as text that names a year.
trait Calendar: Sized {
    const EXPECTING: &'static str;
    fn parse(text: &str) -> Result<Self, chrono::ParseError>;
    fn year(&self) -> i32;
}

impl Calendar for NaiveDate {
    const EXPECTING: &'static str = "a date, YYYY-MM-DD";
    fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        text.parse()
    }
    fn year(&self) -> i32 {
        Datelike::year(self)
    }
}

impl Calendar for DateTime<Utc> {
    const EXPECTING: &'static str = "an RFC 3339 date-time";
    /// As chrono's own `Deserialize` reads it.
    fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        text.parse::<DateTime<FixedOffset>>()
            .map(|at| at.with_timezone(&Utc))
    }
    fn year(&self) -> i32 {
        Datelike::year(self)
    }
}

struct FirstOfMonth(NaiveDate);

impl Calendar for FirstOfMonth {
    const EXPECTING: &'static str = "a month, YYYY-MM";
    fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map(FirstOfMonth)
    }
    fn year(&self) -> i32 {
        Datelike::year(&self.0)
    }
}

/// A `T` read from text, its year in [`YEARS`]. The check runs inside the visitor, so a path
/// deserializer still knows which parameter it was reading when it fails.
struct Checked<T>(T);

impl<'de, T: Calendar> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(CheckedVisitor::<T>(PhantomData))
    }
}

struct CheckedVisitor<T>(PhantomData<T>);

impl<'de, T: Calendar> Visitor<'de> for CheckedVisitor<T> {
    type Value = Checked<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Checked<T>, E> {
        let value = T::parse(text).map_err(E::custom)?;
        if YEARS.contains(&value.year()) {
            Ok(Checked(value))
        } else {
            Err(E::custom(YEAR_REFUSED))
        }
    }
}

/// A Vietnam-time day and the instants it spans, `[from, until)`: a settlement's day.
pub struct DaySpan {
    pub date: NaiveDate,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl DaySpan {
    /// The day `date`; 404 for the last day chrono knows, which has no next one.
    pub fn of(date: NaiveDate) -> Result<DaySpan, super::ApiError> {
        use crate::vietnam_time::day_start;
        let until = date
            .succ_opt()
            .map(day_start)
            .ok_or_else(|| super::ApiError::new(super::ErrorCode::NotFound))?;
        Ok(DaySpan {
            date,
            from: day_start(date),
            until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Query {
        #[serde(default, deserialize_with = "opt_date")]
        from: Option<NaiveDate>,
        #[serde(default, deserialize_with = "opt_instant")]
        at: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "opt_month")]
        month: Option<NaiveDate>,
    }

    fn read(json: &str) -> Result<Query, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn years_2000_to_2100_are_accepted() {
        let query =
            read(r#"{"from": "2000-01-01", "at": "2100-12-31T23:59:59Z", "month": "2100-12"}"#)
                .unwrap();
        assert_eq!(query.from, NaiveDate::from_ymd_opt(2000, 1, 1));
        assert_eq!(query.month, NaiveDate::from_ymd_opt(2100, 12, 1));
        assert!(query.at.is_some());
        assert!(read("{}").unwrap().from.is_none());
        assert!(read(r#"{"from": null}"#).unwrap().from.is_none());
    }

    #[test]
    fn other_years_are_refused_with_the_marker() {
        for json in [
            r#"{"from": "1999-12-31"}"#,
            r#"{"from": "2101-01-01"}"#,
            r#"{"from": "-262143-01-01"}"#,
            r#"{"from": "+262142-12-31"}"#,
            r#"{"at": "1999-12-31T23:59:59Z"}"#,
            r#"{"at": "2000-01-01T06:59:59+07:00"}"#,
            r#"{"month": "2101-01"}"#,
        ] {
            let error = read(json).unwrap_err();
            assert!(is_year_refused(&error), "{json}: {error}");
        }
    }

    #[test]
    fn what_is_no_date_at_all_is_an_ordinary_error() {
        let error = read(r#"{"from": "tomorrow"}"#).unwrap_err();
        assert!(!is_year_refused(&error), "{error}");
        let error = read(r#"{"from": 20260101}"#).unwrap_err();
        assert!(error.starts_with("invalid type"), "{error}");
    }
}
