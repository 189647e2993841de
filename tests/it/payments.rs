//! Money in and out through providers: the sandbox bank over real HTTP, VNPay's URL and IPN
//! checked against a signer written here from VNPay's documentation, the reconciler, and
//! withdrawals paid out by the worker. Every test ends with the ledger verified.

use std::collections::BTreeMap;

use civicpay::config::Mode;
use civicpay::payments::settings::Providers;
use civicpay::payments::{reconciler, sandbox, withdrawals};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha512;
use sqlx::PgPool;

use crate::support::actors::{PASSWORD, PIN, citizen, register};
use crate::support::app::{TestApp, test_config};
use crate::support::database::count;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::metrics::{scrape, with_metrics_token};
use crate::support::problems::{expect_invalid_fields, expect_problem};
use crate::support::requests::balance;

const VNPAY_TMN: &str = "CIVICPAY";
const VNPAY_SECRET: &str = "VNPAYTESTSECRET0123456789ABCDEFGH";
const PHONE: &str = "0912000201";

fn config() -> civicpay::config::Config {
    let mut config = test_config();
    config.payments.vnpay_tmn_code = Some(VNPAY_TMN.into());
    config.payments.vnpay_hash_secret = Some(VNPAY_SECRET.into());
    config
}

async fn set_up(pool: &PgPool, funds: i64) -> (TestApp, String) {
    let app = TestApp::spawn_with(pool.clone(), config(), axum::Router::new()).await;
    let token = citizen(&app, PHONE, funds).await;
    (app, token)
}

async fn start_topup(app: &TestApp, token: &str, provider: &str, amount: i64) -> Value {
    let response = app
        .client
        .post(app.url("/v1/wallet/topups"))
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"amount": amount, "provider": provider}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// Our reference at the provider, as the payment URL carries it.
fn reference_of(topup: &Value) -> String {
    let url = topup["payment_url"].as_str().unwrap();
    match url.split_once("vnp_TxnRef=") {
        Some((_, rest)) => rest.split('&').next().unwrap().to_owned(),
        None => url.rsplit('/').next().unwrap().to_owned(),
    }
}

async fn topup_status(app: &TestApp, token: &str, topup: &Value) -> String {
    let path = format!("/v1/wallet/topups/{}", topup["id"].as_str().unwrap());
    app.get_json_with(token, &path).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn sandbox_notify(app: &TestApp, (query, body): (String, String)) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/providers/sandbox/notify?{query}")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// How the sandbox bank's notification was taken, as our answer to it says.
async fn outcome(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["outcome"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test]
async fn a_sandbox_top_up_approved_at_the_bank_credits_the_wallet_once(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "sandbox", 200_000).await;
    assert_eq!(topup["status"], "pending");
    let reference = reference_of(&topup);
    assert!(
        topup["payment_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/sandbox/pay/{reference}"))
    );
    let page = app.get(&format!("/sandbox/pay/{reference}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("200000"));

    let approved = app
        .client
        .post(app.url(&format!("/sandbox/pay/{reference}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);
    assert_eq!(topup_status(&app, &token, &topup).await, "succeeded");
    assert_eq!(balance(&app, &token).await, 200_000);

    // The bank sends the same notification again: answered, nothing moves.
    let transaction: String =
        sqlx::query_scalar("SELECT transaction_id FROM sandbox_bank_payments")
            .fetch_one(&pool)
            .await
            .unwrap();
    let again = sandbox_notify(
        &app,
        sandbox::signed_notification(&reference, &transaction, 200_000, true),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again.json::<Value>().await.unwrap()["outcome"],
        "already_confirmed"
    );
    assert_eq!(balance(&app, &token).await, 200_000);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM provider_notifications").await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM journal_entries WHERE kind = 'topup'"
        )
        .await,
        1
    );
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_declined_top_up_fails_and_moves_no_money(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "sandbox", 50_000).await;
    let reference = reference_of(&topup);
    let declined = app
        .client
        .post(app.url(&format!("/sandbox/pay/{reference}/decline")))
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::OK);
    assert_eq!(topup_status(&app, &token, &topup).await, "failed");
    assert_eq!(balance(&app, &token).await, 0);
    // A late "approved" for a failed top-up changes nothing.
    let late = sandbox_notify(
        &app,
        sandbox::signed_notification(&reference, "SBXLATE", 50_000, true),
    )
    .await;
    assert_eq!(
        late.json::<Value>().await.unwrap()["outcome"],
        "already_confirmed"
    );
    assert_eq!(balance(&app, &token).await, 0);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn tampered_wrong_amount_and_unknown_notifications_change_nothing(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "sandbox", 80_000).await;
    let reference = reference_of(&topup);
    let (query, body) = sandbox::signed_notification(&reference, "SBX1", 80_000, true);
    let tampered = body.replace("80000", "8000000");
    assert_eq!(
        outcome(sandbox_notify(&app, (query, tampered)).await).await,
        "invalid_signature"
    );
    let unsigned = (
        "signature=00ff".to_owned(),
        sandbox::signed_notification(&reference, "SBX1", 80_000, true).1,
    );
    assert_eq!(
        outcome(sandbox_notify(&app, unsigned).await).await,
        "invalid_signature"
    );
    let wrong_amount = sandbox::signed_notification(&reference, "SBX1", 79_000, true);
    assert_eq!(
        outcome(sandbox_notify(&app, wrong_amount).await).await,
        "invalid_amount"
    );
    let unknown = sandbox::signed_notification("TNOSUCHORDER", "SBX2", 80_000, true);
    assert_eq!(
        outcome(sandbox_notify(&app, unknown).await).await,
        "order_not_found"
    );
    assert_eq!(topup_status(&app, &token, &topup).await, "pending");
    assert_eq!(balance(&app, &token).await, 0);
    let stored = count(&pool, "SELECT count(*) FROM provider_notifications").await;
    assert_eq!(stored, 4, "every notification is kept raw, refused or not");
    let response = app.get("/v1/providers/nobank/notify").await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_ledger_verifies(&pool).await;
}

/// VNPay's documented signing, written here independently: `vnp_*` fields but the hash ones,
/// non-empty, sorted by name, `key=value` joined by `&`, each URL-encoded as a form
/// (`+` for a space, unreserved characters kept), HMAC-SHA512 in hex.
fn vnpay_signature(params: &BTreeMap<String, String>) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }
    let data: Vec<String> = params
        .iter()
        .filter(|(k, v)| {
            k.starts_with("vnp_")
                && !v.is_empty()
                && *k != "vnp_SecureHash"
                && *k != "vnp_SecureHashType"
        })
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut mac = Hmac::<Sha512>::new_from_slice(VNPAY_SECRET.as_bytes()).unwrap();
    mac.update(data.join("&").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn vnpay_query(params: &BTreeMap<String, String>, signature: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        query.append_pair(key, value);
    }
    query.append_pair("vnp_SecureHash", signature);
    query.finish()
}

fn ipn(reference: &str, amount: i64, response_code: &str) -> BTreeMap<String, String> {
    [
        ("vnp_Amount", (amount * 100).to_string()),
        ("vnp_BankCode", "NCB".into()),
        ("vnp_BankTranNo", "VNP14422574".into()),
        ("vnp_CardType", "ATM".into()),
        ("vnp_OrderInfo", format!("Nap tien vi civicpay {reference}")),
        ("vnp_PayDate", "20261122153000".into()),
        ("vnp_ResponseCode", response_code.into()),
        ("vnp_TmnCode", VNPAY_TMN.into()),
        ("vnp_TransactionNo", "14422574".into()),
        ("vnp_TransactionStatus", response_code.into()),
        ("vnp_TxnRef", reference.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn vnpay_ipn(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(&format!("/v1/providers/vnpay/notify?{query}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[sqlx::test]
async fn a_vnpay_payment_url_and_ipn_follow_the_documented_algorithm(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "vnpay", 150_000).await;
    let url = url::Url::parse(topup["payment_url"].as_str().unwrap()).unwrap();
    assert_eq!(url.host_str(), Some("sandbox.vnpayment.vn"));
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(params["vnp_Amount"], "15000000");
    assert_eq!(params["vnp_Version"], "2.1.0");
    assert_eq!(params["vnp_Command"], "pay");
    assert_eq!(params["vnp_CurrCode"], "VND");
    assert_eq!(params["vnp_TmnCode"], VNPAY_TMN);
    assert_eq!(params["vnp_CreateDate"].len(), 14);
    assert!(params["vnp_ReturnUrl"].ends_with("/v1/providers/vnpay/return"));
    assert!(
        params["vnp_OrderInfo"].contains(' '),
        "a space, to exercise `+`"
    );
    assert_eq!(params["vnp_SecureHash"], vnpay_signature(&params));
    assert!(url.query().unwrap().contains("Nap+tien+vi+civicpay"));
    let reference = params["vnp_TxnRef"].clone();

    // The IPN: a tampered one (97), an unknown order (01), a wrong amount (04), the real one
    // (00), and the real one again (02).
    let good = ipn(&reference, 150_000, "00");
    let signature = vnpay_signature(&good);
    let mut tampered = good.clone();
    tampered.insert("vnp_Amount".into(), "1500000000".into());
    assert_eq!(
        vnpay_ipn(&app, &vnpay_query(&tampered, &signature)).await["RspCode"],
        "97"
    );
    let unknown = ipn("TNOSUCHORDER", 150_000, "00");
    assert_eq!(
        vnpay_ipn(&app, &vnpay_query(&unknown, &vnpay_signature(&unknown))).await["RspCode"],
        "01"
    );
    let cheaper = ipn(&reference, 149_000, "00");
    assert_eq!(
        vnpay_ipn(&app, &vnpay_query(&cheaper, &vnpay_signature(&cheaper))).await["RspCode"],
        "04"
    );
    assert_eq!(balance(&app, &token).await, 0);
    let answer = vnpay_ipn(&app, &vnpay_query(&good, &signature)).await;
    assert_eq!(
        answer,
        json!({"RspCode": "00", "Message": "Confirm Success"})
    );
    assert_eq!(balance(&app, &token).await, 150_000);
    assert_eq!(
        vnpay_ipn(&app, &vnpay_query(&good, &signature)).await["RspCode"],
        "02"
    );
    assert_eq!(balance(&app, &token).await, 150_000);

    // The browser's return shows the result and changes nothing.
    let shown = app
        .get_json(&format!(
            "/v1/providers/vnpay/return?{}",
            vnpay_query(&good, &signature)
        ))
        .await;
    assert_eq!(shown["signature_valid"], true);
    assert_eq!(shown["status"], "succeeded");
    let forged = app
        .get_json(&format!(
            "/v1/providers/vnpay/return?{}",
            vnpay_query(&tampered, &signature)
        ))
        .await;
    assert_eq!(forged["signature_valid"], false);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_failed_vnpay_payment_is_confirmed_without_money(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "vnpay", 70_000).await;
    let failed = ipn(&reference_of(&topup), 70_000, "24");
    assert_eq!(
        vnpay_ipn(&app, &vnpay_query(&failed, &vnpay_signature(&failed))).await["RspCode"],
        "00"
    );
    assert_eq!(topup_status(&app, &token, &topup).await, "failed");
    assert_eq!(balance(&app, &token).await, 0);
    assert_ledger_verifies(&pool).await;
}

fn providers() -> Providers {
    Providers::from_config(&config())
}

/// Makes a top-up look `age` old, past the reconciler's threshold.
async fn age(pool: &PgPool, topup: &Value, interval: &str) {
    sqlx::query(&format!(
        "UPDATE topups SET created_at = created_at - interval '{interval}' WHERE id = $1::uuid"
    ))
    .bind(topup["id"].as_str().unwrap())
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn the_reconciler_settles_a_top_up_whose_notification_was_lost(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "sandbox", 120_000).await;
    let reference = reference_of(&topup);
    let url = app.url(&format!("/sandbox/pay/{reference}/approve?notify=false"));
    assert_eq!(
        app.client.post(url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(topup_status(&app, &token, &topup).await, "pending");
    // Too young to ask about yet.
    assert_eq!(reconciler::reconcile(&pool, &providers()).await.unwrap(), 0);
    age(&pool, &topup, "1 hour").await;
    assert_eq!(reconciler::reconcile(&pool, &providers()).await.unwrap(), 1);
    assert_eq!(topup_status(&app, &token, &topup).await, "succeeded");
    assert_eq!(balance(&app, &token).await, 120_000);
    assert_eq!(
        reconciler::reconcile(&pool, &providers()).await.unwrap(),
        0,
        "a second pass changes nothing"
    );

    // A top-up the bank never saw expires once old enough.
    let abandoned = start_topup(&app, &token, "sandbox", 10_000).await;
    age(&pool, &abandoned, "2 days").await;
    assert_eq!(reconciler::reconcile(&pool, &providers()).await.unwrap(), 1);
    assert_eq!(topup_status(&app, &token, &abandoned).await, "expired");
    assert_eq!(balance(&app, &token).await, 120_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_notification_racing_two_reconcilers_credits_once(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    for round in 0..5 {
        let topup = start_topup(&app, &token, "sandbox", 10_000).await;
        let reference = reference_of(&topup);
        let url = app.url(&format!("/sandbox/pay/{reference}/approve?notify=false"));
        app.client.post(url).send().await.unwrap();
        age(&pool, &topup, "1 hour").await;
        let transaction: String = sqlx::query_scalar(
            "SELECT transaction_id FROM sandbox_bank_payments WHERE reference = $1",
        )
        .bind(&reference)
        .fetch_one(&pool)
        .await
        .unwrap();
        let (one, other) = (providers(), providers());
        let (first, second, notified) = tokio::join!(
            reconciler::reconcile(&pool, &one),
            reconciler::reconcile(&pool, &other),
            sandbox_notify(
                &app,
                sandbox::signed_notification(&reference, &transaction, 10_000, true)
            ),
        );
        let moved = first.unwrap() + second.unwrap();
        let outcome = notified.json::<Value>().await.unwrap()["outcome"].clone();
        assert_eq!(
            moved + usize::from(outcome == "confirmed"),
            1,
            "round {round}: exactly one settled it"
        );
        assert_eq!(balance(&app, &token).await, 10_000 * (round + 1));
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM journal_entries WHERE kind = 'topup'"
        )
        .await,
        5
    );
    assert_ledger_verifies(&pool).await;
}

async fn withdraw(
    app: &TestApp,
    token: &str,
    amount: i64,
    account: &str,
    holder: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/wallet/withdrawals"))
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .header("x-payment-pin", PIN)
        .json(&json!({"amount": amount, "bank_code": "VCB", "account_number": account, "account_name": holder}))
        .send()
        .await
        .unwrap()
}

async fn withdrawal_status(app: &TestApp, token: &str, withdrawal: &Value) -> Value {
    let path = format!(
        "/v1/wallet/withdrawals/{}",
        withdrawal["id"].as_str().unwrap()
    );
    app.get_json_with(token, &path).await
}

#[sqlx::test]
async fn a_withdrawal_is_debited_at_once_and_paid_out_by_the_worker(pool: PgPool) {
    let (app, token) = set_up(&pool, 1_000_000).await;
    let response = withdraw(&app, &token, 300_000, "0071000123456", "NGUYEN VAN AN").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let withdrawal: Value = response.json().await.unwrap();
    assert_eq!(withdrawal["status"], "pending");
    assert_eq!(balance(&app, &token).await, 700_000);
    assert_eq!(
        withdrawals::pay_out_due(&pool, &providers()).await.unwrap(),
        1
    );
    assert_eq!(
        withdrawal_status(&app, &token, &withdrawal).await["status"],
        "succeeded"
    );
    assert_eq!(
        withdrawals::pay_out_due(&pool, &providers()).await.unwrap(),
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM sandbox_bank_payouts WHERE paid"
        )
        .await,
        1
    );
    assert_eq!(balance(&app, &token).await, 700_000);

    // Another person's account, an unknown provider, no PIN: refused before any money moves.
    let response = withdraw(&app, &token, 1_000, "0071000123456", "TRAN THI HOA").await;
    assert_eq!(expect_invalid_fields(response).await, ["account_name"]);
    let response = app
        .client
        .post(app.url("/v1/wallet/withdrawals"))
        .bearer_auth(&token)
        .header("idempotency-key", "no-pin")
        .json(&json!({"amount": 1000, "bank_code": "VCB", "account_number": "0071000123456", "account_name": "NGUYEN VAN AN"}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST, "payment_pin_required").await;
    let response = withdraw(&app, &token, 2_000_000, "0071000123456", "Nguyễn Văn An").await;
    expect_problem(response, StatusCode::CONFLICT, "insufficient_funds").await;
    assert_eq!(balance(&app, &token).await, 700_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_refused_payout_puts_the_money_back(pool: PgPool) {
    let (app, token) = set_up(&pool, 500_000).await;
    // The sandbox bank refuses account numbers starting with 000.
    let response = withdraw(&app, &token, 200_000, "000123456789", "NGUYEN VAN AN").await;
    let withdrawal: Value = response.json().await.unwrap();
    assert_eq!(balance(&app, &token).await, 300_000);
    assert_eq!(
        withdrawals::pay_out_due(&pool, &providers()).await.unwrap(),
        1
    );
    let settled = withdrawal_status(&app, &token, &withdrawal).await;
    assert_eq!(settled["status"], "failed");
    assert!(settled["failure_reason"].as_str().unwrap().contains("000"));
    assert_eq!(balance(&app, &token).await, 500_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_worker_that_died_after_asking_the_bank_is_not_paid_twice(pool: PgPool) {
    let (app, token) = set_up(&pool, 500_000).await;
    let response = withdraw(&app, &token, 100_000, "0071000999999", "NGUYEN VAN AN").await;
    let withdrawal: Value = response.json().await.unwrap();
    let id: uuid::Uuid = withdrawal["id"].as_str().unwrap().parse().unwrap();
    // A worker claimed it, asked the bank (which paid), and died before recording the answer:
    // its lease has run out.
    let bank = providers();
    let sandbox = bank.get("sandbox").unwrap();
    let payout = civicpay::payments::provider::Payout {
        withdrawal_id: id,
        amount: 100_000,
        bank_code: "VCB",
        account_number: "0071000999999",
        account_name: "NGUYEN VAN AN",
    };
    sandbox.payout(&pool, &payout).await.unwrap();
    sqlx::query("UPDATE withdrawals SET lease_token = gen_random_uuid(), next_attempt_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    // Two workers restart at once.
    let (a, b) = tokio::join!(
        withdrawals::pay_out_due(&pool, &bank),
        withdrawals::pay_out_due(&pool, &bank)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(
        withdrawal_status(&app, &token, &withdrawal).await["status"],
        "succeeded"
    );
    let (rows, requests): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(requests)::bigint FROM sandbox_bank_payouts")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((rows, requests), (1, 2), "asked twice, paid once");
    assert_eq!(balance(&app, &token).await, 400_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn production_has_no_sandbox_bank(pool: PgPool) {
    let mut config = config();
    config.mode = Mode::Production;
    assert!(!Providers::from_config(&config).sandbox_enabled());
    config.payments.sandbox = Some(civicpay::config::Switch::On);
    let refused = config.check_mode().unwrap_err().to_string();
    assert!(refused.contains("CIVICPAY_PAYMENT_SANDBOX"), "{refused}");
    config.payments.sandbox = None;
    let app = TestApp::spawn_with(pool.clone(), config, axum::Router::new()).await;
    let response = app
        .client
        .post(app.url("/sandbox/pay/T1/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app.get("/v1/providers/sandbox/notify").await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

/// A stand-in for VNPay's merchant API on loopback: it checks each `querydr` request's
/// signature as VNPay documents it and answers, signed the documented way, that the payment
/// succeeded (or, with `forge`, signs its answer with another key).
async fn fake_vnpay_api(
    amount: i64,
    forge: bool,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = move |axum::Json(request): axum::Json<Value>| {
        let log = log.clone();
        async move {
            let field = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
            let signed = [
                "vnp_RequestId",
                "vnp_Version",
                "vnp_Command",
                "vnp_TmnCode",
                "vnp_TxnRef",
                "vnp_TransactionDate",
                "vnp_CreateDate",
                "vnp_IpAddr",
                "vnp_OrderInfo",
            ]
            .map(field)
            .join("|");
            let mut mac = Hmac::<Sha512>::new_from_slice(VNPAY_SECRET.as_bytes()).unwrap();
            mac.update(signed.as_bytes());
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut logged = request.clone();
            logged["signature_valid"] = json!(expected == field("vnp_SecureHash"));
            log.lock().unwrap().push(logged);
            let mut response = json!({
                "vnp_ResponseId": "R1", "vnp_Command": "querydr", "vnp_ResponseCode": "00",
                "vnp_Message": "QueryDR Success", "vnp_TmnCode": VNPAY_TMN, "vnp_TxnRef": field("vnp_TxnRef"),
                "vnp_Amount": (amount * 100).to_string(), "vnp_BankCode": "NCB", "vnp_PayDate": "20261122153000",
                "vnp_TransactionNo": format!("9{}", &field("vnp_TxnRef")[1..9]), "vnp_TransactionType": "01", "vnp_TransactionStatus": "00",
                "vnp_OrderInfo": field("vnp_OrderInfo"), "vnp_PromotionCode": "", "vnp_PromotionAmount": "",
            });
            let answer_fields = [
                "vnp_ResponseId",
                "vnp_Command",
                "vnp_ResponseCode",
                "vnp_Message",
                "vnp_TmnCode",
                "vnp_TxnRef",
                "vnp_Amount",
                "vnp_BankCode",
                "vnp_PayDate",
                "vnp_TransactionNo",
                "vnp_TransactionType",
                "vnp_TransactionStatus",
                "vnp_OrderInfo",
                "vnp_PromotionCode",
                "vnp_PromotionAmount",
            ]
            .map(|name| response[name].as_str().unwrap().to_owned())
            .join("|");
            let key = if forge { "another-key" } else { VNPAY_SECRET };
            let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(answer_fields.as_bytes());
            let signature: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            response["vnp_SecureHash"] = json!(signature);
            axum::Json(response)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/merchant_webapi/api/transaction",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new().route("/merchant_webapi/api/transaction", post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[sqlx::test]
async fn the_reconciler_asks_vnpay_with_a_signed_querydr_and_believes_only_a_signed_answer(
    pool: PgPool,
) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "vnpay", 90_000).await;
    age(&pool, &topup, "1 hour").await;
    for forge in [true, false] {
        // Its next check is due (after the forged answer, the backoff has passed).
        sqlx::query("UPDATE topups SET next_check_at = NULL")
            .execute(&pool)
            .await
            .unwrap();
        let (api, seen) = fake_vnpay_api(90_000, forge).await;
        let mut config = config();
        config.payments.vnpay_api_url = api.parse().unwrap();
        let moved = reconciler::reconcile(&pool, &Providers::from_config(&config))
            .await
            .unwrap();
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0]["signature_valid"], true);
        assert_eq!(requests[0]["vnp_TxnRef"], reference_of(&topup).as_str());
        assert_eq!(requests[0]["vnp_Command"], "querydr");
        if forge {
            assert_eq!(moved, 0, "an answer with a wrong signature is not believed");
            assert_eq!(topup_status(&app, &token, &topup).await, "pending");
        } else {
            assert_eq!(moved, 1);
            assert_eq!(topup_status(&app, &token, &topup).await, "succeeded");
            assert_eq!(balance(&app, &token).await, 90_000);
        }
    }
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_top_up_needs_a_verified_wallet_and_a_known_provider(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), config(), axum::Router::new()).await;
    let tokens = register(&app, "0912000204", PASSWORD).await;
    let unverified = tokens["access_token"].as_str().unwrap();
    let start = |token: &str, body: Value| {
        app.client
            .post(app.url("/v1/wallet/topups"))
            .bearer_auth(token.to_owned())
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&body)
            .send()
    };
    let response = start(unverified, json!({"amount": 10_000, "provider": "sandbox"}))
        .await
        .unwrap();
    expect_problem(response, StatusCode::CONFLICT, "wallet_not_verified").await;
    let token = citizen(&app, PHONE, 0).await;
    let response = start(&token, json!({"amount": 10_000, "provider": "momo"}))
        .await
        .unwrap();
    assert_eq!(expect_invalid_fields(response).await, ["provider"]);
    let response = start(&token, json!({"amount": 0, "provider": "sandbox"}))
        .await
        .unwrap();
    assert_eq!(expect_invalid_fields(response).await, ["amount"]);
    assert_eq!(count(&pool, "SELECT count(*) FROM topups").await, 0);
}

/// Issue 12, item 2: a genuinely signed answer (a cancelled 10,000 đ payment) with forged
/// `vnp_*` fields placed in front. The signature check used to read the last occurrence of each
/// name and the reader the first, so the forgery credited 50,000,000 đ.
#[sqlx::test]
async fn a_vnpay_query_naming_a_parameter_twice_is_refused_and_changes_nothing(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let cancelled = start_topup(&app, &token, "vnpay", 10_000).await;
    let target = start_topup(&app, &token, "vnpay", 50_000_000).await;
    let genuine = ipn(&reference_of(&cancelled), 10_000, "24");
    let genuine_query = vnpay_query(&genuine, &vnpay_signature(&genuine));
    let forged_front = form_urlencoded::Serializer::new(String::new())
        .append_pair("vnp_TxnRef", &reference_of(&target))
        .append_pair("vnp_Amount", "5000000000")
        .append_pair("vnp_ResponseCode", "00")
        .append_pair("vnp_TransactionStatus", "00")
        .append_pair("vnp_TransactionNo", "99999999")
        .finish();
    let forged = format!("{forged_front}&{genuine_query}");

    let answer = vnpay_ipn(&app, &forged).await;
    assert_eq!(answer["RspCode"], "99", "a bad request, in VNPay's terms");
    assert_eq!(topup_status(&app, &token, &target).await, "pending");
    assert_eq!(topup_status(&app, &token, &cancelled).await, "pending");
    assert_eq!(balance(&app, &token).await, 0);
    let stored: String = sqlx::query_scalar("SELECT raw FROM provider_notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, forged, "the raw request is kept as it came");

    // The browser's return believes none of it either.
    let shown = app
        .get_json(&format!("/v1/providers/vnpay/return?{forged}"))
        .await;
    assert_eq!(shown["signature_valid"], false);
    assert_eq!(shown["status"], Value::Null);

    // The genuine query alone is still taken: the cancelled payment fails, no money moves.
    assert_eq!(vnpay_ipn(&app, &genuine_query).await["RspCode"], "00");
    assert_eq!(topup_status(&app, &token, &cancelled).await, "failed");
    assert_eq!(balance(&app, &token).await, 0);
    assert_ledger_verifies(&pool).await;
}

/// The same rule at the sandbox bank: a second `signature`, or a field given twice in the
/// signed body, is refused before anything is believed.
#[sqlx::test]
async fn a_sandbox_notification_naming_a_field_twice_is_refused(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "sandbox", 30_000).await;
    let reference = reference_of(&topup);
    let (query, body) = sandbox::signed_notification(&reference, "SBXDUP", 30_000, true);
    let twice = format!("signature=00ff&{query}");
    assert_eq!(
        outcome(sandbox_notify(&app, (twice, body.clone())).await).await,
        "malformed"
    );
    // A body whose `amount` appears twice, signed as it stands.
    let doubled = body.replacen("{", "{\"amount\":1,", 1);
    let signature: String = civicpay::crypto::hmac_sha256(sandbox::SECRET, doubled.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        outcome(sandbox_notify(&app, (format!("signature={signature}"), doubled)).await).await,
        "malformed"
    );
    // A raw NUL byte in a body is still stored (as its escape), not lost.
    let with_nul = (
        "signature=00".to_owned(),
        "{\"reference\":\"\u{0}\"}".to_owned(),
    );
    assert_eq!(
        outcome(sandbox_notify(&app, with_nul).await).await,
        "invalid_signature"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM provider_notifications").await,
        3,
        "every notification is kept raw"
    );
    assert_eq!(topup_status(&app, &token, &topup).await, "pending");
    assert_eq!(balance(&app, &token).await, 0);
    assert_ledger_verifies(&pool).await;
}

/// Issue 12, item 3: the payout name is the one the identity verifier confirmed. Renaming the
/// account afterwards neither lets its holder withdraw to the new name nor stops a withdrawal
/// to the verified one.
#[sqlx::test]
async fn a_withdrawal_goes_only_to_the_verified_name_whatever_the_account_is_renamed(pool: PgPool) {
    let (app, token) = set_up(&pool, 1_000_000).await;
    let renamed = app
        .send_json_with(
            reqwest::Method::PATCH,
            "/v1/me",
            &token,
            &json!({"full_name": "Trần Thị Bình"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    for holder in ["TRAN THI BINH", "Trần Thị Bình"] {
        let response = withdraw(&app, &token, 100_000, "0071000123456", holder).await;
        assert_eq!(expect_invalid_fields(response).await, ["account_name"]);
    }
    assert_eq!(balance(&app, &token).await, 1_000_000);
    let response = withdraw(&app, &token, 100_000, "0071000123456", "nguyen van an").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(balance(&app, &token).await, 900_000);
    // Verifying again changes nothing, the confirmed name included.
    let again = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/wallet/verification",
            &token,
            &json!({"national_id": "046095000201"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let response = withdraw(&app, &token, 1_000, "0071000123456", "TRAN THI BINH").await;
    assert_eq!(expect_invalid_fields(response).await, ["account_name"]);
    assert_ledger_verifies(&pool).await;
}

/// A VNPay set-up whose merchant API cannot be reached: every status query errors.
fn unreachable_vnpay() -> civicpay::config::Config {
    let mut config = config();
    config.payments.vnpay_api_url = "http://127.0.0.1:1/merchant_webapi/api/transaction"
        .parse()
        .unwrap();
    config
}

async fn set_status_age(pool: &PgPool, provider: &str, interval: &str) {
    sqlx::query(&format!(
        "UPDATE topups SET created_at = now() - interval '{interval}' WHERE provider = $1"
    ))
    .bind(provider)
    .execute(pool)
    .await
    .unwrap();
}

/// Issue 12, item 5: more than a pass's worth of top-ups whose provider keeps erroring no
/// longer hide a later one from the reconciler, and they still expire by age.
#[sqlx::test]
async fn top_ups_whose_provider_errors_neither_starve_the_reconciler_nor_stay_pending_forever(
    pool: PgPool,
) {
    let (app, token) = set_up(&pool, 0).await;
    let providers = Providers::from_config(&unreachable_vnpay());
    for _ in 0..101 {
        start_topup(&app, &token, "vnpay", 10_000).await;
    }
    set_status_age(&pool, "vnpay", "2 hours").await;
    let paid = start_topup(&app, &token, "sandbox", 40_000).await;
    let reference = reference_of(&paid);
    let url = app.url(&format!("/sandbox/pay/{reference}/approve?notify=false"));
    app.client.post(url).send().await.unwrap();
    age(&pool, &paid, "1 hour").await;

    // The 101 stuck ones are older, so they come first; each is asked about once, then waits.
    for _ in 0..3 {
        reconciler::reconcile(&pool, &providers).await.unwrap();
    }
    assert_eq!(topup_status(&app, &token, &paid).await, "succeeded");
    assert_eq!(balance(&app, &token).await, 40_000);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM topups WHERE provider = 'vnpay' AND status = 'pending' AND next_check_at > now()").await,
        101,
        "each erroring top-up waits for its own next check"
    );

    // Past the expiry age, they expire although their provider still cannot be asked.
    sqlx::query("UPDATE topups SET created_at = now() - interval '2 days', next_check_at = NULL WHERE provider = 'vnpay'")
        .execute(&pool)
        .await
        .unwrap();
    for _ in 0..2 {
        reconciler::reconcile(&pool, &providers).await.unwrap();
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM topups WHERE provider = 'vnpay' AND status = 'expired'"
        )
        .await,
        101
    );
    assert_ledger_verifies(&pool).await;
}

/// Issue 12, item 5: VNPay sends `vnp_TransactionNo=0` for cancelled payments; two of them are
/// both taken, without colliding in the unique index.
#[sqlx::test]
async fn cancelled_vnpay_payments_with_transaction_number_zero_do_not_collide(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    for _ in 0..2 {
        let topup = start_topup(&app, &token, "vnpay", 20_000).await;
        let mut cancelled = ipn(&reference_of(&topup), 20_000, "24");
        cancelled.insert("vnp_TransactionNo".into(), "0".into());
        let answer = vnpay_ipn(&app, &vnpay_query(&cancelled, &vnpay_signature(&cancelled))).await;
        assert_eq!(answer["RspCode"], "00");
        assert_eq!(topup_status(&app, &token, &topup).await, "failed");
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM topups WHERE provider_txn_id IS NULL AND status = 'failed'"
        )
        .await,
        2
    );
    assert_ledger_verifies(&pool).await;
}

/// Issue 12, item 6: a VNPay top-up is not expired inside VNPay's own 15-minute window even
/// when the configured expiry is shorter, and a success that arrives after it did expire is
/// credited and counted in /metrics.
#[sqlx::test]
async fn a_late_success_is_credited_and_nothing_expires_inside_the_providers_window(pool: PgPool) {
    let mut config = unreachable_vnpay();
    config.payments.topup_expiry_secs = 60;
    config.payments.reconcile_after_secs = 1;
    let app = TestApp::spawn_with(pool.clone(), config.clone(), axum::Router::new()).await;
    let token = citizen(&app, PHONE, 0).await;
    let providers = Providers::from_config(&config);
    let topup = start_topup(&app, &token, "vnpay", 60_000).await;
    age(&pool, &topup, "5 minutes").await;
    reconciler::reconcile(&pool, &providers).await.unwrap();
    assert_eq!(topup_status(&app, &token, &topup).await, "pending");

    sqlx::query(
        "UPDATE topups SET created_at = now() - interval '16 minutes', next_check_at = NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    reconciler::reconcile(&pool, &providers).await.unwrap();
    assert_eq!(topup_status(&app, &token, &topup).await, "expired");

    let paid = ipn(&reference_of(&topup), 60_000, "00");
    let answer = vnpay_ipn(&app, &vnpay_query(&paid, &vnpay_signature(&paid))).await;
    assert_eq!(answer["RspCode"], "00");
    assert_eq!(topup_status(&app, &token, &topup).await, "succeeded");
    assert_eq!(balance(&app, &token).await, 60_000);
    // Told again, nothing more moves.
    let again = vnpay_ipn(&app, &vnpay_query(&paid, &vnpay_signature(&paid))).await;
    assert_eq!(again["RspCode"], "02");
    assert_eq!(balance(&app, &token).await, 60_000);
    // The queue gauges come from the database: any process on it shows them, here one that
    // serves /metrics on its API listener to the metrics token.
    let operations = TestApp::spawn_with(
        pool.clone(),
        with_metrics_token(config),
        axum::Router::new(),
    )
    .await;
    let metrics = scrape(&operations).await;
    assert!(
        metrics.contains(r#"civicpay_queue_items{queue="topups",state="credited_after_expiry"} 1"#),
        "{metrics}"
    );
    assert_ledger_verifies(&pool).await;
}

/// VNPay does not sign empty values, so an empty parameter appended to a genuine answer is not
/// read either: here it would have turned a genuine success into a failure.
#[sqlx::test]
async fn an_unsigned_empty_vnpay_parameter_is_not_believed(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "vnpay", 25_000).await;
    let mut paid = ipn(&reference_of(&topup), 25_000, "00");
    paid.remove("vnp_TransactionStatus");
    let query = format!(
        "{}&vnp_TransactionStatus=",
        vnpay_query(&paid, &vnpay_signature(&paid))
    );
    assert_eq!(vnpay_ipn(&app, &query).await["RspCode"], "00");
    assert_eq!(topup_status(&app, &token, &topup).await, "succeeded");
    assert_eq!(balance(&app, &token).await, 25_000);
    assert_ledger_verifies(&pool).await;
}

/// A process without a provider's settings leaves that provider's top-ups to a process that
/// can ask about them: it neither claims nor expires them.
#[sqlx::test]
async fn a_reconciler_leaves_alone_the_top_ups_of_a_provider_it_does_not_have(pool: PgPool) {
    let (app, token) = set_up(&pool, 0).await;
    let topup = start_topup(&app, &token, "vnpay", 15_000).await;
    age(&pool, &topup, "3 days").await;
    let without_vnpay = Providers::from_config(&test_config());
    assert!(without_vnpay.get("vnpay").is_none());
    assert_eq!(
        reconciler::reconcile(&pool, &without_vnpay).await.unwrap(),
        0
    );
    assert_eq!(topup_status(&app, &token, &topup).await, "pending");
    assert_eq!(
        count(&pool, "SELECT checks::bigint FROM topups").await,
        0,
        "not even claimed"
    );
}
