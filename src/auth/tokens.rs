//! Access tokens are short-lived JWTs (HS256, 15 minutes) signed with the configured key; the
//! algorithm is fixed on verification, so `alg: none` or a key-confusion trick never passes.
//! Refresh tokens are random, stored as SHA-256, used once: each refresh rotates to a new token
//! of the same family, and presenting a used one revokes the whole family (someone else has it).

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::role::Role;
use super::settings::TokenKeys;
use crate::crypto::{random_token, sha256};
use crate::http::{ApiError, ApiResult, ErrorCode};

pub const ACCESS_TTL_SECS: i64 = 15 * 60;
pub const REFRESH_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub unit: Option<String>,
    pub exp: i64,
    pub iat: i64,
    /// When it was issued, in milliseconds: `iat`'s seconds are too coarse to tell a token made
    /// just before its account's sessions were ended from one made just after. Absent from
    /// tokens issued before it existed (read as `iat`).
    #[serde(default)]
    pub iat_ms: i64,
    pub jti: Uuid,
}

impl Claims {
    pub fn issued_at_ms(&self) -> i64 {
        if self.iat_ms > 0 {
            self.iat_ms
        } else {
            self.iat.saturating_mul(1000)
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

pub fn issue_access(
    keys: &TokenKeys,
    account_id: Uuid,
    role: Role,
    unit: Option<String>,
) -> String {
    let now_ms = Utc::now().timestamp_millis();
    let now = now_ms.div_euclid(1000);
    let claims = Claims {
        sub: account_id,
        role,
        unit,
        iat: now,
        iat_ms: now_ms,
        exp: now + ACCESS_TTL_SECS,
        jti: Uuid::new_v4(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
        .expect("HS256 signing of plain claims cannot fail")
}

/// The claims of a genuine, unexpired access token.
pub fn verify_access(keys: &TokenKeys, token: &str) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation)
        .ok()
        .map(|data| data.claims)
}

/// Issues the first refresh token of a new family (a new login).
pub async fn start_family(conn: &mut PgConnection, account_id: Uuid) -> ApiResult<String> {
    insert_refresh_token(conn, account_id, Uuid::new_v4()).await
}

async fn insert_refresh_token(
    conn: &mut PgConnection,
    account_id: Uuid,
    family_id: Uuid,
) -> ApiResult<String> {
    let token = random_token();
    let expires_at = Utc::now() + Duration::days(REFRESH_TTL_DAYS);
    let token_hash = sha256(token.as_bytes());
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, family_id, account_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        Uuid::new_v4(),
        family_id,
        account_id,
        token_hash.as_slice(),
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(token)
}

/// Uses `presented` up and returns the account it belongs to and its successor token.
/// A used token revokes its family; unknown, revoked and expired tokens are 401.
pub async fn rotate(db: &PgPool, presented: &str) -> ApiResult<(Uuid, String)> {
    let presented_hash = sha256(presented.as_bytes());
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"SELECT id, family_id, account_id, used_at, revoked_at, expires_at < now() AS "expired!"
           FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE"#,
        presented_hash.as_slice(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(unauthenticated)?;
    if row.used_at.is_some() {
        tracing::warn!(family = %row.family_id, "refresh token reused: revoking its family");
        revoke_family(&mut tx, row.family_id).await?;
        tx.commit().await?;
        return Err(unauthenticated());
    }
    if row.revoked_at.is_some() || row.expired {
        return Err(unauthenticated());
    }
    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now() WHERE id = $1",
        row.id
    )
    .execute(&mut *tx)
    .await?;
    let successor = insert_refresh_token(&mut tx, row.account_id, row.family_id).await?;
    tx.commit().await?;
    Ok((row.account_id, successor))
}

/// Logout: the family of `presented` can no longer refresh. Unknown tokens are ignored.
pub async fn revoke_family_of(db: &PgPool, presented: &str) -> ApiResult<()> {
    let presented_hash = sha256(presented.as_bytes());
    let mut tx = db.begin().await?;
    let family = sqlx::query_scalar!(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
        presented_hash.as_slice(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(family) = family {
        revoke_family(&mut tx, family).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> ApiResult<()> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Every session of the account ends (password reset, account disabled): its refresh tokens
/// are revoked, and access tokens issued before now stop working (the access check compares
/// their issue time with `sessions_valid_after`).
pub async fn revoke_all(conn: &mut PgConnection, account_id: Uuid) -> ApiResult<()> {
    sqlx::query!(
        "WITH revoked AS (
             UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL)
         UPDATE accounts SET sessions_valid_after = clock_timestamp() WHERE id = $1",
        account_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn unauthenticated() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_token_verifies_with_its_key_only() {
        let id = Uuid::new_v4();
        let token = issue_access(&keys(), id, Role::Officer, Some("19753".into()));
        let claims = verify_access(&keys(), &token).unwrap();
        assert_eq!(
            (claims.sub, claims.role, claims.unit.as_deref()),
            (id, Role::Officer, Some("19753"))
        );
        assert_eq!(claims.exp - claims.iat, ACCESS_TTL_SECS);
        let other = TokenKeys::from_secret(b"another key of at least 32 bytes!!");
        assert!(verify_access(&other, &token).is_none());
    }
}
