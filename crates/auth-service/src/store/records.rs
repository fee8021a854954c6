//! The rows and inputs the store traits exchange: new users, sessions and tokens, refresh
//! rotations, signing keys, user queries and patches, roles, territories and audit records.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Device, User};

pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub is_verified: bool,
    pub created_at: DateTime<Utc>,
}

pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub device: Device,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    /// How the session was authenticated (RFC 8176 `amr` values); refresh keeps them.
    pub amr: Vec<String>,
    /// The scopes an authorization code granted, space-separated (SPEC §11); `None` for a
    /// login. Refresh keeps them.
    pub scope: Option<String>,
}

pub struct NewRefreshToken {
    pub id: Uuid,
    pub session_id: Uuid,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token did.
/// What came of removing a passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    /// No such passkey of this user.
    NotFound,
    /// It turned out to be the user's last second factor (another removal committed first);
    /// nothing was removed: that needs a fresh factor.
    WasLastFactor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live and is now spent; the successor was stored. `user` is the
    /// session's user as stored (global roles plus those of the given territory), `None`
    /// when deleted.
    Rotated {
        session_id: Uuid,
        user_id: Uuid,
        user: Option<Box<User>>,
        /// How the session was authenticated (SPEC §10) and the scopes an authorization code
        /// granted it (SPEC §11), read by the rotation itself, so the successor's access token
        /// needs no second read of the session.
        amr: Vec<String>,
        scope: Option<String>,
    },
    /// The token had already been spent (a retry or a reuse: the caller decides by time).
    Spent {
        session_id: Uuid,
        user_id: Uuid,
        spent_at: DateTime<Utc>,
        /// The token's own successor while that is still live (neither spent nor expired):
        /// then it is the session's newest token. `None` once the family has moved on.
        live_successor: Option<Uuid>,
        session_active: bool,
    },
    /// The token expired, or its session is no longer active.
    Lapsed { session_id: Uuid, user_id: Uuid },
    /// No such token.
    Unknown,
}

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

/// A single-use token (reset or verification link); only its SHA-256 is stored.
pub struct NewOneTimeToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub purpose: TokenPurpose,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A signing key row.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    pub public_jwk: String,
    pub private_key: Vec<u8>,
    pub sealed: bool,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl StoredKey {
    /// The key that signs: neither retired nor revoked.
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none() && self.revoked_at.is_none()
    }

    /// Whether the row still holds its private half (a wiped key holds none).
    pub fn has_private_half(&self) -> bool {
        !self.private_key.is_empty()
    }
}

/// A page request of `list_users`.
pub struct UserQuery<'a> {
    pub search: Option<&'a str>,
    /// The `(created_at, id)` of the last user of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
    /// Roles reported are the global ones plus those held in this territory.
    pub territory: Option<&'a str>,
    /// Only members of this territory (a territory admin's listing).
    pub member_of: Option<&'a str>,
}

/// What a change to a user's place in a territory found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Done; `changed` is false when there was nothing to do (no effects were written).
    Done {
        changed: bool,
    },
    UnknownUser,
    UnknownTerritory,
}

/// Which page of the audit log to read: newest first, every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<Uuid>,
    pub action: Option<String>,
    /// Keyset: only entries with a smaller id (ids are UUIDv7, so older ones).
    pub before: Option<Uuid>,
    pub limit: u32,
    /// Only entries about users who are members of this territory (a territory admin's view).
    pub member_of: Option<String>,
}

/// The emails and usernames of a batch that users not deleted already hold, as stored
/// (emails lowercase, usernames as their owners spelled them).
#[derive(Debug, Clone, Default)]
pub struct TakenLogins {
    pub emails: Vec<String>,
    pub usernames: Vec<String>,
}

/// An unpublished outbox event the relay has claimed (SPEC §6).
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// Insertion order; events of one user go out in this order.
    pub seq: i64,
    pub id: Uuid,
    pub event_type: String,
    pub user_id: Option<Uuid>,
    /// The envelope as JSON text, published as is.
    pub payload: String,
    /// Failed publish attempts so far.
    pub attempts: i32,
}

/// A failed webhook delivery attempt: why, when, when to retry, and the age past which the
/// event is given up instead (it occurred before `give_up_before`).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryFailure<'a> {
    pub error: &'a str,
    pub now: DateTime<Utc>,
    pub retry_at: DateTime<Utc>,
    pub give_up_before: DateTime<Utc>,
}

/// A user's TOTP factor as kept: the secret sealed with the key-encryption key.
pub struct TotpFactor {
    pub sealed_secret: Vec<u8>,
    /// False while the enrollment waits for its first code.
    pub confirmed: bool,
    /// The last time step a code was accepted for; codes at or below it are refused.
    pub last_used_step: Option<i64>,
}

/// The password step of a login with a second factor (SPEC §10): only the token's hash is kept.
pub struct NewMfaChallenge {
    pub id: Uuid,
    pub user_id: Uuid,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A registered passkey as kept: the library's credential (JSON) beside what is queried.
pub struct StoredPasskey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The library's `Passkey`, serialised: public key, counter, backup state.
    pub credential: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A passkey to register.
pub struct NewPasskey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub credential_id: Vec<u8>,
    pub name: String,
    pub credential: String,
    pub created_at: DateTime<Utc>,
}

/// The state of a WebAuthn ceremony between its options and its finishing step (SPEC §10):
/// single use, short-lived.
pub struct Ceremony {
    pub id: Uuid,
    /// `register`, `login` or `mfa` (`domain::passkey::CeremonyPurpose`).
    pub purpose: &'static str,
    /// The user it is bound to; none for a usernameless login.
    pub user_id: Option<Uuid>,
    /// For a second-factor ceremony, the hash of the `mfa_token` it belongs to.
    pub mfa_token_hash: Option<Vec<u8>>,
    /// The library's state, serialised.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A ceremony taken back for its finishing step.
pub struct TakenCeremony {
    pub user_id: Option<Uuid>,
    pub state: String,
}
