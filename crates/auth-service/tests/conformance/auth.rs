//! Signup, login, the caller's profile, and the auth configuration.

use auth_service::config::SigningAlgorithm;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{code_of, Backend, PASSWORD};

async fn signup_answers_201_with_tokens_a_cookie_and_no_hash(backend: Backend) {
    let app = backend.app().await;

    let response = app
        .post_json("/api/auth/signup", &json!({ "email": "Alice@Example.COM", "username": "alice", "password": PASSWORD, "display_name": "Alice" }))
        .await;

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("refresh_token=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/api/auth"),
        "{cookie}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 7 * 24 * 3600);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(body["user"]["email"], "alice@example.com");
    assert_eq!(body["user"]["display_name"], "Alice");
    assert_eq!(body["user"]["roles"], json!(["user"]));
    assert!(
        !body.to_string().contains("argon2"),
        "a hash leaked: {body}"
    );
    assert!(body["user"].get("password_hash").is_none());
}

async fn register_is_an_alias_of_signup(backend: Backend) {
    let app = backend.app().await;

    let response = app
        .post_json(
            "/api/auth/register",
            &json!({ "email": "a@example.com", "username": "alias", "password": PASSWORD }),
        )
        .await;

    assert_eq!(response.status(), 201);
}

async fn duplicate_email_or_username_is_409_with_its_code(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;

    let same_email = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "ALICE@example.com", "username": "other", "password": PASSWORD }),
        )
        .await;
    let same_name = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "x@example.com", "username": "ALICE", "password": PASSWORD }),
        )
        .await;

    assert_eq!(same_email.status(), 409);
    assert_eq!(code_of(same_email).await, "email_taken");
    assert_eq!(same_name.status(), 409);
    assert_eq!(code_of(same_name).await, "username_taken");
}

async fn concurrent_signups_of_one_username_give_exactly_one_201(backend: Backend) {
    let app = backend.app().await;

    let bodies: Vec<Value> = (0..8)
        .map(|i| json!({ "email": format!("racer{i}@example.com"), "username": "racer", "password": PASSWORD }))
        .collect();
    let attempts = bodies
        .iter()
        .map(|body| app.post_json("/api/auth/signup", body));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
}

async fn invalid_signups_name_every_bad_field(backend: Backend) {
    let app = backend.app().await;

    let response = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "nope", "username": "a b", "password": "short" }),
        )
        .await;
    let unknown = app.post_json("/api/auth/signup", &json!({ "email": "a@example.com", "username": "abc", "password": PASSWORD, "admin": true })).await;
    let not_json = app
        .http
        .post(app.url("/api/auth/signup"))
        .body("email=a")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    let broken = app
        .http
        .post(app.url("/api/auth/signup"))
        .body("{\"email\":")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    // "short" breaks two password rules: too short and too easy to guess.
    assert_eq!(fields, ["email", "username", "password", "password"]);
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["errors"][0]["field"],
        "admin"
    );
    assert_eq!(not_json.status(), 415);
    assert_eq!(broken.status(), 400);
    assert_eq!(code_of(broken).await, "malformed_body");
}

async fn login_works_with_email_or_username(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;

    let by_email = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": "ALICE@example.com", "password": PASSWORD }),
        )
        .await;
    let by_name = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "Alice", "password": PASSWORD }),
        )
        .await;

    assert_eq!(by_email.status(), 200);
    assert_eq!(by_name.status(), 200);
    let body: Value = by_name.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
}

async fn unknown_user_and_wrong_password_answer_alike(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;

    let wrong = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "alice", "password": "not the password" }),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "nobody", "password": "not the password" }),
        )
        .await;

    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let (mut wrong, mut unknown): (Value, Value) =
        (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    wrong["request_id"] = Value::Null;
    unknown["request_id"] = Value::Null;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["code"], "invalid_credentials");
}

async fn me_answers_the_user_and_patch_me_changes_the_profile(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let me: Value = app
        .get_as("/api/auth/me", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let patched = app
        .http
        .patch(app.url("/api/auth/me"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "display_name": "Alice A.", "bio": "hi", "avatar_url": "https://img.example.com/a.png" }))
        .send()
        .await
        .unwrap();
    let cleared = app
        .http
        .patch(app.url("/api/auth/me"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "bio": null }))
        .send()
        .await
        .unwrap();
    let bad = app
        .http
        .patch(app.url("/api/auth/me"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "avatar_url": "javascript:x" }))
        .send()
        .await
        .unwrap();

    assert_eq!(me["username"], "alice");
    assert_eq!(me["id"], alice.user_id.as_str());
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["display_name"], "Alice A.");
    assert_eq!(patched["bio"], "hi");
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["bio"], Value::Null);
    assert_eq!(cleared["display_name"], "Alice A.");
    assert_eq!(bad.status(), 400);
}

async fn me_without_a_token_is_401_with_www_authenticate(backend: Backend) {
    let app = backend.app().await;

    let response = app.get("/api/auth/me").await;

    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(code_of(response).await, "unauthorized");
}

async fn auth_config_reports_the_effective_settings(backend: Backend) {
    let app = backend.app().await;

    let body: Value = app.get("/api/auth/config").await.json().await.unwrap();

    assert_eq!(
        body,
        json!({
            "access_token_ttl_seconds": 900, "refresh_token_ttl_seconds": 604800,
            "session_idle_timeout_seconds": 1800, "session_lifetime_seconds": 604800,
            "max_sessions_per_user": 5, "password_min_length": 8, "password_max_length": 128
        })
    );
}

async fn jwks_publishes_the_es256_signing_key_by_default(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let jwks = app.get("/.well-known/jwks.json").await;
    let cache = jwks.headers()["cache-control"].to_str().unwrap().to_owned();
    let jwks: Value = jwks.json().await.unwrap();

    assert!(cache.contains("max-age="));
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "private key material published");
    let header = jsonwebtoken::decode_header(&alice.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), keys[0]["kid"].as_str());
}

/// The claims of `token`, unverified.
fn payload(token: &str) -> Value {
    use base64::Engine;
    let segment = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// SPEC §2, §11: the discovery document claims nothing that is not served. The token,
/// introspection and revocation endpoints are named with their grants, client
/// authentications and assertion algorithms; there is no authorization endpoint to name; the
/// issuer is the tokens' `iss` to the byte; the algorithms are those of the keys in the JWKS,
/// no more (no RS256 on a server without an RS256 key).
async fn discovery_claims_only_what_is_served(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.issuer = Some("https://auth.example.test/".into()))
        .await;
    let alice = app.signed_up("alice").await;

    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();

    let methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    let token_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none"
    ]);
    let assertion_algorithms = json!(["RS256", "PS256", "ES256", "EdDSA"]);
    assert_eq!(
        discovery,
        json!({
            "issuer": "https://auth.example.test/",
            "jwks_uri": "http://localhost:8080/.well-known/jwks.json",
            "authorization_endpoint": "http://localhost:8080/oauth/authorize",
            "token_endpoint": "http://localhost:8080/oauth/token",
            "introspection_endpoint": "http://localhost:8080/oauth/introspect",
            "revocation_endpoint": "http://localhost:8080/oauth/revoke",
            "grant_types_supported": [
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ],
            "token_endpoint_auth_methods_supported": token_methods,
            "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "introspection_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "revocation_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "service_documentation": "http://localhost:8080/api/docs",
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "email", "username", "roles", "territory", "verified", "amr", "client_id", "scope", "act"],
        })
    );
    assert_eq!(discovery["issuer"], payload(&alice.access_token)["iss"]);
    for (field, value) in discovery.as_object().unwrap() {
        if field.ends_with("_endpoint") || field.ends_with("_uri") {
            let path = value
                .as_str()
                .unwrap()
                .strip_prefix(&app.config.server.public_url)
                .unwrap();
            // The OAuth endpoints take POSTed forms: an empty request is their RFC 6749
            // `invalid_request`; so is an empty authorization request (a GET, no client);
            // the rest are documents to GET.
            let posted = field.ends_with("_endpoint");
            let served = if field == "authorization_endpoint" {
                app.get(path).await.status()
            } else if posted {
                app.http.post(app.url(path)).send().await.unwrap().status()
            } else {
                app.get(path).await.status()
            };
            let expected = if posted { 400 } else { 200 };
            assert_eq!(served, expected, "{field} is served");
        }
    }
}

async fn discovery_lists_the_algorithm_of_every_published_key(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.signing_algorithm = SigningAlgorithm::EdDSA)
        .await;
    let upgraded = app
        .beside(|config| config.auth.signing_algorithm = SigningAlgorithm::ES256)
        .await;

    upgraded.keys.rotate().await.unwrap();
    let discovery: Value = upgraded
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"]),
        "the retired EdDSA key still verifies, so its algorithm is still listed"
    );
}

async fn eddsa_and_rs256_are_selectable(backend: Backend) {
    for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::RS256] {
        let app = backend
            .app_with(|config| config.auth.signing_algorithm = algorithm)
            .await;
        let alice = app.signed_up("alice").await;

        let me = app.get_as("/api/auth/me", &alice.access_token).await;
        let jwks: Value = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        let discovery: Value = app
            .get("/.well-known/openid-configuration")
            .await
            .json()
            .await
            .unwrap();

        assert_eq!(me.status(), 200, "{algorithm:?}");
        assert_eq!(jwks["keys"][0]["alg"], format!("{algorithm:?}"));
        assert_eq!(
            discovery["id_token_signing_alg_values_supported"],
            json!([format!("{algorithm:?}")])
        );
    }
}

backend_tests! {
    signup_answers_201_with_tokens_a_cookie_and_no_hash,
    register_is_an_alias_of_signup,
    duplicate_email_or_username_is_409_with_its_code,
    concurrent_signups_of_one_username_give_exactly_one_201,
    invalid_signups_name_every_bad_field,
    login_works_with_email_or_username,
    unknown_user_and_wrong_password_answer_alike,
    me_answers_the_user_and_patch_me_changes_the_profile,
    me_without_a_token_is_401_with_www_authenticate,
    auth_config_reports_the_effective_settings,
    jwks_publishes_the_es256_signing_key_by_default,
    discovery_claims_only_what_is_served,
    discovery_lists_the_algorithm_of_every_published_key,
    eddsa_and_rs256_are_selectable,
}
