//! Dossiers end to end over HTTP with the demo desk: Phú Xuân (19753) and Vỹ Dạ (19789)
//! officers, the province supervisor, the admin and two citizens.

use std::collections::HashSet;
use std::ops::Deref;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{PASSWORD, access_token, register};
use crate::support::desk::{BIRTH, DemoDesk, PHU_XUAN, birth_documents, document};
use crate::support::problems::{expect_conflict, expect_invalid_fields, expect_problem};

/// House construction permit: commune level, 15 working days, fee before the result.
const PERMIT: &str = "1.009994";

/// The demo desk, with this file's requests.
struct Desk(DemoDesk);

impl Deref for Desk {
    type Target = DemoDesk;

    fn deref(&self) -> &DemoDesk {
        &self.0
    }
}

async fn desk(pool: &PgPool) -> Desk {
    Desk(DemoDesk::open(pool).await)
}

fn permit_documents() -> Value {
    json!([
        document("don_de_nghi"),
        document("giay_to_dat"),
        document("ban_ve")
    ])
}

impl Desk {
    async fn file_online(
        &self,
        procedure: &str,
        unit: &str,
        documents: Value,
    ) -> reqwest::Response {
        let body = json!({"procedure_code": procedure, "unit_code": unit, "documents": documents});
        self.app
            .send_json_with(Method::POST, "/v1/dossiers", &self.citizen, &body)
            .await
    }

    /// A dossier filed online by the citizen at Phú Xuân; returns its id.
    async fn filed(&self, procedure: &str) -> String {
        let documents = if procedure == PERMIT {
            permit_documents()
        } else {
            birth_documents()
        };
        let response = self.file_online(procedure, PHU_XUAN, documents).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let dossier: Value = response.json().await.unwrap();
        dossier["id"].as_str().unwrap().to_owned()
    }

    async fn act(&self, token: &str, id: &str, action: &str, extra: Value) -> reqwest::Response {
        let mut body = json!({"action": action});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.app
            .send_json_with(
                Method::POST,
                &format!("/v1/dossiers/{id}/actions"),
                token,
                &body,
            )
            .await
    }

    /// An action that must succeed; returns the dossier after it.
    async fn moved(&self, token: &str, id: &str, action: &str, extra: Value) -> Value {
        let response = self.act(token, id, action, extra).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        body
    }

    async fn get(&self, token: &str, id: &str) -> reqwest::Response {
        self.app
            .get_with_token(&format!("/v1/dossiers/{id}"), token)
            .await
    }
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[sqlx::test]
async fn an_online_dossier_goes_from_filing_to_a_rated_result(pool: PgPool) {
    let desk = desk(&pool).await;
    let response = desk.file_online(PERMIT, PHU_XUAN, permit_documents()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let filed: Value = response.json().await.unwrap();
    let id = filed["id"].as_str().unwrap().to_owned();
    assert_eq!(filed["status"], "submitted");
    assert_eq!(filed["status_code"], 1);
    assert!(filed["due_at"].is_null());
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap());
    assert_eq!(
        filed["code"],
        format!("{PHU_XUAN}-{}-0001", today.format("%y%m%d"))
    );
    assert_eq!(filed["documents"].as_array().unwrap().len(), 3);
    assert_eq!(filed["allowed_actions"], json!(["withdraw"]));

    let received = desk.moved(&desk.officer, &id, "receive", json!({})).await;
    assert_eq!(received["status"], "received");
    assert!(time(&received["due_at"]) > chrono::Utc::now() + chrono::Duration::days(14));
    assert_eq!(received["appointment_at"], received["due_at"]);
    desk.moved(&desk.officer, &id, "start_processing", json!({}))
        .await;
    let awaiting = desk
        .moved(&desk.officer, &id, "request_payment", json!({}))
        .await;
    assert_eq!(awaiting["status_code"], 6);

    // The citizen pays the fee bill from the wallet (the demo PIN): processing resumes.
    let pay_path = format!(
        "/v1/bills/{}/pay",
        awaiting["fee_bill"]["id"].as_str().unwrap()
    );
    let response = desk
        .app
        .client
        .post(desk.app.url(&pay_path))
        .bearer_auth(&desk.citizen)
        .header("idempotency-key", "permit-fee")
        .header("x-payment-pin", "246810")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let dossier: Value = desk.get(&desk.citizen, &id).await.json().await.unwrap();
    assert_eq!(dossier["status"], "processing");

    let ready = desk
        .moved(
            &desk.officer,
            &id,
            "approve",
            json!({"documents": [document("giay_phep")]}),
        )
        .await;
    assert_eq!(ready["status"], "result_ready");
    assert!(ready["finished_at"].is_string());
    assert_eq!(ready["overdue"], false);
    let returned = desk
        .moved(
            &desk.officer,
            &id,
            "return_result",
            json!({"note": "đã giao tận tay"}),
        )
        .await;
    assert_eq!(returned["status_code"], 10);

    let timeline: Vec<(&str, &str)> = returned["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["to_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        timeline,
        [
            ("submit", "submitted"),
            ("receive", "received"),
            ("start_processing", "processing"),
            ("request_payment", "awaiting_payment"),
            ("bill_paid", "processing"),
            ("approve", "result_ready"),
            ("return_result", "returned"),
        ]
    );
    assert_eq!(returned["timeline"][4]["actor_role"], "system");

    let rating_path = format!("/v1/dossiers/{id}/rating");
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            &rating_path,
            &desk.citizen,
            &json!({"score": 5, "comment": "Nhanh, chu đáo"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            &rating_path,
            &desk.citizen,
            &json!({"score": 1}),
        )
        .await;
    expect_conflict(response, "already_exists").await;
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            &rating_path,
            &desk.other_citizen,
            &json!({"score": 1}),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let dossier: Value = desk.get(&desk.citizen, &id).await.json().await.unwrap();
    assert_eq!(dossier["rating"]["score"], 5);
    crate::support::ledger::assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn filing_checks_the_procedure_the_unit_and_the_mandatory_documents(pool: PgPool) {
    let desk = desk(&pool).await;
    let response = desk
        .file_online(BIRTH, PHU_XUAN, json!([document("to_khai")]))
        .await;
    let problem = expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem.field_errors(), ["documents"]);
    assert_eq!(
        problem.body["missing_documents"],
        json!(["giay_chung_sinh", "giay_to_tuy_than"])
    );
    // A commune procedure filed at the province.
    let response = desk.file_online(BIRTH, "46", birth_documents()).await;
    assert_eq!(expect_invalid_fields(response).await, ["unit_code"]);
    let response = desk
        .file_online("0.000000", PHU_XUAN, birth_documents())
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["procedure_code"]);
    let mut bad_hash = birth_documents();
    bad_hash[0]["sha256"] = json!("not-a-hash");
    let response = desk.file_online(BIRTH, PHU_XUAN, bad_hash).await;
    assert_eq!(expect_invalid_fields(response).await, ["documents"]);
    // Officers do not file online; citizens do not file at the counter.
    let body =
        json!({"procedure_code": BIRTH, "unit_code": PHU_XUAN, "documents": birth_documents()});
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/dossiers", &desk.officer, &body)
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let body = json!({"procedure_code": BIRTH, "applicant": {"phone": "0912345678"}, "documents": birth_documents()});
    for token in [&desk.citizen, &desk.supervisor, &desk.admin] {
        let response = desk
            .app
            .send_json_with(Method::POST, "/v1/counter/dossiers", token, &body)
            .await;
        expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM dossiers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "refused filings leave nothing behind");
}

#[sqlx::test]
async fn a_counter_dossier_reaches_its_applicant_once_they_prove_their_identity(pool: PgPool) {
    let desk = desk(&pool).await;
    let body = json!({
        "procedure_code": BIRTH, "documents": birth_documents(),
        "applicant": {"phone": "0933123456", "full_name": "Lê Thị Hoa", "national_id": "046195000123"}
    });
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/counter/dossiers", &desk.officer, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let received: Value = response.json().await.unwrap();
    assert_eq!(received["status"], "received");
    assert_eq!(received["channel"], "counter");
    assert_eq!(received["unit_code"], PHU_XUAN);
    assert_eq!(received["applicant"]["phone"], "+84933123456");
    assert_eq!(received["applicant"]["national_id"], "046195000123");
    // 8 office hours from reception.
    assert!(received["due_at"].is_string());

    let without_id = json!({"procedure_code": BIRTH, "documents": birth_documents(), "applicant": {"phone": "0933999999"}});
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            "/v1/counter/dossiers",
            &desk.officer,
            &without_id,
        )
        .await;
    let mut fields = expect_invalid_fields(response).await;
    fields.sort();
    assert_eq!(fields, ["applicant.full_name", "applicant.national_id"]);

    // Registering with the phone is not enough: a phone proves nothing (a typo, a recycled
    // number).
    let tokens = register(&desk.app, "0933123456", PASSWORD).await;
    let hoa = tokens["access_token"].as_str().unwrap();
    let mine = desk.app.get_json_with(hoa, "/v1/dossiers").await;
    assert_eq!(mine["data"], json!([]));
    let id = received["id"].as_str().unwrap();
    expect_problem(desk.get(hoa, id).await, StatusCode::NOT_FOUND, "not_found").await;
    // Verifying the wallet with the national ID the officer recorded is.
    let response = desk
        .app
        .send_json_with(
            Method::POST,
            "/v1/wallet/verification",
            hoa,
            &json!({"national_id": "046195000123"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mine = desk.app.get_json_with(hoa, "/v1/dossiers").await;
    assert_eq!(mine["data"][0]["id"], received["id"]);
    assert_eq!(desk.get(hoa, id).await.status(), StatusCode::OK);

    // A citizen whose wallet is verified with the recorded ID sees it at once.
    let body = json!({
        "procedure_code": BIRTH, "documents": birth_documents(),
        "applicant": {"phone": "0987654321", "full_name": "Hoàng Thị Mai", "national_id": "046198054321"}
    });
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/counter/dossiers", &desk.officer, &body)
        .await;
    let for_citizen: Value = response.json().await.unwrap();
    let theirs = desk
        .app
        .get_json_with(&desk.other_citizen, "/v1/dossiers")
        .await;
    assert_eq!(theirs["data"][0]["id"], for_citizen["id"]);
    assert_ne!(for_citizen["code"], received["code"]);
}

/// Puts a dossier straight into `status` (the rows before it are tested elsewhere), with a
/// clock as a received dossier has.
async fn put_in(pool: &PgPool, id: &str, status: &str) {
    sqlx::query(
        "UPDATE dossiers SET status = $2, received_at = now(), due_at = now() + interval '20 days',
                appointment_at = now() + interval '20 days',
                paused_at = CASE WHEN $2 IN ('supplement_requested', 'awaiting_payment', 'suspended') THEN now() END
         WHERE id = $1::uuid",
    )
    .bind(id)
    .bind(status)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn every_row_of_the_transition_table_moves_as_written(pool: PgPool) {
    let desk = desk(&pool).await;
    // (action, from, to, by the citizen?, extra fields)
    let later = (chrono::Utc::now() + chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rows: Vec<(&str, &str, &str, bool, Value)> = vec![
        ("receive", "submitted", "received", false, json!({})),
        (
            "refuse",
            "submitted",
            "refused",
            false,
            json!({"reason": "không thuộc thẩm quyền"}),
        ),
        (
            "start_processing",
            "received",
            "processing",
            false,
            json!({}),
        ),
        (
            "request_supplement",
            "received",
            "supplement_requested",
            false,
            json!({"reason": "thiếu bản vẽ"}),
        ),
        (
            "request_supplement",
            "processing",
            "supplement_requested",
            false,
            json!({"reason": "thiếu bản vẽ"}),
        ),
        (
            "supplement",
            "supplement_requested",
            "processing",
            true,
            json!({"documents": [document("ban_ve")]}),
        ),
        (
            "request_payment",
            "processing",
            "awaiting_payment",
            false,
            json!({}),
        ),
        (
            "withdraw",
            "submitted",
            "withdrawn",
            true,
            json!({"reason": "đổi ý"}),
        ),
        (
            "withdraw",
            "received",
            "withdrawn",
            true,
            json!({"reason": "đổi ý"}),
        ),
        (
            "withdraw",
            "supplement_requested",
            "withdrawn",
            true,
            json!({"reason": "đổi ý"}),
        ),
        (
            "suspend",
            "received",
            "suspended",
            false,
            json!({"reason": "chờ xác minh"}),
        ),
        (
            "suspend",
            "processing",
            "suspended",
            false,
            json!({"reason": "chờ xác minh"}),
        ),
        ("resume", "suspended", "processing", false, json!({})),
        ("approve", "processing", "result_ready", false, json!({})),
        (
            "reject",
            "processing",
            "rejected",
            false,
            json!({"reason": "không đủ điều kiện"}),
        ),
        (
            "return_result",
            "result_ready",
            "returned",
            false,
            json!({}),
        ),
        ("return_result", "rejected", "returned", false, json!({})),
    ];
    let mut rows = rows;
    for from in [
        "received",
        "processing",
        "supplement_requested",
        "awaiting_payment",
        "suspended",
    ] {
        rows.push((
            "reschedule",
            from,
            from,
            false,
            json!({"reason": "xin lỗi vì chậm trễ", "appointment_at": later}),
        ));
    }
    for (action, from, to, by_citizen, extra) in rows {
        let id = desk.filed(PERMIT).await;
        put_in(&pool, &id, from).await;
        let token = if by_citizen {
            &desk.citizen
        } else {
            &desk.officer
        };
        let moved = desk.moved(token, &id, action, extra).await;
        assert_eq!(moved["status"], to, "{action} from {from}");
        let last = moved["timeline"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(
            (
                last["action"].as_str(),
                last["from_status"].as_str(),
                last["to_status"].as_str()
            ),
            (Some(action), Some(from), Some(to))
        );
        assert_eq!(
            last["actor_role"],
            if by_citizen { "citizen" } else { "officer" }
        );
    }
}

#[sqlx::test]
async fn an_illegal_move_answers_409_with_the_status_and_what_is_allowed(pool: PgPool) {
    let desk = desk(&pool).await;
    let id = desk.filed(PERMIT).await;
    let response = desk.act(&desk.officer, &id, "approve", json!({})).await;
    let problem = expect_conflict(response, "invalid_transition").await;
    assert_eq!(problem.body["current_status"], "submitted");
    assert_eq!(
        problem.body["allowed_actions"],
        json!(["receive", "refuse"])
    );
    let response = desk
        .act(
            &desk.citizen,
            &id,
            "supplement",
            json!({"documents": [document("ban_ve")]}),
        )
        .await;
    let problem = expect_conflict(response, "invalid_transition").await;
    assert_eq!(problem.body["allowed_actions"], json!(["withdraw"]));

    for (from, action, extra) in [
        ("returned", "return_result", json!({})),
        ("refused", "receive", json!({})),
        ("withdrawn", "start_processing", json!({})),
        ("result_ready", "approve", json!({})),
        ("awaiting_payment", "approve", json!({})),
        ("suspended", "start_processing", json!({})),
    ] {
        put_in(&pool, &id, from).await;
        let response = desk.act(&desk.officer, &id, action, extra).await;
        let problem = expect_conflict(response, "invalid_transition").await;
        assert_eq!(problem.body["current_status"], from, "{action}");
    }

    // Reasons are required where the table says so; a reschedule needs its new appointment.
    put_in(&pool, &id, "processing").await;
    let response = desk.act(&desk.officer, &id, "reject", json!({})).await;
    assert_eq!(expect_invalid_fields(response).await, ["reason"]);
    let response = desk
        .act(
            &desk.officer,
            &id,
            "reschedule",
            json!({"reason": "xin lỗi"}),
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["appointment_at"]);
    let response = desk.act(&desk.officer, &id, "fly_away", json!({})).await;
    assert_eq!(expect_invalid_fields(response).await, ["action"]);
    let too_early = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let response = desk
        .act(
            &desk.officer,
            &id,
            "reschedule",
            json!({"reason": "xin lỗi", "appointment_at": too_early}),
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["appointment_at"]);

    // Reschedule: once.
    let later = (chrono::Utc::now() + chrono::Duration::days(40))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let apology = json!({"reason": "xin lỗi vì chậm trễ", "appointment_at": later});
    let moved = desk
        .moved(&desk.officer, &id, "reschedule", apology.clone())
        .await;
    assert_eq!(time(&moved["appointment_at"]), time(&json!(later)));
    assert_ne!(moved["appointment_at"], moved["due_at"]);
    assert_eq!(moved["rescheduled"], true);
    let response = desk
        .act(&desk.officer, &id, "reschedule", apology.clone())
        .await;
    expect_conflict(response, "invalid_transition").await;

    // Reschedule: not later than one working day before the due time.
    let other = desk.filed(PERMIT).await;
    put_in(&pool, &other, "processing").await;
    sqlx::query("UPDATE dossiers SET due_at = now() + interval '2 hours' WHERE id = $1::uuid")
        .bind(&other)
        .execute(&pool)
        .await
        .unwrap();
    let response = desk.act(&desk.officer, &other, "reschedule", apology).await;
    let problem = expect_conflict(response, "invalid_transition").await;
    assert!(
        !problem.body["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("reschedule"))
    );
}

#[sqlx::test]
async fn roles_and_scopes_are_checked_before_the_state(pool: PgPool) {
    let desk = desk(&pool).await;
    let id = desk.filed(PERMIT).await;
    // The wrong role for the action: 403, whatever the state, for every action of the table.
    let citizen_actions = ["supplement", "withdraw"];
    let officer_actions = [
        "receive",
        "refuse",
        "start_processing",
        "request_supplement",
        "request_payment",
        "suspend",
        "resume",
        "approve",
        "reject",
        "return_result",
        "reschedule",
    ];
    let mut refused = 0;
    for action in citizen_actions.iter().chain(&officer_actions) {
        let wrong_roles: Vec<&String> = if citizen_actions.contains(action) {
            vec![&desk.officer, &desk.supervisor, &desk.admin]
        } else {
            vec![
                &desk.citizen,
                &desk.other_citizen,
                &desk.supervisor,
                &desk.admin,
            ]
        };
        for token in wrong_roles {
            let response = desk.act(token, &id, action, json!({})).await;
            expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
            refused += 1;
        }
    }
    assert_eq!(refused, 2 * 3 + 11 * 4);
    // Outside the caller's scope it does not exist: another commune's officer, another citizen.
    for (token, action) in [
        (&desk.other_unit_officer, "receive"),
        (&desk.other_citizen, "withdraw"),
    ] {
        let response = desk.act(token, &id, action, json!({"reason": "x"})).await;
        expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    for token in [&desk.other_unit_officer, &desk.other_citizen] {
        expect_problem(
            desk.get(token, &id).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    let response = desk
        .act(
            &desk.officer,
            &Uuid::new_v4().to_string(),
            "receive",
            json!({}),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // The province supervisor and the admin see it; the other commune's worklist does not.
    for token in [&desk.supervisor, &desk.admin, &desk.officer, &desk.citizen] {
        assert_eq!(desk.get(token, &id).await.status(), StatusCode::OK);
    }
    let supervised = desk
        .app
        .get_json_with(&desk.supervisor, "/v1/unit/dossiers")
        .await;
    assert_eq!(supervised["data"][0]["id"], id.as_str());
    let elsewhere = desk
        .app
        .get_json_with(&desk.other_unit_officer, "/v1/unit/dossiers")
        .await;
    assert_eq!(elsewhere["data"], json!([]));
    let response = desk
        .app
        .get_with_token("/v1/unit/dossiers", &desk.citizen)
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = desk.app.get_with_token("/v1/dossiers", &desk.officer).await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = desk.app.get(&format!("/v1/dossiers/{id}")).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[sqlx::test]
async fn public_tracking_shows_where_it_stands_and_nothing_personal(pool: PgPool) {
    let desk = desk(&pool).await;
    let body = json!({
        "procedure_code": PERMIT, "documents": permit_documents(),
        "delivery": {"method": "postal", "address": "12 Lê Lợi, phường Phú Xuân, Huế"},
        "applicant": {"phone": "0933123456", "full_name": "Trần Văn Bình", "national_id": "046095001234"}
    });
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/counter/dossiers", &desk.officer, &body)
        .await;
    let dossier: Value = response.json().await.unwrap();
    let code = dossier["code"].as_str().unwrap();
    let key = dossier["tracking_key"].as_str().unwrap();
    let response = desk
        .app
        .get(&format!("/v1/public/dossiers/{code}?key={key}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let public: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(public["status"], "received");
    assert_eq!(public["status_code"], 2);
    assert_eq!(public["procedure_code"], PERMIT);
    assert_eq!(public["unit_code"], PHU_XUAN);
    for time in ["received_at", "due_at", "appointment_at"] {
        assert!(public[time].is_string(), "{time}");
    }
    for member in [
        "id",
        "applicant",
        "applicant_name",
        "phone",
        "national_id",
        "delivery",
        "documents",
        "timeline",
        "tracking_key",
    ] {
        assert!(public.get(member).is_none(), "{member} is public");
    }
    assert!(!text.contains(key), "the tracking key leaked: {text}");
    for personal in [
        "Trần Văn Bình",
        "933123456",
        "046095001234",
        "Lê Lợi",
        "s3://",
        "9f86d081",
    ] {
        assert!(!text.contains(personal), "{personal} leaked: {text}");
    }
    expect_problem(
        desk.app
            .get(&format!("/v1/public/dossiers/19753-000000-0000?key={key}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[sqlx::test]
async fn two_officers_acting_at_once_cannot_both_move_a_dossier(pool: PgPool) {
    let desk = desk(&pool).await;
    let body = json!({"phone": "0905000002", "password": PASSWORD, "full_name": "Nguyễn Văn Hai", "role": "officer", "unit_code": PHU_XUAN});
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/admin/staff", &desk.admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let second = access_token(&desk.app, "0905000002", PASSWORD).await;
    for _ in 0..5 {
        let id = desk.filed(PERMIT).await;
        let (a, b) = tokio::join!(
            desk.act(&desk.officer, &id, "receive", json!({})),
            desk.act(&second, &id, "refuse", json!({"reason": "trùng hồ sơ"})),
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409]);
        let moves: i64 =
            sqlx::query_scalar("SELECT count(*) FROM dossier_events WHERE dossier_id = $1::uuid")
                .bind(&id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(moves, 2, "the filing and one move");
    }
}

#[sqlx::test]
async fn pauses_move_the_due_time_and_a_supplement_restarts_it(pool: PgPool) {
    let desk = desk(&pool).await;
    let id = desk.filed(PERMIT).await;
    let received = desk.moved(&desk.officer, &id, "receive", json!({})).await;
    desk.moved(&desk.officer, &id, "start_processing", json!({}))
        .await;
    desk.moved(
        &desk.officer,
        &id,
        "suspend",
        json!({"reason": "chờ ý kiến sở"}),
    )
    .await;
    // Make the suspension a week old: the due time must move by the office time in that week.
    let earlier: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "UPDATE dossiers SET paused_at = paused_at - interval '7 days' WHERE id = $1::uuid RETURNING paused_at",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let calendar = {
        let mut conn = pool.acquire().await.unwrap();
        civicpay::calendar::WorkingCalendar::load(&mut conn)
            .await
            .unwrap()
    };
    let two_days = chrono::Duration::minutes(2 * 450);
    let resumed = desk.moved(&desk.officer, &id, "resume", json!({})).await;
    let paused_for = calendar.office_time_between(earlier, chrono::Utc::now());
    let expected = calendar.add_office_time(time(&received["due_at"]), paused_for);
    let moved_by = time(&resumed["due_at"]) - time(&received["due_at"]);
    assert!(
        moved_by >= two_days,
        "a week's pause holds at least two working days"
    );
    assert!((time(&resumed["due_at"]) - expected).num_seconds().abs() <= 5);
    assert_eq!(resumed["appointment_at"], resumed["due_at"]);

    desk.moved(
        &desk.officer,
        &id,
        "request_supplement",
        json!({"reason": "thiếu bản cam kết"}),
    )
    .await;
    let response = desk.act(&desk.citizen, &id, "supplement", json!({})).await;
    assert_eq!(expect_invalid_fields(response).await, ["documents"]);
    let supplemented = desk
        .moved(
            &desk.citizen,
            &id,
            "supplement",
            json!({"documents": [document("cam_ket")]}),
        )
        .await;
    let restarted = calendar.due_at(
        chrono::Utc::now(),
        civicpay::calendar::ProcessingTime::WorkingDays(15),
    );
    assert!(
        (time(&supplemented["due_at"]) - restarted)
            .num_seconds()
            .abs()
            <= 5
    );
    assert_eq!(supplemented["documents"].as_array().unwrap().len(), 4);
}

async fn file_at_counter(desk: &Desk, body: &Value) -> (String, String) {
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/counter/dossiers", &desk.officer, body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let dossier: Value = response.json().await.unwrap();
    (
        dossier["id"].as_str().unwrap().to_owned(),
        dossier["code"].as_str().unwrap().to_owned(),
    )
}

#[sqlx::test]
async fn a_thousand_dossiers_page_without_gaps_or_repeats_while_more_arrive(pool: PgPool) {
    let desk = desk(&pool).await;
    // The demo citizen, whose wallet is verified with this ID: every dossier is theirs at once.
    let body = json!({
        "procedure_code": BIRTH, "documents": birth_documents(),
        "applicant": {"phone": "0912345678", "full_name": "Nguyễn Văn An", "national_id": "046095012345"}
    });
    let mut filed = Vec::new();
    for _ in 0..125 {
        let batch =
            futures_util::future::join_all((0..8).map(|_| file_at_counter(&desk, &body))).await;
        filed.extend(batch);
    }
    // Codes: one per dossier, numbered 1..=1000 for the unit's day, no gap.
    let mut numbers: Vec<u32> = filed
        .iter()
        .map(|(_, code)| code.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=1000).collect::<Vec<u32>>());

    let mut seen = Vec::new();
    let mut path = "/v1/unit/dossiers?limit=37".to_owned();
    let mut arrivals = 0;
    loop {
        let page = desk.app.get_json_with(&desk.officer, &path).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        // New dossiers arrive between pages.
        if arrivals < 60 {
            for _ in 0..3 {
                file_at_counter(&desk, &body).await;
                arrivals += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/unit/dossiers?limit=37&cursor={cursor}"),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no dossier listed twice");
    assert!(
        filed.iter().all(|(id, _)| unique.contains(id)),
        "no dossier skipped"
    );
    let mine = desk
        .app
        .get_json_with(&desk.citizen, "/v1/dossiers?limit=100")
        .await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 100);
    let overdue = desk
        .app
        .get_json_with(&desk.officer, "/v1/unit/dossiers?overdue=true")
        .await;
    assert_eq!(overdue["data"], json!([]));
}

#[sqlx::test]
async fn the_worklist_filters_by_status_procedure_due_time_and_lateness(pool: PgPool) {
    let desk = desk(&pool).await;
    let counter = |procedure: &str, documents: Value| {
        json!({
            "procedure_code": procedure, "documents": documents,
            "applicant": {"phone": "0912345678", "full_name": "Nguyễn Văn An", "national_id": "046095012345"}
        })
    };
    let mut births = Vec::new();
    for _ in 0..2 {
        births.push(
            file_at_counter(&desk, &counter(BIRTH, birth_documents()))
                .await
                .0,
        );
    }
    let permit = file_at_counter(&desk, &counter(PERMIT, permit_documents()))
        .await
        .0;
    let online = desk.filed(BIRTH).await;
    let ids = |page: &Value| -> HashSet<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |query: String| {
        let (app, officer) = (&desk.app, &desk.officer);
        async move {
            app.get_json_with(officer, &format!("/v1/unit/dossiers{query}"))
                .await
        }
    };
    let all = list(String::new()).await;
    assert_eq!(ids(&all).len(), 4);
    // Soonest due first; the one not yet received (no due time) last.
    assert_eq!(all["data"][3]["id"], online.as_str());
    let due: Vec<&str> = all["data"].as_array().unwrap()[..3]
        .iter()
        .map(|d| d["due_at"].as_str().unwrap())
        .collect();
    assert!(due.windows(2).all(|pair| pair[0] <= pair[1]));

    assert_eq!(
        ids(&list(format!("?procedure={PERMIT}")).await),
        HashSet::from([permit.clone()])
    );
    assert_eq!(
        ids(&list("?status=submitted".into()).await),
        HashSet::from([online.clone()])
    );
    assert_eq!(ids(&list("?status=received".into()).await).len(), 3);
    // Eight office hours end within 18 days even across Tết; fifteen working days never do.
    let soon = (chrono::Utc::now() + chrono::Duration::days(18))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        ids(&list(format!("?due_before={soon}")).await),
        births.iter().cloned().collect()
    );

    sqlx::query("UPDATE dossiers SET due_at = now() - interval '1 hour' WHERE id = $1::uuid")
        .bind(&births[0])
        .execute(&pool)
        .await
        .unwrap();
    let late = list("?overdue=true".into()).await;
    assert_eq!(ids(&late), HashSet::from([births[0].clone()]));
    assert_eq!(late["data"][0]["overdue"], true);
    assert_eq!(ids(&list("?overdue=false".into()).await).len(), 3);
    let response = desk
        .app
        .get_with_token("/v1/unit/dossiers?status=lost", &desk.officer)
        .await;
    assert_eq!(response.status().as_u16() / 100, 4);
}
