//! Voids: a cash collection taken by mistake is undone only inside its open shift and only with
//! a supervisor's approval (four eyes: whoever asked never approves). The approval reverses the
//! cash in the ledger, makes the bill unpaid again and cancels its receipt, which keeps its
//! number and shows as cancelled.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::Officer;
use super::collections::{self, CollectionStatus};
use super::shifts::CollectionMethod;
use super::void_requests::{VoidRequest, VoidRow, VoidStatus, find};
use crate::auth::Caller;
use crate::auth::access::Supervisors;
use crate::bills::pay::{CashVoid, void_cash_payment};
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_void))
        .routes(routes!(approve_void))
        .routes(routes!(list_void_requests))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequestBody {
    /// Why the collection was a mistake (1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Ask for a cash collection of the open shift to be voided; a supervisor approves it.
#[utoipa::path(post, path = "/v1/counter/collections/{id}/void", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = VoidRequestBody,
    responses(
        (status = 201, body = VoidRequest),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an officer"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`invalid_transition` (not a completed cash collection), `shift_closed`, `already_exists`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn request_void(
    State(state): State<AppState>,
    officer: Officer,
    Path(id): Path<Uuid>,
    Json(body): Json<VoidRequestBody>,
) -> ApiResult<(StatusCode, Json<VoidRequest>)> {
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "SELECT id FROM counter_collections WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let collection = collections::find(&mut tx, id)
        .await?
        .filter(|c| c.officer_id == officer.account_id)
        .ok_or_else(|| ApiError::not_found(Message::CollectionNotFound))?;
    let reason = body.reason.trim();
    FieldChecks::new()
        .check(
            length_within(reason, 1, 500),
            "reason",
            Message::TextLength { min: 1, max: 500 },
        )
        .finish()?;
    refuse_unless_voidable(&collection)?;
    if collection.collection.void_request.is_some() {
        return Err(
            ApiError::new(ErrorCode::AlreadyExists).with_detail(Message::VoidAlreadyRequested)
        );
    }
    let request_id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO counter_void_requests (id, collection_id, reason, requested_by) VALUES ($1, $2, $3, $4)",
        request_id,
        id,
        reason,
        officer.account_id,
    )
    .execute(&mut *tx)
    .await?;
    let request = find(&mut tx, request_id)
        .await?
        .ok_or_else(|| ApiError::internal("a void request just written vanished"))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// 409 unless the collection is completed cash of a shift still open.
fn refuse_unless_voidable(collection: &collections::CollectionRow) -> ApiResult<()> {
    if !collection.shift_open {
        return Err(ApiError::new(ErrorCode::ShiftClosed));
    }
    let c = &collection.collection;
    if c.method != CollectionMethod::Cash || c.status != CollectionStatus::Completed {
        return Err(
            ApiError::new(ErrorCode::InvalidTransition).with_detail(Message::CollectionNotVoidable)
        );
    }
    Ok(())
}

/// Approve a void request (a supervisor of the shift's unit, never its requester): the cash goes
/// back to the drawer, the bill is unpaid again, its receipt cancelled.
#[utoipa::path(post, path = "/v1/counter/void-requests/{id}/approve", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = VoidRequest),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not a supervisor, or the requester"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`invalid_transition` (approved already, or the collection no longer voidable), `shift_closed`"),
    ))]
async fn approve_void(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<VoidRequest>> {
    let mut tx = state.db.begin().await?;
    let not_found = || ApiError::not_found(Message::VoidRequestNotFound);
    sqlx::query!(
        "SELECT id FROM counter_void_requests WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(not_found)?;
    let request = find(&mut tx, id).await?.ok_or_else(not_found)?;
    // The shift is held so it cannot close while its cash is given back.
    sqlx::query!(
        "SELECT s.id FROM counter_shifts s JOIN counter_collections c ON c.shift_id = s.id
         WHERE c.id = $1 FOR SHARE OF s",
        request.collection_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let collection = collections::find(&mut tx, request.collection_id)
        .await?
        .ok_or_else(not_found)?;
    if !caller.supervises(&state.db, &collection.unit_code).await? {
        return Err(not_found());
    }
    if request.requested_by == caller.account_id {
        return Err(ApiError::new(ErrorCode::Forbidden).with_detail(Message::OwnVoidRequest));
    }
    if request.status == VoidStatus::Approved {
        return Err(
            ApiError::new(ErrorCode::InvalidTransition).with_detail(Message::VoidAlreadyApproved)
        );
    }
    refuse_unless_voidable(&collection)?;
    let entry_id = collection
        .entry_id
        .ok_or_else(|| ApiError::internal("a cash collection without its entry"))?;
    let void = CashVoid {
        bill_id: collection.collection.bill_id,
        entry_id,
        drawer_account: collection.drawer_account,
        approved_by: caller.account_id,
    };
    let void_entry = void_cash_payment(&mut tx, &void).await?;
    sqlx::query!(
        "UPDATE counter_collections SET status = 'voided', voided_at = now(), void_entry_id = $2 WHERE id = $1",
        request.collection_id,
        void_entry,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE counter_void_requests SET status = 'approved', approved_by = $2, approved_at = now() WHERE id = $1",
        id,
        caller.account_id,
    )
    .execute(&mut *tx)
    .await?;
    let approved = find(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    crate::outbox::committed();
    Ok(Json(approved))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VoidFilter {
    /// `pending` (the default) or `approved`.
    pub status: Option<VoidStatus>,
}

/// Void requests of the caller's subtree, oldest first (supervisors and admins).
#[utoipa::path(get, path = "/v1/counter/void-requests", tag = "counters", security(("bearer" = [])),
    params(VoidFilter, PageQuery),
    responses(
        (status = 200, body = Page<VoidRequest>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_void_requests(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    Query(filter): Query<VoidFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<VoidRequest>>> {
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    let (after_at, after_id) = after.unzip();
    let status = filter.status.unwrap_or(VoidStatus::Pending);
    // An admin sees every unit: the subtree of every root.
    let rows: Vec<VoidRow> = sqlx::query_as(
        "WITH RECURSIVE subtree(code, depth) AS (
             SELECT code, 0 FROM units WHERE code = $1 OR ($1 IS NULL AND parent_code IS NULL)
             UNION ALL
             SELECT u.code, subtree.depth + 1 FROM units u JOIN subtree ON u.parent_code = subtree.code
             WHERE subtree.depth < 8
         )
         SELECT v.id, v.collection_id, v.status, v.reason, v.requested_by, v.requested_at,
                v.approved_by, v.approved_at
         FROM counter_void_requests v
         JOIN counter_collections c ON c.id = v.collection_id
         JOIN counter_shifts s ON s.id = c.shift_id
         WHERE s.unit_code IN (SELECT code FROM subtree) AND v.status = $2
           AND ($3::timestamptz IS NULL OR (v.requested_at, v.id) > ($3, $4::uuid))
         ORDER BY v.requested_at, v.id LIMIT $5",
    )
    .bind(caller.unit_code.as_deref())
    .bind(status)
    .bind(after_at)
    .bind(after_id)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let requests: Vec<VoidRequest> = rows.into_iter().map(VoidRequest::from).collect();
    Ok(Json(Page::from_rows(requests, limit, |r| {
        (r.requested_at, r.id)
    })))
}
