//! The login challenge of SPEC §10: the password step of an account with a second factor
//! answers an `mfa_token` (single use, five minutes, bound to the user), and
//! `POST /api/auth/mfa/verify` trades it and a second factor for the tokens.

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::Accounts;
use crate::crypto::tokens;
use crate::error::Error;
use crate::services::context::{RequestContext, TokenPair};
use crate::services::mfa::{check_factor, Factor};
use crate::store::NewMfaChallenge;

/// How long an `mfa_token` is good for (SPEC §10).
pub const MFA_TOKEN_TTL_SECONDS: i64 = 5 * 60;

/// The answer to a right password when a second factor is required.
pub struct MfaChallenge {
    pub mfa_token: SecretString,
    pub methods: Vec<&'static str>,
    pub expires_in: u64,
}

impl Accounts {
    /// Issues the challenge of a password step; only the token's hash is stored.
    pub(super) async fn challenge(
        &self,
        user_id: Uuid,
        methods: Vec<&'static str>,
    ) -> Result<MfaChallenge, Error> {
        let ctx = &self.context;
        let token = tokens::random_token().map_err(Error::Internal)?;
        let now = ctx.now();
        ctx.store
            .issue_mfa_challenge(&NewMfaChallenge {
                id: Uuid::now_v7(),
                user_id,
                hash: token.hash,
                created_at: now,
                expires_at: now + Duration::seconds(MFA_TOKEN_TTL_SECONDS),
            })
            .await?;
        Ok(MfaChallenge {
            mfa_token: token.plaintext,
            methods,
            expires_in: MFA_TOKEN_TTL_SECONDS.unsigned_abs(),
        })
    }

    /// Completes a login: a live `mfa_token` and a right second factor give the tokens, with
    /// the `amr` of the factor used. A wrong code leaves the `mfa_token` live (until it
    /// expires or the factor locks), so a typo does not send the user back to the password.
    pub async fn verify_mfa(
        &self,
        mfa_token: &SecretString,
        factor: Factor,
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
        check_factor(ctx, &user, &factor, request).await?;
        if !ctx.store.spend_mfa_challenge(&hash, ctx.now()).await? {
            return Err(Error::InvalidMfaToken);
        }
        self.record_login(user, factor.method.amr(), request).await
    }
}
