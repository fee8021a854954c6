//! Second factors (SPEC §10): TOTP enrollment and removal, recovery codes, the factor check
//! (with its per-account lockout) that the login challenge and every fresh-factor step share,
//! and an administrator's reset. The login challenge itself is `accounts/challenge.rs`.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::context::{Context, RequestContext};
use super::recovery::password_again;
use super::sessions::CurrentSession;
use crate::crypto::totp::{self, Enrollment};
use crate::domain::authority::AdminScope;
use crate::domain::mfa::MfaMethod;
use crate::domain::{AuditAction, Event, User};
use crate::error::Error;
use crate::store::Effects;

/// A second factor as presented: its method and code.
pub struct Factor {
    pub method: MfaMethod,
    pub code: SecretString,
}

#[derive(Clone)]
pub struct Mfa {
    context: Arc<Context>,
}

impl Mfa {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// Starts (or restarts) a TOTP enrollment: the password is asked again, because whoever
    /// holds only a stolen access token must not be able to bind their own authenticator.
    pub async fn begin_totp(
        &self,
        current: &CurrentSession,
        password: SecretString,
        request: &RequestContext,
    ) -> Result<Enrollment, Error> {
        let ctx = &self.context;
        let user = password_again(&self.context, current, password, request).await?;
        if ctx
            .store
            .totp_factor(user.id)
            .await?
            .is_some_and(|f| f.confirmed)
        {
            return Err(Error::MfaAlreadyEnrolled);
        }
        let secret = totp::new_secret().map_err(Error::Internal)?;
        let sealed = ctx
            .keys
            .seal_secret(&seal_label(user.id), &secret)
            .map_err(Error::Internal)?;
        if !ctx.store.stage_totp(user.id, &sealed, ctx.now()).await? {
            return Err(Error::MfaAlreadyEnrolled);
        }
        let totp =
            totp::totp(&secret, ctx.config.issuer(), &user.email).map_err(Error::Internal)?;
        totp::enrollment(&totp).map_err(Error::Internal)
    }

    /// Confirms the pending enrollment with a first code; answers the recovery codes, once.
    pub async fn confirm_totp(
        &self,
        current: &CurrentSession,
        code: &SecretString,
        request: &RequestContext,
    ) -> Result<Vec<SecretString>, Error> {
        let ctx = &self.context;
        let user = &current.user;
        let factor = match ctx.store.totp_factor(user.id).await? {
            None => return Err(Error::NoPendingEnrollment),
            Some(factor) if factor.confirmed => return Err(Error::MfaAlreadyEnrolled),
            Some(factor) => factor,
        };
        let secret = ctx
            .keys
            .open_secret(&seal_label(user.id), &factor.sealed_secret)
            .map_err(Error::Internal)?;
        let totp =
            totp::totp(&secret, ctx.config.issuer(), &user.email).map_err(Error::Internal)?;
        let step = totp::matching_step(&totp, code.expose_secret(), unix_seconds(ctx))
            .ok_or(Error::InvalidMfaCode)?;
        let codes = totp::recovery_codes().map_err(Error::Internal)?;
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| c.hash.clone()).collect();
        let effects = Effects {
            events: vec![ctx.event(Event::MfaEnabled {
                user_id: user.id,
                method: MfaMethod::Totp.as_str(),
            })],
            audit: vec![ctx.audit(
                AuditAction::MfaEnabled,
                Some(user.id),
                Some(user.id),
                json!({ "method": "totp" }),
                request,
            )],
        };
        let step = i64::try_from(step).map_err(|e| Error::Internal(e.into()))?;
        if !ctx
            .store
            .confirm_totp(user.id, step, &hashes, ctx.now(), &effects)
            .await?
        {
            return Err(Error::MfaAlreadyEnrolled);
        }
        Ok(codes.into_iter().map(|c| c.plaintext).collect())
    }

    /// Removes the caller's TOTP factor and recovery codes; a fresh factor is required.
    pub async fn remove_totp(
        &self,
        current: &CurrentSession,
        factor: &Factor,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let user = &current.user;
        self.enrolled(user.id).await?;
        check_factor(ctx, user, factor, request).await?;
        // SPEC §10: with passkeys left the account still has a second factor; only the TOTP
        // factor goes (the recovery codes stay), audited but no `auth:mfa.disabled`.
        if !ctx.store.passkeys(user.id).await?.is_empty() {
            let effects = Effects {
                events: Vec::new(),
                audit: vec![ctx.audit(
                    AuditAction::MfaDisabled,
                    Some(user.id),
                    Some(user.id),
                    json!({ "by": "user", "method": "totp" }),
                    request,
                )],
            };
            if !ctx.store.remove_totp_factor(user.id, &effects).await? {
                return Err(Error::MfaNotEnrolled);
            }
            return Ok(());
        }
        let effects =
            |passkeys: &[Uuid]| removed(ctx, user.id, Some(user.id), "user", passkeys, request);
        if !ctx.store.remove_second_factors(user.id, &effects).await? {
            return Err(Error::MfaNotEnrolled);
        }
        Ok(())
    }

    /// New recovery codes in place of the old ones; a fresh factor is required.
    pub async fn regenerate_recovery_codes(
        &self,
        current: &CurrentSession,
        factor: &Factor,
        request: &RequestContext,
    ) -> Result<Vec<SecretString>, Error> {
        let ctx = &self.context;
        let user = &current.user;
        if offered_methods(ctx, user.id).await?.is_empty() {
            return Err(Error::MfaNotEnrolled);
        }
        check_factor(ctx, user, factor, request).await?;
        let codes = totp::recovery_codes().map_err(Error::Internal)?;
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| c.hash.clone()).collect();
        let effects = Effects {
            events: Vec::new(),
            audit: vec![ctx.audit(
                AuditAction::MfaRecoveryCodesRegenerated,
                Some(user.id),
                Some(user.id),
                json!({}),
                request,
            )],
        };
        if !ctx
            .store
            .replace_recovery_codes(user.id, &hashes, ctx.now(), &effects)
            .await?
        {
            return Err(Error::MfaNotEnrolled);
        }
        Ok(codes.into_iter().map(|c| c.plaintext).collect())
    }

    /// An administrator removes a user's second factors (a lost phone and lost codes), with
    /// the authority of other changes to that user (SPEC §5); audited.
    pub async fn reset(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        if ctx.changeable(&scope, id).await?.is_none() && scope == AdminScope::Global {
            ctx.store
                .user(id, ctx.territory())
                .await?
                .ok_or(Error::UserNotFound)?;
        }
        let actor = Some(caller.user_id());
        let effects = |passkeys: &[Uuid]| removed(ctx, id, actor, "admin", passkeys, request);
        if !ctx.store.remove_second_factors(id, &effects).await? {
            return Err(Error::MfaNotEnrolled);
        }
        ctx.limiter.reset(&factor_key(id)).await;
        Ok(())
    }

    async fn enrolled(&self, user_id: Uuid) -> Result<(), Error> {
        match self.context.store.totp_factor(user_id).await? {
            Some(factor) if factor.confirmed => Ok(()),
            _ => Err(Error::MfaNotEnrolled),
        }
    }
}

/// What a TOTP secret is sealed for: bound to its user, so a sealed secret copied onto another
/// user's row does not open.
fn seal_label(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}

/// The lockout counter of a user's second factor, apart from the login's (`account:…`).
pub(super) fn factor_key(user_id: Uuid) -> String {
    format!("mfa:{user_id}")
}

fn unix_seconds(ctx: &Context) -> u64 {
    u64::try_from(ctx.now().timestamp()).unwrap_or(0)
}

pub(super) fn disabled(
    ctx: &Context,
    user_id: Uuid,
    actor: Option<Uuid>,
    by: &'static str,
    request: &RequestContext,
) -> Effects {
    Effects {
        events: vec![ctx.event(Event::MfaDisabled { user_id, by })],
        audit: vec![ctx.audit(
            AuditAction::MfaDisabled,
            actor,
            Some(user_id),
            json!({ "by": by }),
            request,
        )],
    }
}

/// What removing all of a user's second factors writes: `auth:mfa.disabled` and an
/// `auth:passkey.removed` for each passkey that went with them (`passkeys`, found by the
/// removal itself, so one registered a moment before is announced too).
fn removed(
    ctx: &Context,
    user_id: Uuid,
    actor: Option<Uuid>,
    by: &'static str,
    passkeys: &[Uuid],
    request: &RequestContext,
) -> Effects {
    let mut effects = disabled(ctx, user_id, actor, by, request);
    effects.events.extend(passkeys.iter().map(|&passkey_id| {
        ctx.event(Event::PasskeyRemoved {
            user_id,
            passkey_id,
            by,
        })
    }));
    effects
}

/// Checks a second factor of `user`. SPEC §10: wrong codes count toward a per-account factor
/// lockout (`limits.login_failures` failures lock it for `limits.lockout`), kept by the same
/// limiter as the login lockout and so shared through Redis when configured; the attempt is
/// counted before the code is checked, so concurrent guesses cannot all slip in. A TOTP code
/// is accepted once: its step must be above the last one accepted.
pub(super) async fn check_factor(
    ctx: &Context,
    user: &User,
    factor: &Factor,
    request: &RequestContext,
) -> Result<(), Error> {
    let key = factor_key(user.id);
    let attempt = ctx
        .limiter
        .attempt(&key)
        .await
        .map_err(|retry_after| Error::FactorLocked { retry_after })?;
    let accepted = match factor.method {
        MfaMethod::Totp => totp_accepted(ctx, user, &factor.code).await?,
        MfaMethod::RecoveryCode => {
            let hash = totp::recovery_code_hash(factor.code.expose_secret());
            ctx.store
                .spend_recovery_code(user.id, &hash, ctx.now())
                .await?
        }
    };
    if accepted {
        ctx.limiter.reset(&key).await;
        return Ok(());
    }
    factor_failed(ctx, user, factor.method.as_str(), &attempt, request).await?;
    Err(Error::InvalidMfaCode)
}

/// The methods a login challenge offers `user_id` (SPEC §10): `totp` with a confirmed TOTP
/// factor, `passkey` with a passkey, and `recovery_code` with either; empty when the account
/// has no second factor (the password alone signs in).
pub(super) async fn offered_methods(
    ctx: &Context,
    user_id: Uuid,
) -> Result<Vec<&'static str>, Error> {
    let totp = ctx
        .store
        .totp_factor(user_id)
        .await?
        .is_some_and(|f| f.confirmed);
    let passkey = !ctx.store.passkeys(user_id).await?.is_empty();
    let methods = [
        totp.then_some(MfaMethod::Totp.as_str()),
        passkey.then_some(crate::domain::passkey::PASSKEY_METHOD),
        (totp || passkey).then_some(MfaMethod::RecoveryCode.as_str()),
    ];
    Ok(methods.into_iter().flatten().collect())
}

/// A wrong second factor: `auth:mfa.failed` and the audit entry `mfa_failure`, and when it
/// locked the factor, the lockout's effects too.
pub(super) async fn factor_failed(
    ctx: &Context,
    user: &User,
    method: &'static str,
    attempt: &crate::limits::Attempt,
    request: &RequestContext,
) -> Result<(), Error> {
    let mut effects = Effects {
        events: vec![ctx.event(Event::MfaFailed {
            user_id: user.id,
            method,
        })],
        audit: vec![ctx.audit(
            AuditAction::MfaFailure,
            None,
            Some(user.id),
            json!({ "method": method }),
            request,
        )],
    };
    if attempt.locked_now {
        effects = effects.and(ctx.locked_out(Some(user.id), ctx.config.limits.lockout, request));
    }
    ctx.store.record_effects(&effects).await?;
    Ok(())
}

async fn totp_accepted(ctx: &Context, user: &User, code: &SecretString) -> Result<bool, Error> {
    let Some(factor) = ctx.store.totp_factor(user.id).await? else {
        return Ok(false);
    };
    if !factor.confirmed {
        return Ok(false);
    }
    let secret = ctx
        .keys
        .open_secret(&seal_label(user.id), &factor.sealed_secret)
        .map_err(Error::Internal)?;
    let totp = totp::totp(&secret, ctx.config.issuer(), &user.email).map_err(Error::Internal)?;
    let Some(step) = totp::matching_step(&totp, code.expose_secret(), unix_seconds(ctx)) else {
        return Ok(false);
    };
    let step = i64::try_from(step).map_err(|e| Error::Internal(e.into()))?;
    if factor.last_used_step.is_some_and(|last| step <= last) {
        return Ok(false);
    }
    Ok(ctx.store.spend_totp_step(user.id, step).await?)
}
