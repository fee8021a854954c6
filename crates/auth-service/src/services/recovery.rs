//! Passwords and email addresses: forgot, reset and change a password; verify an address.
//!
//! Reset and verification links carry single-use tokens of 256 random bits; the database
//! keeps only their SHA-256, each with a lifetime, and spending one is atomic.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::context::{AfterAnswer, Context, RequestContext};
use super::sessions::CurrentSession;
use crate::crypto::password::Verdict;
use crate::crypto::tokens;
use crate::domain::{AuditAction, Email, EndReason, Event, Login, User};
use crate::error::Error;
use crate::limits::Scope;
use crate::mail::Mail;
use crate::store::{Effects, NewOneTimeToken, TokenPurpose};

#[derive(Clone)]
pub struct Recovery {
    context: Arc<Context>,
}

impl Recovery {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// SPEC §2: answers at once and the same way for every address; the lookup, the token and
    /// the mail happen afterwards, so neither the answer nor its timing tells whether an
    /// account exists. Only the per-address limit and a malformed address are refused.
    pub async fn forgot_password(
        &self,
        email: &str,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        ctx.limit_by_ip(Scope::ForgotPasswordIp, request).await?;
        let email = Email::parse(email).map_err(|error| Error::Invalid(vec![error]))?;
        let context = ctx.clone();
        let request = request.clone();
        ctx.spawn_after_answer(AfterAnswer::ResetLink, async move {
            send_reset_link(&context, email, &request).await
        });
        Ok(())
    }

    /// Spends a reset token: new password, every session of the user ended.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &SecretString,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let hash = tokens::hash_token(token);
        let user = ctx
            .store
            .one_time_token_user(&hash, TokenPurpose::PasswordReset, ctx.now())
            .await?
            .ok_or(Error::InvalidToken)?;
        let password_hash = checked_hash(ctx, new_password, &user).await?;
        let effects = |&(user_id, ref ended): &(Uuid, Vec<Uuid>)| {
            password_effects(
                ctx,
                (AuditAction::PasswordReset, Event::PasswordReset { user_id }),
                user_id,
                ended,
                request,
            )
        };
        ctx.store
            .reset_password(&hash, &password_hash, ctx.now(), &effects)
            .await?
            .ok_or(Error::InvalidToken)?;
        // A reset proves control of the mailbox: earlier failed guesses no longer count.
        ctx.limiter
            .reset(&login_key(&Login::Email(user.email), Some(user.id)))
            .await;
        Ok(())
    }

    /// Changes the caller's password after checking the current one; every other session
    /// of the caller ends. Wrong current passwords count towards the login lockout.
    pub async fn change_password(
        &self,
        current: &CurrentSession,
        current_password: SecretString,
        new_password: &SecretString,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        // A correct current password ends the run of failures even if the new password is
        // then refused, so trying new passwords never locks the caller out.
        let user = password_again(ctx, current, current_password, request).await?;
        let password_hash = checked_hash(ctx, new_password, &user).await?;
        let effects = |&(user_id, ref ended): &(Uuid, Vec<Uuid>)| {
            password_effects(
                ctx,
                (
                    AuditAction::PasswordChange,
                    Event::PasswordChanged { user_id },
                ),
                user_id,
                ended,
                request,
            )
        };
        ctx.store
            .change_password(
                user.id,
                &password_hash,
                current.session_id(),
                ctx.now(),
                &effects,
            )
            .await?;
        Ok(())
    }

    /// The caller asks for a new verification link (202 whether or not one was needed).
    /// Counted against the forgot-password limit per address, as both send mail.
    pub async fn resend_verification(
        &self,
        current: &CurrentSession,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        ctx.limit_by_ip(Scope::ForgotPasswordIp, request).await?;
        let user = ctx
            .store
            .user(current.user_id(), None)
            .await?
            .ok_or(Error::Unauthorized)?;
        if !user.is_verified {
            ctx.limiter
                .hit(Scope::MailPerAccount, &user.id.to_string())
                .await
                .map_err(|retry_after| Error::RateLimited { retry_after })?;
            send_verification_link(ctx, &user).await?;
        }
        Ok(())
    }

    /// Spends a verification token and marks the address verified.
    pub async fn verify_email(&self, token: &str, request: &RequestContext) -> Result<(), Error> {
        let ctx = &self.context;
        let effects = |&(user_id, _): &(Uuid, Vec<Uuid>)| Effects {
            events: vec![ctx.event(Event::EmailVerified { user_id })],
            audit: vec![ctx.audit(
                AuditAction::EmailVerify,
                Some(user_id),
                Some(user_id),
                json!({}),
                request,
            )],
        };
        ctx.store
            .verify_email(&tokens::hash_token(token), ctx.now(), &effects)
            .await?
            .ok_or(Error::InvalidToken)?;
        Ok(())
    }
}

/// The policy-checked argon2id hash of a new password for `user`.
async fn checked_hash(
    ctx: &Context,
    new_password: &SecretString,
    user: &User,
) -> Result<String, Error> {
    let password = ctx
        .config
        .password
        .policy()
        .check("new_password", new_password, &user.email, &user.username)
        .map_err(Error::Invalid)?;
    ctx.hasher
        .hash(password.into_secret())
        .await
        .map_err(Error::Internal)
}

/// What a password reset or change records: its audit action and event, and the sessions it
/// ended.
fn password_effects(
    ctx: &Context,
    (action, event): (AuditAction, Event),
    user_id: Uuid,
    ended: &[Uuid],
    request: &RequestContext,
) -> Effects {
    Effects {
        events: vec![ctx.event(event)],
        audit: vec![ctx.audit(action, Some(user_id), Some(user_id), json!({}), request)],
    }
    .and(ctx.sessions_ended(user_id, ended, EndReason::PasswordReset))
}

/// The caller's password, entered again (a change of password, a second factor's enrollment):
/// counted toward the login lockout before it is checked (SPEC §4, as at login); a correct one
/// ends the run of failures.
pub(super) async fn password_again(
    ctx: &Context,
    current: &CurrentSession,
    password: SecretString,
    request: &RequestContext,
) -> Result<User, Error> {
    let credentials = ctx
        .store
        .credentials_of(current.user_id(), None)
        .await?
        .ok_or(Error::Unauthorized)?;
    let user = credentials.user;
    let lockout_key = login_key(&Login::Username(user.username.clone()), Some(user.id));
    let attempt = ctx
        .limiter
        .attempt(&lockout_key)
        .await
        .map_err(|retry_after| Error::TooManyAttempts { retry_after })?;
    let verdict = ctx
        .hasher
        .verify(password, Some(credentials.password_hash))
        .await
        .map_err(Error::Internal)?;
    if !matches!(verdict, Verdict::Match { .. }) {
        if attempt.locked_now {
            let effects = ctx.locked_out(Some(user.id), ctx.config.limits.lockout, request);
            ctx.store.record_effects(&effects).await?;
        }
        return Err(Error::InvalidCredentials);
    }
    ctx.limiter.reset(&lockout_key).await;
    Ok(user)
}

/// The key the login lockout counts failures under (SPEC §4, §5). An identifier that names an
/// account is counted under the account, so its email and username share one count; one that
/// names none is counted under its normalised form (`Login::normalized`, the same the store
/// matches with), and locks after as many failures with the same answers, so a lockout says
/// nothing about existence.
pub fn login_key(login: &Login, account: Option<Uuid>) -> String {
    match (account, login) {
        (Some(user_id), _) => format!("account:{user_id}"),
        (None, Login::Email(_)) => format!("email:{}", login.normalized()),
        (None, Login::Username(_)) => format!("username:{}", login.normalized()),
    }
}

async fn send_reset_link(
    ctx: &Context,
    email: Email,
    request: &RequestContext,
) -> Result<(), Error> {
    let login = Login::Email(email.as_str().to_owned());
    let Some(credentials) = ctx.store.credentials(&login, None).await? else {
        return Ok(());
    };
    let user = credentials.user;
    if !user.is_active {
        return Ok(());
    }
    // Over the limit nothing is sent, and the answer (already given) was the same.
    if ctx
        .limiter
        .hit(Scope::MailPerAccount, &user.id.to_string())
        .await
        .is_err()
    {
        return Ok(());
    }
    let ttl = ctx.config.mail.reset_token_ttl;
    let audit = ctx.audit(
        AuditAction::PasswordResetRequested,
        None,
        Some(user.id),
        json!({}),
        request,
    );
    let token = issue(ctx, &user, TokenPurpose::PasswordReset, ttl, audit).await?;
    ctx.mailer.send(Mail::PasswordReset {
        to: user.email,
        username: user.username,
        token: token.expose_secret().to_owned(),
        expires_in: ttl,
    });
    Ok(())
}

pub(super) async fn send_verification_link(ctx: &Context, user: &User) -> Result<(), Error> {
    let ttl = ctx.config.mail.verification_token_ttl;
    let audit = ctx.audit(
        AuditAction::EmailVerificationSent,
        None,
        Some(user.id),
        json!({}),
        &RequestContext::default(),
    );
    let token = issue(ctx, user, TokenPurpose::EmailVerification, ttl, audit).await?;
    ctx.mailer.send(Mail::EmailVerification {
        to: user.email.clone(),
        username: user.username.clone(),
        token: token.expose_secret().to_owned(),
        expires_in: ttl,
    });
    Ok(())
}

/// Stores a new single-use token for `user` (replacing unused ones of its purpose).
async fn issue(
    ctx: &Context,
    user: &User,
    purpose: TokenPurpose,
    ttl: Duration,
    audit: crate::store::AuditEntry,
) -> Result<SecretString, Error> {
    let token = tokens::random_token().map_err(Error::Internal)?;
    let now = ctx.now();
    let expires_at = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the token lifetime is out of range")))?;
    let row = NewOneTimeToken {
        id: Uuid::now_v7(),
        user_id: user.id,
        purpose,
        hash: token.hash,
        created_at: now,
        expires_at,
    };
    let effects = Effects {
        events: Vec::new(),
        audit: vec![audit],
    };
    ctx.store.issue_one_time_token(&row, &effects).await?;
    Ok(token.plaintext)
}
