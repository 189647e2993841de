//! A counter dossier reaches its applicant and nobody else (issue 13): never by the phone the
//! officer typed, only by the verified identity of the national ID the officer recorded or by
//! the code texted to that phone (with that national ID), and only while it is open or closed
//! within 90 days; a filing and a verification at once still meet. National IDs show in full
//! only to the owner and the handling unit's officers.

use std::collections::HashSet;
use std::ops::Deref;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{PASSWORD, access_token, citizen, register};
use crate::support::app::TestApp;
use crate::support::desk::{BIRTH, DemoDesk, birth_documents};
use crate::support::problems::{expect_invalid_fields, expect_problem};
use crate::support::requests::verify_wallet;

/// The demo citizen 0912345678 (Nguyễn Văn An), whose wallet is verified with this ID.
const AN_ID: &str = "046095012345";

/// The demo desk, with this file's requests; every dossier here is filed at Phú Xuân.
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

impl Desk {
    async fn file_response(&self, phone: &str, name: &str, national_id: &str) -> reqwest::Response {
        let body = json!({
            "procedure_code": BIRTH, "documents": birth_documents(),
            "applicant": {"phone": phone, "full_name": name, "national_id": national_id}
        });
        self.app
            .send_json_with(Method::POST, "/v1/counter/dossiers", &self.officer, &body)
            .await
    }

    /// A birth registration received at Phú Xuân's counter.
    async fn file(&self, phone: &str, name: &str, national_id: &str) -> Value {
        let response = self.file_response(phone, name, national_id).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The ids of the caller's dossiers, newest first.
    async fn mine(&self, token: &str) -> Vec<String> {
        let page = self
            .app
            .get_json_with(token, "/v1/dossiers?limit=100")
            .await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn claim(
        &self,
        token: &str,
        code: &Value,
        otp: &str,
        national_id: &str,
    ) -> reqwest::Response {
        let body = json!({"code": code, "otp": otp, "national_id": national_id});
        self.app
            .send_json_with(Method::POST, "/v1/dossiers/claim", token, &body)
            .await
    }
}

fn id_of(dossier: &Value) -> String {
    dossier["id"].as_str().unwrap().to_owned()
}

/// The claim codes the sandbox texted to `phone`, newest first.
async fn claim_codes(app: &TestApp, phone: &str) -> Vec<String> {
    let messages = app.get_json(&format!("/sandbox/sms/{phone}")).await;
    messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .filter(|text| text.contains("ma nhan ho so"))
        .filter_map(|text| {
            text.split(|c: char| !c.is_ascii_digit())
                .find(|part| part.len() == 6)
                .map(str::to_owned)
        })
        .collect()
}

/// A six-digit code that is not `code`.
fn other_than(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn verify(app: &TestApp, token: &str, national_id: &str) -> StatusCode {
    verify_wallet(app, token, national_id).await.status()
}

async fn owner_of(pool: &PgPool, id: &str) -> Option<Uuid> {
    sqlx::query_scalar("SELECT applicant_id FROM dossiers WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Closes a dossier as returned `days` ago.
async fn returned_days_ago(pool: &PgPool, id: &str, days: i32) {
    sqlx::query(
        "UPDATE dossiers SET status = 'returned',
                finished_at = now() - make_interval(days => $2 + 1),
                returned_at = now() - make_interval(days => $2),
                updated_at = now() - make_interval(days => $2)
         WHERE id = $1::uuid",
    )
    .bind(id)
    .bind(days)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn a_mistyped_phone_gives_its_owner_nothing(pool: PgPool) {
    let desk = desk(&pool).await;
    // A registered, verified citizen (national ID 046095111222) whose number the officer types
    // by mistake.
    const STRANGER: &str = "0933111222";
    let stranger = citizen(&desk.app, STRANGER, 0).await;

    // An is at the counter; his ID is recorded right, the phone wrong.
    let filed = desk.file(STRANGER, "Nguyễn Văn An", AN_ID).await;
    let id = id_of(&filed);
    assert_eq!(
        desk.mine(&stranger).await,
        Vec::<String>::new(),
        "the stranger got it"
    );
    let response = desk
        .app
        .get_with_token(&format!("/v1/dossiers/{id}"), &stranger)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // It is An's: his verified identity is the recorded ID. Nothing was texted to the stranger.
    assert!(desk.mine(&desk.citizen).await.contains(&id));
    assert!(claim_codes(&desk.app, STRANGER).await.is_empty());

    // An applicant without a verified wallet: the code goes to the mistyped phone, and is of
    // no use to the stranger without the applicant's national ID.
    const HOA_ID: &str = "046195000123";
    let filed = desk.file(STRANGER, "Lê Thị Hoa", HOA_ID).await;
    let id = id_of(&filed);
    let codes = claim_codes(&desk.app, STRANGER).await;
    assert_eq!(codes.len(), 1, "one claim code texted");
    // With his own ID or even knowing Hoa's (a relative, say), a stranger verified as someone
    // else is provably not the applicant: the dossier is not there for him.
    let response = desk
        .claim(&stranger, &filed["code"], &codes[0], "046095111222")
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = desk
        .claim(&stranger, &filed["code"], &codes[0], HOA_ID)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(desk.mine(&stranger).await, Vec::<String>::new());
    assert_eq!(owner_of(&pool, &id).await, None);

    // Hoa registers with her own phone and verifies her wallet with her ID: it is hers.
    let tokens = register(&desk.app, "0933444555", PASSWORD).await;
    let hoa = tokens["access_token"].as_str().unwrap();
    assert_eq!(desk.mine(hoa).await, Vec::<String>::new());
    assert_eq!(verify(&desk.app, hoa, HOA_ID).await, StatusCode::OK);
    assert_eq!(desk.mine(hoa).await, vec![id.clone()]);
    let dossier = desk
        .app
        .get_json_with(hoa, &format!("/v1/dossiers/{id}"))
        .await;
    let last = dossier["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "claim_by_identity");
    assert_eq!(last["actor_role"], "citizen");
}

#[sqlx::test]
async fn a_recycled_phone_inherits_nothing_and_the_id_holder_gets_only_recent_dossiers(
    pool: PgPool,
) {
    let desk = desk(&pool).await;
    const PHONE: &str = "0933123456";
    // The number's previous owner, who never had an account.
    const PREVIOUS_ID: &str = "046195000123";
    let old = desk.file(PHONE, "Lê Thị Hoa", PREVIOUS_ID).await;
    let closed_lately = desk.file(PHONE, "Lê Thị Hoa", PREVIOUS_ID).await;
    let open = desk.file(PHONE, "Lê Thị Hoa", PREVIOUS_ID).await;
    returned_days_ago(&pool, &id_of(&old), 100).await;
    returned_days_ago(&pool, &id_of(&closed_lately), 10).await;
    let codes = claim_codes(&desk.app, PHONE).await;
    assert_eq!(codes.len(), 3);
    let (open_code, old_code) = (&codes[0], &codes[2]);

    // The number's new owner registers and verifies with their own ID (046095123456).
    let new_owner = citizen(&desk.app, PHONE, 0).await;
    assert_eq!(
        desk.mine(&new_owner).await,
        Vec::<String>::new(),
        "inherited"
    );
    // Not even with the codes the number received: the long-closed dossier is past claiming
    // whatever the proof, and the open one needs its applicant's ID.
    let response = desk
        .claim(&new_owner, &old["code"], old_code, PREVIOUS_ID)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = desk
        .claim(&new_owner, &open["code"], open_code, "046095123456")
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = desk
        .claim(&new_owner, &open["code"], open_code, PREVIOUS_ID)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(desk.mine(&new_owner).await, Vec::<String>::new());

    // The previous owner, on a new phone, verifies with her ID: the open dossier and the one
    // closed 10 days ago are hers, the one closed 100 days ago stays with nobody.
    let tokens = register(&desk.app, "0933777888", PASSWORD).await;
    let hoa = tokens["access_token"].as_str().unwrap();
    assert_eq!(verify(&desk.app, hoa, PREVIOUS_ID).await, StatusCode::OK);
    let mine: HashSet<String> = desk.mine(hoa).await.into_iter().collect();
    assert_eq!(mine, HashSet::from([id_of(&open), id_of(&closed_lately)]));
    assert_eq!(owner_of(&pool, &id_of(&old)).await, None);
}

#[sqlx::test]
async fn a_filing_and_a_verification_at_once_attach_the_dossier_exactly_once(pool: PgPool) {
    let desk = desk(&pool).await;
    const PHONE: &str = "0933200000";
    let tokens = register(&desk.app, PHONE, PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let account_id: Uuid =
        sqlx::query_scalar("SELECT id FROM accounts WHERE phone = '+84933200000'")
            .fetch_one(&pool)
            .await
            .unwrap();
    const ROUNDS: usize = 16;
    let mut filed = Vec::new();
    for round in 0..ROUNDS {
        // An unverified wallet again, to verify with a new national ID this round.
        sqlx::query(
            "UPDATE wallets SET verified_at = NULL, verified_name = NULL, national_id_hash = NULL,
                    national_id_last4 = NULL
             WHERE account_id = $1",
        )
        .bind(account_id)
        .execute(&pool)
        .await
        .unwrap();
        let national_id = format!("0460950{round:05}");
        // The ID is what counts: every other round the officer types some other phone.
        let phone = if round % 2 == 0 {
            PHONE.to_owned()
        } else {
            format!("09332{round:05}")
        };
        let (filing, verified) = tokio::join!(
            desk.file_response(&phone, "Nguyễn Văn An", &national_id),
            verify(&desk.app, token, &national_id),
        );
        assert_eq!(verified, StatusCode::OK, "round {round}");
        let status = filing.status();
        let dossier: Value = filing.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "round {round}: {dossier}");
        let id = id_of(&dossier);
        assert_eq!(
            owner_of(&pool, &id).await,
            Some(account_id),
            "round {round}"
        );
        // Attached at filing (no claim line) or by the verification (one), never twice.
        let claims: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dossier_events WHERE dossier_id = $1::uuid AND action LIKE 'claim%'",
        )
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(claims <= 1, "round {round}: claimed {claims} times");
        filed.push(id);
    }
    let mine = desk.mine(token).await;
    assert_eq!(mine.len(), ROUNDS, "each listed once");
    let mine: HashSet<String> = mine.into_iter().collect();
    assert_eq!(mine, filed.into_iter().collect::<HashSet<String>>());
}

#[sqlx::test]
async fn the_code_texted_at_the_counter_claims_the_dossier_for_that_phone_only(pool: PgPool) {
    let desk = desk(&pool).await;
    const PHONE: &str = "0933123456";
    const HOA_ID: &str = "046195000123";
    let filed = desk.file(PHONE, "Lê Thị Hoa", HOA_ID).await;
    let id = id_of(&filed);
    let code = claim_codes(&desk.app, PHONE).await.remove(0);
    // Registering with the phone claims nothing.
    let tokens = register(&desk.app, PHONE, PASSWORD).await;
    let hoa = tokens["access_token"].as_str().unwrap();
    assert_eq!(desk.mine(hoa).await, Vec::<String>::new());

    // Citizens only; another phone's account, even with the code and the ID, finds nothing;
    // nor does an unknown dossier code.
    let response = desk
        .claim(&desk.officer, &filed["code"], &code, HOA_ID)
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = desk
        .claim(&desk.other_citizen, &filed["code"], &code, HOA_ID)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = desk
        .claim(hoa, &json!("19753-000000-0000"), &code, HOA_ID)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    // A wrong code, a wrong ID: refused alike, each try counted; a malformed ID is not a try.
    let response = desk
        .claim(hoa, &filed["code"], other_than(&code), HOA_ID)
        .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "otp_invalid").await;
    assert_eq!(problem.body["attempts_left"], 4);
    let response = desk.claim(hoa, &filed["code"], &code, "046195000124").await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "otp_invalid").await;
    assert_eq!(problem.body["attempts_left"], 3);
    let response = desk.claim(hoa, &filed["code"], &code, "12345").await;
    assert_eq!(expect_invalid_fields(response).await, ["national_id"]);
    assert_eq!(owner_of(&pool, &id).await, None);

    // The right code with the right ID: hers, with the ID in full for her.
    let response = desk.claim(hoa, &filed["code"], &code, HOA_ID).await;
    assert_eq!(response.status(), StatusCode::OK);
    let claimed: Value = response.json().await.unwrap();
    assert_eq!(claimed["id"], filed["id"]);
    assert_eq!(claimed["applicant"]["national_id"], HOA_ID);
    let last = claimed["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "claim_by_code");
    assert_eq!(desk.mine(hoa).await, vec![id.clone()]);
    // Claiming one's own dossier again answers it as it is.
    let response = desk.claim(hoa, &filed["code"], &code, HOA_ID).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Five wrong tries kill a code: the right one is refused after them.
    let second = desk.file(PHONE, "Lê Thị Hoa", HOA_ID).await;
    let second_code = claim_codes(&desk.app, PHONE).await.remove(0);
    for left in (0..5).rev() {
        let response = desk
            .claim(hoa, &second["code"], other_than(&second_code), HOA_ID)
            .await;
        let problem =
            expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "otp_invalid").await;
        assert_eq!(problem.body["attempts_left"], left);
    }
    let response = desk.claim(hoa, &second["code"], &second_code, HOA_ID).await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "otp_invalid").await;
    assert_eq!(owner_of(&pool, &id_of(&second)).await, None);
    assert_eq!(desk.mine(hoa).await, vec![id]);
}

#[sqlx::test]
async fn national_ids_show_in_full_only_to_the_owner_and_the_handling_units_officers(pool: PgPool) {
    let desk = desk(&pool).await;
    // An officer of the province: the dossier is in their scope, not at their unit.
    let body = json!({"phone": "0905000046", "password": PASSWORD, "full_name": "Võ Thị Lan", "role": "officer", "unit_code": "46"});
    let response = desk
        .app
        .send_json_with(Method::POST, "/v1/admin/staff", &desk.admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let province_officer = access_token(&desk.app, "0905000046", PASSWORD).await;

    let filed = desk.file("0912345678", "Nguyễn Văn An", AN_ID).await;
    // The filing officer is of the handling unit.
    assert_eq!(filed["applicant"]["national_id"], AN_ID);
    let id = id_of(&filed);
    let path = format!("/v1/dossiers/{id}");
    for (who, token, shown) in [
        ("the owner", &desk.citizen, AN_ID),
        ("an officer of the handling unit", &desk.officer, AN_ID),
        (
            "an officer of the province",
            &province_officer,
            "********2345",
        ),
        ("the supervisor", &desk.supervisor, "********2345"),
        ("the admin", &desk.admin, "********2345"),
    ] {
        let response = desk.app.get_with_token(&path, token).await;
        assert_eq!(response.status(), StatusCode::OK, "{who}");
        let text = response.text().await.unwrap();
        let dossier: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(dossier["applicant"]["national_id"], shown, "{who}");
        if shown != AN_ID {
            assert!(!text.contains(AN_ID), "{who} reads the full ID: {text}");
        }
    }
}
