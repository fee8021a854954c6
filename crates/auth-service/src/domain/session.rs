//! Sessions: one per login on one device, with idle and absolute expiry (SPEC §3).

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::device::Device;

/// Why a session ended; kept with the ended session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    Terminated,
    Expired,
    Idle,
    Reuse,
    PasswordReset,
    Admin,
    Evicted,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Terminated => "terminated",
            EndReason::Expired => "expired",
            EndReason::Idle => "idle",
            EndReason::Reuse => "reuse",
            EndReason::PasswordReset => "password_reset",
            EndReason::Admin => "admin",
            EndReason::Evicted => "evicted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            EndReason::Logout,
            EndReason::Terminated,
            EndReason::Expired,
            EndReason::Idle,
            EndReason::Reuse,
            EndReason::PasswordReset,
            EndReason::Admin,
            EndReason::Evicted,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == raw)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub device: Device,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<EndReason>,
    /// How the session was authenticated (RFC 8176 `amr` values, SPEC §10).
    pub amr: Vec<String>,
    /// The scopes an authorization code granted the session, space-separated (SPEC §11);
    /// `None` for a login.
    pub scope: Option<String>,
}

impl Session {
    /// Why the session is no longer usable at `now`, if it is not.
    pub fn lapsed(&self, now: DateTime<Utc>) -> Option<EndReason> {
        if let Some(reason) = self.end_reason {
            return Some(reason);
        }
        if self.ended_at.is_some() {
            return Some(EndReason::Terminated);
        }
        if now >= self.expires_at {
            return Some(EndReason::Expired);
        }
        if now >= self.idle_expires_at {
            return Some(EndReason::Idle);
        }
        None
    }
}

/// What the hot path needs to accept a bearer token: the session's state, whether the key
/// that signed the token has been revoked since, and the session's user as stored now.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub user: super::user::User,
    pub ended: bool,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub key_revoked: bool,
}

impl SessionState {
    pub fn lapsed(&self, now: DateTime<Utc>) -> Option<EndReason> {
        if self.ended {
            Some(EndReason::Terminated)
        } else if now >= self.expires_at {
            Some(EndReason::Expired)
        } else if now >= self.idle_expires_at {
            Some(EndReason::Idle)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_round_trip() {
        for reason in [
            "logout",
            "terminated",
            "expired",
            "idle",
            "reuse",
            "password_reset",
            "admin",
            "evicted",
        ] {
            assert_eq!(
                EndReason::parse(reason).map(EndReason::as_str),
                Some(reason)
            );
        }
        assert!(EndReason::parse("bored").is_none());
    }
}
