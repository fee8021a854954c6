//! The authorization code grant with PKCE (SPEC §11, RFC 6749 §4.1, RFC 7636): the checks of
//! an authorization request, the code a signed-in user's consent issues, and its exchange at
//! the token endpoint for a new session of the user, which is a login like any other.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::clients::Clients;
use super::context::{RequestContext, TokenPair};
use super::oauth::ClientCredentials;
use super::sessions::CurrentSession;
use crate::crypto::tokens;
use crate::domain::authorization::{
    self, AuthorizationError, AuthorizationRequest, NewAuthorizationCode, ValidAuthorization,
    CODE_MEMORY_SECONDS, CODE_TTL_SECONDS,
};
use crate::domain::client::Client;
use crate::domain::mfa::PASSWORD_AMR;
use crate::domain::{AuditAction, EndReason, Event};
use crate::error::{Error, OAuthError};
use crate::limits::Scope;
use crate::store::{AuditEntry, Effects};

/// The code exchange of RFC 6749 §4.1.3 as the transport read it.
pub struct CodeExchange {
    /// A confidential client's authentication; `None` for a public client naming itself.
    pub credentials: Option<ClientCredentials>,
    /// The `client_id` of the form (a public client's only proof of who it is).
    pub client_id: Option<String>,
    pub code: SecretString,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
}

impl Clients {
    /// Checks an authorization request (RFC 6749 §4.1.2.1 order): the client and the redirect
    /// URI first, then the rest.
    pub async fn check_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Result<ValidAuthorization, AuthorizationError>, Error> {
        let client = self
            .authorizing_client(request.client_id.as_deref())
            .await?;
        Ok(authorization::validate(request, client.as_ref()))
    }

    async fn authorizing_client(&self, client_id: Option<&str>) -> Result<Option<Client>, Error> {
        let Some(id) = client_id.and_then(|id| Uuid::parse_str(id).ok()) else {
            return Ok(None);
        };
        Ok(self.context.store.client(id).await?.map(|s| s.client))
    }

    /// The signed-in user's consent: a request checked again, then a code for it (60 s, once),
    /// answered inside the redirect URI with `state` and `iss` (RFC 9207).
    #[tracing::instrument(skip_all)]
    pub async fn authorize(
        &self,
        caller: &CurrentSession,
        request: &AuthorizationRequest,
        context: &RequestContext,
    ) -> Result<Result<String, AuthorizationError>, Error> {
        let valid = match self.check_authorization(request).await? {
            Ok(valid) => valid,
            Err(error) => return Ok(Err(error)),
        };
        let ctx = &self.context;
        let code = tokens::random_token().map_err(Error::Internal)?;
        let now = ctx.now();
        let row = NewAuthorizationCode {
            hash: code.hash.clone(),
            client_id: valid.client_id,
            user_id: caller.user_id(),
            redirect_uri: valid.redirect_uri.clone(),
            code_challenge: valid.code_challenge.clone(),
            scope: valid.scope.clone(),
            amr: caller.claims.amr.clone(),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(CODE_TTL_SECONDS),
        };
        let effects = Effects {
            events: Vec::new(),
            audit: vec![self.code_audit(
                AuditAction::AuthorizationCodeIssued,
                caller.user_id(),
                valid.client_id,
                json!({ "redirect_uri": valid.redirect_uri, "scope": valid.scope }),
                context,
            )],
        };
        let forget_before = now - chrono::Duration::seconds(CODE_MEMORY_SECONDS);
        ctx.store
            .create_authorization_code(&row, forget_before, &effects)
            .await?;
        let mut params = vec![("code", code.plaintext.expose_secret().to_owned())];
        if let Some(state) = valid.state {
            params.push(("state", state));
        }
        params.push(("iss", ctx.config.issuer().to_owned()));
        Ok(Ok(with_query(&valid.redirect_uri, &params)))
    }

    /// RFC 6749 §4.1.3: the code spent for tokens of a new session of its user. Any failure
    /// after the code is found spends it; a code spent before is a replay, which ends the
    /// session it started (RFC 6749 §4.1.2).
    #[tracing::instrument(skip_all)]
    pub async fn authorization_code_grant(
        &self,
        exchange: CodeExchange,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        let ctx = &self.context;
        let client = self.code_client(&exchange).await?;
        // Counted per client like every grant (`limits.token_per_client`).
        ctx.limiter
            .hit(Scope::TokenPerClient, &client.id.to_string())
            .await
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        let grant = |detail: &str| Error::OAuth(OAuthError::InvalidGrant(detail.to_owned()));
        // SPEC §3: no code is spent for want of a signing key.
        ctx.keys.ready_to_sign().await?;
        let hash = tokens::hash_token(exchange.code.expose_secret());
        let Some(code) = ctx.store.authorization_code(&hash).await? else {
            return Err(grant("the code is unknown or expired"));
        };
        if code.spent_at.is_some() {
            self.replayed(&code, request).await?;
            return Err(grant(
                "the code was already used; the session it started has ended",
            ));
        }
        let now = ctx.now();
        let verifier = exchange
            .code_verifier
            .as_ref()
            .map(ExposeSecret::expose_secret);
        let failure = if code.client_id != client.id {
            Some("the code was issued to another client")
        } else if now >= code.expires_at {
            Some("the code has expired")
        } else if exchange.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            Some("redirect_uri differs from the authorization request's")
        } else if !verifier.is_some_and(|v| verifier_matches(v, &code.code_challenge)) {
            Some("code_verifier does not match the code_challenge")
        } else {
            None
        };
        if let Some(detail) = failure {
            ctx.store.spend_authorization_code(&hash, now).await?;
            return Err(grant(detail));
        }
        let Some(user) = ctx.store.user(code.user_id, ctx.territory()).await? else {
            ctx.store.spend_authorization_code(&hash, now).await?;
            return Err(grant("the user is gone"));
        };
        if !user.is_active {
            ctx.store.spend_authorization_code(&hash, now).await?;
            return Err(grant("the user is disabled"));
        }
        let amr: Vec<&str> = code.amr.iter().map(String::as_str).collect();
        let amr = if amr.is_empty() {
            PASSWORD_AMR.to_vec()
        } else {
            amr
        };
        let (mut session, token_row, token) = ctx.new_session(user.id, &amr, request)?;
        // The session list says which client holds it.
        session.device.browser = Some(client.name.clone());
        session.scope = code.scope.clone();
        let effects = ctx.login_effects(
            user.id,
            session.id,
            json!({ "client_id": client.id }),
            request,
        );
        let user_id = user.id;
        let evicted = move |ids: &[Uuid]| ctx.sessions_ended(user_id, ids, EndReason::Evicted);
        let recorded = ctx
            .store
            .record_code_login(
                &hash,
                &session,
                &token_row,
                ctx.config.auth.max_sessions_per_user,
                &effects,
                &evicted,
            )
            .await?;
        if recorded.is_none() {
            // Another exchange of the same code won the race: a replay.
            if let Some(code) = ctx.store.authorization_code(&hash).await? {
                self.replayed(&code, request).await?;
            }
            return Err(grant(
                "the code was already used; the session it started has ended",
            ));
        }
        ctx.scoped_token_pair(
            user,
            session.id,
            token.plaintext,
            ctx.refresh_ttl_seconds(),
            session.amr,
            session.scope,
        )
    }

    /// The client of a code exchange: a confidential one authenticates as it is registered;
    /// a public one (`none`) only names itself, and anything else naming itself so is refused.
    async fn code_client(&self, exchange: &CodeExchange) -> Result<Client, Error> {
        if let Some(credentials) = &exchange.credentials {
            return self.authenticate(credentials).await;
        }
        let refused = Error::OAuth(OAuthError::InvalidClient { basic: false });
        let Some(id) = exchange
            .client_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            return Err(refused);
        };
        match self.context.store.client(id).await? {
            Some(stored)
                if stored.client.keys.auth_method.is_public() && stored.client.is_active =>
            {
                Ok(stored.client)
            }
            _ => Err(refused),
        }
    }

    /// A spent code presented again: the session its exchange started ends (RFC 6749 §4.1.2:
    /// the tokens issued for it are revoked), recorded as a reuse.
    async fn replayed(
        &self,
        code: &authorization::AuthorizationCode,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let Some(session_id) = code.session_id else {
            return Ok(());
        };
        let user_id = code.user_id;
        let effects = Effects {
            events: vec![ctx.event(Event::TokenReuseDetected {
                user_id,
                session_id,
            })],
            audit: vec![self.code_audit(
                AuditAction::AuthorizationCodeReuse,
                user_id,
                code.client_id,
                json!({ "session_id": session_id }),
                request,
            )],
        };
        let all = effects
            .clone()
            .and(ctx.sessions_ended(user_id, &[session_id], EndReason::Reuse));
        if !ctx
            .store
            .end_session(session_id, EndReason::Reuse, ctx.now(), &all)
            .await?
        {
            ctx.store.record_effects(&effects).await?;
        }
        tracing::warn!(session.id = %session_id, "authorization code reuse: session ended");
        Ok(())
    }

    /// An audit entry about a user's authorization of client `client_id`.
    fn code_audit(
        &self,
        action: AuditAction,
        user_id: Uuid,
        client_id: Uuid,
        mut details: serde_json::Value,
        request: &RequestContext,
    ) -> AuditEntry {
        details["client_id"] = json!(client_id);
        self.context
            .audit(action, Some(user_id), Some(user_id), details, request)
    }
}

/// RFC 7636 §4.6: BASE64URL(SHA-256(verifier)) equals the challenge, compared in constant
/// time; a verifier outside RFC 7636 §4.1's form never matches.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    authorization::is_code_verifier(verifier)
        && bool::from(
            tokens::pkce_s256(verifier)
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

/// `uri` with `params` added to its query (form-encoded), keeping what it had.
pub fn with_query(uri: &str, params: &[(&str, String)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in params {
                    query.append_pair(name, value);
                }
            }
            url.to_string()
        }
        // Registered URIs parse (they were checked); keep the answer well-formed anyway.
        Err(_) => uri.to_owned(),
    }
}
