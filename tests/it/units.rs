//! The administrative-unit tree over the API.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::app::TestApp;
use crate::support::demo::load_demo;
use crate::support::problems::{expect_invalid_fields, expect_problem};

async fn with_demo(pool: PgPool) -> TestApp {
    load_demo(&pool).await;
    TestApp::spawn(pool).await
}

fn codes(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["code"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test]
async fn huế_lists_its_communes_by_code(pool: PgPool) {
    let app = with_demo(pool).await;
    let page = app.get_json("/v1/units?parent_code=46&limit=100").await;
    let communes = codes(&page);
    assert!(communes.len() >= 6, "{page}");
    assert!(
        communes.windows(2).all(|w| w[0] < w[1]),
        "ordered by code: {communes:?}"
    );
    for unit in page["data"].as_array().unwrap() {
        assert_eq!(unit["level"], "commune");
        assert_eq!(unit["parent_code"], "46");
        assert_eq!(unit["code"].as_str().unwrap().len(), 5);
    }
    assert_eq!(page["next_cursor"], Value::Null);
}

#[sqlx::test]
async fn following_cursors_visits_every_unit_once(pool: PgPool) {
    let app = with_demo(pool.clone()).await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM units")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut path = "/v1/units?limit=3".to_owned();
    for _ in 0..=total {
        let page = app.get_json(&path).await;
        assert!(codes(&page).len() <= 3);
        seen.extend(codes(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/units?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {seen:?}"
    );
    assert_eq!(seen.len() as i64, total);
}

#[sqlx::test]
async fn filtering_by_level(pool: PgPool) {
    let app = with_demo(pool).await;
    let provinces = app.get_json("/v1/units?level=province").await;
    assert_eq!(codes(&provinces), vec!["46"]);
    assert_eq!(provinces["data"][0]["name"], "Thành phố Huế");
    assert_eq!(provinces["data"][0]["parent_code"], Value::Null);
}

#[sqlx::test]
async fn a_unit_comes_with_its_children(pool: PgPool) {
    let app = with_demo(pool).await;
    let huế = app.get_json("/v1/units/46").await;
    assert_eq!(huế["level"], "province");
    let children = huế["children"].as_array().unwrap();
    assert!(children.len() >= 6);
    assert!(children.iter().all(|c| c["parent_code"] == "46"));

    let ward = app
        .get_json(&format!(
            "/v1/units/{}",
            children[0]["code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ward["children"], serde_json::json!([]));
}

#[sqlx::test]
async fn an_unknown_unit_is_404(pool: PgPool) {
    let app = with_demo(pool).await;
    let problem = expect_problem(
        app.get("/v1/units/99999").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(problem.body["detail"].as_str().unwrap().contains("99999"));
}

#[sqlx::test]
async fn bad_list_parameters_are_422_naming_them(pool: PgPool) {
    let app = with_demo(pool).await;
    for (query, field) in [
        ("level=village", "level"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=forged", "cursor"),
    ] {
        let response = app.get(&format!("/v1/units?{query}")).await;
        assert_eq!(
            expect_invalid_fields(response).await,
            vec![field],
            "{query}"
        );
    }
}

#[sqlx::test]
async fn older_data_keeps_a_district_tier(pool: PgPool) {
    let app = with_demo(pool.clone()).await;
    sqlx::query("INSERT INTO units (code, name, level, parent_code) VALUES ('474', 'Huyện Phú Vang', 'district', '46')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO units (code, name, level, parent_code) VALUES ('19918', 'Xã Phú Thuận', 'commune', '474')")
        .execute(&pool)
        .await
        .unwrap();
    let district = app.get_json("/v1/units/474").await;
    assert_eq!(district["level"], "district");
    assert_eq!(district["parent_code"], "46");
    assert_eq!(
        codes(&serde_json::json!({"data": district["children"]})),
        vec!["19918"]
    );
    assert_eq!(
        codes(&app.get_json("/v1/units?level=district").await),
        vec!["474"]
    );
}
