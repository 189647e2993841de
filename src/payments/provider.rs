//! What every payment provider is to us: the [`Provider`] trait and the values it takes and
//! gives, with the parsing and hex helpers the providers share. The application state holds
//! the providers, so this file and the providers themselves (`sandbox`, `vnpay`) use nothing
//! above the foundations.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;

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
    pub fn as_str(self) -> &'static str {
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

/// A query string's parameters, each name once. A name given twice is refused outright: a
/// signature check that reads one occurrence and a reader that takes another would let a forged
/// value ride on a genuine signature, so every field is read from this very map.
pub(super) fn unique_params(query: &str) -> Result<BTreeMap<String, String>, Unreadable> {
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        if params.insert(name, value).is_some() {
            return Err(Unreadable::Malformed);
        }
    }
    Ok(params)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
