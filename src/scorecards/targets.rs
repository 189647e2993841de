//! The scorecards' targets and band widths: DESIGN.md's defaults, changed by an admin.

use axum::extract::State;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::{ApiResult, Json};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_targets, put_targets))
}

/// Targets as fractions (`"0.96"`), band widths as fraction points below the target: green at
/// or above the target, yellow within `yellow_width` of it, orange within `orange_width`, red
/// below.
/// (Unknown members are ignored, so what `GET` answers, `updated_at` included, may be sent back
/// changed.)
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Targets {
    #[schema(value_type = String, example = "0.96")]
    pub on_time: Decimal,
    /// The online-filing target of a province or district (and their subtrees).
    #[schema(value_type = String, example = "0.30")]
    pub online_above_commune: Decimal,
    #[schema(value_type = String, example = "0.20")]
    pub online_commune: Decimal,
    /// Both cashless rates' (by count and by amount).
    #[schema(value_type = String, example = "0.05")]
    pub cashless: Decimal,
    #[schema(value_type = String, example = "0.15")]
    pub digitized: Decimal,
    #[schema(value_type = String, example = "0.93")]
    pub satisfaction: Decimal,
    #[schema(value_type = String, example = "0.05")]
    pub yellow_width: Decimal,
    #[schema(value_type = String, example = "0.15")]
    pub orange_width: Decimal,
}

/// The targets in force.
pub async fn load(conn: &mut PgConnection) -> Result<Targets, sqlx::Error> {
    sqlx::query_as!(
        Targets,
        "SELECT on_time, online_above_commune, online_commune, cashless, digitized, satisfaction,
                yellow_width, orange_width
         FROM scorecard_targets"
    )
    .fetch_one(conn)
    .await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetsAnswer {
    #[serde(flatten)]
    pub targets: Targets,
    pub updated_at: DateTime<Utc>,
}

/// The scorecards' targets and band widths (admins).
#[utoipa::path(get, path = "/v1/admin/scorecards/targets", tag = "scorecards", security(("bearer" = [])),
    responses((status = 200, body = TargetsAnswer), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn get_targets(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
) -> ApiResult<Json<TargetsAnswer>> {
    let mut conn = state.db.acquire().await?;
    let targets = load(&mut conn).await?;
    let updated_at = sqlx::query_scalar!("SELECT updated_at FROM scorecard_targets")
        .fetch_one(&mut *conn)
        .await?;
    Ok(Json(TargetsAnswer {
        targets,
        updated_at,
    }))
}

/// Replace the targets and band widths (admins): fractions from `"0"` to `"1"`, the orange
/// width at least the yellow one.
#[utoipa::path(put, path = "/v1/admin/scorecards/targets", tag = "scorecards", security(("bearer" = [])),
    request_body = Targets,
    responses(
        (status = 200, body = TargetsAnswer),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_targets(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Json(new): Json<Targets>,
) -> ApiResult<Json<TargetsAnswer>> {
    let fraction = |d: Decimal| d >= Decimal::ZERO && d <= Decimal::ONE && d.scale() <= 4;
    let invalid = Message::FieldInvalidValue;
    FieldChecks::new()
        .check(fraction(new.on_time), "on_time", invalid.clone())
        .check(
            fraction(new.online_above_commune),
            "online_above_commune",
            invalid.clone(),
        )
        .check(
            fraction(new.online_commune),
            "online_commune",
            invalid.clone(),
        )
        .check(fraction(new.cashless), "cashless", invalid.clone())
        .check(fraction(new.digitized), "digitized", invalid.clone())
        .check(fraction(new.satisfaction), "satisfaction", invalid.clone())
        .check(fraction(new.yellow_width), "yellow_width", invalid.clone())
        .check(
            fraction(new.orange_width) && new.orange_width >= new.yellow_width,
            "orange_width",
            invalid,
        )
        .finish()?;
    let updated_at = sqlx::query_scalar!(
        "UPDATE scorecard_targets SET on_time = $1, online_above_commune = $2, online_commune = $3,
                cashless = $4, digitized = $5, satisfaction = $6, yellow_width = $7,
                orange_width = $8, updated_at = now()
         RETURNING updated_at",
        new.on_time,
        new.online_above_commune,
        new.online_commune,
        new.cashless,
        new.digitized,
        new.satisfaction,
        new.yellow_width,
        new.orange_width,
    )
    .fetch_one(&state.db)
    .await?;
    Ok(Json(TargetsAnswer {
        targets: new,
        updated_at,
    }))
}
