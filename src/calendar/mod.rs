//! The working calendar and the one place due times are computed (DESIGN.md, "Dossiers").
//!
//! Working days are Monday to Friday, minus the holidays and compensatory days off in
//! `calendar_days`, plus its make-up working days. Office hours are 07:30-11:30 and
//! 13:30-17:00, Vietnam time. A dossier received outside them counts from the next opening;
//! a `working_days` procedure is due at the same clock time N working days later, a
//! `working_hours` one after N office hours; a pause moves the due time by the office time
//! paused.

mod handlers;

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::vietnam_time::vietnam;

pub use handlers::routes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum DayKind {
    /// A public holiday: not worked.
    Holiday,
    /// A compensatory or swapped day off: not worked.
    DayOff,
    /// A make-up working day on a weekend: worked.
    WorkingDay,
}

/// How long a procedure takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingTime {
    WorkingDays(u32),
    WorkingHours(u32),
}

/// Morning and afternoon sessions.
fn sessions() -> [(NaiveTime, NaiveTime); 2] {
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("a valid time");
    [(at(7, 30), at(11, 30)), (at(13, 30), at(17, 0))]
}

/// Far enough to cross any run of days off the table can hold; a bound, not a rule.
const MAX_DAYS_SCANNED: u32 = 3_660;

#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    exceptions: HashMap<NaiveDate, DayKind>,
}

impl WorkingCalendar {
    pub fn new(exceptions: impl IntoIterator<Item = (NaiveDate, DayKind)>) -> Self {
        WorkingCalendar {
            exceptions: exceptions.into_iter().collect(),
        }
    }

    /// The calendar as the database has it now.
    pub async fn load(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let days = sqlx::query!(r#"SELECT day, kind AS "kind: DayKind" FROM calendar_days"#)
            .fetch_all(conn)
            .await?;
        Ok(Self::new(days.into_iter().map(|d| (d.day, d.kind))))
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.exceptions.get(&day) {
            Some(DayKind::WorkingDay) => true,
            Some(DayKind::Holiday | DayKind::DayOff) => false,
            None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    fn next_working_day(&self, day: NaiveDate) -> NaiveDate {
        let mut next = day;
        for _ in 0..MAX_DAYS_SCANNED {
            next = next.succ_opt().expect("dates this near are representable");
            if self.is_working_day(next) {
                return next;
            }
        }
        next
    }

    fn previous_working_day(&self, day: NaiveDate) -> NaiveDate {
        let mut previous = day;
        for _ in 0..MAX_DAYS_SCANNED {
            previous = previous
                .pred_opt()
                .expect("dates this near are representable");
            if self.is_working_day(previous) {
                return previous;
            }
        }
        previous
    }

    /// The first instant at or after `at` inside office hours.
    pub fn next_opening(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        to_utc(self.next_opening_local(local(at)))
    }

    fn next_opening_local(&self, mut at: NaiveDateTime) -> NaiveDateTime {
        for _ in 0..MAX_DAYS_SCANNED {
            if self.is_working_day(at.date()) {
                for (open, close) in sessions() {
                    if at < at.date().and_time(close) {
                        return at.max(at.date().and_time(open));
                    }
                }
            }
            at = at
                .date()
                .succ_opt()
                .expect("a next day")
                .and_time(NaiveTime::MIN);
        }
        at
    }

    /// When a dossier received at `received` is due.
    pub fn due_at(&self, received: DateTime<Utc>, time: ProcessingTime) -> DateTime<Utc> {
        match time {
            ProcessingTime::WorkingDays(days) => {
                let start = self.next_opening_local(local(received));
                let mut day = start.date();
                for _ in 0..days {
                    day = self.next_working_day(day);
                }
                to_utc(day.and_time(start.time()))
            }
            ProcessingTime::WorkingHours(hours) => {
                self.add_office_time(received, Duration::hours(i64::from(hours)))
            }
        }
    }

    /// `at` moved on by `office_time` counted in office hours only.
    pub fn add_office_time(&self, at: DateTime<Utc>, office_time: Duration) -> DateTime<Utc> {
        if office_time <= Duration::zero() {
            return at;
        }
        let mut left = office_time;
        let mut now = self.next_opening_local(local(at));
        for _ in 0..MAX_DAYS_SCANNED * 2 {
            let close = session_close(now);
            let available = close - now;
            if left <= available {
                return to_utc(now + left);
            }
            left -= available;
            now = self.next_opening_local(close);
        }
        to_utc(now)
    }

    /// The office time between two instants (zero if `to` is not after `from`).
    pub fn office_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let (from, to) = (local(from), local(to));
        let mut total = Duration::zero();
        let mut day = from.date();
        while day <= to.date() {
            if self.is_working_day(day) {
                for (open, close) in sessions() {
                    let start = from.max(day.and_time(open));
                    let end = to.min(day.and_time(close));
                    if end > start {
                        total += end - start;
                    }
                }
            }
            day = day.succ_opt().expect("a next day");
        }
        total
    }

    /// The same clock time one working day earlier: the last moment a late dossier may still
    /// be rescheduled.
    pub fn one_working_day_before(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let at = local(at);
        to_utc(self.previous_working_day(at.date()).and_time(at.time()))
    }
}

/// The end of the session `at` lies in (`at` is inside office hours).
fn session_close(at: NaiveDateTime) -> NaiveDateTime {
    sessions()
        .into_iter()
        .map(|(_, close)| at.date().and_time(close))
        .find(|close| at < *close)
        .unwrap_or(at)
}

fn local(at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&vietnam()).naive_local()
}

fn to_utc(at: NaiveDateTime) -> DateTime<Utc> {
    (at - Duration::seconds(i64::from(vietnam().local_minus_utc()))).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Vietnam-time instant.
    fn vn(text: &str) -> DateTime<Utc> {
        to_utc(NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap())
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// Tết Bính Ngọ 2026 as announced (Saturday 14 to Sunday 22 February), a make-up Saturday.
    fn calendar() -> WorkingCalendar {
        let tet = [
            "2026-02-16",
            "2026-02-17",
            "2026-02-18",
            "2026-02-19",
            "2026-02-20",
        ];
        WorkingCalendar::new(
            tet.iter()
                .map(|d| (date(d), DayKind::Holiday))
                .chain([(date("2025-04-26"), DayKind::WorkingDay)]),
        )
    }

    #[test]
    fn received_friday_afternoon_with_three_working_days_is_due_wednesday_same_time() {
        let due = calendar().due_at(vn("2026-11-20 16:00"), ProcessingTime::WorkingDays(3));
        assert_eq!(due, vn("2026-11-25 16:00"));
    }

    #[test]
    fn received_on_saturday_counts_from_monday_opening() {
        let due = calendar().due_at(vn("2026-11-21 09:00"), ProcessingTime::WorkingDays(1));
        assert_eq!(due, vn("2026-11-24 07:30"));
    }

    #[test]
    fn received_the_day_before_tet_skips_the_whole_break() {
        // Friday 13 February is the last working day before the nine days off.
        let due = calendar().due_at(vn("2026-02-13 10:00"), ProcessingTime::WorkingDays(2));
        assert_eq!(due, vn("2026-02-24 10:00"));
    }

    #[test]
    fn four_working_hours_from_half_past_ten_jump_the_lunch_break() {
        let due = calendar().due_at(vn("2026-11-23 10:30"), ProcessingTime::WorkingHours(4));
        assert_eq!(due, vn("2026-11-23 16:30"));
    }

    #[test]
    fn working_hours_spill_into_the_next_working_day() {
        let due = calendar().due_at(vn("2026-11-20 15:00"), ProcessingTime::WorkingHours(4));
        assert_eq!(due, vn("2026-11-23 09:30"));
    }

    #[test]
    fn a_make_up_saturday_is_a_working_day() {
        // Friday 25 April 2025 + 1 working day is the make-up Saturday 26 April.
        let due = calendar().due_at(vn("2025-04-25 08:00"), ProcessingTime::WorkingDays(1));
        assert_eq!(due, vn("2025-04-26 08:00"));
        assert!(!calendar().is_working_day(date("2025-04-27")));
    }

    #[test]
    fn reception_during_lunch_or_after_closing_counts_from_the_next_opening() {
        let cal = calendar();
        assert_eq!(
            cal.next_opening(vn("2026-11-23 12:00")),
            vn("2026-11-23 13:30")
        );
        assert_eq!(
            cal.next_opening(vn("2026-11-23 17:00")),
            vn("2026-11-24 07:30")
        );
        assert_eq!(
            cal.next_opening(vn("2026-11-23 06:00")),
            vn("2026-11-23 07:30")
        );
        assert_eq!(
            cal.next_opening(vn("2026-11-23 09:15")),
            vn("2026-11-23 09:15")
        );
    }

    #[test]
    fn a_two_working_day_pause_moves_the_due_time_by_two_working_days() {
        let cal = calendar();
        let due = cal.due_at(vn("2026-11-23 09:00"), ProcessingTime::WorkingDays(5));
        assert_eq!(due, vn("2026-11-30 09:00"));
        // Suspended Tuesday 10:00, resumed Thursday 10:00: two working days of office time.
        let paused = cal.office_time_between(vn("2026-11-24 10:00"), vn("2026-11-26 10:00"));
        assert_eq!(paused, Duration::minutes(2 * 450));
        assert_eq!(cal.add_office_time(due, paused), vn("2026-12-02 09:00"));
    }

    #[test]
    fn a_pause_over_a_weekend_counts_only_office_time() {
        let cal = calendar();
        let paused = cal.office_time_between(vn("2026-11-20 16:00"), vn("2026-11-23 08:30"));
        assert_eq!(paused, Duration::minutes(60 + 60));
        assert_eq!(
            cal.office_time_between(vn("2026-11-23 08:30"), vn("2026-11-20 16:00")),
            Duration::zero()
        );
    }

    #[test]
    fn one_working_day_before_skips_back_over_days_off() {
        let cal = calendar();
        assert_eq!(
            cal.one_working_day_before(vn("2026-02-23 10:00")),
            vn("2026-02-13 10:00")
        );
    }
}
