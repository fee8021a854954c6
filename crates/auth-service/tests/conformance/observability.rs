//! Observability of the running binary (SPEC §9): every metric moves as a scripted flow runs,
//! counters with known labels are exposed at 0 from the start, both transports' latencies are
//! histograms with the same buckets, and no log line at any level carries a secret the flow
//! used. The tests that count spawn the binary, so its metrics and logs are its own.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use auth_service::grpc::pb;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};
use uuid::Uuid;

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::link_token;
use crate::support::process::{free_port, Spawned};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "another horse battery staple";
pub(crate) const ADMIN_PASSWORD: &str = "the bootstrap admin's own passphrase";

/// The environment every spawned binary here gets: small argon2 parameters, the bootstrap
/// admin, mail into `mail_dir`.
pub(crate) fn base_env(
    db: &TestDatabase,
    mail_dir: &std::path::Path,
) -> Vec<(&'static str, String)> {
    vec![
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__PASSWORD__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("APP__PASSWORD__ARGON2_ITERATIONS", "1".to_owned()),
        ("APP__SERVER__COOKIE_SECURE", "false".to_owned()),
        ("APP__BOOTSTRAP__ADMIN_EMAIL", "root@example.com".to_owned()),
        ("APP__BOOTSTRAP__ADMIN_USERNAME", "root".to_owned()),
        ("APP__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("APP__MAIL__FILE_DIR", mail_dir.display().to_string()),
    ]
}

/// What a client used along the flow that must never show up in a log.
#[derive(Default)]
struct Used {
    secrets: Vec<String>,
    user_id: String,
    email: String,
}

/// A client's life against `service`: signup, me, a wrong password, login, refresh,
/// introspection, a password change, a reset through the mailed link, logout.
async fn scripted_flow(service: &Spawned, mail_dir: &std::path::Path) -> Used {
    let http = reqwest::Client::new();
    let name = format!("obs{}", &Uuid::new_v4().simple().to_string()[..10]);
    let email = format!("{name}@example.com");
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = http
            .post(service.url(path))
            .header("x-request-id", format!("flow-{}", path.replace('/', "-")))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let mut used = Used {
        secrets: vec![PASSWORD.into(), NEW_PASSWORD.into(), ADMIN_PASSWORD.into()],
        email: email.clone(),
        ..Used::default()
    };

    let signup: Value = post(
        "/api/auth/signup",
        None,
        json!({ "email": email, "username": name, "password": PASSWORD }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = signup["access_token"].as_str().unwrap().to_owned();
    used.user_id = signup["user"]["id"].as_str().unwrap().to_owned();
    used.secrets.push(access.clone());
    used.secrets
        .push(signup["refresh_token"].as_str().unwrap().to_owned());
    let me = http
        .get(service.url("/api/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let wrong = post(
        "/api/auth/login",
        None,
        json!({ "username": name, "password": "wrong password here" }),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let login: Value = post(
        "/api/auth/login",
        None,
        json!({ "username": name, "password": PASSWORD }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();
    used.secrets
        .push(login["access_token"].as_str().unwrap().to_owned());
    used.secrets.push(refresh_token.clone());
    let refreshed: Value = post(
        "/api/auth/refresh",
        None,
        json!({ "refresh_token": refresh_token }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let latest = refreshed["access_token"].as_str().unwrap().to_owned();
    used.secrets.push(latest.clone());
    used.secrets
        .push(refreshed["refresh_token"].as_str().unwrap().to_owned());
    let introspected: Value = post("/api/auth/introspect", None, json!({ "token": latest }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    let change = post(
        "/api/auth/password/change",
        Some(&latest),
        json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await
    .unwrap();
    assert_eq!(change.status(), 204);
    let forgot = post("/api/auth/password/forgot", None, json!({ "email": email }))
        .await
        .unwrap();
    assert_eq!(forgot.status(), 202);
    let reset_token = wait_link(mail_dir, &email, "/reset-password").await;
    used.secrets.push(reset_token.clone());
    let reset = post(
        "/api/auth/password/reset",
        None,
        json!({ "token": reset_token, "new_password": "a third horse battery staple" }),
    )
    .await
    .unwrap();
    assert_eq!(reset.status(), 204);
    used.secrets.push("a third horse battery staple".into());
    let verify_token = wait_link(mail_dir, &email, "/verify-email").await;
    used.secrets.push(verify_token);
    let again: Value = post(
        "/api/auth/login",
        None,
        json!({ "email": email, "password": "a third horse battery staple" }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let last = again["access_token"].as_str().unwrap().to_owned();
    used.secrets.push(last.clone());
    let logout = post("/api/auth/logout", Some(&last), json!({}))
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    used
}

/// The token of the `path` link in a mail to `to` (file transport), once it has arrived.
async fn wait_link(dir: &std::path::Path, to: &str, path: &str) -> String {
    for _ in 0..500 {
        for entry in std::fs::read_dir(dir).unwrap() {
            let mail = std::fs::read_to_string(entry.unwrap().path())
                .unwrap_or_default()
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            if mail.contains(to) && mail.contains(&format!("{path}?token=")) {
                return link_token(&mail, path);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no mail to {to} with a {path} link");
}

/// Every sample of `/metrics` as `name{labels}` → value.
pub(crate) async fn scrape(service: &Spawned) -> HashMap<String, f64> {
    let text = reqwest::get(service.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of `name` (any labels) whose labels contain every one of `with`.
pub(crate) fn total(samples: &HashMap<String, f64>, name: &str, with: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let bare = series.split('{').next().unwrap_or_default();
            bare == name && with.iter().all(|label| series.contains(label))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Waits until `name` (a gauge) reads `want`.
async fn wait_gauge(service: &Spawned, name: &str, want: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = total(&scrape(service).await, name, &[]);
        if want(value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed at {value}\n{}",
            service.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_metric_of_the_spec_moves_as_a_flow_runs(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let mut env = base_env(&db, &mail_dir);
    // A broker that is not there: events stay pending, so the outbox gauge has to move.
    env.push((
        "APP__EVENTS__NATS_URL",
        format!("nats://127.0.0.1:{}", free_port()),
    ));
    env.push(("APP__EVENTS__PUBLISH_TIMEOUT", "200ms".to_owned()));
    env.push(("APP__LIMITS__FORGOT_PASSWORD_PER_IP__MAX", "1".to_owned()));
    env.push(("APP__LIMITS__FORGOT_PASSWORD_PER_IP__PER", "1h".to_owned()));
    let service = Spawned::start(dir.path(), &env).await;
    let before = scrape(&service).await;

    let used = scripted_flow(&service, &mail_dir).await;
    // One more forgotten password than the address may ask for.
    let refused = reqwest::Client::new()
        .post(service.url("/api/auth/password/forgot"))
        .json(&json!({ "email": used.email }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let after = scrape(&service).await;

    let moved = |name: &str, with: &[&str]| {
        let (was, is) = (total(&before, name, with), total(&after, name, with));
        assert!(is > was, "{name}{with:?} did not move: {was} → {is}");
    };
    moved(
        "auth_http_requests_total",
        &[
            "method=\"POST\"",
            "route=\"/api/auth/login\"",
            "status=\"200\"",
        ],
    );
    moved(
        "auth_http_requests_total",
        &["route=\"/api/auth/login\"", "status=\"401\""],
    );
    moved(
        "auth_http_request_duration_seconds_count",
        &["method=\"GET\"", "route=\"/api/auth/me\""],
    );
    moved(
        "auth_operations_total",
        &["operation=\"login\"", "status=\"success\""],
    );
    moved(
        "auth_operations_total",
        &["operation=\"login\"", "status=\"failure\""],
    );
    moved("auth_tokens_generated_total", &["type=\"access\""]);
    moved("auth_tokens_generated_total", &["type=\"refresh\""]);
    moved("auth_password_hash_duration_seconds_count", &[]);
    moved("auth_rate_limited_total", &["limit=\"forgot_password_ip\""]);
    // The gauges come from the database. The flow ended every session it opened (password
    // change, reset, logout); one more login leaves exactly one open. Every event waits for
    // the absent broker.
    let login = reqwest::Client::new()
        .post(service.url("/api/auth/login"))
        .json(&json!({ "email": used.email, "password": "a third horse battery staple" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let pending = wait_gauge(&service, "auth_outbox_pending", |value| value >= 10.0).await;
    let active = wait_gauge(&service, "auth_active_sessions", |value| value == 1.0).await;
    assert!(pending >= 10.0, "{pending}");
    assert_eq!(active, 1.0);
}

async fn no_log_line_at_any_level_carries_a_secret_of_the_flow(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let mut env = base_env(&db, &mail_dir);
    env.push(("RUST_LOG", "trace".to_owned()));
    env.push(("APP__LOG__FORMAT", "json".to_owned()));
    let mut service = Spawned::start(dir.path(), &env).await;

    let mut used = scripted_flow(&service, &mail_dir).await;
    assert_eq!(service.terminate(Duration::from_secs(10)), Some(0));
    let output = service.output();

    sqlx::any::install_default_drivers();
    let mut db_connection = AnyConnection::connect(&db.url).await.unwrap();
    let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_all(&mut db_connection)
        .await
        .unwrap();
    used.secrets.extend(hashes);
    let keys: Vec<Vec<u8>> = sqlx::query_scalar("SELECT private_key FROM signing_keys")
        .fetch_all(&mut db_connection)
        .await
        .unwrap();
    for key in keys {
        used.secrets
            .push(base64::engine::general_purpose::STANDARD.encode(&key));
        used.secrets
            .push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key));
        used.secrets
            .push(key.iter().map(|b| format!("{b:02x}")).collect());
    }
    assert!(used.secrets.len() >= 15, "{}", used.secrets.len());

    assert!(
        output.lines().count() > 50,
        "trace logging is on:\n{output}"
    );
    for secret in &used.secrets {
        if let Some(line) = output.lines().find(|line| line.contains(secret.as_str())) {
            panic!("a log line carries a secret of the flow: {line}");
        }
    }
    assert!(
        !output.contains(&used.email),
        "a log line carries the user's email"
    );
    // Every line logged while serving a request carries its id.
    let lines_of_login: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("flow--api-auth-login"))
        .collect();
    assert!(
        !lines_of_login.is_empty(),
        "no line names the login's request id"
    );
    assert!(output.contains(&used.user_id), "user ids may be logged");
}

/// The one sample of `name` whose labels contain every one of `with`, if it is exposed.
fn sample(samples: &HashMap<String, f64>, name: &str, with: &[&str]) -> Option<f64> {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && with.iter().all(|label| series.contains(label))
        })
        .map(|(_, value)| *value)
        .collect();
    assert!(
        found.len() <= 1,
        "{name}{with:?} names {} series",
        found.len()
    );
    found.first().copied()
}

/// The `le` bounds of the `_bucket` lines of `name` in an exposition.
fn buckets(text: &str, name: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}_bucket{{")))
        .filter_map(|line| Some(line.split("le=\"").nth(1)?.split('"').next()?.to_owned()))
        .collect()
}

/// Issue 16: gRPC latency is a histogram (a summary cannot be summed across replicas and
/// decays to nothing when idle), with the buckets of the HTTP one.
async fn grpc_durations_are_a_histogram_with_the_http_buckets(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let mut grpc = app.grpc().await;

    grpc.validate_token(pb::ValidateTokenRequest {
        token: alice.access_token.clone(),
    })
    .await
    .unwrap();
    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(
        text.contains("# TYPE auth_grpc_request_duration_seconds histogram"),
        "{text}"
    );
    let grpc_buckets = buckets(&text, "auth_grpc_request_duration_seconds");
    assert!(
        grpc_buckets.contains("+Inf") && grpc_buckets.len() > 5,
        "{grpc_buckets:?}"
    );
    assert_eq!(
        grpc_buckets,
        buckets(&text, "auth_http_request_duration_seconds")
    );
    assert!(text.contains("auth_grpc_request_duration_seconds_bucket{rpc=\"ValidateToken\""));
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("auth_grpc_request_duration_seconds{")),
        "no summary quantiles"
    );
}

/// Issue 16: a counter with a closed set of labels is exposed at 0 from the start, so a rate or
/// an alert on it has a series before the first failure; the first failure moves that series.
async fn counters_with_known_labels_are_at_zero_before_anything_happens(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__PASSWORD__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("APP__PASSWORD__ARGON2_ITERATIONS", "1".to_owned()),
        (
            "APP__MAIL__FILE_DIR",
            dir.path().join("mail").display().to_string(),
        ),
    ];
    let service = Spawned::start(dir.path(), &env).await;
    let mut zero: Vec<(&str, Vec<String>)> = Vec::new();
    for operation in ["login", "signup"] {
        for status in ["success", "failure"] {
            zero.push((
                "auth_operations_total",
                vec![
                    format!("operation=\"{operation}\""),
                    format!("status=\"{status}\""),
                ],
            ));
        }
    }
    for kind in ["access", "refresh"] {
        zero.push((
            "auth_tokens_generated_total",
            vec![format!("type=\"{kind}\"")],
        ));
    }
    for limit in [
        "login_ip",
        "signup_ip",
        "forgot_password_ip",
        "lookup_ip",
        "mail_account",
        "lockout",
    ] {
        zero.push((
            "auth_rate_limited_total",
            vec![format!("limit=\"{limit}\"")],
        ));
    }
    for outcome in ["uncounted", "evicted"] {
        zero.push((
            "auth_rate_limiter_full_total",
            vec![format!("outcome=\"{outcome}\"")],
        ));
    }
    for kind in ["password_reset", "email_verification"] {
        zero.push(("auth_mail_sent_total", vec![format!("kind=\"{kind}\"")]));
        // The file transport is configured, so its own refusal is a known reason too.
        for reason in ["address", "build", "timeout", "closed", "file"] {
            zero.push((
                "auth_mail_failures_total",
                vec![format!("kind=\"{kind}\""), format!("reason=\"{reason}\"")],
            ));
        }
    }
    for event_type in auth_service::domain::Event::ALL_KINDS {
        zero.push((
            "auth_events_published_total",
            vec![format!("type=\"{event_type}\"")],
        ));
    }
    zero.push(("auth_events_failed_total", Vec::new()));
    for task in ["reset_link", "verification_link"] {
        zero.push((
            "auth_background_dropped_total",
            vec![format!("task=\"{task}\"")],
        ));
    }

    let before = scrape(&service).await;
    let refused = reqwest::Client::new()
        .post(service.url("/api/auth/login"))
        .json(&json!({ "username": "nobody", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let after = scrape(&service).await;

    for (name, labels) in &zero {
        let with: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert_eq!(sample(&before, name, &with), Some(0.0), "{name}{with:?}");
    }
    assert_eq!(refused.status(), 401);
    let failed = ["operation=\"login\"", "status=\"failure\""];
    assert_eq!(sample(&after, "auth_operations_total", &failed), Some(1.0));
    assert_eq!(
        sample(&after, "auth_rate_limited_total", &["limit=\"lockout\""]),
        Some(0.0)
    );
}

use crate::support::Backend;

backend_tests! {
    every_metric_of_the_spec_moves_as_a_flow_runs,
    grpc_durations_are_a_histogram_with_the_http_buckets,
    counters_with_known_labels_are_at_zero_before_anything_happens,
    no_log_line_at_any_level_carries_a_secret_of_the_flow,
}
