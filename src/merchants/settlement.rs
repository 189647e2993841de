//! What a merchant reconciles against: its payments and refunds, and a day's settlement
//! (Vietnam time) — count, gross, fees, refunds, net — which equals, to the đồng, what the
//! ledger moved into and out of the merchant's account that day. The totals are one aggregate
//! in the database, never a sum over rows read into memory, and the CSV streams every movement
//! of the day, however many, so neither stops short.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Transaction};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::MerchantCaller;
use crate::http::dates::{self, Day, DaySpan};
use crate::http::error::Problem;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiResult, Json, Path, Query, csv};
use crate::state::AppState;
use crate::vietnam_time::{day_start, vietnam};

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
    #[serde(default, deserialize_with = "dates::opt_date")]
    pub from: Option<NaiveDate>,
    /// Last day included, Vietnam time.
    #[serde(default, deserialize_with = "dates::opt_date")]
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
    operation_id = "list_merchant_transactions",
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

/// One Vietnam-time day's settlement; `Accept: text/csv` gives the movements and totals as CSV.
#[utoipa::path(get, path = "/v1/merchant/settlements/{date}", tag = "merchants", security(("merchant_key" = [])),
    params(("date" = NaiveDate, Path, description = "YYYY-MM-DD, Vietnam time")),
    responses(
        (status = 200, body = Settlement),
        (status = 200, content_type = "text/csv", description = "With `Accept: text/csv`"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn settlement(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(Day(date)): Path<Day>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let day = DaySpan::of(date)?;
    let wants_csv = csv::wanted(&headers);
    if !wants_csv {
        let mut conn = state.db.acquire().await?;
        return Ok(Json(totals(&mut conn, caller.merchant_id, &day).await?).into_response());
    }
    // The totals and the rows are read in one snapshot, so the last line adds up the lines
    // above it even while the day's payments still arrive.
    let mut tx = state.db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let settlement = totals(&mut tx, caller.merchant_id, &day).await?;
    let body = Body::from_stream(settlement_lines(tx, caller.merchant_id, day, settlement));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

/// The day's totals, summed by the database over every payment and refund of the day.
async fn totals(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    day: &DaySpan,
) -> Result<Settlement, sqlx::Error> {
    let sums = sqlx::query!(
        r#"SELECT paid.payments AS "payments!", paid.gross AS "gross!", paid.fees AS "fees!",
                  refunded.refunds_count AS "refunds_count!", refunded.refunds AS "refunds!"
           FROM (SELECT count(*) AS payments, coalesce(sum(amount), 0)::bigint AS gross,
                        coalesce(sum(fee), 0)::bigint AS fees
                 FROM orders
                 WHERE merchant_id = $1 AND paid_at IS NOT NULL AND paid_at >= $2 AND paid_at < $3) paid,
                (SELECT count(*) AS refunds_count, coalesce(sum(r.amount), 0)::bigint AS refunds
                 FROM refunds r JOIN orders o ON o.id = r.order_id
                 WHERE o.merchant_id = $1 AND r.created_at >= $2 AND r.created_at < $3) refunded"#,
        merchant_id,
        day.from,
        day.until,
    )
    .fetch_one(conn)
    .await?;
    Ok(Settlement {
        date: day.date,
        payments: sums.payments,
        gross: sums.gross,
        fees: sums.fees,
        refunds_count: sums.refunds_count,
        refunds: sums.refunds,
        net: sums.gross - sums.fees - sums.refunds,
    })
}

const CSV_HEADER: &str = "time,kind,order_ref,order_code,amount,fee,net\n";

/// The settlement's lines: every movement of the day, oldest first, streamed from the
/// transaction (however many there are, in bounded memory), then the totals.
fn settlement_lines(
    tx: Transaction<'static, Postgres>,
    merchant_id: Uuid,
    day: DaySpan,
    settlement: Settlement,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    csv::streamed("settlement", move |lines| async move {
        send_lines(tx, merchant_id, &day, &settlement, &lines).await
    })
}

/// Sends the lines; stops quietly when the client has gone.
async fn send_lines(
    mut tx: Transaction<'static, Postgres>,
    merchant_id: Uuid,
    day: &DaySpan,
    settlement: &Settlement,
    lines: &csv::LineSender,
) -> Result<(), sqlx::Error> {
    if lines.send(Ok(CSV_HEADER.to_owned())).await.is_err() {
        return Ok(());
    }
    let mut rows = sqlx::query_as!(
        MerchantTransaction,
        r#"SELECT id AS "id!", kind AS "kind!", order_ref AS "order_ref!", order_code AS "order_code!",
                  amount AS "amount!", fee AS "fee!", net AS "net!", at AS "at!"
           FROM (
               SELECT o.id, 'payment' AS kind, o.order_ref, o.code AS order_code, o.amount, o.fee,
                      o.amount - o.fee AS net, o.paid_at AS at
               FROM orders o
               WHERE o.merchant_id = $1 AND o.paid_at IS NOT NULL AND o.paid_at >= $2 AND o.paid_at < $3
               UNION ALL
               SELECT r.id, 'refund', o.order_ref, o.code, r.amount, 0::bigint, -r.amount, r.created_at
               FROM refunds r JOIN orders o ON o.id = r.order_id
               WHERE o.merchant_id = $1 AND r.created_at >= $2 AND r.created_at < $3
           ) m
           ORDER BY at, id"#,
        merchant_id,
        day.from,
        day.until,
    )
    .fetch(&mut *tx);
    while let Some(row) = rows.next().await {
        if lines.send(Ok(csv_line(&row?))).await.is_err() {
            return Ok(());
        }
    }
    drop(rows);
    // Ended before the totals are sent, so a failure leaves a CSV visibly without them.
    tx.commit().await?;
    let _ = lines.send(Ok(total_line(settlement))).await;
    Ok(())
}

/// One movement. The order reference is the merchant's own text, so it goes through
/// [`csv::text`] like every text cell; amounts stay numbers (a refund's net is negative).
fn csv_line(row: &MerchantTransaction) -> String {
    let time = row
        .at
        .with_timezone(&vietnam())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    csv::line([
        csv::text(&time),
        csv::text(&row.kind),
        csv::text(&row.order_ref),
        csv::text(&row.order_code),
        row.amount.to_string().into(),
        row.fee.to_string().into(),
        row.net.to_string().into(),
    ])
}

fn total_line(settlement: &Settlement) -> String {
    format!(
        "total,payments={} refunds={},,,{},{},{}\n",
        settlement.payments,
        settlement.refunds_count,
        settlement.gross - settlement.refunds,
        settlement.fees,
        settlement.net
    )
}
