//! The conformance suite: every behaviour test runs on SQLite and on PostgreSQL.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed step must fail the test loudly"
)]

mod support;

mod admin;
mod api_keys;
mod audit;
mod auth;
mod authority;
mod authorize;
mod browser;
mod client_assertions;
mod clients;
mod directory;
mod docs;
mod events;
mod grants;
mod grpc;
mod hardening;
mod kafka;
mod keys;
mod layers;
mod limiter;
mod logins;
mod mail;
mod mfa;
mod mfa_cost;
mod mfa_roles;
mod oauth;
mod oauth_client;
mod oauth_revoke;
mod observability;
mod passkeys;
mod process;
mod rabbitmq;
mod security;
mod session_cache;
mod sessions;
mod shared_limits;
mod skeleton;
mod storage;
mod tokens;
mod verifiers;
mod webhooks;
