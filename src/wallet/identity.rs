//! Identity verification before a wallet may hold money: a national ID number (căn cước,
//! [`NationalId`], whose structure is checked when it is parsed), confirmed by a pluggable
//! [`IdentityVerifier`]. Only a keyed hash of the number is stored (unique: one verified wallet
//! per person) and its last four digits for display. The application state holds the
//! verifier, so this file uses nothing above the domain types.

use futures_util::future::BoxFuture;

use crate::domain::NationalId;

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
