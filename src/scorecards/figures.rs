//! The counts behind a scorecard, per unit: dossiers received and finished, fee bills paid and
//! ratings from the daily summaries, overdue now live; the scorecard adds them up per child unit
//! (and its subtree) and for the whole subtree.

use std::collections::HashMap;
use std::ops::AddAssign;

use chrono::NaiveDate;
use sqlx::PgConnection;

/// What is counted for one unit (or summed over several) in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub received: i64,
    pub received_online: i64,
    pub received_digitized: i64,
    pub finished: i64,
    pub finished_on_time: i64,
    pub overdue_now: i64,
    pub overdue_with_apology: i64,
    pub fees_paid: i64,
    pub fees_paid_cashless: i64,
    pub fees_amount: i64,
    pub fees_amount_cashless: i64,
    pub ratings: i64,
    pub ratings_good: i64,
    pub rating_points: i64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.received += other.received;
        self.received_online += other.received_online;
        self.received_digitized += other.received_digitized;
        self.finished += other.finished;
        self.finished_on_time += other.finished_on_time;
        self.overdue_now += other.overdue_now;
        self.overdue_with_apology += other.overdue_with_apology;
        self.fees_paid += other.fees_paid;
        self.fees_paid_cashless += other.fees_paid_cashless;
        self.fees_amount += other.fees_amount;
        self.fees_amount_cashless += other.fees_amount_cashless;
        self.ratings += other.ratings;
        self.ratings_good += other.ratings_good;
        self.rating_points += other.rating_points;
    }
}

/// A period of Vietnam-time days, first and last included.
pub struct Span {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// The counts of each of `units` in the period (units with nothing are absent): the period's
/// figures from the daily summaries the triggers keep (migrations/…_scorecards.sql), overdue
/// now counted live.
pub async fn per_unit(
    conn: &mut PgConnection,
    units: &[String],
    span: &Span,
) -> Result<HashMap<String, Counts>, sqlx::Error> {
    let summed = sqlx::query!(
        r#"SELECT unit_code,
                  sum(received)::bigint AS "received!", sum(received_online)::bigint AS "received_online!",
                  sum(received_digitized)::bigint AS "received_digitized!",
                  sum(finished)::bigint AS "finished!", sum(finished_on_time)::bigint AS "finished_on_time!",
                  sum(fees_paid)::bigint AS "fees_paid!", sum(fees_paid_cashless)::bigint AS "fees_paid_cashless!",
                  sum(fees_amount)::bigint AS "fees_amount!",
                  sum(fees_amount_cashless)::bigint AS "fees_amount_cashless!",
                  sum(ratings)::bigint AS "ratings!", sum(ratings_good)::bigint AS "ratings_good!",
                  sum(rating_points)::bigint AS "rating_points!"
           FROM scorecard_days
           WHERE unit_code = ANY($1) AND day BETWEEN $2 AND $3
           GROUP BY unit_code"#,
        units,
        span.first,
        span.last,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut counts: HashMap<String, Counts> = summed
        .into_iter()
        .map(|row| {
            let counts = Counts {
                received: row.received,
                received_online: row.received_online,
                received_digitized: row.received_digitized,
                finished: row.finished,
                finished_on_time: row.finished_on_time,
                fees_paid: row.fees_paid,
                fees_paid_cashless: row.fees_paid_cashless,
                fees_amount: row.fees_amount,
                fees_amount_cashless: row.fees_amount_cashless,
                ratings: row.ratings,
                ratings_good: row.ratings_good,
                rating_points: row.rating_points,
                ..Counts::default()
            };
            (row.unit_code, counts)
        })
        .collect();
    // Overdue now, whatever the period: unfinished, past the due time (a paused clock counts
    // up to its pause), with or without the apology (a reschedule).
    let overdue = sqlx::query!(
        r#"SELECT unit_code, count(*) AS "overdue!",
                  count(*) FILTER (WHERE rescheduled_at IS NOT NULL) AS "apology!"
           FROM dossiers
           WHERE unit_code = ANY($1) AND finished_at IS NULL AND due_at IS NOT NULL
             AND status NOT IN ('refused', 'withdrawn', 'returned')
             AND due_at < COALESCE(paused_at, now())
           GROUP BY unit_code"#,
        units,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in overdue {
        let unit = counts.entry(row.unit_code).or_default();
        unit.overdue_now = row.overdue;
        unit.overdue_with_apology = row.apology;
    }
    Ok(counts)
}
