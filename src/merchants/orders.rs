//! Payment orders: a merchant creates one per sale (`order_ref` is the merchant's own, unique
//! per merchant; repeating it with the same body returns the same order), the citizen's app
//! scans its QR code and pays it. Pending orders expire on time; an expired or cancelled order
//! cannot be paid. State changes write their event to the outbox in the same transaction.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::MerchantCaller;
use super::qr::{self, MerchantInfo, Presented};
use crate::background::BackgroundTasks;
use crate::domain::Money;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::outbox::{self, Audience};
use crate::state::AppState;

pub const DEFAULT_EXPIRES_IN_SECS: i64 = 900;
const MAX_EXPIRES_IN_SECS: i64 = 7 * 24 * 3600;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

/// Where an order stands. A pending order past its `expires_at` reads as `expired` at once,
/// before the expirer writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewOrder {
    /// The merchant's own reference, unique per merchant: 1 to 64 characters, not all blank.
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    pub order_ref: String,
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// At most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// Seconds until the order expires (default 900): 60 to 604800 (7 days).
    #[schema(minimum = 60, maximum = 604_800)]
    pub expires_in: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refund {
    pub id: Uuid,
    #[schema(value_type = i64)]
    pub amount: Money,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// An order as the merchant API returns it (and as callbacks carry it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    /// What QR codes carry; at most 25 characters.
    pub code: String,
    pub order_ref: String,
    /// The merchant's code.
    pub merchant: String,
    #[schema(value_type = i64)]
    pub amount: Money,
    pub description: String,
    /// `pending`, `paid`, `expired` or `cancelled`.
    #[schema(value_type = String)]
    pub status: OrderStatus,
    #[schema(value_type = i64)]
    pub amount_refunded: Money,
    #[schema(value_type = i64)]
    pub amount_refundable: Money,
    pub qr_payload: String,
    pub deep_link: String,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub refunds: Vec<Refund>,
    pub created_at: DateTime<Utc>,
}

/// An order's row with its merchant's names, from which the merchant API's [`Order`] is made.
pub(super) struct OrderRow {
    pub id: Uuid,
    pub code: String,
    pub order_ref: String,
    pub merchant_code: String,
    pub merchant_name: String,
    pub category_code: String,
    pub city: String,
    pub amount: i64,
    pub description: String,
    pub status: OrderStatus,
    pub amount_refunded: i64,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The order by id, with its refunds, as the merchant sees it.
pub async fn view(conn: &mut PgConnection, order_id: Uuid) -> ApiResult<Order> {
    let row = sqlx::query_as!(
        OrderRow,
        r#"SELECT o.id, o.code, o.order_ref, m.code AS merchant_code, m.name AS merchant_name, m.category_code, m.city,
                  o.amount, o.description,
                  CASE WHEN o.status = 'pending' AND o.expires_at <= now() THEN 'expired' ELSE o.status END AS "status!: OrderStatus",
                  o.amount_refunded, o.expires_at, o.paid_at, o.created_at
           FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE o.id = $1"#,
        order_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let refunds = sqlx::query_as!(
        Refund,
        r#"SELECT id, amount AS "amount: Money", reason, created_at FROM refunds WHERE order_id = $1 ORDER BY created_at, id"#,
        order_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(row.into_order(refunds))
}

impl OrderRow {
    pub(super) fn into_order(self, refunds: Vec<Refund>) -> Order {
        let qr_payload = qr::payload(
            &Presented::Order {
                code: &self.code,
                amount: self.amount,
                purpose: &self.description,
            },
            &MerchantInfo {
                category_code: &self.category_code,
                name: &self.merchant_name,
                city: &self.city,
            },
        );
        let amount_refundable = if self.status == OrderStatus::Paid {
            Money::from_stored(self.amount - self.amount_refunded)
        } else {
            Money::ZERO
        };
        Order {
            id: self.id,
            deep_link: format!("civicpay://pay?code={}", self.code),
            code: self.code,
            order_ref: self.order_ref,
            merchant: self.merchant_code,
            amount: Money::from_stored(self.amount),
            description: self.description,
            status: self.status,
            amount_refunded: Money::from_stored(self.amount_refunded),
            amount_refundable,
            qr_payload,
            expires_at: self.expires_at,
            paid_at: self.paid_at,
            refunds,
            created_at: self.created_at,
        }
    }
}

/// A short, unambiguous order code: `OD` and 12 characters of Crockford base32.
pub(super) fn new_code() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 32] as char)
        .collect();
    format!("OD{tail}")
}

/// The order's fields checked, answering how many seconds it stays payable.
pub(super) fn checked_expiry(order: &NewOrder) -> ApiResult<i64> {
    let expires_in = order.expires_in.unwrap_or(DEFAULT_EXPIRES_IN_SECS);
    let ref_ok = !order.order_ref.trim().is_empty() && order.order_ref.chars().count() <= 64;
    FieldChecks::new()
        .check(ref_ok, "order_ref", Message::TextLength { min: 1, max: 64 })
        .check(
            order.amount.if_payable().is_some(),
            "amount",
            Message::AmountNotPayable,
        )
        .check(
            order.description.chars().count() <= 200,
            "description",
            Message::TextLength { min: 0, max: 200 },
        )
        .check(
            (60..=MAX_EXPIRES_IN_SECS).contains(&expires_in),
            "expires_in",
            Message::FieldOutOfRange {
                min: 60,
                max: MAX_EXPIRES_IN_SECS,
            },
        )
        .finish()?;
    Ok(expires_in)
}

/// What tells a repeat of the creating request from another request under its `order_ref`.
pub(super) fn request_hash(order: &NewOrder) -> ApiResult<[u8; 32]> {
    Ok(Sha256::digest(serde_json::to_vec(order).map_err(ApiError::internal)?).into())
}

/// Creates an order, or returns the one this `order_ref` already names if the request is the
/// same (`Ok((false, id))`); another request under the same reference is 409.
pub async fn create(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    order: &NewOrder,
) -> ApiResult<(bool, Uuid)> {
    let expires_in = checked_expiry(order)?;
    let request_hash = request_hash(order)?;
    let id = Uuid::new_v4();
    let inserted = sqlx::query_scalar!(
        "INSERT INTO orders (id, merchant_id, order_ref, code, amount, description, request_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
         ON CONFLICT (merchant_id, order_ref) DO NOTHING RETURNING id",
        id,
        merchant_id,
        order.order_ref,
        new_code(),
        order.amount.dong(),
        order.description,
        request_hash.as_slice(),
        expires_in as f64,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok((true, id));
    }
    let existing = sqlx::query!(
        "SELECT id, request_hash FROM orders WHERE merchant_id = $1 AND order_ref = $2",
        merchant_id,
        order.order_ref,
    )
    .fetch_one(&mut *conn)
    .await?;
    if existing.request_hash != request_hash {
        return Err(ApiError::new(ErrorCode::OrderRefConflict));
    }
    Ok((false, existing.id))
}

/// Create an order; a repeat of the same `order_ref` and body returns the existing one (200).
#[utoipa::path(post, path = "/v1/merchant/orders", tag = "merchants", security(("merchant_key" = [])),
    request_body = NewOrder,
    responses(
        (status = 201, body = Order),
        (status = 200, body = Order, description = "The same request again: the existing order"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`order_ref_conflict`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_order(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Json(order): Json<NewOrder>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    let mut conn = state.db.acquire().await?;
    let (created, id) = create(&mut conn, caller.merchant_id, &order).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&mut conn, id).await?)))
}

/// The calling merchant's order by its reference; another merchant's order does not exist.
pub async fn find_by_ref(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    order_ref: &str,
) -> ApiResult<Uuid> {
    sqlx::query_scalar!(
        "SELECT id FROM orders WHERE merchant_id = $1 AND order_ref = $2",
        merchant_id,
        order_ref
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))
}

/// One of the calling merchant's orders.
#[utoipa::path(get, path = "/v1/merchant/orders/{order_ref}", tag = "merchants", security(("merchant_key" = [])),
    params(("order_ref" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_order(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(order_ref): Path<String>,
) -> ApiResult<Json<Order>> {
    let mut conn = state.db.acquire().await?;
    let id = find_by_ref(&mut conn, caller.merchant_id, &order_ref).await?;
    Ok(Json(view(&mut conn, id).await?))
}

/// Cancel a pending order.
#[utoipa::path(post, path = "/v1/merchant/orders/{order_ref}/cancel", tag = "merchants", security(("merchant_key" = [])),
    params(("order_ref" = String, Path)),
    responses(
        (status = 200, body = Order),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`already_paid`, `order_expired`, `order_cancelled`"),
    ))]
async fn cancel_order(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(order_ref): Path<String>,
) -> ApiResult<Json<Order>> {
    let mut tx = state.db.begin().await?;
    let id = find_by_ref(&mut tx, caller.merchant_id, &order_ref).await?;
    refuse_unless_pending(lock_status(&mut tx, id).await?)?;
    sqlx::query!("UPDATE orders SET status = 'cancelled' WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    let order = view(&mut tx, id).await?;
    announce(&mut tx, caller.merchant_id, "order.cancelled", &order).await?;
    tx.commit().await?;
    outbox::committed();
    Ok(Json(order))
}

/// Locks the order and returns its status, `expired` once its time is up.
pub async fn lock_status(conn: &mut PgConnection, order_id: Uuid) -> ApiResult<OrderStatus> {
    Ok(sqlx::query_scalar!(
        r#"SELECT CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END AS "status!: OrderStatus"
           FROM orders WHERE id = $1 FOR UPDATE"#,
        order_id,
    )
    .fetch_one(conn)
    .await?)
}

/// 409 with the code that names why a non-pending order cannot move on.
pub fn refuse_unless_pending(status: OrderStatus) -> ApiResult<()> {
    let code = match status {
        OrderStatus::Pending => return Ok(()),
        OrderStatus::Paid => ErrorCode::AlreadyPaid,
        OrderStatus::Cancelled => ErrorCode::OrderCancelled,
        OrderStatus::Expired => ErrorCode::OrderExpired,
    };
    Err(ApiError::new(code))
}

/// Writes a merchant event whose data is the order as the merchant API returns it.
pub async fn announce(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    event_type: &str,
    order: &Order,
) -> ApiResult<()> {
    let data = serde_json::to_value(order).map_err(ApiError::internal)?;
    outbox::record(conn, event_type, &data, Audience::Merchant(merchant_id)).await?;
    Ok(())
}

const EXPIRE_EVERY: Duration = Duration::from_secs(1);
const EXPIRE_BATCH: i64 = 500;

/// Marks pending orders past their time as expired, each with its `order.expired` event.
pub async fn expire_due(db: &PgPool) -> ApiResult<usize> {
    let mut tx = db.begin().await?;
    let due = sqlx::query!(
        "UPDATE orders SET status = 'expired'
         WHERE id IN (SELECT id FROM orders WHERE status = 'pending' AND expires_at <= now()
                      ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, merchant_id",
        EXPIRE_BATCH,
    )
    .fetch_all(&mut *tx)
    .await?;
    for order in &due {
        let view = view(&mut tx, order.id).await?;
        announce(&mut tx, order.merchant_id, "order.expired", &view).await?;
    }
    tx.commit().await?;
    if !due.is_empty() {
        outbox::committed();
    }
    Ok(due.len())
}

pub fn spawn_expirer(tasks: &BackgroundTasks, db: PgPool) {
    tasks.spawn("order expirer", |cancel| async move {
        loop {
            if let Err(error) = expire_due(&db).await {
                tracing::warn!(
                    code = error.code().as_str(),
                    "expiring orders failed; retrying"
                );
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(EXPIRE_EVERY) => {}
            }
        }
    });
}
