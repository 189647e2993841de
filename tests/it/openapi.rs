//! The committed OpenAPI document matches the code, tells every answer an operation can give,
//! and the docs page works offline.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::app::TestApp;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation of the generated document by `operationId`, with its method and path.
fn operations(document: &Value) -> HashMap<String, (String, String, Value)> {
    let mut operations = HashMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let id = operation["operationId"].as_str().unwrap().to_owned();
            let previous = operations.insert(
                id.clone(),
                (method.clone(), path.clone(), operation.clone()),
            );
            assert!(previous.is_none(), "operationId {id} is used twice");
        }
    }
    operations
}

/// A response, or what its `$ref` points at.
fn resolved<'a>(document: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => document
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} resolves")),
        None => response,
    }
}

#[test]
fn every_operation_documents_the_answers_its_shape_can_give() {
    let document = civicpay::router::openapi_document();
    assert_eq!(
        civicpay::openapi::unresolved_refs(&document),
        Vec::<String>::new(),
        "every $ref resolves"
    );
    for (id, (method, path, operation)) in operations(&document) {
        let name = format!("{id} ({} {path})", method.to_uppercase());
        let responses = operation["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let secured = operation["security"]
            .as_array()
            .is_some_and(|requirements| !requirements.is_empty());
        if secured {
            assert!(has("401"), "{name} needs credentials: 401");
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "422"] {
                assert!(has(status), "{name} takes a body: {status}");
            }
        }
        if parameters
            .iter()
            .any(|p| p["in"] == "header" && p["required"] == true)
        {
            assert!(has("400"), "{name} requires a header: 400");
        }
        if !parameters.is_empty() {
            assert!(has("422"), "{name} has parameters: 422");
        }
        if parameters.iter().any(|p| p["in"] == "path") {
            assert!(has("404"), "{name} has a path parameter: 404");
        }
        if parameters.iter().any(|p| p["name"] == "X-Payment-Pin") {
            assert!(has("429"), "{name} takes a PIN: 429 on lock-out");
        }
        if path.starts_with("/v1/") {
            assert!(has("503"), "{name} uses the database: 503");
        }
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = resolved(&document, response);
            let content = response["content"].as_object().unwrap();
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                vec!["application/problem+json"],
                "{name} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{name} {status}"
            );
            assert!(
                !response["description"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty(),
                "{name} {status} says when"
            );
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{name} {status}: Retry-After"
                );
            }
        }
    }
    let by_id = operations(&document);
    for (id, status) in [
        ("login", "429"),
        ("send_otp", "429"),
        ("track_publicly", "429"),
        ("set_pin", "429"),
        ("create_transfer", "429"),
        ("create_withdrawal", "429"),
        ("pay_order", "429"),
        ("pay_merchant", "429"),
        ("get_wallet", "403"),
        ("create_staff", "403"),
    ] {
        let (_, _, operation) = &by_id[id];
        assert!(operation["responses"][status].is_object(), "{id}: {status}");
    }
}

#[test]
fn each_create_operation_links_to_where_its_object_is_read() {
    let document = civicpay::router::openapi_document();
    let operations = operations(&document);
    for (create, link, read) in [
        ("create_topup", "getTopup", "get_topup"),
        ("create_withdrawal", "getWithdrawal", "get_withdrawal"),
        ("create_order", "getOrder", "get_order"),
        ("create_refund", "getOrder", "get_order"),
        ("pay_merchant", "getPaidOrder", "scanned_order"),
        ("submit_online", "getDossier", "get_dossier"),
        ("submit_online", "trackDossier", "track_publicly"),
        ("receive_at_counter", "getDossier", "get_dossier"),
        ("receive_at_counter", "trackDossier", "track_publicly"),
        ("rate", "getDossier", "get_dossier"),
        ("create_procedure", "getProcedure", "get_procedure"),
        ("create_bill", "getBill", "get_biller_bill"),
        ("pay_bill", "getPaidBill", "get_own_bill"),
    ] {
        let (_, _, operation) = &operations[create];
        let found = &operation["responses"]["201"]["links"][link];
        assert_eq!(found["operationId"], read, "{create} → {link}");
        let (_, _, target) = &operations[read];
        let target_parameters = target["parameters"].as_array().unwrap();
        for (parameter, expression) in found["parameters"].as_object().unwrap() {
            assert!(
                target_parameters
                    .iter()
                    .any(|p| p["name"] == parameter.as_str()),
                "{read} has the parameter {parameter} that {create} → {link} fills"
            );
            assert!(
                expression.as_str().unwrap().starts_with('$'),
                "{expression}"
            );
        }
    }
    // Every link anywhere names an operation that exists.
    for (id, (_, _, operation)) in &operations {
        for (status, response) in operation["responses"].as_object().unwrap() {
            let Some(links) = response["links"].as_object() else {
                continue;
            };
            for (name, link) in links {
                let target = link["operationId"].as_str().unwrap();
                assert!(
                    operations.contains_key(target),
                    "{id} {status} {name}: {target}"
                );
            }
        }
    }
}

#[test]
fn parameters_carry_their_constraints() {
    let document = civicpay::router::openapi_document();
    let schema = |path: &str, method: &str, name: &str| -> Value {
        let parameter = document["paths"][path][method]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has parameters"))
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has {name}"));
        let schema = &parameter["schema"];
        resolved(&document, schema).clone()
    };
    let year = schema("/v1/calendar/holidays", "get", "year");
    assert_eq!(year["minimum"], 2000);
    assert_eq!(year["maximum"], 2100);
    for (path, method) in [
        ("/v1/units", "get"),
        ("/v1/wallet/transactions", "get"),
        ("/v1/merchant/transactions", "get"),
        ("/v1/merchant/events", "get"),
        ("/v1/biller/transactions", "get"),
        ("/v1/dossiers", "get"),
        ("/v1/unit/dossiers", "get"),
        ("/v1/procedures", "get"),
    ] {
        let limit = schema(path, method, "limit");
        assert_eq!(limit["minimum"], 1, "{path}");
        assert_eq!(limit["maximum"], 100, "{path}");
        let cursor = document["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "cursor")
            .unwrap()
            .clone();
        assert_eq!(cursor["schema"]["type"], "string", "{path}");
        let said = cursor["description"].as_str().unwrap();
        assert!(
            said.contains("next_cursor") && said.contains("422"),
            "{said}"
        );
    }
    for (path, method, name) in [
        ("/v1/wallet/transactions", "get", "from"),
        ("/v1/wallet/transactions", "get", "to"),
        ("/v1/wallet/statement.csv", "get", "from"),
        ("/v1/wallet/statement.csv", "get", "to"),
        ("/v1/merchant/transactions", "get", "from"),
        ("/v1/merchant/transactions", "get", "to"),
        ("/v1/merchant/settlements/{date}", "get", "date"),
        ("/v1/biller/transactions", "get", "from"),
        ("/v1/biller/transactions", "get", "to"),
        ("/v1/biller/settlements/{date}", "get", "date"),
        ("/v1/admin/calendar/{date}", "put", "date"),
    ] {
        assert_eq!(
            schema(path, method, name)["format"],
            "date",
            "{path} {name}"
        );
    }
    for (path, method, name, value) in [
        ("/v1/wallet/transactions", "get", "kind", "transfer_in"),
        ("/v1/dossiers", "get", "status", "submitted"),
        ("/v1/unit/dossiers", "get", "status", "processing"),
        ("/v1/units", "get", "level", "commune"),
        ("/v1/procedures", "get", "level", "commune"),
        ("/v1/merchant/events", "get", "delivery_state", "failed"),
        ("/v1/merchant/events", "get", "type", "payment.succeeded"),
    ] {
        let values = schema(path, method, name)["enum"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{path} {name} is an enum"));
        assert!(
            values.iter().any(|v| v == value),
            "{path} {name}: {values:?}"
        );
    }
    let key = schema("/v1/wallet/transfers", "post", "Idempotency-Key");
    assert_eq!(key["minLength"], 1);
    assert_eq!(key["maxLength"], 255);
    let pin = schema("/v1/wallet/transfers", "post", "X-Payment-Pin");
    assert_eq!(pin["pattern"], "^[0-9]{6}$");
}

#[test]
fn the_committed_openapi_document_is_current() {
    let path = format!(
        "{}/{}",
        env!("CARGO_MANIFEST_DIR"),
        civicpay::openapi::COMMITTED_PATH
    );
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = civicpay::router::openapi_json();
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
        serde_json::from_str(&civicpay::router::openapi_json()).unwrap();
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
