//! Accounts: signup (in `signup.rs`), login, the caller's own profile and GetUser.

mod signup;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::admin::{Admin, ADMIN_ROLE};
use super::context::{Context, RequestContext, TokenPair};
use super::recovery::login_key;
use super::sessions::CurrentSession;
use crate::crypto::password::Verdict;
use crate::domain::{AuditAction, EndReason, Event, Login, ProfilePatch, User};
use crate::error::Error;
use crate::limits::Scope;
use crate::store::Effects;

pub use signup::{Signup, SignupForm};

/// A login as the caller sent it: exactly one of `email` and `username`.
pub struct LoginForm {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: SecretString,
}

#[derive(Clone)]
pub struct Accounts {
    context: Arc<Context>,
}

impl Accounts {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// Counts the caller against the per-address login limit, checks the form, then the
    /// credentials.
    pub async fn login(
        &self,
        form: LoginForm,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        // SPEC §2 names one 429 for login, `too_many_attempts`, whichever limit refused it.
        ctx.limit_by_ip(Scope::LoginIp, request)
            .await
            .map_err(|error| match error {
                Error::RateLimited { retry_after } => Error::TooManyAttempts { retry_after },
                other => other,
            })?;
        let login = match (form.email, form.username) {
            (Some(email), None) => Login::Email(email),
            (None, Some(username)) => Login::Username(username),
            _ => {
                return Err(Error::invalid(
                    "email",
                    "required",
                    "give exactly one of email or username",
                ))
            }
        };
        let max = ctx.config.password.max_length;
        // SPEC §4: a password over the maximum is refused before any hashing work.
        if form.password.expose_secret().chars().count() > max {
            return Err(Error::invalid(
                "password",
                "too_long",
                &format!("must be at most {max} characters"),
            ));
        }
        // No session is written when no token could be signed for it.
        ctx.keys.ready_to_sign().await?;
        self.check_credentials(login, form.password, request).await
    }

    /// SPEC §4: unknown users and wrong passwords take the same time and answer the same way.
    async fn check_credentials(
        &self,
        login: Login,
        password: SecretString,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        let credentials = ctx.store.credentials(&login, ctx.territory()).await?;
        // SPEC §5: failures count per account once the identifier names one (email and
        // username alike), otherwise per normalised identifier, with the same answers.
        let lockout_key = login_key(&login, credentials.as_ref().map(|c| c.user.id));
        // SPEC §4: the attempt is counted before the password is checked, so concurrent
        // guesses cannot all slip in under one lockout.
        let attempt = match ctx.limiter.attempt(&lockout_key).await {
            Ok(attempt) => attempt,
            Err(retry_after) => {
                count("login", false);
                return Err(Error::TooManyAttempts { retry_after });
            }
        };
        let stored = credentials.as_ref().map(|c| c.password_hash.clone());
        let verdict = ctx
            .hasher
            .verify(password.clone(), stored)
            .await
            .map_err(Error::Internal)?;
        let (credentials, rehash) = match (credentials, verdict) {
            (Some(credentials), Verdict::Match { rehash }) => (credentials, rehash),
            (credentials, _) => {
                let user_id = credentials.map(|c| c.user.id);
                let mut effects = Effects {
                    events: Vec::new(),
                    audit: vec![ctx.audit(
                        AuditAction::LoginFailure,
                        None,
                        user_id,
                        json!({ "reason": "invalid_credentials" }),
                        request,
                    )],
                };
                if attempt.locked_now {
                    let lockout = ctx.config.limits.lockout;
                    effects = effects.and(ctx.locked_out(user_id, lockout, request));
                }
                ctx.store.record_effects(&effects).await?;
                count("login", false);
                return Err(Error::InvalidCredentials);
            }
        };
        ctx.limiter.reset(&lockout_key).await;
        let user = credentials.user;
        if !user.is_active {
            count("login", false);
            return Err(Error::AccountDisabled);
        }
        if ctx.config.auth.require_email_verification && !user.is_verified {
            count("login", false);
            return Err(Error::EmailNotVerified);
        }
        if rehash {
            let hash = ctx.hasher.hash(password).await.map_err(Error::Internal)?;
            ctx.store
                .replace_password_hash(user.id, &hash, ctx.now())
                .await?;
        }
        let (session, token_row, token) = ctx.new_session(user.id, request)?;
        let effects = Effects {
            events: vec![
                ctx.event(Event::UserLogin {
                    user_id: user.id,
                    session_id: session.id,
                }),
                ctx.event(Event::SessionCreated {
                    user_id: user.id,
                    session_id: session.id,
                }),
            ],
            audit: vec![ctx.audit(
                AuditAction::LoginSuccess,
                Some(user.id),
                Some(user.id),
                json!({ "session_id": session.id }),
                request,
            )],
        };
        let user_id = user.id;
        let evicted = move |ids: &[Uuid]| ctx.sessions_ended(user_id, ids, EndReason::Evicted);
        ctx.store
            .record_login(
                &session,
                &token_row,
                ctx.config.auth.max_sessions_per_user,
                &effects,
                &evicted,
            )
            .await?;
        count("login", true);
        ctx.token_pair(user, session.id, token.plaintext, ctx.refresh_ttl_seconds())
    }

    /// The caller's own user.
    pub async fn me(&self, user_id: Uuid) -> Result<User, Error> {
        self.context
            .store
            .user(user_id, self.context.territory())
            .await?
            .ok_or(Error::Unauthorized)
    }

    /// A user for the caller (GetUser): their own, or with the `admin` role anyone's. Another
    /// user asked for by a non-admin is `forbidden` whether or not it exists, so ids cannot be
    /// probed; an administrator's lookups count against the per-address lookup limit.
    pub async fn user_for(
        &self,
        caller: &CurrentSession,
        id: Option<Uuid>,
        request: &RequestContext,
    ) -> Result<User, Error> {
        match id {
            None => Ok(caller.user.clone()),
            Some(id) if id == caller.user_id() => Ok(caller.user.clone()),
            Some(_) if !caller.has_role(ADMIN_ROLE) => Err(Error::Forbidden),
            Some(id) => {
                Admin::new(self.context.clone())
                    .user(caller, id, request)
                    .await
            }
        }
    }

    /// Changes the caller's profile and answers the updated user.
    pub async fn update_me(&self, user_id: Uuid, patch: ProfilePatch) -> Result<User, Error> {
        let ctx = &self.context;
        if !patch.is_empty() {
            let fields: Vec<&'static str> = [
                patch.display_name.as_ref().map(|_| "display_name"),
                patch.avatar_url.as_ref().map(|_| "avatar_url"),
                patch.bio.as_ref().map(|_| "bio"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let effects = Effects {
                events: vec![ctx.event(Event::UserUpdated { user_id, fields })],
                audit: Vec::new(),
            };
            if !ctx
                .store
                .update_profile(user_id, &patch, ctx.now(), &effects)
                .await?
            {
                return Err(Error::Unauthorized);
            }
        }
        self.me(user_id).await
    }
}

fn count(operation: &'static str, success: bool) {
    let status = if success { "success" } else { "failure" };
    metrics::counter!("auth_operations_total", "operation" => operation, "status" => status)
        .increment(1);
}
