//! Signup: the per-address limit, the checks of every field, the account and its first
//! session in one transaction.

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::{count, Accounts};
use crate::domain::mfa::PASSWORD_AMR;
use crate::domain::user::DEFAULT_ROLE;
use crate::domain::{AuditAction, Event, NewAccount, User};
use crate::error::Error;
use crate::limits::Scope;
use crate::services::context::{AfterAnswer, RequestContext, TokenPair};
use crate::services::recovery::send_verification_link;
use crate::store::{Effects, NewUser};

/// A signup as the caller sent it; [`Accounts::signup`] checks it.
pub struct SignupForm {
    pub email: String,
    pub username: String,
    pub password: SecretString,
    pub display_name: Option<String>,
}

/// What signup answers: tokens, or only the user when email verification is required first.
#[derive(Debug)]
pub enum Signup {
    SignedIn(Box<TokenPair>),
    VerificationRequired(Box<User>),
}

impl Accounts {
    /// Counts the caller against the per-address signup limit, checks every field, then
    /// creates the account (the unique indexes decide "taken") and, unless verification is
    /// required first, its first session.
    pub async fn signup(
        &self,
        form: SignupForm,
        request: &RequestContext,
    ) -> Result<Signup, Error> {
        let ctx = &self.context;
        ctx.limit_by_ip(Scope::SignupIp, request).await?;
        let account = NewAccount::parse(
            &form.email,
            &form.username,
            &form.password,
            form.display_name,
            &ctx.config.password.policy(),
        )?;
        // No account or session is written when no token could be signed for it.
        ctx.keys.ready_to_sign().await?;
        self.create(account, request).await
    }

    async fn create(&self, account: NewAccount, request: &RequestContext) -> Result<Signup, Error> {
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
            events: vec![ctx.event(Event::UserRegistered {
                user_id: user.id,
                username: user.username.clone(),
            })],
            audit: vec![ctx.audit(
                AuditAction::Signup,
                Some(user.id),
                Some(user.id),
                json!({}),
                request,
            )],
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
        let (session, token_row, token) = ctx.new_session(user.id, &PASSWORD_AMR, request)?;
        effects.events.push(ctx.event(Event::SessionCreated {
            user_id: user.id,
            session_id: session.id,
        }));
        let result = ctx
            .store
            .record_signup(&row, Some((&session, &token_row)), &effects)
            .await;
        count("signup", result.is_ok());
        result.map_err(Error::from)?;
        self.send_verification(&user);
        let pair = ctx.token_pair(
            user,
            session.id,
            token.plaintext,
            ctx.refresh_ttl_seconds(),
            session.amr.clone(),
        )?;
        Ok(Signup::SignedIn(Box::new(pair)))
    }

    /// Mails a verification link after the answer has gone out.
    fn send_verification(&self, user: &User) {
        let context = self.context.clone();
        let user = user.clone();
        self.context
            .spawn_after_answer(AfterAnswer::VerificationLink, async move {
                send_verification_link(&context, &user).await
            });
    }
}
