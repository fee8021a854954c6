//! Redis pub/sub: `PUBLISH <type> <envelope>`, a wave of events in one pipeline. The
//! connection is opened on first use and dropped on any failure, so a Redis that comes back is
//! picked up by the next attempt.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use tokio::sync::Mutex;

use crate::store::PendingEvent;

pub struct RedisPublisher {
    /// `None` when the URL does not parse: every publish fails and events wait.
    client: Option<Client>,
    timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
}

impl RedisPublisher {
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            client: Client::open(url).ok(),
            timeout,
            connection: Mutex::new(None),
        }
    }

    /// Publishes a wave of events in one pipeline (one round trip): `PUBLISH <type>
    /// <envelope>` for each, in the given order. Redis answers for the pipeline as a whole, so
    /// every event shares its outcome.
    pub async fn publish_all(&self, events: &[&PendingEvent]) -> Vec<Result<(), String>> {
        let outcome = self.pipeline(events).await;
        vec![outcome; events.len()]
    }

    async fn pipeline(&self, events: &[&PendingEvent]) -> Result<(), String> {
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let connection = self.open().await?;
                *slot = Some(connection.clone());
                connection
            }
        };
        let mut pipeline = redis::pipe();
        for event in events {
            pipeline
                .cmd("PUBLISH")
                .arg(&event.event_type)
                .arg(&event.payload);
        }
        let publish = pipeline.query_async::<Vec<i64>>(&mut connection);
        let outcome = match tokio::time::timeout(self.timeout, publish).await {
            Ok(Ok(_receivers)) => Ok(()),
            Ok(Err(error)) => Err(format!("redis: {error}")),
            Err(_) => Err(format!(
                "redis: no answer within {} ms",
                self.timeout.as_millis()
            )),
        };
        if outcome.is_err() {
            *slot = None;
        }
        outcome
    }

    async fn open(&self) -> Result<ConnectionManager, String> {
        let Some(client) = self.client.clone() else {
            return Err("redis.url is not a valid Redis URL".to_owned());
        };
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        match tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(format!("redis: {error}")),
            Err(_) => Err(format!(
                "redis: cannot connect within {} ms",
                self.timeout.as_millis()
            )),
        }
    }
}
