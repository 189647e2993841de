//! The committed OpenAPI document matches the code, and the docs page works offline.

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::TestApp;

#[test]
fn the_committed_openapi_document_is_current() {
    let path = format!(
        "{}/{}",
        env!("CARGO_MANIFEST_DIR"),
        civicpay::openapi::COMMITTED_PATH
    );
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = civicpay::openapi::document_json();
    assert!(
        committed == generated,
        "{path} differs from what the code generates; refresh it with `{}`",
        civicpay::openapi::REFRESH_COMMAND
    );
}

#[sqlx::test]
async fn the_served_document_is_openapi_3_1_and_lists_the_routes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let served = app.get_json("/openapi.json").await;
    let generated: serde_json::Value =
        serde_json::from_str(&civicpay::openapi::document_json()).unwrap();
    assert_eq!(served, generated);
    assert_eq!(served["openapi"], "3.1.0");
    for path in [
        "/v1/units",
        "/v1/units/{code}",
        "/health/live",
        "/health/ready",
        "/metrics",
    ] {
        assert!(served["paths"][path].is_object(), "{path} is documented");
    }
    assert!(served["components"]["schemas"]["Problem"].is_object());
    for event in [
        "payment.succeeded",
        "refund.succeeded",
        "order.expired",
        "order.cancelled",
    ] {
        let callback = &served["webhooks"][event]["post"];
        let envelope = &callback["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(envelope["properties"]["type"]["const"], event);
        assert_eq!(
            envelope["properties"]["data"]["$ref"],
            "#/components/schemas/Order"
        );
        let headers: Vec<&str> = callback["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            vec!["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
    }
    assert!(served["components"]["schemas"]["Order"].is_object());
}

#[sqlx::test]
async fn the_docs_page_and_its_assets_are_served_locally(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.get(asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let body = response.text().await.unwrap();
        if asset.ends_with("initializer.js") {
            assert!(body.contains("/openapi.json"), "{body}");
        }
    }
}
