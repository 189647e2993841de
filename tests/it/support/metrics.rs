//! Reading `/metrics` on the API's listener, which needs the configured token.

use reqwest::StatusCode;

use super::app::{TestApp, test_config};

/// What tests configure as `CIVICPAY_METRICS_TOKEN` to read `/metrics` on the API's listener
/// (without one it answers 404 there).
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789abcdef-0123456789";

/// The test configuration with the metrics token set.
pub fn metrics_config() -> civicpay::config::Config {
    with_metrics_token(test_config())
}

pub fn with_metrics_token(mut config: civicpay::config::Config) -> civicpay::config::Config {
    config.metrics.token = Some(METRICS_TOKEN.to_owned());
    config
}

/// `/metrics` read with the token, from an app configured with [`with_metrics_token`].
pub async fn scrape(app: &TestApp) -> String {
    let response = app.get_with_token("/metrics", METRICS_TOKEN).await;
    assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
    response.text().await.unwrap()
}
