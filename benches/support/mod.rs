//! What the benchmarks share: their settings from the environment and a fresh database.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drops and recreates `name`, migrated, with a pool of `pool_size` that does not ping on
/// every checkout.
pub async fn fresh_database(name: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let mut admin = sqlx::PgConnection::connect(&format!("{SERVER}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .test_before_acquire(false)
        .connect(&format!("{SERVER}/{name}"))
        .await?;
    civicpay::db::migrate(&pool).await?;
    Ok(pool)
}
