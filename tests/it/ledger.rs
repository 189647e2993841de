//! The ledger's Rust API: deferred credits and folding, checked debits of hot accounts,
//! immutability.

use civicpay::ledger::{self, AccountKind, EntryKind, NewEntry, PostError, Posting};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::ledger::assert_ledger_verifies;

async fn account(pool: &PgPool, kind: AccountKind) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    ledger::owned_account(&mut conn, kind, Uuid::new_v4())
        .await
        .unwrap()
}

async fn move_money(pool: &PgPool, from: Uuid, to: Uuid, amount: i64) -> Result<(), PostError> {
    let mut tx = pool.begin().await.unwrap();
    let entry = NewEntry {
        kind: EntryKind::Adjustment,
        reference: "test".into(),
        note: None,
        created_by: None,
        postings: vec![
            Posting {
                account_id: from,
                amount: -amount,
                counterparty: None,
            },
            Posting {
                account_id: to,
                amount,
                counterparty: None,
            },
        ],
    };
    ledger::post(&mut tx, entry).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn balance(pool: &PgPool, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT balance FROM ledger_accounts WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn credits_to_a_hot_account_wait_for_the_folder_and_verify_meanwhile(pool: PgPool) {
    let clearing = account(&pool, AccountKind::ProviderClearing).await;
    let wallet = account(&pool, AccountKind::Wallet).await;
    let merchant = account(&pool, AccountKind::Merchant).await;
    move_money(&pool, clearing, wallet, 10_000).await.unwrap();
    move_money(&pool, wallet, merchant, 4_000).await.unwrap();
    assert_eq!(
        balance(&pool, wallet).await,
        6_000,
        "a wallet moves at once"
    );
    assert_eq!(
        balance(&pool, merchant).await,
        0,
        "a hot account's credit is not folded yet"
    );
    assert_ledger_verifies(&pool).await;

    let report = ledger::fold(&pool).await.unwrap();
    assert_eq!(
        report.postings, 2,
        "the merchant's credit and the clearing account's debit"
    );
    assert_eq!(balance(&pool, merchant).await, 4_000);
    assert_eq!(
        balance(&pool, clearing).await,
        -10_000,
        "clearing stands for money outside"
    );
    assert_eq!(ledger::fold(&pool).await.unwrap().postings, 0);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn a_hot_account_pays_out_only_what_it_has_including_unfolded_credits(pool: PgPool) {
    let clearing = account(&pool, AccountKind::ProviderClearing).await;
    let wallet = account(&pool, AccountKind::Wallet).await;
    let merchant = account(&pool, AccountKind::Merchant).await;
    move_money(&pool, clearing, wallet, 10_000).await.unwrap();
    move_money(&pool, wallet, merchant, 3_000).await.unwrap();
    // A refund before any folding still sees the 3,000.
    move_money(&pool, merchant, wallet, 2_000).await.unwrap();
    let over = move_money(&pool, merchant, wallet, 1_001).await;
    assert!(
        matches!(over, Err(PostError::InsufficientFunds { account_id }) if account_id == merchant)
    );
    ledger::fold(&pool).await.unwrap();
    assert_eq!(balance(&pool, merchant).await, 1_000);
    move_money(&pool, merchant, wallet, 1_000).await.unwrap();
    assert_eq!(balance(&pool, wallet).await, 10_000);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn concurrent_payments_into_one_hot_account_lose_nothing(pool: PgPool) {
    let clearing = account(&pool, AccountKind::ProviderClearing).await;
    let merchant = account(&pool, AccountKind::Merchant).await;
    let mut wallets = Vec::new();
    for _ in 0..20 {
        let wallet = account(&pool, AccountKind::Wallet).await;
        move_money(&pool, clearing, wallet, 1_000).await.unwrap();
        wallets.push(wallet);
    }
    let folder = tokio::spawn({
        let pool = pool.clone();
        async move {
            for _ in 0..20 {
                ledger::fold(&pool).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    });
    let pool_ref = &pool;
    let payments = wallets
        .iter()
        .flat_map(|w| (0..5).map(move |_| move_money(pool_ref, *w, merchant, 200)));
    let results = futures_util::future::join_all(payments).await;
    assert!(results.iter().all(Result::is_ok));
    folder.await.unwrap();
    ledger::fold(&pool).await.unwrap();
    assert_eq!(balance(&pool, merchant).await, 20 * 5 * 200);
    assert_ledger_verifies(&pool).await;
}

#[sqlx::test]
async fn entries_and_postings_cannot_be_changed(pool: PgPool) {
    let clearing = account(&pool, AccountKind::ProviderClearing).await;
    let wallet = account(&pool, AccountKind::Wallet).await;
    move_money(&pool, clearing, wallet, 500).await.unwrap();
    for statement in [
        "UPDATE postings SET amount = amount * 2",
        "DELETE FROM postings",
        "UPDATE journal_entries SET reference = 'rewritten'",
        "DELETE FROM journal_entries",
        "TRUNCATE postings",
        "TRUNCATE unfolded_postings",
        "TRUNCATE journal_entries CASCADE",
        "TRUNCATE ledger_accounts CASCADE",
    ] {
        let error = sqlx::query(statement)
            .execute(&pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("immutable"),
            "{statement}: {error}"
        );
    }
    assert_ledger_verifies(&pool).await;
}

#[test]
#[should_panic(expected = "sum to zero")]
fn an_unbalanced_entry_is_a_bug_caught_before_writing() {
    let entry = NewEntry {
        kind: EntryKind::Adjustment,
        reference: "bug".into(),
        note: None,
        created_by: None,
        postings: vec![
            Posting {
                account_id: Uuid::new_v4(),
                amount: -5,
                counterparty: None,
            },
            Posting {
                account_id: Uuid::new_v4(),
                amount: 4,
                counterparty: None,
            },
        ],
    };
    ledger::assert_balanced(&entry.postings);
}

/// The database refuses an entry that would create or destroy money, whoever calls
/// `ledger_post`: the Rust side's own check is not the only guard.
#[sqlx::test]
async fn ledger_post_refuses_an_unbalanced_entry(pool: PgPool) {
    let from = account(&pool, AccountKind::Wallet).await;
    let to = account(&pool, AccountKind::Wallet).await;
    let unbalanced: [&[(Uuid, i64)]; 5] = [
        &[(from, 0), (to, 0)],
        &[(from, 500), (to, 600)],
        &[(from, -500), (to, 400)],
        &[(to, 1_000)],
        &[(from, 500), (to, -500), (to, 1)],
    ];
    for postings in unbalanced {
        let error = move_money_unchecked(&pool, postings).await.unwrap_err();
        assert_eq!(error.as_deref(), Some("CP002"), "{postings:?}");
    }
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(entries, 0);
    assert_ledger_verifies(&pool).await;
}

/// Calls the SQL function directly with the given postings; the SQLSTATE of a refusal.
async fn move_money_unchecked(
    pool: &PgPool,
    postings: &[(Uuid, i64)],
) -> Result<(), Option<String>> {
    let accounts: Vec<Uuid> = postings.iter().map(|(account, _)| *account).collect();
    let amounts: Vec<i64> = postings.iter().map(|(_, amount)| *amount).collect();
    let counterparties: Vec<Option<String>> = vec![None; postings.len()];
    sqlx::query("SELECT * FROM ledger_post($1, 'adjustment', 'test', NULL, NULL, $2, $3, $4)")
        .bind(Uuid::new_v4())
        .bind(&accounts)
        .bind(&amounts)
        .bind(&counterparties)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|error| {
            error
                .as_database_error()
                .and_then(|e| e.code())
                .map(|code| code.into_owned())
        })
}
