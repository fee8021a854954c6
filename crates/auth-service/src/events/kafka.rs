//! Kafka: librdkafka's idempotent producer (`enable.idempotence`, `acks=all`) on the topic
//! `events.kafka_topic`; key = user id, so one user's events land on one partition in order;
//! headers `id` and `type`. A publish counts only once its delivery report says the broker
//! stored it; an error or no report within the timeout is a retry. librdkafka reconnects by
//! itself, backing off from 100 ms to 5 s.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::store::PendingEvent;

pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl KafkaPublisher {
    /// The producer; it connects in the background, so a broker that is down at start delays
    /// events but not the service. Fails only on settings librdkafka refuses.
    pub fn new(brokers: &str, topic: &str, timeout: Duration) -> anyhow::Result<Self> {
        let timeout_ms = timeout.as_millis().max(1).to_string();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "auth-service")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // The relay waits for each report before the next event: do not linger for more.
            .set("linger.ms", "0")
            .set("message.timeout.ms", &timeout_ms)
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "5000")
            .create()
            .map_err(|error| anyhow::anyhow!("events.kafka_brokers: {error}"))?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            timeout,
        })
    }

    pub async fn publish(&self, event: &PendingEvent) -> Result<(), String> {
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
        let delivery = self.producer.send(record, Timeout::After(self.timeout));
        // librdkafka times the message out itself; this bounds a wait it might not end.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), delivery).await {
            Ok(Ok(_stored)) => Ok(()),
            Ok(Err((error, _message))) => Err(format!("kafka: {error}")),
            Err(_) => Err(format!(
                "kafka: no delivery report within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}
