//! Ledger throughput through its Rust API (no HTTP), against pgbench's TPC-B on the same
//! PostgreSQL, in interleaved rounds (the machine drifts ±20 % from minute to minute, so only
//! runs close in time are compared).
//!
//! (a) 32 tasks paying from 10,000 wallets into 1,000 receiving (deferred) accounts;
//! (b) the same into one receiving account. The folder runs every 100 ms meanwhile; its worst
//! lag is reported. Run: `cargo bench --bench ledger` (BENCH_SECONDS per run, default 15;
//! BENCH_ROUNDS, default 2). Needs PostgreSQL on 127.0.0.1:5432 and pgbench.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use civicpay::ledger::{self, AccountKind, EntryKind, NewEntry, Posting};
use sqlx::PgPool;
use uuid::Uuid;

mod support;
use support::{Rounds, fresh_database, funded_wallets, pgbench_init, pgbench_run};

const BENCH_DB: &str = "civicpay_bench";
const WALLETS: usize = 10_000;
const RECEIVERS: usize = 1_000;
const TASKS: usize = 32;
const POOL_SIZE: u32 = 16;
/// Every task stops after this many payments, whatever the time.
const MAX_PAYMENTS_PER_TASK: u64 = 1_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Rounds { seconds, rounds } = Rounds::from_env();
    let pool = fresh_database(BENCH_DB, POOL_SIZE).await?;
    let (wallets, receivers) = setup(&pool).await?;
    pgbench_init()?;
    println!(
        "{WALLETS} wallets, {RECEIVERS} receivers, {TASKS} tasks, {seconds} s per run, pool of {POOL_SIZE}"
    );
    println!(
        "round  pgbench_tps  spread_tps  hot_tps  spread/pgbench  hot/spread  max_fold_lag_ms"
    );
    for round in 1..=rounds {
        let pgbench = pgbench_run(seconds)?;
        let spread = payments(&pool, &wallets, &receivers, seconds).await?;
        let hot = payments(&pool, &wallets, &receivers[..1], seconds).await?;
        println!(
            "{round:>5}  {pgbench:>11.0}  {:>10.0}  {:>7.0}  {:>14.2}  {:>10.2}  {:>15}",
            spread.tps,
            hot.tps,
            spread.tps / pgbench,
            hot.tps / spread.tps,
            spread.max_lag_ms.max(hot.max_lag_ms)
        );
    }
    ledger::fold(&pool).await?;
    let report = ledger::verify::verify(&pool).await?;
    println!(
        "ledger verify: {} ({} entries)",
        if report.ok { "ok" } else { "FAILED" },
        report.entries_checked
    );
    anyhow::ensure!(report.ok, "ledger invariants broken: {:?}", report.failures);
    Ok(())
}

/// Wallets funded in one entry from the suspense account; receivers are merchant accounts.
async fn setup(pool: &PgPool) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    let mut tx = pool.begin().await?;
    let wallets = funded_wallets(&mut tx, WALLETS).await?;
    let mut receivers = Vec::with_capacity(RECEIVERS);
    for _ in 0..RECEIVERS {
        receivers
            .push(ledger::owned_account(&mut tx, AccountKind::Merchant, Uuid::new_v4()).await?);
    }
    tx.commit().await?;
    // The suspense account's debit is deferred: fold it now so it does not count as lag.
    ledger::fold(pool).await?;
    Ok((wallets, receivers))
}

struct Run {
    tps: f64,
    max_lag_ms: i64,
}

async fn payments(
    pool: &PgPool,
    wallets: &[Uuid],
    receivers: &[Uuid],
    seconds: u64,
) -> anyhow::Result<Run> {
    let wallets = Arc::new(wallets.to_vec());
    let receivers = Arc::new(receivers.to_vec());
    let done = Arc::new(AtomicBool::new(false));
    let max_lag = Arc::new(AtomicI64::new(0));
    let folder = tokio::spawn({
        let (pool, done, max_lag) = (pool.clone(), done.clone(), max_lag.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(report) = ledger::fold(&pool).await {
                    max_lag.fetch_max(report.oldest_lag_ms, Ordering::Relaxed);
                }
                tokio::time::sleep(ledger::FOLD_EVERY).await;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (pool, wallets, receivers) = (pool.clone(), wallets.clone(), receivers.clone());
        tasks.push(tokio::spawn(async move {
            let mut state = (task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut done = 0u64;
            while Instant::now() < deadline && done < MAX_PAYMENTS_PER_TASK {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let from = wallets[(state % wallets.len() as u64) as usize];
                let to = receivers[((state >> 20) % receivers.len() as u64) as usize];
                pay(&pool, from, to).await.expect("a payment");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    folder.await?;
    // Fold what is left now, so the next run does not count the pause between runs as lag.
    while ledger::fold(pool).await?.postings > 0 {}
    Ok(Run {
        tps: total as f64 / elapsed,
        max_lag_ms: max_lag.load(Ordering::Relaxed),
    })
}

async fn pay(pool: &PgPool, from: Uuid, to: Uuid) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let entry = NewEntry {
        kind: EntryKind::Payment,
        reference: "bench".into(),
        note: None,
        created_by: None,
        postings: vec![
            Posting {
                account_id: from,
                amount: -1,
                counterparty: None,
            },
            Posting {
                account_id: to,
                amount: 1,
                counterparty: None,
            },
        ],
    };
    ledger::post(&mut tx, entry)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    tx.commit().await?;
    Ok(())
}
