//! `/api/auth/api-keys` (a user's own keys) and `/api/clients/{id}/api-keys` (keys owned by
//! clients, for administrators): API keys / personal access tokens (SPEC §11). A key is
//! answered once, at creation; lists show its prefix only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::clients::ScopeName;
use super::error::Problem;
use super::extract::{path_id, AdminRole, Authorized, Json};
use super::views::no_store;
use crate::domain::api_key::{ApiKey, KeyRequest};
use crate::error::Error;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

/// A key as its owner sees it: never the key.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    id: Uuid,
    name: String,
    /// `ask_` and the key's first 8 random characters, to tell keys apart.
    prefix: String,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
    /// `null`: the key does not expire.
    expires_at: Option<DateTime<Utc>>,
    /// Written in batches: up to a few seconds late.
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes,
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// A new key: the only answer that holds it.
#[derive(Serialize, ToSchema)]
pub struct NewApiKeyView {
    id: Uuid,
    /// `ask_<32 base62>_<6 base62 CRC-32>`; shown this once, only its SHA-256 is kept.
    key: String,
    prefix: String,
    name: String,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

fn created(key: ApiKey, secret: &SecretString) -> Response {
    let body = NewApiKeyView {
        id: key.id,
        key: secret.expose_secret().to_owned(),
        prefix: key.prefix,
        name: key.name,
        scopes: key.scopes,
        created_at: key.created_at,
        expires_at: key.expires_at,
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 100,
        example = "ci deploy"
    )]
    name: String,
    /// Scope tokens: this service's `auth:read`, `admin:read`, `admin:write`, or any other
    /// (meaningful to other services). A client's key: only the client's scopes.
    #[schema(inline, value_type = Vec<ScopeName>, max_items = 100)]
    scopes: Vec<String>,
    /// Seconds until the key expires (1 to 63244800, two years); absent: it does not expire.
    #[schema(minimum = 1, maximum = 63244800)]
    expires_in: Option<u64>,
}

impl TryFrom<CreateApiKeyRequest> for KeyRequest {
    type Error = Error;

    fn try_from(body: CreateApiKeyRequest) -> Result<Self, Error> {
        KeyRequest::parse(&body.name, body.scopes, body.expires_in).map_err(Error::Invalid)
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    api_keys: Vec<ApiKeyView>,
}

fn listed(keys: Vec<ApiKey>) -> axum::Json<ApiKeyList> {
    axum::Json(ApiKeyList {
        api_keys: keys.into_iter().map(ApiKeyView::from).collect(),
    })
}

/// Creates an API key for the caller and answers it, this once. Only a session's access
/// token may (never an API key).
#[utoipa::path(post, path = "/api/auth/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = NewApiKeyView, description = "the key, shown this once (`Cache-Control: no-store`)"),
        (status = 400, description = "`validation_failed`: a blank or too long name, a malformed scope, `expires_in` out of range", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_token_required`: a client's token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`too_many_api_keys`: the caller holds 100 keys", body = Problem, content_type = "application/problem+json"),
))]
pub async fn create_api_key(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<CreateApiKeyRequest>,
) -> Result<Response, Error> {
    let asked = KeyRequest::try_from(body)?;
    let api_keys = &state.services.api_keys;
    let (key, secret) = api_keys.create_own(&current, asked, &request).await?;
    Ok(created(key, &secret))
}

/// The caller's API keys, oldest first: prefixes, never the keys.
#[utoipa::path(get, path = "/api/auth/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses(
        (status = 200, body = ApiKeyList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_token_required`: a client's token", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<ApiKeyList>, Error> {
    Ok(listed(state.services.api_keys.list_own(&current).await?))
}

/// Revokes one of the caller's API keys: it stops working at once.
#[utoipa::path(delete, path = "/api/auth/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the key's id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_token_required`: a client's token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`api_key_not_found`: no such key of the caller's", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let api_keys = &state.services.api_keys;
    api_keys
        .revoke_own(&current, path_id(&id)?, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an API key owned by a client, answered this once; its scopes must be the
/// client's. Scoped like the client: a territory admin reaches its territory's clients.
#[utoipa::path(post, path = "/api/clients/{id}/api-keys", tag = "clients", security(("bearer" = [])), request_body = CreateApiKeyRequest,
    params(("id" = Uuid, Path, description = "the client id")),
    responses(
        (status = 201, body = NewApiKeyView, description = "the key, shown this once (`Cache-Control: no-store`)"),
        (status = 400, description = "`validation_failed`, including `scope_not_held` (a scope the client does not hold)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin; `user_token_required`: a client's token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found`: no such client within the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`too_many_api_keys`: the client holds 100 keys", body = Problem, content_type = "application/problem+json"),
))]
pub async fn create_client_api_key(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
    Json(body): Json<CreateApiKeyRequest>,
) -> Result<Response, Error> {
    let client_id = path_id(&id)?;
    let asked = KeyRequest::try_from(body)?;
    let clients = &state.services.clients;
    let (key, secret) = clients
        .create_api_key(&caller, client_id, asked, &request)
        .await?;
    Ok(created(key, &secret))
}

/// A client's API keys, oldest first: prefixes, never the keys.
#[utoipa::path(get, path = "/api/clients/{id}/api-keys", tag = "clients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the client id")),
    responses(
        (status = 200, body = ApiKeyList),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, or `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found`: no such client within the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_client_api_keys(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<axum::Json<ApiKeyList>, Error> {
    let clients = &state.services.clients;
    let keys = clients.api_keys(&caller, path_id(&id)?, &request).await?;
    Ok(listed(keys))
}

/// Revokes one of a client's API keys: it stops working at once.
#[utoipa::path(delete, path = "/api/clients/{id}/api-keys/{key_id}", tag = "clients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the client id"), ("key_id" = Uuid, Path, description = "the key's id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, or `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found` (not within the caller's reach) or `api_key_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_client_api_key(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let (client_id, key_id) = (path_id(&id)?, path_id(&key_id)?);
    let clients = &state.services.clients;
    clients
        .revoke_api_key(&caller, client_id, key_id, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
