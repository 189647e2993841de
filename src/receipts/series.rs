//! A biller's receipt series, configured by an admin: a form number (mẫu số) and a series
//! symbol (ký hiệu) per channel, or one for every channel without its own. A biller with none
//! gets the default series on its first paid bill (`issue`). A series, once it has receipts,
//! keeps them: series are added, never changed.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::http::error::{ConstraintRule, FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::pagination::Page;
use crate::http::{ApiResult, ErrorCode, Json, Path};
use crate::merchants::PartnerRole;
use crate::state::AppState;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[
    ConstraintRule {
        constraint: "receipt_series_symbol_key",
        code: ErrorCode::AlreadyExists,
        field: "series",
    },
    ConstraintRule {
        constraint: "receipt_series_channel_key",
        code: ErrorCode::AlreadyExists,
        field: "method",
    },
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_series, list_series))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeries {
    /// The channel it numbers: `wallet`, `provider`, `cash` or `counter_qr`; absent or null
    /// for every channel without a series of its own.
    pub method: Option<String>,
    /// The form number, 1 to 20 letters, digits, `-` and `/`.
    #[schema(example = "01BLP0-001")]
    pub form: String,
    /// The series symbol, 1 to 12 upper-case letters, digits, `-` and `/`, unique for the
    /// biller; not `BL-E` or `BL-T`, the defaults'. A series for every channel can be added
    /// only before the biller's first receipt (which makes the default one).
    #[schema(example = "BL-26E")]
    pub series: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Series {
    pub id: Uuid,
    pub method: Option<String>,
    pub form: String,
    pub series: String,
}

const METHODS: [&str; 4] = ["wallet", "provider", "cash", "counter_qr"];

fn symbol(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'/')
}

/// Add a receipt series to a biller (admins).
#[utoipa::path(post, path = "/v1/admin/billers/{id}/receipt-series", tag = "receipts", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NewSeries,
    responses(
        (status = 201, body = Series),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`already_exists`: the biller has this symbol, or a series for this channel"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_series(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(biller_id): Path<Uuid>,
    Json(new): Json<NewSeries>,
) -> ApiResult<(StatusCode, Json<Series>)> {
    crate::merchants::exists_as(&state.db, biller_id, PartnerRole::Biller).await?;
    FieldChecks::new()
        .check(
            new.method.as_deref().is_none_or(|m| METHODS.contains(&m)),
            "method",
            Message::FieldInvalidValue,
        )
        .check(symbol(&new.form, 20), "form", Message::FieldInvalidValue)
        .check(
            symbol(&new.series, 12) && !super::DEFAULT_SERIES.contains(&new.series.as_str()),
            "series",
            Message::FieldInvalidValue,
        )
        .finish()?;
    let series = sqlx::query_as!(
        Series,
        "INSERT INTO receipt_series (id, biller_id, method, form, series) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, method, form, series",
        Uuid::new_v4(),
        biller_id,
        new.method,
        new.form,
        new.series,
    )
    .fetch_one(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(series)))
}

/// A biller's receipt series (admins).
#[utoipa::path(get, path = "/v1/admin/billers/{id}/receipt-series", tag = "receipts", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<Series>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn list_series(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(biller_id): Path<Uuid>,
) -> ApiResult<Json<Page<Series>>> {
    crate::merchants::exists_as(&state.db, biller_id, PartnerRole::Biller).await?;
    let data = sqlx::query_as!(
        Series,
        "SELECT id, method, form, series FROM receipt_series WHERE biller_id = $1 ORDER BY form, series",
        biller_id,
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page {
        data,
        next_cursor: None,
    }))
}
