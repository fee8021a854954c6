//! `auth.v1.AuthService`: each RPC reads its message and metadata, makes one use-case call and
//! shapes the answer. The rules live in `services`, shared with HTTP.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::call::Call;
use super::convert;
use super::pb;
use super::pb::auth_service_server::AuthService;
use crate::caller::TrustedProxies;
use crate::services::accounts::login::LoginOutcome;
use crate::services::Services;
use crate::state::AppState;

pub struct AuthApi {
    services: Arc<Services>,
    proxies: Arc<TrustedProxies>,
}

impl AuthApi {
    pub fn new(state: &AppState) -> Self {
        Self {
            services: state.services.clone(),
            proxies: state.proxies.clone(),
        }
    }

    fn call<T>(&self, rpc: &'static str, request: &Request<T>) -> Call {
        Call::of(rpc, request, &self.proxies)
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignUpResponse>, Status> {
        let call = self.call("SignUp", &request);
        call.answer(async {
            let form = convert::signup_form(request.into_inner())?;
            let signup = self.services.accounts.signup(form, &call.context).await?;
            Ok(convert::signup(signup))
        })
        .await
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let call = self.call("Login", &request);
        call.answer(async {
            let form = convert::login_form(request.into_inner())?;
            match self.services.accounts.login(form, &call.context).await? {
                LoginOutcome::SignedIn(pair) => Ok(convert::tokens(*pair)),
                LoginOutcome::MfaRequired(challenge) => Ok(convert::challenge(challenge)),
            }
        })
        .await
    }

    async fn verify_mfa(
        &self,
        request: Request<pb::VerifyMfaRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let call = self.call("VerifyMfa", &request);
        call.answer(async {
            let (mfa_token, factor) = convert::verify_mfa(request.into_inner())?;
            let accounts = &self.services.accounts;
            let pair = accounts
                .verify_mfa(&mfa_token, factor, &call.context)
                .await?;
            Ok(convert::tokens(pair))
        })
        .await
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let call = self.call("Refresh", &request);
        call.answer(async {
            let token = convert::required("refresh_token", request.into_inner().refresh_token)?;
            let token = secrecy::SecretString::from(token);
            let pair = self
                .services
                .sessions
                .refresh(&token, &call.context)
                .await?;
            Ok(convert::tokens(pair))
        })
        .await
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let call = self.call("Logout", &request);
        call.answer(async {
            let sessions = &self.services.sessions;
            let current = call.session(sessions).await?;
            let refresh = convert::refresh_token(request.into_inner().refresh_token)?
                .filter(|_| current.is_none());
            sessions
                .logout(current.as_ref(), refresh.as_ref(), &call.context)
                .await?;
            Ok(pb::LogoutResponse {})
        })
        .await
    }

    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let call = self.call("ValidateToken", &request);
        call.answer(async {
            let token = convert::required("token", request.into_inner().token)?;
            let verdict = self.services.clients.validate(&token).await?;
            Ok(convert::validation(verdict))
        })
        .await
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let call = self.call("GetUser", &request);
        call.answer(async {
            let current = call.current(&self.services.sessions).await?;
            let id = convert::optional_id("user_id", &request.get_ref().user_id)?;
            let accounts = &self.services.accounts;
            let user = accounts.user_for(&current, id, &call.context).await?;
            Ok(pb::GetUserResponse {
                user: Some(convert::user(user)),
            })
        })
        .await
    }

    async fn forgot_password(
        &self,
        request: Request<pb::ForgotPasswordRequest>,
    ) -> Result<Response<pb::ForgotPasswordResponse>, Status> {
        let call = self.call("ForgotPassword", &request);
        call.answer(async {
            let email = convert::required("email", request.into_inner().email)?;
            let recovery = &self.services.recovery;
            recovery.forgot_password(&email, &call.context).await?;
            Ok(pb::ForgotPasswordResponse {})
        })
        .await
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        let call = self.call("ResetPassword", &request);
        call.answer(async {
            let (token, new_password) = convert::reset(request.into_inner())?;
            let token = secrecy::ExposeSecret::expose_secret(&token);
            let recovery = &self.services.recovery;
            recovery
                .reset_password(token, &new_password, &call.context)
                .await?;
            Ok(pb::ResetPasswordResponse {})
        })
        .await
    }
}
