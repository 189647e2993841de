//! Dossiers (hồ sơ): filed online by citizens or received at a one-stop counter, moved through
//! DESIGN.md's transition table by officers and their owners, tracked by the citizen, by the
//! unit's staff and, without personal details, by anyone who has the code.
//!
//! [`submission`] creates them (codes without gaps per unit and day), [`lifecycle`] moves them
//! (the transition table, its checks in the contract's order, the clock), [`reading`] lists and
//! shows them, [`rating`] takes the citizen's score once the result is returned.

pub mod lifecycle;
mod rating;
mod reading;
mod submission;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::ApiResult;
use crate::http::error::{FieldChecks, length_within};
use crate::http::messages::Message;

pub use reading::DossierSummary;
pub use submission::claim_for_new_account;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(submission::routes())
        .merge(lifecycle::routes())
        .merge(reading::routes())
        .merge(rating::routes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Status {
    Submitted,
    Received,
    Refused,
    Processing,
    SupplementRequested,
    AwaitingPayment,
    Withdrawn,
    Suspended,
    ResultReady,
    Rejected,
    Returned,
}

impl Status {
    /// Still needs work at the counter: what a unit's worklist shows by default.
    pub const OPEN: &[Status] = &[
        Status::Submitted,
        Status::Received,
        Status::Processing,
        Status::SupplementRequested,
        Status::AwaitingPayment,
        Status::Suspended,
        Status::ResultReady,
        Status::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Received => "received",
            Status::Refused => "refused",
            Status::Processing => "processing",
            Status::SupplementRequested => "supplement_requested",
            Status::AwaitingPayment => "awaiting_payment",
            Status::Withdrawn => "withdrawn",
            Status::Suspended => "suspended",
            Status::ResultReady => "result_ready",
            Status::Rejected => "rejected",
            Status::Returned => "returned",
        }
    }

    /// Whether the processing clock stands still in this status.
    pub fn stops_clock(self) -> bool {
        matches!(
            self,
            Status::SupplementRequested | Status::AwaitingPayment | Status::Suspended
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Channel {
    Online,
    Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ResultDelivery {
    /// Collected at the counter.
    Counter,
    /// Sent by post to `postal_address`.
    Postal,
}

/// A document as a client describes it: the file itself is stored elsewhere.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The procedure's required-document code this answers, if any.
    pub code: Option<String>,
    pub name: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Bytes.
    pub size: i64,
    /// Where the file is kept, e.g. `s3://civicpay-docs/…`.
    pub storage_uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Document {
    pub id: Uuid,
    pub code: Option<String>,
    pub name: String,
    pub sha256: String,
    pub size: i64,
    pub storage_uri: String,
    /// The move it came with: `submit`, `receive_at_counter`, `supplement`, `approve`, ...
    pub added_with: String,
    pub added_at: DateTime<Utc>,
}

const MAX_DOCUMENTS: usize = 50;
const MAX_DOCUMENT_BYTES: i64 = 100 * 1024 * 1024;

/// Checks the documents of a request, reporting under `field`.
fn check_documents(documents: &[DocumentInput], field: &str) -> ApiResult<()> {
    let one_valid = |d: &DocumentInput| {
        length_within(&d.name, 1, 200)
            && d.sha256.len() == 64
            && d.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            && (1..=MAX_DOCUMENT_BYTES).contains(&d.size)
            && d.storage_uri.len() <= 2000
            && url::Url::parse(&d.storage_uri).is_ok()
            && d.code.as_deref().is_none_or(|c| length_within(c, 1, 50))
    };
    FieldChecks::new()
        .check(
            documents.len() <= MAX_DOCUMENTS && documents.iter().all(one_valid),
            field,
            Message::FieldInvalidValue,
        )
        .finish()
}

/// Stores documents that came with a move.
async fn add_documents(
    conn: &mut PgConnection,
    dossier_id: Uuid,
    documents: &[DocumentInput],
    added_with: &str,
    added_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    for document in documents {
        sqlx::query!(
            "INSERT INTO dossier_documents (id, dossier_id, code, name, sha256, size_bytes, storage_uri, added_with, added_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            Uuid::new_v4(),
            dossier_id,
            document.code,
            document.name.trim(),
            document.sha256.to_ascii_lowercase(),
            document.size,
            document.storage_uri,
            added_with,
            added_by,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One line of a dossier's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineEvent {
    pub action: String,
    pub from_status: Option<Status>,
    pub to_status: Status,
    /// `citizen`, `officer`, or `system` (a paid bill).
    pub actor_role: String,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Who made a move, for its timeline line.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Account(Uuid, crate::auth::access::Role),
    System,
}

/// Writes a move's timeline line and the citizen's notification, in the move's transaction.
#[allow(clippy::too_many_arguments)]
async fn record_move(
    conn: &mut PgConnection,
    dossier_id: Uuid,
    action: &str,
    from: Option<Status>,
    to: Status,
    actor: Actor,
    reason: Option<&str>,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    let (actor_id, actor_role) = match actor {
        Actor::Account(id, role) => (Some(id), role.as_str()),
        Actor::System => (None, "system"),
    };
    let applicant = sqlx::query_scalar!(
        "WITH moved AS (
             INSERT INTO dossier_events (dossier_id, action, from_status, to_status, actor_id, actor_role, reason, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8))
         SELECT applicant_id FROM dossiers WHERE id = $1",
        dossier_id,
        action,
        from.map(Status::as_str),
        to.as_str(),
        actor_id,
        actor_role,
        reason,
        note,
    )
    .fetch_one(&mut *conn)
    .await?;
    if let Some(applicant) = applicant {
        let data = serde_json::json!({"dossier_id": dossier_id, "action": action, "status": to});
        crate::outbox::record(
            conn,
            "dossier.status_changed",
            &data,
            crate::outbox::Audience::Citizen(applicant),
        )
        .await?;
    }
    Ok(())
}
