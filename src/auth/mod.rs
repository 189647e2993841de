//! Who is calling: one-time codes by SMS, passwords, access and refresh tokens, login
//! protection, and the access-control extractor every route uses. The accounts themselves
//! (profile, staff administration) live in `accounts`, above this module.
//!
//! What the application state holds of auth ([`settings`]: keys, limits, the password hasher,
//! the SMS sender) lives in files that use nothing above the foundations, so the state can
//! hold it while every other file here uses the state.

pub mod access;
pub mod client_addr;
mod handlers;
pub mod login_limits;
pub mod otp;
pub mod password;
mod role;
pub mod settings;
pub mod sms;
pub mod tokens;

use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub use access::{Caller, Role, Scope};
pub use handlers::sandbox_messages;

pub fn routes() -> OpenApiRouter<AppState> {
    handlers::routes()
}

/// How long records of codes, failed logins and dead refresh tokens are kept.
const RETENTION: &str = "1 day";

/// Deletes records no limit or session needs any more.
pub async fn purge_expired(db: &PgPool) -> Result<(), sqlx::Error> {
    let retention = RETENTION;
    sqlx::query!(
        "DELETE FROM otp_codes WHERE created_at < now() - $1::text::interval",
        retention
    )
    .execute(db)
    .await?;
    sqlx::query!(
        "DELETE FROM login_failures WHERE failed_at < now() - $1::text::interval",
        retention
    )
    .execute(db)
    .await?;
    sqlx::query!(
        "DELETE FROM refresh_tokens WHERE expires_at < now() - $1::text::interval",
        retention
    )
    .execute(db)
    .await?;
    Ok(())
}
