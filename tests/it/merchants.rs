//! Merchants, orders, QR payloads, paying by wallet, refunds. Money tests end by verifying the
//! ledger.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{PIN, admin, citizen, onboard};
use crate::support::app::TestApp;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};
use crate::support::requests::{balance, merchant_post, new_order, pay, refund};

const CITIZEN: &str = "0912000001";

/// An EMVCo TLV reader written from the specification, independent of the code under test.
fn parse_tlv(payload: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let id = &rest[..2];
        let len: usize = rest[2..4].parse().expect("two-digit length");
        fields.insert(id.to_owned(), rest[4..4 + len].to_owned());
        rest = &rest[4 + len..];
    }
    fields
}

/// CRC-16/CCITT-FALSE by the byte-wise shift formula (not the bit loop the code uses).
fn crc_independent(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc = crc.rotate_left(8) ^ u16::from(byte);
        crc ^= (crc & 0xFF) >> 4;
        crc ^= crc << 12;
        crc ^= (crc & 0xFF) << 5;
    }
    crc
}

fn check_qr(payload: &str, code: &str, amount: Option<i64>) {
    assert!(payload.is_ascii(), "{payload}");
    let fields = parse_tlv(payload);
    assert_eq!(fields["00"], "01");
    assert_eq!(fields["01"], if amount.is_some() { "12" } else { "11" });
    let account = parse_tlv(&fields["26"]);
    assert_eq!(
        (account["00"].as_str(), account["01"].as_str()),
        ("vn.civicpay", code)
    );
    assert_eq!(fields["52"].len(), 4);
    assert_eq!(fields["53"], "704");
    assert_eq!(fields.get("54").map(|a| a.parse::<i64>().unwrap()), amount);
    assert_eq!(fields["58"], "VN");
    assert!((1..=25).contains(&fields["59"].len()));
    assert!((1..=15).contains(&fields["60"].len()));
    assert!(!fields.contains_key("38"), "no NAPAS tag yet");
    assert_eq!(parse_tlv(&fields["62"])["05"], code);
    let (signed, crc) = payload.split_at(payload.len() - 4);
    assert!(signed.ends_with("6304"));
    assert_eq!(crc, format!("{:04X}", crc_independent(signed.as_bytes())));
}

#[sqlx::test]
async fn a_scanned_order_is_paid_from_the_wallet_less_the_merchants_fee(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0.005", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;
    let order = new_order(&app, &cafe, "bill-1", 35_100).await;
    assert_eq!(
        (order["status"].as_str(), order["merchant"].as_str()),
        (Some("pending"), Some("CAFE01"))
    );
    let code = order["code"].as_str().unwrap();
    assert!(code.len() <= 25);
    assert_eq!(order["deep_link"], format!("civicpay://pay?code={code}"));
    check_qr(order["qr_payload"].as_str().unwrap(), code, Some(35_100));

    let scanned = app
        .get_json_with(&citizen_token, &format!("/v1/orders/{code}"))
        .await;
    assert_eq!(
        (
            scanned["amount"].as_i64(),
            scanned["merchant_name"].as_str()
        ),
        (Some(35_100), Some("Quán CAFE01"))
    );
    let paid = pay(&app, &citizen_token, code, "pay-1").await;
    assert_eq!(paid.status(), StatusCode::OK);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(
        (paid["status"].as_str(), paid["amount_refundable"].as_i64()),
        (Some("paid"), Some(35_100))
    );
    assert_eq!(balance(&app, &citizen_token).await, 64_900);

    civicpay::ledger::fold(&pool).await.unwrap();
    let merchant_balance: i64 = sqlx::query_scalar("SELECT l.balance FROM merchants m JOIN ledger_accounts l ON l.id = m.ledger_account_id WHERE m.code = 'CAFE01'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let fee_balance: i64 =
        sqlx::query_scalar("SELECT balance FROM ledger_accounts WHERE code = 'system_fee'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // 35,100 × 0.005 = 175.5 → 176 (half away from zero), rounded once.
    assert_eq!((merchant_balance, fee_balance), (35_100 - 176, 176));
    let event: (String, Value) = sqlx::query_as("SELECT type, data FROM outbox_events WHERE merchant_id = $1::uuid ORDER BY seq DESC LIMIT 1")
        .bind(&cafe.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(event.0, "payment.succeeded");
    assert_eq!(
        (event.1["order_ref"].as_str(), event.1["status"].as_str()),
        (Some("bill-1"), Some("paid"))
    );
    let history = app
        .get_json_with(&citizen_token, "/v1/wallet/transactions?kind=payment")
        .await;
    assert_eq!(history["data"][0]["counterparty"], "Quán CAFE01");
    expect_conflict(
        pay(&app, &citizen_token, code, "pay-2").await,
        "already_paid",
    )
    .await;
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn an_order_ref_repeat_returns_the_order_and_a_different_body_conflicts(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let first = new_order(&app, &cafe, "r-1", 20_000).await;
    let body = json!({"order_ref": "r-1", "amount": 20_000, "description": "Bún bò Huế"});
    let again = merchant_post(&app, &cafe.key, "/v1/merchant/orders", body, None).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let other = json!({"order_ref": "r-1", "amount": 25_000});
    expect_conflict(
        merchant_post(&app, &cafe.key, "/v1/merchant/orders", other, None).await,
        "order_ref_conflict",
    )
    .await;
    let invalid = json!({"order_ref": "", "amount": 0, "expires_in": 5});
    let mut fields = expect_invalid_fields(
        merchant_post(&app, &cafe.key, "/v1/merchant/orders", invalid, None).await,
    )
    .await;
    fields.sort();
    assert_eq!(fields, vec!["amount", "expires_in", "order_ref"]);
}

#[sqlx::test]
async fn cancelled_and_expired_orders_cannot_be_paid(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;

    let cancelled = new_order(&app, &cafe, "c-1", 10_000).await;
    let response = merchant_post(
        &app,
        &cafe.key,
        "/v1/merchant/orders/c-1/cancel",
        json!({}),
        None,
    )
    .await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    expect_conflict(
        pay(
            &app,
            &citizen_token,
            cancelled["code"].as_str().unwrap(),
            "p1",
        )
        .await,
        "order_cancelled",
    )
    .await;
    let again = merchant_post(
        &app,
        &cafe.key,
        "/v1/merchant/orders/c-1/cancel",
        json!({}),
        None,
    )
    .await;
    expect_conflict(again, "order_cancelled").await;

    let expiring = new_order(&app, &cafe, "e-1", 10_000).await;
    sqlx::query(
        "UPDATE orders SET expires_at = now() - interval '1 second' WHERE order_ref = 'e-1'",
    )
    .execute(&pool)
    .await
    .unwrap();
    expect_conflict(
        pay(
            &app,
            &citizen_token,
            expiring["code"].as_str().unwrap(),
            "p2",
        )
        .await,
        "order_expired",
    )
    .await;
    assert_eq!(
        civicpay::merchants::orders::expire_due(&pool)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        civicpay::merchants::orders::expire_due(&pool)
            .await
            .unwrap(),
        0
    );
    let events: Vec<String> = sqlx::query_scalar(
        // Not the demo billers' (the demo counter shift's `bill.paid`).
        "SELECT type FROM outbox_events WHERE merchant_id IS NOT NULL
         AND merchant_id NOT IN (SELECT id FROM merchants WHERE role = 'biller') ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(events, vec!["order.cancelled", "order.expired"]);
    assert_eq!(balance(&app, &citizen_token).await, 100_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn paying_is_refused_without_funds_or_over_the_limit(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let water = onboard(&app, &admin, "NUOCSACH", "0", "utility").await;
    let citizen_token = citizen(&app, CITIZEN, 50_000).await;
    let big = new_order(&app, &cafe, "big", 60_000).await;
    expect_conflict(
        pay(&app, &citizen_token, big["code"].as_str().unwrap(), "p1").await,
        "insufficient_funds",
    )
    .await;

    let month = civicpay::vietnam_time::month_of(chrono::Utc::now());
    sqlx::query("INSERT INTO wallet_limit_usage SELECT id, 'general', $1, 100000000 FROM accounts WHERE phone = '+84912000001'")
        .bind(month)
        .execute(&pool)
        .await
        .unwrap();
    let coffee = new_order(&app, &cafe, "coffee", 20_000).await;
    expect_conflict(
        pay(&app, &citizen_token, coffee["code"].as_str().unwrap(), "p2").await,
        "limit_exceeded",
    )
    .await;
    // The water bill counts against the utilities ceiling, not the spent general one.
    let bill = new_order(&app, &water, "bill", 20_000).await;
    assert_eq!(
        pay(&app, &citizen_token, bill["code"].as_str().unwrap(), "p3")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(balance(&app, &citizen_token).await, 30_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_static_payment_creates_an_order_the_merchant_can_refund(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let stall = onboard(&app, &admin, "STALL01", "0.01", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;
    let scanned = app
        .get_json_with(&citizen_token, "/v1/merchants/STALL01")
        .await;
    check_qr(scanned["qr_payload"].as_str().unwrap(), "STALL01", None);
    let response = app
        .client
        .post(app.url("/v1/merchants/STALL01/pay"))
        .bearer_auth(&citizen_token)
        .header("idempotency-key", "static-1")
        .header("x-payment-pin", PIN)
        .json(&json!({"amount": 45_000, "note": "2 kg cam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    let order_ref = order["order_ref"].as_str().unwrap();
    assert!(order_ref.starts_with("static-"));
    assert_eq!(
        (order["status"].as_str(), order["amount"].as_i64()),
        (Some("paid"), Some(45_000))
    );

    let refunded = refund(&app, &stall, order_ref, 15_000, "r1").await;
    assert_eq!(refunded.status(), StatusCode::CREATED);
    let refunded: Value = refunded.json().await.unwrap();
    assert_eq!(
        (
            refunded["amount_refunded"].as_i64(),
            refunded["amount_refundable"].as_i64()
        ),
        (Some(15_000), Some(30_000))
    );
    assert_eq!(refunded["refunds"][0]["amount"], 15_000);
    assert_eq!(balance(&app, &citizen_token).await, 70_000);
    let history = app
        .get_json_with(&citizen_token, "/v1/wallet/transactions?kind=refund")
        .await;
    assert_eq!(
        (
            history["data"][0]["direction"].as_str(),
            history["data"][0]["amount"].as_i64()
        ),
        (Some("in"), Some(15_000))
    );
    // The fee (450) is not returned: the merchant keeps 45,000 − 450 − 15,000.
    civicpay::ledger::fold(&pool).await.unwrap();
    let merchant_balance: i64 = sqlx::query_scalar("SELECT l.balance FROM merchants m JOIN ledger_accounts l ON l.id = m.ledger_account_id WHERE m.code = 'STALL01'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(merchant_balance, 29_550);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn racing_refunds_never_exceed_the_amount_paid(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;
    let order = new_order(&app, &cafe, "race", 10_000).await;
    pay(&app, &citizen_token, order["code"].as_str().unwrap(), "p").await;
    let attempts = (0..5).map(|n| {
        let (app, cafe) = (&app, &cafe);
        async move {
            refund(app, cafe, "race", 3_000, &format!("r{n}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        2
    );
    let response = app
        .client
        .get(app.url("/v1/merchant/orders/race"))
        .bearer_auth(&cafe.key)
        .send()
        .await
        .unwrap();
    let order: Value = response.json().await.unwrap();
    assert_eq!(
        (
            order["amount_refunded"].as_i64(),
            order["amount_refundable"].as_i64()
        ),
        (Some(9_000), Some(1_000))
    );
    let over = expect_conflict(
        refund(&app, &cafe, "race", 1_001, "r-over").await,
        "refund_exceeds_refundable",
    )
    .await;
    assert_eq!(over.body["amount_refundable"], 1_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_refund_beyond_the_merchants_available_balance_is_refused(pool: PgPool) {
    use civicpay::ledger::{EntryKind, NewEntry, Posting, SystemAccount};
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;
    let order = new_order(&app, &cafe, "o", 10_000).await;
    pay(&app, &citizen_token, order["code"].as_str().unwrap(), "p").await;
    // The merchant's money is paid out (a settlement to its bank, say), all but 4,000.
    let mut tx = pool.begin().await.unwrap();
    let merchant_account: uuid::Uuid =
        sqlx::query_scalar("SELECT ledger_account_id FROM merchants WHERE code = 'CAFE01'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    let treasury = civicpay::ledger::system_account(&mut tx, SystemAccount::TreasuryClearing)
        .await
        .unwrap();
    let payout = NewEntry {
        kind: EntryKind::Adjustment,
        reference: "payout".into(),
        note: None,
        created_by: None,
        postings: vec![
            Posting {
                account_id: merchant_account,
                amount: -6_000,
                counterparty: None,
            },
            Posting {
                account_id: treasury,
                amount: 6_000,
                counterparty: None,
            },
        ],
    };
    civicpay::ledger::post(&mut tx, payout).await.unwrap();
    tx.commit().await.unwrap();
    expect_conflict(
        refund(&app, &cafe, "o", 5_000, "r1").await,
        "insufficient_merchant_balance",
    )
    .await;
    assert_eq!(
        refund(&app, &cafe, "o", 4_000, "r2").await.status(),
        StatusCode::CREATED
    );
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_merchant_cannot_see_another_merchants_order(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let other = onboard(&app, &admin, "OTHER1", "0", "general").await;
    new_order(&app, &cafe, "mine", 10_000).await;
    let response = app
        .client
        .get(app.url("/v1/merchant/orders/mine"))
        .bearer_auth(&other.key)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(
        refund(&app, &other, "mine", 1_000, "x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app
        .client
        .get(app.url("/v1/merchant/orders/mine"))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[sqlx::test]
async fn a_rotated_key_keeps_working_through_its_grace_period_only(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let rotated = merchant_post(
        &app,
        &cafe.key,
        "/v1/merchant/api-keys/rotate",
        json!({}),
        None,
    )
    .await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let new_key = rotated.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let profile = |key: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/v1/merchant/profile"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(profile(new_key.clone()).await, StatusCode::OK);
    assert_eq!(
        profile(cafe.key.clone()).await,
        StatusCode::OK,
        "the old key within its grace period"
    );
    sqlx::query("UPDATE merchant_api_keys SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL").execute(&pool).await.unwrap();
    assert_eq!(profile(cafe.key.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(profile(new_key).await, StatusCode::OK);
}

#[sqlx::test]
async fn a_disabled_merchant_loses_its_keys_and_its_orders(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;
    let order = new_order(&app, &cafe, "o", 10_000).await;
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            &format!("/v1/admin/merchants/{}/disable", cafe.id),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);
    let profile = app
        .client
        .get(app.url("/v1/merchant/profile"))
        .bearer_auth(&cafe.key)
        .send()
        .await
        .unwrap();
    expect_problem(profile, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(
        pay(&app, &citizen_token, order["code"].as_str().unwrap(), "p").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(balance(&app, &citizen_token).await, 100_000);
}

#[sqlx::test]
async fn onboarding_checks_every_field(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    onboard(&app, &admin, "CAFE01", "0.005", "general").await;
    let post = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send_json_with(reqwest::Method::POST, "/v1/admin/merchants", admin, &body)
                .await
        }
    };
    let base = json!({"name": "Quán", "code": "CAFE02", "category_code": "5814", "limit_category": "general", "fee_rate": "0.005"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    assert_eq!(
        expect_invalid_fields(post(with("fee_rate", json!("0.5"))).await).await,
        vec!["fee_rate"]
    );
    assert_eq!(
        expect_invalid_fields(post(with("events", json!(["bill.paid"]))).await).await,
        vec!["events"]
    );
    assert_eq!(
        expect_invalid_fields(post(with("callback_url", json!("ftp://x"))).await).await,
        vec!["callback_url"]
    );
    assert_eq!(
        expect_invalid_fields(post(with("code", json!("lower case"))).await).await,
        vec!["code"]
    );
    expect_conflict(post(with("code", json!("CAFE01"))).await, "already_exists").await;
    let citizen_token = citizen(&app, CITIZEN, 0).await;
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/admin/merchants",
            &citizen_token,
            &base,
        )
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[sqlx::test]
async fn the_days_settlement_equals_the_ledger_to_the_dong(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0.005", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 500_000).await;
    for (n, amount) in [35_100, 20_000, 10_001].into_iter().enumerate() {
        let order = new_order(&app, &cafe, &format!("s-{n}"), amount).await;
        assert_eq!(
            pay(
                &app,
                &citizen_token,
                order["code"].as_str().unwrap(),
                &format!("p{n}")
            )
            .await
            .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        refund(&app, &cafe, "s-0", 5_000, "r").await.status(),
        StatusCode::CREATED
    );

    let today = chrono::Utc::now()
        .with_timezone(&civicpay::vietnam_time::vietnam())
        .date_naive();
    let response = app
        .client
        .get(app.url(&format!("/v1/merchant/settlements/{today}")))
        .bearer_auth(&cafe.key)
        .send()
        .await
        .unwrap();
    let settlement: Value = response.json().await.unwrap();
    // Fees: 175.5 → 176, 100, 50.005 → 50.
    assert_eq!(settlement["payments"], 3);
    assert_eq!(settlement["gross"], 65_101);
    assert_eq!(settlement["fees"], 326);
    assert_eq!(settlement["refunds"], 5_000);
    let ledger_net: i64 = sqlx::query_scalar(
        "SELECT sum(p.amount)::bigint FROM postings p JOIN merchants m ON m.ledger_account_id = p.account_id WHERE m.code = 'CAFE01'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(settlement["net"], ledger_net);
    assert_eq!(ledger_net, 65_101 - 326 - 5_000);

    let csv = app
        .client
        .get(app.url(&format!("/v1/merchant/settlements/{today}")))
        .bearer_auth(&cafe.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,kind,order_ref,order_code,amount,fee,net");
    assert_eq!(lines.len(), 1 + 4 + 1);
    assert!(lines.last().unwrap().ends_with(&format!(",{ledger_net}")));

    let mut seen = Vec::new();
    let mut path = "/v1/merchant/transactions?limit=2".to_owned();
    loop {
        let page: Value = app
            .client
            .get(app.url(&path))
            .bearer_auth(&cafe.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["net"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/merchant/transactions?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().sum::<i64>(), ledger_net);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_merchant_edits_its_callback_and_subscriptions(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let update = json!({"callback_url": "https://cafe.example/hooks", "events": ["order.expired"]});
    let response = app
        .send_json_with(
            reqwest::Method::PATCH,
            "/v1/merchant/profile",
            &cafe.key,
            &update,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let profile = app.get_json_with(&cafe.key, "/v1/merchant/profile").await;
    assert_eq!(
        (profile["callback_url"].as_str(), profile["events"].clone()),
        (Some("https://cafe.example/hooks"), json!(["order.expired"]))
    );
    assert!(
        profile.get("api_key").is_none() && profile.get("webhook_secret").is_none(),
        "secrets are shown once"
    );
    let bad = json!({"events": ["wallet.transfer_in"]});
    let response = app
        .send_json_with(
            reqwest::Method::PATCH,
            "/v1/merchant/profile",
            &cafe.key,
            &bad,
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, vec!["events"]);
}

/// A payment answers the order from what its transaction wrote; the merchant API reads it
/// back from the database. Both, and the `payment.succeeded` event, must say the same.
#[sqlx::test]
async fn a_payments_answer_is_the_order_as_stored_and_as_announced(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0.005", "general").await;
    let citizen_token = citizen(&app, CITIZEN, 100_000).await;

    let order = new_order(&app, &cafe, "table-9", 35_000).await;
    let scanned = pay(&app, &citizen_token, order["code"].as_str().unwrap(), "k-9").await;
    assert_eq!(scanned.status(), StatusCode::OK);
    let scanned: Value = scanned.json().await.unwrap();
    let fixed = app
        .client
        .post(app.url("/v1/merchants/CAFE01/pay"))
        .bearer_auth(&citizen_token)
        .header("idempotency-key", "k-static")
        .header("x-payment-pin", PIN)
        .json(&json!({"amount": 12_000, "note": "bánh bèo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fixed.status(), StatusCode::CREATED);
    let fixed: Value = fixed.json().await.unwrap();

    for answered in [&scanned, &fixed] {
        let order_ref = answered["order_ref"].as_str().unwrap();
        let stored = app
            .get_json_with(&cafe.key, &format!("/v1/merchant/orders/{order_ref}"))
            .await;
        assert_eq!(answered, &stored, "the answer is the order as stored");
        let announced: Value = sqlx::query_scalar(
            "SELECT data FROM outbox_events WHERE type = 'payment.succeeded' AND data->>'id' = $1",
        )
        .bind(answered["id"].as_str().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(answered, &announced, "the event carries the same order");
    }
    assert_eq!(fixed["description"], "bánh bèo");
    assert_eq!(fixed["amount_refundable"], 12_000);
    assert_eq!(
        balance(&app, &citizen_token).await,
        100_000 - 35_000 - 12_000
    );
    let fees: Vec<i64> = sqlx::query_scalar("SELECT fee FROM orders ORDER BY amount")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(fees, [60, 175], "half a percent, rounded once");
    assert_ledger_verifies(&pool).await;
}
