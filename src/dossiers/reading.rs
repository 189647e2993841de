//! Reading dossiers: a citizen's own, a unit's worklist for its staff, one dossier in full, and
//! public tracking by code and tracking key with nothing personal in it. Lists read the
//! `dossier_summaries` view, which is where `overdue` and the national status code are defined.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::rating::Rating;
use super::transitions::{Action, allowed_actions};
use super::{Channel, Delivery, DeliveryMethod, Document, Status, TimelineEvent, visible_to};
use crate::auth::Caller;
use crate::auth::access::{AnyRole, Citizens, Policy, Role, Scope, Staff};
use crate::auth::client_addr::ClientAddr;
use crate::bills::BillStatus;
use crate::calendar::WorkingCalendar;
use crate::domain::Money;
use crate::http::error::Problem;
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::state::AppState;
use crate::units::UnitLevel;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_own))
        .routes(routes!(get_dossier))
        .routes(routes!(unit_worklist))
        .routes(routes!(track_publicly))
}

/// A dossier as lists show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct DossierSummary {
    pub id: Uuid,
    #[schema(example = "19753-261122-0001")]
    pub code: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub unit_code: String,
    pub unit_name: String,
    pub status: Status,
    /// The national status code (1 submitted ... 10 returned).
    #[schema(minimum = 1, maximum = 10)]
    #[sqlx(rename = "national_status_code")]
    pub status_code: i32,
    pub channel: Channel,
    pub applicant_name: String,
    pub submitted_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
    /// When the result is due (working time; moved by pauses).
    pub due_at: Option<DateTime<Utc>>,
    /// When the citizen is told to come for the result.
    pub appointment_at: Option<DateTime<Utc>>,
    /// When the result (approval or rejection) was ready.
    pub finished_at: Option<DateTime<Utc>>,
    pub returned_at: Option<DateTime<Utc>>,
    /// Finished after its due time, or unfinished and past it.
    pub overdue: bool,
    #[serde(skip)]
    due_sort: DateTime<Utc>,
    #[serde(skip)]
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicantView {
    pub name: String,
    /// E.164.
    pub phone: String,
    /// In full for the dossier's owner and the officers of the unit handling it; for everyone
    /// else (supervisors, admins, officers of a unit above) only its last 4 digits show.
    #[schema(example = "********2345")]
    pub national_id: Option<String>,
}

/// Who reads a dossier, as far as what it shows depends on it (the national ID).
#[derive(Debug, Clone)]
pub struct Viewer {
    role: Role,
    account_id: Option<Uuid>,
    unit_code: Option<String>,
}

/// The role alone: the caller checked the scope, so a citizen is the owner; an officer's unit
/// is unknown, so the national ID shows masked. Pass the caller where there is one.
impl<P: Policy> From<&Caller<P>> for Viewer {
    fn from(caller: &Caller<P>) -> Self {
        Viewer {
            role: caller.role,
            account_id: Some(caller.account_id),
            unit_code: caller.unit_code.clone(),
        }
    }
}

impl Viewer {
    /// The owner, and the officers of the handling unit (not of a unit above it).
    fn sees_national_id(&self, applicant_id: Option<Uuid>, unit_code: &str) -> bool {
        match self.role {
            Role::Citizen => self.account_id.is_none() || self.account_id == applicant_id,
            Role::Officer => self.unit_code.as_deref() == Some(unit_code),
            Role::Supervisor | Role::Admin => false,
        }
    }
}

/// All but the last 4 characters starred: `046095012345` → `********2345`.
fn masked(national_id: &str) -> String {
    let count = national_id.chars().count();
    national_id
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < count { '*' } else { c })
        .collect()
}

/// A dossier in full, for its owner and the staff of its unit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DossierDetail {
    #[serde(flatten)]
    pub summary: DossierSummary,
    pub applicant: ApplicantView,
    /// How the result reaches the applicant.
    pub delivery: Delivery,
    /// With the code, what public tracking asks for (`GET /v1/public/dossiers/{code}?key=`);
    /// printed on the reception slip. 6 characters of `ABCDEFGHJKMNPQRSTUVWXYZ23456789`.
    #[schema(example = "K7MPQ3")]
    pub tracking_key: String,
    /// Whether the one apology-and-new-appointment was used.
    pub rescheduled: bool,
    /// What the caller may do now.
    pub allowed_actions: Vec<Action>,
    pub documents: Vec<Document>,
    /// Oldest first.
    pub timeline: Vec<TimelineEvent>,
    pub rating: Option<Rating>,
    /// The dossier's fee bill, found and paid by its id (`POST /v1/bills/{id}/pay`) or its
    /// code: `null` for a free procedure, and until the fee is billed (when the dossier is
    /// received, or by `request_payment`, as the procedure's `fee_timing` says).
    pub fee_bill: Option<FeeBill>,
}

/// A dossier's fee bill as the dossier shows it; the bill itself has the rest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeeBill {
    pub id: Uuid,
    /// The bill's payment reference.
    #[schema(example = "BK7M2Q9XH4TZ")]
    pub code: String,
    /// The total of its lines: the procedure's fees, and postal delivery when chosen.
    #[schema(value_type = i64)]
    pub amount: Money,
    pub status: BillStatus,
}

/// Public tracking: where a dossier stands, nothing about who filed it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicDossier {
    pub code: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub unit_code: String,
    pub unit_name: String,
    pub status: Status,
    /// The national status code (1 submitted ... 10 returned).
    #[schema(minimum = 1, maximum = 10)]
    pub status_code: i32,
    pub received_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub appointment_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

async fn summary(conn: &mut PgConnection, id: Uuid) -> Result<Option<DossierSummary>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM dossier_summaries WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The whole dossier, with the actions the viewer's role may take now and the national ID as
/// the viewer may see it. The caller checked the scope.
pub async fn detail(
    conn: &mut PgConnection,
    id: Uuid,
    viewer: impl Into<Viewer>,
    calendar: &WorkingCalendar,
) -> ApiResult<DossierDetail> {
    let viewer: Viewer = viewer.into();
    let summary = summary(conn, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let more = sqlx::query!(
        r#"SELECT applicant_id, applicant_phone, applicant_national_id,
                  result_delivery AS "delivery_method: DeliveryMethod", postal_address AS delivery_address,
                  rescheduled_at IS NOT NULL AS "rescheduled!", tracking_key
           FROM dossiers WHERE id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let (documents, timeline, rating) = documents_timeline_and_rating(conn, id).await?;
    let fee_bill = sqlx::query_as!(
        FeeBill,
        r#"SELECT id, code, amount AS "amount: Money", status AS "status: BillStatus"
           FROM bills WHERE dossier_id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let allowed_actions = allowed_actions(
        summary.status,
        summary.due_at,
        more.rescheduled,
        viewer.role,
        Utc::now(),
        calendar,
    );
    let national_id = match more.applicant_national_id {
        Some(id) if !viewer.sees_national_id(more.applicant_id, &summary.unit_code) => {
            Some(masked(&id))
        }
        shown => shown,
    };
    Ok(DossierDetail {
        applicant: ApplicantView {
            name: summary.applicant_name.clone(),
            phone: more.applicant_phone,
            national_id,
        },
        summary,
        delivery: Delivery {
            method: more.delivery_method,
            address: more.delivery_address,
        },
        tracking_key: more.tracking_key,
        rescheduled: more.rescheduled,
        allowed_actions,
        documents,
        timeline,
        rating,
        fee_bill,
    })
}

/// A dossier's documents, timeline and rating: what [`detail`] shows besides its row.
async fn documents_timeline_and_rating(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(Vec<Document>, Vec<TimelineEvent>, Option<Rating>), sqlx::Error> {
    let documents = sqlx::query_as!(
        Document,
        r#"SELECT id, code, name, sha256, size_bytes AS size, storage_uri AS uri, added_with, added_at
           FROM dossier_documents WHERE dossier_id = $1 ORDER BY added_at, id"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let timeline = sqlx::query_as!(
        TimelineEvent,
        r#"SELECT action, from_status AS "from_status: Status", to_status AS "to_status: Status",
                  actor_role, reason, note, at
           FROM dossier_events WHERE dossier_id = $1 ORDER BY id"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let rating = sqlx::query_as!(
        Rating,
        "SELECT score, comment, created_at FROM dossier_ratings WHERE dossier_id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok((documents, timeline, rating))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnFilter {
    pub status: Option<Status>,
}

/// The caller's dossiers, newest first.
#[utoipa::path(get, path = "/v1/dossiers", tag = "dossiers", security(("bearer" = [])),
    params(OwnFilter, PageQuery),
    responses((status = 200, body = Page<DossierSummary>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_own(
    State(state): State<AppState>,
    caller: Caller<Citizens>,
    Query(filter): Query<OwnFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<DossierSummary>>> {
    let limit = page.limit()?;
    let before: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    let mut query =
        QueryBuilder::<Postgres>::new("SELECT * FROM dossier_summaries WHERE applicant_id = ");
    query.push_bind(caller.account_id);
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    push_keyset(&mut query, "created_at", Order::NewestFirst, before, limit);
    let rows: Vec<DossierSummary> = query.build_query_as().fetch_all(&state.db).await?;
    Ok(Json(Page::from_rows(rows, limit, |d| (d.created_at, d.id))))
}

/// One dossier: its owner, or staff whose unit's subtree holds it.
#[utoipa::path(get, path = "/v1/dossiers/{id}", tag = "dossiers", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DossierDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_dossier(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DossierDetail>> {
    visible_to(&state.db, &caller.scope(), id).await?;
    let mut conn = state.db.acquire().await?;
    let calendar = WorkingCalendar::load(&mut conn).await?;
    Ok(Json(detail(&mut conn, id, &caller, &calendar).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorklistFilter {
    /// One status; without it, every dossier still open (not refused, withdrawn or returned).
    pub status: Option<Status>,
    pub overdue: Option<bool>,
    /// Only those due before this time.
    #[serde(default, deserialize_with = "crate::http::dates::opt_instant")]
    pub due_before: Option<DateTime<Utc>>,
    /// One procedure's code.
    pub procedure: Option<String>,
}

/// `status IN ('submitted', …)` for the open statuses, written into the statement rather than
/// bound, so the planner can match it with the partial worklist indexes (see the migration).
fn open_statuses_sql() -> String {
    let quoted: Vec<String> = Status::OPEN
        .iter()
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    format!("status IN ({})", quoted.join(", "))
}

/// The dossiers of the caller's unit and the units below it, soonest due first.
#[utoipa::path(get, path = "/v1/unit/dossiers", tag = "dossiers", security(("bearer" = [])),
    params(WorklistFilter, PageQuery),
    responses((status = 200, body = Page<DossierSummary>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn unit_worklist(
    State(state): State<AppState>,
    caller: Caller<Staff>,
    Query(filter): Query<WorklistFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<DossierSummary>>> {
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM dossier_summaries WHERE ");
    push_scope(&mut query, &state.db, &caller.scope()).await?;
    match filter.status {
        Some(status) => {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        None => {
            query.push(" AND ").push(open_statuses_sql());
        }
    }
    if let Some(overdue) = filter.overdue {
        query.push(" AND overdue = ").push_bind(overdue);
    }
    if let Some(due_before) = filter.due_before {
        query.push(" AND due_at < ").push_bind(due_before);
    }
    if let Some(procedure) = filter.procedure {
        query.push(" AND procedure_code = ").push_bind(procedure);
    }
    push_keyset(&mut query, "due_sort", Order::SoonestFirst, after, limit);
    let rows: Vec<DossierSummary> = query.build_query_as().fetch_all(&state.db).await?;
    Ok(Json(Page::from_rows(rows, limit, |d| (d.due_sort, d.id))))
}

enum Order {
    NewestFirst,
    SoonestFirst,
}

/// Keyset paging on `(column, id)`: the rows after the cursor, in order, one more than the page
/// (so [`Page::from_rows`] knows whether another follows). The limit is written into the
/// statement, not bound: with a bound LIMIT the generic plan looks dearer than a custom one on
/// a big table, and PostgreSQL would plan every call.
fn push_keyset(
    query: &mut QueryBuilder<'_, Postgres>,
    column: &'static str,
    order: Order,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) {
    let (comparison, direction) = match order {
        Order::NewestFirst => ("<", "DESC"),
        Order::SoonestFirst => (">", "ASC"),
    };
    if let Some((key, id)) = after {
        query
            .push(format_args!(" AND ({column}, id) {comparison} ("))
            .push_bind(key)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query.push(format_args!(
        " ORDER BY {column} {direction}, id {direction} LIMIT {}",
        limit + 1
    ));
}

/// The scope as one indexed condition: a commune is one unit, a province one province code;
/// an older district tier lists its units.
async fn push_scope(
    query: &mut QueryBuilder<'_, Postgres>,
    db: &PgPool,
    scope: &Scope,
) -> ApiResult<()> {
    let root = match scope {
        Scope::Everything => {
            query.push("true");
            return Ok(());
        }
        Scope::Subtree(root) => root.clone(),
        Scope::Own(_) => return Err(ApiError::new(ErrorCode::Forbidden)),
    };
    let level = sqlx::query_scalar!(
        r#"SELECT level AS "level: UnitLevel" FROM units WHERE code = $1"#,
        root
    )
    .fetch_one(db)
    .await?;
    match level {
        UnitLevel::Commune => {
            query.push("unit_code = ").push_bind(root);
        }
        UnitLevel::Province => {
            query.push("province_code = ").push_bind(root);
        }
        UnitLevel::District => {
            let units: Vec<String> = sqlx::query_scalar!(
                r#"SELECT code AS "code!" FROM units WHERE code = $1 OR parent_code = $1"#,
                root
            )
            .fetch_all(db)
            .await?;
            query.push("unit_code = ANY(").push_bind(units).push(")");
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrackingQuery {
    /// The dossier's tracking key, from the reception slip or the app (letter case does not
    /// matter). Required: without it the answer is the same 404 as for a wrong one.
    #[param(example = "K7MPQ3")]
    pub key: Option<String>,
}

/// Where a dossier stands, for anyone who has both its code and its tracking key (no login).
/// Codes are sequential, so the code alone finds nothing: an unknown code and a wrong or
/// missing key answer the same 404 after the same steps, and each counts against the caller's
/// address. Past `CIVICPAY_TRACKING_FAILURES_PER_ADDRESS` failures within
/// `CIVICPAY_TRACKING_WINDOW_SECS`, every lookup from that address answers 429 with
/// `Retry-After`, right keys included, until the oldest failure leaves the window.
#[utoipa::path(get, path = "/v1/public/dossiers/{code}", tag = "dossiers",
    params(("code" = String, Path), TrackingQuery),
    responses(
        (status = 200, body = PublicDossier),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No dossier has this code and key: an unknown code, a wrong key and a missing key answer alike"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "`rate_limited`: too many failed lookups from this address; see `Retry-After`"),
    ))]
async fn track_publicly(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(code): Path<String>,
    Query(query): Query<TrackingQuery>,
) -> ApiResult<Json<PublicDossier>> {
    let limit = &state.dossiers.tracking_limit;
    let mut conn = state.db.acquire().await?;
    limit.check(&mut conn, client).await?;
    let stored = sqlx::query_scalar!("SELECT tracking_key FROM dossiers WHERE code = $1", code)
        .fetch_optional(&mut *conn)
        .await?;
    let given = query.key.unwrap_or_default().trim().to_ascii_uppercase();
    // The key is compared for an unknown code too, so both failures take the same steps.
    let key_matches = same_key(stored.as_deref().unwrap_or_default(), &given);
    if !(stored.is_some() & key_matches) {
        limit.record_failure(&mut conn, &code, client).await?;
        return Err(ApiError::not_found(Message::DossierNotTracked));
    }
    let found: Option<DossierSummary> =
        sqlx::query_as("SELECT * FROM dossier_summaries WHERE code = $1")
            .bind(&code)
            .fetch_optional(&mut *conn)
            .await?;
    let d = found.ok_or_else(|| ApiError::not_found(Message::DossierNotTracked))?;
    Ok(Json(PublicDossier {
        code: d.code,
        procedure_code: d.procedure_code,
        procedure_name: d.procedure_name,
        unit_code: d.unit_code,
        unit_name: d.unit_name,
        status: d.status,
        status_code: d.status_code,
        received_at: d.received_at,
        due_at: d.due_at,
        appointment_at: d.appointment_at,
        finished_at: d.finished_at,
    }))
}

/// Whether two tracking keys are equal, in a time that tells nothing of where they differ:
/// both are hashed first, so not even their lengths show.
fn same_key(stored: &str, given: &str) -> bool {
    use crate::crypto::{constant_time_eq, sha256};
    constant_time_eq(&sha256(stored.as_bytes()), &sha256(given.as_bytes()))
}
