//! Vietnamese phone numbers, parsed once at the edge: accepted as `0912345678`, `84912345678`
//! or `+84912345678` (spaces, dots and dashes ignored), kept and returned in E.164.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

/// No notation of a phone number is longer than this; anything longer is refused unread.
const MAX_INPUT_LEN: usize = 32;

impl Phone {
    /// `None` for anything but a Vietnamese mobile number, including text holding a control
    /// character (a NUL above all, which PostgreSQL cannot store in text).
    pub fn parse(input: &str) -> Option<Phone> {
        if input.len() > MAX_INPUT_LEN || input.chars().any(char::is_control) {
            return None;
        }
        let digits: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        let national = digits
            .strip_prefix("+84")
            .or_else(|| digits.strip_prefix("84").filter(|rest| rest.len() >= 9))
            .or_else(|| digits.strip_prefix('0'))?;
        // Mobile numbers: 9 digits after the country code, starting 3, 5, 7, 8 or 9.
        let valid = national.len() == 9
            && national.bytes().all(|b| b.is_ascii_digit())
            && matches!(national.as_bytes()[0], b'3' | b'5' | b'7' | b'8' | b'9');
        valid.then(|| Phone(format!("+84{national}")))
    }

    /// Trusted to be E.164 already (read back from our own database).
    pub fn from_stored(e164: String) -> Phone {
        Phone(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Phone::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("not a Vietnamese mobile number"))
    }
}

#[cfg(test)]
mod tests {
    use super::Phone;

    #[test]
    fn every_notation_gives_the_same_e164() {
        for input in [
            "0912345678",
            "84912345678",
            "+84912345678",
            "+84 912 345 678",
            "091.234.5678",
        ] {
            assert_eq!(
                Phone::parse(input).unwrap().as_str(),
                "+84912345678",
                "{input}"
            );
        }
    }

    #[test]
    fn non_mobile_or_malformed_numbers_are_refused() {
        for input in [
            "",
            "12345",
            "0212345678",
            "+8491234567",
            "+849123456789",
            "09123x5678",
            "+1 415 555 0100",
        ] {
            assert_eq!(Phone::parse(input), None, "{input}");
        }
    }

    #[test]
    fn control_characters_and_overlong_text_are_refused() {
        for input in [
            "0912\u{0}345678",
            "0912345678\u{0}",
            "\u{0}",
            "0912345678\n",
            "\t0912345678",
            "091\u{7f}2345678",
            "091\u{85}2345678",
        ] {
            assert_eq!(Phone::parse(input), None, "{input:?}");
        }
        let padded = format!("{}0912345678", " ".repeat(40));
        assert_eq!(Phone::parse(&padded), None);
        assert!(Phone::parse("(+84) 912-345-678").is_some());
    }
}
