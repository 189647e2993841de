//! Billers: onboarded by an admin (or created with the unit whose dossier fees they collect),
//! authenticated by `bk_` keys. Keys, their rotation and revocation, the webhook secret and the
//! event log are the merchants' own (`crate::merchants`), reached here under the biller paths.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::BillKind;
use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::merchants::events::{
    EventFilter, EventWithAttempts, MerchantEvent, RotatedSecret, event_of, events_of,
    redeliver_event, rotate_secret,
};
use crate::merchants::{self, NewMerchant, PartnerRole, ResetKeys, RevokedKeys, RotatedKey};
use crate::state::AppState;
use crate::wallet::LimitCategory;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_biller))
        .routes(routes!(get_profile))
        .routes(routes!(rotate_api_key))
        .routes(routes!(revoke_other_api_keys))
        .routes(routes!(reset_api_keys))
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(redeliver))
        .routes(routes!(rotate_webhook_secret))
}

pub use crate::merchants::BillerCaller;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBiller {
    pub name: String,
    /// 3-20 upper-case letters and digits.
    #[schema(example = "EVNHUE")]
    pub code: String,
    /// Not `dossier_fee`: those billers come with their unit.
    pub kind: BillKind,
    pub limit_category: LimitCategory,
    pub callback_url: Option<String>,
    /// `bill.paid`, `bill.cancelled`.
    #[serde(default)]
    pub events: Vec<String>,
    /// For receipts.
    pub tax_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Biller {
    pub id: Uuid,
    pub name: String,
    pub code: String,
    pub kind: BillKind,
    pub limit_category: LimitCategory,
    pub callback_url: Option<String>,
    pub events: Vec<String>,
    /// The unit whose dossier fees it collects (`dossier_fee` billers).
    pub unit_code: Option<String>,
    pub tax_code: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// The creation answer: the biller, with its API key and webhook secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedBiller {
    #[serde(flatten)]
    pub biller: Biller,
    pub api_key: String,
    pub webhook_secret: String,
}

/// The ISO 18245 category a biller's kind falls under (EMVCo tag 52 on its QR codes).
fn category_code(kind: BillKind) -> &'static str {
    match kind {
        BillKind::DossierFee => "9311",
        BillKind::Electricity | BillKind::Water | BillKind::Sanitation => "4900",
        BillKind::Tuition => "8211",
        BillKind::Other => "9399",
    }
}

/// Onboard a biller (admins). Dossier-fee billers are created with their unit, not here.
#[utoipa::path(post, path = "/v1/admin/billers", tag = "bills", security(("bearer" = [])),
    request_body = NewBiller,
    responses(
        (status = 201, body = CreatedBiller, description = "`api_key` and `webhook_secret` are shown only here"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The code is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_biller(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Json(biller): Json<NewBiller>,
) -> ApiResult<(StatusCode, Json<CreatedBiller>)> {
    FieldChecks::new()
        .check(
            length_within(&biller.name, 1, 100),
            "name",
            Message::TextLength { min: 1, max: 100 },
        )
        .check(
            biller.kind != BillKind::DossierFee,
            "kind",
            Message::FieldInvalidValue,
        )
        .check(
            merchants::check_callback_url(biller.callback_url.as_deref(), state.mode),
            "callback_url",
            Message::FieldInvalidValue,
        )
        .check(
            merchants::check_events(&biller.events, PartnerRole::Biller),
            "events",
            Message::FieldInvalidValue,
        )
        .check(
            biller
                .tax_code
                .as_deref()
                .is_none_or(|t| length_within(t, 1, 20)),
            "tax_code",
            Message::TextLength { min: 1, max: 20 },
        )
        .finish()?;
    let mut tx = state.db.begin().await?;
    let created = insert(&mut tx, &biller, None).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Inserts a biller: its merchant row (keys, secret, ledger account of kind `biller`) and its
/// biller row.
pub async fn insert(
    conn: &mut PgConnection,
    biller: &NewBiller,
    unit_code: Option<&str>,
) -> ApiResult<CreatedBiller> {
    let partner = NewMerchant {
        name: biller.name.clone(),
        code: biller.code.clone(),
        category_code: category_code(biller.kind).to_owned(),
        limit_category: biller.limit_category,
        callback_url: biller.callback_url.clone(),
        fee_rate: rust_decimal::Decimal::ZERO,
        events: biller.events.clone(),
        city: None,
    };
    let created = merchants::insert_partner(conn, &partner, PartnerRole::Biller).await?;
    let id = created.merchant.id;
    sqlx::query!(
        "INSERT INTO billers (id, kind, unit_code, tax_code) VALUES ($1, $2, $3, $4)",
        id,
        biller.kind as BillKind,
        unit_code,
        biller.tax_code,
    )
    .execute(&mut *conn)
    .await?;
    Ok(CreatedBiller {
        biller: load(conn, id)
            .await?
            .ok_or_else(|| ApiError::internal("a biller row vanished"))?,
        api_key: created.api_key,
        webhook_secret: created.webhook_secret,
    })
}

pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Option<Biller>, sqlx::Error> {
    sqlx::query_as!(
        Biller,
        r#"SELECT b.id, m.name, m.code, b.kind AS "kind: BillKind",
                  m.limit_category AS "limit_category: LimitCategory", m.callback_url, m.events,
                  b.unit_code, b.tax_code, m.disabled_at IS NOT NULL AS "disabled!", m.created_at
           FROM billers b JOIN merchants m ON m.id = b.id WHERE b.id = $1"#,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// The biller of a unit's dossier fees, created on first need (units made before bills
/// existed) as every unit's is when the unit is created. Answers its id.
pub async fn of_unit(conn: &mut PgConnection, unit_code: &str) -> ApiResult<Uuid> {
    if let Some(id) = sqlx::query_scalar!("SELECT id FROM billers WHERE unit_code = $1", unit_code)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    let name = sqlx::query_scalar!("SELECT name FROM units WHERE code = $1", unit_code)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::internal("a dossier's unit vanished"))?;
    let biller = NewBiller {
        name: name.chars().take(100).collect(),
        code: format!("UNIT{unit_code}"),
        kind: BillKind::DossierFee,
        limit_category: LimitCategory::PublicService,
        callback_url: None,
        events: Vec::new(),
        tax_code: None,
    };
    let id = insert(conn, &biller, Some(unit_code)).await?.biller.id;
    // A unit's fees are billed by its dossiers, never through the biller API: a key could
    // cancel a fee (leaving its dossier waiting) or take a future dossier's reference.
    sqlx::query!(
        "UPDATE merchant_api_keys SET revoked_at = now() WHERE merchant_id = $1",
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// The calling biller.
#[utoipa::path(get, path = "/v1/biller/profile", tag = "bills", security(("biller_key" = [])),
    operation_id = "get_biller_profile",
    responses((status = 200, body = Biller), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn get_profile(
    State(state): State<AppState>,
    caller: BillerCaller,
) -> ApiResult<Json<Biller>> {
    let mut conn = state.db.acquire().await?;
    load(&mut conn, caller.biller_id())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))
}

/// Issue a new API key; the older ones keep working for the configured grace period. Only the
/// newest key may rotate.
#[utoipa::path(post, path = "/v1/biller/api-keys/rotate", tag = "bills", security(("biller_key" = [])),
    operation_id = "rotate_biller_api_key",
    responses(
        (status = 201, body = RotatedKey, description = "`api_key` is shown only here"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "The calling key is not the biller's newest"),
    ))]
async fn rotate_api_key(
    State(state): State<AppState>,
    caller: BillerCaller,
) -> ApiResult<(StatusCode, Json<RotatedKey>)> {
    merchants::rotate_keys(&state, &caller.0).await
}

/// Revoke every other API key of the calling biller at once. Only the newest key may.
#[utoipa::path(post, path = "/v1/biller/api-keys/revoke-others", tag = "bills", security(("biller_key" = [])),
    operation_id = "revoke_other_biller_api_keys",
    responses(
        (status = 200, body = RevokedKeys),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "The calling key is not the biller's newest"),
    ))]
async fn revoke_other_api_keys(
    State(state): State<AppState>,
    caller: BillerCaller,
) -> ApiResult<Json<RevokedKeys>> {
    merchants::revoke_other_keys(&state, &caller.0).await
}

/// Revoke every API key of a biller and issue one new key (admins).
#[utoipa::path(post, path = "/v1/admin/billers/{id}/api-keys/reset", tag = "bills", security(("bearer" = [])),
    operation_id = "reset_biller_api_keys",
    params(("id" = Uuid, Path)),
    responses(
        (status = 201, body = ResetKeys, description = "`api_key` is shown only here"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn reset_api_keys(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<ResetKeys>)> {
    // A unit's dossier-fee biller has no key to reset (see `of_unit`).
    let mut conn = state.db.acquire().await?;
    if load(&mut conn, id)
        .await?
        .is_none_or(|biller| biller.kind == BillKind::DossierFee)
    {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    drop(conn);
    merchants::reset_keys(&state, id, PartnerRole::Biller).await
}

/// The calling biller's events, newest first.
#[utoipa::path(get, path = "/v1/biller/events", tag = "bills", security(("biller_key" = [])),
    operation_id = "list_biller_events",
    params(EventFilter, PageQuery),
    responses((status = 200, body = Page<MerchantEvent>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(state): State<AppState>,
    caller: BillerCaller,
    Query(filter): Query<EventFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<MerchantEvent>>> {
    events_of(&state, &caller.0, filter, page).await
}

/// One event with every attempt to deliver it.
#[utoipa::path(get, path = "/v1/biller/events/{id}", tag = "bills", security(("biller_key" = [])),
    operation_id = "get_biller_event",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EventWithAttempts), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_event(
    State(state): State<AppState>,
    caller: BillerCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<EventWithAttempts>> {
    event_of(&state, &caller.0, id).await
}

/// Send an event again now, with the same `webhook-id`.
#[utoipa::path(post, path = "/v1/biller/events/{id}/redeliver", tag = "bills", security(("biller_key" = [])),
    operation_id = "redeliver_biller_event",
    params(("id" = Uuid, Path)),
    responses(
        (status = 202, body = EventWithAttempts, description = "Queued; a worker sends it within moments"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`callback_url_not_set`"),
    ))]
async fn redeliver(
    State(state): State<AppState>,
    caller: BillerCaller,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<EventWithAttempts>)> {
    redeliver_event(&state, &caller.0, id).await
}

/// Replace the webhook secret; the previous one keeps signing for the grace period.
#[utoipa::path(post, path = "/v1/biller/webhook-secret/rotate", tag = "bills", security(("biller_key" = [])),
    operation_id = "rotate_biller_webhook_secret",
    responses((status = 201, body = RotatedSecret), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Only the newest API key may rotate the secret")))]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: BillerCaller,
) -> ApiResult<(StatusCode, Json<RotatedSecret>)> {
    rotate_secret(&state, &caller.0).await
}
