//! Cross-cutting request handling: request ids, metrics per route, timeouts and headers.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::nul_field;
use crate::caller::acceptable_request_id;
use crate::error::Error;

/// The route template a request matched, handed from inside the router to the metrics layer.
#[derive(Clone)]
pub struct RouteLabel(pub String);

/// Inner layer: records which route matched (unmatched requests never get here).
pub async fn label_route(request: Request, next: Next) -> Response {
    let label = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(label) = label {
        response.extensions_mut().insert(RouteLabel(label));
    }
    response
}

/// Outer layer: `auth_http_requests_total` and `auth_http_request_duration_seconds` (SPEC §9).
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or_else(|| "unmatched".to_owned(), |label| label.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!("auth_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("auth_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The `method` label: the standard methods by name, anything else `other`, so that a client
/// cannot add series by inventing methods (issue 14). Routes are bounded too: a matched
/// template, or `unmatched`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// A percent-encoded NUL (`%00`) in the path or the query is `validation_failed` before any
/// route runs: no identifier has a use for it, and PostgreSQL refuses it in text.
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let field = if uri.path().contains("%00") {
        Some("path")
    } else if uri.query().is_some_and(|query| query.contains("%00")) {
        Some("query")
    } else {
        None
    };
    match field {
        Some(field) => Error::Invalid(vec![nul_field(field)]).into_response(),
        None => next.run(request).await,
    }
}

/// Answers 503 `request_timeout` when a request runs longer than the configured limit.
pub async fn enforce_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout.into_response(),
    }
}

/// Drops a client-sent `x-request-id` that is too long or carries characters that could
/// forge log lines; a fresh id is generated in its place.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    if request
        .headers()
        .get("x-request-id")
        .is_some_and(|value| !acceptable_request_id(value.as_bytes()))
    {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}
