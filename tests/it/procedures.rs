//! The procedure catalogue and the working calendar over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::admin;
use crate::support::app::TestApp;
use crate::support::demo::{CITIZEN, load_demo, log_in};
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};

async fn citizen_token(app: &TestApp) -> String {
    log_in(app, CITIZEN).await
}

#[sqlx::test]
async fn the_demo_catalogue_is_searchable_filterable_and_paged(pool: PgPool) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool).await;
    let all = app.get_json("/v1/procedures?limit=100").await;
    let procedures = all["data"].as_array().unwrap();
    assert!(procedures.len() >= 8);
    assert!(
        procedures
            .iter()
            .any(|p| p["fees"].as_array().unwrap().is_empty())
    );
    for timing in ["on_receipt", "before_result"] {
        assert!(
            procedures
                .iter()
                .any(|p| p["fee_timing"] == timing && !p["fees"].as_array().unwrap().is_empty())
        );
    }
    for level in ["commune", "province"] {
        assert!(procedures.iter().any(|p| p["level"] == level));
    }
    let birth = app.get_json("/v1/procedures?q=khai%20sinh").await;
    assert_eq!(birth["data"][0]["code"], "1.001193");
    assert_eq!(birth["data"][0]["working_hours"], 8);
    assert!(
        birth["data"][0]["required_documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["mandatory"] == true)
    );
    let civil = app
        .get_json("/v1/procedures?field=H%E1%BB%99%20t%E1%BB%8Bch")
        .await;
    assert!(
        civil["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["field"] == "Hộ tịch")
    );
    assert!(civil["data"].as_array().unwrap().len() >= 3);
    let province = app.get_json("/v1/procedures?level=province").await;
    assert!(
        province["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["level"] == "province")
    );

    let mut seen = Vec::new();
    let mut path = "/v1/procedures?limit=3".to_owned();
    loop {
        let page = app.get_json(&path).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/procedures?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let codes: Vec<String> = procedures
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, codes);
    let one = app.get_json("/v1/procedures/2.000815").await;
    assert_eq!(one["fees"][0]["amount"], 2000);
    expect_problem(
        app.get("/v1/procedures/0.000000").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[sqlx::test]
async fn admins_maintain_the_catalogue(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let new = json!({
        "code": "1.012345", "name": "Đăng ký giám hộ", "field": "Hộ tịch", "level": "commune",
        "fully_online": true, "working_days": 3,
        "required_documents": [{"code": "to_khai", "name": "Tờ khai đăng ký giám hộ", "mandatory": true}],
        "fees": [{"kind": "charge", "name": "Lệ phí", "amount": 5000}], "fee_timing": "before_result"
    });
    let response = app
        .send_json_with(Method::POST, "/v1/admin/procedures", &admin, &new)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["working_days"], 3);
    let response = app
        .send_json_with(Method::POST, "/v1/admin/procedures", &admin, &new)
        .await;
    expect_conflict(response, "already_exists").await;

    let response = app
        .send_json_with(
            Method::PATCH,
            "/v1/admin/procedures/1.012345",
            &admin,
            &json!({"working_hours": 4, "fees": []}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(
        (
            changed["working_days"].clone(),
            changed["working_hours"].clone()
        ),
        (Value::Null, json!(4))
    );
    assert_eq!(changed["fees"], json!([]));
    assert_eq!(changed["name"], "Đăng ký giám hộ");

    let mut bad = new.clone();
    bad["code"] = json!("1.099999");
    bad["working_hours"] = json!(2);
    bad["level"] = json!("district");
    bad["fees"] = json!([{"kind": "fee", "name": "x", "amount": 0}]);
    let response = app
        .send_json_with(Method::POST, "/v1/admin/procedures", &admin, &bad)
        .await;
    let mut fields = expect_invalid_fields(response).await;
    fields.sort();
    assert_eq!(fields, ["fees", "level", "working_days"]);
    let response = app
        .send_json_with(
            Method::PATCH,
            "/v1/admin/procedures/9.999999",
            &admin,
            &json!({"name": "x"}),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let citizen = citizen_token(&app).await;
    let response = app
        .send_json_with(Method::POST, "/v1/admin/procedures", &citizen, &new)
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[sqlx::test]
async fn the_calendar_lists_a_years_days_off_and_admins_edit_it(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let year = app.get_json("/v1/calendar/holidays?year=2026").await;
    let days: Vec<(String, String)> = year["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for tet in [
        "2026-02-16",
        "2026-02-17",
        "2026-02-18",
        "2026-02-19",
        "2026-02-20",
    ] {
        assert!(
            days.contains(&(tet.to_owned(), "holiday".to_owned())),
            "{tet}"
        );
    }
    for day in ["2026-01-01", "2026-04-30", "2026-05-01", "2026-09-02"] {
        assert!(days.iter().any(|(d, _)| d == day), "{day}");
    }
    assert!(days.iter().all(|(d, _)| d.starts_with("2026-")));
    for year in [2025, 2027] {
        let listed = app
            .get_json(&format!("/v1/calendar/holidays?year={year}"))
            .await;
        assert!(listed["data"].as_array().unwrap().len() >= 8, "{year}");
    }

    let saturday = json!({"kind": "working_day", "name": "Làm bù"});
    let response = app
        .send_json_with(
            Method::PUT,
            "/v1/admin/calendar/2026-12-19",
            &admin,
            &saturday,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .send_json_with(
            Method::PUT,
            "/v1/admin/calendar/2026-12-18",
            &admin,
            &saturday,
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["kind"]);
    let day_off = json!({"kind": "day_off", "name": "Nghỉ bù"});
    let response = app
        .send_json_with(
            Method::PUT,
            "/v1/admin/calendar/2026-12-20",
            &admin,
            &day_off,
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["kind"]);
    let listed = app.get_json("/v1/calendar/holidays?year=2026").await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["date"] == "2026-12-19" && d["kind"] == "working_day")
    );

    let delete = |path: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            app.client
                .delete(app.url(path))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        delete("/v1/admin/calendar/2026-12-19").await.status(),
        StatusCode::NO_CONTENT
    );
    expect_problem(
        delete("/v1/admin/calendar/2026-12-19").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let citizen = citizen_token(&app).await;
    let response = app
        .send_json_with(
            Method::PUT,
            "/v1/admin/calendar/2026-12-19",
            &citizen,
            &saturday,
        )
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app.get("/v1/calendar/holidays?year=1800").await;
    assert_eq!(expect_invalid_fields(response).await, ["year"]);
}
