//! Money put in and the ledger checked, straight through the crate: what no route may do.

use civicpay::domain::Money;
use civicpay::domain::Phone;
use sqlx::PgPool;

/// Credits `amount` đồng to the wallet of `phone`, as a funding entry.
pub async fn fund(pool: &PgPool, phone: &str, amount: i64) {
    let mut tx = pool.begin().await.unwrap();
    let reference = format!("test-{}", uuid::Uuid::new_v4());
    civicpay::wallet::funding::fund(
        &mut tx,
        &Phone::parse(phone).unwrap(),
        Money::payable(amount).unwrap(),
        &reference,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// `civicpay ledger verify` finds every invariant holding (`civicpay::ledger::verify`).
pub async fn assert_ledger_verifies(pool: &PgPool) {
    let report = civicpay::ledger::verify::verify(pool).await.unwrap();
    assert!(report.ok, "ledger invariants broken: {:?}", report.failures);
}
