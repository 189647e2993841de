//! Passwords are hashed with Argon2id (the crate's defaults: 19 MiB, 2 passes), on the
//! blocking pool so a hash never stalls the async workers.
//!
//! Each hash holds 19 MiB and a core for its duration, so a [`Hasher`] lets only a bounded
//! number run at once (by default one per core): a login rush then queues instead of growing
//! the allocator by 19 MiB per request in flight and starving payments of CPU. A request that
//! cannot get its turn within the configured wait is answered 503 `service_unavailable` with
//! `Retry-After`. The turn is held by the hash itself, not by the request, so a client that
//! gives up mid-hash does not let another hash start beside the one still running.
//!
//! The hashes run on the hasher's own threads, as many as it has turns, never on tokio's
//! blocking pool: the allocator keeps a freed 19 MiB block in the arena of the thread that
//! freed it, and the blocking pool's threads are many and short-lived, so bounding only how
//! many hashes run at once still left one such block per pool thread (measured: 591 MiB after
//! a burst with two at once). A fixed thread reuses its own block. And since glibc raises its
//! mmap threshold to the size of the largest block freed, after the first hash every 19 MiB
//! block would come from the heap and stay there (363 MiB after the same burst with fixed
//! threads); the threshold is therefore pinned below a hash's memory, so each hash's block is
//! mapped for it and unmapped when it is done (59 MiB peak, 21 MiB after).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AuthConfig;
use crate::http::{ApiError, ErrorCode};

pub const MIN_LEN: usize = 8;
/// Long enough for any passphrase, short enough that hashing stays cheap to ask for.
pub const MAX_LEN: usize = 128;

pub fn fits(password: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&password.chars().count())
}

pub fn length_message() -> crate::http::messages::Message {
    crate::http::messages::Message::PasswordLength {
        min: MIN_LEN,
        max: MAX_LEN,
    }
}

/// Hashes at once when not configured: one per core.
pub fn default_at_once() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Hashes and checks passwords, at most `at_once` at a time; clones share the bound and the
/// threads.
#[derive(Debug, Clone)]
pub struct Hasher {
    turns: Arc<Semaphore>,
    wait: Duration,
    running: Arc<Running>,
    jobs: mpsc::Sender<Job>,
}

/// One hash to run on a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// A turn to hash one password, taken before the work that leads to the hash (a login takes
/// it before its database transaction, a registration before using up its one-time code), so
/// a request refused for want of a turn has spent nothing.
pub struct Turn {
    permit: OwnedSemaphorePermit,
    running: Arc<Running>,
    jobs: mpsc::Sender<Job>,
}

/// Why no hash was made.
#[derive(Debug)]
pub enum HashError {
    /// Every turn stayed taken for the whole wait: too many hashes asked for at once.
    Busy {
        retry_after_secs: u64,
    },
    Failed(anyhow::Error),
}

impl Hasher {
    /// At most `at_once` hashes (at least 1) run at a time; a caller waits up to `wait` for
    /// its turn.
    pub fn new(at_once: usize, wait: Duration) -> Self {
        let at_once = at_once.max(1);
        map_large_blocks_for_their_lifetime();
        Hasher {
            turns: Arc::new(Semaphore::new(at_once)),
            wait,
            running: Arc::default(),
            jobs: spawn_hashing_threads(at_once),
        }
    }

    /// The server's hasher: `CIVICPAY_PASSWORD_HASHES_AT_ONCE` and
    /// `CIVICPAY_PASSWORD_HASH_WAIT_MS`.
    pub fn from_config(config: &AuthConfig) -> Self {
        let at_once = config
            .password_hashes_at_once
            .map_or_else(default_at_once, |n| n as usize);
        Hasher::new(at_once, Duration::from_millis(config.password_hash_wait_ms))
    }

    /// One hasher per process for work outside a server's requests (the demo data, `civicpay
    /// create-admin`): one per core, and a long wait since nobody is kept waiting on a 503.
    pub fn standalone() -> &'static Hasher {
        static STANDALONE: std::sync::OnceLock<Hasher> = std::sync::OnceLock::new();
        STANDALONE.get_or_init(|| Hasher::new(default_at_once(), Duration::from_secs(60)))
    }

    /// Waits for a turn, for at most the configured wait.
    pub async fn turn(&self) -> Result<Turn, HashError> {
        match tokio::time::timeout(self.wait, self.turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Turn {
                permit,
                running: self.running.clone(),
                jobs: self.jobs.clone(),
            }),
            Ok(Err(closed)) => Err(HashError::Failed(closed.into())),
            Err(_elapsed) => Err(HashError::Busy {
                retry_after_secs: self.wait.as_secs().max(1),
            }),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.turn().await?.hash(password).await
    }

    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        self.turn().await?.verify(password, stored).await
    }

    /// The most hashes that have run at the same moment in this hasher: what the bound
    /// promises to keep at or below `at_once`.
    pub fn peak_running(&self) -> usize {
        self.running.peak.load(Ordering::Relaxed)
    }
}

impl Turn {
    pub async fn hash(self, password: String) -> Result<String, HashError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await
    }

    /// Whether `password` matches `stored`. With no stored hash (an unknown phone) a dummy
    /// hash is still checked, so the answer takes as long either way and timing tells nothing.
    pub async fn verify(self, password: String, stored: Option<String>) -> Result<bool, HashError> {
        self.run(move || {
            let known = stored.is_some();
            let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
            let parsed =
                PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await
    }

    /// Runs `work` on a hashing thread, holding the turn until `work` has finished even if
    /// the caller stops waiting for it.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        let Turn {
            permit,
            running,
            jobs,
        } = self;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Dropped in reverse order: the count goes down before the turn is handed on.
            let _permit = permit;
            let _running = Running::enter(&running);
            let _ = done.send(work());
        });
        jobs.send(job)
            .map_err(|_| HashError::Failed(anyhow::anyhow!("the hashing threads are gone")))?;
        result
            .await
            .map_err(|_| HashError::Failed(anyhow::anyhow!("a hashing thread panicked")))?
            .map_err(HashError::Failed)
    }
}

/// Pins glibc's mmap threshold (once per process), so a block as large as a hash's memory is
/// mapped when allocated and returned to the system when freed. Elsewhere there is nothing to
/// do: other allocators do not grow the threshold.
fn map_large_blocks_for_their_lifetime() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static PINNED: std::sync::Once = std::sync::Once::new();
        /// Well below a hash's 19 MiB, well above what requests otherwise allocate at once.
        const THRESHOLD_BYTES: libc::c_int = 4 * 1024 * 1024;
        // SAFETY: mallopt only changes the allocator's tuning; it is called once, before any
        // hash, and glibc serialises it with allocations.
        PINNED.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD_BYTES);
        });
    }
}

/// `count` threads taking hashes from one queue; they end when every sender is gone. A turn
/// is only given while a thread is free, so a job never waits in the queue for long.
fn spawn_hashing_threads(count: usize) -> mpsc::Sender<Job> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..count {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("password-hash-{n}"))
            .spawn(move || {
                loop {
                    let job = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    match job {
                        Ok(job) => job(),
                        Err(()) => return,
                    }
                }
            })
            .expect("a hashing thread starts");
    }
    jobs
}

/// How many hashes are running now, and the most there ever were at once.
#[derive(Debug, Default)]
struct Running {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Running {
    fn enter(running: &Arc<Running>) -> RunningGuard {
        let now = running.now.fetch_add(1, Ordering::SeqCst) + 1;
        running.peak.fetch_max(now, Ordering::Relaxed);
        RunningGuard(running.clone())
    }
}

struct RunningGuard(Arc<Running>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashError::Busy { retry_after_secs } => write!(
                f,
                "no password-hashing turn came free in time (retry after {retry_after_secs} s)"
            ),
            HashError::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl std::error::Error for HashError {}

impl From<HashError> for ApiError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy { retry_after_secs } => {
                tracing::warn!(
                    retry_after_secs,
                    "every password-hashing turn stayed taken: answered 503"
                );
                ApiError::new(ErrorCode::ServiceUnavailable).with_retry_after(retry_after_secs)
            }
            HashError::Failed(error) => ApiError::internal(format!("{error:#}")),
        }
    }
}

/// The hash of a random password nobody knows, made once with the same parameters.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = crate::crypto::random_token();
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .expect("hashing with default parameters succeeds")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> Hasher {
        Hasher::new(2, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = hasher();
        let stored = hasher.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!hasher().verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_the_bound() {
        let hasher = hasher();
        let mut hashes = tokio::task::JoinSet::new();
        for n in 0..8 {
            let hasher = hasher.clone();
            hashes.spawn(async move { hasher.hash(format!("password number {n}")).await });
        }
        while let Some(hashed) = hashes.join_next().await {
            assert!(hashed.unwrap().unwrap().starts_with("$argon2id$"));
        }
        let peak = hasher.peak_running();
        assert!((1..=2).contains(&peak), "{peak} hashes ran at once");
    }

    #[tokio::test]
    async fn a_caller_that_waits_too_long_for_a_turn_is_told_when_to_retry() {
        let hasher = Hasher::new(1, Duration::from_millis(20));
        let Ok(held) = hasher.turn().await else {
            panic!("the one turn is free");
        };
        match hasher.turn().await {
            Err(HashError::Busy { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            Err(other) => panic!("expected busy, got {other}"),
            Ok(_) => panic!("a second turn was given beside the first"),
        }
        let error = ApiError::from(HashError::Busy {
            retry_after_secs: 1,
        });
        assert_eq!(error.code(), ErrorCode::ServiceUnavailable);
        assert_eq!(error.retry_after_secs(), Some(1));
        drop(held);
        assert!(hasher.turn().await.is_ok(), "the turn is free again");
    }
}
