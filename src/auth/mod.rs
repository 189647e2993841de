//! Who is calling: one-time codes by SMS, passwords, access and refresh tokens, login
//! protection, and the access-control extractor every route uses. The accounts themselves
//! (profile, staff administration) live in `crate::accounts`.

pub mod access;
pub mod client_addr;
mod handlers;
pub mod login_limits;
pub mod otp;
pub mod password;
pub mod phone;
pub mod sms;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::config::{Config, SmsProvider};
use sms::{SandboxSms, SmsSender};
use tokens::TokenKeys;

pub use access::{Caller, Role, Scope};
pub use phone::Phone;

/// The auth part of the application state, built once from the configuration.
pub struct AuthState {
    pub keys: TokenKeys,
    /// Keys the hashes of one-time codes; derived from the signing secret.
    otp_key: [u8; 32],
    pub sms: Option<Arc<dyn SmsSender>>,
    /// The same sender as `sms` when it is the sandbox, for its read-back route.
    pub sandbox_sms: Option<Arc<SandboxSms>>,
    pub limits: login_limits::LoginLimits,
    /// Every password hash of the server's requests takes its turn here.
    pub passwords: password::Hasher,
    pub otp_global_hourly_cap: i64,
    pub trusted_proxies: Vec<IpAddr>,
}

impl AuthState {
    pub fn new(config: &Config) -> Self {
        let secret = match &config.auth.jwt_secret {
            Some(secret) => secret.clone().into_bytes(),
            None => {
                tracing::warn!(
                    "CIVICPAY_JWT_SECRET is not set: using a random key for this process only"
                );
                random_token().into_bytes()
            }
        };
        let sandbox_sms = match config.auth.sms_provider(config.mode) {
            SmsProvider::Sandbox => Some(Arc::new(SandboxSms::default())),
            SmsProvider::Disabled => None,
        };
        AuthState {
            keys: TokenKeys::from_secret(&secret),
            otp_key: hmac_sha256(&secret, b"civicpay one-time codes v1"),
            sms: sandbox_sms.clone().map(|s| s as Arc<dyn SmsSender>),
            sandbox_sms,
            limits: login_limits::LoginLimits::from(&config.auth),
            passwords: password::Hasher::from_config(&config.auth),
            otp_global_hourly_cap: i64::from(config.auth.otp_global_hourly_cap),
            trusted_proxies: config.auth.trusted_proxies.clone(),
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    handlers::routes()
}

/// 32 random bytes, base64url: refresh tokens, generated keys.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Equal byte strings, compared in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
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
