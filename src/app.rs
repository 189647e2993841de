//! Wiring: the shared state, the one function that builds the whole router (the server and the
//! tests call the same one), and serving it with a bounded graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::auth::AuthState;
use crate::background::BackgroundTasks;
use crate::config::{Config, Mode};
use crate::http::error::{ConstraintRule, install_constraint_rules};
use crate::http::messages::Message;
use crate::http::{ApiError, problem, request_id};
use crate::ops::metrics::{self, HttpMetrics};
use crate::wallet::WalletState;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub mode: Mode,
    pub metrics: Arc<HttpMetrics>,
    pub auth: Arc<AuthState>,
    pub wallet: Arc<WalletState>,
    /// How long a merchant's API key keeps working after the merchant rotates it.
    pub merchant_key_grace_secs: u64,
    pub providers: crate::payments::Providers,
    /// How long callbacks carry a second signature after a webhook-secret rotation.
    pub webhook_secret_grace_secs: u64,
    /// `CIVICPAY_METRICS_TOKEN`: when set, the API's listener serves `/metrics` to it.
    pub metrics_token: Option<Arc<str>>,
    /// Document storage and public tracking's limit on wrong keys.
    pub dossiers: Arc<crate::dossiers::DossierSettings>,
    body_limit_bytes: usize,
}

impl AppState {
    pub fn new(db: PgPool, config: &Config) -> Self {
        install_constraint_rules(constraint_rules);
        AppState {
            db,
            mode: config.mode,
            metrics: Arc::new(HttpMetrics::new()),
            auth: Arc::new(AuthState::new(config)),
            wallet: Arc::new(WalletState::new(config)),
            merchant_key_grace_secs: config.merchant_key_grace_secs,
            webhook_secret_grace_secs: config.callbacks.secret_grace_secs,
            providers: crate::payments::Providers::from_config(config),
            metrics_token: config.metrics.token.as_deref().map(Arc::from),
            dossiers: Arc::new(crate::dossiers::DossierSettings::from_config(
                &config.dossiers,
            )),
            body_limit_bytes: usize::try_from(config.body_limit_bytes).unwrap_or(usize::MAX),
        }
    }
}

/// Every feature's constraint rules, which turn a violated constraint into its answer.
pub fn constraint_rules() -> Vec<&'static [ConstraintRule]> {
    vec![
        crate::units::CONSTRAINT_RULES,
        crate::accounts::CONSTRAINT_RULES,
        crate::wallet::CONSTRAINT_RULES,
        crate::merchants::CONSTRAINT_RULES,
        crate::procedures::CONSTRAINT_RULES,
    ]
}

/// Every documented route, with its OpenAPI description.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(crate::ops::routes())
        .merge(crate::units::routes())
        .merge(crate::auth::routes())
        .merge(crate::accounts::routes())
        .merge(crate::wallet::routes())
        .merge(crate::merchants::routes())
        .merge(crate::callbacks::routes())
        .merge(crate::calendar::routes())
        .merge(crate::procedures::routes())
        .merge(crate::dossiers::routes())
        .merge(crate::payments::routes())
        .merge(crate::ledger::admin_routes())
}

/// Development helpers under `/sandbox/`, present only while their sandbox is enabled.
fn sandbox_routes(state: &AppState) -> Router<AppState> {
    let mut routes = Router::new();
    if state.auth.sandbox_sms.is_some() {
        routes = routes.route(
            "/sandbox/sms/{phone}",
            get(crate::auth::sms::sandbox_messages),
        );
    }
    if state.providers.sandbox_enabled() {
        routes = routes.merge(crate::payments::sandbox::pages());
    }
    routes
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The router with `extra` routes beside the API's, under the same middleware. Tests use it
/// to add probe routes (a panicking handler, a slow one); the server adds none.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (api, _) = api_routes().split_for_parts();
    // Swagger UI's default would ask an online validator about the document.
    let docs_config = SwaggerConfig::from("/openapi.json").validator_url("none");
    api.merge(sandbox_routes(&state))
        .merge(extra)
        .route("/openapi.json", get(openapi_document))
        .merge(SwaggerUi::new("/docs").config(docs_config))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(state.body_limit_bytes))
        .layer(from_fn(problem::render_problems))
        .layer(from_fn_with_state(state.clone(), metrics::observe_requests))
        .layer(from_fn(request_id::assign_request_id))
        .with_state(state)
}

/// The metrics listener's router (`CIVICPAY_METRICS_BIND`): `/metrics` without a token, and
/// nothing else. It shares the application's state, so it shows the same figures as the API's
/// listener would; its own scrapes are not counted.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .fallback(unknown_route)
        .layer(from_fn(problem::render_problems))
        .with_state(state)
}

/// The OpenAPI document, webhooks included; generated once per process.
async fn openapi_document() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(crate::openapi::document_json).clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
}

async fn unknown_route() -> ApiError {
    ApiError::not_found(Message::RouteNotFound)
}

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

    let tasks = BackgroundTasks::new();
    spawn_housekeeping(&tasks, pool.clone());
    crate::ledger::spawn_folder(&tasks, pool.clone());
    crate::merchants::orders::spawn_expirer(&tasks, pool.clone());
    let deliveries = crate::callbacks::delivery::DeliverySettings::from_config(&config);
    crate::callbacks::delivery::spawn_workers(&tasks, pool.clone(), deliveries);
    let state = AppState::new(pool.clone(), &config);
    crate::payments::reconciler::spawn(&tasks, pool.clone(), state.providers.clone());
    crate::payments::withdrawals::spawn_payout_worker(
        &tasks,
        pool.clone(),
        state.providers.clone(),
    );
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    // One signal stops both listeners; the metrics listener also stops when the API's ends.
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
    served?;

    tracing::info!("stopping background tasks");
    if !tasks.shutdown(grace).await {
        tracing::warn!("some background tasks did not stop within the grace period");
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often expired records (codes, failed logins, dead tokens, idempotency keys) are purged.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

fn spawn_housekeeping(tasks: &BackgroundTasks, db: PgPool) {
    tasks.spawn("housekeeping", |cancel| async move {
        loop {
            let purged = async {
                crate::auth::purge_expired(&db).await?;
                crate::idempotency::purge_expired(&db).await
            };
            if let Err(error) = purged.await {
                tracing::warn!(%error, "purging expired records failed; retrying later");
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
