//! OAuth 2 clients (SPEC §11): the same text on both databases. Scopes and roles are kept as
//! space-separated text (neither holds a space), so neither wing needs arrays for them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::client::{AuthMethod, Client, ClientKeys, StoredClient};

/// The columns of a client, in [`ClientRow`]'s order.
pub(crate) const CLIENT_FIELDS: &str = "id, name, secret_hash, previous_secret_hash, \
     previous_secret_expires_at, scopes, roles, territory_code, access_token_ttl_seconds, \
     is_active, created_at, updated_at, exchange_audiences, token_endpoint_auth_method, jwks, \
     jwks_uri, redirect_uris";

/// A client as read back; `Id` is the wing's `DbUuid`.
#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow<Id> {
    id: Id,
    name: String,
    secret_hash: Vec<u8>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    scopes: String,
    roles: String,
    territory_code: Option<String>,
    access_token_ttl_seconds: Option<i64>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    exchange_audiences: String,
    token_endpoint_auth_method: String,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    redirect_uris: String,
}

/// A list as stored: space-separated.
pub(crate) fn joined(list: &[String]) -> String {
    list.join(" ")
}

fn split(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

impl<Id: Into<Uuid>> From<ClientRow<Id>> for StoredClient {
    fn from(row: ClientRow<Id>) -> Self {
        StoredClient {
            client: Client {
                id: row.id.into(),
                name: row.name,
                scopes: split(&row.scopes),
                roles: split(&row.roles),
                territory: row.territory_code,
                access_token_ttl: row
                    .access_token_ttl_seconds
                    .and_then(|ttl| u64::try_from(ttl).ok()),
                is_active: row.is_active,
                previous_secret_expires_at: row.previous_secret_expires_at,
                exchange_audiences: split(&row.exchange_audiences),
                // Written only from an `AuthMethod`; an unknown text (a newer version's) gets
                // the default, which a private_key_jwt client's keys then fail.
                keys: ClientKeys {
                    auth_method: AuthMethod::parse(&row.token_endpoint_auth_method)
                        .unwrap_or_default(),
                    jwks: row.jwks,
                    jwks_uri: row.jwks_uri,
                },
                redirect_uris: split(&row.redirect_uris),
                created_at: row.created_at,
                updated_at: row.updated_at,
            },
            secret_hash: row.secret_hash,
            previous_secret_hash: row.previous_secret_hash,
        }
    }
}

/// A lifetime as stored: seconds, `BIGINT` or `INTEGER`.
pub(crate) fn ttl_column(ttl: Option<u64>) -> Option<i64> {
    ttl.and_then(|ttl| i64::try_from(ttl).ok())
}

/// Expands `ClientStore` for a wing; methods written inside the block are the wing's own. See
/// `shared/mod.rs` for the names the bodies expect in scope. `reach` is the territory an
/// administrator is confined to (`None` for a global one): a change outside it finds no row,
/// in the same statement that makes it.
macro_rules! client_store {
    (impl ClientStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl ClientStore for $store {
            $($own)*

            async fn create_client(
                &self,
                client_id: Uuid,
                settings: &ClientSettings,
                secret_hash: &[u8],
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO clients (id, name, secret_hash, scopes, roles, territory_code, \
                     access_token_ttl_seconds, is_active, created_at, updated_at, \
                     exchange_audiences, token_endpoint_auth_method, jwks, jwks_uri, redirect_uris) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13, $14)",
                )
                .bind(id(client_id))
                .bind(&settings.name)
                .bind(secret_hash)
                .bind(joined(&settings.scopes))
                .bind(joined(&settings.roles))
                .bind(&settings.territory)
                .bind(ttl_column(settings.access_token_ttl))
                .bind(settings.is_active)
                .bind(ts(now))
                .bind(joined(&settings.exchange_audiences))
                .bind(settings.keys.auth_method.as_str())
                .bind(&settings.keys.jwks)
                .bind(&settings.keys.jwks_uri)
                .bind(joined(&settings.redirect_uris))
                .run(&mut tx)
                .await?;
                commit(tx, effects).await
            }

            async fn client(&self, client_id: Uuid) -> StoreResult<Option<StoredClient>> {
                let sql = format!("SELECT {CLIENT_FIELDS} FROM clients WHERE id = $1");
                let row: Option<ClientRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(id(client_id))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.map(StoredClient::from))
            }

            async fn list_clients(
                &self,
                reach: Option<&str>,
                after: Option<Uuid>,
                limit: u32,
            ) -> StoreResult<Vec<Client>> {
                let sql = format!(
                    "SELECT {CLIENT_FIELDS} FROM clients \
                     WHERE (territory_code = $1 OR $1 IS NULL) AND ($2 IS NULL OR id > $2) \
                     ORDER BY id LIMIT $3"
                );
                let rows: Vec<ClientRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(reach)
                    .bind(after.map(id))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows
                    .into_iter()
                    .map(|row| StoredClient::from(row).client)
                    .collect())
            }

            async fn update_client(
                &self,
                client_id: Uuid,
                reach: Option<&str>,
                settings: &ClientSettings,
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let found = sqlx::query(
                    "UPDATE clients SET name = $3, scopes = $4, roles = $5, territory_code = $6, \
                     access_token_ttl_seconds = $7, is_active = $8, updated_at = $9, \
                     exchange_audiences = $10, token_endpoint_auth_method = $11, jwks = $12, \
                     jwks_uri = $13, redirect_uris = $14 \
                     WHERE id = $1 AND (territory_code = $2 OR $2 IS NULL)",
                )
                .bind(id(client_id))
                .bind(reach)
                .bind(&settings.name)
                .bind(joined(&settings.scopes))
                .bind(joined(&settings.roles))
                .bind(&settings.territory)
                .bind(ttl_column(settings.access_token_ttl))
                .bind(settings.is_active)
                .bind(ts(now))
                .bind(joined(&settings.exchange_audiences))
                .bind(settings.keys.auth_method.as_str())
                .bind(&settings.keys.jwks)
                .bind(&settings.keys.jwks_uri)
                .bind(joined(&settings.redirect_uris))
                .run(&mut tx)
                .await?;
                commit_found(tx, found, effects).await
            }

            async fn record_client_assertion(
                &self,
                client_id: Uuid,
                jti: &str,
                expires_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // RFC 7523 §3: expired rows can never be replayed (their assertions are
                // refused as expired), so they go; a row of this jti that has expired with
                // them frees the jti again.
                sqlx::query("DELETE FROM client_assertions WHERE expires_at <= $1")
                    .bind(ts(now))
                    .run(&mut tx)
                    .await?;
                // The primary key decides "used": a second insert of the jti finds a row.
                let inserted = sqlx::query(
                    "INSERT INTO client_assertions (client_id, jti, expires_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING",
                )
                .bind(id(client_id))
                .bind(jti)
                .bind(ts(expires_at))
                .run(&mut tx)
                .await?;
                commit(tx, &Effects::none()).await?;
                Ok(inserted > 0)
            }

            async fn delete_client(
                &self,
                client_id: Uuid,
                reach: Option<&str>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let found = sqlx::query(
                    "DELETE FROM clients WHERE id = $1 AND (territory_code = $2 OR $2 IS NULL)",
                )
                .bind(id(client_id))
                .bind(reach)
                .run(&mut tx)
                .await?;
                commit_found(tx, found, effects).await
            }

            async fn rotate_client_secret(
                &self,
                client_id: Uuid,
                reach: Option<&str>,
                secret_hash: &[u8],
                previous_until: DateTime<Utc>,
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // The secret being replaced stays valid for the overlap; one replaced earlier
                // (a second rotation inside an overlap) stops at once.
                let found = sqlx::query(
                    "UPDATE clients SET previous_secret_hash = secret_hash, \
                     previous_secret_expires_at = $4, secret_hash = $3, updated_at = $5 \
                     WHERE id = $1 AND (territory_code = $2 OR $2 IS NULL)",
                )
                .bind(id(client_id))
                .bind(reach)
                .bind(secret_hash)
                .bind(ts(previous_until))
                .bind(ts(now))
                .run(&mut tx)
                .await?;
                commit_found(tx, found, effects).await
            }
        }
    };
}
pub(crate) use client_store;
