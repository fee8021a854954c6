//! `POST /oauth/token` (SPEC §11, RFC 6749): a form in and JSON out, every refusal an RFC 6749
//! §5.2 error (`{error, error_description}`). Four grants: `client_credentials`,
//! `refresh_token` (RFC 6749 §6, the rotation of SPEC §3), token exchange (RFC 8693) and
//! `authorization_code` with PKCE (RFC 6749 §4.1, `services/authorize.rs`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::error::Problem;
use super::form::{invalid_request, percent_decode, read_form};
use super::grants::{
    ExchangedResponse, OAuthErrorBody, RefreshedResponse, TokenAnswer, TokenRequest, TokenResponse,
};
use crate::error::{Error, OAuthError};
use crate::services::authorize::CodeExchange;
use crate::services::oauth::{ClientCredentials, ClientToken, ExchangeRequest, Proof};
use crate::services::{RequestContext, TokenPair};
use crate::state::AppState;

pub const CLIENT_CREDENTIALS: &str = "client_credentials";
pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: the one token type taken and issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The client authentications [`credentials`] reads, as RFC 8414 names them: the same at every
/// endpoint that authenticates clients (token, introspection, revocation), so the discovery
/// documents read them from here.
pub const CLIENT_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
/// The token endpoint's methods: [`CLIENT_AUTH_METHODS`] and `none`, a public client naming
/// itself with `client_id` (the authorization code grant with PKCE, and refresh).
pub const TOKEN_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
/// Longest client assertion read; a longer one is `invalid_request` before any parsing.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

/// Issues an access token: to a client for itself (RFC 6749 §4.4), for a user's session in
/// exchange for its refresh token (RFC 6749 §6), for a new session of a user in exchange for an
/// authorization code and its PKCE verifier (RFC 6749 §4.1.3, RFC 7636), or for another
/// audience in exchange for a user's access token (RFC 8693).
///
/// Client authentication is `client_secret_basic` (HTTP Basic, id and secret form-encoded,
/// RFC 6749 §2.3.1), `client_secret_post` (`client_id` and `client_secret` in the form) or
/// `private_key_jwt` (`client_assertion_type` and `client_assertion`, RFC 7523 §2.2), exactly
/// one of them; the refresh grant needs none, but one presented must be valid; a public client
/// (`none`) sends its `client_id` alone, for the authorization code grant. Answers are never
/// cached.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, body = TokenAnswer, description = "the token (`Cache-Control: no-store`): `TokenResponse` for `client_credentials`, `RefreshedResponse` for `refresh_token` and `authorization_code`, `ExchangedResponse` for token exchange"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (a body that is not a form, a parameter missing, repeated or malformed, two client authentications, an unusable subject token), `invalid_grant` (an unknown, expired, spent or revoked refresh token; an unknown, expired, spent or another client's code, another redirect URI, a wrong or missing code verifier), `invalid_scope`, `invalid_target` (an audience the client may not exchange for), `unauthorized_client` (a client without exchange audiences), `unsupported_grant_type`"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`: unknown or inactive client, wrong secret or assertion, or none given where one is required; with `WWW-Authenticate: Basic` when HTTP Basic was tried"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many token requests by this client", body = Problem, content_type = "application/problem+json"),
))]
pub async fn token(
    State(state): State<AppState>,
    request: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let mut form = read_form(&headers, &body)?;
    let clients = &state.services.clients;
    match grant_type(&mut form)? {
        Grant::ClientCredentials => {
            let credentials = credentials(&headers, &mut form)?;
            let scope = form.remove("scope");
            let token = clients
                .client_credentials(credentials, scope.as_deref())
                .await?;
            Ok(issued(token))
        }
        Grant::RefreshToken => {
            let credentials = optional_credentials(&headers, &mut form)?;
            let refresh = SecretString::from(required(&mut form, "refresh_token")?);
            let scope = form.remove("scope");
            let pair = clients
                .refresh_grant(credentials.as_ref(), &refresh, scope.as_deref(), &request)
                .await?;
            Ok(refreshed(pair))
        }
        Grant::AuthorizationCode => {
            let credentials = if presents_credentials(&headers, &form) {
                Some(credentials(&headers, &mut form)?)
            } else {
                None
            };
            let exchange = CodeExchange {
                credentials,
                client_id: form.remove("client_id"),
                code: SecretString::from(required(&mut form, "code")?),
                redirect_uri: form.remove("redirect_uri"),
                code_verifier: form.remove("code_verifier").map(SecretString::from),
            };
            let pair = clients.authorization_code_grant(exchange, &request).await?;
            Ok(refreshed(pair))
        }
        Grant::TokenExchange => {
            let credentials = credentials(&headers, &mut form)?;
            let exchange = exchange_request(&mut form)?;
            let token = clients.exchange(&credentials, exchange, &request).await?;
            Ok(no_store(ExchangedResponse::from(token)))
        }
    }
}

/// A grant this endpoint serves.
enum Grant {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    TokenExchange,
}

fn grant_type(form: &mut HashMap<String, String>) -> Result<Grant, Error> {
    match form.remove("grant_type").as_deref() {
        None => Err(invalid_request("grant_type is required")),
        Some(AUTHORIZATION_CODE) => Ok(Grant::AuthorizationCode),
        Some(CLIENT_CREDENTIALS) => Ok(Grant::ClientCredentials),
        Some(REFRESH_TOKEN) => Ok(Grant::RefreshToken),
        Some(TOKEN_EXCHANGE) => Ok(Grant::TokenExchange),
        Some(_) => Err(Error::OAuth(OAuthError::UnsupportedGrantType)),
    }
}

/// A JSON answer that is never cached (RFC 6749 §5.1).
fn no_store(body: impl Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn issued(token: ClientToken) -> Response {
    no_store(TokenResponse {
        access_token: token.access_token,
        token_type: "Bearer",
        expires_in: token.expires_in,
        scope: token.scope,
    })
}

/// RFC 6749 §5.1 with the (successor) refresh token. A login's session grants no scope, so
/// none is named, except `mfa_enrollment` for an enrollment-only session (SPEC §10), whose
/// token is good for enrolling a second factor only; a session an authorization code started
/// names the scopes the code granted.
fn refreshed(pair: TokenPair) -> Response {
    no_store(RefreshedResponse {
        access_token: pair.access_token,
        token_type: "Bearer",
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token.expose_secret().to_owned(),
        scope: pair.scope,
    })
}

fn required(form: &mut HashMap<String, String>, name: &str) -> Result<String, Error> {
    form.remove(name)
        .ok_or_else(|| invalid_request(&format!("{name} is required")))
}

/// The parameters of RFC 8693 §2.1 this server takes: a user's access token as the subject,
/// an audience, optionally a scope. Delegation by an actor token is not supported.
fn exchange_request(form: &mut HashMap<String, String>) -> Result<ExchangeRequest, Error> {
    let subject_token = SecretString::from(required(form, "subject_token")?);
    if required(form, "subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(invalid_request(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if form.contains_key("actor_token") || form.contains_key("actor_token_type") {
        return Err(invalid_request("actor_token is not supported"));
    }
    if form
        .remove("requested_token_type")
        .is_some_and(|kind| kind != ACCESS_TOKEN_TYPE)
    {
        return Err(invalid_request(
            "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    Ok(ExchangeRequest {
        subject_token,
        audience: required(form, "audience")?,
        scope: form.remove("scope"),
    })
}

/// Client authentication where it is optional (the refresh grant: users' refresh tokens are
/// bound to no client): `None` when the request carries no credential at all. A bare
/// `client_id` is a public client naming itself (RFC 6749 §2.3, §3.2.1); it authenticates
/// nothing and is set aside. Anything more must authenticate, as [`credentials`] says.
pub(crate) fn optional_credentials(
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<Option<ClientCredentials>, Error> {
    if !presents_credentials(headers, form) {
        form.remove("client_id");
        return Ok(None);
    }
    credentials(headers, form).map(Some)
}

/// Whether the request tries client authentication at all: an `Authorization` header, or a
/// client credential in the form (`client_secret`, `client_assertion`, or any other
/// `client_…` parameter but `client_id`, which a public client sends alone to name itself).
pub(super) fn presents_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    headers.contains_key(AUTHORIZATION)
        || form
            .keys()
            .any(|name| name.starts_with("client_") && name != "client_id")
}

/// RFC 6749 §2.3: HTTP Basic, a secret in the form, or a client assertion (RFC 7523 §2.2),
/// exactly one of them.
pub(crate) fn credentials(
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<ClientCredentials, Error> {
    let posted_secret = form.remove("client_secret");
    let posted_id = form.remove("client_id");
    let assertion_type = form.remove("client_assertion_type");
    let assertion = form.remove("client_assertion");
    if assertion_type.is_some() || assertion.is_some() {
        if posted_secret.is_some() || headers.contains_key(AUTHORIZATION) {
            return Err(invalid_request(
                "the client authenticated twice (a client assertion and a secret); use one method",
            ));
        }
        return assertion_credentials(posted_id, assertion_type.as_deref(), assertion);
    }
    let Some(authorization) = headers.get(AUTHORIZATION) else {
        return match (posted_id, posted_secret) {
            (Some(client_id), Some(secret)) => Ok(ClientCredentials {
                client_id,
                proof: Proof::Secret(SecretString::from(secret)),
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

/// RFC 7523 §2.2: `client_assertion_type` names the JWT bearer type and `client_assertion`
/// holds the JWT, at most [`MAX_ASSERTION_BYTES`] long. The client is the one named in the
/// form, or else the assertion's (unverified) `iss`; the service holds `iss` and `sub` to it.
fn assertion_credentials(
    posted_id: Option<String>,
    assertion_type: Option<&str>,
    assertion: Option<String>,
) -> Result<ClientCredentials, Error> {
    if assertion_type != Some(JWT_BEARER_ASSERTION) {
        return Err(invalid_request(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let assertion = assertion.ok_or_else(|| invalid_request("client_assertion is required"))?;
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(invalid_request("client_assertion is longer than 8 KiB"));
    }
    let client_id = posted_id
        .or_else(|| unverified_issuer(&assertion))
        .ok_or(Error::OAuth(OAuthError::InvalidClient { basic: false }))?;
    Ok(ClientCredentials {
        client_id,
        proof: Proof::Assertion(SecretString::from(assertion)),
        basic: false,
    })
}

/// The `iss` of a JWT's payload, read without any check: only to know which client's keys
/// verify it.
fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(str::to_owned)
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
        proof: Proof::Secret(SecretString::from(percent_decode(secret)?)),
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
