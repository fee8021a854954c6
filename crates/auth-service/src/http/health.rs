//! Liveness, readiness and the Prometheus exposition.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::Problem;
use crate::app::AppState;

/// How long `/ready` waits for a dependency before calling it failed.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: 200 while the process runs.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when every configured dependency answers, else 503 naming the failures.
pub async fn ready(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READY_PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2s".to_string()),
    };
    match database {
        Ok(()) => Json(json!({ "status": "ok", "checks": { "database": "ok" } })).into_response(),
        Err(reason) => {
            tracing::warn!(dependency = "database", reason = %reason, "not ready");
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "database is unavailable",
            );
            problem.checks = Some(json!({ "database": reason }));
            problem.into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
