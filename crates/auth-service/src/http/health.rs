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

/// `GET /ready`: 200 when every configured dependency answers, else 503 naming the failures
/// (SPEC §2). A replica whose Redis is away still serves, counting rate limits in process,
/// but says so here so that operators (and load balancers) see it.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "every dependency answers", body = serde_json::Value),
        (status = 503, description = "`service_unavailable`; `checks` names what failed", body = Problem, content_type = "application/problem+json"),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    match tokio::time::timeout(READY_PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {
            checks.insert("database".into(), json!("ok"));
        }
        outcome => {
            let reason = match outcome {
                Ok(Err(error)) => error.to_string(),
                _ => "no answer within 2s".to_owned(),
            };
            tracing::warn!(dependency = "database", reason = %reason, "not ready");
            checks.insert("database".into(), json!(reason));
            failed.push("database");
        }
    }
    match state.services.limiter.status() {
        LimiterStatus::InProcess => {}
        LimiterStatus::Redis => {
            checks.insert("redis".into(), json!("ok"));
        }
        // The reason (which may name hosts) is logged by the limiter, not shown here.
        LimiterStatus::Fallback { .. } => {
            checks.insert(
                "redis".into(),
                json!("unavailable; rate limits are counted in process"),
            );
            failed.push("redis");
        }
    }
    if let Some((broker, connected)) = state.broker.status() {
        if connected {
            checks.insert(broker.into(), json!("ok"));
        } else {
            checks.insert(
                broker.into(),
                json!("not connected; events wait in the outbox"),
            );
            failed.push(broker);
        }
    }
    if failed.is_empty() {
        return Json(json!({ "status": "ok", "checks": checks })).into_response();
    }
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        format!("{} unavailable", failed.join(" and ")),
    );
    problem.checks = Some(serde_json::Value::Object(checks));
    problem.into_response()
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
