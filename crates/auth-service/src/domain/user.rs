//! A user as the rest of the service sees it: never with a password hash.

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_verified: bool,
    pub is_active: bool,
    /// Global roles plus the roles held in this deployment's territory.
    pub roles: Vec<String>,
    /// Codes of the territories the user belongs to.
    pub territories: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user together with the stored password hash, for login only.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// The role every new user gets.
pub const DEFAULT_ROLE: &str = "user";

/// An administrator's change to a user; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub is_verified: Option<bool>,
    pub is_active: Option<bool>,
    /// Replaces the global roles.
    pub roles: Option<Vec<String>>,
    /// A new password hash (from a new password, or imported as is).
    pub password_hash: Option<String>,
}

impl UserPatch {
    /// Whether the change must end the user's sessions (SPEC §2).
    pub fn ends_sessions(&self) -> bool {
        self.is_active == Some(false) || self.password_hash.is_some()
    }

    /// SPEC §5: an email or password change, or a deactivation, voids the user's links.
    pub fn voids_links(&self) -> bool {
        self.ends_sessions() || self.email.is_some()
    }
}
