//! `POST /oauth/token` (SPEC §11, RFC 6749): the client-credentials grant, a form in and
//! JSON out, every refusal an RFC 6749 §5.2 error (`{error, error_description}`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::form::{invalid_request, percent_decode, read_form};
use crate::error::{Error, OAuthError};
use crate::services::oauth::{ClientCredentials, ClientToken};
use crate::state::AppState;

/// The one grant type served.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// The client authentications [`credentials`] reads, as RFC 8414 names them: the same at every
/// endpoint that authenticates clients (token, introspection, revocation), so the discovery
/// documents read them from here.
pub const CLIENT_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post"];

/// The form of a token request (`application/x-www-form-urlencoded`). Parameters this grant
/// does not use are ignored, as RFC 6749 §3.2 requires; a parameter given twice is refused.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "the document's description of the form; the form is read by `form`"
)]
pub struct TokenRequest {
    /// `client_credentials`; any other is `unsupported_grant_type`.
    #[schema(example = "client_credentials")]
    grant_type: String,
    /// Space-separated scopes, each one of the client's; all of its scopes when absent.
    #[schema(example = "orders:read")]
    scope: Option<String>,
    /// `client_secret_post`: the client's id in the form (not with HTTP Basic).
    client_id: Option<String>,
    /// `client_secret_post`: the client's secret in the form (not with HTTP Basic).
    #[schema(format = Password)]
    client_secret: Option<String>,
}

/// A client's access token (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT signed like users' tokens: `sub` and `client_id` are the client's id, `scope`
    /// the granted scopes, `roles` the client's roles; no `sid`.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    expires_in: u64,
    /// The granted scopes, space-separated.
    scope: String,
}

/// An RFC 6749 §5.2 error.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_scope` or `unsupported_grant_type`.
    error: String,
    error_description: String,
}

/// Issues an access token to a client authenticating with its secret (RFC 6749 §4.4).
///
/// Client authentication is `client_secret_basic` (HTTP Basic, id and secret form-encoded,
/// RFC 6749 §2.3.1) or `client_secret_post` (`client_id` and `client_secret` in the form),
/// never both at once. Answers are never cached.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, body = TokenResponse, description = "the token (`Cache-Control: no-store`)"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (a body that is not a form, a parameter missing, repeated or malformed, two client authentications), `invalid_scope`, `unsupported_grant_type`"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`: unknown or inactive client, wrong secret, or none given; with `WWW-Authenticate: Basic` when HTTP Basic was tried"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many token requests by this client", body = Problem, content_type = "application/problem+json"),
))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let (credentials, scope) = read_request(&headers, &body)?;
    let clients = &state.services.clients;
    let token = clients
        .client_credentials(credentials, scope.as_deref())
        .await?;
    Ok(answer(token))
}

fn answer(token: ClientToken) -> Response {
    let body = TokenResponse {
        access_token: token.access_token,
        token_type: "Bearer",
        expires_in: token.expires_in,
        scope: token.scope,
    };
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The request as the grant needs it: who the client says it is, and the scope it asks for.
fn read_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(ClientCredentials, Option<String>), Error> {
    let mut form = read_form(headers, body)?;
    match form.remove("grant_type").as_deref() {
        None => return Err(invalid_request("grant_type is required")),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => return Err(Error::OAuth(OAuthError::UnsupportedGrantType)),
    }
    let credentials = credentials(headers, &mut form)?;
    Ok((credentials, form.remove("scope")))
}

/// RFC 6749 §2.3: HTTP Basic or the form, exactly one of them.
pub(super) fn credentials(
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<ClientCredentials, Error> {
    let posted_secret = form.remove("client_secret");
    let posted_id = form.remove("client_id");
    let Some(authorization) = headers.get(AUTHORIZATION) else {
        return match (posted_id, posted_secret) {
            (Some(client_id), Some(secret)) => Ok(ClientCredentials {
                client_id,
                secret: SecretString::from(secret),
                basic: false,
            }),
            (None, Some(_)) => Err(invalid_request("client_secret without client_id")),
            _ => Err(Error::OAuth(OAuthError::InvalidClient { basic: false })),
        };
    };
    if posted_secret.is_some() {
        return Err(invalid_request(
            "the client authenticated twice (HTTP Basic and client_secret); use one method",
        ));
    }
    let basic =
        basic(authorization).ok_or(Error::OAuth(OAuthError::InvalidClient { basic: true }))?;
    // A client may name itself in the form too (RFC 6749 §3.2.1), but not as another.
    if posted_id.is_some_and(|id| id != basic.client_id) {
        return Err(invalid_request(
            "client_id differs from the HTTP Basic user",
        ));
    }
    Ok(basic)
}

/// Whether the request tries client authentication at all: an `Authorization` header, or a
/// client credential in the form (`client_secret`, or any other `client_…` parameter but
/// `client_id`, which a public client sends alone to name itself).
pub(super) fn presents_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    headers.contains_key(AUTHORIZATION)
        || form
            .keys()
            .any(|name| name.starts_with("client_") && name != "client_id")
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
fn basic(header: &HeaderValue) -> Option<ClientCredentials> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some(ClientCredentials {
        client_id: percent_decode(id)?,
        secret: SecretString::from(percent_decode(secret)?),
        basic: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header =
            |raw: &str| HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap();

        let credentials = basic(&header("my%20id:s%3Acret")).unwrap();

        assert_eq!(credentials.client_id, "my id");
        assert!(basic(&header("no-colon")).is_none());
        assert!(basic(&HeaderValue::from_static("Bearer abc")).is_none());
        assert!(basic(&HeaderValue::from_static("Basic !!!")).is_none());
    }
}
