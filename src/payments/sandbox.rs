//! The sandbox bank, for development only (production refuses to start with it): a payment
//! page at `/sandbox/pay/{reference}` with approve and decline buttons, whose decision reaches
//! us as a signed notification through the same path as a real provider's; a status query;
//! instant payouts, once per withdrawal id (an account number starting `000` is refused, so a
//! failed payout can be tried). Its notifications are JSON bodies signed with HMAC-SHA256 of
//! the raw body, the hex signature in the `signature` query parameter; [`signed_notification`]
//! makes them for tests, tampered or repeated as they like. This file is the provider, which
//! the application state holds; the bank's pages are `sandbox_bank`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgPool;

use crate::crypto::hmac_sha256;
use crate::payments::provider::{
    Notification, Outcome, PaymentRequest, Payout, PayoutResult, Provider, ProviderStatus,
    RawRequest, Unreadable, hex, unhex, unique_params,
};

/// The sandbox bank's signing key: it only ever signs for a development server.
pub const SECRET: &[u8] = b"civicpay-sandbox-bank-signing-key-2026";

pub struct Sandbox {
    public_url: String,
}

impl Sandbox {
    pub fn new(public_url: &str) -> Self {
        Sandbox {
            public_url: public_url.to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SandboxNotification {
    reference: String,
    transaction_id: String,
    amount: i64,
    currency: String,
    /// `approved` or `declined`.
    status: String,
}

/// A notification as the sandbox bank sends it: (query string, body).
pub fn signed_notification(
    reference: &str,
    transaction_id: &str,
    amount: i64,
    approved: bool,
) -> (String, String) {
    let body = serde_json::to_string(&SandboxNotification {
        reference: reference.to_owned(),
        transaction_id: transaction_id.to_owned(),
        amount,
        currency: "VND".to_owned(),
        status: if approved { "approved" } else { "declined" }.to_owned(),
    })
    .expect("a notification serializes");
    (format!("signature={}", sign(body.as_bytes())), body)
}

fn sign(body: &[u8]) -> String {
    hex(&hmac_sha256(SECRET, body))
}

impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    /// The sandbox bank's page never stops taking a payment.
    fn payment_window(&self) -> chrono::Duration {
        chrono::Duration::zero()
    }

    fn payment_url(&self, request: &PaymentRequest<'_>) -> String {
        format!("{}/sandbox/pay/{}", self.public_url, request.reference)
    }

    fn read_notification(&self, raw: &RawRequest) -> Result<Notification, Unreadable> {
        let signature = unique_params(&raw.query)?
            .get("signature")
            .and_then(|value| unhex(value))
            .ok_or(Unreadable::BadSignature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("HMAC takes any key");
        mac.update(&raw.body);
        // Constant time.
        mac.verify_slice(&signature)
            .map_err(|_| Unreadable::BadSignature)?;
        // A field given twice in the body is refused too: serde's derived reader rejects
        // duplicate fields.
        let notification: SandboxNotification =
            serde_json::from_slice(&raw.body).map_err(|_| Unreadable::Malformed)?;
        if notification.currency != "VND" {
            return Err(Unreadable::Malformed);
        }
        Ok(Notification {
            reference: notification.reference,
            transaction_id: notification.transaction_id,
            amount: notification.amount,
            succeeded: notification.status == "approved",
        })
    }

    /// Like VNPay, the sandbox bank reads the outcome from the body of a 200: a refused
    /// notification would not get better by being sent again.
    fn answer(&self, outcome: Outcome) -> Response {
        Json(serde_json::json!({"outcome": outcome.as_str()})).into_response()
    }

    fn query<'a>(
        &'a self,
        db: &'a PgPool,
        reference: &'a str,
        _created_at: DateTime<Utc>,
    ) -> BoxFuture<'a, anyhow::Result<ProviderStatus>> {
        Box::pin(async move {
            let decided = sqlx::query!(
                "SELECT transaction_id, approved, amount FROM sandbox_bank_payments WHERE reference = $1",
                reference
            )
            .fetch_optional(db)
            .await?;
            Ok(match decided {
                Some(d) if d.approved => ProviderStatus::Succeeded {
                    transaction_id: d.transaction_id,
                    amount: d.amount,
                },
                Some(d) => ProviderStatus::Failed {
                    transaction_id: d.transaction_id,
                },
                None => ProviderStatus::Pending,
            })
        })
    }

    fn pays_out(&self) -> bool {
        true
    }

    fn payout<'a>(
        &'a self,
        db: &'a PgPool,
        payout: &'a Payout<'a>,
    ) -> BoxFuture<'a, anyhow::Result<PayoutResult>> {
        Box::pin(async move {
            // The bank's own idempotency: one payout per withdrawal id, however often asked.
            let paid = sqlx::query_scalar!(
                "INSERT INTO sandbox_bank_payouts (withdrawal_id, account_number, amount, paid)
                 VALUES ($1, $2, $3, $2 NOT LIKE '000%')
                 ON CONFLICT (withdrawal_id) DO UPDATE SET requests = sandbox_bank_payouts.requests + 1
                 RETURNING paid",
                payout.withdrawal_id,
                payout.account_number,
                payout.amount,
            )
            .fetch_one(db)
            .await?;
            Ok(if paid {
                PayoutResult::Paid {
                    provider_ref: format!("SBX-{}", payout.withdrawal_id.simple()),
                }
            } else {
                PayoutResult::Refused {
                    reason: "the sandbox bank refuses accounts starting with 000".into(),
                }
            })
        })
    }
}
