//! Who a valid API key acts for (SPEC §11): the key and its owner as stored now.

use crate::domain::api_key::ApiKey;
use crate::domain::client::Client;
use crate::domain::User;

/// Who a valid key acts for, as stored now.
#[derive(Debug, Clone)]
pub struct KeyCaller {
    pub key: ApiKey,
    pub owner: KeyHolder,
}

/// A key's owner as it is now: a user (not deleted, active, with its roles here) or a client
/// (active, with the roles it holds on this deployment).
#[derive(Debug, Clone)]
pub enum KeyHolder {
    User(User),
    Client { client: Client, roles: Vec<String> },
}

impl KeyCaller {
    /// The owner's roles now (SPEC §5: introspection says the roles stored now).
    pub fn roles(&self) -> &[String] {
        match &self.owner {
            KeyHolder::User(user) => &user.roles,
            KeyHolder::Client { roles, .. } => roles,
        }
    }
}
