//! What a write records alongside its change (SPEC §6): outbox events, audit entries, and the
//! builders a store calls inside its transaction once it knows the rows involved.

use chrono::{DateTime, Utc};
use uuid::Uuid;

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

    /// Whether the change these effects describe may change what a bearer check reads
    /// (issue 20: the session cache is cleared once it commits). Fail-safe: every event and
    /// audit action not listed as leaving session state alone counts, so a new kind of change
    /// clears the cache until someone lists it here.
    pub fn may_change_session_state(&self) -> bool {
        self.events
            .iter()
            .any(|event| !LEAVE_SESSION_STATE_EVENTS.contains(&event.event_type))
            || self
                .audit
                .iter()
                .any(|entry| !LEAVE_SESSION_STATE_AUDIT.contains(&entry.action))
    }
}

/// Events of changes that leave every existing session's state (alive, deadlines only moved
/// later, user, roles, key) as it was: a new user or session, activity, a rotation, a failed
/// second factor. Frequent ones, so a login flood does not empty the cache.
const LEAVE_SESSION_STATE_EVENTS: &[&str] = &[
    "auth:user.registered",
    "auth:user.login",
    "auth:session.created",
    "auth:session.activity_updated",
    "auth:token.refreshed",
    "auth:token.exchanged",
    "auth:mfa.failed",
    "auth:api_key.created",
];

/// Audit actions of the same kind of changes.
const LEAVE_SESSION_STATE_AUDIT: &[&str] = &[
    "signup",
    "login_success",
    "login_failure",
    "password_reset_requested",
    "email_verification_sent",
    "mfa_failure",
    // A client's token has no session; its revocation is read from the store on every check.
    "client_token_revoked",
    "api_key_created",
    "token_exchanged",
];

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

/// Builds what a write records from what only its transaction finds out — the sessions it
/// ended, the rows before and after it, the holders of what it removed — called inside that
/// transaction, its result written there. `Found` is what the store hands over (say `[Uuid]`
/// for ended sessions, or `(User, Option<User>, Vec<Uuid>)` for a user before and after a
/// change and the sessions it ended); `Out` is `Effects`, or only events (`Vec<OutboxEvent>`)
/// where a single statement writes them (PostgreSQL's refresh rotation).
pub type EffectsOf<'a, Found, Out = Effects> = &'a (dyn Fn(&Found) -> Out + Send + Sync);
