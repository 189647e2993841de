//! The README's offline receipt check, run exactly as the README prints it: Python's
//! `cryptography`, an Ed25519 implementation independent of ours, accepts a receipt our code
//! signed, and refuses it with one digit of the amount, its key id or one byte of its
//! signature changed, as our own verification does (issue 18, items 4 and 5).
//!
//! The receipt is built here and canonicalized with `receipts::jcs`, so this checks the
//! signing and the offline check on their own, whatever the numbering does.

use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civicpay::receipts::jcs::canonical;
use civicpay::receipts::signing::{ReceiptKeys, Refused, compact};
use serde_json::{Value, json};

use crate::support::app::test_config;

const BEGIN: &str = "<!-- receipt-verify-python -->";
const END: &str = "<!-- /receipt-verify-python -->";

/// The Python block between the README's markers.
fn readme_snippet() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let (_, after) = readme
        .split_once(BEGIN)
        .unwrap_or_else(|| panic!("README.md has no {BEGIN}"));
    let (between, _) = after
        .split_once(END)
        .unwrap_or_else(|| panic!("README.md has no {END}"));
    let code = between
        .trim()
        .strip_prefix("```python\n")
        .and_then(|code| code.strip_suffix("```"))
        .expect("a ```python block between the markers");
    code.to_owned()
}

/// Python 3 and its `cryptography` package are needed: without them this test fails, saying
/// so, rather than passing with nothing checked (CI installs `python3-cryptography`).
fn require_python_cryptography() {
    let found = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    match found {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "the README's receipt check needs Python's `cryptography` package \
             (apt-get install python3-cryptography, or pip install cryptography): {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!("the README's receipt check needs python3 on the PATH: {error}"),
    }
}

fn run_snippet(snippet: &str, compact: &str, public_key: &str) -> Output {
    Command::new("python3")
        .args(["-c", snippet, compact, public_key])
        .output()
        .expect("python3 runs")
}

fn receipt(key_id: &str) -> Value {
    json!({
        "id": "0193a1f2-7c3e-7d4a-9b2e-5f6a7b8c9d0e",
        "form": "01BLP0-001",
        "series": "CT-26E",
        "number": 42,
        "year": 2026,
        "bill_code": "B7QK2M9XPA",
        "biller": {"code": "EVNHUE", "name": "Công ty Điện lực Thừa Thiên Huế", "tax_code": null},
        "payer_name": "Nguyễn Văn An",
        "items": [
            {"name": "Tiền điện tháng 11/2026 (\"bậc 1\")", "amount": 300000},
            {"name": "Thuế GTGT 8%", "amount": 24000},
        ],
        "amount": 324000,
        "method": "wallet",
        "paid_at": "2026-11-20T03:15:00Z",
        "issued_at": "2026-11-20T03:15:01Z",
        "key_id": key_id,
    })
}

#[test]
fn the_readme_python_verifies_a_receipt_we_signed_and_refuses_it_tampered_with() {
    require_python_cryptography();
    let snippet = readme_snippet();
    let keys = ReceiptKeys::from_config(&test_config().receipts).expect("the test key");
    let public_key = keys.public_keys()[0].public_key.clone();
    let payload = canonical(&receipt(keys.key_id()));
    let signature = keys.sign(payload.as_bytes());
    let genuine = compact(payload.as_bytes(), &signature);

    assert!(keys.verify_compact(&genuine).is_ok());
    let output = run_snippet(&snippet, &genuine, &public_key);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("genuine"),
        "the README's check refused a genuine receipt: {output:?}"
    );
    assert!(
        stdout.contains("42") && stdout.contains("324000"),
        "{stdout}"
    );

    let amount = payload.replacen("\"amount\":324000,", "\"amount\":824000,", 1);
    assert_ne!(amount, payload, "the receipt's own amount is changed");
    let key_id = canonical(&receipt("AAAAAAAAAAAAAAAA"));
    let mut flipped = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    flipped[10] ^= 0x01;
    let tampered = [
        (
            "one digit of the amount",
            compact(amount.as_bytes(), &signature),
            Refused::BadSignature,
        ),
        (
            "the key id",
            compact(key_id.as_bytes(), &signature),
            Refused::UnknownKey,
        ),
        (
            "one byte of the signature",
            compact(payload.as_bytes(), &URL_SAFE_NO_PAD.encode(flipped)),
            Refused::BadSignature,
        ),
    ];
    for (what, forged, refused) in tampered {
        assert_eq!(
            keys.verify_compact(&forged),
            Err(refused),
            "our verification, with {what} changed"
        );
        let output = run_snippet(&snippet, &forged, &public_key);
        assert_eq!(
            output.status.code(),
            Some(1),
            "the README's check with {what} changed: {output:?}"
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with("forged"),
            "the README's check with {what} changed: {output:?}"
        );
    }
}
