//! What the application state holds for payments, built once from the configuration: the
//! providers this process offers and the addresses and ages they work with. This file, the
//! providers (`sandbox`, `vnpay`) and `provider` use nothing above the foundations, so the
//! application state (`state.rs`) can hold them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::config::Config;
use crate::payments::provider::{PaymentRequest, Provider};
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

/// A payment opened at a provider, waiting for its notification: a top-up of the wallet, or,
/// with a bill, the payment of that bill.
pub struct OpenPayment<'a> {
    pub account_id: Uuid,
    pub amount: i64,
    pub provider: &'a dyn Provider,
    pub client_ip: &'a str,
    pub bill_id: Option<Uuid>,
}

/// The opened payment's row.
pub struct OpenedPayment {
    pub id: Uuid,
    pub payment_url: String,
    pub created_at: DateTime<Utc>,
}

impl Providers {
    /// Opens a payment: its `topups` row, pending, with the provider's payment URL. Whoever
    /// settles it (`payments::settle`) credits the wallet, or pays the bill.
    pub async fn open_payment(
        &self,
        conn: &mut PgConnection,
        payment: OpenPayment<'_>,
    ) -> Result<OpenedPayment, sqlx::Error> {
        let id = Uuid::new_v4();
        let reference = format!("T{}", id.simple().to_string()[..16].to_ascii_uppercase());
        let created_at = Utc::now();
        let return_url = self.return_url(payment.provider.name());
        let payment_url = payment.provider.payment_url(&PaymentRequest {
            reference: &reference,
            amount: payment.amount,
            created_at,
            return_url: &return_url,
            client_ip: payment.client_ip,
        });
        sqlx::query!(
            "INSERT INTO topups (id, account_id, provider, amount, reference, payment_url, created_at, bill_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            id,
            payment.account_id,
            payment.provider.name(),
            payment.amount,
            reference,
            payment_url,
            created_at,
            payment.bill_id,
        )
        .execute(conn)
        .await?;
        Ok(OpenedPayment {
            id,
            payment_url,
            created_at,
        })
    }
}
