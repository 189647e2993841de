//! One-time codes sent by SMS to prove a phone: 6 digits, valid 5 minutes, at most 5 guesses.
//! Only an HMAC of the code is stored. Sending is limited per phone (3 per 15 minutes), per
//! client address (10 per hour, IPv6 by /64) and globally (a configurable hourly cap against SMS
//! pumping, counting only codes actually texted); the limits are counted under one lock, so concurrent requests cannot slip past them. The
//! answer never tells whether the phone has an account.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::login_limits::{limit_reached, rate_key};
use super::settings::AuthState;
use crate::domain::Phone;
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode};

pub const CODE_TTL_SECS: i64 = 5 * 60;
pub const MAX_ATTEMPTS: i32 = 5;
const PER_PHONE: (i64, i64) = (3, 15 * 60);
const PER_ADDRESS: (i64, i64) = (10, 60 * 60);
const GLOBAL_WINDOW_SECS: i64 = 60 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Purpose {
    Register,
    ResetPassword,
}

/// Issues and sends a code. For a password reset of a phone without a citizen account (no
/// account, or a staff one: staff passwords are reset by an admin, never by SMS) nothing is
/// sent, but the request is counted and answered exactly the same.
pub async fn issue(
    db: &PgPool,
    auth: &AuthState,
    phone: &Phone,
    purpose: Purpose,
    client: IpAddr,
) -> ApiResult<()> {
    let sms = auth
        .sms
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::ServiceUnavailable))?;
    let client = rate_key(client);
    let mut tx = db.begin().await?;
    crate::db::xact_lock(&mut tx, crate::db::LockSpace::Otp, "issue").await?;
    check_limits(&mut tx, auth, phone, &client).await?;
    let texted_code = store_code(&mut tx, auth, phone, purpose, &client).await?;
    tx.commit().await?;

    let Some(code) = texted_code else {
        return Ok(());
    };
    let text = format!(
        "civicpay: ma xac thuc cua ban la {code}, hieu luc 5 phut. Khong chia se ma nay voi ai."
    );
    if let Err(error) = sms.send(phone, &text).await {
        // The code is stored; the citizen can ask again. The text is never logged.
        tracing::error!(%error, "sending a one-time code failed");
        return Err(ApiError::new(ErrorCode::ServiceUnavailable));
    }
    Ok(())
}

/// 429 `rate_limited` when the phone, the client address or everyone together asked for
/// too many codes lately.
async fn check_limits(
    conn: &mut PgConnection,
    auth: &AuthState,
    phone: &Phone,
    client: &str,
) -> ApiResult<()> {
    // The global cap counts only codes actually texted (`sent`): requests for phones that are
    // never texted cannot use up what honest users share. It still answers them, like every
    // other limit, so a full cap does not tell which phones have an account.
    let usage = sqlx::query!(
        r#"SELECT
             count(*) FILTER (WHERE phone = $1 AND created_at > now() - make_interval(secs => $3)) AS "phone_count!",
             min(created_at) FILTER (WHERE phone = $1 AND created_at > now() - make_interval(secs => $3)) AS phone_oldest,
             count(*) FILTER (WHERE client_addr = $2 AND created_at > now() - make_interval(secs => $4)) AS "client_count!",
             min(created_at) FILTER (WHERE client_addr = $2 AND created_at > now() - make_interval(secs => $4)) AS client_oldest,
             count(*) FILTER (WHERE sent AND created_at > now() - make_interval(secs => $5)) AS "global_count!",
             min(created_at) FILTER (WHERE sent AND created_at > now() - make_interval(secs => $5)) AS global_oldest
           FROM otp_codes
           WHERE created_at > now() - make_interval(secs => $5)"#,
        phone.as_str(),
        client,
        PER_PHONE.1 as f64,
        PER_ADDRESS.1 as f64,
        GLOBAL_WINDOW_SECS as f64,
    )
    .fetch_one(&mut *conn)
    .await?;
    limit_reached(
        usage.phone_count,
        PER_PHONE.0,
        usage.phone_oldest,
        PER_PHONE.1,
    )?;
    limit_reached(
        usage.client_count,
        PER_ADDRESS.0,
        usage.client_oldest,
        PER_ADDRESS.1,
    )?;
    limit_reached(
        usage.global_count,
        auth.otp_global_hourly_cap,
        usage.global_oldest,
        GLOBAL_WINDOW_SECS,
    )
}

/// Stores a fresh code for `phone`; the code, when it is to be texted. For a password reset
/// only a citizen account's phone is texted.
async fn store_code(
    conn: &mut PgConnection,
    auth: &AuthState,
    phone: &Phone,
    purpose: Purpose,
    client: &str,
) -> Result<Option<String>, sqlx::Error> {
    // Only a citizen account may be reset by SMS; a staff phone is answered like an unknown one.
    let registered = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM accounts WHERE phone = $1 AND role = 'citizen') AS "exists!""#,
        phone.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    // Whether this code is texted; one that is not is still stored (it counts toward the
    // per-phone and per-address limits, so its answers match a texted one's) but not `sent`.
    let sends = purpose != Purpose::ResetPassword || registered;
    let id = Uuid::new_v4();
    let code = six_digits();
    let code_hash = code_mac(auth, id, &code).finalize().into_bytes();
    sqlx::query!(
        "INSERT INTO otp_codes (id, phone, purpose, code_hash, client_addr, expires_at, sent)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7)",
        id,
        phone.as_str(),
        purpose as Purpose,
        code_hash.as_slice(),
        client,
        CODE_TTL_SECS as f64,
        sends,
    )
    .execute(&mut *conn)
    .await?;
    Ok(sends.then_some(code))
}

/// Checks `code` against the newest live code of `phone` for `purpose` and uses it up.
/// A wrong guess is counted (and stays counted); the fifth wrong guess kills the code.
pub async fn redeem(
    db: &PgPool,
    auth: &AuthState,
    phone: &Phone,
    purpose: Purpose,
    code: &str,
) -> ApiResult<()> {
    let invalid =
        || ApiError::invalid_field("otp", Message::OtpInvalid).with_code(ErrorCode::OtpInvalid);
    let mut tx = db.begin().await?;
    let live = sqlx::query!(
        "SELECT id, code_hash FROM otp_codes
         WHERE phone = $1 AND purpose = $2 AND consumed_at IS NULL
           AND expires_at > now() AND attempts < $3
         ORDER BY created_at DESC LIMIT 1
         FOR UPDATE",
        phone.as_str(),
        purpose as Purpose,
        MAX_ATTEMPTS,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(invalid)?;
    let matches = code_mac(auth, live.id, code)
        .verify_slice(&live.code_hash)
        .is_ok();
    if matches {
        sqlx::query!(
            "UPDATE otp_codes SET consumed_at = now() WHERE id = $1",
            live.id
        )
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE otp_codes SET attempts = attempts + 1 WHERE id = $1",
            live.id
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if matches { Ok(()) } else { Err(invalid()) }
}

fn code_mac(auth: &AuthState, id: Uuid, code: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&auth.otp_key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(code.as_bytes());
    mac
}

/// A fresh 6-digit code kept outside `otp_codes` (a counter dossier's claim code, whose life
/// and attempts its own table keeps), and its HMAC under the one-time-code key, bound to
/// `purpose` and `subject` so it verifies for nothing else. Store only the HMAC.
pub fn bound_code(auth: &AuthState, purpose: &str, subject: Uuid) -> (String, [u8; 32]) {
    let code = six_digits();
    let hash = bound_code_mac(auth, purpose, subject, &code)
        .finalize()
        .into_bytes()
        .into();
    (code, hash)
}

/// Whether `code` is the one [`bound_code`] made for `purpose` and `subject` (constant time).
pub fn bound_code_matches(
    auth: &AuthState,
    purpose: &str,
    subject: Uuid,
    code: &str,
    stored: &[u8],
) -> bool {
    bound_code_mac(auth, purpose, subject, code)
        .verify_slice(stored)
        .is_ok()
}

fn bound_code_mac(auth: &AuthState, purpose: &str, subject: Uuid, code: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&auth.otp_key).expect("HMAC takes keys of any length");
    // Apart from `code_mac`'s input (an id then the code) by the label and its NUL.
    mac.update(b"civicpay bound code\0");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(subject.as_bytes());
    mac.update(code.as_bytes());
    mac
}

/// A uniformly random code from 000000 to 999999.
fn six_digits() -> String {
    const RANGE: u32 = 1_000_000;
    // Reject the top sliver of u32 so every code is equally likely.
    let zone = u32::MAX - u32::MAX % RANGE;
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let n = u32::from_le_bytes(bytes);
        if n < zone {
            return format!("{:06}", n % RANGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..100 {
            let code = six_digits();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
