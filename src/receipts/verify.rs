//! The two public receipt routes, for anyone holding a receipt (no login): the public keys
//! receipts are verified with, to check them offline, and the check itself, online.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::error::FieldChecks;
use crate::http::messages::Message;
use crate::http::{ApiResult, Json};
use crate::receipts::signing::{PublicKey, Refused};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receipt_public_keys))
        .routes(routes!(verify_receipt))
}

/// The longest compact receipt taken, in characters: a receipt is well under 4 KiB.
const MAX_COMPACT_CHARS: usize = 65_536;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptPublicKeys {
    /// The current key first, then the earlier ones receipts still verify with.
    pub keys: Vec<PublicKey>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReceiptRequest {
    /// The compact receipt: base64url of the receipt's canonical JSON, `.`, base64url of its
    /// Ed25519 signature, both without padding.
    #[schema(min_length = 1, max_length = 65536)]
    pub compact: String,
}

/// Whether a compact receipt is genuine: with the receipt when it is, with the reason when
/// it is not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptVerification {
    pub genuine: bool,
    /// The key that signed it; only when genuine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The receipt as signed (every member but the signature); only when genuine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub receipt: Option<serde_json::Value>,
    /// Why it is not genuine; only when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Refused>,
    /// Where a genuine receipt stands in our records now: `issued`, or `cancelled` (its bill
    /// was refunded, so it no longer proves a payment that stands). Offline checks cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<super::ReceiptStatus>,
}

/// The public keys receipts are verified with, each with its `key_id` (the one a receipt
/// names), the current key first. No login needed: verify a receipt offline with the key its
/// `key_id` names (the README shows how, in Python).
#[utoipa::path(get, path = "/v1/receipts/public-key", tag = "receipts",
    responses((status = 200, body = ReceiptPublicKeys)))]
async fn receipt_public_keys(State(state): State<AppState>) -> Json<ReceiptPublicKeys> {
    Json(ReceiptPublicKeys {
        keys: state.receipt_keys.public_keys(),
    })
}

/// Whether a compact receipt is genuine, and which receipt it is. No login needed. A forged or
/// altered receipt is an answer, not an error: 200 with `genuine: false` and the first check
/// it failed as `reason`: `malformed` (not two base64url parts without padding joined by one
/// `.`, a signature that is not 64 bytes, a payload that is not a JSON object),
/// `not_canonical` (JSON, but not in its RFC 8785 canonical form), `unknown_key` (its
/// `key_id` names none of our current or previous keys) or `bad_signature` (the signature is
/// not that key's over the payload).
#[utoipa::path(post, path = "/v1/receipts/verify", tag = "receipts",
    request_body = VerifyReceiptRequest,
    responses(
        (status = 200, body = ReceiptVerification, description = "Genuine (with the receipt and its `key_id`) or not (with the `reason`)"),
    ))]
async fn verify_receipt(
    State(state): State<AppState>,
    Json(request): Json<VerifyReceiptRequest>,
) -> ApiResult<Json<ReceiptVerification>> {
    let length = request.compact.chars().count();
    FieldChecks::new()
        .check(
            (1..=MAX_COMPACT_CHARS).contains(&length),
            "compact",
            Message::TextLength {
                min: 1,
                max: MAX_COMPACT_CHARS,
            },
        )
        .finish()?;
    let answer = match state.receipt_keys.verify_compact(&request.compact) {
        Ok(receipt) => ReceiptVerification {
            genuine: true,
            key_id: receipt["key_id"].as_str().map(str::to_owned),
            status: Some(standing(&state, &receipt).await?),
            receipt: Some(receipt),
            reason: None,
        },
        Err(reason) => ReceiptVerification {
            genuine: false,
            key_id: None,
            receipt: None,
            reason: Some(reason),
            status: None,
        },
    };
    Ok(Json(answer))
}

/// A genuine receipt's standing: cancelled once its bill was refunded. (Genuine means we
/// signed it, so it is ours; one not found would be from another deployment's key.)
async fn standing(
    state: &AppState,
    receipt: &serde_json::Value,
) -> ApiResult<super::ReceiptStatus> {
    let id = receipt["id"]
        .as_str()
        .and_then(|id| id.parse::<uuid::Uuid>().ok());
    let cancelled = sqlx::query_scalar!(
        r#"SELECT cancelled_at IS NOT NULL AS "cancelled!" FROM receipts WHERE id = $1"#,
        id,
    )
    .fetch_optional(&state.db)
    .await?;
    Ok(match cancelled {
        Some(true) => super::ReceiptStatus::Cancelled,
        _ => super::ReceiptStatus::Issued,
    })
}
