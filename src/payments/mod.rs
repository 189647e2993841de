//! Money in and out of wallets through payment providers (DESIGN.md, "Payments in and out").
//!
//! Every provider sits behind [`Provider`] ([`provider`]): it builds the payment URL the
//! citizen is sent to, verifies and reads a notification from the raw request, answers it in
//! its own protocol, tells a payment's status when asked, and pays out where it can.
//! [`sandbox`] is a bank-like stand-in for development (its pages are [`sandbox_bank`]);
//! [`vnpay`] is VNPay 2.1.0; [`settings`] holds the ones this process offers. What is the same
//! for all of them lives here and in [`topups`] / [`withdrawals`]: a notification or a
//! reconciler's answer moves a top-up only from `pending`, once, through [`settle`], crediting
//! the wallet from the provider's clearing account in the same transaction.

pub mod provider;
pub mod reconciler;
pub mod sandbox;
pub mod sandbox_bank;
pub mod settings;
mod topups;
pub mod vnpay;
pub mod withdrawals;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use sqlx::{PgConnection, PgPool};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::bills::pay::ProviderPaid;
use crate::http::error::Problem;
use crate::http::{ApiError, ApiResult, ErrorCode, Path};
use crate::ledger::{self, EntryKind, NewEntry, Posting, SystemAccount};
use crate::outbox::{self, Audience};
use crate::state::AppState;
use provider::{Outcome, Provider, RawRequest, Unreadable};

pub use topups::{Topup, TopupStatus};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(notify_get, notify_post))
        .routes(routes!(browser_return))
        .merge(topups::routes())
        .merge(withdrawals::routes())
}

/// A provider's transaction id worth keeping: an empty one, or VNPay's `0` for a payment that
/// never happened, is no id and must not collide with another in the unique index.
fn real_transaction_id(id: &str) -> Option<&str> {
    Some(id.trim()).filter(|id| !id.is_empty() && *id != "0")
}

/// The clearing account of a provider.
async fn clearing_account(conn: &mut PgConnection, provider: &str) -> Result<Uuid, sqlx::Error> {
    ledger::system_account(conn, SystemAccount::ProviderClearing(provider)).await
}

/// What to make of a top-up.
#[derive(Debug, Clone)]
pub enum Settlement {
    Succeeded {
        transaction_id: String,
        amount: i64,
    },
    Failed {
        transaction_id: Option<String>,
        amount: Option<i64>,
    },
    Expired,
}

impl Settlement {
    /// The amount the provider says was paid, when it says one.
    fn claimed_amount(&self) -> Option<i64> {
        match self {
            Settlement::Succeeded { amount, .. } => Some(*amount),
            Settlement::Failed { amount, .. } => *amount,
            Settlement::Expired => None,
        }
    }
}

/// Moves a pending top-up to its final state, once: the notification path and the reconciler
/// both come here. Checks in the providers' order: the order exists, the amount matches, it is
/// still pending.
pub async fn settle(
    db: &PgPool,
    provider: &str,
    reference: &str,
    settlement: Settlement,
) -> ApiResult<Outcome> {
    let mut tx = db.begin().await?;
    let Some(topup) = sqlx::query!(
        r#"SELECT id, account_id, amount, status AS "status: TopupStatus", bill_id
           FROM topups WHERE provider = $1 AND reference = $2 FOR UPDATE"#,
        provider,
        reference
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Outcome::OrderNotFound);
    };
    let claimed_amount = settlement.claimed_amount();
    if claimed_amount.is_some_and(|amount| amount != topup.amount) {
        return Ok(Outcome::InvalidAmount);
    }
    // Money that reached the provider is always accounted for: a success after we gave up
    // waiting is credited all the same, and counted for an operator to look at.
    let late_success =
        topup.status == TopupStatus::Expired && matches!(settlement, Settlement::Succeeded { .. });
    if topup.status != TopupStatus::Pending && !late_success {
        return Ok(Outcome::AlreadyConfirmed);
    }
    if late_success {
        tracing::warn!(
            provider,
            reference,
            amount = topup.amount,
            "a top-up succeeded at the provider after it had expired here; crediting it"
        );
    }
    match settlement {
        Settlement::Succeeded { transaction_id, .. } => {
            let topup = LockedTopup {
                id: topup.id,
                account_id: topup.account_id,
                amount: topup.amount,
                bill_id: topup.bill_id,
            };
            credit(&mut tx, provider, &topup, &transaction_id, late_success).await?;
        }
        Settlement::Failed { transaction_id, .. } => {
            sqlx::query!(
                "UPDATE topups SET status = 'failed', provider_txn_id = $2, settled_at = now() WHERE id = $1",
                topup.id,
                transaction_id.as_deref().and_then(real_transaction_id),
            )
            .execute(&mut *tx)
            .await?;
        }
        Settlement::Expired => {
            sqlx::query!(
                "UPDATE topups SET status = 'expired', settled_at = now() WHERE id = $1",
                topup.id
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    // A bill's payment announced `bill.paid` to its biller.
    outbox::committed();
    Ok(Outcome::Confirmed)
}

/// The top-up row [`settle`] holds locked.
struct LockedTopup {
    id: Uuid,
    account_id: Uuid,
    amount: i64,
    /// The bill this payment pays, if it is not a top-up of the wallet.
    bill_id: Option<Uuid>,
}

/// Credits a succeeded top-up in the caller's transaction: the wallet from the provider's
/// clearing account (or, for a bill's payment, the biller: `bills::pay`), the top-up marked
/// succeeded with its entry, and the citizen's event.
async fn credit(
    conn: &mut PgConnection,
    provider: &str,
    topup: &LockedTopup,
    transaction_id: &str,
    late_success: bool,
) -> ApiResult<()> {
    let transaction_id = real_transaction_id(transaction_id);
    let clearing = clearing_account(conn, provider).await?;
    let entry_id = match topup.bill_id {
        Some(bill_id) => {
            let paid = ProviderPaid {
                bill_id,
                payer: topup.account_id,
                amount: topup.amount,
                provider,
                clearing_account: clearing,
            };
            crate::bills::pay::pay_by_provider(conn, paid).await?
        }
        None => credit_wallet(conn, provider, topup, clearing, transaction_id).await?,
    };
    sqlx::query!(
        "UPDATE topups SET status = 'succeeded', provider_txn_id = $2, entry_id = $3, settled_at = now(),
                        credited_after_expiry = $4
                 WHERE id = $1",
        topup.id,
        transaction_id,
        entry_id,
        late_success,
    )
    .execute(&mut *conn)
    .await?;
    if topup.bill_id.is_some() {
        return Ok(());
    }
    let data =
        serde_json::json!({"topup_id": topup.id, "amount": topup.amount, "provider": provider});
    outbox::record(
        conn,
        "wallet.topup_succeeded",
        &data,
        Audience::Citizen(topup.account_id),
    )
    .await?;
    Ok(())
}

/// A top-up's money onto the wallet, from the provider's clearing account.
async fn credit_wallet(
    conn: &mut PgConnection,
    provider: &str,
    topup: &LockedTopup,
    clearing: Uuid,
    transaction_id: Option<&str>,
) -> ApiResult<Uuid> {
    let wallet_account = crate::wallet::ledger_account(conn, topup.account_id).await?;
    let posted = ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::Topup,
            reference: topup.id.to_string(),
            note: Some(format!("{provider} {}", transaction_id.unwrap_or("-"))),
            created_by: None,
            postings: vec![
                Posting {
                    account_id: clearing,
                    amount: -topup.amount,
                    counterparty: None,
                },
                Posting {
                    account_id: wallet_account,
                    amount: topup.amount,
                    counterparty: Some(provider.to_owned()),
                },
            ],
        },
    )
    .await
    .map_err(|e| ApiError::internal(format!("posting a top-up: {e:?}")))?;
    Ok(posted.entry_id)
}

/// A notification, start to end: verified against the raw request, settled, stored raw with
/// what it was answered.
pub async fn take_notification(db: &PgPool, provider: &dyn Provider, raw: RawRequest) -> Outcome {
    let read = provider.read_notification(&raw);
    let outcome = match &read {
        Err(Unreadable::BadSignature) => Outcome::InvalidSignature,
        Err(Unreadable::Malformed) => Outcome::Malformed,
        Ok(notification) => {
            let settlement = if notification.succeeded {
                Settlement::Succeeded {
                    transaction_id: notification.transaction_id.clone(),
                    amount: notification.amount,
                }
            } else {
                Settlement::Failed {
                    transaction_id: Some(notification.transaction_id.clone()),
                    amount: Some(notification.amount),
                }
            };
            settle(db, provider.name(), &notification.reference, settlement)
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "settling a provider notification failed");
                    Outcome::Failed
                })
        }
    };
    // Kept as text, so a NUL byte (which PostgreSQL refuses in text) is written as its escape:
    // a refused notification is stored too, whatever it carried.
    let raw_text = if raw.body.is_empty() {
        raw.query.clone()
    } else {
        String::from_utf8_lossy(&raw.body).replace('\0', "\\u0000")
    };
    let reference = read.ok().map(|n| n.reference);
    if let Err(error) = sqlx::query!(
        "INSERT INTO provider_notifications (provider, raw, reference, outcome) VALUES ($1, $2, $3, $4)",
        provider.name(),
        raw_text,
        reference,
        outcome.as_str(),
    )
    .execute(db)
    .await
    {
        tracing::error!(%error, "storing a provider notification failed");
    }
    outcome
}

fn provider_named(state: &AppState, name: &str) -> ApiResult<Arc<dyn Provider>> {
    state
        .providers
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))
}

/// A provider's server-to-server notification (VNPay's IPN is a GET).
#[utoipa::path(get, path = "/v1/providers/{provider}/notify", tag = "payments",
    params(("provider" = String, Path, description = "`sandbox` or `vnpay`")),
    responses(
        (status = 200, description = "Answered in the provider's own protocol (VNPay: `{RspCode, Message}`)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn notify_get(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    notify(&state, &provider, query, Bytes::new()).await
}

/// The same, for providers that POST their notifications (the body is theirs, signed).
#[utoipa::path(post, path = "/v1/providers/{provider}/notify", tag = "payments",
    params(("provider" = String, Path)),
    request_body(content = String, description = "The provider's own format"),
    responses((status = 200, description = "Answered in the provider's own protocol")))]
async fn notify_post(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    notify(&state, &provider, query, body).await
}

async fn notify(
    state: &AppState,
    provider: &str,
    query: Option<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let provider = provider_named(state, provider)?;
    let raw = RawRequest {
        query: query.unwrap_or_default(),
        body,
    };
    let outcome = take_notification(&state.db, provider.as_ref(), raw).await;
    Ok(provider.answer(outcome))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReturnView {
    pub reference: Option<String>,
    /// Whether the provider's signature on the return URL holds.
    pub signature_valid: bool,
    /// The top-up as we have it (a return never changes it: only notifications do).
    #[schema(value_type = Option<String>)]
    pub status: Option<TopupStatus>,
}

/// Where the citizen's browser comes back from the provider: shows the result, changes nothing.
#[utoipa::path(get, path = "/v1/providers/{provider}/return", tag = "payments",
    params(("provider" = String, Path)),
    responses((status = 200, body = ReturnView)))]
async fn browser_return(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<crate::http::Json<ReturnView>> {
    let provider = provider_named(&state, &provider)?;
    let raw = RawRequest {
        query: query.unwrap_or_default(),
        body: Bytes::new(),
    };
    let read = provider.read_notification(&raw);
    let reference = read.as_ref().ok().map(|n| n.reference.clone());
    let status = match &reference {
        Some(reference) => {
            sqlx::query_scalar!(
                r#"SELECT status AS "status: TopupStatus" FROM topups WHERE reference = $1"#,
                reference
            )
            .fetch_optional(&state.db)
            .await?
        }
        None => None,
    };
    Ok(crate::http::Json(ReturnView {
        reference,
        signature_valid: read.is_ok(),
        status,
    }))
}
