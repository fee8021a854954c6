//! Token exchange (RFC 8693, SPEC §11): a client allowed to exchange presents a user's access
//! token and gets a short-lived token for one of its audiences, acting for the user (`act`),
//! bound to the user's session, audited.

use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::clients::Clients;
use super::context::RequestContext;
use super::oauth::{ClientCredentials, ExchangeRequest, ExchangedToken};
use crate::crypto::jwt::{AccessClaims, Actor, Rejection};
use crate::domain::client::{granted_scopes, Client};
use crate::domain::{AuditAction, Event};
use crate::error::{Error, OAuthError};
use crate::limits::Scope;
use crate::store::Effects;

impl Clients {
    /// RFC 8693 §2: the subject token must be a user's access token whose session is alive
    /// (checked online, as introspection does), or a token exchanged before (its `act` is then
    /// nested). The new token is the user's (roles as stored now, the same `sid`, so ending
    /// the session ends it online) for `audience`, with `act.sub` the client, and lives at
    /// most `auth.exchange_token_ttl` and never past the subject token.
    #[tracing::instrument(skip_all)]
    pub async fn exchange(
        &self,
        credentials: &ClientCredentials,
        request: ExchangeRequest,
        context: &RequestContext,
    ) -> Result<ExchangedToken, Error> {
        let ctx = &self.context;
        let client = self.authenticate(credentials).await?;
        if client.exchange_audiences.is_empty() {
            return Err(Error::OAuth(OAuthError::UnauthorizedClient));
        }
        ctx.limiter
            .hit(Scope::TokenPerClient, &client.id.to_string())
            .await
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        if !client.exchange_audiences.contains(&request.audience) {
            return Err(Error::OAuth(OAuthError::InvalidTarget));
        }
        let subject = self.subject(request.subject_token.expose_secret()).await?;
        let scope = exchange_scope(request.scope.as_deref(), &client, subject.scope.as_deref())?;
        let now = ctx.now().timestamp();
        let cap = i64::try_from(ctx.config.auth.exchange_token_ttl.as_secs()).unwrap_or(300);
        let ttl = cap.min(subject.exp - now);
        if ttl <= 0 {
            return Err(subject_refused("expired"));
        }
        let user_id = subject.sub;
        let claims = AccessClaims {
            aud: request.audience.clone(),
            jti: Uuid::now_v7(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            scope: scope.clone(),
            act: Some(Actor {
                sub: client.id.to_string(),
                act: subject.act.clone().map(Box::new),
            }),
            ..subject
        };
        let access_token = ctx.keys.sign(&claims)?;
        self.record_exchange(&client, user_id, &claims, context)
            .await?;
        metrics::counter!("auth_tokens_generated_total", "type" => "exchanged").increment(1);
        Ok(ExchangedToken {
            access_token,
            expires_in: u64::try_from(ttl).unwrap_or(0),
            scope,
        })
    }

    /// The subject token's claims with the roles stored now. RFC 8693 §2.2.2: a subject token
    /// that is invalid or unacceptable is `invalid_request`; a client's token, an
    /// enrollment-only token and a token of an ended session are all unacceptable.
    async fn subject(&self, token: &str) -> Result<AccessClaims, Error> {
        let verdict = match self.sessions.validate(token).await? {
            Err(Rejection::WrongAudience) => self.sessions.validate_delegated(token).await?,
            other => other,
        };
        verdict.map_err(|rejection| subject_refused(&rejection.to_string()))
    }

    /// The event and audit entry of an exchange, recorded before the token is answered.
    async fn record_exchange(
        &self,
        client: &Client,
        user_id: Uuid,
        claims: &AccessClaims,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let effects = Effects {
            events: vec![ctx.event(Event::TokenExchanged {
                user_id,
                client_id: client.id,
                audience: claims.aud.clone(),
                jti: claims.jti,
            })],
            audit: vec![ctx.audit(
                AuditAction::TokenExchanged,
                None,
                Some(user_id),
                json!({
                    "client_id": client.id,
                    "audience": claims.aud,
                    "jti": claims.jti,
                    "session_id": claims.sid,
                    "scope": claims.scope,
                }),
                request,
            )],
        };
        ctx.store.record_effects(&effects).await?;
        Ok(())
    }
}

fn subject_refused(why: &str) -> Error {
    Error::OAuth(OAuthError::InvalidRequest(format!(
        "the subject_token is not an active user's access token ({why})"
    )))
}

/// The scope of an exchanged token: what is asked, each one of the client's scopes and, when
/// the subject token has a scope, one of those too; nothing asked: the subject token's scopes
/// the client also holds (none when it has none). `None` when the result is empty.
fn exchange_scope(
    requested: Option<&str>,
    client: &Client,
    subject: Option<&str>,
) -> Result<Option<String>, Error> {
    let allowed: Vec<String> = match subject {
        Some(held) => held
            .split(' ')
            .filter(|scope| client.scopes.iter().any(|own| own == scope))
            .map(str::to_owned)
            .collect(),
        None => client.scopes.clone(),
    };
    let granted = match (requested, subject) {
        (Some(requested), _) => granted_scopes(Some(requested), &allowed)?,
        (None, Some(_)) => allowed,
        (None, None) => Vec::new(),
    };
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}
