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
    self, NewOrder, Order, OrderRow, OrderStatus, announce, refuse_unless_pending,
};
use super::qr::{self, MerchantInfo, Presented};
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::domain::Money;
use crate::http::error::Problem;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{EntryKind, Posting};
use crate::state::AppState;
use crate::wallet::pin::{self, PinChecked};
use crate::wallet::{self, Debit, LimitCategory};

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
    let pin_check = match pin::guard(state.wallet.pepper(), &headers, payer) {
        Ok(guard) => guard,
        Err(refusal) => return refusal.into_response(),
    };
    request
        .run_guarded(&state.db, payer, pin_check, move |conn, _, checked| {
            Box::pin(async move {
                let order = pay_scanned(conn, &checked, &code).await?;
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

/// The merchant a payment goes to, read once, with the account its fee goes to.
struct Payee {
    id: Uuid,
    code: String,
    name: String,
    category_code: String,
    city: String,
    ledger_account_id: Uuid,
    fee_rate: Decimal,
    limit_category: LimitCategory,
    fee_account: Uuid,
}

/// Pays the pending order `code` from the wallet `checked` found: the order is locked and
/// read with its merchant in one statement, and answered from what the payment wrote.
async fn pay_scanned(
    conn: &mut PgConnection,
    checked: &PinChecked,
    code: &str,
) -> ApiResult<Order> {
    let row = sqlx::query!(
        r#"SELECT o.id, o.code, o.order_ref, o.amount, o.description, o.expires_at, o.created_at,
                  CASE WHEN o.status = 'pending' AND o.expires_at <= now() THEN 'expired' ELSE o.status END AS "status!: OrderStatus",
                  m.id AS merchant_id, m.code AS merchant_code, m.name AS merchant_name, m.category_code, m.city,
                  m.ledger_account_id, m.fee_rate, m.limit_category AS "limit_category: LimitCategory",
                  m.disabled_at IS NOT NULL AS "disabled!",
                  (SELECT id FROM ledger_accounts WHERE code = 'system_fee') AS "fee_account!"
           FROM orders o JOIN merchants m ON m.id = o.merchant_id
           WHERE o.code = $1 FOR UPDATE OF o"#,
        code,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    refuse_unless_pending(row.status)?;
    if row.disabled {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    let payee = Payee {
        id: row.merchant_id,
        code: row.merchant_code,
        name: row.merchant_name,
        category_code: row.category_code,
        city: row.city,
        ledger_account_id: row.ledger_account_id,
        fee_rate: row.fee_rate,
        limit_category: row.limit_category,
        fee_account: row.fee_account,
    };
    let fee = debit_payer(conn, checked, &payee, row.id, row.amount, &row.order_ref).await?;
    let paid_at = sqlx::query_scalar!(
        r#"UPDATE orders SET status = 'paid', paid_at = now(), paid_by = $2, fee = $3 WHERE id = $1
           RETURNING paid_at AS "paid_at!""#,
        row.id,
        checked.verified_wallet()?.account_id(),
        fee,
    )
    .fetch_one(&mut *conn)
    .await?;
    let paid = payee.paid_row(PaidOrder {
        id: row.id,
        code: row.code,
        order_ref: row.order_ref,
        amount: row.amount,
        description: row.description,
        expires_at: row.expires_at,
        paid_at,
        created_at: row.created_at,
    });
    announce_paid(conn, &payee, paid).await
}

impl Payee {
    /// The merchant with code `code`, unless disabled.
    async fn find(conn: &mut PgConnection, code: &str) -> ApiResult<Payee> {
        let payee = sqlx::query_as!(
            Payee,
            r#"SELECT id, code, name, category_code, city, ledger_account_id, fee_rate,
                      limit_category AS "limit_category: LimitCategory",
                      (SELECT id FROM ledger_accounts WHERE code = 'system_fee') AS "fee_account!"
               FROM merchants WHERE code = $1 AND role = 'merchant' AND disabled_at IS NULL"#,
            code,
        )
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
        Ok(payee)
    }

    /// The row of an order this payment has just paid to this merchant.
    fn paid_row(&self, paid: PaidOrder) -> OrderRow {
        OrderRow {
            id: paid.id,
            code: paid.code,
            order_ref: paid.order_ref,
            merchant_code: self.code.clone(),
            merchant_name: self.name.clone(),
            category_code: self.category_code.clone(),
            city: self.city.clone(),
            amount: paid.amount,
            description: paid.description,
            status: OrderStatus::Paid,
            // Refunds come after the payment.
            amount_refunded: 0,
            expires_at: paid.expires_at,
            paid_at: Some(paid.paid_at),
            created_at: paid.created_at,
        }
    }
}

/// What the paying transaction wrote or locked of an order, so it is not read back.
struct PaidOrder {
    id: Uuid,
    code: String,
    order_ref: String,
    amount: i64,
    description: String,
    expires_at: DateTime<Utc>,
    paid_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

/// Debits the payer for `amount`: to the merchant less its fee, the fee to the fee account.
/// Answers the fee.
async fn debit_payer(
    conn: &mut PgConnection,
    checked: &PinChecked,
    payee: &Payee,
    order_id: Uuid,
    amount: i64,
    order_ref: &str,
) -> ApiResult<i64> {
    let payer = checked.verified_wallet()?;
    let fee = fee(amount, payee.fee_rate);
    let mut credits = vec![Posting {
        account_id: payee.ledger_account_id,
        amount: amount - fee,
        counterparty: None,
    }];
    if fee > 0 {
        credits.push(Posting {
            account_id: payee.fee_account,
            amount: fee,
            counterparty: None,
        });
    }
    let debit = Debit {
        payer,
        amount: Money::from_stored(amount),
        limit_category: payee.limit_category,
        kind: EntryKind::Payment,
        reference: order_id.to_string(),
        note: Some(order_ref.to_owned()),
        payee: Some(payee.name.clone()),
        credits,
    };
    wallet::debit(conn, debit).await?;
    Ok(fee)
}

/// Writes `payment.succeeded` for the order just paid and answers it. A new payment has no
/// refunds yet.
async fn announce_paid(conn: &mut PgConnection, payee: &Payee, paid: OrderRow) -> ApiResult<Order> {
    let order = paid.into_order(Vec::new());
    announce(conn, payee.id, "payment.succeeded", &order).await?;
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
        "SELECT code, name, category_code, city FROM merchants WHERE code = $1 AND role = 'merchant' AND disabled_at IS NULL",
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
    let pin_check = match pin::guard(state.wallet.pepper(), &headers, payer) {
        Ok(guard) => guard,
        Err(refusal) => return refusal.into_response(),
    };
    request
        .run_guarded(&state.db, payer, pin_check, move |conn, body, checked| {
            Box::pin(async move {
                let order = pay_static(conn, &checked, &code, body).await?;
                answer(StatusCode::CREATED, &order)
            })
        })
        .await
}

/// Creates the order of a static-code payment already paid: one row written once.
async fn pay_static(
    conn: &mut PgConnection,
    checked: &PinChecked,
    code: &str,
    request: PayMerchantRequest,
) -> ApiResult<Order> {
    let payee = Payee::find(conn, code).await?;
    let order = NewOrder {
        order_ref: format!("static-{}", Uuid::new_v4()),
        amount: request.amount,
        description: request.note,
        expires_in: None,
    };
    let expires_in = orders::checked_expiry(&order)?;
    let request_hash = orders::request_hash(&order)?;
    let id = Uuid::new_v4();
    let amount = order.amount.dong();
    let fee = debit_payer(conn, checked, &payee, id, amount, &order.order_ref).await?;
    let written = sqlx::query!(
        r#"INSERT INTO orders (id, merchant_id, order_ref, code, amount, description, request_hash, expires_at,
                               status, paid_at, paid_by, fee)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8), 'paid', now(), $9, $10)
           RETURNING code, expires_at, paid_at AS "paid_at!", created_at"#,
        id,
        payee.id,
        order.order_ref,
        orders::new_code(),
        amount,
        order.description,
        request_hash.as_slice(),
        expires_in as f64,
        checked.verified_wallet()?.account_id(),
        fee,
    )
    .fetch_one(&mut *conn)
    .await?;
    let paid = payee.paid_row(PaidOrder {
        id,
        code: written.code,
        order_ref: order.order_ref,
        amount,
        description: order.description,
        expires_at: written.expires_at,
        paid_at: written.paid_at,
        created_at: written.created_at,
    });
    announce_paid(conn, &payee, paid).await
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
