//! Staff accounts cannot be taken by SMS: a staff phone gets no reset code and no reset, an
//! admin resets staff passwords and that ends their sessions; a verified citizen's reset also
//! needs their national ID. And the database's refusals of data (SQLSTATE class 22) are 422.

use civicpay::http::{ApiError, ErrorCode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{PASSWORD, access_token, citizen, register};
use crate::support::app::TestApp;
use crate::support::demo::{ADMIN, OFFICER, SUPERVISOR, load_demo};
use crate::support::problems::{expect_invalid_fields, expect_problem, without_request_id};
use crate::support::requests::{last_code, login, refresh, request_otp};

const NEW_PASSWORD: &str = "mat-khau-moi-2026";
const UNKNOWN: &str = "0987000111";
const CITIZEN: &str = "0912000101";
/// What `crate::support::actors::citizen` verifies `CITIZEN`'s wallet with.
const CITIZEN_NATIONAL_ID: &str = "046095000101";

async fn reset(
    app: &TestApp,
    phone: &str,
    otp: &str,
    national_id: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({"phone": phone, "otp": otp, "new_password": NEW_PASSWORD});
    if let Some(national_id) = national_id {
        body["national_id"] = json!(national_id);
    }
    app.post_json("/v1/auth/password/reset", &body).await
}

/// Asks for a reset code and reads it from the sandbox.
async fn reset_code(app: &TestApp, phone: &str) -> String {
    assert_eq!(
        request_otp(app, phone, "reset_password").await.status(),
        StatusCode::ACCEPTED
    );
    last_code(app, phone)
        .await
        .expect("a reset code was texted")
}

/// An `otp_invalid` answer, without its request id, to compare with others.
async fn refused(response: reqwest::Response) -> Value {
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "otp_invalid").await;
    without_request_id(problem.body)
}

async fn texts_to(app: &TestApp, phone: &str) -> usize {
    app.get_json(&format!("/sandbox/sms/{phone}")).await["data"]
        .as_array()
        .expect("the sandbox lists messages")
        .len()
}

async fn account_id(pool: &PgPool, phone: &str) -> Uuid {
    let e164 = civicpay::domain::Phone::parse(phone).unwrap();
    sqlx::query_scalar("SELECT id FROM accounts WHERE phone = $1")
        .bind(e164.as_str())
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn set_staff_password(
    app: &TestApp,
    token: &str,
    id: Uuid,
    password: &str,
) -> reqwest::Response {
    app.send_json_with(
        reqwest::Method::POST,
        &format!("/v1/admin/staff/{id}/password"),
        token,
        &json!({"password": password}),
    )
    .await
}

async fn live_code_attempts(pool: &PgPool, phone: &str) -> i32 {
    let e164 = civicpay::domain::Phone::parse(phone).unwrap();
    sqlx::query_scalar(
        "SELECT attempts FROM otp_codes WHERE phone = $1 AND purpose = 'reset_password'
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(e164.as_str())
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_staff_phone_asking_for_a_reset_code_is_answered_like_an_unknown_one_and_texted_nothing(
    pool: PgPool,
) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool).await;
    let unknown = request_otp(&app, UNKNOWN, "reset_password").await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let unknown: Value = unknown.json().await.unwrap();
    for (phone, _) in [ADMIN, OFFICER, SUPERVISOR] {
        let response = request_otp(&app, phone, "reset_password").await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{phone}");
        assert_eq!(response.json::<Value>().await.unwrap(), unknown, "{phone}");
        assert_eq!(texts_to(&app, phone).await, 0, "{phone} was texted");
    }
    assert_eq!(texts_to(&app, UNKNOWN).await, 0);
    // A citizen is texted, as before.
    register(&app, CITIZEN, PASSWORD).await;
    let before = texts_to(&app, CITIZEN).await;
    reset_code(&app, CITIZEN).await;
    assert_eq!(texts_to(&app, CITIZEN).await, before + 1);
}

#[sqlx::test]
async fn a_staff_phone_cannot_reset_its_password_whatever_the_code(pool: PgPool) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let unknown = refused(reset(&app, UNKNOWN, "123456", None).await).await;

    request_otp(&app, OFFICER.0, "reset_password").await;
    assert_eq!(
        refused(reset(&app, OFFICER.0, "123456", None).await).await,
        unknown
    );
    assert_eq!(
        login(&app, OFFICER.0, OFFICER.1).await.status(),
        StatusCode::OK
    );

    // Even the right code fails: here one texted while the phone was a citizen's, before the
    // account became staff.
    register(&app, CITIZEN, PASSWORD).await;
    let code = reset_code(&app, CITIZEN).await;
    sqlx::query(
        "UPDATE accounts SET role = 'officer', unit_code = '19753' WHERE phone = '+84912000101'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        refused(reset(&app, CITIZEN, &code, None).await).await,
        unknown
    );
    assert_eq!(
        login(&app, CITIZEN, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        login(&app, CITIZEN, NEW_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test]
async fn an_admin_resets_an_officers_password_and_every_session_ends(pool: PgPool) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let admin = access_token(&app, ADMIN.0, ADMIN.1).await;
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let session: Value = login(&app, OFFICER.0, OFFICER.1)
            .await
            .json()
            .await
            .unwrap();
        sessions.push(session);
    }
    let officer = account_id(&pool, OFFICER.0).await;
    let response = set_staff_password(&app, &admin, officer, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in &sessions {
        expect_problem(
            refresh(&app, &session["refresh_token"]).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        // The access token it still holds ends too, without waiting for its expiry.
        let token = session["access_token"].as_str().unwrap();
        expect_problem(
            app.get_with_token("/v1/me", token).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(
        login(&app, OFFICER.0, OFFICER.1).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let fresh: Value = login(&app, OFFICER.0, NEW_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let fresh_token = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_with_token("/v1/me", fresh_token).await.status(),
        StatusCode::OK,
        "a token issued after the reset works"
    );
    assert_eq!(
        refresh(&app, &fresh["refresh_token"]).await.status(),
        StatusCode::OK
    );
    // The other staff keep their passwords and sessions.
    assert_eq!(
        login(&app, SUPERVISOR.0, SUPERVISOR.1).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn only_an_admin_resets_a_staff_password_and_only_a_staff_one(pool: PgPool) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let officer = account_id(&pool, OFFICER.0).await;
    let citizen = register(&app, CITIZEN, PASSWORD).await;
    let citizen_token = citizen["access_token"].as_str().unwrap().to_owned();
    for token in [
        access_token(&app, OFFICER.0, OFFICER.1).await,
        access_token(&app, SUPERVISOR.0, SUPERVISOR.1).await,
        citizen_token,
    ] {
        for id in [officer, Uuid::new_v4()] {
            expect_problem(
                set_staff_password(&app, &token, id, NEW_PASSWORD).await,
                StatusCode::FORBIDDEN,
                "forbidden",
            )
            .await;
        }
    }
    let anonymous = app
        .post_json(
            &format!("/v1/admin/staff/{officer}/password"),
            &json!({"password": NEW_PASSWORD}),
        )
        .await;
    expect_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let admin = access_token(&app, ADMIN.0, ADMIN.1).await;
    for id in [account_id(&pool, CITIZEN).await, Uuid::new_v4()] {
        expect_problem(
            set_staff_password(&app, &admin, id, NEW_PASSWORD).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert_eq!(
        expect_invalid_fields(set_staff_password(&app, &admin, officer, "short").await).await,
        ["password"]
    );
    // Nothing changed.
    assert_eq!(
        login(&app, OFFICER.0, OFFICER.1).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        login(&app, CITIZEN, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn a_verified_citizen_resets_only_with_their_national_id(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    citizen(&app, CITIZEN, 0).await;
    let session: Value = login(&app, CITIZEN, PASSWORD).await.json().await.unwrap();
    let code = reset_code(&app, CITIZEN).await;
    let unknown = refused(reset(&app, UNKNOWN, &code, None).await).await;

    // Without it, or with another person's, the right code is refused like a wrong one; each
    // refusal uses up one attempt of the code, and only one.
    assert_eq!(
        refused(reset(&app, CITIZEN, &code, None).await).await,
        unknown
    );
    assert_eq!(live_code_attempts(&pool, CITIZEN).await, 1);
    assert_eq!(
        refused(reset(&app, CITIZEN, &code, Some("046095999999")).await).await,
        unknown
    );
    assert_eq!(live_code_attempts(&pool, CITIZEN).await, 2);
    // A wrong code with the right national ID: one attempt too.
    let wrong_code = if code == "111111" { "222222" } else { "111111" };
    assert_eq!(
        refused(reset(&app, CITIZEN, wrong_code, Some(CITIZEN_NATIONAL_ID)).await).await,
        unknown
    );
    assert_eq!(live_code_attempts(&pool, CITIZEN).await, 3);
    // A malformed one is refused for its shape, before the code is looked at.
    assert_eq!(
        expect_invalid_fields(reset(&app, CITIZEN, &code, Some("12345")).await).await,
        ["national_id"]
    );
    assert_eq!(live_code_attempts(&pool, CITIZEN).await, 3);
    assert_eq!(
        login(&app, CITIZEN, PASSWORD).await.status(),
        StatusCode::OK
    );

    // The same code with the right national ID works, and every session ends.
    let response = reset(&app, CITIZEN, &code, Some(CITIZEN_NATIONAL_ID)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_problem(
        refresh(&app, &session["refresh_token"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        login(&app, CITIZEN, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, CITIZEN, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn five_wrong_national_ids_use_up_the_code(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    citizen(&app, CITIZEN, 0).await;
    let code = reset_code(&app, CITIZEN).await;
    for n in 0..5 {
        let wrong = format!("04609599999{n}");
        refused(reset(&app, CITIZEN, &code, Some(&wrong)).await).await;
    }
    refused(reset(&app, CITIZEN, &code, Some(CITIZEN_NATIONAL_ID)).await).await;
    assert_eq!(
        login(&app, CITIZEN, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn an_unverified_citizen_resets_with_the_code_alone(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let registered = register(&app, CITIZEN, PASSWORD).await;
    let code = reset_code(&app, CITIZEN).await;
    let response = reset(&app, CITIZEN, &code, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_problem(
        refresh(&app, &registered["refresh_token"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        login(&app, CITIZEN, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

/// A 4xx problem+json, whatever its code: never a 500.
async fn expect_client_error(response: reqwest::Response, what: &str) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert!(status.is_client_error(), "{what}: {status} {text}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{what}: {text}"
    );
}

#[sqlx::test]
async fn a_nul_in_an_unauthenticated_path_or_a_login_phone_is_4xx(pool: PgPool) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool).await;
    for path in [
        "/v1/public/dossiers/%00",
        "/v1/public/dossiers/%00?key=ABCDEF",
        "/v1/public/dossiers/19753-261201-0001?key=%00",
        "/v1/units/%00",
        "/v1/units/%00/children",
        "/v1/procedures/%00",
        "/sandbox/sms/%00",
    ] {
        expect_client_error(app.get(path).await, path).await;
    }
    for phone in ["0912\u{0}345678", "\u{0}", "0912345678\u{0}"] {
        let answer = login(&app, phone, PASSWORD).await;
        expect_client_error(answer, &format!("login {phone:?}")).await;
        let answer = request_otp(&app, phone, "register").await;
        expect_client_error(answer, &format!("otp {phone:?}")).await;
        let answer = reset(&app, phone, "123456", None).await;
        expect_client_error(answer, &format!("reset {phone:?}")).await;
    }
}

#[sqlx::test]
async fn a_data_exception_of_the_database_is_422_validation_failed(pool: PgPool) {
    for sql in [
        "SELECT 'x'::int",
        "SELECT 2147483647::int + 1",
        "SELECT '294277-01-01'::timestamptz",
        "SELECT '2026-13-01'::date",
        "SELECT convert_from('\\x610062'::bytea, 'UTF8')",
    ] {
        let error = sqlx::query(sql).fetch_one(&pool).await.unwrap_err();
        let sqlstate = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|code| code.into_owned());
        assert!(
            sqlstate.as_deref().is_some_and(|s| s.starts_with("22")),
            "{sql}: {sqlstate:?}"
        );
        let answer = ApiError::from(error);
        assert_eq!(answer.code(), ErrorCode::ValidationFailed, "{sql}");
        assert_eq!(answer.status().as_u16(), 422, "{sql}");
        assert!(answer.field_errors().is_empty(), "{sql}");
        assert!(
            !answer.is_lasting_refusal(),
            "{sql}: never kept under an Idempotency-Key, in case it was our own SQL's fault"
        );
    }
    assert!(ApiError::new(ErrorCode::InsufficientFunds).is_lasting_refusal());
    // A NUL bound as text, as a client's string would be.
    let error = sqlx::query("SELECT $1::text")
        .bind("a\0b")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(error).code(), ErrorCode::ValidationFailed);
    // Our own mistakes stay 500.
    let error = sqlx::query("SELECT no_such_column")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(error).code(), ErrorCode::Internal);
}
