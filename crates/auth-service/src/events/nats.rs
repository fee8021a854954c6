//! NATS JetStream: subject = type with `:` replaced by `.`, the event id as `Nats-Msg-Id` so
//! JetStream drops a re-publish within its duplicate window, and the stream created if missing.

use std::time::Duration;

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, stream};
use tokio::sync::OnceCell;

use crate::store::PendingEvent;

pub struct NatsPublisher {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    timeout: Duration,
    /// Set once the stream is known to exist.
    stream_ready: OnceCell<()>,
}

impl NatsPublisher {
    /// Connects in the background (a server that is down is retried); fails only on a URL
    /// that cannot be used.
    pub async fn connect(url: &str, stream: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .connect(url)
            .await
            .map_err(|error| anyhow::anyhow!("events.nats_url: {error}"))?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(timeout);
        Ok(Self {
            client,
            jetstream,
            stream: stream.to_owned(),
            timeout,
            stream_ready: OnceCell::new(),
        })
    }

    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }

    /// Publishes a wave of events (of distinct users: their order among themselves does not
    /// matter) pipelined: every message is sent, then every acknowledgement awaited, all within
    /// one `publish_timeout`. Says per event whether JetStream stored it.
    pub async fn publish_all(&self, events: &[&PendingEvent]) -> Vec<Result<(), String>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = || {
            format!(
                "nats: no acknowledgement within {} ms",
                self.timeout.as_millis()
            )
        };
        let stream = tokio::time::timeout_at(deadline, self.ensure_stream()).await;
        match stream {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return vec![Err(error); events.len()],
            Err(_) => return vec![Err(late()); events.len()],
        }
        let mut sent = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, event.id.to_string().as_str());
            let publish = self.jetstream.publish_with_headers(
                nats_subject(&event.event_type),
                headers,
                event.payload.clone().into(),
            );
            sent.push(match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(ack)) => Ok(ack),
                Ok(Err(error)) => Err(format!("nats: {error}")),
                Err(_) => Err(late()),
            });
        }
        // The acknowledgements come back together; awaiting them in turn costs no more.
        let mut outcomes = Vec::with_capacity(sent.len());
        for sent in sent {
            outcomes.push(match sent {
                Ok(ack) => match tokio::time::timeout_at(deadline, ack).await {
                    Ok(Ok(_stored)) => Ok(()),
                    Ok(Err(error)) => Err(format!("nats: {error}")),
                    Err(_) => Err(late()),
                },
                Err(error) => Err(error),
            });
        }
        outcomes
    }

    /// Creates the stream once, when it is missing.
    async fn ensure_stream(&self) -> Result<(), String> {
        self.stream_ready
            .get_or_try_init(|| async {
                self.jetstream
                    .get_or_create_stream(stream::Config {
                        name: self.stream.clone(),
                        subjects: vec!["auth.>".to_owned()],
                        ..stream::Config::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("nats: stream {}: {error}", self.stream))
            })
            .await
            .copied()
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
