//! Numbers and signs receipts right after their payments commit. One pass ([`number_due`])
//! takes each series with unnumbered receipts under a transaction-scoped advisory lock (a
//! series another process is numbering is skipped, so two never number one series at once),
//! locks its unnumbered receipts in the order they were written and gives them the next
//! numbers of their series and year, signed, in one transaction with the series' counter.
//! Only committed receipts are seen, so a rolled-back payment takes no number; a crash before
//! the pass commits leaves the receipts unnumbered for the next pass, so no number is lost.
//!
//! The server runs a pass whenever this process commits a transaction that recorded events (a
//! bill's payment records `bill.paid`), and every [`EVERY`] for the other processes' receipts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::signing::ReceiptKeys;
use super::{ReceiptBiller, ReceiptItem, SignedReceipt, jcs};
use crate::background::BackgroundTasks;
use crate::db::{LockSpace, try_xact_lock};

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
/// answers how many. Each round gives every series one batch in turn, so a backlog in one
/// series does not hold the others back, and a series that fails is logged and left for the
/// next pass without stopping the rest.
pub async fn number_due(db: &PgPool, keys: &ReceiptKeys) -> Result<usize, sqlx::Error> {
    let mut numbered = 0;
    loop {
        let series: Vec<Uuid> =
            sqlx::query_scalar!("SELECT DISTINCT series_id FROM receipts WHERE number IS NULL")
                .fetch_all(db)
                .await?;
        let mut full_batches = 0;
        for series_id in series {
            match number_batch(db, keys, series_id).await {
                Ok(batch) => {
                    numbered += batch;
                    full_batches += usize::from(batch == BATCH as usize);
                }
                Err(error) => {
                    tracing::error!(%error, %series_id, "numbering a receipt series failed");
                }
            }
        }
        if full_batches == 0 {
            return Ok(numbered);
        }
    }
}

/// An unnumbered receipt with what its signed form says.
struct Due {
    id: Uuid,
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

async fn number_batch(
    db: &PgPool,
    keys: &ReceiptKeys,
    series_id: Uuid,
) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    if !try_xact_lock(&mut tx, LockSpace::ReceiptSeries, &series_id.to_string()).await? {
        return Ok(0);
    }
    let due = sqlx::query_as!(
        Due,
        r#"SELECT r.id, r.year, r.method, r.paid_at, s.form, s.series, b.code AS bill_code,
                  m.code AS biller_code, m.name AS biller_name, bl.tax_code, b.payer_name,
                  COALESCE(b.paid_by = b.payer_account_id, false) AS "paid_by_addressee!",
                  b.items AS "items: SqlJson<Vec<ReceiptItem>>", b.amount
           FROM receipts r
           JOIN receipt_series s ON s.id = r.series_id
           JOIN bills b ON b.id = r.bill_id
           JOIN billers bl ON bl.id = b.biller_id
           JOIN merchants m ON m.id = b.biller_id
           WHERE r.series_id = $1 AND r.number IS NULL
           ORDER BY r.seq LIMIT $2
           FOR UPDATE OF r"#,
        series_id,
        BATCH,
    )
    .fetch_all(&mut *tx)
    .await?;
    // The database's clock, which every process shares, so issue times follow the numbers.
    let issued_at =
        sqlx::query_scalar!(r#"SELECT date_trunc('milliseconds', clock_timestamp()) AS "now!""#)
            .fetch_one(&mut *tx)
            .await?;
    let mut numbered = Numbered::default();
    for receipt in &due {
        let number = next_number(&mut tx, series_id, receipt.year).await?;
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

/// The next number of the series in the year, counted in this transaction (the series' lock
/// is held, so the counter row is this pass's alone).
async fn next_number(
    conn: &mut PgConnection,
    series_id: Uuid,
    year: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"INSERT INTO receipt_numbers (series_id, year, last_number) VALUES ($1, $2, 1)
           ON CONFLICT (series_id, year) DO UPDATE SET last_number = receipt_numbers.last_number + 1
           RETURNING last_number"#,
        series_id,
        year,
    )
    .fetch_one(conn)
    .await
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
