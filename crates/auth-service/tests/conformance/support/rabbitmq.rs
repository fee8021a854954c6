//! RabbitMQ for tests: the shared broker named by `TEST_AMQP_URL` (required under `CI`), and a
//! consumer that binds its own queue to a test's own exchange before anything is published.
//! Outages are staged with the chaos proxy in front of the shared broker, never by stopping it.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use tokio::sync::mpsc;

/// The shared RabbitMQ URL for tests, or `None` with a note naming `test` as skipped.
pub fn shared_amqp_for(test: &str) -> Option<String> {
    match std::env::var("TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but TEST_AMQP_URL is not: install and start RabbitMQ (apt-get install \
             rabbitmq-server; rabbitmq-server -detached) and export \
             TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: TEST_AMQP_URL is not set (apt-get install rabbitmq-server, \
                 then TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f)"
            );
            None
        }
    }
}

/// The `host:port` of an AMQP URL, for a chaos proxy in front of it.
pub fn amqp_addr(url: &str) -> std::net::SocketAddr {
    let parsed = url::Url::parse(url).expect("an AMQP URL");
    let host = parsed.host_str().expect("a host");
    let port = parsed.port().unwrap_or(5672);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("resolve the broker")
        .next()
        .expect("an address")
}

/// `url` with its host and port replaced by `addr` (the chaos proxy).
pub fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let mut parsed = url::Url::parse(url).expect("an AMQP URL");
    parsed.set_host(Some(&addr.ip().to_string())).unwrap();
    parsed.set_port(Some(addr.port())).unwrap();
    parsed.to_string()
}

/// One message as a consumer sees it.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    /// The `type` and `territory` headers.
    pub type_header: Option<String>,
    pub territory_header: Option<String>,
    pub envelope: Value,
}

/// A queue of its own, bound with `#` to the test's exchange, consumed into a channel.
pub struct Consumer {
    pub exchange: String,
    connection: Connection,
    channel: Channel,
}

impl Consumer {
    /// Declares `exchange` as the service does (durable topic), binds a fresh exclusive queue
    /// to it and starts consuming; messages arrive on the returned receiver.
    pub async fn start(url: &str, exchange: &str) -> (Self, mpsc::UnboundedReceiver<Received>) {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|error| panic!("connect to RabbitMQ at TEST_AMQP_URL: {error}"));
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare the exchange");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare a queue");
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind the queue");
        let mut deliveries = channel
            .basic_consume(
                queue.name().clone(),
                "conformance".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = deliveries.next().await {
                let properties = &delivery.properties;
                let header = |name: &str| {
                    properties
                        .headers()
                        .as_ref()
                        .and_then(|headers| headers.inner().get(name).cloned())
                        .map(|value| match value {
                            AMQPValue::LongString(text) => text.to_string(),
                            other => format!("{other:?}"),
                        })
                };
                let received = Received {
                    routing_key: delivery.routing_key.to_string(),
                    message_id: properties.message_id().as_ref().map(|id| id.to_string()),
                    content_type: properties.content_type().as_ref().map(|t| t.to_string()),
                    delivery_mode: *properties.delivery_mode(),
                    type_header: header("type"),
                    territory_header: header("territory"),
                    envelope: serde_json::from_slice(&delivery.data).expect("a JSON envelope"),
                };
                if tx.send(received).is_err() {
                    break;
                }
            }
        });
        let consumer = Self {
            exchange: exchange.to_owned(),
            connection,
            channel,
        };
        (consumer, rx)
    }

    /// Deletes the test's exchange (its queue goes with the connection).
    pub async fn finish(self) {
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.connection.close(200, "done".into()),
        )
        .await;
    }
}
