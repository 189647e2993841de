//! Liveness (the process answers) and readiness (it can serve: the database answers).

use std::time::Duration;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json};
use crate::state::AppState;

/// How long readiness waits for the database before calling it unreachable.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when answered 200.
    pub status: &'static str,
}

#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, body = Health, description = "The process is up")))]
pub async fn live() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, body = Health, description = "The database answers"),
        (status = 503, body = Problem, content_type = "application/problem+json",
         description = "The database cannot be reached"),
    ))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    let probe = sqlx::query_scalar!("SELECT 1 AS \"one!\"").fetch_one(&state.db);
    match tokio::time::timeout(READY_PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(Json(Health { status: "ok" })),
        Ok(Err(error)) => Err(unavailable(&error)),
        Err(_) => Err(unavailable(&"readiness probe timed out")),
    }
}

fn unavailable(cause: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(error = %cause, "not ready: database unreachable");
    ApiError::new(ErrorCode::ServiceUnavailable)
        .with_detail(Message::DatabaseUnavailable)
        .with_retry_after(5)
}
