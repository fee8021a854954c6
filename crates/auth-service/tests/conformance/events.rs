//! Events through the transactional outbox (SPEC §6): the envelope on Redis and NATS, nothing
//! lost while the broker is down, and the events of one user in order.

use std::collections::HashSet;
use std::time::Duration;

use auth_service::config::{Config, Secret};
use auth_service::domain::Event;
use auth_service::store::{self, Effects, OutboxEvent};
use chrono::Utc;
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::backend_tests;
use crate::mfa::{delete_with, enrolled};
use crate::support::backend::TestDatabase;
use crate::support::nats::{shared_nats_for, OwnNats};
use crate::support::process::Spawned;
use crate::support::redis::{shared_redis_for, OwnRedis};
use crate::support::{link_token, test_config, with_admin, Backend, TestApp, PASSWORD};

/// How long a published event may take to reach a subscriber on a busy machine.
pub(crate) const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

/// A fast relay: tests wait for events, never for a fixed time.
pub(crate) fn fast_relay(config: &mut Config) {
    config.events.poll_interval = Duration::from_millis(50);
    config.events.max_backoff = Duration::from_secs(1);
    config.events.publish_timeout = Duration::from_secs(3);
}

fn relay_to_redis(config: &mut Config, url: &str) {
    config.redis.url = Some(Secret(SecretString::from(url.to_owned())));
    config.redis.timeout = Duration::from_secs(3);
    fast_relay(config);
}

/// A username no other test (or earlier run on the shared brokers) uses.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Envelopes published on channels matching `pattern`, from the moment this returns.
async fn redis_events(url: &str, pattern: &str) -> mpsc::UnboundedReceiver<Value> {
    let client = redis::Client::open(url).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.psubscribe(pattern).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload().unwrap();
            if tx.send(serde_json::from_str(&payload).unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// The shared NATS server for `test`, and a subscription to `subject` there that is in place
/// before anything is published; `None` where the suite runs without NATS.
async fn nats_subscription(test: &str, subject: &str) -> Option<(String, async_nats::Subscriber)> {
    let nats = shared_nats_for(test)?;
    let client = async_nats::connect(&nats).await.unwrap();
    let messages = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    Some((nats, messages))
}

/// The next envelope whose `data.user_id` is `user_id`.
async fn next_of_user(events: &mut mpsc::UnboundedReceiver<Value>, user_id: &str) -> Value {
    let wait = async {
        loop {
            let event = events.recv().await.expect("subscription open");
            if event["data"]["user_id"] == user_id {
                return event;
            }
        }
    };
    tokio::time::timeout(DELIVERY_DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no event of user {user_id} arrived"))
}

/// Envelopes with an id in `ids`, in arrival order, once all have arrived.
async fn receive_all(events: &mut mpsc::UnboundedReceiver<Value>, ids: &[String]) -> Vec<String> {
    let wanted: HashSet<&String> = ids.iter().collect();
    let mut received = Vec::new();
    let wait = async {
        while received.len() < wanted.len() {
            let event = events.recv().await.expect("subscription open");
            let id = event["id"].as_str().unwrap().to_owned();
            if wanted.contains(&id) {
                received.push(id);
            }
        }
    };
    if tokio::time::timeout(DELIVERY_DEADLINE, wait).await.is_err() {
        panic!(
            "{} of {} events arrived: {received:?}",
            received.len(),
            ids.len()
        );
    }
    received
}

async fn db(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db.url).await.unwrap()
}

/// The outbox rows of `user_id`: event ids in `seq` order.
pub(crate) async fn outbox_ids_of(app: &TestApp, user_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(id AS TEXT) FROM outbox WHERE CAST(user_id AS TEXT) = $1 ORDER BY seq",
    )
    .bind(user_id)
    .fetch_all(&mut db(app).await)
    .await
    .unwrap()
}

pub(crate) async fn unpublished(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&mut db(app).await)
        .await
        .unwrap()
}

/// Unpublished rows whose publishing failed at least once and recorded why.
/// How many users have an event that was tried and failed. A claim takes a user's due events
/// together, so one failed round can mark both events of one user: counting rows would let a
/// user whose events were never tried slip through (and go out before anyone listens).
pub(crate) async fn users_failed_once(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(DISTINCT user_id) FROM outbox \
         WHERE published_at IS NULL AND attempts > 0 AND last_error IS NOT NULL",
    )
    .fetch_one(&mut db(app).await)
    .await
    .unwrap()
}

/// Waits until every outbox row is published; `tick` runs between looks.
pub(crate) async fn wait_all_published(app: &TestApp, tick: impl Fn()) {
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    loop {
        let left = unpublished(app).await;
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} events still unpublished"
        );
        tick();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of an unlabelled metric in `/metrics`.
async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

pub(crate) fn assert_envelope(event: &Value, kind: &str, user_id: &str) {
    let id = Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "{event}");
    assert_eq!(event["type"], kind, "{event}");
    let occurred_at = event["occurred_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(occurred_at).is_ok(),
        "{event}"
    );
    assert!(
        event["pod_id"].as_str().is_some_and(|pod| !pod.is_empty()),
        "{event}"
    );
    assert!(event.get("territory").is_some(), "{event}");
    assert_eq!(event["data"]["user_id"], user_id, "{event}");
}

async fn without_a_broker_events_are_logged_and_marked_published(backend: Backend) {
    let app = backend.app_with(fast_relay).await;

    app.signed_up(&unique("log")).await;

    wait_all_published(&app, || {}).await;
}

/// The relay's claim, straight on the store: a user's due backlog is taken in one batch, in
/// order, but never past an earlier event of the user that is held — leased by a relay or
/// waiting for a retry.
async fn a_claim_takes_a_users_backlog_in_order_but_never_past_a_held_event(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store::connect(&test_config(&db.url).database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let start = Utc::now();
    let event = |user: Uuid, n: i64| OutboxEvent {
        id: Uuid::now_v7(),
        event_type: "auth:user.updated",
        user_id: Some(user),
        occurred_at: start + chrono::Duration::milliseconds(n),
        envelope: json!({ "n": n }),
    };
    // seq order: a1 b1 a2 a3 b2
    let written = [(ann, 1), (bob, 1), (ann, 2), (ann, 3), (bob, 2)];
    for (user, n) in written {
        let effects = Effects {
            events: vec![event(user, n)],
            audit: Vec::new(),
        };
        store.record_effects(&effects).await.unwrap();
    }
    let now = start + chrono::Duration::seconds(1);
    let lease = now + chrono::Duration::seconds(60);
    // Claimed events as (seq, "a2"-style label), in the order the claim returned them.
    let claim = |limit: u32| {
        let store = store.clone();
        async move {
            let claimed = store.claim_events(now, lease, limit).await.unwrap();
            claimed
                .into_iter()
                .map(|event| {
                    let who = if event.user_id == Some(ann) { "a" } else { "b" };
                    let n = serde_json::from_str::<Value>(&event.payload).unwrap()["n"].clone();
                    (event.seq, format!("{who}{n}"))
                })
                .collect::<Vec<_>>()
        }
    };
    let labels = |claimed: &[(i64, String)]| -> Vec<String> {
        claimed.iter().map(|(_, label)| label.clone()).collect()
    };

    // a1 is leased by one claim; a2 and a3 wait behind it, while bob's backlog goes whole.
    let first = claim(1).await;
    assert_eq!(labels(&first), ["a1"]);
    assert_eq!(labels(&claim(10).await), ["b1", "b2"]);
    assert!(claim(10).await.is_empty());

    // Once a1 is out, ann's backlog goes in one batch, in order.
    store.mark_published(&[first[0].0], now).await.unwrap();
    let rest = claim(10).await;
    assert_eq!(labels(&rest), ["a2", "a3"]);

    // A retry scheduled later holds the events behind it even when theirs come due first.
    let (a2, a3) = (rest[0].0, rest[1].0);
    store
        .record_publish_failure(a2, "refused", now + chrono::Duration::hours(1))
        .await
        .unwrap();
    store
        .record_publish_failure(a3, "refused", now - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(claim(10).await.is_empty());
    store.close().await;
}

/// PostgreSQL only (SQLite runs one writer at a time): marking events published takes its
/// turn with the claims and the fan-out lane, which update the same outbox rows many at a
/// time. Without a turn, the mark and the fan-out's update deadlocked under load (PostgreSQL's
/// log: `deadlock detected` between the two statements) and the aborted mark left published
/// events leased for the whole lease: the benchmark's outbox drained 59.6 s after its load.
/// The turn is the advisory lock the claims hold (`store/postgres/outbox.rs`, `CLAIM_LOCK`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_marking_events_published_waits_for_the_claim_and_fan_out_turn() {
    const CLAIM_LOCK: i64 = 0x0061_7574_6863_6c6d;
    if !Backend::Postgres.available("marking_events_published_waits_for_the_claim_and_fan_out_turn")
    {
        return;
    }
    let db = TestDatabase::create(Backend::Postgres).await;
    let store = store::connect(&test_config(&db.url).database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let effects = Effects {
        events: vec![OutboxEvent {
            id: Uuid::now_v7(),
            event_type: "auth:user.updated",
            user_id: Some(Uuid::new_v4()),
            occurred_at: Utc::now(),
            envelope: json!({}),
        }],
        audit: Vec::new(),
    };
    store.record_effects(&effects).await.unwrap();
    let now = Utc::now() + chrono::Duration::seconds(1);
    let claimed = store
        .claim_events(now, now + chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let seq = claimed[0].seq;
    // Another relay's claim (or fan-out) holds the turn.
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(&format!("SELECT pg_advisory_xact_lock({CLAIM_LOCK})"))
        .execute(&mut holder)
        .await
        .unwrap();

    let marking = tokio::spawn({
        let store = store.clone();
        async move { store.mark_published(&[seq], now).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waited = !marking.is_finished();
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let marked = tokio::time::timeout(Duration::from_secs(10), marking).await;

    assert!(waited, "the mark went ahead of the turn's holder");
    assert!(matches!(marked, Ok(Ok(Ok(())))), "{marked:?}");
    let published: Option<String> = sqlx::query_scalar(&format!(
        "SELECT CAST(published_at AS TEXT) FROM outbox WHERE seq = {seq}"
    ))
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert!(published.is_some());
    store.close().await;
}

/// The rotation learns its session and user inside the store's statement; its event and
/// outbox row must still name the real ones.
async fn a_refresh_event_names_the_session_and_user_it_rotated(backend: Backend) {
    let app = backend.app().await;
    let user = app.signed_up(&unique("rot")).await;
    let session = app.logged_in(&user).await;

    assert_eq!(app.refresh(&session.refresh_token).await.status(), 200);

    let rows: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT CAST(user_id AS TEXT), CAST(payload AS TEXT) FROM outbox \
         WHERE event_type = 'auth:token.refreshed'",
    )
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (row_user, payload) = &rows[0];
    let envelope: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(row_user.as_deref(), Some(user.user_id.as_str()));
    assert_envelope(&envelope, "auth:token.refreshed", &user.user_id);
    assert_eq!(envelope["data"]["session_id"], session.session_id.as_str());
}

async fn a_redis_subscriber_receives_the_signup_envelope(backend: Backend) {
    let Some(redis) = shared_redis_for("a_redis_subscriber_receives_the_signup_envelope") else {
        return;
    };
    let mut events = redis_events(&redis, "auth:user.registered").await;
    let app = backend
        .app_with(|config| relay_to_redis(config, &redis))
        .await;

    let alice = app.signed_up(&unique("alice")).await;

    let event = next_of_user(&mut events, &alice.user_id).await;
    assert_envelope(&event, "auth:user.registered", &alice.user_id);
    assert_eq!(event["data"]["username"], alice.username.as_str());
    wait_all_published(&app, || {}).await;
}

async fn a_nats_subscriber_receives_the_signup_envelope_with_its_id_as_msg_id(backend: Backend) {
    let Some((nats, mut messages)) = nats_subscription(
        "a_nats_subscriber_receives_the_signup_envelope_with_its_id_as_msg_id",
        "auth.user.registered",
    )
    .await
    else {
        return;
    };
    let app = backend
        .app_with(|config| {
            config.events.nats_url = Some(Secret(SecretString::from(nats.clone())));
            fast_relay(config);
        })
        .await;

    let bob = app.signed_up(&unique("bob")).await;

    let wait = async {
        loop {
            let message = messages.next().await.expect("subscription open");
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            if event["data"]["user_id"] == bob.user_id.as_str() {
                return (message, event);
            }
        }
    };
    let (message, event) = tokio::time::timeout(DELIVERY_DEADLINE, wait)
        .await
        .expect("the event arrives on NATS");
    assert_envelope(&event, "auth:user.registered", &bob.user_id);
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|value| value.as_str().to_owned());
    assert_eq!(msg_id.as_deref(), event["id"].as_str());
    wait_all_published(&app, || {}).await;
}

async fn events_wait_in_the_outbox_while_redis_is_down_and_go_out_in_order_after(backend: Backend) {
    if !OwnRedis::available(
        "events_wait_in_the_outbox_while_redis_is_down_and_go_out_in_order_after",
    ) {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let app = backend
        .app_with(|config| relay_to_redis(config, &redis.url()))
        .await;
    redis.stop();

    let mut users = Vec::new();
    for name in ["carol", "dave", "erin"] {
        users.push(app.signed_up(&unique(name)).await);
    }

    // Two events per signup (user.registered, session.created), all still in the outbox.
    // The first of each user was tried and scheduled for a retry; the second waits behind it.
    assert_eq!(unpublished(&app).await, 6);
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    while users_failed_once(&app).await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not try"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The gauge is process-wide and other tests' relays set it too: look until ours shows.
    let mut seen = None;
    for _ in 0..100 {
        seen = metric(&app, "auth_outbox_pending").await;
        if seen.is_some_and(|pending| pending >= 3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.is_some_and(|pending| pending >= 3.0), "{seen:?}");

    redis.start_again().await;
    let mut events = redis_events(&redis.url(), "auth:*").await;
    // Failed events wait for their retry in the app's (manual) time: move it along.
    let clock = app.clock.clone();
    wait_all_published(&app, || clock.advance(Duration::from_secs(1))).await;

    let mut per_user = Vec::new();
    for user in &users {
        per_user.push(outbox_ids_of(&app, &user.user_id).await);
    }
    let arrived = receive_all(&mut events, &per_user.concat()).await;
    for ids in per_user {
        assert_eq!(ids.len(), 2);
        let arrived_of_user: Vec<&String> = arrived.iter().filter(|id| ids.contains(id)).collect();
        assert_eq!(arrived_of_user, ids.iter().collect::<Vec<_>>());
    }
}

async fn the_events_of_one_user_arrive_in_the_order_they_happened(backend: Backend) {
    let Some(redis) = shared_redis_for("the_events_of_one_user_arrive_in_the_order_they_happened")
    else {
        return;
    };
    let mut events = redis_events(&redis, "auth:*").await;
    let app = backend
        .app_with(|config| relay_to_redis(config, &redis))
        .await;
    let frank = app.signed_up(&unique("frank")).await;

    for _ in 0..4 {
        app.logged_in(&frank).await;
    }
    wait_all_published(&app, || {}).await;

    let ids = outbox_ids_of(&app, &frank.user_id).await;
    assert!(ids.len() >= 6, "{ids:?}");
    assert_eq!(receive_all(&mut events, &ids).await, ids);
}

/// Every event type of SPEC §6 with the keys of its `data`, read from docs/events.md: the
/// documentation is the contract consumers code against.
pub fn documented_types() -> Vec<(String, Vec<String>)> {
    let doc = include_str!("../../../../docs/events.md");
    let mut types = Vec::new();
    for section in doc.split("\n### `").skip(1) {
        let name = section.split('`').next().unwrap().to_owned();
        let example = section
            .split("```json\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .unwrap_or_else(|| panic!("{name} has no example in docs/events.md"));
        let data: Value = serde_json::from_str(example)
            .unwrap_or_else(|error| panic!("the example of {name} is not JSON: {error}"));
        let mut keys: Vec<String> = data.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        types.push((name, keys));
    }
    types
}

/// docs/events.md and the `Event` enum name the same types, in the same order: each variant
/// is documented and each documented type is a variant. (`Event::ALL_KINDS` is held to the
/// variants' `kind()` by a unit test next to the enum.)
#[test]
fn docs_events_md_documents_exactly_the_event_variants() {
    let documented = documented_types();
    let names: Vec<&str> = documented.iter().map(|(name, _)| name.as_str()).collect();
    for kind in Event::ALL_KINDS {
        assert!(
            names.contains(kind),
            "{kind} is not documented in docs/events.md"
        );
    }
    for name in &names {
        assert!(
            Event::ALL_KINDS.contains(name),
            "docs/events.md documents {name}, which no Event variant emits"
        );
    }
    assert_eq!(names, Event::ALL_KINDS, "the same order in docs and code");
}

/// A user's life that produces every event type: signup, activity, profile change, logins,
/// refresh and reuse, ending sessions one, all and by logout, a token exchange, email
/// verification, password change and reset, a lockout, and deletion by an administrator.
/// Returns the user's id.
pub(crate) async fn every_kind_of_change(app: &TestApp) -> String {
    let admin = app.admin().await;
    let user = app.signed_up(&unique("life")).await;
    let first = &user.access_token;
    let status = |response: reqwest::Response| response.status().as_u16();

    assert_eq!(
        status(app.post_as("/api/auth/activity", first, &json!({})).await),
        204
    );
    let patched = app
        .http
        .patch(app.url("/api/auth/me"))
        .bearer_auth(first)
        .json(&json!({ "display_name": "Life" }))
        .send()
        .await
        .unwrap();
    assert_eq!(status(patched), 200);
    let second = app.logged_in(&user).await;
    assert_eq!(status(app.refresh(&second.refresh_token).await), 200);
    // Past the grace window the spent token is a reuse: the second session ends.
    app.clock.advance(Duration::from_secs(11));
    assert_eq!(status(app.refresh(&second.refresh_token).await), 401);
    let third = app.logged_in(&user).await;
    let fourth = app.logged_in(&user).await;
    let one = format!("/api/auth/sessions/{}", third.session_id);
    assert_eq!(status(app.delete_as(&one, &fourth.access_token).await), 204);
    let all = app
        .delete_as("/api/auth/sessions/all", &fourth.access_token)
        .await;
    assert_eq!(status(all), 200);
    assert_eq!(
        status(
            app.post_as("/api/auth/logout", &fourth.access_token, &json!({}))
                .await
        ),
        204
    );

    let fifth = app.logged_in(&user).await;
    let gateway = crate::clients::created(
        app,
        &admin,
        &json!({ "name": unique("gateway"), "exchange_audiences": ["orders"] }),
    )
    .await;
    let exchange = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id={}\
         &client_secret={}&subject_token={}\
         &subject_token_type=urn:ietf:params:oauth:token-type:access_token&audience=orders",
        gateway["client_id"].as_str().unwrap(),
        gateway["client_secret"].as_str().unwrap(),
        fifth.access_token
    );
    assert_eq!(
        status(crate::clients::form(app, &exchange, None).await),
        200
    );
    let factor = enrolled(app, &fifth).await;
    let wrong = json!({ "method": "totp", "code": "000000" });
    let removal = "/api/auth/mfa/totp";
    assert_eq!(
        status(delete_with(app, removal, &fifth.access_token, &wrong).await),
        400
    );
    let fresh = json!({ "method": "recovery_code", "code": factor.recovery_codes[0] });
    assert_eq!(
        status(delete_with(app, removal, &fifth.access_token, &fresh).await),
        204
    );
    let (_, passkey) = crate::passkeys::registered(app, &fifth).await;
    let path = format!(
        "/api/auth/passkeys/{}",
        passkey["passkey"]["id"].as_str().unwrap()
    );
    let fresh = json!({ "method": "recovery_code", "code": passkey["recovery_codes"][0] });
    assert_eq!(
        status(delete_with(app, &path, &fifth.access_token, &fresh).await),
        204
    );
    let verification = app.wait_mails(&user.email, 1).await;
    let token = link_token(&verification[0], "/verify-email");
    assert_eq!(
        status(
            app.post_json("/api/auth/email/verify", &json!({ "token": token }))
                .await
        ),
        204
    );
    let new_password = "another horse battery staple";
    let change = json!({ "current_password": user.password, "new_password": new_password });
    assert_eq!(
        status(
            app.post_as("/api/auth/password/change", &fifth.access_token, &change)
                .await
        ),
        204
    );
    let forgot = app
        .post_json("/api/auth/password/forgot", &json!({ "email": user.email }))
        .await;
    assert_eq!(status(forgot), 202);
    let mails = app.wait_mails(&user.email, 2).await;
    let token = link_token(&mails[1], "/reset-password");
    let reset = json!({ "token": token, "new_password": "a third horse battery staple" });
    assert_eq!(
        status(app.post_json("/api/auth/password/reset", &reset).await),
        204
    );
    for _ in 0..app.config.limits.login_failures {
        let wrong = json!({ "username": user.username, "password": "not the password" });
        app.post_json("/api/auth/login", &wrong).await;
    }
    let deleted = app
        .delete_as(&format!("/api/users/{}", user.user_id), &admin.access_token)
        .await;
    assert_eq!(status(deleted), 204);
    user.user_id
}

/// Collects the envelopes of `user_id` until every documented type has arrived, then checks
/// each envelope and that each type's `data` has exactly its documented keys.
pub(crate) async fn assert_every_type_arrives(
    events: &mut mpsc::UnboundedReceiver<Value>,
    user_id: &str,
) {
    let documented = documented_types();
    let names: Vec<&str> = documented.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        Event::ALL_KINDS,
        "docs/events.md documents the types of the Event enum"
    );
    // A client's events are about a client, not a user: `clients.rs` checks those. An API
    // key's name its owner (`owner_id`, a user or a client): `api_keys.rs` checks those.
    let user_kinds: Vec<&str> = Event::ALL_KINDS
        .iter()
        .copied()
        .filter(|kind| !kind.starts_with("auth:client.") && !kind.starts_with("auth:api_key."))
        .collect();
    let mut seen: Vec<Value> = Vec::new();
    let collect = async {
        while !user_kinds
            .iter()
            .all(|kind| seen.iter().any(|event| event["type"] == *kind))
        {
            let event = events.recv().await.expect("subscription open");
            if event["data"]["user_id"] == user_id {
                seen.push(event);
            }
        }
    };
    if tokio::time::timeout(DELIVERY_DEADLINE, collect)
        .await
        .is_err()
    {
        let missing: Vec<&str> = user_kinds
            .iter()
            .copied()
            .filter(|kind| !seen.iter().any(|event| event["type"] == *kind))
            .collect();
        panic!("these event types never arrived: {missing:?}");
    }
    for (kind, keys) in documented {
        for event in seen.iter().filter(|event| event["type"] == kind.as_str()) {
            assert_envelope(event, &kind, user_id);
            let mut got: Vec<String> = event["data"].as_object().unwrap().keys().cloned().collect();
            got.sort();
            assert_eq!(got, keys, "data of {kind}: {event}");
        }
    }
}

async fn a_redis_subscriber_receives_every_event_type_with_its_documented_data(backend: Backend) {
    let Some(redis) =
        shared_redis_for("a_redis_subscriber_receives_every_event_type_with_its_documented_data")
    else {
        return;
    };
    let mut events = redis_events(&redis, "auth:*").await;
    let app = backend
        .app_with(|config| {
            with_admin(config);
            relay_to_redis(config, &redis);
        })
        .await;

    let user_id = every_kind_of_change(&app).await;

    assert_every_type_arrives(&mut events, &user_id).await;
}

async fn a_nats_subscriber_receives_every_event_type_with_its_documented_data(backend: Backend) {
    let Some((nats, mut messages)) = nats_subscription(
        "a_nats_subscriber_receives_every_event_type_with_its_documented_data",
        "auth.>",
    )
    .await
    else {
        return;
    };
    let (tx, mut events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            // The subject is the type with `:` replaced by `.`.
            assert_eq!(
                message.subject.as_str(),
                event["type"].as_str().unwrap().replace(':', ".")
            );
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    let app = backend
        .app_with(|config| {
            with_admin(config);
            config.events.nats_url = Some(Secret(SecretString::from(nats.clone())));
            fast_relay(config);
        })
        .await;

    let user_id = every_kind_of_change(&app).await;

    assert_every_type_arrives(&mut events, &user_id).await;
}

async fn two_hundred_changes_made_while_nats_is_down_all_arrive_after_it_returns(backend: Backend) {
    if !OwnNats::available(
        "two_hundred_changes_made_while_nats_is_down_all_arrive_after_it_returns",
    ) {
        return;
    }
    let mut nats = OwnNats::start().await;
    let app = backend
        .app_with(|config| {
            config.events.nats_url = Some(Secret(SecretString::from(nats.url())));
            fast_relay(config);
        })
        .await;
    let mut users = Vec::new();
    for name in ["gina", "hank", "ivy", "jon"] {
        users.push(app.signed_up(&unique(name)).await);
    }
    wait_all_published(&app, || {}).await;
    let before = nats.stored("AUTH_EVENTS").await.len();

    nats.stop();
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
    assert_eq!(unpublished(&app).await, 200);
    nats.start_again().await;
    // Failed events wait for their retry in the app's (manual) time: move it along.
    let clock = app.clock.clone();
    wait_all_published(&app, || clock.advance(Duration::from_secs(1))).await;

    let stored = nats.stored("AUTH_EVENTS").await;
    let arrived: Vec<(String, Value)> = stored.into_iter().skip(before).collect();
    assert_eq!(
        arrived.len(),
        200,
        "each change once, none lost, none twice"
    );
    for user in &users {
        let expected: Vec<String> = outbox_ids_of(&app, &user.user_id)
            .await
            .into_iter()
            .skip(2) // user.registered and session.created went out before the outage
            .collect();
        assert_eq!(expected.len(), 50);
        let of_user: Vec<String> = arrived
            .iter()
            .filter(|(_, event)| event["data"]["user_id"] == user.user_id.as_str())
            .map(|(msg_id, event)| {
                assert_eq!(event["type"], "auth:user.updated");
                assert_eq!(event["id"].as_str(), Some(msg_id.as_str()));
                msg_id.clone()
            })
            .collect();
        assert_eq!(of_user, expected, "in order for {}", user.username);
    }
}

async fn ready_names_nats_while_it_is_down(backend: Backend) {
    if !OwnNats::available("ready_names_nats_while_it_is_down") {
        return;
    }
    let mut nats = OwnNats::start().await;
    let app = backend
        .app_with(|config| {
            config.events.nats_url = Some(Secret(SecretString::from(nats.url())));
            fast_relay(config);
        })
        .await;
    let ready = || async {
        let response = app.get("/ready").await;
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    // SPEC §2: a broker is a soft dependency: `degraded` with a 200, never a 503.
    let wait_for = |want: &'static str| async move {
        let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
        loop {
            let (status, body) = ready().await;
            if body["checks"]["nats"] == want {
                assert_eq!(status, 200, "{body}");
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let up = wait_for("ok").await;
    nats.stop();
    let down = wait_for("degraded").await;
    app.signed_up(&unique("kim")).await;
    nats.start_again().await;
    let back = wait_for("ok").await;

    assert_eq!(up["status"], "ok", "{up}");
    assert_eq!(down["status"], "degraded", "{down}");
    assert_eq!(down["checks"]["database"], "ok", "{down}");
    assert_eq!(back["status"], "ok", "{back}");
    let clock = app.clock.clone();
    wait_all_published(&app, || clock.advance(Duration::from_secs(1))).await;
}

/// The `next_attempt_at - occurred_at` of the user's first outbox row, in seconds: a claim
/// moves `next_attempt_at` to the end of its lease.
pub(crate) async fn lease_of_first_event(db_url: &str, user_id: &str) -> Option<(f64, bool)> {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(db_url).await.unwrap();
    let row: Option<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(occurred_at AS TEXT), CAST(next_attempt_at AS TEXT), \
                CAST(published_at AS TEXT) \
         FROM outbox WHERE CAST(user_id AS TEXT) = $1 ORDER BY seq LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(&mut db)
    .await
    .unwrap();
    row.map(|(occurred, next, published)| {
        let parse = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(&text.replace(' ', "T"))
                .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
                .unwrap_or_else(|error| panic!("{text}: {error}"))
        };
        let lease = parse(&next) - parse(&occurred);
        (
            lease.num_milliseconds() as f64 / 1000.0,
            published.is_some(),
        )
    })
}

async fn a_relay_killed_between_commit_and_publish_delivers_the_event_after_restart(
    backend: Backend,
) {
    if !OwnNats::available(
        "a_relay_killed_between_commit_and_publish_delivers_the_event_after_restart",
    ) {
        return;
    }
    let nats = OwnNats::start().await;
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__EVENTS__NATS_URL", nats.url()),
        ("APP__EVENTS__POLL_INTERVAL", "50ms".to_owned()),
        ("APP__EVENTS__PUBLISH_TIMEOUT", "5s".to_owned()),
        ("APP__EVENTS__CLAIM_LEASE", "10s".to_owned()),
        ("APP__PASSWORD__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("APP__PASSWORD__ARGON2_ITERATIONS", "1".to_owned()),
    ];
    let mut first = Spawned::start(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let name = unique("lee");

    // The broker freezes: the relay's publish of the committed event hangs, unacknowledged.
    nats.pause();
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
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    loop {
        let (lease, published) = lease_of_first_event(&db.url, &user_id).await.unwrap();
        assert!(!published, "published while the broker was frozen");
        if lease >= 5.0 {
            break; // claimed: the relay is waiting for the broker's acknowledgement
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never claimed the event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let (_, published) = lease_of_first_event(&db.url, &user_id).await.unwrap();
    assert!(!published, "the killed relay had not marked the event");
    nats.resume();

    let _second = Spawned::start(dir.path(), &env).await;
    // The dead relay's lease runs out, then the new one publishes the event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !lease_of_first_event(&db.url, &user_id).await.unwrap().1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let registered: Vec<Value> = nats
        .stored("AUTH_EVENTS")
        .await
        .into_iter()
        .map(|(_, event)| event)
        .filter(|event| event["type"] == "auth:user.registered")
        .collect();
    // The frozen broker may have read the first publish after the kill: JetStream drops the
    // second by its `Nats-Msg-Id`, so the stream holds the event exactly once either way.
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_envelope(&registered[0], "auth:user.registered", &user_id);
}

backend_tests! {
    without_a_broker_events_are_logged_and_marked_published,
    a_claim_takes_a_users_backlog_in_order_but_never_past_a_held_event,
    a_refresh_event_names_the_session_and_user_it_rotated,
    a_redis_subscriber_receives_the_signup_envelope,
    a_nats_subscriber_receives_the_signup_envelope_with_its_id_as_msg_id,
    events_wait_in_the_outbox_while_redis_is_down_and_go_out_in_order_after,
    the_events_of_one_user_arrive_in_the_order_they_happened,
    a_redis_subscriber_receives_every_event_type_with_its_documented_data,
    a_nats_subscriber_receives_every_event_type_with_its_documented_data,
    two_hundred_changes_made_while_nats_is_down_all_arrive_after_it_returns,
    ready_names_nats_while_it_is_down,
    a_relay_killed_between_commit_and_publish_delivers_the_event_after_restart,
}
