//! The national ID number (căn cước): 12 digits whose first three are a province code. Wallets
//! are verified with it and counter dossiers record it; only a keyed hash of it is ever stored
//! (and its last four digits, for display).

use crate::crypto::{constant_time_eq, hmac_sha256};

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
