//! Kafka: librdkafka's idempotent producer (`enable.idempotence`, `acks=all`) on the topic
//! `events.kafka_topic`; key = user id, so one user's events land on one partition in order;
//! headers `id` and `type`. A publish counts only once its delivery report says the broker
//! stored it; an error or no report within the timeout is a retry. librdkafka reconnects by
//! itself, backing off from 100 ms to 5 s. After a failed delivery the publisher starts a new
//! producer session: librdkafka's idempotent producer may otherwise stay stuck on the
//! sequence numbers of the messages that timed out (seen with a broker that came back), and
//! the outbox already makes the retry safe (consumers drop a repeated event by its id).

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
            // The relay waits for each report before the next event: do not linger for more.
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

    /// Produces a wave of events (of distinct users), one record at a time: each is queued and
    /// its delivery report awaited before the next. Says per event whether the broker stored it;
    /// after a failure the rest of the wave is not sent.
    ///
    /// Queuing a whole wave before awaiting its reports was faster, but in one CI run under
    /// load the outage test found one event of 208 missing from the topic though reported
    /// stored (against tansu, the test broker); until that is understood, one at a time.
    pub async fn publish_all(&self, events: &[&PendingEvent]) -> Vec<Result<(), String>> {
        let producer = match self.producer.read() {
            Ok(producer) => producer.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut outcomes = Vec::with_capacity(events.len());
        let mut failed = false;
        for event in events {
            if failed {
                outcomes.push(Err("kafka: not sent after a failure in its wave".to_owned()));
                continue;
            }
            let outcome = match self.queue(&producer, event) {
                // librdkafka times a message out itself; this bounds a wait it might not end.
                Ok(delivery) => {
                    match tokio::time::timeout(self.timeout + Duration::from_secs(1), delivery)
                        .await
                    {
                        Ok(Ok(Ok(_stored))) => Ok(()),
                        Ok(Ok(Err((error, _message)))) => Err(format!("kafka: {error}")),
                        Ok(Err(_canceled)) => {
                            Err("kafka: the producer dropped the message".to_owned())
                        }
                        Err(_) => Err(format!(
                            "kafka: no delivery report within {} ms",
                            self.timeout.as_millis()
                        )),
                    }
                }
                Err(error) => Err(error),
            };
            failed = outcome.is_err();
            outcomes.push(outcome);
        }
        if failed {
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
