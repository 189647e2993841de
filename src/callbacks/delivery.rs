//! The delivery workers. Each process runs one dispatcher that claims due deliveries in
//! batches (`FOR UPDATE SKIP LOCKED`, so processes share the work) under a lease, sends them
//! concurrently up to its configured number, and records the attempts with their outcomes in
//! batches: one statement and one commit for whatever attempts finished while the previous
//! batch was being written (one per attempt cost a commit per payment). It wakes when a
//! transaction of this process that recorded an event commits (`outbox::committed`) and polls
//! as well, which is what picks up retries and other processes' events.
//!
//! At least once, never at the same moment twice: a claim moves the delivery's due time to the
//! end of the lease, longer than any attempt may take, so nobody else claims it meanwhile; a
//! dispatcher that dies leaves it due again when the lease runs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::destination::{CheckedResolver, Destinations};
use super::signature;
use crate::background::BackgroundTasks;
use crate::config::Config;
use crate::outbox::{self, Event};

/// How often due deliveries are looked for without a wake-up: retries, events of other
/// processes. A claim that finds nothing is one index probe.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How much of an answer is read and kept in the attempt log.
const ANSWER_KEPT_BYTES: usize = 1024;
/// Most attempts recorded in one statement.
const RECORD_BATCH: usize = 256;
/// The waits before a batch whose write failed (the pool or the database unavailable) is
/// written again; past the last, its attempts go unrecorded and are sent again when their
/// leases run out.
const RECORD_RETRY_WAITS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Callbacks in flight at once in this process; 0 = no workers here.
    pub concurrency: usize,
    pub timeout: Duration,
    pub lease: Duration,
    /// The waits before each retry; after the last, the delivery fails.
    pub retry_schedule: Vec<Duration>,
    pub destinations: Destinations,
}

impl DeliverySettings {
    pub fn from_config(config: &Config) -> Self {
        let callbacks = &config.callbacks;
        DeliverySettings {
            concurrency: callbacks.workers as usize,
            timeout: Duration::from_millis(callbacks.timeout_ms),
            lease: Duration::from_millis(callbacks.lease_ms),
            retry_schedule: callbacks.retry_schedule.0.clone(),
            destinations: Destinations::for_mode(config.mode),
        }
    }
}

/// Starts this process's dispatcher, unless its workers are switched off.
pub fn spawn_workers(tasks: &BackgroundTasks, db: PgPool, settings: DeliverySettings) {
    if settings.concurrency == 0 {
        tracing::info!("callback delivery is switched off in this process");
        return;
    }
    let dispatcher = Dispatcher::new(db, settings);
    tasks.spawn("callback delivery", |cancel| dispatcher.run(cancel));
}

#[derive(Clone)]
pub struct Dispatcher {
    db: PgPool,
    client: reqwest::Client,
    settings: Arc<DeliverySettings>,
}

/// A delivery this dispatcher holds the lease of.
struct Claimed {
    event: Event,
    lease_token: Uuid,
    scheduled_attempts: i32,
    callback_url: Option<String>,
    secrets: Vec<String>,
}

/// What one attempt gave.
struct AttemptResult {
    attempted_at: DateTime<Utc>,
    url: String,
    latency: Duration,
    answer: Result<Answer, String>,
}

struct Answer {
    status: u16,
    body_start: String,
}

/// An attempt as it is recorded: the log row and the delivery's new state.
struct Recorded {
    event_id: Uuid,
    lease_token: Uuid,
    scheduled_attempts: i32,
    result: AttemptResult,
    next: Next,
}

/// What happens to a delivery after an attempt.
enum Next {
    Delivered,
    RetryAfter(Duration),
    Failed,
}

impl Dispatcher {
    pub fn new(db: PgPool, settings: DeliverySettings) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(settings.destinations)))
            .user_agent("civicpay-callbacks/1")
            .build()
            .expect("the HTTP client's fixed settings are valid");
        Dispatcher {
            db,
            client,
            settings: Arc::new(settings),
        }
    }

    /// Delivers until `cancel` fires, then lets the attempts in flight finish.
    pub async fn run(self, cancel: CancellationToken) {
        let (mut outcomes, mut recorder) = self.spawn_recorder();
        let mut commits = outbox::commits();
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.try_join_next().is_some() {}
            if recorder.is_finished() {
                // Only a panic ends it early (none is known); without it every attempt would go
                // unrecorded.
                tracing::error!("the callback attempt recorder stopped; starting another");
                (outcomes, recorder) = self.spawn_recorder();
            }
            let free = slots.available_permits();
            if free > 0 {
                match self.claim(free).await {
                    Ok(batch) => {
                        let full = batch.len() == free;
                        for claimed in batch {
                            let slot = slots.clone().try_acquire_owned().expect("a free slot");
                            in_flight.spawn(self.clone().attempt(claimed, slot, outcomes.clone()));
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming due callbacks failed"),
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = next_commit(&mut commits) => {}
                _ = in_flight.join_next(), if free == 0 => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        // The recorder writes what is left and stops once every sender is gone.
        drop(outcomes);
        if let Err(error) = recorder.await {
            tracing::warn!(%error, "the callback attempt recorder stopped");
        }
    }

    /// The recorder task and the queue to it, bounded so a recorder that falls behind slows
    /// the sending.
    fn spawn_recorder(&self) -> (mpsc::Sender<Recorded>, tokio::task::JoinHandle<()>) {
        let (outcomes, recorded) = mpsc::channel(2 * self.settings.concurrency.max(1));
        (
            outcomes,
            tokio::spawn(record_batches(self.db.clone(), recorded)),
        )
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, sqlx::Error> {
        let lease_token = Uuid::new_v4();
        let rows = sqlx::query!(
            r#"UPDATE callback_deliveries d
               SET next_attempt_at = now() + make_interval(secs => $2), lease_token = $3
               FROM (SELECT event_id FROM callback_deliveries
                     WHERE state = 'pending' AND next_attempt_at <= now()
                     ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due,
                    outbox_events e, merchants m
               WHERE d.event_id = due.event_id AND e.id = d.event_id AND m.id = d.merchant_id
               RETURNING d.event_id, d.scheduled_attempts, e.type, e.data, e.created_at,
                         m.callback_url, m.webhook_secret,
                         CASE WHEN m.previous_webhook_secret_expires_at > now()
                              THEN m.previous_webhook_secret END AS previous_secret"#,
            i64::try_from(limit).unwrap_or(i64::MAX),
            self.settings.lease.as_secs_f64(),
            lease_token,
        )
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Claimed {
                event: Event {
                    id: row.event_id,
                    event_type: row.r#type,
                    created_at: row.created_at,
                    data: row.data,
                },
                lease_token,
                scheduled_attempts: row.scheduled_attempts,
                callback_url: row.callback_url,
                secrets: std::iter::once(row.webhook_secret)
                    .chain(row.previous_secret)
                    .collect(),
            })
            .collect())
    }

    /// Sends `claimed` and hands the outcome to the recorder; the slot is held until the
    /// outcome is queued, so a recorder that falls behind slows the sending. The outcome may
    /// be written after the lease ran out (the recorder retrying a failed write): the delivery
    /// may then have been sent again, at least once, and the late write leaves its new lease be.
    async fn attempt(
        self,
        claimed: Claimed,
        _slot: OwnedSemaphorePermit,
        outcomes: mpsc::Sender<Recorded>,
    ) {
        let attempted_at = Utc::now();
        let started = Instant::now();
        let answer = tokio::time::timeout(self.settings.timeout, self.send(&claimed))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.settings.timeout)));
        let result = AttemptResult {
            attempted_at,
            url: claimed.callback_url.clone().unwrap_or_default(),
            latency: started.elapsed(),
            answer,
        };
        let next = self.next_after(&claimed, &result);
        let recorded = Recorded {
            event_id: claimed.event.id,
            lease_token: claimed.lease_token,
            scheduled_attempts: claimed.scheduled_attempts,
            result,
            next,
        };
        if outcomes.send(recorded).await.is_err() {
            // The recorder stopped (a panic; it is restarted): the lease runs out and the event
            // is sent again, at least once.
            tracing::warn!(event_id = %claimed.event.id, "a callback attempt was not recorded");
        }
    }

    /// One POST of the signed envelope; any answer is returned, judged by the caller.
    async fn send(&self, claimed: &Claimed) -> Result<Answer, String> {
        let url = claimed
            .callback_url
            .as_deref()
            .ok_or("the merchant has no callback URL")?;
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid callback URL: {e}"))?;
        if !self.settings.destinations.url_allowed(&parsed) {
            return Err("the callback URL is not allowed in this mode".into());
        }
        let body = serde_json::to_vec(&claimed.event).map_err(|e| e.to_string())?;
        let webhook_id = claimed.event.id.to_string();
        let timestamp = Utc::now().timestamp();
        let secrets: Vec<&str> = claimed.secrets.iter().map(String::as_str).collect();
        let signature = signature::header(&secrets, &webhook_id, timestamp, &body)
            .map_err(|_| "the merchant's webhook secret is malformed".to_owned())?;
        let mut response = self
            .client
            .post(parsed)
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        let mut kept = Vec::new();
        while kept.len() < ANSWER_KEPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        kept.truncate(ANSWER_KEPT_BYTES);
        Ok(Answer {
            status,
            body_start: String::from_utf8_lossy(&kept).into_owned(),
        })
    }

    fn next_after(&self, claimed: &Claimed, result: &AttemptResult) -> Next {
        if matches!(&result.answer, Ok(answer) if (200..300).contains(&answer.status)) {
            return Next::Delivered;
        }
        let retries_made = usize::try_from(claimed.scheduled_attempts).unwrap_or(0);
        match self.settings.retry_schedule.get(retries_made) {
            Some(wait) => Next::RetryAfter(*wait),
            None => Next::Failed,
        }
    }
}

/// Records attempts as they come: whatever finished while the previous batch was written goes
/// into the next, up to [`RECORD_BATCH`]. Stops when the dispatcher is gone and all is written.
async fn record_batches(db: PgPool, mut outcomes: mpsc::Receiver<Recorded>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        record_batch(&db, &mut batch).await;
        batch.clear();
    }
}

/// Writes `batch`. A batch the database refuses (data it cannot take) is written one attempt
/// at a time, so a row it refuses costs only its own attempt. What is still not written is
/// sent again when its lease runs out.
async fn record_batch(db: &PgPool, batch: &mut [Recorded]) {
    let error = match record_retrying(db, batch).await {
        Ok(()) => return,
        Err(error) if refused_data(&error) => error,
        Err(error) => {
            tracing::warn!(%error, attempts = batch.len(), "recording callback attempts failed");
            return;
        }
    };
    tracing::warn!(%error, "a batch of callback attempts was refused; recording them one by one");
    for recorded in batch.chunks_mut(1) {
        if let Err(error) = record_retrying(db, recorded).await {
            tracing::warn!(%error, event_id = %recorded[0].event_id, "recording a callback attempt failed");
        }
    }
}

/// Writes `batch`, waiting and trying again while the database is out of reach or busy
/// (anything but a refusal of the data itself). A write whose answer was lost may have
/// committed: writing it again logs no attempt twice (see `record`).
async fn record_retrying(db: &PgPool, batch: &mut [Recorded]) -> Result<(), sqlx::Error> {
    let mut waits = RECORD_RETRY_WAITS.iter();
    loop {
        match record(db, batch).await {
            Err(error) if !refused_data(&error) => match waits.next() {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => return Err(error),
            },
            done => return done,
        }
    }
}

/// Whether the database refused the data itself (SQLSTATE classes 22 and 23), which no retry
/// changes.
fn refused_data(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|e| e.code());
    code.is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

/// The attempts' log rows and their deliveries' new states, in one statement. A delivery whose
/// lease was lost meanwhile keeps its state; its attempt is logged all the same, once: an
/// attempt already logged (by a write of this batch that committed but whose answer was lost)
/// is not logged again, an attempt being its event and the moment it was made.
async fn record(db: &PgPool, batch: &mut [Recorded]) -> Result<(), sqlx::Error> {
    // Rows locked in one order by every batch, so two recorders never deadlock.
    batch.sort_by_key(|recorded| recorded.event_id);
    let mut rows = AttemptRows::default();
    for recorded in batch.iter() {
        rows.push(recorded);
    }
    sqlx::query!(
        r#"WITH r AS (
               SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::int[], $5::int[],
                                    $6::text[], $7::text[], $8::text[], $9::int[], $10::timestamptz[], $11::uuid[])
                      AS r(event_id, attempted_at, url, status_code, latency_ms, error, response_body,
                           state, scheduled_attempts, next_attempt_at, lease_token)
           ), attempt AS (
               INSERT INTO callback_attempts (event_id, attempted_at, url, status_code, latency_ms, error, response_body)
               SELECT event_id, attempted_at, url, status_code, latency_ms, error, response_body FROM r
               WHERE NOT EXISTS (SELECT 1 FROM callback_attempts a
                                 WHERE a.event_id = r.event_id AND a.attempted_at = r.attempted_at)
           )
           UPDATE callback_deliveries d
           SET state = r.state, attempt_count = d.attempt_count + 1, scheduled_attempts = r.scheduled_attempts + 1,
               next_attempt_at = COALESCE(r.next_attempt_at, d.next_attempt_at), last_attempt_at = r.attempted_at,
               delivered_at = CASE WHEN r.state = 'delivered' THEN r.attempted_at ELSE d.delivered_at END,
               lease_token = NULL
           FROM r WHERE d.event_id = r.event_id AND d.lease_token = r.lease_token"#,
        &rows.event_ids,
        &rows.attempted_at,
        &rows.urls,
        &rows.status_codes as &[Option<i32>],
        &rows.latencies_ms,
        &rows.errors as &[Option<String>],
        &rows.bodies,
        &rows.states,
        &rows.scheduled_attempts,
        &rows.next_attempt_at as &[Option<DateTime<Utc>>],
        &rows.lease_tokens,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A batch of attempts as the columns `record` binds.
#[derive(Default)]
struct AttemptRows {
    event_ids: Vec<Uuid>,
    attempted_at: Vec<DateTime<Utc>>,
    urls: Vec<String>,
    status_codes: Vec<Option<i32>>,
    latencies_ms: Vec<i32>,
    errors: Vec<Option<String>>,
    bodies: Vec<String>,
    states: Vec<String>,
    scheduled_attempts: Vec<i32>,
    next_attempt_at: Vec<Option<DateTime<Utc>>>,
    lease_tokens: Vec<Uuid>,
}

impl AttemptRows {
    fn push(&mut self, recorded: &Recorded) {
        let result = &recorded.result;
        let (state, next_attempt_at) = match recorded.next {
            Next::Delivered => ("delivered", None),
            Next::RetryAfter(wait) => ("pending", Some(Utc::now() + wait)),
            Next::Failed => ("failed", None),
        };
        let (status_code, error, body_start) = match &result.answer {
            Ok(answer) => (
                Some(i32::from(answer.status)),
                None,
                storable(&answer.body_start),
            ),
            Err(error) => (None, Some(storable(error)), String::new()),
        };
        self.event_ids.push(recorded.event_id);
        self.attempted_at.push(result.attempted_at);
        self.urls.push(result.url.clone());
        self.status_codes.push(status_code);
        self.latencies_ms
            .push(i32::try_from(result.latency.as_millis()).unwrap_or(i32::MAX));
        self.errors.push(error);
        self.bodies.push(body_start);
        self.states.push(state.to_owned());
        self.scheduled_attempts.push(recorded.scheduled_attempts);
        self.next_attempt_at.push(next_attempt_at);
        self.lease_tokens.push(recorded.lease_token);
    }
}

/// `text` as PostgreSQL can store it: a merchant's answer may hold NUL characters, which no
/// `text` value can, and one such answer must not keep its batch from being recorded.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Waits until an event-recording transaction of this process commits; every commit since
/// the last wake-up counts as seen, so a burst of commits costs one claim.
async fn next_commit(commits: &mut watch::Receiver<u64>) {
    if commits.changed().await.is_err() {
        // The sender is a static that lives as long as the process: polling takes over.
        std::future::pending::<()>().await;
    }
}

/// An error with its causes, the way a merchant debugging its endpoint wants to read it.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
