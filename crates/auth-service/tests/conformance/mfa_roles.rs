//! `auth.require_mfa_for_roles` (SPEC §10, issue 17): a holder of a listed role without a
//! second factor gets an enrollment-only session — no roles in the token, its own audience,
//! 403 `mfa_enrollment_required` outside the enrollment routes, inactive to introspection and
//! ValidateToken — until a login with the factor; everyone else is unaffected.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tonic::Code;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use auth_service::grpc::pb;

use crate::backend_tests;
use crate::support::grpc::{assert_failed, login_request, with_bearer};
use crate::support::passkey::SoftPasskey;
use crate::support::{code_of, with_admin, Account, Backend, TestApp, ADMIN};

const ENROLLMENT: &str = "mfa_enrollment_required";

/// An app whose bootstrap administrator ([`ADMIN`]) must have a second factor.
async fn strict_app(backend: Backend) -> TestApp {
    backend
        .app_with(|config| {
            with_admin(config);
            config.auth.require_mfa_for_roles = vec!["admin".to_owned()];
        })
        .await
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The code the authenticator app shows now (server clock).
fn code(app: &TestApp, totp: &Totp) -> String {
    totp.generate(u64::try_from(app.clock.now().timestamp()).unwrap())
        .to_string()
}

/// Enrolls and confirms TOTP with `account`'s own password; the clock then moves a step on.
async fn enroll(app: &TestApp, account: &Account) -> Totp {
    let started = app
        .post_as(
            "/api/auth/mfa/totp",
            &account.access_token,
            &json!({ "password": account.password }),
        )
        .await;
    assert_eq!(started.status(), 200);
    let body: Value = started.json().await.unwrap();
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(body["secret"].as_str().unwrap()).unwrap())
        .build()
        .unwrap();
    let confirmed = app
        .post_as(
            "/api/auth/mfa/totp/confirm",
            &account.access_token,
            &json!({ "code": code(app, &totp) }),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    app.clock.advance(Duration::from_secs(30));
    totp
}

fn holds_admin(roles: &Value) -> bool {
    roles.as_array().unwrap().iter().any(|role| role == "admin")
}

async fn introspected(app: &TestApp, token: &str) -> Value {
    app.post_json("/api/auth/introspect", &json!({ "token": token }))
        .await
        .json()
        .await
        .unwrap()
}

async fn login(app: &TestApp, username: &str, password: &str) -> Value {
    let response = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": username, "password": password }),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn a_listed_role_without_a_factor_gets_an_enrollment_only_session(backend: Backend) {
    let app = strict_app(backend).await;

    let body = login(&app, ADMIN.1, ADMIN.2).await;
    let token = body["access_token"].as_str().unwrap();
    let users = app.get_as("/api/users", token).await;
    let roles = app.get_as("/api/roles", token).await;
    let sessions = app.get_as("/api/auth/sessions", token).await;
    let me = app.get_as("/api/auth/me", token).await;
    let introspection = introspected(&app, token).await;
    let refreshed: Value = app
        .refresh(body["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(body["mfa_enrollment_required"], true);
    let claims = claims(token);
    assert_eq!(claims["roles"], json!([]), "no role in an enrollment token");
    assert_eq!(claims["scope"], "mfa_enrollment");
    assert_eq!(claims["aud"], "auth-service:mfa-enrollment");
    assert_eq!(claims["amr"], json!(["pwd"]));
    for refused in [users, roles, sessions] {
        assert_eq!(refused.status(), 403);
        assert_eq!(code_of(refused).await, ENROLLMENT);
    }
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], ADMIN.1);
    assert_eq!(introspection, json!({ "active": false }));
    assert_eq!(refreshed["mfa_enrollment_required"], true, "{refreshed}");
    let again = self::claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(
        (&again["roles"], &again["scope"]),
        (&json!([]), &json!("mfa_enrollment"))
    );
}

async fn after_enrolling_the_next_login_asks_for_the_factor_and_gives_full_tokens(
    backend: Backend,
) {
    let app = strict_app(backend).await;
    let admin = app.admin().await;

    let totp = enroll(&app, &admin).await;
    let same_session = app.get_as("/api/users", &admin.access_token).await;
    let refreshed: Value = app
        .refresh(&admin.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let challenge = login(&app, ADMIN.1, ADMIN.2).await;
    let verified = app
        .post_json(
            "/api/auth/mfa/verify",
            &json!({
                "mfa_token": challenge["mfa_token"],
                "method": "totp",
                "code": code(&app, &totp),
            }),
        )
        .await;

    assert_eq!(
        same_session.status(),
        403,
        "confirming does not upgrade a session"
    );
    assert_eq!(code_of(same_session).await, ENROLLMENT);
    assert_eq!(
        refreshed["mfa_enrollment_required"], true,
        "nor does a refresh"
    );
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(verified.status(), 200);
    let body: Value = verified.json().await.unwrap();
    assert!(body.get("mfa_enrollment_required").is_none(), "{body}");
    let token = body["access_token"].as_str().unwrap();
    let claims = claims(token);
    assert!(holds_admin(&claims["roles"]), "{claims}");
    assert_eq!(claims["aud"], "auth-service");
    assert!(claims.get("scope").is_none());
    assert_eq!(app.get_as("/api/users", token).await.status(), 200);
    let introspection = introspected(&app, token).await;
    assert_eq!(introspection["active"], true);
    assert!(holds_admin(&introspection["roles"]), "{introspection}");
    let refreshed: Value = app
        .refresh(body["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert!(holds_admin(
        &self::claims(refreshed["access_token"].as_str().unwrap())["roles"]
    ));
}

async fn a_user_without_a_listed_role_is_unaffected(backend: Backend) {
    let app = strict_app(backend).await;
    let alice = app.signed_up("alice").await;

    let again = app.logged_in(&alice).await;
    let sessions = app.get_as("/api/auth/sessions", &again.access_token).await;
    let introspection = introspected(&app, &again.access_token).await;

    assert_eq!(sessions.status(), 200);
    assert_eq!(introspection["active"], true);
    let claims = claims(&again.access_token);
    assert_eq!(claims["roles"], json!(["user"]));
    assert!(claims.get("scope").is_none());
}

async fn logout_ends_an_enrollment_only_session(backend: Backend) {
    let app = strict_app(backend).await;
    let admin = app.admin().await;

    let logout = app
        .post_as("/api/auth/logout", &admin.access_token, &json!({}))
        .await;
    let after = app.get_as("/api/auth/me", &admin.access_token).await;

    assert_eq!(logout.status(), 204);
    assert_eq!(after.status(), 401);
}

async fn grpc_login_gives_the_same_enrollment_only_session(backend: Backend) {
    let app = strict_app(backend).await;
    let mut grpc = app.grpc().await;

    let tokens = grpc
        .login(login_request(ADMIN.1, ADMIN.2))
        .await
        .unwrap()
        .into_inner();
    let verdict = grpc
        .validate_token(pb::ValidateTokenRequest {
            token: tokens.access_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let user = grpc
        .get_user(with_bearer(
            pb::GetUserRequest::default(),
            &tokens.access_token,
        ))
        .await;

    assert!(tokens.mfa_enrollment_required, "{tokens:?}");
    assert!(!tokens.mfa_required);
    assert_eq!(claims(&tokens.access_token)["roles"], json!([]));
    assert!(!verdict.valid);
    assert_eq!(verdict.reason, ENROLLMENT);
    assert!(verdict.roles.is_empty() && verdict.user_id.is_empty());
    assert_failed(user, Code::PermissionDenied, ENROLLMENT);
}

/// The OpenAPI document says which routes answer an enrollment-only session 403.
async fn the_document_names_the_enrollment_refusal_on_every_other_bearer_route(backend: Backend) {
    let app = backend.app().await;

    let document: Value = app
        .get("/api/docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();

    let allowed = [
        ("post", "/api/auth/mfa/totp"),
        ("post", "/api/auth/mfa/totp/confirm"),
        ("post", "/api/auth/passkeys/register/options"),
        ("post", "/api/auth/passkeys/register/finish"),
        ("get", "/api/auth/me"),
        ("post", "/api/auth/logout"),
    ];
    let mut refusing = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let bearer = operation["security"].to_string().contains("\"bearer\"");
            let forbidden = operation["responses"]["403"]["description"]
                .as_str()
                .unwrap_or_default();
            if bearer && !allowed.contains(&(method.as_str(), path.as_str())) {
                assert!(forbidden.contains(ENROLLMENT), "{method} {path}");
                refusing += 1;
            } else {
                assert!(!forbidden.contains(ENROLLMENT), "{method} {path}");
            }
        }
    }
    assert!(refusing > 20, "{refusing}");
}

/// A passkey is a second factor too: an enrollment-only session may register one, and the
/// next login asks for it.
async fn an_enrollment_only_session_may_register_a_passkey_instead(backend: Backend) {
    let app = strict_app(backend).await;
    let body = login(&app, ADMIN.1, ADMIN.2).await;
    let token = body["access_token"].as_str().unwrap();

    let options = app
        .post_as(
            "/api/auth/passkeys/register/options",
            token,
            &json!({ "password": ADMIN.2 }),
        )
        .await;
    assert_eq!(options.status(), 200);
    let options: Value = options.json().await.unwrap();
    let (_key, credential) = SoftPasskey::register(&options["options"]);
    let finished = app
        .post_as(
            "/api/auth/passkeys/register/finish",
            token,
            &json!({ "ceremony_id": options["ceremony_id"], "name": "Key", "credential": credential }),
        )
        .await;
    assert_eq!(finished.status(), 201);
    let listed = app.get_as("/api/auth/passkeys", token).await;
    let next = login(&app, ADMIN.1, ADMIN.2).await;

    assert_eq!(listed.status(), 403, "listing is not enrolling");
    assert_eq!(next["mfa_required"], true);
    assert!(next["methods"]
        .as_array()
        .unwrap()
        .contains(&json!("passkey")));
}

backend_tests! {
    an_enrollment_only_session_may_register_a_passkey_instead,
    a_listed_role_without_a_factor_gets_an_enrollment_only_session,
    after_enrolling_the_next_login_asks_for_the_factor_and_gives_full_tokens,
    a_user_without_a_listed_role_is_unaffected,
    logout_ends_an_enrollment_only_session,
    grpc_login_gives_the_same_enrollment_only_session,
    the_document_names_the_enrollment_refusal_on_every_other_bearer_route,
}
