//! Wallets and money: transfers under concurrency, idempotency, PIN, limits, history, statement.
//! Every test that moves money ends by verifying the ledger.

use axum::Router;
use civicpay::domain::Phone;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{PASSWORD, PIN, access_token, citizen, register};
use crate::support::app::{TestApp, test_config};
use crate::support::database::database_named;
use crate::support::demo::load_demo;
use crate::support::ledger::{assert_ledger_verifies, fund};
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};
use crate::support::requests::{balance, transfer};

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.send_json_with(reqwest::Method::POST, path, token, &body)
        .await
}

const PAYER: &str = "0912000001";
const PAYEE: &str = "0912000002";

#[sqlx::test]
async fn of_200_concurrent_transfers_exactly_the_funded_50_succeed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 50 * 1_000).await;
    let payee = citizen(&app, PAYEE, 0).await;
    let attempts = (0..200).map(|n| {
        let (app, payer) = (&app, &payer);
        async move { transfer(app, payer, &format!("key-{n}"), PIN, PAYEE, 1_000).await }
    });
    let responses = join_all(attempts).await;
    let mut succeeded = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => succeeded += 1,
            _ => {
                expect_conflict(response, "insufficient_funds").await;
            }
        }
    }
    assert_eq!(succeeded, 50);
    assert_eq!(balance(&app, &payer).await, 0);
    assert_eq!(balance(&app, &payee).await, 50_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn fifty_concurrent_repeats_of_one_key_make_one_transfer(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    let payee = citizen(&app, PAYEE, 0).await;
    let repeats = (0..50).map(|_| transfer(&app, &payer, "one-key", PIN, PAYEE, 7_000));
    let responses = join_all(repeats).await;
    let mut bodies = Vec::new();
    let mut replayed = 0;
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        if response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
        {
            replayed += 1;
        }
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(replayed, 49);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "identical answers");
    assert_eq!(balance(&app, &payee).await, 7_000);
    assert_eq!(balance(&app, &payer).await, 93_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_key_reused_with_another_body_is_422(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    citizen(&app, PAYEE, 0).await;
    assert_eq!(
        transfer(&app, &payer, "k", PIN, PAYEE, 1_000)
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = transfer(&app, &payer, "k", PIN, PAYEE, 2_000).await;
    expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(balance(&app, &payer).await, 99_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_money_route_needs_a_key_and_a_pin(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    citizen(&app, PAYEE, 0).await;
    let without_key = app
        .client
        .post(app.url("/v1/wallet/transfers"))
        .bearer_auth(&payer)
        .header("x-payment-pin", PIN)
        .json(&json!({"to_phone": PAYEE, "amount": 1000}))
        .send()
        .await
        .unwrap();
    expect_problem(
        without_key,
        StatusCode::BAD_REQUEST,
        "idempotency_key_required",
    )
    .await;
    let without_pin = app
        .client
        .post(app.url("/v1/wallet/transfers"))
        .bearer_auth(&payer)
        .header("idempotency-key", "k")
        .json(&json!({"to_phone": PAYEE, "amount": 1000}))
        .send()
        .await
        .unwrap();
    expect_problem(without_pin, StatusCode::BAD_REQUEST, "payment_pin_required").await;
    assert_eq!(balance(&app, &payer).await, 100_000);
}

#[sqlx::test]
async fn a_failure_inside_the_transaction_rolls_back_the_key_so_the_retry_runs_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    let payee = citizen(&app, PAYEE, 0).await;
    // The first transfer row written fails; sequences are not transactional, so only once.
    sqlx::raw_sql(
        "CREATE SEQUENCE fault_once;
         CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF nextval('fault_once') = 1 THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER fail_once BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION fail_once();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let failed = transfer(&app, &payer, "retry-me", PIN, PAYEE, 5_000).await;
    let problem = expect_problem(failed, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert!(!problem.body.to_string().contains("injected"));
    assert_eq!(balance(&app, &payer).await, 100_000, "nothing moved");

    let retried = transfer(&app, &payer, "retry-me", PIN, PAYEE, 5_000).await;
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert!(
        retried.headers().get("idempotent-replayed").is_none(),
        "it ran, not replayed"
    );
    assert_eq!(balance(&app, &payee).await, 5_000);
    assert_eq!(
        transfer(&app, &payer, "retry-me", PIN, PAYEE, 5_000)
            .await
            .headers()["idempotent-replayed"],
        "true"
    );
    assert_eq!(balance(&app, &payee).await, 5_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_business_refusal_is_stored_and_replayed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 1_000).await;
    citizen(&app, PAYEE, 0).await;
    let first = expect_conflict(
        transfer(&app, &payer, "too-much", PIN, PAYEE, 5_000).await,
        "insufficient_funds",
    )
    .await;
    fund(&pool, PAYER, 10_000).await;
    // Even with the money there now, the key answers what it answered.
    let repeat = transfer(&app, &payer, "too-much", PIN, PAYEE, 5_000).await;
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    let repeat = expect_conflict(repeat, "insufficient_funds").await;
    assert_eq!(repeat.body, first.body);
    assert_eq!(balance(&app, &payer).await, 11_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_wrong_pin_is_not_stored_with_the_key(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    let wrong = expect_problem(
        transfer(&app, &payer, "pin-key", "000000", PAYEE, 1_000).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payment_pin_invalid",
    )
    .await;
    assert_eq!(wrong.body["attempts_left"], 4);
    let right = transfer(&app, &payer, "pin-key", PIN, PAYEE, 1_000).await;
    assert_eq!(right.status(), StatusCode::CREATED);
    assert!(right.headers().get("idempotent-replayed").is_none());
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn five_wrong_pins_lock_payments_and_pin_changes_count(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    for n in 0..3 {
        let response = transfer(&app, &payer, &format!("w{n}"), "111111", PAYEE, 1_000).await;
        expect_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment_pin_invalid",
        )
        .await;
    }
    let change = |old: &'static str| {
        app.client
            .put(app.url("/v1/wallet/pin"))
            .bearer_auth(&payer)
            .json(&json!({"pin": "222222", "old_pin": old}))
            .send()
    };
    expect_problem(
        change("333333").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "payment_pin_invalid",
    )
    .await;
    let locked = expect_problem(
        change("444444").await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "payment_pin_locked",
    )
    .await;
    let retry_after = locked.retry_after_secs();
    assert!((1..=900).contains(&retry_after));
    // Locked: even the right PIN waits.
    expect_problem(
        transfer(&app, &payer, "right", PIN, PAYEE, 1_000).await,
        StatusCode::TOO_MANY_REQUESTS,
        "payment_pin_locked",
    )
    .await;
    assert_eq!(balance(&app, &payer).await, 10_000);
}

#[sqlx::test]
async fn changing_the_pin_needs_the_old_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    let put = |body: Value| {
        app.client
            .put(app.url("/v1/wallet/pin"))
            .bearer_auth(&payer)
            .json(&body)
            .send()
    };
    assert_eq!(
        expect_invalid_fields(put(json!({"pin": "12345"})).await.unwrap()).await,
        vec!["pin"]
    );
    assert_eq!(
        expect_invalid_fields(put(json!({"pin": "135246"})).await.unwrap()).await,
        vec!["old_pin"]
    );
    assert_eq!(
        put(json!({"pin": "135246", "old_pin": PIN}))
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        transfer(&app, &payer, "new-pin", "135246", PAYEE, 1_000)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_ledger_verifies(&pool).await;
}

async fn set_general_usage(pool: &PgPool, phone: &str, used: i64) {
    let month = civicpay::vietnam_time::month_of(chrono::Utc::now());
    sqlx::query(
        "INSERT INTO wallet_limit_usage (wallet_account_id, limit_group, month, used)
         SELECT id, 'general', $2, $3 FROM accounts WHERE phone = $1",
    )
    .bind(Phone::parse(phone).unwrap().as_str())
    .bind(month)
    .bind(used)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn the_general_limit_holds_exactly_at_its_boundary(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 50_000).await;
    citizen(&app, PAYEE, 0).await;
    set_general_usage(&pool, PAYER, 100_000_000 - 1_000).await;
    assert_eq!(
        transfer(&app, &payer, "to-the-limit", PIN, PAYEE, 1_000)
            .await
            .status(),
        StatusCode::CREATED
    );
    let over = expect_conflict(
        transfer(&app, &payer, "one-more", PIN, PAYEE, 1).await,
        "limit_exceeded",
    )
    .await;
    assert_eq!(
        (
            over.body["category"].as_str(),
            over.body["remaining"].as_i64()
        ),
        (Some("general"), Some(0))
    );
    let wallet = app.get_json_with(&payer, "/v1/wallet").await;
    let general = wallet["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["category"] == "general")
        .unwrap()
        .clone();
    assert_eq!(
        general,
        json!({"category": "general", "limit": 100_000_000, "used": 100_000_000, "remaining": 0})
    );
    assert_eq!(balance(&app, &payer).await, 49_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn two_concurrent_transfers_that_together_cross_the_limit_cannot_both_pass(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 50_000).await;
    citizen(&app, PAYEE, 0).await;
    set_general_usage(&pool, PAYER, 100_000_000 - 1_500).await;
    let (a, b) = tokio::join!(
        transfer(&app, &payer, "a", PIN, PAYEE, 1_000),
        transfer(&app, &payer, "b", PIN, PAYEE, 1_000)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(balance(&app, &payer).await, 49_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn transfers_are_refused_to_oneself_strangers_and_from_unverified_wallets(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    let unverified = register(&app, PAYEE, PASSWORD).await;
    let unverified = unverified["access_token"].as_str().unwrap();
    for to in [PAYER, PAYEE, "0999999999", "not-a-phone"] {
        let response = transfer(&app, &payer, &format!("to-{to}"), PIN, to, 1_000).await;
        assert_eq!(
            expect_invalid_fields(response).await,
            vec!["to_phone"],
            "{to}"
        );
    }
    let response = transfer(&app, &payer, "zero", PIN, PAYEE, 0).await;
    assert!(
        expect_invalid_fields(response)
            .await
            .contains(&"amount".to_owned())
    );
    // An unverified wallet has no PIN to pay with yet, then cannot pay at all.
    app.client
        .put(app.url("/v1/wallet/pin"))
        .bearer_auth(unverified)
        .json(&json!({"pin": PIN}))
        .send()
        .await
        .unwrap();
    let response = transfer(&app, unverified, "u", PIN, PAYER, 1_000).await;
    expect_conflict(response, "wallet_not_verified").await;
    assert_eq!(balance(&app, &payer).await, 10_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn one_national_id_verifies_one_wallet(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let first = register(&app, PAYER, PASSWORD).await;
    let second = register(&app, PAYEE, PASSWORD).await;
    async fn verify(app: &TestApp, token: &Value, id: &str) -> reqwest::Response {
        let token = token["access_token"].as_str().unwrap();
        post(
            app,
            token,
            "/v1/wallet/verification",
            json!({"national_id": id}),
        )
        .await
    }
    assert_eq!(
        verify(&app, &first, "046095000001").await.status(),
        StatusCode::OK
    );
    let taken = expect_conflict(
        verify(&app, &second, "046095000001").await,
        "national_id_taken",
    )
    .await;
    assert_eq!(taken.field_errors(), vec!["national_id"]);
    assert_eq!(
        expect_invalid_fields(verify(&app, &second, "12345").await).await,
        vec!["national_id"]
    );
    let wallet = app
        .get_json_with(first["access_token"].as_str().unwrap(), "/v1/wallet")
        .await;
    assert_eq!(
        (
            wallet["verified"].as_bool(),
            wallet["national_id_last4"].as_str()
        ),
        (Some(true), Some("0001"))
    );
    let stored: Vec<u8> = sqlx::query_scalar(
        "SELECT national_id_hash FROM wallets WHERE national_id_hash IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains("046095000001"),
        "only a keyed hash is kept"
    );
}

#[sqlx::test]
async fn staff_have_no_wallet(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    load_demo(&pool).await;
    let officer = access_token(&app, "0900000002", "officer-demo-2026").await;
    let response = app.get_with_token("/v1/wallet", &officer).await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[sqlx::test]
async fn history_pages_stay_correct_while_movements_arrive(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    citizen(&app, PAYEE, 0).await;
    for n in 1..=5 {
        assert_eq!(
            transfer(&app, &payer, &format!("h{n}"), PIN, PAYEE, n * 100)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let first = app
        .get_json_with(&payer, "/v1/wallet/transactions?limit=2")
        .await;
    for n in 6..=7 {
        transfer(&app, &payer, &format!("h{n}"), PIN, PAYEE, n * 100).await;
    }
    let mut amounts: Vec<i64> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["amount"].as_i64().unwrap())
        .collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let page = app
            .get_json_with(
                &payer,
                &format!("/v1/wallet/transactions?limit=2&cursor={next}"),
            )
            .await;
        amounts.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["amount"].as_i64().unwrap()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(
        amounts,
        vec![500, 400, 300, 200, 100, 100_000],
        "newest first, none lost or repeated"
    );

    let fresh = app
        .get_json_with(&payer, "/v1/wallet/transactions?limit=1")
        .await;
    let newest = &fresh["data"][0];
    assert_eq!(
        (
            newest["kind"].as_str(),
            newest["direction"].as_str(),
            newest["amount"].as_i64()
        ),
        (Some("transfer_out"), Some("out"), Some(700))
    );
    let funding = app
        .get_json_with(&payer, "/v1/wallet/transactions?kind=funding")
        .await;
    assert_eq!(funding["data"].as_array().unwrap().len(), 1);
    let received = app
        .get_json_with(&payer, "/v1/wallet/transactions?kind=transfer_in")
        .await;
    assert_eq!(received["data"], json!([]));
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn the_csv_statement_adds_up(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    let payee = citizen(&app, PAYEE, 0).await;
    transfer(&app, &payer, "s1", PIN, PAYEE, 12_000).await;
    transfer(&app, &payee, "s2", PIN, PAYER, 2_000).await;
    let today = chrono::Utc::now()
        .with_timezone(&civicpay::vietnam_time::vietnam())
        .date_naive();
    let response = app
        .get_with_token(
            &format!("/v1/wallet/statement.csv?from={today}&to={today}"),
            &payer,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        lines[0],
        vec![
            "date",
            "kind",
            "direction",
            "amount",
            "balance_after",
            "counterparty",
            "reference",
            "note"
        ]
    );
    assert!(lines.iter().all(|l| l.len() == 8), "{text}");
    let opening: i64 = lines[1][4].parse().unwrap();
    let closing: i64 = lines.last().unwrap()[4].parse().unwrap();
    let movements = &lines[2..lines.len() - 1];
    let net: i64 = movements
        .iter()
        .map(|l| {
            if l[2] == "in" {
                l[3].parse::<i64>().unwrap()
            } else {
                -l[3].parse::<i64>().unwrap()
            }
        })
        .sum();
    assert_eq!((opening, movements.len()), (0, 3));
    assert_eq!(closing, opening + net);
    assert_eq!(closing, balance(&app, &payer).await);
    let bad = app
        .get_with_token(&format!("/v1/wallet/statement.csv?from={today}"), &payer)
        .await;
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[sqlx::test]
async fn admins_verify_the_ledger_and_a_corrupted_balance_is_named(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), test_config(), Router::new()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    load_demo(&pool).await;
    let admin = access_token(&app, "0900000001", "admin-demo-2026").await;
    let admin = admin.as_str();
    let report = app.get_json_with(admin, "/v1/admin/ledger/verify").await;
    assert_eq!(report["ok"], true);
    expect_problem(
        app.get_with_token("/v1/admin/ledger/verify", &payer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let wallet: uuid::Uuid = sqlx::query_scalar("SELECT ledger_account_id FROM wallets w JOIN accounts a ON a.id = w.account_id WHERE a.phone = '+84912000001'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = $1")
        .bind(wallet)
        .execute(&pool)
        .await
        .unwrap();
    let report = app.get_json_with(admin, "/v1/admin/ledger/verify").await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["failures"][0]["id"], wallet.to_string());

    let database = pool.connect_options().get_database().unwrap().to_owned();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_civicpay"))
        .args(["ledger", "verify"])
        .env(
            "CIVICPAY_DATABASE_URL",
            database_named(&database).database_url,
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&wallet.to_string()));
}

#[sqlx::test]
async fn a_transfer_announces_itself_to_both_citizens_and_no_merchant(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    let transfer: Value = transfer(&app, &payer, "evt", PIN, PAYEE, 2_500)
        .await
        .json()
        .await
        .unwrap();
    let events: Vec<(String, Option<uuid::Uuid>, Option<uuid::Uuid>, Value)> = sqlx::query_as(
        "SELECT type, account_id, merchant_id, data FROM outbox_events WHERE type LIKE 'wallet.transfer%' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE phone IN ('+84912000001', '+84912000002') ORDER BY phone",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].0.as_str(), events[0].1),
        ("wallet.transfer_out", Some(ids[0]))
    );
    assert_eq!(
        (events[1].0.as_str(), events[1].1),
        ("wallet.transfer_in", Some(ids[1]))
    );
    assert!(
        events.iter().all(|e| e.2.is_none()),
        "wallet events are never addressed to a merchant"
    );
    assert_eq!(events[0].3["transfer_id"], transfer["id"]);
    assert_eq!(events[0].3["amount"], 2_500);
}

/// The app, the payer's token and account id, with 10,000 đ; the payee with nothing.
async fn payer_and_payee(pool: &PgPool) -> (TestApp, String, uuid::Uuid) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    let payer_id = sqlx::query_scalar("SELECT id FROM accounts WHERE phone = '+84912000001'")
        .fetch_one(pool)
        .await
        .unwrap();
    (app, payer, payer_id)
}

/// The PIN check of a payment holds the lock on the wallet's row to the payment's commit, so a
/// repeat (or any other payment of the wallet) waits on it: within the same bound as on the
/// key, then 409 and nothing stored.
#[sqlx::test]
async fn a_payment_waiting_past_the_bound_for_the_wallets_pin_lock_is_told_to_retry(pool: PgPool) {
    let (app, payer, payer_id) = payer_and_payee(&pool).await;
    // A payment of this wallet in flight: it holds the wallet's row, locked by its PIN check,
    // in its open transaction.
    let mut first = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM wallets WHERE account_id = $1 FOR NO KEY UPDATE")
        .bind(payer_id)
        .execute(&mut *first)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = transfer(&app, &payer, "pin-busy", PIN, PAYEE, 1_000).await;
    let problem = expect_conflict(response, "idempotency_in_progress").await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(5));
    assert!(problem.headers.contains_key("retry-after"));
    first.rollback().await.unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE key = 'pin-busy'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing was stored under the key");
    assert_eq!(
        transfer(&app, &payer, "pin-busy", PIN, PAYEE, 1_000)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[sqlx::test]
async fn a_repeat_waiting_past_the_bound_is_told_the_first_is_in_progress(pool: PgPool) {
    let (app, payer, payer_id) = payer_and_payee(&pool).await;
    // A first request holding the key in its open transaction.
    let mut first = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (caller_id, key, fingerprint) VALUES ($1, 'busy', '\\x00')",
    )
    .bind(payer_id)
    .execute(&mut *first)
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let response = transfer(&app, &payer, "busy", PIN, PAYEE, 1_000).await;
    let problem = expect_conflict(response, "idempotency_in_progress").await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "it waited for the bound first"
    );
    assert!(problem.headers.contains_key("retry-after"));
    first.rollback().await.unwrap();
    // The first rolled back: the repeat now runs itself.
    assert_eq!(
        transfer(&app, &payer, "busy", PIN, PAYEE, 1_000)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn idempotency_keys_are_purged_after_a_day(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    transfer(&app, &payer, "old", PIN, PAYEE, 1_000).await;
    transfer(&app, &payer, "new", PIN, PAYEE, 1_000).await;
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(&pool)
    .await
    .unwrap();
    civicpay::idempotency::purge_expired(&pool).await.unwrap();
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(keys, vec!["new"]);
}

#[sqlx::test]
async fn the_demo_citizens_can_pay_each_other_with_their_readme_pins(pool: PgPool) {
    load_demo(&pool).await;
    load_demo(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let an = access_token(&app, "0912345678", "citizen-demo-2026").await;
    let an = an.as_str();
    assert_eq!(
        balance(&app, an).await,
        5_000_000,
        "funded once, however often the demo loads"
    );
    assert_eq!(
        transfer(&app, an, "demo", "246810", "0987654321", 50_000)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_ledger_verifies(&pool).await;
}
