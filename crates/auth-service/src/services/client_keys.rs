//! API keys owned by clients (SPEC §11, `/api/clients/{id}/api-keys`): administered exactly
//! like the client itself (SPEC §5: a territory admin reaches its territory's clients only,
//! any other client is `client_not_found`), and never wider than the client's own scopes.

use secrecy::SecretString;
use uuid::Uuid;

use super::clients::Clients;
use super::context::RequestContext;
use super::sessions::CurrentSession;
use crate::domain::api_key::{scope_beyond, ApiKey, KeyOwner, KeyRequest};
use crate::error::Error;

impl Clients {
    /// A new key for client `client_id`, shown this once. Its scopes must be the client's.
    #[tracing::instrument(skip_all, fields(client.id = %client_id))]
    pub async fn create_api_key(
        &self,
        caller: &CurrentSession,
        client_id: Uuid,
        asked: KeyRequest,
        request: &RequestContext,
    ) -> Result<(ApiKey, SecretString), Error> {
        // A key is a credential: only a session makes one (`http/api_key_access.rs` too).
        if caller.api_key.is_some() {
            return Err(Error::SessionRequired);
        }
        let scope = self.context.admin_scope(caller).await?;
        let client = self.reachable(&scope, client_id).await?;
        if let Some(beyond) = scope_beyond(&asked.scopes, &client.scopes) {
            return Err(Error::invalid(
                "scopes",
                "scope_not_held",
                &format!("the client does not hold the scope {beyond}"),
            ));
        }
        let owner = KeyOwner::Client(client.id);
        self.api_keys
            .create(owner, caller.user_id(), asked, request)
            .await
    }

    /// The keys of client `client_id`, oldest first.
    pub async fn api_keys(
        &self,
        caller: &CurrentSession,
        client_id: Uuid,
        request: &RequestContext,
    ) -> Result<Vec<ApiKey>, Error> {
        let scope = self.lookup_scope(caller, request).await?;
        let client = self.reachable(&scope, client_id).await?;
        self.api_keys.list(KeyOwner::Client(client.id)).await
    }

    /// Revokes key `key_id` of client `client_id`; a key of another client is
    /// `api_key_not_found`.
    #[tracing::instrument(skip_all, fields(client.id = %client_id, api_key.id = %key_id))]
    pub async fn revoke_api_key(
        &self,
        caller: &CurrentSession,
        client_id: Uuid,
        key_id: Uuid,
        request: &RequestContext,
    ) -> Result<(), Error> {
        let scope = self.context.admin_scope(caller).await?;
        let client = self.reachable(&scope, client_id).await?;
        self.api_keys
            .revoke(
                KeyOwner::Client(client.id),
                key_id,
                Some(caller.user_id()),
                request,
            )
            .await
    }
}
