//! Refunds: partial or full, several per order, their total never above the amount paid even
//! when requests race (the order row is locked), and only from what the merchant actually has
//! (its balance plus credits not folded yet). The fee is not returned. The citizen's wallet is
//! credited and sees a `refund` movement; the merchant gets `refund.succeeded`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::MerchantCaller;
use super::orders::{self, Order, OrderStatus, announce, find_by_ref, lock_status};
use crate::domain::Money;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Path};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{self, EntryKind, NewEntry, Posting};
use crate::state::AppState;
use crate::wallet;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_refund))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundRequest {
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// At most 200 characters once trimmed.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reason: String,
}

/// Refund part or all of a paid order to the citizen's wallet. Needs `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/merchant/orders/{order_ref}/refunds", tag = "merchants", security(("merchant_key" = [])),
    params(("order_ref" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = RefundRequest,
    responses(
        (status = 201, body = Order, description = "The order with its refunds"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`order_not_paid`, `refund_exceeds_refundable`, `insufficient_merchant_balance`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_refund(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(order_ref): Path<String>,
    request: Idempotent<RefundRequest>,
) -> Response {
    let merchant_id = caller.merchant_id;
    request
        .run(&state.db, merchant_id, move |conn, body| {
            Box::pin(async move {
                let order = refund(conn, merchant_id, &order_ref, body).await?;
                Answer::of(StatusCode::CREATED, &order)
            })
        })
        .await
}

async fn refund(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    order_ref: &str,
    request: RefundRequest,
) -> ApiResult<Order> {
    let (amount, reason) = checked(&request)?;
    let order_id = find_by_ref(conn, merchant_id, order_ref).await?;
    if lock_status(conn, order_id).await? != OrderStatus::Paid {
        return Err(ApiError::new(ErrorCode::OrderNotPaid));
    }
    let order = sqlx::query!(
        r#"SELECT o.amount - o.amount_refunded AS "refundable!", o.paid_by AS "paid_by!", m.ledger_account_id, m.name
           FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE o.id = $1"#,
        order_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    if amount.dong() > order.refundable {
        return Err(ApiError::new(ErrorCode::RefundExceedsRefundable)
            .with_extra("amount_refundable", order.refundable));
    }
    let wallet_account = wallet::ledger_account(conn, order.paid_by).await?;
    let entry = NewEntry {
        kind: EntryKind::Refund,
        reference: order_id.to_string(),
        note: Some(reason.clone()).filter(|r| !r.is_empty()),
        created_by: None,
        postings: vec![
            Posting {
                account_id: order.ledger_account_id,
                amount: -amount.dong(),
                counterparty: None,
            },
            Posting {
                account_id: wallet_account,
                amount: amount.dong(),
                counterparty: Some(order.name),
            },
        ],
    };
    let posted = ledger::post(conn, entry)
        .await
        .map_err(|error| error.answered_as(ErrorCode::InsufficientMerchantBalance))?;
    record_refund(conn, order_id, amount, &reason, posted.entry_id).await?;
    let order = orders::view(conn, order_id).await?;
    announce(conn, merchant_id, "refund.succeeded", &order).await?;
    Ok(order)
}

/// The amount and the trimmed reason, once both passed their checks.
fn checked(request: &RefundRequest) -> ApiResult<(Money, String)> {
    let reason = request.reason.trim().to_owned();
    let mut checks = FieldChecks::new();
    let amount = checks.parse(
        request.amount.if_payable(),
        "amount",
        Message::AmountNotPayable,
    );
    let amount = checks
        .check(
            reason.chars().count() <= 200,
            "reason",
            Message::TextLength { min: 0, max: 200 },
        )
        .finish_with(amount)?;
    Ok((amount, reason))
}

/// The order's refunded total grows by the refund, which gets its own row.
async fn record_refund(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount: Money,
    reason: &str,
    entry_id: Uuid,
) -> Result<(), sqlx::Error> {
    let refund_id = Uuid::new_v4();
    sqlx::query!(
        "UPDATE orders SET amount_refunded = amount_refunded + $2 WHERE id = $1",
        order_id,
        amount.dong()
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO refunds (id, order_id, amount, reason, entry_id) VALUES ($1, $2, $3, $4, $5)",
        refund_id,
        order_id,
        amount.dong(),
        reason,
        entry_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
