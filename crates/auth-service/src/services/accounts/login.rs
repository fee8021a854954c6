//! Login (SPEC §2, §4) in named steps: the form, the attempt counted, the password verified,
//! a failure recorded, the account admitted, the session recorded.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::challenge::MfaChallenge;
use super::{count, Accounts};
use crate::crypto::password::Verdict;
use crate::domain::mfa::PASSWORD_AMR;
use crate::domain::user::Credentials;
use crate::domain::{AuditAction, EndReason, Login, User};
use crate::error::Error;
use crate::limits::{Attempt, Scope};
use crate::services::context::{RequestContext, TokenPair};
use crate::services::mfa::offered_methods;
use crate::services::recovery::login_key;
use crate::store::Effects;

/// What a right password earns: tokens, or the challenge of a second factor.
pub enum LoginOutcome {
    SignedIn(Box<TokenPair>),
    MfaRequired(MfaChallenge),
}

/// A login as the caller sent it: exactly one of `email` and `username`.
pub struct LoginForm {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: SecretString,
}

impl Accounts {
    /// Counts the caller against the per-address login limit, checks the form, then the
    /// credentials.
    pub async fn login(
        &self,
        form: LoginForm,
        request: &RequestContext,
    ) -> Result<LoginOutcome, Error> {
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
    ) -> Result<LoginOutcome, Error> {
        let ctx = &self.context;
        let credentials = ctx.store.credentials(&login, ctx.territory()).await?;
        // SPEC §5: failures count per account once the identifier names one (email and
        // username alike), otherwise per normalised identifier, with the same answers.
        let lockout_key = login_key(&login, credentials.as_ref().map(|c| c.user.id));
        let attempt = self.count_attempt(&lockout_key).await?;
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
                self.record_failure(user_id, &attempt, request).await?;
                return Err(Error::InvalidCredentials);
            }
        };
        ctx.limiter.reset(&lockout_key).await;
        let user = self.admit(credentials, rehash, password).await?;
        // SPEC §10: with a second factor (TOTP or a passkey) the password step issues no
        // tokens, only the challenge that `POST /api/auth/mfa/verify` completes.
        let methods = offered_methods(ctx, user.id).await?;
        if !methods.is_empty() {
            return self
                .challenge(user.id, methods)
                .await
                .map(LoginOutcome::MfaRequired);
        }
        let pair = self.record_login(user, &PASSWORD_AMR, request).await?;
        Ok(LoginOutcome::SignedIn(Box::new(pair)))
    }

    /// SPEC §4: the attempt is counted before the password is checked, so concurrent guesses
    /// cannot all slip in under one lockout; a locked identifier is refused here.
    async fn count_attempt(&self, lockout_key: &str) -> Result<Attempt, Error> {
        self.context
            .limiter
            .attempt(lockout_key)
            .await
            .map_err(|retry_after| {
                count("login", false);
                Error::TooManyAttempts { retry_after }
            })
    }

    /// A failed login: audited, and when it locked the account, the lockout's effects too.
    async fn record_failure(
        &self,
        user_id: Option<Uuid>,
        attempt: &Attempt,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
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
        Ok(())
    }

    /// The right password: the account must be active (and verified, when required); an
    /// outdated hash is replaced.
    async fn admit(
        &self,
        credentials: Credentials,
        rehash: bool,
        password: SecretString,
    ) -> Result<User, Error> {
        let ctx = &self.context;
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
        Ok(user)
    }

    /// The new session, its first refresh token and the eviction of the oldest beyond the
    /// limit, with the login's events and audit entry, in one transaction; then the tokens.
    pub(super) async fn record_login(
        &self,
        user: User,
        amr: &[&str],
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        let (session, token_row, token) = ctx.new_session(user.id, amr, request)?;
        let effects = ctx.login_effects(user.id, session.id, json!({}), request);
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
        ctx.token_pair(
            user,
            session.id,
            token.plaintext,
            ctx.refresh_ttl_seconds(),
            session.amr,
        )
    }
}
