//! Secrets in development: a key that is not configured is generated once (with a warning),
//! kept in `development_secrets`, and reused on every later start, so tokens and payment PINs
//! survive a restart and receipts stay verifiable. Production has them all configured
//! (`Config::check_mode`).

use sqlx::PgPool;

use crate::config::{Config, Mode};
use crate::crypto::random_token;

pub async fn fill_in_development(mut config: Config, db: &PgPool) -> anyhow::Result<Config> {
    if config.mode != Mode::Development {
        return Ok(config);
    }
    if config.auth.jwt_secret.is_none() {
        config.auth.jwt_secret = Some(stored_or_new(db, "CIVICPAY_JWT_SECRET").await?);
    }
    if config.wallet.pin_pepper.is_none() {
        config.wallet.pin_pepper = Some(stored_or_new(db, "CIVICPAY_PIN_PEPPER").await?);
    }
    // A generated key (`random_token`) is 32 random bytes in base64url without padding: an
    // Ed25519 seed in the very form the setting takes.
    if config.receipts.signing_key.is_none() {
        let key = stored_or_new(db, "CIVICPAY_RECEIPT_SIGNING_KEY").await?;
        config.receipts.signing_key = Some(key);
    }
    Ok(config)
}

async fn stored_or_new(db: &PgPool, name: &str) -> anyhow::Result<String> {
    let candidate = random_token();
    let value = sqlx::query_scalar!(
        "INSERT INTO development_secrets (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING value",
        name,
        candidate,
    )
    .fetch_one(db)
    .await?;
    if value == candidate {
        tracing::warn!(
            setting = name,
            "not set: generated a development key, kept in development_secrets"
        );
    }
    Ok(value)
}
