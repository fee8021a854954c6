//! `/api/auth/password/*` and `/api/auth/email/*`: forgot, reset and change a password;
//! verify an email address.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::Json;
use crate::error::Error;
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    #[schema(
        example = "alice@example.com",
        pattern = r#"^[^\s"@\x00-\x1F\x7F-\x9F]{1,64}@([^\W_]|-)+(\.([^\W_]|-)+)+$"#,
        max_length = 254
    )]
    email: String,
}

/// Mails a single-use reset link when the address belongs to an account.
///
/// The answer is 202 whether or not it does, and takes the same time (no enumeration).
#[utoipa::path(post, path = "/api/auth/password/forgot", tag = "password", request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "accepted; a link is mailed if the address has an account"),
        (status = 400, description = "`validation_failed`: not an email address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn forgot_password(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<ForgotPasswordRequest>,
) -> Result<StatusCode, Error> {
    state
        .services
        .recovery
        .forgot_password(&body.email, &request)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the reset link.
    #[schema(value_type = String)]
    token: SecretString,
    /// The password policy applies (see `POST /api/auth/signup`).
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    new_password: SecretString,
}

/// Sets a new password with a reset token; every session of the user ends.
#[utoipa::path(post, path = "/api/auth/password/reset", tag = "password", request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "the password is changed and every session has ended"),
        (status = 400, description = "`invalid_token` (unknown, used or expired), or `validation_failed` listing every broken password rule", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn reset_password(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<ResetPasswordRequest>,
) -> Result<StatusCode, Error> {
    state
        .services
        .recovery
        .reset_password(body.token.expose_secret(), &body.new_password, &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    /// The password policy applies (see `POST /api/auth/signup`).
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    new_password: SecretString,
}

/// Changes the caller's password; every other session of the caller ends.
#[utoipa::path(post, path = "/api/auth/password/change", tag = "password", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "changed; the other sessions have ended"),
        (status = 400, description = "`validation_failed` listing every broken password rule", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, or `invalid_credentials` for a wrong current password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` after repeated wrong current passwords", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn change_password(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<StatusCode, Error> {
    let max = state.config.password.max_length;
    // An oversized "current password" is refused before it reaches the hasher.
    if body.current_password.expose_secret().chars().count() > max {
        return Err(Error::InvalidCredentials);
    }
    state
        .services
        .recovery
        .change_password(
            &current,
            body.current_password,
            &body.new_password,
            &request,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The token from the verification link.
    #[schema(value_type = String)]
    token: SecretString,
}

/// Marks the address verified with the token from the verification link.
#[utoipa::path(post, path = "/api/auth/email/verify", tag = "password", request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "verified"),
        (status = 400, description = "`invalid_token`: unknown, used or expired", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn verify_email(
    State(state): State<AppState>,
    request: RequestContext,
    Json(body): Json<VerifyEmailRequest>,
) -> Result<StatusCode, Error> {
    state
        .services
        .recovery
        .verify_email(body.token.expose_secret(), &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails a new verification link to the caller (nothing when already verified).
#[utoipa::path(post, path = "/api/auth/email/verify/resend", tag = "password", security(("bearer" = [])),
    responses(
        (status = 202, description = "accepted"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = Problem, content_type = "application/problem+json"),
))]
pub async fn resend_verification(
    State(state): State<AppState>,
    current: CurrentSession,
    request: RequestContext,
) -> Result<StatusCode, Error> {
    state
        .services
        .recovery
        .resend_verification(&current, &request)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
