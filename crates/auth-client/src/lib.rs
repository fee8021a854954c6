//! Talk to auth-service from another Rust service (SPEC §8, §11): check the tokens callers
//! bring, and get a token to call other services with.
//!
//! **Incoming calls.** A [`Verifier`] fetches auth-service's public keys
//! (`/.well-known/jwks.json`), caches them, and verifies access tokens offline: the key named
//! by the token's `kid`, that key's own algorithm only (never `none` or `HS*`), the signature,
//! `iss`, `aud`, `exp` and `nbf`. The [`AuthUser`] extractor does this for axum routes,
//! [`RequireRole`] adds a role guard, and [`OnlineAuthUser`] also asks auth-service whether the
//! token's session is still active, for routes that must see a logout at once. Service
//! identities (OAuth 2 clients, SPEC §11) are let in by [`RequireScope`] (or [`AuthCaller`]);
//! API keys (`ask_…`) by `RequireScope<_, Online>`, since only auth-service can check a key.
//!
//! **Outgoing calls.** A [`TokenSource`] gets the service's own client-credentials token from
//! `POST /oauth/token`, caches it, renews it before it expires with one request however many
//! callers wait, and backs off after failures. Use it with reqwest
//! ([`TokenSource::authorize`]) or as a tower layer ([`TokenSource::layer`]) for tonic or hyper.
//!
//! ```no_run
//! use auth_client::{TokenSource, TokenSourceConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tokens = TokenSource::new(
//!     TokenSourceConfig::new("http://auth-service:8080", "0193…client-id", "…secret")
//!         .scopes(["orders:read"]),
//! )?;
//! let http = reqwest::Client::new();
//! let answer = tokens
//!     .authorize(http.get("http://orders:8080/api/orders"))
//!     .await?
//!     .send()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Checking tokens:
//!
//! ```no_run
//! use axum::routing::{get, post};
//! use axum::Router;
//! use auth_client::{Admin, AuthUser, OnlineAuthUser, RequireRole, Verifier, VerifierConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::new(VerifierConfig::new(
//!     "http://auth-service:8080",   // where this service reaches auth-service
//!     "https://auth.example.com",   // the `iss` it writes (its public URL by default)
//!     "auth-service",               // the `aud` it writes
//! ))?;
//! // Optional: warm the key cache, and reread the keys every 5 minutes.
//! if let Err(error) = verifier.refresh().await {
//!     tracing::warn!(%error, "auth-service keys not loaded yet; will retry on first use");
//! }
//! verifier.spawn_background_refresh(std::time::Duration::from_secs(300));
//!
//! let app: Router = Router::new()
//!     .route("/me", get(|user: AuthUser| async move { user.username.clone().unwrap_or_default() }))
//!     .route("/admin", get(|_: RequireRole<Admin>| async { "hello admin" }))
//!     .route("/pay", post(|user: OnlineAuthUser| async move { user.sub.to_string() }))
//!     .with_state(verifier);
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! If the router's state is your own struct, see [`mod@axum`] for the `FromRef` impl that
//! lets the extractors find the verifier. `examples/protected_service.rs` is a complete
//! service.
//!
//! # Keys, refreshes and outages
//!
//! - A token naming a `kid` that is not cached triggers a JWKS fetch, at most once per
//!   [`VerifierConfig::min_refresh_interval`] (30 s by default) however many such tokens
//!   arrive, and one fetch at a time: concurrent requests wait for the fetch in flight. So a
//!   rotated key is picked up by its first token, and a flood of forged `kid`s costs the auth
//!   service one request per interval.
//! - When the JWKS endpoint is down, cached keys keep verifying; tokens naming other keys get
//!   [`AuthError::JwksUnavailable`] (503), not a 401, since they may be fine.
//! - A key auth-service stops publishing (revoked) is dropped at the next successful fetch:
//!   [`Verifier::refresh`], the background refresh, or a miss.
//! - Clock skew up to [`VerifierConfig::leeway`] (10 s by default, at most 30 s) is tolerated.
//!
//! # Online check
//!
//! Offline verification trusts a token until it expires (15 minutes by default). The online
//! check ([`Verifier::verify_online`], [`OnlineAuthUser`]) posts the token to auth-service's
//! `/api/auth/introspect` and refuses it with [`AuthError::Revoked`] once its session has
//! ended. auth-service's gRPC `ValidateToken` RPC is the gRPC equivalent; this crate uses HTTP.
//! The online check also reads API keys (SPEC §11), which are not JWTs: they are sent to
//! introspection as they are, while [`Verifier::verify`] refuses them with
//! [`AuthError::ApiKeyNeedsOnlineCheck`].

#![warn(missing_docs)]

pub mod axum;
mod bearer;
mod claims;
mod config;
mod error;
mod introspect;
mod jwks;
mod scope;
mod token_config;
mod token_endpoint;
mod token_source;
mod verifier;

pub use crate::axum::{
    bearer_token, Admin, AuthCaller, AuthUser, OnlineAuthUser, RequireRole, Role,
};
pub use bearer::{Bearer, BearerLayer, BoxError};
pub use claims::{Actor, Claims, TokenKind};
pub use config::{
    VerifierConfig, DEFAULT_HTTP_TIMEOUT, DEFAULT_LEEWAY, DEFAULT_MIN_REFRESH_INTERVAL, MAX_LEEWAY,
};
pub use error::{AuthError, ConfigError, OAuthErrorCode, Outcome, TokenError};
pub use introspect::Introspection;
pub use jwks::JwksStats;
pub use scope::{Check, Offline, Online, RequireScope, Scope};
pub use token_config::{Clock, TokenSourceConfig};
pub use token_source::{AccessToken, TokenSource, TokenSourceStats};
pub use verifier::Verifier;
