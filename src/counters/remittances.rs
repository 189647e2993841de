//! Remittance: a unit's cash of a day, by biller, from the shifts that opened that day and have
//! closed, to deposit at the State Treasury; each deposit recorded with its Treasury slip as a
//! ledger entry from the unit's cash to treasury clearing. A day with a shift still open is
//! reported incomplete (its cash is still in a drawer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Supervisors;
use crate::bills::BillerRef;
use crate::http::dates::{self, DaySpan};
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Query};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{self, EntryKind, NewEntry, Posting, SystemAccount};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(day_cash, record_deposit))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BillerCash {
    pub biller: BillerRef,
    /// Cash collected for it − cash refunded, in đồng.
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deposit {
    pub id: Uuid,
    pub unit_code: String,
    pub date: NaiveDate,
    pub amount: i64,
    pub slip_number: String,
    pub recorded_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A unit's cash of a day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DayCash {
    pub unit_code: String,
    pub date: NaiveDate,
    /// False while a shift of the day is still open.
    pub complete: bool,
    pub open_shifts: i64,
    /// From the day's closed shifts.
    pub by_biller: Vec<BillerCash>,
    pub total: i64,
    pub deposited: i64,
    /// `total` − `deposited`: what is still to deposit.
    pub remaining: i64,
    pub deposits: Vec<Deposit>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The Vietnam-time day (YYYY-MM-DD; default today).
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<NaiveDate>,
    /// A unit of the caller's subtree (default: the caller's unit).
    pub unit: Option<String>,
}

/// The unit's cash of the day by biller, from closed shifts, and what was deposited.
#[utoipa::path(get, path = "/v1/counter/remittances", tag = "counters", security(("bearer" = [])),
    params(DayQuery),
    responses(
        (status = 200, body = DayCash),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn day_cash(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    Query(query): Query<DayQuery>,
) -> ApiResult<Json<DayCash>> {
    let unit = caller.unit_in_scope(&state.db, query.unit).await?;
    let day = DaySpan::of(query.date.unwrap_or_else(crate::bills::today))?;
    let mut conn = state.db.acquire().await?;
    Ok(Json(cash_of(&mut conn, &unit, &day).await?))
}

async fn cash_of(conn: &mut PgConnection, unit: &str, day: &DaySpan) -> ApiResult<DayCash> {
    let open_shifts = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM counter_shifts
           WHERE unit_code = $1 AND opened_at >= $2 AND opened_at < $3 AND status = 'open'"#,
        unit,
        day.from,
        day.until,
    )
    .fetch_one(&mut *conn)
    .await?;
    let by_biller = sqlx::query!(
        r#"WITH shifts AS (
               SELECT id FROM counter_shifts
               WHERE unit_code = $1 AND opened_at >= $2 AND opened_at < $3 AND status = 'closed'
           ), cash AS (
               SELECT c.bill_id, c.amount FROM counter_collections c
               WHERE c.shift_id IN (SELECT id FROM shifts) AND c.method = 'cash' AND c.status = 'completed'
               UNION ALL
               SELECT r.bill_id, -r.amount FROM counter_refunds r WHERE r.shift_id IN (SELECT id FROM shifts)
           )
           SELECT m.code, m.name, sum(cash.amount)::bigint AS "amount!"
           FROM cash JOIN bills b ON b.id = cash.bill_id JOIN merchants m ON m.id = b.biller_id
           GROUP BY m.code, m.name ORDER BY m.code"#,
        unit,
        day.from,
        day.until,
    )
    .fetch_all(&mut *conn)
    .await?;
    let deposits = sqlx::query_as!(
        Deposit,
        r#"SELECT id, unit_code, day AS date, amount, slip_number, recorded_by, created_at
           FROM counter_remittances WHERE unit_code = $1 AND day = $2 ORDER BY created_at, id"#,
        unit,
        day.date,
    )
    .fetch_all(&mut *conn)
    .await?;
    let by_biller: Vec<BillerCash> = by_biller
        .into_iter()
        .map(|row| BillerCash {
            biller: BillerRef {
                code: row.code,
                name: row.name,
            },
            amount: row.amount,
        })
        .collect();
    let total: i64 = by_biller.iter().map(|b| b.amount).sum();
    let deposited: i64 = deposits.iter().map(|d| d.amount).sum();
    Ok(DayCash {
        unit_code: unit.to_owned(),
        date: day.date,
        complete: open_shifts == 0,
        open_shifts,
        by_biller,
        total,
        deposited,
        remaining: total - deposited,
        deposits,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    /// The day whose cash this is (Vietnam time, YYYY-MM-DD).
    #[serde(deserialize_with = "dates::date")]
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// In đồng, at most the day's remaining cash.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: i64,
    /// The Treasury's deposit slip number (1 to 64 characters).
    #[serde(alias = "treasury_slip_number")]
    #[schema(min_length = 1, max_length = 64)]
    pub slip_number: String,
    /// Default: the caller's unit.
    pub unit_code: Option<String>,
}

/// Record a deposit of the day's cash at the State Treasury. Needs `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/counter/remittances", tag = "counters", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)),
    request_body = DepositRequest,
    responses(
        (status = 201, body = Deposit),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`remittance_exceeds_cash`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn record_deposit(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    request: Idempotent<DepositRequest>,
) -> Response {
    let unit = match caller
        .unit_in_scope(&state.db, request.body().unit_code.clone())
        .await
    {
        Ok(unit) => unit,
        Err(error) => return axum::response::IntoResponse::into_response(error),
    };
    let recorded_by = caller.account_id;
    request
        .run(&state.db, recorded_by, move |conn, body| {
            Box::pin(async move {
                let deposit = deposit(conn, &unit, recorded_by, &body).await?;
                Answer::of(StatusCode::CREATED, &deposit)
            })
        })
        .await
}

async fn deposit(
    conn: &mut PgConnection,
    unit: &str,
    recorded_by: Uuid,
    request: &DepositRequest,
) -> ApiResult<Deposit> {
    let slip = request.slip_number.trim();
    FieldChecks::new()
        .check(
            (1..=crate::domain::money::MAX_AMOUNT).contains(&request.amount),
            "amount",
            Message::AmountNotPayable,
        )
        .check(
            length_within(slip, 1, 64),
            "slip_number",
            Message::TextLength { min: 1, max: 64 },
        )
        .finish()?;
    let day = DaySpan::of(request.date)?;
    // Deposits of a unit take turns on its cash account, so two cannot both take the same cash.
    let unit_cash = ledger::unit_cash_account(conn, unit).await?;
    sqlx::query!(
        "SELECT id FROM ledger_accounts WHERE id = $1 FOR UPDATE",
        unit_cash
    )
    .fetch_one(&mut *conn)
    .await?;
    let cash = cash_of(conn, unit, &day).await?;
    if request.amount > cash.remaining {
        return Err(
            ApiError::new(ErrorCode::RemittanceExceedsCash).with_extra("remaining", cash.remaining)
        );
    }
    let treasury = ledger::system_account(conn, SystemAccount::TreasuryClearing).await?;
    let entry = ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::Remittance,
            reference: slip.to_owned(),
            note: Some(format!(
                "Nộp tiền mặt ngày {} vào Kho bạc Nhà nước",
                day.date
            )),
            created_by: Some(recorded_by),
            postings: vec![
                Posting {
                    account_id: unit_cash,
                    amount: request.amount,
                    counterparty: Some("Kho bạc Nhà nước".to_owned()),
                },
                Posting {
                    account_id: treasury,
                    amount: -request.amount,
                    counterparty: Some(unit.to_owned()),
                },
            ],
        },
    )
    .await
    .map_err(|e| ApiError::internal(format!("posting a Treasury deposit: {e:?}")))?;
    Ok(sqlx::query_as!(
        Deposit,
        r#"INSERT INTO counter_remittances (id, unit_code, day, amount, slip_number, entry_id, recorded_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id, unit_code, day AS date, amount, slip_number, recorded_by, created_at"#,
        Uuid::new_v4(),
        unit,
        day.date,
        request.amount,
        slip,
        entry.entry_id,
        recorded_by,
    )
    .fetch_one(conn)
    .await?)
}
