//! `/api/docs`: the OpenAPI document describes every route; Swagger UI comes from the binary.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::backend_tests;
use crate::support::Backend;

/// Every route of SPEC §2 built so far, as `METHOD path`.
const ROUTES: &[&str] = &[
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /.well-known/jwks.json",
    "GET /.well-known/openid-configuration",
    "GET /api/docs",
    "GET /api/docs/openapi.json",
    "GET /api/auth/config",
    "POST /api/auth/signup",
    "POST /api/auth/register",
    "POST /api/auth/login",
    "POST /api/auth/refresh",
    "POST /api/auth/logout",
    "GET /api/auth/me",
    "PATCH /api/auth/me",
    "GET /api/auth/session",
    "GET /api/auth/sessions",
    "DELETE /api/auth/sessions/all",
    "DELETE /api/auth/sessions/{id}",
    "POST /api/auth/activity",
    "POST /api/auth/introspect",
    "POST /api/auth/mfa/totp",
    "DELETE /api/auth/mfa/totp",
    "POST /api/auth/mfa/totp/confirm",
    "POST /api/auth/mfa/recovery-codes",
    "POST /api/auth/mfa/verify",
    "DELETE /api/users/{id}/mfa",
    "POST /api/auth/mfa/passkey/options",
    "POST /api/auth/passkeys/register/options",
    "POST /api/auth/passkeys/register/finish",
    "GET /api/auth/passkeys",
    "PATCH /api/auth/passkeys/{id}",
    "DELETE /api/auth/passkeys/{id}",
    "POST /api/auth/passkeys/login/options",
    "POST /api/auth/passkeys/login/finish",
    "POST /api/auth/password/forgot",
    "POST /api/auth/password/reset",
    "POST /api/auth/password/change",
    "POST /api/auth/email/verify",
    "POST /api/auth/email/verify/resend",
    "POST /api/users",
    "GET /api/users",
    "PATCH /api/users/{id}",
    "DELETE /api/users/{id}",
    "GET /api/roles",
    "POST /api/roles",
    "DELETE /api/roles/{name}",
    "GET /api/territories",
    "POST /api/territories",
    "PATCH /api/territories/{code}",
    "PUT /api/users/{id}/territories/{code}",
    "DELETE /api/users/{id}/territories/{code}",
    "PUT /api/users/{id}/territories/{code}/roles",
    "GET /api/audit",
    "GET /api/users/id/{id}",
    "GET /api/users/email/{email}",
    "GET /api/users/{id}",
    "GET /.well-known/oauth-authorization-server",
    "POST /oauth/token",
    "GET /oauth/authorize",
    "POST /api/auth/authorize",
    "POST /oauth/introspect",
    "POST /oauth/revoke",
    "POST /api/clients",
    "GET /api/clients",
    "GET /api/clients/{id}",
    "PATCH /api/clients/{id}",
    "DELETE /api/clients/{id}",
    "POST /api/clients/{id}/secret",
    "POST /api/auth/api-keys",
    "GET /api/auth/api-keys",
    "DELETE /api/auth/api-keys/{id}",
    "POST /api/clients/{id}/api-keys",
    "GET /api/clients/{id}/api-keys",
    "DELETE /api/clients/{id}/api-keys/{key_id}",
];

fn operations(document: &Value) -> BTreeSet<String> {
    let paths = document["paths"].as_object().unwrap();
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

/// Every `$ref` in the document, e.g. `#/components/schemas/User`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => found.push(reference.clone()),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

async fn the_document_describes_every_route_with_its_answers(backend: Backend) {
    let app = backend.app().await;

    let response = app.get("/api/docs/openapi.json").await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected: BTreeSet<String> = ROUTES.iter().map(|route| (*route).to_owned()).collect();
    assert_eq!(operations(&document), expected);
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let answers = operation["responses"].as_object().unwrap();
            // The authorization endpoint's success is a redirect (RFC 6749 §4.1.1).
            let success = if path == "/oauth/authorize" { '3' } else { '2' };
            assert!(
                answers.keys().any(|status| status.starts_with(success)),
                "{method} {path} documents no success answer"
            );
            assert!(
                operation["summary"].is_string(),
                "{method} {path} has no summary"
            );
            // Issue 16: every status the server answers is documented.
            if operation.get("requestBody").is_some() {
                // The OAuth endpoints answer a body of another type as RFC 6749 §5.2 says,
                // 400 `invalid_request`, never 415.
                let statuses: &[&str] = if path.starts_with("/oauth/") {
                    &["400", "413"]
                } else {
                    &["400", "413", "415"]
                };
                for status in statuses {
                    assert!(
                        answers.contains_key(*status),
                        "{method} {path} takes a body but documents no {status}"
                    );
                }
            }
            let bearer_only = operation["security"]
                .as_array()
                .is_some_and(|schemes| !schemes.iter().any(|s| s.as_object().unwrap().is_empty()));
            if bearer_only {
                assert!(
                    answers.contains_key("401"),
                    "{method} {path} needs a bearer token but documents no 401"
                );
            }
        }
    }
    // An inactive token's answer matches its own schema; users pages are 1–100 long.
    let introspection = &document["components"]["schemas"]["Introspection"]["oneOf"];
    assert_eq!(introspection[0]["required"], serde_json::json!(["active"]));
    assert_eq!(
        introspection[0]["properties"]["active"]["enum"],
        serde_json::json!([false])
    );
    assert_eq!(introspection[0]["additionalProperties"], false);
    let limit = document["paths"]["/api/users"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 100);
    assert_eq!(
        document["components"]["schemas"]["LoginRequest"]["oneOf"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let mut refs = Vec::new();
    references(&document, &mut refs);
    assert!(refs.iter().any(|r| r == "#/components/schemas/Problem"));
    for reference in refs {
        let name = reference.trim_start_matches("#/components/schemas/");
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{reference} does not resolve"
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(document["components"]["schemas"]["User"]["properties"]["password_hash"].is_null());
}

async fn the_binary_prints_the_served_document(backend: Backend) {
    let app = backend.app().await;
    let served: Value = app
        .get("/api/docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .arg("openapi")
        .stdin(Stdio::null())
        .output()
        .unwrap();

    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, served);
}

async fn swagger_ui_is_served_from_the_binary_under_its_own_csp(backend: Backend) {
    let app = backend.app().await;

    let page = app.get("/api/docs").await;

    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("http"),
        "the docs CSP allows no other host: {csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<base href=\"/api/docs/\">"));
    for asset in [
        "swagger-ui.css",
        "index.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    ] {
        assert!(html.contains(asset), "the page does not load {asset}");
        let response = app.get(&format!("/api/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 100, "{asset}");
    }
    let initializer = app.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    assert!(initializer
        .text()
        .await
        .unwrap()
        .contains("/api/docs/openapi.json"));
}

async fn the_rest_of_the_api_keeps_the_strict_csp(backend: Backend) {
    let app = backend.app().await;

    let health = app.get("/health").await;
    let missing = app.get("/api/docs/no-such-file.js").await;

    assert_eq!(
        health.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "not_found");
}

/// The email pattern counts characters, the server counts the local part's octets (RFC 5321
/// §4.5.3.1.1, after lowercasing): every local part the pattern admits fits in 64 octets.
async fn the_email_pattern_admits_only_addresses_the_server_accepts(backend: Backend) {
    let app = backend.app_with(crate::support::with_admin).await;
    let admin = app.admin().await;
    let document: Value = app
        .get("/api/docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let patterns: Vec<&str> = ["SignupRequest", "CreateUserRequest", "PatchUserRequest"]
        .iter()
        .map(|name| {
            document["components"]["schemas"][name]["properties"]["email"]["pattern"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        patterns.iter().all(|pattern| *pattern == patterns[0]),
        "{patterns:?}"
    );
    let pattern = regex::Regex::new(patterns[0]).unwrap();

    // (local part, admitted by the pattern, accepted by the server)
    let cases = [
        ("a".repeat(64), true, true),
        ("\u{1D538}".repeat(16), true, true), // 4 octets each: 64
        ("\u{23A}".repeat(16), true, true),   // 2 octets, 3 once lowercased
        ("\u{130}".repeat(16), true, true),   // lowercases to two characters, 3 octets
        ("a".repeat(65), false, false),
        ("\u{1D538}".repeat(17), false, false), // 68 octets
        // Beyond what a pattern can count: 20 characters, 40 octets.
        ("\u{E9}".repeat(20), false, true),
    ];
    for (index, (local, admitted, accepted)) in cases.iter().enumerate() {
        let email = format!("{local}@example.com");
        assert_eq!(pattern.is_match(&email), *admitted, "{email}");
        let created = app
            .post_as(
                "/api/users",
                &admin.access_token,
                &serde_json::json!({
                    "email": email,
                    "username": format!("user{index}"),
                    "password": "a long enough passphrase",
                }),
            )
            .await;
        let status = created.status().as_u16();
        let body = created.text().await.unwrap();
        assert_eq!(status, if *accepted { 201 } else { 400 }, "{email}: {body}");
    }
}

backend_tests!(
    the_document_describes_every_route_with_its_answers,
    the_email_pattern_admits_only_addresses_the_server_accepts,
    the_binary_prints_the_served_document,
    swagger_ui_is_served_from_the_binary_under_its_own_csp,
    the_rest_of_the_api_keeps_the_strict_csp,
);
