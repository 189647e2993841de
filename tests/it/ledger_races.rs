//! Refunds racing payments into one (deferred, hot) merchant: a refund's balance check locks
//! the merchant's row in a mode that does not conflict with the foreign-key lock every
//! payment's postings take, so neither deadlocks nor waits for the other.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::support::actors::{admin, citizen, onboard};
use crate::support::app::TestApp;
use crate::support::ledger::assert_ledger_verifies;
use crate::support::requests::{balance, new_order, pay, refund};

const PAYERS: usize = 4;
const PAID_BEFORE: usize = 5;
const PAID_DURING: usize = 10;
const FUNDS: i64 = 1_000_000;
const PRICE: i64 = 7_000;

#[sqlx::test]
async fn refunds_racing_a_stream_of_payments_into_one_merchant_never_fail_or_miscount(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let shop = onboard(&app, &admin, "HOTSHOP", "0", "general").await;
    let mut payers = Vec::new();
    for n in 0..PAYERS {
        payers.push(citizen(&app, &format!("091200070{n}"), FUNDS).await);
    }
    // Orders paid before the race, to be refunded during it.
    let mut to_refund = Vec::new();
    for (n, token) in payers.iter().enumerate() {
        for k in 0..PAID_BEFORE {
            let order_ref = format!("before-{n}-{k}");
            let order = new_order(&app, &shop, &order_ref, PRICE).await;
            let paid = pay(&app, token, order["code"].as_str().unwrap(), &order_ref).await;
            assert_eq!(paid.status(), StatusCode::OK);
            to_refund.push(order_ref);
        }
    }
    let mut during = Vec::new();
    for n in 0..PAYERS {
        for k in 0..PAID_DURING {
            let order = new_order(&app, &shop, &format!("during-{n}-{k}"), PRICE).await;
            during.push((n, order["code"].as_str().unwrap().to_owned()));
        }
    }

    // Each payer pays its stream while refunds of every earlier order run beside them.
    let payments = (0..PAYERS).map(|n| {
        let (app, token, during) = (&app, &payers[n], &during);
        async move {
            let mut statuses = Vec::new();
            for (_, code) in during.iter().filter(|(payer, _)| *payer == n) {
                statuses.push(pay(app, token, code, &format!("pay-{code}")).await.status());
            }
            statuses
        }
    });
    let refunds = to_refund.chunks(PAID_BEFORE).map(|chunk| {
        let (app, shop) = (&app, &shop);
        async move {
            let mut statuses = Vec::new();
            for order_ref in chunk {
                let key = format!("refund-{order_ref}");
                statuses.push(refund(app, shop, order_ref, PRICE, &key).await.status());
            }
            statuses
        }
    });
    let (paid, refunded) = tokio::join!(
        futures_util::future::join_all(payments),
        futures_util::future::join_all(refunds)
    );
    let paid: Vec<StatusCode> = paid.into_iter().flatten().collect();
    let refunded: Vec<StatusCode> = refunded.into_iter().flatten().collect();
    assert!(paid.iter().all(|s| *s == StatusCode::OK), "{paid:?}");
    assert!(
        refunded.iter().all(|s| *s == StatusCode::CREATED),
        "{refunded:?}"
    );

    // Each payer paid PAID_BEFORE + PAID_DURING orders and got PAID_BEFORE back.
    for token in &payers {
        assert_eq!(
            balance(&app, token).await,
            FUNDS - PAID_DURING as i64 * PRICE
        );
    }
    let shop_total: i64 = sqlx::query_scalar(
        "SELECT (a.balance + COALESCE((SELECT sum(amount) FROM unfolded_postings u WHERE u.account_id = a.id), 0))::bigint
         FROM ledger_accounts a JOIN merchants m ON m.ledger_account_id = a.id WHERE m.code = 'HOTSHOP'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(shop_total, (PAYERS * PAID_DURING) as i64 * PRICE);
    let order: Value = app
        .client
        .get(app.url("/v1/merchant/orders/before-0-0"))
        .bearer_auth(&shop.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["amount_refunded"], PRICE);
    assert_ledger_verifies(&pool).await;
}

async fn ledger_account_of_phone(pool: &PgPool, phone: &str) -> uuid::Uuid {
    sqlx::query_scalar(
        "SELECT w.ledger_account_id FROM wallets w JOIN accounts a ON a.id = w.account_id WHERE a.phone = $1",
    )
    .bind(phone)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// One posting through `ledger_post`, as every money movement makes it.
async fn post(
    conn: &mut sqlx::PgConnection,
    kind: &str,
    from: uuid::Uuid,
    to: uuid::Uuid,
    amount: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT * FROM ledger_post(gen_random_uuid(), $1, 'race', NULL, NULL, ARRAY[$2, $3]::uuid[],
                                   ARRAY[-$4, $4]::bigint[], ARRAY[NULL, NULL]::text[])",
    )
    .bind(kind)
    .bind(from)
    .bind(to)
    .bind(amount)
    .fetch_all(conn)
    .await
    .map(|_| ())
}

/// The lock itself, shown without timing luck: while a payment into the merchant is still in
/// flight (its posting holds the foreign key's share lock on the merchant's account), a refund
/// out of that merchant goes through at once instead of waiting for it — the wait that, with a
/// wallet locked on each side, closed the deadlock.
#[sqlx::test]
async fn a_refund_does_not_wait_for_a_payment_into_the_same_merchant(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = admin(&app).await;
    let shop = onboard(&app, &admin, "HOTSHOP2", "0", "general").await;
    let payer = citizen(&app, "0912000711", FUNDS).await;
    let order = new_order(&app, &shop, "funds-the-shop", 50_000).await;
    let paid = pay(&app, &payer, order["code"].as_str().unwrap(), "funds").await;
    assert_eq!(paid.status(), StatusCode::OK);
    citizen(&app, "0912000712", FUNDS).await;
    let (payer_account, other_account) = (
        ledger_account_of_phone(&pool, "+84912000711").await,
        ledger_account_of_phone(&pool, "+84912000712").await,
    );
    let shop_account: uuid::Uuid =
        sqlx::query_scalar("SELECT ledger_account_id FROM merchants WHERE code = 'HOTSHOP2'")
            .fetch_one(&pool)
            .await
            .unwrap();

    let mut payment = pool.begin().await.unwrap();
    post(&mut payment, "payment", other_account, shop_account, 10_000)
        .await
        .unwrap();
    let mut refund = pool.acquire().await.unwrap();
    sqlx::query("SET lock_timeout = '3s'")
        .execute(&mut *refund)
        .await
        .unwrap();
    post(&mut refund, "refund", shop_account, payer_account, 20_000)
        .await
        .expect("the refund takes no lock the payment in flight holds");
    payment.commit().await.unwrap();
    sqlx::query("RESET lock_timeout")
        .execute(&mut *refund)
        .await
        .unwrap();
    drop(refund);
    assert_ledger_verifies(&pool).await;
}
