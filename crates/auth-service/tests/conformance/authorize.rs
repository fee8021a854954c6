//! The authorization code grant with PKCE (SPEC §11, RFC 6749 §4.1, RFC 7636, RFC 9207):
//! `GET /oauth/authorize` hands a valid request to the login page and refuses an untrusted one
//! without redirecting; `POST /api/auth/authorize` issues a code for the signed-in user; the
//! code is exchanged once, with the verifier, for a new session of the user.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::clients::{created, form};
use crate::support::directory::claims;
use crate::support::{code_of, with_admin, Account, Backend, TestApp};

const CALLBACK: &str = "https://app.example/callback";
const LOGIN: &str = "https://login.example/sign-in";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K27uTtpZhcYtMMMbKLnY1EWjBk";
const CHALLENGE: &str = "jrE20qC5HXMRPt1bb2cEvFWAyfLKu7_dFswEjJxZSs4";

fn with_login_page(config: &mut auth_service::Config) {
    with_admin(config);
    config.oauth.login_url = Some(LOGIN.to_owned());
}

/// An HTTP client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A public client (or a confidential one) with the callback as its only redirect URI.
async fn app_client(app: &TestApp, admin: &Account, public: bool) -> Value {
    let mut body = json!({
        "name": "shop web",
        "scopes": ["orders:read", "orders:write"],
        "redirect_uris": [CALLBACK],
    });
    if public {
        body["token_endpoint_auth_method"] = json!("none");
    }
    created(app, admin, &body).await
}

/// The query of an authorization request.
fn query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("state", "st4te"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={}", urlencoding(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET /oauth/authorize?query`, not followed.
async fn authorize_page(app: &TestApp, query: &str) -> reqwest::Response {
    no_redirects()
        .get(app.url(&format!("/oauth/authorize?{query}")))
        .send()
        .await
        .unwrap()
}

/// The query parameters of a `Location`.
fn location_params(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let url = url::Url::parse(&location).unwrap();
    let params = url.query_pairs().into_owned().collect();
    let base = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap(),
        url.path()
    );
    (base, params)
}

/// The login page's call for the signed-in user: the redirect it answers.
async fn consent(app: &TestApp, token: &str, client_id: &str, scope: Option<&str>) -> String {
    let mut body = json!({
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "state": "st4te",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let response = app.post_as("/api/auth/authorize", token, &body).await;
    assert_eq!(response.status(), 200, "consent");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: Value = response.json().await.unwrap();
    answer["redirect_to"].as_str().unwrap().to_owned()
}

fn params_of(uri: &str) -> HashMap<String, String> {
    url::Url::parse(uri)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A code for `user` at `client_id`.
async fn code_for(app: &TestApp, user: &Account, client_id: &str) -> String {
    let redirect = consent(app, &user.access_token, client_id, None).await;
    params_of(&redirect)["code"].clone()
}

/// A public client's exchange of `code`; the raw answer.
async fn exchange(app: &TestApp, client_id: &str, code: &str, verifier: &str) -> reqwest::Response {
    let body = format!(
        "grant_type=authorization_code&client_id={client_id}&code={code}&redirect_uri={}&code_verifier={verifier}",
        urlencoding(CALLBACK)
    );
    form(app, &body, None).await
}

async fn oauth_error(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

async fn the_code_flow_gives_a_public_client_a_new_session_of_the_user(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();
    let alice = app.signed_up("alice").await;
    let request = query(id, &[("scope", "orders:read")]);

    let page = authorize_page(&app, &request).await;
    let redirect = consent(&app, &alice.access_token, id, Some("orders:read")).await;
    let params = params_of(&redirect);
    let tokens = exchange(&app, id, &params["code"], VERIFIER).await;

    assert!(
        client.get("client_secret").is_none(),
        "a public client has no secret"
    );
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["redirect_uris"], json!([CALLBACK]));
    assert_eq!(page.status(), 302);
    assert_eq!(
        page.headers()["location"].to_str().unwrap(),
        format!("{LOGIN}?{request}"),
        "the login page gets the request as it came"
    );
    assert!(redirect.starts_with(&format!("{CALLBACK}?")));
    assert_eq!(params["state"], "st4te");
    assert_eq!(params["iss"], app.config.issuer());
    assert_eq!(URL_SAFE_NO_PAD.decode(&params["code"]).unwrap().len(), 32);
    assert_eq!(tokens.status(), 200);
    assert_eq!(tokens.headers()["cache-control"], "no-store");
    let body: Value = tokens.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "orders:read");
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], alice.user_id);
    assert_eq!(access["scope"], "orders:read");
    assert_ne!(access["sid"], alice.session_id, "a new session");
    let sessions: Value = app
        .get_as("/api/auth/sessions", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let listed = sessions["sessions"].as_array().unwrap();
    let session = listed
        .iter()
        .find(|s| s["id"] == access["sid"])
        .expect("the code's session is among the user's sessions");
    assert_eq!(session["device"]["browser"], "shop web");
    let refreshed = form(
        &app,
        &format!(
            "grant_type=refresh_token&client_id={id}&refresh_token={}",
            body["refresh_token"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["scope"], "orders:read", "refresh keeps the scope");
    let again = claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(
        (&again["sub"], &again["sid"]),
        (&access["sub"], &access["sid"])
    );
    assert_eq!(
        app.get_as("/api/auth/me", body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action IN ('authorization_code_issued', 'login_success') \
         ORDER BY occurred_at",
    )
    .fetch_all(&mut crate::clients::db(&app).await)
    .await
    .unwrap();
    assert!(
        audit.contains(&"authorization_code_issued".to_owned()),
        "{audit:?}"
    );
}

async fn a_confidential_client_authenticates_at_the_exchange(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, false).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let alice = app.signed_up("alice").await;
    let body = |code: &str| {
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            urlencoding(CALLBACK)
        )
    };

    let first = code_for(&app, &alice, id).await;
    let unauthenticated = exchange(&app, id, &first, VERIFIER).await;
    let second = code_for(&app, &alice, id).await;
    let wrong_secret = form(&app, &body(&second), Some((id, "nope"))).await;
    let third = code_for(&app, &alice, id).await;
    let right = form(&app, &body(&third), Some((id, secret))).await;

    assert_eq!(
        unauthenticated.status(),
        401,
        "a confidential client must authenticate"
    );
    assert_eq!(wrong_secret.status(), 401);
    assert_eq!(right.status(), 200);
    let tokens: Value = right.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["sub"],
        alice.user_id
    );
    assert!(tokens["refresh_token"].is_string());
    assert!(
        tokens.get("scope").is_none(),
        "no scope asked, none granted"
    );
}

async fn an_untrusted_client_or_redirect_uri_is_never_redirected_to(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();
    let inactive = created(
        &app,
        &root,
        &json!({ "name": "off", "token_endpoint_auth_method": "none",
                 "redirect_uris": [CALLBACK], "is_active": false }),
    )
    .await;
    let inactive = inactive["client_id"].as_str().unwrap();

    for (why, request) in [
        ("unknown client", query(&unknown, &[])),
        ("no client", query(id, &[("client_id", "")])),
        ("inactive client", query(inactive, &[])),
        (
            "other uri",
            query(id, &[("redirect_uri", "https://evil.example/callback")]),
        ),
        (
            "prefix",
            query(id, &[("redirect_uri", "https://app.example/callback/x")]),
        ),
        (
            "twice",
            format!("{}&redirect_uri={}", query(id, &[]), urlencoding(CALLBACK)),
        ),
        ("bad encoding", format!("{}&x=%zz", query(id, &[]))),
    ] {
        let response = authorize_page(&app, &request).await;
        assert_eq!(response.status(), 400, "{why}");
        assert!(response.headers().get("location").is_none(), "{why}");
        assert_eq!(oauth_error(response).await, "invalid_request", "{why}");
    }
    let alice = app.signed_up("alice").await;
    let refused = app
        .post_as(
            "/api/auth/authorize",
            &alice.access_token,
            &json!({ "response_type": "code", "client_id": id,
                     "redirect_uri": "https://evil.example/callback",
                     "code_challenge": CHALLENGE, "code_challenge_method": "S256" }),
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(code_of(refused).await, "validation_failed");
}

async fn other_refusals_go_back_to_the_redirect_uri(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();

    for (why, request, error) in [
        (
            "token",
            query(id, &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            "no response type",
            query(id, &[("response_type", "")]),
            "invalid_request",
        ),
        (
            "no pkce",
            query(id, &[("code_challenge", "")]),
            "invalid_request",
        ),
        (
            "plain",
            query(id, &[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (
            "no method",
            query(id, &[("code_challenge_method", "")]),
            "invalid_request",
        ),
        (
            "bad challenge",
            query(id, &[("code_challenge", "abc")]),
            "invalid_request",
        ),
        ("scope", query(id, &[("scope", "admin")]), "invalid_scope"),
        (
            "twice",
            format!("{}&scope=orders:read&scope=orders:write", query(id, &[])),
            "invalid_request",
        ),
    ] {
        let response = authorize_page(&app, &request).await;
        assert_eq!(response.status(), 302, "{why}");
        let (base, params) = location_params(&response);
        assert_eq!(base, CALLBACK, "{why}");
        assert_eq!(params["error"], error, "{why}");
        assert!(!params["error_description"].is_empty(), "{why}");
        assert_eq!(params["state"], "st4te", "{why}");
        assert_eq!(params["iss"], app.config.issuer(), "{why}");
    }
    // Without a redirect_uri, the client's only one is used.
    let implicit = authorize_page(&app, &query(id, &[("redirect_uri", "")])).await;
    assert_eq!(implicit.status(), 302);
    assert!(implicit.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(LOGIN));
}

async fn without_a_login_page_the_request_is_answered_temporarily_unavailable(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();

    let response = authorize_page(&app, &query(id, &[])).await;

    assert_eq!(response.status(), 302);
    let (base, params) = location_params(&response);
    assert_eq!(base, CALLBACK);
    assert_eq!(params["error"], "temporarily_unavailable");
    assert!(params["error_description"].contains("oauth.login_url"));
}

async fn a_code_is_single_use_and_its_reuse_ends_the_session(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();
    let alice = app.signed_up("alice").await;
    let code = code_for(&app, &alice, id).await;

    let first = exchange(&app, id, &code, VERIFIER).await;
    assert_eq!(first.status(), 200);
    let tokens: Value = first.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/auth/me", access).await.status(), 200);
    let again = exchange(&app, id, &code, VERIFIER).await;

    assert_eq!(oauth_error(again).await, "invalid_grant");
    assert_eq!(
        app.get_as("/api/auth/me", access).await.status(),
        401,
        "the session the code started has ended"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(refresh).await.status(), 401);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200,
        "the user's other sessions go on"
    );
}

async fn a_wrong_verifier_spends_the_code(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();
    let alice = app.signed_up("alice").await;
    let code = code_for(&app, &alice, id).await;
    let wrong = "x".repeat(43);

    let refused = exchange(&app, id, &code, &wrong).await;
    let after = exchange(&app, id, &code, VERIFIER).await;

    assert_eq!(oauth_error(refused).await, "invalid_grant");
    assert_eq!(
        oauth_error(after).await,
        "invalid_grant",
        "the code was spent"
    );
    let missing = code_for(&app, &alice, id).await;
    let body = format!(
        "grant_type=authorization_code&client_id={id}&code={missing}&redirect_uri={}",
        urlencoding(CALLBACK)
    );
    assert_eq!(
        oauth_error(form(&app, &body, None).await).await,
        "invalid_grant"
    );
    let short = code_for(&app, &alice, id).await;
    assert_eq!(
        oauth_error(exchange(&app, id, &short, &VERIFIER[..42]).await).await,
        "invalid_grant",
        "a verifier under 43 characters never matches"
    );
}

async fn an_expired_code_a_mismatched_uri_and_another_clients_code_are_refused(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();
    let other = app_client(&app, &root, true).await;
    let other = other["client_id"].as_str().unwrap();
    let alice = app.signed_up("alice").await;

    let expiring = code_for(&app, &alice, id).await;
    app.clock.advance(Duration::from_secs(61));
    let expired = exchange(&app, id, &expiring, VERIFIER).await;
    let alice = app.logged_in(&alice).await;
    let elsewhere = code_for(&app, &alice, id).await;
    let body = format!(
        "grant_type=authorization_code&client_id={id}&code={elsewhere}&redirect_uri={}&code_verifier={VERIFIER}",
        urlencoding("https://app.example/other")
    );
    let mismatched = form(&app, &body, None).await;
    let stolen = code_for(&app, &alice, id).await;
    let by_other = exchange(&app, other, &stolen, VERIFIER).await;
    let unknown = exchange(&app, id, "no-such-code", VERIFIER).await;

    assert_eq!(oauth_error(expired).await, "invalid_grant");
    assert_eq!(oauth_error(mismatched).await, "invalid_grant");
    assert_eq!(oauth_error(by_other).await, "invalid_grant");
    assert_eq!(oauth_error(unknown).await, "invalid_grant");
}

async fn only_a_signed_in_user_may_authorize(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();
    let alice = app.signed_up("alice").await;
    let key = app
        .post_as(
            "/api/auth/api-keys",
            &alice.access_token,
            &json!({ "name": "ci", "scopes": ["auth:read"] }),
        )
        .await;
    assert_eq!(key.status(), 201);
    let key: Value = key.json().await.unwrap();
    let body = json!({ "response_type": "code", "client_id": id, "redirect_uri": CALLBACK,
                       "code_challenge": CHALLENGE, "code_challenge_method": "S256" });

    let by_key = app
        .post_as("/api/auth/authorize", key["key"].as_str().unwrap(), &body)
        .await;
    let anonymous = app.post_json("/api/auth/authorize", &body).await;

    assert_eq!(by_key.status(), 403);
    assert_eq!(code_of(by_key).await, "session_required");
    assert_eq!(anonymous.status(), 401);
}

async fn public_clients_cannot_use_the_other_grants(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let client = app_client(&app, &root, true).await;
    let id = client["client_id"].as_str().unwrap();

    let credentials = form(
        &app,
        &format!("grant_type=client_credentials&client_id={id}"),
        None,
    )
    .await;
    let exchanging = app
        .post_as(
            "/api/clients",
            &root.access_token,
            &json!({ "name": "x", "token_endpoint_auth_method": "none",
                     "exchange_audiences": ["orders"] }),
        )
        .await;
    let bad_uri = app
        .post_as(
            "/api/clients",
            &root.access_token,
            &json!({ "name": "x", "redirect_uris": ["http://app.example/cb"] }),
        )
        .await;

    assert_eq!(credentials.status(), 401);
    assert_eq!(exchanging.status(), 400);
    assert_eq!(bad_uri.status(), 400);
    let patched = crate::support::directory::patch_as(
        &app,
        &format!("/api/clients/{id}"),
        &root.access_token,
        &json!({ "redirect_uris": ["http://localhost:3000/cb", CALLBACK] }),
    )
    .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        patched["redirect_uris"],
        json!(["http://localhost:3000/cb", CALLBACK]),
        "sorted, kept as written"
    );
}

/// The `oauth2` crate builds the authorization URL with its PKCE challenge and exchanges the
/// code with its verifier: the wire format is checked by code we did not write.
async fn the_oauth2_crate_runs_the_code_flow_with_pkce(backend: Backend) {
    let app = backend.app_with(with_login_page).await;
    let root = app.admin().await;
    let http = no_redirects();
    let alice = app.signed_up("alice").await;
    for public in [true, false] {
        let client = app_client(&app, &root, public).await;
        let id = client["client_id"].as_str().unwrap();
        let base = BasicClient::new(ClientId::new(id.to_owned()))
            .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
        let oauth = match client["client_secret"].as_str() {
            Some(secret) => base.set_client_secret(ClientSecret::new(secret.to_owned())),
            None => base,
        };
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf) = oauth
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("orders:write".into()))
            .set_pkce_challenge(challenge)
            .url();

        let page = http.get(url.clone()).send().await.unwrap();
        assert_eq!(page.status(), 302);
        let location = page.headers()["location"].to_str().unwrap().to_owned();
        let handed = url::Url::parse(&location).unwrap();
        let request: HashMap<String, String> = handed.query_pairs().into_owned().collect();
        let body = json!({
            "response_type": request["response_type"],
            "client_id": request["client_id"],
            "redirect_uri": request["redirect_uri"],
            "scope": request["scope"],
            "state": request["state"],
            "code_challenge": request["code_challenge"],
            "code_challenge_method": request["code_challenge_method"],
        });
        let answer: Value = app
            .post_as("/api/auth/authorize", &alice.access_token, &body)
            .await
            .json()
            .await
            .unwrap();
        let back = params_of(answer["redirect_to"].as_str().unwrap());
        assert_eq!(&back["state"], csrf.secret());
        let code = AuthorizationCode::new(back["code"].clone());
        let tokens = oauth
            .exchange_code(code.clone())
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
            .request_async(&http)
            .await
            .unwrap();
        let replay = oauth
            .exchange_code(code)
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await;

        assert_eq!(claims(tokens.access_token().secret())["sub"], alice.user_id);
        assert!(tokens.refresh_token().is_some());
        let scopes: Vec<String> = tokens
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(scopes, ["orders:write"]);
        match replay {
            Err(RequestTokenError::ServerResponse(response)) => {
                assert_eq!(response.error(), &BasicErrorResponseType::InvalidGrant);
            }
            other => panic!("expected invalid_grant, got {other:?}"),
        }
    }
}

backend_tests! {
    the_code_flow_gives_a_public_client_a_new_session_of_the_user,
    a_confidential_client_authenticates_at_the_exchange,
    an_untrusted_client_or_redirect_uri_is_never_redirected_to,
    other_refusals_go_back_to_the_redirect_uri,
    without_a_login_page_the_request_is_answered_temporarily_unavailable,
    a_code_is_single_use_and_its_reuse_ends_the_session,
    a_wrong_verifier_spends_the_code,
    an_expired_code_a_mismatched_uri_and_another_clients_code_are_refused,
    only_a_signed_in_user_may_authorize,
    public_clients_cannot_use_the_other_grants,
    the_oauth2_crate_runs_the_code_flow_with_pkce,
}
