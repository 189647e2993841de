//! The OpenAPI 3.1 document, generated from the handlers' annotations. It is served at
//! `/openapi.json`, rendered at `/docs` and committed at `openapi/openapi.json`; a test fails
//! when the committed copy drifts from what the code generates.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::{Problem, ProblemField};

/// Where the committed copy lives, relative to the repository root.
pub const COMMITTED_PATH: &str = "openapi/openapi.json";

/// The command that rewrites the committed copy.
pub const REFRESH_COMMAND: &str = "cargo run -q -- openapi > openapi/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "civicpay",
        description = "Citizen super-app backend: public-service dossiers, bills, wallet and \
                       merchant payments with signed callbacks. Errors are RFC 9457 \
                       `application/problem+json` in Vietnamese (default) or English per \
                       `Accept-Language`."
    ),
    tags(
        (name = "operations", description = "Health and metrics"),
        (name = "units", description = "Administrative units"),
        (name = "auth", description = "One-time codes, registration, login and tokens"),
        (name = "accounts", description = "Your account, and staff administration"),
        (name = "wallet", description = "Wallet: verification, PIN, limits, transfers, history"),
        (name = "ledger", description = "The double-entry ledger"),
        (name = "merchants", description = "Merchants: onboarding, API keys, orders, refunds"),
        (name = "payments", description = "Citizens paying orders and merchants by QR"),
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Citizens and staff send `Authorization: Bearer <access JWT>`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let merchant_key = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("mk_…")
            .build();
        components.add_security_scheme("merchant_key", SecurityScheme::Http(merchant_key));
    }
}

/// The document as committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let document = crate::app::api_routes().split_for_parts().1;
    let mut json = document
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
