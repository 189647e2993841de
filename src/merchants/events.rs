//! The merchant's side of its callbacks (`crate::callbacks` sends them): its events with their
//! delivery state and attempt log, redelivery on demand, and webhook-secret rotation.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{MerchantCaller, lock_as_newest_key, new_webhook_secret};
use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(redeliver))
        .routes(routes!(rotate_webhook_secret))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A callback was answered with a 2xx.
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
    /// Not sent: when it happened the merchant had no callback URL or did not subscribe to
    /// its type (a redelivery sends it anyway).
    Skipped,
}

/// An event with how its delivery stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MerchantEvent {
    /// Also the `webhook-id` of every callback carrying it.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// The order as the merchant API returns it, refunds included.
    pub data: serde_json::Value,
    pub delivery_state: DeliveryState,
    pub attempt_count: i32,
    /// When a pending delivery is tried next (at the latest).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    seq: i64,
}

/// One try at delivering an event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub url: String,
    /// The HTTP status answered; `null` when no answer came.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Why no acceptable answer came: refused connection, timeout, refused address...
    pub error: Option<String>,
    /// The first KiB of the answer.
    pub response_body: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventWithAttempts {
    #[serde(flatten)]
    pub event: MerchantEvent,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// One event type, e.g. `payment.succeeded`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    pub delivery_state: Option<DeliveryState>,
}

/// The calling merchant's events, newest first.
#[utoipa::path(get, path = "/v1/merchant/events", tag = "callbacks", security(("merchant_key" = [])),
    params(EventFilter, PageQuery),
    responses((status = 200, body = Page<MerchantEvent>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Query(filter): Query<EventFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<MerchantEvent>>> {
    events_of(&state, &caller, filter, page).await
}

pub(crate) async fn events_of(
    state: &AppState,
    caller: &MerchantCaller,
    filter: EventFilter,
    page: PageQuery,
) -> ApiResult<Json<Page<MerchantEvent>>> {
    let limit = page.limit()?;
    let before: Option<i64> = page.after()?;
    if let Some(event_type) = &filter.event_type
        && !caller.role.receives(event_type)
    {
        return Err(ApiError::invalid_field("type", Message::FieldInvalidValue));
    }
    let rows = sqlx::query_as!(
        MerchantEvent,
        r#"SELECT id AS "id!", seq AS "seq!", event_type AS "event_type!", created_at AS "created_at!",
                  data AS "data!", delivery_state AS "delivery_state!: DeliveryState",
                  attempt_count AS "attempt_count!", next_attempt_at, last_attempt_at, delivered_at
           FROM merchant_events
           WHERE merchant_id = $1 AND ($2::text IS NULL OR event_type = $2)
             AND ($3::text IS NULL OR delivery_state = $3) AND ($4::bigint IS NULL OR seq < $4)
           ORDER BY seq DESC LIMIT $5"#,
        caller.merchant_id,
        filter.event_type,
        filter.delivery_state as Option<DeliveryState>,
        before,
        limit + 1,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |event| event.seq)))
}

/// One event with every attempt to deliver it.
#[utoipa::path(get, path = "/v1/merchant/events/{id}", tag = "callbacks", security(("merchant_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EventWithAttempts), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_event(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<EventWithAttempts>> {
    event_of(&state, &caller, id).await
}

pub(crate) async fn event_of(
    state: &AppState,
    caller: &MerchantCaller,
    id: Uuid,
) -> ApiResult<Json<EventWithAttempts>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        with_attempts(&mut conn, caller.merchant_id, id).await?,
    ))
}

async fn with_attempts(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    id: Uuid,
) -> ApiResult<EventWithAttempts> {
    let event = sqlx::query_as!(
        MerchantEvent,
        r#"SELECT id AS "id!", seq AS "seq!", event_type AS "event_type!", created_at AS "created_at!",
                  data AS "data!", delivery_state AS "delivery_state!: DeliveryState",
                  attempt_count AS "attempt_count!", next_attempt_at, last_attempt_at, delivered_at
           FROM merchant_events WHERE id = $1 AND merchant_id = $2"#,
        id,
        merchant_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let attempts = sqlx::query_as!(
        Attempt,
        "SELECT attempted_at, url, status_code, latency_ms, error, response_body
         FROM callback_attempts WHERE event_id = $1 ORDER BY id",
        id,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(EventWithAttempts { event, attempts })
}

/// Send an event again now, with the same `webhook-id` (the retry schedule starts over).
#[utoipa::path(post, path = "/v1/merchant/events/{id}/redeliver", tag = "callbacks", security(("merchant_key" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 202, body = EventWithAttempts, description = "Queued; a worker sends it within moments"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`callback_url_not_set`"),
    ))]
async fn redeliver(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<EventWithAttempts>)> {
    redeliver_event(&state, &caller, id).await
}

pub(crate) async fn redeliver_event(
    state: &AppState,
    caller: &MerchantCaller,
    id: Uuid,
) -> ApiResult<(StatusCode, Json<EventWithAttempts>)> {
    let mut tx = state.db.begin().await?;
    let has_callback_url = sqlx::query_scalar!(
        r#"SELECT m.callback_url IS NOT NULL AS "set!"
           FROM outbox_events e JOIN merchants m ON m.id = e.merchant_id
           WHERE e.id = $1 AND e.merchant_id = $2"#,
        id,
        caller.merchant_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    if !has_callback_url {
        return Err(ApiError::new(ErrorCode::CallbackUrlNotSet));
    }
    // An attempt under a live lease is in flight right now: it is the new attempt, and
    // starting another beside it would send the event twice at once. A lapsed lease is
    // dropped, so the late record of its attempt cannot overwrite this request.
    sqlx::query!(
        "UPDATE callback_deliveries
         SET state = 'pending', scheduled_attempts = 0,
             next_attempt_at = CASE WHEN lease_token IS NOT NULL AND next_attempt_at > now()
                                    THEN next_attempt_at ELSE now() END,
             lease_token = CASE WHEN next_attempt_at > now() THEN lease_token END
         WHERE event_id = $1",
        id,
    )
    .execute(&mut *tx)
    .await?;
    let event = with_attempts(&mut tx, caller.merchant_id, id).await?;
    tx.commit().await?;
    crate::outbox::committed();
    Ok((StatusCode::ACCEPTED, Json(event)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    /// The new `whsec_…` secret, shown this once.
    pub webhook_secret: String,
    /// Until when callbacks also carry a signature made with the previous secret.
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// Replace the webhook secret. For the configured grace period every callback carries two
/// signatures, with the new secret and the previous one, so the receiver can switch at leisure.
#[utoipa::path(post, path = "/v1/merchant/webhook-secret/rotate", tag = "callbacks", security(("merchant_key" = [])),
    responses((status = 201, body = RotatedSecret), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Only the newest API key may rotate the secret")))]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<(StatusCode, Json<RotatedSecret>)> {
    rotate_secret(&state, &caller).await
}

pub(crate) async fn rotate_secret(
    state: &AppState,
    caller: &MerchantCaller,
) -> ApiResult<(StatusCode, Json<RotatedSecret>)> {
    let mut tx = state.db.begin().await?;
    // Only the newest API key: a leaked old one inside its grace period must not take over
    // the signing secret.
    lock_as_newest_key(&mut tx, caller).await?;
    let webhook_secret = new_webhook_secret();
    let previous_secret_expires_at = sqlx::query_scalar!(
        r#"UPDATE merchants
           SET previous_webhook_secret = webhook_secret,
               previous_webhook_secret_expires_at = now() + make_interval(secs => $3),
               webhook_secret = $2
           WHERE id = $1
           RETURNING previous_webhook_secret_expires_at AS "at!""#,
        caller.merchant_id,
        webhook_secret,
        state.webhook_secret_grace_secs as f64,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(RotatedSecret {
            webhook_secret,
            previous_secret_expires_at,
        }),
    ))
}
