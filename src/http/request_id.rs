//! Every request has an id: the caller's `x-request-id` when it is a sane token, otherwise a
//! new UUID. It is echoed on every response, carried by every log line of the request (through
//! its tracing span) and printed in 5xx problems, so a citizen's complaint can be traced.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_caller(value: &HeaderValue) -> Option<RequestId> {
        let text = value.to_str().ok()?;
        let sane = !text.is_empty()
            && text.len() <= MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        sane.then(|| RequestId(text.into()))
    }

    fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string().into())
    }
}

pub async fn assign_request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(RequestId::from_caller)
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let span = tracing::info_span!("request", request_id = id.as_str());
    let mut response = next.run(request).instrument(span).await;
    let header = HeaderValue::from_str(id.as_str()).expect("request ids are visible ASCII");
    response.headers_mut().insert(X_REQUEST_ID, header);
    response
}
