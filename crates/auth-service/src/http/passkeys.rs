//! `/api/auth/passkeys/*` (SPEC §10): registering, listing, renaming and removing the caller's
//! passkeys; the passwordless login; and `/api/auth/mfa/passkey/options`, the options of a
//! passkey as the second factor of a login challenge.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{is_json, parse_json, path_id, Json};
use super::views::secret_answer;
use crate::crypto::passkeys::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use crate::domain::mfa::MfaMethod;
use crate::domain::passkey::PasskeyInfo;
use crate::error::Error;
use crate::services::mfa::Factor;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterOptionsRequest {
    /// The caller's password, asked again.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// Options of a registration, for `navigator.credentials.create`.
#[derive(Serialize, ToSchema)]
pub struct RegisterOptionsView {
    /// Names this ceremony at `register/finish`; single use, 5 minutes.
    ceremony_id: Uuid,
    /// `{publicKey: PublicKeyCredentialCreationOptions}` (binary fields base64url), e.g. for
    /// `PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey)`.
    #[schema(value_type = Object)]
    options: CreationChallengeResponse,
}

/// Starts registering a passkey: answers the options for the authenticator.
#[utoipa::path(post, path = "/api/auth/passkeys/register/options", tag = "passkeys", security(("bearer" = [])), request_body = RegisterOptionsRequest,
    responses(
        (status = 200, description = "the options (a discoverable credential with user verification, attestation `none`)", body = RegisterOptionsView),
        (status = 400, description = "`validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, or `invalid_credentials` for a wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` after repeated wrong passwords", body = Problem, content_type = "application/problem+json"),
))]
pub async fn register_options(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<RegisterOptionsRequest>,
) -> Result<Response, Error> {
    if body.password.expose_secret().chars().count() > state.config.password.max_length {
        return Err(Error::InvalidCredentials);
    }
    let (ceremony_id, options) = state
        .services
        .passkeys
        .register_options(&current, body.password, &request)
        .await?;
    Ok(secret_answer(RegisterOptionsView {
        ceremony_id,
        options,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    /// The `ceremony_id` of the options.
    ceremony_id: Uuid,
    /// A name for the list (1 to 64 characters); `Passkey` when left out.
    #[schema(example = "Laptop", min_length = 1, max_length = 64)]
    name: Option<String>,
    /// The `PublicKeyCredential` of `navigator.credentials.create`, as its `toJSON()`.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

/// A passkey as listed.
#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    /// The authenticator reported it backed up (synced): its logins carry `amr` `swk`, a
    /// device-bound passkey's `hwk`.
    backed_up: bool,
}

impl From<PasskeyInfo> for PasskeyView {
    fn from(info: PasskeyInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            created_at: info.created_at,
            last_used_at: info.last_used_at,
            backed_up: info.backed_up,
        }
    }
}

/// A registered passkey; with the account's first second factor, its recovery codes.
#[derive(Serialize, ToSchema)]
pub struct RegisteredView {
    passkey: PasskeyView,
    /// Ten recovery codes, shown this once, when the passkey is the account's first second
    /// factor; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
}

/// Finishes registering a passkey.
#[utoipa::path(post, path = "/api/auth/passkeys/register/finish", tag = "passkeys", security(("bearer" = [])), request_body = RegisterFinishRequest,
    responses(
        (status = 201, description = "registered; logins with a password now ask for a second factor", body = RegisteredView),
        (status = 400, description = "`invalid_passkey` (the response does not verify: tampered, another challenge, origin or relying party, no user verification), `invalid_ceremony` (unknown, used or expired options), `validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`passkey_exists`: this credential is registered already", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn register_finish(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<RegisterFinishRequest>,
) -> Result<Response, Error> {
    let registered = state
        .services
        .passkeys
        .register_finish(
            &current,
            body.ceremony_id,
            body.name,
            &body.credential,
            &request,
        )
        .await?;
    let mut response = secret_answer(RegisteredView {
        passkey: registered.passkey.into(),
        recovery_codes: registered.recovery_codes.map(|codes| {
            codes
                .into_iter()
                .map(|c| c.expose_secret().to_owned())
                .collect()
        }),
    });
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyListView {
    passkeys: Vec<PasskeyView>,
}

/// The caller's passkeys, oldest first.
#[utoipa::path(get, path = "/api/auth/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses(
        (status = 200, description = "the passkeys", body = PasskeyListView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    current: CurrentSession,
) -> Result<axum::Json<PasskeyListView>, Error> {
    let passkeys = state.services.passkeys.list(&current).await?;
    Ok(axum::Json(PasskeyListView {
        passkeys: passkeys.into_iter().map(PasskeyView::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePasskeyRequest {
    /// 1 to 64 characters, trimmed; no control characters.
    #[schema(example = "Phone", min_length = 1, max_length = 64)]
    name: String,
}

/// Renames one of the caller's passkeys.
#[utoipa::path(patch, path = "/api/auth/passkeys/{id}", tag = "passkeys", security(("bearer" = [])), request_body = RenamePasskeyRequest,
    params(("id" = Uuid, Path, description = "the passkey id")),
    responses(
        (status = 200, description = "renamed", body = PasskeyView),
        (status = 400, description = "`validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`passkey_not_found`: the caller has no such passkey", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn rename_passkey(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Path(id): Path<String>,
    Json(body): Json<RenamePasskeyRequest>,
) -> Result<axum::Json<PasskeyView>, Error> {
    let id = path_id(&id)?;
    let renamed = state
        .services
        .passkeys
        .rename(&current, id, &body.name, &request)
        .await?;
    Ok(axum::Json(renamed.into()))
}

/// A fresh second factor, needed only to remove the last one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemovePasskeyRequest {
    /// `totp` or `recovery_code`.
    #[schema(example = "recovery_code", pattern = "^(totp|recovery_code)$")]
    method: String,
    #[schema(value_type = String, example = "k3v9-…")]
    code: SecretString,
}

/// Removes one of the caller's passkeys. The last second factor (no TOTP, no other passkey)
/// goes only with a fresh one in the body, and takes the recovery codes with it.
#[utoipa::path(delete, path = "/api/auth/passkeys/{id}", tag = "passkeys", security(("bearer" = [])), request_body(content = Option<RemovePasskeyRequest>, description = "a fresh factor; needed only for the last second factor"),
    params(("id" = Uuid, Path, description = "the passkey id")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "`invalid_mfa_code`, `validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`fresh_factor_required`: the last second factor needs a fresh one in the body", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`passkey_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`factor_locked`, with `Retry-After`: too many wrong codes", body = Problem, content_type = "application/problem+json"),
))]
pub async fn delete_passkey(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Error> {
    let id = path_id(&id)?;
    let fresh = optional_factor(&headers, &body)?;
    state
        .services
        .passkeys
        .remove(&current, id, fresh.as_ref(), &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Options of a passwordless, usernameless login or of a step-up.
#[derive(Serialize, ToSchema)]
pub struct LoginOptionsView {
    /// Names this ceremony at `login/finish`; single use, 5 minutes.
    ceremony_id: Uuid,
    /// `{publicKey: PublicKeyCredentialRequestOptions}` with no `allowCredentials`: the
    /// authenticator offers its discoverable credentials.
    #[schema(value_type = Object)]
    options: RequestChallengeResponse,
}

/// Starts a passwordless login.
#[utoipa::path(post, path = "/api/auth/passkeys/login/options", tag = "passkeys",
    responses(
        (status = 200, description = "the options for `navigator.credentials.get`", body = LoginOptionsView),
        (status = 429, description = "`too_many_attempts`: the client address sent too many logins", body = Problem, content_type = "application/problem+json"),
))]
pub async fn login_options(
    State(state): State<AppState>,
    request: RequestContext,
) -> Result<Response, Error> {
    let (ceremony_id, options) = state
        .services
        .accounts
        .passkey_login_options(&request)
        .await?;
    Ok(secret_answer(LoginOptionsView {
        ceremony_id,
        options,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginFinishRequest {
    /// The `ceremony_id` of the options.
    ceremony_id: Uuid,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as its `toJSON()`.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

/// Finishes a passwordless login: the token response of a login (and its refresh cookie).
#[utoipa::path(post, path = "/api/auth/passkeys/login/finish", tag = "passkeys", request_body = LoginFinishRequest,
    responses(
        (status = 200, description = "logged in; as `POST /api/auth/login`, `amr` `[\"hwk\",\"mfa\"]` (or `swk` for a synced passkey)", body = super::views::TokenBody),
        (status = 400, description = "`invalid_passkey` (unknown passkey or a response that does not verify), `invalid_ceremony`, `passkey_counter_regressed` (a cloned authenticator), `validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled` or `email_not_verified`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` or `factor_locked`, with `Retry-After`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn login_finish(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<LoginFinishRequest>,
) -> Result<Response, Error> {
    let pair = state
        .services
        .accounts
        .passkey_login(body.ceremony_id, &body.credential, &request)
        .await?;
    Ok(super::auth::token_response(&state, StatusCode::OK, pair))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPasskeyOptionsRequest {
    /// The `mfa_token` of the login's answer.
    #[schema(value_type = String)]
    mfa_token: SecretString,
}

/// Options of a passkey assertion.
#[derive(Serialize, ToSchema)]
pub struct AssertionOptionsView {
    /// `{publicKey: PublicKeyCredentialRequestOptions}` naming the user's passkeys.
    #[schema(value_type = Object)]
    options: RequestChallengeResponse,
}

/// Options of the passkey assertion that completes a login challenge (`method: "passkey"`
/// at `POST /api/auth/mfa/verify`); asking again replaces them.
#[utoipa::path(post, path = "/api/auth/mfa/passkey/options", tag = "mfa", request_body = MfaPasskeyOptionsRequest,
    responses(
        (status = 200, description = "the options for `navigator.credentials.get`", body = AssertionOptionsView),
        (status = 400, description = "`validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_mfa_token`: unknown, used or expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enrolled`: the account has no passkey", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn mfa_passkey_options(
    State(state): State<AppState>,
    Json(body): Json<MfaPasskeyOptionsRequest>,
) -> Result<Response, Error> {
    let options = state
        .services
        .accounts
        .mfa_passkey_options(&body.mfa_token)
        .await?;
    Ok(secret_answer(AssertionOptionsView { options }).into_response())
}

/// The fresh factor of a `DELETE`: none for an empty body or JSON `null`, otherwise a JSON
/// `{method, code}`.
fn optional_factor(headers: &HeaderMap, body: &Bytes) -> Result<Option<Factor>, Error> {
    let text = body.trim_ascii();
    if text.is_empty() || (text == b"null" && is_json(headers)) {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(Error::UnsupportedMediaType);
    }
    let request: RemovePasskeyRequest = parse_json(body)?;
    let method = MfaMethod::parse(&request.method)
        .ok_or_else(|| Error::invalid("method", "unknown", "must be `totp` or `recovery_code`"))?;
    Ok(Some(Factor {
        method,
        code: request.code,
    }))
}
