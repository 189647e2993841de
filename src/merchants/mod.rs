//! Merchants (acceptance points, from market stalls to the power company): onboarding by an
//! admin, API keys (`mk_…`, shown once, stored hashed, rotated with a grace period), the
//! profile, and their orders paid by QR from citizens' wallets. A merchant's money is a
//! deferred ledger account, so payments into a busy merchant never queue on one row lock.
//!
//! Keys cannot be taken over: only the merchant's newest working key may rotate or revoke the
//! others (an old key still inside its grace period, perhaps a leaked one, gets 403), rotation
//! only ever shortens the expiry of older keys, and an admin can revoke every key at once and
//! issue a new one. Every change to a merchant's keys runs under the merchant row's lock and
//! re-checks that the calling key is still the newest, so two rotations cannot both win.

pub mod demo;
pub mod events;
pub mod orders;
mod pay;
pub mod qr;
mod refunds;
mod settlement;

use axum::extract::{FromRequestParts, State};
use axum::http::{StatusCode, header, request::Parts};
use base64::Engine;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::callbacks::destination::Destinations;
use crate::config::Mode;
use crate::crypto::{random_token, sha256};
use crate::http::error::{ConstraintRule, FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::ledger::{self, AccountKind};
use crate::state::AppState;
use crate::wallet::LimitCategory;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[
    ConstraintRule {
        constraint: "merchants_code_key",
        code: ErrorCode::AlreadyExists,
        field: "code",
    },
    ConstraintRule {
        constraint: "merchants_code_format",
        code: ErrorCode::ValidationFailed,
        field: "code",
    },
    ConstraintRule {
        constraint: "merchants_name_length",
        code: ErrorCode::ValidationFailed,
        field: "name",
    },
    ConstraintRule {
        constraint: "merchants_category_code_format",
        code: ErrorCode::ValidationFailed,
        field: "category_code",
    },
    ConstraintRule {
        constraint: "merchants_fee_rate_range",
        code: ErrorCode::ValidationFailed,
        field: "fee_rate",
    },
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_merchant))
        .routes(routes!(disable_merchant))
        .routes(routes!(get_profile, update_profile))
        .routes(routes!(rotate_api_key))
        .routes(routes!(revoke_other_api_keys))
        .routes(routes!(reset_api_keys))
        .merge(orders::routes())
        .merge(pay::routes())
        .merge(refunds::routes())
        .merge(settlement::routes())
        .merge(events::routes())
}

/// Who holds a key to the merchant API's machinery: a merchant (`mk_…` keys, the merchant
/// routes) or a biller (`bk_…` keys, the biller routes). Billers are merchant rows of role
/// `biller`, so keys, rotation, webhook secrets and callback deliveries work alike for both,
/// and neither's key opens the other's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerRole {
    Merchant,
    Biller,
}

impl PartnerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerRole::Merchant => "merchant",
            PartnerRole::Biller => "biller",
        }
    }

    pub fn key_prefix(self) -> &'static str {
        match self {
            PartnerRole::Merchant => "mk_",
            PartnerRole::Biller => "bk_",
        }
    }

    fn account_kind(self) -> AccountKind {
        match self {
            PartnerRole::Merchant => AccountKind::Merchant,
            PartnerRole::Biller => AccountKind::Biller,
        }
    }

    /// Whether a partner of this role may subscribe to the event type.
    pub fn receives(self, event_type: &str) -> bool {
        match self {
            PartnerRole::Merchant => crate::callbacks::is_merchant_event(event_type),
            PartnerRole::Biller => crate::callbacks::is_biller_event(event_type),
        }
    }
}

/// The merchant behind an `Authorization: Bearer mk_…` request (or, as [`authenticate`] is
/// told, the biller behind a `bk_…` one).
#[derive(Debug, Clone)]
pub struct MerchantCaller {
    pub merchant_id: Uuid,
    /// The key row that authenticated the request.
    pub key_id: Uuid,
    /// Whether that key was, when the request arrived, the merchant's newest working key: the
    /// only one that may rotate keys or revoke the others. Checked again under the merchant's
    /// lock by whatever changes keys.
    pub newest_key: bool,
    pub role: PartnerRole,
}

impl FromRequestParts<AppState> for MerchantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, PartnerRole::Merchant).await
    }
}

/// The partner of `role` whose working key the request carries, or 401.
pub async fn authenticate(
    parts: &Parts,
    state: &AppState,
    role: PartnerRole,
) -> Result<MerchantCaller, ApiError> {
    let unauthenticated = || ApiError::new(ErrorCode::Unauthenticated);
    let key = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|k| k.starts_with(role.key_prefix()))
        .ok_or_else(unauthenticated)?;
    let key_hash = sha256(key.trim().as_bytes());
    // A working key: not revoked, not expired. "Newest" = no working key of the same
    // merchant was created after it (ties broken by id, so exactly one key is newest).
    let key = sqlx::query!(
        r#"SELECT m.id AS "merchant_id!", k.id AS "key_id!",
                  NOT EXISTS (
                      SELECT 1 FROM merchant_api_keys n
                      WHERE n.merchant_id = k.merchant_id
                        AND (n.created_at, n.id) > (k.created_at, k.id)
                        AND n.revoked_at IS NULL AND (n.expires_at IS NULL OR n.expires_at > now())
                  ) AS "newest!"
           FROM merchant_api_keys k JOIN merchants m ON m.id = k.merchant_id
           WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND m.role = $2
             AND (k.expires_at IS NULL OR k.expires_at > now()) AND m.disabled_at IS NULL"#,
        key_hash.as_slice(),
        role.as_str(),
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(unauthenticated)?;
    Ok(MerchantCaller {
        merchant_id: key.merchant_id,
        key_id: key.key_id,
        newest_key: key.newest,
        role,
    })
}

/// The biller behind an `Authorization: Bearer bk_…` request.
#[derive(Debug, Clone)]
pub struct BillerCaller(pub MerchantCaller);

impl BillerCaller {
    pub fn biller_id(&self) -> Uuid {
        self.0.merchant_id
    }
}

impl FromRequestParts<AppState> for BillerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, PartnerRole::Biller)
            .await
            .map(BillerCaller)
    }
}

/// 403 for a key that is not the merchant's newest (an older one inside its grace period).
fn not_newest_key() -> ApiError {
    ApiError::new(ErrorCode::Forbidden).with_detail(Message::ApiKeyNotNewest)
}

/// Takes the lock that serializes every change to one merchant's keys: its row, `FOR NO KEY
/// UPDATE`, which the foreign-key checks of order inserts (`FOR KEY SHARE`) do not wait for.
/// `None` when there is no such merchant, else whether it is disabled.
async fn lock_partner_keys(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    role: PartnerRole,
) -> ApiResult<Option<bool>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT disabled_at IS NOT NULL AS "disabled!" FROM merchants WHERE id = $1 AND role = $2 FOR NO KEY UPDATE"#,
        merchant_id,
        role.as_str(),
    )
    .fetch_optional(conn)
    .await?)
}

/// Locks the caller's merchant and checks, now that no other key change can run, that the
/// calling key still works (401 otherwise) and is still the newest (403 otherwise). The
/// statements after the lock read a fresh snapshot, so a rotation that committed while this
/// one waited is seen, and its key is the newest.
pub(crate) async fn lock_as_newest_key(
    conn: &mut PgConnection,
    caller: &MerchantCaller,
) -> ApiResult<()> {
    if !caller.newest_key {
        return Err(not_newest_key());
    }
    if lock_partner_keys(conn, caller.merchant_id, caller.role).await? != Some(false) {
        return Err(ApiError::new(ErrorCode::Unauthenticated));
    }
    let key = sqlx::query!(
        r#"SELECT (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) AS "working!",
                  NOT EXISTS (
                      SELECT 1 FROM merchant_api_keys n
                      WHERE n.merchant_id = k.merchant_id
                        AND (n.created_at, n.id) > (k.created_at, k.id)
                        AND n.revoked_at IS NULL AND (n.expires_at IS NULL OR n.expires_at > now())
                  ) AS "newest!"
           FROM merchant_api_keys k WHERE k.id = $1 AND k.merchant_id = $2"#,
        caller.key_id,
        caller.merchant_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    match key {
        Some(key) if key.working && key.newest => Ok(()),
        Some(key) if key.working => Err(not_newest_key()),
        _ => Err(ApiError::new(ErrorCode::Unauthenticated)),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMerchant {
    pub name: String,
    /// 3-20 upper-case letters and digits; printed in static QR codes.
    #[schema(example = "DONGBA12")]
    pub code: String,
    /// ISO 18245 merchant category code.
    #[schema(example = "5411")]
    pub category_code: String,
    pub limit_category: LimitCategory,
    pub callback_url: Option<String>,
    /// A decimal string, 0 to 0.1.
    #[schema(value_type = String, example = "0.005")]
    pub fee_rate: Decimal,
    #[serde(default)]
    pub events: Vec<String>,
    pub city: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Merchant {
    pub id: Uuid,
    pub name: String,
    pub code: String,
    pub category_code: String,
    pub limit_category: LimitCategory,
    pub callback_url: Option<String>,
    #[schema(value_type = String, example = "0.005")]
    pub fee_rate: Decimal,
    pub events: Vec<String>,
    pub city: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// The creation answer: the merchant, with its API key and webhook secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedMerchant {
    #[serde(flatten)]
    pub merchant: Merchant,
    pub api_key: String,
    pub webhook_secret: String,
}

pub(crate) fn check_callback_url(url: Option<&str>, mode: Mode) -> bool {
    let Some(url) = url else { return true };
    url::Url::parse(url).is_ok_and(|parsed| Destinations::for_mode(mode).url_allowed(&parsed))
}

pub(crate) fn check_events(events: &[String], role: PartnerRole) -> bool {
    events.iter().all(|e| role.receives(e))
}

/// Onboard a merchant (admins).
#[utoipa::path(post, path = "/v1/admin/merchants", tag = "merchants", security(("bearer" = [])),
    request_body = NewMerchant,
    responses(
        (status = 201, body = CreatedMerchant, description = "`api_key` and `webhook_secret` are shown only here"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The code is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_merchant(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Json(merchant): Json<NewMerchant>,
) -> ApiResult<(StatusCode, Json<CreatedMerchant>)> {
    let fee_ok = merchant.fee_rate >= Decimal::ZERO && merchant.fee_rate <= Decimal::new(1, 1);
    FieldChecks::new()
        .check(
            length_within(&merchant.name, 1, 100),
            "name",
            Message::TextLength { min: 1, max: 100 },
        )
        .check(
            check_callback_url(merchant.callback_url.as_deref(), state.mode),
            "callback_url",
            Message::FieldInvalidValue,
        )
        .check(
            check_events(&merchant.events, PartnerRole::Merchant),
            "events",
            Message::FieldInvalidValue,
        )
        .check(fee_ok, "fee_rate", Message::FieldInvalidValue)
        .finish()?;
    let mut tx = state.db.begin().await?;
    let created = insert_merchant(&mut tx, &merchant).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Inserts a merchant with its ledger account, first API key and webhook secret (also used by
/// the demo data).
pub async fn insert_merchant(
    conn: &mut PgConnection,
    merchant: &NewMerchant,
) -> ApiResult<CreatedMerchant> {
    insert_partner(conn, merchant, PartnerRole::Merchant).await
}

/// Inserts a merchant or a biller (the biller's own row is the caller's to add).
pub async fn insert_partner(
    conn: &mut PgConnection,
    merchant: &NewMerchant,
    role: PartnerRole,
) -> ApiResult<CreatedMerchant> {
    let id = Uuid::new_v4();
    let ledger_account_id = ledger::owned_account(conn, role.account_kind(), id).await?;
    let webhook_secret = new_webhook_secret();
    sqlx::query!(
        "INSERT INTO merchants (id, code, name, category_code, limit_category, callback_url, fee_rate, events,
                                city, webhook_secret, ledger_account_id, role)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, 'Hue'), $10, $11, $12)",
        id,
        merchant.code,
        merchant.name.trim(),
        merchant.category_code,
        merchant.limit_category as LimitCategory,
        merchant.callback_url,
        merchant.fee_rate,
        &merchant.events,
        merchant.city,
        webhook_secret,
        ledger_account_id,
        role.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    let api_key = issue_api_key(conn, id, role).await?;
    let merchant = load(conn, id)
        .await?
        .ok_or_else(|| ApiError::internal("merchant row vanished"))?;
    Ok(CreatedMerchant {
        merchant,
        api_key,
        webhook_secret,
    })
}

pub fn new_webhook_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system provides randomness");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Issues a key with no expiry and answers it (shown once, stored as SHA-256). Its
/// `created_at` is later than every other key's of the merchant (the clock, not the
/// transaction's start, and never behind the newest), so it is the newest key. Callers other
/// than onboarding hold [`lock_partner_keys`] and have given every older working key an
/// expiry or revoked it first (one unexpiring key per merchant, enforced by an index).
async fn issue_api_key(
    conn: &mut PgConnection,
    merchant_id: Uuid,
    role: PartnerRole,
) -> ApiResult<String> {
    let api_key = format!("{}{}", role.key_prefix(), random_token());
    let key_hash = sha256(api_key.as_bytes());
    sqlx::query!(
        "INSERT INTO merchant_api_keys (id, merchant_id, key_hash, created_at)
         VALUES ($1, $2, $3, GREATEST(clock_timestamp(),
                                      (SELECT max(created_at) + interval '1 microsecond'
                                       FROM merchant_api_keys WHERE merchant_id = $2)))",
        Uuid::new_v4(),
        merchant_id,
        key_hash.as_slice(),
    )
    .execute(conn)
    .await?;
    Ok(api_key)
}

pub async fn load(conn: &mut PgConnection, id: Uuid) -> ApiResult<Option<Merchant>> {
    Ok(sqlx::query_as!(
        Merchant,
        r#"SELECT id, name, code, category_code, limit_category AS "limit_category: LimitCategory", callback_url,
                  fee_rate, events, city, disabled_at IS NOT NULL AS "disabled!", created_at
           FROM merchants WHERE id = $1"#,
        id,
    )
    .fetch_optional(conn)
    .await?
    // NUMERIC(7,6) reads back as 0.005000; answer the rate as it was given.
    .map(|merchant| Merchant { fee_rate: merchant.fee_rate.normalize(), ..merchant }))
}

/// Disable a merchant (admins): its keys stop working and its orders can no longer be paid.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/disable", tag = "merchants", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Merchant), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn disable_merchant(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Merchant>> {
    let mut conn = state.db.acquire().await?;
    sqlx::query!(
        "UPDATE merchants SET disabled_at = COALESCE(disabled_at, now()) WHERE id = $1",
        id
    )
    .execute(&mut *conn)
    .await?;
    let merchant = load(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(merchant))
}

/// The calling merchant's profile.
#[utoipa::path(get, path = "/v1/merchant/profile", tag = "merchants", security(("merchant_key" = [])),
    responses((status = 200, body = Merchant), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn get_profile(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<Json<Merchant>> {
    let mut conn = state.db.acquire().await?;
    let merchant = load(&mut conn, caller.merchant_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    Ok(Json(merchant))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub callback_url: Option<String>,
    pub events: Option<Vec<String>>,
}

/// Change the callback URL or the subscribed events.
#[utoipa::path(patch, path = "/v1/merchant/profile", tag = "merchants", security(("merchant_key" = [])),
    request_body = ProfileUpdate,
    responses((status = 200, body = Merchant), (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Only the newest API key may change the profile")))]
async fn update_profile(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Json(update): Json<ProfileUpdate>,
) -> ApiResult<Json<Merchant>> {
    FieldChecks::new()
        .check(
            check_callback_url(update.callback_url.as_deref(), state.mode),
            "callback_url",
            Message::FieldInvalidValue,
        )
        .check(
            update
                .events
                .as_deref()
                .is_none_or(|events| check_events(events, caller.role)),
            "events",
            Message::FieldInvalidValue,
        )
        .finish()?;
    let mut tx = state.db.begin().await?;
    // Where callbacks go is the key holder's to change only with the newest key: a leaked old
    // key inside its grace period must not redirect them.
    lock_as_newest_key(&mut tx, &caller).await?;
    sqlx::query!(
        "UPDATE merchants SET callback_url = COALESCE($2, callback_url), events = COALESCE($3, events) WHERE id = $1",
        caller.merchant_id,
        update.callback_url,
        update.events.as_deref(),
    )
    .execute(&mut *tx)
    .await?;
    let merchant = load(&mut tx, caller.merchant_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    tx.commit().await?;
    Ok(Json(merchant))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedKey {
    /// The new key, shown this once.
    pub api_key: String,
    /// Until when, at the latest, the keys issued before keep working (one already due to
    /// expire sooner keeps its earlier expiry).
    pub previous_keys_expire_at: DateTime<Utc>,
}

/// Issue a new API key; the older ones keep working for the configured grace period. Only the
/// newest key may rotate: an older one, even inside its grace period, gets 403.
#[utoipa::path(post, path = "/v1/merchant/api-keys/rotate", tag = "merchants", security(("merchant_key" = [])),
    responses(
        (status = 201, body = RotatedKey, description = "`api_key` is shown only here"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "The calling key is not the merchant's newest"),
    ))]
async fn rotate_api_key(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<(StatusCode, Json<RotatedKey>)> {
    rotate_keys(&state, &caller).await
}

pub(crate) async fn rotate_keys(
    state: &AppState,
    caller: &MerchantCaller,
) -> ApiResult<(StatusCode, Json<RotatedKey>)> {
    let mut tx = state.db.begin().await?;
    lock_as_newest_key(&mut tx, caller).await?;
    let expires_at = sqlx::query_scalar!(
        r#"SELECT now() + make_interval(secs => $1) AS "at!""#,
        state.merchant_key_grace_secs as f64
    )
    .fetch_one(&mut *tx)
    .await?;
    // Only ever shortens: keys with no expiry or a later one get the end of the grace period;
    // keys already due sooner, revoked keys and any key newer than the caller's are untouched.
    // Every key touched is older than the one issued next (see `issue_api_key`).
    sqlx::query!(
        "UPDATE merchant_api_keys k SET expires_at = $3
         WHERE k.merchant_id = $1 AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > $3)
           AND (k.created_at, k.id) <= (SELECT c.created_at, c.id FROM merchant_api_keys c WHERE c.id = $2)",
        caller.merchant_id,
        caller.key_id,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    let api_key = issue_api_key(&mut tx, caller.merchant_id, caller.role).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(RotatedKey {
            api_key,
            previous_keys_expire_at: expires_at,
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedKeys {
    /// How many of the merchant's other keys were still working and no longer do.
    pub revoked: u64,
}

/// Revoke every other API key of the calling merchant at once (say one leaked), grace period or
/// not. Only the newest key may do this.
#[utoipa::path(post, path = "/v1/merchant/api-keys/revoke-others", tag = "merchants", security(("merchant_key" = [])),
    responses(
        (status = 200, body = RevokedKeys),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "The calling key is not the merchant's newest"),
    ))]
async fn revoke_other_api_keys(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<Json<RevokedKeys>> {
    revoke_other_keys(&state, &caller).await
}

pub(crate) async fn revoke_other_keys(
    state: &AppState,
    caller: &MerchantCaller,
) -> ApiResult<Json<RevokedKeys>> {
    let mut tx = state.db.begin().await?;
    lock_as_newest_key(&mut tx, caller).await?;
    let revoked = sqlx::query!(
        "UPDATE merchant_api_keys SET revoked_at = now()
         WHERE merchant_id = $1 AND id <> $2 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())",
        caller.merchant_id,
        caller.key_id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Json(RevokedKeys { revoked }))
}

/// The answer to an admin's key reset.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResetKeys {
    pub merchant_id: Uuid,
    /// The merchant's one working key from now on, shown this once.
    pub api_key: String,
    /// How many keys were still working and no longer do.
    pub revoked: u64,
}

/// Revoke every API key of a merchant at once and issue one new key (admins): for a merchant
/// that lost its key, or whose newest key leaked.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/api-keys/reset", tag = "merchants", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 201, body = ResetKeys, description = "`api_key` is shown only here"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn reset_api_keys(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<ResetKeys>)> {
    reset_keys(&state, id, PartnerRole::Merchant).await
}

pub(crate) async fn reset_keys(
    state: &AppState,
    id: Uuid,
    role: PartnerRole,
) -> ApiResult<(StatusCode, Json<ResetKeys>)> {
    let mut tx = state.db.begin().await?;
    lock_partner_keys(&mut tx, id, role)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let revoked = sqlx::query!(
        "UPDATE merchant_api_keys SET revoked_at = now()
         WHERE merchant_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let api_key = issue_api_key(&mut tx, id, role).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(ResetKeys {
            merchant_id: id,
            api_key,
            revoked,
        }),
    ))
}

/// 404 unless a partner of `role` has this id (admins' routes about one merchant or biller).
pub async fn exists_as(db: &sqlx::PgPool, id: Uuid, role: PartnerRole) -> ApiResult<()> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM merchants WHERE id = $1 AND role = $2) AS "exists!""#,
        id,
        role.as_str(),
    )
    .fetch_one(db)
    .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::NotFound))
    }
}
