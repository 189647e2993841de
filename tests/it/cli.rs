//! The binary's command line: help that explains every setting, fast failure on a bad one.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sqlx::PgPool;

use crate::support::app::{TEST_JWT_SECRET, TEST_PIN_PEPPER, TEST_RECEIPT_SIGNING_KEY};
use crate::support::database::database_named;
use crate::support::demo::load_demo;

fn civicpay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civicpay"));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

/// Like [`civicpay`], for a `serve` that is expected to refuse: one still running after
/// `limit` (it started instead) is killed and the test fails.
fn civicpay_refusing(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civicpay"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("the binary runs");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => output.expect("the binary's output is read"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "`civicpay {}` with {env:?} was still running after {limit:?}: it started instead of refusing",
                args.join(" ")
            );
        }
    }
}

const SETTINGS: &[&str] = &[
    "CIVICPAY_MODE",
    "CIVICPAY_BIND",
    "CIVICPAY_BODY_LIMIT_BYTES",
    "CIVICPAY_SHUTDOWN_GRACE_MS",
    "CIVICPAY_LOG_FORMAT",
    "CIVICPAY_DATABASE_URL",
    "CIVICPAY_DB_MAX_CONNECTIONS",
    "CIVICPAY_DB_ACQUIRE_TIMEOUT_MS",
    "CIVICPAY_DB_STATEMENT_TIMEOUT_MS",
    "CIVICPAY_JWT_SECRET",
    "CIVICPAY_SMS_PROVIDER",
    "CIVICPAY_OTP_GLOBAL_HOURLY_CAP",
    "CIVICPAY_LOGIN_FAILURES_PER_PHONE",
    "CIVICPAY_LOGIN_FAILURES_PER_ADDRESS",
    "CIVICPAY_LOGIN_WINDOW_SECS",
    "CIVICPAY_TRUSTED_PROXIES",
    "CIVICPAY_PIN_PEPPER",
    "CIVICPAY_IDENTITY_VERIFIER",
    "CIVICPAY_MERCHANT_KEY_GRACE_SECS",
    "CIVICPAY_CALLBACK_WORKERS",
    "CIVICPAY_CALLBACK_TIMEOUT_MS",
    "CIVICPAY_CALLBACK_LEASE_MS",
    "CIVICPAY_CALLBACK_RETRY_SCHEDULE",
    "CIVICPAY_WEBHOOK_SECRET_GRACE_SECS",
    "CIVICPAY_PUBLIC_URL",
    "CIVICPAY_PAYMENT_SANDBOX",
    "CIVICPAY_VNPAY_TMN_CODE",
    "CIVICPAY_VNPAY_HASH_SECRET",
    "CIVICPAY_VNPAY_PAY_URL",
    "CIVICPAY_VNPAY_API_URL",
    "CIVICPAY_RECONCILE_AFTER_SECS",
    "CIVICPAY_TOPUP_EXPIRY_SECS",
    "CIVICPAY_PASSWORD_HASHES_AT_ONCE",
    "CIVICPAY_PASSWORD_HASH_WAIT_MS",
    "CIVICPAY_DEV_ALLOW_PUBLIC",
    "CIVICPAY_METRICS_BIND",
    "CIVICPAY_METRICS_TOKEN",
    "CIVICPAY_BILL_LOOKUP_FAILURES_PER_ACCOUNT",
    "CIVICPAY_BILL_LOOKUP_WINDOW_SECS",
    "CIVICPAY_RECEIPT_SIGNING_KEY",
    "CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS",
];

#[test]
fn help_names_every_setting_with_its_default() {
    for args in [&["--help"][..], &["serve", "--help"][..]] {
        let output = civicpay(args, &[]);
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        for setting in SETTINGS {
            assert!(
                help.contains(setting),
                "`civicpay {}` lacks {setting}:\n{help}",
                args.join(" ")
            );
        }
        assert!(help.contains("127.0.0.1:8080"), "{help}");
    }
}

#[test]
fn a_bad_setting_fails_fast_naming_it() {
    for (setting, value) in [
        ("CIVICPAY_BIND", "not-an-address"),
        ("CIVICPAY_MODE", "staging"),
        ("CIVICPAY_DB_MAX_CONNECTIONS", "0"),
        ("CIVICPAY_BODY_LIMIT_BYTES", "lots"),
        ("CIVICPAY_JWT_SECRET", "too-short"),
        ("CIVICPAY_TRUSTED_PROXIES", "10.0.0.1,not-an-ip"),
        ("CIVICPAY_CALLBACK_RETRY_SCHEDULE", "5 minutes"),
        // 31 bytes, 33 bytes, padded, not base64url.
        (
            "CIVICPAY_RECEIPT_SIGNING_KEY",
            "dGVzdC1yZWNlaXB0LXNpZ25pbmcta2V5LTAxMjM0NQ",
        ),
        (
            "CIVICPAY_RECEIPT_SIGNING_KEY",
            "dGVzdC1yZWNlaXB0LXNpZ25pbmcta2V5LTAxMjM0NTY3",
        ),
        (
            "CIVICPAY_RECEIPT_SIGNING_KEY",
            "dGVzdC1yZWNlaXB0LXNpZ25pbmcta2V5LTAxMjM0NTY=",
        ),
        ("CIVICPAY_RECEIPT_SIGNING_KEY", "not a key"),
        ("CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS", "c2hvcnQ"),
    ] {
        let output = civicpay(&["serve"], &[(setting, value)]);
        assert_eq!(output.status.code(), Some(2), "{setting}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(setting), "{setting}={value}: {stderr}");
    }
}

#[test]
fn an_unreachable_database_exits_non_zero_naming_the_url() {
    let output = civicpay(
        &["migrate"],
        &[(
            "CIVICPAY_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/civicpay",
        )],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("postgres://postgres@127.0.0.1:1/civicpay"),
        "{stderr}"
    );
}

#[test]
fn production_without_its_signing_key_refuses_to_start() {
    let output = civicpay(&["serve"], &[("CIVICPAY_MODE", "production")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("CIVICPAY_JWT_SECRET"), "{stderr}");
}

#[test]
fn a_callback_lease_shorter_than_the_timeout_refuses_to_start() {
    let output = civicpay(
        &["serve"],
        &[
            ("CIVICPAY_CALLBACK_TIMEOUT_MS", "10000"),
            ("CIVICPAY_CALLBACK_LEASE_MS", "5000"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("CIVICPAY_CALLBACK_LEASE_MS"), "{stderr}");
}

#[test]
fn ledger_fund_is_refused_in_production() {
    let output = civicpay(
        &[
            "ledger",
            "fund",
            "--phone",
            "0912345678",
            "--amount",
            "1000",
        ],
        &[("CIVICPAY_MODE", "production")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("refused")
    );
}

/// Nothing listens on port 1: a server that got past its checks fails here, naming it.
const UNREACHABLE_DATABASE: &str = "postgres://postgres@127.0.0.1:1/civicpay";

#[test]
fn a_bad_metrics_or_exposure_setting_fails_fast_naming_it() {
    for (setting, value) in [
        ("CIVICPAY_METRICS_BIND", "everywhere"),
        ("CIVICPAY_METRICS_TOKEN", "too-short"),
        ("CIVICPAY_DEV_ALLOW_PUBLIC", "yes"),
    ] {
        let output = civicpay_refusing(
            &["serve"],
            &[
                (setting, value),
                ("CIVICPAY_DATABASE_URL", UNREACHABLE_DATABASE),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(output.status.code(), Some(2), "{setting}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(setting), "{setting}={value}: {stderr}");
    }
}

/// Issue 13, item 8: a development server (a forgotten CIVICPAY_MODE) serves its SMS sandbox,
/// reset codes included, to whoever reaches it, so it refuses to be reachable from elsewhere.
#[test]
fn development_refuses_a_public_address_or_a_proxy_unless_allowed() {
    for (setting, value) in [
        ("CIVICPAY_BIND", "0.0.0.0:0"),
        ("CIVICPAY_BIND", "[::]:0"),
        ("CIVICPAY_BIND", "192.0.2.10:8080"),
        ("CIVICPAY_METRICS_BIND", "0.0.0.0:0"),
        ("CIVICPAY_TRUSTED_PROXIES", "10.0.0.1"),
        // A proxy on the same host is what publishes a loopback server.
        ("CIVICPAY_TRUSTED_PROXIES", "127.0.0.1"),
    ] {
        let output = civicpay_refusing(
            &["serve"],
            &[
                ("CIVICPAY_MODE", "development"),
                (setting, value),
                ("CIVICPAY_DATABASE_URL", UNREACHABLE_DATABASE),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(output.status.code(), Some(1), "{setting}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains(setting) && stderr.contains("CIVICPAY_DEV_ALLOW_PUBLIC"),
            "{setting}={value}: {stderr}"
        );
        assert!(
            !stderr.contains("127.0.0.1:1"),
            "{setting}={value} was refused before the database was reached: {stderr}"
        );
    }

    // Allowed on purpose, the server goes on (and fails at the unreachable database).
    let output = civicpay_refusing(
        &["serve"],
        &[
            ("CIVICPAY_MODE", "development"),
            ("CIVICPAY_BIND", "0.0.0.0:0"),
            ("CIVICPAY_TRUSTED_PROXIES", "10.0.0.1"),
            ("CIVICPAY_DEV_ALLOW_PUBLIC", "on"),
            ("CIVICPAY_DATABASE_URL", UNREACHABLE_DATABASE),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("CIVICPAY_DEV_ALLOW_PUBLIC"), "{stderr}");
}

/// Issue 13, item 8: the README publishes the demo passwords and keys, so production refuses a
/// database the demo was loaded into, naming what it found.
#[sqlx::test]
async fn production_refuses_to_start_on_a_database_holding_demo_data(pool: PgPool) {
    load_demo(&pool).await;
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let url = database_named(&database).database_url;
    let output = civicpay_refusing(
        &["serve"],
        &[
            ("CIVICPAY_MODE", "production"),
            ("CIVICPAY_JWT_SECRET", TEST_JWT_SECRET),
            ("CIVICPAY_PIN_PEPPER", TEST_PIN_PEPPER),
            ("CIVICPAY_RECEIPT_SIGNING_KEY", TEST_RECEIPT_SIGNING_KEY),
            ("CIVICPAY_DATABASE_URL", url.as_str()),
            ("CIVICPAY_BIND", "127.0.0.1:0"),
            ("CIVICPAY_METRICS_BIND", "off"),
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for named in [
        "demo data",
        "+84900000001",
        "admin",
        "+84912345678",
        "mk_demo_",
        "DONGBA12",
        "demo wallet of +84987654321",
    ] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
}
