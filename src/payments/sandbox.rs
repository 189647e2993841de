//! The sandbox bank, for development only (production refuses to start with it): a payment
//! page at `/sandbox/pay/{reference}` with approve and decline buttons, whose decision reaches
//! us as a signed notification through the same path as a real provider's; a status query;
//! instant payouts, once per withdrawal id (an account number starting `000` is refused, so a
//! failed payout can be tried). Its notifications are JSON bodies signed with HMAC-SHA256 of
//! the raw body, the hex signature in the `signature` query parameter; [`signed_notification`]
//! makes them for tests, tampered or repeated as they like.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgPool;

use super::{
    Notification, Outcome, PaymentRequest, Payout, PayoutResult, Provider, ProviderStatus,
    RawRequest, Unreadable, hex, take_notification, unhex, unique_params,
};
use crate::app::AppState;
use crate::http::Path;

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
    hex(&crate::auth::hmac_sha256(SECRET, body))
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

/// The sandbox bank's pages, mounted only while it is enabled.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/sandbox/pay/{reference}", get(payment_page))
        .route("/sandbox/pay/{reference}/approve", post(approve))
        .route("/sandbox/pay/{reference}/decline", post(decline))
}

async fn payment_page(State(state): State<AppState>, Path(reference): Path<String>) -> Response {
    let topup = sqlx::query!(
        "SELECT amount, status FROM topups WHERE provider = 'sandbox' AND reference = $1",
        reference
    )
    .fetch_optional(&state.db)
    .await;
    let Ok(Some(topup)) = topup else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>Không có giao dịch này</h1>".to_owned()),
        )
            .into_response();
    };
    let reference = html_escape(&reference);
    Html(format!(
        r#"<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Ngân hàng thử nghiệm</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:3em auto">
<h1>Ngân hàng thử nghiệm (sandbox)</h1>
<p>Nạp tiền vào ví civicpay: <strong>{amount} đ</strong><br>Mã giao dịch: <code>{reference}</code><br>Trạng thái: {status}</p>
<form method="post" action="/sandbox/pay/{reference}/approve"><button>Thanh toán (approve)</button></form>
<form method="post" action="/sandbox/pay/{reference}/decline"><button>Hủy (decline)</button></form>
</body></html>"#,
        amount = topup.amount,
        status = html_escape(&topup.status),
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct Decision {
    /// `false` records the decision at the bank but loses its notification (for the
    /// reconciler to find).
    notify: Option<bool>,
}

async fn approve(
    state: State<AppState>,
    reference: Path<String>,
    decision: Query<Decision>,
) -> Response {
    decide(state, reference, decision, true).await
}

async fn decline(
    state: State<AppState>,
    reference: Path<String>,
    decision: Query<Decision>,
) -> Response {
    decide(state, reference, decision, false).await
}

/// The customer's decision at the bank, then the bank's notification to us.
async fn decide(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Query(decision): Query<Decision>,
    approved: bool,
) -> Response {
    let recorded = sqlx::query!(
        "INSERT INTO sandbox_bank_payments (reference, transaction_id, approved, amount)
         SELECT reference, 'SBX' || upper(substr(md5(random()::text), 1, 12)), $2, amount
         FROM topups WHERE provider = 'sandbox' AND reference = $1
         ON CONFLICT (reference) DO UPDATE SET reference = EXCLUDED.reference
         RETURNING transaction_id, approved, amount",
        reference,
        approved,
    )
    .fetch_optional(&state.db)
    .await;
    let Ok(Some(payment)) = recorded else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>Không có giao dịch này</h1>".to_owned()),
        )
            .into_response();
    };
    if decision.notify != Some(false) {
        let (query, body) = signed_notification(
            &reference,
            &payment.transaction_id,
            payment.amount,
            payment.approved,
        );
        if let Some(sandbox) = state.providers.get("sandbox") {
            let raw = RawRequest {
                query,
                body: body.into(),
            };
            take_notification(&state.db, sandbox.as_ref(), raw).await;
        }
    }
    let verdict = if payment.approved {
        "Đã thanh toán (approved)"
    } else {
        "Đã hủy (declined)"
    };
    Html(format!(
        r#"<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Ngân hàng thử nghiệm</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:3em auto"><h1>{verdict}</h1>
<p>Mã giao dịch ngân hàng: <code>{txn}</code>. Quay lại ứng dụng để xem số dư.</p></body></html>"#,
        txn = html_escape(&payment.transaction_id),
    ))
    .into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
