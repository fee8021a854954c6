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
use crate::limits::LimiterStatus;

/// How long `/ready` waits for a dependency before calling it failed.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = serde_json::Value)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the database answers (`degraded` when Redis does not), else 503
/// naming the failures.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "every dependency answers", body = serde_json::Value),
        (status = 503, description = "`service_unavailable`; `checks` names what failed", body = Problem, content_type = "application/problem+json"),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READY_PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2s".to_string()),
    };
    let mut checks = serde_json::Map::new();
    checks.insert(
        "database".into(),
        json!(database.as_ref().err().map_or("ok", String::as_str)),
    );
    // Redis carries only shared rate-limit counts: without it the limiter works in process,
    // so the replica stays ready and says it is degraded.
    let limiter = match state.services.limiter.status() {
        LimiterStatus::InProcess => None,
        LimiterStatus::Redis => Some("ok".to_owned()),
        // The reason (which may name hosts) is in the log, not in this public answer.
        LimiterStatus::Fallback { .. } => {
            Some("unavailable, rate limits counted in process".to_owned())
        }
    };
    let degraded = limiter.as_ref().is_some_and(|status| status != "ok");
    if let Some(status) = limiter {
        checks.insert("redis".into(), json!(status));
    }
    match database {
        Ok(()) => {
            let status = if degraded { "degraded" } else { "ok" };
            Json(json!({ "status": status, "checks": checks })).into_response()
        }
        Err(reason) => {
            tracing::warn!(dependency = "database", reason = %reason, "not ready");
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "database is unavailable",
            );
            problem.checks = Some(serde_json::Value::Object(checks));
            problem.into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
