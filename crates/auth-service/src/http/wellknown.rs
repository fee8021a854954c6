//! `/.well-known/*`: the JWKS, the discovery document standard JWT libraries read, and the
//! OAuth 2 authorization server metadata (RFC 8414).

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::oauth::{
    AUTHORIZATION_CODE, CLIENT_AUTH_METHODS, CLIENT_CREDENTIALS, REFRESH_TOKEN, TOKEN_AUTH_METHODS,
    TOKEN_EXCHANGE,
};
use crate::crypto::client_keys::ASSERTION_ALGORITHM_NAMES;
use crate::state::AppState;

/// Public keys: the active key and retired keys whose tokens may still be alive.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "a JWK set `{keys:[…]}`", body = serde_json::Value)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.services.keys.jwks();
    // Short enough that a rotation is seen within a minute; clients also refetch on unknown kid.
    (
        [(CACHE_CONTROL, "public, max-age=60")],
        axum::Json(json!({ "keys": keys })),
    )
        .into_response()
}

/// The discovery document standard JWT libraries read: issuer, JWKS address, algorithms,
/// and the OAuth 2 token endpoint (SPEC §11).
///
/// SPEC §2, §11: it claims nothing that is not served. This service issues access tokens, not
/// ID tokens. Its authorization endpoint serves `response_type=code` with PKCE S256 (the
/// login page is the platform's, `oauth.login_url`). It has a token endpoint for the
/// `authorization_code`, `client_credentials`, `refresh_token` and token-exchange grants and the RFC 7662
/// introspection and RFC 7009 revocation endpoints, each listed with the client
/// authentication methods it takes and the algorithms a client assertion may be signed with. What a JWT verifier reads is true:
/// `issuer` is the tokens' `iss` to the byte, and `id_token_signing_alg_values_supported`
/// (where verifiers look for the allowed algorithms) names the algorithms of the published
/// keys, which sign every JWT issued; a server without an RS256 key does not list RS256. A
/// strict OpenID Provider validator refuses the document, by design: the service is not an
/// OpenID Provider.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "tokens",
    responses((status = 200, description = "discovery metadata: issuer, jwks_uri, the signing algorithms of the published keys, the token endpoint; no endpoint that is not served", body = serde_json::Value)))]
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    let algorithms = state.services.keys.ring().algorithms();
    let mut body = server_metadata(&state);
    body["id_token_signing_alg_values_supported"] = json!(algorithms);
    body["subject_types_supported"] = json!(["public"]);
    body["claims_supported"] = json!([
        "iss",
        "aud",
        "sub",
        "sid",
        "jti",
        "iat",
        "nbf",
        "exp",
        "email",
        "username",
        "roles",
        "territory",
        "verified",
        "amr",
        "client_id",
        "scope",
        "act"
    ]);
    ([(CACHE_CONTROL, "public, max-age=300")], axum::Json(body)).into_response()
}

/// OAuth 2 authorization server metadata (RFC 8414), stating exactly what is served now
/// (SPEC §11): the authorization endpoint (`code`, PKCE `S256`, RFC 9207 `iss`), the token
/// endpoint with its four grants, the introspection (RFC 7662) and revocation (RFC 7009)
/// endpoints, the client authentications each takes (`client_secret_basic`,
/// `client_secret_post`, `private_key_jwt` with the algorithms an assertion may use, and
/// `none` for public clients at the token endpoint), and the JWKS that verifies its tokens.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    responses((status = 200, description = "RFC 8414 metadata: issuer, authorization_endpoint, token_endpoint, introspection_endpoint, revocation_endpoint, jwks_uri, grant types and client authentication methods supported", body = serde_json::Value)))]
pub async fn oauth_authorization_server(State(state): State<AppState>) -> Response {
    let body = server_metadata(&state);
    ([(CACHE_CONTROL, "public, max-age=300")], axum::Json(body)).into_response()
}

/// What both discovery documents say of the OAuth 2 server. Every endpoint that authenticates
/// clients takes the same methods ([`CLIENT_AUTH_METHODS`]); the token endpoint also takes
/// public clients ([`TOKEN_AUTH_METHODS`]).
fn server_metadata(state: &AppState) -> serde_json::Value {
    let base = state.config.server.public_url.trim_end_matches('/');
    let mut body = json!({
        "issuer": state.config.issuer(),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "grant_types_supported": [
            AUTHORIZATION_CODE,
            CLIENT_CREDENTIALS,
            REFRESH_TOKEN,
            TOKEN_EXCHANGE
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{base}/api/docs"),
    });
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = if endpoint == "token" {
            TOKEN_AUTH_METHODS
        } else {
            CLIENT_AUTH_METHODS
        };
        body[format!("{endpoint}_endpoint_auth_methods_supported")] = json!(methods);
        body[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")] =
            json!(ASSERTION_ALGORITHM_NAMES);
    }
    body
}
