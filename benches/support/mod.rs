//! What the benchmarks share: their settings from the environment, a fresh database, funded
//! wallets, pgbench's TPC-B to compare against, and the server binary as a child process with
//! its resident memory. Each benchmark is its own crate and uses only part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

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
