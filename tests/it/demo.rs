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

/// The demo billers' published keys, as the README lists them.
const DEMO_BILLER_KEYS: [(&str, &str); 4] = [
    ("EVNHUE", "bk_demo_evnhue_2026"),
    ("HUEWACO", "bk_demo_huewaco_2026"),
    ("HEPCO", "bk_demo_hepco_2026"),
    ("THCSNTP", "bk_demo_thcsntp_2026"),
];

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test]
async fn the_demo_citizen_sees_the_demo_bills_and_the_demo_billers_keys_work(pool: PgPool) {
    use chrono::{Datelike, Months};
    use serde_json::Value;

    use crate::support::app::TestApp;
    use crate::support::demo::{CITIZEN, log_in};

    let app = TestApp::spawn(pool.clone()).await;
    load_demo(&pool).await;
    let token = log_in(&app, CITIZEN).await;
    let bills = app.get_json_with(&token, "/v1/bills").await;
    let mut seen: Vec<(String, String, String, bool)> = bills["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| {
            (
                bill["biller"]["code"].as_str().unwrap().to_owned(),
                bill["customer_code"].as_str().unwrap().to_owned(),
                bill["reference"].as_str().unwrap().to_owned(),
                bill["overdue"].as_bool().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let this_month = civicpay::bills::today().with_day(1).unwrap();
    let last_month = this_month - Months::new(1);
    let month = |date: chrono::NaiveDate| date.format("%Y-%m").to_string();
    let expected = [
        ("EVNHUE", "PE0400123456", "EVN", last_month, true),
        ("EVNHUE", "PE0400123456", "EVN", this_month, false),
        ("HEPCO", "MT190234", "VS", this_month, false),
        ("HUEWACO", "HW0012345", "NUOC", this_month, false),
        ("THCSNTP", "HS08A017", "HP", this_month, false),
    ]
    .map(|(biller, customer, prefix, billed, overdue)| {
        (
            biller.to_owned(),
            customer.to_owned(),
            format!("{prefix}-{}-{customer}", month(billed)),
            overdue,
        )
    });
    // Hers (Hoàng Thị Mai's electricity) is not in his list.
    assert_eq!(seen, expected);

    for (code, key) in DEMO_BILLER_KEYS {
        let profile = app.get_json_with(key, "/v1/biller/profile").await;
        assert_eq!(profile["code"], code);
    }
    let evn = app
        .get_json_with(DEMO_BILLER_KEYS[0].1, "/v1/biller/bills")
        .await;
    let mut customers: Vec<&str> = evn["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bill: &Value| bill["customer_code"].as_str().unwrap())
        .collect();
    customers.sort();
    assert_eq!(customers, ["PE0400123456", "PE0400123456", "PE0400654321"]);

    let counts = (
        count(&pool, "SELECT count(*) FROM bills").await,
        count(&pool, "SELECT count(*) FROM billing_accounts").await,
    );
    load_demo(&pool).await;
    assert_eq!(
        (
            count(&pool, "SELECT count(*) FROM bills").await,
            count(&pool, "SELECT count(*) FROM billing_accounts").await,
        ),
        counts,
        "loading again adds no bills and no links"
    );
}
