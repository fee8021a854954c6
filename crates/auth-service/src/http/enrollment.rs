//! SPEC §10 `auth.require_mfa_for_roles`: the one list of the bearer routes an
//! enrollment-only session may call. Every other bearer route answers it 403
//! `mfa_enrollment_required` (the `CurrentSession` extractor refuses it), and the OpenAPI
//! document says so on each of them.

use axum::http::Method;

/// `(method, route)` as registered in `http/mod.rs`. Enrolling and confirming TOTP is what
/// the session is for; `GET /api/auth/me` lets a client show whose account is enrolling;
/// logout ends it. A passkey is a second factor too, so registering one is enrolling.
pub const ENROLLMENT_ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/api/auth/mfa/totp"),
    (Method::POST, "/api/auth/mfa/totp/confirm"),
    (Method::POST, "/api/auth/passkeys/register/options"),
    (Method::POST, "/api/auth/passkeys/register/finish"),
    (Method::GET, "/api/auth/me"),
    (Method::POST, "/api/auth/logout"),
];

/// Whether an enrollment-only session may call `method` on the route `route`.
pub fn allows(method: &Method, route: &str) -> bool {
    ENROLLMENT_ROUTES
        .iter()
        .any(|(allowed, path)| allowed == method && *path == route)
}

/// What the OpenAPI document says beside a route's other 403 answers.
pub const REFUSAL: &str = "`mfa_enrollment_required`: the session may only enroll a second \
    factor (`auth.require_mfa_for_roles`); enroll it, then log in again";
