//! The citizen's side of bills (issue 17, item 4): billing accounts linking a biller's
//! customer codes, the one list of bills by due date, one bill, and the lookup by code with the
//! payer's name masked and wrong codes limited per account. Bills are pushed through the biller
//! API as a biller would; tests that pay end by verifying the ledger.

use chrono::{Days, NaiveDate};
use civicpay::bills::{BillItem, NewBill};
use civicpay::domain::Money;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{PIN, admin, citizen};
use crate::support::app::{TestApp, test_config};
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::{expect_invalid_fields, expect_problem};

const CITIZEN: &str = "0913100001";
const RELATIVE: &str = "0913100002";
const PAYER: &str = "Nguyễn Văn A";

/// A biller the admin onboarded: its API key.
struct Biller {
    key: String,
}

/// A water company onboarded by the admin, without callbacks.
async fn onboard_biller(app: &TestApp, admin: &str, code: &str) -> Biller {
    let body = json!({
        "name": format!("Cấp nước {code}"), "code": code, "kind": "water",
        "limit_category": "utility", "callback_url": null, "events": []
    });
    let response = app
        .send_json_with(Method::POST, "/v1/admin/billers", admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    Biller {
        key: created["api_key"].as_str().unwrap().to_owned(),
    }
}

/// A bill of one item the biller pushes (`POST /v1/biller/bills`), which must be created.
async fn push_bill(
    app: &TestApp,
    biller: &Biller,
    reference: &str,
    customer_code: &str,
    amount: i64,
    due_date: Option<NaiveDate>,
) -> Value {
    let body = json!({
        "reference": reference, "customer_code": customer_code, "payer_name": PAYER,
        "items": [{"name": "Tiền nước", "amount": amount}], "amount": amount,
        "due_date": due_date
    });
    let response = app
        .client
        .post(app.url("/v1/biller/bills"))
        .bearer_auth(&biller.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{reference}");
    response.json().await.unwrap()
}

/// `POST /v1/me/billing-accounts`.
async fn link_code(
    app: &TestApp,
    token: &str,
    biller_code: &str,
    customer_code: &str,
) -> reqwest::Response {
    let body =
        json!({"biller_code": biller_code, "customer_code": customer_code, "label": "Nhà bà nội"});
    app.send_json_with(Method::POST, "/v1/me/billing-accounts", token, &body)
        .await
}

/// A link that must be made: its answer.
async fn linked(app: &TestApp, token: &str, biller_code: &str, customer_code: &str) -> Value {
    let response = link_code(app, token, biller_code, customer_code).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// `GET /v1/bills{query}`, which must answer a page.
async fn own_bills(app: &TestApp, token: &str, query: &str) -> Value {
    app.get_json_with(token, &format!("/v1/bills{query}")).await
}

/// The references of a page's bills, in order.
fn references(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["reference"].as_str().unwrap().to_owned())
        .collect()
}

/// `DELETE /v1/me/billing-accounts/{id}`.
async fn unlink(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `GET /v1/bills/lookup?code=`.
async fn look_up(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.get_with_token(&format!("/v1/bills/lookup?code={code}"), token)
        .await
}

/// `POST /v1/bills/{id}/pay` from the wallet with the [`PIN`] of a [`citizen`].
async fn pay_from_wallet(app: &TestApp, token: &str, bill_id: &str, key: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/v1/bills/{bill_id}/pay")))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", PIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn days_from_today(days: i64) -> NaiveDate {
    let today = civicpay::bills::today();
    if days >= 0 {
        today.checked_add_days(Days::new(days as u64)).unwrap()
    } else {
        today
            .checked_sub_days(Days::new(days.unsigned_abs()))
            .unwrap()
    }
}

#[sqlx::test]
async fn a_linked_customer_code_shows_its_bills_by_due_date_with_the_name_masked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    // Pushed out of due order, so the list's order is not the order of arrival.
    push_bill(
        &app,
        &water,
        "T12",
        "KH001",
        120_000,
        Some(days_from_today(20)),
    )
    .await;
    push_bill(&app, &water, "MOI-NOI", "KH001", 500_000, None).await;
    let late = push_bill(
        &app,
        &water,
        "T11",
        "KH001",
        110_000,
        Some(days_from_today(-10)),
    )
    .await;
    push_bill(
        &app,
        &water,
        "HANG-XOM",
        "KH002",
        90_000,
        Some(days_from_today(-5)),
    )
    .await;
    let token = citizen(&app, CITIZEN, 0).await;

    let link = linked(&app, &token, "NUOCTEST", "KH001").await;
    assert_eq!(link["biller"]["code"], "NUOCTEST");
    assert_eq!(link["biller"]["name"], "Cấp nước NUOCTEST");
    assert_eq!(
        (link["customer_code"].as_str(), link["label"].as_str()),
        (Some("KH001"), Some("Nhà bà nội"))
    );
    // Linking the same code again is the same link.
    let again = linked(&app, &token, "NUOCTEST", " KH001 ").await;
    assert_eq!(again["id"], link["id"]);
    let links = app.get_json_with(&token, "/v1/me/billing-accounts").await;
    assert_eq!(links["data"].as_array().unwrap().len(), 1);
    assert_eq!(links["data"][0]["id"], link["id"]);
    assert_eq!(links["next_cursor"], Value::Null);

    let page = own_bills(&app, &token, "").await;
    assert_eq!(references(&page), ["T11", "T12", "MOI-NOI"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let overdue: Vec<bool> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bill| bill["overdue"].as_bool().unwrap())
        .collect();
    assert_eq!(overdue, [true, false, false]);
    // A link shows the bills, not the name: anyone may type a customer code.
    for bill in page["data"].as_array().unwrap() {
        assert_eq!(bill["payer_name"], "Ng*** V** A");
        assert_eq!(bill["status"], "unpaid");
        assert_eq!(bill["biller"]["code"], "NUOCTEST");
    }
    let one = app
        .get_json_with(
            &token,
            &format!("/v1/bills/{}", late["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(one["code"], late["code"]);
    assert_eq!(one["payer_name"], "Ng*** V** A");
    assert_eq!(one["overdue"], true);
}

#[sqlx::test]
async fn a_code_the_biller_does_not_know_is_refused_unless_it_has_sent_no_bills_yet(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    push_bill(&app, &water, "T11", "KH001", 110_000, None).await;
    let token = citizen(&app, CITIZEN, 0).await;

    let refused = expect_invalid_fields(link_code(&app, &token, "NUOCTEST", "KH999").await).await;
    assert_eq!(refused, ["customer_code"]);
    let refused = expect_invalid_fields(link_code(&app, &token, "KHONGCO", "KH001").await).await;
    assert_eq!(refused, ["biller_code"]);
    // A unit's dossier fees reach their applicant: its biller is not linked.
    let mut conn = app.pool.acquire().await.unwrap();
    let unit_biller = civicpay::bills::billers::of_unit(&mut conn, "19753")
        .await
        .unwrap();
    let unit_code: String = sqlx::query_scalar("SELECT code FROM merchants WHERE id = $1")
        .bind(unit_biller)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let refused = expect_invalid_fields(link_code(&app, &token, &unit_code, "KH001").await).await;
    assert_eq!(refused, ["biller_code"]);
    let too_long = "K".repeat(65);
    let refused = expect_invalid_fields(link_code(&app, &token, "NUOCTEST", &too_long).await).await;
    assert_eq!(refused, ["customer_code"]);
    drop(conn);
    let links = app.get_json_with(&token, "/v1/me/billing-accounts").await;
    assert_eq!(links["data"], json!([]));

    // A biller that has sent no bills yet takes the code; its bills show once it sends them.
    let school = onboard_biller(&app, &admin, "TRUONGTEST").await;
    linked(&app, &token, "TRUONGTEST", "HS-2031").await;
    assert_eq!(own_bills(&app, &token, "").await["data"], json!([]));
    push_bill(
        &app,
        &school,
        "HK1",
        "HS-2031",
        1_500_000,
        Some(days_from_today(30)),
    )
    .await;
    push_bill(
        &app,
        &school,
        "HK1-KHAC",
        "HS-2032",
        1_500_000,
        Some(days_from_today(30)),
    )
    .await;
    assert_eq!(references(&own_bills(&app, &token, "").await), ["HK1"]);
}

#[sqlx::test]
async fn a_citizen_links_at_most_fifty_codes_and_relinking_one_still_answers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = admin(&app).await;
    onboard_biller(&app, &admin, "TRUONGTEST").await;
    let token = citizen(&app, CITIZEN, 0).await;
    let first = linked(&app, &token, "TRUONGTEST", "HS-1").await;
    for n in 2..=50 {
        linked(&app, &token, "TRUONGTEST", &format!("HS-{n}")).await;
    }
    let full = link_code(&app, &token, "TRUONGTEST", "HS-51").await;
    expect_problem(full, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let again = linked(&app, &token, "TRUONGTEST", "HS-1").await;
    assert_eq!(again["id"], first["id"]);
    let links = app.get_json_with(&token, "/v1/me/billing-accounts").await;
    let codes: Vec<&str> = links["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["customer_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 50);
    // Oldest first.
    assert_eq!((codes[0], codes[49]), ("HS-1", "HS-50"));
}

#[sqlx::test]
async fn other_citizens_never_see_the_bills_and_unlinking_hides_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    let bill = push_bill(&app, &water, "T11", "KH001", 110_000, None).await;
    let bill_path = format!("/v1/bills/{}", bill["id"].as_str().unwrap());
    let token = citizen(&app, CITIZEN, 0).await;
    let other = citizen(&app, RELATIVE, 0).await;
    let link = linked(&app, &token, "NUOCTEST", "KH001").await;
    let link_path = format!("/v1/me/billing-accounts/{}", link["id"].as_str().unwrap());
    assert_eq!(references(&own_bills(&app, &token, "").await), ["T11"]);

    assert_eq!(own_bills(&app, &other, "").await["data"], json!([]));
    expect_problem(
        app.get_with_token(&bill_path, &other).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let not_theirs = unlink(&app, &other, &link_path).await;
    expect_problem(not_theirs, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(
        app.get_with_token("/v1/bills/not-a-uuid", &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let response = unlink(&app, &token, &link_path).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(own_bills(&app, &token, "").await["data"], json!([]));
    expect_problem(
        app.get_with_token(&bill_path, &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let links = app.get_json_with(&token, "/v1/me/billing-accounts").await;
    assert_eq!(links["data"], json!([]));
    let again = unlink(&app, &token, &link_path).await;
    expect_problem(again, StatusCode::NOT_FOUND, "not_found").await;
}

#[sqlx::test]
async fn the_status_filter_lists_unpaid_paid_and_cancelled_bills_apart(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    let paid = push_bill(
        &app,
        &water,
        "T10",
        "KH001",
        100_000,
        Some(days_from_today(-40)),
    )
    .await;
    push_bill(
        &app,
        &water,
        "T11",
        "KH001",
        110_000,
        Some(days_from_today(-10)),
    )
    .await;
    push_bill(
        &app,
        &water,
        "T12",
        "KH001",
        120_000,
        Some(days_from_today(20)),
    )
    .await;
    let token = citizen(&app, CITIZEN, 1_000_000).await;
    linked(&app, &token, "NUOCTEST", "KH001").await;

    pay_from_wallet(&app, &token, paid["id"].as_str().unwrap(), "pay-t10").await;
    let response = app
        .client
        .post(app.url("/v1/biller/bills/T11/cancel"))
        .bearer_auth(&water.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    assert_eq!(references(&own_bills(&app, &token, "").await), ["T12"]);
    assert_eq!(
        references(&own_bills(&app, &token, "?status=unpaid").await),
        ["T12"]
    );
    let page = own_bills(&app, &token, "?status=paid").await;
    assert_eq!(references(&page), ["T10"]);
    assert_eq!(page["data"][0]["status"], "paid");
    assert_eq!(page["data"][0]["paid_via"], "wallet");
    // Past its due date, but paid: not overdue.
    assert_eq!(page["data"][0]["overdue"], false);
    let page = own_bills(&app, &token, "?status=cancelled").await;
    assert_eq!(references(&page), ["T11"]);
    assert_eq!(page["data"][0]["overdue"], false);
    let refused =
        expect_invalid_fields(app.get_with_token("/v1/bills?status=overdue", &token).await).await;
    assert_eq!(refused, ["status"]);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn pages_of_two_walk_every_bill_once_in_due_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    let token = citizen(&app, CITIZEN, 0).await;
    linked(&app, &token, "NUOCTEST", "KH001").await;
    for (reference, due) in [
        ("T12", Some(days_from_today(20))),
        ("MOI-NOI", None),
        ("T11-A", Some(days_from_today(-10))),
        ("T11-B", Some(days_from_today(-10))),
        ("SUA-CHUA", None),
        ("DONG-HO", None),
    ] {
        push_bill(&app, &water, reference, "KH001", 50_000, due).await;
    }
    // A dossier fee addressed to the citizen joins the same list without any link.
    let me = app.get_json_with(&token, "/v1/me").await;
    let mut conn = app.pool.acquire().await.unwrap();
    let fee_biller = civicpay::bills::billers::of_unit(&mut conn, "19753")
        .await
        .unwrap();
    let fee = NewBill {
        biller_id: fee_biller,
        reference: "LE-PHI-1".into(),
        customer_code: None,
        payer_account_id: Some(me["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()),
        payer_name: "Nguyễn Văn An".into(),
        items: vec![BillItem {
            name: "Lệ phí".into(),
            amount: Money::payable(30_000).unwrap(),
        }],
        due_date: Some(days_from_today(1)),
        dossier_id: None,
        request_hash: None,
    };
    civicpay::bills::insert(&mut conn, &fee).await.unwrap();
    drop(conn);

    let whole = own_bills(&app, &token, "?limit=100").await;
    let all = whole["data"].as_array().unwrap();
    assert_eq!(all.len(), 7);
    // The bill addressed to the citizen shows their name; the linked ones do not.
    let names: Vec<&str> = all
        .iter()
        .map(|b| b["payer_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "Nguyễn Văn An").count(), 1);
    assert!(
        names
            .iter()
            .filter(|n| **n != "Nguyễn Văn An")
            .all(|n| *n == "Ng*** V** A")
    );
    let dues: Vec<Option<&str>> = all.iter().map(|b| b["due_date"].as_str()).collect();
    let day = |days: i64| days_from_today(days).to_string();
    let (late, tomorrow, later) = (day(-10), day(1), day(20));
    assert_eq!(
        dues,
        [
            Some(late.as_str()),
            Some(late.as_str()),
            Some(tomorrow.as_str()),
            Some(later.as_str()),
            None,
            None,
            None
        ]
    );
    // Bills due the same day (or with no due date) follow their codes.
    for pair in [(0, 1), (4, 5), (5, 6)] {
        assert!(all[pair.0]["code"].as_str() < all[pair.1]["code"].as_str());
    }
    assert_eq!(all[2]["reference"], "LE-PHI-1");
    assert_eq!(all[2]["kind"], "dossier_fee");

    let mut walked = Vec::new();
    let mut pages = 0;
    let mut query = "?limit=2".to_owned();
    loop {
        let page = own_bills(&app, &token, &query).await;
        pages += 1;
        assert!(page["data"].as_array().unwrap().len() <= 2);
        walked.extend(references(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    // The third page ends between two bills without a due date, so the last cursor has none.
    assert_eq!(walked, references(&whole));
    assert_eq!(pages, 4);
}

#[sqlx::test]
async fn a_relative_looks_a_bill_up_by_code_with_the_name_masked_and_pays_it(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    let bill = push_bill(&app, &water, "T11", "KH001", 110_000, None).await;
    let code = bill["code"].as_str().unwrap();
    let owner = citizen(&app, CITIZEN, 0).await;
    linked(&app, &owner, "NUOCTEST", "KH001").await;
    let relative = citizen(&app, RELATIVE, 500_000).await;

    let response = look_up(&app, &relative, code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["id"], bill["id"]);
    assert_eq!(found["payer_name"], "Ng*** V** A");
    assert_eq!(found["status"], "unpaid");
    assert_eq!(found["amount"], 110_000);
    // As typed by hand: letter case does not matter.
    let response = look_up(&app, &relative, &code.to_lowercase()).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Nor does the citizen who linked the customer code: a link proves nothing.
    let response = look_up(&app, &owner, code).await;
    let linked_view: Value = response.json().await.unwrap();
    assert_eq!(linked_view["payer_name"], "Ng*** V** A");

    let bill_id = bill["id"].as_str().unwrap();
    pay_from_wallet(&app, &relative, bill_id, "pay-for-grandma").await;
    // The relative reads what they paid, still masked; it is not in their own list.
    let paid = app
        .get_json_with(&relative, &format!("/v1/bills/{bill_id}"))
        .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payer_name"], "Ng*** V** A");
    assert_eq!(
        own_bills(&app, &relative, "?status=paid").await["data"],
        json!([])
    );
    // A paid bill is still found by its code, so the app can say it is paid.
    let again: Value = look_up(&app, &relative, code).await.json().await.unwrap();
    assert_eq!(again["status"], "paid");
    assert_eq!(
        references(&own_bills(&app, &owner, "?status=paid").await),
        ["T11"]
    );
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn wrong_codes_are_limited_per_account_and_then_even_a_right_code_is_refused(pool: PgPool) {
    let mut config = test_config();
    config.auth.bill_lookup_failures_per_account = 3;
    config.auth.bill_lookup_window_secs = 600;
    let app = TestApp::spawn_with(pool, config, axum::Router::new()).await;
    let admin = admin(&app).await;
    let water = onboard_biller(&app, &admin, "NUOCTEST").await;
    let bill = push_bill(&app, &water, "T11", "KH001", 110_000, None).await;
    let code = bill["code"].as_str().unwrap();
    let guesser = citizen(&app, CITIZEN, 0).await;
    let neighbour = citizen(&app, RELATIVE, 0).await;

    // Two wrong codes, one of them not even shaped like a code: each is 404 and counts.
    for wrong in ["B22222222222", "khong-phai-ma"] {
        let response = look_up(&app, &guesser, wrong).await;
        expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Below the limit a right code still answers, and does not count.
    assert_eq!(look_up(&app, &guesser, code).await.status(), StatusCode::OK);
    expect_problem(
        look_up(&app, &guesser, "B33333333333").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Three failures: every lookup is now refused, the right code too.
    for asked in [code, "B44444444444"] {
        let problem = expect_problem(
            look_up(&app, &guesser, asked).await,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        )
        .await;
        let retry_after = problem.retry_after_secs();
        assert!((1..=600).contains(&retry_after), "{retry_after}");
    }
    // The limit is the guesser's own.
    assert_eq!(
        look_up(&app, &neighbour, code).await.status(),
        StatusCode::OK
    );
}
