//! Use cases: the only code that decides. HTTP and gRPC both call these.

pub mod accounts;
pub mod admin;
pub mod api_keys;
mod assertion;
pub mod audit;
mod authority;
pub mod authorize;
mod client_jwks;
mod client_keys;
pub mod clients;
pub mod context;
pub mod directory;
mod exchange;
pub mod keys;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod readiness;
pub mod recovery;
pub mod revocation;
pub mod sessions;
mod throttle;

use std::sync::Arc;

pub use context::{Context, RequestContext, TokenPair};

/// All use cases, sharing one context.
#[derive(Clone)]
pub struct Services {
    pub accounts: accounts::Accounts,
    pub admin: admin::Admin,
    pub api_keys: api_keys::ApiKeys,
    pub directory: directory::Directory,
    pub audit: audit::Audit,
    pub sessions: sessions::Sessions,
    pub recovery: recovery::Recovery,
    pub mfa: mfa::Mfa,
    pub clients: clients::Clients,
    pub passkeys: passkeys::Passkeys,
    pub keys: keys::Keys,
    pub limiter: crate::limits::Limiter,
    pub mailer: crate::mail::Mailer,
}

impl Services {
    pub fn new(context: &Arc<Context>) -> Self {
        context::register_metrics();
        // One instance, shared with clients' introspection: one cache, one record of uses.
        let api_keys = api_keys::ApiKeys::new(context.clone());
        Self {
            accounts: accounts::Accounts::new(context.clone()),
            admin: admin::Admin::new(context.clone()),
            directory: directory::Directory::new(context.clone()),
            audit: audit::Audit::new(context.clone()),
            sessions: sessions::Sessions::new(context.clone()),
            recovery: recovery::Recovery::new(context.clone()),
            mfa: mfa::Mfa::new(context.clone()),
            clients: clients::Clients::new(context.clone(), api_keys.clone()),
            api_keys,
            passkeys: passkeys::Passkeys::new(context.clone()),
            keys: context.keys.clone(),
            limiter: context.limiter.clone(),
            mailer: context.mailer.clone(),
        }
    }
}
