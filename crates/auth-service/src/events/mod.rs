//! Events out of the transactional outbox (SPEC §6): the relay that claims pending rows and
//! the publishers it hands them to (Redis pub/sub, NATS JetStream, or the log).

mod nats;
mod redis;
mod relay;

pub use relay::Relay;

use crate::config::{Config, EventBackend};
use crate::store::PendingEvent;

/// Where the relay sends events.
pub enum Publisher {
    /// Logs each event (id, type, user; never its data) and counts it published.
    Log,
    Redis(redis::RedisPublisher),
    Nats(nats::NatsPublisher),
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
                Some(url) => Self::Nats(
                    nats::NatsPublisher::connect(url.expose(), &events.nats_stream, timeout)
                        .await?,
                ),
                None => Self::Log,
            },
        })
    }

    /// `"none"`, `"redis"` or `"nats"`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Log => "none",
            Self::Redis(_) => "redis",
            Self::Nats(_) => "nats",
        }
    }

    /// Hands one event to the broker; `Err` carries why it was not taken.
    pub async fn publish(&self, event: &PendingEvent) -> Result<(), String> {
        match self {
            Self::Log => {
                tracing::debug!(
                    event.id = %event.id,
                    event.r#type = %event.event_type,
                    user.id = ?event.user_id,
                    "event"
                );
                Ok(())
            }
            Self::Redis(redis) => redis.publish(&event.event_type, &event.payload).await,
            Self::Nats(nats) => nats.publish(event).await,
        }
    }
}

/// The NATS subject of an event type: `auth:user.registered` → `auth.user.registered`.
pub fn nats_subject(event_type: &str) -> String {
    event_type.replace(':', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_subject_replaces_the_colon() {
        assert_eq!(nats_subject("auth:user.registered"), "auth.user.registered");
        assert_eq!(
            nats_subject("auth:sessions.bulk_terminated"),
            "auth.sessions.bulk_terminated"
        );
    }
}
