//! The example program's router in front of a verifier, on a real socket; and a JWKS proxy
//! that counts what reaches auth-service.

use std::time::Duration;

use auth_client::Verifier;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::gate::{serve, Gate};

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
    gate: Gate,
}

/// Serves `/.well-known/jwks.json` by asking auth-service, counting each request; it can hold
/// answers back to keep a fetch in flight.
pub struct CountingProxy {
    pub url: String,
    gate: Gate,
    task: JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(auth_service: &str) -> Self {
        let gate = Gate::new();
        let upstream = Upstream {
            jwks_url: format!("{auth_service}/.well-known/jwks.json"),
            http: reqwest::Client::new(),
            gate: gate.clone(),
        };
        let router = Router::new()
            .route("/.well-known/jwks.json", get(forward_jwks))
            .with_state(upstream);
        let (url, task) = serve(router).await;
        Self { url, gate, task }
    }

    /// JWKS requests received so far.
    pub fn fetches(&self) -> usize {
        self.gate.passed()
    }

    /// Holds JWKS answers back until [`CountingProxy::release`].
    pub fn hold(&self) {
        self.gate.hold();
    }

    pub fn release(&self) {
        self.gate.release();
    }

    /// Waits until `count` JWKS requests have been received.
    pub async fn wait_for_fetches(&self, count: usize) {
        self.gate.wait_for(count, "JWKS requests").await;
    }
}

async fn forward_jwks(State(upstream): State<Upstream>) -> Result<String, StatusCode> {
    upstream.gate.pass().await;
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
