//! Failed logins are counted per phone and per client address over a sliding window, in
//! PostgreSQL so every server process shares the counts. Past a limit, login answers 429 with
//! `Retry-After` before the password is even checked. Unknown phones count like known ones.
//! Attempts on one phone take turns under a transaction-scoped advisory lock, so parallel
//! guesses cannot overshoot the per-phone limit; the per-address count is checked without a
//! lock and may overshoot by the number of logins in flight from that address.

use std::net::IpAddr;

use sqlx::PgConnection;

use super::otp::limit_reached;
use crate::config::AuthConfig;
use crate::db::{LockSpace, xact_lock};
use crate::http::ApiResult;

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
               WHERE failed_at > now() - make_interval(secs => $3) AND (phone = $1 OR client_addr = $2)"#,
            phone,
            client.to_string(),
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
            client.to_string()
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// A successful login (or password reset) forgives the phone's failures.
    pub async fn forgive(&self, conn: &mut PgConnection, phone: &str) -> ApiResult<()> {
        sqlx::query!("DELETE FROM login_failures WHERE phone = $1", phone)
            .execute(conn)
            .await?;
        Ok(())
    }
}
