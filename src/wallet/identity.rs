//! Identity verification before a wallet may hold money: a 12-digit national ID number (căn
//! cước), checked for its structure here and by a pluggable [`IdentityVerifier`]. Only a keyed
//! hash of the number is stored (unique: one verified wallet per person) and its last four
//! digits for display.

use futures_util::future::BoxFuture;

use crate::auth::{constant_time_eq, hmac_sha256};

/// Province codes that begin a national ID number (the 63 provinces before the 2025 merger).
const PROVINCE_CODES: &[u16] = &[
    1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35, 36, 37,
    38, 40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70, 72, 74, 75, 77,
    79, 80, 82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NationalId(String);

impl NationalId {
    /// 12 digits: a province code, a century-and-sex digit, two digits of the birth year, and
    /// six more digits.
    pub fn parse(input: &str) -> Option<NationalId> {
        let digits = input.trim();
        if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let province: u16 = digits[0..3].parse().ok()?;
        PROVINCE_CODES
            .contains(&province)
            .then(|| NationalId(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        &self.0[8..]
    }

    /// The number keyed under the server's pepper: how wallets store it (one verified wallet
    /// per person) and how dossiers are matched to the person it names, never the number.
    pub fn keyed(&self, pepper: &[u8]) -> [u8; 32] {
        hmac_sha256(pepper, self.0.as_bytes())
    }

    /// Whether `stored` is this number keyed under `pepper` (constant time).
    pub fn is_keyed_as(&self, pepper: &[u8], stored: &[u8]) -> bool {
        constant_time_eq(&self.keyed(pepper), stored)
    }
}

pub enum Verdict {
    /// A real person, with the name their identity record carries: payouts go only to that
    /// name, whatever the account's display name becomes later.
    Verified {
        confirmed_name: String,
    },
    Rejected,
}

/// The seam for a real identity service (the national population database's eKYC, say).
pub trait IdentityVerifier: Send + Sync {
    fn verify<'a>(
        &'a self,
        national_id: &'a NationalId,
        full_name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Verdict>>;
}

/// Development only: every well-formed number is a real person, named as the account is.
pub struct SandboxVerifier;

impl IdentityVerifier for SandboxVerifier {
    fn verify<'a>(
        &'a self,
        _: &'a NationalId,
        full_name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Verdict>> {
        let confirmed_name = full_name.to_owned();
        Box::pin(async { Ok(Verdict::Verified { confirmed_name }) })
    }
}

#[cfg(test)]
mod tests {
    use super::NationalId;

    #[test]
    fn well_formed_numbers_parse() {
        let id = NationalId::parse("046095012345").unwrap();
        assert_eq!(id.last4(), "2345");
        assert!(NationalId::parse("001203000001").is_some());
    }

    #[test]
    fn malformed_numbers_are_refused() {
        for bad in [
            "",
            "04609501234",
            "0460950123456",
            "04609501234x",
            "003095012345",
            "999095012345",
        ] {
            assert_eq!(NationalId::parse(bad), None, "{bad}");
        }
    }
}
