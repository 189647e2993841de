//! Failed logins are counted per phone and per client address over a sliding window, in
//! PostgreSQL so every server process shares the counts. Past a limit, login answers 429 with
//! `Retry-After` before the password is even checked. Unknown phones count like known ones.
//! Attempts on one phone take turns under a transaction-scoped advisory lock, so parallel
//! guesses cannot overshoot the per-phone limit; the per-address count is checked without a
//! lock and may overshoot by the number of logins in flight from that address. Addresses are
//! counted by [`rate_key`] (an IPv6 client by its /64).
//!
//! A login does not hold that lock (or any connection) while Argon2 runs: [`LoginLimits::reserve`]
//! checks the limits and records the attempt as a failure up front, under the lock, in a short
//! transaction of its own; the password is checked after it commits; a success then forgives
//! the phone's failures up to and including its own ([`LoginLimits::forgive_through`]), which
//! leaves counted any guess reserved after it. A guess in flight therefore counts as failed from
//! the moment it is let through, so parallel guesses still cannot overshoot, and an attempt that
//! dies mid-hash stays counted.
//!
//! The same table counts other failures by their [`FailureKind`], each on its own:
//! [`AddressLimit`] is the per-address half of these limits for any kind (public tracking's
//! wrong keys, `dossiers::reading`), and [`SubjectLimit`] counts them per subject of our own
//! naming (bill lookups' wrong codes per signed-in account, `bills::citizen`).
//!
//! The application state holds these limits (login's, public tracking's and bill lookups'), so
//! this file uses nothing above the foundations.

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::config::AuthConfig;
use crate::db::{LockSpace, xact_lock};
use crate::http::{ApiError, ApiResult, ErrorCode};

/// What per-address limits count a client under: an IPv4 address as itself, an IPv6 address
/// by its /64 (`2001:db8:1:2::/64`). IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn rate_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

/// 429 with `Retry-After` when `count` uses up `limit` within a window of `window_secs`.
pub fn limit_reached(
    count: i64,
    limit: i64,
    oldest: Option<DateTime<Utc>>,
    window_secs: i64,
) -> ApiResult<()> {
    if count < limit {
        return Ok(());
    }
    let frees_at = oldest.unwrap_or_else(Utc::now) + chrono::Duration::seconds(window_secs);
    let retry_after = (frees_at - Utc::now()).num_seconds().max(1);
    Err(ApiError::new(ErrorCode::RateLimited).with_retry_after(retry_after as u64))
}

#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub per_phone: i64,
    pub per_address: i64,
    pub window_secs: i64,
}

impl From<&AuthConfig> for LoginLimits {
    fn from(config: &AuthConfig) -> Self {
        LoginLimits {
            per_phone: i64::from(config.login_failures_per_phone),
            per_address: i64::from(config.login_failures_per_address),
            window_secs: i64::from(config.login_window_secs),
        }
    }
}

impl LoginLimits {
    /// Waits for this phone's other login attempts, then checks both limits. Hold the
    /// transaction of `conn` until the attempt's outcome is recorded.
    pub async fn check(
        &self,
        conn: &mut PgConnection,
        phone: &str,
        client: IpAddr,
    ) -> ApiResult<()> {
        xact_lock(&mut *conn, LockSpace::Login, phone).await?;
        let usage = sqlx::query!(
            r#"SELECT
                 count(*) FILTER (WHERE phone = $1) AS "phone_count!",
                 min(failed_at) FILTER (WHERE phone = $1) AS phone_oldest,
                 count(*) FILTER (WHERE client_addr = $2) AS "client_count!",
                 min(failed_at) FILTER (WHERE client_addr = $2) AS client_oldest
               FROM login_failures
               WHERE failed_at > now() - make_interval(secs => $3) AND (phone = $1 OR client_addr = $2)
                 AND kind = 'login'"#,
            phone,
            rate_key(client),
            self.window_secs as f64,
        )
        .fetch_one(&mut *conn)
        .await?;
        limit_reached(
            usage.phone_count,
            self.per_phone,
            usage.phone_oldest,
            self.window_secs,
        )?;
        limit_reached(
            usage.client_count,
            self.per_address,
            usage.client_oldest,
            self.window_secs,
        )
    }

    pub async fn record_failure(
        &self,
        conn: &mut PgConnection,
        phone: &str,
        client: IpAddr,
    ) -> ApiResult<()> {
        sqlx::query!(
            "INSERT INTO login_failures (phone, client_addr) VALUES ($1, $2)",
            phone,
            rate_key(client)
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// A successful login (or password reset) forgives the phone's failures.
    pub async fn forgive(&self, conn: &mut PgConnection, phone: &str) -> ApiResult<()> {
        sqlx::query!(
            "DELETE FROM login_failures WHERE phone = $1 AND kind = 'login'",
            phone
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Lets one login attempt through: waits for this phone's other attempts to be let through,
    /// checks both limits, and records the attempt as a failure already, all in `conn`'s
    /// transaction, which the caller commits **before** checking the password (so no lock or
    /// connection is held while Argon2 runs). A success then calls
    /// [`forgive_through`](Self::forgive_through) with the answer.
    pub async fn reserve(
        &self,
        conn: &mut PgConnection,
        phone: &str,
        client: IpAddr,
    ) -> ApiResult<Reserved> {
        self.check(&mut *conn, phone, client).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO login_failures (phone, client_addr) VALUES ($1, $2) RETURNING id",
            phone,
            rate_key(client)
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(Reserved { id })
    }

    /// A successful attempt forgives the phone's failures recorded up to and including its
    /// own reservation. Attempts reserved after it were let through under the phone's lock
    /// after this one (so their ids are higher) and stay counted until they succeed themselves.
    pub async fn forgive_through(
        &self,
        conn: &mut PgConnection,
        phone: &str,
        attempt: Reserved,
    ) -> ApiResult<()> {
        sqlx::query!(
            "DELETE FROM login_failures WHERE phone = $1 AND id <= $2 AND kind = 'login'",
            phone,
            attempt.id
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// A login attempt let through by [`LoginLimits::reserve`], counted as a failure until forgiven.
#[derive(Debug, Clone, Copy)]
#[must_use = "a successful login forgives its reservation"]
pub struct Reserved {
    id: i64,
}

/// What failed. The failures of every kind share one table (`login_failures`, named for its
/// first use, purged with it by `auth::purge_expired`); each kind is counted on its own, so
/// wrong tracking keys do not use up an address's logins, nor the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A login ([`LoginLimits`]); the row's `phone` is the phone as typed.
    Login,
    /// A public-tracking lookup of a dossier that found nothing: an unknown code, or a wrong or
    /// missing tracking key. The row's `phone` holds the code that was asked for.
    Tracking,
    /// A signed-in citizen's lookup of a bill by a code that names no bill. The row's `phone`
    /// holds the id of the account that looked ([`SubjectLimit`]).
    BillLookup,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Login => "login",
            FailureKind::Tracking => "tracking",
            FailureKind::BillLookup => "bill_lookup",
        }
    }
}

/// The per-address half of [`LoginLimits`], for any kind of failure: at most `per_address`
/// failures of `kind` per client address ([`rate_key`]) within a sliding window. Past it, the
/// request answers 429 with `Retry-After` before its secret is looked at, right or wrong (so
/// the answers stop telling right from wrong). Checked without a lock, like the login's
/// per-address count: it may overshoot by the requests in flight from that address.
#[derive(Debug, Clone)]
pub struct AddressLimit {
    pub kind: FailureKind,
    pub per_address: i64,
    pub window_secs: i64,
}

impl AddressLimit {
    pub async fn check(&self, conn: &mut PgConnection, client: IpAddr) -> ApiResult<()> {
        let usage = sqlx::query!(
            r#"SELECT count(*) AS "count!", min(failed_at) AS oldest
               FROM login_failures
               WHERE client_addr = $1 AND kind = $2 AND failed_at > now() - make_interval(secs => $3)"#,
            rate_key(client),
            self.kind.as_str(),
            self.window_secs as f64,
        )
        .fetch_one(&mut *conn)
        .await?;
        limit_reached(
            usage.count,
            self.per_address,
            usage.oldest,
            self.window_secs,
        )
    }

    /// Counts one failure against the address; `subject` is what was tried (its first 100
    /// characters are kept).
    pub async fn record_failure(
        &self,
        conn: &mut PgConnection,
        subject: &str,
        client: IpAddr,
    ) -> ApiResult<()> {
        let subject: String = subject.chars().take(100).collect();
        sqlx::query!(
            "INSERT INTO login_failures (phone, client_addr, kind) VALUES ($1, $2, $3)",
            subject,
            rate_key(client),
            self.kind.as_str(),
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// A limit on failures of `kind` per subject: at most `per_subject` within a sliding window,
/// counted under a subject the server names (the signed-in account that looks bills up by
/// code, by its id), not under anything the client types. Past it, the request answers 429
/// with `Retry-After` before anything is looked up, right or wrong. The subject is kept in the
/// row's `phone` column, indexed with the time. Checked without a lock, like [`AddressLimit`]:
/// it may overshoot by the subject's requests in flight, which is harmless where each guess
/// stands one chance in 2^54.
#[derive(Debug, Clone)]
pub struct SubjectLimit {
    pub kind: FailureKind,
    pub per_subject: i64,
    pub window_secs: i64,
}

impl SubjectLimit {
    pub async fn check(&self, conn: &mut PgConnection, subject: &str) -> ApiResult<()> {
        let usage = sqlx::query!(
            r#"SELECT count(*) AS "count!", min(failed_at) AS oldest
               FROM login_failures
               WHERE phone = $1 AND kind = $2 AND failed_at > now() - make_interval(secs => $3)"#,
            subject,
            self.kind.as_str(),
            self.window_secs as f64,
        )
        .fetch_one(&mut *conn)
        .await?;
        limit_reached(
            usage.count,
            self.per_subject,
            usage.oldest,
            self.window_secs,
        )
    }

    /// Counts one failure against the subject, from the client's address ([`rate_key`]).
    pub async fn record_failure(
        &self,
        conn: &mut PgConnection,
        subject: &str,
        client: IpAddr,
    ) -> ApiResult<()> {
        sqlx::query!(
            "INSERT INTO login_failures (phone, client_addr, kind) VALUES ($1, $2, $3)",
            subject,
            rate_key(client),
            self.kind.as_str(),
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_answers_429_until_the_oldest_use_leaves_the_window() {
        assert!(limit_reached(2, 3, None, 900).is_ok());
        let oldest = Utc::now() - chrono::Duration::seconds(300);
        let error = limit_reached(3, 3, Some(oldest), 900).unwrap_err();
        assert_eq!(error.code(), ErrorCode::RateLimited);
        let retry = error.retry_after_secs().unwrap();
        assert!((599..=600).contains(&retry), "{retry}");
    }
}
