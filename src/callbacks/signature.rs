//! The Standard Webhooks signature, so any of its libraries verifies our callbacks unchanged:
//! `webhook-signature` is `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}`,
//! keyed with the base64-decoded part of the `whsec_…` secret; during a secret rotation the
//! header carries one signature per live secret, space-separated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::crypto::hmac_sha256;

#[derive(Debug, PartialEq, Eq)]
pub struct MalformedSecret;

/// The HMAC key of a `whsec_…` secret.
pub fn key_of(secret: &str) -> Result<Vec<u8>, MalformedSecret> {
    let encoded = secret.strip_prefix("whsec_").ok_or(MalformedSecret)?;
    STANDARD.decode(encoded).map_err(|_| MalformedSecret)
}

/// One `v1,…` signature.
pub fn sign(
    secret: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let key = key_of(secret)?;
    let mut signed = format!("{webhook_id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key, &signed))
    ))
}

/// The `webhook-signature` header value for every live secret.
pub fn header(
    secrets: &[&str],
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, webhook_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_published_standard_webhooks_test_vector_reproduces() {
        let signature = sign(
            SECRET,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_rotation_signs_with_every_live_secret() {
        let newer = "whsec_bmV3ZXItc2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5";
        let value = header(&[SECRET, newer], "msg_1", 1_700_000_000, b"{}").unwrap();
        let parts: Vec<&str> = value.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            sign(SECRET, "msg_1", 1_700_000_000, b"{}").unwrap()
        );
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn a_secret_without_its_prefix_or_base64_is_refused() {
        assert_eq!(
            key_of("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(MalformedSecret)
        );
        assert_eq!(key_of("whsec_not base64!"), Err(MalformedSecret));
    }
}
