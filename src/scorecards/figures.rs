//! The counts behind a scorecard, read from the data: dossiers received and finished, overdue
//! now, fee bills paid, ratings, each counted per unit in one statement, then added up per child
//! unit (and its subtree) and for the whole subtree.

use std::collections::HashMap;
use std::ops::AddAssign;

use chrono::{DateTime, Utc};
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

/// `[from, until)`: the instants of the period's Vietnam-time days.
pub struct Span {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The counts of each of `units` in the period (units with nothing are absent).
pub async fn per_unit(
    conn: &mut PgConnection,
    units: &[String],
    span: &Span,
) -> Result<HashMap<String, Counts>, sqlx::Error> {
    let mut counts: HashMap<String, Counts> = HashMap::new();
    let received = sqlx::query!(
        r#"SELECT d.unit_code, count(*) AS "received!",
                  count(*) FILTER (WHERE d.channel = 'online') AS "online!",
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM dossier_documents dd WHERE dd.dossier_id = d.id)) AS "digitized!"
           FROM dossiers d
           WHERE d.unit_code = ANY($1) AND d.received_at >= $2 AND d.received_at < $3
           GROUP BY d.unit_code"#,
        units,
        span.from,
        span.until,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in received {
        let unit = counts.entry(row.unit_code).or_default();
        unit.received = row.received;
        unit.received_online = row.online;
        unit.received_digitized = row.digitized;
    }
    // Finished = the result ready or the refusal of the request (rejected), by finish date;
    // on time = at or before the due time.
    let finished = sqlx::query!(
        r#"SELECT unit_code, count(*) AS "finished!",
                  count(*) FILTER (WHERE finished_at <= due_at) AS "on_time!"
           FROM dossiers
           WHERE unit_code = ANY($1) AND finished_at >= $2 AND finished_at < $3
           GROUP BY unit_code"#,
        units,
        span.from,
        span.until,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in finished {
        let unit = counts.entry(row.unit_code).or_default();
        unit.finished = row.finished;
        unit.finished_on_time = row.on_time;
    }
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
    // Fee bills paid in the period, by the unit that bills them.
    let fees = sqlx::query!(
        r#"SELECT bl.unit_code AS "unit_code!", count(*) AS "paid!",
                  count(*) FILTER (WHERE b.paid_via <> 'cash') AS "cashless!",
                  COALESCE(sum(b.amount), 0)::bigint AS "amount!",
                  COALESCE(sum(b.amount) FILTER (WHERE b.paid_via <> 'cash'), 0)::bigint AS "amount_cashless!"
           FROM billers bl
           JOIN bills b ON b.biller_id = bl.id AND b.paid_at >= $2 AND b.paid_at < $3
           WHERE bl.unit_code = ANY($1)
           GROUP BY bl.unit_code"#,
        units,
        span.from,
        span.until,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in fees {
        let unit = counts.entry(row.unit_code).or_default();
        unit.fees_paid = row.paid;
        unit.fees_paid_cashless = row.cashless;
        unit.fees_amount = row.amount;
        unit.fees_amount_cashless = row.amount_cashless;
    }
    let ratings = sqlx::query!(
        r#"SELECT d.unit_code, count(*) AS "ratings!",
                  count(*) FILTER (WHERE r.score >= 4) AS "good!",
                  COALESCE(sum(r.score), 0)::bigint AS "points!"
           FROM dossier_ratings r JOIN dossiers d ON d.id = r.dossier_id
           WHERE d.unit_code = ANY($1) AND r.created_at >= $2 AND r.created_at < $3
           GROUP BY d.unit_code"#,
        units,
        span.from,
        span.until,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in ratings {
        let unit = counts.entry(row.unit_code).or_default();
        unit.ratings = row.ratings;
        unit.ratings_good = row.good;
        unit.rating_points = row.points;
    }
    Ok(counts)
}
