//! Background tasks (delivery workers, reconcilers, folders) run beside the HTTP server. Each
//! gets a cancellation token; shutdown cancels them all and waits until every one has returned,
//! so none is cut off halfway through a unit of work.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct BackgroundTasks {
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl BackgroundTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a task. It must return soon after `cancelled` fires.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let future = task(self.cancel.child_token());
        self.tracker.spawn(async move {
            future.await;
            tracing::info!(task = name, "background task stopped");
        });
    }

    /// Cancels every task and waits for them, at most `grace`. Returns whether all stopped.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn shutdown_waits_for_tasks_to_finish_their_work() {
        let tasks = BackgroundTasks::new();
        let finished_cleanly = Arc::new(AtomicBool::new(false));
        let flag = finished_cleanly.clone();
        tasks.spawn("test", |cancel| async move {
            cancel.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await; // the last unit of work
            flag.store(true, Ordering::SeqCst);
        });
        assert!(tasks.shutdown(Duration::from_secs(5)).await);
        assert!(finished_cleanly.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_a_task_that_ignores_cancellation() {
        let tasks = BackgroundTasks::new();
        tasks.spawn("stuck", |_| std::future::pending());
        assert!(!tasks.shutdown(Duration::from_millis(50)).await);
    }
}
