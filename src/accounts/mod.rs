//! Accounts: a citizen's own profile (`/v1/me`) and the staff an admin manages. How callers
//! prove who they are is `crate::auth`.

pub mod demo;
pub mod staff;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::http::error::{ConstraintRule, FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json};
use crate::state::AppState;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[
    ConstraintRule {
        constraint: "accounts_phone_key",
        code: ErrorCode::PhoneTaken,
        field: "phone",
    },
    ConstraintRule {
        constraint: "accounts_full_name_length",
        code: ErrorCode::ValidationFailed,
        field: "full_name",
    },
    ConstraintRule {
        constraint: "accounts_unit_code_fkey",
        code: ErrorCode::ValidationFailed,
        field: "unit_code",
    },
    ConstraintRule {
        constraint: "accounts_unit_by_role",
        code: ErrorCode::ValidationFailed,
        field: "unit_code",
    },
    ConstraintRule {
        constraint: "accounts_language_valid",
        code: ErrorCode::ValidationFailed,
        field: "language",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Language {
    Vi,
    En,
}

/// An account as its owner, or an admin, sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: Uuid,
    /// E.164.
    #[schema(example = "+84912345678")]
    pub phone: String,
    pub full_name: String,
    pub role: Role,
    /// The unit an officer or supervisor works in.
    pub unit_code: Option<String>,
    pub language: Language,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .merge(staff::routes())
}

pub async fn load(db: &sqlx::PgPool, id: Uuid) -> ApiResult<Option<Account>> {
    Ok(sqlx::query_as!(
        Account,
        r#"SELECT id, phone, full_name, role AS "role: Role", unit_code, language AS "language: Language",
                  disabled_at IS NOT NULL AS "disabled!", created_at
           FROM accounts WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?)
}

/// The caller's own account.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, body = Account),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Account>> {
    let account = load(&state.db, caller.account_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    Ok(Json(account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeUpdate {
    /// 1 to 200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub full_name: Option<String>,
    pub language: Option<Language>,
}

/// Change the caller's name or language.
#[utoipa::path(patch, path = "/v1/me", tag = "accounts", security(("bearer" = [])), request_body = MeUpdate,
    responses(
        (status = 200, body = Account),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    Json(update): Json<MeUpdate>,
) -> ApiResult<Json<Account>> {
    let name_ok = update
        .full_name
        .as_deref()
        .is_none_or(|n| length_within(n, 1, 200));
    FieldChecks::new()
        .check(
            name_ok,
            "full_name",
            Message::TextLength { min: 1, max: 200 },
        )
        .finish()?;
    sqlx::query!(
        "UPDATE accounts SET full_name = COALESCE($2, full_name), language = COALESCE($3, language),
                updated_at = now()
         WHERE id = $1",
        caller.account_id,
        update.full_name.as_deref().map(str::trim),
        update.language as Option<Language>,
    )
    .execute(&state.db)
    .await?;
    get_me(State(state), caller).await
}
