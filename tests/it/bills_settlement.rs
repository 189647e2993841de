//! A biller's transactions and day settlement, read from its ledger account: they equal the
//! postings to the đồng, and the payer's wallet history shows the same payments. Money tests
//! end by verifying the ledger.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{PIN, admin, citizen};
use crate::support::app::TestApp;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::expect_problem;

const CITIZEN: &str = "0912000301";
const CUSTOMER: &str = "PE0499000301";

/// A biller the admin onboards; its API key, and its name as wallets show it.
struct Biller {
    key: String,
    code: String,
    name: String,
}

async fn onboard_biller(app: &TestApp, admin: &str, code: &str) -> Biller {
    let name = format!("Điện lực {code}");
    let body = json!({
        "name": name, "code": code, "kind": "electricity", "limit_category": "utility",
        "callback_url": null, "events": []
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/admin/billers", admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("bk_"), "{key}");
    Biller {
        key,
        code: code.to_owned(),
        name,
    }
}

/// `POST /v1/biller/bills`, which must create the bill; returns it.
async fn push_bill(app: &TestApp, biller: &Biller, reference: &str, amount: i64) -> Value {
    let body = json!({
        "reference": reference, "customer_code": CUSTOMER, "payer_name": "Nguyễn Văn An",
        "items": [{"name": "Tiền điện", "amount": amount}], "amount": amount,
        "due_date": (civicpay::bills::today() + chrono::Days::new(10)).to_string()
    });
    let response = app
        .client
        .post(app.url("/v1/biller/bills"))
        .bearer_auth(&biller.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The citizen links the customer code, so the biller's bills are theirs.
async fn link_customer(app: &TestApp, token: &str, biller: &Biller) {
    let body = json!({"biller_code": biller.code, "customer_code": CUSTOMER});
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/me/billing-accounts",
            token,
            &body,
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
}

/// `POST /v1/bills/{id}/pay` from the wallet with the citizen's PIN.
async fn pay_from_wallet(app: &TestApp, token: &str, bill: &Value, key: &str) -> reqwest::Response {
    let path = format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap());
    app.client
        .post(app.url(&path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", PIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

/// Every page of `GET /v1/biller/transactions`, `limit` at a time, newest first.
async fn all_transactions(app: &TestApp, biller: &Biller, limit: u32) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut path = format!("/v1/biller/transactions?limit={limit}");
    loop {
        let page = app.get_json_with(&biller.key, &path).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit as usize);
        seen.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/biller/transactions?limit={limit}&cursor={cursor}"),
            None => return seen,
        }
    }
}

async fn settlement_csv(app: &TestApp, biller: &Biller, date: chrono::NaiveDate) -> String {
    let response = app
        .client
        .get(app.url(&format!("/v1/biller/settlements/{date}")))
        .bearer_auth(&biller.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    response.text().await.unwrap()
}

/// What the ledger holds for the biller, summed independently of the code under test.
async fn ledger_net(pool: &PgPool, code: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(p.amount), 0)::bigint FROM postings p
         JOIN merchants m ON m.ledger_account_id = p.account_id WHERE m.code = $1",
    )
    .bind(code)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_billers_transactions_and_settlement_equal_its_ledger_postings(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let biller = onboard_biller(&app, &admin, "DIENTEST").await;
    let other = onboard_biller(&app, &admin, "DIENKHAC").await;
    let token = citizen(&app, CITIZEN, 2_000_000).await;
    link_customer(&app, &token, &biller).await;
    let bills = [
        push_bill(&app, &biller, "T-2026-1", 125_000).await,
        push_bill(&app, &biller, "T-2026-2", 348_250).await,
        push_bill(&app, &biller, "T-2026-3", 99_999).await,
    ];
    for (n, bill) in bills[..2].iter().enumerate() {
        let response = pay_from_wallet(&app, &token, bill, &format!("bill-{n}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let paid: Value = response.json().await.unwrap();
        assert_eq!(
            (&paid["status"], &paid["paid_via"]),
            (&json!("paid"), &json!("wallet"))
        );
    }

    // Newest first, one a page: the second payment, then the first; the unpaid bill is absent.
    let transactions = all_transactions(&app, &biller, 1).await;
    let seen: Vec<(&str, &str, &str, i64, i64)> = transactions
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap(),
                t["bill_reference"].as_str().unwrap(),
                t["bill_code"].as_str().unwrap(),
                t["amount"].as_i64().unwrap(),
                t["net"].as_i64().unwrap(),
            )
        })
        .collect();
    let code = |n: usize| bills[n]["code"].as_str().unwrap();
    assert_eq!(
        seen,
        vec![
            ("payment", "T-2026-2", code(1), 348_250, 348_250),
            ("payment", "T-2026-1", code(0), 125_000, 125_000),
        ]
    );

    let today = civicpay::bills::today();
    let settlement = app
        .get_json_with(&biller.key, &format!("/v1/biller/settlements/{today}"))
        .await;
    let net = ledger_net(&pool, "DIENTEST").await;
    assert_eq!(net, 473_250);
    assert_eq!(
        settlement,
        json!({"date": today.to_string(), "payments": 2, "gross": 473_250,
               "refunds_count": 0, "refunds": 0, "net": net})
    );

    let csv = settlement_csv(&app, &biller, today).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,kind,bill_reference,bill_code,amount,net");
    assert_eq!(lines.len(), 1 + 2 + 1, "{csv}");
    assert!(
        lines[1].ends_with(&format!(",payment,T-2026-1,{},125000,125000", code(0))),
        "{csv}"
    );
    assert_eq!(
        lines[3],
        format!("total,payments=2 refunds=0,,,473250,{net}")
    );

    // The payer's wallet shows the same payments: to the biller, under the bill's code.
    let history = app.get_json_with(&token, "/v1/wallet/transactions").await;
    let mut bill_payments: Vec<(&str, &str, &str, i64)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "bill_payment")
        .map(|t| {
            (
                t["counterparty"].as_str().unwrap(),
                t["reference"].as_str().unwrap(),
                t["direction"].as_str().unwrap(),
                t["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    bill_payments.sort_by_key(|(.., amount)| *amount);
    let name = biller.name.as_str();
    assert_eq!(
        bill_payments,
        vec![
            (name, code(0), "out", 125_000),
            (name, code(1), "out", 348_250)
        ]
    );

    // Another biller sees none of it.
    assert!(all_transactions(&app, &other, 20).await.is_empty());
    let nothing = app
        .get_json_with(&other.key, &format!("/v1/biller/settlements/{today}"))
        .await;
    assert_eq!(
        (&nothing["payments"], &nothing["net"]),
        (&json!(0), &json!(0))
    );
    assert_ledger_verifies(&pool).await;
}

/// Our reference at the sandbox bank, the last segment of its payment URL.
fn sandbox_reference(payment: &Value) -> String {
    let url = payment["payment_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// A bank payment that arrives after the wallet paid the bill is taken and sent back at once:
/// both movements are the biller's, and the settlement still equals its postings.
#[sqlx::test]
async fn a_double_payment_and_its_refund_are_in_the_settlement(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let biller = onboard_biller(&app, &admin, "DIENTEST").await;
    let token = citizen(&app, CITIZEN, 1_000_000).await;
    link_customer(&app, &token, &biller).await;
    let bill = push_bill(&app, &biller, "T-2026-9", 210_000).await;
    let path = format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap());
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .header("idempotency-key", "by-bank")
        .json(&json!({"source": "provider", "provider": "sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let by_bank: Value = response.json().await.unwrap();
    let response = pay_from_wallet(&app, &token, &bill, "by-wallet").await;
    assert_eq!(response.status(), StatusCode::OK);
    let approved = app
        .client
        .post(app.url(&format!(
            "/sandbox/pay/{}/approve",
            sandbox_reference(&by_bank)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);

    let mut kinds: Vec<(String, i64)> = all_transactions(&app, &biller, 2)
        .await
        .iter()
        .map(|t| {
            assert_eq!(t["bill_code"], bill["code"]);
            (
                t["kind"].as_str().unwrap().to_owned(),
                t["net"].as_i64().unwrap(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("payment".to_owned(), 210_000),
            ("payment".to_owned(), 210_000),
            ("refund".to_owned(), -210_000)
        ]
    );
    let today = civicpay::bills::today();
    let settlement = app
        .get_json_with(&biller.key, &format!("/v1/biller/settlements/{today}"))
        .await;
    let net = ledger_net(&pool, "DIENTEST").await;
    assert_eq!(net, 210_000);
    assert_eq!(
        (
            &settlement["payments"],
            &settlement["gross"],
            &settlement["refunds_count"],
            &settlement["refunds"],
            &settlement["net"]
        ),
        (
            &json!(2),
            &json!(420_000),
            &json!(1),
            &json!(210_000),
            &json!(net)
        )
    );
    let csv = settlement_csv(&app, &biller, today).await;
    assert_eq!(
        csv.lines().last().unwrap(),
        format!("total,payments=2 refunds=1,,,210000,{net}")
    );
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_reversed_period_and_a_merchant_key_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let biller = onboard_biller(&app, &admin, "DIENTEST").await;
    let response = app
        .get_with_token(
            "/v1/biller/transactions?from=2026-11-02&to=2026-11-01",
            &biller.key,
        )
        .await;
    let problem = expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem.field_errors(), vec!["to"]);
    let response = app
        .get_with_token(
            "/v1/biller/settlements/2026-11-01",
            "mk_demo_cafehue_coffee_shop_2026",
        )
        .await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
