//! Signed webhooks (SPEC §6, issue 19): every event type reaches an endpoint with the
//! documented envelope and a Standard Webhooks signature that an independent implementation
//! verifies (the `standardwebhooks` package in `webhooks.py`, and a hand check here); an
//! endpoint that is down misses nothing and holds back no other; retries back off; a 410
//! disables the endpoint; a service killed mid-delivery loses nothing.
//! Under `CI` a missing `python3` package fails the test; `.ci/run` installs it.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use auth_service::config::{Config, Secret, WebhookConfig};
use base64::Engine;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};
use tokio::sync::mpsc;

use crate::backend_tests;
use crate::events::{
    assert_envelope, assert_every_type_arrives, every_kind_of_change, fast_relay, unique,
};
use crate::support::backend::TestDatabase;
use crate::support::process::Spawned;
use crate::support::webhooks::{Received, Receiver, HANG, SECRET};
use crate::support::{with_admin, Backend, TestApp, PASSWORD};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/webhooks.py");

/// Exit code of `webhooks.py` when the package is missing.
const MISSING_PACKAGE: i32 = 3;

/// How long deliveries may take on a busy machine.
const DEADLINE: Duration = Duration::from_secs(20);

fn endpoint(name: &str, receiver: &Receiver) -> WebhookConfig {
    WebhookConfig {
        name: Some(name.to_owned()),
        url: Secret(SecretString::from(receiver.url.clone())),
        secret: Secret(SecretString::from(SECRET.to_owned())),
        types: Vec::new(),
    }
}

fn webhooks_to(config: &mut Config, endpoints: Vec<WebhookConfig>) {
    fast_relay(config);
    config.events.webhooks = endpoints;
}

/// The signature checked by hand: HMAC-SHA256 with the secret's bytes over
/// `{id}.{timestamp}.{body}`, base64, after `v1,`.
fn assert_signed(delivery: &Received) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let signed = format!("{}.{}.{}", delivery.id, delivery.timestamp, delivery.body);
    let (version, signature) = delivery.signature.split_once(',').unwrap();
    assert_eq!(version, "v1", "{delivery:?}");
    let tag = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .unwrap();
    assert!(
        ring::hmac::verify(&key, signed.as_bytes(), &tag).is_ok(),
        "bad signature: {delivery:?}"
    );
    assert!(delivery.timestamp.parse::<i64>().is_ok(), "{delivery:?}");
    assert_eq!(delivery.envelope()["id"], delivery.id.as_str());
    assert_eq!(delivery.content_type, "application/json");
}

/// `webhooks.py`'s verdict on `deliveries`.
fn python_verifies(deliveries: &[Received]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let list: Vec<Value> = deliveries
        .iter()
        .map(|delivery| {
            json!({
                "headers": {
                    "webhook-id": delivery.id,
                    "webhook-timestamp": delivery.timestamp,
                    "webhook-signature": delivery.signature,
                },
                "body": delivery.body,
            })
        })
        .collect();
    std::fs::write(file.path(), serde_json::to_vec(&list).unwrap()).unwrap();
    let output = match Command::new("python3")
        .arg(SCRIPT)
        .arg(SECRET)
        .arg(file.path())
        .output()
    {
        Ok(output) => output,
        Err(error) => return missing(&format!("python3 cannot be run ({error})")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(MISSING_PACKAGE) {
        return missing(stdout.trim());
    }
    assert!(
        output.status.success(),
        "standardwebhooks refused:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), format!("verified {}", deliveries.len()));
}

fn missing(what: &str) {
    let install = "python3 -m pip install -r .ci/verifiers-requirements.txt (.ci/run does)";
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the standardwebhooks check cannot run: {what}; {install}"
    );
    eprintln!("SKIPPED standardwebhooks check: {what}; {install}");
}

async fn connect(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url).await.unwrap()
}

/// Deliveries of `endpoint` neither delivered nor given up.
async fn pending(app: &TestApp, endpoint: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint = $1 AND done_at IS NULL",
    )
    .bind(endpoint)
    .fetch_one(&mut connect(&app.db.url).await)
    .await
    .unwrap()
}

/// Waits until `done` holds; `tick` runs between looks.
async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
    tick: impl Fn(),
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tick();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn every_event_type_arrives_signed_at_a_webhook(backend: Backend) {
    let receiver = Receiver::start(200).await;
    let app = backend
        .app_with(|config| {
            with_admin(config);
            webhooks_to(config, vec![endpoint("audit", &receiver)]);
        })
        .await;

    let user_id = every_kind_of_change(&app).await;

    let (tx, mut events) = mpsc::unbounded_channel();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut fed = 0;
    let collect = async {
        loop {
            let received = receiver.accepted();
            for delivery in &received[fed..] {
                let _ = tx.send(delivery.envelope());
            }
            fed = received.len();
            tokio::time::sleep(Duration::from_millis(30)).await;
            if tokio::time::Instant::now() > deadline {
                break;
            }
        }
    };
    tokio::select! {
        () = assert_every_type_arrives(&mut events, &user_id) => {}
        () = collect => panic!("not every type arrived"),
    }
    let deliveries: Vec<Received> = receiver
        .accepted()
        .into_iter()
        .filter(|delivery| delivery.envelope()["data"]["user_id"] == user_id.as_str())
        .collect();
    let ids: HashSet<&str> = deliveries
        .iter()
        .map(|delivery| delivery.id.as_str())
        .collect();
    assert_eq!(ids.len(), deliveries.len(), "each event once");
    for delivery in &deliveries {
        assert_signed(delivery);
        let envelope = delivery.envelope();
        assert_envelope(&envelope, envelope["type"].as_str().unwrap(), &user_id);
    }
    python_verifies(&deliveries);
}

/// Only the types an endpoint names reach it (exact, or a prefix ending in `*`).
async fn an_endpoint_gets_only_the_types_it_names(backend: Backend) {
    let sessions = Receiver::start(200).await;
    let everything = Receiver::start(200).await;
    let app = backend
        .app_with(|config| {
            let mut only = endpoint("sessions", &sessions);
            only.types = vec!["auth:session.*".to_owned()];
            webhooks_to(config, vec![only, endpoint("all", &everything)]);
        })
        .await;

    let user = app.signed_up(&unique("types")).await;

    wait_until(
        "both endpoints served",
        || async { everything.accepted().len() >= 2 },
        || {},
    )
    .await;
    wait_until(
        "the session endpoint served",
        || async { !sessions.accepted().is_empty() },
        || {},
    )
    .await;
    let types = |receiver: &Receiver| -> Vec<String> {
        receiver
            .accepted()
            .iter()
            .map(|delivery| delivery.envelope()["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(types(&sessions), ["auth:session.created"]);
    assert_eq!(
        types(&everything),
        ["auth:user.registered", "auth:session.created"]
    );
    assert_eq!(
        everything.accepted()[0].envelope()["data"]["user_id"],
        user.user_id.as_str()
    );
}

async fn two_hundred_changes_during_an_endpoint_outage_all_arrive_after_and_hold_back_no_other(
    backend: Backend,
) {
    let down = Receiver::start(200).await;
    let up = Receiver::start(200).await;
    let app = backend
        .app_with(|config| {
            webhooks_to(config, vec![endpoint("down", &down), endpoint("up", &up)]);
        })
        .await;
    let mut users = Vec::new();
    for name in ["gina", "hank", "ivy", "jon"] {
        users.push(app.signed_up(&unique(name)).await);
    }
    wait_until(
        "the first events delivered to both",
        || async {
            pending(&app, "down").await + pending(&app, "up").await == 0 && up.accepted().len() == 8
        },
        || {},
    )
    .await;
    let before = down.received().len();

    // The endpoint freezes: each request hangs until the client's timeout.
    down.answer(HANG);
    for change in 0..200 {
        let user = &users[change % users.len()];
        let patched = app
            .http
            .patch(app.url("/api/auth/me"))
            .bearer_auth(&user.access_token)
            .json(&json!({ "display_name": format!("change {change}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200);
    }
    // The healthy endpoint gets everything meanwhile, without the app's clock moving (the
    // frozen one's retries would need it to).
    wait_until(
        "all 200 at the healthy endpoint",
        || async { up.accepted().len() == 208 },
        || {},
    )
    .await;
    assert!(
        down.received()[before..]
            .iter()
            .any(|delivery| delivery.answered == HANG),
        "the frozen endpoint was tried"
    );
    assert!(pending(&app, "down").await > 0);
    down.answer(200);
    let clock = app.clock.clone();
    wait_until(
        "all 200 at the endpoint that was down",
        || async { pending(&app, "down").await == 0 },
        || clock.advance(Duration::from_secs(1)),
    )
    .await;

    let arrived: Vec<Received> = down.accepted().into_iter().skip(8).collect();
    let ids: HashSet<&str> = arrived
        .iter()
        .map(|delivery| delivery.id.as_str())
        .collect();
    assert_eq!(arrived.len(), 200, "each change once, none lost");
    assert_eq!(ids.len(), 200, "none twice");
    for receiver in [&down, &up] {
        let accepted = receiver.accepted();
        for user in &users {
            let expected: Vec<String> = crate::events::outbox_ids_of(&app, &user.user_id)
                .await
                .into_iter()
                .skip(2)
                .collect();
            assert_eq!(expected.len(), 50);
            let of_user: Vec<String> = accepted
                .iter()
                .skip(8)
                .filter(|delivery| delivery.envelope()["data"]["user_id"] == user.user_id.as_str())
                .map(|delivery| {
                    assert_signed(delivery);
                    delivery.id.clone()
                })
                .collect();
            assert_eq!(of_user, expected, "in order for {}", user.username);
        }
    }
}

/// The app's clock, to the millisecond, between two attempts.
fn seconds_between(earlier: &Received, later: &Received) -> f64 {
    let gap = later.at.unwrap() - earlier.at.unwrap();
    gap.num_milliseconds() as f64 / 1000.0
}

async fn retries_back_off_and_a_410_disables_the_endpoint(backend: Backend) {
    let receiver = Receiver::start(503).await;
    let app = backend
        .app_with(|config| {
            webhooks_to(config, vec![endpoint("flaky", &receiver)]);
            config.events.max_backoff = Duration::from_secs(60);
        })
        .await;
    receiver.watch_clock(app.clock.clone());
    let clock = app.clock.clone();

    app.signed_up(&unique("retry")).await;

    wait_until(
        "a first attempt",
        || async { !receiver.received().is_empty() },
        || {},
    )
    .await;
    let first = receiver.received()[0].id.clone();
    let attempts = || -> Vec<Received> {
        receiver
            .received()
            .into_iter()
            .filter(|delivery| delivery.id == first)
            .collect()
    };
    // The app's time moves in small steps; each retry comes when it is due, never before.
    wait_until(
        "five attempts",
        || async { attempts().len() >= 5 },
        || clock.advance(Duration::from_millis(100)),
    )
    .await;
    let attempts = attempts();
    for (k, pair) in attempts.windows(2).take(4).enumerate() {
        let gap = seconds_between(&pair[0], &pair[1]);
        // Retry k + 1 waits 2^k seconds scaled by a jitter of 0.5 to 1.
        let least = f64::from(1u32 << k) * 0.5;
        assert!(
            gap >= least,
            "gap {k} was {gap} s, less than {least} s: {attempts:?}"
        );
    }
    let (early, late) = (
        seconds_between(&attempts[0], &attempts[1]),
        seconds_between(&attempts[3], &attempts[4]),
    );
    assert!(late > early, "retries back off: {early} s then {late} s");

    receiver.answer(410);
    wait_until(
        "a 410",
        || async {
            receiver
                .received()
                .iter()
                .any(|delivery| delivery.answered == 410)
        },
        || clock.advance(Duration::from_secs(1)),
    )
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("auth_webhook_enabled{endpoint=\"flaky\"} 0"),
        "{metrics}"
    );
    let seen = receiver.received().len();
    receiver.answer(200);
    app.signed_up(&unique("gone")).await;
    for _ in 0..20 {
        clock.advance(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        receiver.received().len(),
        seen,
        "a disabled endpoint gets nothing more"
    );
    assert!(
        pending(&app, "flaky").await > 0,
        "its undelivered events wait for a restart"
    );
}

async fn a_service_killed_mid_delivery_delivers_the_event_after_restart(backend: Backend) {
    let receiver = Receiver::start(HANG).await;
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[events]\npoll_interval = \"50ms\"\npublish_timeout = \"5s\"\nclaim_lease = \"10s\"\n\n\
             [[events.webhooks]]\nname = \"crash\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
            receiver.url
        ),
    )
    .unwrap();
    let env = [
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP_CONFIG", config.display().to_string()),
        ("APP__PASSWORD__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("APP__PASSWORD__ARGON2_ITERATIONS", "1".to_owned()),
    ];
    let mut first = Spawned::start(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let name = unique("kay");
    let signup = http
        .post(first.url("/api/auth/signup"))
        .json(&json!({ "email": format!("{name}@example.com"), "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let user_id = signup.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The endpoint holds the first delivery unanswered; the service dies meanwhile.
    wait_until(
        "the delivery in flight",
        || async { !receiver.received().is_empty() },
        || {},
    )
    .await;
    let in_flight = receiver.received()[0].clone();
    first.kill();
    let done: Option<String> = sqlx::query_scalar(
        "SELECT outcome FROM webhook_deliveries d JOIN outbox o ON o.seq = d.seq \
         WHERE CAST(o.id AS TEXT) = $1",
    )
    .bind(&in_flight.id)
    .fetch_one(&mut connect(&db.url).await)
    .await
    .unwrap();
    assert_eq!(done, None, "the killed service had not marked the delivery");
    receiver.answer(200);

    let _second = Spawned::start(dir.path(), &env).await;
    // The dead relay's lease runs out (10 s), then the new one delivers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !receiver
        .accepted()
        .iter()
        .any(|delivery| delivery.id == in_flight.id)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut types = Vec::new();
    while types.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered: {types:?}"
        );
        types = receiver
            .accepted()
            .iter()
            .map(|delivery| delivery.envelope()["type"].as_str().unwrap().to_owned())
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        types,
        ["auth:user.registered", "auth:session.created"],
        "once each, in order"
    );
    let accepted = receiver.accepted();
    assert_signed(&accepted[0]);
    assert_envelope(&accepted[0].envelope(), "auth:user.registered", &user_id);
}

backend_tests! {
    every_event_type_arrives_signed_at_a_webhook,
    an_endpoint_gets_only_the_types_it_names,
    two_hundred_changes_during_an_endpoint_outage_all_arrive_after_and_hold_back_no_other,
    retries_back_off_and_a_410_disables_the_endpoint,
    a_service_killed_mid_delivery_delivers_the_event_after_restart,
}
