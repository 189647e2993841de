//! Dossier fees: billed by the handling unit from the procedure's fee schedule when the dossier
//! is received (or when the officer requests payment), paid from the wallet, owed before the
//! result is returned, and closed with a dossier withdrawn or rejected: cancelled while
//! unpaid, refunded to the wallet once paid.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::{self, citizen};
use crate::support::database::count;
use crate::support::desk::{BIRTH, DemoDesk, PHU_XUAN, birth_documents, document};
use crate::support::ledger::assert_ledger_verifies;
use crate::support::problems::expect_conflict;
use crate::support::requests::balance;

/// The demo citizen An's payment PIN (the README's).
const AN_PIN: &str = "246810";
/// Cấp bản sao trích lục hộ tịch: 8,000 đ, billed on receipt.
const COPY: &str = "2.000635";
/// House construction permit: a 75,000 đ charge, billed by `request_payment`.
const PERMIT: &str = "1.009994";
/// A procedure of this file's, with a fee and a charge, billed on receipt.
const TWO_FEES: &str = "9.000001";
const POSTAL: &str = "Phí chuyển phát kết quả qua bưu chính";

/// The demo citizen An, as an officer records them at the counter (their wallet is verified
/// with this ID, so the dossier is theirs at once).
fn an() -> Value {
    json!({"phone": "0912345678", "full_name": "Nguyễn Văn An", "national_id": "046095012345"})
}

fn postal() -> Value {
    json!({"method": "postal", "address": "12 Lê Lợi, phường Phú Xuân, Huế"})
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

/// The admin adds [`TWO_FEES`] to the catalogue.
async fn add_two_fee_procedure(desk: &DemoDesk) {
    let procedure = json!({
        "code": TWO_FEES, "name": "Cấp giấy chứng nhận thử nghiệm", "field": "Thử nghiệm",
        "level": "commune", "fully_online": true, "working_days": 3,
        "fees": [
            {"kind": "fee", "name": "Phí thẩm định hồ sơ", "amount": 30_000},
            {"kind": "charge", "name": "Lệ phí cấp giấy chứng nhận", "amount": 15_000}
        ],
        "fee_timing": "on_receipt"
    });
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            "/v1/admin/procedures",
            &desk.admin,
            &procedure,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
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

/// A dossier An files online at Phú Xuân; returns it.
async fn filed_online(desk: &DemoDesk, procedure: &str, documents: Value) -> Value {
    let body = json!({"procedure_code": procedure, "unit_code": PHU_XUAN, "documents": documents});
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/dossiers", &desk.citizen, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
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

/// An action that must succeed; returns the dossier after it.
async fn moved(desk: &DemoDesk, token: &str, dossier: &Value, action: &str) -> Value {
    let response = act(desk, token, dossier, action).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

/// The dossier's fee bill as `bill_details` has it, with its biller's unit; `None` unbilled.
async fn bill_of(pool: &PgPool, dossier: &Value) -> Option<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(b) || jsonb_build_object('unit_code', bl.unit_code)
         FROM bill_details b JOIN billers bl ON bl.id = b.biller_id
         WHERE b.dossier_id = $1::uuid",
    )
    .bind(dossier["id"].as_str().unwrap())
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// `POST /v1/bills/{id}/pay` from the wallet.
async fn pay(desk: &DemoDesk, token: &str, pin: &str, bill: &Value, key: &str) -> Value {
    let response = desk
        .app
        .client
        .post(
            desk.app
                .url(&format!("/v1/bills/{}/pay", bill["id"].as_str().unwrap())),
        )
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-payment-pin", pin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let paid: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "paid");
    paid
}

async fn dossier_now(desk: &DemoDesk, dossier: &Value) -> Value {
    let path = format!("/v1/dossiers/{}", dossier["id"].as_str().unwrap());
    desk.app.get_json_with(&desk.officer, &path).await
}

#[sqlx::test]
async fn a_fee_billed_on_receipt_has_each_fee_and_the_postal_delivery_as_lines(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    // Every unit is the biller of its dossier fees from the start.
    let without_biller = count(
        &pool,
        "SELECT count(*) FROM units u
         WHERE NOT EXISTS (SELECT 1 FROM billers b WHERE b.unit_code = u.code AND b.kind = 'dossier_fee')",
    )
    .await;
    assert_eq!(without_biller, 0);
    add_two_fee_procedure(&desk).await;

    let body = json!({"procedure_code": TWO_FEES, "delivery": postal(), "applicant": an()});
    let dossier = at_counter(&desk, body).await;
    assert_eq!(dossier["status"], "received");
    let bill = bill_of(&pool, &dossier).await.expect("billed on receipt");
    assert_eq!(
        bill["items"],
        json!([
            {"name": "Phí thẩm định hồ sơ", "amount": 30_000},
            {"name": "Lệ phí cấp giấy chứng nhận", "amount": 15_000},
            {"name": POSTAL, "amount": 25_000}
        ])
    );
    assert_eq!(bill["amount"], 70_000);
    assert_eq!(bill["status"], "unpaid");
    assert_eq!(bill["kind"], "dossier_fee");
    assert_eq!(bill["unit_code"], PHU_XUAN);
    assert_eq!(bill["biller_name"], "Phường Phú Xuân");
    assert_eq!(bill["dossier_code"], dossier["code"]);
    assert_eq!(bill["reference"], dossier["code"]);
    let me = desk.app.get_json_with(&desk.citizen, "/v1/me").await;
    assert_eq!(bill["payer_account_id"], me["id"]);
    assert_eq!(bill["payer_name"], "Nguyễn Văn An");
    assert_eq!(
        dossier["fee_bill"],
        json!({"id": bill["id"], "code": bill["code"], "amount": 70_000, "status": "unpaid"})
    );

    // Collected at the counter, the same procedure bills its fees alone.
    let body = json!({"procedure_code": TWO_FEES, "applicant": an()});
    let at_the_counter = at_counter(&desk, body).await;
    let bill = bill_of(&pool, &at_the_counter).await.expect("billed");
    assert_eq!(bill["items"].as_array().unwrap().len(), 2);
    assert_eq!(bill["amount"], 45_000);
}

#[sqlx::test]
async fn a_free_procedure_gets_no_bill_even_by_post_and_no_payment_request(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let body = json!({
        "procedure_code": BIRTH, "documents": birth_documents(), "delivery": postal(), "applicant": an()
    });
    let dossier = at_counter(&desk, body).await;
    assert!(dossier["fee_bill"].is_null());
    assert!(bill_of(&pool, &dossier).await.is_none());

    moved(&desk, &desk.officer, &dossier, "start_processing").await;
    // Waiting for a payment nobody owes would wait for ever.
    let response = act(&desk, &desk.officer, &dossier, "request_payment").await;
    let problem = expect_conflict(response, "invalid_transition").await;
    assert_eq!(problem.body["current_status"], "processing");
    let allowed = problem.body["allowed_actions"].as_array().unwrap();
    assert!(allowed.contains(&json!("approve")));
    assert!(!allowed.contains(&json!("request_payment")));
    assert_eq!(dossier_now(&desk, &dossier).await["status"], "processing");
    assert!(bill_of(&pool, &dossier).await.is_none());

    moved(&desk, &desk.officer, &dossier, "approve").await;
    let returned = moved(&desk, &desk.officer, &dossier, "return_result").await;
    assert_eq!(returned["status"], "returned");
}

#[sqlx::test]
async fn the_result_waits_for_a_fee_billed_on_receipt_until_it_is_paid(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let body = json!({"procedure_code": COPY, "documents": copy_documents(), "applicant": an()});
    let dossier = at_counter(&desk, body).await;
    let bill = bill_of(&pool, &dossier).await.expect("billed on receipt");
    assert_eq!(bill["amount"], 8_000);
    moved(&desk, &desk.officer, &dossier, "start_processing").await;
    moved(&desk, &desk.officer, &dossier, "approve").await;

    let response = act(&desk, &desk.officer, &dossier, "return_result").await;
    expect_conflict(response, "fee_unpaid").await;
    assert_eq!(dossier_now(&desk, &dossier).await["status"], "result_ready");

    let before = balance(&desk.app, &desk.citizen).await;
    let paid = pay(&desk, &desk.citizen, AN_PIN, &bill, "fee-copy-1").await;
    assert_eq!(paid["dossier_code"], dossier["code"]);
    assert_eq!(balance(&desk.app, &desk.citizen).await, before - 8_000);
    let ready = dossier_now(&desk, &dossier).await;
    assert_eq!(ready["status"], "result_ready");
    assert_eq!(ready["fee_bill"]["status"], "paid");

    let returned = moved(&desk, &desk.officer, &dossier, "return_result").await;
    assert_eq!(returned["status"], "returned");
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_requested_payment_is_billed_and_its_payment_resumes_processing(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let body = json!({
        "procedure_code": PERMIT, "documents": permit_documents(), "delivery": postal(), "applicant": an()
    });
    let dossier = at_counter(&desk, body).await;
    // Billed before the result: nothing yet.
    assert!(dossier["fee_bill"].is_null());
    moved(&desk, &desk.officer, &dossier, "start_processing").await;

    let awaiting = moved(&desk, &desk.officer, &dossier, "request_payment").await;
    assert_eq!(awaiting["status"], "awaiting_payment");
    let bill = bill_of(&pool, &dossier)
        .await
        .expect("billed by request_payment");
    assert_eq!(
        bill["items"],
        json!([
            {"name": "Lệ phí cấp giấy phép xây dựng nhà ở riêng lẻ", "amount": 75_000},
            {"name": POSTAL, "amount": 25_000}
        ])
    );
    assert_eq!(awaiting["fee_bill"]["id"], bill["id"]);
    assert_eq!(awaiting["fee_bill"]["amount"], 100_000);

    let before = balance(&desk.app, &desk.citizen).await;
    pay(&desk, &desk.citizen, AN_PIN, &bill, "fee-permit-1").await;
    assert_eq!(balance(&desk.app, &desk.citizen).await, before - 100_000);
    let resumed = dossier_now(&desk, &dossier).await;
    assert_eq!(resumed["status"], "processing");
    let last = resumed["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (&last["action"], &last["to_status"], &last["actor_role"]),
        (&json!("bill_paid"), &json!("processing"), &json!("system"))
    );

    // Paid already: a second request has nothing to wait for.
    let response = act(&desk, &desk.officer, &dossier, "request_payment").await;
    expect_conflict(response, "invalid_transition").await;
    moved(&desk, &desk.officer, &dossier, "approve").await;
    let returned = moved(&desk, &desk.officer, &dossier, "return_result").await;
    assert_eq!(returned["status"], "returned");
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn withdrawing_cancels_an_unpaid_fee_and_refunds_a_paid_one(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    // Online, the dossier is billed only once received.
    let unpaid = filed_online(&desk, COPY, copy_documents()).await;
    assert_eq!(unpaid["status"], "submitted");
    assert!(unpaid["fee_bill"].is_null());
    let received = moved(&desk, &desk.officer, &unpaid, "receive").await;
    assert_eq!(received["fee_bill"]["status"], "unpaid");
    let before = balance(&desk.app, &desk.citizen).await;

    let withdrawn = moved(&desk, &desk.citizen, &unpaid, "withdraw").await;
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(withdrawn["fee_bill"]["status"], "cancelled");
    let bill = bill_of(&pool, &unpaid).await.unwrap();
    assert!(bill["cancelled_at"].is_string());
    assert!(bill["paid_at"].is_null());
    assert!(bill["refunded_at"].is_null());
    assert_eq!(balance(&desk.app, &desk.citizen).await, before);

    let paid = filed_online(&desk, COPY, copy_documents()).await;
    moved(&desk, &desk.officer, &paid, "receive").await;
    let bill = bill_of(&pool, &paid).await.unwrap();
    pay(&desk, &desk.citizen, AN_PIN, &bill, "fee-withdrawn-1").await;
    assert_eq!(balance(&desk.app, &desk.citizen).await, before - 8_000);

    let withdrawn = moved(&desk, &desk.citizen, &paid, "withdraw").await;
    assert_eq!(withdrawn["fee_bill"]["status"], "cancelled");
    let bill = bill_of(&pool, &paid).await.unwrap();
    assert!(bill["cancelled_at"].is_string());
    assert!(bill["refunded_at"].is_string());
    // When and how it was paid stay on the bill.
    assert!(bill["paid_at"].is_string());
    assert_eq!(bill["paid_via"], "wallet");
    assert_eq!(balance(&desk.app, &desk.citizen).await, before);

    let history = desk
        .app
        .get_json_with(&desk.citizen, "/v1/wallet/transactions")
        .await;
    let refund = &history["data"][0];
    assert_eq!(refund["kind"], "refund");
    assert_eq!(refund["direction"], "in");
    assert_eq!(refund["amount"], 8_000);
    assert_eq!(refund["reference"], bill["code"]);
    let reason: String = sqlx::query_scalar(
        "SELECT refund_reason FROM bill_payments WHERE bill_id = $1::uuid AND refund_entry_id IS NOT NULL",
    )
    .bind(bill["id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(reason, "dossier_closed");
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn rejecting_a_dossier_refunds_its_paid_fee(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let body =
        json!({"procedure_code": PERMIT, "documents": permit_documents(), "applicant": an()});
    let dossier = at_counter(&desk, body).await;
    moved(&desk, &desk.officer, &dossier, "start_processing").await;
    moved(&desk, &desk.officer, &dossier, "request_payment").await;
    let bill = bill_of(&pool, &dossier).await.unwrap();
    let before = balance(&desk.app, &desk.citizen).await;
    pay(&desk, &desk.citizen, AN_PIN, &bill, "fee-rejected-1").await;
    assert_eq!(balance(&desk.app, &desk.citizen).await, before - 75_000);

    let rejected = moved(&desk, &desk.officer, &dossier, "reject").await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["fee_bill"]["status"], "cancelled");
    let bill = bill_of(&pool, &dossier).await.unwrap();
    assert!(bill["refunded_at"].is_string());
    assert_eq!(balance(&desk.app, &desk.citizen).await, before);
    // The refusal is returned: no fee is owed for it any more.
    let returned = moved(&desk, &desk.officer, &dossier, "return_result").await;
    assert_eq!(returned["status"], "returned");
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_fee_billed_to_an_applicant_without_an_account_follows_the_dossier_to_them(pool: PgPool) {
    let desk = DemoDesk::open(&pool).await;
    let phone = "0933123456";
    let body = json!({
        "procedure_code": COPY, "documents": copy_documents(),
        "applicant": {"phone": phone, "full_name": "Trần Văn Bình", "national_id": "046095123456"}
    });
    let dossier = at_counter(&desk, body).await;
    let bill = bill_of(&pool, &dossier).await.expect("billed on receipt");
    assert!(bill["payer_account_id"].is_null());
    assert_eq!(bill["payer_name"], "Trần Văn Bình");

    // Their wallet, verified with the ID recorded at the counter, claims the dossier.
    let token = citizen(&desk.app, phone, 50_000).await;
    let me = desk.app.get_json_with(&token, "/v1/me").await;
    let bill = bill_of(&pool, &dossier).await.unwrap();
    assert_eq!(bill["payer_account_id"], me["id"]);
    pay(&desk, &token, actors::PIN, &bill, "fee-claimed-1").await;
    assert_eq!(balance(&desk.app, &token).await, 42_000);
    assert_ledger_verifies(&pool).await;
}
