//! NATS for tests: the shared JetStream server named by `TEST_NATS_URL` (required under `CI`),
//! and a private `nats-server` a test may stop, freeze and start again to stage an outage
//! without touching the shared one.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::owned::{installed, Owned};
use super::process::free_port;

/// How long a freshly started `nats-server` may take to answer on a busy machine.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

/// The shared NATS URL for tests, or `None` with a note naming `test` as skipped.
pub fn shared_nats_for(test: &str) -> Option<String> {
    match std::env::var("TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but TEST_NATS_URL is not: start nats-server with JetStream (-js) and \
             export TEST_NATS_URL=nats://127.0.0.1:4222"
        ),
        _ => {
            eprintln!("SKIPPED {test}: TEST_NATS_URL is not set");
            None
        }
    }
}

/// The `nats-server` program: on `PATH`, or where Debian installs it.
fn program() -> &'static str {
    let on_path = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if on_path {
        "nats-server"
    } else {
        "/usr/sbin/nats-server"
    }
}

/// A JetStream `nats-server` owned by one test, on its own port, storing its streams in a
/// directory of its own that outlives a stop, as a real broker's disk does.
pub struct OwnNats {
    pub port: u16,
    process: Owned,
    dir: tempfile::TempDir,
}

impl OwnNats {
    /// Whether `nats-server` can be run here; under `CI` it must be, otherwise `test` is
    /// skipped with a note.
    pub fn available(test: &str) -> bool {
        installed(
            program(),
            test,
            "install NATS (apt-get install nats-server)",
        )
    }

    /// Starts a server on a free port and waits until JetStream answers.
    pub async fn start() -> Self {
        // Another process may take the port between choosing and binding it; try a few.
        for _ in 0..5 {
            let mut nats = Self {
                port: free_port(),
                process: Owned::default(),
                dir: tempfile::tempdir().expect("temp dir for nats-server"),
            };
            if nats.launch().await {
                return nats;
            }
        }
        panic!("nats-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: a crash, no goodbye to clients) and waits for its exit.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port, with the streams it had stored.
    pub async fn start_again(&mut self) {
        self.stop();
        assert!(
            self.launch().await,
            "nats-server did not start again on port {}",
            self.port
        );
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is acknowledged.
    pub fn pause(&self) {
        self.process.pause();
    }

    /// Lets a paused server answer again (SIGCONT).
    pub fn resume(&self) {
        self.process.resume();
    }

    /// Every message stored in `stream` so far, as `(Nats-Msg-Id, envelope)` in stream order.
    pub async fn stored(&self, stream: &str) -> Vec<(String, Value)> {
        stored_messages(&self.url(), stream).await
    }

    /// Spawns the process; false when it exits or stays silent (e.g. the port was taken).
    async fn launch(&mut self) -> bool {
        self.process.spawn(
            Command::new(program())
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(self.dir.path()),
        );
        let deadline = tokio::time::Instant::now() + STARTUP_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            if self.process.exited() {
                break;
            }
            if self.jetstream_answers().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop();
        false
    }

    /// Whether the server accepts a client and its JetStream API answers (a raw request:
    /// the typed account query of the client library does not parse older servers' answer).
    async fn jetstream_answers(&self) -> bool {
        let attempt = async {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(1))
                .connect(self.url())
                .await
                .ok()?;
            client.request("$JS.API.INFO", "".into()).await.ok()
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
            .is_some()
    }
}

/// Every message stored in `stream` on the server at `url`, read with an ephemeral ordered
/// consumer from the first one, as `(Nats-Msg-Id, envelope)` in stream order.
pub async fn stored_messages(url: &str, stream: &str) -> Vec<(String, Value)> {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream(stream)
        .await
        .expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("message stream");
    let mut stored = Vec::new();
    while (stored.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("stored messages arrive")
            .expect("message stream open")
            .expect("a message");
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default();
        stored.push((msg_id, serde_json::from_slice(&message.payload).unwrap()));
    }
    stored
}
