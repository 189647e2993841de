//! Signed callbacks delivered to a real HTTP receiver on loopback, by real delivery workers on
//! the test's database; signatures checked by a verifier written here from the Standard
//! Webhooks specification, independent of the code under test.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use civicpay::callbacks::delivery::DeliverySettings;
use civicpay::callbacks::destination::Destinations;
use civicpay::config::Mode;
use civicpay::outbox::{Audience, record};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::support::actors::{Merchant, admin, citizen};
use crate::support::app::{TestApp, test_config};
use crate::support::ledger::assert_ledger_verifies;
use crate::support::metrics::{metrics_config, scrape};
use crate::support::problems::{expect_invalid_fields, expect_problem};
use crate::support::receiver::{Received, Receiver};
use crate::support::requests::{new_order, pay};
use crate::support::workers::{Workers, quick_settings};

const SOON: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(1500);

struct Subscriber {
    merchant: Merchant,
    secret: String,
}

async fn subscriber(app: &TestApp, admin: &str, code: &str, callback_url: &str) -> Subscriber {
    let body = json!({
        "name": format!("Quán {code}"), "code": code, "category_code": "5814",
        "limit_category": "general", "fee_rate": "0.01", "callback_url": callback_url,
        "events": ["payment.succeeded", "refund.succeeded", "order.cancelled", "order.expired"]
    });
    let response = app
        .send_json_with(reqwest::Method::POST, "/v1/admin/merchants", admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    Subscriber {
        merchant: Merchant {
            key: created["api_key"].as_str().unwrap().to_owned(),
            id: created["id"].as_str().unwrap().to_owned(),
        },
        secret: created["webhook_secret"].as_str().unwrap().to_owned(),
    }
}

/// A citizen pays one order of `subscriber`; returns the order.
async fn paid_order(app: &TestApp, token: &str, subscriber: &Subscriber, order_ref: &str) -> Value {
    let order = new_order(app, &subscriber.merchant, order_ref, 25_000).await;
    let code = order["code"].as_str().unwrap();
    let response = pay(app, token, code, &Uuid::new_v4().to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    order
}

/// Standard Webhooks verification as its specification writes it: HMAC-SHA256, keyed with the
/// base64-decoded secret after `whsec_`, of `id.timestamp.body`; any `v1,` signature may match.
fn signed_by(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(received.webhook_id.as_bytes());
    mac.update(b".");
    mac.update(received.timestamp.as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received.signature.split(' ').any(|s| s == expected)
}

fn envelope(received: &Received) -> Value {
    serde_json::from_slice(&received.body).unwrap()
}

async fn merchant_get(app: &TestApp, key: &str, path: &str) -> Value {
    let response = app.get_with_token(path, key).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

/// Polls the event until `done` holds (at most 10 s).
async fn event_when(app: &TestApp, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/merchant/events/{id}");
    for _ in 0..100 {
        let event = merchant_get(app, key, &path).await;
        if done(&event) {
            return event;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("event {id} never reached the expected state");
}

async fn set_up(pool: &PgPool) -> (TestApp, String, String) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let citizen = citizen(&app, "0912000101", 1_000_000).await;
    (app, admin, citizen)
}

#[sqlx::test]
async fn a_payment_is_called_back_to_its_merchant_only_with_a_verifiable_signature(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut shop_receiver = Receiver::start().await;
    let mut other_receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPA", &shop_receiver.url).await;
    let _other = subscriber(&app, &admin, "SHOPB", &other_receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());

    let order = paid_order(&app, &citizen, &shop, "HD-1").await;

    let callback = shop_receiver
        .next(SOON)
        .await
        .expect("the shop is called back");
    assert!(signed_by(&shop.secret, &callback));
    let event = envelope(&callback);
    assert_eq!(event["id"], callback.webhook_id.as_str());
    assert_eq!(event["type"], "payment.succeeded");
    assert!(event["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(event["data"]["order_ref"], "HD-1");
    assert_eq!(event["data"]["code"], order["code"]);
    assert_eq!(event["data"]["status"], "paid");
    let sent_at: i64 = callback.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() <= 5);

    assert!(
        other_receiver.next(QUIET).await.is_none(),
        "another merchant was called"
    );
    // The citizen's wallet movement is an event too, and is never sent to a merchant (the demo
    // billers' deliveries are the demo counter shift's).
    let deliveries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM callback_deliveries
         WHERE merchant_id NOT IN (SELECT id FROM merchants WHERE role = 'biller')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(deliveries, 1);
    let logged = event_when(&app, &shop.merchant.key, &callback.webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    assert_eq!(logged["attempt_count"], 1);
    assert_eq!(logged["attempts"][0]["status_code"], 200);
    assert_eq!(logged["attempts"][0]["response_body"], "ok");
    assert_eq!(logged["attempts"][0]["url"], shop_receiver.url.as_str());
    workers.stop().await;
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn an_unsubscribed_event_type_is_listed_as_skipped_and_not_sent(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPS", &receiver.url).await;
    let response = app
        .send_json_with(
            reqwest::Method::PATCH,
            "/v1/merchant/profile",
            &shop.merchant.key,
            &json!({"events": ["refund.succeeded"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let workers = Workers::start(&pool, quick_settings());
    paid_order(&app, &citizen, &shop, "HD-2").await;
    assert!(receiver.next(QUIET).await.is_none());
    let events = merchant_get(&app, &shop.merchant.key, "/v1/merchant/events").await;
    assert_eq!(events["data"][0]["type"], "payment.succeeded");
    assert_eq!(events["data"][0]["delivery_state"], "skipped");
    assert_eq!(events["data"][0]["attempt_count"], 0);
    workers.stop().await;
}

#[sqlx::test]
async fn a_receiver_that_was_down_gets_the_event_by_a_retry(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    // A port nobody listens on yet: the first attempt is refused.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = port.local_addr().unwrap();
    drop(port);
    let shop = subscriber(
        &app,
        &admin,
        "SHOPD",
        &format!("http://{address}/callbacks"),
    )
    .await;
    let workers = Workers::start(&pool, quick_settings());
    paid_order(&app, &citizen, &shop, "HD-3").await;
    let events = merchant_get(&app, &shop.merchant.key, "/v1/merchant/events").await;
    let id = events["data"][0]["id"].as_str().unwrap().to_owned();
    let failed_once = event_when(&app, &shop.merchant.key, &id, |e| e["attempt_count"] == 1).await;
    assert_eq!(failed_once["delivery_state"], "pending");
    assert!(failed_once["attempts"][0]["status_code"].is_null());
    assert!(
        !failed_once["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    let mut receiver = Receiver::serve_on(TcpListener::bind(address).await.unwrap()).await;
    let callback = receiver.next(SOON).await.expect("delivered by the retry");
    assert_eq!(callback.webhook_id, id);
    assert!(signed_by(&shop.secret, &callback));
    let delivered = event_when(&app, &shop.merchant.key, &id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    assert_eq!(delivered["attempt_count"], 2);
    workers.stop().await;
}

#[sqlx::test]
async fn an_error_answer_is_retried_with_the_same_id_until_a_2xx(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    receiver.answer_with(&[500, 302]);
    let shop = subscriber(&app, &admin, "SHOPE", &receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());
    paid_order(&app, &citizen, &shop, "HD-4").await;
    let calls = receiver.collect(3, Duration::from_secs(8)).await;
    assert_eq!(
        calls.len(),
        3,
        "500, then a redirect (not followed), then 200"
    );
    assert!(calls.iter().all(|c| c.webhook_id == calls[0].webhook_id));
    assert!(calls.iter().all(|c| signed_by(&shop.secret, c)));
    assert!(
        calls[1].at - calls[0].at >= Duration::from_millis(900),
        "the schedule's wait"
    );
    let event = event_when(&app, &shop.merchant.key, &calls[0].webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    let statuses: Vec<&Value> = event["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(302), &json!(200)]);
    assert_eq!(event["attempts"][0]["response_body"], "not now");
    workers.stop().await;
}

#[sqlx::test]
async fn an_answer_holding_nul_bytes_is_recorded_and_its_batch_with_it(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut odd_receiver = Receiver::start().await;
    odd_receiver.answer_body(b"ok\0\xff binary");
    let mut plain_receiver = Receiver::start().await;
    let odd = subscriber(&app, &admin, "SHOPN", &odd_receiver.url).await;
    let plain = subscriber(&app, &admin, "SHOPP", &plain_receiver.url).await;
    // Both paid before the workers start, so their attempts are recorded together.
    paid_order(&app, &citizen, &odd, "HD-N").await;
    paid_order(&app, &citizen, &plain, "HD-P").await;
    let workers = Workers::start(&pool, quick_settings());
    let odd_call = odd_receiver
        .next(SOON)
        .await
        .expect("the odd merchant is called");
    let plain_call = plain_receiver.next(SOON).await.expect("the plain one too");
    let odd_event = event_when(&app, &odd.merchant.key, &odd_call.webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    assert_eq!(
        odd_event["attempts"][0]["response_body"], "ok\u{FFFD}\u{FFFD} binary",
        "what PostgreSQL text cannot hold is replaced, the rest kept"
    );
    event_when(&app, &plain.merchant.key, &plain_call.webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    assert!(odd_receiver.next(QUIET).await.is_none(), "not sent again");
    workers.stop().await;
}

#[sqlx::test]
async fn an_answer_slower_than_the_timeout_counts_as_failed_and_is_retried(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    receiver.delay_answers(Duration::from_millis(1200));
    let shop = subscriber(&app, &admin, "SHOPT", &receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());
    paid_order(&app, &citizen, &shop, "HD-5").await;
    let first = receiver.next(SOON).await.unwrap();
    receiver.delay_answers(Duration::ZERO);
    let event = event_when(&app, &shop.merchant.key, &first.webhook_id, |e| {
        e["attempt_count"] == 1
    })
    .await;
    assert!(event["attempts"][0]["status_code"].is_null());
    assert!(event["attempts"][0]["latency_ms"].as_i64().unwrap() < 1000);
    let second = receiver.next(SOON).await.expect("retried");
    assert_eq!(second.webhook_id, first.webhook_id);
    event_when(&app, &shop.merchant.key, &first.webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    workers.stop().await;
}

#[sqlx::test]
async fn after_the_last_retry_of_the_schedule_the_delivery_fails(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    receiver.answer_with(&[503, 503, 503, 503]);
    let shop = subscriber(&app, &admin, "SHOPF", &receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());
    paid_order(&app, &citizen, &shop, "HD-6").await;
    let calls = receiver.collect(4, Duration::from_secs(5)).await;
    assert_eq!(
        calls.len(),
        3,
        "the first attempt and the schedule's two retries"
    );
    let event = event_when(&app, &shop.merchant.key, &calls[0].webhook_id, |e| {
        e["delivery_state"] == "failed"
    })
    .await;
    assert_eq!(event["attempt_count"], 3);
    assert!(event["next_attempt_at"].is_null());
    workers.stop().await;
}

/// Records `count` payment events for the merchant straight into the outbox, as a payment's
/// transaction does.
async fn record_events(pool: &PgPool, merchant_id: &str, count: usize) -> Vec<Uuid> {
    let merchant = Audience::Merchant(merchant_id.parse().unwrap());
    let mut ids = Vec::new();
    let mut tx = pool.begin().await.unwrap();
    for n in 0..count {
        let data = json!({"order_ref": format!("BULK-{n}"), "amount": 1000});
        let event = record(&mut tx, "payment.succeeded", &data, merchant)
            .await
            .unwrap();
        ids.push(event.id);
    }
    tx.commit().await.unwrap();
    ids
}

#[sqlx::test]
async fn two_worker_pools_on_one_database_send_each_event_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPW", &receiver.url).await;
    // Two processes: separate pools, separate listeners, one database.
    let other_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let first = Workers::start(&pool, quick_settings());
    let second = Workers::start(&other_pool, quick_settings());
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.extend(record_events(&pool, &shop.merchant.id, 50).await);
    }
    let calls = receiver.collect(ids.len(), Duration::from_secs(15)).await;
    assert_eq!(calls.len(), ids.len(), "each event once");
    assert!(receiver.next(QUIET).await.is_none(), "none twice");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for call in &calls {
        *seen.entry(call.webhook_id.clone()).or_default() += 1;
    }
    assert!(ids.iter().all(|id| seen.get(&id.to_string()) == Some(&1)));
    first.stop().await;
    second.stop().await;
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM callback_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 200);
}

#[sqlx::test]
async fn an_event_committed_while_no_worker_runs_is_delivered_once_one_starts(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPR", &receiver.url).await;
    let stopped = Workers::start(&pool, quick_settings());
    stopped.stop().await;
    paid_order(&app, &citizen, &shop, "HD-7").await;
    assert!(receiver.next(QUIET).await.is_none());
    let restarted = Workers::start(&pool, quick_settings());
    let callback = receiver
        .next(SOON)
        .await
        .expect("delivered after the restart");
    assert_eq!(envelope(&callback)["data"]["order_ref"], "HD-7");
    restarted.stop().await;
}

#[sqlx::test]
async fn a_worker_killed_mid_delivery_leaves_the_event_to_be_sent_again(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    receiver.delay_answers(Duration::from_secs(30));
    let shop = subscriber(&app, &admin, "SHOPK", &receiver.url).await;
    let long_lease = DeliverySettings {
        timeout: Duration::from_secs(1),
        lease: Duration::from_secs(2),
        ..quick_settings()
    };
    let doomed = Workers::start(&pool, long_lease.clone());
    paid_order(&app, &citizen, &shop, "HD-8").await;
    let first = receiver.next(SOON).await.unwrap();
    doomed.kill().await;
    receiver.delay_answers(Duration::ZERO);
    let successor = Workers::start(&pool, long_lease);
    let again = receiver
        .next(SOON)
        .await
        .expect("sent again once the lease ran out");
    assert_eq!(again.webhook_id, first.webhook_id);
    assert!(
        again.at - first.at >= Duration::from_millis(1800),
        "not before the lease ended"
    );
    let event = event_when(&app, &shop.merchant.key, &first.webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    // The killed attempt never finished, so only the successor's is logged.
    assert_eq!(event["attempts"].as_array().unwrap().len(), 1);
    successor.stop().await;
}

#[sqlx::test]
async fn an_event_of_a_rolled_back_change_is_never_sent(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPX", &receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());
    let mut tx = pool.begin().await.unwrap();
    let merchant = Audience::Merchant(shop.merchant.id.parse().unwrap());
    record(
        &mut tx,
        "payment.succeeded",
        &json!({"order_ref": "GHOST"}),
        merchant,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    // A payment refused for want of funds announces nothing either.
    let poor = crate::support::actors::citizen(&app, "0912000102", 0).await;
    let order = new_order(&app, &shop.merchant, "HD-POOR", 25_000).await;
    let refused = pay(&app, &poor, order["code"].as_str().unwrap(), "k-poor").await;
    expect_problem(refused, StatusCode::CONFLICT, "insufficient_funds").await;

    paid_order(&app, &citizen, &shop, "HD-9").await;
    let calls = receiver.collect(2, Duration::from_secs(3)).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(envelope(&calls[0])["data"]["order_ref"], "HD-9");
    workers.stop().await;
}

#[sqlx::test]
async fn a_redelivery_sends_the_same_event_again_now(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPY", &receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());
    paid_order(&app, &citizen, &shop, "HD-10").await;
    let first = receiver.next(SOON).await.unwrap();
    event_when(&app, &shop.merchant.key, &first.webhook_id, |e| {
        e["delivery_state"] == "delivered"
    })
    .await;
    let path = format!("/v1/merchant/events/{}/redeliver", first.webhook_id);
    let response = app
        .send_json_with(reqwest::Method::POST, &path, &shop.merchant.key, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let again = receiver.next(SOON).await.expect("redelivered");
    assert_eq!(again.webhook_id, first.webhook_id);
    assert_eq!(envelope(&again), envelope(&first));
    assert!(signed_by(&shop.secret, &again));
    let event = event_when(&app, &shop.merchant.key, &first.webhook_id, |e| {
        e["attempt_count"] == 2
    })
    .await;
    assert_eq!(event["delivery_state"], "delivered");

    // Another merchant's event, or none, is 404; without a callback URL there is nothing to do.
    let other = subscriber(&app, &admin, "SHOPZ", &receiver.url).await;
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            &path,
            &other.merchant.key,
            &json!({}),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    sqlx::query("UPDATE merchants SET callback_url = NULL WHERE code = 'SHOPY'")
        .execute(&pool)
        .await
        .unwrap();
    let response = app
        .send_json_with(reqwest::Method::POST, &path, &shop.merchant.key, &json!({}))
        .await;
    expect_problem(response, StatusCode::CONFLICT, "callback_url_not_set").await;
    workers.stop().await;
}

#[sqlx::test]
async fn during_a_secret_rotation_callbacks_carry_both_signatures(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPQ", &receiver.url).await;
    let response = app
        .send_json_with(
            reqwest::Method::POST,
            "/v1/merchant/webhook-secret/rotate",
            &shop.merchant.key,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let rotated: Value = response.json().await.unwrap();
    let new_secret = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != shop.secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    let workers = Workers::start(&pool, quick_settings());

    paid_order(&app, &citizen, &shop, "HD-11").await;
    let callback = receiver.next(SOON).await.unwrap();
    assert_eq!(callback.signature.split(' ').count(), 2);
    assert!(signed_by(&new_secret, &callback));
    assert!(signed_by(&shop.secret, &callback));

    // Once the grace period is over only the new secret signs.
    sqlx::query(
        "UPDATE merchants SET previous_webhook_secret_expires_at = now() WHERE code = 'SHOPQ'",
    )
    .execute(&pool)
    .await
    .unwrap();
    paid_order(&app, &citizen, &shop, "HD-12").await;
    let callback = receiver.next(SOON).await.unwrap();
    assert_eq!(callback.signature.split(' ').count(), 1);
    assert!(signed_by(&new_secret, &callback));
    assert!(!signed_by(&shop.secret, &callback));
    workers.stop().await;
}

#[sqlx::test]
async fn the_event_list_filters_by_type_and_state_and_pages(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let shop = subscriber(&app, &admin, "SHOPL", "http://127.0.0.1:9/callbacks").await;
    let ids = record_events(&pool, &shop.merchant.id, 25).await;
    let merchant = Audience::Merchant(shop.merchant.id.parse().unwrap());
    let mut tx = pool.begin().await.unwrap();
    record(
        &mut tx,
        "order.cancelled",
        &json!({"order_ref": "C-1"}),
        merchant,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut listed = Vec::new();
    let mut path =
        "/v1/merchant/events?type=payment.succeeded&delivery_state=pending&limit=10".to_owned();
    loop {
        let page = merchant_get(&app, &shop.merchant.key, &path).await;
        for event in page["data"].as_array().unwrap() {
            assert_eq!(event["type"], "payment.succeeded");
            listed.push(event["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/v1/merchant/events?type=payment.succeeded&delivery_state=pending&limit=10&cursor={cursor}"
                )
            }
            None => break,
        }
    }
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    assert_eq!(listed, newest_first);
    let delivered = merchant_get(
        &app,
        &shop.merchant.key,
        "/v1/merchant/events?delivery_state=delivered",
    )
    .await;
    assert_eq!(delivered["data"].as_array().unwrap().len(), 0);
    let response = app
        .get_with_token("/v1/merchant/events?type=bill.paid", &shop.merchant.key)
        .await;
    assert_eq!(expect_invalid_fields(response).await, ["type"]);
    let response = app
        .get_with_token(
            "/v1/merchant/events?delivery_state=lost",
            &shop.merchant.key,
        )
        .await;
    assert_eq!(response.status().as_u16() / 100, 4);
}

#[sqlx::test]
async fn production_refuses_callbacks_to_private_addresses_at_registration_and_at_delivery(
    pool: PgPool,
) {
    let mut config = test_config();
    config.mode = Mode::Production;
    let app = TestApp::spawn_with(pool.clone(), config, axum::Router::new()).await;
    let admin = admin(&app).await;
    for url in [
        "http://shop.example.vn/callbacks",
        "https://127.0.0.1/callbacks",
        "https://10.0.0.7/callbacks",
        "https://169.254.169.254/latest",
        "https://localhost/callbacks",
    ] {
        let body = json!({
            "name": "Quán", "code": "SHOPP", "category_code": "5814", "limit_category": "general",
            "fee_rate": "0.01", "callback_url": url, "events": ["payment.succeeded"]
        });
        let response = app
            .send_json_with(reqwest::Method::POST, "/v1/admin/merchants", &admin, &body)
            .await;
        assert_eq!(
            expect_invalid_fields(response).await,
            ["callback_url"],
            "{url}"
        );
    }

    // A name that passes registration but resolves to a private address at delivery time (the
    // machine's own name resolves to loopback here) is never connected to.
    let mut receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    let host = std::fs::read_to_string("/etc/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .unwrap()
        .collect();
    assert!(
        resolved
            .iter()
            .all(|a| !civicpay::callbacks::destination::is_public(a.ip()))
    );
    let shop = subscriber(&app, &admin, "SHOPN", &format!("https://{host}:{port}")).await;
    let production = DeliverySettings {
        destinations: Destinations::PublicHttps,
        ..quick_settings()
    };
    let workers = Workers::start(&pool, production);
    let ids = record_events(&pool, &shop.merchant.id, 1).await;
    let event = event_when(&app, &shop.merchant.key, &ids[0].to_string(), |e| {
        e["attempt_count"] == 1
    })
    .await;
    let error = event["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("no address callbacks may reach"), "{error}");
    assert!(receiver.next(QUIET).await.is_none());
    workers.stop().await;
}

#[sqlx::test]
async fn metrics_show_the_callbacks_waiting(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), metrics_config(), axum::Router::new()).await;
    let admin = admin(&app).await;
    let shop = subscriber(&app, &admin, "SHOPM", "http://127.0.0.1:9/callbacks").await;
    record_events(&pool, &shop.merchant.id, 3).await;
    let metrics = scrape(&app).await;
    assert!(
        metrics.contains(r#"civicpay_queue_items{queue="callbacks",state="due"} 3"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"civicpay_queue_items{queue="callbacks",state="failed"} 0"#));
    assert!(metrics.contains("civicpay_queue_oldest_due_seconds"));
}

/// Finished deliveries past the retention (since the event and since its last attempt) go
/// with their event and attempt log; pending ones, recent ones and recently redelivered ones
/// stay.
#[sqlx::test]
async fn finished_events_past_their_retention_are_purged_and_nothing_else(pool: PgPool) {
    let (app, admin, citizen) = set_up(&pool).await;
    let mut receiver = Receiver::start().await;
    let shop = subscriber(&app, &admin, "SHOPP", &receiver.url).await;
    let workers = Workers::start(&pool, quick_settings());
    for order_ref in [
        "old-delivered",
        "old-pending",
        "old-redelivered",
        "new-delivered",
    ] {
        paid_order(&app, &citizen, &shop, order_ref).await;
        receiver.next(SOON).await.expect("called back");
    }
    workers.stop().await;
    let event_of = |order_ref: &str| {
        format!(
            "SELECT id FROM outbox_events WHERE type = 'payment.succeeded' AND data->>'order_ref' = '{order_ref}'"
        )
    };
    for order_ref in ["old-delivered", "old-pending", "old-redelivered"] {
        sqlx::query(&format!(
            "UPDATE outbox_events SET created_at = now() - interval '31 days' WHERE id = ({})",
            event_of(order_ref)
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    // Delivered when it happened; "old-redelivered" was sent again just now.
    for order_ref in ["old-delivered", "old-pending"] {
        sqlx::query(&format!(
            "UPDATE callback_deliveries SET last_attempt_at = now() - interval '31 days',
                    delivered_at = now() - interval '31 days' WHERE event_id = ({})",
            event_of(order_ref)
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(&format!(
        "UPDATE callback_deliveries SET state = 'pending', next_attempt_at = now() + interval '1 hour' WHERE event_id = ({})",
        event_of("old-pending")
    ))
    .execute(&pool)
    .await
    .unwrap();

    assert_eq!(civicpay::outbox::purge_finished(&pool).await.unwrap(), 1);

    let left: Vec<String> = sqlx::query_scalar(
        "SELECT e.data->>'order_ref' FROM outbox_events e JOIN callback_deliveries d ON d.event_id = e.id
         WHERE e.type = 'payment.succeeded' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(left, ["new-delivered", "old-pending", "old-redelivered"]);
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM callback_attempts a WHERE NOT EXISTS (SELECT 1 FROM outbox_events e WHERE e.id = a.event_id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "the purged event's attempts went with it");
    assert_eq!(civicpay::outbox::purge_finished(&pool).await.unwrap(), 0);
}
