//! The biller API over HTTP: bills pushed one at a time and in batches (idempotent on the
//! biller's reference, all or nothing, every bad row named), cancelled with a `bill.cancelled`
//! callback to a real receiver on loopback, listed and read back by reference, and kept
//! between billers and apart from merchants.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{PIN, admin, citizen, onboard, onboard_biller};
use crate::support::app::TestApp;
use crate::support::database::count;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};
use crate::support::receiver::Receiver;
use crate::support::workers::{Workers, quick_settings};

const SOON: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(1500);
const BILLS: &str = "/v1/biller/bills";
const BATCH: &str = "/v1/biller/bills/batch";

/// A bill of two items, 180,000 đ in all, due on `due_date`.
fn bill_body(reference: &str, due_date: &str) -> Value {
    json!({
        "reference": reference, "customer_code": "PE0400123456", "payer_name": "Nguyễn Văn An",
        "items": [
            {"name": "Điện sinh hoạt tháng 11", "amount": 165_000},
            {"name": "Thuế GTGT", "amount": 15_000}
        ],
        "amount": 180_000, "due_date": due_date
    })
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    app.send_json_with(Method::POST, path, key, body).await
}

/// `POST /v1/biller/bills`, which must create the bill; returns it.
async fn created(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = post(app, key, BILLS, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The bills of this file's billers (the demo data, loaded for the admin, has its own).
async fn bill_count(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM bills b JOIN merchants m ON m.id = b.biller_id WHERE m.code LIKE 'EVTEST%'",
    )
    .await
}

/// The `(index, field)` of every error of a refused batch, in order.
async fn row_errors(response: reqwest::Response) -> Vec<(u64, String)> {
    let problem = expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    problem.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let index = e["index"].as_u64().expect("each error names its row");
            (index, e["field"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[sqlx::test]
async fn a_bill_is_created_with_a_printable_code_and_the_total_of_its_items(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;

    let bill = created(&app, &key, &bill_body("HD-1", "2026-12-20")).await;
    let code = bill["code"].as_str().unwrap();
    assert!(civicpay::bills::looks_like_code(code), "{code}");
    assert_eq!(bill["amount"], 180_000);
    assert_eq!(bill["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        (bill["status"].as_str(), bill["kind"].as_str()),
        (Some("unpaid"), Some("electricity"))
    );
    assert_eq!(bill["biller"]["code"], "EVTEST1");
    assert_eq!(
        bill["payer_name"], "Nguyễn Văn An",
        "the biller reads it in full"
    );
    assert_eq!(bill["due_date"], "2026-12-20");

    let read = app.get_json_with(&key, "/v1/biller/bills/HD-1").await;
    assert_eq!((&read["id"], &read["code"]), (&bill["id"], &bill["code"]));
}

#[sqlx::test]
async fn an_amount_other_than_the_items_total_is_refused_and_nothing_is_stored(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let mut body = bill_body("HD-1", "2026-12-20");
    body["amount"] = json!(170_000);

    let fields = expect_invalid_fields(post(&app, &key, BILLS, &body).await).await;
    assert_eq!(fields, vec!["amount"]);
    assert_eq!(bill_count(&pool).await, 0);
}

#[sqlx::test]
async fn the_same_bill_again_is_the_existing_one_and_another_body_conflicts(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let first = created(&app, &key, &bill_body("HD-1", "2026-12-20")).await;

    // The same request, its keys in another order and spaced otherwise.
    let again = app
        .client
        .post(app.url(BILLS))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(
            r#"{ "amount": 180000, "due_date": "2026-12-20", "payer_name": "Nguyễn Văn An",
                 "items": [ {"amount": 165000, "name": "Điện sinh hoạt tháng 11"},
                            {"amount": 15000, "name": "Thuế GTGT"} ],
                 "customer_code": "PE0400123456", "reference": "HD-1" }"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (&again["id"], &again["code"]),
        (&first["id"], &first["code"])
    );

    let other = bill_body("HD-1", "2026-12-31");
    expect_conflict(post(&app, &key, BILLS, &other).await, "bill_ref_conflict").await;
    assert_eq!(bill_count(&pool).await, 1);
}

#[sqlx::test]
async fn two_identical_creates_at_once_both_answer_one_bill(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let body = bill_body("HD-RACE", "2026-12-20");

    let (one, two) = tokio::join!(
        post(&app, &key, BILLS, &body),
        post(&app, &key, BILLS, &body)
    );
    let mut statuses = vec![one.status(), two.status()];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CREATED]);
    let one: Value = one.json().await.unwrap();
    let two: Value = two.json().await.unwrap();
    assert_eq!(one["id"], two["id"]);
    assert_eq!(bill_count(&pool).await, 1);
}

#[sqlx::test]
async fn a_batch_with_bad_rows_names_every_one_with_its_index_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    created(&app, &key, &bill_body("HD-OLD", "2026-12-20")).await;

    let mut rows: Vec<Value> = (0..10)
        .map(|n| bill_body(&format!("HD-B{n}"), "2026-12-20"))
        .collect();
    rows[1]["amount"] = json!(1);
    rows[4]["items"] = json!([
        {"name": "Điện", "amount": 100_000},
        {"name": "Phí", "amount": 80_000},
        {"name": "Sai", "amount": 0}
    ]);
    // Another bill already has this reference, with other content.
    rows[5] = bill_body("HD-OLD", "2027-01-15");
    rows[7].as_object_mut().unwrap().remove("payer_name");
    rows[8]["reference"] = json!("HD-B0");
    rows[9] = json!("not a bill");

    let errors = row_errors(post(&app, &key, BATCH, &json!({"bills": rows})).await).await;
    let expected: Vec<(u64, String)> = [
        (1, "amount"),
        (4, "items[2].amount"),
        (5, "reference"),
        (7, "payer_name"),
        (8, "reference"),
        (9, ""),
    ]
    .into_iter()
    .map(|(index, field)| (index, field.to_owned()))
    .collect();
    assert_eq!(errors, expected);
    assert_eq!(bill_count(&pool).await, 1, "only the bill made before");
}

#[sqlx::test]
async fn a_batch_of_500_bills_is_written_and_sent_again_finds_them_all(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let rows: Vec<Value> = (0..500)
        .map(|n| bill_body(&format!("HD-{n:04}"), "2026-12-20"))
        .collect();
    let batch = json!({"bills": rows});

    let response = post(&app, &key, BATCH, &batch).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let first: Value = response.json().await.unwrap();
    assert_eq!(
        (first["created"].as_u64(), first["existing"].as_u64()),
        (Some(500), Some(0))
    );
    let bills = first["bills"].as_array().unwrap();
    assert_eq!(bills.len(), 500);
    for (n, bill) in bills.iter().enumerate() {
        assert_eq!(
            bill["reference"],
            format!("HD-{n:04}"),
            "in the order of the rows"
        );
        assert!(civicpay::bills::looks_like_code(
            bill["code"].as_str().unwrap()
        ));
    }
    assert_eq!(bill_count(&pool).await, 500);
    let stored: i64 = sqlx::query_scalar(
        "SELECT sum(b.amount)::bigint FROM bills b JOIN merchants m ON m.id = b.biller_id
         WHERE m.code LIKE 'EVTEST%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 500 * 180_000);

    let response = post(&app, &key, BATCH, &batch).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let again: Value = response.json().await.unwrap();
    assert_eq!(
        (again["created"].as_u64(), again["existing"].as_u64()),
        (Some(0), Some(500))
    );
    assert_eq!(again["bills"], first["bills"]);
    assert_eq!(bill_count(&pool).await, 500);
}

#[sqlx::test]
async fn a_batch_whose_row_conflicts_with_a_stored_bill_writes_none_of_its_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    created(&app, &key, &bill_body("HD-OLD", "2026-12-20")).await;

    let rows = json!([
        bill_body("HD-NEW", "2026-12-20"),
        bill_body("HD-OLD", "2027-01-15")
    ]);
    let errors = row_errors(post(&app, &key, BATCH, &json!({"bills": rows})).await).await;
    assert_eq!(errors, vec![(1, "reference".to_owned())]);
    let response = app.get_with_token("/v1/biller/bills/HD-NEW", &key).await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(bill_count(&pool).await, 1);
}

#[sqlx::test]
async fn an_empty_batch_and_one_over_10000_bills_are_refused_naming_bills(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let too_many: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    for rows in [Vec::new(), too_many] {
        let response = post(&app, &key, BATCH, &json!({"bills": rows})).await;
        assert_eq!(expect_invalid_fields(response).await, vec!["bills"]);
    }
    assert_eq!(bill_count(&pool).await, 0);
}

#[sqlx::test]
async fn cancelling_an_unpaid_bill_calls_its_biller_back_once_however_often_it_is_asked(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let mut receiver = Receiver::start().await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", Some(receiver.url.as_str())).await;
    // Another biller, subscribed to the same events, hears nothing of it.
    let mut bystander = Receiver::start().await;
    onboard_biller(&app, &admin, "EVTEST2", Some(bystander.url.as_str())).await;
    let workers = Workers::start(&pool, quick_settings());
    let bill = created(&app, &key, &bill_body("HD-1", "2026-12-20")).await;

    let path = "/v1/biller/bills/HD-1/cancel";
    let response = post(&app, &key, path, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());

    let callback = receiver
        .next(SOON)
        .await
        .expect("the biller is called back");
    let event: Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(event["type"], "bill.cancelled");
    assert_eq!(
        (&event["data"]["id"], event["data"]["status"].as_str()),
        (&bill["id"], Some("cancelled"))
    );

    let response = post(&app, &key, path, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["cancelled_at"], cancelled["cancelled_at"]);
    assert!(receiver.next(QUIET).await.is_none(), "one event only");
    assert!(
        bystander.next(QUIET).await.is_none(),
        "to its own biller only"
    );
    let events = count(
        &pool,
        "SELECT count(*) FROM outbox_events WHERE type = 'bill.cancelled'",
    )
    .await;
    assert_eq!(events, 1);
    workers.stop().await;
}

#[sqlx::test]
async fn a_paid_bill_cannot_be_cancelled(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let payer = citizen(&app, "0912000201", 500_000).await;
    let bill = created(&app, &key, &bill_body("HD-1", "2026-12-20")).await;
    let paid = app
        .client
        .post(app.url(&format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap())))
        .bearer_auth(&payer)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .header("x-payment-pin", PIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::OK);

    let response = post(&app, &key, "/v1/biller/bills/HD-1/cancel", &json!({})).await;
    expect_conflict(response, "bill_not_unpaid").await;
    let read = app.get_json_with(&key, "/v1/biller/bills/HD-1").await;
    assert_eq!(read["status"], "paid");
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn the_list_filters_by_status_and_due_date_and_pages_newest_first(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let due_dates = [
        "2026-12-01",
        "2026-12-10",
        "2026-12-20",
        "2027-01-05",
        "2027-01-15",
    ];
    for (n, due_date) in due_dates.iter().enumerate() {
        created(&app, &key, &bill_body(&format!("HD-{n}"), due_date)).await;
    }
    for cancelled in ["HD-1", "HD-3"] {
        let path = format!("/v1/biller/bills/{cancelled}/cancel");
        assert_eq!(
            post(&app, &key, &path, &json!({})).await.status(),
            StatusCode::OK
        );
    }
    let references = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|bill| bill["reference"].as_str().unwrap().to_owned())
            .collect()
    };

    let first = app
        .get_json_with(&key, "/v1/biller/bills?status=unpaid&limit=2")
        .await;
    assert_eq!(references(&first), vec!["HD-4", "HD-2"]);
    let cursor = first["next_cursor"].as_str().expect("another page");
    let second = app
        .get_json_with(
            &key,
            &format!("/v1/biller/bills?status=unpaid&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(references(&second), vec!["HD-0"]);
    assert!(second["next_cursor"].is_null());

    let due = app
        .get_json_with(&key, "/v1/biller/bills?due_before=2026-12-20")
        .await;
    assert_eq!(references(&due), vec!["HD-1", "HD-0"]);
    let all = app.get_json_with(&key, "/v1/biller/bills").await;
    assert_eq!(
        references(&all),
        vec!["HD-4", "HD-3", "HD-2", "HD-1", "HD-0"]
    );
    let response = app
        .get_with_token("/v1/biller/bills?status=overdue", &key)
        .await;
    assert_eq!(expect_invalid_fields(response).await, vec!["status"]);
}

#[sqlx::test]
async fn another_billers_bill_does_not_exist_for_it(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (owner, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let (other, _) = onboard_biller(&app, &admin, "EVTEST2", None).await;
    created(&app, &owner, &bill_body("HD-1", "2026-12-20")).await;

    let response = app.get_with_token("/v1/biller/bills/HD-1", &other).await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = post(&app, &other, "/v1/biller/bills/HD-1/cancel", &json!({})).await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let listed = app.get_json_with(&other, "/v1/biller/bills").await;
    assert_eq!(listed["data"], json!([]));
    // The same reference is free for the other biller.
    created(&app, &other, &bill_body("HD-1", "2026-12-20")).await;
    let read = app.get_json_with(&owner, "/v1/biller/bills/HD-1").await;
    assert_eq!(
        (read["biller"]["code"].as_str(), read["status"].as_str()),
        (Some("EVTEST1"), Some("unpaid"))
    );
}

#[sqlx::test]
async fn merchant_keys_are_refused_by_the_biller_api_and_biller_keys_by_the_merchants(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let (biller_key, _) = onboard_biller(&app, &admin, "EVTEST1", None).await;
    let merchant = onboard(&app, &admin, "CAFE01", "0", "general").await;

    let response = post(&app, &merchant.key, BILLS, &bill_body("HD-1", "2026-12-20")).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let response = app.get_with_token(BILLS, &merchant.key).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let order = json!({"order_ref": "r-1", "amount": 20_000});
    let response = post(&app, &biller_key, "/v1/merchant/orders", &order).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(bill_count(&pool).await, 0);
}
