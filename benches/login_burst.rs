//! Memory under a login burst. The real server binary runs as a child process, alone, on a
//! fresh database; it takes 100 registrations 8 at a time, then 100 logins 64 at a time, over
//! loopback, and its resident memory is read from /proc/<pid>/status: the peak (VmHWM) and
//! what it keeps after the burst (VmRSS). Every Argon2id hash holds 19 MiB; with the hashes
//! unbounded the server peaked at 2.1 GB and stayed there. The goal is a peak under 256 MiB.
//!
//! Run: `cargo bench --bench login_burst` (BENCH_USERS, default 100; BENCH_REGISTER_AT_ONCE,
//! default 8; BENCH_LOGIN_AT_ONCE, default 64; BENCH_SERVER_LOG=1 shows the server's log).
//! Linux only (it reads /proc). Needs PostgreSQL on 127.0.0.1:5432. The server is the
//! `civicpay` binary the same command builds (target/release/civicpay; BENCH_SERVER_BIN
//! overrides it); it inherits the environment, so CIVICPAY_PASSWORD_HASHES_AT_ONCE and the
//! other settings apply to it as usual.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;
use serde_json::json;

mod support;
use support::{Memory, SERVER, Server, client_address, env_number, fresh_database, sandbox_code};

const BENCH_DB: &str = "civicpay_bench_login_burst";
const PASSWORD: &str = "bench-password-2026";
const GOAL_MIB: u64 = 256;
/// How long memory is left to settle after the burst before it is read again.
const SETTLE: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users = env_number("BENCH_USERS", 100).clamp(1, 10_000) as usize;
    let register_at_once = env_number("BENCH_REGISTER_AT_ONCE", 8).clamp(1, 1_000) as usize;
    let login_at_once = env_number("BENCH_LOGIN_AT_ONCE", 64).clamp(1, 1_000) as usize;

    fresh_database(BENCH_DB, 1).await?.close().await;
    let mut server = Server::start(&format!("{SERVER}/{BENCH_DB}"), &[], &[])?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(login_at_once.max(register_at_once))
        .timeout(Duration::from_secs(60))
        .build()?;
    server.wait_until_ready(&client).await?;
    let sampler = Sampler::start(server.pid());
    let idle = Memory::of(server.pid())?;
    let hashes_at_once = std::env::var("CIVICPAY_PASSWORD_HASHES_AT_ONCE").unwrap_or_else(|_| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("{cores} (one per core)")
    });
    println!(
        "server pid {} started: resident {} MiB (peak so far {} MiB)",
        server.pid(),
        idle.rss_mib,
        idle.hwm_mib
    );
    println!("password hashes at once: {hashes_at_once}; {users} users");
    println!(
        "phase                 requests  at_once  seconds   ok  503  other  peak_MiB  now_MiB"
    );

    let started = Instant::now();
    let registrations: Vec<(usize, Outcome)> = stream::iter(0..users)
        .map(|n| {
            let client = client.clone();
            let base = server.base.clone();
            async move { (n, register(&client, &base, n).await) }
        })
        .buffer_unordered(register_at_once)
        .collect()
        .await;
    let registered: Vec<usize> = registrations
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Outcome::Ok))
        .map(|(n, _)| *n)
        .collect();
    let outcomes: Vec<Outcome> = registrations.into_iter().map(|(_, o)| o).collect();
    report(
        "registrations",
        register_at_once,
        started,
        &outcomes,
        &server,
    )?;

    if registered.is_empty() {
        anyhow::bail!("no registration succeeded: nothing to log in with");
    }
    let started = Instant::now();
    let logins: Vec<Outcome> = stream::iter(0..users)
        .map(|n| {
            let client = client.clone();
            let base = server.base.clone();
            let user = registered[n % registered.len()];
            async move { login(&client, &base, user).await }
        })
        .buffer_unordered(login_at_once)
        .collect()
        .await;
    report("logins", login_at_once, started, &logins, &server)?;

    tokio::time::sleep(SETTLE).await;
    let after = Memory::of(server.pid())?;
    let sampled_peak_mib = sampler.stop();
    println!(
        "after the burst (+{} s): resident {} MiB; peak {} MiB (sampled every 10 ms: {} MiB)",
        SETTLE.as_secs(),
        after.rss_mib,
        after.hwm_mib,
        sampled_peak_mib
    );
    let verdict = if after.hwm_mib < GOAL_MIB {
        "met"
    } else {
        "MISSED"
    };
    println!("goal: peak under {GOAL_MIB} MiB: {verdict}");
    Ok(())
}

/// How one request of the burst ended.
#[derive(Debug)]
enum Outcome {
    Ok,
    /// 503: no turn to hash within the wait.
    Busy,
    Other(String),
}

fn phone(n: usize) -> String {
    format!("0913{n:06}")
}

async fn register(client: &reqwest::Client, base: &str, n: usize) -> Outcome {
    match try_register(client, base, n).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Other(format!("registration {n}: {error:#}")),
    }
}

async fn try_register(client: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<Outcome> {
    let phone = phone(n);
    let sent = client
        .post(format!("{base}/v1/auth/otp"))
        .header("x-forwarded-for", client_address(n))
        .json(&json!({"phone": phone, "purpose": "register"}))
        .send()
        .await?;
    if sent.status() != reqwest::StatusCode::ACCEPTED {
        return Ok(Outcome::Other(format!(
            "one-time code for {phone}: {}",
            sent.status()
        )));
    }
    let code = sandbox_code(client, base, &phone).await?;
    let response = client
        .post(format!("{base}/v1/auth/register"))
        .header("x-forwarded-for", client_address(n))
        .json(&json!({"phone": phone, "otp": code, "full_name": "Người Thử", "password": PASSWORD}))
        .send()
        .await?;
    Ok(outcome_of(response, reqwest::StatusCode::CREATED).await)
}

async fn login(client: &reqwest::Client, base: &str, n: usize) -> Outcome {
    let sent = client
        .post(format!("{base}/v1/auth/login"))
        .header("x-forwarded-for", client_address(n))
        .json(&json!({"phone": phone(n), "password": PASSWORD}))
        .send()
        .await;
    match sent {
        Ok(response) => outcome_of(response, reqwest::StatusCode::OK).await,
        Err(error) => Outcome::Other(format!("login {n}: {error}")),
    }
}

async fn outcome_of(response: reqwest::Response, success: reqwest::StatusCode) -> Outcome {
    match response.status() {
        status if status == success => Outcome::Ok,
        reqwest::StatusCode::SERVICE_UNAVAILABLE => Outcome::Busy,
        status => Outcome::Other(format!(
            "{status}: {}",
            response.text().await.unwrap_or_default()
        )),
    }
}

fn report(
    phase: &str,
    at_once: usize,
    started: Instant,
    outcomes: &[Outcome],
    server: &Server,
) -> anyhow::Result<()> {
    let memory = Memory::of(server.pid())?;
    let ok = outcomes.iter().filter(|o| matches!(o, Outcome::Ok)).count();
    let busy = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Busy))
        .count();
    let mut others: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in outcomes {
        if let Outcome::Other(what) = outcome {
            *others.entry(what.as_str()).or_default() += 1;
        }
    }
    println!(
        "{phase:<20}  {:>8}  {at_once:>7}  {:>7.1}  {ok:>3}  {busy:>3}  {:>5}  {:>8}  {:>7}",
        outcomes.len(),
        started.elapsed().as_secs_f64(),
        outcomes.len() - ok - busy,
        memory.hwm_mib,
        memory.rss_mib
    );
    // The first few other answers, to tell what went wrong.
    for (what, count) in others.iter().take(5) {
        eprintln!("  {count} × {what}");
    }
    Ok(())
}

/// Reads the resident memory every 10 ms on a thread of its own, keeping the largest: a
/// check on VmHWM, which the kernel keeps exactly.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak_mib: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_mib = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak_mib) = (stop.clone(), peak_mib.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match Memory::of(pid) {
                        Ok(memory) => {
                            peak_mib.fetch_max(memory.rss_mib, Ordering::Relaxed);
                        }
                        Err(_) => return,
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Sampler {
            stop,
            peak_mib,
            thread,
        }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak_mib.load(Ordering::Relaxed)
    }
}
