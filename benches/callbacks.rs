//! Callback delivery: latency from a payment's commit to its callback's arrival at a loopback
//! receiver, at a fixed offered rate, and the most callbacks per second the workers sustain.
//!
//! (a) Offered load: BENCH_RATE payments per second (default 200) for BENCH_SECONDS (default
//!     30); each payment is a ledger entry from a wallet to the merchant plus its outbox event,
//!     in one transaction. Reports p50, p99 and max of commit-to-arrival.
//! (b) Throughput: BENCH_BACKLOG events (default 20,000) committed while no worker runs, then
//!     one dispatcher started; reports callbacks per second until the last one arrived.
//! (c) What announcing costs payments: 32 back-to-back payers with and without events.
//!
//! Run: `cargo bench --bench callbacks`. Needs PostgreSQL on 127.0.0.1:5432. The receiver,
//! the dispatcher and the load share this process and the machine's cores with PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use civicpay::callbacks::delivery::{DeliverySettings, Dispatcher};
use civicpay::config::Config;
use civicpay::ledger::{self, AccountKind, EntryKind, NewEntry, Posting};
use civicpay::merchants::{NewMerchant, insert_merchant};
use civicpay::outbox::{self, Audience};
use civicpay::wallet::LimitCategory;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod support;
use support::{env_number, fresh_database, funded_wallets};

const BENCH_DB: &str = "civicpay_bench_callbacks";
const POOL_SIZE: u32 = 16;
const WALLETS: usize = 1_000;
/// How long to wait for stragglers after the load stops.
const DRAIN: Duration = Duration::from_secs(30);

type Arrivals = Arc<Mutex<HashMap<Uuid, Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = env_number("BENCH_RATE", 200).clamp(1, 5_000);
    let seconds = env_number("BENCH_SECONDS", 30).clamp(1, 600);
    let backlog = env_number("BENCH_BACKLOG", 20_000).clamp(1, 200_000);
    let pool = fresh_database(BENCH_DB, POOL_SIZE).await?;
    let arrivals: Arrivals = Arc::default();
    let url = start_receiver(arrivals.clone()).await?;
    let (merchant, merchant_account, wallets) = setup(&pool, &url).await?;
    let settings = DeliverySettings::from_config(&Config::from_env()?);
    println!(
        "dispatcher: {} in flight, pool of {POOL_SIZE}; receiver {url}",
        settings.concurrency
    );

    let workers = start_workers(&pool, settings.clone());
    let commits = offered_load(&pool, merchant, merchant_account, &wallets, rate, seconds).await?;
    let latencies = wait_for(&arrivals, &commits).await;
    workers.cancel();
    report_latency(rate, seconds, commits.len(), &latencies);

    arrivals.lock().unwrap().clear();
    let ids = record_backlog(&pool, merchant, backlog).await?;
    let started = Instant::now();
    let workers = start_workers(&pool, settings);
    let all_in = wait_for(&arrivals, &ids.iter().map(|id| (*id, started)).collect()).await;
    workers.cancel();
    let last = all_in.iter().max().copied().unwrap_or_default();
    println!(
        "(b) backlog of {backlog}: {} delivered in {:.2} s = {:.0} callbacks/s",
        all_in.len(),
        last.as_secs_f64(),
        all_in.len() as f64 / last.as_secs_f64().max(0.001)
    );

    // (c) What announcing costs the payments themselves: 32 back-to-back payers, with and
    // without events (and so NOTIFY at commit), alternating, workers delivering meanwhile.
    let workers = start_workers(&pool, DeliverySettings::from_config(&Config::from_env()?));
    let loop_seconds = seconds.min(10);
    for round in 1..=2 {
        let plain = closed_loop(
            &pool,
            merchant,
            merchant_account,
            &wallets,
            false,
            loop_seconds,
        )
        .await?;
        let announced = closed_loop(
            &pool,
            merchant,
            merchant_account,
            &wallets,
            true,
            loop_seconds,
        )
        .await?;
        println!(
            "(c) round {round}: payments/s without events {plain:.0}, with events {announced:.0} (ratio {:.2})",
            announced / plain
        );
    }
    workers.cancel();
    Ok(())
}

/// A merchant's callback endpoint that notes when each event arrived.
async fn start_receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    async fn receive(State(arrivals): State<Arrivals>, headers: HeaderMap) -> &'static str {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Uuid>().ok());
        if let Some(id) = id {
            arrivals
                .lock()
                .unwrap()
                .entry(id)
                .or_insert_with(Instant::now);
        }
        "ok"
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/callbacks", listener.local_addr()?);
    let app = Router::new()
        .route("/callbacks", post(receive))
        .with_state(arrivals);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// A subscribed merchant, and wallets funded to pay it.
async fn setup(pool: &PgPool, url: &str) -> anyhow::Result<(Uuid, Uuid, Vec<Uuid>)> {
    let mut tx = pool.begin().await?;
    let merchant = insert_merchant(
        &mut tx,
        &NewMerchant {
            name: "Bench shop".into(),
            code: "BENCHSHOP".into(),
            category_code: "5814".into(),
            limit_category: LimitCategory::General,
            callback_url: Some(url.to_owned()),
            fee_rate: Decimal::ZERO,
            events: vec!["payment.succeeded".into()],
            city: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let merchant_account =
        ledger::owned_account(&mut tx, AccountKind::Merchant, merchant.merchant.id).await?;
    let wallets = funded_wallets(&mut tx, WALLETS).await?;
    tx.commit().await?;
    Ok((merchant.merchant.id, merchant_account, wallets))
}

async fn post_entry(
    tx: &mut sqlx::PgConnection,
    kind: EntryKind,
    postings: Vec<Posting>,
) -> anyhow::Result<()> {
    let entry = NewEntry {
        kind,
        reference: "bench".into(),
        note: None,
        created_by: None,
        postings,
    };
    ledger::post(tx, entry)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

struct Running {
    cancel: CancellationToken,
}

impl Running {
    fn cancel(self) {
        self.cancel.cancel();
    }
}

fn start_workers(pool: &PgPool, settings: DeliverySettings) -> Running {
    let cancel = CancellationToken::new();
    tokio::spawn(Dispatcher::new(pool.clone(), settings).run(cancel.clone()));
    Running { cancel }
}

/// `rate` payments a second for `seconds`, each started on its tick whatever the others do
/// (an open system, so a slow commit does not lower the offered load); returns when each
/// payment's transaction committed.
async fn offered_load(
    pool: &PgPool,
    merchant: Uuid,
    merchant_account: Uuid,
    wallets: &[Uuid],
    rate: u64,
    seconds: u64,
) -> anyhow::Result<HashMap<Uuid, Instant>> {
    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut payments = tokio::task::JoinSet::new();
    for n in 0..total {
        ticker.tick().await;
        let (pool, from) = (pool.clone(), wallets[n as usize % wallets.len()]);
        payments.spawn(async move {
            let id = pay(
                &pool,
                Payment {
                    from,
                    merchant,
                    merchant_account,
                    n,
                    announce: true,
                },
            )
            .await?;
            anyhow::Ok((id, Instant::now()))
        });
    }
    let mut commits = HashMap::new();
    while let Some(done) = payments.join_next().await {
        let (id, at) = done??;
        commits.insert(id, at);
    }
    Ok(commits)
}

/// One wallet payment to the merchant: its ledger entry and, if `announce`, its
/// `payment.succeeded` event, committed together.
struct Payment {
    from: Uuid,
    merchant: Uuid,
    merchant_account: Uuid,
    n: u64,
    announce: bool,
}

async fn pay(pool: &PgPool, payment: Payment) -> anyhow::Result<Uuid> {
    let mut tx = pool.begin().await?;
    let postings = vec![
        Posting {
            account_id: payment.from,
            amount: -1,
            counterparty: None,
        },
        Posting {
            account_id: payment.merchant_account,
            amount: 1,
            counterparty: None,
        },
    ];
    post_entry(&mut tx, EntryKind::Payment, postings).await?;
    let mut id = Uuid::nil();
    if payment.announce {
        let data = serde_json::json!({"order_ref": format!("B-{}", payment.n), "amount": 1});
        let event = outbox::record(
            &mut tx,
            "payment.succeeded",
            &data,
            Audience::Merchant(payment.merchant),
        )
        .await?;
        id = event.id;
    }
    tx.commit().await?;
    Ok(id)
}

/// Payments per second that `TASKS` back-to-back payers reach in `seconds`, with or without
/// their events (whose commit also notifies the workers).
async fn closed_loop(
    pool: &PgPool,
    merchant: Uuid,
    merchant_account: Uuid,
    wallets: &[Uuid],
    announce: bool,
    seconds: u64,
) -> anyhow::Result<f64> {
    const TASKS: usize = 32;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut payers = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (pool, wallets) = (pool.clone(), wallets.to_vec());
        payers.spawn(async move {
            let mut n = 0u64;
            // Bounded by time and by count.
            while Instant::now() < deadline && n < 1_000_000 {
                let from = wallets[(task + n as usize * TASKS) % wallets.len()];
                pay(
                    &pool,
                    Payment {
                        from,
                        merchant,
                        merchant_account,
                        n,
                        announce,
                    },
                )
                .await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(done) = payers.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Waits until every event arrived (at most DRAIN); returns each arrival's delay after its
/// start instant.
async fn wait_for(arrivals: &Arrivals, starts: &HashMap<Uuid, Instant>) -> Vec<Duration> {
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        let arrived = arrivals.lock().unwrap().len();
        if arrived >= starts.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = arrivals.lock().unwrap();
    starts
        .iter()
        .filter_map(|(id, start)| Some(arrivals.get(id)?.saturating_duration_since(*start)))
        .collect()
}

async fn record_backlog(pool: &PgPool, merchant: Uuid, count: u64) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(count as usize);
    let data = serde_json::json!({"order_ref": "backlog", "amount": 1});
    while (ids.len() as u64) < count {
        let mut tx = pool.begin().await?;
        for _ in 0..500.min(count - ids.len() as u64) {
            let event = outbox::record(
                &mut tx,
                "payment.succeeded",
                &data,
                Audience::Merchant(merchant),
            )
            .await?;
            ids.push(event.id);
        }
        tx.commit().await?;
    }
    Ok(ids)
}

fn report_latency(rate: u64, seconds: u64, committed: usize, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "(a) {rate}/s for {seconds} s: {committed} committed, {} called back; commit-to-arrival p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sorted.len(),
        at(0.50),
        at(0.99),
        sorted.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    );
}
