//! Numbers and signs receipts right after their payments commit. One batch ([`number_due`]
//! runs them until none is left) takes the oldest committed unnumbered receipts of every
//! series at once, in the order they were written, each series under a transaction-scoped
//! advisory lock (the receipts of a series another process is numbering are left to it, so two
//! never number one series at once); reserves each series' and year's block of numbers from its
//! counter in one statement; signs; and writes them all in one statement, in one transaction.
//! So a pass costs the same few round trips for one series or a thousand. Only committed
//! receipts are seen, so a rolled-back payment takes no number; a crash before the batch
//! commits leaves its receipts unnumbered for the next pass, so no number is lost.
//!
//! The server runs a pass whenever this process commits a transaction that recorded events (a
//! bill's payment records `bill.paid`), and every [`EVERY`] for the other processes' receipts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::signing::ReceiptKeys;
use super::{ReceiptBiller, ReceiptItem, SignedReceipt, jcs};
use crate::background::BackgroundTasks;
use crate::db::LockSpace;

/// How often a pass runs when nothing wakes it.
pub const EVERY: Duration = Duration::from_millis(250);
/// Receipts numbered per series per transaction.
const BATCH: i64 = 1_000;

pub fn spawn(tasks: &BackgroundTasks, db: PgPool, keys: Arc<ReceiptKeys>) {
    tasks.spawn("receipt sequencer", |cancel| async move {
        let mut commits = crate::outbox::commits();
        loop {
            if let Err(error) = number_due(&db, &keys).await {
                tracing::warn!(%error, "numbering receipts failed; retrying");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = commits.changed() => {}
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    });
}

/// Numbers the committed unnumbered receipts this process can lock, until none is left;
/// answers how many.
pub async fn number_due(db: &PgPool, keys: &ReceiptKeys) -> Result<usize, sqlx::Error> {
    let mut numbered = 0;
    loop {
        let batch = number_batch(db, keys).await?;
        numbered += batch;
        if batch < BATCH as usize {
            return Ok(numbered);
        }
    }
}

/// An unnumbered receipt with what its signed form says.
struct Due {
    id: Uuid,
    series_id: Uuid,
    year: i32,
    method: String,
    paid_at: DateTime<Utc>,
    form: String,
    series: String,
    bill_code: String,
    biller_code: String,
    biller_name: String,
    tax_code: Option<String>,
    payer_name: String,
    /// The citizen the bill is addressed to paid it: only then is their name in full.
    paid_by_addressee: bool,
    items: SqlJson<Vec<ReceiptItem>>,
    amount: i64,
}

async fn number_batch(db: &PgPool, keys: &ReceiptKeys) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    // `pg_try_advisory_xact_lock` in the filter takes each series' lock once (it is reentrant
    // within the transaction) and leaves out the series whose lock another process holds.
    let due = sqlx::query_as!(
        Due,
        r#"SELECT r.id, r.series_id, r.year, r.method, r.paid_at, s.form, s.series, b.code AS bill_code,
                  m.code AS biller_code, m.name AS biller_name, bl.tax_code, b.payer_name,
                  COALESCE(b.paid_by = b.payer_account_id, false) AS "paid_by_addressee!",
                  b.items AS "items: SqlJson<Vec<ReceiptItem>>", b.amount
           FROM receipts r
           JOIN receipt_series s ON s.id = r.series_id
           JOIN bills b ON b.id = r.bill_id
           JOIN billers bl ON bl.id = b.biller_id
           JOIN merchants m ON m.id = b.biller_id
           WHERE r.number IS NULL AND pg_try_advisory_xact_lock($1::int, hashtext(r.series_id::text))
           ORDER BY r.seq LIMIT $2
           FOR UPDATE OF r"#,
        LockSpace::ReceiptSeries as i32,
        BATCH,
    )
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    // The database's clock, which every process shares, so issue times follow the numbers.
    let issued_at =
        sqlx::query_scalar!(r#"SELECT date_trunc('milliseconds', clock_timestamp()) AS "now!""#)
            .fetch_one(&mut *tx)
            .await?;
    let mut next = reserve(&mut tx, &due).await?;
    let mut numbered = Numbered::default();
    for receipt in &due {
        let number = next.take(receipt.series_id, receipt.year);
        let signed = signed(receipt, number, issued_at, keys.key_id());
        let canonical =
            jcs::canonical(&serde_json::to_value(&signed).expect("a receipt is plain JSON"));
        numbered.ids.push(receipt.id);
        numbered.numbers.push(number);
        numbered.signatures.push(keys.sign(canonical.as_bytes()));
        numbered.canonicals.push(canonical);
    }
    save(&mut tx, &numbered, issued_at, keys.key_id()).await?;
    tx.commit().await?;
    Ok(due.len())
}

/// The next numbers of each series and year, reserved from their counters.
struct Reserved {
    /// (series, year) → the next number to hand out.
    next: HashMap<(Uuid, i32), i64>,
}

impl Reserved {
    fn take(&mut self, series_id: Uuid, year: i32) -> i64 {
        let next = self
            .next
            .get_mut(&(series_id, year))
            .expect("every receipt's series and year were reserved");
        let number = *next;
        *next += 1;
        number
    }
}

/// Reserves, in one statement, as many numbers of each series and year as the batch holds
/// receipts of them (their locks are held, so their counters are this batch's alone).
async fn reserve(conn: &mut PgConnection, due: &[Due]) -> Result<Reserved, sqlx::Error> {
    let mut counts: HashMap<(Uuid, i32), i64> = HashMap::new();
    for receipt in due {
        *counts.entry((receipt.series_id, receipt.year)).or_default() += 1;
    }
    let (keys, amounts): (Vec<_>, Vec<i64>) = counts.into_iter().unzip();
    let (series, years): (Vec<Uuid>, Vec<i32>) = keys.into_iter().unzip();
    let reserved = sqlx::query!(
        r#"INSERT INTO receipt_numbers (series_id, year, last_number)
           SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::bigint[])
           ON CONFLICT (series_id, year)
               DO UPDATE SET last_number = receipt_numbers.last_number + EXCLUDED.last_number
           RETURNING series_id, year, last_number"#,
        &series,
        &years,
        &amounts,
    )
    .fetch_all(conn)
    .await?;
    let taken: HashMap<(Uuid, i32), i64> = series.into_iter().zip(years).zip(amounts).collect();
    let next = reserved
        .into_iter()
        .map(|row| {
            let key = (row.series_id, row.year);
            (key, row.last_number - taken[&key] + 1)
        })
        .collect();
    Ok(Reserved { next })
}

fn signed(receipt: &Due, number: i64, issued_at: DateTime<Utc>, key_id: &str) -> SignedReceipt {
    SignedReceipt {
        id: receipt.id,
        form: receipt.form.clone(),
        series: receipt.series.clone(),
        number,
        year: receipt.year,
        bill_code: receipt.bill_code.clone(),
        biller: ReceiptBiller {
            code: receipt.biller_code.clone(),
            name: receipt.biller_name.clone(),
            tax_code: receipt.tax_code.clone(),
        },
        // A receipt may be read (and its QR scanned) by whoever paid: a relative, anyone with
        // the bill's code. The name is in full only on the addressee's own receipt.
        payer_name: if receipt.paid_by_addressee {
            receipt.payer_name.clone()
        } else {
            crate::domain::masked_name(&receipt.payer_name)
        },
        items: receipt.items.0.clone(),
        amount: receipt.amount,
        method: receipt.method.clone(),
        paid_at: receipt.paid_at,
        issued_at,
        key_id: key_id.to_owned(),
    }
}

#[derive(Default)]
struct Numbered {
    ids: Vec<Uuid>,
    numbers: Vec<i64>,
    canonicals: Vec<String>,
    signatures: Vec<String>,
}

async fn save(
    conn: &mut PgConnection,
    numbered: &Numbered,
    issued_at: DateTime<Utc>,
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE receipts r SET number = u.number, issued_at = $5, canonical = u.canonical,
                               signature = u.signature, key_id = $6
         FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[]) AS u(id, number, canonical, signature)
         WHERE r.id = u.id",
        &numbered.ids,
        &numbered.numbers,
        &numbered.canonicals,
        &numbered.signatures,
        issued_at,
        key_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}
