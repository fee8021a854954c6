//! API keys / personal access tokens (SPEC §11): a user's own keys (created only from a
//! session), the check of a presented key (`check.rs`, cached like a session in `cache.rs`),
//! what a key says in introspection, and the batched record of when keys were used
//! (`uses.rs`). The admin side, keys owned by clients, is `services/client_keys.rs`.

mod cache;
mod caller;
mod check;
mod uses;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use self::cache::KeyCache;
pub use self::caller::{KeyCaller, KeyHolder};
use self::uses::KeyUses;
use super::context::{Context, RequestContext};
use super::sessions::CurrentSession;
use crate::crypto::api_keys;
use crate::domain::api_key::{ApiKey, KeyOwner, KeyRequest, MAX_KEYS_PER_OWNER};
use crate::domain::{AuditAction, Event};
use crate::error::Error;
use crate::store::{AuditEntry, Effects};

/// How often the uses noted in memory are written (`last_used_at`), and at shutdown.
pub const USE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ApiKeys {
    context: Arc<Context>,
    cache: Arc<KeyCache>,
    uses: Arc<KeyUses>,
}

impl ApiKeys {
    pub fn new(context: Arc<Context>) -> Self {
        let cache = Arc::new(KeyCache::new(context.config.auth.session_cache_ttl));
        for result in ["hit", "miss"] {
            metrics::counter!("auth_api_key_cache_total", "result" => result).increment(0);
        }
        Self {
            context,
            cache,
            uses: Arc::default(),
        }
    }

    /// A new key for the caller, shown this once. Only a session may create one (an API key
    /// never makes another: `session_required`).
    #[tracing::instrument(skip_all, fields(user.id = %caller.user_id()))]
    pub async fn create_own(
        &self,
        caller: &CurrentSession,
        asked: KeyRequest,
        request: &RequestContext,
    ) -> Result<(ApiKey, SecretString), Error> {
        if caller.api_key.is_some() {
            return Err(Error::SessionRequired);
        }
        let owner = KeyOwner::User(caller.user_id());
        self.create(owner, caller.user_id(), asked, request).await
    }

    /// A new key for `owner`, made by `actor`; the event and the audit entry go with it.
    pub(super) async fn create(
        &self,
        owner: KeyOwner,
        actor: Uuid,
        asked: KeyRequest,
        request: &RequestContext,
    ) -> Result<(ApiKey, SecretString), Error> {
        let ctx = &self.context;
        let new = api_keys::generate().map_err(Error::Internal)?;
        let now = ctx.now();
        let lifetime = asked
            .expires_in
            .map(|seconds| chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)));
        let key = ApiKey {
            id: Uuid::now_v7(),
            owner,
            name: asked.name,
            prefix: new.prefix,
            scopes: asked.scopes,
            created_at: now,
            expires_at: lifetime.map(|lifetime| now + lifetime),
            last_used_at: None,
        };
        let effects = Effects {
            events: vec![ctx.event(Event::ApiKeyCreated {
                api_key_id: key.id,
                owner_type: owner.kind(),
                owner_id: owner.id(),
                name: key.name.clone(),
                prefix: key.prefix.clone(),
                scopes: key.scopes.clone(),
            })],
            audit: vec![self.audit(AuditAction::ApiKeyCreated, Some(actor), &key, request)],
        };
        let created = ctx
            .store
            .create_api_key(&key, &new.hash, MAX_KEYS_PER_OWNER, &effects)
            .await?;
        if !created {
            return Err(Error::TooManyApiKeys);
        }
        tracing::info!(api_key.id = %key.id, "api key created");
        Ok((key, new.key))
    }

    /// The caller's keys, oldest first (never the keys themselves).
    pub async fn list_own(&self, caller: &CurrentSession) -> Result<Vec<ApiKey>, Error> {
        self.list(KeyOwner::User(caller.user_id())).await
    }

    pub(super) async fn list(&self, owner: KeyOwner) -> Result<Vec<ApiKey>, Error> {
        Ok(self.context.store.api_keys_of(owner).await?)
    }

    /// Revokes one of the caller's keys; another user's or an unknown id is
    /// `api_key_not_found`.
    #[tracing::instrument(skip_all, fields(user.id = %caller.user_id(), api_key.id = %key_id))]
    pub async fn revoke_own(
        &self,
        caller: &CurrentSession,
        key_id: Uuid,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let owner = KeyOwner::User(caller.user_id());
        self.revoke(owner, key_id, Some(caller.user_id()), request)
            .await
    }

    /// Revokes the key its holder presented (RFC 7009 `POST /oauth/revoke`): a user's key is
    /// revoked as by its user, a client's with no user acting.
    pub async fn revoke_presented(
        &self,
        caller: &KeyCaller,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let key = &caller.key;
        let actor = match key.owner {
            KeyOwner::User(user) => Some(user),
            KeyOwner::Client(_) => None,
        };
        match self.revoke(key.owner, key.id, actor, request).await {
            // Revoked meanwhile by another request: nothing left to do (RFC 7009 §2.2).
            Err(Error::ApiKeyNotFound) => Ok(()),
            other => other,
        }
    }

    /// Deletes one of `owner`'s keys, done by `actor`. The fence the revocation's event
    /// raises untrusts every cached key check here, and the entry is dropped besides.
    pub(super) async fn revoke(
        &self,
        owner: KeyOwner,
        key_id: Uuid,
        actor: Option<Uuid>,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let effects = |key: &ApiKey| Effects {
            events: vec![ctx.event(Event::ApiKeyRevoked {
                api_key_id: key.id,
                owner_type: owner.kind(),
                owner_id: owner.id(),
                name: key.name.clone(),
                prefix: key.prefix.clone(),
                scopes: key.scopes.clone(),
            })],
            audit: vec![self.audit(AuditAction::ApiKeyRevoked, actor, key, request)],
        };
        let revoked = ctx.store.revoke_api_key(owner, key_id, &effects).await?;
        self.cache.forget(key_id);
        match revoked {
            Some(_) => {
                tracing::info!("api key revoked");
                Ok(())
            }
            None => Err(Error::ApiKeyNotFound),
        }
    }

    /// Writes the uses noted since the last flush in one statement; a failed write keeps
    /// them for the next.
    pub async fn flush_uses(&self) -> Result<usize, Error> {
        let batch = self.uses.take();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.context.store.record_api_key_uses(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(error) => {
                let count = batch.len();
                self.uses.restore(batch);
                tracing::debug!(keys = count, "api key uses kept for the next flush");
                Err(error.into())
            }
        }
    }

    /// An audit entry about key `key`, done by `actor` (never the key, only its prefix).
    fn audit(
        &self,
        action: AuditAction,
        actor: Option<Uuid>,
        key: &ApiKey,
        request: &RequestContext,
    ) -> AuditEntry {
        let user = match key.owner {
            KeyOwner::User(id) => Some(id),
            KeyOwner::Client(_) => None,
        };
        let details = json!({
            "owner_type": key.owner.kind(),
            "owner_id": key.owner.id(),
            "name": key.name,
            "prefix": key.prefix,
            "scopes": key.scopes,
            "expires_at": key.expires_at,
        });
        AuditEntry {
            target_type: Some("api_key"),
            target_id: Some(key.id.to_string()),
            ..self.context.audit(action, actor, user, details, request)
        }
    }
}
