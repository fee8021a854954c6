//! `/api/auth/introspect`: RFC 7662 token introspection for other services.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::Json;
use super::schema;
use super::views::no_store;
use crate::error::Error;
use crate::services::api_keys::{KeyCaller, KeyHolder};
use crate::services::oauth::Introspected;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    /// An access token, or an API key (`ask_…`).
    token: String,
}

/// RFC 7662 token introspection for other services: `active` is false for an invalid token,
/// for a token whose session has ended, for a client's token whose client is deleted or
/// inactive, and for an API key that is malformed, unknown, revoked or expired (SPEC §11).
#[utoipa::path(post, path = "/api/auth/introspect", tag = "tokens", request_body = IntrospectRequest,
    responses((status = 200, body = schema::IntrospectionSchema),
        (status = 400, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn introspect(
    State(state): State<AppState>,
    Json(body): Json<IntrospectRequest>,
) -> Result<Response, Error> {
    let body = match state.services.clients.introspect(&body.token).await? {
        Some(Introspected::User(claims)) => Introspection {
            active: true,
            token: Some(IntrospectedToken::User(UserToken {
                sub: claims.sub,
                sid: claims.sid,
                username: claims.username,
                roles: claims.roles,
                territory: claims.territory,
                amr: claims.amr,
                exp: claims.exp,
                iat: claims.iat,
                token_type: "Bearer",
                iss: claims.iss,
                aud: claims.aud,
            })),
        },
        Some(Introspected::Client(claims)) => Introspection {
            active: true,
            token: Some(IntrospectedToken::Client(ClientToken {
                sub: claims.sub,
                client_id: claims.client_id,
                scope: claims.scope,
                roles: claims.roles,
                territory: claims.territory,
                exp: claims.exp,
                iat: claims.iat,
                token_type: "Bearer",
                iss: claims.iss,
                aud: claims.aud,
            })),
        },
        Some(Introspected::ApiKey(caller)) => Introspection {
            active: true,
            token: Some(IntrospectedToken::ApiKey(KeyToken::from(caller))),
        },
        None => Introspection {
            active: false,
            token: None,
        },
    };
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}

/// `{active:false}`, or `{active:true, …the token's claims}` (RFC 7662); its schema is
/// [`schema::IntrospectionSchema`].
#[derive(Serialize)]
pub struct Introspection {
    active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    token: Option<IntrospectedToken>,
}

/// The claims of an active token: a user's or (SPEC §11) a client's.
#[derive(Serialize)]
#[serde(untagged)]
pub enum IntrospectedToken {
    User(UserToken),
    Client(ClientToken),
    ApiKey(KeyToken),
}

/// An API key (SPEC §11): its owner (`sub`: a user's or a client's id), its scopes and the
/// owner's roles now; `exp` only when it expires.
#[derive(Serialize)]
pub struct KeyToken {
    token_type: &'static str,
    sub: Uuid,
    owner_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<Uuid>,
    scope: String,
    roles: Vec<String>,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

impl From<KeyCaller> for KeyToken {
    fn from(caller: KeyCaller) -> Self {
        let roles = caller.roles().to_vec();
        let key = caller.key;
        let (username, client_id) = match caller.owner {
            KeyHolder::User(user) => (Some(user.username), None),
            KeyHolder::Client { client, .. } => (None, Some(client.id)),
        };
        Self {
            token_type: "api_key",
            sub: key.owner.id(),
            owner_type: key.owner.kind(),
            username,
            client_id,
            scope: key.scopes.join(" "),
            roles,
            iat: key.created_at.timestamp(),
            exp: key.expires_at.map(|at| at.timestamp()),
        }
    }
}

/// A client's token: no session, no username; its scope.
#[derive(Serialize)]
pub struct ClientToken {
    sub: String,
    client_id: String,
    scope: String,
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    territory: Option<String>,
    exp: i64,
    iat: i64,
    token_type: &'static str,
    iss: String,
    aud: String,
}

#[derive(Serialize)]
pub struct UserToken {
    sub: Uuid,
    sid: Uuid,
    username: String,
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    territory: Option<String>,
    /// RFC 8176 authentication methods of the session (SPEC §10).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    amr: Vec<String>,
    exp: i64,
    iat: i64,
    token_type: &'static str,
    iss: String,
    aud: String,
}
