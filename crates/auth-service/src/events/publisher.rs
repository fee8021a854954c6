//! The publisher the relay hands each event to, chosen by `[events]`, and the probe `/ready`
//! asks about its broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{kafka, nats, rabbitmq, redis};
use crate::config::{Config, EventBackend};
use crate::store::PendingEvent;

/// Where the relay sends events.
pub enum Publisher {
    /// Logs each event (id, type, user; never its data) and counts it published.
    Log,
    Redis(redis::RedisPublisher),
    Nats(Box<nats::NatsPublisher>),
    Rabbitmq(rabbitmq::RabbitPublisher),
    Kafka(kafka::KafkaPublisher),
}

impl Publisher {
    /// The publisher `[events]` selects; NATS connects in the background, so a broker that
    /// is down at start delays events but not the service.
    pub async fn from_config(config: &Config) -> anyhow::Result<Self> {
        let events = &config.events;
        let timeout = events.publish_timeout;
        Ok(match events.effective_backend(config.redis.url.is_some()) {
            EventBackend::None => Self::Log,
            EventBackend::Redis => match &config.redis.url {
                Some(url) => Self::Redis(redis::RedisPublisher::new(url.expose(), timeout)),
                None => Self::Log,
            },
            EventBackend::Nats => match &events.nats_url {
                Some(url) => Self::Nats(Box::new(
                    nats::NatsPublisher::connect(url.expose(), &events.nats_stream, timeout)
                        .await?,
                )),
                None => Self::Log,
            },
            EventBackend::Rabbitmq => match &events.amqp_url {
                Some(url) => Self::Rabbitmq(rabbitmq::RabbitPublisher::start(
                    url.expose(),
                    &events.amqp_exchange,
                    timeout,
                )),
                None => Self::Log,
            },
            EventBackend::Kafka => match &events.kafka_brokers {
                Some(brokers) => Self::Kafka(kafka::KafkaPublisher::new(
                    brokers,
                    &events.kafka_topic,
                    timeout,
                )?),
                None => Self::Log,
            },
        })
    }

    /// A handle `/ready` asks whether the broker is connected.
    pub fn probe(&self) -> BrokerProbe {
        match self {
            Self::Nats(nats) => BrokerProbe::Nats(nats.client()),
            Self::Rabbitmq(rabbitmq) => BrokerProbe::Rabbitmq(rabbitmq.connected()),
            // Redis is the rate limiter's too, and `/ready` already reports it from there.
            // librdkafka keeps no single connection to report: Kafka failures show in
            // `auth_events_failed_total` and `auth_outbox_pending`.
            Self::Log | Self::Redis(_) | Self::Kafka(_) => BrokerProbe::None,
        }
    }

    /// `"none"`, `"redis"`, `"nats"`, `"rabbitmq"` or `"kafka"`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Log => "none",
            Self::Redis(_) => "redis",
            Self::Nats(_) => "nats",
            Self::Rabbitmq(_) => "rabbitmq",
            Self::Kafka(_) => "kafka",
        }
    }

    /// Hands a wave of events to the broker, all at once (pipelined), and says per event, in
    /// the same order, whether the broker took it (`Err` carries why not). The relay puts no
    /// two events of one user in a wave, so their order within it does not matter.
    pub async fn publish_all(&self, events: Vec<&PendingEvent>) -> Vec<Result<(), String>> {
        match self {
            Self::Log => events
                .iter()
                .map(|event| {
                    tracing::debug!(
                        event.id = %event.id,
                        event.r#type = %event.event_type,
                        user.id = ?event.user_id,
                        "event"
                    );
                    Ok(())
                })
                .collect(),
            Self::Redis(redis) => redis.publish_all(&events).await,
            Self::Nats(nats) => nats.publish_all(&events).await,
            Self::Rabbitmq(rabbitmq) => rabbitmq.publish_all(&events).await,
            Self::Kafka(kafka) => kafka.publish_all(&events).await,
        }
    }
}

/// Whether the configured event broker is reachable, without a round trip: the client's own
/// view of its connection (it reconnects in the background).
#[derive(Clone)]
pub enum BrokerProbe {
    /// No broker of its own to report (the log, or Redis reported by the limiter).
    None,
    Nats(async_nats::Client),
    /// Whether the RabbitMQ keeper holds an open link.
    Rabbitmq(Arc<AtomicBool>),
}

impl BrokerProbe {
    /// `None` without a broker to report; else `(name, connected)`.
    pub fn status(&self) -> Option<(&'static str, bool)> {
        match self {
            Self::None => None,
            Self::Nats(client) => Some((
                "nats",
                client.connection_state() == async_nats::connection::State::Connected,
            )),
            Self::Rabbitmq(connected) => Some(("rabbitmq", connected.load(Ordering::SeqCst))),
        }
    }
}
