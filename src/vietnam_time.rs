//! Vietnam time (UTC+7 all year, no daylight saving): where a Vietnamese day and month begin.
//! Wallet limits count per Vietnam-time month; the working calendar, dossier codes, VNPay's
//! dates, statements and settlements count Vietnam-time days.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

/// Vietnam keeps UTC+7 all year.
pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("a valid offset")
}

/// The instant a Vietnam-time day begins.
pub fn day_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(vietnam()).single())
        .expect("midnight at a fixed offset exists")
        .with_timezone(&Utc)
}

/// The first day of the Vietnam-time month `at` falls in.
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    let local = at.with_timezone(&vietnam()).date_naive();
    NaiveDate::from_ymd_opt(local.year(), local.month(), 1).expect("the first of a month exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_month_turns_at_midnight_vietnam_time() {
        let first = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        assert_eq!(month_of(utc("2026-11-30T16:59:59Z")), first(2026, 11));
        assert_eq!(month_of(utc("2026-11-30T17:00:00Z")), first(2026, 12));
        assert_eq!(month_of(utc("2026-12-31T17:00:00Z")), first(2027, 1));
    }
}
