//! RabbitMQ (AMQP 0-9-1): a durable topic exchange, declared when missing; routing key = type
//! with `:` replaced by `.`; persistent messages with the event id as `message_id`, and the
//! type and territory as headers. A publish counts only once the broker confirms it
//! (publisher confirms); a nack, a lost connection or no confirm within the timeout is a retry.
//!
//! A keeper task owns the connection: it connects, watches the link, and reconnects with a
//! doubling backoff when the link breaks (or a publish timed out on it); a publish without a
//! link waits for one up to the publish timeout, and `/ready` sees the link's state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

use super::nats::nats_subject;
use crate::store::PendingEvent;

/// The first reconnect waits this long, each further one twice as long up to
/// [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// How often the keeper looks at a link that nobody reported broken.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// AMQP `delivery_mode` 2: the broker writes the message to disk in a durable queue.
const PERSISTENT: u8 = 2;

pub struct RabbitPublisher {
    shared: Arc<Shared>,
    keeper: AbortHandle,
}

/// What the publisher and its keeper share.
struct Shared {
    url: String,
    exchange: String,
    timeout: Duration,
    /// The open channel (in confirm mode, the exchange declared), or `None` while there is
    /// no link.
    channel: watch::Sender<Option<Channel>>,
    /// Whether a link is up: what `/ready` reads.
    connected: Arc<AtomicBool>,
    /// A publish failed on the link: the keeper drops it and connects afresh.
    broken: Notify,
}

struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

impl RabbitPublisher {
    /// Starts the keeper, which connects in the background: a broker that is down at start
    /// delays events but not the service.
    pub fn start(url: &str, exchange: &str, timeout: Duration) -> Self {
        let shared = Arc::new(Shared {
            url: url.to_owned(),
            exchange: exchange.to_owned(),
            timeout,
            channel: watch::Sender::new(None),
            connected: Arc::new(AtomicBool::new(false)),
            broken: Notify::new(),
        });
        let keeper = tokio::spawn(keep(Arc::downgrade(&shared))).abort_handle();
        Self { shared, keeper }
    }

    /// Whether a link to the broker is up, for `/ready`.
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.shared.connected.clone()
    }

    /// Publishes a wave of events (of distinct users) pipelined on the one channel: every
    /// message is sent, then every confirm awaited, all within one `publish_timeout`. Says per
    /// event whether the broker confirmed it.
    pub async fn publish_all(&self, events: &[&PendingEvent]) -> Vec<Result<(), String>> {
        let timeout = self.shared.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut linked = self.shared.channel.subscribe();
        let channel =
            match tokio::time::timeout_at(deadline, linked.wait_for(Option::is_some)).await {
                Ok(Ok(channel)) => channel.clone(),
                _ => None,
            };
        let Some(channel) = channel else {
            let error = format!(
                "rabbitmq: not connected to the broker within {} ms",
                timeout.as_millis()
            );
            return vec![Err(error); events.len()];
        };
        let late = || format!("rabbitmq: no confirm within {} ms", timeout.as_millis());
        let mut sent = Vec::with_capacity(events.len());
        for event in events {
            let publish = channel.basic_publish(
                ShortString::from(self.shared.exchange.as_str()),
                ShortString::from(nats_subject(&event.event_type)),
                BasicPublishOptions::default(),
                event.payload.as_bytes(),
                properties(event),
            );
            sent.push(match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(confirm)) => Ok(confirm),
                Ok(Err(error)) => Err(Failure::Link(format!("rabbitmq: {error}"))),
                Err(_) => Err(Failure::Link(late())),
            });
        }
        // The confirms come back together; awaiting them in turn costs no more.
        let mut outcomes = Vec::with_capacity(sent.len());
        for sent in sent {
            outcomes.push(match sent {
                Ok(confirm) => confirmed(tokio::time::timeout_at(deadline, confirm).await, late),
                Err(failure) => Err(failure),
            });
        }
        // A confirm that never came leaves the channel's sequence in doubt: start afresh.
        if outcomes
            .iter()
            .any(|outcome| matches!(outcome, Err(Failure::Link(_))))
        {
            self.shared.broken.notify_one();
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.map_err(|failure| match failure {
                    Failure::Link(error) | Failure::Refused(error) => error,
                })
            })
            .collect()
    }
}

/// What became of one message: a confirm (an ack, or a nack), an error or no confirm in time.
fn confirmed(
    confirm: Result<lapin::Result<Confirmation>, tokio::time::error::Elapsed>,
    late: impl Fn() -> String,
) -> Result<(), Failure> {
    match confirm {
        Ok(Ok(confirmation)) if confirmation.is_ack() => Ok(()),
        // The link is fine; the broker could not take the message (e.g. a full disk).
        Ok(Ok(confirmation)) if confirmation.is_nack() => Err(Failure::Refused(
            "rabbitmq: the broker refused the message (nack)".to_owned(),
        )),
        Ok(Ok(_)) => Err(Failure::Link(
            "rabbitmq: the channel is not in confirm mode".to_owned(),
        )),
        Ok(Err(error)) => Err(Failure::Link(format!("rabbitmq: {error}"))),
        Err(_) => Err(Failure::Link(late())),
    }
}

/// Why one message of a wave was not confirmed.
enum Failure {
    /// The link failed it (an error, no confirm in time): the keeper reconnects.
    Link(String),
    /// The broker said no (a nack) on a link that works.
    Refused(String),
}

impl Drop for RabbitPublisher {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// The message properties: persistent JSON with the event id as `message_id`, the type as
/// AMQP `type` and as a header, and the envelope's territory as a header when it has one.
fn properties(event: &PendingEvent) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "type".into(),
        AMQPValue::LongString(LongString::from(event.event_type.as_str())),
    );
    let territory = serde_json::from_str::<serde_json::Value>(&event.payload)
        .ok()
        .and_then(|envelope| envelope["territory"].as_str().map(str::to_owned));
    if let Some(territory) = territory {
        headers.insert(
            "territory".into(),
            AMQPValue::LongString(LongString::from(territory)),
        );
    }
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_headers(headers)
}

/// The keeper: connects, holds the link while it is healthy, reconnects with backoff. Ends
/// when the publisher is dropped.
async fn keep(shared: Weak<Shared>) {
    let mut backoff = FIRST_BACKOFF;
    let mut down_logged = false;
    loop {
        let Some(state) = shared.upgrade() else {
            return;
        };
        match connect(&state).await {
            Ok(link) => {
                if down_logged {
                    tracing::info!("rabbitmq: connected again");
                }
                down_logged = false;
                backoff = FIRST_BACKOFF;
                state.channel.send_replace(Some(link.channel.clone()));
                state.connected.store(true, Ordering::SeqCst);
                watch_link(&state, &link).await;
                state.connected.store(false, Ordering::SeqCst);
                state.channel.send_replace(None);
                close(link.connection);
                tracing::warn!("rabbitmq: the link to the broker broke; reconnecting");
            }
            Err(error) => {
                if !down_logged {
                    tracing::warn!(error = %error, "rabbitmq: cannot connect; retrying with backoff");
                    down_logged = true;
                }
                drop(state);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MOST_BACKOFF);
            }
        }
    }
}

/// Returns once the link is broken or a publish reported it so.
async fn watch_link(state: &Shared, link: &Link) {
    loop {
        tokio::select! {
            () = state.broken.notified() => return,
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        if !link.healthy() {
            return;
        }
    }
}

/// Opens a connection and a channel in confirm mode, and declares the exchange.
async fn connect(state: &Shared) -> Result<Link, String> {
    let attempt = async {
        let properties =
            ConnectionProperties::default().with_connection_name("auth-service events".into());
        let connection = Connection::connect(&state.url, properties)
            .await
            .map_err(|error| format!("rabbitmq: {error}"))?;
        let link = async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .exchange_declare(
                    ShortString::from(state.exchange.as_str()),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(channel)
        }
        .await;
        match link {
            Ok(channel) => Ok(Link {
                connection,
                channel,
            }),
            Err(error) => {
                close(connection);
                Err(format!("rabbitmq: exchange {}: {error}", state.exchange))
            }
        }
    };
    match tokio::time::timeout(state.timeout, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "rabbitmq: cannot connect within {} ms",
            state.timeout.as_millis()
        )),
    }
}

/// Closes a link in the background, giving up after a moment (the broker may be frozen).
fn close(connection: Connection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            connection.close(200, "reconnecting".into()),
        )
        .await;
    });
}
