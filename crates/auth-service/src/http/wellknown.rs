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
///
/// SPEC §2, §11: it claims nothing that is not served. This service issues access tokens, not
/// ID tokens, and has no authorization, OAuth token or RFC 7662 introspection endpoint yet
/// (`/api/auth/login` and `/api/auth/introspect` take JSON, not the forms those name), so none
/// is listed, and neither are the response types or client authentication methods that would
/// describe them. What a JWT verifier reads is true: `issuer` is the tokens' `iss` to the
/// byte, and `id_token_signing_alg_values_supported` (where verifiers look for the allowed
/// algorithms) names the algorithms of the published keys, which sign every JWT issued; a
/// server without an RS256 key does not list RS256. A strict OpenID Provider validator
/// refuses the document, by design: the service is not an OpenID Provider.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "tokens",
    responses((status = 200, description = "discovery metadata: issuer, jwks_uri, the signing algorithms of the published keys; no endpoint that is not served", body = serde_json::Value)))]
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    let base = state.config.server.public_url.trim_end_matches('/');
    let algorithms = state.services.keys.ring().algorithms();
    let body = json!({
        "issuer": state.config.issuer(),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": algorithms,
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "email", "username", "roles", "territory", "verified"],
    });
    ([(CACHE_CONTROL, "public, max-age=300")], axum::Json(body)).into_response()
}
