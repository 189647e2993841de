//! The transactional outbox: an event is written by [`record`] in the same transaction as the
//! change it announces, so there is never an event for a change that did not happen, nor a
//! change without its event. Delivery reads it later (callbacks to merchants, notifications to
//! citizens). Events about a citizen's wallet are addressed to the citizen and never sent to a
//! merchant.
//!
//! Whoever commits a transaction that recorded a merchant event calls [`committed`], which
//! wakes the delivery workers of this process at once; other processes' workers find it when
//! they next poll. (Not a NOTIFY: that serializes every committing transaction on one lock.)

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

/// Counts the commits that recorded events in this process; a dispatcher waits for it to move.
static COMMITS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Says that a transaction which recorded events has committed: this process's delivery
/// workers look for due deliveries now. Cheap; a burst of calls costs them one look.
pub fn committed() {
    COMMITS.send_modify(|count| *count = count.wrapping_add(1));
}

/// What a dispatcher waits on to learn of [`committed`] transactions.
pub fn commits() -> watch::Receiver<u64> {
    COMMITS.subscribe()
}

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

/// Finished merchant events (delivered, failed or never to be sent) are kept this long after
/// they happened and after their last attempt (a redelivery starts the time again), for the
/// merchant's event list and redelivery, then purged.
pub const FINISHED_EVENTS_KEPT: &str = "30 days";
/// Events purged per statement, so a purge never holds many locks or a long transaction.
const PURGE_BATCH: i64 = 5_000;
/// Batches per purge: a backlog is worked off over several housekeeping rounds.
const PURGE_BATCHES: usize = 100;

/// Deletes finished merchant events older than [`FINISHED_EVENTS_KEPT`] with their deliveries
/// and attempt logs, in bounded batches; returns how many events went.
pub async fn purge_finished(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut purged = 0;
    for _ in 0..PURGE_BATCHES {
        let batch = purge_batch(db).await?;
        purged += batch;
        if batch < PURGE_BATCH as u64 {
            break;
        }
    }
    Ok(purged)
}

async fn purge_batch(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let ids = sqlx::query_scalar!(
        "SELECT e.id FROM outbox_events e JOIN callback_deliveries d ON d.event_id = e.id
         WHERE e.merchant_id IS NOT NULL AND e.created_at < now() - $1::text::interval
           AND d.state <> 'pending' AND COALESCE(d.last_attempt_at, e.created_at) < now() - $1::text::interval
         ORDER BY e.created_at LIMIT $2
         FOR UPDATE OF d SKIP LOCKED",
        FINISHED_EVENTS_KEPT,
        PURGE_BATCH,
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM callback_attempts WHERE event_id = ANY($1)",
        &ids
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM callback_deliveries WHERE event_id = ANY($1)",
        &ids
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM outbox_events WHERE id = ANY($1)", &ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}
