//! Receipts (DESIGN.md, "Receipts"): one numbered, signed electronic receipt per paid bill,
//! verifiable offline by anyone with our public key.
//!
//! A receipt is written by [`issue`] in the transaction that pays its bill, unnumbered
//! (`status: "numbering"`). The [`sequencer`] numbers it right after commit: one sequencer at
//! a time per series (an advisory lock, so several processes may run it), taking the committed
//! unnumbered receipts of the series in the order they were written, so the numbers of a series
//! and year are gapless and increasing, a rolled-back payment never takes one, and no payment
//! waits for a number (a counter row locked inside payments would serialize a busy biller).
//! The sequencer signs as it numbers: Ed25519 ([`signing`]) over the receipt's RFC 8785
//! canonical JSON ([`jcs`]), kept as signed, so the receipt never changes after.

pub mod jcs;
pub mod sequencer;
pub mod series;
pub mod signing;
mod verify;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::http::ApiResult;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(verify::routes())
        .merge(reading::routes())
        .merge(series::routes())
}

mod reading;

/// A receipt's default form number (mẫu số) and series symbols (ký hiệu), for a biller that
/// configured none: one series for the electronic channels and one for cash at counters.
const DEFAULT_FORM: &str = "01BLP0-001";
const ELECTRONIC_SERIES: &str = "BL-E";
const CASH_SERIES: &str = "BL-T";
/// The symbols the defaults use, which no configured series may take.
pub(crate) const DEFAULT_SERIES: [&str; 2] = [ELECTRONIC_SERIES, CASH_SERIES];

/// A bill just paid, whose receipt is to be written.
pub struct NewReceipt<'a> {
    /// Chosen by the payer's transaction, which may name the receipt before writing it.
    pub id: Uuid,
    pub bill_id: Uuid,
    pub biller_id: Uuid,
    /// `wallet`, `provider`, `cash` or `counter_qr`.
    pub method: &'a str,
    pub paid_at: DateTime<Utc>,
}

/// Writes the unnumbered receipt of a bill just paid, in the paying transaction; answers its
/// id. The series is the biller's for the channel (`method`), else its series for every
/// channel, else the default one, made on first use.
pub async fn issue(conn: &mut PgConnection, receipt: &NewReceipt<'_>) -> ApiResult<Uuid> {
    let NewReceipt {
        id,
        bill_id,
        biller_id,
        method,
        paid_at,
    } = *receipt;
    let series_id = series_for(conn, biller_id, method).await?;
    sqlx::query!(
        "INSERT INTO receipts (id, bill_id, series_id, method, paid_at, year)
         VALUES ($1, $2, $3, $4, $5, EXTRACT(YEAR FROM $5 AT TIME ZONE 'Asia/Ho_Chi_Minh')::integer)",
        id,
        bill_id,
        series_id,
        method,
        paid_at,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

async fn series_for(conn: &mut PgConnection, biller_id: Uuid, method: &str) -> ApiResult<Uuid> {
    let configured = sqlx::query_scalar!(
        "SELECT id FROM receipt_series WHERE biller_id = $1 AND (method = $2 OR method IS NULL)
         ORDER BY method IS NULL LIMIT 1",
        biller_id,
        method,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = configured {
        return Ok(id);
    }
    let (channel, series) = match method {
        "cash" => (Some("cash"), CASH_SERIES),
        _ => (None, ELECTRONIC_SERIES),
    };
    // Two first payments of a biller at once make it once: the loser reads the winner's. (No
    // admin series can hold a default symbol: `series::add_series` refuses them.)
    sqlx::query!(
        "INSERT INTO receipt_series (id, biller_id, method, form, series) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (biller_id, (COALESCE(method, ''))) DO NOTHING",
        Uuid::new_v4(),
        biller_id,
        channel,
        DEFAULT_FORM,
        series,
    )
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar!(
        "SELECT id FROM receipt_series WHERE biller_id = $1 AND COALESCE(method, '') = COALESCE($2, '')",
        biller_id,
        channel,
    )
    .fetch_one(conn)
    .await?)
}

/// Marks a bill's receipt cancelled (its bill refunded with its dossier): it keeps its number
/// and signature and shows as cancelled.
pub async fn cancel(conn: &mut PgConnection, bill_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE receipts SET cancelled_at = COALESCE(cancelled_at, now()) WHERE bill_id = $1",
        bill_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptBiller {
    pub code: String,
    pub name: String,
    pub tax_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptItem {
    pub name: String,
    pub amount: i64,
}

/// Where a receipt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Paid, its number coming (within a second).
    Numbering,
    Issued,
    /// Issued, then its bill was refunded (a dossier closed): it keeps its number.
    Cancelled,
}

/// The receipt as signed (`canonical`), the object of the compact form.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub id: Uuid,
    pub form: String,
    pub series: String,
    pub number: i64,
    /// The (Vietnam-time) year the number counts in.
    pub year: i32,
    pub bill_code: String,
    pub biller: ReceiptBiller,
    pub payer_name: String,
    pub items: Vec<ReceiptItem>,
    pub amount: i64,
    /// `wallet`, `provider`, `cash` or `counter_qr`.
    pub method: String,
    pub paid_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub key_id: String,
}

/// A receipt as the API answers it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    pub id: Uuid,
    pub status: ReceiptStatus,
    pub form: String,
    pub series: String,
    /// `null` while `numbering`.
    pub number: Option<i64>,
    pub year: i32,
    pub bill_id: Uuid,
    pub bill_code: String,
    pub biller: ReceiptBiller,
    pub payer_name: String,
    pub items: Vec<ReceiptItem>,
    pub amount: i64,
    pub method: String,
    pub paid_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub key_id: Option<String>,
    /// Base64url Ed25519 signature over the canonical JSON of the signed receipt.
    pub signature: Option<String>,
    /// `base64url(canonical JSON) + "." + base64url(signature)`: what a QR code on the printed
    /// receipt carries, and what `POST /v1/receipts/verify` (or any Ed25519 library) checks.
    pub compact: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
}
