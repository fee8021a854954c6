//! SPEC §11: the one list of the bearer routes an API key may call, each with the scope of
//! this service's vocabulary (`domain::api_key::scopes`) it needs. Every other bearer route
//! answers a key 403 `session_required` — above all those that change credentials or second
//! factors (password, email, MFA, passkeys, API key creation, client secrets, users' passwords,
//! logout, sessions) — and a key without the scope 403 `insufficient_scope`. The
//! `CurrentSession` extractor applies it, and the OpenAPI document says so on each route.

use axum::http::Method;

use crate::domain::api_key::scopes::{ADMIN_READ, ADMIN_WRITE, AUTH_READ};
use crate::domain::api_key::ApiKey;
use crate::error::Error;

/// `(method, route, scope)` as registered in `http/mod.rs`. The admin routes further need
/// the key's owner to hold `admin` (globally, or in a territory for its territory's part),
/// as they do for a session.
pub const API_KEY_ROUTES: &[(Method, &str, &str)] = &[
    (Method::GET, "/api/auth/me", AUTH_READ),
    (Method::GET, "/api/auth/api-keys", AUTH_READ),
    (Method::GET, "/api/auth/passkeys", AUTH_READ),
    (Method::GET, "/api/users", ADMIN_READ),
    (Method::GET, "/api/users/id/{id}", ADMIN_READ),
    (Method::GET, "/api/users/{id}", ADMIN_READ),
    (Method::GET, "/api/users/email/{email}", ADMIN_READ),
    (Method::GET, "/api/roles", ADMIN_READ),
    (Method::GET, "/api/territories", ADMIN_READ),
    (Method::GET, "/api/audit", ADMIN_READ),
    (Method::GET, "/api/clients", ADMIN_READ),
    (Method::GET, "/api/clients/{id}", ADMIN_READ),
    (Method::GET, "/api/clients/{id}/api-keys", ADMIN_READ),
    (Method::POST, "/api/roles", ADMIN_WRITE),
    (Method::DELETE, "/api/roles/{name}", ADMIN_WRITE),
    (Method::POST, "/api/territories", ADMIN_WRITE),
    (Method::PATCH, "/api/territories/{code}", ADMIN_WRITE),
    (
        Method::PUT,
        "/api/users/{id}/territories/{code}",
        ADMIN_WRITE,
    ),
    (
        Method::DELETE,
        "/api/users/{id}/territories/{code}",
        ADMIN_WRITE,
    ),
    (
        Method::PUT,
        "/api/users/{id}/territories/{code}/roles",
        ADMIN_WRITE,
    ),
    (Method::DELETE, "/api/users/{id}", ADMIN_WRITE),
    (Method::PATCH, "/api/clients/{id}", ADMIN_WRITE),
    (Method::DELETE, "/api/clients/{id}", ADMIN_WRITE),
    (
        Method::DELETE,
        "/api/clients/{id}/api-keys/{key_id}",
        ADMIN_WRITE,
    ),
];

/// The scope a key needs to call `method` on `route`; `None`: no key may call it.
pub fn scope_for(method: &Method, route: &str) -> Option<&'static str> {
    API_KEY_ROUTES
        .iter()
        .find(|(allowed, path, _)| allowed == method && *path == route)
        .map(|(_, _, scope)| *scope)
}

/// Whether `key` may call `method` on `route` (`None`: an unmatched route, which no key may).
pub fn admit(method: &Method, route: Option<&str>, key: &ApiKey) -> Result<(), Error> {
    let scope = route
        .and_then(|route| scope_for(method, route))
        .ok_or(Error::SessionRequired)?;
    if key.has_scope(scope) {
        Ok(())
    } else {
        Err(Error::InsufficientScope { scope })
    }
}

/// What the OpenAPI document says beside a route's other 403 answers.
pub fn refusal(method: &Method, route: &str) -> String {
    match scope_for(method, route) {
        Some(scope) => {
            format!("`insufficient_scope`: an API key without the scope `{scope}` (SPEC §11)")
        }
        None => "`session_required`: an API key is not accepted here, only a session's \
                 access token (SPEC §11)"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::KeyOwner;

    fn key(scopes: &[&str]) -> ApiKey {
        ApiKey {
            id: uuid::Uuid::nil(),
            owner: KeyOwner::User(uuid::Uuid::nil()),
            name: "k".into(),
            prefix: "ask_abcdefgh".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            created_at: chrono::Utc::now(),
            expires_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_key_calls_only_listed_routes_with_their_scope() {
        let reader = key(&[AUTH_READ]);

        assert!(admit(&Method::GET, Some("/api/auth/me"), &reader).is_ok());
        assert!(matches!(
            admit(&Method::GET, Some("/api/users"), &reader),
            Err(Error::InsufficientScope { scope: ADMIN_READ })
        ));
        for (method, route) in [
            (Method::POST, "/api/auth/api-keys"),
            (Method::POST, "/api/auth/password/change"),
            (Method::PATCH, "/api/auth/me"),
            (Method::GET, "/api/auth/sessions"),
            (Method::POST, "/api/clients/{id}/secret"),
            (Method::PATCH, "/api/users/{id}"),
        ] {
            assert!(
                matches!(
                    admit(
                        &method,
                        Some(route),
                        &key(&[AUTH_READ, ADMIN_READ, ADMIN_WRITE])
                    ),
                    Err(Error::SessionRequired)
                ),
                "{method} {route}"
            );
        }
        assert!(matches!(
            admit(&Method::GET, None, &reader),
            Err(Error::SessionRequired)
        ));
    }
}
