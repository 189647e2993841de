//! A client that hangs up in the middle of a payment. Once its idempotency key is claimed, a
//! payment runs to its end whatever the connection does: it is answered from the key to the
//! retry the client will make, so cancelling it halfway would only throw away work; and the
//! connection it used goes back to the pool clean (no transaction, no savepoint left open).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::actors::{PIN, citizen};
use crate::support::app::TestApp;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::requests::{balance, transfer};

const PAYER: &str = "0912000001";
const PAYEE: &str = "0912000002";

#[sqlx::test]
async fn a_payment_whose_client_hangs_up_midway_completes_once_and_is_replayed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 50_000).await;
    let payee = citizen(&app, PAYEE, 0).await;

    // Hold the payer's wallet row, so the transfer stops inside its transaction.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM ledger_accounts WHERE id = (SELECT w.ledger_account_id FROM wallets w
           JOIN accounts a ON a.id = w.account_id WHERE a.phone = '+84912000001') FOR UPDATE",
    )
    .execute(&mut *blocker)
    .await
    .unwrap();

    let mut client = send_transfer_raw(&app, &payer, "hang-up-1", 12_000).await;
    wait_for_a_backend_waiting_on_a_lock(&pool).await;
    client.shutdown().await.unwrap();
    drop(client);
    // Give the server time to notice the closed connection before the lock is let go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.commit().await.unwrap();

    wait_for_transfers(&pool, 1).await;
    assert_eq!(balance(&app, &payer).await, 38_000);
    assert_eq!(balance(&app, &payee).await, 12_000);
    // The client's retry gets the first answer, and moves nothing more.
    let retry = transfer(&app, &payer, "hang-up-1", PIN, PAYEE, 12_000).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(balance(&app, &payer).await, 38_000);
    // The pool's connections are all usable afterwards.
    for key in ["after-1", "after-2", "after-3"] {
        let response = transfer(&app, &payer, key, PIN, PAYEE, 1_000).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(balance(&app, &payer).await, 35_000);
    assert_ledger_verifies(&pool).await;
}

/// Writes a whole transfer request on a connection of its own and reads nothing back.
async fn send_transfer_raw(app: &TestApp, token: &str, key: &str, amount: i64) -> TcpStream {
    let address = app.base_url.trim_start_matches("http://");
    // The bytes the retry (`requests::transfer`) sends, so it is the same request.
    let body = json!({"to_phone": PAYEE, "amount": amount, "note": "test"}).to_string();
    let request = format!(
        "POST /v1/wallet/transfers HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: {key}\r\nX-Payment-Pin: {PIN}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

async fn wait_for_a_backend_waiting_on_a_lock(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the transfer never reached the held row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_transfers(pool: &PgPool, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM transfers")
            .fetch_one(pool)
            .await
            .unwrap();
        if done == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{done} transfers, {expected} expected, after the client hung up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
