//! The transactional outbox: an event is written by [`record`] in the same transaction as the
//! change it announces, so there is never an event for a change that did not happen, nor a
//! change without its event. Delivery reads it later (callbacks to merchants, notifications to
//! citizens). Events about a citizen's wallet are addressed to the citizen and never sent to a
//! merchant.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// Whom an event is about, and so who may ever receive it.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    Citizen(Uuid),
    Merchant(Uuid),
}

/// The envelope every event has (DESIGN.md, "Callbacks").
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

pub async fn record(
    conn: &mut PgConnection,
    event_type: &str,
    data: &serde_json::Value,
    audience: Audience,
) -> Result<Event, sqlx::Error> {
    let (account_id, merchant_id) = match audience {
        Audience::Citizen(id) => (Some(id), None),
        Audience::Merchant(id) => (None, Some(id)),
    };
    let id = Uuid::new_v4();
    let created_at = sqlx::query_scalar!(
        "INSERT INTO outbox_events (id, type, data, account_id, merchant_id) VALUES ($1, $2, $3, $4, $5)
         RETURNING created_at",
        id,
        event_type,
        data,
        account_id,
        merchant_id,
    )
    .fetch_one(conn)
    .await?;
    Ok(Event {
        id,
        event_type: event_type.to_owned(),
        created_at,
        data: data.clone(),
    })
}
