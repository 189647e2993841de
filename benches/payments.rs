//! Payments over real HTTP against pgbench's TPC-B on the same PostgreSQL, in interleaved
//! rounds (the machine drifts ±20 % from minute to minute, so only runs close in time are
//! compared). The server is the real binary in a process of its own, as deployed: its pool of
//! 16, its callback workers, the demo data, on a fresh database. This process seeds it through
//! the public API, receives its merchants' callbacks on loopback and drives 32 connections.
//!
//! Seeding: BENCH_CITIZENS citizens (default 2,000) register with the code texted to them,
//! verify their wallet and set a PIN, 4 at a time (registration hashes a password, slow by
//! design), and are funded by `civicpay ledger fund`, 8 processes at a time; the demo admin
//! onboards 1,000 merchants subscribed to `payment.succeeded` with their callbacks sent here;
//! BENCH_DOSSIERS citizens (default 200) file a birth registration each.
//!
//! Each round runs pgbench, then 32 back-to-back clients for BENCH_SECONDS each (default 15):
//! (a) static-QR payments of 1,000 đ spread over the 1,000 merchants, (b) the same into one
//! merchant, (c) the first page of the wallet history, (d) public dossier tracking; then (c)
//! and (d) at a fixed offered rate of half what their closed loop reached (goal: p99 under
//! 20 ms). For (a) and (b) it reports the callbacks received per second and their latency
//! from the order's `paid_at` to arrival (`paid_at` is set inside the paying transaction,
//! before its commit, so this bounds commit-to-arrival from above), whether every paid
//! order was called back, and how many orders were called back more than once (the receiver
//! answers 200 at once, so even a retry should not happen; a repeat under another
//! `webhook-id` would be a second event for one order).
//!
//! With BENCH_SERVERS=2 (default 1), after the rounds a second `civicpay serve --demo` starts
//! on the same database (demo data is only loaded where missing), and a pair round runs
//! pgbench, then (a) and (b) with connection i sent to server i % 2; it reports the same as
//! for one server, and both servers' peak memory. The second server is stopped after it.
//!
//! With BENCH_SOAK_SECONDS=N (default 0, none; the issue asks for 600), (a) then runs through
//! the first server alone for N seconds in slices of at most 3 minutes, the sessions renewed
//! between slices when due (access tokens last 15 minutes), while a task samples the server's
//! resident memory every 10 s: the report has the curve (one line per sample with the
//! payments per second since the previous one), the first and last minute's mean and the peak
//! (VmHWM; goal under 256 MiB).
//!
//! The report goes to stdout and to bench/results/payments-<UTC date-time>-<commit>.txt.
//!
//! Run: `cargo bench --bench payments` (BENCH_SECONDS; BENCH_ROUNDS, default 2;
//! BENCH_CITIZENS; BENCH_DOSSIERS; BENCH_SERVERS; BENCH_SOAK_SECONDS; BENCH_SERVER_LOG=1 shows
//! the servers' log), e.g. `BENCH_SERVERS=2 BENCH_SOAK_SECONDS=600 cargo bench --bench
//! payments`. Linux only (it reads /proc). Needs PostgreSQL on 127.0.0.1:5432 and pgbench;
//! seeding takes a few minutes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

mod support;
use support::{
    ADMIN, Citizen, Load, Memory, Outcome, PIN, RUN_HEADER, Rounds, Run, SEED_AT_ONCE, SERVER,
    Server, TASKS, Tally, Transcript, citizen_of, closed_loop, describe_machine, env_number,
    expect, failure, fresh_database, in_parallel, log_in, pgbench_init, pgbench_run, quantile_ms,
    renew_sessions, report_run, save_results, seed_citizens,
};

const BENCH_DB: &str = "civicpay_bench_payments";
const POOL_SIZE: u32 = 16;
const CALLBACK_WORKERS: u32 = 64;
const MERCHANTS: usize = 1_000;
/// What each payment costs, in đồng.
const AMOUNT: i64 = 1_000;
/// What each citizen is funded with: half the monthly limit of general payments (100,000,000
/// đ), far more than the runs spend: a 600 s soak at 2,000 payments/s over the default 2,000
/// citizens costs each 600,000 đ (with only 32 citizens, 37,500,000 đ: the funds, not the
/// limit, would run out first on a longer soak).
const FUNDS: i64 = 50_000_000;
/// Birth registration at Phú Xuân: filed online, free.
const PROCEDURE: &str = "1.001193";
const UNIT: &str = "19753";
const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// Every run stops after this many requests, whatever the time.
const MAX_REQUESTS_PER_RUN: u64 = 1_000_000;
/// A soak slice stops after this many requests per second of it, whatever the time (ten
/// times what this machine reaches).
const MAX_SOAK_REQUESTS_PER_SECOND: u64 = 20_000;
/// The soak runs in slices at most this long, the sessions renewed between them when due.
const SOAK_SLICE_SECONDS: u64 = 180;
/// How often the soak samples the server's resident memory.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The sampler's samples beyond the soak's length: room for the renewals between slices.
const SAMPLES_BEYOND_THE_SOAK: u64 = 30;
const MINUTE: Duration = Duration::from_secs(60);
/// The goal for the server's peak resident memory.
const MEMORY_GOAL_MIB: u64 = 256;
/// How long a payment run waits after its load for the callbacks still on their way.
const STRAGGLERS: Duration = Duration::from_secs(5);
/// The longest any request may take; it also bounds what an open loop keeps in flight.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The goal for (c) and (d) at half their maximum.
const GOAL_P99_MS: f64 = 20.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    let pool = fresh_database(BENCH_DB, 1).await?;
    let machine = describe_machine(&pool).await?;
    pool.close().await;
    let arrivals = Arrivals::default();
    let callback_url = start_receiver(arrivals.clone()).await?;
    let mut server = start_server()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2 * TASKS)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    server.wait_until_ready(&client).await?;
    let seeding = Instant::now();
    let site = seed(&client, &server.base, &settings, &callback_url).await?;
    let seeded_s = seeding.elapsed().as_secs_f64();
    pgbench_init()?;

    let mut transcript = Transcript::default();
    transcript.say(machine);
    transcript.say(format!(
        "{} citizens, {MERCHANTS} merchants, {} dossiers (seeded in {seeded_s:.0} s); {TASKS} connections, \
         {} s per run, {} rounds; server pool of {POOL_SIZE}, {CALLBACK_WORKERS} callback workers",
        settings.citizens,
        site.dossiers.len(),
        settings.rounds.seconds,
        settings.rounds.rounds
    ));
    transcript.say(format!(
        "servers: {} (2 adds a round with two on one database); memory soak: {} s (0: none)",
        settings.servers, settings.soak_seconds
    ));
    let mut bench = Bench {
        client,
        servers: vec![server],
        site,
        arrivals,
        seconds: settings.rounds.seconds,
    };
    for number in 1..=settings.rounds.rounds {
        let round = bench.round().await?;
        report_round(&mut transcript, number, &round);
    }
    if settings.servers > 1 {
        bench.start_second_server().await?;
        let pair = bench.pair_round().await?;
        report_pair(&mut transcript, &pair);
        bench.stop_second_server();
    }
    if settings.soak_seconds > 0 {
        let soak = bench.soak(settings.soak_seconds).await?;
        report_soak(&mut transcript, &soak);
    }
    let path = save_results("payments", &transcript)?;
    println!("written to {}", path.display());
    Ok(())
}

struct Settings {
    /// BENCH_CITIZENS, default 2,000: at least one per connection.
    citizens: usize,
    /// BENCH_DOSSIERS, default 200.
    dossiers: usize,
    rounds: Rounds,
    /// BENCH_SERVERS, 1 (default) or 2: with 2, a pair round after the rounds.
    servers: usize,
    /// BENCH_SOAK_SECONDS, default 0 (no soak), at most an hour.
    soak_seconds: u64,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            citizens: env_number("BENCH_CITIZENS", 2_000).clamp(TASKS as u64, 100_000) as usize,
            dossiers: env_number("BENCH_DOSSIERS", 200).clamp(1, 10_000) as usize,
            rounds: Rounds::from_env(),
            servers: env_number("BENCH_SERVERS", 1).clamp(1, 2) as usize,
            soak_seconds: env_number("BENCH_SOAK_SECONDS", 0).min(3_600),
        }
    }
}

fn database_url() -> String {
    format!("{SERVER}/{BENCH_DB}")
}

/// `civicpay serve --demo` with the pool and callback workers measured here, and a cap on
/// one-time codes that lets every citizen be texted one (the default is 1,000 an hour).
fn start_server() -> anyhow::Result<Server> {
    Server::start(
        &database_url(),
        &["--demo"],
        &[
            ("CIVICPAY_DB_MAX_CONNECTIONS", POOL_SIZE.to_string()),
            ("CIVICPAY_CALLBACK_WORKERS", CALLBACK_WORKERS.to_string()),
            ("CIVICPAY_OTP_GLOBAL_HOURLY_CAP", "1000000".to_owned()),
        ],
    )
}

// The merchants' callback endpoint.

/// When each paid order's `payment.succeeded` first arrived, and how long after its `paid_at`.
#[derive(Clone, Copy)]
struct Arrival {
    at: Instant,
    after_paid: Duration,
}

/// How one order was called back: its first arrival, under which `webhook-id`, and how often.
#[derive(Clone, Copy)]
struct Delivered {
    first: Arrival,
    webhook_id: Option<Uuid>,
    times: u32,
    /// Arrivals under a `webhook-id` other than the first one's: another event for the same
    /// order, not a retry (a retry keeps its event's `webhook-id`).
    other_webhook_ids: u32,
}

#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<Uuid, Delivered>>>);

impl Arrivals {
    /// Callbacks are sent at least once: a repeat keeps the first arrival and is counted.
    fn note(&self, order: Uuid, webhook_id: Option<Uuid>, arrival: Arrival) {
        let mut arrived = self.0.lock().unwrap();
        let delivered = arrived.entry(order).or_insert(Delivered {
            first: arrival,
            webhook_id,
            times: 0,
            other_webhook_ids: 0,
        });
        delivered.times += 1;
        if delivered.webhook_id != webhook_id {
            delivered.other_webhook_ids += 1;
        }
    }

    /// How `orders` were called back so far, for those that were.
    fn of(&self, orders: &[Uuid]) -> Vec<Delivered> {
        let arrived = self.0.lock().unwrap();
        orders
            .iter()
            .filter_map(|order| arrived.get(order).copied())
            .collect()
    }
}

/// A paid order as the payment's answer and its callback's `data` carry it, as far as it is
/// read here.
#[derive(Deserialize)]
struct PaidOrder {
    id: Uuid,
    paid_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Callback {
    data: PaidOrder,
}

/// Every merchant's callback URL: an axum server on 127.0.0.1 in this process.
async fn start_receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/callbacks", listener.local_addr()?);
    let app = Router::new()
        .route("/callbacks", post(receive_callback))
        .with_state(arrivals);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

async fn receive_callback(
    State(arrivals): State<Arrivals>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let (at, now) = (Instant::now(), Utc::now());
    if let Ok(callback) = serde_json::from_slice::<Callback>(&body)
        && let Some(paid_at) = callback.data.paid_at
    {
        let after_paid = (now - paid_at).to_std().unwrap_or_default();
        let arrival = Arrival { at, after_paid };
        arrivals.note(callback.data.id, webhook_id(&headers), arrival);
    }
    "ok"
}

/// A callback's `webhook-id` header: its event's id, the same on every retry.
fn webhook_id(headers: &HeaderMap) -> Option<Uuid> {
    headers.get("webhook-id")?.to_str().ok()?.parse().ok()
}

// Seeding, through the public API.

/// A dossier's public tracking: its code and tracking key.
#[derive(Deserialize)]
struct Tracked {
    code: String,
    tracking_key: String,
}

/// What the load needs, made through the public API.
struct Site {
    citizens: Arc<Vec<Citizen>>,
    merchants: Vec<String>,
    dossiers: Arc<Vec<Tracked>>,
}

async fn seed(
    client: &reqwest::Client,
    base: &str,
    settings: &Settings,
    callback_url: &str,
) -> anyhow::Result<Site> {
    let started = Instant::now();
    let seeded = seed_citizens(client, base, &database_url(), settings.citizens, FUNDS).await?;
    let mut citizens = Arc::new(seeded);
    let admin = log_in(client, base, ADMIN).await?;
    let merchants = in_parallel(0..MERCHANTS, SEED_AT_ONCE, |n| {
        onboard_merchant(client, base, &admin, callback_url, n)
    })
    .await?;
    // Registering many citizens may take longer than the first one's access token lasts.
    renew_sessions(client, base, &mut citizens, Duration::from_secs(60)).await?;
    let dossiers = file_dossiers(client, base, &citizens, settings.dossiers).await?;
    let elapsed_s = started.elapsed().as_secs_f64();
    eprintln!("merchants onboarded and dossiers filed by {elapsed_s:.0} s");
    Ok(Site {
        citizens,
        merchants,
        dossiers: Arc::new(dossiers),
    })
}

/// Merchant `n`, onboarded by the admin with its `payment.succeeded` callbacks sent to
/// `callback_url`; its code.
async fn onboard_merchant(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    callback_url: &str,
    n: usize,
) -> anyhow::Result<String> {
    let code = format!("BENCH{n:04}");
    let body = json!({
        "name": format!("Quán thử {n}"), "code": code, "category_code": "5814",
        "limit_category": "general", "fee_rate": "0",
        "callback_url": callback_url, "events": ["payment.succeeded"]
    });
    let response = client
        .post(format!("{base}/v1/admin/merchants"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await?;
    expect(response, StatusCode::CREATED, "a merchant").await?;
    Ok(code)
}

/// `count` birth registrations filed online, with the documents the procedure requires, by the
/// citizens in turn.
async fn file_dossiers(
    client: &reqwest::Client,
    base: &str,
    citizens: &[Citizen],
    count: usize,
) -> anyhow::Result<Vec<Tracked>> {
    let procedure: Value = client
        .get(format!("{base}/v1/procedures/{PROCEDURE}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let documents: Vec<Value> = procedure["required_documents"]
        .as_array()
        .map(|required| required.iter().map(document_for).collect())
        .unwrap_or_default();
    let body = json!({"procedure_code": PROCEDURE, "unit_code": UNIT, "documents": documents});
    in_parallel(0..count, SEED_AT_ONCE, |n| {
        file_dossier(client, base, &citizens[n % citizens.len()], &body)
    })
    .await
}

/// A document for a required one, kept in our document storage.
fn document_for(required: &Value) -> Value {
    let code = required["code"].as_str().unwrap_or_default();
    json!({
        "code": code, "name": format!("{code}.pdf"), "sha256": SHA256, "size": 48213,
        "uri": format!("s3://civicpay-documents/bench/{code}.pdf")
    })
}

async fn file_dossier(
    client: &reqwest::Client,
    base: &str,
    citizen: &Citizen,
    body: &Value,
) -> anyhow::Result<Tracked> {
    let response = client
        .post(format!("{base}/v1/dossiers"))
        .bearer_auth(&citizen.access_token)
        .json(body)
        .send()
        .await?;
    Ok(expect(response, StatusCode::CREATED, "a dossier")
        .await?
        .json()
        .await?)
}

// The load.

/// The server connection `task` sends to: the servers are dealt out like the citizens (task i
/// to server i % their number); with one server, always it.
fn base_of(bases: &[String], task: usize) -> &str {
    &bases[task % bases.len()]
}

/// (a) and (b): static-QR payments of AMOUNT to the merchants in turn, each under its own
/// idempotency key and with the citizen's PIN.
struct QrPayments {
    client: reqwest::Client,
    bases: Vec<String>,
    citizens: Arc<Vec<Citizen>>,
    merchants: Vec<String>,
}

impl Load for QrPayments {
    fn send(&self, task: usize, n: u64) -> impl Future<Output = Outcome> + Send {
        let citizen = citizen_of(&self.citizens, task, n);
        let merchant = &self.merchants[(task + n as usize * TASKS) % self.merchants.len()];
        let request = self
            .client
            .post(format!(
                "{}/v1/merchants/{merchant}/pay",
                base_of(&self.bases, task)
            ))
            .bearer_auth(&citizen.access_token)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .header("x-payment-pin", PIN)
            .json(&json!({"amount": AMOUNT, "note": "bench"}));
        async move {
            match request.send().await {
                Ok(response) if response.status() == StatusCode::CREATED => {
                    match response.json::<PaidOrder>().await {
                        Ok(order) => Outcome::Ok(Some(order.id)),
                        Err(error) => Outcome::Failed(error.to_string()),
                    }
                }
                answered => failure(answered).await,
            }
        }
    }
}

/// (c): the first page of `GET /v1/wallet/transactions`, as the citizens in turn.
struct WalletHistory {
    client: reqwest::Client,
    bases: Vec<String>,
    citizens: Arc<Vec<Citizen>>,
}

impl Load for WalletHistory {
    fn send(&self, task: usize, n: u64) -> impl Future<Output = Outcome> + Send {
        let citizen = citizen_of(&self.citizens, task, n);
        read(
            self.client
                .get(format!(
                    "{}/v1/wallet/transactions",
                    base_of(&self.bases, task)
                ))
                .bearer_auth(&citizen.access_token),
        )
    }
}

/// (d): `GET /v1/public/dossiers/{code}?key=`, no login, the dossiers in turn.
struct PublicTracking {
    client: reqwest::Client,
    bases: Vec<String>,
    dossiers: Arc<Vec<Tracked>>,
}

impl Load for PublicTracking {
    fn send(&self, task: usize, n: u64) -> impl Future<Output = Outcome> + Send {
        let dossier = &self.dossiers[(task + n as usize * TASKS) % self.dossiers.len()];
        read(self.client.get(format!(
            "{}/v1/public/dossiers/{}?key={}",
            base_of(&self.bases, task),
            dossier.code,
            dossier.tracking_key
        )))
    }
}

/// `load`, its successes counted in `successes` as they happen (the soak's samples read it).
struct Counted<L> {
    load: L,
    successes: Arc<AtomicU64>,
}

impl<L: Load> Load for Counted<L> {
    fn send(&self, task: usize, n: u64) -> impl Future<Output = Outcome> + Send {
        let sent = self.load.send(task, n);
        async move {
            let outcome = sent.await;
            if matches!(outcome, Outcome::Ok(_)) {
                self.successes.fetch_add(1, Ordering::Relaxed);
            }
            outcome
        }
    }
}

/// A GET that succeeds with any 2xx whose body arrives whole.
async fn read(request: reqwest::RequestBuilder) -> Outcome {
    match request.send().await {
        Ok(response) if response.status().is_success() => match response.bytes().await {
            Ok(_) => Outcome::Ok(None),
            Err(error) => Outcome::Failed(error.to_string()),
        },
        answered => failure(answered).await,
    }
}

/// `load` at `rate` requests a second for `seconds`, each started on its tick whatever the
/// others do (an open system: a slow answer does not lower the offered load); at most
/// MAX_REQUESTS_PER_RUN, each bounded by the client's timeout.
async fn open_loop(load: impl Load, rate: f64, seconds: u64) -> anyhow::Result<Run> {
    let load = Arc::new(load);
    let total = ((rate * seconds as f64) as u64).clamp(1, MAX_REQUESTS_PER_RUN);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut requests = JoinSet::new();
    for n in 0..total {
        ticker.tick().await;
        let load = load.clone();
        requests.spawn(async move {
            let sent = Instant::now();
            let outcome = load.send(n as usize % TASKS, n).await;
            (sent.elapsed(), outcome)
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = requests.join_next().await {
        let (latency, outcome) = done?;
        tally.record(latency, outcome);
    }
    Ok(Run::finished(tally, started))
}

/// What the callback endpoint saw of one payment run's orders.
struct CalledBack {
    /// Arrivals during the run, per second of it.
    per_second: f64,
    /// From each order's `paid_at` to its callback's arrival, sorted.
    latencies: Vec<Duration>,
    arrived: usize,
    paid: usize,
    /// Orders called back more than once.
    repeated: usize,
    /// Of those, the orders called back under more than one `webhook-id` (not retries).
    other_events: usize,
}

/// Waits (at most STRAGGLERS) for the callback of every order `run` paid, then sums them up.
async fn callbacks_of(run: &Run, arrivals: &Arrivals) -> CalledBack {
    let paid = &run.tally.paid;
    let deadline = Instant::now() + STRAGGLERS;
    while arrivals.of(paid).len() < paid.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = arrivals.of(paid);
    let end = run.started + run.elapsed;
    let during = arrived.iter().filter(|order| order.first.at <= end).count();
    let mut latencies: Vec<Duration> = arrived.iter().map(|order| order.first.after_paid).collect();
    latencies.sort_unstable();
    CalledBack {
        per_second: during as f64 / run.elapsed.as_secs_f64(),
        latencies,
        arrived: arrived.len(),
        paid: paid.len(),
        repeated: arrived.iter().filter(|order| order.times > 1).count(),
        other_events: arrived
            .iter()
            .filter(|order| order.other_webhook_ids > 0)
            .count(),
    }
}

/// An open-loop run and the rate it offered.
struct Offered {
    rate: f64,
    run: Run,
}

/// `load` offered at half of what its closed loop `max` reached.
async fn at_half_of(max: &Run, load: impl Load, seconds: u64) -> anyhow::Result<Offered> {
    let rate = (max.ok_per_second() / 2.0).clamp(1.0, 100_000.0);
    let run = open_loop(load, rate, seconds).await?;
    Ok(Offered { rate, run })
}

// The rounds.

/// The running servers (each killed when dropped; the first one unless the pair round is
/// running), what was seeded, its callbacks.
struct Bench {
    client: reqwest::Client,
    servers: Vec<Server>,
    site: Site,
    arrivals: Arrivals,
    seconds: u64,
}

/// One round's measurements.
struct Round {
    pgbench_tps: f64,
    spread: (Run, CalledBack),
    hot: (Run, CalledBack),
    history: Run,
    tracking: Run,
    history_at_half: Offered,
    tracking_at_half: Offered,
    peak_mib: u64,
}

impl Bench {
    async fn round(&mut self) -> anyhow::Result<Round> {
        let pgbench_tps = pgbench_run(self.seconds)?;
        let spread = self
            .payments(self.site.merchants.clone(), self.one_server())
            .await?;
        let hot = self
            .payments(self.site.merchants[..1].to_vec(), self.one_server())
            .await?;
        self.keep_signed_in(self.seconds).await?;
        let history =
            closed_loop(self.wallet_history(), self.seconds, MAX_REQUESTS_PER_RUN).await?;
        let tracking =
            closed_loop(self.public_tracking(), self.seconds, MAX_REQUESTS_PER_RUN).await?;
        self.keep_signed_in(self.seconds).await?;
        let history_at_half = at_half_of(&history, self.wallet_history(), self.seconds).await?;
        let tracking_at_half = at_half_of(&tracking, self.public_tracking(), self.seconds).await?;
        Ok(Round {
            pgbench_tps,
            spread,
            hot,
            history,
            tracking,
            history_at_half,
            tracking_at_half,
            peak_mib: Memory::of(self.servers[0].pid())?.hwm_mib,
        })
    }

    /// A run of QR payments to `merchants` through `bases`, then its callbacks.
    async fn payments(
        &mut self,
        merchants: Vec<String>,
        bases: Vec<String>,
    ) -> anyhow::Result<(Run, CalledBack)> {
        self.keep_signed_in(self.seconds).await?;
        let load = self.qr_payments(merchants, bases);
        let run = closed_loop(load, self.seconds, MAX_REQUESTS_PER_RUN).await?;
        let called_back = callbacks_of(&run, &self.arrivals).await;
        Ok((run, called_back))
    }

    fn qr_payments(&self, merchants: Vec<String>, bases: Vec<String>) -> QrPayments {
        QrPayments {
            client: self.client.clone(),
            bases,
            citizens: self.site.citizens.clone(),
            merchants,
        }
    }

    fn wallet_history(&self) -> WalletHistory {
        WalletHistory {
            client: self.client.clone(),
            bases: self.one_server(),
            citizens: self.site.citizens.clone(),
        }
    }

    fn public_tracking(&self) -> PublicTracking {
        PublicTracking {
            client: self.client.clone(),
            bases: self.one_server(),
            dossiers: self.site.dossiers.clone(),
        }
    }

    /// The first server's address, which the load goes to by default.
    fn one_server(&self) -> Vec<String> {
        vec![self.servers[0].base.clone()]
    }

    /// Every running server's address, in order.
    fn every_server(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|server| server.base.clone())
            .collect()
    }

    /// Sessions that outlast a run of `seconds`, its stragglers and a minute more (renewed
    /// through the first server; every server takes them, their key being in the database).
    async fn keep_signed_in(&mut self, seconds: u64) -> anyhow::Result<()> {
        let needed = Duration::from_secs(seconds + 60) + STRAGGLERS;
        let base = self.servers[0].base.as_str();
        renew_sessions(&self.client, base, &mut self.site.citizens, needed).await
    }
}

// The pair round: two servers on one database.

/// The pair round's measurements.
struct PairRound {
    pgbench_tps: f64,
    spread: (Run, CalledBack),
    hot: (Run, CalledBack),
    /// Each server's, in order.
    memory: Vec<Memory>,
}

impl Bench {
    /// A second server on the same database, started as the first was (`--demo` only loads
    /// what is missing, under a lock).
    async fn start_second_server(&mut self) -> anyhow::Result<()> {
        let mut server = start_server()?;
        server.wait_until_ready(&self.client).await?;
        self.servers.push(server);
        Ok(())
    }

    /// pgbench, then (a) and (b) with connection i sent to server i % 2.
    async fn pair_round(&mut self) -> anyhow::Result<PairRound> {
        let pgbench_tps = pgbench_run(self.seconds)?;
        let spread = self
            .payments(self.site.merchants.clone(), self.every_server())
            .await?;
        let hot = self
            .payments(self.site.merchants[..1].to_vec(), self.every_server())
            .await?;
        let memory = self
            .servers
            .iter()
            .map(|server| Memory::of(server.pid()))
            .collect::<anyhow::Result<Vec<Memory>>>()?;
        Ok(PairRound {
            pgbench_tps,
            spread,
            hot,
            memory,
        })
    }

    /// Kills every server but the first.
    fn stop_second_server(&mut self) {
        self.servers.truncate(1);
    }
}

// The memory soak.

/// The server's resident memory `at` into the soak, and the payments per second since the
/// previous sample.
struct Sample {
    at: Duration,
    rss_mib: u64,
    paid_per_second: f64,
}

struct Soak {
    seconds: u64,
    slices: u64,
    /// Its slices' runs as one.
    run: Run,
    called_back: CalledBack,
    samples: Vec<Sample>,
    peak_mib: u64,
}

impl Bench {
    /// (a) through the first server for `seconds`, in slices of at most SOAK_SLICE_SECONDS
    /// with the sessions renewed between them, while a task samples the server's memory.
    async fn soak(&mut self, seconds: u64) -> anyhow::Result<Soak> {
        let pid = self.servers[0].pid();
        let paid = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let most = seconds.div_ceil(SAMPLE_EVERY.as_secs()) + SAMPLES_BEYOND_THE_SOAK;
        let sampler = tokio::spawn(sample_memory(pid, paid.clone(), stopped, most));
        let slices = seconds.div_ceil(SOAK_SLICE_SECONDS);
        let started = Instant::now();
        let mut tally = Tally::default();
        for slice in 0..slices {
            let length = SOAK_SLICE_SECONDS.min(seconds - slice * SOAK_SLICE_SECONDS);
            eprintln!("soak: slice {} of {slices}, {length} s", slice + 1);
            tally.merge(self.soak_slice(length, paid.clone()).await?.tally);
        }
        let run = Run::finished(tally, started);
        let _ = stop.send(());
        let samples = sampler.await??;
        let called_back = callbacks_of(&run, &self.arrivals).await;
        Ok(Soak {
            seconds,
            slices,
            run,
            called_back,
            samples,
            peak_mib: Memory::of(pid)?.hwm_mib,
        })
    }

    /// (a) through the first server for `seconds`, its successes counted in `paid`.
    async fn soak_slice(&mut self, seconds: u64, paid: Arc<AtomicU64>) -> anyhow::Result<Run> {
        self.keep_signed_in(seconds).await?;
        let load = Counted {
            load: self.qr_payments(self.site.merchants.clone(), self.one_server()),
            successes: paid,
        };
        closed_loop(load, seconds, seconds * MAX_SOAK_REQUESTS_PER_SECOND).await
    }
}

/// Process `pid`'s resident memory every SAMPLE_EVERY, with the successes counted in `paid`
/// per second since the previous sample, until `stop` fires or its sender is gone, at most
/// `most` samples.
async fn sample_memory(
    pid: u32,
    paid: Arc<AtomicU64>,
    mut stop: oneshot::Receiver<()>,
    most: u64,
) -> anyhow::Result<Vec<Sample>> {
    let started = Instant::now();
    let first = tokio::time::Instant::now() + SAMPLE_EVERY;
    let mut ticker = tokio::time::interval_at(first, SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    let (mut previous_at, mut previous_paid) = (started, 0);
    for _ in 0..most {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let (at, paid_so_far) = (Instant::now(), paid.load(Ordering::Relaxed));
        let since_previous = (at - previous_at).as_secs_f64();
        samples.push(Sample {
            at: at - started,
            rss_mib: Memory::of(pid)?.rss_mib,
            paid_per_second: (paid_so_far - previous_paid) as f64 / since_previous,
        });
        (previous_at, previous_paid) = (at, paid_so_far);
    }
    Ok(samples)
}

// The report.

fn report_round(transcript: &mut Transcript, number: u64, round: &Round) {
    transcript.say(format!(
        "round {number}: pgbench TPC-B {:.0} tps; server peak resident memory (VmHWM) {} MiB",
        round.pgbench_tps, round.peak_mib
    ));
    transcript.say(RUN_HEADER);
    report_run(transcript, "(a) QR pay, 1,000 merchants", &round.spread.0);
    report_run(transcript, "(b) QR pay, one merchant", &round.hot.0);
    report_run(transcript, "(c) wallet history page", &round.history);
    report_run(transcript, "(d) public tracking", &round.tracking);
    transcript.say(format!(
        "  (a)/pgbench {:.2}, (b)/(a) {:.2}",
        round.spread.0.ok_per_second() / round.pgbench_tps,
        round.hot.0.ok_per_second() / round.spread.0.ok_per_second()
    ));
    report_callbacks(transcript, "(a)", &round.spread.1);
    report_callbacks(transcript, "(b)", &round.hot.1);
    report_offered(transcript, "(c)", &round.history_at_half);
    report_offered(transcript, "(d)", &round.tracking_at_half);
}

fn report_pair(transcript: &mut Transcript, pair: &PairRound) {
    transcript.say(format!(
        "pair round, two servers on one database (connection i to server i % 2): pgbench TPC-B \
         {:.0} tps",
        pair.pgbench_tps
    ));
    for (number, memory) in (1..).zip(&pair.memory) {
        transcript.say(format!(
            "  server {number}: peak resident memory (VmHWM, since it started) {} MiB, now {} MiB",
            memory.hwm_mib, memory.rss_mib
        ));
    }
    transcript.say(RUN_HEADER);
    report_run(transcript, "(a) QR pay, 2 servers", &pair.spread.0);
    report_run(transcript, "(b) QR pay, 2 servers, hot", &pair.hot.0);
    transcript.say(format!(
        "  (a)/pgbench {:.2}, (b)/(a) {:.2}",
        pair.spread.0.ok_per_second() / pair.pgbench_tps,
        pair.hot.0.ok_per_second() / pair.spread.0.ok_per_second()
    ));
    report_callbacks(transcript, "(a)", &pair.spread.1);
    report_callbacks(transcript, "(b)", &pair.hot.1);
}

fn report_soak(transcript: &mut Transcript, soak: &Soak) {
    transcript.say(format!(
        "memory soak: (a) through server 1 alone for {} s in {} slices of at most \
         {SOAK_SLICE_SECONDS} s (sessions renewed between them when due); its resident memory \
         every {} s:",
        soak.seconds,
        soak.slices,
        SAMPLE_EVERY.as_secs()
    ));
    for sample in &soak.samples {
        transcript.say(format!(
            "  t={:.0}s rss={} MiB payments/s over the last {} s={:.0}",
            sample.at.as_secs_f64(),
            sample.rss_mib,
            SAMPLE_EVERY.as_secs(),
            sample.paid_per_second
        ));
    }
    transcript.say(RUN_HEADER);
    report_run(transcript, "(a) QR pay, soak", &soak.run);
    report_callbacks(transcript, "the soak", &soak.called_back);
    let verdict = if soak.peak_mib < MEMORY_GOAL_MIB {
        "met"
    } else {
        "MISSED"
    };
    transcript.say(format!(
        "  mean resident memory: first minute {:.1} MiB, last minute {:.1} MiB; peak (VmHWM, \
         since the server started) {} MiB; goal peak < {MEMORY_GOAL_MIB} MiB: {verdict}",
        first_minute_mib(&soak.samples),
        last_minute_mib(&soak.samples),
        soak.peak_mib
    ));
}

/// The mean resident memory of the samples of the first minute (NaN without any).
fn first_minute_mib(samples: &[Sample]) -> f64 {
    mean_rss_mib(samples.iter().filter(|sample| sample.at <= MINUTE))
}

/// The mean resident memory of the samples of the last minute (NaN without any).
fn last_minute_mib(samples: &[Sample]) -> f64 {
    let end = samples.last().map_or(Duration::ZERO, |sample| sample.at);
    mean_rss_mib(samples.iter().filter(|sample| sample.at + MINUTE >= end))
}

fn mean_rss_mib<'a>(samples: impl Iterator<Item = &'a Sample>) -> f64 {
    let (count, sum) = samples.fold((0u64, 0u64), |(count, sum), sample| {
        (count + 1, sum + sample.rss_mib)
    });
    sum as f64 / count as f64
}

fn report_callbacks(transcript: &mut Transcript, name: &str, callbacks: &CalledBack) {
    let verdict = if callbacks.arrived == callbacks.paid {
        "all".to_owned()
    } else {
        format!("{} MISSING", callbacks.paid - callbacks.arrived)
    };
    transcript.say(format!(
        "  callbacks of {name}: {:.1}/s during the run; paid_at to arrival p50 {:.2} ms, p99 {:.2} ms; \
         {} of {} paid orders called back within {} s after the run ({verdict})",
        callbacks.per_second,
        quantile_ms(&callbacks.latencies, 0.50),
        quantile_ms(&callbacks.latencies, 0.99),
        callbacks.arrived,
        callbacks.paid,
        STRAGGLERS.as_secs()
    ));
    transcript.say(format!(
        "    {} orders called back more than once ({} of them under another webhook-id than the \
         first: another event, not a retry)",
        callbacks.repeated, callbacks.other_events
    ));
}

fn report_offered(transcript: &mut Transcript, name: &str, offered: &Offered) {
    let p99_ms = offered.run.ms_at(0.99);
    let verdict = if p99_ms < GOAL_P99_MS {
        "met"
    } else {
        "MISSED"
    };
    transcript.say(format!(
        "  {name} offered {:.0}/s (half its maximum): p50 {:.2} ms, p99 {p99_ms:.2} ms, {} errors; \
         goal p99 < {GOAL_P99_MS} ms: {verdict}",
        offered.rate,
        offered.run.ms_at(0.50),
        offered.run.tally.errors
    ));
}
