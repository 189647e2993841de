//! Access control, one mechanism for every route. A handler names who may call it by its
//! extractor, `Caller<Admins>`, `Caller<Staff>`, `Caller<Citizens>` or `Caller<AnyRole>`, and
//! the checks run in the contract's order: credentials (401), then role (403). The account's
//! role, unit and disabled flag are read from the database on every request (a primary-key
//! lookup), never trusted from the token, so a disabled or moved officer loses access at once.
//! Objects are then checked against [`Scope`]: outside it they do not exist for the caller (404).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use sqlx::PgPool;
use uuid::Uuid;

use super::tokens::verify_access;
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

pub use super::role::Role;

/// Which roles a route admits.
pub trait Policy: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

pub struct AnyRole;
pub struct Citizens;
pub struct Staff;
pub struct Officers;
/// Supervisors and admins: who watch units and approve what an officer may not do alone.
pub struct Supervisors;
pub struct Admins;

impl Policy for AnyRole {
    const ROLES: &'static [Role] = &[Role::Citizen, Role::Officer, Role::Supervisor, Role::Admin];
}
impl Policy for Citizens {
    const ROLES: &'static [Role] = &[Role::Citizen];
}
impl Policy for Staff {
    const ROLES: &'static [Role] = &[Role::Officer, Role::Supervisor, Role::Admin];
}
impl Policy for Officers {
    const ROLES: &'static [Role] = &[Role::Officer];
}
impl Policy for Supervisors {
    const ROLES: &'static [Role] = &[Role::Supervisor, Role::Admin];
}
impl Policy for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// The authenticated account behind a request, as the database has it now.
#[derive(Debug, Clone)]
pub struct Caller<P: Policy = AnyRole> {
    pub account_id: Uuid,
    pub role: Role,
    pub unit_code: Option<String>,
    policy: PhantomData<P>,
}

impl<P: Policy> Caller<P> {
    pub fn scope(&self) -> Scope {
        match (self.role, &self.unit_code) {
            (Role::Admin, _) => Scope::Everything,
            (Role::Citizen, _) => Scope::Own(self.account_id),
            (_, Some(unit)) => Scope::Subtree(unit.clone()),
            // The database forbids a unit-less officer; treat one as seeing nothing.
            (_, None) => Scope::Own(self.account_id),
        }
    }
}

impl<P: Policy> FromRequestParts<AppState> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthenticated = || ApiError::new(ErrorCode::Unauthenticated);
        let token = bearer_token(parts).ok_or_else(unauthenticated)?;
        let claims = verify_access(&state.auth.keys, token).ok_or_else(unauthenticated)?;
        let account = sqlx::query!(
            r#"SELECT role AS "role: Role", unit_code, disabled_at IS NOT NULL AS "disabled!",
                      sessions_valid_after
               FROM accounts WHERE id = $1"#,
            claims.sub,
        )
        .fetch_optional(&state.db)
        .await?
        .filter(|account| !account.disabled)
        // Not a token from before its account's sessions were ended.
        .filter(|account| {
            account
                .sessions_valid_after
                .is_none_or(|ended| claims.issued_at_ms() >= ended.timestamp_millis())
        })
        .ok_or_else(unauthenticated)?;
        if !P::ROLES.contains(&account.role) {
            return Err(ApiError::new(ErrorCode::Forbidden));
        }
        Ok(Caller {
            account_id: claims.sub,
            role: account.role,
            unit_code: account.unit_code,
            policy: PhantomData,
        })
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl<P: Policy> Caller<P> {
    /// Whether the caller watches `unit_code` from above: a supervisor whose subtree holds it,
    /// or an admin. Officers watch no unit (they see their own work only).
    pub async fn supervises(&self, db: &PgPool, unit_code: &str) -> ApiResult<bool> {
        if !matches!(self.role, Role::Supervisor | Role::Admin) {
            return Ok(false);
        }
        self.scope().covers_unit(db, unit_code).await
    }
}

impl Caller<Supervisors> {
    /// The unit a supervisor (or an admin) asks about: the named one within their subtree, else
    /// their own; 404 outside it or for no such unit, 422 for an admin naming none.
    pub async fn unit_in_scope(&self, db: &PgPool, unit: Option<String>) -> ApiResult<String> {
        let unit = match (unit, &self.unit_code) {
            (Some(unit), _) => unit,
            (None, Some(own)) => own.clone(),
            (None, None) => return Err(ApiError::invalid_field("unit", Message::UnitRequired)),
        };
        if !crate::units::exists(db, &unit).await? || !self.supervises(db, &unit).await? {
            return Err(ApiError::not_found(Message::UnitNotFound { code: unit }));
        }
        Ok(unit)
    }
}

/// What part of the world a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Admins.
    Everything,
    /// Staff: their unit and every unit below it.
    Subtree(String),
    /// Citizens: their own objects only.
    Own(Uuid),
}

impl Scope {
    /// Whether an object handled at `unit_code` is visible to this caller.
    pub async fn covers_unit(&self, db: &PgPool, unit_code: &str) -> ApiResult<bool> {
        match self {
            Scope::Everything => Ok(true),
            Scope::Subtree(root) => Ok(crate::units::is_within(db, unit_code, root).await?),
            Scope::Own(_) => Ok(false),
        }
    }

    /// Whether an object owned by `owner` is visible to this caller.
    pub fn covers_owner(&self, owner: Uuid) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Own(me) => *me == owner,
            Scope::Subtree(_) => false,
        }
    }
}
