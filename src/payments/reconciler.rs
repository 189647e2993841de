//! The reconciler: top-ups still pending after a while are asked about at their provider and
//! settled, failed or expired through [`settle`], the path notifications take, so it can run
//! twice, or in two processes at once, and change nothing twice (the top-up's row is locked and
//! must still be pending). Withdrawals are reconciled by the payout worker, whose requests are
//! idempotent at the provider.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use super::{ProviderStatus, Providers, Settlement, settle};
use crate::background::BackgroundTasks;

const EVERY: Duration = Duration::from_secs(30);
const BATCH: i64 = 100;

pub fn spawn(tasks: &BackgroundTasks, db: PgPool, providers: Providers) {
    tasks.spawn("payment reconciler", |cancel| async move {
        loop {
            if let Err(error) = reconcile(&db, &providers).await {
                tracing::warn!(%error, "reconciling pending top-ups failed; retrying later");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    });
}

/// One pass over the top-ups pending longer than the configured age; returns how many moved.
pub async fn reconcile(db: &PgPool, providers: &Providers) -> anyhow::Result<usize> {
    let stale = sqlx::query!(
        "SELECT provider, reference, created_at FROM topups
         WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)
         ORDER BY created_at LIMIT $2",
        providers.reconcile_after_secs as f64,
        BATCH,
    )
    .fetch_all(db)
    .await?;
    let mut moved = 0;
    for topup in stale {
        let Some(provider) = providers.get(&topup.provider) else {
            continue;
        };
        let status = match provider.query(db, &topup.reference, topup.created_at).await {
            Ok(status) => status,
            Err(error) => {
                tracing::warn!(%error, reference = topup.reference, "asking the provider failed");
                continue;
            }
        };
        let expired = Utc::now() - topup.created_at
            > chrono::Duration::seconds(providers.topup_expiry_secs as i64);
        let settlement = match status {
            ProviderStatus::Succeeded {
                transaction_id,
                amount,
            } => Settlement::Succeeded {
                transaction_id,
                amount,
            },
            ProviderStatus::Failed { transaction_id } => Settlement::Failed {
                transaction_id: Some(transaction_id),
                amount: None,
            },
            ProviderStatus::Pending if expired => Settlement::Expired,
            ProviderStatus::Pending => continue,
        };
        match settle(db, provider.name(), &topup.reference, settlement).await {
            Ok(super::Outcome::Confirmed) => moved += 1,
            Ok(_) => {}
            // One top-up that cannot be settled does not hold up the others.
            Err(error) => {
                tracing::warn!(%error, reference = topup.reference, "settling a top-up failed")
            }
        }
    }
    Ok(moved)
}
