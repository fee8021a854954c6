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
