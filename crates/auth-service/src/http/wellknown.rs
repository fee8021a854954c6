//! `/.well-known/*`: the JWKS and the discovery document standard JWT libraries read.

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

/// The discovery document standard JWT libraries read: issuer, JWKS address, algorithms.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "tokens",
    responses((status = 200, description = "OpenID Provider metadata", body = serde_json::Value)))]
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    let issuer = state.config.issuer().trim_end_matches('/').to_owned();
    let base = state.config.server.public_url.trim_end_matches('/');
    let algorithms = state.services.keys.ring().algorithms();
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{base}/api/auth/introspect"),
        "token_endpoint": format!("{base}/api/auth/login"),
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "email", "username", "roles", "territory", "verified"],
    });
    ([(CACHE_CONTROL, "public, max-age=300")], axum::Json(body)).into_response()
}
