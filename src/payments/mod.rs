//! Money in and out of wallets through payment providers (DESIGN.md, "Payments in and out").
//!
//! Every provider sits behind [`Provider`]: it builds the payment URL the citizen is sent to,
//! verifies and reads a notification from the raw request, answers it in its own protocol,
//! tells a payment's status when asked, and pays out where it can. [`sandbox`] is a bank-like
//! stand-in for development; [`vnpay`] is VNPay 2.1.0. What is the same for all of them lives
//! here and in [`topups`] / [`withdrawals`]: a notification or a reconciler's answer moves a
//! top-up only from `pending`, once, through [`settle`], crediting the wallet from the
//! provider's clearing account in the same transaction.

pub mod reconciler;
pub mod sandbox;
mod topups;
pub mod vnpay;
pub mod withdrawals;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::app::AppState;
use crate::config::Config;
use crate::http::error::Problem;
use crate::http::{ApiError, ApiResult, ErrorCode, Path};
use crate::ledger::{self, EntryKind, NewEntry, Posting, SystemAccount};
use crate::outbox::{self, Audience};

pub use topups::{Topup, TopupStatus};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(notify_get, notify_post))
        .routes(routes!(browser_return))
        .merge(topups::routes())
        .merge(withdrawals::routes())
}

/// What a citizen is sent to pay.
pub struct PaymentRequest<'a> {
    pub reference: &'a str,
    pub amount: i64,
    pub created_at: DateTime<Utc>,
    pub return_url: &'a str,
    pub client_ip: &'a str,
}

/// A request as it reached us, for the provider to verify byte for byte.
pub struct RawRequest {
    pub query: String,
    pub body: Bytes,
}

/// What a verified notification says.
#[derive(Debug, Clone)]
pub struct Notification {
    pub reference: String,
    pub transaction_id: String,
    pub amount: i64,
    pub succeeded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// The signature does not match: nothing in it is believed.
    BadSignature,
    /// Signed, but missing or malformed fields (or another currency than VND), or a request
    /// that names a parameter twice (never looked at further).
    Malformed,
}

/// How a notification (or a reconciler's answer) was taken; providers answer it their way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    OrderNotFound,
    AlreadyConfirmed,
    InvalidAmount,
    InvalidSignature,
    Malformed,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::OrderNotFound => "order_not_found",
            Outcome::AlreadyConfirmed => "already_confirmed",
            Outcome::InvalidAmount => "invalid_amount",
            Outcome::InvalidSignature => "invalid_signature",
            Outcome::Malformed => "malformed",
            Outcome::Failed => "failed",
        }
    }
}

/// Where a payment stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    Succeeded {
        transaction_id: String,
        amount: i64,
    },
    Failed {
        transaction_id: String,
    },
    /// Not paid (yet), or unknown to the provider.
    Pending,
}

/// A payout to the citizen's own bank account, keyed by the withdrawal id.
pub struct Payout<'a> {
    pub withdrawal_id: Uuid,
    pub amount: i64,
    pub bank_code: &'a str,
    pub account_number: &'a str,
    pub account_name: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutResult {
    Paid { provider_ref: String },
    Refused { reason: String },
}

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// How long the provider's own payment page accepts a payment (VNPay writes it into the
    /// payment URL): a top-up is never expired before this, whatever the configuration says.
    fn payment_window(&self) -> chrono::Duration;
    fn payment_url(&self, request: &PaymentRequest<'_>) -> String;
    fn read_notification(&self, raw: &RawRequest) -> Result<Notification, Unreadable>;
    fn answer(&self, outcome: Outcome) -> Response;
    fn query<'a>(
        &'a self,
        db: &'a PgPool,
        reference: &'a str,
        created_at: DateTime<Utc>,
    ) -> BoxFuture<'a, anyhow::Result<ProviderStatus>>;
    /// Whether it can pay out to bank accounts at all.
    fn pays_out(&self) -> bool;
    /// Pays out, at most once per withdrawal id however often it is asked.
    fn payout<'a>(
        &'a self,
        db: &'a PgPool,
        payout: &'a Payout<'a>,
    ) -> BoxFuture<'a, anyhow::Result<PayoutResult>>;
}

/// The providers this process offers, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn Provider>>,
    pub public_url: String,
    pub reconcile_after_secs: u64,
    pub topup_expiry_secs: u64,
}

impl Providers {
    pub fn from_config(config: &Config) -> Self {
        let payments = &config.payments;
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        let public_url = payments
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        if payments.sandbox_enabled(config.mode) {
            providers.push(Arc::new(sandbox::Sandbox::new(&public_url)));
        }
        if let (Some(tmn_code), Some(secret)) =
            (&payments.vnpay_tmn_code, &payments.vnpay_hash_secret)
        {
            providers.push(Arc::new(vnpay::VnPay::new(
                tmn_code,
                secret,
                payments.vnpay_pay_url.as_str(),
                payments.vnpay_api_url.as_str(),
            )));
        }
        Providers {
            by_name: providers.into_iter().map(|p| (p.name(), p)).collect(),
            public_url,
            reconcile_after_secs: payments.reconcile_after_secs,
            topup_expiry_secs: payments.topup_expiry_secs,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    pub fn sandbox_enabled(&self) -> bool {
        self.by_name.contains_key("sandbox")
    }

    pub fn return_url(&self, provider: &str) -> String {
        format!("{}/v1/providers/{provider}/return", self.public_url)
    }

    /// How old a pending top-up must be before it may expire: the configured age, and never
    /// less than the provider's own payment window.
    pub fn expiry_age(&self, provider: &dyn Provider) -> chrono::Duration {
        let configured = chrono::Duration::seconds(self.topup_expiry_secs as i64);
        configured.max(provider.payment_window())
    }
}

/// A provider's transaction id worth keeping: an empty one, or VNPay's `0` for a payment that
/// never happened, is no id and must not collide with another in the unique index.
fn real_transaction_id(id: &str) -> Option<&str> {
    Some(id.trim()).filter(|id| !id.is_empty() && *id != "0")
}

/// A query string's parameters, each name once. A name given twice is refused outright: a
/// signature check that reads one occurrence and a reader that takes another would let a forged
/// value ride on a genuine signature, so every field is read from this very map.
fn unique_params(query: &str) -> Result<BTreeMap<String, String>, Unreadable> {
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        if params.insert(name, value).is_some() {
            return Err(Unreadable::Malformed);
        }
    }
    Ok(params)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
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
        r#"SELECT id, account_id, amount, status AS "status: TopupStatus"
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
    Ok(Outcome::Confirmed)
}

/// The top-up row [`settle`] holds locked.
struct LockedTopup {
    id: Uuid,
    account_id: Uuid,
    amount: i64,
}

/// Credits a succeeded top-up in the caller's transaction: the wallet from the provider's
/// clearing account, the top-up marked succeeded with its entry, and the citizen's event.
async fn credit(
    conn: &mut PgConnection,
    provider: &str,
    topup: &LockedTopup,
    transaction_id: &str,
    late_success: bool,
) -> ApiResult<()> {
    let transaction_id = real_transaction_id(transaction_id);
    let wallet_account = crate::wallet::ledger_account(conn, topup.account_id).await?;
    let clearing = clearing_account(conn, provider).await?;
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
    sqlx::query!(
        "UPDATE topups SET status = 'succeeded', provider_txn_id = $2, entry_id = $3, settled_at = now(),
                        credited_after_expiry = $4
                 WHERE id = $1",
        topup.id,
        transaction_id,
        posted.entry_id,
        late_success,
    )
    .execute(&mut *conn)
    .await?;
    let data = serde_json::json!({"topup_id": topup.id, "amount": topup.amount, "provider": provider});
    outbox::record(
        conn,
        "wallet.topup_succeeded",
        &data,
        Audience::Citizen(topup.account_id),
    )
    .await?;
    Ok(())
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
