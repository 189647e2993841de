//! Receipts' Ed25519 keys: the one that signs now (`CIVICPAY_RECEIPT_SIGNING_KEY`) and the
//! public keys of earlier ones (`CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS`), each named by a key
//! id derived from its public key, so a rotation needs no id configured and a receipt names
//! the key that signed it.
//!
//! A receipt is signed over its RFC 8785 canonical JSON (`jcs`), which carries its `key_id`, so
//! changing the key id breaks the signature too. Its compact form is `base64url(payload)` `.`
//! `base64url(signature)`, both without padding; [`ReceiptKeys::verify_compact`] checks one the
//! way anyone holding the public keys can, offline (the README shows it in Python).
//!
//! The application state holds these keys, so this file uses nothing above the foundations
//! and `jcs`, which sits at the state's layer too.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::{ReceiptConfig, receipt_key_bytes};
use crate::crypto::sha256;
use crate::receipts::jcs::canonical;

/// The signing key and the public keys receipts are still verified with.
pub struct ReceiptKeys {
    current: SigningKey,
    current_id: String,
    /// Earlier keys, by key id, none of them the current one.
    previous: Vec<(String, VerifyingKey)>,
}

/// A public key receipts are verified with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicKey {
    /// The first 16 characters of base64url(SHA-256(the raw public key)); a receipt's `key_id`
    /// names the key that signed it.
    #[schema(example = "IHZeHKWNaWWPXUAq")]
    pub key_id: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    #[schema(example = "P3mclzn5Jb2i33WeSnbTDVgGsshnpY02lGA6XBq2hrM")]
    pub public_key: String,
    /// Whether new receipts are signed with it; the others only verify older receipts.
    pub current: bool,
}

/// Why a compact receipt is not genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refused {
    /// Not two base64url parts (without padding) joined by one `.`, a signature that is not
    /// 64 bytes, or a payload that is not a JSON object.
    Malformed,
    /// The payload is JSON, but not in its RFC 8785 canonical form: not as we sign.
    NotCanonical,
    /// Its `key_id` (missing, or not a string) names none of our keys, current or previous.
    UnknownKey,
    /// The signature is not the named key's over the payload: altered, or forged.
    BadSignature,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::NotCanonical => "not_canonical",
            Refused::UnknownKey => "unknown_key",
            Refused::BadSignature => "bad_signature",
        }
    }
}

impl ReceiptKeys {
    /// The keys the configuration names. The settings were checked as they were read
    /// (`config`), so this fails only when no signing key is set at all, or when a value put
    /// into the configuration by code (a stored development key) is not a key.
    pub fn from_config(config: &ReceiptConfig) -> anyhow::Result<ReceiptKeys> {
        let Some(seed) = config.signing_key.as_deref() else {
            anyhow::bail!("CIVICPAY_RECEIPT_SIGNING_KEY is not set: receipts cannot be signed");
        };
        let seed = receipt_key_bytes(seed)
            .map_err(|why| anyhow::anyhow!("CIVICPAY_RECEIPT_SIGNING_KEY {why}"))?;
        let current = SigningKey::from_bytes(&seed);
        let current_id = key_id(&current.verifying_key());
        let mut previous: Vec<(String, VerifyingKey)> = Vec::new();
        for text in &config.previous_public_keys {
            let key = public_key(text).map_err(|why| {
                anyhow::anyhow!("CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS: `{text}` {why}")
            })?;
            let id = key_id(&key);
            // The current key listed again, or a key twice, is still one key.
            if id != current_id && previous.iter().all(|(known, _)| *known != id) {
                previous.push((id, key));
            }
        }
        Ok(ReceiptKeys {
            current,
            current_id,
            previous,
        })
    }

    /// The current key's id, which a receipt carries (inside what is signed) before signing.
    pub fn key_id(&self) -> &str {
        &self.current_id
    }

    /// The current key's Ed25519 signature of `payload`, base64url without padding.
    pub fn sign(&self, payload: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.current.sign(payload).to_bytes())
    }

    /// Every key receipts verify with, the current one first.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        let current = (&self.current_id, self.current.verifying_key(), true);
        let previous = self.previous.iter().map(|(id, key)| (id, *key, false));
        std::iter::once(current)
            .chain(previous)
            .map(|(id, key, current)| PublicKey {
                key_id: id.clone(),
                public_key: URL_SAFE_NO_PAD.encode(key.to_bytes()),
                current,
            })
            .collect()
    }

    /// The receipt a compact form carries, if it is genuine: one `.` between two base64url
    /// parts without padding; a payload that is a JSON object in its canonical form, byte for
    /// byte; a `key_id` naming one of our keys; and that key's signature (64 bytes, checked
    /// strictly) over the payload's bytes. The checks run in that order, the first failed one
    /// being the answer.
    pub fn verify_compact(&self, compact: &str) -> Result<serde_json::Value, Refused> {
        let (payload, signature) = compact.split_once('.').ok_or(Refused::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Refused::Malformed)?;
        // A second `.` is no base64url character, so it is refused here.
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refused::Malformed)?;
        let signature = <[u8; 64]>::try_from(signature).map_err(|_| Refused::Malformed)?;
        let receipt: serde_json::Value =
            serde_json::from_slice(&payload).map_err(|_| Refused::Malformed)?;
        if !receipt.is_object() {
            return Err(Refused::Malformed);
        }
        if canonical(&receipt).as_bytes() != payload.as_slice() {
            return Err(Refused::NotCanonical);
        }
        let named = receipt["key_id"].as_str().ok_or(Refused::UnknownKey)?;
        let key = self.verifying_key(named).ok_or(Refused::UnknownKey)?;
        key.verify_strict(&payload, &Signature::from_bytes(&signature))
            .map_err(|_| Refused::BadSignature)?;
        Ok(receipt)
    }

    /// The key `id` names, current or previous.
    fn verifying_key(&self, id: &str) -> Option<VerifyingKey> {
        if id == self.current_id {
            return Some(self.current.verifying_key());
        }
        self.previous
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, key)| *key)
    }
}

/// A receipt's compact form: its signed payload, base64url, `.`, its signature (as
/// [`ReceiptKeys::sign`] gives it).
pub fn compact(payload: &[u8], signature_b64: &str) -> String {
    format!("{}.{signature_b64}", URL_SAFE_NO_PAD.encode(payload))
}

/// A key's id: derived from the public key, so it never needs configuring and no two keys
/// share one (96 bits of SHA-256).
fn key_id(key: &VerifyingKey) -> String {
    let mut id = URL_SAFE_NO_PAD.encode(sha256(key.as_bytes()));
    id.truncate(16);
    id
}

fn public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = receipt_key_bytes(text)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not an Ed25519 public key".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Two 32-byte seeds, base64url: the current key and an earlier one.
    const SEED: &str = "dGVzdC1yZWNlaXB0LXNpZ25pbmcta2V5LTAxMjM0NTY";
    const OLD_SEED: &str = "b2xkLXJlY2VpcHQtc2lnbmluZy1rZXktMDEyMzQ1Njc";

    fn keys(seed: &str, previous: &[&str]) -> ReceiptKeys {
        ReceiptKeys::from_config(&ReceiptConfig {
            signing_key: Some(seed.to_owned()),
            previous_public_keys: previous.iter().map(|key| (*key).to_owned()).collect(),
        })
        .unwrap()
    }

    fn public_key_of(seed: &str) -> String {
        keys(seed, &[]).public_keys()[0].public_key.clone()
    }

    fn receipt(key_id: &str) -> Value {
        json!({
            "id": "0193a1f2-7c3e-7d4a-9b2e-5f6a7b8c9d0e",
            "form": "01BLP0-001",
            "series": "CT-26E",
            "number": 42,
            "year": 2026,
            "bill_code": "B7QK2M9XPA",
            "biller": {"code": "EVNHUE", "name": "Công ty Điện lực Thừa Thiên Huế", "tax_code": "3300101406"},
            "payer_name": "Nguyễn Văn An",
            "items": [
                {"name": "Tiền điện tháng 11/2026", "amount": 300000},
                {"name": "Thuế GTGT 8%", "amount": 24000},
            ],
            "amount": 324000,
            "method": "wallet",
            "paid_at": "2026-11-20T03:15:00Z",
            "issued_at": "2026-11-20T03:15:01Z",
            "key_id": key_id,
        })
    }

    /// `receipt` signed by `keys` in compact form, with its canonical payload.
    fn signed(keys: &ReceiptKeys, receipt: &Value) -> (String, String) {
        let payload = canonical(receipt);
        let compact = compact(payload.as_bytes(), &keys.sign(payload.as_bytes()));
        (payload, compact)
    }

    fn signature_of(compact: &str) -> &str {
        compact.split_once('.').unwrap().1
    }

    #[test]
    fn a_signed_receipt_verifies_and_gives_the_receipt_back() {
        let keys = keys(SEED, &[]);
        let receipt = receipt(keys.key_id());
        let (_, compact) = signed(&keys, &receipt);
        assert_eq!(keys.verify_compact(&compact), Ok(receipt));
    }

    #[test]
    fn the_key_id_is_the_start_of_the_public_keys_hash() {
        let keys = keys(SEED, &[]);
        let listed = keys.public_keys();
        let public = URL_SAFE_NO_PAD
            .decode(listed[0].public_key.as_bytes())
            .unwrap();
        assert_eq!(public.len(), 32);
        let hash = URL_SAFE_NO_PAD.encode(sha256(&public));
        assert_eq!(keys.key_id(), &hash[..16]);
    }

    #[test]
    fn one_digit_of_the_amount_changed_breaks_the_signature() {
        let keys = keys(SEED, &[]);
        let (payload, compact) = signed(&keys, &receipt(keys.key_id()));
        let tampered = payload.replacen(
            "\"amount\":324000,\"bill_code\"",
            "\"amount\":824000,\"bill_code\"",
            1,
        );
        assert_ne!(tampered, payload);
        let forged = super::compact(tampered.as_bytes(), signature_of(&compact));
        assert_eq!(keys.verify_compact(&forged), Err(Refused::BadSignature));
    }

    #[test]
    fn another_key_id_breaks_the_signature_or_names_no_key() {
        let keys = keys(SEED, &[&public_key_of(OLD_SEED)]);
        let (_, compact) = signed(&keys, &receipt(keys.key_id()));
        let old_id = keys.public_keys()[1].key_id.clone();
        for (key_id, refused) in [
            (old_id.as_str(), Refused::BadSignature),
            ("AAAAAAAAAAAAAAAA", Refused::UnknownKey),
        ] {
            let payload = canonical(&receipt(key_id));
            let forged = super::compact(payload.as_bytes(), signature_of(&compact));
            assert_eq!(keys.verify_compact(&forged), Err(refused), "{key_id}");
        }
        let mut without = receipt("");
        without.as_object_mut().unwrap().remove("key_id");
        let payload = canonical(&without);
        let forged = super::compact(payload.as_bytes(), signature_of(&compact));
        assert_eq!(keys.verify_compact(&forged), Err(Refused::UnknownKey));
    }

    #[test]
    fn a_flipped_signature_byte_breaks_the_signature() {
        let keys = keys(SEED, &[]);
        let (payload, compact) = signed(&keys, &receipt(keys.key_id()));
        for at in [0, 31, 32, 63] {
            let mut signature = URL_SAFE_NO_PAD.decode(signature_of(&compact)).unwrap();
            signature[at] ^= 0x01;
            let forged = super::compact(payload.as_bytes(), &URL_SAFE_NO_PAD.encode(signature));
            assert_eq!(
                keys.verify_compact(&forged),
                Err(Refused::BadSignature),
                "byte {at}"
            );
        }
    }

    #[test]
    fn a_payload_not_in_canonical_form_is_refused_even_if_signed() {
        let keys = keys(SEED, &[]);
        let (payload, _) = signed(&keys, &receipt(keys.key_id()));
        let spaced = payload.replacen(":", ": ", 1);
        let reordered = {
            // `amount` is the first member of the canonical form: moved to the end.
            let rest = payload.strip_prefix("{\"amount\":324000,").unwrap();
            format!("{{{},\"amount\":324000}}", rest.strip_suffix('}').unwrap())
        };
        for text in [spaced, reordered] {
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                receipt(keys.key_id())
            );
            // Signed as it is, it is still not a receipt we would have signed.
            let compact = compact(text.as_bytes(), &keys.sign(text.as_bytes()));
            assert_eq!(
                keys.verify_compact(&compact),
                Err(Refused::NotCanonical),
                "{text}"
            );
        }
    }

    #[test]
    fn padding_garbage_and_what_is_no_receipt_are_malformed() {
        let keys = keys(SEED, &[]);
        let (payload, compact) = signed(&keys, &receipt(keys.key_id()));
        let (encoded, signature) = compact.split_once('.').unwrap();
        let padded_payload = format!(
            "{}.{signature}",
            base64::engine::general_purpose::URL_SAFE.encode(&payload)
        );
        assert!(
            padded_payload.contains("=."),
            "the payload's length needs padding"
        );
        let padded_signature = format!("{encoded}.{signature}==");
        let short_signature =
            super::compact(payload.as_bytes(), &URL_SAFE_NO_PAD.encode([7u8; 63]));
        let array = super::compact(b"[1,2]", signature);
        let not_json = super::compact(b"{\"amount\":", signature);
        for bad in [
            String::new(),
            ".".to_owned(),
            encoded.to_owned(),
            format!("{compact}.{signature}"),
            format!("{encoded}.{signature}!"),
            format!("{encoded}+.{signature}"),
            padded_payload,
            padded_signature,
            short_signature,
            array,
            not_json,
        ] {
            assert_eq!(keys.verify_compact(&bad), Err(Refused::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_receipt_signed_by_a_previous_key_still_verifies_once_that_key_is_listed() {
        let old = keys(OLD_SEED, &[]);
        let receipt = receipt(old.key_id());
        let (_, compact) = signed(&old, &receipt);
        let rotated = keys(SEED, &[&public_key_of(OLD_SEED)]);
        assert_eq!(rotated.verify_compact(&compact), Ok(receipt));
        assert_eq!(
            keys(SEED, &[]).verify_compact(&compact),
            Err(Refused::UnknownKey)
        );
        let listed = rotated.public_keys();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].current && !listed[1].current);
        assert_eq!(listed[0].key_id, rotated.key_id());
        assert_eq!(listed[1].key_id, old.key_id());
    }

    #[test]
    fn the_current_key_listed_as_previous_is_listed_once() {
        let keys = keys(
            SEED,
            &[
                &public_key_of(SEED),
                &public_key_of(OLD_SEED),
                &public_key_of(OLD_SEED),
            ],
        );
        assert_eq!(keys.public_keys().len(), 2);
    }

    #[test]
    fn a_missing_or_malformed_key_is_a_startup_error_naming_its_setting() {
        let config = |signing_key: Option<&str>, previous: &[&str]| ReceiptConfig {
            signing_key: signing_key.map(str::to_owned),
            previous_public_keys: previous.iter().map(|key| (*key).to_owned()).collect(),
        };
        for (bad, setting) in [
            (config(None, &[]), "CIVICPAY_RECEIPT_SIGNING_KEY"),
            (config(Some("c2hvcnQ"), &[]), "CIVICPAY_RECEIPT_SIGNING_KEY"),
            (
                config(Some(SEED), &["c2hvcnQ"]),
                "CIVICPAY_RECEIPT_PREVIOUS_PUBLIC_KEYS",
            ),
        ] {
            let error = ReceiptKeys::from_config(&bad).err().unwrap().to_string();
            assert!(error.contains(setting), "{error}");
        }
    }
}
