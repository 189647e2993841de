//! A real HTTP server on a loopback port that plays a merchant's callback endpoint: it keeps
//! every request it gets and answers as the test scripts it (a status per request, a delay).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 once they run out.
    statuses: VecDeque<u16>,
    delay: Duration,
    /// The body of every answer; by default "ok" for a 2xx, "not now" otherwise.
    body: Option<Bytes>,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<Script>>,
    arrivals: mpsc::UnboundedSender<Received>,
}

pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
    arrivals: mpsc::UnboundedReceiver<Received>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve_on(listener).await
    }

    /// Serves on a port already bound (so a test can stop and restart on the same URL).
    pub async fn serve_on(listener: TcpListener) -> Receiver {
        let url = format!("http://{}/callbacks", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script::default()));
        let (sender, arrivals) = mpsc::unbounded_channel();
        let shared = Shared {
            script: script.clone(),
            arrivals: sender,
        };
        let app = Router::new()
            .route("/callbacks", post(receive))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            script,
            arrivals,
            server,
        }
    }

    pub fn answer_with(&self, statuses: &[u16]) {
        self.script.lock().unwrap().statuses = statuses.iter().copied().collect();
    }

    pub fn answer_body(&self, body: &'static [u8]) {
        self.script.lock().unwrap().body = Some(Bytes::from_static(body));
    }

    pub fn delay_answers(&self, delay: Duration) {
        self.script.lock().unwrap().delay = delay;
    }

    /// The next request, or `None` if none comes within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.arrivals.recv())
            .await
            .ok()
            .flatten()
    }

    /// Requests arriving within `wait`, stopping early once `count` came.
    pub async fn collect(&mut self, count: usize, wait: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut received = Vec::new();
        while received.len() < count {
            match tokio::time::timeout_at(deadline, self.arrivals.recv()).await {
                Ok(Some(request)) => received.push(request),
                _ => break,
            }
        }
        received
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Bytes) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let _ = shared.arrivals.send(Received {
        webhook_id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        at: std::time::Instant::now(),
    });
    let (status, delay, body) = {
        let mut script = shared.script.lock().unwrap();
        let status = script.statuses.pop_front().unwrap_or(200);
        (status, script.delay, script.body.clone())
    };
    tokio::time::sleep(delay).await;
    let status = StatusCode::from_u16(status).unwrap();
    let default = if status.is_success() { "ok" } else { "not now" };
    (
        status,
        body.unwrap_or(Bytes::from_static(default.as_bytes())),
    )
}
