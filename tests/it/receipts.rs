//! Receipts: one per paid bill, written in the paying transaction, numbered gapless per series
//! and year after commit by the sequencer (run here as the server runs it, one pass at a time),
//! signed, and verifiable by anyone.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use civicpay::receipts::sequencer::number_due;
use civicpay::receipts::signing::ReceiptKeys;

use crate::support::actors::{PIN, admin, citizen};
use crate::support::app::{TestApp, test_config};
use crate::support::database::count;
use crate::support::ledger::assert_ledger_verifies;

/// Not demo citizens: the demo data is loaded for the admin.
const PAYER: &str = "0987000333";

fn keys() -> ReceiptKeys {
    ReceiptKeys::from_config(&test_config().receipts).expect("the test key is valid")
}

/// A water company; answers its API key.
async fn water_company(app: &TestApp) -> String {
    let admin = admin(app).await;
    let body = json!({
        "name": "Công ty Nước Thử", "code": "NUOCRCPT", "kind": "water", "limit_category": "utility",
        "callback_url": null, "events": [], "tax_code": "3300100123"
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/admin/billers", &admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["api_key"].as_str().unwrap().to_owned()
}

/// `count` bills of `amount` each, in one batch; answers their ids.
async fn bills(app: &TestApp, key: &str, count: usize, amount: i64) -> Vec<String> {
    let rows: Vec<Value> = (0..count)
        .map(|n| {
            json!({"reference": format!("HD-{n:05}"), "customer_code": "KH001", "payer_name": "Nguyễn Văn A",
                   "items": [{"name": "Tiền nước", "amount": amount}], "amount": amount})
        })
        .collect();
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/biller/bills/batch",
            key,
            &json!({"bills": rows}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let answer: Value = response.json().await.unwrap();
    answer["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn pay(app: &TestApp, token: &str, bill_id: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/bills/{bill_id}/pay")))
        .bearer_auth(token)
        .header("idempotency-key", format!("pay-{bill_id}"))
        .header("x-payment-pin", PIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

async fn receipt(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json_with(token, &format!("/v1/receipts/{id}"))
        .await
}

/// The numbers the series holds, in order.
async fn numbers(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT r.number FROM receipts r JOIN bills b ON b.id = r.bill_id
         JOIN merchants m ON m.id = b.biller_id
         WHERE m.code = 'NUOCRCPT' AND r.number IS NOT NULL ORDER BY r.number",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_bill_paid_from_the_wallet_gets_one_receipt_numbered_and_signed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app).await;
    // The demo data's own receipts (its counter shift) are numbered first.
    number_due(&pool, &keys()).await.unwrap();
    let ids = bills(&app, &key, 1, 185_000).await;
    let token = citizen(&app, PAYER, 500_000).await;

    let paid: Value = pay(&app, &token, &ids[0]).await.json().await.unwrap();
    let receipt_id = paid["receipt_id"]
        .as_str()
        .expect("the pay answer names the receipt");
    let before = receipt(&app, &token, receipt_id).await;
    assert_eq!(before["status"], "numbering");
    assert_eq!(before["number"], Value::Null);
    assert_eq!(before["amount"], 185_000);

    assert_eq!(number_due(&pool, &keys()).await.unwrap(), 1);
    let issued = receipt(&app, &token, receipt_id).await;
    assert_eq!(issued["status"], "issued");
    assert_eq!(issued["number"], 1);
    assert_eq!(issued["series"], "BL-E");
    assert_eq!(issued["method"], "wallet");
    assert_eq!(issued["bill_code"], paid["code"]);
    assert_eq!(issued["biller"]["tax_code"], "3300100123");
    // Paid by someone it is not addressed to (a biller's bill is addressed to no account):
    // the signed receipt names the payer masked, as the bill showed it to them.
    assert_eq!(issued["payer_name"], "Ng*** V** A");
    assert_eq!(issued["items"][0]["amount"], 185_000);

    // The compact form is what the verifier checks: genuine, and it names this receipt.
    let verified: Value = app
        .post_json(
            "/v1/receipts/verify",
            &json!({"compact": issued["compact"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["genuine"], true, "{verified}");
    assert_eq!(verified["status"], "issued");
    assert_eq!(verified["receipt"]["id"], receipt_id);
    assert_eq!(verified["receipt"]["number"], 1);
    // The biller finds it by series and number; another citizen does not find it at all.
    let by_number = app
        .get_json_with(&key, "/v1/biller/receipts/1?series=BL-E")
        .await;
    assert_eq!(by_number["id"], receipt_id);
    let stranger = citizen(&app, "0987000444", 0).await;
    let response = app
        .get_with_token(&format!("/v1/receipts/{receipt_id}"), &stranger)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_bill_paid_through_a_provider_gets_its_receipt_and_a_double_payment_none(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app).await;
    let ids = bills(&app, &key, 2, 90_000).await;
    let token = citizen(&app, PAYER, 500_000).await;

    // One bill through the sandbox bank alone; the other through the bank after the wallet.
    for (n, id) in ids.iter().enumerate() {
        let opened: Value = app
            .client
            .post(app.url(&format!("/v1/bills/{id}/pay")))
            .bearer_auth(&token)
            .header("idempotency-key", format!("bank-{id}"))
            .json(&json!({"source": "provider", "provider": "sandbox"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let reference = opened["payment_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        if n == 1 {
            assert_eq!(pay(&app, &token, id).await.status(), StatusCode::OK);
        }
        let approved = app
            .client
            .post(app.url(&format!("/sandbox/pay/{reference}/approve")))
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), StatusCode::OK);
    }
    let receipts = "SELECT count(*) FROM receipts r JOIN bills b ON b.id = r.bill_id
                    JOIN merchants m ON m.id = b.biller_id WHERE m.code = 'NUOCRCPT'";
    assert_eq!(count(&pool, receipts).await, 2);
    let methods: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT r.method {} ORDER BY r.seq",
        receipts.trim_start_matches("SELECT count(*)")
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(methods, ["provider", "wallet"]);
    // The double payment of the second bill was refunded, recorded against the bill, and got
    // no receipt of its own.
    let refunded = count(
        &pool,
        "SELECT count(*) FROM bill_payments WHERE refund_reason = 'double_payment'",
    )
    .await;
    assert_eq!(refunded, 1);
    number_due(&pool, &keys()).await.unwrap();
    assert_eq!(numbers(&pool).await, [1, 2]);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn numbers_stay_gapless_across_a_thousand_concurrent_payments_some_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app).await;
    let ids = bills(&app, &key, 1_000, 10_000).await;
    // Eight payers of 125 bills each (registration is limited to ten codes an hour per
    // address); two of them can afford only 50, so 150 payments roll back.
    let mut payers = Vec::new();
    for n in 0..8 {
        let funds = if n < 2 { 500_000 } else { 1_250_000 };
        payers.push(citizen(&app, &format!("09870{n:05}"), funds).await);
    }
    let outcomes = futures_util::stream::iter(ids.iter().enumerate())
        .map(|(n, id)| {
            let (app, token) = (&app, &payers[n % payers.len()]);
            async move { pay(app, token, id).await.status() }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let paid = outcomes.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = outcomes
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(paid + refused, 1_000, "{outcomes:?}");
    assert_eq!(
        refused,
        2 * (125 - 50),
        "two payers afford 50 of their 125 bills"
    );

    // Meanwhile nothing is numbered; one pass numbers them all, 1 to the number paid.
    assert!(numbers(&pool).await.is_empty());
    number_due(&pool, &keys()).await.unwrap();
    let expected: Vec<i64> = (1..=paid as i64).collect();
    assert_eq!(numbers(&pool).await, expected);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_sequencer_killed_mid_pass_leaves_no_gap_after_the_restart(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app).await;
    let ids = bills(&app, &key, 60, 10_000).await;
    let token = citizen(&app, PAYER, 1_000_000).await;
    for id in &ids {
        assert_eq!(pay(&app, &token, id).await.status(), StatusCode::OK);
    }
    // Kill passes at once and at moments into their work; whatever each had not committed is
    // rolled back with its connection.
    for delay_ms in [0, 1, 3, 7] {
        let (pool, keys) = (pool.clone(), keys());
        let pass = tokio::spawn(async move { number_due(&pool, &keys).await });
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        pass.abort();
        let _ = pass.await;
    }
    // The restarted sequencer numbers the rest, after whatever was committed (a killed pass's
    // connection may hold its series' lock until its rollback reaches the server: the next
    // pass skips the series meanwhile, as it would for another live process).
    for _ in 0..50 {
        number_due(&pool, &keys()).await.unwrap();
        if count(&pool, "SELECT count(*) FROM receipts WHERE number IS NULL").await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let expected: Vec<i64> = (1..=60).collect();
    assert_eq!(numbers(&pool).await, expected);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM receipts WHERE number IS NULL").await,
        0
    );
}

#[sqlx::test]
async fn a_biller_s_own_series_numbers_its_channel_and_the_public_key_is_published(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app).await;
    let admin = crate::support::demo::log_in(&app, crate::support::demo::ADMIN).await;
    let biller_id: String =
        sqlx::query_scalar("SELECT id::text FROM merchants WHERE code = 'NUOCRCPT'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let path = format!("/v1/admin/billers/{biller_id}/receipt-series");
    let body = json!({"method": "wallet", "form": "01BLP0-002", "series": "NT-26E"});
    let added = app
        .send_json_with(reqwest::Method::POST, &path, &admin, &body)
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let again = app
        .send_json_with(reqwest::Method::POST, &path, &admin, &body)
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    let ids = bills(&app, &key, 1, 50_000).await;
    let token = citizen(&app, PAYER, 100_000).await;
    let paid: Value = pay(&app, &token, &ids[0]).await.json().await.unwrap();
    number_due(&pool, &keys()).await.unwrap();
    let issued = receipt(&app, &token, paid["receipt_id"].as_str().unwrap()).await;
    assert_eq!(
        (issued["form"].as_str(), issued["series"].as_str()),
        (Some("01BLP0-002"), Some("NT-26E"))
    );
    assert_eq!(issued["number"], 1);

    let published = app.get_json("/v1/receipts/public-key").await;
    let current = &published["keys"][0];
    assert_eq!(current["current"], true);
    assert_eq!(current["key_id"], issued["key_id"]);
    assert_eq!(
        current["public_key"].as_str().unwrap().len(),
        43,
        "32 bytes, base64url"
    );
}

#[sqlx::test]
async fn a_cancelled_receipt_keeps_its_number_and_verifies_as_cancelled(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = water_company(&app).await;
    let ids = bills(&app, &key, 1, 70_000).await;
    let token = citizen(&app, PAYER, 100_000).await;
    let paid: Value = pay(&app, &token, &ids[0]).await.json().await.unwrap();
    number_due(&pool, &keys()).await.unwrap();
    let receipt_id = paid["receipt_id"].as_str().unwrap();
    let issued = receipt(&app, &token, receipt_id).await;

    // What a dossier's refund does to its fee's receipt (`bills::fees`).
    let mut conn = pool.acquire().await.unwrap();
    civicpay::receipts::cancel(&mut conn, ids[0].parse().unwrap())
        .await
        .unwrap();
    drop(conn);
    let cancelled = receipt(&app, &token, receipt_id).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["number"], issued["number"]);
    assert_eq!(cancelled["compact"], issued["compact"]);
    let verified: Value = app
        .post_json(
            "/v1/receipts/verify",
            &json!({"compact": issued["compact"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (verified["genuine"].as_bool(), verified["status"].as_str()),
        (Some(true), Some("cancelled"))
    );
}
