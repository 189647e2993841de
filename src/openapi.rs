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
        (name = "callbacks", description = "Signed events sent to merchants (Standard Webhooks): event log, redelivery, secret rotation"),
        (name = "calendar", description = "Working calendar: holidays, days off, make-up working days"),
        (name = "procedures", description = "The catalogue of administrative procedures"),
        (name = "dossiers", description = "Dossiers: filing online and at the counter, life cycle, tracking, ratings"),
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

/// The document as committed and served: pretty JSON with a final newline.
pub fn document_json() -> String {
    let document = crate::app::api_routes().split_for_parts().1;
    let mut value = serde_json::to_value(&document).expect("the OpenAPI document serializes");
    value["webhooks"] = webhooks();
    let mut json = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    json.push('\n');
    json
}

/// The OpenAPI 3.1 `webhooks` object: each callback a merchant may receive, with the Standard
/// Webhooks headers and the event envelope whose `data` is the order. (utoipa 5 has no
/// `webhooks` support, so it is added to the generated document here.)
fn webhooks() -> serde_json::Value {
    let header = |name: &str, description: &str| {
        serde_json::json!({"name": name, "in": "header", "required": true, "description": description,
                           "schema": {"type": "string"}})
    };
    let parameters = serde_json::json!([
        header(
            "webhook-id",
            "The event id; the same on every redelivery of the event."
        ),
        header(
            "webhook-timestamp",
            "Unix seconds when this attempt was signed."
        ),
        header(
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the \
             base64-decoded part of the `whsec_` secret; several, space-separated, during a secret rotation."
        ),
    ]);
    let mut webhooks = serde_json::Map::new();
    for (event_type, summary) in crate::callbacks::MERCHANT_EVENTS {
        let envelope = serde_json::json!({
            "type": "object",
            "required": ["id", "type", "created_at", "data"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "type": {"type": "string", "const": event_type},
                "created_at": {"type": "string", "format": "date-time"},
                "data": {"$ref": "#/components/schemas/Order"}
            }
        });
        let operation = serde_json::json!({"post": {
            "tags": ["callbacks"],
            "summary": summary,
            "operationId": format!("callback_{}", event_type.replace('.', "_")),
            "parameters": parameters,
            "requestBody": {"required": true, "content": {"application/json": {"schema": envelope}}},
            "responses": {"2XX": {"description": "Delivered. Anything else, a timeout or a refused \
                                                  connection is retried with backoff for about a day."}}
        }});
        webhooks.insert((*event_type).to_owned(), operation);
    }
    serde_json::Value::Object(webhooks)
}
