//! Accounts: signup, login and the caller's own profile.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::context::{Context, RequestContext, TokenPair};
use super::recovery::{login_key, send_verification_link};
use crate::crypto::password::Verdict;
use crate::domain::user::DEFAULT_ROLE;
use crate::domain::{Login, NewAccount, ProfilePatch, User};
use crate::error::Error;
use crate::store::{Effects, NewUser};

/// What signup answers: tokens, or only the user when email verification is required first.
#[derive(Debug)]
pub enum Signup {
    SignedIn(Box<TokenPair>),
    VerificationRequired(Box<User>),
}

#[derive(Clone)]
pub struct Accounts {
    context: Arc<Context>,
}

impl Accounts {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// Creates the account (the unique indexes decide "taken") and, unless verification is
    /// required first, its first session.
    pub async fn signup(
        &self,
        account: NewAccount,
        request: &RequestContext,
    ) -> Result<Signup, Error> {
        let ctx = &self.context;
        let hash = ctx
            .hasher
            .hash(SecretString::from(account.password.expose().to_owned()))
            .await
            .map_err(Error::Internal)?;
        let now = ctx.now();
        let user = User {
            id: Uuid::now_v7(),
            email: account.email.as_str().to_owned(),
            username: account.username.as_str().to_owned(),
            display_name: account.display_name,
            avatar_url: None,
            bio: None,
            is_verified: false,
            is_active: true,
            roles: vec![DEFAULT_ROLE.to_owned()],
            territories: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let row = NewUser {
            id: user.id,
            email: user.email.clone(),
            username: user.username.clone(),
            password_hash: hash,
            display_name: user.display_name.clone(),
            is_verified: false,
            created_at: now,
        };
        let mut effects = Effects {
            events: vec![ctx.event(
                "auth:user.registered",
                Some(user.id),
                json!({ "user_id": user.id, "username": user.username }),
            )],
            audit: vec![ctx.audit("signup", Some(user.id), Some(user.id), json!({}), request)],
        };
        if ctx.config.auth.require_email_verification {
            ctx.store
                .record_signup(&row, None, &effects)
                .await
                .map_err(Error::from)?;
            metrics::counter!("auth_operations_total", "operation" => "signup", "status" => "success").increment(1);
            self.send_verification(&user);
            return Ok(Signup::VerificationRequired(Box::new(user)));
        }
        let (session, token_row, token) = ctx.new_session(user.id, request)?;
        effects.events.push(ctx.event(
            "auth:session.created",
            Some(user.id),
            json!({ "user_id": user.id, "session_id": session.id }),
        ));
        let result = ctx
            .store
            .record_signup(&row, Some((&session, &token_row)), &effects)
            .await;
        count("signup", result.is_ok());
        result.map_err(Error::from)?;
        self.send_verification(&user);
        let pair = ctx.token_pair(user, session.id, token.plaintext, ctx.refresh_ttl_seconds())?;
        Ok(Signup::SignedIn(Box::new(pair)))
    }

    /// SPEC §4: unknown users and wrong passwords take the same time and answer the same way.
    pub async fn login(
        &self,
        login: Login,
        password: SecretString,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        let lockout_key = login_key(&login);
        // SPEC §4: the attempt is counted before the password is checked, so concurrent
        // guesses cannot all slip in under one lockout.
        let attempt = match ctx.limiter.attempt(&lockout_key).await {
            Ok(attempt) => attempt,
            Err(retry_after) => {
                count("login", false);
                return Err(Error::TooManyAttempts { retry_after });
            }
        };
        let credentials = ctx.store.credentials(&login, ctx.territory()).await?;
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
                        "login_failure",
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
                ctx.event(
                    "auth:user.login",
                    Some(user.id),
                    json!({ "user_id": user.id, "session_id": session.id }),
                ),
                ctx.event(
                    "auth:session.created",
                    Some(user.id),
                    json!({ "user_id": user.id, "session_id": session.id }),
                ),
            ],
            audit: vec![ctx.audit(
                "login_success",
                Some(user.id),
                Some(user.id),
                json!({ "session_id": session.id }),
                request,
            )],
        };
        let user_id = user.id;
        let evicted = move |ids: &[Uuid]| ctx.sessions_ended(user_id, ids, "evicted");
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

    /// Changes the caller's profile and answers the updated user.
    pub async fn update_me(&self, user_id: Uuid, patch: ProfilePatch) -> Result<User, Error> {
        let ctx = &self.context;
        if !patch.is_empty() {
            let fields: Vec<&str> = [
                patch.display_name.as_ref().map(|_| "display_name"),
                patch.avatar_url.as_ref().map(|_| "avatar_url"),
                patch.bio.as_ref().map(|_| "bio"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let effects = Effects {
                events: vec![ctx.event(
                    "auth:user.updated",
                    Some(user_id),
                    json!({ "user_id": user_id, "fields": fields }),
                )],
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

impl Accounts {
    /// Mails a verification link after the answer has gone out.
    fn send_verification(&self, user: &User) {
        let context = self.context.clone();
        let user = user.clone();
        self.context
            .spawn_after_answer("verification_link", async move {
                send_verification_link(&context, &user).await
            });
    }
}

fn count(operation: &'static str, success: bool) {
    let status = if success { "success" } else { "failure" };
    metrics::counter!("auth_operations_total", "operation" => operation, "status" => status)
        .increment(1);
}
