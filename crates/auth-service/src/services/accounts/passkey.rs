//! Logins with a passkey (SPEC §10): passwordless and usernameless (the authenticator offers
//! its discoverable credentials; the user handle names the account), and the passkey as the
//! second factor of the login challenge.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::Accounts;
use crate::crypto::passkeys::{
    DiscoverableAuthentication, PasskeyAuthentication, PublicKeyCredential,
    RequestChallengeResponse,
};
use crate::crypto::tokens;
use crate::domain::passkey::{passkey_amr, CeremonyPurpose};
use crate::domain::User;
use crate::error::Error;
use crate::limits::Scope;
use crate::services::context::{RequestContext, TokenPair};
use crate::services::passkeys::{check_assertion, decode, issue_ceremony, take_ceremony};

impl Accounts {
    /// Options of a passwordless login, counted against the per-address login limit (each
    /// stores a ceremony).
    pub async fn passkey_login_options(
        &self,
        request: &RequestContext,
    ) -> Result<(Uuid, RequestChallengeResponse), Error> {
        let ctx = &self.context;
        self.limit_login(request).await?;
        let (options, state) = ctx
            .relying_party
            .start_discoverable()
            .map_err(|e| Error::Internal(e.into()))?;
        let id = issue_ceremony(ctx, CeremonyPurpose::Login, None, None, &state).await?;
        Ok((id, options))
    }

    /// Finishes a passwordless login: the assertion must answer the ceremony and verify
    /// against the passkey its user handle and credential id name. A passkey requires user
    /// verification, so it signs in alone, with no second step (`amr` `hwk`/`swk` + `mfa`).
    pub async fn passkey_login(
        &self,
        ceremony: Uuid,
        credential: &PublicKeyCredential,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        self.limit_login(request).await?;
        ctx.keys.ready_to_sign().await?;
        let state: DiscoverableAuthentication =
            take_ceremony(ctx, ceremony, CeremonyPurpose::Login, None).await?;
        let webauthn = ctx.relying_party.webauthn();
        let (user_id, credential_id) = webauthn
            .identify_discoverable_authentication(credential)
            .map_err(|_| Error::InvalidPasskey)?;
        let stored = ctx
            .store
            .passkey_by_credential(credential_id)
            .await?
            .filter(|stored| stored.user_id == user_id)
            .ok_or(Error::InvalidPasskey)?;
        let user = ctx
            .store
            .user(user_id, ctx.territory())
            .await?
            .ok_or(Error::InvalidPasskey)?;
        let verdict = |passkey: &_| {
            webauthn.finish_discoverable_authentication_v2(credential, state, passkey)
        };
        let result = check_assertion(ctx, &user, Some(&stored), verdict, request).await?;
        self.admitted(&user)?;
        let amr = passkey_amr(result.backup_state(), false);
        self.record_login(user, amr, request).await
    }

    /// Options of the second-factor assertion of a login challenge: the user's passkeys are
    /// named (allowCredentials). Asking again replaces the earlier options.
    pub async fn mfa_passkey_options(
        &self,
        mfa_token: &SecretString,
    ) -> Result<RequestChallengeResponse, Error> {
        let ctx = &self.context;
        let hash = tokens::hash_token(mfa_token.expose_secret());
        let user_id = ctx
            .store
            .mfa_challenge_user(&hash, ctx.now())
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        let stored = ctx.store.passkeys(user_id).await?;
        if stored.is_empty() {
            return Err(Error::MfaNotEnrolled);
        }
        let passkeys = stored
            .iter()
            .map(|s| decode(&s.credential))
            .collect::<Result<Vec<_>, Error>>()?;
        let (options, state) = ctx
            .relying_party
            .start_for(&passkeys)
            .map_err(|e| Error::Internal(e.into()))?;
        issue_ceremony(
            ctx,
            CeremonyPurpose::SecondFactor,
            Some(user_id),
            Some(hash),
            &state,
        )
        .await?;
        Ok(options)
    }

    /// Completes a login challenge with a passkey assertion (`method: "passkey"`). A wrong
    /// assertion counts toward the factor lockout; the options are single use, so a retry
    /// asks for new ones (the `mfa_token` stays live).
    pub async fn verify_mfa_passkey(
        &self,
        mfa_token: &SecretString,
        credential: &PublicKeyCredential,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        let hash = tokens::hash_token(mfa_token.expose_secret());
        let user_id = ctx
            .store
            .mfa_challenge_user(&hash, ctx.now())
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        let user = ctx
            .store
            .user(user_id, ctx.territory())
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        if !user.is_active {
            return Err(Error::AccountDisabled);
        }
        ctx.keys.ready_to_sign().await?;
        let taken = ctx
            .store
            .take_mfa_ceremony(&hash, ctx.now())
            .await?
            .ok_or(Error::InvalidCeremony)?;
        let state: PasskeyAuthentication = decode(&taken.state)?;
        let stored = ctx
            .store
            .passkey_by_credential(credential.get_credential_id())
            .await?
            .filter(|stored| stored.user_id == user.id);
        let webauthn = ctx.relying_party.webauthn();
        let verdict = |_: &_| webauthn.finish_passkey_authentication(credential, &state);
        let result = check_assertion(ctx, &user, stored.as_ref(), verdict, request).await?;
        if !ctx.store.spend_mfa_challenge(&hash, ctx.now()).await? {
            return Err(Error::InvalidMfaToken);
        }
        let amr = passkey_amr(result.backup_state(), true);
        self.record_login(user, amr, request).await
    }

    /// SPEC §2 names one 429 for login, `too_many_attempts`, whichever limit refused it.
    async fn limit_login(&self, request: &RequestContext) -> Result<(), Error> {
        self.context
            .limit_by_ip(Scope::LoginIp, request)
            .await
            .map_err(|error| match error {
                Error::RateLimited { retry_after } => Error::TooManyAttempts { retry_after },
                other => other,
            })
    }

    /// As after a password: the account must be active (and verified, when required).
    fn admitted(&self, user: &User) -> Result<(), Error> {
        if !user.is_active {
            return Err(Error::AccountDisabled);
        }
        if self.context.config.auth.require_email_verification && !user.is_verified {
            return Err(Error::EmailNotVerified);
        }
        Ok(())
    }
}
