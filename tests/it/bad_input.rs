//! Bad input is a 4xx, never a panic or a 500: dates outside the years 2000–2100, a NUL
//! character anywhere text comes in. CSV exports are safe to open in a spreadsheet, and a
//! day's settlement is exact however many movements it has.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{Merchant, PIN, access_token, admin, citizen, onboard};
use crate::support::app::TestApp;
use crate::support::database::count;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::{expect_invalid_fields, expect_problem};
use crate::support::requests::{new_order, pay, refund};

const PAYER: &str = "0912000011";
const PAYEE: &str = "0912000012";
const CAFE_ORDERS: &str = "SELECT count(*) FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE m.code = 'CAFE01'";

fn today() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&civicpay::vietnam_time::vietnam())
        .date_naive()
}

async fn merchant_get(app: &TestApp, merchant: &Merchant, path: &str) -> reqwest::Response {
    app.get_with_token(path, &merchant.key).await
}

async fn merchant_csv(app: &TestApp, merchant: &Merchant, path: &str) -> String {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&merchant.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

async fn transfer_with_note(
    app: &TestApp,
    token: &str,
    key: &str,
    to: &str,
    amount: i64,
    note: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/wallet/transfers"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", PIN)
        .json(&json!({"to_phone": to, "amount": amount, "note": note}))
        .send()
        .await
        .unwrap()
}

/// An RFC 4180 reader, independent of the code under test.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "the CSV ends with a line break"
    );
    rows
}

#[sqlx::test]
async fn dates_at_chronos_limits_are_422_not_500(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let token = citizen(&app, PAYER, 0).await;
    for (path, field) in [
        ("/v1/wallet/transactions?from=-262143-01-01", "from"),
        (
            "/v1/wallet/statement.csv?from=-262143-01-01&to=2026-01-01",
            "from",
        ),
        (
            "/v1/wallet/statement.csv?from=2026-01-01&to=%2B262142-12-31",
            "to",
        ),
    ] {
        let response = app.get_with_token(path, &token).await;
        assert_eq!(expect_invalid_fields(response).await, [field], "{path}");
    }
    for (path, field) in [
        ("/v1/merchant/settlements/-262143-01-01", "date"),
        ("/v1/merchant/settlements/+262142-12-31", "date"),
        ("/v1/merchant/transactions?from=-262143-01-01", "from"),
        ("/v1/merchant/transactions?to=%2B262142-12-31", "to"),
    ] {
        let response = merchant_get(&app, &cafe, path).await;
        assert_eq!(expect_invalid_fields(response).await, [field], "{path}");
    }
    // What is no date at all still names nothing that exists.
    expect_problem(
        merchant_get(&app, &cafe, "/v1/merchant/settlements/not-a-date").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app
        .client
        .get(app.url("/v1/merchant/settlements/1999-12-31"))
        .bearer_auth(&cafe.key)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem.body["errors"],
        json!([{"field": "date", "message": "The year must be between 2000 and 2100."}])
    );
}

#[sqlx::test]
async fn years_2000_to_2100_are_accepted_everywhere_and_others_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let token = citizen(&app, PAYER, 0).await;

    for (path, field) in [
        ("/v1/wallet/transactions?from=1999-12-31", "from"),
        ("/v1/wallet/transactions?to=2101-01-01", "to"),
        (
            "/v1/wallet/statement.csv?from=1999-12-31&to=2000-01-31",
            "from",
        ),
        (
            "/v1/wallet/statement.csv?from=2100-12-01&to=2101-01-01",
            "to",
        ),
    ] {
        let response = app.get_with_token(path, &token).await;
        assert_eq!(expect_invalid_fields(response).await, [field], "{path}");
    }
    app.get_json_with(
        &token,
        "/v1/wallet/transactions?from=2000-01-01&to=2100-12-31",
    )
    .await;
    let statement = app
        .get_with_token(
            "/v1/wallet/statement.csv?from=2000-01-01&to=2100-12-31",
            &token,
        )
        .await;
    assert_eq!(statement.status(), StatusCode::OK);
    statement.text().await.unwrap();

    for date in ["1999-12-31", "2101-01-01"] {
        let path = format!("/v1/merchant/settlements/{date}");
        let response = merchant_get(&app, &cafe, &path).await;
        assert_eq!(expect_invalid_fields(response).await, ["date"], "{path}");
    }
    for date in ["2000-01-01", "2100-12-31"] {
        let path = format!("/v1/merchant/settlements/{date}");
        let response = merchant_get(&app, &cafe, &path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let settlement: Value = response.json().await.unwrap();
        assert_eq!(
            (settlement["date"].as_str(), settlement["payments"].as_i64()),
            (Some(date), Some(0))
        );
    }

    for year in ["1999", "2101", "-262143"] {
        let response = app.get(&format!("/v1/calendar/holidays?year={year}")).await;
        assert_eq!(expect_invalid_fields(response).await, ["year"], "{year}");
    }
    for year in ["2000", "2100"] {
        app.get_json(&format!("/v1/calendar/holidays?year={year}"))
            .await;
    }
    let holiday = json!({"kind": "holiday", "name": "Thử"});
    let put = |date: &'static str| {
        let (app, admin, holiday) = (&app, &admin, &holiday);
        async move {
            app.send_json_with(
                reqwest::Method::PUT,
                &format!("/v1/admin/calendar/{date}"),
                admin,
                holiday,
            )
            .await
        }
    };
    for date in ["1999-12-31", "2101-01-01", "-262143-01-01"] {
        assert_eq!(
            expect_invalid_fields(put(date).await).await,
            ["date"],
            "{date}"
        );
    }
    assert_eq!(put("2100-12-31").await.status(), StatusCode::OK);
    let delete = app
        .client
        .delete(app.url("/v1/admin/calendar/2101-01-01"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_invalid_fields(delete).await, ["date"]);

    let officer = access_token(&app, "0900000002", "officer-demo-2026").await;
    let response = app
        .get_with_token(
            "/v1/unit/dossiers?due_before=2101-01-01T00:00:00Z",
            &officer,
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["due_before"]);
    let response = app
        .get_with_token(
            "/v1/unit/dossiers?due_before=1999-12-31T23:00:00Z",
            &officer,
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["due_before"]);
    app.get_json_with(
        &officer,
        "/v1/unit/dossiers?due_before=2100-12-31T00:00:00Z",
    )
    .await;
}

#[sqlx::test]
async fn a_nul_in_a_merchant_order_is_refused_and_creates_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let post = |body: Value| {
        let (app, cafe) = (&app, &cafe);
        async move {
            app.send_json_with(
                reqwest::Method::POST,
                "/v1/merchant/orders",
                &cafe.key,
                &body,
            )
            .await
        }
    };

    let response =
        post(json!({"order_ref": "o-1", "amount": 10_000, "description": "Bún\u{0}bò"})).await;
    assert_eq!(expect_invalid_fields(response).await, ["description"]);
    let response =
        post(json!({"order_ref": "o\u{0}1", "amount": 10_000, "description": "\u{0}"})).await;
    let mut fields = expect_invalid_fields(response).await;
    fields.sort();
    assert_eq!(fields, ["description", "order_ref"]);
    // Nested values and keys too, named by their path.
    let response = post(json!({
        "order_ref": "o-1", "amount": 10_000, "description": "ok",
        "extra": {"list": ["fine", "bad\u{0}"]}
    }))
    .await;
    assert_eq!(expect_invalid_fields(response).await, ["extra.list[1]"]);
    let response = post(json!({"order_ref": "o-1", "amount": 10_000, "note\u{0}": "x"})).await;
    assert_eq!(expect_invalid_fields(response).await, ["note\\u0000"]);
    assert_eq!(count(&pool, CAFE_ORDERS).await, 0);

    // The text `\u0000` (a backslash, then letters) is no NUL.
    let response =
        post(json!({"order_ref": "o-1", "amount": 10_000, "description": "C:\\u0000"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["description"], "C:\\u0000");
}

/// JSON Schema counts `95.0` as the integer 95, and so does every integer field; a number
/// with a fraction stays refused, and so does one that only rounds to an integer.
#[sqlx::test]
async fn an_amount_written_as_an_integral_float_is_that_integer(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let post = |body: &'static str| {
        let (app, cafe) = (&app, &cafe);
        async move {
            app.client
                .post(app.url("/v1/merchant/orders"))
                .bearer_auth(&cafe.key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    for refused in [
        r#"{"order_ref": "o-1", "amount": 95.5}"#,
        r#"{"order_ref": "o-1", "amount": 95.0000000000000001}"#,
    ] {
        assert_eq!(expect_invalid_fields(post(refused).await).await, ["amount"]);
    }
    assert_eq!(count(&pool, CAFE_ORDERS).await, 0);

    let response = post(r#"{"order_ref": "o-1", "amount": 95.0, "description": "1.5"}"#).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["amount"], json!(95));
    let stored: i64 = sqlx::query_scalar("SELECT amount FROM orders WHERE order_ref = 'o-1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 95);
}

#[sqlx::test]
async fn a_nul_in_a_guarded_body_is_refused_before_the_key_is_kept(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 10_000).await;
    citizen(&app, PAYEE, 0).await;
    let response = transfer_with_note(&app, &payer, "t-1", PAYEE, 1_000, "tiền\u{0}ăn").await;
    assert_eq!(expect_invalid_fields(response).await, ["note"]);
    assert_eq!(count(&pool, "SELECT count(*) FROM transfers").await, 0);
    let response = transfer_with_note(&app, &payer, "t-1", PAYEE, 1_000, "tiền ăn").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_nul_in_a_query_parameter_or_a_path_segment_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let response = app.get("/v1/units?parent_code=46%00").await;
    assert_eq!(expect_invalid_fields(response).await, ["parent_code"]);
    let response = app.get("/v1/procedures?q=khai%00sinh").await;
    assert_eq!(expect_invalid_fields(response).await, ["q"]);
    let response = app.get("/v1/units/46%00").await;
    assert_eq!(expect_invalid_fields(response).await, ["code"]);
    let response = app.get("/v1/procedures/1.001193%00").await;
    assert_eq!(expect_invalid_fields(response).await, ["code"]);

    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0", "general").await;
    let response = merchant_get(&app, &cafe, "/v1/merchant/orders/o%001").await;
    assert_eq!(expect_invalid_fields(response).await, ["order_ref"]);
    let token = citizen(&app, PAYER, 0).await;
    let response = app
        .get_with_token("/v1/wallet/transactions?kind=%00", &token)
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["kind"]);
}

#[sqlx::test]
async fn a_statement_cell_another_user_wrote_cannot_start_a_formula(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let payer = citizen(&app, PAYER, 100_000).await;
    let payee = citizen(&app, PAYEE, 0).await;
    let evil_name = r#"=HYPERLINK("http://evil.example","x")"#;
    sqlx::query("UPDATE accounts SET full_name = $1 WHERE phone = '+84912000011'")
        .bind(evil_name)
        .execute(&pool)
        .await
        .unwrap();
    let notes = [
        r#"=HYPERLINK("http://evil.example/?q=1","click")"#,
        "+1",
        "-1",
        "@x",
        // Notes are trimmed when a transfer is made, so the tab goes and the `=` is defused.
        "\t=1+1",
    ];
    for (n, note) in notes.iter().enumerate() {
        let response = transfer_with_note(&app, &payer, &format!("n{n}"), PAYEE, 1_000, note).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{note:?}");
    }
    let today = today();
    let response = app
        .get_with_token(
            &format!("/v1/wallet/statement.csv?from={today}&to={today}"),
            &payee,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rows = parse_csv(&response.text().await.unwrap());
    assert!(rows.iter().all(|r| r.len() == 8), "{rows:?}");
    let received: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "transfer_in").collect();
    assert_eq!(received.len(), notes.len());
    let shown: Vec<&str> = received.iter().map(|r| r[7].as_str()).collect();
    assert_eq!(
        shown,
        [
            r#"'=HYPERLINK("http://evil.example/?q=1","click")"#,
            "'+1",
            "'-1",
            "'@x",
            "'=1+1",
        ]
    );
    for row in &received {
        assert_eq!(row[5], format!("'{evil_name}"));
        // Amounts and balances are the server's numbers and stay numbers.
        row[3].parse::<i64>().unwrap();
        row[4].parse::<i64>().unwrap();
    }
    for cell in rows.iter().flatten() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?} could run as a formula"
        );
    }
    assert_eq!(rows.last().unwrap()[4], "5000");
}

#[sqlx::test]
async fn the_settlement_is_exact_and_its_csv_safe(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0.005", "general").await;
    let token = citizen(&app, PAYER, 1_000_000).await;
    let orders = [
        ("=SUM(A1)", 35_100),
        ("-1", 20_000),
        ("@x", 10_001),
        ("+1", 7_777),
        ("plain", 12_345),
        ("tab", 999),
        ("last", 54_321),
    ];
    for (n, (order_ref, amount)) in orders.iter().enumerate() {
        let order = new_order(&app, &cafe, order_ref, *amount).await;
        let response = pay(
            &app,
            &token,
            order["code"].as_str().unwrap(),
            &format!("p{n}"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{order_ref}");
    }
    for (n, (order_ref, amount)) in [("=SUM(A1)", 5_000), ("plain", 12_345)].iter().enumerate() {
        let response = refund(&app, &cafe, order_ref, *amount, &format!("r{n}")).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{order_ref}");
    }

    let today = today();
    let path = format!("/v1/merchant/settlements/{today}");
    let settlement: Value = merchant_get(&app, &cafe, &path).await.json().await.unwrap();
    let (ledger_net, fees): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(p.amount)::bigint FROM postings p JOIN merchants m ON m.ledger_account_id = p.account_id WHERE m.code = 'CAFE01'),
                (SELECT sum(o.fee)::bigint FROM orders o JOIN merchants m ON m.id = o.merchant_id WHERE m.code = 'CAFE01')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let gross: i64 = orders.iter().map(|(_, amount)| amount).sum();
    assert_eq!(settlement["payments"], orders.len());
    assert_eq!(settlement["gross"], gross);
    assert_eq!(settlement["fees"], fees);
    assert_eq!(settlement["refunds_count"], 2);
    assert_eq!(settlement["refunds"], 5_000 + 12_345);
    assert_eq!(settlement["net"], ledger_net);

    let rows = parse_csv(&merchant_csv(&app, &cafe, &path).await);
    assert_eq!(
        rows[0],
        [
            "time",
            "kind",
            "order_ref",
            "order_code",
            "amount",
            "fee",
            "net"
        ]
    );
    let movements = &rows[1..rows.len() - 1];
    assert_eq!(movements.len(), orders.len() + 2);
    let net: i64 = movements.iter().map(|r| r[6].parse::<i64>().unwrap()).sum();
    assert_eq!(net, ledger_net);
    let total = rows.last().unwrap();
    assert_eq!(total[0], "total");
    assert_eq!(total[6], ledger_net.to_string());
    // The merchant's references are defused; a refund's negative net stays a number.
    let refs: Vec<&str> = movements
        .iter()
        .filter(|r| r[1] == "payment")
        .map(|r| r[2].as_str())
        .collect();
    assert_eq!(
        refs,
        ["'=SUM(A1)", "'-1", "'@x", "'+1", "plain", "tab", "last"]
    );
    let refunds: Vec<&str> = movements
        .iter()
        .filter(|r| r[1] == "refund")
        .map(|r| r[6].as_str())
        .collect();
    assert_eq!(refunds, ["-5000", "-12345"]);
    assert_ledger_verifies(&pool).await;
}

/// More movements in a day than the settlement used to read (100,000): the totals and the CSV
/// still cover every one. The orders are written straight into the table, as paid, since paying
/// this many through the API would take minutes; the ledger is not involved here.
#[sqlx::test]
async fn a_settlement_covers_every_movement_of_a_busy_day(pool: PgPool) {
    const MOVEMENTS: i64 = 100_001;
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01", "0.005", "general").await;
    sqlx::query(
        "INSERT INTO orders (id, merchant_id, order_ref, code, amount, request_hash, expires_at, status, paid_at, fee)
         SELECT gen_random_uuid(), $1::uuid, 'bulk-' || n, 'BULK' || n, 1000 + n % 7, decode('00', 'hex'),
                '2026-03-10T12:00:00+07:00'::timestamptz, 'paid',
                '2026-03-10T08:00:00+07:00'::timestamptz + (n % 3600)::float8 * interval '1 second', n % 3
         FROM generate_series(1, $2::bigint) AS n",
    )
    .bind(&cafe.id)
    .bind(MOVEMENTS)
    .execute(&pool)
    .await
    .unwrap();
    let (gross, fees): (i64, i64) = sqlx::query_as(
        "SELECT sum(amount)::bigint, sum(fee)::bigint FROM orders WHERE merchant_id = $1::uuid",
    )
    .bind(&cafe.id)
    .fetch_one(&pool)
    .await
    .unwrap();

    let path = "/v1/merchant/settlements/2026-03-10";
    let settlement: Value = merchant_get(&app, &cafe, path).await.json().await.unwrap();
    assert_eq!(settlement["payments"], MOVEMENTS);
    assert_eq!(settlement["gross"], gross);
    assert_eq!(settlement["fees"], fees);
    assert_eq!(settlement["net"], gross - fees);

    // A hundred thousand lines may take longer than the shared client's 10 s in a debug build.
    let patient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap();
    let response = patient
        .get(app.url(path))
        .bearer_auth(&cafe.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len() as i64, 1 + MOVEMENTS + 1);
    let net: i64 = lines[1..lines.len() - 1]
        .iter()
        .map(|line| line.rsplit(',').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(net, gross - fees);
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with(&format!(",{}", gross - fees))
    );
}

/// A cursor is opaque but not signed: a forged one holding a NUL or a date at chrono's limits
/// is refused like the request's own fields, not sent to PostgreSQL.
#[sqlx::test]
async fn a_forged_cursor_with_a_nul_or_an_extreme_date_is_422(pool: PgPool) {
    use base64::Engine;
    let encode =
        |key: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_string());
    let app = TestApp::spawn(pool.clone()).await;
    let token = citizen(&app, PAYER, 0).await;
    let extreme = encode(json!([
        "-262143-01-01T00:00:00Z",
        "00000000-0000-0000-0000-000000000000"
    ]));
    let response = app
        .get_with_token(&format!("/v1/dossiers?cursor={extreme}"), &token)
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["cursor"]);
    let nul = encode(json!("4\u{0}6"));
    let response = app.get(&format!("/v1/units?cursor={nul}")).await;
    assert_eq!(expect_invalid_fields(response).await, ["cursor"]);
}
