//! auth-service: the authentication, session and user service of the platform.
//!
//! A tour, outside in (the tiers and their rules: `docs/architecture.md`):

/// Wiring: builds the concrete store, limiter, mailer and publishers and serves both ports.
pub mod app;
/// What both transports learn about a caller: client address behind proxies, user agent, ids.
pub mod caller;
/// The command line (`serve`, `migrate`, `config`, `openapi`, `keys`, `users`).
pub mod cli;
/// The only caller of the system clock; tests move a manual one.
pub mod clock;
/// The configuration tree and its embedded defaults.
pub mod config;
/// Password hashing, JWT signing and verification, key sealing, opaque tokens.
pub mod crypto;
/// Plain types and pure rules: no I/O, no async, no database, no transport.
pub mod domain;
/// The one error type of the use cases and its stable codes.
pub mod error;
/// The outbox relay and the brokers it publishes to.
pub mod events;
/// The gRPC transport: `auth.v1.AuthService` over the use cases.
pub mod grpc;
/// The HTTP transport: routes, extractors, views, the accept loop.
pub mod http;
/// Reading a user import file (CSV or JSON lines).
pub mod import;
/// Rate limits and the login lockout, in process or in Redis.
pub mod limits;
/// Outgoing mail: rendering and transports.
pub mod mail;
/// The use cases: the only code that decides; both transports call them.
pub mod services;
/// What both transports' handlers reach: use cases, configuration, readiness; never the store.
pub mod state;
/// The storage contract and its two backends, PostgreSQL and SQLite.
pub mod store;
/// Logs and metrics.
pub mod telemetry;

pub use app::App;
pub use config::Config;
