//! `[events]`: where the outbox relay publishes events (SPEC §6) and how it paces itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::secret::Secret;
use super::webhooks::WebhookConfig;

/// Where events go. Unset, the relay picks by what is configured: NATS JetStream when
/// `events.nats_url` is set, else Redis pub/sub when `redis.url` is set, else the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBackend {
    /// Each event is logged at debug level (without its data) and marked published.
    None,
    /// `PUBLISH <type> <envelope>` on `redis.url`.
    Redis,
    /// JetStream on `events.nats_url`, subject = type with `:` replaced by `.`.
    Nats,
}

/// The outbox relay (SPEC §6): every replica runs one; they share the work through the
/// database, so an event goes out once in the normal case and at least once always.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Forces a backend; unset chooses as [`EventBackend`] says.
    pub backend: Option<EventBackend>,
    /// `nats://host:4222` (`APP__EVENTS__NATS_URL`); setting it selects NATS JetStream.
    pub nats_url: Option<Secret>,
    /// The JetStream stream, created when missing, that captures the subjects `auth.>`.
    pub nats_stream: String,
    /// Most events claimed and published in one round.
    pub batch_size: u32,
    /// Pause between rounds once nothing is left to publish.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Published events older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Longest wait before retrying an event the broker refused; retries back off
    /// exponentially from one second up to this, with jitter.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Longest wait for the broker to take (and, on JetStream, acknowledge) one event.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// How long a relay holds the events it claimed. A replica that dies mid-round leaves
    /// them claimed this long; then any replica publishes them again (at least once).
    /// At least twice `publish_timeout`.
    #[serde(with = "humantime_serde")]
    pub claim_lease: Duration,
    /// Endpoints that receive events as signed Standard Webhooks requests, beside the broker;
    /// each has its own delivery state.
    pub webhooks: Vec<WebhookConfig>,
    /// How long a webhook delivery is retried: an event older than this is given up (logged
    /// and counted) at its next failure. At most `events.retention`.
    #[serde(with = "humantime_serde")]
    pub webhook_retention: Duration,
}

impl EventsConfig {
    /// The keys of `[events]` alone; whether `redis.url` is set is checked with the rest.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::at(key, why));
        if let Some(url) = &self.nats_url {
            let scheme_ok = url::Url::parse(url.expose())
                .is_ok_and(|url| matches!(url.scheme(), "nats" | "tls" | "ws" | "wss"));
            if !scheme_ok {
                return bad("events.nats_url", "must be a URL such as nats://host:4222");
            }
        }
        if self.backend == Some(EventBackend::Nats) && self.nats_url.is_none() {
            return bad("events.backend", "nats needs events.nats_url");
        }
        if self.nats_stream.is_empty()
            || !self
                .nats_stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(
                "events.nats_stream",
                "must be letters, digits, '_' or '-' (a JetStream stream name)",
            );
        }
        if self.batch_size == 0 || self.batch_size > 10_000 {
            return bad("events.batch_size", "must be between 1 and 10000");
        }
        for (key, duration) in [
            ("events.poll_interval", self.poll_interval),
            ("events.retention", self.retention),
            ("events.max_backoff", self.max_backoff),
            ("events.publish_timeout", self.publish_timeout),
            ("events.webhook_retention", self.webhook_retention),
        ] {
            if duration.is_zero() {
                return bad(key, "must be longer than zero");
            }
        }
        if self.claim_lease < self.publish_timeout.saturating_mul(2) {
            return bad(
                "events.claim_lease",
                "must be at least twice events.publish_timeout",
            );
        }
        if self.webhook_retention > self.retention {
            return bad(
                "events.webhook_retention",
                "must be at most events.retention",
            );
        }
        let mut names = std::collections::HashSet::new();
        for (index, webhook) in self.webhooks.iter().enumerate() {
            webhook.validate(index)?;
            if !names.insert(webhook.name()) {
                return Err(ConfigError::at(
                    &format!("events.webhooks[{index}].name"),
                    "two endpoints have this name; give each its own",
                ));
            }
        }
        Ok(())
    }

    /// The backend in effect, given whether `redis.url` is set.
    pub fn effective_backend(&self, redis_configured: bool) -> EventBackend {
        match self.backend {
            Some(backend) => backend,
            None if self.nats_url.is_some() => EventBackend::Nats,
            None if redis_configured => EventBackend::Redis,
            None => EventBackend::None,
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            backend: None,
            nats_url: None,
            nats_stream: "AUTH_EVENTS".to_owned(),
            batch_size: 100,
            poll_interval: Duration::from_millis(500),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_backoff: Duration::from_secs(60),
            publish_timeout: Duration::from_secs(5),
            claim_lease: Duration::from_secs(60),
            webhooks: Vec::new(),
            webhook_retention: Duration::from_secs(24 * 3600),
        }
    }
}
