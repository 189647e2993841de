//! The application state every handler receives (`State<AppState>`): the pool, the metrics
//! registry, and what each feature takes from the configuration (keys, limits, providers, the
//! identity verifier, document storage), built once at start.
//!
//! The features use this state, so it sits below them: it names only the foundations and the
//! few files of each feature that hold those settings (`auth::settings`, `wallet::settings`,
//! `payments::settings`, `dossiers::settings`, `ops::http_metrics`, `receipts::signing`), which
//! themselves use nothing above the foundations. `tests/it/layers.rs` keeps it so.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::settings::AuthState;
use crate::config::{Config, Mode};
use crate::dossiers::settings::DossierSettings;
use crate::ops::http_metrics::HttpMetrics;
use crate::payments::settings::Providers;
use crate::receipts::signing::ReceiptKeys;
use crate::wallet::settings::WalletState;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub mode: Mode,
    pub metrics: Arc<HttpMetrics>,
    pub auth: Arc<AuthState>,
    pub wallet: Arc<WalletState>,
    /// How long a merchant's API key keeps working after the merchant rotates it.
    pub merchant_key_grace_secs: u64,
    pub providers: Providers,
    /// How long callbacks carry a second signature after a webhook-secret rotation.
    pub webhook_secret_grace_secs: u64,
    /// `CIVICPAY_METRICS_TOKEN`: when set, the API's listener serves `/metrics` to it.
    pub metrics_token: Option<Arc<str>>,
    /// Document storage and public tracking's limit on wrong keys.
    pub dossiers: Arc<DossierSettings>,
    /// The key receipts are signed with, and the earlier ones they still verify with.
    pub receipt_keys: Arc<ReceiptKeys>,
    /// The largest request body the router takes.
    pub(crate) body_limit_bytes: usize,
}

impl AppState {
    /// Panics unless `config` holds a well-formed receipt signing key, as a server's always
    /// does: production refuses to start without one (`Config::check_mode`), development
    /// generates one (`secrets::fill_in_development`), clap checks the settings as it reads
    /// them, and `server::run` checks the keys once more, as an error, before building the
    /// state. Tests configure a fixed key.
    pub fn new(db: PgPool, config: &Config) -> Self {
        AppState {
            db,
            mode: config.mode,
            metrics: Arc::new(HttpMetrics::new()),
            auth: Arc::new(AuthState::new(config)),
            wallet: Arc::new(WalletState::new(config)),
            merchant_key_grace_secs: config.merchant_key_grace_secs,
            webhook_secret_grace_secs: config.callbacks.secret_grace_secs,
            providers: Providers::from_config(config),
            metrics_token: config.metrics.token.as_deref().map(Arc::from),
            dossiers: Arc::new(DossierSettings::from_config(&config.dossiers)),
            receipt_keys: Arc::new(
                ReceiptKeys::from_config(&config.receipts)
                    .expect("the receipt keys are checked before the state is built"),
            ),
            body_limit_bytes: usize::try_from(config.body_limit_bytes).unwrap_or(usize::MAX),
        }
    }
}
