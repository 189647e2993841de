//! PostgreSQL, the one system of record: the pool, creating the database when it is missing,
//! the embedded migrations and our advisory locks.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::config::DatabaseConfig;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, creating the database first if it does not exist. An unreachable server fails
/// with the URL tried (password hidden) and what to do about it.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let url = &config.database_url;
    let shown = redacted(url);
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("CIVICPAY_DATABASE_URL is not a valid PostgreSQL URL: {shown}"))?;
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|error| unreachable(&shown, error))?;
    if !exists {
        tracing::info!(database = options.get_database(), "creating the database");
        create_database(url)
            .await
            .map_err(|error| unreachable(&shown, error))?;
    }
    let options = match config.db_statement_timeout_ms {
        0 => options,
        ms => options.options([("statement_timeout", format!("{ms}ms"))]),
    };
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_millis(config.db_acquire_timeout_ms))
        // Pinging on every checkout costs a round trip per query; broken connections are
        // noticed by the query itself and dropped by the pool.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|error| unreachable(&shown, error))
}

/// Two processes starting at once may race to create the database; the loser finds it made.
async fn create_database(url: &str) -> Result<(), sqlx::Error> {
    match Postgres::create_database(url).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
        other => other,
    }
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying the migrations in migrations/")
}

fn unreachable(shown_url: &str, error: sqlx::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot use PostgreSQL at {shown_url}: {error}\n\
         Is PostgreSQL running? Start it (on this machine: \
         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) \
         or set CIVICPAY_DATABASE_URL to a server you can reach."
    )
}

/// The namespaces of our advisory locks: the first key of PostgreSQL's two-integer form, so a
/// lock of one purpose never collides with another's whatever its name hashes to (a login's
/// phone, say, with the ledger folder's turn). sqlx's migrator locks with the one-bigint form,
/// a key space of its own. Never renumber a space: two versions of the server run side by
/// side during a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LockSpace {
    /// Loading the demo data, one server at a time.
    Demo = 1,
    /// The folder of deferred ledger credits, one at a time across processes.
    Ledger = 2,
    /// Login attempts on one phone, in turn.
    Login = 3,
    /// Issuing one-time codes, counted against their limits one at a time.
    Otp = 4,
    // 5 was payment-PIN checks of one wallet, which now take turns on the wallet's row.
    /// A counter filing and a wallet verification of one national ID (by its keyed hash), in
    /// turn, so whichever commits second sees the other (`dossiers::claims`).
    DossierClaim = 6,
    /// Numbering one receipt series, one sequencer at a time across processes.
    ReceiptSeries = 7,
}

/// Waits for the advisory lock on `name` in `space`, held until the transaction of `conn` ends.
pub async fn xact_lock(
    conn: &mut sqlx::PgConnection,
    space: LockSpace,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1::int, hashtext($2))",
        space as i32,
        name
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the advisory lock on `name` in `space` if nobody holds it, until the transaction of
/// `conn` ends; whether it was taken.
pub async fn try_xact_lock(
    conn: &mut sqlx::PgConnection,
    space: LockSpace,
    name: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1::int, hashtext($2)) AS "got!""#,
        space as i32,
        name
    )
    .fetch_one(conn)
    .await
}

/// The URL with any password replaced, fit for logs and error messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("*****"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_appear_in_shown_urls() {
        let shown = redacted("postgres://app:s3cret@db.example:5432/civicpay");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example:5432/civicpay"), "{shown}");
    }
}
