//! The one function that builds the whole router, which the server and the tests both call:
//! every feature's routes, the development sandboxes, the OpenAPI document and its Swagger UI,
//! and the middleware around them all; and the metrics listener's own router.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::http::error::{ConstraintRule, install_constraint_rules};
use crate::http::messages::Message;
use crate::http::{ApiError, problem, request_id};
use crate::ops::metrics;
use crate::state::AppState;

/// Every documented route, with its OpenAPI description.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(crate::ops::routes())
        .merge(crate::units::routes())
        .merge(crate::auth::routes())
        .merge(crate::accounts::routes())
        .merge(crate::wallet::routes())
        .merge(crate::merchants::routes())
        .merge(crate::calendar::routes())
        .merge(crate::procedures::routes())
        .merge(crate::dossiers::routes())
        .merge(crate::payments::routes())
        .merge(crate::bills::routes())
        .merge(crate::receipts::routes())
        .merge(crate::counters::routes())
        .merge(crate::scorecards::routes())
        .merge(crate::ops::ledger_verify::routes())
}

/// The OpenAPI document of [`api_routes`], completed by `openapi`, webhooks included.
pub fn openapi_document() -> serde_json::Value {
    crate::openapi::document(api_routes().split_for_parts().1)
}

/// [`openapi_document`] as committed and served.
pub fn openapi_json() -> String {
    crate::openapi::document_json(api_routes().split_for_parts().1)
}

/// Development helpers under `/sandbox/`, present only while their sandbox is enabled.
fn sandbox_routes(state: &AppState) -> Router<AppState> {
    let mut routes = Router::new();
    if state.auth.sandbox_sms.is_some() {
        routes = routes.route("/sandbox/sms/{phone}", get(crate::auth::sandbox_messages));
    }
    if state.providers.sandbox_enabled() {
        routes = routes.merge(crate::payments::sandbox_bank::pages());
    }
    routes
}

/// Every feature's constraint rules, which turn a violated constraint into its answer; the
/// foundations (`http::error`) know none of them until this top layer installs them.
pub fn constraint_rules() -> Vec<&'static [ConstraintRule]> {
    vec![
        crate::units::CONSTRAINT_RULES,
        crate::accounts::CONSTRAINT_RULES,
        crate::wallet::CONSTRAINT_RULES,
        crate::merchants::CONSTRAINT_RULES,
        crate::procedures::CONSTRAINT_RULES,
        crate::receipts::series::CONSTRAINT_RULES,
        crate::counters::CONSTRAINT_RULES,
    ]
}

/// What higher features hand down to lower ones, once per process (later calls change nothing):
/// the constraint rules, the `(bill paid)` transition, the counters' QR completion, the dossier
/// claims of a verified wallet. The server installs them before its background tasks start
/// (a provider's notification settled by the reconciler pays bills too); routers do as well.
pub fn install_hooks() {
    install_constraint_rules(constraint_rules);
    crate::bills::on_fee_paid(crate::dossiers::fee_paid_hook);
    crate::bills::on_counter_qr_paid(crate::counters::qr_paid_hook);
    crate::wallet::on_verified(crate::dossiers::verified_hook);
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The router with `extra` routes beside the API's, under the same middleware. Tests use it
/// to add probe routes (a panicking handler, a slow one); the server adds none.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    install_hooks();
    let (api, _) = api_routes().split_for_parts();
    // Swagger UI's default would ask an online validator about the document.
    let docs_config = SwaggerConfig::from("/openapi.json").validator_url("none");
    api.merge(sandbox_routes(&state))
        .merge(crate::console::pages())
        .merge(extra)
        .route("/openapi.json", get(serve_openapi_json))
        .merge(SwaggerUi::new("/docs").config(docs_config))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(state.body_limit_bytes))
        .layer(from_fn(problem::render_problems))
        .layer(from_fn_with_state(state.clone(), metrics::observe_requests))
        .layer(from_fn(request_id::assign_request_id))
        .with_state(state)
}

/// The metrics listener's router (`CIVICPAY_METRICS_BIND`): `/metrics` without a token, and
/// nothing else. It shares the application's state, so it shows the same figures as the API's
/// listener would; its own scrapes are not counted.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .fallback(unknown_route)
        .layer(from_fn(problem::render_problems))
        .with_state(state)
}

/// The OpenAPI document, webhooks included; generated once per process.
async fn serve_openapi_json() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(openapi_json).clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
}

async fn unknown_route() -> ApiError {
    ApiError::not_found(Message::RouteNotFound)
}
