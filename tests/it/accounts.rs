//! Staff administration, access control by role and scope, the profile, production mode.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use civicpay::auth::access::Staff;
use civicpay::auth::{Caller, Role, Scope};
use civicpay::http::{ApiResult, Json, Path};
use civicpay::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{PASSWORD, register, staff_session};
use crate::support::app::{TestApp, test_config};
use crate::support::database::database_named;
use crate::support::demo::load_demo;
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};
use crate::support::requests::{login, me_after_login, request_otp};

async fn covers(
    State(state): State<AppState>,
    caller: Caller<Staff>,
    Path(unit): Path<String>,
) -> ApiResult<Json<bool>> {
    Ok(Json(caller.scope().covers_unit(&state.db, &unit).await?))
}

/// Huế's demo units, with an older district tier added: 46 > 474 > 19918, and 46 > 19753.
async fn app_with_units(pool: &PgPool) -> TestApp {
    load_demo(pool).await;
    sqlx::query("INSERT INTO units (code, name, level, parent_code) VALUES ('474', 'Huyện Phú Vang', 'district', '46'), ('19918', 'Xã Phú Thuận', 'commune', '474')")
        .execute(pool)
        .await
        .unwrap();
    let probes = Router::<AppState>::new().route("/probe/covers/{unit}", get(covers));
    TestApp::spawn_with(pool.clone(), test_config(), probes).await
}

async fn post_with(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.send_json_with(reqwest::Method::POST, path, token, &body)
        .await
}

async fn patch_with(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.send_json_with(reqwest::Method::PATCH, path, token, &body)
        .await
}

#[sqlx::test]
async fn an_admin_creates_an_officer_who_can_log_in(pool: PgPool) {
    let app = app_with_units(&pool).await;
    let (_, admin) = staff_session(&app, "0905000001", Role::Admin, None).await;
    let body = json!({"phone": "0905000002", "password": PASSWORD, "full_name": "Trần Thị Bích", "role": "officer", "unit_code": "19753"});
    let response = post_with(&app, "/v1/admin/staff", &admin, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let officer: Value = response.json().await.unwrap();
    assert_eq!(
        (officer["role"].as_str(), officer["unit_code"].as_str()),
        (Some("officer"), Some("19753"))
    );
    assert_eq!(officer["phone"], "+84905000002");
    assert!(officer.get("password_hash").is_none());
    let me = me_after_login(&app, "0905000002", PASSWORD).await;
    assert_eq!(me["id"], officer["id"]);
}

#[sqlx::test]
async fn staff_creation_checks_role_unit_and_phone(pool: PgPool) {
    let app = app_with_units(&pool).await;
    let (_, admin) = staff_session(&app, "0905000001", Role::Admin, None).await;
    let without_unit =
        json!({"phone": "0905000002", "password": PASSWORD, "full_name": "B", "role": "officer"});
    assert_eq!(
        expect_invalid_fields(post_with(&app, "/v1/admin/staff", &admin, without_unit).await).await,
        vec!["unit_code"]
    );
    let citizen =
        json!({"phone": "0905000002", "password": PASSWORD, "full_name": "B", "role": "citizen"});
    assert_eq!(
        expect_invalid_fields(post_with(&app, "/v1/admin/staff", &admin, citizen).await).await,
        vec!["role"]
    );
    let unknown_unit = json!({"phone": "0905000002", "password": PASSWORD, "full_name": "B", "role": "officer", "unit_code": "99999"});
    assert_eq!(
        expect_invalid_fields(post_with(&app, "/v1/admin/staff", &admin, unknown_unit).await).await,
        vec!["unit_code"]
    );
    let taken =
        json!({"phone": "+84905000001", "password": PASSWORD, "full_name": "B", "role": "admin"});
    expect_conflict(
        post_with(&app, "/v1/admin/staff", &admin, taken).await,
        "phone_taken",
    )
    .await;
}

#[sqlx::test]
async fn roles_that_may_not_use_a_route_get_403_and_strangers_401(pool: PgPool) {
    let app = app_with_units(&pool).await;
    let citizen = register(&app, "0911111111", PASSWORD).await;
    let citizen = citizen["access_token"].as_str().unwrap();
    let (_, officer) = staff_session(&app, "0905000002", Role::Officer, Some("19753")).await;
    let body =
        json!({"phone": "0905000009", "password": PASSWORD, "full_name": "B", "role": "admin"});
    for token in [citizen, officer.as_str()] {
        expect_problem(
            post_with(&app, "/v1/admin/staff", token, body.clone()).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    expect_problem(
        app.get_with_token("/probe/covers/19753", citizen).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = app
        .client
        .post(app.url("/v1/admin/staff"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[sqlx::test]
async fn a_disabled_officer_loses_access_at_once(pool: PgPool) {
    let app = app_with_units(&pool).await;
    let (_, admin) = staff_session(&app, "0905000001", Role::Admin, None).await;
    let (officer_id, _) = staff_session(&app, "0905000002", Role::Officer, Some("19753")).await;
    let session: Value = login(&app, "0905000002", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_with_token("/v1/me", access).await.status(),
        StatusCode::OK
    );

    let response = patch_with(
        &app,
        &format!("/v1/admin/staff/{officer_id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);

    expect_problem(
        app.get_with_token("/v1/me", access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let refreshed = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    expect_problem(refreshed, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(
        login(&app, "0905000002", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Enabled again, the officer logs in afresh.
    patch_with(
        &app,
        &format!("/v1/admin/staff/{officer_id}"),
        &admin,
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(
        login(&app, "0905000002", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test]
async fn a_moved_officer_acts_in_the_new_unit_with_the_same_token(pool: PgPool) {
    let app = app_with_units(&pool).await;
    let (_, admin) = staff_session(&app, "0905000001", Role::Admin, None).await;
    let (officer_id, officer) =
        staff_session(&app, "0905000002", Role::Officer, Some("19753")).await;
    assert_eq!(
        app.get_json_with(&officer, "/probe/covers/19753").await,
        json!(true)
    );
    assert_eq!(
        app.get_json_with(&officer, "/probe/covers/19918").await,
        json!(false)
    );

    let moved = patch_with(
        &app,
        &format!("/v1/admin/staff/{officer_id}"),
        &admin,
        json!({"unit_code": "474"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        app.get_json_with(&officer, "/probe/covers/19753").await,
        json!(false)
    );
    assert_eq!(
        app.get_json_with(&officer, "/probe/covers/19918").await,
        json!(true)
    );
    let me: Value = app
        .get_with_token("/v1/me", &officer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["unit_code"], "474");
}

#[sqlx::test]
async fn patching_a_citizen_or_an_unknown_id_as_staff_is_404(pool: PgPool) {
    let app = app_with_units(&pool).await;
    let (_, admin) = staff_session(&app, "0905000001", Role::Admin, None).await;
    register(&app, "0911111111", PASSWORD).await;
    let citizen_id: Uuid =
        sqlx::query_scalar("SELECT id FROM accounts WHERE phone = '+84911111111'")
            .fetch_one(&pool)
            .await
            .unwrap();
    for id in [citizen_id, Uuid::new_v4()] {
        let response = patch_with(
            &app,
            &format!("/v1/admin/staff/{id}"),
            &admin,
            json!({"disabled": true}),
        )
        .await;
        expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[sqlx::test]
async fn scope_follows_the_unit_tree(pool: PgPool) {
    load_demo(&pool).await;
    sqlx::query("INSERT INTO units (code, name, level, parent_code) VALUES ('474', 'Huyện Phú Vang', 'district', '46'), ('19918', 'Xã Phú Thuận', 'commune', '474')")
        .execute(&pool)
        .await
        .unwrap();
    let province = Scope::Subtree("46".into());
    let district = Scope::Subtree("474".into());
    let commune = Scope::Subtree("19918".into());
    for (scope, unit, expected) in [
        (&province, "46", true),
        (&province, "474", true),
        (&province, "19918", true),
        (&province, "19753", true),
        (&district, "19918", true),
        (&district, "474", true),
        (&district, "19753", false),
        (&district, "46", false),
        (&commune, "474", false),
        (&commune, "19918", true),
        (&province, "99999", false),
        (&Scope::Everything, "19753", true),
        (&Scope::Own(Uuid::new_v4()), "19753", false),
    ] {
        assert_eq!(
            scope.covers_unit(&pool, unit).await.unwrap(),
            expected,
            "{scope:?} covers {unit}"
        );
    }
    let me = Uuid::new_v4();
    assert!(Scope::Own(me).covers_owner(me));
    assert!(!Scope::Own(me).covers_owner(Uuid::new_v4()));
    assert!(!district.covers_owner(me));
}

#[sqlx::test]
async fn a_citizen_edits_their_name_and_language(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tokens = register(&app, "0912345678", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let response = patch_with(
        &app,
        "/v1/me",
        token,
        json!({"full_name": "Nguyễn Văn Bình", "language": "en"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(
        (me["full_name"].as_str(), me["language"].as_str()),
        (Some("Nguyễn Văn Bình"), Some("en"))
    );
    for bad in [
        json!({"language": "fr"}),
        json!({"full_name": ""}),
        json!({"role": "admin"}),
    ] {
        let response = patch_with(&app, "/v1/me", token, bad.clone()).await;
        expect_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let me: Value = app
        .get_with_token("/v1/me", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "citizen");
}

#[sqlx::test]
async fn production_has_no_sms_sandbox(pool: PgPool) {
    let mut config = test_config();
    config.mode = civicpay::config::Mode::Production;
    config
        .check_mode()
        .expect("a production configuration with its secret");
    let app = TestApp::spawn_with(pool, config, Router::new()).await;
    expect_problem(
        app.get("/sandbox/sms/0912345678").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // No real gateway exists yet: codes cannot be sent, and nothing pretends they were.
    expect_problem(
        request_otp(&app, "0912345678", "register").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
}

#[test]
fn production_refuses_to_start_without_its_key_or_with_the_sandbox() {
    let mut config = test_config();
    config.mode = civicpay::config::Mode::Production;
    config.auth.jwt_secret = None;
    assert!(
        config
            .check_mode()
            .unwrap_err()
            .to_string()
            .contains("CIVICPAY_JWT_SECRET")
    );
    config.auth.jwt_secret = test_config().auth.jwt_secret;
    config.auth.sms_provider = Some(civicpay::config::SmsProvider::Sandbox);
    assert!(
        config
            .check_mode()
            .unwrap_err()
            .to_string()
            .contains("CIVICPAY_SMS_PROVIDER")
    );
    config.auth.sms_provider = None;
    config.wallet.pin_pepper = None;
    assert!(
        config
            .check_mode()
            .unwrap_err()
            .to_string()
            .contains("CIVICPAY_PIN_PEPPER")
    );
    config.wallet.pin_pepper = test_config().wallet.pin_pepper;
    config.receipts.signing_key = None;
    assert!(
        config
            .check_mode()
            .unwrap_err()
            .to_string()
            .contains("CIVICPAY_RECEIPT_SIGNING_KEY")
    );
    config.receipts.signing_key = test_config().receipts.signing_key;
    config.wallet.identity_verifier = Some(civicpay::config::IdentityVerifierKind::Sandbox);
    assert!(
        config
            .check_mode()
            .unwrap_err()
            .to_string()
            .contains("CIVICPAY_IDENTITY_VERIFIER")
    );
    config.wallet.identity_verifier = None;
    config.check_mode().expect("everything production needs");
}

#[sqlx::test]
async fn create_admin_makes_an_admin_who_can_log_in(pool: PgPool) {
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let url = database_named(&database).database_url;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_civicpay"))
        .args([
            "create-admin",
            "--phone",
            "0905999999",
            "--password",
            PASSWORD,
        ])
        .env("CIVICPAY_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_civicpay"))
        .args([
            "create-admin",
            "--phone",
            "+84905999999",
            "--password",
            PASSWORD,
        ])
        .env("CIVICPAY_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has an account"));

    let app = TestApp::spawn(pool).await;
    let me = me_after_login(&app, "0905999999", PASSWORD).await;
    assert_eq!(me["role"], "admin");
}
