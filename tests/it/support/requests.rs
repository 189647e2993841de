//! Requests named after the routes they call, as a client sends them, answers unchecked unless
//! the name says otherwise.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::actors::{Merchant, PIN};
use super::app::TestApp;

/// `POST /v1/auth/otp`.
pub async fn request_otp(app: &TestApp, phone: &str, purpose: &str) -> reqwest::Response {
    app.post_json("/v1/auth/otp", &json!({"phone": phone, "purpose": purpose}))
        .await
}

/// The newest code the sandbox "sent" to `phone`.
pub async fn last_code(app: &TestApp, phone: &str) -> Option<String> {
    let messages = app.get_json(&format!("/sandbox/sms/{phone}")).await;
    let text = messages["data"].get(0)?["text"].as_str()?.to_owned();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .map(str::to_owned)
}

/// `POST /v1/auth/login`.
pub async fn login(app: &TestApp, phone: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/v1/auth/login",
        &json!({"phone": phone, "password": password}),
    )
    .await
}

/// `POST /v1/auth/refresh`.
pub async fn refresh(app: &TestApp, refresh_token: &Value) -> reqwest::Response {
    app.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh_token}))
        .await
}

/// Logs in and reads the account back (`GET /v1/me`).
pub async fn me_after_login(app: &TestApp, phone: &str, password: &str) -> Value {
    let tokens: Value = login(app, phone, password).await.json().await.unwrap();
    let response = app
        .get_with_token("/v1/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `POST /v1/wallet/verification`.
pub async fn verify_wallet(app: &TestApp, token: &str, national_id: &str) -> reqwest::Response {
    app.send_json_with(
        Method::POST,
        "/v1/wallet/verification",
        token,
        &json!({"national_id": national_id}),
    )
    .await
}

/// `POST /v1/wallet/transfers`.
pub async fn transfer(
    app: &TestApp,
    token: &str,
    key: &str,
    pin: &str,
    to: &str,
    amount: i64,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/wallet/transfers"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", pin)
        .json(&json!({"to_phone": to, "amount": amount, "note": "test"}))
        .send()
        .await
        .unwrap()
}

/// The wallet's balance (`GET /v1/wallet`).
pub async fn balance(app: &TestApp, token: &str) -> i64 {
    app.get_json_with(token, "/v1/wallet").await["balance"]
        .as_i64()
        .unwrap()
}

/// A merchant's `POST` with its API key, and an idempotency key when given.
pub async fn merchant_post(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Value,
    idempotency_key: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).bearer_auth(key).json(&body);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("idempotency-key", idempotency_key);
    }
    request.send().await.unwrap()
}

/// `POST /v1/merchant/orders`, which must succeed; returns the order.
pub async fn new_order(app: &TestApp, merchant: &Merchant, order_ref: &str, amount: i64) -> Value {
    let body = json!({"order_ref": order_ref, "amount": amount, "description": "Bún bò Huế"});
    let response = merchant_post(app, &merchant.key, "/v1/merchant/orders", body, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// `POST /v1/orders/{code}/pay` with the [`PIN`] of a [`citizen`](super::actors::citizen).
pub async fn pay(app: &TestApp, token: &str, code: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/orders/{code}/pay")))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", PIN)
        .send()
        .await
        .unwrap()
}

/// `POST /v1/merchant/orders/{order_ref}/refunds`.
pub async fn refund(
    app: &TestApp,
    merchant: &Merchant,
    order_ref: &str,
    amount: i64,
    key: &str,
) -> reqwest::Response {
    let path = format!("/v1/merchant/orders/{order_ref}/refunds");
    merchant_post(
        app,
        &merchant.key,
        &path,
        json!({"amount": amount, "reason": "trả lại"}),
        Some(key),
    )
    .await
}
