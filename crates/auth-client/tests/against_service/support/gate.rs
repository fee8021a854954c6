//! What the test proxies share: a router served on a real socket, and a gate that counts the
//! requests passing it and can hold them back to keep one in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Serves `router` on a free port of 127.0.0.1: its URL and the serving task.
pub async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (url, task)
}

/// Counts requests and, while held, keeps them waiting.
#[derive(Clone)]
pub struct Gate {
    passed: Arc<AtomicUsize>,
    open: Arc<watch::Sender<bool>>,
}

impl Gate {
    pub fn new() -> Self {
        Self {
            passed: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(watch::channel(true).0),
        }
    }

    /// Counts one request, then waits while the gate is held.
    pub async fn pass(&self) {
        self.passed.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }

    /// Requests counted so far.
    pub fn passed(&self) -> usize {
        self.passed.load(Ordering::SeqCst)
    }

    /// Holds requests back until [`Gate::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Waits until `count` requests have been counted; `what` names them in the failure.
    pub async fn wait_for(&self, count: usize, what: &str) {
        for _ in 0..1000 {
            if self.passed() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the proxy received {} {what}, not {count}", self.passed());
    }
}
