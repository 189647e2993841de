//! Prometheus metrics: request counts and latency histograms by route template, method and
//! status. Every label takes few values whatever clients send, so nobody can grow the series
//! without bound: the route is the template (`/v1/units/{code}`), never the raw path (so no
//! personal data, a phone in a path, reaches the metrics either), `unmatched` when no route
//! matched; the method is one of the standard ones or `other`; the status is the three digits
//! the server itself chose.
//!
//! Operations data is not public. `/metrics` is served on a listener of its own
//! (`CIVICPAY_METRICS_BIND`, loopback by default) without a token, and on the API's listener
//! only when `CIVICPAY_METRICS_TOKEN` is set, to `Authorization: Bearer <token>` (compared in
//! constant time; anything else is 401). Without a token the API's `/metrics` answers 404 like
//! any unknown path.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, Opts, Registry, TextEncoder};

use crate::crypto::{constant_time_eq, sha256};
use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::{ApiError, ErrorCode};
use crate::state::AppState;

const UNMATCHED_ROUTE: &str = "unmatched";
const OTHER_METHOD: &str = "other";

/// The `method` label: the standard methods by name, anything a client invents as `other`.
pub fn method_label(method: &Method) -> &'static str {
    // Method names are case-sensitive: `get` is an invented method, not GET.
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => OTHER_METHOD,
    }
}

/// Times every request, counts it and writes one log line for it.
pub async fn observe_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    state
        .metrics
        .observe(method, &route, status.as_str(), elapsed.as_secs_f64());
    tracing::info!(
        method,
        route = %route,
        status = status.as_u16(),
        latency_us = elapsed.as_micros() as u64,
        "request answered"
    );
    response
}

/// The work waiting in the database, shared by every process: callbacks due now and those
/// given up on, the age of the oldest due one, pending top-ups and withdrawals, and top-ups
/// credited after they had expired. Read at scrape
/// time; left out if the database does not answer. Each count reads a partial index holding
/// only the rows it counts (`callback_deliveries_due_idx`, `callback_deliveries_failed_idx`,
/// `topups_pending_idx`, `topups_credited_after_expiry_idx`, `withdrawals_due_idx`), never
/// the delivery or top-up tables themselves, so a scrape costs what is waiting, not what has
/// ever been sent.
async fn queue_gauges(db: &sqlx::PgPool) -> Option<String> {
    let queues = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM callback_deliveries WHERE state = 'pending' AND next_attempt_at <= now()) AS "callbacks_due!",
             (SELECT count(*) FROM callback_deliveries WHERE state = 'failed') AS "callbacks_failed!",
             (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)), 0)::float8 FROM callback_deliveries
               WHERE state = 'pending' AND next_attempt_at <= now()) AS "callbacks_oldest_due_seconds!",
             (SELECT count(*) FROM topups WHERE status = 'pending') AS "topups_pending!",
             (SELECT count(*) FROM topups WHERE credited_after_expiry) AS "topups_credited_after_expiry!",
             (SELECT count(*) FROM withdrawals WHERE status = 'pending') AS "withdrawals_pending!""#
    )
    .fetch_one(db)
    .await
    .ok()?;
    let items = prometheus::IntGaugeVec::new(
        Opts::new(
            "civicpay_queue_items",
            "Work waiting in the database, by queue and state",
        ),
        &["queue", "state"],
    )
    .expect("valid metric definition");
    let oldest = prometheus::GaugeVec::new(
        Opts::new(
            "civicpay_queue_oldest_due_seconds",
            "How long the oldest due item has waited",
        ),
        &["queue"],
    )
    .expect("valid metric definition");
    for (queue, state, count) in [
        ("callbacks", "due", queues.callbacks_due),
        ("callbacks", "failed", queues.callbacks_failed),
        ("topups", "pending", queues.topups_pending),
        // Successes that arrived after the top-up had expired here (credited all the same):
        // worth an alert, since each means a provider's window and ours disagree.
        (
            "topups",
            "credited_after_expiry",
            queues.topups_credited_after_expiry,
        ),
        ("withdrawals", "pending", queues.withdrawals_pending),
    ] {
        items.with_label_values(&[queue, state]).set(count);
    }
    oldest
        .with_label_values(&["callbacks"])
        .set(queues.callbacks_oldest_due_seconds);
    let registry = Registry::new();
    registry.register(Box::new(items)).ok()?;
    registry.register(Box::new(oldest)).ok()?;
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buffer)
        .ok()?;
    String::from_utf8(buffer).ok()
}

/// Prometheus text exposition of this process's metrics. Served here, on the API's listener,
/// only when `CIVICPAY_METRICS_TOKEN` is configured and sent as the bearer token; the metrics
/// listener (`CIVICPAY_METRICS_BIND`, loopback by default) serves it without one.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = Problem, content_type = "application/problem+json",
         description = "A token is configured and this request does not carry it"),
        (status = 404, body = Problem, content_type = "application/problem+json",
         description = "No token is configured: metrics are served on the metrics listener only"),
    ))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.metrics_token.as_deref() else {
        return ApiError::not_found(Message::RouteNotFound).into_response();
    };
    if !bearer_matches(&headers, token) {
        return ApiError::new(ErrorCode::Unauthenticated).into_response();
    }
    scrape(State(state)).await
}

/// Whether `Authorization: Bearer <token>` carries exactly `token`. Both sides are hashed
/// first and the digests compared in constant time, so neither the token's content nor its
/// length shows in the time the comparison takes.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, presented)| presented.trim())
    else {
        return false;
    };
    constant_time_eq(&sha256(presented.as_bytes()), &sha256(token.as_bytes()))
}

/// `/metrics` on the metrics listener: no token asked, the listener's address is the guard.
pub async fn scrape(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render() + &queue_gauges(&state.db).await.unwrap_or_default(),
    )
        .into_response()
}
