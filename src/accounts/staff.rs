//! Staff administration: admins create officers, supervisors and other admins, move them
//! between units, change their roles and disable them. Disabling ends every session at once:
//! the access check reads the flag on each request and the refresh tokens are revoked.
//!
//! Staff passwords are reset here, by an admin, and never by SMS (a SIM swap or a recycled
//! number must not take over an officer or an admin): `POST /v1/auth/password/reset` answers a
//! staff phone like an unknown one.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Account, load};
use crate::auth::access::Admins;
use crate::auth::{Caller, Role, password, tokens};
use crate::domain::Phone;
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_staff))
        .routes(routes!(update_staff))
        .routes(routes!(reset_staff_password))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewStaff {
    #[schema(value_type = String, example = "0905123456", max_length = 32, pattern = r"^[ .()-]*(\+[ .()-]*8[ .()-]*4|8[ .()-]*4|0)[ .()-]*[35789]([ .()-]*[0-9]){8}[ .()-]*$")]
    pub phone: Phone,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// 1 to 200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub full_name: String,
    /// `officer`, `supervisor` or `admin`.
    pub role: Role,
    /// Required for officers and supervisors: they act inside this unit's subtree.
    pub unit_code: Option<String>,
}

/// Create a staff account.
#[utoipa::path(post, path = "/v1/admin/staff", tag = "accounts", security(("bearer" = [])), request_body = NewStaff,
    responses(
        (status = 201, body = Account),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an admin"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`phone_taken`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_staff(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Json(staff): Json<NewStaff>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    check_role_and_unit(staff.role, staff.unit_code.as_deref())
        .check(
            length_within(&staff.full_name, 1, 200),
            "full_name",
            Message::TextLength { min: 1, max: 200 },
        )
        .check(
            password::fits(&staff.password),
            "password",
            password::length_message(),
        )
        .finish()?;
    let id = insert_staff_with(&state.db, &state.auth.passwords, &staff).await?;
    let account = load(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::internal("staff row vanished"))?;
    Ok((StatusCode::CREATED, Json(account)))
}

fn check_role_and_unit(role: Role, unit_code: Option<&str>) -> FieldChecks {
    let needs_unit = matches!(role, Role::Officer | Role::Supervisor);
    FieldChecks::new()
        .check(role.is_staff(), "role", Message::RoleNotStaff)
        .check(
            !needs_unit || unit_code.is_some(),
            "unit_code",
            Message::UnitRequiredForRole,
        )
}

/// Inserts a staff account outside a server's requests (`civicpay create-admin`), hashing
/// with the process's standalone hasher.
pub async fn insert_staff(db: &PgPool, staff: &NewStaff) -> ApiResult<Uuid> {
    insert_staff_with(db, password::Hasher::standalone(), staff).await
}

/// Inserts a staff account, its password hashed in its turn with `passwords`.
pub async fn insert_staff_with(
    db: &PgPool,
    passwords: &password::Hasher,
    staff: &NewStaff,
) -> ApiResult<Uuid> {
    let password_hash = passwords.hash(staff.password.clone()).await?;
    let id = Uuid::new_v4();
    let unit_code = if staff.role == Role::Admin {
        None
    } else {
        staff.unit_code.as_deref()
    };
    sqlx::query!(
        "INSERT INTO accounts (id, phone, full_name, password_hash, role, unit_code)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        staff.phone.as_str(),
        staff.full_name.trim(),
        password_hash,
        staff.role as Role,
        unit_code,
    )
    .execute(db)
    .await?;
    Ok(id)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffUpdate {
    /// 1 to 200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub full_name: Option<String>,
    pub role: Option<Role>,
    pub unit_code: Option<String>,
    /// `true` disables the account and ends its sessions; `false` enables it again.
    pub disabled: Option<bool>,
}

/// Change, move or disable a staff account.
#[utoipa::path(patch, path = "/v1/admin/staff/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = StaffUpdate,
    responses(
        (status = 200, body = Account),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an admin"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such staff account"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_staff(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(update): Json<StaffUpdate>,
) -> ApiResult<Json<Account>> {
    let current = load(&state.db, id)
        .await?
        .filter(|account| account.role.is_staff())
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let role = update.role.unwrap_or(current.role);
    // An admin belongs to no unit; anyone else keeps theirs unless moved.
    let unit_code = if role == Role::Admin {
        None
    } else {
        update.unit_code.or(current.unit_code)
    };
    let name_ok = update
        .full_name
        .as_deref()
        .is_none_or(|n| length_within(n, 1, 200));
    check_role_and_unit(role, unit_code.as_deref())
        .check(
            name_ok,
            "full_name",
            Message::TextLength { min: 1, max: 200 },
        )
        .finish()?;

    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "UPDATE accounts SET full_name = COALESCE($2, full_name), role = $3, unit_code = $4,
                disabled_at = CASE WHEN $5::bool IS NULL THEN disabled_at
                                   WHEN $5 THEN COALESCE(disabled_at, now()) ELSE NULL END,
                updated_at = now()
         WHERE id = $1",
        id,
        update.full_name.as_deref().map(str::trim),
        role as Role,
        unit_code,
        update.disabled,
    )
    .execute(&mut *tx)
    .await?;
    if update.disabled == Some(true) {
        tokens::revoke_all(&mut tx, id).await?;
    }
    tx.commit().await?;
    let account = load(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::internal("staff row vanished"))?;
    Ok(Json(account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffPassword {
    /// The new password, 8 to 128 characters, to be handed to the staff member in person.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Set a staff member's password: staff cannot reset theirs by SMS, an admin does it here.
/// Every session of the account ends: its refresh tokens are revoked at once (access tokens
/// already issued are stateless and run out within their 15 minutes), and its failed logins
/// are forgiven so the new password works at once.
#[utoipa::path(post, path = "/v1/admin/staff/{id}/password", tag = "accounts", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = StaffPassword,
    responses(
        (status = 204, description = "Password set; the account's refresh tokens are revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an admin"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such staff account (citizens reset their own)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed`: the password is too short or too long"),
    ))]
async fn reset_staff_password(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<StaffPassword>,
) -> ApiResult<StatusCode> {
    let not_found = || ApiError::new(ErrorCode::NotFound);
    let staff = load(&state.db, id)
        .await?
        .filter(|account| account.role.is_staff())
        .ok_or_else(not_found)?;
    FieldChecks::new()
        .check(
            password::fits(&request.password),
            "password",
            password::length_message(),
        )
        .finish()?;
    let password_hash = state.auth.passwords.hash(request.password).await?;
    let mut tx = state.db.begin().await?;
    let updated = sqlx::query!(
        "UPDATE accounts SET password_hash = $2, updated_at = now()
         WHERE id = $1 AND role <> 'citizen'",
        id,
        password_hash,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(not_found());
    }
    tokens::revoke_all(&mut tx, id).await?;
    state.auth.limits.forgive(&mut tx, &staff.phone).await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.account_id, staff = %id, "staff password reset by an admin");
    Ok(StatusCode::NO_CONTENT)
}
