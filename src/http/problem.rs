//! The edge every response passes: errors are rendered in the caller's language with the
//! request id, framework-made error responses (unknown route, wrong method) are turned into
//! problems, and a panicking handler is answered 500 instead of dropping the connection.

use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;

use super::error::{ApiError, ErrorCode, PROBLEM_JSON};
use super::messages::{Lang, Message};
use super::request_id::RequestId;

pub async fn render_problems(request: Request, next: Next) -> Response {
    let lang = Lang::negotiate(request.headers());
    let request_id = request.extensions().get::<RequestId>().cloned();
    let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, "handler panicked");
            return ApiError::new(ErrorCode::Internal)
                .render(lang, request_id.as_ref().map(RequestId::as_str));
        }
    };
    let error = match response.extensions().get::<ApiError>() {
        Some(error) => error.clone(),
        None if is_bare_error(&response) => bare_error(&response),
        None => return response,
    };
    let mut rendered = error.render(lang, request_id.as_ref().map(RequestId::as_str));
    // Keep what the framework said besides the body, such as `Allow` on a 405.
    for (name, value) in response.headers() {
        if !rendered.headers().contains_key(name) && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}

fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    (status.is_client_error() || status.is_server_error()) && !is_problem
}

fn bare_error(response: &Response) -> ApiError {
    let code = ErrorCode::for_status(response.status());
    let error = ApiError::new(code);
    if code == ErrorCode::NotFound {
        error.with_detail(Message::RouteNotFound)
    } else {
        error
    }
}
