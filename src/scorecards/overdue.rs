//! The overdue list: the unfinished dossiers of a subtree past their due time, most late first,
//! with how many working days late each is, whether the apology (a reschedule) was made, and the
//! officer who last moved it (who holds it).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Supervisors;
use crate::calendar::WorkingCalendar;
use crate::http::error::Problem;
use crate::http::pagination::{Page, PageQuery};
use crate::http::{ApiResult, Json, Query};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(overdue_list))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Holder {
    pub id: Uuid,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OverdueDossier {
    pub id: Uuid,
    pub code: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub unit_code: String,
    pub status: String,
    pub received_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    /// Office time past `due_at` until now (or the clock's pause), in working days, rounded up.
    pub working_days_late: i64,
    /// Whether the apology and new appointment (`reschedule`) was made.
    pub apologized: bool,
    pub appointment_at: Option<DateTime<Utc>>,
    /// The officer who last moved it; `null` if none has yet.
    pub officer: Option<Holder>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverdueFilter {
    /// A unit of the caller's subtree (default: the caller's unit; an admin must name one).
    pub unit: Option<String>,
}

struct Row {
    id: Uuid,
    code: String,
    procedure_code: String,
    procedure_name: String,
    unit_code: String,
    status: String,
    received_at: Option<DateTime<Utc>>,
    due_at: DateTime<Utc>,
    late_until: DateTime<Utc>,
    rescheduled: bool,
    appointment_at: Option<DateTime<Utc>>,
    officer_id: Option<Uuid>,
    officer_name: Option<String>,
}

/// Unfinished dossiers past their due time in the unit's subtree, most late first
/// (supervisors and admins).
#[utoipa::path(get, path = "/v1/scorecards/overdue", tag = "scorecards", security(("bearer" = [])),
    params(OverdueFilter, PageQuery),
    responses(
        (status = 200, body = Page<OverdueDossier>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn overdue_list(
    State(state): State<AppState>,
    caller: Caller<Supervisors>,
    Query(filter): Query<OverdueFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<OverdueDossier>>> {
    let unit = caller.unit_in_scope(&state.db, filter.unit).await?;
    let mut conn = state.db.acquire().await?;
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, Uuid)> = page.after()?;
    let (after_due, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        Row,
        r#"WITH RECURSIVE tree(code, depth) AS (
               SELECT code, 0 FROM units WHERE code = $1
               UNION ALL
               SELECT u.code, t.depth + 1 FROM units u JOIN tree t ON u.parent_code = t.code
               WHERE t.depth < 8
           )
           SELECT d.id, d.code, d.procedure_code, p.name AS procedure_name, d.unit_code, d.status,
                  d.received_at, d.due_at AS "due_at!", COALESCE(d.paused_at, now()) AS "late_until!",
                  d.rescheduled_at IS NOT NULL AS "rescheduled!", d.appointment_at,
                  holder.id AS "officer_id?", holder.full_name AS "officer_name?"
           FROM dossiers d
           JOIN procedures p ON p.code = d.procedure_code
           LEFT JOIN LATERAL (
               SELECT a.id, a.full_name FROM dossier_events e JOIN accounts a ON a.id = e.actor_id
               WHERE e.dossier_id = d.id AND e.actor_role = 'officer'
               ORDER BY e.id DESC LIMIT 1
           ) holder ON true
           WHERE d.unit_code IN (SELECT code FROM tree)
             AND d.finished_at IS NULL AND d.due_at IS NOT NULL
             AND d.status NOT IN ('refused', 'withdrawn', 'returned')
             AND d.due_at < COALESCE(d.paused_at, now())
             AND ($2::timestamptz IS NULL OR (d.due_at, d.id) > ($2, $3::uuid))
           ORDER BY d.due_at, d.id
           LIMIT $4"#,
        unit,
        after_due,
        after_id,
        limit + 1,
    )
    .fetch_all(&mut *conn)
    .await?;
    let calendar = WorkingCalendar::load(&mut conn).await?;
    let dossiers = rows
        .into_iter()
        .map(|row| {
            let late = calendar.office_time_between(row.due_at, row.late_until);
            OverdueDossier {
                working_days_late: working_days(late),
                id: row.id,
                code: row.code,
                procedure_code: row.procedure_code,
                procedure_name: row.procedure_name,
                unit_code: row.unit_code,
                status: row.status,
                received_at: row.received_at,
                due_at: row.due_at,
                apologized: row.rescheduled,
                appointment_at: row.appointment_at,
                officer: row
                    .officer_id
                    .zip(row.officer_name)
                    .map(|(id, full_name)| Holder { id, full_name }),
            }
        })
        .collect();
    Ok(Json(Page::from_rows(dossiers, limit, |d| (d.due_at, d.id))))
}

/// Office time in working days of 7 h 30 (07:30–11:30 and 13:30–17:00), rounded up: a dossier
/// an hour late is one working day late.
fn working_days(office_time: chrono::Duration) -> i64 {
    const WORKING_DAY_SECS: i64 = 7 * 3600 + 30 * 60;
    let secs = office_time.num_seconds().max(0);
    (secs + WORKING_DAY_SECS - 1) / WORKING_DAY_SECS
}

#[cfg(test)]
mod tests {
    use super::working_days;
    use chrono::Duration;

    #[test]
    fn late_office_time_rounds_up_to_working_days() {
        assert_eq!(working_days(Duration::zero()), 0);
        assert_eq!(working_days(Duration::minutes(1)), 1);
        assert_eq!(working_days(Duration::minutes(450)), 1);
        assert_eq!(working_days(Duration::minutes(451)), 2);
    }
}
