//! One-time codes, registration, login, tokens and login protection.

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{PASSWORD, PHONE, register};
use crate::support::app::{TEST_JWT_SECRET, TestApp, test_config};
use crate::support::problems::{
    expect_conflict, expect_invalid_fields, expect_problem, without_request_id,
};
use crate::support::requests::{last_code, login, refresh, request_otp};

async fn expect_otp_invalid(response: reqwest::Response) {
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "otp_invalid").await;
}

#[sqlx::test]
async fn a_code_is_sent_and_the_answer_is_the_same_for_registered_and_unknown_phones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    register(&app, PHONE, PASSWORD).await;
    let registered = request_otp(&app, PHONE, "reset_password").await;
    let unknown = request_otp(&app, "0987000111", "reset_password").await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), registered.status());
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        registered.json::<Value>().await.unwrap()
    );
    // Only the account holder is actually texted a reset code.
    assert!(last_code(&app, "0987000111").await.is_none());
}

#[sqlx::test]
async fn the_sandbox_shows_codes_by_any_notation_of_the_phone(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    request_otp(&app, "+84912345678", "register").await;
    assert_eq!(
        last_code(&app, "0912345678").await,
        last_code(&app, "84912345678").await
    );
    assert!(last_code(&app, "0912345678").await.is_some());
}

#[sqlx::test]
async fn registering_returns_tokens_that_open_me(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tokens = register(&app, PHONE, PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 32)
    );
    let me = app
        .get_with_token("/v1/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["phone"], "+84912345678");
    assert_eq!(me["role"], "citizen");
    assert_eq!(me["language"], "vi");
}

#[sqlx::test]
async fn registering_with_a_wrong_code_creates_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    request_otp(&app, PHONE, "register").await;
    let code = last_code(&app, PHONE).await.unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let body = json!({"phone": PHONE, "otp": wrong, "full_name": "An", "password": PASSWORD});
    let problem = expect_problem(
        app.post_json("/v1/auth/register", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "otp_invalid",
    )
    .await;
    assert_eq!(problem.field_errors(), vec!["otp"]);
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0);
}

#[sqlx::test]
async fn an_expired_code_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    request_otp(&app, PHONE, "register").await;
    let code = last_code(&app, PHONE).await.unwrap();
    sqlx::query("UPDATE otp_codes SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let body = json!({"phone": PHONE, "otp": code, "full_name": "An", "password": PASSWORD});
    expect_otp_invalid(app.post_json("/v1/auth/register", &body).await).await;
}

#[sqlx::test]
async fn a_code_works_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    request_otp(&app, PHONE, "register").await;
    let code = last_code(&app, PHONE).await.unwrap();
    let body = json!({"phone": PHONE, "otp": code, "full_name": "An", "password": PASSWORD});
    assert_eq!(
        app.post_json("/v1/auth/register", &body).await.status(),
        StatusCode::CREATED
    );
    expect_otp_invalid(app.post_json("/v1/auth/register", &body).await).await;
}

#[sqlx::test]
async fn five_wrong_guesses_kill_the_code(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    request_otp(&app, PHONE, "register").await;
    let code = last_code(&app, PHONE).await.unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let body = json!({"phone": PHONE, "otp": wrong, "full_name": "An", "password": PASSWORD});
        expect_otp_invalid(app.post_json("/v1/auth/register", &body).await).await;
    }
    let body = json!({"phone": PHONE, "otp": code, "full_name": "An", "password": PASSWORD});
    expect_otp_invalid(app.post_json("/v1/auth/register", &body).await).await;
}

#[sqlx::test]
async fn a_phone_gets_three_codes_per_quarter_hour(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for _ in 0..3 {
        assert_eq!(
            request_otp(&app, PHONE, "register").await.status(),
            StatusCode::ACCEPTED
        );
    }
    let problem = expect_problem(
        request_otp(&app, "+84912345678", "register").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let retry_after = problem.retry_after_secs();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
}

#[sqlx::test]
async fn a_client_address_gets_ten_codes_per_hour(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for n in 0..10 {
        let phone = format!("09120000{n:02}");
        assert_eq!(
            request_otp(&app, &phone, "register").await.status(),
            StatusCode::ACCEPTED
        );
    }
    expect_problem(
        request_otp(&app, "0912000099", "register").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[sqlx::test]
async fn the_global_hourly_cap_stops_sms_pumping(pool: PgPool) {
    let mut config = test_config();
    config.auth.otp_global_hourly_cap = 2;
    let app = TestApp::spawn_with(pool, config, Router::new()).await;
    request_otp(&app, "0912000001", "register").await;
    request_otp(&app, "0912000002", "register").await;
    expect_problem(
        request_otp(&app, "0912000003", "register").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[sqlx::test]
async fn a_phone_registered_in_another_notation_is_taken(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    register(&app, "0912345678", PASSWORD).await;
    request_otp(&app, "+84 912 345 678", "register").await;
    let code = last_code(&app, PHONE).await.unwrap();
    let body =
        json!({"phone": "84912345678", "otp": code, "full_name": "An", "password": PASSWORD});
    let problem = expect_conflict(
        app.post_json("/v1/auth/register", &body).await,
        "phone_taken",
    )
    .await;
    assert_eq!(problem.field_errors(), vec!["phone"]);
}

#[sqlx::test]
async fn registration_names_every_invalid_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = json!({"phone": PHONE, "otp": "123456", "full_name": " ", "password": "short"});
    let mut fields = expect_invalid_fields(app.post_json("/v1/auth/register", &body).await).await;
    fields.sort();
    assert_eq!(fields, vec!["full_name", "password"]);
    let body = json!({"phone": "12345", "otp": "123456", "full_name": "An", "password": PASSWORD});
    assert_eq!(
        expect_invalid_fields(app.post_json("/v1/auth/register", &body).await).await,
        vec!["phone"]
    );
}

#[sqlx::test]
async fn a_wrong_password_and_an_unknown_phone_answer_alike(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    register(&app, PHONE, PASSWORD).await;
    let wrong_password = expect_problem(
        login(&app, PHONE, "not-the-password").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let unknown_phone = expect_problem(
        login(&app, "0987000111", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        without_request_id(wrong_password.body),
        without_request_id(unknown_phone.body)
    );
    assert_eq!(
        login(&app, "+84912345678", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn refreshing_rotates_and_a_reused_token_revokes_the_family(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let first: Value = register(&app, PHONE, PASSWORD).await;
    let response = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        app.get_with_token("/v1/me", second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // The first token again: someone else holds a copy. The whole family dies.
    expect_problem(
        refresh(&app, &first["refresh_token"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_problem(
        refresh(&app, &second["refresh_token"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Another login is another family, untouched.
    let other: Value = login(&app, PHONE, PASSWORD).await.json().await.unwrap();
    assert_eq!(
        refresh(&app, &other["refresh_token"]).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn logout_ends_the_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tokens = register(&app, PHONE, PASSWORD).await;
    let response = app
        .post_json(
            "/v1/auth/logout",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_problem(
        refresh(&app, &tokens["refresh_token"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[sqlx::test]
async fn a_password_reset_ends_every_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let registered = register(&app, PHONE, PASSWORD).await;
    let logged_in: Value = login(&app, PHONE, PASSWORD).await.json().await.unwrap();
    request_otp(&app, PHONE, "reset_password").await;
    let code = last_code(&app, PHONE).await.unwrap();
    let body = json!({"phone": PHONE, "otp": code, "new_password": "mat-khau-moi-2026"});
    assert_eq!(
        app.post_json("/v1/auth/password/reset", &body)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for tokens in [registered, logged_in] {
        expect_problem(
            refresh(&app, &tokens["refresh_token"]).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(
        login(&app, PHONE, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, PHONE, "mat-khau-moi-2026").await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn a_register_code_cannot_reset_a_password(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    register(&app, PHONE, PASSWORD).await;
    request_otp(&app, PHONE, "register").await;
    let code = last_code(&app, PHONE).await.unwrap();
    let body = json!({"phone": PHONE, "otp": code, "new_password": "mat-khau-moi-2026"});
    expect_otp_invalid(app.post_json("/v1/auth/password/reset", &body).await).await;
}

fn forge(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let signing_input = format!("{}.{}", encode(header), encode(claims));
    let signature = civicpay::crypto::hmac_sha256(secret, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[sqlx::test]
async fn forged_expired_and_tampered_tokens_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tokens = register(&app, PHONE, PASSWORD).await;
    let genuine = tokens["access_token"].as_str().unwrap();
    let claims = claims_of(genuine);
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    // The same claims re-signed with our key pass: the forging below is sound.
    assert_eq!(
        app.get_with_token(
            "/v1/me",
            &forge(&hs256, &claims, TEST_JWT_SECRET.as_bytes())
        )
        .await
        .status(),
        StatusCode::OK
    );

    let mut expired = claims.clone();
    expired["iat"] = json!(claims["iat"].as_i64().unwrap() - 3600);
    expired["exp"] = json!(claims["iat"].as_i64().unwrap() - 60);
    let other_key = forge(&hs256, &claims, b"some-other-key-of-plenty-length-000000");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        genuine.split('.').nth(1).unwrap()
    );
    let mut as_admin = claims.clone();
    as_admin["role"] = json!("admin");
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let edited_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&as_admin).unwrap());
    parts[1] = &edited_payload;
    let role_edited = parts.join(".");

    for (what, token) in [
        (
            "expired",
            forge(&hs256, &expired, TEST_JWT_SECRET.as_bytes()),
        ),
        ("another key", other_key),
        ("alg none", alg_none),
        ("role edited", role_edited),
        ("garbage", "not.a.token".to_owned()),
    ] {
        let response = app.get_with_token("/v1/me", &token).await;
        let problem = expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        assert_eq!(problem.headers["www-authenticate"], "Bearer", "{what}");
    }
    expect_problem(
        app.get("/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[sqlx::test]
async fn the_role_comes_from_the_database_not_the_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tokens = register(&app, PHONE, PASSWORD).await;
    let mut claims = claims_of(tokens["access_token"].as_str().unwrap());
    claims["role"] = json!("admin");
    // Even correctly signed (a leaked key, a bug), the claim grants nothing.
    let token = forge(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
        TEST_JWT_SECRET.as_bytes(),
    );
    let response = app
        .client
        .post(app.url("/v1/admin/staff"))
        .bearer_auth(token)
        .json(&json!({"phone": "0905000001", "password": PASSWORD, "full_name": "X", "role": "admin"}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
}

fn limited_config(per_phone: u32, per_address: u32) -> civicpay::config::Config {
    let mut config = test_config();
    config.auth.login_failures_per_phone = per_phone;
    config.auth.login_failures_per_address = per_address;
    config
}

#[sqlx::test]
async fn failed_logins_are_limited_across_server_processes(pool: PgPool) {
    let first = TestApp::spawn_with(pool.clone(), limited_config(5, 100), Router::new()).await;
    let second = TestApp::spawn_with(pool, limited_config(5, 100), Router::new()).await;
    register(&first, PHONE, PASSWORD).await;
    for app in [&first, &second, &first, &second, &first] {
        assert_eq!(
            login(app, PHONE, "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password waits now, on either server.
    let problem = expect_problem(
        login(&second, PHONE, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let retry_after = problem.retry_after_secs();
    assert!((1..=900).contains(&retry_after));
    expect_problem(
        login(&first, PHONE, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[sqlx::test]
async fn failed_logins_are_limited_per_client_address(pool: PgPool) {
    let app = TestApp::spawn_with(pool, limited_config(100, 3), Router::new()).await;
    register(&app, PHONE, PASSWORD).await;
    for n in 0..3 {
        login(&app, &format!("09870001{n:02}"), "guess-guess").await;
    }
    expect_problem(
        login(&app, PHONE, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

async fn login_from(app: &TestApp, forwarded_for: &str, password: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"phone": PHONE, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[sqlx::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy(pool: PgPool) {
    let mut behind_proxy = limited_config(100, 2);
    behind_proxy.auth.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let proxied = TestApp::spawn_with(pool.clone(), behind_proxy, Router::new()).await;
    register(&proxied, PHONE, PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(
            login_from(&proxied, "198.51.100.1", "wrong").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&proxied, "198.51.100.1", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&proxied, "198.51.100.2", PASSWORD).await,
        StatusCode::OK
    );

    // Without a trusted proxy the header is the client's to forge, and is ignored.
    // (The failures above were counted for 198.51.100.1, not for this peer, 127.0.0.1.)
    let direct = TestApp::spawn_with(pool, limited_config(100, 2), Router::new()).await;
    for forged in ["203.0.113.1", "203.0.113.2"] {
        login_from(&direct, forged, "wrong").await;
    }
    assert_eq!(
        login_from(&direct, "203.0.113.3", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test]
async fn parallel_guesses_cannot_overshoot_the_per_phone_limit(pool: PgPool) {
    let app = TestApp::spawn_with(pool, limited_config(5, 1000), Router::new()).await;
    register(&app, PHONE, PASSWORD).await;
    let guesses = (0..12).map(|n| {
        let client = app.client.clone();
        let url = app.url("/v1/auth/login");
        async move {
            let body = json!({"phone": PHONE, "password": format!("guess-number-{n}")});
            client.post(url).json(&body).send().await.unwrap().status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 7), "{statuses:?}");
}

#[sqlx::test]
async fn old_codes_failures_and_dead_tokens_are_purged(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let tokens = register(&app, PHONE, PASSWORD).await;
    login(&app, PHONE, "wrong-password").await;
    request_otp(&app, "0987000111", "register").await;
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    civicpay::auth::purge_expired(&pool).await.unwrap();
    assert_eq!(
        (
            count("otp_codes").await,
            count("login_failures").await,
            count("refresh_tokens").await
        ),
        (2, 1, 1)
    );

    sqlx::query("UPDATE otp_codes SET created_at = now() - interval '2 days'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE login_failures SET failed_at = now() - interval '2 days'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '2 days'")
        .execute(&pool)
        .await
        .unwrap();
    civicpay::auth::purge_expired(&pool).await.unwrap();
    assert_eq!(
        (
            count("otp_codes").await,
            count("login_failures").await,
            count("refresh_tokens").await
        ),
        (0, 0, 0)
    );
    expect_problem(
        refresh(&app, &tokens["refresh_token"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}
