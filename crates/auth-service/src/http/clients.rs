//! `/api/clients`: administration of OAuth 2 clients (SPEC §11). Every route requires the
//! `admin` role; a territory admin administers its territory's clients only (SPEC §5).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{path_id, AdminRole, Authorized, Json};
use super::schema::RoleName;
use super::views::no_store;
use crate::domain::client::{self, AuthMethod, Client, ClientKeys, ClientPatch, ClientSettings};
use crate::error::{Error, FieldError};
use crate::services::RequestContext;
use crate::state::AppState;

/// A client as administrators see it; never its secret.
#[derive(Serialize, ToSchema)]
pub struct ClientView {
    /// The `client_id` of RFC 6749, and the `sub` of the client's tokens.
    client_id: Uuid,
    name: String,
    /// What the client may ask for at `POST /oauth/token`.
    scopes: Vec<String>,
    /// Put in the client's tokens: held globally, or in `territory`.
    roles: Vec<String>,
    territory: Option<String>,
    /// Lifetime of its access tokens; `null`: the configured `auth.access_token_ttl`.
    access_token_ttl_seconds: Option<u64>,
    is_active: bool,
    /// Until when the secret replaced by the last rotation still authenticates.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Audiences it may exchange users' access tokens for (RFC 8693); empty: none.
    exchange_audiences: Vec<String>,
    /// `client_secret_basic` (either secret method works), `client_secret_post`, or
    /// `private_key_jwt`.
    #[schema(value_type = AuthMethodName)]
    token_endpoint_auth_method: &'static str,
    /// `private_key_jwt`: its inline JWK Set (public keys).
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// `private_key_jwt`: where its JWK Set is fetched.
    jwks_uri: Option<String>,
    /// Where the authorization endpoint may send the browser back (matched exactly).
    redirect_uris: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `client_secret_basic`, `client_secret_post`, `private_key_jwt`, or `none` (a public
/// client: no secret and no keys; only the authorization code grant with PKCE and refresh).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "the document's description of the field")]
pub enum AuthMethodName {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl From<Client> for ClientView {
    fn from(client: Client) -> Self {
        Self {
            client_id: client.id,
            name: client.name,
            scopes: client.scopes,
            roles: client.roles,
            territory: client.territory,
            access_token_ttl_seconds: client.access_token_ttl,
            is_active: client.is_active,
            previous_secret_expires_at: client.previous_secret_expires_at,
            exchange_audiences: client.exchange_audiences,
            token_endpoint_auth_method: client.keys.auth_method.as_str(),
            jwks: client
                .keys
                .jwks
                .and_then(|text| serde_json::from_str(&text).ok()),
            jwks_uri: client.keys.jwks_uri,
            redirect_uris: client.redirect_uris,
            created_at: client.created_at,
            updated_at: client.updated_at,
        }
    }
}

/// A client with its new secret: shown this once, never again.
#[derive(Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    client: ClientView,
    /// 256 random bits, base64url; only its SHA-256 is kept. Absent for a `private_key_jwt`
    /// client, which has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

pub(super) fn with_secret(
    status: StatusCode,
    client: Client,
    secret: Option<&SecretString>,
) -> Response {
    let body = ClientWithSecret {
        client: client.into(),
        client_secret: secret.map(|secret| secret.expose_secret().to_owned()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,100}$", example = "billing")]
    name: String,
    /// RFC 6749 scope tokens the client may ask for; none when absent.
    #[schema(inline, value_type = Option<Vec<ScopeName>>, max_items = 100)]
    scopes: Option<Vec<String>>,
    /// Existing roles, put in its tokens; none when absent.
    #[schema(inline, value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
    /// An existing territory's code; a territory admin's clients are always its territory's.
    #[schema(pattern = r"^[a-z0-9-]{2,10}$")]
    territory: Option<String>,
    #[schema(minimum = 60, maximum = 86400)]
    access_token_ttl_seconds: Option<u64>,
    /// `true` when absent.
    is_active: Option<bool>,
    /// Audiences it may exchange users' access tokens for (RFC 8693); none when absent. Never
    /// this service's own `auth.audience`.
    #[schema(inline, value_type = Option<Vec<AudienceName>>, max_items = 20)]
    exchange_audiences: Option<Vec<String>>,
    /// `client_secret_basic` when absent. A `private_key_jwt` client gets no secret and needs
    /// exactly one of `jwks` and `jwks_uri`.
    #[schema(value_type = Option<AuthMethodName>)]
    token_endpoint_auth_method: Option<String>,
    /// An inline JWK Set of public keys (RSA, EC P-256 or Ed25519), at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// https (http only on a loopback address); fetched with a 3 s timeout, cached 5 minutes.
    #[schema(max_length = 2048)]
    jwks_uri: Option<String>,
    /// Where the authorization endpoint may send the browser back (RFC 6749 §3.1.2), at most
    /// 10: absolute, https (http only on localhost, 127.0.0.1 or [::1]), no fragment, at most
    /// 2048 bytes each; matched exactly as written. None when absent.
    #[schema(inline, value_type = Option<Vec<RedirectUri>>, max_items = 10)]
    redirect_uris: Option<Vec<String>>,
}

/// An absolute https URI (http on a loopback host) without a fragment.
pub struct RedirectUri;

impl utoipa::PartialSchema for RedirectUri {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .max_length(Some(2048))
            .pattern(Some(r#"^https?://[!-"$-~]+$"#))
            .into()
    }
}

impl ToSchema for RedirectUri {}

/// An audience a client may exchange tokens for: printable ASCII without space.
pub struct AudienceName;

impl utoipa::PartialSchema for AudienceName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^[!-~]{1,200}$"))
            .into()
    }
}

impl ToSchema for AudienceName {}

/// An RFC 6749 §3.3 scope token: printable ASCII without space, `"` or `\`.
pub struct ScopeName;

impl utoipa::PartialSchema for ScopeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^[!#-\[\]-~]{1,64}$"))
            .into()
    }
}

impl ToSchema for ScopeName {}

/// Every field problem of a client's settings at once.
fn settings(
    name: Option<String>,
    scopes: Option<Vec<String>>,
    ttl: Option<Option<u64>>,
    errors: &mut Vec<FieldError>,
) -> (Option<String>, Option<Vec<String>>, Option<Option<u64>>) {
    let name = name.and_then(|n| client::parse_name(&n).map_err(|e| errors.push(e)).ok());
    let scopes = scopes.and_then(|s| client::parse_scopes(s).map_err(|e| errors.push(e)).ok());
    let ttl = ttl.and_then(|t| {
        t.map(client::parse_ttl)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
    });
    (name, scopes, ttl)
}

/// The grant fields' problems, each at once: exchange audiences, the method, an inline JWK
/// Set (kept as JSON text; checked in full by the service).
fn grant_fields(
    audiences: Option<Vec<String>>,
    method: Option<&str>,
    jwks: Option<Option<serde_json::Value>>,
    errors: &mut Vec<FieldError>,
) -> (
    Option<Vec<String>>,
    Option<AuthMethod>,
    Option<Option<String>>,
) {
    let audiences = audiences.and_then(|a| {
        client::parse_exchange_audiences(a)
            .map_err(|e| errors.push(e))
            .ok()
    });
    let method = method.and_then(|text| {
        let parsed = AuthMethod::parse(text);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "token_endpoint_auth_method",
                "invalid",
                "is client_secret_basic, client_secret_post, private_key_jwt or none",
            ));
        }
        parsed
    });
    let jwks = jwks.map(|jwks| jwks.map(|value| value.to_string()));
    (audiences, method, jwks)
}

impl TryFrom<CreateClientRequest> for ClientSettings {
    type Error = Error;

    fn try_from(body: CreateClientRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let (name, scopes, ttl) = settings(
            Some(body.name),
            Some(body.scopes.unwrap_or_default()),
            Some(body.access_token_ttl_seconds),
            &mut errors,
        );
        let (audiences, method, jwks) = grant_fields(
            Some(body.exchange_audiences.unwrap_or_default()),
            body.token_endpoint_auth_method.as_deref(),
            Some(body.jwks),
            &mut errors,
        );
        let redirect_uris = client::parse_redirect_uris(body.redirect_uris.unwrap_or_default())
            .map_err(|e| errors.push(e))
            .ok();
        match (name, scopes, ttl, audiences, redirect_uris) {
            (
                Some(name),
                Some(scopes),
                Some(access_token_ttl),
                Some(exchange_audiences),
                Some(redirect_uris),
            ) if errors.is_empty() => Ok(Self {
                name,
                scopes,
                roles: client::sorted(body.roles.unwrap_or_default()),
                territory: body.territory,
                access_token_ttl,
                is_active: body.is_active.unwrap_or(true),
                exchange_audiences,
                keys: ClientKeys {
                    auth_method: method.unwrap_or_default(),
                    jwks: jwks.flatten(),
                    jwks_uri: body.jwks_uri,
                },
                redirect_uris,
            }),
            _ => Err(Error::Invalid(errors)),
        }
    }
}

/// Creates a client and answers its secret, this once.
#[utoipa::path(post, path = "/api/clients", tag = "clients", security(("bearer" = [])), request_body = CreateClientRequest,
    responses(
        (status = 201, body = ClientWithSecret, description = "the client and its secret, shown this once (`Cache-Control: no-store`)"),
        (status = 400, description = "`validation_failed`, including `unknown_role` and `unknown_territory`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin, or a territory admin naming another territory; `user_token_required`: a client's token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn create_client(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Json(body): Json<CreateClientRequest>,
) -> Result<Response, Error> {
    let settings = ClientSettings::try_from(body)?;
    let clients = &state.services.clients;
    let (client, secret) = clients.create(&caller, settings, &request).await?;
    Ok(with_secret(StatusCode::CREATED, client, secret.as_ref()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClientList {
    clients: Vec<ClientView>,
    /// Absent on the last page.
    next_cursor: Option<String>,
}

/// Clients, oldest first, a page at a time; a territory admin sees its territory's.
#[utoipa::path(get, path = "/api/clients", tag = "clients", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, body = ClientList),
        (status = 400, description = "`validation_failed`: limit outside 1–100 or a bad cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, or `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_clients(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<ClientList>, Error> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            "out_of_range",
            "must be between 1 and 100",
        ));
    }
    let clients = &state.services.clients;
    let page = clients
        .list(&caller, limit, query.cursor.as_deref(), &request)
        .await?;
    Ok(axum::Json(ClientList {
        clients: page.clients.into_iter().map(ClientView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A client by id.
#[utoipa::path(get, path = "/api/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the client id")),
    responses(
        (status = 200, body = ClientView),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, or `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found`: no such client within the caller's reach", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests from this address", body = Problem, content_type = "application/problem+json"),
))]
pub async fn get_client(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<axum::Json<ClientView>, Error> {
    let clients = &state.services.clients;
    let client = clients.client(&caller, path_id(&id)?, &request).await?;
    Ok(axum::Json(client.into()))
}

/// Any of the fields; absent fields stay, `null` clears the territory or the lifetime.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchClientRequest {
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,100}$")]
    name: Option<String>,
    /// Replaces the scopes.
    #[schema(inline, value_type = Option<Vec<ScopeName>>, max_items = 100)]
    scopes: Option<Vec<String>>,
    /// Replaces the roles; each an existing role.
    #[schema(inline, value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9-]{2,10}$")]
    territory: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable_number")]
    #[schema(value_type = Option<u64>, minimum = 60, maximum = 86400)]
    access_token_ttl_seconds: Option<Option<u64>>,
    /// `false`: the client's secrets stop authenticating and its tokens stop introspecting
    /// as active.
    is_active: Option<bool>,
    /// Replaces the exchange audiences; `[]`: it may no longer exchange.
    #[schema(inline, value_type = Option<Vec<AudienceName>>, max_items = 20)]
    exchange_audiences: Option<Vec<String>>,
    /// A new method. Moving to `private_key_jwt` stops its secret at once; moving back needs
    /// `POST /api/clients/{id}/secret` for a secret anyone knows.
    #[schema(value_type = Option<AuthMethodName>)]
    token_endpoint_auth_method: Option<String>,
    /// Replaces the inline JWK Set; `null` removes it.
    #[serde(default, deserialize_with = "nullable_value")]
    #[schema(value_type = Option<Object>)]
    jwks: Option<Option<serde_json::Value>>,
    /// Replaces the JWK Set address; `null` removes it.
    #[serde(default, deserialize_with = "super::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    jwks_uri: Option<Option<String>>,
    /// Replaces the redirect URIs; `[]`: it may no longer use the authorization endpoint.
    #[schema(inline, value_type = Option<Vec<RedirectUri>>, max_items = 10)]
    redirect_uris: Option<Vec<String>>,
}

/// `Some(None)` for an explicit `null`, `None` when absent.
fn nullable_value<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    let value: serde_json::Value = Deserialize::deserialize(deserializer)?;
    Ok(Some((!value.is_null()).then_some(value)))
}

/// `Some(None)` for an explicit `null`, `None` when absent.
fn nullable_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<u64>>, D::Error> {
    Ok(Some(Deserialize::deserialize(deserializer)?))
}

impl TryFrom<PatchClientRequest> for ClientPatch {
    type Error = Error;

    fn try_from(body: PatchClientRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let (name, scopes, ttl) = settings(
            body.name,
            body.scopes,
            body.access_token_ttl_seconds,
            &mut errors,
        );
        let (exchange_audiences, auth_method, jwks) = grant_fields(
            body.exchange_audiences,
            body.token_endpoint_auth_method.as_deref(),
            body.jwks,
            &mut errors,
        );
        let redirect_uris = body.redirect_uris.and_then(|uris| {
            client::parse_redirect_uris(uris)
                .map_err(|e| errors.push(e))
                .ok()
        });
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(Self {
            name,
            scopes,
            roles: body.roles.map(client::sorted),
            territory: body.territory,
            access_token_ttl: ttl,
            is_active: body.is_active,
            exchange_audiences,
            auth_method,
            jwks,
            jwks_uri: body.jwks_uri,
            redirect_uris,
        })
    }
}

/// Changes a client's name, scopes, roles, territory, token lifetime or `is_active`.
#[utoipa::path(patch, path = "/api/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the client id")), request_body = PatchClientRequest,
    responses(
        (status = 200, body = ClientView),
        (status = 400, description = "`validation_failed`, including `unknown_role` and `unknown_territory`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a territory admin moving a client out of its territory; `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn patch_client(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
    Json(body): Json<PatchClientRequest>,
) -> Result<axum::Json<ClientView>, Error> {
    let id = path_id(&id)?;
    let patch = ClientPatch::try_from(body)?;
    let clients = &state.services.clients;
    let client = clients.update(&caller, id, patch, &request).await?;
    Ok(axum::Json(client.into()))
}

/// Deletes a client: its secrets stop authenticating and its tokens stop introspecting as
/// active, at once.
#[utoipa::path(delete, path = "/api/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the client id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, or `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_client(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id = path_id(&id)?;
    state.services.clients.delete(&caller, id, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}
