//! `/api/auth/mfa/*` (SPEC §10): TOTP enrollment and removal, recovery codes, the login
//! challenge's second step; and an administrator's reset, `DELETE /api/users/{id}/mfa`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::{path_id, AdminRole, Authorized, Json};
use super::views::secret_answer;
use crate::domain::mfa::MfaMethod;
use crate::domain::passkey::PASSKEY_METHOD;
use crate::error::Error;
use crate::services::mfa::Factor;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollTotpRequest {
    /// The caller's password, asked again.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// A new TOTP secret for an authenticator app.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollmentView {
    /// The secret in base32, for typing into an app.
    secret: String,
    /// `otpauth://totp/…` (SHA-1, 6 digits, 30 s).
    otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    qr_svg: String,
}

/// Starts a TOTP enrollment (or restarts a pending one); `POST /api/auth/mfa/totp/confirm`
/// turns it on.
#[utoipa::path(post, path = "/api/auth/mfa/totp", tag = "mfa", security(("bearer" = [])), request_body = EnrollTotpRequest,
    responses(
        (status = 200, description = "the secret, its `otpauth://` URI and a QR code (SVG); not stored by caches", body = TotpEnrollmentView),
        (status = 400, description = "`validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, or `invalid_credentials` for a wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_already_enrolled`: a confirmed factor exists (remove it first)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` after repeated wrong passwords", body = Problem, content_type = "application/problem+json"),
))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<EnrollTotpRequest>,
) -> Result<Response, Error> {
    if body.password.expose_secret().chars().count() > state.config.password.max_length {
        return Err(Error::InvalidCredentials);
    }
    let enrollment = state
        .services
        .mfa
        .begin_totp(&current, body.password, &request)
        .await?;
    Ok(secret_answer(TotpEnrollmentView {
        secret: enrollment.secret.expose_secret().to_owned(),
        otpauth_uri: enrollment.otpauth_uri.expose_secret().to_owned(),
        qr_svg: enrollment.qr_svg,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    /// The six digits the authenticator app shows now.
    #[schema(value_type = String, example = "123456")]
    code: SecretString,
}

/// Recovery codes, shown once: each works once in place of a TOTP code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesView {
    recovery_codes: Vec<String>,
}

/// Turns the pending TOTP factor on with a first code; answers 10 recovery codes, once.
#[utoipa::path(post, path = "/api/auth/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])), request_body = ConfirmTotpRequest,
    responses(
        (status = 200, description = "on; the recovery codes are shown this once", body = RecoveryCodesView),
        (status = 400, description = "`invalid_mfa_code` (wrong or malformed), `validation_failed` or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_already_enrolled` (confirmed before) or `no_pending_enrollment`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<ConfirmTotpRequest>,
) -> Result<Response, Error> {
    let codes = state
        .services
        .mfa
        .confirm_totp(&current, &body.code, &request)
        .await?;
    Ok(recovery_codes(codes))
}

/// A fresh second factor: a current TOTP code or an unused recovery code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshFactorRequest {
    /// `totp` or `recovery_code`.
    #[schema(example = "totp", pattern = "^(totp|recovery_code)$")]
    method: String,
    #[schema(value_type = String, example = "123456")]
    code: SecretString,
}

/// Removes the caller's TOTP factor and recovery codes; needs a fresh factor.
#[utoipa::path(delete, path = "/api/auth/mfa/totp", tag = "mfa", security(("bearer" = [])), request_body = FreshFactorRequest,
    responses(
        (status = 204, description = "removed; logins ask for the password only"),
        (status = 400, description = "`invalid_mfa_code`, `validation_failed` (an unknown method) or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enrolled`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`factor_locked`, with `Retry-After`: too many wrong codes", body = Problem, content_type = "application/problem+json"),
))]
pub async fn remove_totp(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<FreshFactorRequest>,
) -> Result<StatusCode, Error> {
    let factor = factor(&body.method, body.code)?;
    state
        .services
        .mfa
        .remove_totp(&current, &factor, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes in place of the old ones; needs a fresh factor.
#[utoipa::path(post, path = "/api/auth/mfa/recovery-codes", tag = "mfa", security(("bearer" = [])), request_body = FreshFactorRequest,
    responses(
        (status = 200, description = "the new codes, shown this once; the old ones no longer work", body = RecoveryCodesView),
        (status = 400, description = "`invalid_mfa_code`, `validation_failed` (an unknown method) or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enrolled`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`factor_locked`, with `Retry-After`: too many wrong codes", body = Problem, content_type = "application/problem+json"),
))]
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<FreshFactorRequest>,
) -> Result<Response, Error> {
    let factor = factor(&body.method, body.code)?;
    let codes = state
        .services
        .mfa
        .regenerate_recovery_codes(&current, &factor, &request)
        .await?;
    Ok(recovery_codes(codes))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyMfaRequest {
    /// The `mfa_token` of the login's answer.
    #[schema(value_type = String)]
    mfa_token: SecretString,
    /// `totp`, `recovery_code` or `passkey`.
    #[schema(example = "totp", pattern = "^(totp|recovery_code|passkey)$")]
    method: String,
    /// The code, for `totp` and `recovery_code`.
    #[schema(value_type = Option<String>, example = "123456")]
    code: Option<SecretString>,
    /// For `passkey`: the `PublicKeyCredential` of `navigator.credentials.get` (as its
    /// `toJSON()`) with the options of `POST /api/auth/mfa/passkey/options`.
    #[schema(value_type = Option<Object>)]
    assertion: Option<crate::crypto::passkeys::PublicKeyCredential>,
}

/// Completes a login that answered `mfa_required`: the `mfa_token` and a second factor give
/// the token response (and the refresh cookie) of a login.
#[utoipa::path(post, path = "/api/auth/mfa/verify", tag = "mfa", request_body = VerifyMfaRequest,
    responses(
        (status = 200, description = "logged in; as `POST /api/auth/login`", body = super::views::TokenBody),
        (status = 400, description = "`invalid_mfa_code` (wrong, malformed or already used; the `mfa_token` stays usable), `invalid_passkey`, `invalid_ceremony` (no live passkey options for this `mfa_token`), `passkey_counter_regressed`, `validation_failed` (an unknown method, a missing `code` or `assertion`) or `malformed_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_mfa_token`: unknown, used or expired (5 minutes); log in again", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`factor_locked`, with `Retry-After`: too many wrong codes for this account", body = Problem, content_type = "application/problem+json"),
))]
pub async fn verify_mfa(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<VerifyMfaRequest>,
) -> Result<Response, Error> {
    let accounts = &state.services.accounts;
    let pair = match (body.method.as_str(), body.code, body.assertion) {
        (PASSKEY_METHOD, None, Some(assertion)) => {
            accounts
                .verify_mfa_passkey(&body.mfa_token, &assertion, &request)
                .await?
        }
        (PASSKEY_METHOD, _, _) => {
            return Err(Error::invalid(
                "assertion",
                "required",
                "method `passkey` takes an `assertion` and no `code`",
            ))
        }
        (method, Some(code), None) => {
            let factor = factor(method, code)?;
            accounts
                .verify_mfa(&body.mfa_token, factor, &request)
                .await?
        }
        _ => {
            return Err(Error::invalid(
                "code",
                "required",
                "methods `totp` and `recovery_code` take a `code` and no `assertion`",
            ))
        }
    };
    Ok(super::auth::token_response(&state, StatusCode::OK, pair))
}

/// Removes a user's second factors (a lost phone and lost codes); audited.
#[utoipa::path(delete, path = "/api/users/{id}/mfa", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user id")),
    responses(
        (status = 204, description = "removed; the user logs in with the password alone and may enroll again"),
        (status = 400, description = "`validation_failed`: not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enrolled`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn reset_user_mfa(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    request: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id = path_id(&id)?;
    state.services.mfa.reset(&caller, id, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn factor(method: &str, code: SecretString) -> Result<Factor, Error> {
    let method = MfaMethod::parse(method)
        .ok_or_else(|| Error::invalid("method", "unknown", "must be `totp` or `recovery_code`"))?;
    Ok(Factor { method, code })
}

fn recovery_codes(codes: Vec<SecretString>) -> Response {
    secret_answer(RecoveryCodesView {
        recovery_codes: codes
            .into_iter()
            .map(|code| code.expose_secret().to_owned())
            .collect(),
    })
}
