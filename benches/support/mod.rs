//! What the benchmarks share: their settings from the environment, a fresh database, funded
//! wallets. Each benchmark is its own crate and uses only part of it.
#![allow(dead_code)]

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drops and recreates `name`, migrated, with a pool of `pool_size` that does not ping on
/// every checkout.
pub async fn fresh_database(name: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let mut admin = sqlx::PgConnection::connect(&format!("{SERVER}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .test_before_acquire(false)
        .connect(&format!("{SERVER}/{name}"))
        .await?;
    civicpay::db::migrate(&pool).await?;
    Ok(pool)
}

/// `count` wallet accounts, each funded with 1,000,000,000 đ in one entry from the suspense
/// account, inside the caller's transaction.
pub async fn funded_wallets(
    tx: &mut sqlx::PgConnection,
    count: usize,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    use civicpay::ledger::{self, AccountKind, EntryKind, NewEntry, Posting, SystemAccount};
    let mut wallets = Vec::with_capacity(count);
    for _ in 0..count {
        wallets.push(ledger::owned_account(tx, AccountKind::Wallet, uuid::Uuid::new_v4()).await?);
    }
    let suspense = ledger::system_account(tx, SystemAccount::Suspense).await?;
    let per_wallet = 1_000_000_000i64;
    let mut postings: Vec<Posting> = wallets
        .iter()
        .map(|w| Posting {
            account_id: *w,
            amount: per_wallet,
            counterparty: None,
        })
        .collect();
    postings.push(Posting {
        account_id: suspense,
        amount: -per_wallet * count as i64,
        counterparty: None,
    });
    let entry = NewEntry {
        kind: EntryKind::Funding,
        reference: "bench".into(),
        note: None,
        created_by: None,
        postings,
    };
    ledger::post(tx, entry)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(wallets)
}
