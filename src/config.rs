//! Configuration: every setting comes from a command-line flag or its environment variable,
//! with a documented default. clap parses and validates them all before anything starts, so a
//! bad value fails fast with a message naming the setting.

use std::net::SocketAddr;

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

    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// How to reach PostgreSQL, the one system of record.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
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
