//! The checks every error answer gets: problem+json, a stable code, a title and a detail.

use reqwest::StatusCode;
use serde_json::Value;

/// A problem+json answer, checked for the shape every error has.
pub struct ProblemResponse {
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl ProblemResponse {
    /// The `Retry-After` seconds a 429 or 503 carries.
    pub fn retry_after_secs(&self) -> u64 {
        self.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds")
    }

    pub fn field_errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .expect("validation problems list their fields")
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub async fn expect_problem(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> ProblemResponse {
    let actual_status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(actual_status, status, "body: {text}");
    assert_eq!(
        headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/problem+json"),
        "body: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("problem bodies are JSON");
    assert_eq!(body["code"], code, "body: {text}");
    assert_eq!(body["status"], status.as_u16(), "body: {text}");
    assert_eq!(body["type"], format!("urn:civicpay:problem:{code}"));
    for member in ["title", "detail"] {
        assert!(
            body[member].as_str().is_some_and(|s| !s.is_empty()),
            "{member} in {text}"
        );
    }
    ProblemResponse { headers, body }
}

/// A 422 `validation_failed` problem; returns the fields it names.
pub async fn expect_invalid_fields(response: reqwest::Response) -> Vec<String> {
    expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await
    .field_errors()
}

/// A 409 problem with this code.
pub async fn expect_conflict(response: reqwest::Response, code: &str) -> ProblemResponse {
    expect_problem(response, StatusCode::CONFLICT, code).await
}

/// A problem's body without its request id, which differs per request, to compare with others.
pub fn without_request_id(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("request_id");
    body
}
