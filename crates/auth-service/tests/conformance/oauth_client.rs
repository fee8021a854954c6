//! A standard OAuth 2 client, the `oauth2` crate, drives the client-credentials grant,
//! introspection and revocation (issue 18): the wire format of `POST /oauth/token`,
//! `/oauth/introspect` and `/oauth/revoke` (form in, JSON out, RFC 6749 §5.2 errors) is checked
//! by code we did not write. Also: Authlib's RFC 8414 metadata validation of the discovery
//! documents (`discovery.py`).

use std::process::Command;

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpRequest, IntrospectionUrl,
    RefreshToken, RequestTokenError, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::clients::created;
use crate::support::directory::claims;
use crate::support::{with_admin, Backend};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance/discovery.py"
);

/// Exit code of `discovery.py` when Authlib is missing.
const MISSING_PACKAGE: i32 = 3;

async fn the_oauth2_crate_gets_tokens_with_both_authentications_and_reads_the_errors(
    backend: Backend,
) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(
        &app,
        &root,
        &json!({ "name": "crate", "scopes": ["orders:read", "orders:write"] }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let oauth = |secret: &str, auth: AuthType| {
        BasicClient::new(ClientId::new(id.to_owned()))
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_auth_type(auth)
    };

    let by_basic = oauth(secret, AuthType::BasicAuth)
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();
    let by_body = oauth(secret, AuthType::RequestBody)
        .exchange_client_credentials()
        .add_scope(Scope::new("orders:write".into()))
        .request_async(&http)
        .await
        .unwrap();
    let wrong_scope = oauth(secret, AuthType::BasicAuth)
        .exchange_client_credentials()
        .add_scope(Scope::new("admin".into()))
        .request_async(&http)
        .await;
    let wrong_secret = oauth("not the secret", AuthType::BasicAuth)
        .exchange_client_credentials()
        .request_async(&http)
        .await;

    assert_eq!(by_basic.token_type().as_ref(), "bearer");
    assert_eq!(
        by_basic.expires_in().unwrap().as_secs(),
        app.config.auth.access_token_ttl.as_secs()
    );
    let scopes: Vec<String> = by_basic
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["orders:read", "orders:write"]);
    assert_eq!(claims(by_basic.access_token().secret())["client_id"], id);
    let scopes: Vec<String> = by_body
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["orders:write"]);
    for (result, expected) in [
        (wrong_scope, BasicErrorResponseType::InvalidScope),
        (wrong_secret, BasicErrorResponseType::InvalidClient),
    ] {
        match result {
            Err(RequestTokenError::ServerResponse(response)) => {
                assert_eq!(response.error(), &expected);
                assert!(response.error_description().is_some());
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

/// The crate introspects users' and clients' tokens and revokes both kinds of a user's token.
/// It insists on an `https` revocation address (RFC 7009 §2), so the revocation goes to an
/// `https` address that an HTTP client of the test's own sends over plain HTTP.
async fn the_oauth2_crate_introspects_and_revokes_tokens(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let alice = app.signed_up("alice").await;
    let phone = app.logged_in(&alice).await;
    let client = created(
        &app,
        &root,
        &json!({ "name": "crate", "scopes": ["orders:read"] }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let plain = |mut request: HttpRequest| {
        let http = http.clone();
        async move {
            let uri = request.uri().to_string().replacen("https://", "http://", 1);
            *request.uri_mut() = uri.parse().unwrap();
            http.call(request).await
        }
    };
    let secure_base = app.base_url.replacen("http://", "https://", 1);
    let oauth = BasicClient::new(ClientId::new(id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(app.url("/oauth/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{secure_base}/oauth/revoke")).unwrap())
        .set_auth_type(AuthType::BasicAuth);
    let own = oauth
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .unwrap();

    let user = oauth
        .introspect(&AccessToken::new(alice.access_token.clone()))
        .request_async(&http)
        .await
        .unwrap();
    let service = oauth
        .introspect(own.access_token())
        .set_token_type_hint("access_token")
        .request_async(&http)
        .await
        .unwrap();
    oauth
        .revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
            phone.refresh_token.clone(),
        )))
        .unwrap()
        .request_async(&plain)
        .await
        .unwrap();
    oauth
        .revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(
            alice.access_token.clone(),
        )))
        .unwrap()
        .request_async(&plain)
        .await
        .unwrap();
    let after = oauth
        .introspect(&AccessToken::new(alice.access_token.clone()))
        .request_async(&http)
        .await
        .unwrap();

    assert!(user.active());
    assert_eq!(user.sub(), Some(alice.user_id.as_str()));
    assert_eq!(user.username(), Some("alice"));
    assert_eq!(user.token_type(), Some(&BasicTokenType::Bearer));
    assert!(user.exp().is_some() && user.iat().is_some() && user.nbf().is_some());
    assert!(service.active());
    assert_eq!(service.client_id().map(|c| c.as_str()), Some(id));
    let scopes: Vec<String> = service
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["orders:read"]);
    assert!(
        !after.active(),
        "the revoked access token's session has ended"
    );
    assert_eq!(app.refresh(&phone.refresh_token).await.status(), 401);
}

async fn the_oauth2_crate_refreshes_a_users_tokens_as_a_public_client_and_reads_a_reuse(
    backend: Backend,
) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // No secret: the crate sends `client_id` in the form, a public client naming itself.
    let oauth = BasicClient::new(ClientId::new("spa".to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap());
    let presented = RefreshToken::new(alice.refresh_token.clone());

    let refreshed = oauth
        .exchange_refresh_token(&presented)
        .request_async(&http)
        .await
        .unwrap();
    app.clock.advance(std::time::Duration::from_secs(11));
    let reused = oauth
        .exchange_refresh_token(&presented)
        .request_async(&http)
        .await;

    assert_eq!(refreshed.token_type().as_ref(), "bearer");
    assert_eq!(
        claims(refreshed.access_token().secret())["sub"],
        alice.user_id
    );
    let successor = refreshed.refresh_token().unwrap().secret();
    assert_ne!(successor, &alice.refresh_token);
    assert!(refreshed.scopes().is_none());
    match reused {
        Err(RequestTokenError::ServerResponse(response)) => {
            assert_eq!(response.error(), &BasicErrorResponseType::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

async fn the_discovery_documents_pass_authlibs_rfc_8414_validation(backend: Backend) {
    let app = backend
        .app_with(|config| config.server.public_url = "https://auth.example.test".into())
        .await;
    let oauth: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let openid: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(oauth["issuer"], "https://auth.example.test");
    assert_eq!(
        oauth["token_endpoint"],
        "https://auth.example.test/oauth/token"
    );
    assert_eq!(
        oauth["grant_types_supported"],
        json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        oauth["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        oauth["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
    assert_eq!(oauth["response_types_supported"], json!(["code"]));
    assert_eq!(oauth["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        oauth["authorization_endpoint"],
        "https://auth.example.test/oauth/authorize"
    );
    for document in [&oauth, &openid] {
        // A public client authenticates with nothing, at the token endpoint only.
        for endpoint in ["introspection", "revocation"] {
            assert_eq!(
                document[format!("{endpoint}_endpoint_auth_methods_supported")],
                json!([
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt"
                ]),
                "{endpoint}: the same methods everywhere"
            );
            assert_eq!(
                document[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
                json!(["RS256", "PS256", "ES256", "EdDSA"]),
                "{endpoint}: the same assertion algorithms everywhere"
            );
        }
        assert_eq!(
            document["introspection_endpoint"],
            "https://auth.example.test/oauth/introspect"
        );
        assert_eq!(
            document["revocation_endpoint"],
            "https://auth.example.test/oauth/revoke"
        );
        for unserved in ["userinfo_endpoint", "registration_endpoint"] {
            assert!(document.get(unserved).is_none(), "{unserved} is not served");
        }
    }
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let served = app.http.post(app.url(path)).send().await.unwrap();
        assert_eq!(served.status(), 400, "{path} is served");
    }

    let run = Command::new("python3")
        .arg(SCRIPT)
        .args([oauth.to_string(), openid.to_string()])
        .output();

    let output = match run {
        Ok(output) => output,
        Err(error) => return missing(&format!("python3 cannot be run ({error})")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(MISSING_PACKAGE) {
        return missing(stdout.trim());
    }
    assert!(
        output.status.success(),
        "Authlib refused a discovery document:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.matches("validate() accepted").count(), 2, "{stdout}");
}

/// A missing part fails under `CI` and skips with what to install elsewhere.
fn missing(what: &str) {
    let install = "python3 -m pip install -r .ci/verifiers-requirements.txt (.ci/run does)";
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but Authlib cannot run: {what}; {install}"
    );
    eprintln!("SKIPPED discovery validation: {what}; {install}");
}

backend_tests! {
    the_oauth2_crate_gets_tokens_with_both_authentications_and_reads_the_errors,
    the_oauth2_crate_introspects_and_revokes_tokens,
    the_oauth2_crate_refreshes_a_users_tokens_as_a_public_client_and_reads_a_reuse,
    the_discovery_documents_pass_authlibs_rfc_8414_validation,
}
