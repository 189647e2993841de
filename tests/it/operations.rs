//! Health probes, metrics and request ids.

use std::time::Duration;

use reqwest::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::support::app::{TestApp, test_config};
use crate::support::metrics::{METRICS_TOKEN, metrics_config};
use crate::support::problems::expect_problem;

#[sqlx::test]
async fn liveness_and_readiness_are_ok_with_the_database_up(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.get_json("/health/live").await["status"], "ok");
    assert_eq!(app.get_json("/health/ready").await["status"], "ok");
}

#[tokio::test]
async fn readiness_is_503_problem_with_the_database_down_while_liveness_stays_ok() {
    // Nothing listens on port 1: every connection attempt is refused at once.
    let unreachable = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/civicpay")
        .unwrap();
    let app = TestApp::spawn_with(unreachable, test_config(), axum::Router::new()).await;
    let problem = expect_problem(
        app.get("/health/ready").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    assert!(problem.headers.contains_key("retry-after"));
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    // A data route fails the same clean way, not with a 500.
    expect_problem(
        app.get("/v1/units").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
}

#[sqlx::test]
async fn metrics_count_requests_by_route_template_and_status(pool: PgPool) {
    let app = TestApp::spawn_with(pool, metrics_config(), axum::Router::new()).await;
    app.get("/v1/units/0912345678").await;
    app.get("/v1/units/0912345678").await;
    app.get("/v1/units").await;
    let response = app.get_with_token("/metrics", METRICS_TOKEN).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/v1/units/{code}",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"http_requests_total{method="GET",route="/v1/units",status="200"} 1"#));
    assert!(text.contains(
        r#"http_request_duration_seconds_bucket{method="GET",route="/v1/units",status="200",le="#
    ));
    assert!(
        !text.contains("0912345678"),
        "raw paths never become labels"
    );
}

#[sqlx::test]
async fn a_request_id_is_generated_when_none_is_given(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let first = app.get("/health/live").await;
    let second = app.get("/health/live").await;
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id(&first)).is_ok());
    assert_ne!(id(&first), id(&second));
}

#[sqlx::test]
async fn the_callers_request_id_is_echoed_on_success_and_in_problems(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "app-7f3a.42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "app-7f3a.42");

    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "app-7f3a.43")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(problem.headers["x-request-id"], "app-7f3a.43");
    assert_eq!(problem.body["request_id"], "app-7f3a.43");
}

#[sqlx::test]
async fn an_unfit_request_id_is_replaced(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for unfit in ["has spaces", &"x".repeat(200), "quote\"d"] {
        let response = app
            .client
            .get(app.url("/health/live"))
            .header("x-request-id", unfit)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(echoed).is_ok(),
            "{unfit:?} was kept as {echoed:?}"
        );
    }
}
