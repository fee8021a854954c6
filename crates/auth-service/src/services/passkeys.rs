//! Passkeys (SPEC §10): registration (bearer, the password asked again), listing, renaming
//! and removal by their owner, and the checking of an assertion (signature, challenge,
//! origin, relying party, user verification, counter) that the passwordless login and the
//! second-factor step share. The logins themselves are `accounts/passkey.rs`.

use std::sync::Arc;

use chrono::Duration;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::context::{Context, RequestContext};
use super::mfa::{check_factor, disabled, factor_failed, factor_key, offered_methods, Factor};
use super::recovery::password_again;
use super::sessions::CurrentSession;
use crate::crypto::passkeys::{
    AuthenticationResult, CreationChallengeResponse, Passkey, PasskeyRegistration,
    RegisterPublicKeyCredential, WebauthnError,
};
use crate::crypto::totp;
use crate::domain::passkey::{passkey_name, CeremonyPurpose, PasskeyInfo, PASSKEY_METHOD};
use crate::domain::{AuditAction, Event, User};
use crate::error::Error;
use crate::store::{
    Ceremony, Effects, NewPasskey, PasskeyRemoval, StoreError, StoredPasskey, Unique,
};

/// How long a ceremony's state is kept between its options and its finishing step: the
/// library's authenticator timeout (WebAuthn's recommended 300 s).
pub const CEREMONY_TTL_SECONDS: i64 = 300;

/// A passkey just registered, and the recovery codes when it is the account's first second
/// factor (shown once, as after a TOTP enrollment).
pub struct Registered {
    pub passkey: PasskeyInfo,
    pub recovery_codes: Option<Vec<SecretString>>,
}

#[derive(Clone)]
pub struct Passkeys {
    context: Arc<Context>,
}

impl Passkeys {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// Options of a registration. The password is asked again, as for a TOTP enrollment: a
    /// stolen access token alone must not bind the thief's authenticator to the account.
    pub async fn register_options(
        &self,
        current: &CurrentSession,
        password: SecretString,
        request: &RequestContext,
    ) -> Result<(Uuid, CreationChallengeResponse), Error> {
        let ctx = &self.context;
        let user = password_again(ctx, current, password, request).await?;
        let existing = ctx.store.passkeys(user.id).await?;
        let exclude = existing
            .iter()
            .map(|stored| decode::<Passkey>(&stored.credential).map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<_>, Error>>()?;
        let display = user.display_name.as_deref().unwrap_or(&user.username);
        let (options, state) = ctx
            .relying_party
            .start_registration(user.id, &user.username, display, exclude)
            .map_err(|e| Error::Internal(e.into()))?;
        let id =
            issue_ceremony(ctx, CeremonyPurpose::Register, Some(user.id), None, &state).await?;
        Ok((id, options))
    }

    /// Finishes a registration: the authenticator's response must answer the ceremony's
    /// challenge from an allowed origin for this relying party, with user verification.
    pub async fn register_finish(
        &self,
        current: &CurrentSession,
        ceremony: Uuid,
        name: Option<String>,
        credential: &RegisterPublicKeyCredential,
        request: &RequestContext,
    ) -> Result<Registered, Error> {
        let ctx = &self.context;
        let user = &current.user;
        let name = match name {
            Some(raw) => passkey_name(&raw).ok_or_else(bad_name)?,
            None => "Passkey".to_owned(),
        };
        let state: PasskeyRegistration =
            take_ceremony(ctx, ceremony, CeremonyPurpose::Register, Some(user.id)).await?;
        let passkey = ctx
            .relying_party
            .webauthn()
            .finish_passkey_registration(credential, &state)
            .map_err(|_| Error::InvalidPasskey)?;
        let first = offered_methods(ctx, user.id).await?.is_empty();
        let codes = if first {
            Some(totp::recovery_codes().map_err(Error::Internal)?)
        } else {
            None
        };
        let hashes: Vec<Vec<u8>> = codes.iter().flatten().map(|c| c.hash.clone()).collect();
        let stored = NewPasskey {
            id: Uuid::now_v7(),
            user_id: user.id,
            credential_id: passkey.cred_id().to_vec(),
            name,
            credential: encode(&passkey)?,
            created_at: ctx.now(),
        };
        let effects = added(ctx, user, stored.id, first, request);
        match ctx.store.add_passkey(&stored, &hashes, &effects).await {
            Ok(()) => {}
            Err(StoreError::Conflict(Unique::Other)) => return Err(Error::PasskeyExists),
            Err(other) => return Err(other.into()),
        }
        Ok(Registered {
            passkey: PasskeyInfo {
                id: stored.id,
                name: stored.name,
                created_at: stored.created_at,
                last_used_at: None,
                backed_up: backed_up(&stored.credential),
            },
            recovery_codes: codes.map(|codes| codes.into_iter().map(|c| c.plaintext).collect()),
        })
    }

    /// The caller's passkeys, oldest first.
    pub async fn list(&self, current: &CurrentSession) -> Result<Vec<PasskeyInfo>, Error> {
        let stored = self.context.store.passkeys(current.user_id()).await?;
        Ok(stored.into_iter().map(info).collect())
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename(
        &self,
        current: &CurrentSession,
        id: Uuid,
        name: &str,
        request: &RequestContext,
    ) -> Result<PasskeyInfo, Error> {
        let ctx = &self.context;
        let user_id = current.user_id();
        if !ctx
            .store
            .passkeys(user_id)
            .await?
            .iter()
            .any(|p| p.id == id)
        {
            return Err(Error::PasskeyNotFound);
        }
        let name = passkey_name(name).ok_or_else(bad_name)?;
        let effects = Effects {
            events: Vec::new(),
            audit: vec![ctx.audit(
                AuditAction::PasskeyRenamed,
                Some(user_id),
                Some(user_id),
                json!({ "passkey_id": id }),
                request,
            )],
        };
        if !ctx
            .store
            .rename_passkey(user_id, id, &name, &effects)
            .await?
        {
            return Err(Error::PasskeyNotFound);
        }
        self.list(current)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(Error::PasskeyNotFound)
    }

    /// Removes one of the caller's passkeys. SPEC §10: removing the last second factor (no
    /// TOTP, no other passkey) needs a fresh one, as `DELETE /api/auth/mfa/totp` does, and
    /// then also ends the recovery codes (`auth:mfa.disabled`).
    pub async fn remove(
        &self,
        current: &CurrentSession,
        id: Uuid,
        fresh: Option<&Factor>,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let user = &current.user;
        let passkeys = ctx.store.passkeys(user.id).await?;
        if !passkeys.iter().any(|p| p.id == id) {
            return Err(Error::PasskeyNotFound);
        }
        let totp = ctx
            .store
            .totp_factor(user.id)
            .await?
            .is_some_and(|f| f.confirmed);
        let last = passkeys.len() == 1 && !totp;
        if last {
            let factor = fresh.ok_or(Error::FreshFactorRequired)?;
            check_factor(ctx, user, factor, request).await?;
        }
        let mut effects = Effects {
            events: vec![ctx.event(Event::PasskeyRemoved {
                user_id: user.id,
                passkey_id: id,
                by: "user",
            })],
            audit: vec![ctx.audit(
                AuditAction::PasskeyRemoved,
                Some(user.id),
                Some(user.id),
                json!({ "passkey_id": id }),
                request,
            )],
        };
        if last {
            effects = effects.and(disabled(ctx, user.id, Some(user.id), "user", request));
        }
        match ctx
            .store
            .remove_passkey(user.id, id, last, &effects)
            .await?
        {
            PasskeyRemoval::Removed => Ok(()),
            PasskeyRemoval::NotFound => Err(Error::PasskeyNotFound),
            PasskeyRemoval::WasLastFactor => Err(Error::FreshFactorRequired),
        }
    }
}

/// The effects of a registration: `auth:passkey.added`, and with the first second factor
/// `auth:mfa.enabled` (method `passkey`), with their audit entries.
fn added(ctx: &Context, user: &User, id: Uuid, first: bool, request: &RequestContext) -> Effects {
    let mut effects = Effects {
        events: vec![ctx.event(Event::PasskeyAdded {
            user_id: user.id,
            passkey_id: id,
        })],
        audit: vec![ctx.audit(
            AuditAction::PasskeyAdded,
            Some(user.id),
            Some(user.id),
            json!({ "passkey_id": id }),
            request,
        )],
    };
    if first {
        effects.events.push(ctx.event(Event::MfaEnabled {
            user_id: user.id,
            method: PASSKEY_METHOD,
        }));
        effects.audit.push(ctx.audit(
            AuditAction::MfaEnabled,
            Some(user.id),
            Some(user.id),
            json!({ "method": PASSKEY_METHOD }),
            request,
        ));
    }
    effects
}

/// Stores a ceremony's state; answers its id.
pub(super) async fn issue_ceremony<S: Serialize>(
    ctx: &Context,
    purpose: CeremonyPurpose,
    user_id: Option<Uuid>,
    mfa_token_hash: Option<Vec<u8>>,
    state: &S,
) -> Result<Uuid, Error> {
    let now = ctx.now();
    let ceremony = Ceremony {
        id: Uuid::new_v4(),
        purpose: purpose.as_str(),
        user_id,
        mfa_token_hash,
        state: encode(state)?,
        created_at: now,
        expires_at: now + Duration::seconds(CEREMONY_TTL_SECONDS),
    };
    ctx.store.issue_ceremony(&ceremony).await?;
    Ok(ceremony.id)
}

/// Takes a live ceremony of `purpose` (single use), bound to `user_id` when given.
pub(super) async fn take_ceremony<S: DeserializeOwned>(
    ctx: &Context,
    id: Uuid,
    purpose: CeremonyPurpose,
    user_id: Option<Uuid>,
) -> Result<S, Error> {
    let taken = ctx
        .store
        .take_ceremony(id, purpose.as_str(), ctx.now())
        .await?
        .ok_or(Error::InvalidCeremony)?;
    if taken.user_id != user_id {
        return Err(Error::InvalidCeremony);
    }
    decode(&taken.state)
}

/// Checks an assertion by `stored` (a passkey of `user`; none when the response names a
/// credential the user does not have) with the library's `verdict` on it, with the factor lockout of SPEC §10: the attempt is counted first, a failure
/// writes `auth:mfa.failed`, and a counter that went back (a cloned authenticator, or a
/// replay racing the original) is refused and audited. On success the stored credential
/// takes the new counter and backup state (the library's `update_credential`).
pub(super) async fn check_assertion(
    ctx: &Context,
    user: &User,
    stored: Option<&StoredPasskey>,
    verdict: impl FnOnce(&Passkey) -> Result<AuthenticationResult, WebauthnError>,
    request: &RequestContext,
) -> Result<AuthenticationResult, Error> {
    let key = factor_key(user.id);
    let attempt = ctx
        .limiter
        .attempt(&key)
        .await
        .map_err(|retry_after| Error::FactorLocked { retry_after })?;
    let checked = match stored {
        Some(stored) => {
            let passkey: Passkey = decode(&stored.credential)?;
            verdict(&passkey).map(|result| (stored, passkey, result))
        }
        None => Err(WebauthnError::CredentialNotFound),
    };
    let (stored, mut passkey, result) = match checked {
        Ok(checked) => checked,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            let id = stored.map(|s| s.id);
            return Err(regressed(ctx, user, id, request).await?);
        }
        Err(_) => {
            factor_failed(ctx, user, PASSKEY_METHOD, &attempt, request).await?;
            return Err(Error::InvalidPasskey);
        }
    };
    passkey.update_credential(&result);
    let updated = encode(&passkey)?;
    if !ctx
        .store
        .record_passkey_use(stored.id, &updated, result.counter(), ctx.now())
        .await?
    {
        return Err(regressed(ctx, user, Some(stored.id), request).await?);
    }
    ctx.limiter.reset(&key).await;
    Ok(result)
}

/// A counter regression: audited (`passkey_counter_regressed`), refused.
async fn regressed(
    ctx: &Context,
    user: &User,
    passkey_id: Option<Uuid>,
    request: &RequestContext,
) -> Result<Error, Error> {
    let effects = Effects {
        events: Vec::new(),
        audit: vec![ctx.audit(
            AuditAction::PasskeyCounterRegressed,
            None,
            Some(user.id),
            json!({ "passkey_id": passkey_id }),
            request,
        )],
    };
    ctx.store.record_effects(&effects).await?;
    Ok(Error::PasskeyCounterRegressed)
}

fn info(stored: StoredPasskey) -> PasskeyInfo {
    PasskeyInfo {
        id: stored.id,
        backed_up: backed_up(&stored.credential),
        name: stored.name,
        created_at: stored.created_at,
        last_used_at: stored.last_used_at,
    }
}

/// The backup state the library keeps in the credential (its serialised `cred.backup_state`).
fn backed_up(credential: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(credential)
        .ok()
        .and_then(|v| v["cred"]["backup_state"].as_bool())
        .unwrap_or(false)
}

fn bad_name() -> Error {
    Error::invalid(
        "name",
        "invalid",
        "must be 1 to 64 characters, no control characters",
    )
}

pub(super) fn encode<S: Serialize>(value: &S) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.into()))
}

pub(super) fn decode<S: DeserializeOwned>(text: &str) -> Result<S, Error> {
    serde_json::from_str(text).map_err(|e| Error::Internal(e.into()))
}
