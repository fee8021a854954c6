//! Events out of the transactional outbox (SPEC §6): the relay that claims pending rows and
//! the sinks it hands them to: one publisher (Redis pub/sub, NATS JetStream, RabbitMQ, Kafka,
//! or the log) and any number of signed webhook endpoints.

mod kafka;
mod nats;
mod publisher;
mod rabbitmq;
mod redis;
mod relay;
mod webhook;

pub use nats::nats_subject;
pub use publisher::{BrokerProbe, Publisher};
pub use relay::Relay;
pub use webhook::{sign, Delivery, WebhookSink};
