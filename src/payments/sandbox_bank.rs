//! The sandbox bank's pages, for development only (mounted while the sandbox provider is
//! enabled): a payment page at `/sandbox/pay/{reference}` with approve and decline buttons. A
//! decision reaches us as the bank's signed notification ([`signed_notification`]) through the
//! same path as a real provider's.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::provider::RawRequest;
use super::sandbox::signed_notification;
use super::take_notification;
use crate::http::Path;
use crate::state::AppState;

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
