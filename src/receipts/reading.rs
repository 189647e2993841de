//! Reading receipts: the payer (or the citizen the bill is addressed to), staff in scope, and
//! the biller by series and number. A numbered receipt is answered from what was signed.

use axum::extract::State;
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::signing::compact;
use super::{Receipt, ReceiptBiller, ReceiptItem, ReceiptStatus, SignedReceipt};
use crate::auth::Caller;
use crate::auth::access::{AnyRole, Role};
use crate::http::error::Problem;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::merchants::BillerCaller;
use crate::state::AppState;
use crate::vietnam_time::vietnam;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_receipt))
        .routes(routes!(get_biller_receipt))
}

/// A receipt's row with its bill, for the answer and for who may read it.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    bill_id: Uuid,
    unit_code: Option<String>,
    paid_by: Option<Uuid>,
    payer_account_id: Option<Uuid>,
    form: String,
    series: String,
    year: i32,
    method: String,
    paid_at: DateTime<Utc>,
    canonical: Option<String>,
    signature: Option<String>,
    cancelled_at: Option<DateTime<Utc>>,
    bill_code: String,
    biller_code: String,
    biller_name: String,
    tax_code: Option<String>,
    payer_name: String,
    items: SqlJson<Vec<ReceiptItem>>,
    amount: i64,
}

const SELECT: &str =
    // The unit whose staff read it: a dossier fee's unit, or the counter that took the money.
    "SELECT r.id, r.bill_id, b.biller_id,
        COALESCE(bl.unit_code, (SELECT s.unit_code FROM counter_collections c
                                JOIN counter_shifts s ON s.id = c.shift_id
                                WHERE c.receipt_id = r.id)) AS unit_code,
        b.paid_by, b.payer_account_id,
        s.form, s.series, r.number, r.year, r.method, r.paid_at, r.canonical, r.signature,
        r.cancelled_at, b.code AS bill_code, m.code AS biller_code, m.name AS biller_name,
        bl.tax_code, b.payer_name, b.items, b.amount
    FROM receipts r
    JOIN receipt_series s ON s.id = r.series_id
    JOIN bills b ON b.id = r.bill_id
    JOIN billers bl ON bl.id = b.biller_id
    JOIN merchants m ON m.id = b.biller_id";

impl Row {
    fn into_receipt(self) -> ApiResult<Receipt> {
        let status = match (&self.canonical, self.cancelled_at) {
            (_, Some(_)) => ReceiptStatus::Cancelled,
            (None, None) => ReceiptStatus::Numbering,
            (Some(_), None) => ReceiptStatus::Issued,
        };
        let (Some(canonical), Some(signature)) = (self.canonical, self.signature) else {
            return Ok(Receipt {
                id: self.id,
                status,
                form: self.form,
                series: self.series,
                number: None,
                year: self.year,
                bill_id: self.bill_id,
                bill_code: self.bill_code,
                biller: ReceiptBiller {
                    code: self.biller_code,
                    name: self.biller_name,
                    tax_code: self.tax_code,
                },
                payer_name: self.payer_name,
                items: self.items.0,
                amount: self.amount,
                method: self.method,
                paid_at: self.paid_at,
                issued_at: None,
                key_id: None,
                signature: None,
                compact: None,
                cancelled_at: self.cancelled_at,
            });
        };
        let signed: SignedReceipt = serde_json::from_str(&canonical).map_err(ApiError::internal)?;
        Ok(Receipt {
            id: signed.id,
            status,
            form: signed.form,
            series: signed.series,
            number: Some(signed.number),
            year: signed.year,
            bill_id: self.bill_id,
            bill_code: signed.bill_code,
            biller: signed.biller,
            payer_name: signed.payer_name,
            items: signed.items,
            amount: signed.amount,
            method: signed.method,
            paid_at: signed.paid_at,
            issued_at: Some(signed.issued_at),
            key_id: Some(signed.key_id),
            compact: Some(compact(canonical.as_bytes(), &signature)),
            signature: Some(signature),
            cancelled_at: self.cancelled_at,
        })
    }
}

/// Whether the caller may read the receipt: the citizen who paid or to whom the bill is
/// addressed; an admin; an officer or supervisor whose unit's subtree holds the dossier-fee
/// biller's unit, or the counter that collected it (a water bill paid in cash at a commune).
async fn may_read(state: &AppState, caller: &Caller<AnyRole>, row: &Row) -> ApiResult<bool> {
    Ok(match caller.role {
        Role::Citizen => {
            row.paid_by == Some(caller.account_id)
                || row.payer_account_id == Some(caller.account_id)
        }
        Role::Admin => true,
        Role::Officer | Role::Supervisor => match &row.unit_code {
            Some(unit) => caller.scope().covers_unit(&state.db, unit).await?,
            None => false,
        },
    })
}

/// A receipt: for its payer, the citizen its bill is addressed to, and staff in scope.
#[utoipa::path(get, path = "/v1/receipts/{id}", tag = "receipts", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Receipt),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_receipt(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Receipt>> {
    let mut conn = state.db.acquire().await?;
    let row = load(&mut conn, "r.id = $1", id.to_string()).await?;
    match row {
        Some(row) if may_read(&state, &caller, &row).await? => Ok(Json(row.into_receipt()?)),
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

async fn load(
    conn: &mut PgConnection,
    condition: &str,
    value: String,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE {condition}::uuid"))
        .bind(value)
        .fetch_optional(conn)
        .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptNumber {
    /// The series symbol, as printed on the receipt.
    pub series: String,
    /// The year its number counts in (Vietnam time); this year by default.
    pub year: Option<i32>,
}

/// One of the calling biller's receipts, by series and number.
#[utoipa::path(get, path = "/v1/biller/receipts/{number}", tag = "receipts", security(("biller_key" = [])),
    params(("number" = i64, Path), ReceiptNumber),
    responses(
        (status = 200, body = Receipt),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_biller_receipt(
    State(state): State<AppState>,
    caller: BillerCaller,
    Path(number): Path<i64>,
    Query(query): Query<ReceiptNumber>,
) -> ApiResult<Json<Receipt>> {
    let year = query
        .year
        .unwrap_or_else(|| Utc::now().with_timezone(&vietnam()).year());
    let row: Option<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.biller_id = $1 AND s.series = $2 AND r.year = $3 AND r.number = $4"
    ))
    .bind(caller.biller_id())
    .bind(&query.series)
    .bind(year)
    .bind(number)
    .fetch_optional(&state.db)
    .await?;
    let row = row.ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(row.into_receipt()?))
}
