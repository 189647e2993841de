//! Crash safety under load (issue 16, item 4): the server killed with SIGKILL in the middle of
//! static-QR payments, BENCH_ROUNDS times in a row on one database, loses nothing, doubles
//! nothing and leaves nothing half done. The server is the real binary in a process of its own,
//! as deployed (`serve --demo`, its pool of 16, its callback workers), on a fresh
//! `civicpay_bench_crash`. This process seeds it through the public API as benches/payments.rs
//! does: BENCH_CITIZENS citizens (default 64) register with the code texted to them, verify
//! their wallet, set a PIN and are funded by `civicpay ledger fund`; the demo admin onboards
//! BENCH_MERCHANTS merchants (default 20) subscribed to `payment.succeeded`, their callbacks sent
//! to a receiver on loopback in this process, which keeps running across the restarts.
//!
//! Each round, 32 clients pay 1,000 đ by static QR (`POST /v1/merchants/{code}/pay`), each
//! payment under a fresh idempotency key, until the server is killed at a random moment 1 to
//! 4 s in; every request is kept with how it ended: answered 2xx with its order, 4xx, 5xx, or
//! no answer at all. The server is started again on the same database, and then, each a hard
//! failure that stops the run:
//!
//! (a) `civicpay ledger verify` passes;
//! (b) every payment answered 2xx has its order paid, with one payment entry in the ledger, one
//!     `payment.succeeded` event in the outbox, and its idempotency key storing that answer;
//! (c) every unanswered payment is wholly there (its key stores a 201 whose order is paid,
//!     entered and announced once) or wholly absent: every order of the bench's merchants is
//!     paid and stored under exactly one key, and every wallet holds its funding less 1,000 đ
//!     per order it paid, so a payment whose key is absent left no order, entry or debit;
//! (d) retrying every unanswered payment with its key, body, PIN and token gets what its key
//!     stored, replayed (`Idempotent-Replayed: true`), or, for one that left no trace, a 201
//!     that pays it afresh; the paid orders rise by exactly the payments run afresh, each key
//!     maps to one order, and (a) to (c) hold again;
//! (e) within 30 s every paid order, the retried ones included, has had its `payment.succeeded`
//!     callback arrive at least once, and an order called back more than once always came with
//!     the same `webhook-id`. The callback lease is 5 s here (default a minute), so the callbacks
//!     a killed worker held are taken over within the wait.
//!
//! Per kill it reports the requests answered 2xx, 4xx and 5xx and those unanswered, how many of
//! the unanswered (and 5xx) were found committed or absent, the retries replayed or run afresh,
//! the callbacks outstanding after the restart, the seconds from the restart until all had arrived,
//! and the orders called back more than once so far; then a summary. The report, with the
//! failure if one was found, goes to stdout and to
//! bench/results/crash_safety-<UTC date-time>-<commit>.txt.
//!
//! Run: `cargo bench --bench crash_safety` (BENCH_ROUNDS, default 5 kills; BENCH_CITIZENS, at
//! least 32; BENCH_MERCHANTS; BENCH_SERVER_LOG=1 shows the server's log; BENCH_SERVER_BIN runs
//! another binary). Linux (the kill is a Unix signal). Needs PostgreSQL on 127.0.0.1:5432;
//! takes a minute or two.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::Utc;
use futures_util::{StreamExt, stream};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use uuid::Uuid;

mod support;
use support::{
    SERVER, Server, client_address, env_number, fresh_database, sandbox_code, server_binary,
};

const BENCH_DB: &str = "civicpay_bench_crash";
/// The load's connections, each a back-to-back client.
const TASKS: usize = 32;
const POOL_SIZE: u32 = 16;
const CALLBACK_WORKERS: u32 = 64;
/// A killed worker's claimed callbacks are taken over when their lease runs out: 5 s instead
/// of the default minute keeps that within CALLBACK_WAIT. The lease must outlast the timeout,
/// and the receiver here answers at once.
const CALLBACK_LEASE_MS: u64 = 5_000;
const CALLBACK_TIMEOUT_MS: u64 = 2_000;
/// What each payment costs, in đồng.
const AMOUNT: i64 = 1_000;
/// What each citizen is funded with: far more than the rounds spend, within the monthly limit.
const FUNDS: i64 = 10_000_000;
const PIN: &str = "482916";
const PASSWORD: &str = "bench-password-2026";
/// The demo admin (README, "Demo accounts"), who onboards the merchants.
const ADMIN: (&str, &str) = ("0900000001", "admin-demo-2026");
/// The bench's merchants' codes start with it, which is how their orders are found.
const MERCHANT_PREFIX: &str = "CRASH";
/// Registrations at once: each hashes a password.
const REGISTER_AT_ONCE: usize = 4;
/// Other seeding requests, and funding processes, at once.
const SEED_AT_ONCE: usize = 8;
/// The kill comes at a random moment between these, in milliseconds after the load starts.
const KILL_AFTER_MS: (u64, u64) = (1_000, 4_000);
/// A client stops after this many requests or this long, whatever happens to the kill.
const MAX_REQUESTS_PER_TASK: u64 = 10_000;
const LOAD_LIMIT: Duration = Duration::from_secs(30);
/// The longest any request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, after the retries, every paid order's callback may take to arrive, and how
/// often it is looked for.
const CALLBACK_WAIT: Duration = Duration::from_secs(30);
const CALLBACK_POLL: Duration = Duration::from_millis(100);
/// A session is renewed before a round when it would run out within this, far longer than a
/// round, so a retry still carries the token of the request it repeats.
const SESSION_MARGIN: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    let pool = fresh_database(BENCH_DB, 2).await?;
    let callbacks = Callbacks::default();
    let callback_url = start_receiver(callbacks.clone()).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2 * TASKS)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut server = start_server()?;
    server.wait_until_ready(&client).await?;
    let (citizens, merchants) = seed(&client, &server.base, &settings, &callback_url).await?;

    let mut transcript = Transcript::default();
    transcript.say(format!(
        "{} citizens funded with {FUNDS} đ each, {} merchants; {TASKS} connections paying \
         {AMOUNT} đ by static QR; server pool of {POOL_SIZE}, {CALLBACK_WORKERS} callback workers, \
         callback lease {CALLBACK_LEASE_MS} ms; {} kills",
        citizens.len(),
        merchants.len(),
        settings.rounds
    ));
    let mut bench = Bench {
        client,
        pool,
        server,
        citizens: Arc::new(citizens),
        merchants: Arc::new(merchants),
        callbacks,
    };
    let outcome = bench
        .kill_repeatedly(&mut transcript, settings.rounds)
        .await;
    if let Err(error) = &outcome {
        transcript.say(format!("FAILED: {error:#}"));
    }
    let path = save_results(&transcript)?;
    println!("written to {}", path.display());
    outcome
}

struct Settings {
    /// BENCH_CITIZENS, default 64: at least one per connection.
    citizens: usize,
    /// BENCH_MERCHANTS, default 20.
    merchants: usize,
    /// BENCH_ROUNDS, default 5: the kills in a row.
    rounds: u64,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            citizens: env_number("BENCH_CITIZENS", 64).clamp(TASKS as u64, 10_000) as usize,
            merchants: env_number("BENCH_MERCHANTS", 20).clamp(1, 1_000) as usize,
            rounds: env_number("BENCH_ROUNDS", 5).clamp(1, 100),
        }
    }
}

fn database_url() -> String {
    format!("{SERVER}/{BENCH_DB}")
}

/// `civicpay serve --demo` with the pool and callback workers of a deployment, the short
/// callback lease above, and a cap on one-time codes that lets every citizen be texted one.
fn start_server() -> anyhow::Result<Server> {
    Server::start(
        &database_url(),
        &["--demo"],
        &[
            ("CIVICPAY_DB_MAX_CONNECTIONS", POOL_SIZE.to_string()),
            ("CIVICPAY_CALLBACK_WORKERS", CALLBACK_WORKERS.to_string()),
            (
                "CIVICPAY_CALLBACK_TIMEOUT_MS",
                CALLBACK_TIMEOUT_MS.to_string(),
            ),
            ("CIVICPAY_CALLBACK_LEASE_MS", CALLBACK_LEASE_MS.to_string()),
            ("CIVICPAY_OTP_GLOBAL_HOURLY_CAP", "1000000".to_owned()),
        ],
    )
}

/// `civicpay ledger verify` on the bench's database: exit status 0, or the failure with what
/// it printed.
fn ledger_verify() -> anyhow::Result<()> {
    let output = Command::new(server_binary())
        .args(["ledger", "verify"])
        .env("CIVICPAY_MODE", "development")
        .env("CIVICPAY_DATABASE_URL", database_url())
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "civicpay ledger verify failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A kill's moment, at random within KILL_AFTER_MS, so it lands anywhere in a payment.
fn random_kill_delay() -> anyhow::Result<Duration> {
    let (from, to) = KILL_AFTER_MS;
    let random = getrandom::u64().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(Duration::from_millis(from + random % (to - from + 1)))
}

// The merchants' callback endpoint, up for the whole run.

/// Every `payment.succeeded` callback received, by order.
#[derive(Clone, Default)]
struct Callbacks(Arc<Mutex<HashMap<Uuid, Received>>>);

#[derive(Default)]
struct Received {
    times: u32,
    webhook_ids: HashSet<String>,
}

impl Callbacks {
    fn note(&self, order: Uuid, webhook_id: &str) {
        let mut received = self.0.lock().unwrap();
        let order = received.entry(order).or_default();
        order.times += 1;
        order.webhook_ids.insert(webhook_id.to_owned());
    }

    /// Those of `orders` not called back yet.
    fn missing(&self, orders: &[Uuid]) -> Vec<Uuid> {
        let received = self.0.lock().unwrap();
        orders
            .iter()
            .filter(|order| !received.contains_key(*order))
            .copied()
            .collect()
    }

    /// The orders called back more than once so far (callbacks are sent at least once), once
    /// it is checked that every order always came with the same `webhook-id`, by which a
    /// merchant recognises a repeat.
    fn repeated(&self) -> anyhow::Result<usize> {
        let received = self.0.lock().unwrap();
        for (order, callbacks) in received.iter() {
            anyhow::ensure!(
                callbacks.webhook_ids.len() == 1,
                "order {order} was called back under {} webhook-ids: {:?}",
                callbacks.webhook_ids.len(),
                callbacks.webhook_ids
            );
        }
        Ok(received.values().filter(|order| order.times > 1).count())
    }
}

/// A callback's envelope, as far as it is read here.
#[derive(Deserialize)]
struct Callback {
    #[serde(rename = "type")]
    event_type: String,
    data: Paid,
}

/// Every merchant's callback URL: an axum server on 127.0.0.1 in this process.
async fn start_receiver(callbacks: Callbacks) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/callbacks", listener.local_addr()?);
    let app = Router::new()
        .route("/callbacks", post(receive_callback))
        .with_state(callbacks);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// A callback without a `webhook-id` or an order is refused, so it stays undelivered and its
/// order is reported missing.
async fn receive_callback(
    State(callbacks): State<Callbacks>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok());
    match (webhook_id, serde_json::from_slice::<Callback>(&body)) {
        (Some(webhook_id), Ok(callback)) => {
            if callback.event_type == "payment.succeeded" {
                callbacks.note(callback.data.id, webhook_id);
            }
            StatusCode::OK
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

// Seeding, through the public API.

/// A signed-in citizen with a verified, funded wallet and a PIN.
struct Citizen {
    /// Its number, of which its phone, national ID and client address are made.
    n: usize,
    /// The `caller_id` of its idempotency keys.
    account_id: Uuid,
    access_token: String,
    refresh_token: String,
    expires_at: Instant,
}

#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct Me {
    id: Uuid,
}

impl Citizen {
    fn signed_in(n: usize, account_id: Uuid, tokens: TokenPair) -> Citizen {
        Citizen {
            n,
            account_id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: Instant::now() + Duration::from_secs(tokens.expires_in),
        }
    }
}

fn phone_of(n: usize) -> String {
    format!("0914{n:06}")
}

/// The citizens and the merchants' codes.
async fn seed(
    client: &reqwest::Client,
    base: &str,
    settings: &Settings,
    callback_url: &str,
) -> anyhow::Result<(Vec<Citizen>, Vec<String>)> {
    let started = Instant::now();
    let citizens = in_parallel(0..settings.citizens, REGISTER_AT_ONCE, |n| {
        register_citizen(client, base, n)
    })
    .await?;
    let phones: Vec<String> = citizens.iter().map(|c| phone_of(c.n)).collect();
    tokio::task::spawn_blocking(move || fund_citizens(&phones)).await??;
    let admin = log_in(client, base, ADMIN).await?;
    let merchants = in_parallel(0..settings.merchants, SEED_AT_ONCE, |n| {
        onboard_merchant(client, base, &admin, callback_url, n)
    })
    .await?;
    let elapsed_s = started.elapsed().as_secs_f64();
    eprintln!("seeded in {elapsed_s:.0} s");
    Ok((citizens, merchants))
}

/// `work` for every item, `at_once` at a time; the results in no particular order, or the
/// first error.
async fn in_parallel<I, T, Fut>(
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
async fn expect(
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
/// the per-address limit on codes does not stop it), its account id read, its wallet verified
/// with a national ID of its own, its PIN set.
async fn register_citizen(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> anyhow::Result<Citizen> {
    let phone = phone_of(n);
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
    let me = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await?;
    let me: Me = expect(me, StatusCode::OK, "the account")
        .await?
        .json()
        .await?;
    let citizen = Citizen::signed_in(n, me.id, tokens);
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

/// `civicpay ledger fund` once per citizen, SEED_AT_ONCE processes at a time, each waited for
/// on a thread of its own.
fn fund_citizens(phones: &[String]) -> anyhow::Result<()> {
    let next = &AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SEED_AT_ONCE)
            .map(|_| scope.spawn(move || fund_in_turn(next, phones)))
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a funding thread panicked")))
        })
    })
}

/// Funds the next citizen nobody has taken yet, until none is left.
fn fund_in_turn(next: &AtomicUsize, phones: &[String]) -> anyhow::Result<()> {
    let amount = FUNDS.to_string();
    let database_url = database_url();
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
            .env("CIVICPAY_DATABASE_URL", database_url.as_str())
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
async fn log_in(
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

/// Merchant `n`, onboarded by the admin with its `payment.succeeded` callbacks sent to
/// `callback_url`; its code.
async fn onboard_merchant(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    callback_url: &str,
    n: usize,
) -> anyhow::Result<String> {
    let code = format!("{MERCHANT_PREFIX}{n:04}");
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

/// A citizen's new session: a refresh costs no password hash.
async fn refreshed(
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
    Ok(Citizen::signed_in(citizen.n, citizen.account_id, tokens))
}

/// Access tokens last 15 minutes: every citizen gets a new session when the first of them
/// would run out within SESSION_MARGIN. Tokens survive a restart (in development the signing
/// key is kept in the database).
async fn renew_sessions(
    client: &reqwest::Client,
    base: &str,
    citizens: &mut Arc<Vec<Citizen>>,
) -> anyhow::Result<()> {
    let first_expiry = citizens.iter().map(|c| c.expires_at).min();
    if first_expiry.is_some_and(|at| at > Instant::now() + SESSION_MARGIN) {
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

/// One static-QR payment as sent, to be sent again the same way: its payer and merchant (by
/// their place in the round's lists) and its idempotency key.
#[derive(Clone)]
struct Payment {
    citizen: usize,
    merchant: usize,
    key: String,
}

/// How a payment request ended.
#[derive(Debug)]
enum Outcome {
    /// With the paid order's id.
    Answered2xx(Uuid),
    Answered4xx {
        status: u16,
        code: String,
    },
    /// Which rolls back its key with everything else (src/idempotency.rs), so it is checked
    /// and retried like an unanswered one.
    Answered5xx(u16),
    /// A connection error or timeout: the server died under it.
    NoAnswer,
}

/// An outcome, and whether it was a stored answer replayed.
struct Reply {
    outcome: Outcome,
    replayed: bool,
}

impl Reply {
    fn no_answer() -> Reply {
        Reply {
            outcome: Outcome::NoAnswer,
            replayed: false,
        }
    }
}

struct Request {
    payment: Payment,
    outcome: Outcome,
}

/// An order as a payment's answer and a callback's `data` carry it, as far as it is read here.
#[derive(Deserialize)]
struct Paid {
    id: Uuid,
}

/// Sends the round's payments.
struct Payer {
    client: reqwest::Client,
    citizens: Arc<Vec<Citizen>>,
    merchants: Arc<Vec<String>>,
}

impl Payer {
    /// The `n`th payment of client `task`: the citizens are dealt out to the clients like cards
    /// (task t gets citizens t, t + 32, …), so no two clients pay from one wallet at once, and
    /// the merchants are taken in turn.
    fn next_payment(&self, task: usize, n: u64) -> Payment {
        let own = self
            .citizens
            .len()
            .saturating_sub(task)
            .div_ceil(TASKS)
            .max(1);
        Payment {
            citizen: (task + TASKS * (n as usize % own)) % self.citizens.len(),
            merchant: (task + n as usize * TASKS) % self.merchants.len(),
            key: Uuid::new_v4().to_string(),
        }
    }

    /// `payment` to the server at `base`, with the citizen's token, PIN and address.
    async fn send(&self, base: &str, payment: &Payment) -> Reply {
        let citizen = &self.citizens[payment.citizen];
        let merchant = &self.merchants[payment.merchant];
        let sent = self
            .client
            .post(format!("{base}/v1/merchants/{merchant}/pay"))
            .bearer_auth(&citizen.access_token)
            .header("idempotency-key", payment.key.as_str())
            .header("x-payment-pin", PIN)
            .header("x-forwarded-for", client_address(citizen.n))
            .json(&json!({"amount": AMOUNT, "note": "crash"}))
            .send()
            .await;
        reply_of(sent).await
    }
}

/// How a payment ended, from what (if anything) the server answered.
async fn reply_of(sent: reqwest::Result<reqwest::Response>) -> Reply {
    let Ok(response) = sent else {
        return Reply::no_answer();
    };
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true");
    // A status line whose body never came whole is no answer either: the server died between.
    let Ok(body) = response.bytes().await else {
        return Reply::no_answer();
    };
    let outcome = if status.is_success() {
        match serde_json::from_slice::<Paid>(&body) {
            Ok(paid) => Outcome::Answered2xx(paid.id),
            // Not the order a 2xx promises: checked like an unanswered payment, which proves
            // all the same whether it was committed.
            Err(_) => Outcome::NoAnswer,
        }
    } else if status.is_client_error() {
        let problem: Value = serde_json::from_slice(&body).unwrap_or_default();
        Outcome::Answered4xx {
            status: status.as_u16(),
            code: problem["code"].as_str().unwrap_or_default().to_owned(),
        }
    } else {
        Outcome::Answered5xx(status.as_u16())
    };
    Reply { outcome, replayed }
}

/// Client `task` paying back to back until its first unanswered request (the server is
/// gone), MAX_REQUESTS_PER_TASK or LOAD_LIMIT; every request with its outcome.
async fn pay_until_cut_off(payer: Arc<Payer>, base: String, task: usize) -> Vec<Request> {
    let deadline = Instant::now() + LOAD_LIMIT;
    let mut requests = Vec::new();
    for n in 0..MAX_REQUESTS_PER_TASK {
        if Instant::now() >= deadline {
            break;
        }
        let payment = payer.next_payment(task, n);
        let reply = payer.send(&base, &payment).await;
        let cut_off = matches!(reply.outcome, Outcome::NoAnswer);
        requests.push(Request {
            payment,
            outcome: reply.outcome,
        });
        if cut_off {
            break;
        }
    }
    requests
}

// What the database holds.

/// What an idempotency key stored with its effect.
#[derive(Clone)]
enum Stored {
    Paid(Uuid),
    Refused { status: u16, code: String },
}

fn stored_answer(status: Option<i32>, body: Option<Vec<u8>>) -> anyhow::Result<Stored> {
    // The key and its response are written in the effect's transaction: never one alone.
    let (Some(status), Some(body)) = (status, body) else {
        anyhow::bail!("an idempotency key was committed without its response");
    };
    let body: Value = serde_json::from_slice(&body)?;
    match status {
        200..=299 => body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .map(Stored::Paid)
            .ok_or_else(|| anyhow::anyhow!("a stored {status} answer without an order: {body}")),
        400..=499 => Ok(Stored::Refused {
            status: status as u16,
            code: body["code"].as_str().unwrap_or_default().to_owned(),
        }),
        _ => anyhow::bail!("a key stored a {status}: a 5xx must roll its key back"),
    }
}

fn describe(stored: Option<&Stored>) -> String {
    match stored {
        None => "nothing".to_owned(),
        Some(Stored::Paid(order)) => format!("order {order}"),
        Some(Stored::Refused { status, code }) => format!("a {status} {code} refusal"),
    }
}

struct OrderState {
    status: String,
    paid_by: Option<Uuid>,
}

/// An idempotency key as stored: caller, key, answered status and body.
type KeyRow = (Uuid, String, Option<i32>, Option<Vec<u8>>);

/// The bench's payments as the database holds them, read in one snapshot.
struct Snapshot {
    /// The orders of the bench's merchants.
    orders: HashMap<Uuid, OrderState>,
    /// Payment entries of the ledger by reference (an order's id).
    payment_entries: HashMap<String, i64>,
    /// `payment.succeeded` outbox events by the order id in their data.
    succeeded_events: HashMap<String, i64>,
    /// The citizens' idempotency keys, by caller and key.
    keys: HashMap<(Uuid, String), Stored>,
    /// The citizens' wallet balances, by account.
    balances: HashMap<Uuid, i64>,
}

impl Snapshot {
    async fn read(pool: &PgPool, citizens: &[Citizen]) -> anyhow::Result<Snapshot> {
        let accounts: Vec<Uuid> = citizens.iter().map(|c| c.account_id).collect();
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let orders: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
            "SELECT o.id, o.status, o.paid_by FROM orders o JOIN merchants m ON m.id = o.merchant_id
             WHERE m.code LIKE $1",
        )
        .bind(format!("{MERCHANT_PREFIX}%"))
        .fetch_all(&mut *tx)
        .await?;
        let payment_entries: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reference, count(*) FROM journal_entries WHERE kind = 'payment' GROUP BY reference",
        )
        .fetch_all(&mut *tx)
        .await?;
        let succeeded_events: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT data->>'id', count(*) FROM outbox_events WHERE type = 'payment.succeeded' GROUP BY 1",
        )
        .fetch_all(&mut *tx)
        .await?;
        let keys: Vec<KeyRow> = sqlx::query_as(
            "SELECT caller_id, key, response_status, response_body FROM idempotency_keys
             WHERE caller_id = ANY($1)",
        )
        .bind(&accounts)
        .fetch_all(&mut *tx)
        .await?;
        let balances: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT w.account_id, l.balance FROM wallets w JOIN ledger_accounts l ON l.id = w.ledger_account_id
             WHERE w.account_id = ANY($1)",
        )
        .bind(&accounts)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut stored = HashMap::with_capacity(keys.len());
        for (caller, key, status, body) in keys {
            let answer = stored_answer(status, body)
                .map_err(|e| anyhow::anyhow!("key {key} of {caller}: {e}"))?;
            stored.insert((caller, key), answer);
        }
        Ok(Snapshot {
            orders: orders
                .into_iter()
                .map(|(id, status, paid_by)| (id, OrderState { status, paid_by }))
                .collect(),
            payment_entries: payment_entries.into_iter().collect(),
            succeeded_events: succeeded_events
                .into_iter()
                .filter_map(|(order, count)| Some((order?, count)))
                .collect(),
            keys: stored,
            balances: balances.into_iter().collect(),
        })
    }

    fn stored(&self, caller: Uuid, key: &str) -> Option<&Stored> {
        self.keys.get(&(caller, key.to_owned()))
    }

    fn orders(&self) -> Vec<Uuid> {
        self.orders.keys().copied().collect()
    }

    /// `order` is paid by a citizen, with one payment entry and one `payment.succeeded` event.
    fn require_paid_once(&self, order: Uuid) -> anyhow::Result<()> {
        let Some(state) = self.orders.get(&order) else {
            anyhow::bail!("order {order} is not in the database");
        };
        anyhow::ensure!(state.status == "paid", "order {order} is {}", state.status);
        anyhow::ensure!(
            state
                .paid_by
                .is_some_and(|payer| self.balances.contains_key(&payer)),
            "order {order} is not paid by one of the bench's citizens"
        );
        let reference = order.to_string();
        let entries = self.payment_entries.get(&reference).copied().unwrap_or(0);
        anyhow::ensure!(
            entries == 1,
            "order {order} has {entries} payment entries in the ledger, not one"
        );
        let events = self.succeeded_events.get(&reference).copied().unwrap_or(0);
        anyhow::ensure!(
            events == 1,
            "order {order} has {events} payment.succeeded events in the outbox, not one"
        );
        Ok(())
    }

    /// Nothing half done and nothing without its key: a static-QR order is created and paid
    /// in one transaction with its entry, its event and its key, so every order must be paid
    /// once and stored under exactly one key, every stored payment must be such an order, and
    /// every wallet must hold its funding less what its orders cost. Whatever left no key left
    /// nothing else either.
    fn check_consistent(&self, citizens: &[Citizen]) -> anyhow::Result<()> {
        for order in self.orders.keys() {
            self.require_paid_once(*order)?;
        }
        let mut stored_orders = HashSet::with_capacity(self.keys.len());
        for ((caller, key), stored) in &self.keys {
            if let Stored::Paid(order) = stored {
                anyhow::ensure!(
                    self.orders.contains_key(order),
                    "key {key} of {caller} stored order {order}, which is not in the database"
                );
                anyhow::ensure!(
                    stored_orders.insert(*order),
                    "order {order} is stored under two keys"
                );
            }
        }
        anyhow::ensure!(
            stored_orders.len() == self.orders.len(),
            "{} orders of the bench's merchants but {} keys storing one: a payment without its key",
            self.orders.len(),
            stored_orders.len()
        );
        let mut paid_by: HashMap<Uuid, i64> = HashMap::new();
        for payer in self.orders.values().filter_map(|order| order.paid_by) {
            *paid_by.entry(payer).or_default() += 1;
        }
        for citizen in citizens {
            let paid = paid_by.get(&citizen.account_id).copied().unwrap_or(0);
            let expected = FUNDS - AMOUNT * paid;
            let balance = self.balances.get(&citizen.account_id).copied();
            anyhow::ensure!(
                balance == Some(expected),
                "citizen {} paid {paid} orders, so should hold {expected} đ, but holds {balance:?}",
                citizen.n
            );
        }
        Ok(())
    }
}

// The checks of one kill.

/// (b): every payment answered 2xx is paid once, under its key.
fn check_answered(
    requests: &[Request],
    snapshot: &Snapshot,
    citizens: &[Citizen],
) -> anyhow::Result<()> {
    for request in requests {
        let Outcome::Answered2xx(order) = request.outcome else {
            continue;
        };
        let payment = &request.payment;
        let stored = snapshot.stored(citizens[payment.citizen].account_id, &payment.key);
        anyhow::ensure!(
            matches!(stored, Some(Stored::Paid(found)) if *found == order),
            "payment {} was answered with order {order}, but its key stored {}",
            payment.key,
            describe(stored)
        );
        snapshot.require_paid_once(order)?;
    }
    Ok(())
}

/// A payment the server did not settle for its client, with what its key stored.
struct Unsettled {
    payment: Payment,
    stored: Option<Stored>,
}

/// (c): the unanswered payments (and 5xx), each wholly there, or absent (which
/// `Snapshot::check_consistent` proves is wholly).
fn check_unsettled(
    requests: &[Request],
    snapshot: &Snapshot,
    citizens: &[Citizen],
) -> anyhow::Result<Vec<Unsettled>> {
    let mut unsettled = Vec::new();
    for request in requests {
        let payment = &request.payment;
        let stored = snapshot
            .stored(citizens[payment.citizen].account_id, &payment.key)
            .cloned();
        match (&request.outcome, &stored) {
            (Outcome::NoAnswer, Some(Stored::Paid(order))) => snapshot.require_paid_once(*order)?,
            (Outcome::NoAnswer, _) | (Outcome::Answered5xx(_), None) => {}
            (Outcome::Answered5xx(status), Some(found)) => anyhow::bail!(
                "payment {} was answered {status}, yet its key stored {}",
                payment.key,
                describe(Some(found))
            ),
            (Outcome::Answered2xx(_) | Outcome::Answered4xx { .. }, _) => continue,
        }
        unsettled.push(Unsettled {
            payment: payment.clone(),
            stored,
        });
    }
    Ok(unsettled)
}

/// A retried payment: the order it paid, if any, and whether its answer was replayed.
struct Retried {
    payment: Payment,
    order: Option<Uuid>,
    replayed: bool,
}

/// (d): every unsettled payment sent again as it was, to the restarted server at `base`: what
/// its key stored comes back replayed; one that left no trace is paid afresh.
async fn retry(payer: &Payer, base: &str, unsettled: &[Unsettled]) -> anyhow::Result<Vec<Retried>> {
    let mut retried = Vec::with_capacity(unsettled.len());
    for one in unsettled {
        let reply = payer.send(base, &one.payment).await;
        let order = match (&one.stored, &reply.outcome, reply.replayed) {
            (Some(Stored::Paid(stored)), Outcome::Answered2xx(order), true) if stored == order => {
                Some(*order)
            }
            (
                Some(Stored::Refused { status, code }),
                Outcome::Answered4xx {
                    status: again,
                    code: code_again,
                },
                true,
            ) if status == again && code == code_again => None,
            (None, Outcome::Answered2xx(order), false) => Some(*order),
            (stored, outcome, replayed) => anyhow::bail!(
                "retrying payment {} (its key had stored {}) was answered {outcome:?}, replayed: {replayed}",
                one.payment.key,
                describe(stored.as_ref())
            ),
        };
        retried.push(Retried {
            payment: one.payment.clone(),
            order,
            replayed: reply.replayed,
        });
    }
    Ok(retried)
}

/// (d), after the retries: nothing that was there is gone, the orders rose by exactly the
/// payments run afresh, and every retried key maps to the one order its retry answered.
fn check_retries(
    retried: &[Retried],
    before: &Snapshot,
    after: &Snapshot,
    citizens: &[Citizen],
) -> anyhow::Result<()> {
    if let Some(gone) = before
        .orders
        .keys()
        .find(|o| !after.orders.contains_key(*o))
    {
        anyhow::bail!("order {gone} was in the database before the retries, and is not after");
    }
    let afresh = retried.iter().filter(|r| !r.replayed).count();
    let rise = after.orders.len() - before.orders.len();
    anyhow::ensure!(
        rise == afresh,
        "the retries paid {afresh} payments afresh, but the orders rose by {rise}"
    );
    for one in retried {
        let Some(order) = one.order else { continue };
        let payment = &one.payment;
        let stored = after.stored(citizens[payment.citizen].account_id, &payment.key);
        anyhow::ensure!(
            matches!(stored, Some(Stored::Paid(found)) if *found == order),
            "retried payment {} was answered with order {order}, but its key stored {}",
            payment.key,
            describe(stored)
        );
        after.require_paid_once(order)?;
    }
    Ok(())
}

/// (e): waits, at most CALLBACK_WAIT, until every order in `paid` has been called back.
async fn await_callbacks(callbacks: &Callbacks, paid: &[Uuid]) -> anyhow::Result<()> {
    let polls = CALLBACK_WAIT.as_millis() / CALLBACK_POLL.as_millis();
    for _ in 0..polls {
        if callbacks.missing(paid).is_empty() {
            return Ok(());
        }
        tokio::time::sleep(CALLBACK_POLL).await;
    }
    let missing = callbacks.missing(paid);
    match missing.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "{} paid orders were not called back within {} s, {first} among them",
            missing.len(),
            CALLBACK_WAIT.as_secs()
        ),
    }
}

// The kills.

/// The running server (killed when this is dropped), the seeded citizens and merchants, the
/// callbacks received and a pool on the bench's database to check it.
struct Bench {
    client: reqwest::Client,
    pool: PgPool,
    server: Server,
    citizens: Arc<Vec<Citizen>>,
    merchants: Arc<Vec<String>>,
    callbacks: Callbacks,
}

/// What one kill showed.
struct Kill {
    killed_after: Duration,
    answered_2xx: usize,
    answered_4xx: usize,
    first_refusal: Option<String>,
    answered_5xx: usize,
    unanswered: usize,
    found_committed: usize,
    found_absent: usize,
    replayed: usize,
    afresh: usize,
    callbacks_outstanding: usize,
    all_called_back_s: f64,
    repeated_callbacks: usize,
}

impl Bench {
    async fn kill_repeatedly(
        &mut self,
        transcript: &mut Transcript,
        rounds: u64,
    ) -> anyhow::Result<()> {
        let mut kills = Vec::new();
        for number in 1..=rounds {
            let kill = self.kill_and_check().await?;
            report_kill(transcript, number, &kill);
            kills.push(kill);
        }
        report_summary(transcript, &kills);
        Ok(())
    }

    /// Load, a kill at a random moment, a restart on the same database, then (a) to (e).
    async fn kill_and_check(&mut self) -> anyhow::Result<Kill> {
        renew_sessions(&self.client, &self.server.base, &mut self.citizens).await?;
        let payer = Arc::new(Payer {
            client: self.client.clone(),
            citizens: self.citizens.clone(),
            merchants: self.merchants.clone(),
        });
        let killed_after = random_kill_delay()?;
        let requests = self.load_until_killed(&payer, killed_after).await?;
        let answered_2xx = count(&requests, |o| matches!(o, Outcome::Answered2xx(_)));
        anyhow::ensure!(
            answered_2xx > 0,
            "no payment succeeded before the kill, so nothing was put to the test (first refusal: {:?})",
            first_refusal(&requests)
        );

        self.server = start_server()?;
        self.server.wait_until_ready(&self.client).await?;
        let restarted = Instant::now();
        let before = self.audit().await?;
        check_answered(&requests, &before, &self.citizens)?;
        let unsettled = check_unsettled(&requests, &before, &self.citizens)?;
        let callbacks_outstanding = self.callbacks.missing(&before.orders()).len();

        let retried = retry(&payer, &self.server.base, &unsettled).await?;
        let after_retries = self.audit().await?;
        check_retries(&retried, &before, &after_retries, &self.citizens)?;
        await_callbacks(&self.callbacks, &after_retries.orders()).await?;
        let all_called_back_s = restarted.elapsed().as_secs_f64();

        let found_committed = unsettled.iter().filter(|u| u.stored.is_some()).count();
        let replayed = retried.iter().filter(|r| r.replayed).count();
        Ok(Kill {
            killed_after,
            answered_2xx,
            answered_4xx: count(&requests, |o| matches!(o, Outcome::Answered4xx { .. })),
            first_refusal: first_refusal(&requests),
            answered_5xx: count(&requests, |o| matches!(o, Outcome::Answered5xx(_))),
            unanswered: count(&requests, |o| matches!(o, Outcome::NoAnswer)),
            found_committed,
            found_absent: unsettled.len() - found_committed,
            replayed,
            afresh: retried.len() - replayed,
            callbacks_outstanding,
            all_called_back_s,
            repeated_callbacks: self.callbacks.repeated()?,
        })
    }

    /// TASKS clients paying until the server is killed, `after` they start; every request
    /// with how it ended.
    async fn load_until_killed(
        &mut self,
        payer: &Arc<Payer>,
        after: Duration,
    ) -> anyhow::Result<Vec<Request>> {
        let mut clients = JoinSet::new();
        for task in 0..TASKS {
            let base = self.server.base.clone();
            clients.spawn(pay_until_cut_off(payer.clone(), base, task));
        }
        tokio::time::sleep(after).await;
        // Every client sees it: its request in flight, or its next one, finds nobody there.
        self.server.kill()?;
        let mut requests = Vec::new();
        while let Some(done) = clients.join_next().await {
            requests.extend(done?);
        }
        Ok(requests)
    }

    /// (a) and the snapshot's consistency, `check_consistent`.
    async fn audit(&self) -> anyhow::Result<Snapshot> {
        tokio::task::spawn_blocking(ledger_verify).await??;
        let snapshot = Snapshot::read(&self.pool, &self.citizens).await?;
        snapshot.check_consistent(&self.citizens)?;
        Ok(snapshot)
    }
}

fn count(requests: &[Request], which: impl Fn(&Outcome) -> bool) -> usize {
    requests.iter().filter(|r| which(&r.outcome)).count()
}

fn first_refusal(requests: &[Request]) -> Option<String> {
    requests.iter().find_map(|r| match &r.outcome {
        Outcome::Answered4xx { status, code } => Some(format!("{status} {code}")),
        _ => None,
    })
}

// The report.

/// What the benchmark prints, kept to be written to bench/results/ at the end.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn say(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        println!("{line}");
        self.0.push_str(line);
        self.0.push('\n');
    }
}

fn report_kill(transcript: &mut Transcript, number: u64, kill: &Kill) {
    transcript.say(format!(
        "kill {number} after {:.2} s: answered {} 2xx, {} 4xx, {} 5xx; {} unanswered; \
         of the unanswered and 5xx {} found committed, {} absent; retries {} replayed, {} run afresh",
        kill.killed_after.as_secs_f64(),
        kill.answered_2xx,
        kill.answered_4xx,
        kill.answered_5xx,
        kill.unanswered,
        kill.found_committed,
        kill.found_absent,
        kill.replayed,
        kill.afresh
    ));
    if let Some(refusal) = &kill.first_refusal {
        transcript.say(format!("  first refusal: {refusal}"));
    }
    transcript.say(format!(
        "  callbacks outstanding after the restart {}, all arrived {:.1} s after it; \
         orders called back more than once so far {} (each under one webhook-id)",
        kill.callbacks_outstanding, kill.all_called_back_s, kill.repeated_callbacks
    ));
}

fn report_summary(transcript: &mut Transcript, kills: &[Kill]) {
    let total = |field: fn(&Kill) -> usize| kills.iter().map(field).sum::<usize>();
    transcript.say(format!(
        "summary: {} kills, all checks held: {} payments answered 2xx, {} unanswered or 5xx \
         ({} found committed, {} absent), {} retries replayed, {} run afresh; ledger verified \
         after every restart; every paid order called back, {} more than once, each under one webhook-id",
        kills.len(),
        total(|k| k.answered_2xx),
        total(|k| k.unanswered + k.answered_5xx),
        total(|k| k.found_committed),
        total(|k| k.found_absent),
        total(|k| k.replayed),
        total(|k| k.afresh),
        kills.last().map_or(0, |k| k.repeated_callbacks)
    ));
}

/// Writes the commit, the date and the transcript to
/// bench/results/crash_safety-<UTC date-time>-<commit>.txt.
fn save_results(transcript: &Transcript) -> anyhow::Result<PathBuf> {
    let commit = current_commit();
    let now = Utc::now();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!(
        "crash_safety-{}-{commit}.txt",
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

fn current_commit() -> String {
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
