//! Administrative units: the tree of provinces, (older) districts and communes with their
//! official codes. Dossiers are filed at a unit, staff are scoped to a unit's subtree, and
//! scorecards are computed by unit. Read-only over the API for now; the demo data loads Huế.

pub mod demo;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::error::{ConstraintRule, Problem};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[
    ConstraintRule {
        constraint: "units_pkey",
        code: ErrorCode::AlreadyExists,
        field: "code",
    },
    ConstraintRule {
        constraint: "units_code_format",
        code: ErrorCode::ValidationFailed,
        field: "code",
    },
    ConstraintRule {
        constraint: "units_name_length",
        code: ErrorCode::ValidationFailed,
        field: "name",
    },
    ConstraintRule {
        constraint: "units_level_valid",
        code: ErrorCode::ValidationFailed,
        field: "level",
    },
    ConstraintRule {
        constraint: "units_parent_by_level",
        code: ErrorCode::ValidationFailed,
        field: "parent_code",
    },
    ConstraintRule {
        constraint: "units_parent_code_fkey",
        code: ErrorCode::ValidationFailed,
        field: "parent_code",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum UnitLevel {
    Province,
    /// Only in data from before 1 July 2025, when a district tier stood between the two.
    District,
    Commune,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unit {
    /// Official code: 2 digits for a province, 3 for a district, 5 for a commune.
    #[schema(example = "46")]
    pub code: String,
    #[schema(example = "Thành phố Huế")]
    pub name: String,
    pub level: UnitLevel,
    /// The unit one tier up; `null` for a province.
    pub parent_code: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnitWithChildren {
    #[serde(flatten)]
    pub unit: Unit,
    /// The units directly below, by code.
    pub children: Vec<Unit>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitFilter {
    /// Only the units directly below this one.
    pub parent_code: Option<String>,
    /// Only units of this level.
    pub level: Option<UnitLevel>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_units))
        .routes(routes!(get_unit))
}

/// List administrative units, by code.
#[utoipa::path(get, path = "/v1/units", tag = "units",
    params(UnitFilter, PageQuery),
    responses(
        (status = 200, body = Page<Unit>, description = "Units in code order"),
        (status = 422, body = Problem, content_type = "application/problem+json",
         description = "A filter, `limit` or `cursor` is invalid"),
    ))]
async fn list_units(
    State(state): State<AppState>,
    Query(filter): Query<UnitFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Unit>>> {
    let limit = page.limit()?;
    let after: Option<String> = page.after()?;
    let rows = sqlx::query_as!(
        Unit,
        r#"SELECT code, name, level AS "level: UnitLevel", parent_code
           FROM units
           WHERE ($1::text IS NULL OR parent_code = $1)
             AND ($2::text IS NULL OR level = $2)
             AND ($3::text IS NULL OR code > $3)
           ORDER BY code
           LIMIT $4"#,
        filter.parent_code,
        filter.level.map(UnitLevel::as_str),
        after,
        limit + 1,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |unit| unit.code.clone())))
}

/// One administrative unit with the units directly below it.
#[utoipa::path(get, path = "/v1/units/{code}", tag = "units",
    params(("code" = String, Path, description = "Official unit code")),
    responses(
        (status = 200, body = UnitWithChildren, description = "The unit and its children"),
        (status = 404, body = Problem, content_type = "application/problem+json",
         description = "No unit has this code"),
    ))]
async fn get_unit(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Json<UnitWithChildren>> {
    let unit = sqlx::query_as!(
        Unit,
        r#"SELECT code, name, level AS "level: UnitLevel", parent_code FROM units WHERE code = $1"#,
        code,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::not_found(Message::UnitNotFound { code: code.clone() }))?;
    let children = sqlx::query_as!(
        Unit,
        r#"SELECT code, name, level AS "level: UnitLevel", parent_code
           FROM units WHERE parent_code = $1 ORDER BY code"#,
        code,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(UnitWithChildren { unit, children }))
}

impl UnitLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitLevel::Province => "province",
            UnitLevel::District => "district",
            UnitLevel::Commune => "commune",
        }
    }
}

/// Whether `unit` is `ancestor` or lies anywhere below it.
pub async fn is_within(
    db: impl sqlx::PgExecutor<'_>,
    unit: &str,
    ancestor: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH RECURSIVE upward(code, parent_code, depth) AS (
               SELECT code, parent_code, 0 FROM units WHERE code = $1
               UNION ALL
               SELECT u.code, u.parent_code, upward.depth + 1
               FROM units u JOIN upward ON u.code = upward.parent_code
               WHERE upward.depth < 8
           )
           SELECT EXISTS (SELECT 1 FROM upward WHERE code = $2) AS "within!""#,
        unit,
        ancestor,
    )
    .fetch_one(db)
    .await
}

/// Whether a unit has this code.
pub async fn exists(db: &sqlx::PgPool, code: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM units WHERE code = $1) AS "exists!""#,
        code
    )
    .fetch_one(db)
    .await
}
