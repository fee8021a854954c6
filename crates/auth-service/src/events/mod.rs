//! Events out of the transactional outbox (SPEC §6): the relay that claims pending rows and
//! the publishers it hands them to (Redis pub/sub, NATS JetStream, or the log).

mod nats;
mod publisher;
mod redis;
mod relay;

pub use nats::nats_subject;
pub use publisher::{BrokerProbe, Publisher};
pub use relay::Relay;
