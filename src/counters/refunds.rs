//! Cash refunds: a dossier refused, withdrawn or rejected after its fee was paid in cash owes
//! that cash back, and only a counter can pay it: out of the drawer of an open shift, recorded
//! in the shift (its report subtracts it from the expected cash).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Officer, bill_at_counter, hold_open_shift};
use crate::bills::pay::{CashRefund, refund_in_cash};
use crate::http::ApiResult;
use crate::http::error::Problem;
use crate::idempotency::{Answer, Idempotent};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(refund_cash))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashRefundRequest {
    #[schema(min_length = 1, max_length = 32)]
    pub bill_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CounterRefund {
    pub id: Uuid,
    pub shift_id: Uuid,
    pub bill_id: Uuid,
    pub bill_code: String,
    /// Paid out of the drawer, in đồng.
    pub amount: i64,
    pub created_at: DateTime<Utc>,
}

/// Pay back in cash the fee of a dossier closed after it was paid in cash. Needs
/// `Idempotency-Key` and an open shift.
#[utoipa::path(post, path = "/v1/counter/refunds", tag = "counters", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)),
    request_body = CashRefundRequest,
    responses(
        (status = 201, body = CounterRefund),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`no_open_shift`, `no_refund_owed`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn refund_cash(
    State(state): State<AppState>,
    officer: Officer,
    request: Idempotent<CashRefundRequest>,
) -> Response {
    let caller = officer.account_id;
    request
        .run(&state.db, caller, move |conn, body| {
            Box::pin(async move {
                let refund = pay_out(conn, &officer, &body.bill_code).await?;
                Answer::of(StatusCode::CREATED, &refund)
            })
        })
        .await
}

async fn pay_out(
    conn: &mut PgConnection,
    officer: &Officer,
    bill_code: &str,
) -> ApiResult<CounterRefund> {
    let bill = bill_at_counter(conn, officer, bill_code.trim()).await?;
    let shift = hold_open_shift(conn, officer).await?;
    let refund = CashRefund {
        bill_id: bill.id,
        drawer_account: shift.drawer_account,
        officer: officer.account_id,
    };
    let refunded = refund_in_cash(conn, &refund).await?;
    let id = Uuid::new_v4();
    let created_at = sqlx::query_scalar!(
        "INSERT INTO counter_refunds (id, shift_id, bill_id, amount, entry_id) VALUES ($1, $2, $3, $4, $5)
         RETURNING created_at",
        id,
        shift.id,
        bill.id,
        refunded.amount,
        refunded.entry_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(CounterRefund {
        id,
        shift_id: shift.id,
        bill_id: bill.id,
        bill_code: bill.code,
        amount: refunded.amount,
        created_at,
    })
}
