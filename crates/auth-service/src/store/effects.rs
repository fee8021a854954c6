//! What a write records alongside its change (SPEC §6): outbox events, audit entries, and the
//! builders a store calls inside its transaction once it knows the rows involved.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::User;

use super::Territory;

/// Events and audit entries written in the same transaction as the change they describe
/// (SPEC §6: the transactional outbox).
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub events: Vec<OutboxEvent>,
    pub audit: Vec<AuditEntry>,
}

impl Effects {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn and(mut self, other: Effects) -> Self {
        self.events.extend(other.events);
        self.audit.extend(other.audit);
        self
    }
}

/// One outbox row: the full event envelope, ordered per user by insertion.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub event_type: &'static str,
    pub user_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub envelope: serde_json::Value,
}

/// One audit row.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
}

/// Builds the effects of ending the sessions whose ids a bulk change found, inside its transaction.
pub type EndedEffects<'a> = &'a (dyn Fn(&[Uuid]) -> Effects + Send + Sync);

/// Builds the events of a change to a session found inside its statement, from the session's
/// id and its user's id (events only: on PostgreSQL that statement writes them itself).
pub type SessionEvents<'a> = &'a (dyn Fn(Uuid, Uuid) -> Vec<OutboxEvent> + Send + Sync);

/// Builds the effects of a change whose user, and the sessions it ended, are only known
/// inside its transaction.
pub type UserEffects<'a> = &'a (dyn Fn(Uuid, &[Uuid]) -> Effects + Send + Sync);

/// Builds the effects of an administrator's change once the transaction knows the user before
/// and after it, and which sessions it ended.
pub type ChangeEffects<'a> = &'a (dyn Fn(&User, Option<&User>, &[Uuid]) -> Effects + Send + Sync);

/// Builds the effects of a territory change from the rows before and after it.
pub type TerritoryEffects<'a> = &'a (dyn Fn(&Territory, &Territory) -> Effects + Send + Sync);

/// Builds the effects of a change from ids or names only known inside its transaction
/// (the holders of a deleted role, the roles a user held before).
pub type FoundEffects<'a, T> = &'a (dyn Fn(&[T]) -> Effects + Send + Sync);

/// Builds the effects of setting a user's roles in a territory from whether the user joined
/// it and the roles held there before.
pub type RolesEffects<'a> = &'a (dyn Fn(bool, &[String]) -> Effects + Send + Sync);
