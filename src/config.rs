//! Configuration: every setting comes from a command-line flag or its environment variable,
//! with a documented default. clap parses and validates them all before anything starts, so a
//! bad value fails fast with a message naming the setting.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Generates missing keys (with a warning) and enables the sandboxes under /sandbox/.
    Development,
    /// Refuses to start without its secrets or with any sandbox enabled.
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

/// Everything `civicpay serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Development or production behaviour (see DESIGN.md, "Modes").
    #[arg(
        long,
        env = "CIVICPAY_MODE",
        value_name = "CIVICPAY_MODE",
        value_enum,
        default_value = "development"
    )]
    pub mode: Mode,

    /// Address and port the HTTP API listens on.
    #[arg(
        long,
        env = "CIVICPAY_BIND",
        value_name = "CIVICPAY_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: SocketAddr,

    /// Lets development mode listen on a non-loopback address or sit behind a reverse proxy
    /// (`CIVICPAY_TRUSTED_PROXIES`). Off, a development server refuses both, so a forgotten
    /// CIVICPAY_MODE cannot publish the sandboxes under /sandbox/ (SMS codes included).
    #[arg(
        long,
        env = "CIVICPAY_DEV_ALLOW_PUBLIC",
        value_name = "CIVICPAY_DEV_ALLOW_PUBLIC",
        value_enum,
        default_value = "off"
    )]
    pub dev_allow_public: Switch,

    /// Largest request body accepted, in bytes; a route may allow more.
    #[arg(long, env = "CIVICPAY_BODY_LIMIT_BYTES", value_name = "CIVICPAY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=(256 * 1024 * 1024)))]
    pub body_limit_bytes: u64,

    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish, in milliseconds.
    #[arg(long, env = "CIVICPAY_SHUTDOWN_GRACE_MS", value_name = "CIVICPAY_SHUTDOWN_GRACE_MS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub shutdown_grace_ms: u64,

    /// Log line format. The level filter is RUST_LOG (default `info`).
    #[arg(
        long,
        env = "CIVICPAY_LOG_FORMAT",
        value_name = "CIVICPAY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// After a merchant rotates its API key, how long the older keys keep working, in seconds.
    #[arg(long, env = "CIVICPAY_MERCHANT_KEY_GRACE_SECS", value_name = "CIVICPAY_MERCHANT_KEY_GRACE_SECS",
          default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(0..=2_592_000))]
    pub merchant_key_grace_secs: u64,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub wallet: WalletConfig,

    #[command(flatten)]
    pub callbacks: CallbackConfig,

    #[command(flatten)]
    pub payments: PaymentsConfig,

    #[command(flatten)]
    pub dossiers: DossierConfig,

    #[command(flatten)]
    pub metrics: MetricsConfig,

    #[command(flatten)]
    pub receipts: ReceiptConfig,
}

/// Receipts' Ed25519 keys (`receipts::signing`): the one that signs them now, and the public
/// keys of those that signed before a rotation, so that older receipts still verify.
#[derive(Debug, Clone, Args)]
pub struct ReceiptConfig {
    /// Key that signs receipts: the 32-byte Ed25519 seed, base64url without padding (43
    /// characters). Required in production; development generates one once and keeps it. Its
    /// key id is derived from its public key, both shown at GET /v1/receipts/public-key.
    #[arg(id = "receipt_signing_key", long = "receipt-signing-key", env = "CIVICPAY_RECEIPT_SIGNING_KEY",
          value_name = "CIVICPAY_RECEIPT_SIGNING_KEY", hide_env_values = true, value_parser = parse_receipt_signing_key)]
    pub signing_key: Option<String>,

    /// Comma-separated public keys of earlier signing keys (32 bytes each, base64url without
    /// padding, as GET /v1/receipts/public-key shows them): receipts they signed still verify.
    #[arg(id = "receipt_previous_public_keys", long = "receipt-previous-public-keys",
          env = "CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS", value_name = "CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS",
          value_delimiter = ',', value_parser = parse_receipt_public_key)]
    pub previous_public_keys: Vec<String>,
}

/// The 32 bytes a receipt key setting holds (a signing key's seed, or a public key): base64url
/// without padding, the form the public-key route shows keys in.
pub fn receipt_key_bytes(value: &str) -> Result<[u8; 32], String> {
    let decoded = URL_SAFE_NO_PAD
        .decode(value.trim())
        .map_err(|_| "must be base64url without padding".to_owned())?;
    let length = decoded.len();
    <[u8; 32]>::try_from(decoded)
        .map_err(|_| format!("must be 32 bytes (43 base64url characters), not {length}"))
}

fn parse_receipt_signing_key(value: &str) -> Result<String, String> {
    receipt_key_bytes(value)?;
    Ok(value.trim().to_owned())
}

/// A public key must also be a point of the curve, or nothing could ever verify with it.
fn parse_receipt_public_key(value: &str) -> Result<String, String> {
    let bytes = receipt_key_bytes(value)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "is not an Ed25519 public key".to_owned())?;
    Ok(value.trim().to_owned())
}

/// Where Prometheus reads `/metrics`: a listener of its own, and optionally the API's listener
/// with a bearer token.
#[derive(Debug, Clone, Args)]
pub struct MetricsConfig {
    /// Address and port of the metrics listener, which serves only /metrics (no token asked:
    /// keep it on loopback or a private network); `off` opens none.
    #[arg(id = "metrics_bind", long = "metrics-bind", env = "CIVICPAY_METRICS_BIND", value_name = "CIVICPAY_METRICS_BIND",
          default_value = "127.0.0.1:9464", value_parser = parse_listen_addr)]
    pub bind: ListenAddr,

    /// When set, the API's own listener also serves /metrics, to requests carrying
    /// `Authorization: Bearer <this token>` (at least 32 bytes); unset, it answers 404 there.
    #[arg(id = "metrics_token", long = "metrics-token", env = "CIVICPAY_METRICS_TOKEN", value_name = "CIVICPAY_METRICS_TOKEN",
          hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<String>,
}

/// A listen address, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub Option<SocketAddr>);

fn parse_listen_addr(value: &str) -> Result<ListenAddr, String> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(ListenAddr(None));
    }
    value
        .trim()
        .parse::<SocketAddr>()
        .map(|addr| ListenAddr(Some(addr)))
        .map_err(|_| "an address and port such as 127.0.0.1:9464, or `off`".to_owned())
}

/// Loopback only: `127.0.0.0/8`, `::1`, and `::ffff:127.0.0.0/104`.
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Dossiers: where their documents may be kept, how many wrong tracking keys an address may
/// try, and what a postal delivery of the result costs.
#[derive(Debug, Clone, Args)]
pub struct DossierConfig {
    /// Where dossier documents are stored: a document's `uri` must start with exactly
    /// this (a lower-case scheme, the bucket, optional folders, a closing `/`) and go on with an
    /// object key of plain segments.
    #[arg(long, env = "CIVICPAY_DOCUMENT_STORAGE_PREFIX", value_name = "CIVICPAY_DOCUMENT_STORAGE_PREFIX",
          default_value = "s3://civicpay-documents/", value_parser = parse_storage_prefix)]
    pub document_storage_prefix: String,

    /// Failed public-tracking lookups (an unknown code, a wrong or missing tracking key)
    /// allowed per client address within the tracking window; past it, 429 with Retry-After.
    #[arg(long, env = "CIVICPAY_TRACKING_FAILURES_PER_ADDRESS", value_name = "CIVICPAY_TRACKING_FAILURES_PER_ADDRESS",
          default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub tracking_failures_per_address: u32,

    /// The sliding window failed tracking lookups are counted over, in seconds.
    #[arg(long, env = "CIVICPAY_TRACKING_WINDOW_SECS", value_name = "CIVICPAY_TRACKING_WINDOW_SECS",
          default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub tracking_window_secs: u32,

    /// What sending a dossier's result by post adds to its fee bill, in đồng, when the
    /// applicant chose postal delivery (a free procedure stays free); 0 charges nothing.
    #[arg(long, env = "CIVICPAY_POSTAL_DELIVERY_FEE", value_name = "CIVICPAY_POSTAL_DELIVERY_FEE",
          default_value_t = 25_000, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub postal_delivery_fee: u32,
}

/// A storage prefix: a lower-case scheme, `://`, a bucket and optional folders, each a plain
/// name (ASCII letters, digits, `-`, `_`, `.`; not `.` or `..`), and a closing `/`, so that no
/// other bucket (`s3://civicpay-documents.evil/`) or folder starts with it.
fn parse_storage_prefix(value: &str) -> Result<String, String> {
    let shape =
        || "a scheme, a bucket and a closing slash, such as s3://civicpay-documents/".to_owned();
    let (scheme, rest) = value.split_once("://").ok_or_else(shape)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        });
    let folders = rest.strip_suffix('/').ok_or_else(shape)?;
    let plain = |name: &str| {
        !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if scheme_ok && folders.split('/').all(plain) {
        Ok(value.to_owned())
    } else {
        Err(shape())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdentityVerifierKind {
    /// Accepts every well-formed national ID number. Development only.
    Sandbox,
    /// Verifies nobody (no real identity service is built yet).
    Disabled,
}

/// Wallets: payment PINs and identity verification.
#[derive(Debug, Clone, Args)]
pub struct WalletConfig {
    /// Server-side secret keying the payment-PIN and national-ID hashes, at least 32 bytes.
    /// Required in production; development generates one per start.
    #[arg(long, env = "CIVICPAY_PIN_PEPPER", value_name = "CIVICPAY_PIN_PEPPER", hide_env_values = true,
          value_parser = parse_secret)]
    pub pin_pepper: Option<String>,

    /// Who checks national ID numbers: `sandbox` (development default) or `disabled`
    /// (production default until a real identity service is plugged in).
    #[arg(
        long,
        env = "CIVICPAY_IDENTITY_VERIFIER",
        value_name = "CIVICPAY_IDENTITY_VERIFIER",
        value_enum
    )]
    pub identity_verifier: Option<IdentityVerifierKind>,
}

impl WalletConfig {
    pub fn identity_verifier(&self, mode: Mode) -> IdentityVerifierKind {
        self.identity_verifier.unwrap_or(match mode {
            Mode::Development => IdentityVerifierKind::Sandbox,
            Mode::Production => IdentityVerifierKind::Disabled,
        })
    }
}

/// Signed callbacks to merchants: the delivery workers of this process.
#[derive(Debug, Clone, Args)]
pub struct CallbackConfig {
    /// Callbacks this process sends at once (0 switches its delivery workers off; other
    /// processes on the same database still deliver).
    #[arg(long, env = "CIVICPAY_CALLBACK_WORKERS", value_name = "CIVICPAY_CALLBACK_WORKERS",
          default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub workers: u32,

    /// How long a merchant has to answer one callback, in milliseconds.
    #[arg(long, env = "CIVICPAY_CALLBACK_TIMEOUT_MS", value_name = "CIVICPAY_CALLBACK_TIMEOUT_MS",
          default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub timeout_ms: u64,

    /// How long a worker holds a claimed callback before another may take it over (the
    /// worker is presumed dead), in milliseconds; longer than the timeout.
    #[arg(long, env = "CIVICPAY_CALLBACK_LEASE_MS", value_name = "CIVICPAY_CALLBACK_LEASE_MS",
          default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(200..=3_600_000))]
    pub lease_ms: u64,

    /// Waits before each retry of a failed callback, comma-separated with units s, m or h;
    /// after the last the callback is marked failed.
    #[arg(long, env = "CIVICPAY_CALLBACK_RETRY_SCHEDULE", value_name = "CIVICPAY_CALLBACK_RETRY_SCHEDULE",
          default_value = "5s,5m,30m,2h,5h,10h,10h", value_parser = parse_schedule)]
    pub retry_schedule: RetrySchedule,

    /// After a merchant rotates its webhook secret, how long callbacks also carry a signature
    /// made with the previous one, in seconds.
    #[arg(long, env = "CIVICPAY_WEBHOOK_SECRET_GRACE_SECS", value_name = "CIVICPAY_WEBHOOK_SECRET_GRACE_SECS",
          default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(0..=2_592_000))]
    pub secret_grace_secs: u64,
}

impl CallbackConfig {
    /// A lease no longer than the timeout would let a slow attempt overlap its own retry.
    fn check(&self) -> anyhow::Result<()> {
        if self.lease_ms <= self.timeout_ms {
            anyhow::bail!(
                "CIVICPAY_CALLBACK_LEASE_MS ({}) must be longer than CIVICPAY_CALLBACK_TIMEOUT_MS ({})",
                self.lease_ms,
                self.timeout_ms
            );
        }
        Ok(())
    }
}

/// Payment providers: money into wallets (top-ups) and out of them (withdrawals).
#[derive(Debug, Clone, Args)]
pub struct PaymentsConfig {
    /// Where citizens' browsers reach this server: payment pages and provider return URLs are
    /// built on it.
    #[arg(
        long,
        env = "CIVICPAY_PUBLIC_URL",
        value_name = "CIVICPAY_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: url::Url,

    /// The sandbox bank (`on` by default in development, `off` in production, which refuses
    /// it): a payment page under /sandbox/pay/ and instant payouts.
    #[arg(
        long,
        env = "CIVICPAY_PAYMENT_SANDBOX",
        value_name = "CIVICPAY_PAYMENT_SANDBOX",
        value_enum
    )]
    pub sandbox: Option<Switch>,

    /// VNPay merchant code (vnp_TmnCode); VNPay is offered when this and the secret are set.
    #[arg(
        long,
        env = "CIVICPAY_VNPAY_TMN_CODE",
        value_name = "CIVICPAY_VNPAY_TMN_CODE"
    )]
    pub vnpay_tmn_code: Option<String>,

    /// VNPay hash secret (vnp_HashSecret).
    #[arg(
        long,
        env = "CIVICPAY_VNPAY_HASH_SECRET",
        value_name = "CIVICPAY_VNPAY_HASH_SECRET",
        hide_env_values = true
    )]
    pub vnpay_hash_secret: Option<String>,

    /// VNPay's payment page.
    #[arg(
        long,
        env = "CIVICPAY_VNPAY_PAY_URL",
        value_name = "CIVICPAY_VNPAY_PAY_URL",
        default_value = "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html"
    )]
    pub vnpay_pay_url: url::Url,

    /// VNPay's merchant API (querydr).
    #[arg(
        long,
        env = "CIVICPAY_VNPAY_API_URL",
        value_name = "CIVICPAY_VNPAY_API_URL",
        default_value = "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction"
    )]
    pub vnpay_api_url: url::Url,

    /// How old a pending top-up or withdrawal is before the reconciler asks the provider, in
    /// seconds.
    #[arg(long, env = "CIVICPAY_RECONCILE_AFTER_SECS", value_name = "CIVICPAY_RECONCILE_AFTER_SECS",
          default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub reconcile_after_secs: u64,

    /// How long a top-up the provider never completed stays pending before it expires, in
    /// seconds.
    #[arg(long, env = "CIVICPAY_TOPUP_EXPIRY_SECS", value_name = "CIVICPAY_TOPUP_EXPIRY_SECS",
          default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub topup_expiry_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl PaymentsConfig {
    pub fn sandbox_enabled(&self, mode: Mode) -> bool {
        self.sandbox.unwrap_or(match mode {
            Mode::Development => Switch::On,
            Mode::Production => Switch::Off,
        }) == Switch::On
    }
}

/// The waits between attempts of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<std::time::Duration>);

fn parse_schedule(value: &str) -> Result<RetrySchedule, String> {
    let wait = |item: &str| {
        let item = item.trim();
        let unit_seconds = [("s", 1), ("m", 60), ("h", 3600)];
        unit_seconds
            .iter()
            .find_map(|(unit, seconds)| Some((item.strip_suffix(unit)?, seconds)))
            .and_then(|(number, seconds)| {
                let n = number
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))?;
                Some(std::time::Duration::from_secs(n * seconds))
            })
            .ok_or_else(|| format!("`{item}`: a number followed by s, m or h"))
    };
    let waits = value.split(',').map(wait).collect::<Result<Vec<_>, _>>()?;
    if waits.len() > 50 {
        return Err("at most 50 retries".into());
    }
    Ok(RetrySchedule(waits))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmsProvider {
    /// Keeps messages in memory, readable at /sandbox/sms/{phone}. Development only.
    Sandbox,
    /// Sends nothing: one-time codes cannot be requested (no real gateway is built yet).
    Disabled,
}

/// Accounts, tokens, one-time codes and their abuse limits (and the limit on guessing bill codes,
/// counted with them).
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Key that signs access tokens, at least 32 bytes. Required in production; development
    /// generates one per start (tokens then die with the process).
    #[arg(long, env = "CIVICPAY_JWT_SECRET", value_name = "CIVICPAY_JWT_SECRET", hide_env_values = true,
          value_parser = parse_secret)]
    pub jwt_secret: Option<String>,

    /// Where one-time codes are sent: `sandbox` (development default) or `disabled`
    /// (production default until a real SMS gateway is plugged in).
    #[arg(
        long,
        env = "CIVICPAY_SMS_PROVIDER",
        value_name = "CIVICPAY_SMS_PROVIDER",
        value_enum
    )]
    pub sms_provider: Option<SmsProvider>,

    /// Most one-time codes sent in any hour, all phones together (against SMS-pumping fraud).
    #[arg(long, env = "CIVICPAY_OTP_GLOBAL_HOURLY_CAP", value_name = "CIVICPAY_OTP_GLOBAL_HOURLY_CAP",
          default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub otp_global_hourly_cap: u32,

    /// Failed logins allowed per phone within the login window.
    #[arg(long, env = "CIVICPAY_LOGIN_FAILURES_PER_PHONE", value_name = "CIVICPAY_LOGIN_FAILURES_PER_PHONE",
          default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub login_failures_per_phone: u32,

    /// Failed logins allowed per client address within the login window.
    #[arg(long, env = "CIVICPAY_LOGIN_FAILURES_PER_ADDRESS", value_name = "CIVICPAY_LOGIN_FAILURES_PER_ADDRESS",
          default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_failures_per_address: u32,

    /// The sliding window failed logins are counted over, in seconds.
    #[arg(long, env = "CIVICPAY_LOGIN_WINDOW_SECS", value_name = "CIVICPAY_LOGIN_WINDOW_SECS",
          default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub login_window_secs: u32,

    /// Bill lookups by code that find no bill allowed per signed-in account within the bill
    /// lookup window; past it, every lookup by the account answers 429 with Retry-After.
    #[arg(long, env = "CIVICPAY_BILL_LOOKUP_FAILURES_PER_ACCOUNT", value_name = "CIVICPAY_BILL_LOOKUP_FAILURES_PER_ACCOUNT",
          default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub bill_lookup_failures_per_account: u32,

    /// The sliding window failed bill lookups are counted over, in seconds.
    #[arg(long, env = "CIVICPAY_BILL_LOOKUP_WINDOW_SECS", value_name = "CIVICPAY_BILL_LOOKUP_WINDOW_SECS",
          default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub bill_lookup_window_secs: u32,

    /// Passwords hashed at once (registrations, logins, resets, staff creation); each Argon2id
    /// hash holds 19 MiB and a core, and the rest wait their turn. Default: one per CPU core.
    #[arg(long, env = "CIVICPAY_PASSWORD_HASHES_AT_ONCE", value_name = "CIVICPAY_PASSWORD_HASHES_AT_ONCE",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub password_hashes_at_once: Option<u32>,

    /// How long a request waits for its turn to hash a password before it is answered 503
    /// with Retry-After, in milliseconds.
    #[arg(long, env = "CIVICPAY_PASSWORD_HASH_WAIT_MS", value_name = "CIVICPAY_PASSWORD_HASH_WAIT_MS",
          default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub password_hash_wait_ms: u64,

    /// Comma-separated addresses of reverse proxies whose X-Forwarded-For is believed.
    #[arg(
        long,
        env = "CIVICPAY_TRUSTED_PROXIES",
        value_name = "CIVICPAY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AuthConfig {
    pub fn sms_provider(&self, mode: Mode) -> SmsProvider {
        self.sms_provider.unwrap_or(match mode {
            Mode::Development => SmsProvider::Sandbox,
            Mode::Production => SmsProvider::Disabled,
        })
    }
}

fn parse_secret(value: &str) -> Result<String, String> {
    if value.len() < 32 {
        return Err("must be at least 32 bytes long".into());
    }
    Ok(value.to_owned())
}

/// How to reach PostgreSQL, the one system of record.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "CIVICPAY_DATABASE_URL",
        value_name = "CIVICPAY_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/civicpay",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Most connections the pool holds (8-16 is the sweet spot on a 2-core machine).
    #[arg(long, env = "CIVICPAY_DB_MAX_CONNECTIONS", value_name = "CIVICPAY_DB_MAX_CONNECTIONS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=500))]
    pub db_max_connections: u32,

    /// How long a request waits for a free connection before failing, in milliseconds.
    #[arg(long, env = "CIVICPAY_DB_ACQUIRE_TIMEOUT_MS", value_name = "CIVICPAY_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub db_acquire_timeout_ms: u64,

    /// Server-side limit on any one SQL statement, in milliseconds (0 = none).
    #[arg(long, env = "CIVICPAY_DB_STATEMENT_TIMEOUT_MS", value_name = "CIVICPAY_DB_STATEMENT_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub db_statement_timeout_ms: u64,
}

impl Config {
    /// Settings that contradict each other are refused, and production refuses to start
    /// without its secrets or with a sandbox; the message names the setting to fix.
    pub fn check_mode(&self) -> anyhow::Result<()> {
        self.callbacks.check()?;
        if self.mode == Mode::Development {
            return self.check_development_is_private();
        }
        if self.auth.jwt_secret.is_none() {
            anyhow::bail!("CIVICPAY_MODE=production needs CIVICPAY_JWT_SECRET (at least 32 bytes)");
        }
        if self.auth.sms_provider(self.mode) == SmsProvider::Sandbox {
            anyhow::bail!("CIVICPAY_MODE=production refuses CIVICPAY_SMS_PROVIDER=sandbox");
        }
        if self.wallet.pin_pepper.is_none() {
            anyhow::bail!("CIVICPAY_MODE=production needs CIVICPAY_PIN_PEPPER (at least 32 bytes)");
        }
        if self.receipts.signing_key.is_none() {
            anyhow::bail!(
                "CIVICPAY_MODE=production needs CIVICPAY_RECEIPT_SIGNING_KEY (a 32-byte Ed25519 seed, base64url without padding)"
            );
        }
        if self.payments.sandbox_enabled(self.mode) {
            anyhow::bail!("CIVICPAY_MODE=production refuses CIVICPAY_PAYMENT_SANDBOX=on");
        }
        if self.wallet.identity_verifier(self.mode) == IdentityVerifierKind::Sandbox {
            anyhow::bail!("CIVICPAY_MODE=production refuses CIVICPAY_IDENTITY_VERIFIER=sandbox");
        }
        Ok(())
    }

    /// Development serves its sandboxes (SMS codes, the sandbox bank) to whoever reaches it, so
    /// unless CIVICPAY_DEV_ALLOW_PUBLIC=on it listens on loopback only and believes no proxy
    /// (a proxy in front is what would publish a loopback server).
    fn check_development_is_private(&self) -> anyhow::Result<()> {
        if self.dev_allow_public == Switch::On {
            return Ok(());
        }
        const WHY: &str = "the development sandboxes under /sandbox/ (SMS codes included) would be \
            reachable from elsewhere; set CIVICPAY_MODE=production, or CIVICPAY_DEV_ALLOW_PUBLIC=on \
            to publish a development server on purpose";
        if !is_loopback(&self.bind) {
            anyhow::bail!(
                "CIVICPAY_MODE=development refuses CIVICPAY_BIND={}, not a loopback address: {WHY}",
                self.bind
            );
        }
        if let ListenAddr(Some(metrics)) = self.metrics.bind
            && !is_loopback(&metrics)
        {
            anyhow::bail!(
                "CIVICPAY_MODE=development refuses CIVICPAY_METRICS_BIND={metrics}, not a loopback address: {WHY}"
            );
        }
        if !self.auth.trusted_proxies.is_empty() {
            anyhow::bail!(
                "CIVICPAY_MODE=development refuses CIVICPAY_TRUSTED_PROXIES (a reverse proxy in front publishes the server): {WHY}"
            );
        }
        Ok(())
    }

    /// The configuration the environment gives, with defaults for everything unset:
    /// what `civicpay serve` would run with. Tests start from it.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Standalone {
            #[command(flatten)]
            config: Config,
        }
        <Standalone as clap::Parser>::try_parse_from(["civicpay"]).map(|s| s.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_retry_schedule_reads_seconds_minutes_and_hours() {
        assert_eq!(
            parse_schedule("5s, 5m,2h").unwrap(),
            RetrySchedule(vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200)
            ])
        );
    }

    #[test]
    fn a_retry_schedule_without_units_or_with_zero_waits_is_refused() {
        for bad in ["5", "0s", "5d", "", "s", "5s,,5m", "-1s", "5đ"] {
            assert!(parse_schedule(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_storage_prefix_is_a_scheme_a_bucket_and_a_closing_slash() {
        for good in [
            "s3://civicpay-documents/",
            "s3://civicpay-documents/dossiers/",
            "gs://bucket.example/",
        ] {
            assert_eq!(parse_storage_prefix(good).as_deref(), Ok(good));
        }
        for bad in [
            "s3://civicpay-documents",
            "S3://civicpay-documents/",
            "s3:/civicpay-documents/",
            "s3:///",
            "s3://civicpay-documents//",
            "s3://../",
            "s3://civicpay documents/",
            "s3://civicpay-%64ocuments/",
            "civicpay-documents/",
            "",
        ] {
            assert!(parse_storage_prefix(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
