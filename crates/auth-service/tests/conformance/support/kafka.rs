//! Kafka for tests: a Kafka-protocol broker (`tansu`, in memory) that a test starts on free
//! ports of its own, advertising a chaos proxy so that every client (the service's producer
//! and the test's reader) goes through it; a test may cut or freeze the proxy, or freeze the
//! broker itself (SIGSTOP).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use super::chaos::ChaosProxy;
use super::owned::Owned;
use super::process::free_port;

/// How long a freshly started broker may take to answer on a busy machine.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Partitions of a test's topic: several, so per-user order rests on the key.
pub const PARTITIONS: i32 = 3;

/// The `tansu` program: `TANSU`, else where `.ci/run` installs it, else on `PATH`.
fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return path.into();
    }
    let cached = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/auth-service/tansu-0.6.0-dynostore/bin/tansu");
    if cached.exists() {
        cached
    } else {
        "tansu".into()
    }
}

/// One message as a reader of the topic sees it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub partition: i32,
    pub key: Option<String>,
    pub id_header: Option<String>,
    pub type_header: Option<String>,
    pub envelope: Value,
}

/// A broker owned by one test, in memory, reached through a chaos proxy.
pub struct OwnKafka {
    pub proxy: ChaosProxy,
    process: Owned,
}

impl OwnKafka {
    /// Whether `tansu` can be run here; under `CI` it must be, otherwise `test` is skipped.
    pub fn available(test: &str) -> bool {
        let found = Command::new(program())
            .arg("--help")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but tansu cannot be run: .ci/run installs it (cargo install --locked \
                 tansu --features dynostore --root ~/.cache/auth-service/tansu-0.6.0-dynostore)"
            );
            eprintln!(
                "SKIPPED {test}: no Kafka-protocol broker (cargo install --locked tansu --features \
                 dynostore --root ~/.cache/auth-service/tansu-0.6.0-dynostore)"
            );
        }
        found
    }

    /// Starts a broker on a free port behind a proxy, which it advertises, and creates `topic`.
    pub async fn start(topic: &str) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into()).await;
            let mut kafka = Self {
                proxy,
                process: Owned::default(),
            };
            kafka.process.spawn(
                Command::new(program())
                    .arg("broker")
                    .arg("--listener-url")
                    .arg(format!("tcp://127.0.0.1:{port}"))
                    .arg("--advertised-listener-url")
                    .arg(format!("tcp://{}", kafka.proxy.addr))
                    .arg("--storage-engine")
                    .arg("memory://tansu/"),
            );
            if kafka.create_topic(topic).await {
                return kafka;
            }
            kafka.process.stop();
        }
        panic!("tansu did not start on any of 5 free ports");
    }

    /// `host:port` of the broker for clients: the proxy.
    pub fn brokers(&self) -> String {
        self.proxy.addr.to_string()
    }

    /// Freezes the broker process (SIGSTOP).
    pub fn pause(&self) {
        self.process.pause();
    }

    /// Lets it answer again (SIGCONT).
    pub fn resume(&self) {
        self.process.resume();
    }

    async fn create_topic(&mut self, topic: &str) -> bool {
        let deadline = tokio::time::Instant::now() + STARTUP_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            if self.process.exited() {
                return false;
            }
            let admin: AdminClient<DefaultClientContext> = match ClientConfig::new()
                .set("bootstrap.servers", self.brokers())
                .create()
            {
                Ok(admin) => admin,
                Err(_) => return false,
            };
            let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(2)));
            let created = tokio::time::timeout(
                Duration::from_secs(3),
                admin.create_topics([&new], &options),
            )
            .await;
            if let Ok(Ok(results)) = created {
                if results.iter().all(|result| {
                    result.is_ok()
                        || matches!(
                            result,
                            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))
                        )
                }) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Every message stored in `topic`, each partition's in offset order, read to the end of
    /// every partition.
    pub async fn stored(&self, topic: &str) -> Vec<Stored> {
        let brokers = self.brokers();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || read_all(&brokers, &topic))
            .await
            .expect("read the topic")
    }
}

fn read_all(brokers: &str, topic: &str) -> Vec<Stored> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "conformance-reader")
        .set("enable.auto.commit", "false")
        // Each partition is read to its end as the fetch answers give it (their high
        // watermark), not to ListOffsets' latest offset: tansu 0.6 (dynostore) answers that
        // with its last batch's base offset + 1, short of the later records of a last batch of
        // several (issue 19: a reader stopping there missed events the producer had stored).
        .set("enable.partition.eof", "true")
        .create()
        .expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        // Each test's topic is new: it begins at offset 0.
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(0))
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut unread: HashSet<i32> = (0..PARTITIONS).collect();
    let mut stored = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !unread.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the topic could not be read"
        );
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                unread.remove(&partition);
                continue;
            }
            Some(Err(error)) => panic!("reading the topic: {error}"),
            Some(Ok(message)) => message,
        };
        let header = |name: &str| {
            message.headers().and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
            })
        };
        stored.push(Stored {
            partition: message.partition(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            id_header: header("id"),
            type_header: header("type"),
            envelope: serde_json::from_slice(message.payload().unwrap_or_default())
                .expect("a JSON envelope"),
        });
    }
    stored
}
