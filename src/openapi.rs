//! The OpenAPI 3.1 document, generated from the handlers' annotations. It is served at
//! `/openapi.json`, rendered at `/docs` and committed at `openapi/openapi.json`; a test fails
//! when the committed copy drifts from what the code generates. The router hands this module
//! what its routes generate (`router::openapi_document`), so this module needs no router.

use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::ErrorCode;
use crate::http::error::{Problem, ProblemField};
use crate::wallet::TransactionKind;

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
        (name = "bills", description = "Bills: billers and their API, dossier fees, the citizen's one list, paying once"),
        (name = "receipts", description = "Signed electronic receipts: public keys and verification"),
    ),
    // Schemas that only query parameters refer to: utoipa collects schemas from bodies, not
    // from `IntoParams`, so these are registered here (the `$ref` check below finds the next).
    components(schemas(Problem, ProblemField, TransactionKind)),
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
        let biller_key = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("bk_…")
            .build();
        components.add_security_scheme("biller_key", SecurityScheme::Http(biller_key));
    }
}

/// The document as committed and served: pretty JSON with a final newline.
pub fn document_json(generated: utoipa::openapi::OpenApi) -> String {
    let value = document(generated);
    let mut json = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    json.push('\n');
    json
}

/// The document: what the handlers' annotations generate (`generated`, the router's route
/// list with [`ApiDoc`] as its base), completed (see "Completing the generated document"
/// below), with the `webhooks`.
pub fn document(generated: utoipa::openapi::OpenApi) -> Value {
    let mut value = serde_json::to_value(&generated).expect("the OpenAPI document serializes");
    complete(&mut value);
    value["webhooks"] = webhooks();
    value
}

/// The `$ref`s of `document` that point at nothing in it (none should).
pub fn unresolved_refs(document: &Value) -> Vec<String> {
    fn collect<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(members) => {
                if let Some(Value::String(reference)) = members.get("$ref") {
                    found.push(reference.as_str());
                }
                for member in members.values() {
                    collect(member, found);
                }
            }
            Value::Array(items) => {
                for item in items {
                    collect(item, found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    collect(document, &mut found);
    found
        .into_iter()
        .filter(|reference| {
            reference
                .strip_prefix('#')
                .and_then(|pointer| document.pointer(pointer))
                .is_none()
        })
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Completing the generated document.
//
// Some answers do not depend on what an operation does but on its shape: one that needs
// credentials can answer 401, one that takes a body 400 and 413, one under `/v1` 503 when the
// database is down. They are added here to every operation of that shape, once, rather than in
// each handler's annotation. (A utoipa `Modify` on `ApiDoc` would not do: modifiers run before
// the routes' paths are merged into the document.) A status a handler documents itself is kept
// as written; it only gets a description or the `Retry-After` header when it lacks them, and a
// 400 the codes it forgot.
// ---------------------------------------------------------------------------------------------

/// The HTTP methods a path item holds operations under.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The shared problem responses, `components.responses.{name}`: (code, name, when), under
/// the code's status.
const SHARED_RESPONSES: &[(ErrorCode, &str, &str)] = &[
    (
        ErrorCode::Unauthenticated,
        "Unauthenticated",
        "no credentials, or expired or invalid ones.",
    ),
    (
        ErrorCode::Forbidden,
        "Forbidden",
        "authenticated, but the caller's role may not use this route or action.",
    ),
    (
        ErrorCode::NotFound,
        "NotFound",
        "no such object, or it is outside the caller's scope.",
    ),
    (
        ErrorCode::BodyTooLarge,
        "PayloadTooLarge",
        "the body is over the server's limit (1 MiB unless configured otherwise).",
    ),
    (
        ErrorCode::ValidationFailed,
        "ValidationFailed",
        "well-formed but invalid values, each named in `errors`. A `cursor` that is not a \
         `next_cursor` this list gave is one of them.",
    ),
    (
        ErrorCode::ServiceUnavailable,
        "ServiceUnavailable",
        "a dependency is down (the database; the SMS sender or the identity verifier where one \
         is used). Try again after `Retry-After` seconds when given.",
    ),
];

/// A problem's description: its code, then when it is answered.
fn said(code: ErrorCode, when: &str) -> String {
    format!("`{}`: {when}", code.as_str())
}

/// `bearer` operations every role may call: they never answer 403. Every other `bearer`
/// operation admits some roles only (`Caller<Citizens>`, `Caller<Officers>`, `Caller<Admins>`...)
/// and answers the others 403.
const ANY_ROLE: &[(&str, &str)] = &[
    ("get", "/v1/me"),
    ("patch", "/v1/me"),
    ("get", "/v1/dossiers/{id}"),
];

/// Where a rate limit or the payment-PIN lock-out answers 429 with `Retry-After`: these, and
/// every operation that takes `X-Payment-Pin` ([`PIN_LOCKED`]). Registration and the password
/// reset have no limit of their own to list: a one-time code dies after five wrong tries, and
/// the tries are answered 422 `otp_invalid`. (method, path, code, when).
const RATE_LIMITED: &[(&str, &str, ErrorCode, &str)] = &[
    (
        "post",
        "/v1/auth/login",
        ErrorCode::RateLimited,
        "too many failed logins for this phone or from this address; see `Retry-After`.",
    ),
    (
        "post",
        "/v1/auth/otp",
        ErrorCode::RateLimited,
        "too many codes asked for this phone, from this address, or in all; see `Retry-After`.",
    ),
    (
        "get",
        "/v1/public/dossiers/{code}",
        ErrorCode::RateLimited,
        "too many failed lookups from this address; see `Retry-After`.",
    ),
    (
        "put",
        "/v1/wallet/pin",
        ErrorCode::PaymentPinLocked,
        "five wrong PINs lock payments and PIN changes for 15 minutes; see `Retry-After`.",
    ),
];

/// The 429 of every operation that takes `X-Payment-Pin`.
const PIN_LOCKED: (ErrorCode, &str) = (
    ErrorCode::PaymentPinLocked,
    "five wrong PINs (PIN changes included) lock the wallet's payments for 15 minutes; see \
     `Retry-After`.",
);

/// A link from a create operation's 201 to where the created object is read back.
struct Link {
    /// The create operation's `operationId`.
    from: &'static str,
    name: &'static str,
    /// The read operation's `operationId`.
    to: &'static str,
    /// The read operation's parameters, as runtime expressions.
    parameters: &'static [(&'static str, &'static str)],
    description: &'static str,
}

/// Every create operation's links. Creates with nothing to read back by id are not here: a
/// merchant (only citizens read merchants, by scanning), a staff account, a transfer (it is in
/// the wallet's history), a registration (the new account reads itself at `/v1/me`), API keys
/// and webhook secrets.
const LINKS: &[Link] = &[
    Link {
        from: "create_topup",
        name: "getTopup",
        to: "get_topup",
        parameters: &[("id", "$response.body#/id")],
        description: "The top-up, to follow its status after the payment page.",
    },
    Link {
        from: "create_withdrawal",
        name: "getWithdrawal",
        to: "get_withdrawal",
        parameters: &[("id", "$response.body#/id")],
        description: "The withdrawal, to follow its payout.",
    },
    Link {
        from: "create_order",
        name: "getOrder",
        to: "get_order",
        parameters: &[("order_ref", "$response.body#/order_ref")],
        description: "The order, by the merchant's own reference.",
    },
    Link {
        from: "create_refund",
        name: "getOrder",
        to: "get_order",
        parameters: &[("order_ref", "$request.path.order_ref")],
        description: "The refunded order, its refunds included.",
    },
    Link {
        from: "pay_merchant",
        name: "getPaidOrder",
        to: "scanned_order",
        parameters: &[("code", "$response.body#/code")],
        description: "The order the payment created, as the app shows it.",
    },
    Link {
        from: "submit_online",
        name: "getDossier",
        to: "get_dossier",
        parameters: &[("id", "$response.body#/id")],
        description: "The dossier in full.",
    },
    Link {
        from: "submit_online",
        name: "trackDossier",
        to: "track_publicly",
        parameters: &[
            ("code", "$response.body#/code"),
            ("key", "$response.body#/tracking_key"),
        ],
        description: "Public tracking, with the code and tracking key of the reception slip.",
    },
    Link {
        from: "receive_at_counter",
        name: "getDossier",
        to: "get_dossier",
        parameters: &[("id", "$response.body#/id")],
        description: "The dossier in full.",
    },
    Link {
        from: "receive_at_counter",
        name: "trackDossier",
        to: "track_publicly",
        parameters: &[
            ("code", "$response.body#/code"),
            ("key", "$response.body#/tracking_key"),
        ],
        description: "Public tracking, with the code and tracking key of the reception slip.",
    },
    Link {
        from: "rate",
        name: "getDossier",
        to: "get_dossier",
        parameters: &[("id", "$request.path.id")],
        description: "The rated dossier, its rating included.",
    },
    Link {
        from: "create_procedure",
        name: "getProcedure",
        to: "get_procedure",
        parameters: &[("code", "$response.body#/code")],
        description: "The procedure as the catalogue shows it.",
    },
    Link {
        from: "create_bill",
        name: "getBill",
        to: "get_biller_bill",
        parameters: &[("reference", "$response.body#/reference")],
        description: "The bill, by the biller's own reference.",
    },
    Link {
        from: "pay_bill",
        name: "getPaidBill",
        to: "get_own_bill",
        parameters: &[("id", "$response.body#/bill_id")],
        description: "The bill a provider payment pays, to follow it.",
    },
];

/// Completes every operation of `document` (see above) and adds the shared responses.
fn complete(document: &mut Value) {
    for (code, name, when) in SHARED_RESPONSES {
        let slot = &mut document["components"]["responses"][*name];
        if slot.is_null() {
            *slot = problem(&said(*code, when), headers_for(code.status().as_str()));
        }
    }
    constrain_properties(document);
    constrain_years(document);
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if METHODS.contains(&method.as_str()) {
                constrain_parameters(path, operation);
                add_links(operation);
                complete_responses(method, path, operation);
            }
        }
    }
}

/// What about an operation decides the problem answers it gets besides those it documents.
struct OperationShape {
    /// It has any parameter at all.
    has_parameters: bool,
    /// It requires `Idempotency-Key`.
    idempotent: bool,
    /// It requires `X-Payment-Pin`.
    pin: bool,
    json_body: bool,
    takes_body: bool,
    /// Every security requirement asks for credentials.
    secured: bool,
    bearer: bool,
    /// Every role may call it ([`ANY_ROLE`]).
    any_role: bool,
    path_parameters: bool,
    /// The 429 it answers, if any: (code, when).
    rate_limit: Option<(ErrorCode, &'static str)>,
}

/// Adds the problem answers that follow from the operation's shape.
fn complete_responses(method: &str, path: &str, operation: &mut Value) {
    let shape = operation_shape(method, path, operation);
    let causes = bad_request_causes(&shape);
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    add_implied_responses(responses, &shape, &causes, path);
    describe_problems(responses);
}

/// (name, in, required) of each parameter of `operation`.
fn parameters_of(operation: &Value) -> Vec<(String, String, bool)> {
    operation["parameters"]
        .as_array()
        .map(|parameters| {
            parameters
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["in"].as_str().unwrap_or_default().to_owned(),
                        p["required"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads from `operation` (at `method` `path`) what [`complete_responses`] decides by.
fn operation_shape(method: &str, path: &str, operation: &Value) -> OperationShape {
    let parameters = parameters_of(operation);
    let required_header = |name: &str| {
        parameters.iter().any(|(n, place, required)| {
            place == "header" && *required && n.eq_ignore_ascii_case(name)
        })
    };
    let idempotent = required_header("Idempotency-Key");
    let pin = required_header("X-Payment-Pin");
    let body = operation.get("requestBody");
    // An `Idempotent` request reads a JSON body even where it has nothing to say (paying an
    // order), so a body can be refused there too.
    let json_body = idempotent
        || body
            .and_then(|b| b.get("content"))
            .and_then(Value::as_object)
            .is_some_and(|content| content.keys().any(|media_type| is_json(media_type)));
    let takes_body = json_body || body.is_some();
    let security = operation.get("security").and_then(Value::as_array);
    // An empty requirement (`{}`) would make credentials optional.
    let secured = security.is_some_and(|requirements| {
        !requirements.is_empty()
            && requirements
                .iter()
                .all(|r| r.as_object().is_some_and(|r| !r.is_empty()))
    });
    let bearer =
        security.is_some_and(|requirements| requirements.iter().any(|r| r.get("bearer").is_some()));
    let any_role = ANY_ROLE.iter().any(|(m, p)| *m == method && *p == path);
    let path_parameters = parameters.iter().any(|(_, place, _)| place == "path");
    let rate_limit = RATE_LIMITED
        .iter()
        .find(|(m, p, _, _)| *m == method && *p == path)
        .map(|(_, _, code, when)| (*code, *when))
        .or(pin.then_some(PIN_LOCKED));
    OperationShape {
        has_parameters: !parameters.is_empty(),
        idempotent,
        pin,
        json_body,
        takes_body,
        secured,
        bearer,
        any_role,
        path_parameters,
        rate_limit,
    }
}

/// The (code, why) of each 400 the operation can answer.
fn bad_request_causes(shape: &OperationShape) -> Vec<(&'static str, &'static str)> {
    let mut causes: Vec<(&'static str, &'static str)> = Vec::new();
    if shape.json_body {
        causes.push((ErrorCode::MalformedBody.as_str(), "the body is not JSON"));
        causes.push((
            ErrorCode::UnsupportedMediaType.as_str(),
            "`Content-Type` is not JSON",
        ));
    } else if shape.takes_body {
        causes.push((
            ErrorCode::MalformedBody.as_str(),
            "the body could not be read",
        ));
    }
    if shape.idempotent {
        causes.push((
            ErrorCode::IdempotencyKeyRequired.as_str(),
            "`Idempotency-Key` missing, empty or over 255 characters",
        ));
    }
    if shape.pin {
        causes.push((
            ErrorCode::PaymentPinRequired.as_str(),
            "`X-Payment-Pin` missing",
        ));
    }
    causes
}

/// Adds to `responses` the 400 of `causes` and the other problems `shape` implies.
fn add_implied_responses(
    responses: &mut Map<String, Value>,
    shape: &OperationShape,
    causes: &[(&str, &str)],
    path: &str,
) {
    if !causes.is_empty() {
        add_bad_request(responses, causes);
    }
    if shape.secured {
        add_shared(responses, ErrorCode::Unauthenticated);
    }
    if shape.bearer && !shape.any_role {
        add_shared(responses, ErrorCode::Forbidden);
    }
    if shape.path_parameters {
        add_shared(responses, ErrorCode::NotFound);
    }
    if shape.takes_body {
        add_shared(responses, ErrorCode::BodyTooLarge);
    }
    // Any parameter can be refused: a NUL in it, a year out of range, a value of the wrong type.
    if shape.takes_body || shape.has_parameters {
        add_shared(responses, ErrorCode::ValidationFailed);
    }
    if let Some((code, when)) = shape.rate_limit {
        let description = said(code, when);
        let status = code.status();
        add(
            responses,
            status.as_str(),
            problem(&description, headers_for(status.as_str())),
            &description,
        );
    }
    // Everything under /v1 reads or writes the database.
    if path.starts_with("/v1/") {
        add_shared(responses, ErrorCode::ServiceUnavailable);
    }
}

/// A problem a handler documents without saying when (a bare 409) still says something, and
/// every one carries the headers of its status (`/health/ready`'s 503 its `Retry-After`).
fn describe_problems(responses: &mut Map<String, Value>) {
    for (status, response) in responses.iter_mut() {
        let is_problem = status.starts_with('4') || status.starts_with('5');
        if !is_problem || response.get("$ref").is_some() {
            continue;
        }
        if response["description"].as_str().is_none_or(str::is_empty) {
            response["description"] = Value::from(match status.as_str() {
                "409" => "The state forbids it; `code` says how.",
                _ => "`code` says what went wrong.",
            });
        }
        if let Some(headers) = headers_for(status)
            && response.get("headers").is_none()
        {
            response["headers"] = headers;
        }
    }
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// Adds the shared response of `code`, under its status, as a `$ref` to
/// `components.responses`.
fn add_shared(responses: &mut Map<String, Value>, code: ErrorCode) {
    let (name, when) = SHARED_RESPONSES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, name, when)| (*name, *when))
        .expect("a shared response for each code added");
    let reference = json!({"$ref": format!("#/components/responses/{name}")});
    add(
        responses,
        code.status().as_str(),
        reference,
        &said(code, when),
    );
}

/// Adds `response` under `status`, unless the operation documents that status itself: that
/// response is kept, only given `description` if it has none.
fn add(responses: &mut Map<String, Value>, status: &str, response: Value, description: &str) {
    let Some(documented) = responses.get_mut(status) else {
        responses.insert(status.to_owned(), response);
        return;
    };
    if documented.get("$ref").is_some() {
        return;
    }
    if documented["description"].as_str().is_none_or(str::is_empty) {
        documented["description"] = Value::from(description);
    }
}

/// Adds the 400 of `causes` (code, why), or the codes a documented 400 does not name yet.
fn add_bad_request(responses: &mut Map<String, Value>, causes: &[(&str, &str)]) {
    fn describe(causes: &[(&str, &str)]) -> String {
        causes
            .iter()
            .map(|(code, why)| format!("`{code}` ({why})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    let Some(documented) = responses.get_mut("400") else {
        responses.insert("400".to_owned(), problem(&describe(causes), None));
        return;
    };
    if documented.get("$ref").is_some() {
        return;
    }
    let said = documented["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let missing: Vec<(&str, &str)> = causes
        .iter()
        .copied()
        .filter(|(code, _)| !said.contains(&format!("`{code}`")))
        .collect();
    if missing.is_empty() {
        return;
    }
    documented["description"] = Value::from(if said.is_empty() {
        describe(&missing)
    } else {
        format!("{said}; also {}", describe(&missing))
    });
}

/// A problem response: `application/problem+json` with the Problem schema.
fn problem(description: &str, headers: Option<Value>) -> Value {
    let mut response = json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    });
    if let Some(headers) = headers {
        response["headers"] = headers;
    }
    response
}

/// The headers a problem of `status` carries.
fn headers_for(status: &str) -> Option<Value> {
    match status {
        "401" => Some(json!({"WWW-Authenticate": {
            "description": "`Bearer`.",
            "schema": {"type": "string"}
        }})),
        "429" | "503" => Some(json!({"Retry-After": {
            "description": "Seconds to wait before trying again (on a 503, when known).",
            "schema": {"type": "integer", "minimum": 1}
        }})),
        _ => None,
    }
}

/// The constraints of parameters that their Rust types do not carry: the headers every
/// money-moving operation shares, and string parameters with a closed set of values.
fn constrain_parameters(path: &str, operation: &mut Value) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters.iter_mut() {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        let place = parameter["in"].as_str().unwrap_or_default().to_owned();
        let (constraints, description) = match (place.as_str(), name.as_str()) {
            ("header", "Idempotency-Key") => (
                json!({"minLength": 1, "maxLength": 255}),
                "1 to 255 characters, one per request you mean, kept 24 hours: a retry with the \
                 same key and body replays the first answer (`Idempotent-Replayed: true`), with \
                 another body it is 422 `idempotency_key_reused`.",
            ),
            ("header", "X-Payment-Pin") => (
                json!({"pattern": "^[0-9]{6}$"}),
                "The wallet's 6-digit payment PIN. A wrong one is 422 `payment_pin_invalid` \
                 (with `attempts_left`); the fifth wrong one locks payments for 15 minutes (429).",
            ),
            ("path", "provider") => (
                json!({"enum": ["sandbox", "vnpay"]}),
                "`sandbox` (development only) or `vnpay`; one not enabled is 404.",
            ),
            ("query", "type") if path == "/v1/biller/events" => {
                let types: Vec<&str> = crate::callbacks::BILLER_EVENTS
                    .iter()
                    .map(|(event_type, _)| *event_type)
                    .collect();
                (json!({"enum": types}), "One event type.")
            }
            ("query", "type") if path == "/v1/merchant/events" => {
                let types: Vec<&str> = crate::callbacks::MERCHANT_EVENTS
                    .iter()
                    .map(|(event_type, _)| *event_type)
                    .collect();
                (json!({"enum": types}), "One event type.")
            }
            _ => continue,
        };
        if let (Some(schema), Value::Object(constraints)) =
            (parameter["schema"].as_object_mut(), constraints)
        {
            for (key, value) in constraints {
                schema.entry(key).or_insert(value);
            }
        }
        if parameter["description"].as_str().is_none_or(str::is_empty) {
            parameter["description"] = Value::from(description);
        }
    }
}

/// A date (`YYYY-MM-DD`) in the years clients may name (`http::dates::YEARS`, 2000-2100).
const DATE_PATTERN: &str = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// An instant whose date is in those years; the rest is `format: date-time`'s.
const DATE_TIME_PATTERN: &str = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T";

/// Every string schema of the document with `format: date` or `date-time` (parameters,
/// bodies and answers alike) gets the year range the server reads, as a pattern.
fn constrain_years(value: &mut Value) {
    match value {
        Value::Object(members) => {
            let pattern = match members.get("format").and_then(Value::as_str) {
                Some("date") => Some(DATE_PATTERN),
                Some("date-time") => Some(DATE_TIME_PATTERN),
                _ => None,
            };
            if let Some(pattern) = pattern {
                members
                    .entry("pattern")
                    .or_insert_with(|| Value::from(pattern));
            }
            members.values_mut().for_each(constrain_years);
        }
        Value::Array(items) => items.iter_mut().for_each(constrain_years),
        _ => {}
    }
}

/// Constraints of request properties that their Rust types do not carry: (schema, JSON
/// pointer below its `properties` or "" for the schema itself, constraints). An `enum` given here replaces the property's
/// `$ref` (or its `oneOf` of null and a `$ref`): the request takes fewer values than the type it
/// shares with the answers.
fn property_constraints() -> Vec<(&'static str, &'static str, Value)> {
    let events: Vec<&str> = crate::callbacks::MERCHANT_EVENTS
        .iter()
        .map(|(event_type, _)| *event_type)
        .collect();
    let events = json!({"enum": events});
    let biller_events: Vec<&str> = crate::callbacks::BILLER_EVENTS
        .iter()
        .map(|(event_type, _)| *event_type)
        .collect();
    let biller_events = json!({"enum": biller_events});
    let name = |max: usize| json!({"minLength": 1, "maxLength": max, "pattern": "\\S"});
    // Registered in production only for https, and never to a user name or password.
    let callback_url = json!({"format": "uri", "pattern": "^https://[^/?#@\\s]+(/|$)"});
    let mut constraints = vec![
        // The address goes with the method: required for postal, absent or null for counter.
        (
            "Delivery",
            "",
            json!({"oneOf": [
                {"properties": {"method": {"const": "counter"}, "address": {"type": "null"}}},
                {"properties": {"method": {"const": "postal"}, "address": {"type": "string"}},
                 "required": ["address"]},
            ]}),
        ),
        ("NewMerchant", "/callback_url", callback_url.clone()),
        ("NewBiller", "/callback_url", callback_url.clone()),
        ("ProfileUpdate", "/callback_url", callback_url),
        ("NewMerchant", "/name", name(100)),
        (
            "NewMerchant",
            "/code",
            json!({"pattern": "^[A-Z0-9]{3,20}$"}),
        ),
        ("NewMerchant", "/events/items", events.clone()),
        ("NewBiller", "/events/items", biller_events),
        ("NewBiller", "/name", name(100)),
        // Dossier-fee billers come with their unit.
        (
            "NewBiller",
            "/kind",
            json!({"type": "string", "enum": ["electricity", "water", "sanitation", "tuition", "other"]}),
        ),
        ("NewBiller", "/code", json!({"pattern": "^[A-Z0-9]{3,20}$"})),
        ("NewBiller", "/tax_code", name(20)),
        ("NewBillingAccount", "/customer_code", name(64)),
        ("NewBillingAccount", "/label", name(100)),
        ("NewBillRequest", "/reference", name(64)),
        ("NewBillRequest", "/customer_code", name(64)),
        ("NewBillRequest", "/payer_name", name(200)),
        ("NewBillItem", "/name", name(200)),
        (
            "NewSeries",
            "/form",
            json!({"pattern": "^[A-Z0-9/-]{1,20}$"}),
        ),
        (
            "NewSeries",
            "/series",
            json!({"pattern": "^[A-Z0-9/-]{1,12}$", "not": {"enum": ["BL-E", "BL-T"]}}),
        ),
        (
            "NewSeries",
            "/method",
            json!({"type": ["string", "null"], "enum": ["wallet", "provider", "cash", "counter_qr", null]}),
        ),
        // A provider is named with `source: provider` and only then.
        (
            "PayBillRequest",
            "",
            json!({"oneOf": [
                {"properties": {"source": {"const": "provider"}, "provider": {"type": "string"}},
                 "required": ["source", "provider"]},
                {"properties": {"source": {"const": "wallet"}, "provider": {"type": "null"}}},
            ]}),
        ),
        ("ProfileUpdate", "/events/items", events),
        (
            "NewStaff",
            "/role",
            json!({"type": "string", "enum": ["officer", "supervisor", "admin"]}),
        ),
        (
            "NewProcedure",
            "/code",
            json!({"pattern": "^[0-9A-Za-z][0-9A-Za-z.\\-]{2,39}$"}),
        ),
        // District units exist, but no procedure is handled at district level (any more).
        (
            "NewProcedure",
            "/level",
            json!({"type": "string", "enum": ["province", "commune"]}),
        ),
        (
            "ProcedureUpdate",
            "/level",
            json!({"type": ["string", "null"], "enum": ["province", "commune", null]}),
        ),
    ];
    for procedure in ["NewProcedure", "ProcedureUpdate"] {
        constraints.extend([
            (procedure, "/name", name(300)),
            (procedure, "/field", name(100)),
            (
                procedure,
                "/working_days",
                json!({"minimum": 1, "maximum": 365}),
            ),
            (
                procedure,
                "/working_hours",
                json!({"minimum": 1, "maximum": 40}),
            ),
            (procedure, "/required_documents", json!({"maxItems": 50})),
            (procedure, "/fees", json!({"maxItems": 20})),
        ]);
    }
    constraints.extend([
        ("RequiredDocument", "/code", name(50)),
        ("RequiredDocument", "/name", name(300)),
        ("FeeItem", "/name", name(300)),
        (
            "FeeItem",
            "/amount",
            json!({"minimum": 1, "maximum": crate::domain::money::MAX_AMOUNT}),
        ),
    ]);
    constraints
}

fn constrain_properties(document: &mut Value) {
    for (schema, pointer, constraints) in property_constraints() {
        let schema_value = &mut document["components"]["schemas"][schema];
        let target = if pointer.is_empty() {
            Some(schema_value)
        } else {
            schema_value["properties"].pointer_mut(pointer)
        };
        let Some(property) = target.and_then(Value::as_object_mut) else {
            panic!("no property {schema}{pointer} to constrain in the OpenAPI document");
        };
        let Value::Object(constraints) = constraints else {
            unreachable!("constraints are objects");
        };
        if constraints.contains_key("enum") {
            property.remove("$ref");
            property.remove("oneOf");
        }
        property.extend(constraints);
    }
}

/// Adds the operation's [`LINKS`] to its 201 response.
fn add_links(operation: &mut Value) {
    let Some(id) = operation["operationId"].as_str().map(str::to_owned) else {
        return;
    };
    for link in LINKS.iter().filter(|link| link.from == id) {
        let Some(created) = operation.pointer_mut("/responses/201") else {
            continue;
        };
        let parameters: Map<String, Value> = link
            .parameters
            .iter()
            .map(|(name, expression)| ((*name).to_owned(), Value::from(*expression)))
            .collect();
        created["links"][link.name] = json!({
            "operationId": link.to,
            "parameters": parameters,
            "description": link.description,
        });
    }
}

/// The OpenAPI 3.1 `webhooks` object: each callback a merchant or biller may receive, with the
/// Standard Webhooks headers and the event envelope whose `data` is the order (or the bill). (utoipa 5 has no
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
    let merchant_events = crate::callbacks::MERCHANT_EVENTS
        .iter()
        .map(|e| (e, "Order"));
    let biller_events = crate::callbacks::BILLER_EVENTS.iter().map(|e| (e, "Bill"));
    for ((event_type, summary), data) in merchant_events.chain(biller_events) {
        let envelope = serde_json::json!({
            "type": "object",
            "required": ["id", "type", "created_at", "data"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "type": {"type": "string", "const": event_type},
                "created_at": {"type": "string", "format": "date-time"},
                "data": {"$ref": format!("#/components/schemas/{data}")}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ref_of_the_document_resolves() {
        assert_eq!(
            unresolved_refs(&crate::router::openapi_document()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_ref_to_nothing_is_found() {
        let document = json!({
            "components": {"schemas": {"Known": {"type": "string"}}},
            "paths": {"/x": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Missing"}}}},
                "201": {"content": {"application/json": {"schema": {"items": {"$ref": "#/components/schemas/Known"}}}}}
            }}}}
        });
        assert_eq!(
            unresolved_refs(&document),
            vec!["#/components/schemas/Missing".to_owned()]
        );
    }

    #[test]
    fn every_table_names_operations_that_exist() {
        let document = crate::router::openapi_document();
        let mut ids = std::collections::HashSet::new();
        for item in document["paths"].as_object().unwrap().values() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(METHODS.contains(&method.as_str()), "{method}");
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id), "operation ids are unique");
            }
        }
        for link in LINKS {
            assert!(ids.contains(link.from), "{}", link.from);
            assert!(ids.contains(link.to), "{}", link.to);
        }
        for (method, path) in ANY_ROLE {
            assert!(
                document["paths"][*path][*method].is_object(),
                "{method} {path}"
            );
        }
        for (method, path, _, _) in RATE_LIMITED {
            assert!(
                document["paths"][*path][*method].is_object(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_documented_response_is_kept_and_completed() {
        let mut operation = json!({
            "operationId": "pay",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": true,
                            "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "security": [{"bearer": []}],
            "responses": {
                "201": {"description": ""},
                "400": problem("`idempotency_key_required`", None),
                "422": problem("", None),
            }
        });
        complete_responses("post", "/v1/pay", &mut operation);
        let responses = &operation["responses"];
        let bad_request = responses["400"]["description"].as_str().unwrap();
        assert!(
            bad_request.starts_with("`idempotency_key_required`; also "),
            "{bad_request}"
        );
        assert!(bad_request.contains("`malformed_body`"), "{bad_request}");
        assert!(!responses["422"]["description"].as_str().unwrap().is_empty());
        assert!(responses["422"].get("$ref").is_none());
        for (status, name) in [
            ("401", "Unauthenticated"),
            ("403", "Forbidden"),
            ("413", "PayloadTooLarge"),
            ("503", "ServiceUnavailable"),
        ] {
            assert_eq!(
                responses[status]["$ref"],
                format!("#/components/responses/{name}")
            );
        }
        assert!(responses.get("404").is_none(), "no path parameter");
        assert!(responses.get("429").is_none(), "no PIN, no listed limit");
    }
}
