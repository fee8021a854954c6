//! The shapes of `POST /oauth/token` (SPEC §11): the form as the OpenAPI document describes
//! it, and the answers of its three grants and of its errors.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::services::oauth::ExchangedToken;

/// The form of a token request (`application/x-www-form-urlencoded`). Parameters a grant
/// does not use are ignored, as RFC 6749 §3.2 requires; a parameter given twice is refused.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "the document's description of the form; the form is read by `oauth::form`"
)]
pub struct TokenRequest {
    /// `authorization_code`, `client_credentials`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`; any other is
    /// `unsupported_grant_type`.
    #[schema(example = "client_credentials")]
    grant_type: String,
    /// Space-separated scopes. `client_credentials`: each one of the client's, all of them
    /// when absent. Token exchange: each one of the client's (and of the subject token's, when
    /// it has a scope). `refresh_token`: a user's session grants no scope, so any is
    /// `invalid_scope`.
    #[schema(example = "orders:read")]
    scope: Option<String>,
    /// `client_secret_post`: the client's id in the form (not with HTTP Basic). With
    /// `private_key_jwt`, optional and then equal to the assertion's `iss`.
    client_id: Option<String>,
    /// `client_secret_post`: the client's secret in the form (not with HTTP Basic).
    #[schema(format = Password)]
    client_secret: Option<String>,
    /// `private_key_jwt` (RFC 7523 §2.2): `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// `private_key_jwt`: a JWT signed with one of the client's keys, at most 8 KiB: `iss` and
    /// `sub` the client id, `aud` the token endpoint or the issuer, `exp` at most 5 minutes
    /// ahead, a `jti` used once.
    #[schema(format = Password, max_length = 8192)]
    client_assertion: Option<String>,
    /// `authorization_code`: the code from the authorization endpoint; spent by any
    /// exchange, right or wrong.
    #[schema(format = Password)]
    code: Option<String>,
    /// `authorization_code`: the redirect URI of the authorization request, exactly.
    redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier (RFC 7636), 43–128 characters of
    /// `[A-Za-z0-9-._~]`.
    #[schema(format = Password, min_length = 43, max_length = 128)]
    code_verifier: Option<String>,
    /// `refresh_token`: the refresh token of a user's session; spent and replaced (SPEC §3).
    #[schema(format = Password)]
    refresh_token: Option<String>,
    /// Token exchange: a user's access token.
    #[schema(format = Password)]
    subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`, the only type taken.
    subject_token_type: Option<String>,
    /// Token exchange: the audience of the new token, one of the client's
    /// `exchange_audiences`.
    audience: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` when given.
    requested_token_type: Option<String>,
}

/// What the token endpoint answers, one shape per grant (each closed, so exactly one matches).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "the document's description of the answers; each grant answers its own shape"
)]
pub enum TokenAnswer {
    ClientCredentials(TokenResponse),
    RefreshToken(RefreshedResponse),
    TokenExchange(ExchangedResponse),
}

/// A client's access token (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponse {
    /// A JWT signed like users' tokens: `sub` and `client_id` are the client's id, `scope`
    /// the granted scopes, `roles` the client's roles; no `sid`.
    pub(super) access_token: String,
    #[schema(example = "Bearer")]
    pub(super) token_type: &'static str,
    pub(super) expires_in: u64,
    /// The granted scopes, space-separated.
    pub(super) scope: String,
}

/// A user's tokens: for the refresh grant (RFC 6749 §6) the presented refresh token is spent
/// and `refresh_token` is its successor; for the authorization code grant (RFC 6749 §4.1.4)
/// they are a new session's.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshedResponse {
    /// The user's access token, as `POST /api/auth/refresh` answers it.
    pub(super) access_token: String,
    #[schema(example = "Bearer")]
    pub(super) token_type: &'static str,
    pub(super) expires_in: u64,
    pub(super) refresh_token: String,
    /// `mfa_enrollment` for an enrollment-only session (SPEC §10); the scopes an
    /// authorization code granted the session; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) scope: Option<String>,
}

/// The token of a token exchange (RFC 8693 §2.2.1).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangedResponse {
    /// A JWT for `audience`: `sub` the user, `act.sub` the client, the user's roles, the
    /// subject's `sid`.
    access_token: String,
    #[schema(example = "urn:ietf:params:oauth:token-type:access_token")]
    issued_token_type: &'static str,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    expires_in: u64,
    /// The granted scopes, space-separated; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

impl From<ExchangedToken> for ExchangedResponse {
    fn from(token: ExchangedToken) -> Self {
        Self {
            access_token: token.access_token,
            issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
            token_type: "Bearer",
            expires_in: token.expires_in,
            scope: token.scope,
        }
    }
}

/// An RFC 6749 §5.2 error.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `invalid_scope`,
    /// `invalid_target`, `unauthorized_client` or `unsupported_grant_type`.
    error: String,
    error_description: String,
}
