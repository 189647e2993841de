//! Demo data loads, and loading it again changes nothing.

use sqlx::PgPool;

use crate::support::demo::load_demo;

async fn snapshot(
    pool: &PgPool,
) -> Vec<(
    String,
    String,
    String,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
)> {
    sqlx::query_as("SELECT code, name, level, parent_code, created_at FROM units ORDER BY code")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn loading_the_demo_twice_changes_nothing(pool: PgPool) {
    load_demo(&pool).await;
    let first = snapshot(&pool).await;
    assert!(first.len() >= 7, "Huế and at least six communes");
    load_demo(&pool).await;
    assert_eq!(snapshot(&pool).await, first);
}

#[sqlx::test]
async fn loading_the_demo_keeps_what_someone_edited(pool: PgPool) {
    load_demo(&pool).await;
    sqlx::query("UPDATE units SET name = 'Huế (edited)' WHERE code = '46'")
        .execute(&pool)
        .await
        .unwrap();
    load_demo(&pool).await;
    let name: String = sqlx::query_scalar("SELECT name FROM units WHERE code = '46'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Huế (edited)");
}
