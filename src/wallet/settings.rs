//! What the application state holds for wallets, built once from the configuration: the PIN
//! pepper (which also keys national ID numbers) and the identity verifier. This file and
//! `identity` use nothing above the foundations, so the application state (`state.rs`) can hold
//! them.

use std::sync::Arc;

use crate::config::{Config, IdentityVerifierKind};
use crate::crypto::random_token;
use crate::wallet::identity::{IdentityVerifier, SandboxVerifier};

pub struct WalletState {
    pub(super) pepper: Vec<u8>,
    pub(super) verifier: Option<Arc<dyn IdentityVerifier>>,
}

impl WalletState {
    pub fn new(config: &Config) -> Self {
        let pepper = match &config.wallet.pin_pepper {
            Some(pepper) => pepper.clone().into_bytes(),
            None => {
                tracing::warn!(
                    "CIVICPAY_PIN_PEPPER is not set: using a random pepper; PINs die with the process"
                );
                random_token().into_bytes()
            }
        };
        let verifier: Option<Arc<dyn IdentityVerifier>> =
            match config.wallet.identity_verifier(config.mode) {
                IdentityVerifierKind::Sandbox => Some(Arc::new(SandboxVerifier)),
                IdentityVerifierKind::Disabled => None,
            };
        WalletState { pepper, verifier }
    }

    pub fn pepper(&self) -> &[u8] {
        &self.pepper
    }
}
