//! What a merchant reconciles against: its payments and refunds, and a day's settlement
//! (Vietnam time) — count, gross, fees, refunds, net — which equals, to the đồng, what the
//! ledger moved into and out of the merchant's account that day.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::MerchantCaller;
use crate::app::AppState;
use crate::http::error::Problem;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::wallet::limits::{day_start, vietnam};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transactions))
        .routes(routes!(settlement))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MerchantTransaction {
    /// The order (payment) or the refund.
    pub id: Uuid,
    /// `payment` or `refund`.
    pub kind: String,
    pub order_ref: String,
    pub order_code: String,
    pub amount: i64,
    /// Kept by civicpay on a payment; never returned on a refund.
    pub fee: i64,
    /// What reached (positive) or left (negative) the merchant's account.
    pub net: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day included, Vietnam time.
    pub from: Option<NaiveDate>,
    /// Last day included, Vietnam time.
    pub to: Option<NaiveDate>,
}

/// Every payment and refund in `[from, until)`, newest first, after the cursor.
async fn movements(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MerchantTransaction>, sqlx::Error> {
    let (before_at, before_id) = before.unzip();
    sqlx::query_as!(
        MerchantTransaction,
        r#"SELECT id AS "id!", kind AS "kind!", order_ref AS "order_ref!", order_code AS "order_code!",
                  amount AS "amount!", fee AS "fee!", net AS "net!", at AS "at!"
           FROM (
               SELECT o.id, 'payment' AS kind, o.order_ref, o.code AS order_code, o.amount, o.fee,
                      o.amount - o.fee AS net, o.paid_at AS at
               FROM orders o WHERE o.merchant_id = $1 AND o.paid_at IS NOT NULL
               UNION ALL
               SELECT r.id, 'refund', o.order_ref, o.code, r.amount, 0::bigint, -r.amount, r.created_at
               FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.merchant_id = $1
           ) m
           WHERE ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3)
             AND ($4::timestamptz IS NULL OR (at, id) < ($4, $5::uuid))
           ORDER BY at DESC, id DESC
           LIMIT $6"#,
        merchant_id,
        from,
        until,
        before_at,
        before_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Payments and refunds, newest first.
#[utoipa::path(get, path = "/v1/merchant/transactions", tag = "merchants", security(("merchant_key" = [])),
    params(Period, PageQuery),
    responses((status = 200, body = Page<MerchantTransaction>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_transactions(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Query(period): Query<Period>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<MerchantTransaction>>> {
    let limit = page.limit()?;
    let before: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    let until = period.to.and_then(|d| d.succ_opt()).map(day_start);
    let mut conn = state.db.acquire().await?;
    let rows = movements(
        &mut conn,
        caller.merchant_id,
        period.from.map(day_start),
        until,
        before,
        limit + 1,
    )
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |t| (t.at, t.id))))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Settlement {
    pub date: NaiveDate,
    pub payments: i64,
    pub gross: i64,
    pub fees: i64,
    pub refunds_count: i64,
    pub refunds: i64,
    /// gross − fees − refunds: what the day moved into the merchant's account.
    pub net: i64,
}

/// Most movements one settlement reads; a merchant this busy needs a paged export.
const SETTLEMENT_MAX_ROWS: i64 = 100_000;

/// One Vietnam-time day's settlement; `Accept: text/csv` gives the movements and totals as CSV.
#[utoipa::path(get, path = "/v1/merchant/settlements/{date}", tag = "merchants", security(("merchant_key" = [])),
    params(("date" = String, Path, description = "YYYY-MM-DD, Vietnam time")),
    responses(
        (status = 200, body = Settlement),
        (status = 200, content_type = "text/csv", description = "With `Accept: text/csv`"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn settlement(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(date): Path<NaiveDate>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let until = date
        .succ_opt()
        .map(day_start)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let mut conn = state.db.acquire().await?;
    let rows = movements(
        &mut conn,
        caller.merchant_id,
        Some(day_start(date)),
        Some(until),
        None,
        SETTLEMENT_MAX_ROWS,
    )
    .await?;
    let settlement = totals(date, &rows);
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if !wants_csv {
        return Ok(Json(settlement).into_response());
    }
    let mut csv = String::from("time,kind,order_ref,order_code,amount,fee,net\n");
    for row in rows.iter().rev() {
        let time = row.at.with_timezone(&vietnam()).format("%Y-%m-%d %H:%M:%S");
        let order_ref = row.order_ref.replace('"', "\"\"");
        csv.push_str(&format!(
            "{time},{},\"{order_ref}\",{},{},{},{}\n",
            row.kind, row.order_code, row.amount, row.fee, row.net
        ));
    }
    csv.push_str(&format!(
        "total,payments={} refunds={},,,{},{},{}\n",
        settlement.payments,
        settlement.refunds_count,
        settlement.gross - settlement.refunds,
        settlement.fees,
        settlement.net
    ));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

fn totals(date: NaiveDate, rows: &[MerchantTransaction]) -> Settlement {
    let payments: Vec<_> = rows.iter().filter(|r| r.kind == "payment").collect();
    let refunds: Vec<_> = rows.iter().filter(|r| r.kind == "refund").collect();
    let gross = payments.iter().map(|r| r.amount).sum::<i64>();
    let fees = payments.iter().map(|r| r.fee).sum::<i64>();
    let refunded = refunds.iter().map(|r| r.amount).sum::<i64>();
    Settlement {
        date,
        payments: payments.len() as i64,
        gross,
        fees,
        refunds_count: refunds.len() as i64,
        refunds: refunded,
        net: gross - fees - refunded,
    }
}
