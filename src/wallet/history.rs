//! Every movement of a wallet, newest first, and the CSV statement of a period. Pagination is
//! keyed by the posting's id: a wallet's postings are written under its row lock, so their ids
//! grow in commit order and a page never skips or repeats a movement, even while new ones
//! arrive (they land before the first page).

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::ensure;
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiResult, Json, Query, csv, dates};
use crate::state::AppState;
use crate::vietnam_time::{day_start, vietnam};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_transactions))
        .routes(routes!(statement_csv))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    Topup,
    Withdrawal,
    TransferIn,
    TransferOut,
    Payment,
    Refund,
    BillPayment,
    /// Money put in by an admin outside any provider (development and demo).
    Funding,
    Adjustment,
}

impl TransactionKind {
    fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Topup => "topup",
            TransactionKind::Withdrawal => "withdrawal",
            TransactionKind::TransferIn => "transfer_in",
            TransactionKind::TransferOut => "transfer_out",
            TransactionKind::Payment => "payment",
            TransactionKind::Refund => "refund",
            TransactionKind::BillPayment => "bill_payment",
            TransactionKind::Funding => "funding",
            TransactionKind::Adjustment => "adjustment",
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WalletTransaction {
    /// The journal entry this movement is part of.
    pub id: Uuid,
    pub kind: String,
    /// `in` or `out`.
    pub direction: String,
    /// In đồng, always positive; `direction` says which way.
    pub amount: i64,
    pub balance_after: i64,
    pub counterparty: Option<String>,
    pub reference: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    pub kind: Option<TransactionKind>,
    /// First day included, Vietnam time (YYYY-MM-DD), in the years 2000 to 2100.
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    /// Last day included, Vietnam time (YYYY-MM-DD), in the years 2000 to 2100.
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
}

/// A half-open span of instants; `None` leaves that side open.
type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn period(from: Option<NaiveDate>, to: Option<NaiveDate>) -> ApiResult<Span> {
    let ordered = match (from, to) {
        (Some(from), Some(to)) => from <= to,
        _ => true,
    };
    FieldChecks::new()
        .check(ordered, "to", Message::PeriodReversed)
        .finish()?;
    Ok((
        from.map(day_start),
        to.and_then(|d| d.succ_opt()).map(day_start),
    ))
}

struct Row {
    posting_id: i64,
    entry_id: Uuid,
    kind: String,
    amount: i64,
    balance_after: Option<i64>,
    counterparty: Option<String>,
    reference: String,
    note: Option<String>,
    created_at: DateTime<Utc>,
}

impl Row {
    fn into_transaction(self) -> WalletTransaction {
        WalletTransaction {
            id: self.entry_id,
            kind: self.kind,
            direction: if self.amount < 0 { "out" } else { "in" }.to_owned(),
            amount: self.amount.abs(),
            balance_after: self.balance_after.unwrap_or_default(),
            counterparty: self.counterparty,
            reference: self.reference,
            note: self.note,
            created_at: self.created_at,
        }
    }
}

/// The wallet's movements, newest first.
#[utoipa::path(get, path = "/v1/wallet/transactions", tag = "wallet", security(("bearer" = [])),
    operation_id = "list_wallet_transactions",
    params(HistoryFilter, PageQuery),
    responses(
        (status = 200, body = Page<WalletTransaction>),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_transactions(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Query(filter): Query<HistoryFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<WalletTransaction>>> {
    let limit = page.limit()?;
    let before: Option<i64> = page.after()?;
    let (from, until) = period(filter.from, filter.to)?;
    let mut conn = state.db.acquire().await?;
    let wallet = ensure(&mut conn, caller.account_id).await?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT posting_id AS "posting_id!", entry_id AS "entry_id!", kind AS "kind!", amount AS "amount!",
                  balance_after, counterparty, reference AS "reference!", note, created_at AS "created_at!"
           FROM wallet_movements
           WHERE account_id = $1
             AND ($2::text IS NULL OR kind = $2)
             AND ($3::timestamptz IS NULL OR created_at >= $3)
             AND ($4::timestamptz IS NULL OR created_at < $4)
             AND ($5::bigint IS NULL OR posting_id < $5)
           ORDER BY posting_id DESC
           LIMIT $6"#,
        wallet.ledger_account_id,
        filter.kind.map(TransactionKind::as_str),
        from,
        until,
        before,
        limit + 1,
    )
    .fetch_all(&mut *conn)
    .await?;
    let page = Page::from_rows(rows, limit, |row| row.posting_id);
    Ok(Json(Page {
        data: page.data.into_iter().map(Row::into_transaction).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementPeriod {
    /// First day included, Vietnam time (YYYY-MM-DD), in the years 2000 to 2100.
    #[serde(deserialize_with = "dates::date")]
    #[param(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last day included, Vietnam time (YYYY-MM-DD), in the years 2000 to 2100.
    #[serde(deserialize_with = "dates::date")]
    #[param(value_type = String, format = Date)]
    pub to: NaiveDate,
}

/// A CSV statement of the period (UTF-8): opening balance, every movement oldest first, closing
/// balance. Streamed, so a long period costs no memory.
#[utoipa::path(get, path = "/v1/wallet/statement.csv", tag = "wallet", security(("bearer" = [])),
    params(StatementPeriod),
    responses(
        (status = 200, content_type = "text/csv", description = "date,kind,direction,amount,balance_after,counterparty,reference,note"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn statement_csv(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Query(period_query): Query<StatementPeriod>,
) -> ApiResult<Response> {
    let (from, until) = period(Some(period_query.from), Some(period_query.to))?;
    let (from, until) = (from.expect("given"), until.expect("given"));
    let mut conn = state.db.acquire().await?;
    let wallet = ensure(&mut conn, caller.account_id).await?;
    let opening = sqlx::query_scalar!(
        "SELECT balance_after FROM postings
         WHERE account_id = $1 AND balance_after IS NOT NULL AND created_at < $2
         ORDER BY id DESC LIMIT 1",
        wallet.ledger_account_id,
        from,
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten()
    .unwrap_or(0);
    drop(conn);
    let body = Body::from_stream(statement_lines(
        state.db.clone(),
        wallet.ledger_account_id,
        from,
        until,
        opening,
    ));
    let filename = format!(
        "attachment; filename=\"statement-{}-{}.csv\"",
        period_query.from, period_query.to
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        body,
    )
        .into_response())
}

const CSV_HEADER: &str = "date,kind,direction,amount,balance_after,counterparty,reference,note\n";

/// The statement's lines, produced by a task that reads the movements as a stream.
fn statement_lines(
    db: PgPool,
    account_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    opening: i64,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    let (lines, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        let _ = lines
            .send(Ok(format!("{CSV_HEADER},opening_balance,,,{opening},,,\n")))
            .await;
        let mut closing = opening;
        let mut rows = sqlx::query_as!(
            Row,
            r#"SELECT posting_id AS "posting_id!", entry_id AS "entry_id!", kind AS "kind!", amount AS "amount!",
                      balance_after, counterparty, reference AS "reference!", note, created_at AS "created_at!"
               FROM wallet_movements
               WHERE account_id = $1 AND created_at >= $2 AND created_at < $3
               ORDER BY posting_id"#,
            account_id,
            from,
            until,
        )
        .fetch(&db);
        while let Some(row) = rows.next().await {
            let line = match row {
                Ok(row) => {
                    closing = row.balance_after.unwrap_or(closing);
                    Ok(csv_line(&row.into_transaction()))
                }
                Err(error) => {
                    tracing::error!(%error, "statement stream failed");
                    Err(std::io::Error::other("statement interrupted"))
                }
            };
            let failed = line.is_err();
            if lines.send(line).await.is_err() || failed {
                return;
            }
        }
        let _ = lines
            .send(Ok(format!(",closing_balance,,,{closing},,,\n")))
            .await;
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|line| (line, receiver))
    })
}

/// One movement. The counterparty's name and the note are written by other people, so every
/// text cell goes through [`csv::text`]; amounts and balances stay numbers.
fn csv_line(t: &WalletTransaction) -> String {
    let date = t
        .created_at
        .with_timezone(&vietnam())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    csv::line([
        csv::text(&date),
        csv::text(&t.kind),
        csv::text(&t.direction),
        t.amount.to_string().into(),
        t.balance_after.to_string().into(),
        csv::text(t.counterparty.as_deref().unwrap_or_default()),
        csv::text(&t.reference),
        csv::text(t.note.as_deref().unwrap_or_default()),
    ])
}
