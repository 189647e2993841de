//! Dossiers (hồ sơ): filed online by citizens or received at a one-stop counter, moved through
//! DESIGN.md's transition table by officers and their owners, tracked by the citizen, by the
//! unit's staff and, without personal details, by anyone who has the code.
//!
//! [`submission`] creates them (codes without gaps per unit and day), [`lifecycle`] moves them
//! (the transition table, its checks in the contract's order, the clock), [`reading`] lists and
//! shows them, [`rating`] takes the citizen's score once the result is returned, [`claims`]
//! decides whose a counter dossier is (by verified identity, or by the code texted at the
//! counter; never by the phone alone).

mod claims;
pub mod lifecycle;
mod rating;
mod reading;
pub mod settings;
mod submission;
mod transitions;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::auth::Scope;
use crate::bills::fees::{self, FeeLine};
use crate::domain::{Money, NationalId};
use crate::http::error::{FieldChecks, length_within};
use crate::http::messages::Message;
use crate::http::{ApiError, ApiResult, ErrorCode};
use crate::procedures::Procedure;
use crate::state::AppState;
use settings::DocumentStorage;

pub use reading::DossierSummary;

/// The `(bill paid)` transition as bills call it, in the paying transaction
/// ([`crate::bills::on_fee_paid`]).
pub fn fee_paid_hook(
    conn: &mut sqlx::PgConnection,
    dossier_id: uuid::Uuid,
) -> futures_util::future::BoxFuture<'_, crate::http::ApiResult<bool>> {
    Box::pin(lifecycle::fee_paid(conn, dossier_id))
}

/// What a wallet's verification does to dossiers, in its transaction
/// ([`crate::wallet::on_verified`]): the counter dossiers of the ID become the account's
/// ([`claims::claim_by_identity`]).
pub fn verified_hook<'c>(
    conn: &'c mut PgConnection,
    account_id: Uuid,
    national_id: &'c NationalId,
    national_id_hash: &'c [u8],
) -> futures_util::future::BoxFuture<'c, Result<i64, sqlx::Error>> {
    Box::pin(claims::claim_by_identity(
        conn,
        account_id,
        national_id,
        national_id_hash,
    ))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(submission::routes())
        .merge(lifecycle::routes())
        .merge(reading::routes())
        .merge(rating::routes())
        .merge(claims::routes())
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
pub enum DeliveryMethod {
    /// Collected at the counter.
    Counter,
    /// Sent by post to the delivery's `address`.
    Postal,
}

/// How the result reaches the applicant: `{"method": "counter"}` (the default), or
/// `{"method": "postal", "address": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub method: DeliveryMethod,
    /// The postal address (5–500 characters): required for `postal`, absent or null for
    /// `counter`.
    #[schema(
        example = "12 Lê Lợi, phường Phú Xuân, Huế",
        max_length = 500,
        pattern = r"\S[\s\S]{3,}\S"
    )]
    pub address: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            method: DeliveryMethod::Counter,
            address: None,
        }
    }
}

/// A document as a client describes it: the file itself is stored elsewhere.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The procedure's required-document code this answers, if any (1 to 50 characters): one
    /// of the procedure's `required_documents`.
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub code: Option<String>,
    /// 1 to 200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Hex SHA-256 of the file: 64 hexadecimal digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: String,
    /// Bytes: 1 to 104857600 (100 MiB).
    #[schema(minimum = 1, maximum = 104_857_600)]
    pub size: i64,
    /// Where the file is kept: in our document storage (`CIVICPAY_DOCUMENT_STORAGE_PREFIX`,
    /// by default `s3://civicpay-documents/`), followed by the object key: `/`-separated
    /// segments of ASCII letters, digits, `-`, `_` and `.`, none empty, `.` or `..`, at most
    /// 1024 bytes. The pattern shows the default prefix.
    #[schema(
        example = "s3://civicpay-documents/2026/12/01/to-khai.pdf",
        max_length = 1048,
        pattern = r"^s3://civicpay-documents/([A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+)(/([A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+))*$"
    )]
    pub uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Document {
    pub id: Uuid,
    pub code: Option<String>,
    pub name: String,
    pub sha256: String,
    pub size: i64,
    /// Where the file is kept, as it was given.
    pub uri: String,
    /// The move it came with: `submit`, `receive_at_counter`, `supplement`, `approve`, ...
    pub added_with: String,
    pub added_at: DateTime<Utc>,
}

const MAX_DOCUMENTS: usize = 50;
const MAX_DOCUMENT_BYTES: i64 = 100 * 1024 * 1024;

/// Checks the documents of a request, reporting under `field`: the list and each document's
/// details under `field` itself, a URI outside our storage under `{field}[{i}].uri`.
fn check_documents(
    documents: &[DocumentInput],
    field: &str,
    storage: &DocumentStorage,
) -> ApiResult<()> {
    let one_valid = |d: &DocumentInput| {
        length_within(&d.name, 1, 200)
            && d.sha256.len() == 64
            && d.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            && (1..=MAX_DOCUMENT_BYTES).contains(&d.size)
            && d.code.as_deref().is_none_or(|c| length_within(c, 1, 50))
    };
    let within_bounds = documents.len() <= MAX_DOCUMENTS;
    let mut checks = FieldChecks::new().check(
        within_bounds && documents.iter().all(one_valid),
        field,
        Message::FieldInvalidValue,
    );
    if within_bounds {
        for (index, document) in documents.iter().enumerate() {
            checks = checks.check(
                storage.holds(&document.uri),
                &format!("{field}[{index}].uri"),
                Message::DocumentNotInStorage {
                    prefix: storage.prefix.clone(),
                },
            );
        }
    }
    checks.finish()
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
            document.uri,
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

/// Bills the dossier's fee from its procedure's schedule, each fee and charge a line, and the
/// postal fee for a result sent by post; nothing for a free procedure, nothing more for a
/// dossier billed already ([`fees::bill_dossier`]). In the caller's transaction.
async fn bill_fee(
    conn: &mut PgConnection,
    dossier_id: Uuid,
    procedure: &Procedure,
    postal_fee: Option<Money>,
) -> ApiResult<()> {
    let lines = procedure
        .fees
        .iter()
        .map(|fee| {
            Some(FeeLine {
                name: fee.name.clone(),
                amount: Money::payable(fee.amount)?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal("a procedure's fee is out of range"))?;
    fees::bill_dossier(conn, dossier_id, &lines, postal_fee).await?;
    Ok(())
}

/// Whether the dossier exists for this caller: their own for a citizen, within their unit's
/// subtree for staff. Outside it, it does not exist (404), never 403.
pub async fn visible_to(db: &PgPool, scope: &Scope, id: Uuid) -> ApiResult<()> {
    let owner = sqlx::query!(
        "SELECT applicant_id, unit_code FROM dossiers WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let visible = match scope {
        Scope::Own(_) => owner.applicant_id.is_some_and(|o| scope.covers_owner(o)),
        _ => scope.covers_unit(db, &owner.unit_code).await?,
    };
    if visible {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::NotFound))
    }
}
