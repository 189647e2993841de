//! Issue 13, items 3, 5 and 8: operations data is not public, rate limits hold against cheap
//! evasion, and development conveniences never reach production.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use civicpay::config::Config;
use civicpay::router::{metrics_router, router};
use civicpay::server::serve;
use civicpay::state::AppState;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::support::actors::{PASSWORD, PHONE, register};
use crate::support::app::{TestApp, test_config};
use crate::support::database::database_named;
use crate::support::demo::load_demo;
use crate::support::metrics::{METRICS_TOKEN, metrics_config, scrape};
use crate::support::problems::expect_problem;
use crate::support::requests::{last_code, login, request_otp};

// ---------------------------------------------------------------------------------------------
// Item 3: /metrics

#[sqlx::test]
async fn an_invented_method_leaves_no_series_named_after_it(pool: PgPool) {
    let app = TestApp::spawn_with(pool, metrics_config(), Router::new()).await;
    let invented = Method::from_bytes(b"ZZZINVENTED").unwrap();
    let lower_case = Method::from_bytes(b"get").unwrap();
    for (method, path) in [
        (&invented, "/v1/units"),
        (&invented, "/no-such-route"),
        (&invented, "/metrics"),
        (&lower_case, "/v1/units"),
    ] {
        app.client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
    }
    app.get("/v1/no-such-route/0912345678").await;
    let text = scrape(&app).await;
    assert!(!text.contains("ZZZINVENTED"), "{text}");
    assert!(!text.contains(r#"method="get""#), "{text}");
    assert!(
        text.contains(r#"http_requests_total{method="other",route="/v1/units","#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="other",route="unmatched",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("0912345678"),
        "raw paths never become labels"
    );
    assert!(
        !text.contains("no-such-route"),
        "raw paths never become labels"
    );
}

#[sqlx::test]
async fn the_api_listener_does_not_serve_metrics_without_a_configured_token(pool: PgPool) {
    let mut config = test_config();
    config.metrics.token = None;
    let app = TestApp::spawn_with(pool, config, Router::new()).await;
    expect_problem(
        app.get("/metrics").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // No token is right when none is configured.
    expect_problem(
        app.get_with_token("/metrics", METRICS_TOKEN).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // The probes stay on the API's listener.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}

#[sqlx::test]
async fn with_a_token_configured_the_api_listener_serves_metrics_only_to_it(pool: PgPool) {
    let app = TestApp::spawn_with(pool, metrics_config(), Router::new()).await;
    let problem = expect_problem(
        app.get("/metrics").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(problem.headers["www-authenticate"], "Bearer");
    let longer = format!("{METRICS_TOKEN}x");
    for wrong in [longer.as_str(), &METRICS_TOKEN[..20], "x"] {
        expect_problem(
            app.get_with_token("/metrics", wrong).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    for header in [
        format!("Basic {METRICS_TOKEN}"),
        METRICS_TOKEN.to_owned(),
        "Bearer ".to_owned(),
    ] {
        let response = app
            .client
            .get(app.url("/metrics"))
            .header("authorization", header.as_str())
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let response = app.get_with_token("/metrics", METRICS_TOKEN).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("civicpay_queue_items"), "{text}");
    // The scheme is case-insensitive, like every bearer token's.
    let response = app
        .client
        .get(app.url("/metrics"))
        .header("authorization", format!("bearer {METRICS_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Serves `router` on a loopback port of its own until the test ends; its base URL.
async fn serve_on_loopback(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        router,
        std::future::pending::<()>(),
        Duration::from_secs(1),
    ));
    base
}

#[sqlx::test]
async fn the_metrics_listener_serves_metrics_without_a_token_and_nothing_else(pool: PgPool) {
    let mut config = test_config();
    config.metrics.token = None;
    let state = AppState::new(pool, &config);
    let api = serve_on_loopback(router(state.clone())).await;
    let metrics = serve_on_loopback(metrics_router(state)).await;
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    assert_eq!(
        get(format!("{api}/v1/units")).await.status(),
        StatusCode::OK
    );

    let response = get(format!("{metrics}/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    // The same figures as the API's listener: what it answered is counted here.
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/v1/units",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("civicpay_queue_items"), "{text}");
    for path in ["/v1/units", "/health/live", "/openapi.json", "/docs/"] {
        assert_eq!(
            get(format!("{metrics}{path}")).await.status(),
            StatusCode::NOT_FOUND,
            "{path} on the metrics listener"
        );
    }
    assert_eq!(
        get(format!("{api}/metrics")).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// Kills the server when the test ends, whatever happened.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two loopback ports free right now (held together while asked, so they differ).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (first, second) = (bind(), bind());
    (
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    )
}

/// The real binary opens its metrics listener beside the API's.
#[sqlx::test]
async fn the_server_opens_its_metrics_listener_at_the_configured_address(pool: PgPool) {
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let url = database_named(&database).database_url;
    let (api_port, metrics_port) = free_ports();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_civicpay"))
            .arg("serve")
            .env("CIVICPAY_MODE", "development")
            .env("CIVICPAY_DATABASE_URL", &url)
            .env("CIVICPAY_BIND", format!("127.0.0.1:{api_port}"))
            .env("CIVICPAY_METRICS_BIND", format!("127.0.0.1:{metrics_port}"))
            .env_remove("CIVICPAY_METRICS_TOKEN")
            .env_remove("CIVICPAY_TRUSTED_PROXIES")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = format!("http://127.0.0.1:{api_port}");
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let started = Instant::now();
    while reqwest::get(format!("{api}/health/live")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = reqwest::get(&metrics)
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"route="/health/live""#),
        "the API's requests are counted: {text}"
    );
    assert_eq!(
        reqwest::get(format!("{api}/metrics"))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn queue_gauges_count_through_partial_indexes(pool: PgPool) {
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes
         WHERE indexdef LIKE '%WHERE%' AND tablename IN ('callback_deliveries', 'topups', 'withdrawals')
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for needed in [
        "callback_deliveries_due_idx",
        "callback_deliveries_failed_idx",
        "topups_credited_after_expiry_idx",
        "topups_pending_idx",
        "withdrawals_due_idx",
    ] {
        assert!(indexes.iter().any(|i| i == needed), "{needed}: {indexes:?}");
    }
    // With statistics saying the table is large, the failed count reads the index, not the table.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT count(*) FROM callback_deliveries WHERE state = 'failed'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|line| line.contains("callback_deliveries_failed_idx")),
        "{plan:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 5: rate limits

/// Behind a proxy on loopback, which the test client is, so `X-Forwarded-For` names the client.
fn behind_proxy(per_address: u32) -> Config {
    let mut config = test_config();
    config.auth.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    config.auth.login_failures_per_address = per_address;
    config.auth.login_failures_per_phone = 100;
    config
}

async fn login_from(app: &TestApp, forwarded_for: &str, phone: &str, password: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"phone": phone, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[sqlx::test]
async fn ipv6_addresses_in_one_64_share_a_login_limit(pool: PgPool) {
    let app = TestApp::spawn_with(pool, behind_proxy(2), Router::new()).await;
    register(&app, PHONE, PASSWORD).await;
    for (n, address) in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"]
        .iter()
        .enumerate()
    {
        let phone = format!("09870001{n:02}");
        assert_eq!(
            login_from(&app, address, &phone, "guess-guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A third address of the same /64 is the same client.
    assert_eq!(
        login_from(&app, "2001:db8:1:2:abcd::3", PHONE, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another /64 is another client.
    assert_eq!(
        login_from(&app, "2001:db8:1:3::1", PHONE, PASSWORD).await,
        StatusCode::OK
    );
}

#[sqlx::test]
async fn ipv6_addresses_in_one_64_share_the_code_limit(pool: PgPool) {
    let app = TestApp::spawn_with(pool, behind_proxy(20), Router::new()).await;
    let ask = |phone: String, address: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/auth/otp"))
                .header("x-forwarded-for", address)
                .json(&json!({"phone": phone, "purpose": "register"}))
                .send()
                .await
                .unwrap()
        }
    };
    for n in 0..10 {
        let response = ask(
            format!("09120000{n:02}"),
            format!("2001:db8:7:7::{:x}", n + 1),
        )
        .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    expect_problem(
        ask("0912000099".into(), "2001:db8:7:7:1234::1".into()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert_eq!(
        ask("0912000098".into(), "2001:db8:7:8::1".into())
            .await
            .status(),
        StatusCode::ACCEPTED
    );
}

#[sqlx::test]
async fn codes_asked_for_unknown_phones_do_not_use_up_the_global_cap(pool: PgPool) {
    let mut config = test_config();
    config.auth.otp_global_hourly_cap = 2;
    let app = TestApp::spawn_with(pool, config, Router::new()).await;
    // Reset codes for phones without an account are never texted...
    for n in 0..5 {
        let phone = format!("09870002{n:02}");
        assert_eq!(
            request_otp(&app, &phone, "reset_password").await.status(),
            StatusCode::ACCEPTED,
            "{phone}"
        );
        assert!(last_code(&app, &phone).await.is_none());
    }
    // ...so honest users still get theirs.
    for phone in ["0912000001", "0912000002"] {
        assert_eq!(
            request_otp(&app, phone, "register").await.status(),
            StatusCode::ACCEPTED,
            "{phone}"
        );
        assert!(last_code(&app, phone).await.is_some(), "{phone} got a code");
    }
    // The cap still holds for codes that are texted, and once it is full an unknown phone is
    // answered like any other, so the cap tells nobody which phones have an account.
    expect_problem(
        request_otp(&app, "0912000003", "register").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    expect_problem(
        request_otp(&app, "0987000299", "reset_password").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[sqlx::test]
async fn a_garbage_forwarded_entry_does_not_let_a_spoofed_address_left_of_it_through(pool: PgPool) {
    let app = TestApp::spawn_with(pool, behind_proxy(2), Router::new()).await;
    register(&app, PHONE, PASSWORD).await;
    // The client writes a fresh address on each try, followed by an entry that is not one.
    for spoofed in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            login_from(
                &app,
                &format!("{spoofed}, not-an-address"),
                "0987000101",
                "guess-guess"
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A fresh spoofed address is not a fresh client: the walk stopped at the garbage.
    assert_eq!(
        login_from(&app, "203.0.113.77, not-an-address", PHONE, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A well-formed chain still names its client.
    assert_eq!(
        login_from(&app, "203.0.113.78", PHONE, PASSWORD).await,
        StatusCode::OK
    );
}

#[sqlx::test]
async fn a_login_leaves_no_failure_counted_when_it_succeeds_and_one_when_it_fails(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    register(&app, PHONE, PASSWORD).await;
    let failures = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM login_failures")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(
        login(&app, PHONE, "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(failures().await, 1);
    assert_eq!(login(&app, PHONE, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        failures().await,
        0,
        "a success forgives the phone's failures"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 8: demo data in production

/// Anyone may register a demo number with a published demo password: that must not be able to
/// stop the service from starting.
#[sqlx::test]
async fn a_citizen_on_a_demo_number_with_a_demo_password_is_not_demo_data(pool: PgPool) {
    use civicpay::ops::start_checks::demo_data_found;
    let app = TestApp::spawn(pool.clone()).await;
    register(&app, "0900000001", "admin-demo-2026").await;
    register(&app, "0912345678", "citizen-demo-2026").await;
    assert_eq!(demo_data_found(&pool).await.unwrap(), Vec::<String>::new());
}

#[sqlx::test]
async fn only_what_the_demo_loaded_counts_as_demo_data(pool: PgPool) {
    use civicpay::ops::start_checks::demo_data_found;
    assert!(demo_data_found(&pool).await.unwrap().is_empty());
    // A real citizen who happens to have a demo phone number, with a password of their own,
    // is not demo data.
    let app = TestApp::spawn(pool.clone()).await;
    register(&app, "0987654321", "mat-khau-cua-rieng-toi").await;
    assert!(demo_data_found(&pool).await.unwrap().is_empty());

    load_demo(&pool).await;
    let found = demo_data_found(&pool).await.unwrap();
    for expected in [
        "the demo admin account +84900000001",
        "the demo officer account +84900000002",
        "the demo supervisor account +84900000004",
        "a published mk_demo_ API key of merchant CAFEHUE",
        "a published mk_demo_ API key of merchant DONGBA12",
        "a published mk_demo_ API key of merchant HUEPARK",
        "a published bk_demo_ API key of biller EVNHUE",
        "a published bk_demo_ API key of biller HEPCO",
        "a published bk_demo_ API key of biller HUEWACO",
        "a published bk_demo_ API key of biller THCSNTP",
        "the demo wallet of +84912345678 (its demo funding)",
    ] {
        assert!(found.iter().any(|f| f == expected), "{expected}: {found:?}");
    }
    // The loader kept the real citizen's account and password (it only fills what is missing).
    assert!(
        !found
            .iter()
            .any(|f| f == "the demo citizen account +84987654321"),
        "{found:?}"
    );
}
