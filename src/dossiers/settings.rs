//! What the application state holds for dossiers, built once from the configuration: where
//! documents may be kept, public tracking's limit on wrong keys, and the postal delivery fee.
//! This file uses nothing above the foundations but auth's limits (`auth::login_limits`, which
//! use nothing above them either), so the application state (`state.rs`) can hold it.

use crate::auth::login_limits::{AddressLimit, FailureKind};
use crate::config::DossierConfig;
use crate::domain::Money;

/// What the dossier routes take from the configuration.
#[derive(Debug, Clone)]
pub struct DossierSettings {
    /// Where documents may be kept.
    pub storage: DocumentStorage,
    /// Failed public-tracking lookups allowed per client address.
    pub tracking_limit: AddressLimit,
    /// What a result sent by post adds to the dossier's fee bill; `None`: nothing.
    pub postal_delivery_fee: Option<Money>,
}

impl DossierSettings {
    pub fn from_config(config: &DossierConfig) -> Self {
        DossierSettings {
            storage: DocumentStorage::new(&config.document_storage_prefix),
            tracking_limit: AddressLimit {
                kind: FailureKind::Tracking,
                per_address: i64::from(config.tracking_failures_per_address),
                window_secs: i64::from(config.tracking_window_secs),
            },
            postal_delivery_fee: Money::payable(i64::from(config.postal_delivery_fee)),
        }
    }
}

/// Our document storage: a document's URI must name an object in it. A URI a client sends is
/// later handed to staff and to whatever fetches files, so a `javascript:` or `file:` link, the
/// cloud metadata address or another bucket would be ours to follow.
#[derive(Debug, Clone)]
pub struct DocumentStorage {
    /// Scheme, bucket, optional folders and a closing `/` (checked by the configuration).
    pub(super) prefix: String,
}

/// S3's limit on an object key, in bytes.
const MAX_OBJECT_KEY_BYTES: usize = 1024;

impl DocumentStorage {
    pub fn new(prefix: &str) -> Self {
        DocumentStorage {
            prefix: prefix.to_owned(),
        }
    }

    /// Whether `uri` is the prefix, byte for byte (so `S3://`, `…-documents.evil/` and other
    /// buckets are not), followed by a key of `/`-separated plain segments: ASCII letters,
    /// digits, `-`, `_` and `.`, none empty, none `.` or `..`. Nothing is decoded or trimmed
    /// (a `%`, a space, `?`, `#` or `\` is refused), so the URI stored is the one checked and
    /// no reader can resolve it elsewhere.
    pub fn holds(&self, uri: &str) -> bool {
        let Some(key) = uri.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let plain = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        !key.is_empty() && key.len() <= MAX_OBJECT_KEY_BYTES && key.split('/').all(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::DocumentStorage;

    #[test]
    fn only_objects_of_our_bucket_are_documents() {
        let storage = DocumentStorage::new("s3://civicpay-documents/");
        for good in [
            "s3://civicpay-documents/to-khai.pdf",
            "s3://civicpay-documents/2026/12/01/0f3a_cccd.v2.pdf",
        ] {
            assert!(storage.holds(good), "{good:?} was refused");
        }
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
            "https://civicpay-documents.s3.amazonaws.com/x.pdf",
            "s3://other-bucket/x.pdf",
            "s3://civicpay-documents.evil/x.pdf",
            "s3://civicpay-documents",
            "s3://civicpay-documents/",
            "s3://civicpay-documents/../other/x.pdf",
            "s3://civicpay-documents/a/../../other/x.pdf",
            "s3://civicpay-documents/./x.pdf",
            "s3://civicpay-documents//x.pdf",
            "s3://civicpay-documents/folder/",
            "s3://civicpay-documents/%2e%2e/other/x.pdf",
            "s3://civicpay-documents/x%20y.pdf",
            "S3://civicpay-documents/x.pdf",
            "s3://CIVICPAY-DOCUMENTS/x.pdf",
            " s3://civicpay-documents/x.pdf",
            "s3://civicpay-documents/x.pdf ",
            "s3://civicpay-documents/x y.pdf",
            "s3://civicpay-documents/x.pdf\n",
            "s3://civicpay-documents/x.pdf?versionId=1",
            "s3://civicpay-documents/x.pdf#frag",
            "s3://civicpay-documents/..\\other\\x.pdf",
            "s3://civicpay-documents/tờ-khai.pdf",
            "",
        ] {
            assert!(!storage.holds(bad), "{bad:?} was accepted");
        }
        let long_key = "a".repeat(1025);
        assert!(!storage.holds(&format!("s3://civicpay-documents/{long_key}")));
        assert!(storage.holds(&format!("s3://civicpay-documents/{}", &long_key[1..])));
    }
}
