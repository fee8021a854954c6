//! Verify auth-service access tokens in another service (SPEC §8).
//!
//! A [`Verifier`] fetches auth-service's public keys (`/.well-known/jwks.json`), caches them,
//! and verifies access tokens offline: the key named by the token's `kid`, that key's own
//! algorithm only (never `none` or `HS*`), the signature, `iss`, `aud`, `exp` and `nbf`. The
//! [`AuthUser`] extractor does this for axum routes, [`RequireRole`] adds a role guard, and
//! [`OnlineAuthUser`] also asks auth-service whether the token's session is still active,
//! for routes that must see a logout at once.
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
//!     .route("/me", get(|user: AuthUser| async move { user.username.clone() }))
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

#![warn(missing_docs)]

pub mod axum;
mod claims;
mod config;
mod error;
mod introspect;
mod jwks;
mod verifier;

pub use crate::axum::{bearer_token, Admin, AuthUser, OnlineAuthUser, RequireRole, Role};
pub use claims::{Actor, Claims};
pub use config::{
    VerifierConfig, DEFAULT_HTTP_TIMEOUT, DEFAULT_LEEWAY, DEFAULT_MIN_REFRESH_INTERVAL, MAX_LEEWAY,
};
pub use error::{AuthError, ConfigError, Outcome};
pub use introspect::Introspection;
pub use jwks::JwksStats;
pub use verifier::Verifier;
