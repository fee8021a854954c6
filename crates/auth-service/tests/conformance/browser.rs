//! Browsers across sites (SPEC §2, §4): the refresh cookie's `SameSite`, the CSRF defence on
//! cookie-authenticated requests, a cookie-only token response, 401 for a missing credential,
//! and the whole flow in a real Chromium with the page on another site than the service.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use auth_service::config::CookieSameSite;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{code_of, Backend, TestApp, PASSWORD};

const SPA: &str = "https://app.example.com";

/// A cross-site deployment: the SPA's origin allowed, `SameSite=None` (so `Secure`).
async fn cross_site_app(backend: Backend) -> TestApp {
    backend
        .app_with(|config| {
            config.server.cors_origins = vec![SPA.to_owned()];
            config.server.cookie_secure = true;
            config.server.cookie_same_site = CookieSameSite::None;
        })
        .await
}

fn set_cookie(response: &reqwest::Response) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn signup(app: &TestApp, name: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/signup",
        &json!({ "email": format!("{name}@example.com"), "username": name, "password": PASSWORD }),
    )
    .await
}

/// The refresh token of a `Set-Cookie: refresh_token=…` header.
fn cookie_token(set_cookie: &str) -> String {
    set_cookie
        .strip_prefix("refresh_token=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned()
}

/// A POST to `path` authenticated by the refresh cookie alone, with the headers a browser adds.
async fn by_cookie(
    app: &TestApp,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url(path))
        .header("cookie", format!("refresh_token={token}"))
        .header("content-type", "application/json")
        .body("{}");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn the_cookie_is_same_site_strict_unless_configured(backend: Backend) {
    let strict = backend.app().await;
    let lax = backend
        .app_with(|config| config.server.cookie_same_site = CookieSameSite::Lax)
        .await;
    let none = cross_site_app(backend).await;

    let strict = set_cookie(&signup(&strict, "alice").await);
    let lax = set_cookie(&signup(&lax, "alice").await);
    let none = set_cookie(&signup(&none, "alice").await);

    assert!(strict.contains("SameSite=Strict"), "{strict}");
    assert!(lax.contains("SameSite=Lax"), "{lax}");
    for wanted in [
        "SameSite=None",
        "Secure",
        "HttpOnly",
        "Partitioned",
        "Path=/api/auth",
    ] {
        assert!(none.contains(wanted), "{wanted} missing: {none}");
    }
}

async fn logout_clears_the_cookie_with_the_attributes_that_set_it(backend: Backend) {
    let app = cross_site_app(backend).await;
    let token = cookie_token(&set_cookie(&signup(&app, "alice").await));

    let logout = by_cookie(&app, "/api/auth/logout", &token, &[("origin", SPA)]).await;

    assert_eq!(logout.status(), 204);
    let cleared = set_cookie(&logout);
    for wanted in ["Max-Age=0", "SameSite=None", "Secure", "Partitioned"] {
        assert!(cleared.contains(wanted), "{wanted} missing: {cleared}");
    }
}

async fn a_cookie_refresh_from_a_listed_or_the_same_site_is_accepted(backend: Backend) {
    let app = cross_site_app(backend).await;
    let token = cookie_token(&set_cookie(&signup(&app, "alice").await));

    let listed = by_cookie(&app, "/api/auth/refresh", &token, &[("origin", SPA)]).await;
    assert_eq!(listed.status(), 200);
    let token = cookie_token(&set_cookie(&listed));
    let own_origin = app.base_url.clone();
    let same_origin = by_cookie(
        &app,
        "/api/auth/refresh",
        &token,
        &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(same_origin.status(), 200);
    let token = cookie_token(&set_cookie(&same_origin));
    let sibling = by_cookie(
        &app,
        "/api/auth/refresh",
        &token,
        &[
            ("origin", "https://www.example.com"),
            ("sec-fetch-site", "same-site"),
        ],
    )
    .await;
    assert_eq!(sibling.status(), 200, "the browser judged it same-site");
    let token = cookie_token(&set_cookie(&sibling));
    let no_origin = by_cookie(
        &app,
        "/api/auth/refresh",
        &token,
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(no_origin.status(), 200);
    let token = cookie_token(&set_cookie(&no_origin));
    let not_a_browser = by_cookie(&app, "/api/auth/refresh", &token, &[]).await;
    assert_eq!(not_a_browser.status(), 200, "no Origin, no Sec-Fetch-Site");
}

async fn a_cookie_request_from_another_site_is_refused_and_spends_nothing(backend: Backend) {
    let app = cross_site_app(backend).await;
    let token = cookie_token(&set_cookie(&signup(&app, "alice").await));
    let evil = [
        ("origin", "https://evil.example.net"),
        ("sec-fetch-site", "cross-site"),
    ];

    let refresh = by_cookie(&app, "/api/auth/refresh", &token, &evil).await;
    let logout = by_cookie(&app, "/api/auth/logout", &token, &evil).await;
    let no_origin = by_cookie(
        &app,
        "/api/auth/refresh",
        &token,
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    let opaque = by_cookie(&app, "/api/auth/logout", &token, &[("origin", "null")]).await;
    let form = app
        .http
        .post(app.url("/api/auth/logout"))
        .header("cookie", format!("refresh_token={token}"))
        .header("origin", "https://evil.example.net")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();

    for response in [refresh, logout, no_origin, opaque, form] {
        assert_eq!(response.status(), 403);
        assert_eq!(code_of(response).await, "csrf_rejected");
    }
    let still = by_cookie(&app, "/api/auth/refresh", &token, &[("origin", SPA)]).await;
    assert_eq!(still.status(), 200, "the refused requests spent nothing");
}

async fn bearer_and_body_credentials_are_not_cookie_authenticated(backend: Backend) {
    let app = cross_site_app(backend).await;
    let body: Value = signup(&app, "alice").await.json().await.unwrap();
    let evil = "https://evil.example.net";

    let by_body = app
        .http
        .post(app.url("/api/auth/refresh"))
        .header("origin", evil)
        .json(&json!({ "refresh_token": body["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_body.status(), 200);
    let next: Value = by_body.json().await.unwrap();
    let by_bearer = app
        .http
        .post(app.url("/api/auth/logout"))
        .header("origin", evil)
        .header("cookie", "refresh_token=whatever")
        .bearer_auth(next["access_token"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    assert_eq!(by_bearer.status(), 204);
}

async fn the_refresh_token_can_be_kept_out_of_the_body(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.refresh_token_in_body = false)
        .await;

    let signed_up = signup(&app, "alice").await;
    assert_eq!(signed_up.status(), 201);
    let token = cookie_token(&set_cookie(&signed_up));
    let body: Value = signed_up.json().await.unwrap();
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status(), 200);
    assert!(cookie_token(&set_cookie(&login)).len() > 20);
    let logged_in: Value = login.json().await.unwrap();
    let refreshed = by_cookie(&app, "/api/auth/refresh", &token, &[]).await;
    assert_eq!(refreshed.status(), 200);
    assert!(cookie_token(&set_cookie(&refreshed)).len() > 20);
    let refreshed: Value = refreshed.json().await.unwrap();

    for answer in [&body, &logged_in, &refreshed] {
        assert!(answer.get("refresh_token").is_none(), "{answer}");
        assert!(answer["access_token"].is_string(), "{answer}");
        assert!(answer["refresh_expires_in"].is_u64(), "{answer}");
    }
}

async fn a_missing_refresh_credential_is_401_unauthorized(backend: Backend) {
    let app = backend.app().await;

    let empty = app.post_json("/api/auth/refresh", &json!({})).await;
    let no_body = app
        .http
        .post(app.url("/api/auth/refresh"))
        .send()
        .await
        .unwrap();
    let logout = app.post_json("/api/auth/logout", &json!({})).await;

    for response in [empty, no_body, logout] {
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(code_of(response).await, "unauthorized");
    }
}

/// The SPA of `.ci/browser/page.html` on `http://127.0.0.1:A`, a hostile copy on
/// `http://127.0.0.1:B` and the service on `http://localhost:S`: two sites, so the cookie is
/// third-party to the page. `.ci/browser/flow.mjs` drives Chromium through it and reports.
async fn a_spa_on_another_site_works_by_cookie_in_chromium(backend: Backend) {
    let Some(browser) =
        BrowserKit::find("browser::a_spa_on_another_site_works_by_cookie_in_chromium")
    else {
        return;
    };
    let page = PageServer::start(&browser.dir.join("page.html")).await;
    let foreign = PageServer::start(&browser.dir.join("page.html")).await;
    let app = backend
        .app_with(|config| {
            config.server.cors_origins = vec![page.origin.clone()];
            config.server.cookie_secure = true;
            config.server.cookie_same_site = CookieSameSite::None;
            config.auth.refresh_token_in_body = false;
        })
        .await;
    let service = app.base_url.replace("127.0.0.1", "localhost");

    let report = browser.run(&service, &page.origin, &foreign.origin).await;

    let step = |name: &str| report[name].clone();
    assert_eq!(step("signup")["status"], 201, "{report:#}");
    assert!(step("signup")["body"].get("refresh_token").is_none());
    let cookie = step("cookie");
    assert_eq!(cookie["httpOnly"], true, "{report:#}");
    assert_eq!(cookie["secure"], true);
    assert_eq!(cookie["sameSite"], "None");
    assert!(
        cookie["partitionKey"].is_string(),
        "kept, partitioned: {cookie}"
    );
    assert_eq!(step("me")["status"], 200, "{report:#}");
    assert_eq!(step("me")["body"]["username"], "alice");
    assert_eq!(step("refresh")["status"], 200, "{report:#}");
    assert_ne!(
        step("refresh")["body"]["access_token"],
        step("signup")["body"]["access_token"]
    );
    assert_eq!(step("me_after_refresh")["status"], 200, "{report:#}");
    assert_eq!(step("logout")["status"], 204, "{report:#}");
    assert!(step("cookie_after_logout").is_null(), "{report:#}");
    assert_eq!(step("refresh_after_logout")["status"], 401, "{report:#}");
    assert_eq!(step("refresh_after_logout")["body"]["code"], "unauthorized");
    // The hostile page: its CORS request never leaves the browser (the preflight is refused),
    // and the server refuses its no-cors requests although the browser sent the cookie.
    assert_eq!(step("bob")["status"], 201, "{report:#}");
    assert!(
        step("foreign_cors_refresh")["blocked"].is_string(),
        "{report:#}"
    );
    assert_eq!(step("foreign_no_cors_refresh")["status"], 403, "{report:#}");
    assert_eq!(step("foreign_no_cors_refresh")["cookie_sent"], true);
    assert_eq!(
        step("foreign_no_cors_refresh")["origin"],
        foreign.origin.as_str()
    );
    assert_eq!(step("foreign_no_cors_logout")["status"], 403, "{report:#}");
    assert_eq!(
        step("refresh_after_foreign")["status"],
        200,
        "the hostile page spent and ended nothing: {report:#}"
    );
}

/// SPEC §10 in a real browser: `.ci/browser/passkey.html` on `http://localhost:A` registers a
/// passkey in Chromium's virtual authenticator (a platform authenticator with discoverable
/// credentials and user verification, through DevTools' WebAuthn domain) against the service
/// on `http://localhost:S`, then logs in with it, passwordless and usernameless;
/// `.ci/browser/passkey.mjs` drives it and reports.
async fn a_passkey_registers_and_logs_in_passwordless_in_chromium(backend: Backend) {
    let Some(browser) =
        BrowserKit::find("browser::a_passkey_registers_and_logs_in_passwordless_in_chromium")
    else {
        return;
    };
    let page = PageServer::start(&browser.dir.join("passkey.html")).await;
    let page_origin = page.origin.replace("127.0.0.1", "localhost");
    let app = backend
        .app_with(|config| {
            config.server.cors_origins = vec![page_origin.clone()];
            config.webauthn.rp_id = Some("localhost".to_owned());
            config.webauthn.origins = vec![page_origin.clone()];
        })
        .await;
    let service = app.base_url.replace("127.0.0.1", "localhost");

    let report = browser
        .run_script(
            "passkey.mjs",
            &[("SERVICE", &service), ("PAGE", &page_origin)],
        )
        .await;

    let step = |name: &str| report[name].clone();
    assert_eq!(step("signup")["status"], 201, "{report:#}");
    assert_eq!(step("register")["status"], 201, "{report:#}");
    assert_eq!(step("register")["body"]["passkey"]["name"], "Chromium");
    assert_eq!(
        step("register")["body"]["recovery_codes"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
    let credentials = step("credentials");
    assert_eq!(credentials.as_array().map(Vec::len), Some(1), "{report:#}");
    assert_eq!(credentials[0]["resident"], true, "discoverable: {report:#}");
    assert_eq!(credentials[0]["rpId"], "localhost");
    assert_eq!(step("passwordless")["status"], 200, "{report:#}");
    let token = step("passwordless")["body"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(crate::mfa::claims(&token)["amr"], json!(["hwk", "mfa"]));
    assert_eq!(step("me")["status"], 200, "{report:#}");
    assert_eq!(step("me")["body"]["username"], "alice");
    assert_eq!(step("passwordless_again")["status"], 200, "{report:#}");
    assert_eq!(step("password_step")["body"]["mfa_required"], true);
    assert_eq!(
        step("password_step")["body"]["methods"],
        json!(["passkey", "recovery_code"])
    );
    assert!(
        step("sign_count_after").as_u64().unwrap_or(0) >= 2,
        "{report:#}"
    );
}

/// Node, `playwright-core` (installed by `.ci/browser/setup`) and Debian's Chromium.
struct BrowserKit {
    dir: PathBuf,
}

const CHROMIUM: &str = "/usr/bin/chromium";

impl BrowserKit {
    /// The kit, or `None` (with a SKIPPED note) outside CI when a part is missing; under `CI`
    /// a missing part fails the test.
    fn find(test: &str) -> Option<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/browser");
        let node = std::process::Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        let missing = [
            (!node).then_some("node (apt-get install nodejs npm)"),
            (!Path::new(CHROMIUM).exists()).then_some("chromium (apt-get install chromium)"),
            (!dir.join("node_modules/playwright-core").exists())
                .then_some("playwright-core (npm ci in .ci/browser)"),
        ];
        let missing: Vec<&str> = missing.into_iter().flatten().collect();
        if missing.is_empty() {
            return Some(Self { dir });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but the browser test lacks {}: .ci/browser/setup installs them",
            missing.join(", ")
        );
        eprintln!(
            "SKIPPED {test}: missing {} (run .ci/browser/setup)",
            missing.join(", ")
        );
        None
    }

    /// Runs the flow and returns its report (one JSON object, step name → observation).
    async fn run(&self, service: &str, page: &str, foreign: &str) -> Value {
        self.run_script(
            "flow.mjs",
            &[("SERVICE", service), ("PAGE", page), ("FOREIGN", foreign)],
        )
        .await
    }

    /// Runs one of the kit's scripts with `env` and returns its report.
    async fn run_script(&self, script: &str, env: &[(&str, &str)]) -> Value {
        let child = tokio::process::Command::new("node")
            .arg(self.dir.join(script))
            .envs(env.iter().copied())
            .env("CHROMIUM", CHROMIUM)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run node");
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("the browser flow finished within 2 minutes")
            .expect("node ran");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the browser flow failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|error| panic!("the report is not JSON ({error}):\n{stdout}\n{stderr}"))
    }
}

/// Serves one HTML page at every path on `http://127.0.0.1:<free port>`.
struct PageServer {
    origin: String,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    async fn start(file: &Path) -> Self {
        let html = std::fs::read_to_string(file).expect("the page is readable");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new().fallback(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { origin, task }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

backend_tests! {
    the_cookie_is_same_site_strict_unless_configured,
    logout_clears_the_cookie_with_the_attributes_that_set_it,
    a_cookie_refresh_from_a_listed_or_the_same_site_is_accepted,
    a_cookie_request_from_another_site_is_refused_and_spends_nothing,
    bearer_and_body_credentials_are_not_cookie_authenticated,
    the_refresh_token_can_be_kept_out_of_the_body,
    a_missing_refresh_credential_is_401_unauthorized,
    a_spa_on_another_site_works_by_cookie_in_chromium,
    a_passkey_registers_and_logs_in_passwordless_in_chromium,
}
