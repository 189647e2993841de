//! DESIGN.md's transition table: which action moves a dossier from which statuses to which,
//! who may take it and whether it needs a reason. The lifecycle applies it; reading a dossier
//! lists the actions it allows the reader.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Status;
use crate::auth::access::Role;
use crate::calendar::WorkingCalendar;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Receive,
    Refuse,
    StartProcessing,
    RequestSupplement,
    Supplement,
    RequestPayment,
    Withdraw,
    Suspend,
    Resume,
    Approve,
    Reject,
    ReturnResult,
    Reschedule,
}

/// Who may take an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Officer,
    /// The citizen whose dossier it is.
    Owner,
}

struct Rule {
    action: Action,
    from: &'static [Status],
    /// `None`: the status stays (reschedule).
    to: Option<Status>,
    by: By,
    needs_reason: bool,
}

use Status::*;

/// DESIGN.md's table, row for row (the `(bill paid)` row is [`fee_paid`]).
#[rustfmt::skip]
const RULES: &[Rule] = &[
    //   action                     from                                     to                          by           reason
    row(Action::Receive,           &[Submitted],                            Some(Received),             By::Officer, false),
    row(Action::Refuse,            &[Submitted],                            Some(Refused),              By::Officer, true),
    row(Action::StartProcessing,   &[Received],                             Some(Processing),           By::Officer, false),
    row(Action::RequestSupplement, &[Received, Processing],                 Some(SupplementRequested),  By::Officer, true),
    row(Action::Supplement,        &[SupplementRequested],                  Some(Processing),           By::Owner,   false),
    row(Action::RequestPayment,    &[Processing],                           Some(AwaitingPayment),      By::Officer, false),
    row(Action::Withdraw,          &[Submitted, Received, SupplementRequested], Some(Withdrawn),        By::Owner,   true),
    row(Action::Suspend,           &[Received, Processing],                 Some(Suspended),            By::Officer, true),
    row(Action::Resume,            &[Suspended],                            Some(Processing),           By::Officer, false),
    row(Action::Approve,           &[Processing],                           Some(ResultReady),          By::Officer, false),
    row(Action::Reject,            &[Processing],                           Some(Rejected),             By::Officer, true),
    row(Action::ReturnResult,      &[ResultReady, Rejected],                Some(Returned),             By::Officer, false),
    row(Action::Reschedule,        &[Received, Processing, SupplementRequested, AwaitingPayment, Suspended], None, By::Officer, true),
];

const fn row(
    action: Action,
    from: &'static [Status],
    to: Option<Status>,
    by: By,
    needs_reason: bool,
) -> Rule {
    Rule {
        action,
        from,
        to,
        by,
        needs_reason,
    }
}

fn rule(action: Action) -> &'static Rule {
    RULES
        .iter()
        .find(|rule| rule.action == action)
        .expect("every action has its row")
}

fn role_may(by: By, role: Role) -> bool {
    match by {
        By::Officer => role == Role::Officer,
        By::Owner => role == Role::Citizen,
    }
}

/// What `role` may do to a dossier in this state now.
pub fn allowed_actions(
    status: Status,
    due_at: Option<DateTime<Utc>>,
    rescheduled: bool,
    role: Role,
    now: DateTime<Utc>,
    calendar: &WorkingCalendar,
) -> Vec<Action> {
    RULES
        .iter()
        .filter(|rule| role_may(rule.by, role) && rule.from.contains(&status))
        .filter(|rule| {
            rule.action != Action::Reschedule
                || (!rescheduled
                    && due_at.is_some_and(|due| now <= calendar.one_working_day_before(due)))
        })
        .map(|rule| rule.action)
        .collect()
}

impl Action {
    /// The status the action moves a dossier to; `None`: it stays (reschedule).
    pub fn target(self) -> Option<Status> {
        rule(self).to
    }

    pub fn may_be_taken_by(self, role: Role) -> bool {
        role_may(rule(self).by, role)
    }

    pub fn needs_reason(self) -> bool {
        rule(self).needs_reason
    }
}
