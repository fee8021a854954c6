//! Administration of OAuth 2 clients (SPEC §11, `/api/clients`): creation with a secret shown
//! once, reading, changes, deletion and secret rotation with an overlap. Scoped like users
//! (SPEC §5): a territory admin administers the clients of its territory only.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::api_keys::ApiKeys;
use super::client_jwks::ClientJwks;
use super::context::{Context, RequestContext};
use super::sessions::{CurrentSession, Sessions};
use crate::config::ClientsConfig;
use crate::crypto::client_keys;
use crate::crypto::jwt::enrollment_audience;
use crate::crypto::tokens;
use crate::domain::authority::AdminScope;
use crate::domain::client::{check_keys, Client, ClientPatch, ClientSettings};
use crate::domain::{AuditAction, Event};
use crate::error::{Error, FieldError};
use crate::limits::Scope;
use crate::store::{AuditEntry, Effects};

#[derive(Clone)]
pub struct Clients {
    pub(super) context: Arc<Context>,
    pub(super) sessions: Sessions,
    /// Keys owned by clients (`client_keys.rs`) and keys in introspection (`oauth.rs`).
    pub(super) api_keys: ApiKeys,
    /// Fetched JWK Sets of `private_key_jwt` clients.
    pub(super) jwks: Arc<ClientJwks>,
}

/// A page of clients and the cursor of the next one.
pub struct ClientPage {
    pub clients: Vec<Client>,
    pub next_cursor: Option<String>,
}

impl Clients {
    pub fn new(context: Arc<Context>, api_keys: ApiKeys) -> Self {
        let sessions = Sessions::new(context.clone());
        Self {
            context,
            sessions,
            api_keys,
            jwks: Arc::new(ClientJwks::default()),
        }
    }

    /// Creates a client and answers its secret, the only time it is shown; a
    /// `private_key_jwt` client has none (a random hash no one knows is kept, and refused
    /// anyway). A territory admin's client belongs to its territory.
    #[tracing::instrument(skip_all)]
    pub async fn create(
        &self,
        caller: &CurrentSession,
        mut settings: ClientSettings,
        request: &RequestContext,
    ) -> Result<(Client, Option<SecretString>), Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        if let AdminScope::Territory(own) = &scope {
            match &settings.territory {
                None => settings.territory = Some(own.clone()),
                Some(code) if code == own => {}
                Some(_) => return Err(Error::Forbidden),
            }
        }
        self.check_references(&settings, None).await?;
        self.check_grants(&settings)?;
        let secret = tokens::random_token().map_err(Error::Internal)?;
        let now = ctx.now();
        let client = Client {
            id: Uuid::now_v7(),
            name: settings.name.clone(),
            scopes: settings.scopes.clone(),
            roles: settings.roles.clone(),
            territory: settings.territory.clone(),
            access_token_ttl: settings.access_token_ttl,
            is_active: settings.is_active,
            previous_secret_expires_at: None,
            exchange_audiences: settings.exchange_audiences.clone(),
            keys: settings.keys.clone(),
            redirect_uris: settings.redirect_uris.clone(),
            created_at: now,
            updated_at: now,
        };
        let effects = Effects {
            events: vec![ctx.event(Event::ClientCreated {
                client_id: client.id,
                name: client.name.clone(),
                territory: client.territory.clone(),
            })],
            audit: vec![self.audit(
                AuditAction::ClientCreated,
                caller,
                client.id,
                json!({ "after": shown(&settings) }),
                request,
            )],
        };
        ctx.store
            .create_client(client.id, &settings, &secret.hash, now, &effects)
            .await?;
        let shown = settings.keys.auth_method.uses_secret();
        Ok((client, shown.then_some(secret.plaintext)))
    }

    /// A client within the caller's reach; any other is `client_not_found`, so ids cannot
    /// be probed.
    pub async fn client(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        request: &RequestContext,
    ) -> Result<Client, Error> {
        let scope = self.lookup_scope(caller, request).await?;
        self.reachable(&scope, id).await
    }

    /// Clients in creation order, a page at a time; a territory admin's are its territory's.
    pub async fn list(
        &self,
        caller: &CurrentSession,
        limit: u32,
        cursor: Option<&str>,
        request: &RequestContext,
    ) -> Result<ClientPage, Error> {
        let scope = self.lookup_scope(caller, request).await?;
        let after = cursor
            .map(|cursor| {
                Uuid::parse_str(cursor).map_err(|_| {
                    Error::invalid(
                        "cursor",
                        "invalid_cursor",
                        "is not a cursor this service issued",
                    )
                })
            })
            .transpose()?;
        let mut clients = self
            .context
            .store
            .list_clients(scope.territory(), after, limit + 1)
            .await?;
        let more = clients.len() > limit as usize;
        clients.truncate(limit as usize);
        let next_cursor = more
            .then(|| clients.last().map(|c| c.id.to_string()))
            .flatten();
        Ok(ClientPage {
            clients,
            next_cursor,
        })
    }

    /// Changes a client's settings. A territory admin may not move a client out of its
    /// territory.
    #[tracing::instrument(skip_all, fields(client.id = %id))]
    pub async fn update(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        patch: ClientPatch,
        request: &RequestContext,
    ) -> Result<Client, Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        let before = self.reachable(&scope, id).await?;
        let (settings, fields) = patch.apply(&before);
        if !scope.reaches_client(settings.territory.as_deref()) {
            return Err(Error::Forbidden);
        }
        if fields.is_empty() {
            return Ok(before);
        }
        self.check_references(&settings, Some(&before)).await?;
        self.check_grants(&settings)?;
        let now = ctx.now();
        let effects = Effects {
            events: Vec::new(),
            audit: vec![self.audit(
                AuditAction::ClientUpdated,
                caller,
                id,
                json!({ "fields": fields, "before": shown(&before.settings()),
                        "after": shown(&settings) }),
                request,
            )],
        };
        let found = ctx
            .store
            .update_client(id, scope.territory(), &settings, now, &effects)
            .await?;
        if !found {
            return Err(Error::ClientNotFound);
        }
        self.reachable(&AdminScope::Global, id).await
    }

    /// Deletes a client: its secrets stop authenticating and its tokens stop introspecting
    /// as active at once.
    #[tracing::instrument(skip_all, fields(client.id = %id))]
    pub async fn delete(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let ctx = &self.context;
        let scope = ctx.admin_scope(caller).await?;
        let before = self.reachable(&scope, id).await?;
        let effects = Effects {
            events: vec![ctx.event(Event::ClientDeleted { client_id: id })],
            audit: vec![self.audit(
                AuditAction::ClientDeleted,
                caller,
                id,
                json!({ "before": shown(&before.settings()) }),
                request,
            )],
        };
        if ctx
            .store
            .delete_client(id, scope.territory(), &effects)
            .await?
        {
            Ok(())
        } else {
            Err(Error::ClientNotFound)
        }
    }

    /// Gives a client a new secret, answered once; the one it replaces authenticates for
    /// `overlap` more (the configured `clients.secret_overlap` when not given).
    #[tracing::instrument(skip_all, fields(client.id = %id))]
    pub async fn rotate_secret(
        &self,
        caller: &CurrentSession,
        id: Uuid,
        overlap: Option<Duration>,
        request: &RequestContext,
    ) -> Result<(Client, SecretString), Error> {
        let ctx = &self.context;
        let overlap = overlap.unwrap_or(ctx.config.clients.secret_overlap);
        if overlap > ClientsConfig::MAX_OVERLAP {
            return Err(Error::invalid(
                "overlap_seconds",
                "out_of_range",
                "must be between 0 and 2592000 (30 days)",
            ));
        }
        let scope = ctx.admin_scope(caller).await?;
        let client = self.reachable(&scope, id).await?;
        if !client.keys.auth_method.uses_secret() {
            return Err(Error::invalid(
                "token_endpoint_auth_method",
                "no_secret",
                "a private_key_jwt client authenticates with its keys, and a public client with nothing: neither has a secret",
            ));
        }
        let secret = tokens::random_token().map_err(Error::Internal)?;
        let now = ctx.now();
        let until =
            now + chrono::Duration::from_std(overlap).map_err(|e| Error::Internal(e.into()))?;
        let effects = Effects {
            events: vec![ctx.event(Event::ClientSecretRotated {
                client_id: id,
                previous_secret_expires_at: until,
            })],
            audit: vec![self.audit(
                AuditAction::ClientSecretRotated,
                caller,
                id,
                json!({ "previous_secret_expires_at": until }),
                request,
            )],
        };
        let found = ctx
            .store
            .rotate_client_secret(id, scope.territory(), &secret.hash, until, now, &effects)
            .await?;
        if !found {
            return Err(Error::ClientNotFound);
        }
        let client = self.reachable(&AdminScope::Global, id).await?;
        Ok((client, secret.plaintext))
    }

    /// A client that exists and is within `scope`'s reach, else `client_not_found`.
    pub(super) async fn reachable(&self, scope: &AdminScope, id: Uuid) -> Result<Client, Error> {
        self.context
            .store
            .client(id)
            .await?
            .map(|stored| stored.client)
            .filter(|client| scope.reaches_client(client.territory.as_deref()))
            .ok_or(Error::ClientNotFound)
    }

    /// Administrative reads count against the per-address lookup limit (SPEC §4), like
    /// user lookups.
    pub(super) async fn lookup_scope(
        &self,
        caller: &CurrentSession,
        request: &RequestContext,
    ) -> Result<AdminScope, Error> {
        self.context.limit_by_ip(Scope::LookupIp, request).await?;
        self.context.admin_scope(caller).await
    }

    /// Roles must exist and a territory must exist; only what changes is looked up.
    async fn check_references(
        &self,
        settings: &ClientSettings,
        before: Option<&Client>,
    ) -> Result<(), Error> {
        let store = &self.context.store;
        if before.is_none_or(|b| b.roles != settings.roles) && !settings.roles.is_empty() {
            let known = store.roles().await?;
            if let Some(unknown) = settings
                .roles
                .iter()
                .find(|role| !known.iter().any(|r| &r.name == *role))
            {
                return Err(Error::invalid(
                    "roles",
                    "unknown_role",
                    &format!("no role named {unknown}"),
                ));
            }
        }
        if let Some(code) = &settings.territory {
            if before.is_none_or(|b| b.territory.as_ref() != Some(code)) {
                let known = store.territories().await?;
                if !known.iter().any(|t| &t.code == code) {
                    return Err(Error::invalid(
                        "territory",
                        "unknown_territory",
                        "no territory with that code",
                    ));
                }
            }
        }
        Ok(())
    }

    /// What only the service knows to check: an exchange audience may not be this service's
    /// own (a token exchanged for it would act as the user here, SPEC §11), and a client's
    /// keys fit its method and parse.
    fn check_grants(&self, settings: &ClientSettings) -> Result<(), Error> {
        let own = &self.context.config.auth.audience;
        let mut errors = Vec::new();
        if settings
            .exchange_audiences
            .iter()
            .any(|audience| audience == own || *audience == enrollment_audience(own))
        {
            errors.push(FieldError::new(
                "exchange_audiences",
                "reserved",
                "this service's own audience cannot be an exchange audience",
            ));
        }
        if let Err(error) = check_keys(&settings.keys) {
            errors.push(error);
        }
        // A public client cannot authenticate, so it may not exchange tokens (RFC 8693 needs
        // an authenticated client) and has a use only with a redirect URI.
        if settings.keys.auth_method.is_public() && !settings.exchange_audiences.is_empty() {
            errors.push(FieldError::new(
                "exchange_audiences",
                "not_allowed",
                "a public client (token_endpoint_auth_method none) cannot exchange tokens",
            ));
        }
        if let Some(jwks) = &settings.keys.jwks {
            if let Err(message) = client_keys::parse_jwks(jwks) {
                errors.push(FieldError::new("jwks", "invalid", message));
            }
        }
        if let Some(uri) = &settings.keys.jwks_uri {
            if let Err(message) = client_keys::check_jwks_uri(uri) {
                errors.push(FieldError::new("jwks_uri", "invalid", message));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// An audit entry about client `id`, done by `caller`.
    fn audit(
        &self,
        action: AuditAction,
        caller: &CurrentSession,
        id: Uuid,
        details: serde_json::Value,
        request: &RequestContext,
    ) -> AuditEntry {
        AuditEntry {
            target_type: Some("client"),
            target_id: Some(id.to_string()),
            ..self
                .context
                .audit(action, Some(caller.user_id()), None, details, request)
        }
    }
}

/// What an audit entry records of a client's settings (there is no secret among them).
fn shown(settings: &ClientSettings) -> serde_json::Value {
    json!({
        "name": settings.name,
        "scopes": settings.scopes,
        "roles": settings.roles,
        "territory": settings.territory,
        "access_token_ttl_seconds": settings.access_token_ttl,
        "is_active": settings.is_active,
        "exchange_audiences": settings.exchange_audiences,
        "token_endpoint_auth_method": settings.keys.auth_method.as_str(),
        "jwks": settings.keys.jwks.is_some(),
        "jwks_uri": settings.keys.jwks_uri,
        "redirect_uris": settings.redirect_uris,
    })
}
