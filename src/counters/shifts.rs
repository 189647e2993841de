//! Shifts: opened with a float, one open per officer, closed by a blind count. The open shift's
//! answer never holds the expected cash, so the officer counts the drawer before seeing what
//! it should hold; closing answers the report, which never changes after.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json as SqlJson;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::Officer;
use crate::auth::Caller;
use crate::auth::access::{Staff, Supervisors};
use crate::http::dates::{self, DaySpan};
use crate::http::error::{FieldChecks, Problem};
use crate::http::messages::Message;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path, Query};
use crate::ledger::{self, AccountKind, EntryKind, NewEntry, Posting};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_shift_route, list_shifts))
        .routes(routes!(current_shift))
        .routes(routes!(get_shift))
        .routes(routes!(close_shift))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ShiftStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum CollectionMethod {
    Cash,
    Qr,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShiftOfficer {
    pub id: Uuid,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MethodTotal {
    pub method: CollectionMethod,
    pub count: i64,
    pub amount: i64,
}

/// A closed shift's report, as the close answered it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShiftReport {
    /// Completed collections (voided ones excluded), each method listed.
    pub by_method: Vec<MethodTotal>,
    /// Cash paid back out of the drawer (refunds of dossiers closed after a cash payment).
    pub cash_refunded: i64,
    /// `opening_float` + cash collected − `cash_refunded`.
    pub expected_cash: i64,
    pub counted_cash: i64,
    /// `counted_cash` − `expected_cash`: negative when the drawer is short.
    pub difference: i64,
    pub difference_reason: Option<String>,
}

/// A shift. While open it shows no expected cash (the count is blind); closed, its report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Shift {
    pub id: Uuid,
    pub unit_code: String,
    pub officer: ShiftOfficer,
    pub opening_float: i64,
    pub opened_at: DateTime<Utc>,
    pub status: ShiftStatus,
    pub closed_at: Option<DateTime<Utc>>,
    /// `null` while open.
    pub report: Option<ShiftReport>,
}

struct ShiftRow {
    id: Uuid,
    unit_code: String,
    officer_id: Uuid,
    full_name: String,
    opening_float: i64,
    opened_at: DateTime<Utc>,
    status: ShiftStatus,
    closed_at: Option<DateTime<Utc>>,
    report: Option<SqlJson<ShiftReport>>,
    drawer_account_id: Uuid,
}

impl ShiftRow {
    fn view(self) -> Shift {
        Shift {
            id: self.id,
            unit_code: self.unit_code,
            officer: ShiftOfficer {
                id: self.officer_id,
                full_name: self.full_name,
            },
            opening_float: self.opening_float,
            opened_at: self.opened_at,
            status: self.status,
            closed_at: self.closed_at,
            report: self.report.map(|r| r.0),
        }
    }
}

/// The shift, locked for its close with `lock` (`FOR UPDATE`, in a statement of its own: see
/// `bills::find` on reading after a lock).
async fn find(conn: &mut PgConnection, id: Uuid, lock: bool) -> ApiResult<Option<ShiftRow>> {
    if lock {
        let locked =
            sqlx::query_scalar!("SELECT id FROM counter_shifts WHERE id = $1 FOR UPDATE", id)
                .fetch_optional(&mut *conn)
                .await?;
        if locked.is_none() {
            return Ok(None);
        }
    }
    Ok(sqlx::query_as!(
        ShiftRow,
        r#"SELECT s.id, s.unit_code, s.officer_id, a.full_name, s.opening_float, s.opened_at,
                  s.status AS "status: ShiftStatus", s.closed_at,
                  s.report AS "report: SqlJson<ShiftReport>", s.drawer_account_id
           FROM counter_shifts s JOIN accounts a ON a.id = s.officer_id WHERE s.id = $1"#,
        id,
    )
    .fetch_optional(conn)
    .await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenShiftRequest {
    /// The change money in the drawer at opening, in đồng (0 to 10,000,000,000).
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub opening_float: i64,
}

/// Open a shift at the officer's unit with its float. One open shift per officer.
#[utoipa::path(post, path = "/v1/counter/shifts", tag = "counters", security(("bearer" = [])),
    operation_id = "open_shift",
    request_body = OpenShiftRequest,
    responses(
        (status = 201, body = Shift),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an officer"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`shift_already_open`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn open_shift_route(
    State(state): State<AppState>,
    officer: Officer,
    Json(request): Json<OpenShiftRequest>,
) -> ApiResult<(StatusCode, Json<Shift>)> {
    let mut tx = state.db.begin().await?;
    let shift = open_shift(&mut tx, &officer, request.opening_float).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(shift)))
}

/// Opens a shift for `officer` with `opening_float`, its drawer account made with it.
pub async fn open_shift(
    conn: &mut PgConnection,
    officer: &Officer,
    opening_float: i64,
) -> ApiResult<Shift> {
    FieldChecks::new()
        .check(
            (0..=crate::domain::money::MAX_AMOUNT).contains(&opening_float),
            "opening_float",
            Message::FieldOutOfRange {
                min: 0,
                max: crate::domain::money::MAX_AMOUNT,
            },
        )
        .finish()?;
    let id = Uuid::new_v4();
    let drawer = ledger::owned_account(conn, AccountKind::CounterDrawer, id).await?;
    let opened = sqlx::query_scalar!(
        "INSERT INTO counter_shifts (id, unit_code, officer_id, opening_float, drawer_account_id)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (officer_id) WHERE status = 'open' DO NOTHING
         RETURNING id",
        id,
        officer.unit_code,
        officer.account_id,
        opening_float,
        drawer,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if opened.is_none() {
        return Err(ApiError::new(ErrorCode::ShiftAlreadyOpen));
    }
    let shift = find(conn, id, false).await?;
    shift
        .map(ShiftRow::view)
        .ok_or_else(|| ApiError::internal("a shift just opened vanished"))
}

/// The calling officer's open shift.
#[utoipa::path(get, path = "/v1/counter/shifts/current", tag = "counters", security(("bearer" = [])),
    responses(
        (status = 200, body = Shift),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an officer"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No open shift"),
    ))]
async fn current_shift(State(state): State<AppState>, officer: Officer) -> ApiResult<Json<Shift>> {
    let mut conn = state.db.acquire().await?;
    let id = sqlx::query_scalar!(
        "SELECT id FROM counter_shifts WHERE officer_id = $1 AND status = 'open'",
        officer.account_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found(Message::ShiftNotFound))?;
    let shift = find(&mut conn, id, false).await?;
    shift
        .map(|s| Json(s.view()))
        .ok_or_else(|| ApiError::not_found(Message::ShiftNotFound))
}

/// A shift: its officer's, or a supervisor's of its unit's subtree.
#[utoipa::path(get, path = "/v1/counter/shifts/{id}", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Shift),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_shift(
    State(state): State<AppState>,
    caller: Caller<Staff>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Shift>> {
    let mut conn = state.db.acquire().await?;
    let shift = find(&mut conn, id, false).await?;
    let shift = match shift {
        Some(shift) if sees(&state, &caller, &shift).await? => shift,
        _ => return Err(ApiError::not_found(Message::ShiftNotFound)),
    };
    Ok(Json(shift.view()))
}

async fn sees(state: &AppState, caller: &Caller<Staff>, shift: &ShiftRow) -> ApiResult<bool> {
    Ok(shift.officer_id == caller.account_id
        || caller.supervises(&state.db, &shift.unit_code).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShiftFilter {
    /// A unit of the caller's subtree (default: the caller's unit; an admin must name one).
    pub unit: Option<String>,
    /// The Vietnam-time day the shifts opened (YYYY-MM-DD; default today).
    #[serde(default, deserialize_with = "dates::opt_date")]
    #[param(value_type = Option<String>, format = Date)]
    pub date: Option<NaiveDate>,
}

/// A unit's shifts of a day, in the order they opened (supervisors and admins).
#[utoipa::path(get, path = "/v1/counter/shifts", tag = "counters", security(("bearer" = [])),
    params(ShiftFilter, PageQuery),
    responses(
        (status = 200, body = Page<Shift>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "A unit outside the caller's subtree"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_shifts(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    Query(filter): Query<ShiftFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Shift>>> {
    let unit = caller.unit_in_scope(&state.db, filter.unit).await?;
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    let day = DaySpan::of(filter.date.unwrap_or_else(crate::bills::today))?;
    let (after_at, after_id) = after.unzip();
    let ids = sqlx::query_scalar!(
        "SELECT id FROM counter_shifts
         WHERE unit_code = $1 AND opened_at >= $2 AND opened_at < $3
           AND ($4::timestamptz IS NULL OR (opened_at, id) > ($4, $5::uuid))
         ORDER BY opened_at, id LIMIT $6",
        unit,
        day.from,
        day.until,
        after_at,
        after_id,
        limit + 1,
    )
    .fetch_all(&state.db)
    .await?;
    let mut conn = state.db.acquire().await?;
    let mut shifts = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(shift) = find(&mut conn, id, false).await? {
            shifts.push(shift.view());
        }
    }
    Ok(Json(Page::from_rows(shifts, limit, |s| {
        (s.opened_at, s.id)
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseShiftRequest {
    /// The cash counted in the drawer, float included, in đồng.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub counted_cash: i64,
    /// Required when the count differs from the expected cash (1 to 500 characters).
    #[schema(max_length = 500)]
    pub difference_reason: Option<String>,
}

/// Close the shift with the blind count: answers the report (by method, expected cash, counted,
/// difference). A difference other than zero needs `difference_reason`.
#[utoipa::path(post, path = "/v1/counter/shifts/{id}/close", tag = "counters", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = CloseShiftRequest,
    responses(
        (status = 200, body = Shift),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not an officer"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`shift_closed`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "A difference without a reason"),
    ))]
async fn close_shift(
    State(state): State<AppState>,
    officer: Officer,
    Path(id): Path<Uuid>,
    Json(request): Json<CloseShiftRequest>,
) -> ApiResult<Json<Shift>> {
    let mut tx = state.db.begin().await?;
    let shift = close(&mut tx, &officer, id, &request).await?;
    tx.commit().await?;
    Ok(Json(shift))
}

/// Closes the officer's shift `id` in the caller's transaction (see [`close_shift`]).
pub async fn close(
    conn: &mut PgConnection,
    officer: &Officer,
    id: Uuid,
    request: &CloseShiftRequest,
) -> ApiResult<Shift> {
    let shift = find(conn, id, true)
        .await?
        .filter(|s| s.officer_id == officer.account_id)
        .ok_or_else(|| ApiError::not_found(Message::ShiftNotFound))?;
    let max = crate::domain::money::MAX_AMOUNT;
    let reason = request
        .difference_reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    FieldChecks::new()
        .check(
            (0..=max).contains(&request.counted_cash),
            "counted_cash",
            Message::FieldOutOfRange { min: 0, max },
        )
        .check(
            reason.is_none_or(|r| r.chars().count() <= 500),
            "difference_reason",
            Message::TextLength { min: 1, max: 500 },
        )
        .finish()?;
    if shift.status == ShiftStatus::Closed {
        return Err(ApiError::new(ErrorCode::ShiftClosed));
    }
    // A QR code shown in this shift is not paid into it any more. First, before the figures: a
    // payment completing one right now holds its row, this waits for it, and the report (a
    // later statement) then counts it; a payment after this finds nothing pending.
    sqlx::query!(
        "UPDATE counter_collections SET status = 'cancelled' WHERE shift_id = $1 AND status = 'pending'",
        id
    )
    .execute(&mut *conn)
    .await?;
    let report = report(conn, &shift, request.counted_cash, reason).await?;
    if report.difference != 0 && reason.is_none() {
        return Err(ApiError::invalid_field(
            "difference_reason",
            Message::DifferenceReasonRequired,
        ));
    }
    hand_over_cash(conn, &shift, officer.account_id).await?;
    sqlx::query!(
        "UPDATE counter_shifts SET status = 'closed', closed_at = now(), report = $2 WHERE id = $1",
        id,
        SqlJson(&report) as _,
    )
    .execute(&mut *conn)
    .await?;
    let closed = find(conn, id, false).await?;
    closed
        .map(ShiftRow::view)
        .ok_or_else(|| ApiError::internal("a shift just closed vanished"))
}

/// The close's figures, from the shift's collections and refunds.
async fn report(
    conn: &mut PgConnection,
    shift: &ShiftRow,
    counted_cash: i64,
    reason: Option<&str>,
) -> ApiResult<ShiftReport> {
    let totals = sqlx::query!(
        r#"SELECT m.method AS "method!: CollectionMethod", count(c.id) AS "count!",
                  COALESCE(sum(c.amount), 0)::bigint AS "amount!"
           FROM (VALUES ('cash'), ('qr')) AS m(method)
           LEFT JOIN counter_collections c
             ON c.method = m.method AND c.shift_id = $1 AND c.status = 'completed'
           GROUP BY m.method ORDER BY m.method"#,
        shift.id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let cash_refunded = sqlx::query_scalar!(
        r#"SELECT COALESCE(sum(amount), 0)::bigint AS "refunded!" FROM counter_refunds WHERE shift_id = $1"#,
        shift.id
    )
    .fetch_one(&mut *conn)
    .await?;
    let by_method: Vec<MethodTotal> = totals
        .into_iter()
        .map(|t| MethodTotal {
            method: t.method,
            count: t.count,
            amount: t.amount,
        })
        .collect();
    let cash_collected: i64 = by_method
        .iter()
        .filter(|t| t.method == CollectionMethod::Cash)
        .map(|t| t.amount)
        .sum();
    let expected_cash = shift
        .opening_float
        .checked_add(cash_collected)
        .and_then(|cash| cash.checked_sub(cash_refunded))
        .ok_or_else(|| ApiError::internal("a shift's cash overflows"))?;
    Ok(ShiftReport {
        by_method,
        cash_refunded,
        expected_cash,
        counted_cash,
        difference: counted_cash - expected_cash,
        difference_reason: reason.map(str::to_owned),
    })
}

/// Moves what the drawer holds in the ledger (cash collected − refunded) to the unit's cash,
/// from where it is deposited at the Treasury. A drawer that holds nothing moves nothing.
async fn hand_over_cash(conn: &mut PgConnection, shift: &ShiftRow, officer: Uuid) -> ApiResult<()> {
    let balance = sqlx::query_scalar!(
        "SELECT balance FROM ledger_accounts WHERE id = $1 FOR UPDATE",
        shift.drawer_account_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if balance == 0 {
        return Ok(());
    }
    let unit_cash = ledger::unit_cash_account(conn, &shift.unit_code).await?;
    ledger::post(
        conn,
        NewEntry {
            kind: EntryKind::CashHandover,
            reference: shift.id.to_string(),
            note: Some("Bàn giao tiền mặt cuối ca".to_owned()),
            created_by: Some(officer),
            postings: vec![
                Posting {
                    account_id: shift.drawer_account_id,
                    amount: -balance,
                    counterparty: None,
                },
                Posting {
                    account_id: unit_cash,
                    amount: balance,
                    counterparty: None,
                },
            ],
        },
    )
    .await
    .map_err(|e| ApiError::internal(format!("handing over a shift's cash: {e:?}")))?;
    Ok(())
}
