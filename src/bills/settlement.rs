//! What a biller reconciles against: the movements of its ledger account — bill payments in,
//! refunds out — and a day's settlement (Vietnam time): count, gross, refunds, net. Unlike a
//! merchant's, whose figures come from its orders and refunds, a biller's come from the ledger
//! itself: every posting to the biller's account, joined to its journal entry (`bill_payment`
//! or `refund`) and, through the entry's reference (the bill's code), to the bill. So the net
//! of a day *is* the sum of the day's postings on the account, by construction, whichever
//! channel paid (wallet, provider, a double payment sent back).
//!
//! The totals are one aggregate in the database, and the CSV streams every movement of the
//! day from the same REPEATABLE READ snapshot, so its last line adds up the lines above it.
//!
//! A biller's account is deferred (a hot receiver), and deferred postings are not indexed by
//! account (the ledger's migration says why), so these reads scan the postings of the period.

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

use super::billers::BillerCaller;
use crate::http::dates::{self, Day, DaySpan};
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiResult, Json, Path, Query, csv};
use crate::state::AppState;
use crate::vietnam_time::{day_start, vietnam};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transactions))
        .routes(routes!(settlement))
}

/// One movement of the biller's ledger account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BillerTransaction {
    /// The journal entry of the payment or the refund.
    pub id: Uuid,
    /// `payment` or `refund` (any other movement of the account, such as an `adjustment`,
    /// shows its entry's kind).
    pub kind: String,
    /// The biller's own reference of the bill; `null` only for a movement that is no bill's.
    pub bill_reference: Option<String>,
    /// The bill's code, the payment reference; `null` only for a movement that is no bill's.
    pub bill_code: Option<String>,
    /// Always positive.
    pub amount: i64,
    /// As posted: positive into the biller's account (a payment), negative out (a refund).
    pub net: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day included, Vietnam time (YYYY-MM-DD), in the years 2000 to 2100.
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    /// Last day included, Vietnam time (YYYY-MM-DD), in the years 2000 to 2100.
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
}

/// A posting of the biller's account as read: its id orders the movements of one instant.
struct Movement {
    posting_id: i64,
    entry_id: Uuid,
    kind: String,
    bill_reference: Option<String>,
    bill_code: Option<String>,
    amount: i64,
    at: DateTime<Utc>,
}

impl Movement {
    fn into_transaction(self) -> BillerTransaction {
        BillerTransaction {
            id: self.entry_id,
            kind: self.kind,
            bill_reference: self.bill_reference,
            bill_code: self.bill_code,
            amount: self.amount.abs(),
            net: self.amount,
            at: self.at,
        }
    }
}

/// Every posting of the biller's account in `[from, until)`, newest first, after the cursor
/// (the instant and the posting id of the last movement already shown).
async fn movements(
    conn: &mut PgConnection,
    biller_id: Uuid,
    (from, until): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Movement>, sqlx::Error> {
    let (before_at, before_posting) = before.unzip();
    sqlx::query_as!(
        Movement,
        r#"SELECT p.id AS "posting_id!", e.id AS "entry_id!",
                  CASE e.kind WHEN 'bill_payment' THEN 'payment' ELSE e.kind END AS "kind!",
                  b.reference AS "bill_reference?", b.code AS "bill_code?",
                  p.amount AS "amount!", p.created_at AS "at!"
           FROM postings p
           JOIN journal_entries e ON e.id = p.entry_id
           LEFT JOIN bills b ON b.code = e.reference AND b.biller_id = $1
           WHERE p.account_id = (SELECT ledger_account_id FROM merchants WHERE id = $1)
             AND ($2::timestamptz IS NULL OR p.created_at >= $2)
             AND ($3::timestamptz IS NULL OR p.created_at < $3)
             AND ($4::timestamptz IS NULL OR (p.created_at, p.id) < ($4, $5::bigint))
           ORDER BY p.created_at DESC, p.id DESC
           LIMIT $6"#,
        biller_id,
        from,
        until,
        before_at,
        before_posting,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Payments and refunds, newest first: every movement of the biller's ledger account.
#[utoipa::path(get, path = "/v1/biller/transactions", tag = "bills", security(("biller_key" = [])),
    operation_id = "list_biller_transactions",
    params(Period, PageQuery),
    responses(
        (status = 200, body = Page<BillerTransaction>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_transactions(
    State(state): State<AppState>,
    caller: BillerCaller,
    Query(period): Query<Period>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<BillerTransaction>>> {
    let limit = page.limit()?;
    let before: Option<(DateTime<Utc>, i64)> = page.after()?;
    let ordered = match (period.from, period.to) {
        (Some(from), Some(to)) => from <= to,
        _ => true,
    };
    FieldChecks::new()
        .check(ordered, "to", Message::PeriodReversed)
        .finish()?;
    let span = (
        period.from.map(day_start),
        period.to.and_then(|d| d.succ_opt()).map(day_start),
    );
    let mut conn = state.db.acquire().await?;
    let rows = movements(&mut conn, caller.biller_id(), span, before, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |m| (m.at, m.posting_id));
    Ok(Json(Page {
        data: page
            .data
            .into_iter()
            .map(Movement::into_transaction)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BillerSettlement {
    pub date: NaiveDate,
    /// Bill payments received.
    pub payments: i64,
    /// What they brought in.
    pub gross: i64,
    pub refunds_count: i64,
    /// What refunds sent back (positive), counter voids included (a cash payment taken by
    /// mistake and given back, kind `void` among the transactions).
    pub refunds: i64,
    /// The sum of the day's postings on the biller's ledger account (gross − refunds, unless an
    /// adjustment moved it too).
    pub net: i64,
}

/// One Vietnam-time day's settlement; `Accept: text/csv` gives the movements and totals as CSV.
#[utoipa::path(get, path = "/v1/biller/settlements/{date}", tag = "bills", security(("biller_key" = [])),
    operation_id = "biller_settlement",
    params(("date" = NaiveDate, Path, description = "YYYY-MM-DD, Vietnam time")),
    responses(
        (status = 200, body = BillerSettlement),
        (status = 200, content_type = "text/csv", description = "With `Accept: text/csv`: time,kind,bill_reference,bill_code,amount,net, then a total line"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn settlement(
    State(state): State<AppState>,
    caller: BillerCaller,
    Path(Day(date)): Path<Day>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let day = DaySpan::of(date)?;
    let wants_csv = csv::wanted(&headers);
    let biller_id = caller.biller_id();
    if !wants_csv {
        let mut conn = state.db.acquire().await?;
        return Ok(Json(totals(&mut conn, biller_id, &day).await?).into_response());
    }
    // The totals and the rows are read in one snapshot, so the last line adds up the lines
    // above it even while the day's payments still arrive.
    let mut tx = state.db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let settlement = totals(&mut tx, biller_id, &day).await?;
    let body = Body::from_stream(settlement_lines(tx, biller_id, day, settlement));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

/// The day's totals, summed by the database over the day's postings on the biller's account.
async fn totals(
    conn: &mut PgConnection,
    biller_id: Uuid,
    day: &DaySpan,
) -> Result<BillerSettlement, sqlx::Error> {
    let sums = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE e.kind = 'bill_payment') AS "payments!",
                  coalesce(sum(p.amount) FILTER (WHERE e.kind = 'bill_payment'), 0)::bigint AS "gross!",
                  count(*) FILTER (WHERE e.kind IN ('refund', 'void')) AS "refunds_count!",
                  coalesce(-sum(p.amount) FILTER (WHERE e.kind IN ('refund', 'void')), 0)::bigint AS "refunds!",
                  coalesce(sum(p.amount), 0)::bigint AS "net!"
           FROM postings p
           JOIN journal_entries e ON e.id = p.entry_id
           WHERE p.account_id = (SELECT ledger_account_id FROM merchants WHERE id = $1)
             AND p.created_at >= $2 AND p.created_at < $3"#,
        biller_id,
        day.from,
        day.until,
    )
    .fetch_one(conn)
    .await?;
    Ok(BillerSettlement {
        date: day.date,
        payments: sums.payments,
        gross: sums.gross,
        refunds_count: sums.refunds_count,
        refunds: sums.refunds,
        net: sums.net,
    })
}

const CSV_HEADER: &str = "time,kind,bill_reference,bill_code,amount,net\n";

/// The settlement's lines: every movement of the day, oldest first, streamed from the
/// transaction (however many there are, in bounded memory), then the totals.
fn settlement_lines(
    tx: Transaction<'static, Postgres>,
    biller_id: Uuid,
    day: DaySpan,
    settlement: BillerSettlement,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    csv::streamed("settlement", move |lines| async move {
        send_lines(tx, biller_id, &day, &settlement, &lines).await
    })
}

/// Sends the lines; stops quietly when the client has gone.
async fn send_lines(
    mut tx: Transaction<'static, Postgres>,
    biller_id: Uuid,
    day: &DaySpan,
    settlement: &BillerSettlement,
    lines: &csv::LineSender,
) -> Result<(), sqlx::Error> {
    if lines.send(Ok(CSV_HEADER.to_owned())).await.is_err() {
        return Ok(());
    }
    let mut rows = sqlx::query_as!(
        Movement,
        r#"SELECT p.id AS "posting_id!", e.id AS "entry_id!",
                  CASE e.kind WHEN 'bill_payment' THEN 'payment' ELSE e.kind END AS "kind!",
                  b.reference AS "bill_reference?", b.code AS "bill_code?",
                  p.amount AS "amount!", p.created_at AS "at!"
           FROM postings p
           JOIN journal_entries e ON e.id = p.entry_id
           LEFT JOIN bills b ON b.code = e.reference AND b.biller_id = $1
           WHERE p.account_id = (SELECT ledger_account_id FROM merchants WHERE id = $1)
             AND p.created_at >= $2 AND p.created_at < $3
           ORDER BY p.created_at, p.id"#,
        biller_id,
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

/// One movement. The bill's reference is the biller's own text, so it goes through
/// [`csv::text`] like every text cell; amounts stay numbers (a refund's net is negative).
fn csv_line(row: &Movement) -> String {
    let time = row
        .at
        .with_timezone(&vietnam())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    csv::line([
        csv::text(&time),
        csv::text(&row.kind),
        csv::text(row.bill_reference.as_deref().unwrap_or_default()),
        csv::text(row.bill_code.as_deref().unwrap_or_default()),
        row.amount.abs().to_string().into(),
        row.amount.to_string().into(),
    ])
}

/// The totals under the columns they add up: the amount column holds gross − refunds, the net
/// column the day's net.
fn total_line(settlement: &BillerSettlement) -> String {
    format!(
        "total,payments={} refunds={},,,{},{}\n",
        settlement.payments,
        settlement.refunds_count,
        settlement.gross - settlement.refunds,
        settlement.net
    )
}
