//! The OAuth 2 side of clients (SPEC §11): client authentication, the client-credentials and
//! refresh-token grants, and what a client's access token says when it comes back
//! (introspection). Token exchange is in `exchange.rs`, client assertions in `assertion.rs`.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::api_keys::KeyCaller;
use super::clients::Clients;
use super::context::{RequestContext, TokenPair};
use crate::crypto::api_keys;
use crate::crypto::jwt::{AccessClaims, ClientClaims, KeyRing, Rejection, Verified};
use crate::crypto::tokens;
use crate::domain::client::{granted_scopes, Client, StoredClient};
use crate::error::{Error, OAuthError};
use crate::limits::Scope;

/// How a client authenticated: `client_secret_basic` (`basic`), `client_secret_post`, or
/// `private_key_jwt` (an assertion).
pub struct ClientCredentials {
    pub client_id: String,
    pub proof: Proof,
    pub basic: bool,
}

/// What proves the client is who it says.
pub enum Proof {
    /// `client_secret_basic` or `client_secret_post`.
    Secret(SecretString),
    /// `private_key_jwt` (RFC 7523 §2.2): a JWT signed with one of the client's keys.
    Assertion(SecretString),
}

/// A token exchange (RFC 8693 §2.1) as the transport read it.
pub struct ExchangeRequest {
    /// A user's access token.
    pub subject_token: SecretString,
    pub audience: String,
    pub scope: Option<String>,
}

/// The answer to a token exchange.
pub struct ExchangedToken {
    pub access_token: String,
    pub expires_in: u64,
    /// The granted scopes, space-separated; `None` when none.
    pub scope: Option<String>,
}

/// The answer to a grant: `{access_token, token_type: "Bearer", expires_in, scope}`.
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// An active access token, a user's or a client's, or an API key, with what is stored now.
pub enum Introspected {
    User(AccessClaims),
    Client(ClientClaims),
    /// SPEC §11: a valid API key, its owner (a user or a client) and the owner's roles now.
    ApiKey(KeyCaller),
}

impl Clients {
    /// RFC 6749 §4.4: a token for the client itself, with the requested scopes (all of its
    /// own when none are asked for). Counted per client against `limits.token_per_client`.
    #[tracing::instrument(skip_all)]
    pub async fn client_credentials(
        &self,
        credentials: ClientCredentials,
        scope: Option<&str>,
    ) -> Result<ClientToken, Error> {
        let ctx = &self.context;
        let client = self.authenticate(&credentials).await?;
        ctx.limiter
            .hit(Scope::TokenPerClient, &client.id.to_string())
            .await
            .map_err(|retry_after| Error::RateLimited { retry_after })?;
        let scopes = granted_scopes(scope, &client.scopes)?;
        let roles = ctx.client_roles_now(&client).await?;
        let now = ctx.now().timestamp();
        let ttl = client
            .access_token_ttl
            .unwrap_or(ctx.config.auth.access_token_ttl.as_secs());
        let scope = scopes.join(" ");
        let claims = ClientClaims {
            iss: ctx.config.issuer().to_owned(),
            aud: ctx.config.auth.audience.clone(),
            sub: client.id.to_string(),
            client_id: client.id.to_string(),
            jti: Uuid::now_v7(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            scope: scope.clone(),
            roles,
            territory: ctx.config.server.territory.clone(),
        };
        let access_token = ctx.keys.sign(&claims)?;
        tracing::debug!(client.id = %client.id, "client credentials granted");
        Ok(ClientToken {
            access_token,
            expires_in: ttl,
            scope,
        })
    }

    /// RFC 6749 §6: a user's refresh token spent for its successor, with exactly the rules of
    /// `POST /api/auth/refresh` (SPEC §3: rotation, the grace window, reuse ending the
    /// session). Users' refresh tokens are bound to no client, so none need authenticate; one
    /// that tries must succeed. The session grants no scope, so asking for one is
    /// `invalid_scope` (RFC 6749 §6: no scope beyond the original grant).
    #[tracing::instrument(skip_all)]
    pub async fn refresh_grant(
        &self,
        credentials: Option<&ClientCredentials>,
        refresh_token: &SecretString,
        scope: Option<&str>,
        request: &RequestContext,
    ) -> Result<TokenPair, Error> {
        if let Some(credentials) = credentials {
            self.authenticate(credentials).await?;
        }
        if scope.is_some() {
            return Err(Error::OAuth(OAuthError::InvalidScope));
        }
        let grant = |detail: &str| Error::OAuth(OAuthError::InvalidGrant(detail.to_owned()));
        self.sessions
            .refresh(refresh_token, request)
            .await
            .map_err(|error| match error {
                Error::InvalidRefreshToken => {
                    grant("the refresh token is unknown, expired or of an ended session")
                }
                Error::RefreshTokenReused => {
                    grant("the refresh token was already used; the session has been ended")
                }
                other => other,
            })
    }

    /// The client whose secret or assertion was presented, if it is active. Unknown client,
    /// wrong secret or assertion, the wrong method for the client, and an inactive client
    /// answer alike (`invalid_client`).
    pub(crate) async fn authenticate(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Client, Error> {
        let refused = Error::OAuth(OAuthError::InvalidClient {
            basic: credentials.basic,
        });
        let Ok(id) = Uuid::parse_str(&credentials.client_id) else {
            return Err(refused);
        };
        let Some(stored) = self.context.store.client(id).await? else {
            return Err(refused);
        };
        let proven = match &credentials.proof {
            Proof::Secret(secret) => self.secret_matches(&stored, secret),
            Proof::Assertion(assertion) => self.assertion_holds(&stored, assertion).await?,
        };
        if proven && stored.client.is_active {
            Ok(stored.client)
        } else {
            Err(refused)
        }
    }

    /// Whether `secret` is the client's (or its previous one, during a rotation's overlap).
    /// The presented secret's SHA-256 is compared with every accepted hash in constant time.
    /// A client registered for `private_key_jwt` has no usable secret.
    fn secret_matches(&self, stored: &StoredClient, secret: &SecretString) -> bool {
        if !stored.client.keys.auth_method.uses_secret() {
            return false;
        }
        let presented = tokens::hash_token(secret.expose_secret());
        let matched = stored
            .accepted_hashes(self.context.now())
            .iter()
            .fold(subtle::Choice::from(0), |any, hash| {
                any | hash.ct_eq(presented.as_slice())
            });
        bool::from(matched)
    }

    /// A user's or a client's access token, verified: a user's (or one made by token
    /// exchange) with its session (as [`super::sessions::Sessions::validate`]), a client's
    /// with its client, which must still exist and be active, and against the revoked `jti`s
    /// (`/oauth/revoke`, shared by every replica); roles are the ones stored now.
    pub async fn validate(&self, token: &str) -> Result<Result<Introspected, Rejection>, Error> {
        // An `ask_` bearer is judged as an API key only, never as a JWT.
        if api_keys::looks_like_key(token) {
            let verdict = self.api_keys.authenticate(token).await?;
            return Ok(verdict.map(Introspected::ApiKey));
        }
        match self.sessions.validate(token).await? {
            Ok(claims) => return Ok(Ok(Introspected::User(claims))),
            Err(Rejection::ClientToken) => {}
            // SPEC §11: an exchanged token is for another audience; it is active while its
            // session is.
            Err(Rejection::WrongAudience) => {
                let delegated = self.sessions.validate_delegated(token).await?;
                return Ok(delegated.map(Introspected::User));
            }
            Err(rejection) => return Ok(Err(rejection)),
        }
        let ctx = &self.context;
        let now = ctx.now();
        let mut verified = ctx.keys.ring().verify_any(token, now);
        if verified == Err(Rejection::UnknownKey) {
            if let Some(kid) = KeyRing::kid_of(token) {
                if ctx.keys.reload_for(&kid).await {
                    verified = ctx.keys.ring().verify_any(token, now);
                }
            }
        }
        let claims = match verified {
            Ok(Verified::Client(claims)) => claims,
            Ok(Verified::User(_)) => return Ok(Err(Rejection::Malformed)),
            Err(rejection) => return Ok(Err(rejection)),
        };
        let Ok(id) = Uuid::parse_str(&claims.client_id) else {
            return Ok(Err(Rejection::Malformed));
        };
        if ctx.store.token_revoked(claims.jti).await? {
            return Ok(Err(Rejection::TokenRevoked));
        }
        let client = ctx.store.client(id).await?.map(|stored| stored.client);
        let Some(client) = client.filter(|client| client.is_active) else {
            return Ok(Err(Rejection::ClientInactive));
        };
        let roles = ctx.client_roles_now(&client).await?;
        Ok(Ok(Introspected::Client(ClientClaims { roles, ..claims })))
    }

    /// RFC 7662: an active token's claims, or `None`.
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspected>, Error> {
        Ok(self.validate(token).await?.ok())
    }
}
