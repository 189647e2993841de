//! The reconciler: top-ups still pending after a while are asked about at their provider and
//! settled, failed or expired through [`settle`], the path notifications take, so it can run
//! twice, or in two processes at once, and change nothing twice (the top-up's row is locked and
//! must still be pending). Withdrawals are reconciled by the payout worker, whose requests are
//! idempotent at the provider.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use super::provider::{Outcome, ProviderStatus};
use super::settings::Providers;
use super::{Settlement, settle};
use crate::background::BackgroundTasks;

const EVERY: Duration = Duration::from_secs(30);
const BATCH: i64 = 100;
/// A top-up still pending after a check is asked about again after this, doubling each time
/// up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

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

/// One pass over the top-ups due for a check; returns how many moved.
///
/// Each pending top-up keeps its own next check time: the pass claims the due ones (moving
/// their next check out with a backoff before asking anyone), so a top-up whose provider
/// keeps erroring, or one that stays pending, waits its turn instead of filling every pass and
/// starving the rest. One too old to wait for expires even if its provider cannot be asked.
pub async fn reconcile(db: &PgPool, providers: &Providers) -> anyhow::Result<usize> {
    let configured: Vec<String> = providers.all().map(|p| p.name().to_owned()).collect();
    let due = sqlx::query!(
        "UPDATE topups t
         SET checks = t.checks + 1,
             next_check_at = now() + make_interval(secs => least($3, $4 * power(2, least(t.checks, 16))))
         WHERE t.id IN (
             SELECT id FROM topups
             WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)
               AND (next_check_at IS NULL OR next_check_at <= now())
               AND provider = ANY($5)
             ORDER BY COALESCE(next_check_at, created_at) LIMIT $2
             FOR UPDATE SKIP LOCKED)
         RETURNING t.provider, t.reference, t.created_at",
        providers.reconcile_after_secs as f64,
        BATCH,
        MAX_BACKOFF.as_secs_f64(),
        FIRST_BACKOFF.as_secs_f64(),
        // Only top-ups this process can ask about: another process may have the provider.
        &configured,
    )
    .fetch_all(db)
    .await?;
    let mut moved = 0;
    for topup in due {
        let Some(provider) = providers.get(&topup.provider) else {
            continue;
        };
        let expired = Utc::now() - topup.created_at > providers.expiry_age(provider.as_ref());
        let status = provider.query(db, &topup.reference, topup.created_at).await;
        let settlement = match status {
            Ok(ProviderStatus::Succeeded {
                transaction_id,
                amount,
            }) => Settlement::Succeeded {
                transaction_id,
                amount,
            },
            Ok(ProviderStatus::Failed { transaction_id }) => Settlement::Failed {
                transaction_id: Some(transaction_id),
                amount: None,
            },
            Ok(ProviderStatus::Pending) if expired => Settlement::Expired,
            Ok(ProviderStatus::Pending) => continue,
            Err(error) => {
                tracing::warn!(%error, reference = topup.reference, expired, "asking the provider failed");
                if !expired {
                    continue;
                }
                Settlement::Expired
            }
        };
        match settle(db, &topup.provider, &topup.reference, settlement).await {
            Ok(Outcome::Confirmed) => moved += 1,
            Ok(_) => {}
            // One top-up that cannot be settled does not hold up the others.
            Err(error) => {
                tracing::warn!(%error, reference = topup.reference, "settling a top-up failed")
            }
        }
    }
    Ok(moved)
}
