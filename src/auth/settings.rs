//! What the application state holds for auth, built once from the configuration: the token
//! keys, the one-time-code key, the SMS sender, the login limits (and bill lookups' limit,
//! counted in the same table) and the password hasher. This
//! file and the ones it uses (`sms`, `login_limits`, `password`) use nothing above the
//! foundations, so the state (`state.rs`) can hold them while the rest of auth uses the state.

use std::net::IpAddr;
use std::sync::Arc;

use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::auth::login_limits::{FailureKind, LoginLimits, SubjectLimit};
use crate::auth::password::Hasher;
use crate::auth::sms::{SandboxSms, SmsSender};
use crate::config::{Config, SmsProvider};
use crate::crypto::{hmac_sha256, random_token};

/// The auth part of the application state.
pub struct AuthState {
    pub keys: TokenKeys,
    /// Keys the hashes of one-time codes; derived from the signing secret.
    pub(super) otp_key: [u8; 32],
    pub sms: Option<Arc<dyn SmsSender>>,
    /// The same sender as `sms` when it is the sandbox, for its read-back route.
    pub sandbox_sms: Option<Arc<SandboxSms>>,
    pub limits: LoginLimits,
    /// Bill lookups by a code that names no bill, per signed-in account (`bills::citizen`).
    pub bill_lookups: SubjectLimit,
    /// Every password hash of the server's requests takes its turn here.
    pub passwords: Hasher,
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
            limits: LoginLimits::from(&config.auth),
            bill_lookups: SubjectLimit {
                kind: FailureKind::BillLookup,
                per_subject: i64::from(config.auth.bill_lookup_failures_per_account),
                window_secs: i64::from(config.auth.bill_lookup_window_secs),
            },
            passwords: Hasher::from_config(&config.auth),
            otp_global_hourly_cap: i64::from(config.auth.otp_global_hourly_cap),
            trusted_proxies: config.auth.trusted_proxies.clone(),
        }
    }
}

/// The keys access tokens are signed and verified with (`auth::tokens`).
pub struct TokenKeys {
    pub(super) encoding: EncodingKey,
    pub(super) decoding: DecodingKey,
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}
