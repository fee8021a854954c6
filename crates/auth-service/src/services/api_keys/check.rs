//! The check of a presented API key: its shape and checksum first (no lookup for a forged
//! one), then the cache (`cache.rs`) or the store, and the key as a caller of this service.

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use super::caller::{KeyCaller, KeyHolder};
use super::ApiKeys;
use crate::crypto::api_keys;
use crate::crypto::jwt::{AccessClaims, Rejection};
use crate::domain::api_key::KeyOwner;
use crate::error::Error;
use crate::services::sessions::CurrentSession;

impl ApiKeys {
    /// The caller of a presented key, if it is valid now: well-formed with a good checksum
    /// (else refused before any lookup), held here, not expired, its owner active.
    pub async fn authenticate(&self, token: &str) -> Result<Result<KeyCaller, Rejection>, Error> {
        let Some(hash) = api_keys::stored_hash(token) else {
            return Ok(Err(Rejection::Malformed));
        };
        let ctx = &self.context;
        let now = ctx.now();
        let epoch = ctx.store.write_epoch();
        if let Some(caller) = self.cache.get(&hash, epoch, now) {
            metrics::counter!("auth_api_key_cache_total", "result" => "hit").increment(1);
            self.uses.note(caller.key.id, now);
            return Ok(Ok(caller));
        }
        metrics::counter!("auth_api_key_cache_total", "result" => "miss").increment(1);
        let verdict = self.load(&hash, now).await?;
        if let Ok(caller) = &verdict {
            self.cache.put(&hash, caller, epoch, now);
            self.uses.note(caller.key.id, now);
        }
        Ok(verdict)
    }

    /// A key and its owner from the store.
    async fn load(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Result<KeyCaller, Rejection>, Error> {
        let ctx = &self.context;
        let stored = ctx.store.api_key_by_hash(hash).await?;
        // The lookup matched the hash already; the comparison is constant-time all the same.
        let Some(stored) = stored.filter(|stored| bool::from(stored.hash.ct_eq(hash))) else {
            return Ok(Err(Rejection::ApiKeyUnknown));
        };
        let key = stored.key;
        if !key.is_live(now) {
            return Ok(Err(Rejection::Expired));
        }
        let owner = match key.owner {
            KeyOwner::User(user_id) => match ctx.store.user(user_id, ctx.territory()).await? {
                None => return Ok(Err(Rejection::ApiKeyUnknown)),
                Some(user) if !user.is_active => return Ok(Err(Rejection::AccountDisabled)),
                Some(user) => KeyHolder::User(user),
            },
            KeyOwner::Client(client_id) => {
                let client = ctx.store.client(client_id).await?.map(|c| c.client);
                let Some(client) = client.filter(|client| client.is_active) else {
                    return Ok(Err(Rejection::ClientInactive));
                };
                let roles = ctx.client_roles_now(&client).await?;
                KeyHolder::Client { client, roles }
            }
        };
        Ok(Ok(KeyCaller { key, owner }))
    }

    /// A user's key as the caller of this service's routes: the claims a session's token
    /// would carry, with `sid` and `jti` naming the key (there is no session). A client's key
    /// acts for no user (`user_token_required`, as a client's token).
    pub async fn authenticate_user(
        &self,
        token: &str,
    ) -> Result<Result<CurrentSession, Rejection>, Error> {
        let caller = match self.authenticate(token).await? {
            Ok(caller) => caller,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let KeyHolder::User(user) = caller.owner else {
            return Ok(Err(Rejection::ClientToken));
        };
        let ctx = &self.context;
        let key = caller.key;
        let claims = AccessClaims {
            iss: ctx.config.issuer().to_owned(),
            aud: ctx.config.auth.audience.clone(),
            sub: user.id,
            sid: key.id,
            jti: key.id,
            iat: key.created_at.timestamp(),
            nbf: key.created_at.timestamp(),
            exp: key.expires_at.map_or(i64::MAX, |at| at.timestamp()),
            email: user.email.clone(),
            username: user.username.clone(),
            roles: user.roles.clone(),
            territory: ctx.config.server.territory.clone(),
            verified: user.is_verified,
            amr: Vec::new(),
            scope: None,
            act: None,
        };
        // A key is made only from a full session, so it is never enrollment-only; what it may
        // call is `http/api_key_access.rs`'s list and its scopes.
        Ok(Ok(CurrentSession {
            claims,
            user,
            enrollment_only: false,
            api_key: Some(key),
        }))
    }
}
