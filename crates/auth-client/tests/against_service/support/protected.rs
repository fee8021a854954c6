//! The example program's router in front of a verifier, on a real socket; and a JWKS proxy
//! that counts what reaches auth-service.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_client::Verifier;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (url, task)
}

/// `examples/protected_service.rs`, served.
pub struct Protected {
    url: String,
    http: reqwest::Client,
    task: JoinHandle<()>,
}

/// What the example service answered: status, headers and JSON body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The problem's `reason` (the client's specific error).
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }
}

impl Protected {
    pub async fn start(verifier: Verifier) -> Self {
        let (url, task) = serve(crate::protected_service::router(verifier)).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self { url, http, task }
    }

    /// The example service's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.url)), token)
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.url)), token)
            .await
    }

    pub async fn get_with_header(&self, path: &str, authorization: &str) -> Answer {
        let request = self
            .http
            .get(format!("{}{path}", self.url))
            .header("authorization", authorization);
        self.send(request, None).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> Answer {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("request sent");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.json().await.expect("a JSON body"),
        }
    }
}

impl Drop for Protected {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Upstream {
    jwks_url: String,
    http: reqwest::Client,
    fetches: Arc<AtomicUsize>,
    open: watch::Receiver<bool>,
}

/// Serves `/.well-known/jwks.json` by asking auth-service, counting each request; it can hold
/// answers back to keep a fetch in flight.
pub struct CountingProxy {
    pub url: String,
    fetches: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(auth_service: &str) -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let (open, opened) = watch::channel(true);
        let upstream = Upstream {
            jwks_url: format!("{auth_service}/.well-known/jwks.json"),
            http: reqwest::Client::new(),
            fetches: fetches.clone(),
            open: opened,
        };
        let router = Router::new()
            .route("/.well-known/jwks.json", get(forward_jwks))
            .with_state(upstream);
        let (url, task) = serve(router).await;
        Self {
            url,
            fetches,
            open,
            task,
        }
    }

    /// JWKS requests received so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Holds JWKS answers back until [`CountingProxy::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Waits until `count` JWKS requests have been received.
    pub async fn wait_for_fetches(&self, count: usize) {
        for _ in 0..1000 {
            if self.fetches() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the proxy received {} JWKS requests, not {count}",
            self.fetches()
        );
    }
}

async fn forward_jwks(State(upstream): State<Upstream>) -> Result<String, StatusCode> {
    upstream.fetches.fetch_add(1, Ordering::SeqCst);
    let mut open = upstream.open.clone();
    let _ = open.wait_for(|open| *open).await;
    let response = upstream
        .http
        .get(&upstream.jwks_url)
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    response.text().await.map_err(|_| StatusCode::BAD_GATEWAY)
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
