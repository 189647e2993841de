//! The binary's command line: help that explains every setting, fast failure on a bad one.

use std::process::{Command, Output};

fn civicpay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civicpay"));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
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
