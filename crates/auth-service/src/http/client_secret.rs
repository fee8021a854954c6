//! `POST /api/clients/{id}/secret`: a client's new secret, with an overlap for the old one
//! (SPEC §11). Requires the `admin` role; reach as for the rest of `/api/clients`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::clients::{with_secret, ClientWithSecret};
use super::error::Problem;
use super::extract::{is_json, parse_json, path_id, AdminRole, Authorized};
use crate::error::Error;
use crate::services::RequestContext;
use crate::state::AppState;

/// How long the secret being replaced keeps working.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// 0 (at once) to 2592000 (30 days); the configured `clients.secret_overlap` (24 h by
    /// default) when absent.
    #[schema(minimum = 0, maximum = 2592000)]
    overlap_seconds: Option<u64>,
}

/// Gives a client a new secret, shown this once; the previous one keeps authenticating until
/// `previous_secret_expires_at`. The body may be left out.
#[utoipa::path(post, path = "/api/clients/{id}/secret", tag = "clients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the client id")),
    request_body(content = Option<RotateSecretRequest>, description = "optional"),
    responses(
        (status = 200, body = ClientWithSecret, description = "the client and its new secret, shown this once (`Cache-Control: no-store`)"),
        (status = 400, description = "`validation_failed`: not a UUID, or an overlap out of range", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, or `user_token_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`client_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    let id = path_id(&id)?;
    let overlap = optional_body(&headers, &body)?
        .and_then(|body| body.overlap_seconds)
        .map(std::time::Duration::from_secs);
    let clients = &state.services.clients;
    let (client, secret) = clients
        .rotate_secret(&caller, id, overlap, &request)
        .await?;
    Ok(with_secret(StatusCode::OK, client, Some(&secret)))
}

/// A JSON body that may be left out (no bytes at all) or be `null`.
fn optional_body(headers: &HeaderMap, body: &[u8]) -> Result<Option<RotateSecretRequest>, Error> {
    if body.is_empty() {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(Error::UnsupportedMediaType);
    }
    // `null` is the document's "no settings" as much as no body is.
    parse_json::<Option<RotateSecretRequest>>(body)
}
