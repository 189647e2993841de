//! Operating the service: health probes, metrics, logs, the checks made at start, and the
//! admins' check of the ledger's books.

pub mod health;
pub mod http_metrics;
pub mod ledger_verify;
pub mod logging;
pub mod metrics;
pub mod start_checks;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// The API listener's operations routes. `/metrics` is among them but answers only with the
/// configured token (see [`metrics`]); the metrics listener has its own router
/// (`router::metrics_router`).
pub fn routes() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics));
    let token = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "The value of CIVICPAY_METRICS_TOKEN, for /metrics on the API's listener",
        ))
        .build();
    router
        .get_openapi_mut()
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme("metrics_token", SecurityScheme::Http(token));
    router
}
