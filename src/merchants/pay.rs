//! Citizens pay merchants from their wallets: a scanned order (dynamic QR) or a merchant's
//! printed code with an amount typed in (static QR, which creates and pays an order in one
//! step). Paying is one transaction: wallet debited within its limit, merchant credited with the
//! amount less its fee, the fee to the system fee account, the order marked paid, and
//! `payment.succeeded` in the outbox.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::orders::{
    self, NewOrder, Order, OrderStatus, announce, lock_status, refuse_unless_pending,
};
use super::qr::{self, MerchantInfo, Presented};
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::domain::Money;
use crate::http::error::Problem;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{self, EntryKind, Posting, SystemAccount};
use crate::state::AppState;
use crate::wallet::{self, Debit, LimitCategory, pin};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scanned_order))
        .routes(routes!(pay_order))
        .routes(routes!(scanned_merchant))
        .routes(routes!(pay_merchant))
}

/// The merchant's fee on `amount`, rounded once to whole đồng, half away from zero.
pub fn fee(amount: i64, rate: Decimal) -> i64 {
    (Decimal::from(amount) * rate)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .expect("a fee of at most a tenth of an amount fits")
}

/// What the app shows after scanning an order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayableOrder {
    pub code: String,
    pub merchant_code: String,
    pub merchant_name: String,
    #[schema(value_type = i64)]
    pub amount: Money,
    pub description: String,
    #[schema(value_type = String)]
    pub status: OrderStatus,
    pub expires_at: DateTime<Utc>,
}

/// An order as the app shows it after scanning its QR code.
#[utoipa::path(get, path = "/v1/orders/{code}", tag = "payments", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = PayableOrder), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn scanned_order(
    State(state): State<AppState>,
    _caller: Caller<Citizens>,
    Path(code): Path<String>,
) -> ApiResult<Json<PayableOrder>> {
    let order = sqlx::query_as!(
        PayableOrder,
        r#"SELECT o.code, m.code AS merchant_code, m.name AS merchant_name, o.amount AS "amount: Money", o.description,
                  CASE WHEN o.status = 'pending' AND o.expires_at <= now() THEN 'expired' ELSE o.status END AS "status!: OrderStatus",
                  o.expires_at
           FROM orders o JOIN merchants m ON m.id = o.merchant_id
           WHERE o.code = $1 AND m.disabled_at IS NULL"#,
        code,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(order))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PayOrderRequest {}

/// Pay a scanned order from the wallet. Needs `Idempotency-Key` and `X-Payment-Pin`.
#[utoipa::path(post, path = "/v1/orders/{code}/pay", tag = "payments", security(("bearer" = [])),
    params(("code" = String, Path), ("Idempotency-Key" = String, Header), ("X-Payment-Pin" = String, Header)),
    responses(
        (status = 200, body = Order, description = "Paid"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`order_expired`, `order_cancelled`, `already_paid`, `insufficient_funds`, `limit_exceeded`"),
    ))]
async fn pay_order(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(code): Path<String>,
    headers: HeaderMap,
    request: Idempotent<PayOrderRequest>,
) -> Response {
    let payer = caller.account_id;
    if let Err(refusal) = pin::check_header(&state.db, state.wallet.pepper(), &headers, payer).await
    {
        return refusal.into_response();
    }
    request
        .run(&state.db, payer, move |conn, _| {
            Box::pin(async move {
                let order_id = sqlx::query_scalar!("SELECT id FROM orders WHERE code = $1", code)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
                let order = pay(conn, payer, order_id).await?;
                answer(StatusCode::OK, &order)
            })
        })
        .await
}

fn answer(status: StatusCode, order: &Order) -> ApiResult<Answer> {
    Ok(Answer {
        status,
        body: serde_json::to_value(order).map_err(ApiError::internal)?,
    })
}

/// Pays a locked, pending order from `payer`'s wallet; see the module docs.
async fn pay(conn: &mut PgConnection, payer: Uuid, order_id: Uuid) -> ApiResult<Order> {
    refuse_unless_pending(lock_status(conn, order_id).await?)?;
    let merchant = sqlx::query!(
        r#"SELECT m.id, m.name, m.ledger_account_id, m.fee_rate, m.limit_category AS "limit_category: LimitCategory",
                  m.disabled_at IS NOT NULL AS "disabled!", o.amount, o.order_ref
           FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE o.id = $1"#,
        order_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    if merchant.disabled {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    let payer_wallet = wallet::verified(conn, payer).await?;
    let amount = merchant.amount;
    let fee = fee(amount, merchant.fee_rate);
    let mut credits = vec![Posting {
        account_id: merchant.ledger_account_id,
        amount: amount - fee,
        counterparty: None,
    }];
    if fee > 0 {
        let fee_account = ledger::system_account(conn, SystemAccount::SystemFee).await?;
        credits.push(Posting {
            account_id: fee_account,
            amount: fee,
            counterparty: None,
        });
    }
    let debit = Debit {
        payer: payer_wallet,
        amount: Money::from_stored(amount),
        limit_category: merchant.limit_category,
        kind: EntryKind::Payment,
        reference: order_id.to_string(),
        note: Some(merchant.order_ref),
        payee: Some(merchant.name),
        credits,
    };
    wallet::debit(conn, debit).await?;
    sqlx::query!(
        "UPDATE orders SET status = 'paid', paid_at = now(), paid_by = $2, fee = $3 WHERE id = $1",
        order_id,
        payer,
        fee,
    )
    .execute(&mut *conn)
    .await?;
    let order = orders::view(conn, order_id).await?;
    announce(conn, merchant.id, "payment.succeeded", &order).await?;
    Ok(order)
}

/// What the app shows after scanning a merchant's printed (static) code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayableMerchant {
    pub code: String,
    pub name: String,
    pub category_code: String,
    pub city: String,
    /// The static payload printed at the counter.
    pub qr_payload: String,
}

/// A merchant as the app shows it after scanning its static QR code.
#[utoipa::path(get, path = "/v1/merchants/{code}", tag = "payments", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = PayableMerchant), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn scanned_merchant(
    State(state): State<AppState>,
    _caller: Caller<Citizens>,
    Path(code): Path<String>,
) -> ApiResult<Json<PayableMerchant>> {
    let merchant = sqlx::query!(
        "SELECT code, name, category_code, city FROM merchants WHERE code = $1 AND disabled_at IS NULL",
        code
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let qr_payload = qr::payload(
        &Presented::Merchant {
            code: &merchant.code,
        },
        &MerchantInfo {
            category_code: &merchant.category_code,
            name: &merchant.name,
            city: &merchant.city,
        },
    );
    Ok(Json(PayableMerchant {
        code: merchant.code,
        name: merchant.name,
        category_code: merchant.category_code,
        city: merchant.city,
        qr_payload,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PayMerchantRequest {
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// At most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub note: String,
}

/// Pay a merchant's static code: creates an order (with a generated `order_ref` the merchant can
/// refund like any other) and pays it at once.
#[utoipa::path(post, path = "/v1/merchants/{code}/pay", tag = "payments", security(("bearer" = [])),
    params(("code" = String, Path), ("Idempotency-Key" = String, Header), ("X-Payment-Pin" = String, Header)),
    request_body = PayMerchantRequest,
    responses(
        (status = 201, body = Order),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`insufficient_funds`, `limit_exceeded`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn pay_merchant(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(code): Path<String>,
    headers: HeaderMap,
    request: Idempotent<PayMerchantRequest>,
) -> Response {
    let payer = caller.account_id;
    if let Err(refusal) = pin::check_header(&state.db, state.wallet.pepper(), &headers, payer).await
    {
        return refusal.into_response();
    }
    request
        .run(&state.db, payer, move |conn, body| {
            Box::pin(async move {
                let merchant_id = sqlx::query_scalar!(
                    "SELECT id FROM merchants WHERE code = $1 AND disabled_at IS NULL",
                    code
                )
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
                let order = NewOrder {
                    order_ref: format!("static-{}", Uuid::new_v4()),
                    amount: body.amount,
                    description: body.note,
                    expires_in: None,
                };
                let (_, order_id) = orders::create(conn, merchant_id, &order).await?;
                let order = pay(conn, payer, order_id).await?;
                answer(StatusCode::CREATED, &order)
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::fee;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    #[test]
    fn the_fee_is_rounded_once_half_away_from_zero() {
        let rate = Decimal::from_str("0.005").unwrap();
        assert_eq!(fee(100_000, rate), 500);
        assert_eq!(fee(100, rate), 1); // 0.5 rounds up
        assert_eq!(fee(99, rate), 0); // 0.495 rounds down
        assert_eq!(fee(300, rate), 2); // 1.5 rounds up
        assert_eq!(fee(12_345, Decimal::ZERO), 0);
    }
}
