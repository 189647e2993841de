//! A void request as stored and read: what a collection shows of its void, and what the void
//! routes ([`super::voids`]) write and answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum VoidStatus {
    Pending,
    Approved,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VoidRequest {
    pub id: Uuid,
    pub collection_id: Uuid,
    pub status: VoidStatus,
    pub reason: String,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT id, collection_id, status, reason, requested_by, requested_at,
                             approved_by, approved_at
                      FROM counter_void_requests";

#[derive(sqlx::FromRow)]
pub(super) struct VoidRow {
    id: Uuid,
    collection_id: Uuid,
    status: VoidStatus,
    reason: String,
    requested_by: Uuid,
    requested_at: DateTime<Utc>,
    approved_by: Option<Uuid>,
    approved_at: Option<DateTime<Utc>>,
}

impl From<VoidRow> for VoidRequest {
    fn from(row: VoidRow) -> Self {
        VoidRequest {
            id: row.id,
            collection_id: row.collection_id,
            status: row.status,
            reason: row.reason,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            approved_by: row.approved_by,
            approved_at: row.approved_at,
        }
    }
}

/// The void request of a collection, if one was made (one at most).
pub(super) async fn of_collection(
    conn: &mut PgConnection,
    collection_id: Uuid,
) -> Result<Option<VoidRequest>, sqlx::Error> {
    let row: Option<VoidRow> = sqlx::query_as(&format!("{SELECT} WHERE collection_id = $1"))
        .bind(collection_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(VoidRequest::from))
}

pub(super) async fn find(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<VoidRequest>, sqlx::Error> {
    let row: Option<VoidRow> = sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(VoidRequest::from))
}
