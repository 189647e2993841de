//! Databases besides the test's own (for the binary and start-up tests), and counting rows.

use civicpay::config::DatabaseConfig;
use sqlx::{Connection, PgPool};

use super::app::test_config;

/// The configured server with another database name.
pub fn database_named(name: &str) -> DatabaseConfig {
    let mut database = test_config().database;
    let mut url = url::Url::parse(&database.database_url).unwrap();
    url.set_path(name);
    database.database_url = url.to_string();
    database
}

pub async fn drop_database(name: &str) {
    let admin = database_named("postgres");
    let mut conn = sqlx::PgConnection::connect(&admin.database_url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// The answer of a `SELECT count(*) …`.
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
