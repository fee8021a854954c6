//! A small service protected by auth-service tokens: a public route, a route for any signed-in
//! user, an admin-only route, a revocation-sensitive route that asks auth-service, and routes
//! for other services (a client's token with a scope; online, an API key too).
//!
//! ```text
//! cargo run -p auth-service &                       # auth-service on :8080
//! cargo run -p auth-client --example protected_service
//! TOKEN=$(curl -s localhost:8080/api/auth/signup -H 'content-type: application/json' \
//!   -d '{"email":"ada@example.com","username":"ada","password":"correct horse battery staple"}' \
//!   | jq -r .access_token)
//! curl -H "Authorization: Bearer $TOKEN" localhost:3000/me
//! ```
//!
//! Settings (environment): `AUTH_SERVICE_URL` (default `http://127.0.0.1:8080`),
//! `AUTH_ISSUER` (default `http://localhost:8080`, auth-service's default public URL),
//! `AUTH_AUDIENCE` (default `auth-service`), `LISTEN` (default `127.0.0.1:3000`).

use std::time::Duration;

use auth_client::{
    Admin, AuthUser, Online, OnlineAuthUser, RequireRole, RequireScope, Scope, Verifier,
    VerifierConfig,
};
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The example's state: the verifier, and whatever else a real service keeps.
#[derive(Clone)]
pub struct AppState {
    verifier: Verifier,
}

/// Tells the auth-client extractors where the verifier is.
impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Callers that may read orders: services granted `orders:read`.
pub struct OrdersRead;

impl Scope for OrdersRead {
    const NAME: &'static str = "orders:read";
}

/// The routes of the example service.
pub fn router(verifier: Verifier) -> Router {
    Router::new()
        .route("/public", get(public))
        .route("/me", get(me))
        .route("/admin/reports", get(admin_reports))
        .route("/payments", post(create_payment))
        .route("/orders", get(list_orders))
        .route("/orders/export", post(export_orders))
        .with_state(AppState { verifier })
}

/// Anyone.
async fn public() -> Json<Value> {
    Json(json!({ "hello": "world" }))
}

/// Any signed-in user; verified offline, no call to auth-service.
async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({ "user_id": user.sub, "username": user.username, "roles": user.roles }))
}

/// Only holders of the `admin` role; others get 403 `forbidden`.
async fn admin_reports(admin: RequireRole<Admin>) -> Json<Value> {
    Json(json!({ "reports": [], "requested_by": admin.username }))
}

/// Must not run for a session that has ended: asks auth-service about the token.
async fn create_payment(user: OnlineAuthUser) -> Json<Value> {
    Json(json!({ "paid_by": user.sub, "session_id": user.sid }))
}

/// Other services with `orders:read`, verified offline.
async fn list_orders(caller: RequireScope<OrdersRead>) -> Json<Value> {
    Json(json!({ "orders": [], "caller": caller.sub, "client_id": caller.client_id }))
}

/// The same scope checked online: a deactivated client is refused at once, and API keys
/// (`ask_…`, which only auth-service can check) are accepted.
async fn export_orders(caller: RequireScope<OrdersRead, Online>) -> Json<Value> {
    Json(json!({ "exported_for": caller.sub, "kind": format!("{:?}", caller.kind()) }))
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,auth_client=debug".into()),
        )
        .init();
    let verifier = Verifier::new(VerifierConfig::new(
        setting("AUTH_SERVICE_URL", "http://127.0.0.1:8080"),
        setting("AUTH_ISSUER", "http://localhost:8080"),
        setting("AUTH_AUDIENCE", "auth-service"),
    ))?;
    // Start even when auth-service is not up yet: keys are fetched on first use.
    if let Err(error) = verifier.refresh().await {
        tracing::warn!(%error, "auth-service keys not loaded yet");
    }
    verifier.spawn_background_refresh(Duration::from_secs(300));
    let listener = tokio::net::TcpListener::bind(setting("LISTEN", "127.0.0.1:3000")).await?;
    tracing::info!(address = %listener.local_addr()?, "protected service listening");
    axum::serve(listener, router(verifier)).await?;
    Ok(())
}
