//! Paying bills: from the wallet in one tap, through a provider, once — a second payment by
//! another channel is refunded in the transaction that takes it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{PIN, admin, citizen};
use crate::support::app::TestApp;
use crate::support::database::count;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::expect_conflict;
use crate::support::receiver::Receiver;
use crate::support::requests::balance;
use crate::support::workers::{Workers, quick_settings};

/// Not a demo citizen: the demo data is loaded for the admin.
const PAYER: &str = "0987000111";

/// The test water company's bills and their payments (the demo data has payments of its own:
/// its counter shift).
const THIS_BILLERS_BILLS: &str =
    "SELECT b.id FROM bills b JOIN merchants m ON m.id = b.biller_id WHERE m.code = 'NUOCTHU'";
const THIS_BILLERS_PAYMENTS: &str = "SELECT count(*) FROM bill_payments WHERE bill_id IN \
    (SELECT b.id FROM bills b JOIN merchants m ON m.id = b.biller_id WHERE m.code = 'NUOCTHU')";

/// A water company whose callbacks go to `callback_url`; answers its API key.
async fn water_company(app: &TestApp, callback_url: Option<&str>) -> String {
    let admin = admin(app).await;
    let body = json!({
        "name": "Công ty Nước Thử", "code": "NUOCTHU", "kind": "water", "limit_category": "utility",
        "callback_url": callback_url, "events": ["bill.paid", "bill.cancelled"]
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/admin/billers", &admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("bk_"));
    created["api_key"].as_str().unwrap().to_owned()
}

async fn push_bill(app: &TestApp, key: &str, reference: &str, amount: i64) -> Value {
    let body = json!({
        "reference": reference, "customer_code": "KH001", "payer_name": "Nguyễn Văn A",
        "items": [{"name": "Tiền nước tháng 11", "amount": amount}], "amount": amount,
        "due_date": "2026-12-20"
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/biller/bills", key, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn pay_from_wallet(app: &TestApp, token: &str, bill: &Value, key: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap())))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", PIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

async fn bill_status(pool: &PgPool, bill: &Value) -> String {
    sqlx::query_scalar("SELECT status FROM bills WHERE id = $1::uuid")
        .bind(bill["id"].as_str().unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_bill_paid_from_the_wallet_is_paid_once_and_its_biller_called_back(pool: PgPool) {
    let mut receiver = Receiver::start().await;
    let app = TestApp::spawn(pool.clone()).await;
    let workers = Workers::start(&pool, quick_settings());
    let key = water_company(&app, Some(&receiver.url)).await;
    let bill = push_bill(&app, &key, "HD-001", 185_000).await;
    let token = citizen(&app, PAYER, 500_000).await;

    let response = pay_from_wallet(&app, &token, &bill, "pay-1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let paid: Value = response.json().await.unwrap();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["paid_via"], "wallet");
    assert_eq!(paid["amount"], 185_000);
    assert_eq!(balance(&app, &token).await, 315_000);

    // The same key replays; a new key is refused: the bill is paid once.
    let replay = pay_from_wallet(&app, &token, &bill, "pay-1").await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let again = pay_from_wallet(&app, &token, &bill, "pay-2").await;
    expect_conflict(again, "already_paid").await;
    assert_eq!(balance(&app, &token).await, 315_000);

    let history = app.get_json_with(&token, "/v1/wallet/transactions").await;
    let movement = &history["data"][0];
    assert_eq!(movement["kind"], "bill_payment");
    assert_eq!(movement["direction"], "out");
    assert_eq!(movement["counterparty"], "Công ty Nước Thử");
    assert_eq!(movement["reference"], bill["code"]);

    let callback = receiver
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("bill.paid reaches the biller");
    let event: Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(event["type"], "bill.paid");
    assert_eq!(event["data"]["code"], bill["code"]);
    assert_eq!(event["data"]["status"], "paid");
    assert_eq!(event["data"]["payer_name"], "Nguyễn Văn A");
    workers.stop().await;
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn too_little_balance_is_refused_and_changes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let bill = push_bill(&app, &key, "HD-002", 185_000).await;
    let token = citizen(&app, PAYER, 100_000).await;

    let response = pay_from_wallet(&app, &token, &bill, "short-1").await;
    expect_conflict(response, "insufficient_funds").await;
    assert_eq!(balance(&app, &token).await, 100_000);
    assert_eq!(bill_status(&pool, &bill).await, "unpaid");
    assert_eq!(count(&pool, THIS_BILLERS_PAYMENTS).await, 0);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_cancelled_bill_cannot_be_paid(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let bill = push_bill(&app, &key, "HD-003", 90_000).await;
    let cancelled = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/biller/bills/HD-003/cancel",
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let token = citizen(&app, PAYER, 500_000).await;

    let response = pay_from_wallet(&app, &token, &bill, "late-1").await;
    expect_conflict(response, "bill_cancelled").await;
    assert_eq!(balance(&app, &token).await, 500_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn two_payments_of_one_bill_racing_with_different_keys_pay_it_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let bill = push_bill(&app, &key, "HD-004", 120_000).await;
    let token = citizen(&app, PAYER, 1_000_000).await;

    let attempts = (0..8).map(|i| {
        let (app, token, bill) = (&app, &token, &bill);
        async move {
            pay_from_wallet(app, token, bill, &format!("race-{i}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let paid = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((paid, refused), (1, 7), "{statuses:?}");
    assert_eq!(balance(&app, &token).await, 880_000);
    assert_eq!(count(&pool, THIS_BILLERS_PAYMENTS).await, 1);
    assert_ledger_verifies(&pool).await;
}

/// Opens a sandbox payment of the bill and answers the provider's reference for it.
async fn open_at_sandbox(app: &TestApp, token: &str, bill: &Value) -> String {
    let response = app
        .client
        .post(app.url(&format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap())))
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"source": "provider", "provider": "sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let opened: Value = response.json().await.unwrap();
    assert_eq!(opened["status"], "pending");
    assert_eq!(opened["bill_id"], bill["id"]);
    assert_eq!(opened["amount"], bill["amount"]);
    let url = opened["payment_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

async fn approve_at_sandbox(app: &TestApp, reference: &str) {
    let approved = app
        .client
        .post(app.url(&format!("/sandbox/pay/{reference}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);
}

#[sqlx::test]
async fn a_bill_paid_through_a_provider_is_paid_by_its_notification(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let bill = push_bill(&app, &key, "HD-005", 210_000).await;
    let token = citizen(&app, PAYER, 0).await;

    let reference = open_at_sandbox(&app, &token, &bill).await;
    assert_eq!(bill_status(&pool, &bill).await, "unpaid");
    approve_at_sandbox(&app, &reference).await;

    let seen = app.get_json_with(&key, "/v1/biller/bills/HD-005").await;
    assert_eq!(seen["status"], "paid");
    assert_eq!(seen["paid_via"], "provider");
    // The money went from the provider to the biller, not through the wallet.
    assert_eq!(balance(&app, &token).await, 0);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_second_payment_by_another_channel_is_refunded_to_the_payer_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let bill = push_bill(&app, &key, "HD-006", 150_000).await;
    let token = citizen(&app, PAYER, 400_000).await;

    // The citizen opens a bank payment, then, impatient, pays from the wallet; the bank's
    // confirmation arrives after.
    let reference = open_at_sandbox(&app, &token, &bill).await;
    let paid = pay_from_wallet(&app, &token, &bill, "wallet-first").await;
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(balance(&app, &token).await, 250_000);
    approve_at_sandbox(&app, &reference).await;

    // The bank's money came in and went straight back to the wallet.
    assert_eq!(balance(&app, &token).await, 400_000);
    assert_eq!(bill_status(&pool, &bill).await, "paid");
    let payments: Vec<(String, Option<String>)> =
        sqlx::query_as(&format!("SELECT via, refund_reason FROM bill_payments WHERE bill_id IN ({THIS_BILLERS_BILLS}) ORDER BY created_at"))
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        payments,
        vec![
            ("wallet".to_owned(), None),
            ("provider".to_owned(), Some("double_payment".to_owned())),
        ]
    );
    let history = app.get_json_with(&token, "/v1/wallet/transactions").await;
    let refund = &history["data"][0];
    assert_eq!(refund["kind"], "refund");
    assert_eq!(refund["direction"], "in");
    assert_eq!(refund["amount"], 150_000);
    assert_eq!(refund["reference"], bill["code"]);
    assert!(refund["note"].as_str().unwrap().contains("trùng"));
    // The biller's account holds one payment: the second came and went.
    let biller_net: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(p.amount), 0)::bigint FROM postings p
         JOIN merchants m ON m.ledger_account_id = p.account_id WHERE m.code = 'NUOCTHU'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(biller_net, 150_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn utility_bills_count_against_their_own_limit_not_the_general_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let bill = push_bill(&app, &key, "HD-007", 300_000).await;
    let token = citizen(&app, PAYER, 500_000).await;
    assert_eq!(
        pay_from_wallet(&app, &token, &bill, "limit-1")
            .await
            .status(),
        StatusCode::OK
    );
    let wallet = app.get_json_with(&token, "/v1/wallet").await;
    let used = |category: &str| {
        wallet["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["category"] == category)
            .map(|l| l["used"].as_i64().unwrap())
    };
    assert_eq!(used("general"), Some(0));
    assert_eq!(used("utility"), Some(300_000));
}

#[sqlx::test]
async fn two_citizens_paying_one_bill_at_once_pay_it_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let first = citizen(&app, PAYER, 1_000_000).await;
    let second = citizen(&app, "0987000222", 1_000_000).await;
    // Relatives paying one bill at the same moment, ten times over: each bill is paid once.
    for n in 0..10 {
        let bill = push_bill(&app, &key, &format!("HD-RACE-{n}"), 10_000).await;
        let (key_a, key_b) = (format!("a-{n}"), format!("b-{n}"));
        let (a, b) = tokio::join!(
            pay_from_wallet(&app, &first, &bill, &key_a),
            pay_from_wallet(&app, &second, &bill, &key_b),
        );
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "bill {n}");
    }
    let spent = 2_000_000 - balance(&app, &first).await - balance(&app, &second).await;
    assert_eq!(spent, 10 * 10_000);
    assert_eq!(count(&pool, THIS_BILLERS_PAYMENTS).await, 10);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_bill_cancelled_while_it_is_paid_ends_either_paid_or_cancelled(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app, None).await;
    let token = citizen(&app, PAYER, 1_000_000).await;
    let mut paid = 0;
    for n in 0..10 {
        let reference = format!("HD-CANCEL-{n}");
        let bill = push_bill(&app, &key, &reference, 10_000).await;
        let cancel_path = format!("/v1/biller/bills/{reference}/cancel");
        let (pay_key, empty) = (format!("c-{n}"), json!({}));
        let (payment, cancel) = tokio::join!(
            pay_from_wallet(&app, &token, &bill, &pay_key),
            app.send_json_with(reqwest::Method::POST, &cancel_path, &key, &empty),
        );
        let status = bill_status(&pool, &bill).await;
        match (payment.status(), cancel.status()) {
            (StatusCode::OK, StatusCode::CONFLICT) => {
                assert_eq!(status, "paid");
                paid += 1;
            }
            (StatusCode::CONFLICT, StatusCode::OK) => assert_eq!(status, "cancelled"),
            other => panic!("bill {n}: payment and cancel answered {other:?}"),
        }
    }
    assert_eq!(balance(&app, &token).await, 1_000_000 - paid * 10_000);
    assert_ledger_verifies(&pool).await;
}
