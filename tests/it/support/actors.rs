//! The people a test needs, built through the routes a real client would use (and straight in
//! the database only for what no route does): citizens, staff, the admin, merchants.

use civicpay::accounts::staff::{NewStaff, insert_staff};
use civicpay::auth::Role;
use civicpay::domain::Phone;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::app::TestApp;
use super::demo::{ADMIN, load_demo, log_in};
use super::ledger::fund;
use super::requests::{last_code, login, request_otp, verify_wallet};

/// The phone and password of a citizen a test registers itself.
pub const PHONE: &str = "0912345678";
pub const PASSWORD: &str = "mat-khau-an-toan";
/// The payment PIN of every wallet [`citizen`] makes.
pub const PIN: &str = "482916";

/// A citizen registered with the code the sandbox texted; returns the tokens.
pub async fn register(app: &TestApp, phone: &str, password: &str) -> Value {
    assert_eq!(
        request_otp(app, phone, "register").await.status(),
        StatusCode::ACCEPTED
    );
    let code = last_code(app, phone).await.expect("a code was sent");
    let response = app
        .post_json("/v1/auth/register", &json!({"phone": phone, "otp": code, "full_name": "Nguyễn Văn An", "password": password}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The access token of a successful login.
pub async fn access_token(app: &TestApp, phone: &str, password: &str) -> String {
    let tokens: Value = login(app, phone, password).await.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A registered, verified citizen with a PIN, funded with `funds` đồng; returns the token.
pub async fn citizen(app: &TestApp, phone: &str, funds: i64) -> String {
    let tokens = register(app, phone, PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national_id = format!("046095{}", &digits[digits.len() - 6..]);
    let response = verify_wallet(app, &token, &national_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .client
        .put(app.url("/v1/wallet/pin"))
        .bearer_auth(&token)
        .json(&json!({"pin": PIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    if funds > 0 {
        fund(&app.pool, phone, funds).await;
    }
    token
}

/// A staff member (an officer or supervisor of `unit`, or an admin) straight in the database,
/// logged in over HTTP with [`PASSWORD`]; returns the account id and the access token.
pub async fn staff_session(
    app: &TestApp,
    phone: &str,
    role: Role,
    unit: Option<&str>,
) -> (Uuid, String) {
    let staff = NewStaff {
        phone: Phone::parse(phone).unwrap(),
        password: PASSWORD.into(),
        full_name: "Cán bộ".into(),
        role,
        unit_code: unit.map(str::to_owned),
    };
    let id = insert_staff(&app.pool, &staff).await.unwrap();
    (id, access_token(app, phone, PASSWORD).await)
}

/// The demo admin's access token (the demo data is loaded for it).
pub async fn admin(app: &TestApp) -> String {
    load_demo(&app.pool).await;
    log_in(app, ADMIN).await
}

/// A merchant's API key and id.
pub struct Merchant {
    pub key: String,
    pub id: String,
}

/// A merchant the admin onboards, with callbacks to a port nobody listens on.
pub async fn onboard(
    app: &TestApp,
    admin: &str,
    code: &str,
    fee_rate: &str,
    limit_category: &str,
) -> Merchant {
    let body = json!({
        "name": format!("Quán {code}"), "code": code, "category_code": "5814",
        "limit_category": limit_category, "fee_rate": fee_rate,
        "callback_url": "http://127.0.0.1:9/callbacks", "events": ["payment.succeeded", "refund.succeeded"]
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/admin/merchants", admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("mk_"));
    assert!(
        created["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(created["fee_rate"], fee_rate);
    Merchant {
        key: created["api_key"].as_str().unwrap().to_owned(),
        id: created["id"].as_str().unwrap().to_owned(),
    }
}

/// A biller of electricity the admin onboards, subscribed to `bill.paid` and `bill.cancelled`
/// with its callbacks sent to `callback_url` (none without one); returns its API key and the
/// creation answer.
pub async fn onboard_biller(
    app: &TestApp,
    admin_token: &str,
    code: &str,
    callback_url: Option<&str>,
) -> (String, Value) {
    let body = json!({
        "name": format!("Điện lực {code}"), "code": code, "kind": "electricity",
        "limit_category": "utility", "callback_url": callback_url,
        "events": ["bill.paid", "bill.cancelled"]
    });
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/admin/billers",
            admin_token,
            &body,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    assert!(api_key.starts_with("bk_"), "{api_key}");
    (api_key, created)
}
