//! The citizen's rating of how a dossier was handled: once, after the result was returned.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::Status;
use super::visible_to;
use crate::auth::Caller;
use crate::auth::access::Citizens;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rate))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rating {
    /// 1 (poor) to 5 (excellent).
    pub score: i32,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRating {
    /// A whole number, 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub score: i32,
    /// At most 1000 characters once trimmed.
    #[schema(max_length = 1000)]
    pub comment: Option<String>,
}

/// Rate a returned dossier (its owner, once).
#[utoipa::path(post, path = "/v1/dossiers/{id}/rating", tag = "dossiers", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NewRating,
    responses(
        (status = 201, body = Rating),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`invalid_transition` before the result is returned; `already_exists` when rated"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn rate(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Path(id): Path<Uuid>,
    Json(rating): Json<NewRating>,
) -> ApiResult<(StatusCode, Json<Rating>)> {
    visible_to(&state.db, &caller.scope(), id).await?;
    let comment = rating
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    FieldChecks::new()
        .check(
            (1..=5).contains(&rating.score),
            "score",
            Message::FieldOutOfRange { min: 1, max: 5 },
        )
        .check(
            comment.is_none_or(|c| c.chars().count() <= 1000),
            "comment",
            Message::TextLength { min: 0, max: 1000 },
        )
        .finish()?;
    let mut tx = state.db.begin().await?;
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: Status" FROM dossiers WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if status != Status::Returned {
        return Err(ApiError::new(ErrorCode::InvalidTransition)
            .with_extra("current_status", status.as_str())
            .with_extra("allowed_actions", serde_json::json!([])));
    }
    let saved = sqlx::query_as!(
        Rating,
        "INSERT INTO dossier_ratings (dossier_id, score, comment) VALUES ($1, $2, $3)
         ON CONFLICT (dossier_id) DO NOTHING
         RETURNING score, comment, created_at",
        id,
        rating.score,
        comment,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::AlreadyExists))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
