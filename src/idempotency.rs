//! Idempotency for every money-moving POST (DESIGN.md, "Idempotency"), as one extractor,
//! [`Idempotent`], and one method, [`Idempotent::run`]:
//!
//! - the key row is inserted in the effect's own transaction, together with the response, so a
//!   crash leaves neither;
//! - a concurrent repeat blocks on that row until the first transaction ends, then replays its
//!   response (or, if it rolled back, runs itself); past 5 s of waiting it gets 409
//!   `idempotency_in_progress`;
//! - a business refusal (4xx) is committed with the key and no effect (the effect runs in a
//!   savepoint that is rolled back), so it replays too; a 5xx rolls everything back, key
//!   included, so a retry runs afresh;
//! - a repeat with the same fingerprint (method, path, SHA-256 of the body) gets the stored
//!   status and body with `Idempotent-Replayed: true`; another fingerprint gets 422
//!   `idempotency_key_reused`.
//!
//! Authentication runs in the handler before [`Idempotent::run`]; a payment's PIN is checked
//! by the guard of [`Idempotent::run_guarded`], in the same transaction before the key is
//! claimed. Neither failure is ever stored under the key.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::http::error::PROBLEM_JSON;
use crate::http::extract::{has_json_content_type, json_body_bytes, parse_json};
use crate::http::messages::Lang;
use crate::http::request_id::RequestId;
use crate::http::{ApiError, ApiResult, ErrorCode};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;
/// Opens an idempotent run's transaction: a repeat waits at most 5 s for the first request's
/// transaction before answering 409.
const BEGIN_WAITING_AT_MOST_THE_BOUND: &str = "BEGIN; SET LOCAL lock_timeout = '5s'";

/// A JSON body guarded by an `Idempotency-Key`.
pub struct Idempotent<T> {
    key: String,
    fingerprint: [u8; 32],
    body: T,
    lang: Lang,
    request_id: Option<String>,
}

/// What an effect answers on success.
pub struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl Answer {
    /// `body` answered with `status`, as it will be stored under the key.
    pub fn of(status: StatusCode, body: &impl serde::Serialize) -> ApiResult<Answer> {
        Ok(Answer {
            status,
            body: serde_json::to_value(body).map_err(ApiError::internal)?,
        })
    }
}

impl<T, S> FromRequest<S> for Idempotent<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let key = request
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::new(ErrorCode::IdempotencyKeyRequired))?;
        let lang = Lang::negotiate(request.headers());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.as_str().to_owned());
        let mut hasher = Sha256::new();
        hasher.update(request.method().as_str().as_bytes());
        hasher.update(b" ");
        hasher.update(request.uri().path().as_bytes());
        hasher.update(b"\n");
        let bytes = body_bytes(request, state).await?;
        hasher.update(&bytes);
        // Routes whose request has nothing to say (paying an order) accept an empty body.
        let body = parse_json(if bytes.is_empty() { b"{}" } else { &bytes })?;
        Ok(Idempotent {
            key,
            fingerprint: hasher.finalize().into(),
            body,
            lang,
            request_id,
        })
    }
}

impl<T> Idempotent<T> {
    /// The parsed body, for a handler that chooses how to run by what was asked.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// Runs `effect` once per key and caller, answering repeats from what was stored.
    pub async fn run<F>(self, db: &PgPool, caller_id: Uuid, effect: F) -> Response
    where
        F: for<'c> FnOnce(&'c mut PgConnection, T) -> BoxFuture<'c, ApiResult<Answer>>
            + Send
            + 'static,
        T: Send + Sync + 'static,
    {
        self.run_guarded(db, caller_id, no_guard, move |conn, body, ()| {
            effect(conn, body)
        })
        .await
    }

    /// As [`Idempotent::run`], after `guard` (the payment PIN) has passed in the same
    /// transaction, before the key is claimed; what it found is handed to `effect`. A guard's
    /// refusal commits what the guard wrote (a wrong PIN's count) and nothing is stored under
    /// the key, so a repeat is checked afresh.
    ///
    /// It runs in a task of its own, to its end, even when the client hangs up meanwhile
    /// (which drops the handler): the client's retry with the same key is then answered from
    /// what was stored, where a payment cancelled halfway would only be work thrown away.
    /// (The effect's savepoint is written by hand, not by a nested sqlx transaction, so
    /// whatever stops the run, the dropped transaction's ROLLBACK ends it too.)
    pub async fn run_guarded<G, P, F>(
        self,
        db: &PgPool,
        caller_id: Uuid,
        guard: G,
        effect: F,
    ) -> Response
    where
        G: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, ApiResult<P>> + Send + 'static,
        P: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection, T, P) -> BoxFuture<'c, ApiResult<Answer>>
            + Send
            + 'static,
        T: Send + Sync + 'static,
    {
        let db = db.clone();
        let task = tokio::spawn(async move {
            match self.run_inner(&db, caller_id, guard, effect).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        });
        match task.await {
            Ok(response) => response,
            // A panic inside the effect: its transaction rolled back as it unwound.
            Err(failed) => ApiError::internal(failed).into_response(),
        }
    }

    async fn run_inner<G, P, F>(
        self,
        db: &PgPool,
        caller_id: Uuid,
        guard: G,
        effect: F,
    ) -> ApiResult<Response>
    where
        G: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, ApiResult<P>>,
        F: for<'c> FnOnce(&'c mut PgConnection, T, P) -> BoxFuture<'c, ApiResult<Answer>>,
    {
        // The wait for the guard's lock (the payer's other payment in flight, a repeat of this
        // one among them) and for the key row is bounded; one round trip with the BEGIN.
        let mut tx = db.begin_with(BEGIN_WAITING_AT_MOST_THE_BOUND).await?;
        let passed = match guard(&mut tx).await {
            Ok(passed) => passed,
            Err(refusal) if refusal.is_lasting_refusal() => {
                tx.commit().await?;
                return Err(refusal);
            }
            Err(fault) => return Err(fault),
        };
        let claimed = sqlx::query_scalar!(
            r#"INSERT INTO idempotency_keys (caller_id, key, fingerprint) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING RETURNING true AS "claimed!""#,
            caller_id,
            self.key,
            self.fingerprint.as_slice(),
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(in_progress_or)?
        .is_some();
        if !claimed {
            let replayed = self.replay(&mut tx, caller_id).await;
            // What the guard wrote stands: a right PIN forgives the failures before it.
            tx.commit().await?;
            return replayed;
        }
        // The effect waits for its locks unbounded (within the statement timeout), in a
        // savepoint of its own: one round trip for both. An effect that succeeds leaves the
        // savepoint to the commit, which ends it with the transaction.
        sqlx::Executor::execute(&mut *tx, "SET LOCAL lock_timeout = 0; SAVEPOINT effect").await?;
        let (status, content_type, body) = match effect(&mut tx, self.body, passed).await {
            Ok(answer) => (
                answer.status,
                "application/json",
                serde_json::to_vec(&answer.body).map_err(ApiError::internal)?,
            ),
            Err(refusal) if refusal.is_lasting_refusal() => {
                sqlx::Executor::execute(&mut *tx, "ROLLBACK TO SAVEPOINT effect").await?;
                let problem = refusal.to_problem(self.lang, self.request_id.as_deref());
                (
                    refusal.status(),
                    PROBLEM_JSON,
                    serde_json::to_vec(&problem).map_err(ApiError::internal)?,
                )
            }
            // Our fault, or data the database refused: the transaction, key included, rolls
            // back as `tx` drops, so a retry runs afresh.
            Err(fault) => return Err(fault),
        };
        sqlx::query!(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4, response_content_type = $5
             WHERE caller_id = $1 AND key = $2",
            caller_id,
            self.key,
            i32::from(status.as_u16()),
            body,
            content_type,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if status.is_success() {
            // The effect may have recorded events: their delivery need not wait for a poll.
            crate::outbox::committed();
        }
        Ok(stored_response(
            status,
            content_type,
            body,
            self.lang,
            false,
        ))
    }

    async fn replay(&self, conn: &mut PgConnection, caller_id: Uuid) -> ApiResult<Response> {
        let stored = sqlx::query!(
            "SELECT fingerprint, response_status, response_body, response_content_type
             FROM idempotency_keys WHERE caller_id = $1 AND key = $2",
            caller_id,
            self.key,
        )
        .fetch_one(conn)
        .await?;
        if stored.fingerprint != self.fingerprint {
            return Err(ApiError::new(ErrorCode::IdempotencyKeyReused));
        }
        let (Some(status), Some(body), Some(content_type)) = (
            stored.response_status,
            stored.response_body,
            stored.response_content_type,
        ) else {
            return Err(ApiError::internal(
                "an idempotency key was committed without its response",
            ));
        };
        let status = StatusCode::from_u16(status as u16).map_err(ApiError::internal)?;
        Ok(stored_response(
            status,
            &content_type,
            body,
            self.lang,
            true,
        ))
    }
}

/// The guard of a request that has nothing to check before its key.
fn no_guard(_: &mut PgConnection) -> BoxFuture<'_, ApiResult<()>> {
    Box::pin(async { Ok(()) })
}

/// The response as first answered. A replayed problem keeps the language it was first
/// rendered in, so no `Content-Language` is claimed for it.
fn stored_response(
    status: StatusCode,
    content_type: &str,
    body: Vec<u8>,
    lang: Lang,
    replayed: bool,
) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if content_type == PROBLEM_JSON && !replayed {
        headers.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.tag()),
        );
    }
    if replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// A repeat that waited past the bound for the first request is told to come back later.
pub fn in_progress_or(error: sqlx::Error) -> ApiError {
    let lock_timeout = error.as_database_error().and_then(|e| e.code()).as_deref() == Some("55P03");
    if lock_timeout {
        ApiError::new(ErrorCode::IdempotencyInProgress).with_retry_after(1)
    } else {
        error.into()
    }
}

/// An empty body, or a JSON one.
async fn body_bytes<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    let declared = request.headers().contains_key(header::CONTENT_TYPE);
    if declared || has_json_content_type(request.headers()) {
        return json_body_bytes(request, state).await;
    }
    let bytes = axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|_| ApiError::new(ErrorCode::MalformedBody))?;
    if bytes.is_empty() {
        Ok(bytes)
    } else {
        Err(ApiError::new(ErrorCode::UnsupportedMediaType))
    }
}

/// Keys are kept 24 hours.
pub async fn purge_expired(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
        .execute(db)
        .await?;
    Ok(())
}
