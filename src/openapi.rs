//! The OpenAPI 3.1 document, generated from the handlers' annotations. It is served at
//! `/openapi.json`, rendered at `/docs` and committed at `openapi/openapi.json`; a test fails
//! when the committed copy drifts from what the code generates.

use utoipa::OpenApi;

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
    ),
    components(schemas(Problem, ProblemField))
)]
pub struct ApiDoc;

/// The document as committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let document = crate::app::api_routes().split_for_parts().1;
    let mut json = document
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
