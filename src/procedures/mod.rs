//! The catalogue of administrative procedures (thủ tục hành chính): what a citizen can file,
//! at which level of unit, how long it takes, which documents it needs and what it costs.
//! Anyone may browse it; admins maintain it.

pub mod demo;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::auth::access::Admins;
use crate::calendar::ProcessingTime;
use crate::http::error::{ConstraintRule, FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;
use crate::units::UnitLevel;

pub static CONSTRAINT_RULES: &[ConstraintRule] = &[
    ConstraintRule {
        constraint: "procedures_pkey",
        code: ErrorCode::AlreadyExists,
        field: "code",
    },
    ConstraintRule {
        constraint: "procedures_code_format",
        code: ErrorCode::ValidationFailed,
        field: "code",
    },
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_procedures))
        .routes(routes!(get_procedure))
        .routes(routes!(create_procedure))
        .routes(routes!(update_procedure))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredDocument {
    /// Short code a submitted document names to answer this requirement.
    #[schema(example = "to_khai")]
    pub code: String,
    #[schema(example = "Tờ khai đăng ký khai sinh")]
    pub name: String,
    pub mandatory: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// phí: pays for a service.
    Fee,
    /// lệ phí: a state charge.
    Charge,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeItem {
    pub kind: FeeKind,
    pub name: String,
    /// đồng
    pub amount: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum FeeTiming {
    /// Billed when the dossier is received.
    OnReceipt,
    /// Billed by the officer's `request_payment`, before the result.
    BeforeResult,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Procedure {
    #[schema(example = "1.001193")]
    pub code: String,
    pub name: String,
    /// lĩnh vực, e.g. `Hộ tịch`.
    pub field: String,
    /// `commune` or `province`.
    pub level: UnitLevel,
    pub fully_online: bool,
    /// Processing time in working days; `null` for a same-day procedure counted in hours.
    pub working_days: Option<i32>,
    /// Processing time in office hours (07:30-11:30, 13:30-17:00).
    pub working_hours: Option<i32>,
    pub required_documents: Vec<RequiredDocument>,
    /// Empty for a free procedure.
    pub fees: Vec<FeeItem>,
    pub fee_timing: FeeTiming,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Procedure {
    pub fn processing_time(&self) -> ProcessingTime {
        match (self.working_days, self.working_hours) {
            (Some(days), _) => ProcessingTime::WorkingDays(days.unsigned_abs()),
            (None, Some(hours)) => ProcessingTime::WorkingHours(hours.unsigned_abs()),
            // The table's check makes one of them present.
            (None, None) => ProcessingTime::WorkingDays(1),
        }
    }

    pub fn mandatory_documents(&self) -> impl Iterator<Item = &RequiredDocument> {
        self.required_documents.iter().filter(|d| d.mandatory)
    }
}

/// A procedure as admins write it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProcedure {
    pub code: String,
    pub name: String,
    pub field: String,
    pub level: UnitLevel,
    #[serde(default)]
    pub fully_online: bool,
    pub working_days: Option<i32>,
    pub working_hours: Option<i32>,
    #[serde(default)]
    pub required_documents: Vec<RequiredDocument>,
    #[serde(default)]
    pub fees: Vec<FeeItem>,
    pub fee_timing: FeeTiming,
}

impl NewProcedure {
    fn check(&self) -> ApiResult<()> {
        let one_time_unit = self.working_days.is_some() != self.working_hours.is_some();
        let times_valid = match (self.working_days, self.working_hours) {
            (Some(days), None) => (1..=365).contains(&days),
            (None, Some(hours)) => (1..=40).contains(&hours),
            _ => true,
        };
        let mut codes: Vec<&str> = self
            .required_documents
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        codes.sort_unstable();
        let codes_distinct = codes.windows(2).all(|pair| pair[0] != pair[1]);
        let documents_valid = self.required_documents.len() <= 50
            && self
                .required_documents
                .iter()
                .all(|d| length_within(&d.code, 1, 50) && length_within(&d.name, 1, 300));
        let fees_valid = self.fees.len() <= 20
            && self.fees.iter().all(|f| {
                length_within(&f.name, 1, 300)
                    && (1..=crate::domain::money::MAX_AMOUNT).contains(&f.amount)
            });
        FieldChecks::new()
            .check(
                length_within(&self.name, 1, 300),
                "name",
                Message::TextLength { min: 1, max: 300 },
            )
            .check(
                length_within(&self.field, 1, 100),
                "field",
                Message::TextLength { min: 1, max: 100 },
            )
            .check(
                self.level != UnitLevel::District,
                "level",
                Message::FieldInvalidValue,
            )
            .check(
                one_time_unit,
                "working_days",
                Message::ProcessingTimeInOneUnit,
            )
            .check(times_valid, "working_days", Message::FieldInvalidValue)
            .check(
                codes_distinct,
                "required_documents",
                Message::DocumentCodesRepeated,
            )
            .check(
                documents_valid,
                "required_documents",
                Message::FieldInvalidValue,
            )
            .check(fees_valid, "fees", Message::FieldInvalidValue)
            .finish()
    }
}

/// What an admin changes; a processing time given in one unit replaces the other.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcedureUpdate {
    pub name: Option<String>,
    pub field: Option<String>,
    pub level: Option<UnitLevel>,
    pub fully_online: Option<bool>,
    pub working_days: Option<i32>,
    pub working_hours: Option<i32>,
    pub required_documents: Option<Vec<RequiredDocument>>,
    pub fees: Option<Vec<FeeItem>>,
    pub fee_timing: Option<FeeTiming>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcedureFilter {
    /// Words in the name (accents matter: `khai sinh`), or the start of the code.
    pub q: Option<String>,
    /// lĩnh vực, exactly.
    pub field: Option<String>,
    pub level: Option<UnitLevel>,
}

/// Inserts or replaces a procedure (the admin API and the demo data).
pub async fn save(conn: &mut PgConnection, procedure: &NewProcedure) -> ApiResult<Procedure> {
    sqlx::query!(
        "INSERT INTO procedures (code, name, field, level, fully_online, working_days, working_hours,
                                 required_documents, fees, fee_timing)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        procedure.code,
        procedure.name.trim(),
        procedure.field.trim(),
        procedure.level as UnitLevel,
        procedure.fully_online,
        procedure.working_days,
        procedure.working_hours,
        SqlJson(&procedure.required_documents) as _,
        SqlJson(&procedure.fees) as _,
        procedure.fee_timing as FeeTiming,
    )
    .execute(&mut *conn)
    .await?;
    load(conn, &procedure.code)
        .await?
        .ok_or_else(|| ApiError::internal("procedure row vanished"))
}

pub async fn load(conn: &mut PgConnection, code: &str) -> Result<Option<Procedure>, sqlx::Error> {
    let row = sqlx::query_as!(
        ProcedureRow,
        r#"SELECT code, name, field, level AS "level: UnitLevel", fully_online, working_days, working_hours,
                  required_documents AS "required_documents: SqlJson<Vec<RequiredDocument>>",
                  fees AS "fees: SqlJson<Vec<FeeItem>>", fee_timing AS "fee_timing: FeeTiming",
                  created_at, updated_at
           FROM procedures WHERE code = $1"#,
        code,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Procedure::from))
}

/// A row as the database holds it (the lists as JSON).
struct ProcedureRow {
    code: String,
    name: String,
    field: String,
    level: UnitLevel,
    fully_online: bool,
    working_days: Option<i32>,
    working_hours: Option<i32>,
    required_documents: SqlJson<Vec<RequiredDocument>>,
    fees: SqlJson<Vec<FeeItem>>,
    fee_timing: FeeTiming,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProcedureRow> for Procedure {
    fn from(r: ProcedureRow) -> Self {
        Procedure {
            code: r.code,
            name: r.name,
            field: r.field,
            level: r.level,
            fully_online: r.fully_online,
            working_days: r.working_days,
            working_hours: r.working_hours,
            required_documents: r.required_documents.0,
            fees: r.fees.0,
            fee_timing: r.fee_timing,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The catalogue, by code.
#[utoipa::path(get, path = "/v1/procedures", tag = "procedures",
    params(ProcedureFilter, PageQuery),
    responses((status = 200, body = Page<Procedure>), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_procedures(
    State(state): State<AppState>,
    Query(filter): Query<ProcedureFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Procedure>>> {
    let limit = page.limit()?;
    let after: Option<String> = page.after()?;
    let pattern = filter.q.as_deref().map(|q| {
        let escaped = q
            .trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = sqlx::query_as!(
        ProcedureRow,
        r#"SELECT code, name, field, level AS "level: UnitLevel", fully_online, working_days, working_hours,
                  required_documents AS "required_documents: SqlJson<Vec<RequiredDocument>>",
                  fees AS "fees: SqlJson<Vec<FeeItem>>", fee_timing AS "fee_timing: FeeTiming",
                  created_at, updated_at
           FROM procedures
           WHERE ($1::text IS NULL OR name ILIKE $1 OR code ILIKE ltrim($1, '%'))
             AND ($2::text IS NULL OR field = $2) AND ($3::text IS NULL OR level = $3)
             AND ($4::text IS NULL OR code > $4)
           ORDER BY code LIMIT $5"#,
        pattern,
        filter.field,
        filter.level as Option<UnitLevel>,
        after,
        limit + 1,
    )
    .fetch_all(&state.db)
    .await?;
    let procedures: Vec<Procedure> = rows.into_iter().map(Procedure::from).collect();
    Ok(Json(Page::from_rows(procedures, limit, |p| p.code.clone())))
}

/// One procedure.
#[utoipa::path(get, path = "/v1/procedures/{code}", tag = "procedures",
    params(("code" = String, Path)),
    responses((status = 200, body = Procedure), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_procedure(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Json<Procedure>> {
    let mut conn = state.db.acquire().await?;
    let procedure = load(&mut conn, &code)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    Ok(Json(procedure))
}

/// Add a procedure to the catalogue (admins).
#[utoipa::path(post, path = "/v1/admin/procedures", tag = "procedures", security(("bearer" = [])),
    request_body = NewProcedure,
    responses(
        (status = 201, body = Procedure),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The code is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_procedure(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Json(procedure): Json<NewProcedure>,
) -> ApiResult<(StatusCode, Json<Procedure>)> {
    procedure.check()?;
    let mut tx = state.db.begin().await?;
    let saved = save(&mut tx, &procedure).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Change a procedure (admins). Dossiers already received keep their due times.
#[utoipa::path(patch, path = "/v1/admin/procedures/{code}", tag = "procedures", security(("bearer" = [])),
    params(("code" = String, Path)),
    request_body = ProcedureUpdate,
    responses(
        (status = 200, body = Procedure),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_procedure(
    State(state): State<AppState>,
    _admin: Caller<Admins>,
    Path(code): Path<String>,
    Json(update): Json<ProcedureUpdate>,
) -> ApiResult<Json<Procedure>> {
    let mut tx = state.db.begin().await?;
    sqlx::query_scalar!(
        "SELECT 1 AS locked FROM procedures WHERE code = $1 FOR UPDATE",
        code
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let current = load(&mut tx, &code)
        .await?
        .ok_or_else(|| ApiError::internal("procedure row vanished"))?;
    let changed = apply(current, update)?;
    changed.check()?;
    sqlx::query!(
        "UPDATE procedures SET name = $2, field = $3, level = $4, fully_online = $5, working_days = $6,
                working_hours = $7, required_documents = $8, fees = $9, fee_timing = $10, updated_at = now()
         WHERE code = $1",
        code,
        changed.name.trim(),
        changed.field.trim(),
        changed.level as UnitLevel,
        changed.fully_online,
        changed.working_days,
        changed.working_hours,
        SqlJson(&changed.required_documents) as _,
        SqlJson(&changed.fees) as _,
        changed.fee_timing as FeeTiming,
    )
    .execute(&mut *tx)
    .await?;
    let saved = load(&mut tx, &code)
        .await?
        .ok_or_else(|| ApiError::internal("procedure row vanished"))?;
    tx.commit().await?;
    Ok(Json(saved))
}

fn apply(current: Procedure, update: ProcedureUpdate) -> ApiResult<NewProcedure> {
    let (working_days, working_hours) = match (update.working_days, update.working_hours) {
        (None, None) => (current.working_days, current.working_hours),
        (Some(days), None) => (Some(days), None),
        (None, Some(hours)) => (None, Some(hours)),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "working_hours",
                Message::ProcessingTimeInOneUnit,
            ));
        }
    };
    Ok(NewProcedure {
        code: current.code,
        name: update.name.unwrap_or(current.name),
        field: update.field.unwrap_or(current.field),
        level: update.level.unwrap_or(current.level),
        fully_online: update.fully_online.unwrap_or(current.fully_online),
        working_days,
        working_hours,
        required_documents: update
            .required_documents
            .unwrap_or(current.required_documents),
        fees: update.fees.unwrap_or(current.fees),
        fee_timing: update.fee_timing.unwrap_or(current.fee_timing),
    })
}
