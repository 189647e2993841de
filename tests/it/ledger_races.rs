//! Refunds racing payments into one (deferred, hot) merchant: a refund's balance check locks
//! the merchant's row in a mode that does not conflict with the foreign-key lock every
//! payment's postings take, so neither deadlocks nor waits for the other.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::TestApp;
use crate::merchants::{admin, new_order, onboard, pay, refund};
use crate::wallet::{assert_ledger_verifies, balance, citizen};

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
    let admin = admin(&app, &pool).await;
    let shop = onboard(&app, &admin, "HOTSHOP", "0", "general").await;
    let mut payers = Vec::new();
    for n in 0..PAYERS {
        payers.push(citizen(&app, &pool, &format!("091200070{n}"), FUNDS).await);
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
