//! DESIGN.md's transition table, and the one endpoint that applies it. Checks run in the
//! contract's order: authentication (401), the action allowed for the caller's role (403), the
//! dossier in the caller's scope (404), the request valid (422), the status allowing it (409
//! `invalid_transition` with `current_status` and `allowed_actions`; `fee_unpaid` for a result
//! whose fee is owed). The dossier row is locked for the move, so of two officers acting at
//! once the second sees the first's result and, if its move no longer fits, gets 409. Each move
//! writes its timeline line, and bills or closes the dossier's fee bill, in the same
//! transaction.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::reading::{DossierDetail, detail};
pub use super::transitions::{Action, allowed_actions};
use super::{
    Actor, DocumentInput, DocumentStorage, Status, add_documents, bill_fee, check_documents,
    record_move, visible_to,
};
use crate::auth::Caller;
use crate::auth::access::{AnyRole, Role};
use crate::bills::fees::{self, fee_unpaid};
use crate::calendar::WorkingCalendar;
use crate::domain::Money;
use crate::http::error::{FieldChecks, Problem, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode, Json, Path};
use crate::procedures::FeeTiming;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(act))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// One of the actions of the transition table.
    #[schema(value_type = Action)]
    pub action: String,
    /// Required to refuse, request a supplement (what is missing), withdraw, suspend, reject
    /// and reschedule (the apology). 1 to 2000 characters once trimmed.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub reason: Option<String>,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
    /// Required to supplement; any move may bring documents (a result, say). At most 50.
    #[schema(max_items = 50)]
    pub documents: Option<Vec<DocumentInput>>,
    /// The new appointment, to reschedule: RFC 3339, in the years 2000 to 2100 (UTC).
    #[serde(default, deserialize_with = "crate::http::dates::opt_instant")]
    #[schema(value_type = Option<String>, format = DateTime, pattern = r"^(20(0[1-9]|[1-9][0-9])-|2000-(0[2-9]|1[0-2])-|2000-01-(0[2-9]|[12][0-9]|3[01])|2100-(0[1-9]|1[01])-|2100-12-([012][0-9]|30))")]
    pub appointment_at: Option<DateTime<Utc>>,
}

/// The dossier's row as a move needs it, locked.
struct Locked {
    status: Status,
    procedure_code: String,
    due_at: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    rescheduled: bool,
}

async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Locked, sqlx::Error> {
    sqlx::query_as!(
        Locked,
        r#"SELECT status AS "status: Status", procedure_code, due_at, paused_at,
                  rescheduled_at IS NOT NULL AS "rescheduled!"
           FROM dossiers WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Move a dossier through its life cycle.
#[utoipa::path(post, path = "/v1/dossiers/{id}/actions", tag = "dossiers", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = ActionRequest,
    responses(
        (status = 200, body = DossierDetail),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "The caller's role may not take this action"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`invalid_transition` (with `current_status`, `allowed_actions`; also `request_payment` when nothing is owed: a free procedure, or a fee paid already), `fee_unpaid`"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn act(
    State(state): State<AppState>,
    caller: Caller<AnyRole>,
    Path(id): Path<Uuid>,
    Json(request): Json<ActionRequest>,
) -> ApiResult<Json<DossierDetail>> {
    let action = requested_action(&state, &caller, id, &request).await?;

    let mut tx = state.db.begin().await?;
    let dossier = lock(&mut tx, id).await?;
    let calendar = WorkingCalendar::load(&mut tx).await?;
    let now = Utc::now();
    // A request check that needs the row, so still before the status check.
    if let Some(appointment_at) = request.appointment_at
        && action == Action::Reschedule
        && dossier.due_at.is_some_and(|due| appointment_at <= due)
    {
        return Err(ApiError::invalid_field(
            "appointment_at",
            Message::AppointmentNotAfterDue,
        ));
    }
    check_transition(&dossier, action, caller.role, now, &calendar)?;
    if action == Action::ReturnResult && fee_unpaid(&mut tx, id).await? {
        return Err(ApiError::new(ErrorCode::FeeUnpaid));
    }
    let to = action.target().unwrap_or(dossier.status);
    apply(&mut tx, id, &dossier, action, to, &request, now, &calendar).await?;
    move_fee(
        &mut tx,
        id,
        &dossier,
        action,
        state.dossiers.postal_delivery_fee,
    )
    .await?;
    // Awaiting a payment nobody owes would wait for ever.
    if action == Action::RequestPayment && !fee_unpaid(&mut tx, id).await? {
        return Err(nothing_owed(&dossier, caller.role, now, &calendar));
    }
    let actor = Actor::Account(caller.account_id, caller.role);
    if let Some(documents) = &request.documents {
        add_documents(
            &mut tx,
            id,
            documents,
            action_name(action),
            Some(caller.account_id),
        )
        .await?;
    }
    record_move(
        &mut tx,
        id,
        action_name(action),
        Some(dossier.status),
        to,
        actor,
        request.reason.as_deref().map(str::trim),
        request.note.as_deref().map(str::trim),
    )
    .await?;
    let moved = detail(&mut tx, id, &caller, &calendar).await?;
    tx.commit().await?;
    // A closed fee bill's `bill.cancelled`, the applicant's notification.
    crate::outbox::committed();
    Ok(Json(moved))
}

/// The action asked for, once the caller may take it (403) on this dossier (404) and the
/// request is valid (422), in the contract's order.
async fn requested_action(
    state: &AppState,
    caller: &Caller<AnyRole>,
    id: Uuid,
    request: &ActionRequest,
) -> ApiResult<Action> {
    let action: Option<Action> =
        serde_json::from_value(serde_json::Value::String(request.action.clone())).ok();
    let may_act = match action {
        Some(action) => action.may_be_taken_by(caller.role),
        None => matches!(caller.role, Role::Officer | Role::Citizen),
    };
    if !may_act {
        return Err(ApiError::new(ErrorCode::Forbidden));
    }
    visible_to(&state.db, &caller.scope(), id).await?;
    let action =
        action.ok_or_else(|| ApiError::invalid_field("action", Message::FieldInvalidValue))?;
    check_request(action, request, &state.dossiers.storage)?;
    Ok(action)
}

/// 409 `invalid_transition`, with what the caller may do instead, unless the dossier's status
/// allows the action.
fn check_transition(
    dossier: &Locked,
    action: Action,
    role: Role,
    now: DateTime<Utc>,
    calendar: &WorkingCalendar,
) -> ApiResult<()> {
    let allowed = allowed_actions(
        dossier.status,
        dossier.due_at,
        dossier.rescheduled,
        role,
        now,
        calendar,
    );
    if !allowed.contains(&action) {
        return Err(invalid_transition(dossier.status, &allowed));
    }
    Ok(())
}

/// 409 `invalid_transition`: the dossier's status, and what the caller may do instead.
fn invalid_transition(status: Status, allowed: &[Action]) -> ApiError {
    ApiError::new(ErrorCode::InvalidTransition)
        .with_extra("current_status", status.as_str())
        .with_extra(
            "allowed_actions",
            serde_json::to_value(allowed).unwrap_or_default(),
        )
}

/// 409 `invalid_transition` for a `request_payment` that leaves nothing unpaid: the procedure
/// is free, or its fee is paid already.
fn nothing_owed(
    dossier: &Locked,
    role: Role,
    now: DateTime<Utc>,
    calendar: &WorkingCalendar,
) -> ApiError {
    let allowed: Vec<Action> = allowed_actions(
        dossier.status,
        dossier.due_at,
        dossier.rescheduled,
        role,
        now,
        calendar,
    )
    .into_iter()
    .filter(|action| *action != Action::RequestPayment)
    .collect();
    invalid_transition(dossier.status, &allowed).with_detail(Message::NoFeeOwed)
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Receive => "receive",
        Action::Refuse => "refuse",
        Action::StartProcessing => "start_processing",
        Action::RequestSupplement => "request_supplement",
        Action::Supplement => "supplement",
        Action::RequestPayment => "request_payment",
        Action::Withdraw => "withdraw",
        Action::Suspend => "suspend",
        Action::Resume => "resume",
        Action::Approve => "approve",
        Action::Reject => "reject",
        Action::ReturnResult => "return_result",
        Action::Reschedule => "reschedule",
    }
}

fn check_request(
    action: Action,
    request: &ActionRequest,
    storage: &DocumentStorage,
) -> ApiResult<()> {
    let reason_given = request
        .reason
        .as_deref()
        .is_some_and(|r| length_within(r, 1, 2000));
    let reason_fits = request
        .reason
        .as_deref()
        .is_none_or(|r| length_within(r, 1, 2000));
    let documents = request.documents.as_deref().unwrap_or_default();
    FieldChecks::new()
        .check(
            if action.needs_reason() {
                reason_given
            } else {
                reason_fits
            },
            "reason",
            if request.reason.is_none() {
                Message::FieldRequired
            } else {
                Message::TextLength { min: 1, max: 2000 }
            },
        )
        .check(
            request
                .note
                .as_deref()
                .is_none_or(|n| n.chars().count() <= 2000),
            "note",
            Message::TextLength { min: 0, max: 2000 },
        )
        .check(
            action != Action::Supplement || !documents.is_empty(),
            "documents",
            Message::FieldRequired,
        )
        .check(
            action != Action::Reschedule || request.appointment_at.is_some(),
            "appointment_at",
            Message::FieldRequired,
        )
        .finish()?;
    check_documents(documents, "documents", storage)
}

/// The move's effect on the row: its status and its clock.
#[allow(clippy::too_many_arguments)]
async fn apply(
    conn: &mut PgConnection,
    id: Uuid,
    dossier: &Locked,
    action: Action,
    to: Status,
    request: &ActionRequest,
    now: DateTime<Utc>,
    calendar: &WorkingCalendar,
) -> ApiResult<()> {
    let mut clock = Clock::of(dossier);
    match action {
        Action::Receive | Action::Supplement => {
            // The clock starts (or restarts from the complete dossier).
            let procedure = crate::procedures::load(conn, &dossier.procedure_code)
                .await?
                .ok_or_else(|| ApiError::internal("a dossier's procedure vanished"))?;
            clock.due_at = Some(calendar.due_at(now, procedure.processing_time()));
            clock.paused_at = None;
        }
        Action::Resume => clock.resume(now, calendar),
        _ if to.stops_clock() && !dossier.status.stops_clock() => clock.paused_at = Some(now),
        _ => {}
    }
    let appointment_at = match action {
        Action::Reschedule => request.appointment_at,
        _ => None,
    };
    save(conn, id, to, &clock, appointment_at, now).await
}

/// Writes a move: the new status, the clock, a new appointment if any, and the time stamps the
/// status implies.
async fn save(
    conn: &mut PgConnection,
    id: Uuid,
    to: Status,
    clock: &Clock,
    appointment_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    sqlx::query!(
        "UPDATE dossiers SET status = $2, due_at = $3, paused_at = $4,
                appointment_at = COALESCE($5, CASE WHEN $6 THEN $3 ELSE appointment_at END),
                rescheduled_at = CASE WHEN $5::timestamptz IS NOT NULL THEN $7 ELSE rescheduled_at END,
                received_at = CASE WHEN $2 = 'received' AND received_at IS NULL THEN $7 ELSE received_at END,
                finished_at = CASE WHEN $2 IN ('result_ready', 'rejected') THEN $7 ELSE finished_at END,
                returned_at = CASE WHEN $2 = 'returned' THEN $7 ELSE returned_at END,
                updated_at = $7
         WHERE id = $1",
        id,
        to.as_str(),
        clock.due_at,
        clock.paused_at,
        appointment_at,
        clock.moves_appointment,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A dossier's processing clock.
struct Clock {
    due_at: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    /// Until a reschedule, the appointment is the due time.
    moves_appointment: bool,
}

impl Clock {
    fn of(dossier: &Locked) -> Self {
        Clock {
            due_at: dossier.due_at,
            paused_at: dossier.paused_at,
            moves_appointment: !dossier.rescheduled,
        }
    }

    /// The due time moves on by the office time the clock stood still.
    fn resume(&mut self, now: DateTime<Utc>, calendar: &WorkingCalendar) {
        if let (Some(due), Some(paused)) = (self.due_at, self.paused_at.take()) {
            self.due_at =
                Some(calendar.add_office_time(due, calendar.office_time_between(paused, now)));
        }
    }
}

/// What the move does to the dossier's fee bill (DESIGN.md, "Dossiers"): receiving a dossier
/// whose procedure bills `on_receipt` bills it; `request_payment` bills it whatever the timing,
/// being what the officer asks for (a dossier billed on receipt keeps its one bill); refusing,
/// withdrawing or rejecting closes it, cancelled if unpaid, refunded if paid.
async fn move_fee(
    conn: &mut PgConnection,
    id: Uuid,
    dossier: &Locked,
    action: Action,
    postal_fee: Option<Money>,
) -> ApiResult<()> {
    match action {
        Action::Receive | Action::RequestPayment => {
            let procedure = crate::procedures::load(conn, &dossier.procedure_code)
                .await?
                .ok_or_else(|| ApiError::internal("a dossier's procedure vanished"))?;
            if action == Action::RequestPayment || procedure.fee_timing == FeeTiming::OnReceipt {
                bill_fee(conn, id, &procedure, postal_fee).await?;
            }
        }
        Action::Refuse | Action::Withdraw | Action::Reject => {
            fees::close_with_dossier(conn, id).await?;
        }
        _ => {}
    }
    Ok(())
}

/// The `(bill paid)` row: a dossier awaiting payment goes back to processing, its due time moved
/// on by the time it waited. The bills issue calls this in the paying transaction; a dossier not
/// awaiting payment is left as it is (`Ok(false)`).
pub async fn fee_paid(conn: &mut PgConnection, id: Uuid) -> ApiResult<bool> {
    let dossier = lock(conn, id).await?;
    if dossier.status != Status::AwaitingPayment {
        return Ok(false);
    }
    let calendar = WorkingCalendar::load(conn).await?;
    let now = Utc::now();
    let mut clock = Clock::of(&dossier);
    clock.resume(now, &calendar);
    save(conn, id, Status::Processing, &clock, None, now).await?;
    record_move(
        conn,
        id,
        "bill_paid",
        Some(Status::AwaitingPayment),
        Status::Processing,
        Actor::System,
        None,
        None,
    )
    .await?;
    Ok(true)
}
