//! The 6-digit payment PIN. Stored as HMAC-SHA256 under a server-side pepper, not Argon2: six
//! digits resist no offline guessing whatever the hash, so the lock-out guards it online, the
//! pepper guards a database leak, and a payment does not spend 25 ms of CPU on a hash. Five
//! wrong tries, PIN changes included, lock wallet payments for 15 minutes.

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::VerifiedWallet;
use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode};
use crate::idempotency::in_progress_or;

pub const HEADER: &str = "x-payment-pin";
pub const MAX_FAILURES: i32 = 5;
pub const LOCK_SECS: i64 = 15 * 60;

pub fn well_formed(pin: &str) -> bool {
    pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())
}

pub fn hash(pepper: &[u8], account_id: Uuid, pin: &str) -> [u8; 32] {
    let mut message = account_id.as_bytes().to_vec();
    message.extend_from_slice(pin.as_bytes());
    hmac_sha256(pepper, &message)
}

/// The PIN of the `X-Payment-Pin` header, or 400 `payment_pin_required`.
fn from_headers(headers: &HeaderMap) -> ApiResult<String> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::new(ErrorCode::PaymentPinRequired))
}

/// What a right PIN lets a payment go on with: the wallet, if verified (an unverified one is
/// refused by the payment itself, as a refusal it remembers).
pub struct PinChecked {
    wallet: Option<VerifiedWallet>,
}

impl PinChecked {
    /// The payer's verified wallet, or 409 `wallet_not_verified`.
    pub fn verified_wallet(&self) -> ApiResult<VerifiedWallet> {
        self.wallet
            .ok_or_else(|| ApiError::new(ErrorCode::WalletNotVerified))
    }
}

/// Checks `pin` in a transaction of its own, committing the failure it counts.
pub async fn check(db: &PgPool, pepper: &[u8], account_id: Uuid, pin: &str) -> ApiResult<()> {
    let mut tx = db.begin().await?;
    let checked = check_in(&mut tx, pepper, account_id, pin).await;
    // Commits as the guard of a payment does (`Idempotent::run_guarded`): on a pass or a
    // lasting refusal, never on a fault.
    if checked.as_ref().is_ok() || checked.as_ref().is_err_and(ApiError::is_lasting_refusal) {
        tx.commit().await?;
    }
    checked.map(|_| ())
}

/// The `X-Payment-Pin` check of a wallet payment, as the guard of its idempotent run
/// (`Idempotent::run_guarded`): in the payment's own transaction, before its key is looked at,
/// so a payment is one transaction and one commit. A missing header is refused at once.
pub fn guard(
    pepper: &[u8],
    headers: &HeaderMap,
    account_id: Uuid,
) -> ApiResult<
    impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, ApiResult<PinChecked>> + Send + 'static,
> {
    let pin = from_headers(headers)?;
    let pepper = pepper.to_vec();
    Ok(as_guard(move |conn| {
        checking(conn, pepper, account_id, pin)
    }))
}

/// Gives the closure the signature a guard needs (closures infer it only from a bound).
fn as_guard<G>(guard: G) -> G
where
    G: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, ApiResult<PinChecked>>,
{
    guard
}

fn checking(
    conn: &mut PgConnection,
    pepper: Vec<u8>,
    account_id: Uuid,
    pin: String,
) -> BoxFuture<'_, ApiResult<PinChecked>> {
    Box::pin(async move { check_in(conn, &pepper, account_id, &pin).await })
}

/// Checks `pin` against the wallet's in the caller's transaction, counting a failure and
/// locking payments after the fifth; the caller commits what a refusal wrote.
///
/// Checks of one wallet take turns on the wallet's row, locked as it is read (one round trip;
/// after a wait, the read is of the row as the check before left it), so parallel guesses
/// cannot overshoot the lock-out; in a payment the lock is held to its commit, so the payments
/// of one wallet take turns (they did already, on the wallet's ledger row). Past the
/// transaction's `lock_timeout` the wait answers 409 `idempotency_in_progress`. `FOR NO KEY
/// UPDATE` is the lock an update of the row would take, so it leaves alone whoever only refers
/// to the wallet (the limit usage's foreign key). The row is the first lock of any payment.
/// Processes of an older version took an advisory lock instead, which this one does not wait
/// for: do not run both versions on one database at once.
async fn check_in(
    conn: &mut PgConnection,
    pepper: &[u8],
    account_id: Uuid,
    pin: &str,
) -> ApiResult<PinChecked> {
    let wallet = sqlx::query!(
        r#"SELECT pin_hash, pin_failures, pin_locked_until IS NOT NULL AS "lock_set!",
                  CEIL(EXTRACT(EPOCH FROM pin_locked_until - now()))::bigint AS locked_secs,
                  ledger_account_id, verified_at IS NOT NULL AS "verified!"
           FROM wallets WHERE account_id = $1 FOR NO KEY UPDATE"#,
        account_id,
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(in_progress_or)?
    .ok_or_else(|| ApiError::new(ErrorCode::PaymentPinNotSet))?;
    if let Some(secs) = wallet.locked_secs.filter(|s| *s > 0) {
        return Err(locked(secs));
    }
    let stored = wallet
        .pin_hash
        .ok_or_else(|| ApiError::new(ErrorCode::PaymentPinNotSet))?;
    let matches = well_formed(pin) && constant_time_eq(&hash(pepper, account_id, pin), &stored);
    if !matches {
        return Err(count_failure(conn, account_id, wallet.pin_failures + 1).await?);
    }
    // Written only when there is something to forget: failures, or a lapsed lock-out.
    if wallet.pin_failures != 0 || wallet.lock_set {
        sqlx::query!(
            "UPDATE wallets SET pin_failures = 0, pin_locked_until = NULL WHERE account_id = $1",
            account_id
        )
        .execute(&mut *conn)
        .await?;
    }
    let wallet = wallet.verified.then_some(VerifiedWallet {
        account_id,
        ledger_account_id: wallet.ledger_account_id,
    });
    Ok(PinChecked { wallet })
}

/// Records the `failures`-th wrong PIN in a row and answers the refusal it earns.
async fn count_failure(
    conn: &mut PgConnection,
    account_id: Uuid,
    failures: i32,
) -> ApiResult<ApiError> {
    if failures >= MAX_FAILURES {
        sqlx::query!(
            "UPDATE wallets SET pin_failures = 0, pin_locked_until = now() + make_interval(secs => $2)
             WHERE account_id = $1",
            account_id,
            LOCK_SECS as f64,
        )
        .execute(&mut *conn)
        .await?;
        return Ok(locked(LOCK_SECS));
    }
    sqlx::query!(
        "UPDATE wallets SET pin_failures = $2 WHERE account_id = $1",
        account_id,
        failures
    )
    .execute(&mut *conn)
    .await?;
    Ok(ApiError::new(ErrorCode::PaymentPinInvalid)
        .with_extra("attempts_left", MAX_FAILURES - failures))
}

/// Sets the wallet's first PIN, or changes the one set: a change needs `old_pin`, checked like
/// a payment's (a wrong one counts towards the lock-out). The first PIN is written only while
/// none is set, so of two requests racing to set it the loser is answered as a change without
/// `old_pin` and cannot replace the winner's. The wallet row must exist.
pub async fn set(
    db: &PgPool,
    pepper: &[u8],
    account_id: Uuid,
    pin: &str,
    old_pin: Option<&str>,
) -> ApiResult<()> {
    let pin_hash = hash(pepper, account_id, pin);
    let first = sqlx::query!(
        "UPDATE wallets SET pin_hash = $2, pin_failures = 0 WHERE account_id = $1 AND pin_hash IS NULL",
        account_id,
        pin_hash.as_slice(),
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    if first {
        return Ok(());
    }
    let old_pin =
        old_pin.ok_or_else(|| ApiError::invalid_field("old_pin", Message::OldPinRequired))?;
    check(db, pepper, account_id, old_pin).await?;
    sqlx::query!(
        "UPDATE wallets SET pin_hash = $2, pin_failures = 0 WHERE account_id = $1",
        account_id,
        pin_hash.as_slice(),
    )
    .execute(db)
    .await?;
    Ok(())
}

fn locked(secs: i64) -> ApiError {
    ApiError::new(ErrorCode::PaymentPinLocked).with_retry_after(secs.max(1) as u64)
}
