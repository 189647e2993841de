//! Start-up against PostgreSQL: creating a missing database, migrating, failing clearly.

use crate::support::app::test_config;
use crate::support::database::{database_named, drop_database};

#[tokio::test]
async fn a_missing_database_is_created_and_migrated() {
    let name = format!("civicpay_start_{}", uuid::Uuid::new_v4().simple());
    let database = database_named(&name);
    let pool = civicpay::db::connect(&database)
        .await
        .expect("creates the database");
    civicpay::db::migrate(&pool).await.unwrap();
    civicpay::db::migrate(&pool)
        .await
        .expect("migrating again is a no-op");
    let units: i64 = sqlx::query_scalar("SELECT count(*) FROM units")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(units, 0);
    pool.close().await;
    drop_database(&name).await;
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_a_hint_and_no_password() {
    let mut database = test_config().database;
    database.database_url = "postgres://app:s3cret@127.0.0.1:1/civicpay".into();
    let error = civicpay::db::connect(&database)
        .await
        .expect_err("nothing listens on port 1");
    let message = format!("{error:#}");
    assert!(message.contains("127.0.0.1:1/civicpay"), "{message}");
    assert!(message.contains("CIVICPAY_DATABASE_URL"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}
