//! Events to RabbitMQ (SPEC §6): every type with its envelope and message properties on a
//! durable topic exchange; nothing lost, nothing doubled and per-user order kept through an
//! outage; a frozen broker and a service killed mid-publish lose nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use auth_service::config::{Config, Secret};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::backend_tests;
use crate::events::{
    assert_every_type_arrives, every_kind_of_change, fast_relay, lease_of_first_event,
    outbox_ids_of, unique, unpublished, users_failed_once, wait_all_published, DELIVERY_DEADLINE,
};
use crate::support::backend::TestDatabase;
use crate::support::chaos::ChaosProxy;
use crate::support::process::Spawned;
use crate::support::rabbitmq::{amqp_addr, shared_amqp_for, via, Consumer, Received};
use crate::support::{with_admin, Backend, TestApp, PASSWORD};

fn relay_to_rabbitmq(config: &mut Config, url: &str, exchange: &str) {
    config.events.amqp_url = Some(Secret(SecretString::from(url.to_owned())));
    config.events.amqp_exchange = exchange.to_owned();
    fast_relay(config);
}

/// Messages until every id in `ids` arrived, then `settle` longer to catch late duplicates;
/// in arrival order.
async fn receive_ids(
    messages: &mut mpsc::UnboundedReceiver<Received>,
    ids: &[String],
    settle: Duration,
) -> Vec<Received> {
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    let mut received = Vec::new();
    let mut keep = |message: Received, seen: &mut HashSet<String>| {
        let id = message.envelope["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if wanted.contains(id.as_str()) {
            seen.insert(id);
            received.push(message);
        }
    };
    let wait = async {
        while seen.len() < wanted.len() {
            let message = messages.recv().await.expect("consumer open");
            keep(message, &mut seen);
        }
    };
    if tokio::time::timeout(DELIVERY_DEADLINE, wait).await.is_err() {
        panic!("{} of {} events arrived", seen.len(), wanted.len());
    }
    let late = async {
        while let Some(message) = messages.recv().await {
            keep(message, &mut seen);
        }
    };
    let _ = tokio::time::timeout(settle, late).await;
    received
}

async fn a_rabbitmq_consumer_receives_every_event_type_with_its_properties(backend: Backend) {
    let Some(url) =
        shared_amqp_for("a_rabbitmq_consumer_receives_every_event_type_with_its_properties")
    else {
        return;
    };
    let exchange = unique("auth.events.test-");
    let (consumer, mut messages) = Consumer::start(&url, &exchange).await;
    let app = backend
        .app_with(|config| {
            with_admin(config);
            config.server.territory = Some("dk".to_owned());
            relay_to_rabbitmq(config, &url, &exchange);
        })
        .await;

    let user_id = every_kind_of_change(&app).await;

    let (tx, mut events) = mpsc::unbounded_channel();
    let checked = tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            let envelope = &message.envelope;
            let kind = envelope["type"].as_str().unwrap().to_owned();
            // Routing key = type with `:` replaced by `.`; the documented properties.
            assert_eq!(message.routing_key, kind.replace(':', "."), "{message:?}");
            assert_eq!(message.message_id.as_deref(), envelope["id"].as_str());
            assert_eq!(message.content_type.as_deref(), Some("application/json"));
            assert_eq!(message.delivery_mode, Some(2), "persistent");
            assert_eq!(message.type_header.as_deref(), Some(kind.as_str()));
            assert_eq!(message.territory_header.as_deref(), Some("dk"));
            assert_eq!(envelope["territory"], "dk");
            if tx.send(message.envelope).is_err() {
                break;
            }
        }
    });
    assert_every_type_arrives(&mut events, &user_id).await;
    assert!(!checked.is_finished(), "a message broke the contract");
    checked.abort();
    wait_all_published(&app, || {}).await;
    consumer.finish().await;
}

/// Patches the display name of `users` round-robin, `count` times.
async fn changes(app: &TestApp, users: &[crate::support::Account], count: usize) {
    for change in 0..count {
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
}

/// Each of `users`' outbox events after their first `skip` arrived, in the user's `seq` order
/// (the first copy of each, when `once` is false: a frozen publish may arrive twice).
async fn assert_arrived_in_order(
    app: &TestApp,
    users: &[crate::support::Account],
    skip: usize,
    received: &[Received],
    once: bool,
) {
    let mut copies: HashMap<&str, usize> = HashMap::new();
    let mut first_seen = Vec::new();
    for message in received {
        let id = message.envelope["id"].as_str().unwrap();
        assert_eq!(message.message_id.as_deref(), Some(id));
        let count = copies.entry(id).or_default();
        *count += 1;
        if *count == 1 {
            first_seen.push(message);
        }
    }
    if once {
        let doubled: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
        assert!(doubled.is_empty(), "arrived more than once: {doubled:?}");
    }
    for user in users {
        let expected: Vec<String> = outbox_ids_of(app, &user.user_id)
            .await
            .into_iter()
            .skip(skip)
            .collect();
        let of_user: Vec<String> = first_seen
            .iter()
            .filter(|message| message.envelope["data"]["user_id"] == user.user_id.as_str())
            .map(|message| message.envelope["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(of_user, expected, "in order for {}", user.username);
    }
}

async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app.get("/ready").await;
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.unwrap())
}

/// Waits until `/ready` reports RabbitMQ as `want`, always with a 200 (a soft dependency).
async fn wait_ready_says(app: &TestApp, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    loop {
        let (status, body) = ready(app).await;
        if body["checks"]["rabbitmq"] == want {
            assert_eq!(status, 200, "{body}");
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_hundred_changes_made_while_rabbitmq_is_unreachable_all_arrive_once_in_order(
    backend: Backend,
) {
    let Some(url) = shared_amqp_for(
        "two_hundred_changes_made_while_rabbitmq_is_unreachable_all_arrive_once_in_order",
    ) else {
        return;
    };
    let proxy = ChaosProxy::start(amqp_addr(&url)).await;
    let exchange = unique("auth.events.test-");
    let (consumer, mut messages) = Consumer::start(&url, &exchange).await;
    let app = backend
        .app_with(|config| relay_to_rabbitmq(config, &via(&url, proxy.addr), &exchange))
        .await;
    let mut users = Vec::new();
    for name in ["gina", "hank", "ivy", "jon"] {
        users.push(app.signed_up(&unique(name)).await);
    }
    wait_all_published(&app, || {}).await;
    assert_eq!(wait_ready_says(&app, "ok").await["status"], "ok");

    proxy.cut();
    let down = wait_ready_says(&app, "degraded").await;
    assert_eq!(down["status"], "degraded", "{down}");
    changes(&app, &users, 200).await;
    assert_eq!(unpublished(&app).await, 200);
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    while users_failed_once(&app).await < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not try"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.restore();
    wait_ready_says(&app, "ok").await;
    // Failed events wait for their retry in the app's (manual) time: move it along.
    let clock = app.clock.clone();
    wait_all_published(&app, || clock.advance(Duration::from_secs(1))).await;

    let mut ids = Vec::new();
    for user in &users {
        ids.extend(outbox_ids_of(&app, &user.user_id).await.into_iter().skip(2));
    }
    assert_eq!(ids.len(), 200);
    let received = receive_ids(&mut messages, &ids, Duration::from_millis(500)).await;
    assert_eq!(
        received.len(),
        200,
        "each change once, none lost, none twice"
    );
    assert_arrived_in_order(&app, &users, 2, &received, true).await;
    consumer.finish().await;
}

async fn changes_made_while_rabbitmq_is_frozen_all_arrive_in_order_after_it_thaws(
    backend: Backend,
) {
    let Some(url) =
        shared_amqp_for("changes_made_while_rabbitmq_is_frozen_all_arrive_in_order_after_it_thaws")
    else {
        return;
    };
    let proxy = ChaosProxy::start(amqp_addr(&url)).await;
    let exchange = unique("auth.events.test-");
    let (consumer, mut messages) = Consumer::start(&url, &exchange).await;
    let app = backend
        .app_with(|config| {
            relay_to_rabbitmq(config, &via(&url, proxy.addr), &exchange);
            config.events.publish_timeout = Duration::from_millis(500);
        })
        .await;
    let mut users = Vec::new();
    for name in ["kai", "lou"] {
        users.push(app.signed_up(&unique(name)).await);
    }
    wait_all_published(&app, || {}).await;
    wait_ready_says(&app, "ok").await;

    // Frozen mid-stream: the connection stays open, publishes go unconfirmed and time out.
    proxy.freeze();
    changes(&app, &users, 40).await;
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    while users_failed_once(&app).await < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not try"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unpublished(&app).await > 0);
    proxy.thaw();
    let clock = app.clock.clone();
    wait_all_published(&app, || clock.advance(Duration::from_secs(1))).await;

    let mut ids = Vec::new();
    for user in &users {
        ids.extend(outbox_ids_of(&app, &user.user_id).await.into_iter().skip(2));
    }
    assert_eq!(ids.len(), 40);
    // A publish frozen without its confirm is sent again: at least once, first copies in order.
    let received = receive_ids(&mut messages, &ids, Duration::from_millis(500)).await;
    assert_arrived_in_order(&app, &users, 2, &received, false).await;
    consumer.finish().await;
}

async fn a_service_killed_mid_publish_to_a_frozen_rabbitmq_delivers_after_restart(
    backend: Backend,
) {
    let Some(url) =
        shared_amqp_for("a_service_killed_mid_publish_to_a_frozen_rabbitmq_delivers_after_restart")
    else {
        return;
    };
    let proxy = ChaosProxy::start(amqp_addr(&url)).await;
    let exchange = unique("auth.events.test-");
    let (consumer, mut messages) = Consumer::start(&url, &exchange).await;
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__EVENTS__AMQP_URL", via(&url, proxy.addr)),
        ("APP__EVENTS__AMQP_EXCHANGE", exchange.clone()),
        ("APP__EVENTS__POLL_INTERVAL", "50ms".to_owned()),
        ("APP__EVENTS__PUBLISH_TIMEOUT", "5s".to_owned()),
        ("APP__EVENTS__CLAIM_LEASE", "10s".to_owned()),
        ("APP__PASSWORD__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("APP__PASSWORD__ARGON2_ITERATIONS", "1".to_owned()),
    ];
    let mut first = Spawned::start(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let ready = async {
        loop {
            let body: Value = http
                .get(first.url("/ready"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if body["checks"]["rabbitmq"] == "ok" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(DELIVERY_DEADLINE, ready)
        .await
        .expect("the service connects to RabbitMQ");

    // The broker freezes: the relay's publish of the committed event hangs, unconfirmed.
    proxy.freeze();
    let name = unique("mel");
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
            break; // claimed: the relay is waiting for the broker's confirm
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
    proxy.thaw();

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
    let wait = async {
        loop {
            let message = messages.recv().await.expect("consumer open");
            if message.envelope["type"] == "auth:user.registered"
                && message.envelope["data"]["user_id"] == user_id.as_str()
            {
                return message;
            }
        }
    };
    let registered = tokio::time::timeout(DELIVERY_DEADLINE, wait)
        .await
        .expect("the event arrives after the restart");
    // The frozen broker may also take the first publish once it thaws: consumers de-duplicate
    // by `message_id`, which is the event id either way.
    assert_eq!(
        registered.message_id.as_deref(),
        registered.envelope["id"].as_str()
    );
    crate::events::assert_envelope(&registered.envelope, "auth:user.registered", &user_id);
    consumer.finish().await;
}

backend_tests! {
    a_rabbitmq_consumer_receives_every_event_type_with_its_properties,
    two_hundred_changes_made_while_rabbitmq_is_unreachable_all_arrive_once_in_order,
    changes_made_while_rabbitmq_is_frozen_all_arrive_in_order_after_it_thaws,
    a_service_killed_mid_publish_to_a_frozen_rabbitmq_delivers_after_restart,
}
