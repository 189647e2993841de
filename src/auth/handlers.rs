//! The `/v1/auth` routes: one-time codes, registration, login, refresh, logout, password reset;
//! and the SMS sandbox's read-back route in development.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::access::Role;
use super::client_addr::ClientAddr;
use super::otp::{self, Purpose};
use super::password;
use super::sms::SentSms;
use super::tokens::{self, ACCESS_TTL_SECS, TokenPair};
use crate::crypto::constant_time_eq;
use crate::domain::{NationalId, Phone};
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_otp))
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(reset_password))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OtpRequest {
    /// `0912345678`, `84912345678` or `+84912345678`.
    #[schema(value_type = String, example = "0912345678", max_length = 32, pattern = r"^[ .()-]*(\+[ .()-]*8[ .()-]*4|8[ .()-]*4|0)[ .()-]*[35789]([ .()-]*[0-9]){8}[ .()-]*$")]
    pub phone: Phone,
    pub purpose: Purpose,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpSent {
    /// Seconds the code stays valid.
    pub expires_in: i64,
}

/// Send a one-time code by SMS. The answer is the same whether or not the phone has an account.
#[utoipa::path(post, path = "/v1/auth/otp", tag = "auth", request_body = OtpRequest,
    responses(
        (status = 202, body = OtpSent, description = "A code was sent, if the purpose applies to this phone"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Invalid phone or purpose"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many codes asked for"),
    ))]
async fn send_otp(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(request): Json<OtpRequest>,
) -> ApiResult<(StatusCode, Json<OtpSent>)> {
    otp::issue(
        &state.db,
        &state.auth,
        &request.phone,
        request.purpose,
        client,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(OtpSent {
            expires_in: otp::CODE_TTL_SECS,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(value_type = String, example = "0912345678", max_length = 32, pattern = r"^[ .()-]*(\+[ .()-]*8[ .()-]*4|8[ .()-]*4|0)[ .()-]*[35789]([ .()-]*[0-9]){8}[ .()-]*$")]
    pub phone: Phone,
    /// The code sent with purpose `register`.
    #[schema(pattern = "^[0-9]{6}$")]
    pub otp: String,
    /// 1 to 200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub full_name: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Create a citizen account with a phone proven by a one-time code.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = TokenPair),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`phone_taken`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed` or `otp_invalid`"),
    ))]
async fn register(
    State(state): State<AppState>,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<TokenPair>)> {
    FieldChecks::new()
        .check(
            length_within(&request.full_name, 1, 200),
            "full_name",
            Message::TextLength { min: 1, max: 200 },
        )
        .check(
            password::fits(&request.password),
            "password",
            password::length_message(),
        )
        .finish()?;
    // The turn to hash comes first: a registration refused for want of one keeps its code.
    let turn = state.auth.passwords.turn().await?;
    otp::redeem(
        &state.db,
        &state.auth,
        &request.phone,
        Purpose::Register,
        &request.otp,
    )
    .await?;
    let password_hash = turn.hash(request.password).await?;
    let account_id = Uuid::new_v4();
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "INSERT INTO accounts (id, phone, full_name, password_hash, role) VALUES ($1, $2, $3, $4, 'citizen')",
        account_id,
        request.phone.as_str(),
        request.full_name.trim(),
        password_hash,
    )
    .execute(&mut *tx)
    .await?;
    // A new account owns no counter dossier filed for its phone: the phone proves nothing (a
    // typo at the counter, a recycled number). Those dossiers reach it when its wallet is
    // verified with the national ID the officer recorded, or with the code texted at the
    // counter (`dossiers::claims`).
    let tokens = issue_tokens(&state, &mut tx, account_id, Role::Citizen, None).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub phone: String,
    pub password: String,
}

/// Log in with phone and password. Wrong phone and wrong password answer alike.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong phone or password"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many failed logins"),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    // An unparseable phone is counted under its raw text, like any unknown phone.
    let phone_key =
        Phone::parse(&request.phone).map_or(request.phone.clone(), |p| p.as_str().to_owned());
    let limits = &state.auth.limits;
    // The turn to hash comes before any transaction: logins queued behind a burst hold no
    // database connection, and one refused with 503 has recorded nothing.
    let turn = state.auth.passwords.turn().await?;
    // A short transaction lets the attempt through the limits (counted as a failure until it
    // succeeds) and reads the account. It commits before Argon2 runs: no connection, lock or
    // transaction is held while the password is checked.
    let mut tx = state.db.begin().await?;
    let attempt = limits.reserve(&mut tx, &phone_key, client).await?;
    let account = sqlx::query!(
        r#"SELECT id, password_hash, disabled_at IS NOT NULL AS "disabled!"
           FROM accounts WHERE phone = $1"#,
        phone_key,
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
    let password_ok = turn.verify(request.password, stored_hash).await?;
    let Some(account) = account.filter(|a| password_ok && !a.disabled) else {
        // The reservation already counts this failure.
        return Err(ApiError::new(ErrorCode::Unauthenticated));
    };
    let mut tx = state.db.begin().await?;
    // The account as it was checked: neither disabled nor given another password while the
    // hash ran (else this attempt stays a failure).
    let current = sqlx::query!(
        r#"SELECT role AS "role: Role", unit_code FROM accounts
           WHERE id = $1 AND password_hash = $2 AND disabled_at IS NULL"#,
        account.id,
        account.password_hash,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    limits.forgive_through(&mut tx, &phone_key, attempt).await?;
    let tokens = issue_tokens(&state, &mut tx, account.id, current.role, current.unit_code).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Trade a refresh token for a new pair. Each refresh token works once; presenting a used one
/// again ends every session descended from the same login.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Unknown, used, revoked or expired refresh token"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    let (account_id, refresh_token) = tokens::rotate(&state.db, &request.refresh_token).await?;
    let account = sqlx::query!(
        r#"SELECT role AS "role: Role", unit_code FROM accounts WHERE id = $1 AND disabled_at IS NULL"#,
        account_id,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    let access_token = tokens::issue_access(
        &state.auth.keys,
        account_id,
        account.role,
        account.unit_code,
    );
    Ok(Json(token_pair(access_token, refresh_token)))
}

/// End the session the refresh token belongs to. Unknown tokens are ignored.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "The session's refresh tokens no longer work")))]
async fn logout(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    tokens::revoke_family_of(&state.db, &request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    #[schema(value_type = String, example = "0912345678", max_length = 32, pattern = r"^[ .()-]*(\+[ .()-]*8[ .()-]*4|8[ .()-]*4|0)[ .()-]*[35789]([ .()-]*[0-9]){8}[ .()-]*$")]
    pub phone: Phone,
    /// The code sent with purpose `reset_password`.
    #[schema(pattern = "^[0-9]{6}$")]
    pub otp: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    /// The 12-digit national ID number the wallet was verified with: required when the
    /// account's wallet is identity-verified, ignored otherwise. A missing or wrong one is
    /// answered like a wrong code (`otp_invalid`) and uses up one of the code's attempts.
    #[schema(
        example = "046095012345",
        pattern = "^(001|002|004|006|008|010|011|012|014|015|017|019|020|022|024|025|026|027|030|031|033|034|035|036|037|038|040|042|044|045|046|048|049|051|052|054|056|058|060|062|064|066|067|068|070|072|074|075|077|079|080|082|083|084|086|087|089|091|092|093|094|095|096)[0-9]{9}$"
    )]
    pub national_id: Option<String>,
}

/// Tried in place of the caller's code when the national ID is missing or wrong, so that the
/// attempt is counted against the live code like any wrong guess (never more than one) and the
/// answer does not tell which of the two was wrong. Six digits like a real code, so that no
/// check of a code's shape can skip the count; should it ever be the live code, that code is
/// used up and the reset is refused all the same.
const NOT_THE_CODE: &str = "000000";

/// Set a new password with a one-time code; every session of the account ends. Only citizens
/// reset their password by SMS: a staff password is reset by an admin
/// (`POST /v1/admin/staff/{id}/password`), and a staff phone is answered like an unknown one. A
/// citizen whose wallet is identity-verified also gives the national ID number it was verified
/// with.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password changed; all refresh tokens revoked"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed` (a short password, a malformed `national_id`), or `otp_invalid`: a wrong, expired or used code, a phone with no citizen account, or a verified wallet's national ID missing or wrong, all answered alike"),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    Json(request): Json<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let national_id_hash = checked_national_id_hash(&state, &request)?;
    let turn = state.auth.passwords.turn().await?;
    let proven = identity_proven(&state.db, &request.phone, national_id_hash.as_ref()).await?;
    let code = if proven {
        request.otp.as_str()
    } else {
        NOT_THE_CODE
    };
    otp::redeem(
        &state.db,
        &state.auth,
        &request.phone,
        Purpose::ResetPassword,
        code,
    )
    .await
    .map_err(reset_refusal)?;
    if !proven {
        return Err(reset_refused());
    }
    let password_hash = turn.hash(request.new_password).await?;
    set_citizen_password(&state, &request.phone, password_hash, national_id_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the request's fields; returns the keyed hash of the national ID it gives, if any.
fn checked_national_id_hash(
    state: &AppState,
    request: &ResetPasswordRequest,
) -> ApiResult<Option<[u8; 32]>> {
    let national_id = request.national_id.as_deref().map(NationalId::parse);
    FieldChecks::new()
        .check(
            password::fits(&request.new_password),
            "new_password",
            password::length_message(),
        )
        .check(
            !matches!(national_id, Some(None)),
            "national_id",
            Message::NationalIdMalformed,
        )
        .finish()?;
    // Keyed as wallets store it (`wallet::verify_identity`).
    let national_id_hash = national_id
        .flatten()
        .map(|id| id.keyed(state.wallet.pepper()));
    Ok(national_id_hash)
}

/// Sets the new password of the citizen of `phone` and ends every session of the account, or
/// refuses as a wrong code does.
async fn set_citizen_password(
    state: &AppState,
    phone: &Phone,
    password_hash: String,
    national_id_hash: Option<[u8; 32]>,
) -> ApiResult<()> {
    let mut tx = state.db.begin().await?;
    // Only a citizen's password, and a verified wallet's only with its national ID: checked
    // again here, so an account promoted to staff or a wallet verified since the check above is
    // refused too. A staff phone gets here only with a code sent before it was staff (none is
    // sent to one now) and is refused like an unknown phone.
    let account_id = sqlx::query_scalar!(
        r#"UPDATE accounts a SET password_hash = $2, updated_at = now()
           WHERE a.phone = $1 AND a.role = 'citizen'
             AND NOT EXISTS (SELECT 1 FROM wallets w
                             WHERE w.account_id = a.id AND w.verified_at IS NOT NULL
                               AND (w.national_id_hash = $3) IS NOT TRUE)
           RETURNING a.id AS "id!""#,
        phone.as_str(),
        password_hash,
        national_id_hash.as_ref().map(|hash| hash.as_slice()),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(reset_refused)?;
    // Every refresh token of the account dies. Access tokens are stateless JWTs that live out
    // their `ACCESS_TTL_SECS` (15 minutes); nothing revokes those early.
    tokens::revoke_all(&mut tx, account_id).await?;
    state.auth.limits.forgive(&mut tx, phone.as_str()).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the reset proves what a code alone does not: for a citizen whose wallet is verified,
/// the national ID number it was verified with. Everyone else passes here (an unverified
/// citizen needs the code only; a staff or unknown phone is refused at the update, after its
/// code was tried like anyone's, so it answers as an unknown phone always has).
async fn identity_proven(
    db: &sqlx::PgPool,
    phone: &Phone,
    given: Option<&[u8; 32]>,
) -> ApiResult<bool> {
    let verified = sqlx::query_scalar!(
        r#"SELECT w.national_id_hash AS "national_id_hash?"
           FROM accounts a JOIN wallets w ON w.account_id = a.id
           WHERE a.phone = $1 AND a.role = 'citizen' AND w.verified_at IS NOT NULL"#,
        phone.as_str(),
    )
    .fetch_optional(db)
    .await?;
    Ok(match verified {
        None => true,
        Some(stored) => stored
            .zip(given)
            .is_some_and(|(stored, given)| constant_time_eq(&stored, given)),
    })
}

/// The one answer of every refused reset: a wrong, expired or used code, a phone without a
/// citizen account, a verified wallet's national ID missing or wrong.
fn reset_refused() -> ApiError {
    ApiError::invalid_field("otp", Message::ResetProofInvalid).with_code(ErrorCode::OtpInvalid)
}

fn reset_refusal(error: ApiError) -> ApiError {
    if error.code() == ErrorCode::OtpInvalid {
        reset_refused()
    } else {
        error
    }
}

async fn issue_tokens(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    account_id: Uuid,
    role: Role,
    unit: Option<String>,
) -> ApiResult<TokenPair> {
    let refresh_token = tokens::start_family(conn, account_id).await?;
    let access_token = tokens::issue_access(&state.auth.keys, account_id, role, unit);
    Ok(token_pair(access_token, refresh_token))
}

fn token_pair(access_token: String, refresh_token: String) -> TokenPair {
    TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TTL_SECS,
    }
}

#[derive(Serialize)]
pub struct SandboxMessages {
    /// Newest first.
    pub data: Vec<SentSms>,
}

/// `GET /sandbox/sms/{phone}`: what the sandbox "sent" to a phone. Mounted only while the
/// sandbox is the SMS provider, which production refuses.
pub async fn sandbox_messages(
    State(state): State<AppState>,
    Path(phone): Path<String>,
) -> Result<Json<SandboxMessages>, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound);
    let sandbox = state.auth.sandbox_sms.as_ref().ok_or_else(not_found)?;
    let phone = Phone::parse(&phone).ok_or_else(not_found)?;
    Ok(Json(SandboxMessages {
        data: sandbox.messages(&phone),
    }))
}
