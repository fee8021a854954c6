//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009) for every kind of
//! token the service issues (SPEC §11): which kind a presented token is ([`Clients::find`], the
//! one place that routes a token to its kind), what introspection answers of it, and what
//! revoking it ends.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::clients::Clients;
use super::context::RequestContext;
use super::oauth::{ClientCredentials, Introspected};
use crate::crypto::jwt::{ClientClaims, LEEWAY_SECONDS};
use crate::crypto::tokens;
use crate::domain::api_key::KeyOwner;
use crate::domain::client::Client;
use crate::domain::token::{RefreshTokenState, RevokedToken, TokenKind};
use crate::domain::{AuditAction, EndReason};
use crate::error::{Error, OAuthError};
use crate::limits::Scope;
use crate::store::{AuditEntry, Effects};

/// What introspection tells of an active token.
#[expect(
    clippy::large_enum_variant,
    reason = "one short-lived value per request, moved once; boxing buys nothing"
)]
pub enum Inspected {
    /// A user's or a client's access token, as `/api/auth/introspect` sees it.
    Access(Introspected),
    /// A user's refresh token that a refresh would accept now.
    Refresh(RefreshTokenState),
}

/// A token found as one of the kinds the service issues.
#[expect(
    clippy::large_enum_variant,
    reason = "one short-lived value per request, moved once; boxing buys nothing"
)]
enum Found {
    /// An active access token (verified; its session or client active; not revoked).
    Access(Introspected),
    /// A refresh token this service issued, spent or not, with its session's state.
    Refresh(RefreshTokenState),
}

impl Clients {
    /// RFC 7662: what an active token says, or `None` (unknown, expired, revoked, ended
    /// session, inactive client, malformed). The caller must be an authenticated, active
    /// client; any such client may introspect any token (docs/security.md: a resource server
    /// learns nothing the token's holder could not), counted per client against
    /// `limits.introspect_per_client`. A hint only orders the search; one this service does not
    /// know is ignored (RFC 7662 §2.1).
    #[tracing::instrument(skip_all)]
    pub async fn introspect_token(
        &self,
        credentials: Option<&ClientCredentials>,
        token: &SecretString,
        hint: Option<&str>,
    ) -> Result<Option<Inspected>, Error> {
        // RFC 7662 §2.1: the caller authenticates; introspection is not for anonymous callers.
        let Some(credentials) = credentials else {
            return Err(Error::OAuth(OAuthError::InvalidClient { basic: false }));
        };
        let client = self.authenticate(credentials).await?;
        self.count(Scope::IntrospectPerClient, &client).await?;
        let hint = hint.and_then(TokenKind::from_hint);
        let now = self.context.now();
        Ok(match self.find(token.expose_secret(), hint).await? {
            Some(Found::Access(claims)) => Some(Inspected::Access(claims)),
            Some(Found::Refresh(state)) if state.active(now) => Some(Inspected::Refresh(state)),
            Some(Found::Refresh(_)) | None => None,
        })
    }

    /// RFC 7009: makes a token unusable. A user's refresh or access token ends its session
    /// (a logout, with its event and audit entry); a client's access token is refused by
    /// every replica until it expires. Unknown and already invalid tokens change nothing and
    /// are no error (RFC 7009 §2.2). Client authentication is optional for users' tokens
    /// (holding one is enough to log out with it) and, when presented, must succeed; a
    /// client's token is revoked only by that client (RFC 7009 §2.1). Counted per client
    /// (`limits.token_per_client`), or per address without client authentication
    /// (`limits.revoke_per_ip`).
    #[tracing::instrument(skip_all)]
    pub async fn revoke_token(
        &self,
        credentials: Option<&ClientCredentials>,
        token: &SecretString,
        hint: Option<&str>,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let client = match credentials {
            Some(credentials) => {
                let client = self.authenticate(credentials).await?;
                self.count(Scope::TokenPerClient, &client).await?;
                Some(client)
            }
            None => {
                self.context
                    .limit_by_ip(Scope::RevokePerIp, request)
                    .await?;
                None
            }
        };
        // RFC 7009 §2.2.1: a hint naming a kind this server does not revoke is refused.
        let hint = hint
            .map(|hint| {
                TokenKind::from_hint(hint).ok_or(Error::OAuth(OAuthError::UnsupportedTokenType))
            })
            .transpose()?;
        match self.find(token.expose_secret(), hint).await? {
            None => Ok(()),
            Some(Found::Access(Introspected::User(claims))) => {
                self.sessions
                    .end(claims.sid, claims.sub, EndReason::Logout, request)
                    .await?;
                Ok(())
            }
            Some(Found::Refresh(state)) => {
                // Like a logout with a refresh token: a spent token of the session ends it
                // too, so the holder of an older token can still end a session that someone
                // else refreshed.
                self.sessions
                    .end(state.session_id, state.user_id, EndReason::Logout, request)
                    .await?;
                Ok(())
            }
            Some(Found::Access(Introspected::Client(claims))) => {
                self.revoke_client_token(client.as_ref(), &claims, request)
                    .await
            }
            Some(Found::Access(Introspected::ApiKey(caller))) => {
                // Holding a key is the authority to end it, as with a refresh token; but a
                // client that authenticates may not end another client's key.
                if let (Some(client), KeyOwner::Client(owner)) = (&client, caller.key.owner) {
                    if client.id != owner {
                        return Err(Error::OAuth(OAuthError::UnauthorizedClient));
                    }
                }
                self.api_keys.revoke_presented(&caller, request).await
            }
        }
    }

    /// The one dispatch from a presented token to its kind: each kind the token's shape
    /// allows, the hinted one first (RFC 7009 §2.1, RFC 7662 §2.1: a hint that does not find
    /// the token extends the search to the other kinds).
    async fn find(&self, token: &str, hint: Option<TokenKind>) -> Result<Option<Found>, Error> {
        for kind in TokenKind::search_order(token, hint) {
            let found = match kind {
                TokenKind::AccessToken => self.validate(token).await?.ok().map(Found::Access),
                TokenKind::RefreshToken => self
                    .context
                    .store
                    .refresh_token_state(&tokens::hash_token(token))
                    .await?
                    .map(Found::Refresh),
                // An `ask_…` key: `validate` judges it as a key only (checksum, then lookup).
                TokenKind::ApiKey => self.validate(token).await?.ok().map(Found::Access),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// RFC 7009 §2.1: only the client a token was issued to may revoke it. The `jti` is
    /// refused until the token expires (plus the verification leeway), audited as
    /// `client_token_revoked`.
    async fn revoke_client_token(
        &self,
        client: Option<&Client>,
        claims: &ClientClaims,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let Some(client) = client else {
            return Err(Error::OAuth(OAuthError::InvalidClient { basic: false }));
        };
        if client.id.to_string() != claims.client_id {
            return Err(Error::OAuth(OAuthError::UnauthorizedClient));
        }
        let ctx = &self.context;
        let expires_at = chrono::DateTime::from_timestamp(claims.exp + LEEWAY_SECONDS, 0)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("a token's exp is out of range")))?;
        let revoked = RevokedToken {
            jti: claims.jti,
            client_id: client.id,
            expires_at,
        };
        let effects = Effects {
            events: Vec::new(),
            audit: vec![AuditEntry {
                target_type: Some("client"),
                target_id: Some(client.id.to_string()),
                ..ctx.audit(
                    AuditAction::ClientTokenRevoked,
                    None,
                    None,
                    json!({ "jti": claims.jti, "expires_at": expires_at }),
                    request,
                )
            }],
        };
        let newly = ctx
            .store
            .record_token_revocation(&revoked, ctx.now(), &effects)
            .await?;
        if newly {
            tracing::info!(client.id = %client.id, token.jti = %claims.jti, "client token revoked");
        }
        Ok(())
    }

    /// Counts one request of an authenticated client in `scope`.
    async fn count(&self, scope: Scope, client: &Client) -> Result<(), Error> {
        self.context
            .limiter
            .hit(scope, &client.id.to_string())
            .await
            .map_err(|retry_after| Error::RateLimited { retry_after })
    }
}
