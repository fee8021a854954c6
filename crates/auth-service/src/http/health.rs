//! Liveness, readiness and the Prometheus exposition.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::Problem;
use crate::error::Error;
use crate::services::readiness::Report;
use crate::state::AppState;

/// `GET /health`: 200 while the process runs.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = serde_json::Value)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadyParams {
    /// `true`: 503 for any check that is not `ok`, soft dependencies included.
    #[serde(default)]
    strict: bool,
}

/// `GET /ready` (SPEC §2): 200 while this replica can serve, `status` `ok` or `degraded` and
/// `checks` naming each dependency (`ok`, `degraded`, `unavailable`, `shutting_down`); 503
/// when it cannot (the database does not answer, or it is shutting down), or with
/// `?strict=true` when any check is not `ok`.
#[utoipa::path(get, path = "/ready", tag = "operations", params(ReadyParams),
    responses(
        (status = 200, description = "this replica serves; `status` is `degraded` while Redis or the event broker is away", body = serde_json::Value),
        (status = 400, description = "`validation_failed`: `strict` is not `true` or `false`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`service_unavailable`; `checks` names what failed", body = Problem, content_type = "application/problem+json"),
))]
pub async fn ready(
    State(state): State<AppState>,
    params: Result<Query<ReadyParams>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(params) =
        params.map_err(|_| Error::invalid("strict", "invalid", "must be true or false"))?;
    let report = state.readiness.check().await;
    Ok(render(&report, params.strict))
}

fn render(report: &Report, strict: bool) -> Response {
    let checks: serde_json::Map<String, serde_json::Value> = report
        .checks
        .iter()
        .map(|(name, health)| ((*name).to_owned(), json!(health.as_str())))
        .collect();
    if report.ready(strict) {
        let status = if report.all_ok() { "ok" } else { "degraded" };
        return Json(json!({ "status": status, "checks": checks })).into_response();
    }
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        format!("not ready: {}", report.failed().join(", ")),
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
