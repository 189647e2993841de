//! Graceful shutdown: requests in flight finish; the real binary stops cleanly on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use civicpay::state::AppState;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::support::app::{TestApp, test_config};
use crate::support::database::{database_named, drop_database};

#[sqlx::test]
async fn a_request_in_flight_finishes_during_shutdown(pool: PgPool) {
    let slow = Router::<AppState>::new().route(
        "/probe/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }),
    );
    let app = TestApp::spawn_with(pool, test_config(), slow).await;
    let request = tokio::spawn(app.client.get(app.url("/probe/slow")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = app.url("/health/live");
    app.shutdown().await.expect("the server stops cleanly");
    let response = request
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "done");
    assert!(
        reqwest::get(url).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn the_server_stops_cleanly_on_sigterm() {
    let name = format!("civicpay_sigterm_{}", uuid::Uuid::new_v4().simple());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_civicpay"))
        .args(["serve", "--demo"])
        .env("CIVICPAY_DATABASE_URL", &database_named(&name).database_url)
        .env("CIVICPAY_BIND", format!("127.0.0.1:{port}"))
        .env("CIVICPAY_METRICS_BIND", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let live = format!("http://127.0.0.1:{port}/v1/units/46");
    let started = Instant::now();
    let mut answered = false;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(response) = reqwest::get(&live).await {
            answered = response.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop_database(&name).await;
    assert!(answered, "the server came up with its demo data");
    assert_eq!(
        status.map(|s| s.success()),
        Some(true),
        "exit status after SIGTERM"
    );
}
