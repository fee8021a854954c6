//! Events out of the transactional outbox (SPEC §6): the relay that claims pending rows and
//! the sinks it hands them to: one publisher (Redis pub/sub, NATS JetStream, or the log) and
//! any number of signed webhook endpoints.

mod nats;
mod publisher;
mod redis;
mod relay;
mod webhook;

pub use nats::nats_subject;
pub use publisher::{BrokerProbe, Publisher};
pub use relay::Relay;
pub use webhook::{sign, Delivery, WebhookSink};
