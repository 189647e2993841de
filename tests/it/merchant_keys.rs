//! Merchant API keys cannot be taken over: only the newest key rotates or revokes the others,
//! rotation only ever shortens older keys' expiry, revocation is immediate, an admin can reset
//! every key of a merchant, and concurrent rotations leave exactly one newest key.

use axum::Router;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::actors::{admin, citizen};
use crate::support::app::{TestApp, test_config};
use crate::support::problems::expect_problem;

const ROTATE: &str = "/v1/merchant/api-keys/rotate";
const REVOKE_OTHERS: &str = "/v1/merchant/api-keys/revoke-others";
/// The grace period the tests run with: long enough that no key expires by itself mid-test.
const GRACE_SECS: u64 = 3_600;

struct Merchant {
    id: Uuid,
    key: String,
}

async fn spawn(pool: &PgPool) -> TestApp {
    let mut config = test_config();
    config.merchant_key_grace_secs = GRACE_SECS;
    TestApp::spawn_with(pool.clone(), config, Router::new()).await
}

async fn onboard(app: &TestApp, admin: &str, code: &str) -> Merchant {
    let body = json!({
        "name": format!("Quán {code}"), "code": code, "category_code": "5814",
        "limit_category": "general", "fee_rate": "0"
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/admin/merchants", admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    Merchant {
        id: created["id"].as_str().unwrap().parse().unwrap(),
        key: created["api_key"].as_str().unwrap().to_owned(),
    }
}

async fn post(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("accept-language", "en")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

/// Rotates with `key`, which must succeed; the new key and the older keys' expiry.
async fn rotate(app: &TestApp, key: &str) -> (String, DateTime<Utc>) {
    let response = post(app, key, ROTATE).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let new_key = body["api_key"].as_str().unwrap().to_owned();
    assert!(new_key.starts_with("mk_"));
    let expire_at = serde_json::from_value(body["previous_keys_expire_at"].clone()).unwrap();
    (new_key, expire_at)
}

async fn expect_not_newest(response: reqwest::Response) {
    let problem = expect_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let detail = problem.body["detail"].as_str().unwrap();
    assert!(detail.contains("newest"), "{detail}");
}

async fn profile(app: &TestApp, key: &str) -> StatusCode {
    app.get_with_token("/v1/merchant/profile", key)
        .await
        .status()
}

/// Every key's expiry, oldest key first.
async fn expiries(pool: &PgPool, merchant: &Merchant) -> Vec<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT expires_at FROM merchant_api_keys WHERE merchant_id = $1 ORDER BY created_at, id",
    )
    .bind(merchant.id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Sets the expiry of the merchant's `nth` key (oldest first) to `now() + interval` and
/// answers it.
async fn set_expiry(pool: &PgPool, merchant: &Merchant, nth: i64, interval: &str) -> DateTime<Utc> {
    sqlx::query_scalar(
        "UPDATE merchant_api_keys SET expires_at = now() + $3::interval
         WHERE id = (SELECT id FROM merchant_api_keys WHERE merchant_id = $1
                     ORDER BY created_at, id OFFSET $2 LIMIT 1)
         RETURNING expires_at",
    )
    .bind(merchant.id)
    .bind(nth)
    .bind(interval)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn an_old_key_inside_its_grace_period_cannot_rotate_nor_cut_the_new_key_short(pool: PgPool) {
    let app = spawn(&pool).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01").await;
    let (newest, _) = rotate(&app, &cafe.key).await;

    // The old key still works for everything else during its grace period...
    assert_eq!(profile(&app, &cafe.key).await, StatusCode::OK);
    // ...but cannot rotate: a leaked old key cannot mint a key of its own.
    expect_not_newest(post(&app, &cafe.key, ROTATE).await).await;
    let vietnamese = app
        .client
        .post(app.url(ROTATE))
        .bearer_auth(&cafe.key)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(vietnamese, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        problem.body["detail"]
            .as_str()
            .unwrap()
            .contains("mới nhất"),
        "{}",
        problem.body
    );

    // No key was issued, and the newest keeps working with no expiry.
    let keys = expiries(&pool, &cafe).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].is_some());
    assert_eq!(keys[1], None, "the newest key has no expiry");
    assert_eq!(profile(&app, &newest).await, StatusCode::OK);
    // The newest key still rotates.
    let (third, _) = rotate(&app, &newest).await;
    assert_eq!(profile(&app, &third).await, StatusCode::OK);
    expect_not_newest(post(&app, &newest, ROTATE).await).await;
}

#[sqlx::test]
async fn rotation_only_ever_shortens_the_older_keys_expiry(pool: PgPool) {
    let app = spawn(&pool).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01").await;
    let key1 = cafe.key.clone();
    let (key2, first_grace_end) = rotate(&app, &key1).await;
    assert_eq!(
        expiries(&pool, &cafe).await,
        vec![Some(first_grace_end), None]
    );

    // Key 1 is due to expire sooner than a new grace period would end: it keeps that.
    let soon = set_expiry(&pool, &cafe, 0, "10 minutes").await;
    let (key3, second_grace_end) = rotate(&app, &key2).await;
    assert!(second_grace_end >= first_grace_end);
    assert!(soon < second_grace_end);
    assert_eq!(
        expiries(&pool, &cafe).await,
        vec![Some(soon), Some(second_grace_end), None],
        "the sooner expiry is not lengthened"
    );

    // Key 2 is due later than the grace period (as after a longer grace): brought forward.
    set_expiry(&pool, &cafe, 1, "5 hours").await;
    let (key4, third_grace_end) = rotate(&app, &key3).await;
    assert_eq!(
        expiries(&pool, &cafe).await,
        vec![
            Some(soon),
            Some(third_grace_end),
            Some(third_grace_end),
            None
        ]
    );
    for key in [&key1, &key2, &key3, &key4] {
        assert_eq!(profile(&app, key).await, StatusCode::OK, "within the grace");
    }
}

#[sqlx::test]
async fn the_newest_key_revokes_the_others_at_once(pool: PgPool) {
    let app = spawn(&pool).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01").await;
    let other = onboard(&app, &admin, "OTHER1").await;
    let key1 = cafe.key.clone();
    let (key2, _) = rotate(&app, &key1).await;
    let (key3, _) = rotate(&app, &key2).await;

    // Older keys may not revoke anything, and revoke nothing by trying.
    for old in [&key1, &key2] {
        expect_not_newest(post(&app, old, REVOKE_OTHERS).await).await;
    }
    for key in [&key1, &key2, &key3] {
        assert_eq!(profile(&app, key).await, StatusCode::OK);
    }

    let response = post(&app, &key3, REVOKE_OTHERS).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"revoked": 2})
    );
    for old in [&key1, &key2] {
        expect_problem(
            app.get_with_token("/v1/merchant/profile", old).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        expect_problem(
            post(&app, old, ROTATE).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(profile(&app, &key3).await, StatusCode::OK);
    // Another merchant's key is untouched.
    assert_eq!(profile(&app, &other.key).await, StatusCode::OK);

    let again = post(&app, &key3, REVOKE_OTHERS).await;
    assert_eq!(again.json::<Value>().await.unwrap(), json!({"revoked": 0}));
    // The newest key still rotates as usual afterwards.
    let (key4, _) = rotate(&app, &key3).await;
    assert_eq!(profile(&app, &key4).await, StatusCode::OK);
    assert_eq!(profile(&app, &key3).await, StatusCode::OK);
}

#[sqlx::test]
async fn an_admin_reset_revokes_every_key_and_issues_one_new_key(pool: PgPool) {
    let app = spawn(&pool).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01").await;
    let other = onboard(&app, &admin, "OTHER1").await;
    let key1 = cafe.key.clone();
    let (key2, _) = rotate(&app, &key1).await;
    let reset = format!("/v1/admin/merchants/{}/api-keys/reset", cafe.id);

    let citizen_token = citizen(&app, "0912000001", 0).await;
    expect_problem(
        post(&app, &citizen_token, &reset).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A merchant key is no staff credential.
    expect_problem(
        post(&app, &key2, &reset).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let unknown = format!("/v1/admin/merchants/{}/api-keys/reset", Uuid::new_v4());
    expect_problem(
        post(&app, &admin, &unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for key in [&key1, &key2] {
        assert_eq!(
            profile(&app, key).await,
            StatusCode::OK,
            "nothing revoked yet"
        );
    }

    let response = post(&app, &admin, &reset).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["merchant_id"], cafe.id.to_string());
    assert_eq!(body["revoked"], 2);
    let fresh = body["api_key"].as_str().unwrap().to_owned();
    assert!(fresh.starts_with("mk_"));
    for old in [&key1, &key2] {
        expect_problem(
            app.get_with_token("/v1/merchant/profile", old).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    let profile_body = app.get_json_with(&fresh, "/v1/merchant/profile").await;
    assert_eq!(profile_body["code"], "CAFE01");
    assert!(profile_body.get("api_key").is_none());
    assert_eq!(profile(&app, &other.key).await, StatusCode::OK);
    // The key the admin issued is the newest: it rotates.
    let (rotated, _) = rotate(&app, &fresh).await;
    assert_eq!(profile(&app, &rotated).await, StatusCode::OK);
    let keys = expiries(&pool, &cafe).await;
    assert_eq!(keys.len(), 4);
    assert_eq!(keys.last(), Some(&None));
}

#[sqlx::test]
async fn of_five_concurrent_rotations_by_one_key_exactly_one_wins(pool: PgPool) {
    let app = spawn(&pool).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE01").await;
    let attempts = (0..5).map(|_| {
        let (app, key) = (&app, &cafe.key);
        async move {
            let response = post(app, key, ROTATE).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let results = join_all(attempts).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in &results {
        if *status != StatusCode::CREATED {
            assert_eq!(
                (*status, body["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("forbidden")),
                "{body}"
            );
        }
    }
    let winner = winners[0]["api_key"].as_str().unwrap().to_owned();

    let keys = expiries(&pool, &cafe).await;
    assert_eq!(keys.len(), 2, "one key issued: {keys:?}");
    let unexpiring: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM merchant_api_keys
         WHERE merchant_id = $1 AND revoked_at IS NULL AND expires_at IS NULL",
    )
    .bind(cafe.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unexpiring, 1, "exactly one newest key");
    assert_eq!(profile(&app, &winner).await, StatusCode::OK);
    expect_not_newest(post(&app, &cafe.key, ROTATE).await).await;
    rotate(&app, &winner).await;
}

/// A leaked old key inside its grace period reads, but cannot take over where callbacks go or
/// the secret that signs them; the newest key can.
#[sqlx::test]
async fn an_old_key_cannot_redirect_callbacks_or_take_the_webhook_secret(pool: PgPool) {
    let app = spawn(&pool).await;
    let admin = admin(&app).await;
    let cafe = onboard(&app, &admin, "CAFE02").await;
    let (newest, _) = rotate(&app, &cafe.key).await;
    let redirect = json!({"callback_url": "http://127.0.0.1:9/attacker"});
    let patch = |key: &str| {
        app.client
            .patch(app.url("/v1/merchant/profile"))
            .bearer_auth(key.to_owned())
            .header("accept-language", "en")
            .json(&redirect)
            .send()
    };
    expect_not_newest(patch(&cafe.key).await.unwrap()).await;
    expect_not_newest(post(&app, &cafe.key, "/v1/merchant/webhook-secret/rotate").await).await;
    let callback_url: Option<String> =
        sqlx::query_scalar("SELECT callback_url FROM merchants WHERE id = $1")
            .bind(cafe.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(callback_url, None, "unchanged");
    assert_eq!(profile(&app, &cafe.key).await, StatusCode::OK);

    assert_eq!(patch(&newest).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        post(&app, &newest, "/v1/merchant/webhook-secret/rotate")
            .await
            .status(),
        StatusCode::CREATED
    );
}
