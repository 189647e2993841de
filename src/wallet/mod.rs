//! Citizens' wallets: identity verification, the payment PIN, monthly limits, transfers and the
//! history of every movement. The money itself is in the ledger (`crate::ledger`): a wallet is
//! an immediate ledger account owned by the citizen's account. Whatever feature takes money
//! from a wallet does it through [`debit()`], which alone applies the wallet's rules.

mod debit;
pub mod demo;
pub mod funding;
mod history;
pub mod identity;
// The limits are applied by `debit` alone; the wallet shows their usage.
mod limits;
pub mod pin;
pub mod settings;
mod transfers;

pub use debit::{Debit, Debited, debit};
/// Re-exported for the OpenAPI document, which registers it: the history filter's `kind`
/// refers to it, and utoipa collects no schema from query parameters.
pub use history::TransactionKind;
/// Merchants and billers name the limit their payments count against.
pub use limits::LimitCategory;

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::domain::{Money, NationalId};
use crate::http::error::{ConstraintRule, FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json};
use crate::ledger::{self, AccountKind};
use crate::state::AppState;
use identity::Verdict;
use limits::LimitUsage;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[ConstraintRule {
    constraint: "wallets_national_id_key",
    code: ErrorCode::NationalIdTaken,
    field: "national_id",
}];

/// What the dossiers feature does, in the verifying transaction, when a wallet is verified with
/// a national ID: the counter dossiers recorded for that ID become the account's (answering how
/// many). Dossiers sit above wallets (their fee bills are paid from wallets), so they hand it
/// down once at start ([`on_verified`]) instead of wallets calling up.
pub type VerifiedHook = for<'c> fn(
    &'c mut PgConnection,
    Uuid,
    &'c NationalId,
    &'c [u8],
) -> BoxFuture<'c, Result<i64, sqlx::Error>>;

static VERIFIED: OnceLock<VerifiedHook> = OnceLock::new();

/// Installs what a verification does to dossiers (once per process; later calls are ignored).
pub fn on_verified(hook: VerifiedHook) {
    let _ = VERIFIED.set(hook);
}

/// A wallet's row, created with its ledger account on first use.
struct WalletRow {
    ledger_account_id: Uuid,
    verified: bool,
}

async fn ensure(conn: &mut PgConnection, account_id: Uuid) -> ApiResult<WalletRow> {
    if let Some(row) = find(conn, account_id).await? {
        return Ok(row);
    }
    let ledger_account_id = ledger::owned_account(conn, AccountKind::Wallet, account_id).await?;
    sqlx::query!(
        "INSERT INTO wallets (account_id, ledger_account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        account_id,
        ledger_account_id,
    )
    .execute(&mut *conn)
    .await?;
    find(conn, account_id)
        .await?
        .ok_or_else(|| ApiError::internal("wallet row vanished"))
}

async fn find(conn: &mut PgConnection, account_id: Uuid) -> Result<Option<WalletRow>, sqlx::Error> {
    sqlx::query_as!(
        WalletRow,
        r#"SELECT ledger_account_id, verified_at IS NOT NULL AS "verified!"
           FROM wallets WHERE account_id = $1"#,
        account_id,
    )
    .fetch_optional(conn)
    .await
}

/// A wallet whose holder's identity was verified. Only such a wallet may hold money, so only
/// [`verified`] makes one, and a debit ([`debit()`]) or a funding takes nothing else.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedWallet {
    account_id: Uuid,
    ledger_account_id: Uuid,
}

impl VerifiedWallet {
    /// The citizen whose wallet it is.
    pub fn account_id(&self) -> Uuid {
        self.account_id
    }
}

/// The citizen's wallet (created on first use), or 409 `wallet_not_verified`.
pub async fn verified(conn: &mut PgConnection, account_id: Uuid) -> ApiResult<VerifiedWallet> {
    let wallet = ensure(conn, account_id).await?;
    if !wallet.verified {
        return Err(ApiError::new(ErrorCode::WalletNotVerified));
    }
    Ok(VerifiedWallet {
        account_id,
        ledger_account_id: wallet.ledger_account_id,
    })
}

/// The ledger account of the citizen's wallet (created on first use), for money that comes
/// in or back: a top-up, a refused payout, a merchant's refund.
pub async fn ledger_account(conn: &mut PgConnection, account_id: Uuid) -> ApiResult<Uuid> {
    Ok(ensure(conn, account_id).await?.ledger_account_id)
}

/// The name the identity verifier confirmed (none before verification), not the account's
/// display name, which its holder may change at will.
pub async fn verified_name(
    conn: &mut PgConnection,
    account_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let name = sqlx::query_scalar!(
        "SELECT verified_name FROM wallets WHERE account_id = $1",
        account_id
    )
    .fetch_optional(conn)
    .await?
    .flatten();
    Ok(name)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Wallet {
    /// In đồng.
    #[schema(value_type = i64)]
    pub balance: Money,
    pub verified: bool,
    pub pin_set: bool,
    /// The last four digits of the national ID the wallet was verified with.
    pub national_id_last4: Option<String>,
    pub limits: Vec<LimitUsageDoc>,
}

/// A limit category with this month's usage (Vietnam time).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimitUsageDoc {
    pub category: String,
    #[schema(value_type = i64)]
    pub limit: Money,
    #[schema(value_type = i64)]
    pub used: Money,
    #[schema(value_type = i64)]
    pub remaining: Money,
}

impl From<LimitUsage> for LimitUsageDoc {
    fn from(usage: LimitUsage) -> Self {
        LimitUsageDoc {
            category: usage.category.as_str().to_owned(),
            limit: Money::from_stored(usage.limit),
            used: Money::from_stored(usage.used),
            remaining: Money::from_stored(usage.remaining),
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_wallet))
        .routes(routes!(verify_identity))
        .routes(routes!(set_pin))
        .merge(transfers::routes())
        .merge(history::routes())
}

async fn load_wallet(
    conn: &mut PgConnection,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<Wallet> {
    ensure(conn, account_id).await?;
    let wallet = sqlx::query!(
        r#"SELECT l.balance, w.verified_at IS NOT NULL AS "verified!", w.pin_hash IS NOT NULL AS "pin_set!",
                  w.national_id_last4
           FROM wallets w JOIN ledger_accounts l ON l.id = w.ledger_account_id
           WHERE w.account_id = $1"#,
        account_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let limits = limits::usage(conn, account_id, now).await?;
    Ok(Wallet {
        balance: Money::from_stored(wallet.balance),
        verified: wallet.verified,
        pin_set: wallet.pin_set,
        national_id_last4: wallet.national_id_last4,
        limits: limits.into_iter().map(Into::into).collect(),
    })
}

/// The caller's wallet: balance, verification, PIN, and this month's limits.
#[utoipa::path(get, path = "/v1/wallet", tag = "wallet", security(("bearer" = [])),
    responses(
        (status = 200, body = Wallet),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Staff have no wallet"),
    ))]
async fn get_wallet(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
) -> ApiResult<Json<Wallet>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        load_wallet(&mut conn, caller.account_id, Utc::now()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VerificationRequest {
    /// 12 digits, the first three a province code.
    #[schema(
        example = "046095012345",
        pattern = "^(001|002|004|006|008|010|011|012|014|015|017|019|020|022|024|025|026|027|030|031|033|034|035|036|037|038|040|042|044|045|046|048|049|051|052|054|056|058|060|062|064|066|067|068|070|072|074|075|077|079|080|082|083|084|086|087|089|091|092|093|094|095|096)[0-9]{9}$"
    )]
    pub national_id: String,
}

/// Verify the caller's identity with their national ID number; one verified wallet per number.
#[utoipa::path(post, path = "/v1/wallet/verification", tag = "wallet", security(("bearer" = [])),
    request_body = VerificationRequest,
    responses(
        (status = 200, body = Wallet, description = "Verified (again: no change)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`national_id_taken`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn verify_identity(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Json(request): Json<VerificationRequest>,
) -> ApiResult<Json<Wallet>> {
    let national_id = NationalId::parse(&request.national_id)
        .ok_or_else(|| ApiError::invalid_field("national_id", Message::NationalIdMalformed))?;
    let verifier = state
        .wallet
        .verifier
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::ServiceUnavailable))?;
    let mut tx = state.db.begin().await?;
    let row = ensure(&mut tx, caller.account_id).await?;
    if !row.verified {
        let full_name = sqlx::query_scalar!(
            "SELECT full_name FROM accounts WHERE id = $1",
            caller.account_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let confirmed_name = match verifier
            .verify(&national_id, &full_name)
            .await
            .map_err(ApiError::internal)?
        {
            Verdict::Verified { confirmed_name } => confirmed_name,
            Verdict::Rejected => {
                return Err(ApiError::invalid_field(
                    "national_id",
                    Message::NationalIdMalformed,
                ));
            }
        };
        let national_id_hash = national_id.keyed(&state.wallet.pepper);
        sqlx::query!(
            "UPDATE wallets SET national_id_hash = $2, national_id_last4 = $3, verified_name = $4,
                    verified_at = now()
             WHERE account_id = $1 AND verified_at IS NULL",
            caller.account_id,
            national_id_hash.as_slice(),
            national_id.last4(),
            confirmed_name,
        )
        .execute(&mut *tx)
        .await?;
        // Counter dossiers recorded for this ID become theirs (none if a racing verification
        // of this account won the row above). Without the hook nothing is verified: a
        // verification must not leave the citizen's dossiers behind.
        let claim_dossiers = VERIFIED
            .get()
            .ok_or_else(|| ApiError::internal("the verification hook is not installed"))?;
        let hash = national_id_hash.as_slice();
        claim_dossiers(&mut tx, caller.account_id, &national_id, hash).await?;
    }
    let wallet = load_wallet(&mut tx, caller.account_id, Utc::now()).await?;
    tx.commit().await?;
    Ok(Json(wallet))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PinRequest {
    /// The new 6-digit PIN.
    #[schema(pattern = "^[0-9]{6}$")]
    pub pin: String,
    /// The current PIN, required to change one already set.
    #[schema(pattern = "^[0-9]{6}$")]
    pub old_pin: Option<String>,
}

/// Set the payment PIN, or change it (the old one is then required and a wrong one counts
/// towards the lock-out).
#[utoipa::path(put, path = "/v1/wallet/pin", tag = "wallet", security(("bearer" = [])), request_body = PinRequest,
    responses(
        (status = 204, description = "PIN set"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Malformed PIN, or `payment_pin_invalid`"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`payment_pin_locked`"),
    ))]
async fn set_pin(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Json(request): Json<PinRequest>,
) -> ApiResult<StatusCode> {
    FieldChecks::new()
        .check(pin::well_formed(&request.pin), "pin", Message::PinMalformed)
        .finish()?;
    ensure(&mut *state.db.acquire().await?, caller.account_id).await?;
    pin::set(
        &state.db,
        &state.wallet.pepper,
        caller.account_id,
        &request.pin,
        request.old_pin.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
