//! Public tracking needs the code and its tracking key (codes are sequential, so the code alone
//! would let anyone walk every dossier of a unit and day), wrong keys are limited per address,
//! and document links name objects in our own storage only (issue 13, items 2 and 6).

use std::collections::HashSet;
use std::ops::Deref;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::app::{TestApp, test_config};
use crate::support::demo::CITIZEN;
use crate::support::desk::{BIRTH, DemoDesk, PHU_XUAN};
use crate::support::problems::{expect_invalid_fields, expect_problem, without_request_id};
use crate::support::requests::login;

const ALPHABET: &str = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The demo desk, with this file's requests.
struct Desk(DemoDesk);

impl Deref for Desk {
    type Target = DemoDesk;

    fn deref(&self) -> &DemoDesk {
        &self.0
    }
}

async fn desk_with(pool: &PgPool, config: civicpay::config::Config) -> Desk {
    Desk(DemoDesk::open_with(pool, config).await)
}

async fn desk(pool: &PgPool) -> Desk {
    desk_with(pool, test_config()).await
}

/// A document as a filing lists it, at `uri`.
fn document(code: &str, uri: &str) -> Value {
    json!({
        "code": code, "name": format!("{code}.pdf"),
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "size": 48213, "uri": uri
    })
}

/// What a birth registration needs, stored in a folder of our bucket.
fn birth_documents() -> Value {
    json!(
        ["to_khai", "giay_chung_sinh", "giay_to_tuy_than"]
            .iter()
            .map(|code| document(code, &format!("s3://civicpay-documents/2026/{code}.pdf")))
            .collect::<Vec<_>>()
    )
}

impl Desk {
    async fn file_online(&self, documents: Value) -> reqwest::Response {
        let body = json!({"procedure_code": BIRTH, "unit_code": PHU_XUAN, "documents": documents});
        self.app
            .send_json_with(Method::POST, "/v1/dossiers", &self.citizen, &body)
            .await
    }

    /// A dossier filed online by the demo citizen: its answer.
    async fn filed(&self) -> Value {
        let response = self.file_online(birth_documents()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    async fn file_at_counter(&self, documents: Value) -> reqwest::Response {
        let body = json!({
            "procedure_code": BIRTH, "documents": documents,
            "applicant": {"phone": "0933999999", "full_name": "Trần Thị Hoa", "national_id": "046095001234"}
        });
        self.app
            .send_json_with(Method::POST, "/v1/counter/dossiers", &self.officer, &body)
            .await
    }

    async fn act(&self, token: &str, id: &str, body: Value) -> reqwest::Response {
        self.app
            .send_json_with(
                Method::POST,
                &format!("/v1/dossiers/{id}/actions"),
                token,
                &body,
            )
            .await
    }

    async fn dossier(&self, token: &str, id: &str) -> Value {
        self.app
            .get_json_with(token, &format!("/v1/dossiers/{id}"))
            .await
    }

    async fn dossier_count(&self, pool: &PgPool) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM dossiers")
            .fetch_one(pool)
            .await
            .unwrap()
    }
}

/// A public lookup, from `address` as a trusted proxy forwards it when one is given.
async fn track(app: &TestApp, path: &str, address: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(address) = address {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("request sent")
}

fn is_tracking_key(key: &Value) -> bool {
    key.as_str()
        .is_some_and(|k| k.len() == 6 && k.chars().all(|c| ALPHABET.contains(c)))
}

/// A 404 problem's body without its request id, which differs per request anyway.
async fn not_found_body(response: reqwest::Response) -> Value {
    let problem = expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    without_request_id(problem.body)
}

/// Some other key of the alphabet: the right one with its first character moved on by one.
fn wrong_key(key: &str) -> String {
    let first = key.chars().next().unwrap();
    let index = ALPHABET.find(first).unwrap();
    let next = ALPHABET.chars().nth((index + 1) % ALPHABET.len()).unwrap();
    format!("{next}{}", &key[1..])
}

#[sqlx::test]
async fn public_tracking_needs_the_code_and_its_key(pool: PgPool) {
    let desk = desk(&pool).await;
    let filed = desk.filed().await;
    let code = filed["code"].as_str().unwrap();
    let key = filed["tracking_key"].as_str().unwrap();

    // The code alone, a wrong key, an empty one: the same 404 as a code nobody has.
    let unknown = not_found_body(
        track(
            &desk.app,
            &format!("/v1/public/dossiers/{PHU_XUAN}-000000-0000?key={key}"),
            None,
        )
        .await,
    )
    .await;
    for path in [
        format!("/v1/public/dossiers/{code}"),
        format!("/v1/public/dossiers/{code}?key="),
        format!("/v1/public/dossiers/{code}?key={}", wrong_key(key)),
        format!("/v1/public/dossiers/{code}?key={}", &key[..5]),
        format!("/v1/public/dossiers/{code}?key={key}{key}"),
        format!("/v1/public/dossiers/{PHU_XUAN}-000000-0000"),
    ] {
        let body = not_found_body(track(&desk.app, &path, None).await).await;
        assert_eq!(body, unknown, "{path}");
    }
    // The same in English too: nothing but the language differs.
    let english = desk
        .app
        .client
        .get(desk.app.url(&format!("/v1/public/dossiers/{code}")))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let english = not_found_body(english).await;
    let unknown_english = desk
        .app
        .client
        .get(desk.app.url(&format!(
            "/v1/public/dossiers/{PHU_XUAN}-000000-0000?key={key}"
        )))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(english, not_found_body(unknown_english).await);

    // Both: where it stands, and nothing about who filed it (nor the key itself).
    for given in [key.to_owned(), key.to_ascii_lowercase()] {
        let response = track(
            &desk.app,
            &format!("/v1/public/dossiers/{code}?key={given}"),
            None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "key {given}");
        let text = response.text().await.unwrap();
        let public: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(public["code"], code);
        assert_eq!(public["status"], "submitted");
        assert_eq!(public["procedure_code"], BIRTH);
        assert_eq!(public["unit_code"], PHU_XUAN);
        for member in [
            "id",
            "tracking_key",
            "applicant",
            "applicant_name",
            "documents",
            "timeline",
        ] {
            assert!(public.get(member).is_none(), "{member} is public: {text}");
        }
        for personal in [key, "Nguyễn Văn An", "912345678", "s3://", "9f86d081"] {
            assert!(!text.contains(personal), "{personal} leaked: {text}");
        }
    }
}

#[sqlx::test]
async fn the_tracking_key_is_shown_to_the_owner_and_staff_and_differs_between_dossiers(
    pool: PgPool,
) {
    let desk = desk(&pool).await;
    let first = desk.filed().await;
    let second = desk.filed().await;
    let response = desk.file_at_counter(birth_documents()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let counter: Value = response.json().await.unwrap();

    let mut keys = HashSet::new();
    for filed in [&first, &second, &counter] {
        // In the filing answer: the counter's is what the reception slip prints.
        assert!(is_tracking_key(&filed["tracking_key"]), "{filed}");
        keys.insert(filed["tracking_key"].as_str().unwrap().to_owned());
        let id = filed["id"].as_str().unwrap();
        let stored: String = sqlx::query_scalar("SELECT tracking_key FROM dossiers WHERE id = $1")
            .bind(Uuid::parse_str(id).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(filed["tracking_key"], stored.as_str());
        // The unit's officer and the province supervisor see it.
        for staff in [&desk.officer, &desk.supervisor] {
            assert_eq!(
                desk.dossier(staff, id).await["tracking_key"],
                filed["tracking_key"]
            );
        }
    }
    assert_eq!(keys.len(), 3, "three dossiers, three keys: {keys:?}");
    // The owner sees theirs, in the dossier and in every move's answer; another citizen
    // sees no dossier at all.
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        desk.dossier(&desk.citizen, id).await["tracking_key"],
        first["tracking_key"]
    );
    let response = desk
        .act(&desk.officer, id, json!({"action": "receive"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let received: Value = response.json().await.unwrap();
    assert_eq!(received["tracking_key"], first["tracking_key"]);
    let response = desk
        .app
        .get_with_token(&format!("/v1/dossiers/{id}"), &desk.other_citizen)
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    // Keys drawn by the database (existing rows in the migration, bulk loads) have the same shape.
    let drawn: Vec<String> =
        sqlx::query_scalar("SELECT dossier_tracking_key() FROM generate_series(1, 200)")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        drawn.iter().all(|k| is_tracking_key(&json!(k))),
        "{drawn:?}"
    );
    assert!(drawn.iter().collect::<HashSet<_>>().len() >= 199);
}

#[sqlx::test]
async fn wrong_keys_and_unknown_codes_from_one_address_are_rate_limited(pool: PgPool) {
    let mut config = test_config();
    config.dossiers.tracking_failures_per_address = 3;
    config.dossiers.tracking_window_secs = 600;
    // Behind a trusted proxy, so the test can speak from two addresses.
    config.auth.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let desk = desk_with(&pool, config).await;
    let filed = desk.filed().await;
    let code = filed["code"].as_str().unwrap();
    let key = filed["tracking_key"].as_str().unwrap();
    let right = format!("/v1/public/dossiers/{code}?key={key}");
    const ATTACKER: &str = "203.0.113.7";
    let attacker = Some(ATTACKER);
    let neighbour = Some("198.51.100.20");

    // Right lookups cost nothing.
    for _ in 0..5 {
        assert_eq!(
            track(&desk.app, &right, attacker).await.status(),
            StatusCode::OK
        );
    }
    // Two wrong keys and an unknown code use up the address's three failures...
    for path in [
        format!("/v1/public/dossiers/{code}?key={}", wrong_key(key)),
        format!("/v1/public/dossiers/{code}"),
        format!("/v1/public/dossiers/{PHU_XUAN}-000000-0001?key={key}"),
    ] {
        not_found_body(track(&desk.app, &path, attacker).await).await;
    }
    // ...and then every lookup from it is refused, the right key too, so that the answers no
    // longer tell a right key from a wrong one.
    for path in [
        format!("/v1/public/dossiers/{code}?key={}", wrong_key(key)),
        right.clone(),
    ] {
        let problem = expect_problem(
            track(&desk.app, &path, attacker).await,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        )
        .await;
        let retry_after = problem.retry_after_secs();
        assert!((1..=600).contains(&retry_after), "{retry_after}");
    }
    // Another address is not held back, and the limit is its own: the attacker's address may
    // still log in.
    assert_eq!(
        track(&desk.app, &right, neighbour).await.status(),
        StatusCode::OK
    );
    let response = desk
        .app
        .client
        .post(desk.app.url("/v1/auth/login"))
        .header("x-forwarded-for", ATTACKER)
        .json(&json!({"phone": CITIZEN.0, "password": CITIZEN.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Failed logins do not count toward tracking either.
    assert_eq!(
        login(&desk.app, CITIZEN.0, "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let failures: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, client_addr FROM login_failures ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        failures
            .iter()
            .filter(|(kind, addr)| kind == "tracking" && addr == ATTACKER)
            .count(),
        3,
        "{failures:?}"
    );
}

/// Document URIs a client must not be able to hand us.
const BAD_URIS: &[&str] = &[
    "javascript:alert(document.cookie)",
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://civicpay-documents.s3.amazonaws.com/to-khai.pdf",
    "s3://other-bucket/to-khai.pdf",
    "s3://civicpay-documents.evil/to-khai.pdf",
    "s3://civicpay-documents",
    "s3://civicpay-documents/",
    "s3://civicpay-documents/../other-bucket/to-khai.pdf",
    "s3://civicpay-documents/2026/../../other-bucket/to-khai.pdf",
    "s3://civicpay-documents//to-khai.pdf",
    "s3://civicpay-documents/%2e%2e/other-bucket/to-khai.pdf",
    "s3://civicpay-documents/to%2Dkhai.pdf",
    "S3://civicpay-documents/to-khai.pdf",
    "S3://CIVICPAY-DOCUMENTS/to-khai.pdf",
    " s3://civicpay-documents/to-khai.pdf",
    "s3://civicpay-documents/to-khai.pdf ",
    "s3://civicpay-documents/to khai.pdf",
    "s3://civicpay-documents/to-khai.pdf\n",
    "s3://civicpay-documents/to-khai.pdf?x-id=GetObject",
    "s3://civicpay-documents/to-khai.pdf#page=2",
    "s3://civicpay-documents/..\\other-bucket\\to-khai.pdf",
    "",
];

#[sqlx::test]
async fn filings_take_documents_only_from_our_storage(pool: PgPool) {
    let desk = desk(&pool).await;
    for bad in BAD_URIS {
        for index in [0, 2] {
            let mut documents = birth_documents();
            documents[index]["uri"] = json!(bad);
            let field = format!("documents[{index}].uri");
            let response = desk.file_online(documents.clone()).await;
            assert_eq!(
                expect_invalid_fields(response).await,
                [field.as_str()],
                "online, {bad:?}"
            );
            let response = desk.file_at_counter(documents).await;
            assert_eq!(
                expect_invalid_fields(response).await,
                [field.as_str()],
                "counter, {bad:?}"
            );
        }
    }
    // Two bad ones are both named.
    let mut documents = birth_documents();
    documents[0]["uri"] = json!("file:///etc/passwd");
    documents[1]["uri"] = json!("javascript:alert(1)");
    let response = desk.file_online(documents).await;
    assert_eq!(
        expect_invalid_fields(response).await,
        ["documents[0].uri", "documents[1].uri"]
    );
    assert_eq!(desk.dossier_count(&pool).await, 0, "nothing was filed");

    // Objects of our bucket, in folders, are accepted and kept as given.
    let mut documents = birth_documents();
    documents[0]["uri"] = json!("s3://civicpay-documents/2026/12/01/0f3a_to-khai.v2.pdf");
    let code = documents[0]["code"].clone();
    let response = desk.file_online(documents).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let filed: Value = response.json().await.unwrap();
    let kept = filed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|document| document["code"] == code)
        .expect("the document is in the answer");
    assert_eq!(
        kept["uri"],
        "s3://civicpay-documents/2026/12/01/0f3a_to-khai.v2.pdf"
    );
    let response = desk.file_at_counter(birth_documents()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(desk.dossier_count(&pool).await, 2);
}

#[sqlx::test]
async fn a_supplement_takes_documents_only_from_our_storage(pool: PgPool) {
    let desk = desk(&pool).await;
    let filed = desk.filed().await;
    let id = filed["id"].as_str().unwrap();
    for body in [
        json!({"action": "receive"}),
        json!({"action": "request_supplement", "reason": "thiếu bản sao căn cước"}),
    ] {
        assert_eq!(
            desk.act(&desk.officer, id, body).await.status(),
            StatusCode::OK
        );
    }
    for bad in BAD_URIS {
        let body = json!({"action": "supplement", "documents": [
            document("giay_to_tuy_than", "s3://civicpay-documents/2026/cccd-2.pdf"),
            document("giay_to_tuy_than", bad),
        ]});
        let response = desk.act(&desk.citizen, id, body).await;
        assert_eq!(
            expect_invalid_fields(response).await,
            ["documents[1].uri"],
            "{bad:?}"
        );
    }
    let unchanged = desk.dossier(&desk.citizen, id).await;
    assert_eq!(unchanged["status"], "supplement_requested");
    assert_eq!(unchanged["documents"].as_array().unwrap().len(), 3);

    let body = json!({"action": "supplement", "documents": [
        document("giay_to_tuy_than", "s3://civicpay-documents/2026/cccd-2.pdf"),
    ]});
    let response = desk.act(&desk.citizen, id, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let supplemented: Value = response.json().await.unwrap();
    assert_eq!(supplemented["status"], "processing");
    assert_eq!(supplemented["documents"].as_array().unwrap().len(), 4);
    // Documents an officer brings with a move are checked the same way.
    let body = json!({"action": "approve", "documents": [
        document("ket_qua", "http://169.254.169.254/latest/meta-data/"),
    ]});
    let response = desk.act(&desk.officer, id, body).await;
    assert_eq!(expect_invalid_fields(response).await, ["documents[0].uri"]);
}

#[sqlx::test]
async fn the_storage_prefix_is_configurable(pool: PgPool) {
    let mut config = test_config();
    config.dossiers.document_storage_prefix = "s3://hue-dossiers/uploads/".to_owned();
    let desk = desk_with(&pool, config).await;
    let stored_under = |prefix: &str| {
        json!(
            ["to_khai", "giay_chung_sinh", "giay_to_tuy_than"]
                .iter()
                .map(|code| document(code, &format!("{prefix}{code}.pdf")))
                .collect::<Vec<_>>()
        )
    };
    // The default bucket is now someone else's, and so is the bucket outside the folder.
    for foreign in [
        "s3://civicpay-documents/",
        "s3://hue-dossiers/",
        "s3://hue-dossiers/uploads-old/",
    ] {
        let response = desk.file_online(stored_under(foreign)).await;
        assert_eq!(
            expect_invalid_fields(response).await,
            ["documents[0].uri", "documents[1].uri", "documents[2].uri"],
            "{foreign:?}"
        );
    }
    let response = desk
        .file_online(stored_under("s3://hue-dossiers/uploads/2026/"))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
