//! What the application state holds for payments, built once from the configuration: the
//! providers this process offers and the addresses and ages they work with. This file, the
//! providers (`sandbox`, `vnpay`) and `provider` use nothing above the foundations, so the
//! application state (`state.rs`) can hold them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::payments::provider::Provider;
use crate::payments::sandbox::Sandbox;
use crate::payments::vnpay::VnPay;

/// The providers this process offers, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn Provider>>,
    pub public_url: String,
    pub reconcile_after_secs: u64,
    pub topup_expiry_secs: u64,
}

impl Providers {
    pub fn from_config(config: &Config) -> Self {
        let payments = &config.payments;
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        let public_url = payments
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        if payments.sandbox_enabled(config.mode) {
            providers.push(Arc::new(Sandbox::new(&public_url)));
        }
        if let (Some(tmn_code), Some(secret)) =
            (&payments.vnpay_tmn_code, &payments.vnpay_hash_secret)
        {
            providers.push(Arc::new(VnPay::new(
                tmn_code,
                secret,
                payments.vnpay_pay_url.as_str(),
                payments.vnpay_api_url.as_str(),
            )));
        }
        Providers {
            by_name: providers.into_iter().map(|p| (p.name(), p)).collect(),
            public_url,
            reconcile_after_secs: payments.reconcile_after_secs,
            topup_expiry_secs: payments.topup_expiry_secs,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    pub fn sandbox_enabled(&self) -> bool {
        self.by_name.contains_key("sandbox")
    }

    pub fn return_url(&self, provider: &str) -> String {
        format!("{}/v1/providers/{provider}/return", self.public_url)
    }

    /// How old a pending top-up must be before it may expire: the configured age, and never
    /// less than the provider's own payment window.
    pub fn expiry_age(&self, provider: &dyn Provider) -> chrono::Duration {
        let configured = chrono::Duration::seconds(self.topup_expiry_secs as i64);
        configured.max(provider.payment_window())
    }
}
