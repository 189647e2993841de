//! Counters (Bộ phận một cửa): an officer's shift at Phú Xuân's counter opened with a float and
//! closed blind (the expected cash shown only in the closing report), bills collected there in
//! cash or by a QR code the citizen pays from the app, a cash collection voided only with a
//! supervisor's approval, a cancelled dossier's cash fee paid back at the counter, and the
//! day's cash remitted to the State Treasury — every movement checked against the ledger.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use civicpay::receipts::sequencer::number_due;
use civicpay::receipts::signing::ReceiptKeys;

use crate::support::app::test_config;
use crate::support::database::count;
use crate::support::desk::{DemoDesk, PHU_XUAN, document};
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};
use crate::support::requests::balance;

/// The demo citizen An's payment PIN (the README's).
const AN_PIN: &str = "246810";
/// Cấp bản sao trích lục hộ tịch: 8,000 đ, billed on receipt.
const COPY: &str = "2.000635";
/// House construction permit: a 75,000 đ charge, billed by `request_payment`.
const PERMIT: &str = "1.009994";
/// What every shift of this file opens with.
const FLOAT: i64 = 500_000;
const SHIFTS: &str = "/v1/counter/shifts";
const COLLECTIONS: &str = "/v1/counter/collections";

// --- Dossiers and their fee bills -----------------------------------------------------------

/// The demo citizen An, as an officer records them at the counter (their wallet is verified
/// with this ID, so the dossier and its fee bill are theirs at once).
fn an() -> Value {
    json!({"phone": "0912345678", "full_name": "Nguyễn Văn An", "national_id": "046095012345"})
}

fn copy_documents() -> Value {
    json!([document("to_khai"), document("giay_to_tuy_than")])
}

fn permit_documents() -> Value {
    json!([
        document("don_de_nghi"),
        document("giay_to_dat"),
        document("ban_ve")
    ])
}

/// A dossier the officer receives at the counter; returns it.
async fn at_counter(desk: &DemoDesk, body: Value) -> Value {
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/counter/dossiers", &desk.officer, &body)
        .await;
    let status = response.status();
    let dossier: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{dossier}");
    dossier
}

async fn act(desk: &DemoDesk, token: &str, dossier: &Value, action: &str) -> reqwest::Response {
    let mut body = json!({"action": action});
    if ["withdraw", "reject", "refuse"].contains(&action) {
        body["reason"] = json!("không tiếp tục");
    }
    let path = format!("/v1/dossiers/{}/actions", dossier["id"].as_str().unwrap());
    desk.app
        .send_json_with(Method::POST, &path, token, &body)
        .await
}

/// A dossier action that must succeed; returns the dossier after it.
async fn moved(desk: &DemoDesk, dossier: &Value, action: &str) -> Value {
    let response = act(desk, &desk.officer, dossier, action).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

async fn dossier_now(desk: &DemoDesk, dossier: &Value) -> Value {
    let path = format!("/v1/dossiers/{}", dossier["id"].as_str().unwrap());
    desk.app.get_json_with(&desk.officer, &path).await
}

/// A copy of a civil-status extract received at Phú Xuân's counter for An; returns the dossier
/// with its unpaid 8,000 đ fee bill (`fee_bill`: `{id, code, amount, status}`).
async fn copy_dossier(desk: &DemoDesk) -> Value {
    let body = json!({"procedure_code": COPY, "documents": copy_documents(), "applicant": an()});
    let dossier = at_counter(desk, body).await;
    assert_eq!(dossier["fee_bill"]["amount"], 8_000, "{dossier}");
    assert_eq!(dossier["fee_bill"]["status"], "unpaid");
    dossier
}

/// The fee bill of a fresh [`copy_dossier`].
async fn copy_fee(desk: &DemoDesk) -> Value {
    copy_dossier(desk).await["fee_bill"].clone()
}

/// A building permit received at the counter, in processing, its 75,000 đ charge requested:
/// returns the dossier, `awaiting_payment`, with its fee bill.
async fn permit_awaiting_payment(desk: &DemoDesk) -> Value {
    let body =
        json!({"procedure_code": PERMIT, "documents": permit_documents(), "applicant": an()});
    let dossier = at_counter(desk, body).await;
    moved(desk, &dossier, "start_processing").await;
    let awaiting = moved(desk, &dossier, "request_payment").await;
    assert_eq!(awaiting["status"], "awaiting_payment");
    assert_eq!(awaiting["fee_bill"]["amount"], 75_000, "{awaiting}");
    awaiting
}

fn code_of(bill: &Value) -> &str {
    bill["code"].as_str().unwrap()
}

/// The bill as An reads it (`GET /v1/bills/{id}`): a fee bill is addressed to them, and the
/// demo electricity bills are of a customer code they linked.
async fn bill_as_an(desk: &DemoDesk, bill: &Value) -> Value {
    let path = format!("/v1/bills/{}", bill["id"].as_str().unwrap());
    desk.app.get_json_with(&desk.citizen, &path).await
}

/// `GET /v1/counter/bills/{code}` (a bill code or a dossier code).
async fn counter_bill(desk: &DemoDesk, token: &str, code: &str) -> reqwest::Response {
    desk.app
        .get_with_token(&format!("/v1/counter/bills/{code}"), token)
        .await
}

/// An pays the bill from the wallet (`POST /v1/bills/{id}/pay` with the PIN); returns the bill.
async fn an_pays(desk: &DemoDesk, bill: &Value) -> Value {
    let response = an_paying(desk, bill, json!({})).send().await.unwrap();
    let status = response.status();
    let paid: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "paid");
    paid
}

/// An's `POST /v1/bills/{id}/pay` of `bill` with `body`, under a fresh key, with his PIN (which
/// a payment through a provider does not need).
fn an_paying(desk: &DemoDesk, bill: &Value, body: Value) -> reqwest::RequestBuilder {
    let path = format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap());
    desk.app
        .client
        .post(desk.app.url(&path))
        .bearer_auth(&desk.citizen)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .header("x-payment-pin", AN_PIN)
        .json(&body)
}

// --- Shifts ---------------------------------------------------------------------------------

async fn open_shift(desk: &DemoDesk, token: &str, float: i64) -> reqwest::Response {
    desk.app
        .send_json_with(
            Method::POST,
            SHIFTS,
            token,
            &json!({"opening_float": float}),
        )
        .await
}

/// The demo officer of Phú Xuân opens a shift with [`FLOAT`]; returns it.
async fn opened(desk: &DemoDesk) -> Value {
    opened_by(desk, &desk.officer).await
}

async fn opened_by(desk: &DemoDesk, token: &str) -> Value {
    let response = open_shift(desk, token, FLOAT).await;
    let status = response.status();
    let shift: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{shift}");
    assert_eq!(shift["status"], "open");
    assert_eq!(shift["opening_float"], FLOAT);
    shift
}

fn shift_path(shift: &Value) -> String {
    format!("{SHIFTS}/{}", shift["id"].as_str().unwrap())
}

/// `POST /v1/counter/shifts/{id}/close` by the demo officer.
async fn close(desk: &DemoDesk, shift: &Value, body: Value) -> reqwest::Response {
    let path = format!("{}/close", shift_path(shift));
    desk.app
        .send_json_with(Method::POST, &path, &desk.officer, &body)
        .await
}

/// A close that must succeed; returns the closed shift.
async fn closed(desk: &DemoDesk, shift: &Value, body: Value) -> Value {
    let response = close(desk, shift, body).await;
    let status = response.status();
    let closed: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert!(closed["closed_at"].is_string(), "{closed}");
    closed
}

/// The `(count, amount)` the closing report gives a method.
fn by_method(shift: &Value, method: &str) -> (i64, i64) {
    let row = shift["report"]["by_method"]
        .as_array()
        .expect("a closed shift's report lists its methods")
        .iter()
        .find(|row| row["method"] == method)
        .unwrap_or_else(|| panic!("no {method} in {shift}"))
        .clone();
    (
        row["count"].as_i64().unwrap(),
        row["amount"].as_i64().unwrap(),
    )
}

/// Every key, at any depth, whose name contains `part`.
fn keys_containing(value: &Value, part: &str) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, inner)| {
                let mut found = keys_containing(inner, part);
                if key.contains(part) {
                    found.push(key.clone());
                }
                found
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .flat_map(|item| keys_containing(item, part))
            .collect(),
        _ => Vec::new(),
    }
}

/// An open shift's answer: no report, and no expected cash anywhere (the count is blind).
fn assert_blind(shift: &Value) {
    assert_eq!(shift["status"], "open", "{shift}");
    assert!(shift["report"].is_null(), "{shift}");
    assert_eq!(
        keys_containing(shift, "expected"),
        Vec::<String>::new(),
        "{shift}"
    );
}

// --- Collections ----------------------------------------------------------------------------

/// `POST /v1/counter/collections` with this idempotency key.
async fn collect(
    desk: &DemoDesk,
    token: &str,
    key: &str,
    bill_code: &str,
    method: &str,
) -> reqwest::Response {
    desk.app
        .client
        .post(desk.app.url(COLLECTIONS))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"bill_code": bill_code, "method": method}))
        .send()
        .await
        .unwrap()
}

/// A collection by the demo officer under a fresh key that must be created; returns it.
async fn collected(desk: &DemoDesk, bill_code: &str, method: &str) -> Value {
    let key = Uuid::new_v4().to_string();
    let response = collect(desk, &desk.officer, &key, bill_code, method).await;
    let status = response.status();
    let collection: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{collection}");
    assert_eq!(collection["bill_code"], bill_code);
    assert_eq!(collection["method"], method);
    collection
}

/// A cash collection, completed at once; returns it.
async fn collected_in_cash(desk: &DemoDesk, bill_code: &str) -> Value {
    let collection = collected(desk, bill_code, "cash").await;
    assert_eq!(collection["status"], "completed", "{collection}");
    assert!(collection["receipt_id"].is_string(), "{collection}");
    collection
}

fn collection_path(collection: &Value) -> String {
    format!("{COLLECTIONS}/{}", collection["id"].as_str().unwrap())
}

/// `GET /v1/counter/collections/{id}?wait=N` by the demo officer, allowed to take 30 s (longer
/// than the client's default 10 s, so a wait that never ends fails on the time it took).
async fn collection_after(desk: &DemoDesk, collection: &Value, wait: u64) -> (Duration, Value) {
    let path = format!("{}?wait={wait}", collection_path(collection));
    let started = Instant::now();
    let response = desk
        .app
        .client
        .get(desk.app.url(&path))
        .bearer_auth(&desk.officer)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    (elapsed, body)
}

async fn collection_now(desk: &DemoDesk, collection: &Value) -> Value {
    desk.app
        .get_json_with(&desk.officer, &collection_path(collection))
        .await
}

// --- Receipts and the ledger ----------------------------------------------------------------

fn keys() -> ReceiptKeys {
    ReceiptKeys::from_config(&test_config().receipts).expect("the test key is valid")
}

/// The receipt as An reads it once numbered and signed: the sequencer (which the server runs
/// beside the router, not in tests) is run here between reads.
async fn issued_receipt(desk: &DemoDesk, receipt_id: &str) -> Value {
    let path = format!("/v1/receipts/{receipt_id}");
    for _ in 0..50 {
        number_due(&desk.app.pool, &keys()).await.unwrap();
        let receipt = desk.app.get_json_with(&desk.citizen, &path).await;
        if receipt["status"] == "issued" {
            return receipt;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("receipt {receipt_id} is never issued");
}

async fn receipt_now(desk: &DemoDesk, receipt_id: &str) -> Value {
    desk.app
        .get_json_with(&desk.citizen, &format!("/v1/receipts/{receipt_id}"))
        .await
}

async fn postings(pool: &PgPool) -> i64 {
    count(pool, "SELECT count(*) FROM postings").await
}

/// The cash Phú Xuân holds by the ledger: its unit cash account's postings, negated (cash held
/// is owed to the billers, a negative balance).
async fn unit_cash_held(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(-sum(p.amount), 0)::bigint FROM postings p
         JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.kind = 'unit_cash' AND a.code = 'unit_cash:19753'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Today in Vietnam, as the counters' `date` parameters take it.
fn today() -> String {
    let vietnam = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
    chrono::Utc::now()
        .with_timezone(&vietnam)
        .date_naive()
        .to_string()
}

// --- Tests ----------------------------------------------------------------------------------

/// A shift opens with its float and shows no expected cash while open; one open shift per
/// officer; a cash collection counts in the closing report (cash 1 × 8,000, QR none, expected
/// float + 8,000, no difference when the count matches); a closed shift stays as it closed.
#[sqlx::test]
async fn a_shift_opens_blind_and_closes_with_its_report_once(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    assert_blind(&shift);
    assert_eq!(shift["unit_code"], PHU_XUAN);
    assert!(shift["officer"]["id"].is_string(), "{shift}");
    assert!(shift["closed_at"].is_null());
    let current = desk
        .app
        .get_json_with(&desk.officer, "/v1/counter/shifts/current")
        .await;
    assert_eq!(current["id"], shift["id"]);
    assert_blind(&current);

    let again = open_shift(&desk, &desk.officer, FLOAT).await;
    expect_conflict(again, "shift_already_open").await;

    let fee = copy_fee(&desk).await;
    collected_in_cash(&desk, code_of(&fee)).await;
    // Still blind with money in the drawer, for the officer and for the supervisor.
    assert_blind(
        &desk
            .app
            .get_json_with(&desk.officer, &shift_path(&shift))
            .await,
    );
    assert_blind(
        &desk
            .app
            .get_json_with(&desk.supervisor, &shift_path(&shift))
            .await,
    );
    // Another unit's officer does not see it.
    let response = desk
        .app
        .get_with_token(&shift_path(&shift), &desk.other_unit_officer)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT + 8_000})).await;
    assert_eq!(by_method(&done, "cash"), (1, 8_000));
    assert_eq!(by_method(&done, "qr"), (0, 0));
    let report = &done["report"];
    assert_eq!(report["expected_cash"], FLOAT + 8_000, "{done}");
    assert_eq!(report["counted_cash"], FLOAT + 8_000);
    assert_eq!(report["difference"], 0);
    assert_eq!(report["cash_refunded"], 0);
    assert!(report["difference_reason"].is_null(), "{done}");

    // Closed once: a second close is refused and changes nothing.
    let twice = close(
        &desk,
        &shift,
        json!({"counted_cash": 0, "difference_reason": "đếm lại"}),
    )
    .await;
    expect_conflict(twice, "shift_closed").await;
    let read = desk
        .app
        .get_json_with(&desk.officer, &shift_path(&shift))
        .await;
    assert_eq!(read, done);
    let response = desk
        .app
        .get_with_token("/v1/counter/shifts/current", &desk.officer)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_ledger_verifies(&pool).await;
}

/// Counted cash short of the expected needs a reason: without one (or a blank one) the close is
/// refused on `difference_reason` and the shift stays open; with one the report shows the
/// shortfall as a negative difference and keeps the reason.
#[sqlx::test]
async fn a_difference_needs_a_reason_and_is_reported_negative_when_short(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let fee = copy_fee(&desk).await;
    collected_in_cash(&desk, code_of(&fee)).await;

    let fields =
        expect_invalid_fields(close(&desk, &shift, json!({"counted_cash": FLOAT})).await).await;
    assert!(
        fields.contains(&"difference_reason".to_owned()),
        "{fields:?}"
    );
    let body = json!({"counted_cash": FLOAT, "difference_reason": "   "});
    let fields = expect_invalid_fields(close(&desk, &shift, body).await).await;
    assert!(
        fields.contains(&"difference_reason".to_owned()),
        "{fields:?}"
    );
    let still = desk
        .app
        .get_json_with(&desk.officer, &shift_path(&shift))
        .await;
    assert_blind(&still);
    assert!(still["closed_at"].is_null());

    let reason = "Thiếu 8.000 đ, trả nhầm tiền thừa";
    let done = closed(
        &desk,
        &shift,
        json!({"counted_cash": FLOAT, "difference_reason": reason}),
    )
    .await;
    let report = &done["report"];
    assert_eq!(report["expected_cash"], FLOAT + 8_000, "{done}");
    assert_eq!(report["counted_cash"], FLOAT);
    assert_eq!(report["difference"], -8_000);
    assert_eq!(report["difference_reason"], reason);
    assert_ledger_verifies(&pool).await;
}

/// Nothing is collected outside a shift (409 `no_open_shift`), and the counter's officer-only
/// routes are closed to a supervisor (403); a negative float is invalid.
#[sqlx::test]
async fn collecting_needs_an_open_shift_and_only_officers_work_one(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let fee = copy_fee(&desk).await;
    let response = desk
        .app
        .get_with_token("/v1/counter/shifts/current", &desk.officer)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    let key = Uuid::new_v4().to_string();
    let response = collect(&desk, &desk.officer, &key, code_of(&fee), "cash").await;
    expect_conflict(response, "no_open_shift").await;
    assert_eq!(bill_as_an(&desk, &fee).await["status"], "unpaid");

    let response = open_shift(&desk, &desk.supervisor, FLOAT).await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let key = Uuid::new_v4().to_string();
    let response = collect(&desk, &desk.supervisor, &key, code_of(&fee), "cash").await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;

    let fields = expect_invalid_fields(open_shift(&desk, &desk.officer, -1).await).await;
    assert!(fields.contains(&"opening_float".to_owned()), "{fields:?}");
    let response = desk
        .app
        .get_with_token("/v1/counter/shifts/current", &desk.officer)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // Nothing was paid: the only payments are the demo shift's two water bills.
    let payments = "SELECT count(*) FROM bill_payments p JOIN bills b ON b.id = p.bill_id
                    JOIN merchants m ON m.id = b.biller_id WHERE m.code <> 'HUEWACO'";
    assert_eq!(count(&pool, payments).await, 0);
}

/// A cash collection pays the bill at once (`paid_via: cash`, nothing from An's wallet),
/// resumes the dossier waiting for it and gets a cash receipt; replayed with its key it is the
/// same collection and moves no money again; a new key finds the bill paid.
#[sqlx::test]
async fn a_cash_collection_pays_the_bill_once_with_a_receipt(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let dossier = permit_awaiting_payment(&desk).await;
    let fee = dossier["fee_bill"].clone();
    let wallet_before = balance(&desk.app, &desk.citizen).await;

    // The officer finds the bill by the dossier's code as by its own, the payer's name masked.
    let looked_up = counter_bill(&desk, &desk.officer, dossier["code"].as_str().unwrap()).await;
    assert_eq!(looked_up.status(), StatusCode::OK);
    let looked_up: Value = looked_up.json().await.unwrap();
    assert_eq!(looked_up["id"], fee["id"]);
    assert_eq!(looked_up["code"], fee["code"]);
    let masked = looked_up["payer_name"].as_str().unwrap();
    assert!(masked.starts_with("Ng*** V** A"), "{masked}");
    assert!(!masked.contains("Nguyễn"), "{masked}");

    let key = "cash-permit-1";
    let response = collect(&desk, &desk.officer, key, code_of(&fee), "cash").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let collection: Value = response.json().await.unwrap();
    assert_eq!(collection["status"], "completed", "{collection}");
    assert_eq!(collection["method"], "cash");
    assert_eq!(collection["amount"], 75_000);
    assert_eq!(collection["shift_id"], shift["id"]);
    assert_eq!(collection["bill_id"], fee["id"]);
    assert_eq!(collection["bill_code"], fee["code"]);
    assert!(collection["qr_payload"].is_null());
    assert!(collection["deep_link"].is_null());
    assert!(collection["completed_at"].is_string());
    assert!(collection["void_request"].is_null());
    let receipt_id = collection["receipt_id"].as_str().unwrap().to_owned();

    let bill = bill_as_an(&desk, &fee).await;
    assert_eq!(bill["status"], "paid");
    assert_eq!(bill["paid_via"], "cash");
    assert!(bill["paid_at"].is_string());
    assert_eq!(bill["receipt_id"], receipt_id.as_str());
    let seen: Value = counter_bill(&desk, &desk.officer, code_of(&fee))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&seen["status"], &seen["paid_via"]),
        (&json!("paid"), &json!("cash"))
    );
    assert_eq!(balance(&desk.app, &desk.citizen).await, wallet_before);
    // The dossier waited for this payment: it resumes.
    assert_eq!(dossier_now(&desk, &dossier).await["status"], "processing");

    let receipt = issued_receipt(&desk, &receipt_id).await;
    assert_eq!(receipt["method"], "cash");
    assert_eq!(receipt["amount"], 75_000);
    assert_eq!(receipt["bill_code"], fee["code"]);
    assert!(receipt["number"].is_i64(), "{receipt}");

    // The same key and body: the same collection, no money moved again.
    let moved_before = postings(&pool).await;
    let replay = collect(&desk, &desk.officer, key, code_of(&fee), "cash").await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["id"], collection["id"]);
    assert_eq!(replayed["status"], "completed");
    assert_eq!(replayed["receipt_id"], collection["receipt_id"]);
    assert_eq!(postings(&pool).await, moved_before);

    // Another key: the bill is paid already.
    let again = collect(&desk, &desk.officer, "cash-permit-2", code_of(&fee), "cash").await;
    expect_conflict(again, "already_paid").await;
    assert_eq!(postings(&pool).await, moved_before);
    let receipts = format!(
        "SELECT count(*) FROM receipts WHERE bill_id = '{}'",
        fee["id"].as_str().unwrap()
    );
    assert_eq!(count(&pool, &receipts).await, 1);

    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT + 75_000})).await;
    assert_eq!(by_method(&done, "cash"), (1, 75_000));
    assert_eq!(done["report"]["difference"], 0);
    assert_ledger_verifies(&pool).await;
}

/// A QR collection waits for the citizen: its payload carries the bill's code for the civicpay
/// app only, a long poll answers as soon as An pays the bill from the wallet (completed, with a
/// receipt, the bill `paid_via: counter_qr`), a short one answers still pending when its time is
/// up, and closing the shift cancels the collection nobody paid.
#[sqlx::test]
async fn a_qr_collection_completes_when_the_citizen_pays_and_a_long_poll_sees_it(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let fee = copy_fee(&desk).await;
    let code = code_of(&fee);

    let collection = collected(&desk, code, "qr").await;
    assert_eq!(collection["status"], "pending", "{collection}");
    assert!(collection["receipt_id"].is_null());
    let payload = collection["qr_payload"].as_str().expect("a QR payload");
    assert!(payload.starts_with("000201010212"), "{payload}");
    assert!(payload.contains("vn.civicpay"), "{payload}");
    assert!(payload.contains(code), "{payload}");
    assert_eq!(
        collection["deep_link"],
        format!("civicpay://pay?bill={code}")
    );
    assert_eq!(bill_as_an(&desk, &fee).await["status"], "unpaid");

    // The officer waits up to 20 s; An pays half a second in.
    let waiting = collection_after(&desk, &collection, 20);
    let paying = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        an_pays(&desk, &fee).await
    };
    let ((elapsed, seen), _paid) = tokio::join!(waiting, paying);
    assert!(
        elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );
    assert_eq!(seen["status"], "completed", "{seen}");
    assert!(seen["completed_at"].is_string());
    let receipt_id = seen["receipt_id"].as_str().expect("a receipt").to_owned();
    let bill = bill_as_an(&desk, &fee).await;
    assert_eq!(bill["status"], "paid");
    assert_eq!(bill["paid_via"], "counter_qr");
    assert_eq!(bill["receipt_id"], receipt_id.as_str());
    assert_eq!(issued_receipt(&desk, &receipt_id).await["amount"], 8_000);

    // Nobody pays this one: a one-second wait answers it pending after about a second.
    let unpaid = copy_fee(&desk).await;
    let pending = collected(&desk, code_of(&unpaid), "qr").await;
    let (elapsed, seen) = collection_after(&desk, &pending, 1).await;
    assert_eq!(seen["status"], "pending", "{seen}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "answered after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "answered after {elapsed:?}"
    );
    // Longer than 20 s is not a wait on offer.
    let response = desk
        .app
        .get_with_token(
            &format!("{}?wait=21", collection_path(&pending)),
            &desk.officer,
        )
        .await;
    assert!(
        [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&response.status()),
        "{}",
        response.status()
    );

    // No cash came in: the drawer holds the float.
    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT})).await;
    assert_eq!(by_method(&done, "qr"), (1, 8_000));
    assert_eq!(by_method(&done, "cash"), (0, 0));
    assert_eq!(done["report"]["expected_cash"], FLOAT);
    assert_eq!(done["report"]["difference"], 0);
    assert_eq!(collection_now(&desk, &pending).await["status"], "cancelled");
    assert_eq!(bill_as_an(&desk, &unpaid).await["status"], "unpaid");
    assert_ledger_verifies(&pool).await;
}

/// A cash collection is voided only with a supervisor's approval (the officer who asked may not
/// approve it): until then the bill stays paid; once approved the bill is unpaid again, the
/// collection voided, its numbered receipt cancelled with the number kept, and the shift
/// reports no cash. A QR collection cannot be voided.
#[sqlx::test]
async fn a_void_needs_a_supervisor_and_undoes_the_cash_collection(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let fee = copy_fee(&desk).await;
    let collection = collected_in_cash(&desk, code_of(&fee)).await;
    let receipt_id = collection["receipt_id"].as_str().unwrap().to_owned();
    let issued = issued_receipt(&desk, &receipt_id).await;
    let number = issued["number"].clone();
    assert!(number.is_i64(), "{issued}");

    let void_path = format!("{}/void", collection_path(&collection));
    let blank = desk
        .app
        .send_json_with(
            Method::POST,
            &void_path,
            &desk.officer,
            &json!({"reason": " "}),
        )
        .await;
    expect_invalid_fields(blank).await;
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            &void_path,
            &desk.officer,
            &json!({"reason": "thu nhầm"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["status"], "pending", "{request}");
    assert_eq!(request["collection_id"], collection["id"]);
    assert_eq!(request["reason"], "thu nhầm");
    assert!(request["approved_by"].is_null());
    let twice = desk
        .app
        .send_json_with(
            Method::POST,
            &void_path,
            &desk.officer,
            &json!({"reason": "thu nhầm"}),
        )
        .await;
    expect_conflict(twice, "already_exists").await;

    let approve_path = format!(
        "/v1/counter/void-requests/{}/approve",
        request["id"].as_str().unwrap()
    );
    let by_officer = desk
        .app
        .send_json_with(Method::POST, &approve_path, &desk.officer, &json!({}))
        .await;
    expect_problem(by_officer, StatusCode::FORBIDDEN, "forbidden").await;
    let bill = bill_as_an(&desk, &fee).await;
    assert_eq!(
        (&bill["status"], &bill["paid_via"]),
        (&json!("paid"), &json!("cash"))
    );
    let waiting = collection_now(&desk, &collection).await;
    assert_eq!(waiting["status"], "completed");
    assert_eq!(waiting["void_request"]["status"], "pending");
    let pending = desk
        .app
        .get_json_with(&desk.supervisor, "/v1/counter/void-requests?status=pending")
        .await;
    let listed = pending["data"].as_array().unwrap();
    assert!(listed.iter().any(|r| r["id"] == request["id"]), "{pending}");

    let response = desk
        .app
        .send_json_with(Method::POST, &approve_path, &desk.supervisor, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let approved: Value = response.json().await.unwrap();
    assert_eq!(approved["status"], "approved", "{approved}");
    assert!(approved["approved_by"].is_string(), "{approved}");
    assert!(approved["approved_at"].is_string());

    let bill = bill_as_an(&desk, &fee).await;
    assert_eq!(bill["status"], "unpaid", "{bill}");
    assert!(bill["paid_at"].is_null());
    assert!(bill["paid_via"].is_null());
    let voided = collection_now(&desk, &collection).await;
    assert_eq!(voided["status"], "voided");
    assert!(voided["voided_at"].is_string());
    let receipt = receipt_now(&desk, &receipt_id).await;
    assert_eq!(receipt["status"], "cancelled", "{receipt}");
    assert_eq!(receipt["number"], number);
    // Unpaid again, the bill shows no receipt; paid again (here by An from the app), it gets a
    // new one, and the cancelled one stays as it was.
    assert!(bill["receipt_id"].is_null(), "{bill}");
    let repaid = an_pays(&desk, &fee).await;
    let new_receipt = repaid["receipt_id"].as_str().unwrap().to_owned();
    assert_ne!(new_receipt, receipt_id);
    assert_eq!(
        issued_receipt(&desk, &new_receipt).await["method"],
        "wallet"
    );
    assert_eq!(receipt_now(&desk, &receipt_id).await["status"], "cancelled");

    // Done once.
    let again = desk
        .app
        .send_json_with(Method::POST, &approve_path, &desk.supervisor, &json!({}))
        .await;
    expect_conflict(again, "invalid_transition").await;
    let void_again = desk
        .app
        .send_json_with(
            Method::POST,
            &void_path,
            &desk.officer,
            &json!({"reason": "lần nữa"}),
        )
        .await;
    expect_conflict(void_again, "invalid_transition").await;

    // Money paid by QR came from the citizen's wallet: it is not the counter's to void.
    let other = copy_fee(&desk).await;
    let qr = collected(&desk, code_of(&other), "qr").await;
    let qr_void = desk
        .app
        .send_json_with(
            Method::POST,
            &format!("{}/void", collection_path(&qr)),
            &desk.officer,
            &json!({"reason": "thu nhầm"}),
        )
        .await;
    expect_conflict(qr_void, "invalid_transition").await;

    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT})).await;
    assert_eq!(by_method(&done, "cash"), (0, 0));
    assert_eq!(done["report"]["expected_cash"], FLOAT);
    assert_eq!(done["report"]["difference"], 0);
    assert_ledger_verifies(&pool).await;
}

/// Collecting follows the officer's scope: another unit's dossier fee is not found (404, for the
/// lookup too); a utility's bill is refused (403) until its biller makes the officer's unit a
/// collection point, and then it is collected in cash.
#[sqlx::test]
async fn an_officer_collects_their_units_fees_and_the_bills_of_billers_that_chose_it(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let fee = copy_fee(&desk).await;
    let vy_da = opened_by(&desk, &desk.other_unit_officer).await;
    assert_eq!(vy_da["unit_code"], "19789");
    let key = Uuid::new_v4().to_string();
    let response = collect(&desk, &desk.other_unit_officer, &key, code_of(&fee), "cash").await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = counter_bill(&desk, &desk.other_unit_officer, code_of(&fee)).await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(bill_as_an(&desk, &fee).await["status"], "unpaid");

    // A sanitation bill of An's, from the demo data (Phú Xuân collects only water and power).
    let bills = desk.app.get_json_with(&desk.citizen, "/v1/bills").await;
    let sanitation = bills["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|bill| bill["biller"]["code"] == "HEPCO")
        .unwrap_or_else(|| panic!("An has a sanitation bill: {bills}"))
        .clone();
    let amount = sanitation["amount"].as_i64().unwrap();

    let shift = opened(&desk).await;
    // Any officer finds it, but may collect it only where the biller collects.
    let response = counter_bill(&desk, &desk.officer, code_of(&sanitation)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let key = Uuid::new_v4().to_string();
    let response = collect(&desk, &desk.officer, &key, code_of(&sanitation), "cash").await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;

    let biller_id: String =
        sqlx::query_scalar("SELECT id::text FROM merchants WHERE code = 'HEPCO'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let points = format!("/v1/admin/billers/{biller_id}/collection-points");
    let body = json!({"unit_code": PHU_XUAN});
    let response = desk
        .app
        .send_json_with(Method::POST, &points, &desk.admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let point: Value = response.json().await.unwrap();
    assert_eq!(point["biller_id"], biller_id.as_str());
    assert_eq!(point["unit_code"], PHU_XUAN);
    let again = desk
        .app
        .send_json_with(Method::POST, &points, &desk.admin, &body)
        .await;
    expect_conflict(again, "already_exists").await;
    let listed = desk.app.get_json_with(&desk.admin, &points).await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["unit_code"] == PHU_XUAN),
        "{listed}"
    );

    let collection = collected_in_cash(&desk, code_of(&sanitation)).await;
    assert_eq!(collection["amount"], amount);
    // The counter that took the cash reads (and prints) its receipt; another unit's does not.
    let receipt_path = format!(
        "/v1/receipts/{}",
        collection["receipt_id"].as_str().unwrap()
    );
    let receipt = desk.app.get_with_token(&receipt_path, &desk.officer).await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let elsewhere = desk
        .app
        .get_with_token(&receipt_path, &desk.other_unit_officer)
        .await;
    expect_problem(elsewhere, StatusCode::NOT_FOUND, "not_found").await;
    let bill = bill_as_an(&desk, &sanitation).await;
    assert_eq!(
        (&bill["status"], &bill["paid_via"]),
        (&json!("paid"), &json!("cash"))
    );

    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT + amount})).await;
    assert_eq!(by_method(&done, "cash"), (1, amount));
    assert_eq!(done["report"]["difference"], 0);
    assert_ledger_verifies(&pool).await;
}

/// A fee paid in cash whose dossier is rejected is owed back in cash: the bill is cancelled with
/// nothing sent to any wallet, the counter pays it out once, and the shift's expected cash is
/// the float plus what came in less what went out.
#[sqlx::test]
async fn a_cancelled_fee_paid_in_cash_is_refunded_once_at_the_counter(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let dossier = copy_dossier(&desk).await;
    let fee = dossier["fee_bill"].clone();
    collected_in_cash(&desk, code_of(&fee)).await;
    let wallet_before = balance(&desk.app, &desk.citizen).await;

    // Nothing is owed before the dossier closes.
    let response = refund(&desk, code_of(&fee)).await;
    expect_conflict(response, "no_refund_owed").await;

    moved(&desk, &dossier, "start_processing").await;
    let rejected = moved(&desk, &dossier, "reject").await;
    assert_eq!(rejected["status"], "rejected");
    let bill = bill_as_an(&desk, &fee).await;
    assert_eq!(bill["status"], "cancelled", "{bill}");
    assert!(bill["cancelled_at"].is_string());
    assert!(bill["refunded_at"].is_null(), "{bill}");
    assert_eq!(bill["paid_via"], "cash");
    assert_eq!(balance(&desk.app, &desk.citizen).await, wallet_before);

    let response = refund(&desk, code_of(&fee)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let paid_out: Value = response.json().await.unwrap();
    assert_eq!(paid_out["amount"], 8_000, "{paid_out}");
    assert_eq!(paid_out["bill_code"], fee["code"]);
    assert_eq!(paid_out["bill_id"], fee["id"]);
    assert_eq!(paid_out["shift_id"], shift["id"]);
    assert!(bill_as_an(&desk, &fee).await["refunded_at"].is_string());

    let again = refund(&desk, code_of(&fee)).await;
    expect_conflict(again, "no_refund_owed").await;
    assert_eq!(balance(&desk.app, &desk.citizen).await, wallet_before);

    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT})).await;
    let report = &done["report"];
    assert_eq!(by_method(&done, "cash"), (1, 8_000));
    assert_eq!(report["cash_refunded"], 8_000, "{done}");
    let (collected, refunded) = (8_000, 8_000);
    assert_eq!(report["expected_cash"], FLOAT + collected - refunded);
    assert_eq!(report["difference"], 0);
    assert_ledger_verifies(&pool).await;
}

/// `POST /v1/counter/refunds` by the demo officer under a fresh key.
async fn refund(desk: &DemoDesk, bill_code: &str) -> reqwest::Response {
    desk.app
        .client
        .post(desk.app.url("/v1/counter/refunds"))
        .bearer_auth(&desk.officer)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .json(&json!({"bill_code": bill_code}))
        .send()
        .await
        .unwrap()
}

/// `POST /v1/counter/remittances` by the province's supervisor for Phú Xuân today.
async fn deposit(desk: &DemoDesk, amount: i64, slip: &str) -> reqwest::Response {
    desk.app
        .client
        .post(desk.app.url("/v1/counter/remittances"))
        .bearer_auth(&desk.supervisor)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .json(
            &json!({"date": today(), "amount": amount, "slip_number": slip, "unit_code": PHU_XUAN}),
        )
        .send()
        .await
        .unwrap()
}

async fn remittance(desk: &DemoDesk) -> Value {
    let path = format!("/v1/counter/remittances?date={}&unit={PHU_XUAN}", today());
    desk.app.get_json_with(&desk.supervisor, &path).await
}

/// The day's remittance is complete only once every shift of the day is closed; its total is the
/// cash the shifts collected, by biller, and what the ledger holds as the unit's cash; a deposit
/// may not exceed what remains, and one of the whole total leaves nothing.
#[sqlx::test]
async fn the_days_cash_is_remitted_by_biller_as_the_ledger_holds_it(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    // The demo's own shift of the day (two water bills in cash) is in the day's cash already.
    let before = remittance(&desk).await;
    let demo_cash = before["total"].as_i64().unwrap();
    assert_eq!(before["complete"], true, "{before}");
    assert_eq!(unit_cash_held(&pool).await, demo_cash);
    let shift = opened(&desk).await;
    let first = copy_fee(&desk).await;
    let second = copy_fee(&desk).await;
    collected_in_cash(&desk, code_of(&first)).await;
    collected_in_cash(&desk, code_of(&second)).await;
    let biller = bill_as_an(&desk, &first).await["biller"].clone();

    let response = desk
        .app
        .get_with_token("/v1/counter/remittances", &desk.officer)
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let open = remittance(&desk).await;
    assert_eq!(open["complete"], false, "{open}");
    assert_eq!(open["open_shifts"], 1);
    assert_eq!(open["unit_code"], PHU_XUAN);
    assert_eq!(open["date"], today());

    closed(&desk, &shift, json!({"counted_cash": FLOAT + 16_000})).await;
    let day = remittance(&desk).await;
    assert_eq!(day["complete"], true, "{day}");
    assert_eq!(day["open_shifts"], 0);
    assert_eq!(day["total"], demo_cash + 16_000);
    assert_eq!(day["deposited"], 0);
    assert_eq!(day["remaining"], demo_cash + 16_000);
    let by_biller = day["by_biller"].as_array().unwrap();
    let fees = by_biller
        .iter()
        .find(|row| row["biller"]["code"] == biller["code"])
        .unwrap_or_else(|| panic!("{} in {day}", biller["code"]));
    assert_eq!(fees["biller"]["name"], "Phường Phú Xuân");
    assert_eq!(fees["amount"], 16_000);
    // What the remittance says is what the ledger holds for the unit.
    assert_eq!(unit_cash_held(&pool).await, demo_cash + 16_000);

    let all = demo_cash + 16_000;
    let too_much = deposit(&desk, all + 1, "KB-0001").await;
    expect_conflict(too_much, "remittance_exceeds_cash").await;
    let response = deposit(&desk, all, "KB-0001").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let deposited: Value = response.json().await.unwrap();
    assert_eq!(deposited["amount"], all, "{deposited}");
    assert_eq!(deposited["unit_code"], PHU_XUAN);
    assert_eq!(deposited["slip_number"], "KB-0001");
    assert_eq!(deposited["date"], today());

    let day = remittance(&desk).await;
    assert_eq!(day["total"], all);
    assert_eq!(day["deposited"], all);
    assert_eq!(day["remaining"], 0);
    let deposits = day["deposits"].as_array().unwrap();
    assert_eq!(deposits.len(), 1, "{day}");
    assert_eq!(deposits[0]["id"], deposited["id"]);
    assert_eq!(deposits[0]["amount"], all);
    // The cash has left the unit for the treasury.
    assert_eq!(unit_cash_held(&pool).await, 0);
    assert_ledger_verifies(&pool).await;
}

/// Paid twice by two channels: An opens a bank payment of his fee, then pays it in cash at the
/// counter; the bank's confirmation, arriving after, is accepted and sent straight back to his
/// wallet (the bills' double-payment rule). The bill stays paid in cash, once, with one receipt.
#[sqlx::test]
async fn cash_at_the_counter_then_a_late_bank_payment_is_refunded_to_the_wallet(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let fee = copy_fee(&desk).await;
    let before = balance(&desk.app, &desk.citizen).await;

    let response = an_paying(
        &desk,
        &fee,
        json!({"source": "provider", "provider": "sandbox"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let opened_at_bank: Value = response.json().await.unwrap();
    let reference = opened_at_bank["payment_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    collected_in_cash(&desk, code_of(&fee)).await;
    let approved = desk
        .app
        .client
        .post(desk.app.url(&format!("/sandbox/pay/{reference}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK);

    // The bank's 8,000 đ came in and went back to An's wallet at once.
    assert_eq!(balance(&desk.app, &desk.citizen).await, before + 8_000);
    let bill = bill_as_an(&desk, &fee).await;
    assert_eq!(
        (&bill["status"], &bill["paid_via"]),
        (&json!("paid"), &json!("cash"))
    );
    let payments: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT via, refund_reason FROM bill_payments WHERE bill_id = $1::text::uuid ORDER BY created_at",
    )
    .bind(fee["id"].as_str().unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        payments,
        vec![
            ("cash".to_owned(), None),
            ("provider".to_owned(), Some("double_payment".to_owned())),
        ]
    );
    let receipts = format!(
        "SELECT count(*) FROM receipts WHERE bill_id = '{}'",
        fee["id"].as_str().unwrap()
    );
    assert_eq!(count(&pool, &receipts).await, 1);
    let done = closed(&desk, &shift, json!({"counted_cash": FLOAT + 8_000})).await;
    assert_eq!(by_method(&done, "cash"), (1, 8_000));
    assert_ledger_verifies(&pool).await;
}

/// Two counters taking one bill at the same moment (Phú Xuân's officer in cash, under two keys
/// at once, while An pays it from the app): it is paid once, the others are refused, and
/// nothing moves twice.
#[sqlx::test]
async fn one_bill_collected_at_once_by_several_channels_is_paid_once(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let shift = opened(&desk).await;
    let fee = copy_fee(&desk).await;
    let before = balance(&desk.app, &desk.citizen).await;
    let app_payment = an_paying(&desk, &fee, json!({})).send();
    let (first, second, in_app) = tokio::join!(
        collect(&desk, &desk.officer, "race-1", code_of(&fee), "cash"),
        collect(&desk, &desk.officer, "race-2", code_of(&fee), "cash"),
        app_payment,
    );
    let statuses = [first.status(), second.status(), in_app.unwrap().status()];
    let won: Vec<_> = statuses.iter().filter(|s| s.is_success()).collect();
    assert_eq!(won.len(), 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| s.is_success() || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let payments = format!(
        "SELECT count(*) FROM bill_payments WHERE bill_id = '{}'",
        fee["id"].as_str().unwrap()
    );
    assert_eq!(count(&pool, &payments).await, 1);
    let cash_won = statuses[0].is_success() || statuses[1].is_success();
    let spent = if cash_won { 0 } else { 8_000 };
    assert_eq!(balance(&desk.app, &desk.citizen).await, before - spent);
    let counted = FLOAT + if cash_won { 8_000 } else { 0 };
    let done = closed(&desk, &shift, json!({"counted_cash": counted})).await;
    assert_eq!(done["report"]["difference"], 0);
    assert_ledger_verifies(&pool).await;
}
