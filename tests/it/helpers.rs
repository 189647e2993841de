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
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

/// Tests sign with a known key so they can forge and tamper with tokens.
pub const TEST_JWT_SECRET: &str = "test-signing-key-0123456789abcdef-0123456789";

pub const TEST_PIN_PEPPER: &str = "test-pin-pepper-0123456789abcdef-0123456789";

pub fn test_config() -> Config {
    let mut config = Config::from_env().expect("the default configuration is valid");
    config.auth.jwt_secret = Some(TEST_JWT_SECRET.to_owned());
    config.wallet.pin_pepper = Some(TEST_PIN_PEPPER.to_owned());
    config
}

/// The demo data, keyed like the test configuration.
pub async fn load_demo(pool: &PgPool) {
    let context = civicpay::demo::DemoContext {
        pin_pepper: TEST_PIN_PEPPER.as_bytes().to_vec(),
    };
    civicpay::demo::load_all(pool, &context)
        .await
        .expect("the demo data loads");
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
        let router = router_with(AppState::new(pool, &config), extra);
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

/// A problem+json answer, checked for the shape every error has.
pub struct ProblemResponse {
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl ProblemResponse {
    /// The `Retry-After` seconds a 429 or 503 carries.
    pub fn retry_after_secs(&self) -> u64 {
        self.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds")
    }

    pub fn field_errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .expect("validation problems list their fields")
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub async fn expect_problem(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> ProblemResponse {
    let actual_status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(actual_status, status, "body: {text}");
    assert_eq!(
        headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/problem+json"),
        "body: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("problem bodies are JSON");
    assert_eq!(body["code"], code, "body: {text}");
    assert_eq!(body["status"], status.as_u16(), "body: {text}");
    assert_eq!(body["type"], format!("urn:civicpay:problem:{code}"));
    for member in ["title", "detail"] {
        assert!(
            body[member].as_str().is_some_and(|s| !s.is_empty()),
            "{member} in {text}"
        );
    }
    ProblemResponse { headers, body }
}

/// A 422 `validation_failed` problem; returns the fields it names.
pub async fn expect_invalid_fields(response: reqwest::Response) -> Vec<String> {
    expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await
    .field_errors()
}

/// A 409 problem with this code.
pub async fn expect_conflict(response: reqwest::Response, code: &str) -> ProblemResponse {
    expect_problem(response, StatusCode::CONFLICT, code).await
}
