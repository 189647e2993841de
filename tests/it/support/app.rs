//! The app under test: the real router served over real HTTP on a loopback port, configured
//! with known keys, holding the pool of the test's database so builders can reach it.

use std::time::Duration;

use axum::Router;
use civicpay::config::Config;
use civicpay::router::router_with;
use civicpay::server::serve;
use civicpay::state::AppState;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The real router served over real HTTP on a loopback port of its own.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    /// The database the server runs on, for builders that set up what no route does.
    pub pool: PgPool,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

/// Tests sign with a known key so they can forge and tamper with tokens.
pub const TEST_JWT_SECRET: &str = "test-signing-key-0123456789abcdef-0123456789";

pub const TEST_PIN_PEPPER: &str = "test-pin-pepper-0123456789abcdef-0123456789";

/// The Ed25519 seed receipts are signed with in tests, base64url: the 32 bytes
/// `test-receipt-signing-key-0123456`.
pub const TEST_RECEIPT_SIGNING_KEY: &str = "dGVzdC1yZWNlaXB0LXNpZ25pbmcta2V5LTAxMjM0NTY";

pub fn test_config() -> Config {
    let mut config = Config::from_env().expect("the default configuration is valid");
    config.auth.jwt_secret = Some(TEST_JWT_SECRET.to_owned());
    config.wallet.pin_pepper = Some(TEST_PIN_PEPPER.to_owned());
    config.receipts.signing_key = Some(TEST_RECEIPT_SIGNING_KEY.to_owned());
    config
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> TestApp {
        TestApp::spawn_with(pool, test_config(), Router::new()).await
    }

    pub async fn spawn_with(pool: PgPool, config: Config, extra: Router<AppState>) -> TestApp {
        // The server's logs, under `RUST_LOG=…` and `--nocapture`, when a test needs explaining.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let router = router_with(AppState::new(pool.clone(), &config), extra);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let server = tokio::spawn(serve(listener, router, shutdown, Duration::from_secs(5)));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        TestApp {
            base_url,
            client,
            pool,
            stop: Some(stop),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A JSON request with a bearer token.
    pub async fn send_json_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json_with(&self, token: &str, path: &str) -> Value {
        let response = self.get_with_token(path, token).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    /// Asks the server to stop and waits until it has.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.expect("the server task does not panic")
    }
}
