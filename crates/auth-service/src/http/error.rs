//! Errors as RFC 9457 problem details: one `match` from [`Error`] to status and headers, and
//! a last middleware that gives every error response a problem body with its request id.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, FieldError, OAuthError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem body of SPEC §2: `{type, title, status, detail, code, errors?}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Names the failed dependencies on `/ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:auth-service:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            errors: Vec::new(),
            checks: None,
            request_id: None,
        }
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response.extensions_mut().insert(self);
        response
    }
}

/// Carried from an `Internal` error to the middleware, which logs it with the request id.
#[derive(Debug, Clone)]
struct InternalFailure(String);

fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Invalid(_)
        | Error::MalformedBody(_)
        | Error::InvalidToken
        | Error::InvalidMfaCode
        | Error::InvalidPasskey
        | Error::InvalidCeremony
        | Error::PasskeyCounterRegressed => StatusCode::BAD_REQUEST,
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Unauthorized
        | Error::InvalidCredentials
        | Error::InvalidRefreshToken
        | Error::RefreshTokenReused
        | Error::InvalidMfaToken => StatusCode::UNAUTHORIZED,
        Error::Forbidden
        | Error::CsrfRejected
        | Error::AccountDisabled
        | Error::EmailNotVerified
        | Error::UserTokenRequired
        | Error::MfaEnrollmentRequired
        | Error::FreshFactorRequired
        | Error::SessionRequired
        | Error::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        Error::TooManyApiKeys => StatusCode::UNPROCESSABLE_ENTITY,
        // RFC 6749 §5.2: a failed client authentication is 401, every other error 400.
        Error::OAuth(OAuthError::InvalidClient { .. }) => StatusCode::UNAUTHORIZED,
        Error::OAuth(_) => StatusCode::BAD_REQUEST,
        Error::NotFound
        | Error::SessionNotFound
        | Error::UserNotFound
        | Error::RoleNotFound
        | Error::TerritoryNotFound
        | Error::ClientNotFound
        | Error::PasskeyNotFound
        | Error::ApiKeyNotFound => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::EmailTaken
        | Error::UsernameTaken
        | Error::RoleExists
        | Error::TerritoryExists
        | Error::LastAdmin
        | Error::BuiltInRole
        | Error::MfaAlreadyEnrolled
        | Error::NoPendingEnrollment
        | Error::MfaNotEnrolled
        | Error::PasskeyExists => StatusCode::CONFLICT,
        Error::TooManyAttempts { .. } | Error::RateLimited { .. } | Error::FactorLocked { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::Timeout | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Marks an RFC 6749 §5.2 answer, which [`finish_problems`] leaves as it is.
#[derive(Debug, Clone, Copy)]
struct OAuthAnswer;

/// RFC 6749 §5.2: `{error, error_description}` as JSON, never cached; a client that tried
/// HTTP Basic is told the scheme (401 with `WWW-Authenticate: Basic`).
fn oauth_answer(status: StatusCode, error: &OAuthError) -> Response {
    let body = serde_json::json!({
        "error": error.code(),
        "error_description": error.description(),
    });
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    if let OAuthError::InvalidClient { basic: true } = error {
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"auth-service\", charset=\"UTF-8\""),
        );
    }
    response.extensions_mut().insert(OAuthAnswer);
    response
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        if let Error::OAuth(error) = &self {
            return oauth_answer(status, error);
        }
        // SPEC §4: a 500 body carries no internals, only a request id.
        let detail = match &self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let missing_scope = match &self {
            Error::InsufficientScope { scope } => Some(*scope),
            _ => None,
        };
        let mut problem = Problem::new(status, self.code(), detail);
        let retry_after = match &self {
            Error::TooManyAttempts { retry_after }
            | Error::RateLimited { retry_after }
            | Error::FactorLocked { retry_after } => Some(*retry_after),
            _ => None,
        };
        let internal = match self {
            Error::Invalid(errors) => {
                problem.errors = errors;
                None
            }
            Error::Internal(source) => Some(InternalFailure(format!("{source:#}"))),
            _ => None,
        };
        let mut response = problem.into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // RFC 6750 §3.1: the scope an API key lacks (a scope token holds no `"` or `\`).
        if let Some(scope) = missing_scope {
            if let Ok(value) = HeaderValue::from_str(&format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            )) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        if let Some(wait) = retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let Some(failure) = internal {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

/// The outermost error handling: logs internal failures with the request id, adds the
/// request id to problem bodies, and turns bare error responses (an unknown route, a wrong
/// method, a body over the limit) into problems with a code derived from the status.
pub async fn finish_problems(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<OAuthAnswer>().is_some()
    {
        return response;
    }
    if let Some(InternalFailure(message)) = response.extensions().get::<InternalFailure>() {
        tracing::error!(request.id = request_id.as_deref().unwrap_or("-"), error = %message, "request failed");
    }
    let problem = match response.extensions().get::<Problem>() {
        Some(problem) => problem.clone(),
        None => Problem::new(
            status,
            code_for_status(status),
            status.canonical_reason().unwrap_or("error"),
        ),
    };
    let (mut parts, _) = response.into_parts();
    let rebuilt = Problem {
        request_id,
        ..problem
    }
    .into_response();
    let (new_parts, body) = rebuilt.into_parts();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    // Keep what inner layers attached (the matched route, for the metrics).
    parts.extensions.extend(new_parts.extensions);
    Response::from_parts(parts, body)
}

fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => Error::NotFound.code(),
        StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed.code(),
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge.code(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType.code(),
        StatusCode::UNAUTHORIZED => Error::Unauthorized.code(),
        StatusCode::FORBIDDEN => Error::Forbidden.code(),
        StatusCode::REQUEST_TIMEOUT => Error::Timeout.code(),
        status if status.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_error_maps_to_its_status() {
        let cases = [
            (Error::invalid("email", "invalid", "bad"), 400),
            (Error::EmailTaken, 409),
            (Error::InvalidCredentials, 401),
            (Error::AccountDisabled, 403),
            (
                Error::TooManyAttempts {
                    retry_after: Duration::from_millis(1500),
                },
                429,
            ),
            (Error::Unavailable(crate::error::Dependency::Database), 503),
            (Error::Internal(anyhow::anyhow!("secret detail")), 500),
            (Error::InvalidMfaCode, 400),
            (Error::InvalidMfaToken, 401),
            (Error::MfaAlreadyEnrolled, 409),
            (Error::NoPendingEnrollment, 409),
            (Error::MfaNotEnrolled, 409),
            (Error::MfaEnrollmentRequired, 403),
            (Error::InvalidPasskey, 400),
            (Error::InvalidCeremony, 400),
            (Error::PasskeyCounterRegressed, 400),
            (Error::PasskeyNotFound, 404),
            (Error::PasskeyExists, 409),
            (Error::FreshFactorRequired, 403),
            (Error::SessionRequired, 403),
            (Error::InsufficientScope { scope: "auth:read" }, 403),
            (Error::ApiKeyNotFound, 404),
            (Error::TooManyApiKeys, 422),
            (
                Error::FactorLocked {
                    retry_after: Duration::from_secs(900),
                },
                429,
            ),
        ];

        for (error, status) in cases {
            assert_eq!(error.into_response().status().as_u16(), status);
        }
    }

    #[test]
    fn unauthorized_carries_www_authenticate_and_limits_carry_retry_after() {
        let unauthorized = Error::Unauthorized.into_response();
        let limited = Error::TooManyAttempts {
            retry_after: Duration::from_millis(1500),
        }
        .into_response();

        assert_eq!(unauthorized.headers()[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(limited.headers()[RETRY_AFTER], "2");
    }

    #[test]
    fn oauth_errors_are_rfc_6749_answers_and_basic_clients_are_challenged() {
        let basic = Error::OAuth(OAuthError::InvalidClient { basic: true }).into_response();
        let posted = Error::OAuth(OAuthError::InvalidClient { basic: false }).into_response();
        let scope = Error::OAuth(OAuthError::InvalidScope).into_response();

        assert_eq!(basic.status(), 401);
        assert!(basic.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="));
        assert_eq!(posted.status(), 401);
        assert!(posted.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(scope.status(), 400);
        assert_eq!(scope.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(scope.headers()[CONTENT_TYPE], "application/json");
        assert!(scope.extensions().get::<OAuthAnswer>().is_some());
        assert!(scope.extensions().get::<Problem>().is_none());
    }

    #[test]
    fn internal_problems_hide_their_cause() {
        let response = Error::Internal(anyhow::anyhow!("secret detail")).into_response();

        let problem = response.extensions().get::<Problem>().unwrap();
        assert_eq!(problem.detail, "internal error");
        assert_eq!(problem.code, "internal_error");
    }
}
