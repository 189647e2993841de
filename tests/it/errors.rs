//! Every way a request can be wrong gets problem+json with the right status and code.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use civicpay::http::{ApiResult, Json, Path};
use civicpay::state::AppState;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::support::app::{TestApp, test_config};
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};

#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    name: String,
    count: u32,
    inner: Option<Inner>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Inner {
    code: String,
}

async fn panicking() -> &'static str {
    panic!("secret internal detail")
}

async fn item_by_id(Path(id): Path<uuid::Uuid>) -> String {
    id.to_string()
}

async fn echo(Json(probe): Json<Probe>) -> Json<Probe> {
    Json(probe)
}

#[derive(Deserialize)]
struct NewUnit {
    code: String,
    name: String,
    level: String,
    parent_code: Option<String>,
}

/// Writes a unit, so constraint violations travel the whole way to the client.
async fn insert_unit(
    State(state): State<AppState>,
    Json(unit): Json<NewUnit>,
) -> ApiResult<StatusCodeOnly> {
    sqlx::query("INSERT INTO units (code, name, level, parent_code) VALUES ($1, $2, $3, $4)")
        .bind(unit.code)
        .bind(unit.name)
        .bind(unit.level)
        .bind(unit.parent_code)
        .execute(&state.db)
        .await?;
    Ok(StatusCodeOnly(axum::http::StatusCode::CREATED))
}

struct StatusCodeOnly(axum::http::StatusCode);

impl axum::response::IntoResponse for StatusCodeOnly {
    fn into_response(self) -> axum::response::Response {
        self.0.into_response()
    }
}

const LARGE_LIMIT: usize = 4 * 1024 * 1024;

pub fn probes() -> Router<AppState> {
    Router::new()
        .route("/probe/echo", post(echo))
        .route(
            "/probe/large",
            post(echo).layer(DefaultBodyLimit::max(LARGE_LIMIT)),
        )
        .route("/probe/panic", get(panicking))
        .route("/probe/units", post(insert_unit))
        .route("/probe/items/{id}", get(item_by_id))
}

async fn app(pool: PgPool) -> TestApp {
    TestApp::spawn_with(pool, test_config(), probes()).await
}

async fn post_json(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    post_raw(app, path, "application/json", body).await
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_valid_body_is_accepted(pool: PgPool) {
    let app = app(pool).await;
    let response = post_json(&app, "/probe/echo", r#"{"name":"a","count":2}"#).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[sqlx::test]
async fn malformed_json_is_400_malformed_body(pool: PgPool) {
    let app = app(pool).await;
    let response = post_json(&app, "/probe/echo", r#"{"name": "a", "#).await;
    expect_problem(response, StatusCode::BAD_REQUEST, "malformed_body").await;
}

#[sqlx::test]
async fn a_body_that_is_not_json_is_400_unsupported_media_type(pool: PgPool) {
    let app = app(pool).await;
    let response = post_raw(
        &app,
        "/probe/echo",
        "text/plain",
        r#"{"name":"a","count":2}"#,
    )
    .await;
    expect_problem(response, StatusCode::BAD_REQUEST, "unsupported_media_type").await;
    let response = app
        .client
        .post(app.url("/probe/echo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST, "unsupported_media_type").await;
}

#[sqlx::test]
async fn a_missing_field_is_422_naming_it(pool: PgPool) {
    let app = app(pool).await;
    let response = post_json(&app, "/probe/echo", r#"{"name":"a"}"#).await;
    assert_eq!(expect_invalid_fields(response).await, vec!["count"]);
}

#[sqlx::test]
async fn a_wrongly_typed_field_is_422_naming_its_path(pool: PgPool) {
    let app = app(pool).await;
    let body = r#"{"name":"a","count":1,"inner":{"code":7}}"#;
    let response = post_json(&app, "/probe/echo", body).await;
    assert_eq!(expect_invalid_fields(response).await, vec!["inner.code"]);

    let response = post_json(&app, "/probe/echo", r#"{"name":"a","count":-1}"#).await;
    assert_eq!(expect_invalid_fields(response).await, vec!["count"]);
}

#[sqlx::test]
async fn an_unknown_route_is_404_problem(pool: PgPool) {
    let app = app(pool).await;
    expect_problem(
        app.get("/v1/no-such-thing").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[sqlx::test]
async fn a_wrong_method_is_405_problem_with_allow(pool: PgPool) {
    let app = app(pool).await;
    let response = app
        .client
        .delete(app.url("/v1/units"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert!(problem.headers["allow"].to_str().unwrap().contains("GET"));
}

fn json_of_size(bytes: usize) -> String {
    format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(bytes))
}

#[sqlx::test]
async fn a_body_over_one_mebibyte_is_413(pool: PgPool) {
    let app = app(pool).await;
    let just_under = json_of_size(1024 * 1024 - 100);
    let response = post_json(&app, "/probe/echo", just_under).await;
    assert_eq!(response.status(), StatusCode::OK);

    let over = json_of_size(1024 * 1024 + 1);
    let response = post_json(&app, "/probe/echo", over).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

#[sqlx::test]
async fn a_route_can_allow_a_larger_body(pool: PgPool) {
    let app = app(pool).await;
    let two_mib = json_of_size(2 * 1024 * 1024);
    let response = post_json(&app, "/probe/large", two_mib).await;
    assert_eq!(response.status(), StatusCode::OK);
    let five_mib = json_of_size(5 * 1024 * 1024);
    let response = post_json(&app, "/probe/large", five_mib).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

#[sqlx::test]
async fn the_body_limit_is_configurable(pool: PgPool) {
    let mut config = test_config();
    config.body_limit_bytes = 2048;
    let app = TestApp::spawn_with(pool, config, probes()).await;
    let response = post_json(&app, "/probe/echo", json_of_size(3000)).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

#[sqlx::test]
async fn a_panic_is_500_with_the_request_id_and_no_internal_detail(pool: PgPool) {
    let app = app(pool).await;
    let response = app.get("/probe/panic").await;
    let problem = expect_problem(response, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    let header_id = problem.headers["x-request-id"].to_str().unwrap();
    assert_eq!(problem.body["request_id"], header_id);
    assert!(
        !problem.body.to_string().contains("secret"),
        "{}",
        problem.body
    );
    // The server survives its handler's panic.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[sqlx::test]
async fn problems_are_vietnamese_by_default_and_english_on_request(pool: PgPool) {
    let app = app(pool).await;
    let vietnamese = expect_problem(
        app.get("/v1/nothing").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(vietnamese.body["title"], "Không tìm thấy");
    assert_eq!(vietnamese.headers["content-language"], "vi");

    let response = app
        .client
        .get(app.url("/v1/nothing"))
        .header("accept-language", "en-GB,en;q=0.9,vi;q=0.5")
        .send()
        .await
        .unwrap();
    let english = expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(english.body["title"], "Not found");
    assert_eq!(english.body["detail"], "There is no such API path.");
    assert_eq!(english.headers["content-language"], "en");
}

#[sqlx::test]
async fn field_messages_follow_the_language_too(pool: PgPool) {
    let app = app(pool).await;
    let response = app
        .client
        .post(app.url("/probe/echo"))
        .header("content-type", "application/json")
        .header("accept-language", "en")
        .body(r#"{"count":1}"#)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem.body["errors"][0]["message"],
        "This field is required."
    );
}

async fn post_unit(app: &TestApp, body: &str) -> reqwest::Response {
    post_json(app, "/probe/units", body.to_owned()).await
}

#[sqlx::test]
async fn a_duplicate_key_is_409_already_exists(pool: PgPool) {
    let app = app(pool).await;
    let province = r#"{"code":"46","name":"Huế","level":"province"}"#;
    assert_eq!(
        post_unit(&app, province).await.status(),
        StatusCode::CREATED
    );
    let problem = expect_conflict(post_unit(&app, province).await, "already_exists").await;
    assert_eq!(problem.field_errors(), vec!["code"]);
}

#[sqlx::test]
async fn check_and_foreign_key_violations_are_422_naming_the_field(pool: PgPool) {
    let app = app(pool.clone()).await;
    let orphan = r#"{"code":"19753","name":"Phú Xuân","level":"commune","parent_code":"46"}"#;
    assert_eq!(
        expect_invalid_fields(post_unit(&app, orphan).await).await,
        vec!["parent_code"]
    );

    let bad_code = r#"{"code":"4","name":"Huế","level":"province"}"#;
    assert_eq!(
        expect_invalid_fields(post_unit(&app, bad_code).await).await,
        vec!["code"]
    );

    let units: i64 = sqlx::query_scalar("SELECT count(*) FROM units")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(units, 0, "a refused write changes nothing");
}

#[sqlx::test]
async fn a_path_parameter_that_cannot_parse_is_404_problem(pool: PgPool) {
    let app = app(pool).await;
    let id = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/probe/items/{id}")).await.status(),
        StatusCode::OK
    );
    expect_problem(
        app.get("/probe/items/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
