//! Events to Kafka (SPEC §6), against a Kafka-protocol broker each test starts: every type
//! with its envelope, key and headers; nothing lost, nothing doubled and per-user order kept
//! through an outage; a frozen broker and a service killed mid-publish lose nothing.

use std::collections::HashMap;
use std::time::Duration;

use auth_service::config::Config;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::backend_tests;
use crate::events::{
    assert_envelope, assert_every_type_arrives, every_kind_of_change, fast_relay,
    lease_of_first_event, outbox_ids_of, unique, unpublished, users_failed_once,
    wait_all_published, DELIVERY_DEADLINE,
};
use crate::support::backend::TestDatabase;
use crate::support::kafka::{OwnKafka, Stored};
use crate::support::process::Spawned;
use crate::support::{with_admin, Account, Backend, TestApp, PASSWORD};

fn relay_to_kafka(config: &mut Config, brokers: &str, topic: &str) {
    config.events.kafka_brokers = Some(brokers.to_owned());
    config.events.kafka_topic = topic.to_owned();
    fast_relay(config);
}

async fn a_kafka_reader_finds_every_event_type_keyed_by_user_with_id_and_type_headers(
    backend: Backend,
) {
    if !OwnKafka::available(
        "a_kafka_reader_finds_every_event_type_keyed_by_user_with_id_and_type_headers",
    ) {
        return;
    }
    let topic = unique("auth-events-");
    let kafka = OwnKafka::start(&topic).await;
    let app = backend
        .app_with(|config| {
            with_admin(config);
            relay_to_kafka(config, &kafka.brokers(), &topic);
        })
        .await;

    let user_id = every_kind_of_change(&app).await;
    wait_all_published(&app, || {}).await;

    let stored = kafka.stored(&topic).await;
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut partitions = HashMap::new();
    for message in &stored {
        let envelope = &message.envelope;
        assert_eq!(message.id_header.as_deref(), envelope["id"].as_str());
        assert_eq!(message.type_header.as_deref(), envelope["type"].as_str());
        let Some(user) = envelope["data"]["user_id"].as_str() else {
            // An event of a client (or of an API key) is keyed and ordered by its subject.
            let subject = envelope["data"]["client_id"]
                .as_str()
                .or(envelope["data"]["owner_id"].as_str());
            assert_eq!(message.key.as_deref(), subject, "key = the client's id");
            tx.send(envelope.clone()).unwrap();
            continue;
        };
        assert_eq!(message.key.as_deref(), Some(user), "key = user id");
        // One user, one partition: that is what keeps their events in order.
        assert_eq!(
            *partitions
                .entry(user.to_owned())
                .or_insert(message.partition),
            message.partition
        );
        tx.send(envelope.clone()).unwrap();
    }
    assert_every_type_arrives(&mut events, &user_id).await;
    let ids = outbox_ids_of(&app, &user_id).await;
    let of_user: Vec<&str> = stored
        .iter()
        .filter(|message| message.key.as_deref() == Some(user_id.as_str()))
        .map(|message| message.envelope["id"].as_str().unwrap())
        .collect();
    assert_eq!(of_user, ids, "each once, in order");
}

async fn changes(app: &TestApp, users: &[Account], count: usize) {
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

/// Each of `users`' outbox events after their first `skip` is in `stored`, in the user's
/// order (first copies, when `once` is false).
async fn assert_stored_in_order(
    app: &TestApp,
    users: &[Account],
    skip: usize,
    stored: &[Stored],
    once: bool,
) {
    let mut copies: HashMap<&str, usize> = HashMap::new();
    let mut first_seen = Vec::new();
    for message in stored {
        let id = message.envelope["id"].as_str().unwrap();
        assert_eq!(message.id_header.as_deref(), Some(id));
        let count = copies.entry(id).or_default();
        *count += 1;
        if *count == 1 {
            first_seen.push(message);
        }
    }
    if once {
        let doubled: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
        assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    }
    for user in users {
        let expected: Vec<String> = outbox_ids_of(app, &user.user_id)
            .await
            .into_iter()
            .skip(skip)
            .collect();
        let of_user: Vec<String> = first_seen
            .iter()
            .filter(|message| message.key.as_deref() == Some(user.user_id.as_str()))
            .map(|message| message.envelope["id"].as_str().unwrap().to_owned())
            .skip(skip)
            .collect();
        assert_eq!(of_user, expected, "in order for {}", user.username);
    }
}

async fn two_hundred_changes_made_while_kafka_is_unreachable_all_arrive_once_in_order(
    backend: Backend,
) {
    if !OwnKafka::available(
        "two_hundred_changes_made_while_kafka_is_unreachable_all_arrive_once_in_order",
    ) {
        return;
    }
    let topic = unique("auth-events-");
    let kafka = OwnKafka::start(&topic).await;
    let app = backend
        .app_with(|config| relay_to_kafka(config, &kafka.brokers(), &topic))
        .await;
    let mut users = Vec::new();
    for name in ["gina", "hank", "ivy", "jon"] {
        users.push(app.signed_up(&unique(name)).await);
    }
    wait_all_published(&app, || {}).await;

    kafka.proxy.cut();
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
    kafka.proxy.restore();
    let clock = app.clock.clone();
    wait_all_published(&app, || clock.advance(Duration::from_secs(1))).await;

    let stored = kafka.stored(&topic).await;
    assert_eq!(
        stored.len(),
        200 + 8,
        "each change once, none lost, none twice"
    );
    assert_stored_in_order(&app, &users, 2, &stored, true).await;
}

async fn a_service_killed_mid_publish_to_a_frozen_kafka_delivers_after_restart(backend: Backend) {
    if !OwnKafka::available("a_service_killed_mid_publish_to_a_frozen_kafka_delivers_after_restart")
    {
        return;
    }
    let topic = unique("auth-events-");
    let kafka = OwnKafka::start(&topic).await;
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__EVENTS__KAFKA_BROKERS", kafka.brokers()),
        ("APP__EVENTS__KAFKA_TOPIC", topic.clone()),
        ("APP__EVENTS__POLL_INTERVAL", "50ms".to_owned()),
        ("APP__EVENTS__PUBLISH_TIMEOUT", "5s".to_owned()),
        ("APP__EVENTS__CLAIM_LEASE", "10s".to_owned()),
        ("APP__PASSWORD__ARGON2_MEMORY_KIB", "64".to_owned()),
        ("APP__PASSWORD__ARGON2_ITERATIONS", "1".to_owned()),
    ];
    let mut first = Spawned::start(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let signup = |name: String| {
        let http = http.clone();
        let url = first.url("/api/auth/signup");
        async move {
            let response = http
                .post(url)
                .json(&json!({ "email": format!("{name}@example.com"), "username": name, "password": PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // A first event goes out, so the producer is connected when the broker freezes.
    let warm = signup(unique("nia")).await;
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    while !lease_of_first_event(&db.url, &warm).await.unwrap().1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first event never went out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The broker freezes (SIGSTOP): the relay's publish hangs without a delivery report.
    kafka.pause();
    let user_id = signup(unique("ola")).await;
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    loop {
        let (lease, published) = lease_of_first_event(&db.url, &user_id).await.unwrap();
        assert!(!published, "published while the broker was frozen");
        if lease >= 5.0 {
            break; // claimed: the relay is waiting for the delivery report
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
    kafka.resume();

    let _second = Spawned::start(dir.path(), &env).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !lease_of_first_event(&db.url, &user_id).await.unwrap().1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let registered: Vec<Stored> = kafka
        .stored(&topic)
        .await
        .into_iter()
        .filter(|message| {
            message.envelope["type"] == "auth:user.registered"
                && message.key.as_deref() == Some(user_id.as_str())
        })
        .collect();
    // The frozen broker may store the killed producer's copy too: consumers de-duplicate by
    // the `id` header, which is the event id either way.
    assert!((1..=2).contains(&registered.len()), "{registered:?}");
    for message in &registered {
        assert_eq!(
            message.id_header.as_deref(),
            message.envelope["id"].as_str()
        );
        assert_envelope(&message.envelope, "auth:user.registered", &user_id);
    }
}

/// The topic reader of these tests finds every record of a batch of several, as the last
/// batch of a partition (where tansu's ListOffsets answer stops one record in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_reader_finds_every_record_of_a_last_batch_of_several() {
    if !OwnKafka::available("the_topic_reader_finds_every_record_of_a_last_batch_of_several") {
        return;
    }
    let topic = unique("auth-events-");
    let kafka = OwnKafka::start(&topic).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        // Records queued together go as one batch.
        .set("linger.ms", "500")
        .create()
        .unwrap();
    let payloads: Vec<String> = (0..5)
        .map(|n| json!({ "id": format!("record {n}") }).to_string())
        .collect();

    let queued: Vec<_> = payloads
        .iter()
        .map(|payload| {
            producer
                .send_result(FutureRecord::to(&topic).key("one user").payload(payload))
                .unwrap()
        })
        .collect();
    let mut offsets = Vec::new();
    for delivery in queued {
        let delivered = delivery.await.unwrap().unwrap();
        offsets.push((delivered.partition, delivered.offset));
    }
    let stored = kafka.stored(&topic).await;

    let partition = offsets[0].0;
    assert_eq!(
        offsets,
        (0..5).map(|offset| (partition, offset)).collect::<Vec<_>>()
    );
    let read: Vec<&str> = stored
        .iter()
        .map(|message| message.envelope["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        read,
        ["record 0", "record 1", "record 2", "record 3", "record 4"]
    );
}

backend_tests! {
    a_kafka_reader_finds_every_event_type_keyed_by_user_with_id_and_type_headers,
    two_hundred_changes_made_while_kafka_is_unreachable_all_arrive_once_in_order,
    a_service_killed_mid_publish_to_a_frozen_kafka_delivers_after_restart,
}
