//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009), SPEC §11: a form
//! in, as at `/oauth/token` (the same decoding and client authentication), and every refusal an
//! RFC 6749 §5.2 error.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::form::{invalid_request, read_form};
use super::grants::OAuthErrorBody;
use super::oauth::{credentials, presents_credentials};
use crate::error::Error;
use crate::services::api_keys::KeyHolder;
use crate::services::oauth::{ClientCredentials, Introspected};
use crate::services::revocation::Inspected;
use crate::services::RequestContext;
use crate::state::AppState;

/// An introspection request (`application/x-www-form-urlencoded`), with the caller's client
/// authentication (`client_secret_basic` or `client_secret_post`).
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "the document's description of the form; the form is read by `read_form`"
)]
pub struct IntrospectionRequest {
    /// The token: an access token (a user's or a client's) or a user's refresh token.
    #[schema(min_length = 1)]
    token: String,
    /// `access_token` or `refresh_token`: where to look first. Any other value is ignored and
    /// every kind is searched (RFC 7662 §2.1).
    token_type_hint: Option<String>,
    /// `client_secret_post`: the caller's id in the form (not with HTTP Basic).
    client_id: Option<String>,
    /// `client_secret_post`: the caller's secret in the form (not with HTTP Basic).
    #[schema(format = Password)]
    client_secret: Option<String>,
}

/// The hints a revocation takes (RFC 7009 §2.1).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

/// A revocation request (`application/x-www-form-urlencoded`). Client authentication is
/// optional for users' tokens and required for a client's own access token.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "the document's description of the form; the form is read by `read_form`"
)]
pub struct RevocationRequest {
    /// The token to revoke: an access token (a user's or a client's) or a user's refresh
    /// token.
    #[schema(min_length = 1)]
    token: String,
    /// Where to look first (`access_token` or `refresh_token`); the other kinds are searched
    /// after it. Any other value is `unsupported_token_type`; an empty one counts as absent
    /// (RFC 6749 §3.2), hence the pattern rather than an enum.
    #[schema(value_type = Option<String>, pattern = "^(access_token|refresh_token)?$")]
    token_type_hint: Option<TokenTypeHint>,
    /// `client_secret_post`: the caller's id in the form (not with HTTP Basic). Alone, it
    /// authenticates nothing and is ignored (a public client naming itself).
    client_id: Option<String>,
    /// `client_secret_post`: the caller's secret in the form (not with HTTP Basic).
    #[schema(format = Password)]
    client_secret: Option<String>,
}

/// RFC 7662 §2.2: `{"active": false}` for any token that is not active, or `active: true` with
/// what the token is. An access token answers `token_type: "Bearer"` with its claims (`roles`
/// and `username` as stored now); a user's refresh token answers
/// `token_type: "refresh_token"` with its user, session and lifetime.
#[derive(Serialize, ToSchema, Default)]
pub struct TokenIntrospection {
    active: bool,
    /// `Bearer` (an access token), `refresh_token` or `api_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    /// A client's token: the granted scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// A client's token: the client's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// The user's id, or a client's id for a client's token.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// A user's token: the username as stored now.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// An access token's not-before time.
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    /// An access token's audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// An access token's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// A user's token: the session it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// An access token: the roles as stored now (SPEC §5).
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    /// An access token: this deployment's territory, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    territory: Option<String>,
    /// A user's access token: RFC 8176 methods of the session (SPEC §10).
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<Vec<String>>,
}

/// Tells an authenticated client whether a token is active and what it is (RFC 7662).
///
/// Any active client may introspect any token this service issued: users' access tokens,
/// clients' access tokens and users' refresh tokens. The client authenticates with HTTP Basic
/// (`client_secret_basic`) or in the form (`client_secret_post`); without either, 401.
/// Answers are never cached.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, body = TokenIntrospection, description = "`{\"active\": false}`, or the active token's claims (`Cache-Control: no-store`)"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: a body that is not a form, a parameter missing (`token`), repeated or malformed, two client authentications"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`: no client authentication, unknown or inactive client, wrong secret; with `WWW-Authenticate: Basic` when HTTP Basic was tried"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many introspections by this client", body = Problem, content_type = "application/problem+json"),
))]
pub async fn introspect_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let (client, token, hint) = read_token_request(&headers, &body)?;
    let clients = &state.services.clients;
    let inspected = clients
        .introspect_token(client.as_ref(), &token, hint.as_deref())
        .await?;
    let body = introspection(inspected, state.config.issuer());
    Ok(unstored(axum::Json(body).into_response()))
}

/// Revokes a token (RFC 7009): a user's access or refresh token ends its session; a client's
/// access token is refused everywhere until it expires.
///
/// Unknown, expired and already revoked tokens answer 200 like any other (RFC 7009 §2.2).
/// Client authentication is optional for users' tokens (when presented it must succeed); a
/// client's access token is revoked only by that client, authenticated.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, description = "revoked, or nothing to revoke; an empty body"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (a body that is not a form, a parameter missing, repeated or malformed, two client authentications), `unsupported_token_type` (a `token_type_hint` other than `access_token` and `refresh_token`), `unauthorized_client` (a client's token revoked by another client)"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`: a client authentication that fails, or none for a client's access token; with `WWW-Authenticate: Basic` when HTTP Basic was tried"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many revocations by this client or, without client authentication, from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn revoke_token(
    State(state): State<AppState>,
    request: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let (client, token, hint) = read_token_request(&headers, &body)?;
    let clients = &state.services.clients;
    clients
        .revoke_token(client.as_ref(), &token, hint.as_deref(), &request)
        .await?;
    Ok(unstored(().into_response()))
}

/// The client's authentication (when it tries one), the token and the hint.
fn read_token_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Option<ClientCredentials>, SecretString, Option<String>), Error> {
    let mut form = read_form(headers, body)?;
    let client = if presents_credentials(headers, &form) {
        Some(credentials(headers, &mut form)?)
    } else {
        None
    };
    let token = form
        .remove("token")
        .ok_or_else(|| invalid_request("token is required"))?;
    Ok((
        client,
        SecretString::from(token),
        form.remove("token_type_hint"),
    ))
}

/// RFC 6749 §5.1, RFC 7009 §2.2: never cached.
fn unstored(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The answer for what introspection found.
fn introspection(inspected: Option<Inspected>, issuer: &str) -> TokenIntrospection {
    match inspected {
        None => TokenIntrospection::default(),
        Some(Inspected::Access(Introspected::User(claims))) => TokenIntrospection {
            active: true,
            token_type: Some("Bearer"),
            sub: Some(claims.sub.to_string()),
            username: Some(claims.username),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            jti: Some(claims.jti.to_string()),
            sid: Some(claims.sid.to_string()),
            roles: Some(claims.roles),
            territory: claims.territory,
            amr: Some(claims.amr).filter(|amr| !amr.is_empty()),
            ..TokenIntrospection::default()
        },
        Some(Inspected::Access(Introspected::Client(claims))) => TokenIntrospection {
            active: true,
            token_type: Some("Bearer"),
            scope: Some(claims.scope),
            client_id: Some(claims.client_id),
            sub: Some(claims.sub),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: Some(claims.nbf),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            jti: Some(claims.jti.to_string()),
            roles: Some(claims.roles),
            territory: claims.territory,
            ..TokenIntrospection::default()
        },
        Some(Inspected::Access(Introspected::ApiKey(caller))) => {
            let roles = caller.roles().to_vec();
            let (username, client_id) = match caller.owner {
                KeyHolder::User(user) => (Some(user.username), None),
                KeyHolder::Client { client, .. } => (None, Some(client.id.to_string())),
            };
            let key = caller.key;
            TokenIntrospection {
                active: true,
                token_type: Some("api_key"),
                scope: Some(key.scopes.join(" ")),
                client_id,
                sub: Some(key.owner.id().to_string()),
                username,
                exp: key.expires_at.map(|at| at.timestamp()),
                iat: Some(key.created_at.timestamp()),
                iss: Some(issuer.to_owned()),
                jti: Some(key.id.to_string()),
                roles: Some(roles),
                ..TokenIntrospection::default()
            }
        }
        Some(Inspected::Refresh(state)) => TokenIntrospection {
            active: true,
            token_type: Some("refresh_token"),
            sub: Some(state.user_id.to_string()),
            username: Some(state.username),
            exp: Some(state.expires_at.timestamp()),
            iat: Some(state.issued_at.timestamp()),
            iss: Some(issuer.to_owned()),
            sid: Some(state.session_id.to_string()),
            ..TokenIntrospection::default()
        },
    }
}
