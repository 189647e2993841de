//! `civicpay serve`: the database, optional demo data, the background tasks and the two
//! listeners (the API's and the metrics one), stopped by a signal with a bounded graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::background::BackgroundTasks;
use crate::config::{Config, Mode};
use crate::router::{metrics_router, router};
use crate::state::AppState;

/// Serves until `shutdown` completes, then lets in-flight requests finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let stopping = CancellationToken::new();
    let signal = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal.cancel();
    });
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopping.clone().cancelled_owned());
    tokio::select! {
        result = server => result.context("serving HTTP"),
        () = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "requests still running after the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// `civicpay serve`: database, migrations, optional demo data, background tasks, HTTP.
pub async fn run(config: Config, load_demo: bool) -> anyhow::Result<()> {
    crate::router::install_hooks();
    let (pool, config) = prepare_database(config, load_demo).await?;
    // `AppState::new` expects the receipt keys: whatever left them out is an error here.
    crate::receipts::signing::ReceiptKeys::from_config(&config.receipts)?;
    let (listener, metrics_listener) = bind_listeners(&config).await?;

    let tasks = BackgroundTasks::new();
    let state = AppState::new(pool.clone(), &config);
    spawn_background_tasks(&tasks, &pool, &config, &state);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    serve_until_signal(listener, metrics_listener, state, grace).await?;

    tracing::info!("stopping background tasks");
    if !tasks.shutdown(grace).await {
        tracing::warn!("some background tasks did not stop within the grace period");
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Checks the mode, connects, migrates, refuses demo data in production, fills in development
/// secrets and loads the demo data if asked; the configuration comes back with those secrets.
async fn prepare_database(config: Config, load_demo: bool) -> anyhow::Result<(PgPool, Config)> {
    config.check_mode()?;
    if load_demo && config.mode == Mode::Production {
        anyhow::bail!("--demo is refused with CIVICPAY_MODE=production");
    }
    let pool = crate::db::connect(&config.database).await?;
    crate::db::migrate(&pool).await?;
    if config.mode == Mode::Production {
        crate::ops::start_checks::refuse_demo_data(&pool).await?;
    }
    let config = crate::secrets::fill_in_development(config, &pool).await?;
    if load_demo {
        let pin_pepper = config
            .wallet
            .pin_pepper
            .clone()
            .unwrap_or_default()
            .into_bytes();
        crate::demo::load_all(&pool, &crate::demo::DemoContext { pin_pepper }).await?;
    }
    Ok((pool, config))
}

/// The API's listener and, when `CIVICPAY_METRICS_BIND` names one, the metrics listener.
async fn bind_listeners(config: &Config) -> anyhow::Result<(TcpListener, Option<TcpListener>)> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on CIVICPAY_BIND={}", config.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(mode = ?config.mode, "listening on http://{address} (API docs at http://{address}/docs)");
    let metrics_listener = match config.metrics.bind.0 {
        Some(bind) => {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on CIVICPAY_METRICS_BIND={bind}"))?;
            tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
            Some(listener)
        }
        None => None,
    };
    Ok((listener, metrics_listener))
}

/// The work that runs beside the HTTP server, each until `tasks` shuts down.
fn spawn_background_tasks(
    tasks: &BackgroundTasks,
    pool: &PgPool,
    config: &Config,
    state: &AppState,
) {
    spawn_housekeeping(tasks, pool.clone());
    crate::ledger::spawn_folder(tasks, pool.clone());
    crate::merchants::orders::spawn_expirer(tasks, pool.clone());
    let deliveries = crate::callbacks::delivery::DeliverySettings::from_config(config);
    crate::callbacks::delivery::spawn_workers(tasks, pool.clone(), deliveries);
    let providers = &state.providers;
    crate::payments::reconciler::spawn(tasks, pool.clone(), providers.clone());
    crate::payments::withdrawals::spawn_payout_worker(tasks, pool.clone(), providers.clone());
    crate::receipts::sequencer::spawn(tasks, pool.clone(), state.receipt_keys.clone());
}

/// Serves the API (and metrics) until SIGINT or SIGTERM; one signal stops both listeners, and
/// the metrics listener also stops when the API's ends.
async fn serve_until_signal(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    grace: Duration,
) -> anyhow::Result<()> {
    let stopping = CancellationToken::new();
    let signal = stopping.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.cancel();
    });
    let metrics_server = metrics_listener.map(|listener| {
        tokio::spawn(serve(
            listener,
            metrics_router(state.clone()),
            stopping.clone().cancelled_owned(),
            grace,
        ))
    });
    let served = serve(
        listener,
        router(state),
        stopping.clone().cancelled_owned(),
        grace,
    )
    .await;
    stopping.cancel();
    if let Some(metrics_server) = metrics_server {
        match metrics_server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %format!("{error:#}"), "the metrics listener failed")
            }
            Err(error) => tracing::warn!(%error, "the metrics listener task failed"),
        }
    }
    served
}

/// How often expired records (codes, failed logins, dead tokens, finished events, idempotency
/// keys) are purged.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

fn spawn_housekeeping(tasks: &BackgroundTasks, db: PgPool) {
    tasks.spawn("housekeeping", |cancel| async move {
        loop {
            // Each purge on its own: one failing (a first large backlog) stops no other.
            let purges = [
                ("sign-in records", crate::auth::purge_expired(&db).await),
                (
                    "finished events",
                    crate::outbox::purge_finished(&db).await.map(drop),
                ),
                (
                    "idempotency keys",
                    crate::idempotency::purge_expired(&db).await,
                ),
            ];
            for (what, purged) in purges {
                if let Err(error) = purged {
                    tracing::warn!(%error, what, "purging expired records failed; retrying later");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
            }
        }
    });
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
