//! Transfers between verified wallets, by the recipient's phone. One transaction: the ledger
//! entry (payer debited only if the balance covers it), the payer's monthly limit, the transfer
//! row and an outbox event for each side, guarded by the idempotency key.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::pin::{self, PinChecked};
use super::{Debit, LimitCategory, debit};
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::domain::{Money, Phone};
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult};
use crate::idempotency::{Answer, Idempotent};
use crate::ledger::{EntryKind, Posting};
use crate::outbox::{self, Audience};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_transfer))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TransferRequest {
    #[schema(
        example = "0987654321",
        max_length = 32,
        pattern = r"^[ .()-]*(\+[ .()-]*8[ .()-]*4|8[ .()-]*4|0)[ .()-]*[35789]([ .()-]*[0-9]){8}[ .()-]*$"
    )]
    pub to_phone: String,
    /// In đồng, 1 to 10,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: Money,
    /// At most 200 characters once trimmed.
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    pub id: Uuid,
    #[schema(value_type = i64)]
    pub amount: Money,
    /// The recipient, E.164.
    pub to_phone: String,
    pub to_name: String,
    pub note: Option<String>,
    /// The payer's balance after the transfer.
    #[schema(value_type = i64)]
    pub balance_after: Money,
    pub created_at: chrono::DateTime<Utc>,
}

/// Send money to another verified wallet. Needs `Idempotency-Key` and `X-Payment-Pin`.
#[utoipa::path(post, path = "/v1/wallet/transfers", tag = "wallet", security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, description = "1-255 characters, unique per request you mean"),
        ("X-Payment-Pin" = String, Header, description = "The wallet's 6-digit PIN"),
    ),
    request_body = TransferRequest,
    responses(
        (status = 201, body = Transfer),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "`idempotency_key_required`, `payment_pin_required`"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`insufficient_funds`, `limit_exceeded`, `wallet_not_verified`, `idempotency_in_progress`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`validation_failed`, `payment_pin_invalid`, `idempotency_key_reused`"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`payment_pin_locked`"),
    ))]
async fn create_transfer(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    headers: HeaderMap,
    request: Idempotent<TransferRequest>,
) -> Response {
    let payer = caller.account_id;
    let pin_check = match pin::guard(state.wallet.pepper(), &headers, payer) {
        Ok(guard) => guard,
        Err(refusal) => return axum::response::IntoResponse::into_response(refusal),
    };
    request
        .run_guarded(&state.db, payer, pin_check, move |conn, body, checked| {
            Box::pin(transfer(conn, checked, body))
        })
        .await
}

async fn transfer(
    conn: &mut PgConnection,
    checked: PinChecked,
    request: TransferRequest,
) -> ApiResult<Answer> {
    let request = CheckedTransfer::from_request(request)?;
    let payer_wallet = checked.verified_wallet()?;
    let payer = payer_wallet.account_id;
    let recipient = find_recipient(conn, payer, &request.to_phone).await?;
    let payer_name = sqlx::query_scalar!("SELECT full_name FROM accounts WHERE id = $1", payer)
        .fetch_one(&mut *conn)
        .await?;

    let transfer_id = Uuid::new_v4();
    let debited = debit(
        conn,
        Debit {
            payer: payer_wallet,
            amount: request.amount,
            limit_category: LimitCategory::General,
            kind: EntryKind::Transfer,
            reference: transfer_id.to_string(),
            note: request.note.clone(),
            payee: Some(recipient.full_name.clone()),
            credits: vec![Posting {
                account_id: recipient.ledger_account_id,
                amount: request.amount.dong(),
                counterparty: Some(payer_name),
            }],
        },
    )
    .await?;

    let created_at = sqlx::query_scalar!(
        "INSERT INTO transfers (id, from_account_id, to_account_id, amount, note, entry_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
        transfer_id,
        payer,
        recipient.id,
        request.amount.dong(),
        request.note,
        debited.entry_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let transfer = Transfer {
        id: transfer_id,
        amount: request.amount,
        to_phone: request.to_phone.as_str().to_owned(),
        to_name: recipient.full_name,
        note: request.note,
        balance_after: Money::from_stored(debited.balance_after),
        created_at,
    };
    announce(conn, &transfer, payer, recipient.id).await?;
    let body = serde_json::to_value(&transfer).map_err(ApiError::internal)?;
    Ok(Answer {
        status: StatusCode::CREATED,
        body,
    })
}

/// A transfer request whose fields passed their checks.
struct CheckedTransfer {
    amount: Money,
    to_phone: Phone,
    note: Option<String>,
}

impl CheckedTransfer {
    fn from_request(request: TransferRequest) -> ApiResult<CheckedTransfer> {
        let note = request
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        let mut checks = FieldChecks::new();
        let amount = checks.parse(
            request.amount.if_payable(),
            "amount",
            Message::AmountNotPayable,
        );
        let to_phone = checks.parse(
            Phone::parse(&request.to_phone),
            "to_phone",
            Message::RecipientUnknown,
        );
        let (amount, to_phone) = checks
            .check(
                note.as_ref().is_none_or(|n| n.chars().count() <= 200),
                "note",
                Message::TextLength { min: 0, max: 200 },
            )
            .finish_with(amount.zip(to_phone))?;
        Ok(CheckedTransfer {
            amount,
            to_phone,
            note,
        })
    }
}

struct Recipient {
    id: Uuid,
    full_name: String,
    ledger_account_id: Uuid,
}

/// The verified, enabled wallet holder `to_phone` names, other than the payer; 422 otherwise.
async fn find_recipient(
    conn: &mut PgConnection,
    payer: Uuid,
    to_phone: &Phone,
) -> ApiResult<Recipient> {
    let recipient = sqlx::query_as!(
        Recipient,
        "SELECT a.id, a.full_name, w.ledger_account_id
         FROM accounts a JOIN wallets w ON w.account_id = a.id
         WHERE a.phone = $1 AND w.verified_at IS NOT NULL AND a.disabled_at IS NULL",
        to_phone.as_str(),
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::invalid_field("to_phone", Message::RecipientUnknown))?;
    if recipient.id == payer {
        return Err(ApiError::invalid_field("to_phone", Message::RecipientIsYou));
    }
    Ok(recipient)
}

/// Both sides hear of the transfer, through the outbox.
async fn announce(
    conn: &mut PgConnection,
    transfer: &Transfer,
    payer: Uuid,
    recipient: Uuid,
) -> Result<(), sqlx::Error> {
    let event = serde_json::json!({"transfer_id": transfer.id, "amount": transfer.amount, "from": payer, "to": recipient});
    outbox::record(
        conn,
        "wallet.transfer_out",
        &event,
        Audience::Citizen(payer),
    )
    .await?;
    outbox::record(
        conn,
        "wallet.transfer_in",
        &event,
        Audience::Citizen(recipient),
    )
    .await?;
    Ok(())
}
