//! Demo data loads, and loading it again changes nothing.

use sqlx::PgPool;

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
    civicpay::demo::load_all(&pool).await.unwrap();
    let first = snapshot(&pool).await;
    assert!(first.len() >= 7, "Huế and at least six communes");
    civicpay::demo::load_all(&pool).await.unwrap();
    assert_eq!(snapshot(&pool).await, first);
}

#[sqlx::test]
async fn loading_the_demo_keeps_what_someone_edited(pool: PgPool) {
    civicpay::demo::load_all(&pool).await.unwrap();
    sqlx::query("UPDATE units SET name = 'Huế (edited)' WHERE code = '46'")
        .execute(&pool)
        .await
        .unwrap();
    civicpay::demo::load_all(&pool).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM units WHERE code = '46'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Huế (edited)");
}
