//! Use cases: the only code that decides. HTTP (and later gRPC) call these.

pub mod accounts;
pub mod context;
pub mod keys;
pub mod sessions;

use std::sync::Arc;

pub use context::{Context, RequestContext, TokenPair};

/// All use cases, sharing one context.
#[derive(Clone)]
pub struct Services {
    pub accounts: accounts::Accounts,
    pub sessions: sessions::Sessions,
    pub keys: keys::Keys,
}

impl Services {
    pub fn new(context: &Arc<Context>) -> Self {
        Self {
            accounts: accounts::Accounts::new(context.clone()),
            sessions: sessions::Sessions::new(context.clone()),
            keys: context.keys.clone(),
        }
    }
}
