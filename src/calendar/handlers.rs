//! The calendar over HTTP: anyone may read a year's exceptions; admins add, change and remove
//! them. A change applies to due times computed from then on; those already set stay.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::DayKind;
use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::http::dates::{self, Day};
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_days))
        .routes(routes!(put_day, delete_day))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    #[schema(example = "Tết Nguyên đán Bính Ngọ")]
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// A calendar year, 2000 to 2100, e.g. 2026.
    #[serde(deserialize_with = "dates::year")]
    #[param(minimum = 2000, maximum = 2100)]
    pub year: i32,
}

/// A year's holidays, days off and make-up working days (weekends are not listed).
#[utoipa::path(get, path = "/v1/calendar/holidays", tag = "calendar",
    params(YearQuery),
    responses((status = 200, body = Page<CalendarDay>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_days(
    State(state): State<AppState>,
    Query(query): Query<YearQuery>,
) -> ApiResult<Json<Page<CalendarDay>>> {
    let first = NaiveDate::from_ymd_opt(query.year, 1, 1)
        .ok_or_else(|| ApiError::invalid_field("year", dates::year_refused_message()))?;
    let days = sqlx::query_as!(
        CalendarDay,
        r#"SELECT day AS date, kind AS "kind: DayKind", name FROM calendar_days
           WHERE day >= $1 AND day < ($1 + interval '1 year')::date ORDER BY day"#,
        first,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page {
        data: days,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DaySetting {
    pub kind: DayKind,
    pub name: String,
}

/// Set a day as a holiday, a day off or a make-up working day (admins).
#[utoipa::path(put, path = "/v1/admin/calendar/{date}", tag = "calendar", security(("bearer" = [])),
    params(("date" = NaiveDate, Path, description = "YYYY-MM-DD")),
    request_body = DaySetting,
    responses(
        (status = 200, body = CalendarDay),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json",
         description = "A make-up working day must be a Saturday or Sunday; a day off a weekday"),
    ))]
async fn put_day(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(Day(date)): Path<Day>,
    Json(setting): Json<DaySetting>,
) -> ApiResult<Json<CalendarDay>> {
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    let kind_fits_day = match setting.kind {
        DayKind::WorkingDay => weekend,
        DayKind::DayOff => !weekend,
        DayKind::Holiday => true,
    };
    let name = setting.name.trim();
    FieldChecks::new()
        .check(kind_fits_day, "kind", Message::FieldInvalidValue)
        .check(
            length_within(name, 1, 200),
            "name",
            Message::TextLength { min: 1, max: 200 },
        )
        .finish()?;
    let day = sqlx::query_as!(
        CalendarDay,
        r#"INSERT INTO calendar_days (day, kind, name) VALUES ($1, $2, $3)
           ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name
           RETURNING day AS date, kind AS "kind: DayKind", name"#,
        date,
        setting.kind as DayKind,
        name,
    )
    .fetch_one(&state.db)
    .await?;
    Ok(Json(day))
}

/// Remove a day's exception: it becomes an ordinary weekday or weekend day again (admins).
#[utoipa::path(delete, path = "/v1/admin/calendar/{date}", tag = "calendar", security(("bearer" = [])),
    params(("date" = NaiveDate, Path, description = "YYYY-MM-DD")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_day(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(Day(date)): Path<Day>,
) -> ApiResult<StatusCode> {
    let deleted = sqlx::query!("DELETE FROM calendar_days WHERE day = $1", date)
        .execute(&state.db)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    Ok(StatusCode::NO_CONTENT)
}
