//! Callback delivery workers on a test's database, as a server process runs them.

use std::time::Duration;

use civicpay::callbacks::delivery::{DeliverySettings, Dispatcher};
use civicpay::callbacks::destination::Destinations;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Quick settings for tests: short timeouts and lease, two retries a second apart, any
/// destination (loopback receivers).
pub fn quick_settings() -> DeliverySettings {
    DeliverySettings {
        concurrency: 16,
        timeout: Duration::from_millis(500),
        lease: Duration::from_millis(1500),
        retry_schedule: vec![Duration::from_secs(1), Duration::from_secs(1)],
        destinations: Destinations::Any,
    }
}

pub struct Workers {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Workers {
    pub fn start(pool: &PgPool, settings: DeliverySettings) -> Workers {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(Dispatcher::new(pool.clone(), settings).run(cancel.clone()));
        Workers { cancel, task }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }

    /// Like a process killed: whatever was in flight is dropped mid-way.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
