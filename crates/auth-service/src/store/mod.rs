//! The storage facade. The rest of the code talks to `Arc<dyn Store>` (the traits are in
//! `contract.rs`); `postgres/` and `sqlite/` implement it with runtime queries, chosen by the
//! database URL's scheme, and `shared/` holds what the two say alike. Files inside `store/`
//! import from the defining modules, never from this facade.

mod contract;
mod effects;
mod error;
mod fence;
pub mod postgres;
mod records;
mod shared;
pub mod sqlite;

/// Records the store exchanges with the use cases and the transports read; they are the
/// domain's (issue 15: HTTP never imports the store).
pub use crate::domain::audit::AuditRecord;
pub use crate::domain::directory::{Role, Territory, TerritoryPatch};
pub use crate::domain::user::UserPatch;
pub use contract::{
    AccountStore, AdminStore, ApiKeyStore, AuditStore, ClientStore, DirectoryStore, KeyStore,
    MfaStore, OutboxStore, PasskeyStore, RevocationStore, SessionStore, Store, UserStore,
};
pub use effects::{AuditEntry, Effects, EffectsOf, OutboxEvent};
pub use error::{StoreError, StoreResult, Unique};
pub use records::{
    AuditFilter, Ceremony, DeliveryFailure, MemberChange, NewMfaChallenge, NewOneTimeToken,
    NewPasskey, NewRefreshToken, NewSession, NewUser, PasskeyRemoval, PendingEvent, Rotation,
    StoredKey, StoredPasskey, TakenCeremony, TakenLogins, TokenPurpose, TotpFactor, UserQuery,
};

use std::sync::Arc;

use crate::config::DatabaseConfig;

/// Opens the store named by the URL's scheme.
pub async fn connect(config: &DatabaseConfig) -> StoreResult<Arc<dyn Store>> {
    let url = config.url.expose();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(config).await?))
    } else {
        Ok(Arc::new(postgres::PgStore::connect(config).await?))
    }
}
