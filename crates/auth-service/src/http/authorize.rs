//! The authorization endpoint (SPEC §11, RFC 6749 §4.1, RFC 7636, RFC 9207):
//! `GET /oauth/authorize` checks the request and sends the browser to the platform's login
//! page (`oauth.login_url`), which signs the user in with the JSON API and then calls
//! `POST /api/auth/authorize` with the user's token for the redirect carrying the code.
//!
//! A request whose client or redirect URI cannot be trusted is answered here (400) and never
//! redirected; any other refusal goes back to the redirect URI with `error`,
//! `error_description`, `state` and `iss`.

use std::collections::HashSet;

use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::Problem;
use super::extract::Json;
use super::form::{invalid_request, percent_decode};
use super::grants::OAuthErrorBody;
use crate::domain::authorization::{AuthorizationError, AuthorizationRequest};
use crate::error::Error;
use crate::services::authorize::with_query;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

/// Longest query string read at the authorization endpoint.
const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "the document's description of the query; the query is read by `parameters`"
)]
pub struct AuthorizeQuery {
    /// `code`, the only response type.
    #[param(example = "code")]
    response_type: Option<String>,
    /// The client's id.
    client_id: String,
    /// One of the client's registered redirect URIs, exactly; may be left out when the client
    /// has only one.
    redirect_uri: Option<String>,
    /// Space-separated scopes, each one of the client's.
    scope: Option<String>,
    /// Opaque to this service, sent back with the answer (at most 1024 bytes).
    state: Option<String>,
    /// BASE64URL(SHA-256(code_verifier)), 43 characters.
    #[param(pattern = "^[A-Za-z0-9_-]{43}$")]
    code_challenge: Option<String>,
    /// `S256`, the only method (`plain` is refused).
    #[param(example = "S256")]
    code_challenge_method: Option<String>,
}

/// What `POST /api/auth/authorize` takes: the authorization request as the login page got it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    #[schema(example = "code", max_length = 32)]
    response_type: String,
    #[schema(max_length = 64)]
    client_id: String,
    #[schema(max_length = 2048)]
    redirect_uri: Option<String>,
    #[schema(max_length = 8192)]
    scope: Option<String>,
    #[schema(max_length = 1024)]
    state: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    code_challenge: String,
    #[schema(example = "S256", max_length = 16)]
    code_challenge_method: String,
}

/// Where the login page sends the browser next.
#[derive(Serialize, ToSchema)]
pub struct AuthorizeAnswer {
    /// The redirect URI with `code`, `state` and `iss`; or, for a request refused after its
    /// redirect URI was verified, with `error`, `error_description`, `state` and `iss`.
    redirect_to: String,
}

/// Starts the authorization code flow (RFC 6749 §4.1.1, PKCE S256 required).
///
/// A valid request is sent on to the platform's login page, `oauth.login_url`, with the same
/// query; without one configured, back to the redirect URI with
/// `error=temporarily_unavailable`. An unknown or inactive client, or a redirect URI that is
/// not one of the client's exactly, is answered 400 here and never redirected; every other
/// refusal is a redirect to the redirect URI with `error` (`invalid_request`,
/// `unsupported_response_type`, `invalid_scope`), `error_description`, `state` and `iss`.
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth", params(AuthorizeQuery),
    responses(
        (status = 302, description = "to `oauth.login_url` with the request's query, or to the redirect URI with an error (`Location`)"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: an unknown or inactive client, a redirect URI that is not registered, a query that is not validly encoded or is over 8 KiB"),
))]
pub async fn authorize_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let query = query.unwrap_or_default();
    let (request, repeated) = parameters(&query)?;
    let clients = &state.services.clients;
    let issuer = state.config.issuer().to_owned();
    let valid = match clients.check_authorization(&request).await? {
        Ok(valid) => valid,
        Err(error) => return refused(error, request.state.as_deref(), &issuer),
    };
    if let Some(name) = repeated {
        let description = format!("{name} is given more than once");
        let error = AuthorizationError::Redirected {
            redirect_uri: valid.redirect_uri,
            error: "invalid_request",
            description,
        };
        return refused(error, request.state.as_deref(), &issuer);
    }
    match &state.config.oauth.login_url {
        Some(login) => {
            let joiner = if login.contains('?') { '&' } else { '?' };
            Ok(found(&format!("{login}{joiner}{query}")))
        }
        None => refused(
            AuthorizationError::Redirected {
                redirect_uri: valid.redirect_uri,
                error: "temporarily_unavailable",
                description: "no login page is configured (oauth.login_url)".to_owned(),
            },
            request.state.as_deref(),
            &issuer,
        ),
    }
}

/// Issues an authorization code for the signed-in caller (RFC 6749 §4.1.2).
///
/// Called by the platform's login page with the user's access token once the user has signed
/// in (second factor included) and agreed: the request is checked exactly as
/// `GET /oauth/authorize` checks it, and the answer says where to send the browser: the
/// redirect URI with `code` (single use, valid 60 s), `state` and `iss`. API keys and
/// clients' tokens may not call it.
#[utoipa::path(post, path = "/api/auth/authorize", tag = "auth", security(("bearer" = [])),
    request_body = AuthorizeRequest,
    responses(
        (status = 200, body = AuthorizeAnswer, description = "where to send the browser (`Cache-Control: no-store`)"),
        (status = 400, description = "`validation_failed`: an unknown or inactive `client_id`, or a `redirect_uri` that is not one of the client's (never redirected to)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`: an API key; `user_token_required`: a client's token; `mfa_enrollment_required`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn authorize(
    State(state): State<AppState>,
    caller: CurrentSession,
    context: RequestContext,
    Json(body): Json<AuthorizeRequest>,
) -> Result<Response, Error> {
    let request = AuthorizationRequest {
        response_type: Some(body.response_type),
        client_id: Some(body.client_id),
        redirect_uri: body.redirect_uri,
        scope: body.scope,
        state: body.state,
        code_challenge: Some(body.code_challenge),
        code_challenge_method: Some(body.code_challenge_method),
    };
    let clients = &state.services.clients;
    let redirect_to = match clients.authorize(&caller, &request, &context).await? {
        Ok(redirect_to) => redirect_to,
        Err(AuthorizationError::Untrusted(why)) => {
            return Err(Error::invalid("redirect_uri", "untrusted", why));
        }
        Err(AuthorizationError::Redirected {
            redirect_uri,
            error,
            description,
        }) => error_redirect(
            &redirect_uri,
            error,
            &description,
            request.state.as_deref(),
            state.config.issuer(),
        ),
    };
    let mut response = axum::Json(AuthorizeAnswer { redirect_to }).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The query's parameters (an empty value counts as absent, RFC 6749 §3.1), and the name of
/// one given twice. A repeated `client_id` or `redirect_uri` makes the request untrustworthy:
/// neither is taken.
fn parameters(query: &str) -> Result<(AuthorizationRequest, Option<String>), Error> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(invalid_request("the query is longer than 8 KiB"));
    }
    let mut request = AuthorizationRequest::default();
    let mut seen = HashSet::new();
    let mut repeated = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let malformed = || invalid_request("the query is not validly percent-encoded");
        let name = percent_decode(name).ok_or_else(malformed)?;
        let value = percent_decode(value).ok_or_else(malformed)?;
        if !seen.insert(name.clone()) {
            if name == "client_id" || name == "redirect_uri" {
                return Err(invalid_request(&format!("{name} is given more than once")));
            }
            repeated.get_or_insert(name);
            continue;
        }
        let value = (!value.is_empty()).then_some(value);
        let slot = match name.as_str() {
            "response_type" => &mut request.response_type,
            "client_id" => &mut request.client_id,
            "redirect_uri" => &mut request.redirect_uri,
            "scope" => &mut request.scope,
            "state" => &mut request.state,
            "code_challenge" => &mut request.code_challenge,
            "code_challenge_method" => &mut request.code_challenge_method,
            // RFC 6749 §3.1: unknown parameters are ignored.
            _ => continue,
        };
        *slot = value;
    }
    Ok((request, repeated))
}

/// The answer to a refused request: 400 for an untrusted client or redirect URI, else a
/// redirect with the error.
fn refused(
    error: AuthorizationError,
    state: Option<&str>,
    issuer: &str,
) -> Result<Response, Error> {
    match error {
        AuthorizationError::Untrusted(why) => Err(invalid_request(why)),
        AuthorizationError::Redirected {
            redirect_uri,
            error,
            description,
        } => Ok(found(&error_redirect(
            &redirect_uri,
            error,
            &description,
            state,
            issuer,
        ))),
    }
}

/// RFC 6749 §4.1.2.1 with RFC 9207's `iss`.
fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut params = vec![
        ("error", error.to_owned()),
        ("error_description", description.to_owned()),
    ];
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    params.push(("iss", issuer.to_owned()));
    with_query(redirect_uri, &params)
}

/// 302 Found to `location`, never cached.
fn found(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
