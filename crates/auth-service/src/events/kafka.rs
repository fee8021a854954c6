//! Kafka: librdkafka's idempotent producer (`enable.idempotence`, `acks=all`) on the topic
//! `events.kafka_topic`; key = user id, so one user's events land on one partition in order;
//! headers `id` and `type`. A publish counts only once its delivery report says the broker
//! stored it; an error or no report within the timeout is a retry. librdkafka reconnects by
//! itself, backing off from 100 ms to 5 s. After a failed delivery the publisher starts a new
//! producer session: librdkafka's idempotent producer may otherwise stay stuck on the
//! sequence numbers of the messages that timed out (seen with a broker that came back), and
//! the outbox already makes the retry safe (consumers drop a repeated event by its id).
//!
//! A wave is queued whole, then its reports are awaited (see [`KafkaPublisher::publish_all`]).
//! Issue 19: one loaded CI run read 207 of 208 events back from the test broker, so for a while
//! a wave went one record at a time. The producer had lost nothing: each event reported stored
//! was in the topic. The test's reader stopped at the offset that ListOffsets (latest)
//! answered, and tansu 0.6 (dynostore) answers that with its last batch's *base* offset + 1:
//! a reader stopping there misses the other records of a last batch of several, which only a
//! queued wave makes (two users on one partition). The reader now reads to the high
//! watermark of the broker's fetch answers (docs/testing.md).

use std::sync::RwLock;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::store::PendingEvent;

pub struct KafkaPublisher {
    settings: ClientConfig,
    producer: RwLock<FutureProducer>,
    topic: String,
    timeout: Duration,
}

impl KafkaPublisher {
    /// The producer; it connects in the background, so a broker that is down at start delays
    /// events but not the service. Fails only on settings librdkafka refuses.
    pub fn new(brokers: &str, topic: &str, timeout: Duration) -> anyhow::Result<Self> {
        let timeout_ms = timeout.as_millis().max(1).to_string();
        let mut settings = ClientConfig::new();
        settings
            .set("bootstrap.servers", brokers)
            .set("client.id", "auth-service")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // The relay queues a wave at once and then waits for its reports: what is queued
            // goes out together; do not linger for more.
            .set("linger.ms", "0")
            .set("message.timeout.ms", &timeout_ms)
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "5000");
        let producer = settings
            .create()
            .map_err(|error| anyhow::anyhow!("events.kafka_brokers: {error}"))?;
        Ok(Self {
            settings,
            producer: RwLock::new(producer),
            topic: topic.to_owned(),
            timeout,
        })
    }

    /// Produces a wave of events (of distinct users) at once: every record is queued, then
    /// every delivery report awaited, so librdkafka sends them in as few requests as it can
    /// (a partition's records as one batch, or a few requests in flight, which the idempotent
    /// producer keeps in order and single). Says per event whether the broker stored it.
    ///
    /// Safe for per-user order: the events are of distinct users, and the relay sends a
    /// user's next event in a later wave, after this one's reports. A report of success means
    /// the broker stored the record (a purge or a dropped producer is an error, retried). The
    /// producer is renewed only after every record of the wave has its report or its deadline
    /// passed; a record then still held by the old producer is purged as it is dropped, and if
    /// it was already sent the broker may store it too: a copy, dropped by its `id`.
    pub async fn publish_all(&self, events: &[&PendingEvent]) -> Vec<Result<(), String>> {
        let producer = match self.producer.read() {
            Ok(producer) => producer.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let queued: Vec<_> = events
            .iter()
            .map(|event| self.queue(&producer, event))
            .collect();
        // The reports come back together; awaiting them in turn costs no more. librdkafka
        // times a message out itself; the deadline bounds a wait it might not end.
        let deadline = tokio::time::Instant::now() + self.timeout + Duration::from_secs(1);
        let mut outcomes = Vec::with_capacity(queued.len());
        for queued in queued {
            outcomes.push(match queued {
                Ok(delivery) => match tokio::time::timeout_at(deadline, delivery).await {
                    Ok(Ok(Ok(_stored))) => Ok(()),
                    Ok(Ok(Err((error, _message)))) => Err(format!("kafka: {error}")),
                    Ok(Err(_canceled)) => Err("kafka: the producer dropped the message".to_owned()),
                    Err(_) => Err(format!(
                        "kafka: no delivery report within {} ms",
                        self.timeout.as_millis()
                    )),
                },
                Err(error) => Err(error),
            });
        }
        if outcomes.iter().any(Result::is_err) {
            self.renew();
        }
        outcomes
    }

    /// Queues one record in the producer (it goes out with whatever else is queued).
    fn queue(
        &self,
        producer: &FutureProducer,
        event: &PendingEvent,
    ) -> Result<DeliveryFuture, String> {
        // Events about no user (none today) keep their own order by their id.
        let key = event.user_id.unwrap_or(event.id).to_string();
        let id = event.id.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "id",
                value: Some(id.as_str()),
            })
            .insert(Header {
                key: "type",
                value: Some(event.event_type.as_str()),
            });
        let record = FutureRecord::to(&self.topic)
            .key(key.as_str())
            .payload(event.payload.as_str())
            .headers(headers);
        producer
            .send_result(record)
            .map_err(|(error, _record)| format!("kafka: {error}"))
    }

    /// Replaces the producer with a new session (a new producer id) for the next attempt.
    fn renew(&self) {
        match self.settings.create::<FutureProducer>() {
            Ok(fresh) => match self.producer.write() {
                Ok(mut producer) => *producer = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            },
            Err(error) => tracing::warn!(%error, "kafka: a new producer could not be made"),
        }
    }
}
