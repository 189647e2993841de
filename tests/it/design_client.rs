//! Issue 14, item 5: a client written from DESIGN.md alone. Every request below is a JSON
//! literal with exactly DESIGN's field names ("Core objects", "Dossiers", "Idempotency",
//! "Wallet rules"), and every answer is read by those names: a citizen files a dossier online
//! with a postal `delivery` and documents `{code, name, sha256, size, uri}`, an officer follows
//! it to `returned`, and the citizen withdraws with `{amount, bank_code, account_number,
//! account_name}`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::actors::access_token;
use crate::support::app::TestApp;
use crate::support::demo::{CITIZEN, OFFICER, load_demo};
use crate::support::problems::expect_invalid_fields;

/// The PIN of the demo citizen (verified and funded with 5,000,000 đ by the demo data), as the
/// README lists it.
const CITIZEN_PIN: &str = "246810";
/// Birth registration, commune level: free, so no bill stands between it and its result.
const BIRTH: &str = "1.001193";
const PHU_XUAN: &str = "19753";
const ADDRESS: &str = "12 Lê Lợi, phường Phú Xuân, Huế";
const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const TRACKING_KEY_ALPHABET: &str = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A POST with a bearer token; the status and the JSON answer.
async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app.send_json_with(Method::POST, path, token, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
    (status, answer)
}

/// One dossier answer as DESIGN.md describes it: its status and national status code, the
/// postal delivery as one object, the documents sent with their `uri`, the tracking key.
fn assert_dossier(answer: &Value, status: &str, status_code: i64, sent: &[Value], key: &str) {
    assert_eq!(answer["status"], status, "{answer}");
    assert_eq!(answer["status_code"], status_code, "{answer}");
    assert_eq!(
        answer["delivery"],
        json!({"method": "postal", "address": ADDRESS}),
        "{answer}"
    );
    assert_eq!(answer["tracking_key"], key, "{answer}");
    assert_eq!(answer["procedure_code"], BIRTH);
    assert_eq!(answer["unit_code"], PHU_XUAN);
    assert_eq!(answer["channel"], "online");
    let documents = answer["documents"].as_array().expect("documents");
    assert_eq!(documents.len(), sent.len(), "{answer}");
    for document in sent {
        let kept = documents
            .iter()
            .find(|d| d["code"] == document["code"])
            .unwrap_or_else(|| panic!("{} is in the answer", document["code"]));
        for field in ["code", "name", "sha256", "size", "uri"] {
            assert_eq!(kept[field], document[field], "documents[].{field}");
        }
    }
}

#[sqlx::test]
async fn a_design_client_files_with_delivery_and_uri_follows_it_to_returned_and_withdraws(
    pool: PgPool,
) {
    load_demo(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let citizen = access_token(&app, CITIZEN.0, CITIZEN.1).await;
    let officer = access_token(&app, OFFICER.0, OFFICER.1).await;

    // The procedure says which documents it wants, by code; it charges nothing.
    let procedure = app.get_json(&format!("/v1/procedures/{BIRTH}")).await;
    assert_eq!(procedure["fees"], json!([]), "{procedure}");
    let documents: Vec<Value> = procedure["required_documents"]
        .as_array()
        .expect("required_documents")
        .iter()
        .map(|required| {
            let code = required["code"].as_str().unwrap();
            json!({
                "code": code,
                "name": format!("{code}.pdf"),
                "sha256": SHA256,
                "size": 48213,
                "uri": format!("s3://civicpay-documents/2026/12/01/{code}.pdf")
            })
        })
        .collect();
    assert!(!documents.is_empty());

    // A postal delivery without its address is refused, naming the field.
    let response = app
        .send_json_with(
            Method::POST,
            "/v1/dossiers",
            &citizen,
            &json!({
                "procedure_code": BIRTH,
                "unit_code": PHU_XUAN,
                "delivery": {"method": "postal"},
                "documents": documents
            }),
        )
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["delivery.address"]);

    // Filed online: submitted [1].
    let (status, filed) = post(
        &app,
        &citizen,
        "/v1/dossiers",
        &json!({
            "procedure_code": BIRTH,
            "unit_code": PHU_XUAN,
            "delivery": {"method": "postal", "address": ADDRESS},
            "documents": documents
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filed}");
    let id = filed["id"].as_str().expect("id").to_owned();
    let code = filed["code"].as_str().expect("code").to_owned();
    let key = filed["tracking_key"]
        .as_str()
        .expect("tracking_key")
        .to_owned();
    assert_eq!(key.len(), 6);
    assert!(
        key.chars().all(|c| TRACKING_KEY_ALPHABET.contains(c)),
        "{key}"
    );
    assert!(code.starts_with(&format!("{PHU_XUAN}-")), "{code}");
    assert_dossier(&filed, "submitted", 1, &documents, &key);

    // The officer walks it through the transition table to the result.
    let actions = format!("/v1/dossiers/{id}/actions");
    for (action, status, status_code) in [
        ("receive", "received", 2),
        ("start_processing", "processing", 4),
        ("approve", "result_ready", 9),
        ("return_result", "returned", 10),
    ] {
        let (answered, moved) = post(&app, &officer, &actions, &json!({"action": action})).await;
        assert_eq!(answered, StatusCode::OK, "{action}: {moved}");
        assert_dossier(&moved, status, status_code, &documents, &key);
    }

    // The citizen reads it back: returned [10], with every move on its timeline.
    let returned = app
        .get_json_with(&citizen, &format!("/v1/dossiers/{id}"))
        .await;
    assert_dossier(&returned, "returned", 10, &documents, &key);
    assert!(returned["received_at"].is_string());
    assert!(returned["due_at"].is_string());
    assert!(returned["finished_at"].is_string());
    assert_eq!(returned["overdue"], false);
    let timeline = returned["timeline"].as_array().expect("timeline");
    for entry in timeline {
        for field in [
            "actor_role",
            "action",
            "from_status",
            "to_status",
            "reason",
            "note",
            "at",
        ] {
            assert!(entry.get(field).is_some(), "{field} in {entry}");
        }
    }
    let moves: Vec<(&str, &str, &str)> = timeline
        .iter()
        .map(|e| {
            (
                e["actor_role"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["to_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("citizen", "submit", "submitted"),
            ("officer", "receive", "received"),
            ("officer", "start_processing", "processing"),
            ("officer", "approve", "result_ready"),
            ("officer", "return_result", "returned"),
        ]
    );

    // Anyone with the code and the key tracks it.
    let public = app
        .get_json(&format!("/v1/public/dossiers/{code}?key={key}"))
        .await;
    assert_eq!(public["status"], "returned");
    assert_eq!(public["status_code"], 10);

    // The verified, funded citizen withdraws to their own bank account.
    let wallet = app.get_json_with(&citizen, "/v1/wallet").await;
    assert_eq!(wallet["verified"], true);
    assert_eq!(wallet["pin_set"], true);
    let before = wallet["balance"].as_i64().expect("balance");
    assert!(before >= 100_000, "{wallet}");
    let request = json!({
        "amount": 100_000,
        "bank_code": "VCB",
        "account_number": "0071000123456",
        "account_name": "NGUYEN VAN AN"
    });
    let withdraw = || {
        app.client
            .post(app.url("/v1/wallet/withdrawals"))
            .bearer_auth(&citizen)
            .header("Idempotency-Key", "design-client-withdrawal-1")
            .header("X-Payment-Pin", CITIZEN_PIN)
            .json(&request)
            .send()
    };
    let response = withdraw().await.unwrap();
    let status = response.status();
    let withdrawal: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{withdrawal}");
    assert_eq!(withdrawal["account_name"], "NGUYEN VAN AN");
    assert_eq!(withdrawal["amount"], 100_000);
    assert_eq!(withdrawal["bank_code"], "VCB");
    assert_eq!(withdrawal["account_number"], "0071000123456");
    assert_eq!(withdrawal["status"], "pending");
    for field in ["id", "provider", "created_at"] {
        assert!(withdrawal[field].is_string(), "{field} in {withdrawal}");
    }
    let balance = app.get_json_with(&citizen, "/v1/wallet").await["balance"]
        .as_i64()
        .unwrap();
    assert_eq!(balance, before - 100_000);

    // Repeating the request with its key replays the same answer and moves nothing.
    let response = withdraw().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let replayed: Value = response.json().await.unwrap();
    assert_eq!(replayed, withdrawal);
    let balance = app.get_json_with(&citizen, "/v1/wallet").await["balance"]
        .as_i64()
        .unwrap();
    assert_eq!(balance, before - 100_000);

    // Read back by its id, it still names the account as the request did.
    let read = app
        .get_json_with(
            &citizen,
            &format!(
                "/v1/wallet/withdrawals/{}",
                withdrawal["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(read["account_name"], "NGUYEN VAN AN");
    assert_eq!(read["amount"], 100_000);
}
