//! What the benchmarks share: their settings from the environment, a fresh database, funded
//! wallets, pgbench's TPC-B to compare against, and the server binary as a child process with
//! its resident memory; for those that drive the server over HTTP, citizens seeded through its
//! API, the closed loop of TASKS connections with its latencies, and the report written to
//! bench/results/. Each benchmark is its own crate and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use tokio::task::JoinSet;
use uuid::Uuid;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// The database pgbench's TPC-B runs in.
pub const PGBENCH_DB: &str = "civicpay_pgbench";
/// How long the server may take to start (migrations and demo data included), in 50 ms polls.
const READY_POLLS: u32 = 600;

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How the benchmarks that compare themselves with pgbench interleave their runs: the machine
/// drifts ±20 % from minute to minute, so only runs close in time are compared.
pub struct Rounds {
    /// BENCH_SECONDS, default 15: the length of every run, pgbench's included.
    pub seconds: u64,
    /// BENCH_ROUNDS, default 2.
    pub rounds: u64,
}

impl Rounds {
    pub fn from_env() -> Rounds {
        Rounds {
            seconds: env_number("BENCH_SECONDS", 15).clamp(1, 600),
            rounds: env_number("BENCH_ROUNDS", 2).clamp(1, 100),
        }
    }
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

/// A fresh `PGBENCH_DB` initialised for TPC-B at scale 10, over TCP to 127.0.0.1.
pub fn pgbench_init() -> anyhow::Result<()> {
    let _ = Command::new("dropdb")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "--if-exists",
            PGBENCH_DB,
        ])
        .status();
    let created = Command::new("createdb")
        .args(["-h", "127.0.0.1", "-U", "postgres", PGBENCH_DB])
        .status()?;
    anyhow::ensure!(created.success(), "createdb {PGBENCH_DB} failed");
    let init = Command::new("pgbench")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-i",
            "-s",
            "10",
            "-q",
            PGBENCH_DB,
        ])
        .output()?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    Ok(())
}

/// TPC-B at scale 10 with 32 clients for `seconds`; its tps.
pub fn pgbench_run(seconds: u64) -> anyhow::Result<f64> {
    let output = Command::new("pgbench")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-c",
            "32",
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            PGBENCH_DB,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {text}"))
}

/// The `civicpay` binary the bench command builds (target/release/civicpay), or
/// BENCH_SERVER_BIN.
pub fn server_binary() -> String {
    std::env::var("BENCH_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_civicpay").to_owned())
}

/// The server binary as a child process; killed when this is dropped, whatever happened.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// `civicpay serve` with `args`, in development mode on `database_url` and a free loopback
    /// port, believing the loopback "proxy" so that each simulated user comes with an address
    /// of its own (`client_address`), with no metrics listener, and with `env` on top. The
    /// rest of the environment is inherited, so every other CIVICPAY_ setting applies as
    /// usual. BENCH_SERVER_LOG=1 shows its log.
    pub fn start(
        database_url: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        let binary = server_binary();
        // A free loopback port: taken, read and let go for the server to bind.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let bind = format!("127.0.0.1:{port}");
        let show_log = std::env::var_os("BENCH_SERVER_LOG").is_some();
        let output = || {
            if show_log {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .args(args)
            .env("CIVICPAY_MODE", "development")
            .env("CIVICPAY_DATABASE_URL", database_url)
            .env("CIVICPAY_BIND", &bind)
            .env("CIVICPAY_PUBLIC_URL", format!("http://{bind}"))
            .env("CIVICPAY_TRUSTED_PROXIES", "127.0.0.1")
            // Each simulated user comes through the loopback "proxy" with its own address.
            .env("CIVICPAY_DEV_ALLOW_PUBLIC", "on")
            .env("CIVICPAY_METRICS_BIND", "off");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {binary}: {e}"))?;
        Ok(Server {
            child,
            base: format!("http://{bind}"),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn wait_until_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        for _ in 0..READY_POLLS {
            let ready = client
                .get(format!("{}/health/ready", self.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the server exited at start with {status} (BENCH_SERVER_LOG=1 shows why)"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the server was not ready within 30 s")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address simulated user `n` comes from (through the loopback proxy the server
/// believes), so the per-address limit on one-time codes does not stop the registrations.
pub fn client_address(n: usize) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// The newest one-time code the development SMS sandbox "sent" to `phone`.
pub async fn sandbox_code(
    client: &reqwest::Client,
    base: &str,
    phone: &str,
) -> anyhow::Result<String> {
    let messages: serde_json::Value = client
        .get(format!("{base}/sandbox/sms/{phone}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let code = messages["data"][0]["text"]
        .as_str()
        .and_then(|text| {
            text.split(|c: char| !c.is_ascii_digit())
                .find(|part| part.len() == 6)
        })
        .ok_or_else(|| anyhow::anyhow!("no code in the sandbox for {phone}"))?;
    Ok(code.to_owned())
}

/// Resident memory of a process, from /proc/<pid>/status (Linux only).
pub struct Memory {
    pub rss_mib: u64,
    /// The peak so far (VmHWM), which the kernel keeps exactly.
    pub hwm_mib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| anyhow::anyhow!("reading /proc/{pid}/status: {e}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let kib = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|number| number.trim().parse::<u64>().ok())
                .ok_or_else(|| anyhow::anyhow!("no {name} in /proc/{pid}/status"))?;
            Ok(kib.div_ceil(1024))
        };
        Ok(Memory {
            rss_mib: field("VmRSS:")?,
            hwm_mib: field("VmHWM:")?,
        })
    }
}

impl Server {
    /// SIGKILL, as a crash would do it: no graceful shutdown, whatever was in flight is cut
    /// off where it stood.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

// What the benchmarks that drive the server over HTTP share: its citizens, seeded through the
// public API, the closed loop of TASKS connections, and the report.

/// The load's connections: each one a back-to-back client in the closed loops.
pub const TASKS: usize = 32;
/// The PIN every seeded citizen sets.
pub const PIN: &str = "482916";
pub const PASSWORD: &str = "bench-password-2026";
/// The demo admin (README, "Demo accounts"), who onboards merchants and billers.
pub const ADMIN: (&str, &str) = ("0900000001", "admin-demo-2026");
/// Registrations at once: each hashes a password.
pub const REGISTER_AT_ONCE: usize = 4;
/// Other seeding requests, and funding processes, at once.
pub const SEED_AT_ONCE: usize = 8;

/// The number of cores, the CPU and PostgreSQL's version, for the results file.
pub async fn describe_machine(pool: &PgPool) -> anyhow::Result<String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let postgres: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(pool)
        .await?;
    Ok(format!(
        "machine: nproc {cores}, CPU {}, PostgreSQL {postgres}",
        cpu_model()
    ))
}

pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| {
            rest.trim_start_matches(|c: char| c == ':' || c.is_whitespace())
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A signed-in citizen with a verified, funded wallet and a PIN.
pub struct Citizen {
    pub phone: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: Instant,
}

#[derive(Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

impl Citizen {
    pub fn signed_in(phone: String, tokens: TokenPair) -> Citizen {
        Citizen {
            phone,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: Instant::now() + Duration::from_secs(tokens.expires_in),
        }
    }
}

/// `count` citizens registered with the code texted to them, verified and with a PIN,
/// REGISTER_AT_ONCE at a time, then funded with `funds` đ each by `civicpay ledger fund` on
/// `database_url`; in no particular order.
pub async fn seed_citizens(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    count: usize,
    funds: i64,
) -> anyhow::Result<Vec<Citizen>> {
    let started = Instant::now();
    let citizens = in_parallel(0..count, REGISTER_AT_ONCE, |n| {
        register_citizen(client, base, n)
    })
    .await?;
    let elapsed_s = started.elapsed().as_secs_f64();
    eprintln!(
        "{} citizens registered and verified with a PIN in {elapsed_s:.0} s",
        citizens.len()
    );
    let phones: Vec<String> = citizens.iter().map(|c| c.phone.clone()).collect();
    let database_url = database_url.to_owned();
    tokio::task::spawn_blocking(move || fund_citizens(&database_url, &phones, funds)).await??;
    let elapsed_s = started.elapsed().as_secs_f64();
    eprintln!("funded with {funds} đ each by {elapsed_s:.0} s");
    Ok(citizens)
}

/// `work` for every item, `at_once` at a time; the results in no particular order, or the
/// first error.
pub async fn in_parallel<I, T, Fut>(
    items: I,
    at_once: usize,
    work: impl FnMut(I::Item) -> Fut,
) -> anyhow::Result<Vec<T>>
where
    I: IntoIterator,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let results: Vec<anyhow::Result<T>> = stream::iter(items)
        .map(work)
        .buffer_unordered(at_once)
        .collect()
        .await;
    results.into_iter().collect()
}

/// `response` if it has `status`; otherwise an error naming `what`, with the status and body.
pub async fn expect(
    response: reqwest::Response,
    status: StatusCode,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let got = response.status();
    if got == status {
        return Ok(response);
    }
    anyhow::bail!(
        "{what}: {got} {}",
        response.text().await.unwrap_or_default()
    )
}

/// Citizen `n`: registered with the code texted to its phone (from an address of its own, so
/// the per-address limit on codes does not stop it), its wallet verified with a national ID
/// of its own, its PIN set.
pub async fn register_citizen(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> anyhow::Result<Citizen> {
    let phone = format!("0914{n:06}");
    let from = client_address(n);
    let texted = client
        .post(format!("{base}/v1/auth/otp"))
        .header("x-forwarded-for", from.as_str())
        .json(&json!({"phone": phone, "purpose": "register"}))
        .send()
        .await?;
    expect(texted, StatusCode::ACCEPTED, "a registration code").await?;
    let code = sandbox_code(client, base, &phone).await?;
    let registered = client
        .post(format!("{base}/v1/auth/register"))
        .header("x-forwarded-for", from.as_str())
        .json(&json!({"phone": phone, "otp": code, "full_name": "Người Thử", "password": PASSWORD}))
        .send()
        .await?;
    let tokens: TokenPair = expect(registered, StatusCode::CREATED, "a registration")
        .await?
        .json()
        .await?;
    let citizen = Citizen::signed_in(phone, tokens);
    let verified = client
        .post(format!("{base}/v1/wallet/verification"))
        .bearer_auth(&citizen.access_token)
        .json(&json!({"national_id": format!("046200{n:06}")}))
        .send()
        .await?;
    expect(verified, StatusCode::OK, "a wallet verification").await?;
    let pin_set = client
        .put(format!("{base}/v1/wallet/pin"))
        .bearer_auth(&citizen.access_token)
        .json(&json!({"pin": PIN}))
        .send()
        .await?;
    expect(pin_set, StatusCode::NO_CONTENT, "a PIN").await?;
    Ok(citizen)
}

/// `civicpay ledger fund` with `funds` đ once per citizen on `database_url`, SEED_AT_ONCE
/// processes at a time, each waited for on a thread of its own.
pub fn fund_citizens(database_url: &str, phones: &[String], funds: i64) -> anyhow::Result<()> {
    let next = &AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SEED_AT_ONCE)
            .map(|_| scope.spawn(move || fund_in_turn(next, phones, database_url, funds)))
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a funding thread panicked")))
        })
    })
}

/// Funds the next citizen nobody has taken yet, until none is left.
fn fund_in_turn(
    next: &AtomicUsize,
    phones: &[String],
    database_url: &str,
    funds: i64,
) -> anyhow::Result<()> {
    let amount = funds.to_string();
    while let Some(phone) = phones.get(next.fetch_add(1, Ordering::Relaxed)) {
        let funded = Command::new(server_binary())
            .args([
                "ledger",
                "fund",
                "--phone",
                phone.as_str(),
                "--amount",
                amount.as_str(),
            ])
            .env("CIVICPAY_MODE", "development")
            .env("CIVICPAY_DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .output()?;
        anyhow::ensure!(
            funded.status.success(),
            "ledger fund --phone {phone}: {}",
            String::from_utf8_lossy(&funded.stderr)
        );
    }
    Ok(())
}

/// An access token of `(phone, password)`.
pub async fn log_in(
    client: &reqwest::Client,
    base: &str,
    (phone, password): (&str, &str),
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"phone": phone, "password": password}))
        .send()
        .await?;
    let tokens: TokenPair = expect(response, StatusCode::OK, "a login")
        .await?
        .json()
        .await?;
    Ok(tokens.access_token)
}

/// A citizen's new session: a refresh costs no password hash.
pub async fn refreshed(
    client: &reqwest::Client,
    base: &str,
    citizen: &Citizen,
) -> anyhow::Result<Citizen> {
    let response = client
        .post(format!("{base}/v1/auth/refresh"))
        .json(&json!({"refresh_token": citizen.refresh_token}))
        .send()
        .await?;
    let tokens: TokenPair = expect(response, StatusCode::OK, "a refresh")
        .await?
        .json()
        .await?;
    Ok(Citizen::signed_in(citizen.phone.clone(), tokens))
}

/// Access tokens last 15 minutes: every citizen gets a new session when the first of them
/// would run out within `needed`.
pub async fn renew_sessions(
    client: &reqwest::Client,
    base: &str,
    citizens: &mut Arc<Vec<Citizen>>,
    needed: Duration,
) -> anyhow::Result<()> {
    let first_expiry = citizens.iter().map(|c| c.expires_at).min();
    if first_expiry.is_some_and(|at| at > Instant::now() + needed) {
        return Ok(());
    }
    let fresh = in_parallel(citizens.iter(), SEED_AT_ONCE, |citizen| {
        refreshed(client, base, citizen)
    })
    .await?;
    *citizens = Arc::new(fresh);
    Ok(())
}

// The load.

/// How one request ended.
pub enum Outcome {
    /// A success; for a payment, what it paid (an order, a bill).
    Ok(Option<Uuid>),
    Failed(String),
    /// Nothing was sent: what the load sends was prepared beforehand and has run out. The
    /// connection stops.
    Exhausted,
}

/// A kind of request the load sends: the `n`th one of connection `task`.
pub trait Load: Send + Sync + 'static {
    fn send(&self, task: usize, n: u64) -> impl Future<Output = Outcome> + Send;
}

/// The citizens are dealt out to the connections like cards (task t gets citizens t, t + 32,
/// t + 64, …), so no two connections pay from one wallet at once; each takes its own in turn.
pub fn citizen_of(citizens: &[Citizen], task: usize, n: u64) -> &Citizen {
    let own = citizens.len().saturating_sub(task).div_ceil(TASKS);
    if own == 0 {
        return &citizens[task % citizens.len()];
    }
    &citizens[task + TASKS * (n as usize % own)]
}

/// What a request that did not succeed said.
pub async fn failure(sent: reqwest::Result<reqwest::Response>) -> Outcome {
    match sent {
        Ok(response) => {
            let status = response.status();
            Outcome::Failed(format!(
                "{status} {}",
                response.text().await.unwrap_or_default()
            ))
        }
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

/// The outcomes of a run's requests, as they come in.
#[derive(Default)]
pub struct Tally {
    /// Of the successes only.
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// What the run's payments paid (orders, bills).
    pub paid: Vec<Uuid>,
}

impl Tally {
    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        match outcome {
            Outcome::Ok(paid) => {
                self.latencies.push(latency);
                self.paid.extend(paid);
            }
            Outcome::Failed(why) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(why);
                }
            }
            Outcome::Exhausted => {}
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.paid.extend(other.paid);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// A finished run: its tally, latencies sorted, and when it ran.
pub struct Run {
    pub tally: Tally,
    pub started: Instant,
    pub elapsed: Duration,
}

impl Run {
    pub fn finished(mut tally: Tally, started: Instant) -> Run {
        tally.latencies.sort_unstable();
        Run {
            tally,
            started,
            elapsed: started.elapsed(),
        }
    }

    pub fn ok_per_second(&self) -> f64 {
        self.tally.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ms_at(&self, quantile: f64) -> f64 {
        quantile_ms(&self.tally.latencies, quantile)
    }
}

pub fn quantile_ms(sorted: &[Duration], quantile: f64) -> f64 {
    let index = ((sorted.len() as f64 * quantile) as usize).min(sorted.len().saturating_sub(1));
    sorted
        .get(index)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// TASKS back-to-back clients sending `load` for `seconds`, each at most its share of
/// `max_requests`, and each stopping early when the load is exhausted.
pub async fn closed_loop(load: impl Load, seconds: u64, max_requests: u64) -> anyhow::Result<Run> {
    let load = Arc::new(load);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut clients = JoinSet::new();
    for task in 0..TASKS {
        let load = load.clone();
        clients.spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0;
            while Instant::now() < deadline && n < max_requests / TASKS as u64 {
                let sent = Instant::now();
                let outcome = load.send(task, n).await;
                if matches!(outcome, Outcome::Exhausted) {
                    break;
                }
                tally.record(sent.elapsed(), outcome);
                n += 1;
            }
            tally
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.merge(done?);
    }
    Ok(Run::finished(tally, started))
}

// The report.

/// What the benchmark prints, kept to be written to bench/results/ at the end.
#[derive(Default)]
pub struct Transcript(String);

impl Transcript {
    pub fn say(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        println!("{line}");
        self.0.push_str(line);
        self.0.push('\n');
    }
}

/// The columns `report_run` fills in.
pub const RUN_HEADER: &str = "  run                          ok/s   p50_ms   p99_ms   errors";

pub fn report_run(transcript: &mut Transcript, name: &str, run: &Run) {
    transcript.say(format!(
        "  {name:<27} {:>7.1}  {:>7.2}  {:>7.2}  {:>7}",
        run.ok_per_second(),
        run.ms_at(0.50),
        run.ms_at(0.99),
        run.tally.errors
    ));
    if let Some(error) = &run.tally.first_error {
        let start: String = error.chars().take(200).collect();
        transcript.say(format!("    first error: {start}"));
    }
}

/// Writes the commit, the date and the transcript (which starts with the machine) to
/// bench/results/<name>-<UTC date-time>-<commit>.txt.
pub fn save_results(name: &str, transcript: &Transcript) -> anyhow::Result<PathBuf> {
    let commit = current_commit();
    let now = Utc::now();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!(
        "{name}-{}-{commit}.txt",
        now.format("%Y%m%dT%H%M%SZ")
    ));
    let text = format!(
        "commit {commit}\ndate {}\n{}",
        now.to_rfc3339(),
        transcript.0
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

pub fn current_commit() -> String {
    Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The application on `pool` served in this process on a free loopback port, with the bench's
/// keys; answers its base URL. For read benchmarks, which need no separate server process.
pub async fn in_process_server(pool: &PgPool, pepper: &[u8]) -> anyhow::Result<String> {
    use civicpay::config::Config;
    let mut config = Config::from_env()?;
    config.auth.jwt_secret = Some("bench-signing-key-0123456789abcdef-0123456789".into());
    config.wallet.pin_pepper = Some(String::from_utf8(pepper.to_vec())?);
    // 32 bytes, base64url: `bench-receipt-signing-key-012345`.
    config.receipts.signing_key = Some("YmVuY2gtcmVjZWlwdC1zaWduaW5nLWtleS0wMTIzNDU".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = civicpay::router::router(civicpay::state::AppState::new(pool.clone(), &config));
    tokio::spawn(civicpay::server::serve(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    Ok(base)
}

/// A staff member's access token, logged in with phone and password.
pub async fn staff_token(
    client: &reqwest::Client,
    base: &str,
    (phone, password): (&str, &str),
) -> anyhow::Result<String> {
    let tokens: serde_json::Value = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"phone": phone, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}
