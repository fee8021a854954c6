//! A proxy in front of auth-service's `POST /oauth/token` that counts the token requests a
//! token source makes and can hold answers back to keep a request in flight; and a clock a
//! test moves by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::task::JoinHandle;

use super::gate::{serve, Gate};

#[derive(Clone)]
struct Upstream {
    token_url: String,
    http: reqwest::Client,
    gate: Gate,
}

/// Forwards `POST /oauth/token` to auth-service, counting each request.
pub struct TokenProxy {
    pub url: String,
    gate: Gate,
    task: JoinHandle<()>,
}

impl TokenProxy {
    pub async fn start(auth_service: &str) -> Self {
        let gate = Gate::new();
        let upstream = Upstream {
            token_url: format!("{auth_service}/oauth/token"),
            http: reqwest::Client::new(),
            gate: gate.clone(),
        };
        let router = Router::new()
            .route("/oauth/token", post(forward_token_request))
            .with_state(upstream);
        let (url, task) = serve(router).await;
        Self { url, gate, task }
    }

    /// Token requests received so far.
    pub fn requests(&self) -> usize {
        self.gate.passed()
    }

    /// Holds answers back until [`TokenProxy::release`].
    pub fn hold(&self) {
        self.gate.hold();
    }

    pub fn release(&self) {
        self.gate.release();
    }

    /// Waits until `count` token requests have been received.
    pub async fn wait_for_requests(&self, count: usize) {
        self.gate.wait_for(count, "token requests").await;
    }
}

async fn forward_token_request(
    State(upstream): State<Upstream>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, StatusCode> {
    upstream.gate.pass().await;
    let mut request = upstream.http.post(&upstream.token_url).body(body);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("a status");
    let mut forwarded = HeaderMap::new();
    for name in ["content-type", "retry-after", "www-authenticate"] {
        if let Some(value) = answer.headers().get(name) {
            forwarded.insert(name, value.clone());
        }
    }
    let body = answer.bytes().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok((status, forwarded, body).into_response())
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A monotonic clock that stands still until a test moves it on.
#[derive(Clone)]
pub struct TestClock {
    start: Instant,
    offset_ms: Arc<AtomicU64>,
}

impl TestClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            offset_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).expect("fits");
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// The clock as a token source reads it.
    pub fn reader(&self) -> impl Fn() -> Instant + Send + Sync + 'static {
        let clock = self.clone();
        move || clock.start + Duration::from_millis(clock.offset_ms.load(Ordering::SeqCst))
    }
}
