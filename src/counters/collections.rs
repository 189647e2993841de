//! Collections: a bill taken at a counter. Cash completes at once, in the transaction that pays
//! the bill (drawer → biller, receipt `cash`, `bill.paid`, the dossier moved). A QR collection
//! shows the bill as a VietQR code and a deep link and waits: the citizen's payment in the app
//! completes it in the paying transaction, and the counter learns it by reading the collection,
//! or by waiting on it (`?wait=`).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::shifts::CollectionMethod;
use super::void_requests::{self, VoidRequest};
use super::{Officer, bill_at_counter, bill_in_reach, hold_open_shift};
use crate::auth::Caller;
use crate::auth::access::Staff;
use crate::bills::pay::{CashPaid, pay_in_cash};
use crate::bills::{Bill, BillKey, BillRow, BillStatus, Reader};
use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::idempotency::{Answer, Idempotent};
use crate::merchants::qr;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(collect))
        .routes(routes!(get_collection))
        .routes(routes!(counter_bill))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum CollectionStatus {
    /// A QR code shown, its payment awaited.
    Pending,
    Completed,
    /// A cash collection undone with a supervisor's approval.
    Voided,
    /// A QR code no longer awaited: its shift closed, or the bill was collected otherwise.
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Collection {
    pub id: Uuid,
    pub shift_id: Uuid,
    pub bill_id: Uuid,
    pub bill_code: String,
    pub method: CollectionMethod,
    pub amount: i64,
    pub status: CollectionStatus,
    pub receipt_id: Option<Uuid>,
    /// QR only: the EMVCo payload to show as a QR code (the bill code in the private tag 26).
    pub qr_payload: Option<String>,
    /// QR only: opens the bill in the civicpay app.
    pub deep_link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_request: Option<VoidRequest>,
}

/// A collection as read, with who may see it.
pub(super) struct CollectionRow {
    pub collection: Collection,
    pub officer_id: Uuid,
    pub unit_code: String,
    pub entry_id: Option<Uuid>,
    pub drawer_account: Uuid,
    pub shift_open: bool,
}

pub(super) async fn find(conn: &mut PgConnection, id: Uuid) -> ApiResult<Option<CollectionRow>> {
    let row = sqlx::query!(
        r#"SELECT c.id, c.shift_id, c.bill_id, b.code AS bill_code,
                  c.method AS "method: CollectionMethod", c.amount,
                  c.status AS "status: CollectionStatus", c.receipt_id, c.qr_payload,
                  c.created_at, c.completed_at, c.voided_at, c.entry_id,
                  s.officer_id, s.unit_code, s.drawer_account_id, s.status = 'open' AS "shift_open!"
           FROM counter_collections c
           JOIN counter_shifts s ON s.id = c.shift_id
           JOIN bills b ON b.id = c.bill_id
           WHERE c.id = $1"#,
        id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let void_request = void_requests::of_collection(conn, id).await?;
    let deep_link = (row.method == CollectionMethod::Qr).then(|| deep_link(&row.bill_code));
    Ok(Some(CollectionRow {
        collection: Collection {
            id: row.id,
            shift_id: row.shift_id,
            bill_id: row.bill_id,
            bill_code: row.bill_code,
            method: row.method,
            amount: row.amount,
            status: row.status,
            receipt_id: row.receipt_id,
            qr_payload: row.qr_payload,
            deep_link,
            created_at: row.created_at,
            completed_at: row.completed_at,
            voided_at: row.voided_at,
            void_request,
        },
        officer_id: row.officer_id,
        unit_code: row.unit_code,
        entry_id: row.entry_id,
        drawer_account: row.drawer_account_id,
        shift_open: row.shift_open,
    }))
}

fn deep_link(bill_code: &str) -> String {
    format!("civicpay://pay?bill={bill_code}")
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectRequest {
    /// The bill's code (as printed, or scanned from its barcode).
    #[schema(min_length = 1, max_length = 32)]
    pub bill_code: String,
    pub method: CollectionMethod,
}

/// Collect a bill at the counter, in cash (completed at once, receipt issued) or by QR
/// (`pending` until the citizen pays it in the app). Needs `Idempotency-Key` and an open shift.
#[utoipa::path(post, path = "/v1/counter/collections", tag = "counters", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)),
    request_body = CollectRequest,
    responses(
        (status = 201, body = Collection),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an officer, or the unit is no collection point of the bill's biller"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such bill, or another unit's dossier fee"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`no_open_shift`, `already_paid`, `bill_cancelled`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn collect(
    State(state): State<AppState>,
    officer: Officer,
    request: Idempotent<CollectRequest>,
) -> Response {
    let caller = officer.account_id;
    request
        .run(&state.db, caller, move |conn, body| {
            Box::pin(async move {
                let collection = collect_bill(conn, &officer, &body).await?;
                Answer::of(StatusCode::CREATED, &collection)
            })
        })
        .await
}

/// Collects a bill at the officer's open shift, in the caller's transaction.
pub async fn collect_bill(
    conn: &mut PgConnection,
    officer: &Officer,
    request: &CollectRequest,
) -> ApiResult<Collection> {
    let bill = bill_at_counter(conn, officer, request.bill_code.trim()).await?;
    let shift = hold_open_shift(conn, officer).await?;
    let id = Uuid::new_v4();
    match request.method {
        CollectionMethod::Cash => {
            let cash = CashPaid {
                bill_id: bill.id,
                drawer_account: shift.drawer_account,
                officer: officer.account_id,
            };
            let paid = pay_in_cash(conn, &cash).await?;
            // The bill is locked and paid now: a QR code still shown for it is not awaited.
            cancel_pending(conn, bill.id).await?;
            sqlx::query!(
                "INSERT INTO counter_collections
                     (id, shift_id, bill_id, method, amount, status, entry_id, receipt_id, completed_at)
                 VALUES ($1, $2, $3, 'cash', $4, 'completed', $5, $6, now())",
                id,
                shift.id,
                bill.id,
                paid.bill.amount.dong(),
                paid.entry_id,
                paid.bill.receipt_id,
            )
            .execute(&mut *conn)
            .await?;
        }
        CollectionMethod::Qr => {
            // Locked, so a payment from the app waits for this collection and then completes it.
            let bill = crate::bills::find(conn, BillKey::Id(bill.id), true)
                .await?
                .ok_or_else(|| ApiError::not_found(Message::BillNotFound))?;
            refuse_unless_unpaid(&bill)?;
            cancel_pending(conn, bill.id).await?;
            let payload = qr_payload(conn, &bill).await?;
            sqlx::query!(
                "INSERT INTO counter_collections (id, shift_id, bill_id, method, amount, status, qr_payload)
                 VALUES ($1, $2, $3, 'qr', $4, 'pending', $5)",
                id,
                shift.id,
                bill.id,
                bill.amount.dong(),
                payload,
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    find(conn, id)
        .await?
        .map(|row| row.collection)
        .ok_or_else(|| ApiError::internal("a collection just written vanished"))
}

fn refuse_unless_unpaid(bill: &BillRow) -> ApiResult<()> {
    match bill.status {
        BillStatus::Unpaid => Ok(()),
        BillStatus::Paid => {
            Err(ApiError::new(ErrorCode::AlreadyPaid).with_detail(Message::BillAlreadyPaid))
        }
        BillStatus::Cancelled => Err(ApiError::new(ErrorCode::BillCancelled)),
    }
}

/// Stops awaiting a QR payment of the bill at any counter (one is awaited at a time).
async fn cancel_pending(conn: &mut PgConnection, bill_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE counter_collections SET status = 'cancelled' WHERE bill_id = $1 AND status = 'pending'",
        bill_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The bill as a VietQR payload (DESIGN.md, "QR codes"), its code in the private template.
async fn qr_payload(conn: &mut PgConnection, bill: &BillRow) -> ApiResult<String> {
    let biller = sqlx::query!(
        "SELECT category_code, city FROM merchants WHERE id = $1",
        bill.biller_id
    )
    .fetch_one(conn)
    .await?;
    let presented = qr::Presented::Order {
        code: &bill.code,
        amount: bill.amount.dong(),
        purpose: &format!("Thanh toan {}", bill.code),
    };
    let info = qr::MerchantInfo {
        category_code: &biller.category_code,
        name: &bill.biller_name,
        city: &biller.city,
    };
    Ok(qr::payload(&presented, &info))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait for a `pending` collection to complete (0 to 20; default 0): the answer
    /// comes as soon as it does, or after this long still pending.
    #[param(minimum = 0, maximum = 20)]
    pub wait: Option<u64>,
}

const LONGEST_WAIT_SECS: u64 = 20;
/// How often a waiting read looks again, for a payment committed by another process (this
/// process's own payments wake it at once).
const WAIT_POLL: Duration = Duration::from_millis(500);
/// The least time between two reads of one waiting screen: other payments' commits wake it too.
const WAIT_READ_GAP: Duration = Duration::from_millis(100);

/// A collection: its shift's officer, or a supervisor of its unit's subtree. With `wait`, a
/// pending one is answered as soon as it completes.
#[utoipa::path(get, path = "/v1/counter/collections/{id}", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path), WaitQuery),
    responses(
        (status = 200, body = Collection),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_collection(
    State(state): State<AppState>,
    caller: Caller<Staff>,
    Path(id): Path<Uuid>,
    Query(query): Query<WaitQuery>,
) -> ApiResult<Json<Collection>> {
    let started = tokio::time::Instant::now();
    let mut commits = crate::outbox::commits();
    let mut conn = state.db.acquire().await?;
    let row = find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(Message::CollectionNotFound))?;
    let visible =
        row.officer_id == caller.account_id || caller.supervises(&state.db, &row.unit_code).await?;
    if !visible {
        return Err(ApiError::not_found(Message::CollectionNotFound));
    }
    let wait = query.wait.unwrap_or(0);
    if wait > LONGEST_WAIT_SECS {
        return Err(ApiError::invalid_field(
            "wait",
            Message::FieldOutOfRange {
                min: 0,
                max: LONGEST_WAIT_SECS as i64,
            },
        ));
    }
    // Not holding a connection while waiting: a screen may wait for 20 s.
    drop(conn);
    let deadline = started + Duration::from_secs(wait);
    let mut collection = row.collection;
    while collection.status == CollectionStatus::Pending {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::select! {
            _ = commits.changed() => {}
            () = tokio::time::sleep(left.min(WAIT_POLL)) => {}
        }
        // However busy the process, a waiting screen reads at most this often.
        tokio::time::sleep(WAIT_READ_GAP.min(left)).await;
        let mut conn = state.db.acquire().await?;
        collection = find(&mut conn, id)
            .await?
            .map(|row| row.collection)
            .ok_or_else(|| ApiError::not_found(Message::CollectionNotFound))?;
    }
    Ok(Json(collection))
}

/// A bill as the counter sees it, by its code or by its dossier's code: what is owed, for whom
/// (the name masked, as for anyone who is not its payer) and why. Another unit's dossier fee is
/// 404; any other bill shows, even where this counter may not collect it.
#[utoipa::path(get, path = "/v1/counter/bills/{code}", tag = "counters", security(("bearer" = [])),
    params(("code" = String, Path, description = "A bill code, or a dossier code")),
    responses(
        (status = 200, body = Bill),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn counter_bill(
    State(state): State<AppState>,
    officer: Officer,
    Path(code): Path<String>,
) -> ApiResult<Json<Bill>> {
    let mut conn = state.db.acquire().await?;
    let code = code.trim();
    let bill_code = if crate::bills::looks_like_code(code) {
        Some(code.to_owned())
    } else {
        sqlx::query_scalar!(
            "SELECT b.code FROM bills b JOIN dossiers d ON d.id = b.dossier_id WHERE d.code = $1",
            code
        )
        .fetch_optional(&mut *conn)
        .await?
    };
    let bill_code = bill_code.ok_or_else(|| ApiError::not_found(Message::BillNotFound))?;
    let bill = bill_in_reach(&mut conn, &officer, &bill_code).await?;
    Ok(Json(bill.view(Reader::Citizen { own: false })))
}
