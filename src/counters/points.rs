//! Collection points: the units whose counters may take a biller's bills (a power company's
//! bills at the communes it chose). A unit's own dossier fees need none: its counters always
//! take them.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::merchants::{self, PartnerRole};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_point, list_points))
        .routes(routes!(remove_point))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollectionPoint {
    pub unit_code: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionPoint {
    pub biller_id: Uuid,
    pub unit_code: String,
    pub created_at: DateTime<Utc>,
}

/// Make a unit a collection point of a biller: its counters take the biller's bills (admins).
#[utoipa::path(post, path = "/v1/admin/billers/{id}/collection-points", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NewCollectionPoint,
    responses(
        (status = 201, body = CollectionPoint),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such biller or unit"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`already_exists`"),
    ))]
async fn add_point(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(biller_id): Path<Uuid>,
    Json(new): Json<NewCollectionPoint>,
) -> ApiResult<(StatusCode, Json<CollectionPoint>)> {
    merchants::exists_as(&state.db, biller_id, PartnerRole::Biller).await?;
    if !crate::units::exists(&state.db, &new.unit_code).await? {
        return Err(ApiError::not_found(Message::UnitNotFound {
            code: new.unit_code,
        }));
    }
    let point = sqlx::query_as!(
        CollectionPoint,
        "INSERT INTO collection_points (biller_id, unit_code) VALUES ($1, $2)
         ON CONFLICT DO NOTHING RETURNING biller_id, unit_code, created_at",
        biller_id,
        new.unit_code,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| {
        ApiError::new(ErrorCode::AlreadyExists).with_detail(Message::CollectionPointExists)
    })?;
    Ok((StatusCode::CREATED, Json(point)))
}

/// A biller's collection points (admins).
#[utoipa::path(get, path = "/v1/admin/billers/{id}/collection-points", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Page<CollectionPoint>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_points(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(biller_id): Path<Uuid>,
) -> ApiResult<Json<Page<CollectionPoint>>> {
    merchants::exists_as(&state.db, biller_id, PartnerRole::Biller).await?;
    let data = sqlx::query_as!(
        CollectionPoint,
        "SELECT biller_id, unit_code, created_at FROM collection_points WHERE biller_id = $1 ORDER BY unit_code",
        biller_id,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page {
        data,
        next_cursor: None,
    }))
}

/// Stop a unit collecting a biller's bills (admins).
#[utoipa::path(delete, path = "/v1/admin/billers/{id}/collection-points/{unit_code}", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("unit_code" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn remove_point(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path((biller_id, unit_code)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    let removed = sqlx::query!(
        "DELETE FROM collection_points WHERE biller_id = $1 AND unit_code = $2",
        biller_id,
        unit_code,
    )
    .execute(&state.db)
    .await?
    .rows_affected();
    if removed == 0 {
        return Err(ApiError::not_found(Message::CollectionPointNotFound));
    }
    Ok(StatusCode::NO_CONTENT)
}
