//! Whose a counter dossier is. The officer types the applicant's phone, name and national ID
//! number; the phone alone proves nothing (one wrong digit is a stranger's number, and numbers
//! are recycled), so a counter dossier is attached to an account only
//!
//! - **by identity**: the account's wallet is verified with the national ID the officer
//!   recorded (keyed hashes compared, as wallets store them), whether it was verified before
//!   the filing (attached at once) or after ([`claim_by_identity`], from the verification);
//! - **by the code texted at the counter**: the account of the phone the dossier was filed for
//!   confirms that code together with the dossier's code (printed on the reception slip) and
//!   the applicant's national ID (`POST /v1/dossiers/claim`). The national ID is asked because
//!   a code texted to a mistyped phone reaches a stranger, and dossier codes are sequential:
//!   with the code alone they could walk the day's numbers until theirs answered.
//!
//! Either way only while the dossier is open or closed within the last 90 days
//! (`dossier_claimable` in SQL), and never by registering: a new account owns nothing.
//!
//! A filing and a verification of one national ID take the same transaction-scoped advisory
//! lock before they read each other's rows, so whichever commits second sees the first: the
//! filing finds the verified wallet, or the verification finds the dossier.

use axum::extract::State;
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::reading::{DossierDetail, detail};
use crate::auth::access::Citizens;
use crate::auth::settings::AuthState;
use crate::auth::{Caller, otp};
use crate::bills::fees;
use crate::calendar::WorkingCalendar;
use crate::db::LockSpace;
use crate::domain::{NationalId, Phone};
use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json};
use crate::state::AppState;

/// What a claim code's HMAC is bound to, besides its dossier.
const CLAIM_CODE_PURPOSE: &str = "dossier_claim";
/// Wrong tries before a claim code dies (as for one-time codes).
const MAX_ATTEMPTS: i32 = otp::MAX_ATTEMPTS;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(claim_with_code))
}

/// Waits for the lock that a filing and a verification of this national ID share, held until
/// the transaction of `conn` ends. Take it before reading the other side's rows.
pub(super) async fn lock_identity(
    conn: &mut PgConnection,
    national_id_hash: &[u8],
) -> Result<(), sqlx::Error> {
    // The hash, not the number, goes to the database as the lock's name.
    let name: String = national_id_hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    crate::db::xact_lock(conn, LockSpace::DossierClaim, &name).await
}

/// The account whose wallet is verified with this national ID (one at most), if any. Read it
/// under [`lock_identity`].
pub(super) async fn verified_holder(
    conn: &mut PgConnection,
    national_id_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT account_id FROM wallets WHERE national_id_hash = $1 AND verified_at IS NOT NULL",
        national_id_hash,
    )
    .fetch_optional(conn)
    .await
}

/// Gives the account whose wallet this verification has just written the counter dossiers
/// recorded for `national_id` and attached to nobody, open or closed within 90 days, each with
/// a `claim_by_identity` line in its timeline and its fee bill addressed to the account; in
/// the verification's transaction, after the wallet row. Claims nothing unless the wallet now
/// holds this ID verified (a racing verification of the same account may have won the row).
/// Rows filed before the keyed hash was stored are matched by the plain number they hold.
/// Returns how many it claimed.
pub async fn claim_by_identity(
    conn: &mut PgConnection,
    account_id: Uuid,
    national_id: &NationalId,
    national_id_hash: &[u8],
) -> Result<i64, sqlx::Error> {
    lock_identity(conn, national_id_hash).await?;
    let claimed = sqlx::query_scalar!(
        r#"WITH claimed AS (
               UPDATE dossiers d
               SET applicant_id = $1,
                   applicant_national_id_hash = COALESCE(d.applicant_national_id_hash, $2)
               WHERE d.applicant_id IS NULL
                 AND (d.applicant_national_id_hash = $2
                      OR (d.applicant_national_id_hash IS NULL AND d.applicant_national_id = $3))
                 AND dossier_claimable(d.status, d.returned_at, d.updated_at)
                 AND EXISTS (SELECT 1 FROM wallets w
                             WHERE w.account_id = $1 AND w.national_id_hash = $2
                               AND w.verified_at IS NOT NULL)
               RETURNING d.id, d.status
           ), recorded AS (
               INSERT INTO dossier_events (dossier_id, action, from_status, to_status, actor_id, actor_role)
               SELECT id, 'claim_by_identity', status, status, $1, 'citizen' FROM claimed
           )
           SELECT count(*) AS "claimed!" FROM claimed"#,
        account_id,
        national_id_hash,
        national_id.as_str(),
    )
    .fetch_one(&mut *conn)
    .await?;
    if claimed > 0 {
        fees::address_to_applicant(conn, account_id).await?;
    }
    Ok(claimed)
}

/// Stores a claim code for a counter dossier that could not be attached at filing (its HMAC
/// only), in the filing's transaction; [`send_code`] texts it once that commits. None when no
/// SMS sender is configured: the dossier then reaches its applicant by identity only.
pub(super) async fn issue_code(
    conn: &mut PgConnection,
    auth: &AuthState,
    dossier_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    if auth.sms.is_none() {
        tracing::warn!(%dossier_id, "no SMS sender: no claim code for a counter dossier");
        return Ok(None);
    }
    let (code, code_hash) = otp::bound_code(auth, CLAIM_CODE_PURPOSE, dossier_id);
    sqlx::query!(
        "INSERT INTO dossier_claim_codes (dossier_id, code_hash) VALUES ($1, $2)",
        dossier_id,
        code_hash.as_slice(),
    )
    .execute(conn)
    .await?;
    Ok(Some(code))
}

/// Texts a claim code to the phone given at the counter. Neither the dossier's code nor
/// anything else about it goes in the text: a mistyped phone is a stranger's. A failure is
/// logged, not answered: the dossier is filed, and its applicant can still claim it by
/// identity.
pub(super) async fn send_code(auth: &AuthState, phone: &Phone, code: &str) {
    let Some(sms) = auth.sms.as_ref() else {
        return;
    };
    let text = format!(
        "civicpay: ma nhan ho so cua ban la {code}. Nhap ma nay cung so ho so in tren phieu hen va so CCCD trong ung dung civicpay. Khong chia se ma nay voi ai."
    );
    if let Err(error) = sms.send(phone, &text).await {
        // The text holds the code: never logged.
        tracing::error!(%error, "sending a counter dossier's claim code failed");
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The dossier's code, as printed on the reception slip.
    #[schema(example = "19753-261202-0001")]
    pub code: String,
    /// The 6-digit code texted to the applicant's phone when the dossier was received.
    #[schema(example = "482913")]
    pub otp: String,
    /// The applicant's 12-digit national ID number, as given at the counter.
    #[schema(example = "046095012345")]
    pub national_id: String,
}

/// Claim a dossier received at a counter for the caller's phone, with the code texted to it
/// then and the applicant's national ID. A dossier already the caller's answers as it is.
#[utoipa::path(post, path = "/v1/dossiers/claim", tag = "dossiers", security(("bearer" = [])),
    request_body = ClaimRequest,
    responses(
        (status = 200, body = DossierDetail, description = "The dossier is now the caller's"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Citizens only"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No counter dossier of this code filed for the caller's phone and attached to nobody else, open or closed within 90 days"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`otp_invalid`: the code or the national ID is wrong (`attempts_left`; the fifth wrong try kills the code), or the code is used or dead; `validation_failed`: a malformed `national_id`"),
    ))]
async fn claim_with_code(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Json(request): Json<ClaimRequest>,
) -> ApiResult<Json<DossierDetail>> {
    let mut tx = state.db.begin().await?;
    // Locked: a concurrent claim (or an officer's move) waits, and a verification that claimed
    // it first takes it out of this WHERE.
    let dossier = sqlx::query!(
        "SELECT d.id, d.applicant_id, d.applicant_national_id_hash
         FROM dossiers d JOIN accounts a ON a.phone = d.applicant_phone
         WHERE d.code = $1 AND a.id = $2 AND d.channel = 'counter'
           AND (d.applicant_id IS NULL OR d.applicant_id = $2)
           AND dossier_claimable(d.status, d.returned_at, d.updated_at)
           -- Someone verified as another person is provably not the applicant, whatever
           -- code and number they hold (a typo'd phone's owner who knows the applicant's ID).
           AND NOT EXISTS (SELECT 1 FROM wallets w
                           WHERE w.account_id = $2 AND w.verified_at IS NOT NULL
                             AND w.national_id_hash IS DISTINCT FROM d.applicant_national_id_hash)
         FOR UPDATE OF d",
        request.code.trim(),
        caller.account_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    if dossier.applicant_id.is_none() {
        let national_id = NationalId::parse(&request.national_id)
            .ok_or_else(|| ApiError::invalid_field("national_id", Message::NationalIdMalformed))?;
        let proof_right = claim_proof_matches(
            &mut tx,
            &state,
            dossier.id,
            dossier.applicant_national_id_hash.as_deref(),
            &request,
            &national_id,
        )
        .await?;
        if !proof_right {
            // Counted, and kept counted: committed before the refusal.
            let attempts = count_wrong_try(&mut tx, dossier.id).await?;
            tx.commit().await?;
            return Err(refused().with_extra("attempts_left", (MAX_ATTEMPTS - attempts).max(0)));
        }
        attach_by_code(&mut tx, dossier.id, caller.account_id).await?;
    }
    let calendar = WorkingCalendar::load(&mut tx).await?;
    let claimed = detail(&mut tx, dossier.id, &caller, &calendar).await?;
    tx.commit().await?;
    Ok(Json(claimed))
}

/// Whether the code and national ID of `request` prove the unattached dossier `dossier_id`
/// (whose recorded national ID hash is `stored_national_id_hash`) the caller's. A code used
/// up or dead is refused at once.
async fn claim_proof_matches(
    conn: &mut PgConnection,
    state: &AppState,
    dossier_id: Uuid,
    stored_national_id_hash: Option<&[u8]>,
    request: &ClaimRequest,
    national_id: &NationalId,
) -> ApiResult<bool> {
    let live_code_hash = sqlx::query_scalar!(
        "SELECT code_hash FROM dossier_claim_codes
             WHERE dossier_id = $1 AND used_at IS NULL AND attempts < $2
             FOR UPDATE",
        dossier_id,
        MAX_ATTEMPTS,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(refused)?;
    let code_right = otp::bound_code_matches(
        &state.auth,
        CLAIM_CODE_PURPOSE,
        dossier_id,
        request.otp.trim(),
        &live_code_hash,
    );
    let id_right = stored_national_id_hash
        .is_some_and(|stored| national_id.is_keyed_as(state.wallet.pepper(), stored));
    Ok(code_right && id_right)
}

/// Counts a wrong claim proof against the dossier's code; returns the tries counted so far.
async fn count_wrong_try(conn: &mut PgConnection, dossier_id: Uuid) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        r#"UPDATE dossier_claim_codes SET attempts = attempts + 1 WHERE dossier_id = $1
                   RETURNING attempts AS "attempts!""#,
        dossier_id,
    )
    .fetch_one(conn)
    .await
}

/// Uses up the dossier's claim code and gives the dossier to `account_id`, with a
/// `claim_by_code` line in its timeline and its fee bill addressed to the account.
async fn attach_by_code(
    conn: &mut PgConnection,
    dossier_id: Uuid,
    account_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE dossier_claim_codes SET used_at = now() WHERE dossier_id = $1",
        dossier_id,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "WITH claimed AS (
                 UPDATE dossiers SET applicant_id = $2 WHERE id = $1 AND applicant_id IS NULL
                 RETURNING id, status)
             INSERT INTO dossier_events (dossier_id, action, from_status, to_status, actor_id, actor_role)
             SELECT id, 'claim_by_code', status, status, $2, 'citizen' FROM claimed",
        dossier_id,
        account_id,
    )
    .execute(&mut *conn)
    .await?;
    fees::address_to_applicant(conn, account_id).await
}

/// The one answer of every refused claim proof: a wrong code, a wrong national ID, a code used
/// up or dead. It does not tell which.
fn refused() -> ApiError {
    ApiError::invalid_field("otp", Message::ClaimProofInvalid).with_code(ErrorCode::OtpInvalid)
}
