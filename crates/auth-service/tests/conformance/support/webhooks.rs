//! A webhook receiver on a free port of 127.0.0.1: records every request it gets (headers,
//! body, what it answered, and the app's clock at that moment) and answers as the test says —
//! 200, another status, or not at all (it hangs, as a frozen endpoint does).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_service::clock::Clock;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::task::AbortHandle;

/// A secret in the Standard Webhooks form: `whsec_` and the base64 of 32 bytes.
pub const SECRET: &str = "whsec_dGVzdC13ZWJob29rLXNpZ25pbmcta2V5LTMyYnl0ZQ==";

/// `answer` value meaning: hold the request without answering.
pub const HANG: u16 = 0;

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub body: String,
    /// The status it answered (`HANG` when it did not).
    pub answered: u16,
    /// The app's clock when the request arrived, if the receiver was given it.
    pub at: Option<DateTime<Utc>>,
}

impl Received {
    pub fn envelope(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

#[derive(Default)]
struct Shared {
    answer: AtomicU16,
    received: Mutex<Vec<Received>>,
    clock: Mutex<Option<Clock>>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    server: AbortHandle,
}

impl Receiver {
    /// Starts answering `answer` (a status, or [`HANG`]).
    pub async fn start(answer: u16) -> Self {
        let shared = Arc::new(Shared::default());
        shared.answer.store(answer, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/auth", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/hooks/auth", axum::routing::post(receive))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        })
        .abort_handle();
        Self {
            url,
            shared,
            server,
        }
    }

    /// From now on answers `answer`.
    pub fn answer(&self, answer: u16) {
        self.shared.answer.store(answer, Ordering::SeqCst);
    }

    /// Stamps each request with this (the app's) clock.
    pub fn watch_clock(&self, clock: Clock) {
        *self.shared.clock.lock().unwrap() = Some(clock);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Every request answered with a 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::accepted)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = shared.answer.load(Ordering::SeqCst);
    let at = shared.clock.lock().unwrap().as_ref().map(Clock::now);
    shared.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
        answered: answer,
        at,
    });
    if answer == HANG {
        tokio::time::sleep(Duration::from_secs(600)).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::from_u16(answer).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
