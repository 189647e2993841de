//! Bill payments with receipts over real HTTP (issue 18): a biller taking thousands of payments
//! a minute into one receipt series must keep the hot-account throughput (hot/spread stays at
//! or above 0.9 with receipts on), and every receipt is numbered within a second under load,
//! its series gapless. The server is the real binary in a process of its own (`civicpay serve
//! --demo`, its pool of 16, its receipt sequencer) on a fresh `civicpay_bench_bill_payments`;
//! this process seeds it through the public API and drives 32 connections.
//!
//! Seeding (benches/support, as benches/payments.rs does it): BENCH_CITIZENS citizens (256 by
//! default) register with the code texted to them, verify their wallet and set a PIN, and are
//! funded by `civicpay ledger fund` with twice their even share of every bill prepared; the
//! demo admin onboards BENCH_BILLERS water billers (default 100, codes BB0001…, no callbacks),
//! and each biller pushes its bills of 10,000 đ through `POST /v1/biller/bills/batch`. Every
//! run's bills are prepared up front, BENCH_SECONDS × 1,500 of them (at most BENCH_MAX_BILLS,
//! default 30,000): for (a) the bill of request n is biller n % billers's, for (b) every bill
//! is the first biller's (one receipt series).
//!
//! Each round (BENCH_ROUNDS, default 2) runs (a) then (b): 32 back-to-back clients for
//! BENCH_SECONDS each (default 15), or until the run's bills run out, each request paying the
//! next unpaid bill from the wallet (`POST /v1/bills/{id}/pay`, its own idempotency key and the
//! PIN) as the connection's citizens in turn (dealt out like cards, so no two connections pay
//! from one wallet). It reports the bills paid per second, p50 and p99, and
//! hot/spread ((b)/(a), goal ≥ 0.9). After each run it waits (at most 30 s) until no receipt is
//! left unnumbered and reports, from the database, how long that took, the numbering lag of the
//! run's receipts (`issued_at` − `paid_at`: from the start of the paying transaction, whose
//! `now()` is the bill's `paid_at`, to the sequencer's pass that numbered it, taken before that
//! pass signs and commits; p50, p99 and max, goal max under 1 s) and whether every series is
//! gapless in every year (its numbers 1 to its count).
//!
//! The report goes to stdout and to bench/results/bill_payments-<UTC date-time>-<commit>.txt.
//!
//! Run: `cargo bench --bench bill_payments` (BENCH_SECONDS; BENCH_ROUNDS; BENCH_CITIZENS;
//! BENCH_BILLERS; BENCH_MAX_BILLS; BENCH_SERVER_LOG=1 shows the server's log; BENCH_SERVER_BIN
//! runs another binary). Needs PostgreSQL on 127.0.0.1:5432; seeding takes a minute or two.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

mod support;
use support::{
    ADMIN, Citizen, Load, Outcome, PIN, RUN_HEADER, Rounds, Run, SEED_AT_ONCE, SERVER, Server,
    TASKS, Transcript, citizen_of, closed_loop, describe_machine, env_number, expect, failure,
    fresh_database, in_parallel, log_in, renew_sessions, report_run, save_results, seed_citizens,
};

const BENCH_DB: &str = "civicpay_bench_bill_payments";
const POOL_SIZE: u32 = 16;
/// What each bill is for, in đồng.
const AMOUNT: i64 = 10_000;
/// The bills prepared per second of a run: above what this machine reaches.
const BILLS_PER_SECOND: u64 = 1_500;
/// The most bills one batch may carry.
const MAX_BATCH: usize = 10_000;
/// Batches posted at once while seeding.
const BATCHES_AT_ONCE: usize = 4;
/// The hot biller of (b): the first.
const HOT: usize = 0;
/// Wallets pay at most this into utilities a month (`limit_policies`): more funds could not be
/// spent.
const UTILITY_LIMIT: i64 = 300_000_000;
/// Every run stops after this many requests, whatever the time (its bills stop it first).
const MAX_REQUESTS_PER_RUN: u64 = 1_000_000;
/// The longest any request may take, and a batch of bills.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long after a run its receipts may take to be numbered, and how often that is looked at.
const NUMBERING_WAIT: Duration = Duration::from_secs(30);
const NUMBERING_POLL: Duration = Duration::from_millis(50);
/// The goals: hot/spread, and a receipt numbered within a second.
const GOAL_RATIO: f64 = 0.9;
const GOAL_LAG: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    let pool = fresh_database(BENCH_DB, 2).await?;
    let machine = describe_machine(&pool).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2 * TASKS)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut server = start_server()?;
    server.wait_until_ready(&client).await?;
    let base = server.base.clone();
    let seeding = Instant::now();
    let funds = settings.funds();
    let citizens = seed_citizens(&client, &base, &database_url(), settings.citizens, funds).await?;
    let admin = log_in(&client, &base, ADMIN).await?;
    let keys = onboard_billers(&client, &base, &admin, settings.billers).await?;
    let elapsed_s = seeding.elapsed().as_secs_f64();
    eprintln!("{} billers onboarded by {elapsed_s:.0} s", keys.len());
    let (rounds, per_run) = (settings.rounds.rounds as usize, settings.bills_per_run());
    let prepared = prepare_bills(&client, &base, &keys, rounds, per_run).await?;
    let seeded_s = seeding.elapsed().as_secs_f64();
    eprintln!(
        "{} bills prepared; seeded in {seeded_s:.0} s",
        2 * rounds * per_run
    );

    let mut transcript = Transcript::default();
    transcript.say(machine);
    transcript.say(format!(
        "{} citizens funded with {funds} đ each, {} billers, {per_run} bills of {AMOUNT} đ \
         prepared per run (seeded in {seeded_s:.0} s); {TASKS} connections, {} s per run or until \
         its bills run out, {rounds} rounds; server pool of {POOL_SIZE}",
        citizens.len(),
        keys.len(),
        settings.rounds.seconds
    ));
    let mut bench = Bench {
        client,
        pool,
        server,
        citizens: Arc::new(citizens),
        seconds: settings.rounds.seconds,
    };
    let mut results: Vec<(Measured, Measured)> = Vec::new();
    for bills in prepared {
        let spread = bench.payments(bills.spread).await?;
        let hot = bench.payments(bills.hot).await?;
        let number = results.len() + 1;
        report_round(&mut transcript, number, keys.len(), &spread, &hot);
        results.push((spread, hot));
    }
    report_summary(&mut transcript, &results);
    let path = save_results("bill_payments", &transcript)?;
    println!("written to {}", path.display());
    Ok(())
}

struct Settings {
    /// BENCH_CITIZENS, default 256: at least one per connection.
    citizens: usize,
    /// BENCH_BILLERS, default 100.
    billers: usize,
    /// BENCH_MAX_BILLS, default 30,000: the most bills prepared for one run.
    max_bills: usize,
    rounds: Rounds,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            citizens: env_number("BENCH_CITIZENS", 256).clamp(TASKS as u64, 100_000) as usize,
            billers: env_number("BENCH_BILLERS", 100).clamp(1, 10_000) as usize,
            max_bills: env_number("BENCH_MAX_BILLS", 30_000).clamp(1, 1_000_000) as usize,
            rounds: Rounds::from_env(),
        }
    }

    /// BILLS_PER_SECOND for BENCH_SECONDS, at most BENCH_MAX_BILLS.
    fn bills_per_run(&self) -> usize {
        (self.rounds.seconds * BILLS_PER_SECOND).min(self.max_bills as u64) as usize
    }

    /// What each citizen is funded with: twice its even share of every bill prepared (the
    /// connections do not all go as fast), at most what a wallet may pay into utilities in a
    /// month.
    fn funds(&self) -> i64 {
        let bills = 2 * self.rounds.rounds as usize * self.bills_per_run();
        let share = (2 * bills).div_ceil(self.citizens) as i64;
        (share * AMOUNT).min(UTILITY_LIMIT)
    }
}

fn database_url() -> String {
    format!("{SERVER}/{BENCH_DB}")
}

/// `civicpay serve --demo` with the pool measured here, and a cap on one-time codes that lets
/// every citizen be texted one (the default is 1,000 an hour).
fn start_server() -> anyhow::Result<Server> {
    Server::start(
        &database_url(),
        &["--demo"],
        &[
            ("CIVICPAY_DB_MAX_CONNECTIONS", POOL_SIZE.to_string()),
            ("CIVICPAY_OTP_GLOBAL_HOURLY_CAP", "1000000".to_owned()),
        ],
    )
}

// The billers and their bills, through the public API.

/// `count` billers onboarded by the admin; their API keys, in order.
async fn onboard_billers(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut onboarded = in_parallel(0..count, SEED_AT_ONCE, |n| {
        onboard_biller(client, base, admin, n)
    })
    .await?;
    onboarded.sort_unstable_by_key(|(n, _)| *n);
    Ok(onboarded.into_iter().map(|(_, key)| key).collect())
}

/// Water biller `n` (code BB0001 for the first), without callbacks; `n` and its API key.
async fn onboard_biller(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    n: usize,
) -> anyhow::Result<(usize, String)> {
    let body = json!({
        "name": format!("Cấp nước thử {}", n + 1), "code": format!("BB{:04}", n + 1),
        "kind": "water", "limit_category": "utility", "callback_url": null, "events": []
    });
    let response = client
        .post(format!("{base}/v1/admin/billers"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await?;
    let created: Value = expect(response, StatusCode::CREATED, "a biller")
        .await?
        .json()
        .await?;
    let key = created["api_key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no api_key in {created}"))?;
    Ok((n, key))
}

#[derive(Clone, Copy)]
enum Mode {
    /// (a): over every biller.
    Spread,
    /// (b): the HOT biller's alone.
    Hot,
}

/// Where a bill is paid: in which round's run, by its `n`th request.
#[derive(Clone, Copy)]
struct Slot {
    round: usize,
    mode: Mode,
    n: usize,
}

impl Slot {
    fn new(round: usize, mode: Mode, n: usize) -> Slot {
        Slot { round, mode, n }
    }
}

/// Bills one biller sends at once.
struct Batch {
    key: String,
    slots: Vec<Slot>,
}

/// The bills of one round's runs, in the order their requests take them.
struct RoundBills {
    spread: Vec<Uuid>,
    hot: Vec<Uuid>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    created: usize,
    bills: Vec<BatchedBill>,
}

#[derive(Deserialize)]
struct BatchedBill {
    id: Uuid,
}

/// Every bill of `rounds` rounds of `per_run` bills a run, pushed by their billers.
async fn prepare_bills(
    client: &reqwest::Client,
    base: &str,
    keys: &[String],
    rounds: usize,
    per_run: usize,
) -> anyhow::Result<Vec<RoundBills>> {
    let batches = batches_of(keys, rounds, per_run);
    let placed = in_parallel(batches, BATCHES_AT_ONCE, |batch| {
        post_batch(client, base, batch)
    })
    .await?;
    let mut prepared: Vec<RoundBills> = (0..rounds)
        .map(|_| RoundBills {
            spread: vec![Uuid::nil(); per_run],
            hot: vec![Uuid::nil(); per_run],
        })
        .collect();
    for (slots, ids) in placed {
        for (slot, id) in slots.into_iter().zip(ids) {
            let round = &mut prepared[slot.round];
            let run = match slot.mode {
                Mode::Spread => &mut round.spread,
                Mode::Hot => &mut round.hot,
            };
            run[slot.n] = id;
        }
    }
    Ok(prepared)
}

/// Each biller's bills in batches of at most MAX_BATCH: in every round, request n of (a) pays
/// biller n % billers's bill, and every request of (b) the HOT biller's.
fn batches_of(keys: &[String], rounds: usize, per_run: usize) -> Vec<Batch> {
    let mut slots: Vec<Vec<Slot>> = vec![Vec::new(); keys.len()];
    for round in 0..rounds {
        for n in 0..per_run {
            slots[n % keys.len()].push(Slot::new(round, Mode::Spread, n));
            slots[HOT].push(Slot::new(round, Mode::Hot, n));
        }
    }
    let mut batches = Vec::new();
    for (key, slots) in keys.iter().zip(slots) {
        for chunk in slots.chunks(MAX_BATCH) {
            let slots = chunk.to_vec();
            batches.push(Batch {
                key: key.clone(),
                slots,
            });
        }
    }
    batches
}

/// A bill of one water item, its reference unique to its biller.
fn bill_of(slot: &Slot) -> Value {
    let n = slot.n;
    let mode = match slot.mode {
        Mode::Spread => "S",
        Mode::Hot => "H",
    };
    json!({
        "reference": format!("R{}-{mode}-{n:06}", slot.round + 1),
        "customer_code": format!("HW{n:08}"),
        "payer_name": format!("Khách hàng {n}"),
        "items": [{"name": "Tiền nước", "amount": AMOUNT}],
        "amount": AMOUNT
    })
}

/// Posts the batch; its slots with their bills' ids, in order, once every bill was created.
async fn post_batch(
    client: &reqwest::Client,
    base: &str,
    batch: Batch,
) -> anyhow::Result<(Vec<Slot>, Vec<Uuid>)> {
    let bills: Vec<Value> = batch.slots.iter().map(bill_of).collect();
    let response = client
        .post(format!("{base}/v1/biller/bills/batch"))
        .bearer_auth(&batch.key)
        .timeout(BATCH_TIMEOUT)
        .json(&json!({ "bills": bills }))
        .send()
        .await?;
    let answer: BatchAnswer = expect(response, StatusCode::CREATED, "a batch of bills")
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        answer.created == batch.slots.len() && answer.bills.len() == batch.slots.len(),
        "a batch of {} bills answered {} created and {} bills",
        batch.slots.len(),
        answer.created,
        answer.bills.len()
    );
    let ids = answer.bills.into_iter().map(|bill| bill.id).collect();
    Ok((batch.slots, ids))
}

// The load.

/// (a) and (b): each request pays the next bill nobody took yet from the wallet, under its own
/// idempotency key and with the citizen's PIN; none left, the connection stops.
struct BillPayments {
    client: reqwest::Client,
    base: String,
    citizens: Arc<Vec<Citizen>>,
    bills: Vec<Uuid>,
    next: AtomicUsize,
}

impl Load for BillPayments {
    fn send(&self, task: usize, n: u64) -> impl Future<Output = Outcome> + Send {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        let payment = self.bills.get(next).map(|&bill| {
            let citizen = citizen_of(&self.citizens, task, n);
            let request = self
                .client
                .post(format!("{}/v1/bills/{bill}/pay", self.base))
                .bearer_auth(&citizen.access_token)
                .header("idempotency-key", Uuid::new_v4().to_string())
                .header("x-payment-pin", PIN)
                .json(&json!({}));
            (bill, request)
        });
        async move {
            let Some((bill, request)) = payment else {
                return Outcome::Exhausted;
            };
            match request.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    match response.bytes().await {
                        Ok(_) => Outcome::Ok(Some(bill)),
                        Err(error) => Outcome::Failed(error.to_string()),
                    }
                }
                answered => failure(answered).await,
            }
        }
    }
}

// The runs and their receipts.

/// The server (killed when dropped), what was seeded, and the database to read receipts from.
struct Bench {
    client: reqwest::Client,
    pool: PgPool,
    server: Server,
    citizens: Arc<Vec<Citizen>>,
    seconds: u64,
}

/// A run of bill payments and what became of its receipts.
struct Measured {
    run: Run,
    receipts: Receipts,
}

impl Bench {
    /// The closed loop paying `bills`, then its receipts once numbered.
    async fn payments(&mut self, bills: Vec<Uuid>) -> anyhow::Result<Measured> {
        let needed = Duration::from_secs(self.seconds + 60);
        renew_sessions(&self.client, &self.server.base, &mut self.citizens, needed).await?;
        let load = BillPayments {
            client: self.client.clone(),
            base: self.server.base.clone(),
            citizens: self.citizens.clone(),
            bills,
            next: AtomicUsize::new(0),
        };
        let run = closed_loop(load, self.seconds, MAX_REQUESTS_PER_RUN).await?;
        let receipts = receipts_of(&self.pool, &run.tally.paid).await?;
        Ok(Measured { run, receipts })
    }
}

/// What became of one run's receipts, from the database.
struct Receipts {
    /// The bills the run paid (answered 200).
    paid: usize,
    /// From the run's end until no receipt was left unnumbered; none if some still were
    /// NUMBERING_WAIT after it.
    all_numbered_after: Option<Duration>,
    /// The receipts left unnumbered then, of every run.
    unnumbered: i64,
    /// How the run's paid bills' receipts stand.
    lag: Lag,
    /// The series-years with numbers so far, and those numbered 1 to their count.
    series_years: i64,
    gapless: i64,
}

/// The receipts of a run's paid bills: how many, how many numbered, and `issued_at` −
/// `paid_at` of those, in seconds.
#[derive(sqlx::FromRow)]
struct Lag {
    found: i64,
    numbered: i64,
    p50_s: Option<f64>,
    p99_s: Option<f64>,
    max_s: Option<f64>,
}

impl Receipts {
    /// Every paid bill has its receipt, numbered, the slowest within GOAL_LAG.
    fn numbered_in_time(&self) -> bool {
        self.all_numbered_after.is_some()
            && self.lag.found == self.paid as i64
            && self.lag.numbered == self.lag.found
            && self
                .lag
                .max_s
                .is_some_and(|max| max < GOAL_LAG.as_secs_f64())
    }

    fn all_gapless(&self) -> bool {
        self.gapless == self.series_years
    }
}

const UNNUMBERED: &str = "SELECT count(*) FROM receipts WHERE number IS NULL";
const LAG: &str = "SELECT count(*) AS found, count(issued_at) AS numbered,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM issued_at - paid_at)::float8) AS p50_s,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM issued_at - paid_at)::float8) AS p99_s,
        max(extract(epoch FROM issued_at - paid_at)::float8) AS max_s
    FROM receipts WHERE bill_id = ANY($1)";
/// A series' numbers in a year are unique (`receipts_number_key`), so as many as the largest,
/// starting at 1, are 1 to their count.
const GAPLESS: &str = "SELECT count(*), count(*) FILTER (WHERE gapless)
    FROM (SELECT count(*) = max(number) AND min(number) = 1 AS gapless
          FROM receipts WHERE number IS NOT NULL GROUP BY series_id, year) AS series_years";

/// Waits (at most NUMBERING_WAIT) until no receipt is unnumbered, then reads the receipts of
/// the bills in `paid` and checks every series.
async fn receipts_of(pool: &PgPool, paid: &[Uuid]) -> anyhow::Result<Receipts> {
    let waiting = Instant::now();
    let mut unnumbered = sqlx::query_scalar::<_, i64>(UNNUMBERED)
        .fetch_one(pool)
        .await?;
    while unnumbered > 0 && waiting.elapsed() < NUMBERING_WAIT {
        tokio::time::sleep(NUMBERING_POLL).await;
        unnumbered = sqlx::query_scalar::<_, i64>(UNNUMBERED)
            .fetch_one(pool)
            .await?;
    }
    let all_numbered_after = (unnumbered == 0).then(|| waiting.elapsed());
    let lag = sqlx::query_as::<_, Lag>(LAG)
        .bind(paid.to_vec())
        .fetch_one(pool)
        .await?;
    let (series_years, gapless) = sqlx::query_as::<_, (i64, i64)>(GAPLESS)
        .fetch_one(pool)
        .await?;
    Ok(Receipts {
        paid: paid.len(),
        all_numbered_after,
        unnumbered,
        lag,
        series_years,
        gapless,
    })
}

// The report.

fn report_round(
    transcript: &mut Transcript,
    number: usize,
    billers: usize,
    spread: &Measured,
    hot: &Measured,
) {
    transcript.say(format!("round {number}:"));
    transcript.say(RUN_HEADER);
    report_run(
        transcript,
        &format!("(a) bills, {billers} billers"),
        &spread.run,
    );
    report_run(transcript, "(b) bills, one biller", &hot.run);
    let ratio = hot_spread(spread, hot);
    transcript.say(format!(
        "  hot/spread (b)/(a) {ratio:.2}; goal >= {GOAL_RATIO}: {}",
        verdict(ratio >= GOAL_RATIO)
    ));
    report_receipts(transcript, "(a)", &spread.receipts);
    report_receipts(transcript, "(b)", &hot.receipts);
}

fn report_receipts(transcript: &mut Transcript, name: &str, receipts: &Receipts) {
    let waited = match receipts.all_numbered_after {
        Some(after) => format!(
            "none left unnumbered {:.2} s after the run",
            after.as_secs_f64()
        ),
        None => format!(
            "{} STILL UNNUMBERED {} s after the run",
            receipts.unnumbered,
            NUMBERING_WAIT.as_secs()
        ),
    };
    let lag = &receipts.lag;
    transcript.say(format!(
        "  receipts of {name}: {} of {} paid bills, {} numbered; {waited}",
        lag.found, receipts.paid, lag.numbered
    ));
    transcript.say(format!(
        "    numbering lag (issued_at - paid_at): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; goal \
         every receipt numbered within {} s: {}",
        ms(lag.p50_s),
        ms(lag.p99_s),
        ms(lag.max_s),
        GOAL_LAG.as_secs(),
        verdict(receipts.numbered_in_time())
    ));
    transcript.say(format!(
        "    gapless: {} ({} of {} series-years numbered 1 to their count)",
        yes_no(receipts.all_gapless()),
        receipts.gapless,
        receipts.series_years
    ));
}

fn report_summary(transcript: &mut Transcript, results: &[(Measured, Measured)]) {
    let ratios: Vec<String> = results
        .iter()
        .map(|(spread, hot)| format!("{:.2}", hot_spread(spread, hot)))
        .collect();
    let ratios_met = results
        .iter()
        .all(|(spread, hot)| hot_spread(spread, hot) >= GOAL_RATIO);
    let measured = || results.iter().flat_map(|(spread, hot)| [spread, hot]);
    let lag_max_s = measured()
        .filter_map(|m| m.receipts.lag.max_s)
        .fold(0.0, f64::max);
    transcript.say(format!(
        "summary: hot/spread per round {} (goal >= {GOAL_RATIO} in every round: {}); numbering \
         lag max {:.1} ms (goal within {} s in every run: {}); gapless after every run: {}",
        ratios.join(", "),
        verdict(ratios_met),
        lag_max_s * 1000.0,
        GOAL_LAG.as_secs(),
        verdict(measured().all(|m| m.receipts.numbered_in_time())),
        yes_no(measured().all(|m| m.receipts.all_gapless()))
    ));
}

/// (b)'s bills paid per second over (a)'s.
fn hot_spread(spread: &Measured, hot: &Measured) -> f64 {
    hot.run.ok_per_second() / spread.run.ok_per_second()
}

/// Seconds in milliseconds (NaN for none).
fn ms(seconds: Option<f64>) -> f64 {
    seconds.map_or(f64::NAN, |s| s * 1000.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}
