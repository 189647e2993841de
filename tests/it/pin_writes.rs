//! The payment PIN's bookkeeping: a right PIN with no failures to forgive writes nothing (a
//! payment commits once, itself), one after a wrong attempt forgives it; racing first PINs
//! cannot overwrite each other.

use civicpay::domain::Phone;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{PASSWORD, PIN, citizen, register};
use crate::support::app::{TEST_PIN_PEPPER, TestApp};
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::{expect_invalid_fields, expect_problem};
use crate::support::requests::{balance, transfer};

const PAYER: &str = "0912000001";
const PAYEE: &str = "0912000002";

/// The version of the payer's wallet row (its `xmin`: it changes with every write) and its
/// PIN failure count.
async fn wallet_row(pool: &PgPool, phone: &str) -> (String, i32) {
    sqlx::query_as(
        "SELECT w.xmin::text, w.pin_failures FROM wallets w JOIN accounts a ON a.id = w.account_id
         WHERE a.phone = $1",
    )
    .bind(Phone::parse(phone).unwrap().as_str())
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_right_pin_with_nothing_to_forgive_leaves_the_wallet_row_unwritten(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    let before = wallet_row(&pool, PAYER).await;
    assert_eq!(before.1, 0);
    for key in ["first", "second"] {
        let paid = transfer(&app, &payer, key, PIN, PAYEE, 1_000).await;
        assert_eq!(paid.status(), StatusCode::CREATED);
    }
    assert_eq!(
        wallet_row(&pool, PAYER).await,
        before,
        "a right PIN wrote the wallet row"
    );

    let wrong = expect_problem(
        transfer(&app, &payer, "wrong", "000000", PAYEE, 1_000).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "payment_pin_invalid",
    )
    .await;
    assert_eq!(wrong.body["attempts_left"], 4);
    let after_wrong = wallet_row(&pool, PAYER).await;
    assert_eq!(after_wrong.1, 1);
    // The next right PIN forgives the failure: that one is written.
    let paid = transfer(&app, &payer, "third", PIN, PAYEE, 1_000).await;
    assert_eq!(paid.status(), StatusCode::CREATED);
    let forgiven = wallet_row(&pool, PAYER).await;
    assert_eq!(forgiven.1, 0);
    assert_ne!(forgiven.0, after_wrong.0);
    // And the one after that writes nothing again.
    let paid = transfer(&app, &payer, "fourth", PIN, PAYEE, 1_000).await;
    assert_eq!(paid.status(), StatusCode::CREATED);
    assert_eq!(wallet_row(&pool, PAYER).await, forgiven);

    assert_eq!(balance(&app, &payer).await, 6_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn of_racing_first_pins_one_is_set_and_the_others_are_asked_for_the_old_one(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let tokens = register(&app, PAYER, PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    // The wallet row exists before the race, so the race is over the PIN alone.
    let wallet: Value = app.get_json_with(&token, "/v1/wallet").await;
    assert_eq!(wallet["pin_set"], false);

    let pins: Vec<String> = (0..8).map(|n| format!("{}", 135_790 + n)).collect();
    let answers = join_all(pins.iter().map(|pin| {
        app.client
            .put(app.url("/v1/wallet/pin"))
            .bearer_auth(&token)
            .json(&json!({ "pin": pin }))
            .send()
    }))
    .await;
    let mut winner = None;
    for (pin, answer) in pins.iter().zip(answers) {
        let answer = answer.unwrap();
        if answer.status() == StatusCode::NO_CONTENT {
            assert!(winner.replace(pin.clone()).is_none(), "two first PINs set");
        } else {
            assert_eq!(expect_invalid_fields(answer).await, vec!["old_pin"]);
        }
    }
    let winner = winner.expect("one first PIN was set");

    let (account_id, stored): (Uuid, Vec<u8>) = sqlx::query_as(
        "SELECT a.id, w.pin_hash FROM wallets w JOIN accounts a ON a.id = w.account_id
         WHERE a.phone = $1",
    )
    .bind(Phone::parse(PAYER).unwrap().as_str())
    .fetch_one(&pool)
    .await
    .unwrap();
    let expected = civicpay::wallet::pin::hash(TEST_PIN_PEPPER.as_bytes(), account_id, &winner);
    assert_eq!(stored, expected.to_vec(), "the winner's PIN was replaced");
}
