//! Events per second per sink (issue 19): the service spawned with one sink at a time (NATS,
//! Redis, RabbitMQ, Kafka, a webhook endpoint), driven at the benchmark's peak write rate
//! (rotating refreshes beside logins, each writing its event into the outbox), and measured
//! through its own `/metrics`: events published per second while the load runs, and the time
//! from the end of the load until `auth_outbox_pending` reads 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::api::{self, Api};
use crate::database::Database;
use crate::fixture::Fixture;
use crate::http::Target;
use crate::load::{self, Kind};
use crate::report::{rate, Line};
use crate::server::Service;
use crate::targets::{Verdict, DRAIN};
use crate::Args;

/// How often `/metrics` is read while the outbox drains: the resolution of the drain time.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// How long a drain is waited for before the sink is called stuck.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long tansu may take to accept a topic.
const KAFKA_STARTUP: Duration = Duration::from_secs(20);
/// The Kafka topic of the run.
const KAFKA_TOPIC: &str = "auth-bench-events";

/// A sink the relay publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sink {
    Nats,
    Redis,
    Rabbitmq,
    Kafka,
    Webhook,
}

impl Sink {
    pub const ALL: [Self; 5] = [
        Self::Nats,
        Self::Redis,
        Self::Rabbitmq,
        Self::Kafka,
        Self::Webhook,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Nats => "NATS JetStream",
            Self::Redis => "Redis pub/sub",
            Self::Rabbitmq => "RabbitMQ (publisher confirms)",
            Self::Kafka => "Kafka (tansu, idempotent producer)",
            Self::Webhook => "webhook (local receiver answering 204)",
        }
    }
}

/// What one sink did.
#[derive(Debug, Clone)]
pub struct SinkRun {
    pub sink: Sink,
    /// Events the load wrote per second (what was published by the end of the drain).
    pub written_per_second: f64,
    /// Events published per second while the load ran.
    pub published_per_second: f64,
    /// Events still pending when the load stopped (`auth_outbox_pending`).
    pub pending_at_stop: f64,
    /// From the end of the load until `auth_outbox_pending` read 0.
    pub drain: Option<Duration>,
    /// Failed requests of the load.
    pub failures: u64,
    /// The relay's failed-publish counter over the run.
    pub publish_failures: f64,
}

/// The outcome of one sink: measured, or why not.
pub enum Outcome {
    Measured(SinkRun),
    Skipped(Sink, String),
}

/// The lines of the events table.
pub fn lines(outcomes: &[Outcome]) -> Vec<Line> {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Skipped(sink, why) => Line {
                figure: format!("events to {}", sink.name()),
                value: "n/a".into(),
                target: format!("skipped: {why}"),
                ..Line::default()
            },
            Outcome::Measured(run) => {
                let drain = run.drain.map_or("> 60 s".to_owned(), |drain| {
                    format!("{} ms", drain.as_millis())
                });
                Line {
                    figure: format!("events to {}", run.sink.name()),
                    value: format!(
                        "{} published, {} written; {:.0} pending at stop, 0 after {drain}",
                        rate(run.published_per_second),
                        rate(run.written_per_second),
                        run.pending_at_stop,
                    ),
                    errors: (run.failures + run.publish_failures as u64).to_string(),
                    target: format!("pending 0 ≤ {} ms after the load", DRAIN.as_millis()),
                    verdict: Some(Verdict::of(run.drain.is_some_and(|d| d <= DRAIN))),
                    ..Line::default()
                }
            }
        })
        .collect()
}

/// Runs every sink of `args` on `database_url` (each on a database of its own).
pub async fn run(args: &Args, database_url: Option<&str>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for sink in args.sinks() {
        eprintln!("events: {}", sink.name());
        let outcome = match one(args, database_url, sink).await {
            Ok(run) => Outcome::Measured(run),
            Err(error) => {
                eprintln!("events: {} skipped: {error:#}", sink.name());
                Outcome::Skipped(sink, format!("{error:#}"))
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

async fn one(args: &Args, database_url: Option<&str>, sink: Sink) -> anyhow::Result<SinkRun> {
    // Helpers (broker, receiver) live until the service is gone.
    let helper = Helper::start(args, sink).await?;
    let database = Database::for_url(database_url).await?;
    let result = async {
        let service =
            Service::spawn_with(&args.server_bin(), database.url(), helper.env(args)).await?;
        let measured = measure(args, &service, &helper).await;
        let log = service_log(service.stop().await);
        // A slow drain is explained by the service's warnings as much as a failure is.
        if let Ok(run) = &measured {
            if run.drain.is_none_or(|drain| drain > DRAIN) {
                eprintln!("{} drained slowly; {log}", run.sink.name());
            }
        }
        measured.map_err(|error| error.context(log))
    }
    .await;
    if let Err(error) = database.drop().await {
        eprintln!("warning: {error:#}");
    }
    result
}

/// The service's warnings, to say why a sink failed.
fn service_log(log: Option<String>) -> String {
    let log = log.unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(12).collect();
    format!("service log tail: {}", tail.join(" | "))
}

async fn measure(args: &Args, service: &Service, helper: &Helper) -> anyhow::Result<SinkRun> {
    let api = Api::new(Target::resolve(service.base_url()).await?);
    let fixture = Fixture::prepare(args, &api, service).await?;
    // The fixture's own events first, so the load starts on an empty outbox.
    drained(&api).await?;
    let published_before = published(&api, helper).await;
    let failed_before = failed(&api, helper).await;
    let groups = vec![
        fixture.group(Kind::Refresh, false, args),
        fixture.group(Kind::Login, true, args),
    ];
    let started = Instant::now();
    let results = load::run(api.target(), groups, args.events_timing()).await?;
    let loaded = started.elapsed();
    let stopped = Instant::now();
    let pending_at_stop = pending(&api).await.unwrap_or(f64::NAN);
    let published_at_stop = published(&api, helper).await;
    let drain = drained(&api).await.ok().map(|()| stopped.elapsed());
    let published_after = published(&api, helper).await;
    let per_second = |count: f64| count / loaded.as_secs_f64();
    Ok(SinkRun {
        sink: helper.sink,
        written_per_second: per_second(published_after - published_before),
        published_per_second: per_second(published_at_stop - published_before),
        pending_at_stop,
        drain,
        failures: results.iter().map(|(_, _, stats)| stats.failures()).sum(),
        publish_failures: failed(&api, helper).await - failed_before,
    })
}

/// Waits until `auth_outbox_pending` reads 0 (the relay recounts it after each round that
/// leaves no backlog, and at least every second while one drains).
async fn drained(api: &Api) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < deadline {
        if pending(api).await == Some(0.0) {
            return Ok(());
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    bail!(
        "auth_outbox_pending did not reach 0 within {} s",
        DRAIN_TIMEOUT.as_secs()
    )
}

async fn pending(api: &Api) -> Option<f64> {
    api::metric_sum(&api.metrics().await?, "auth_outbox_pending")
}

/// Events the sink took so far: the broker's counter, or the webhook endpoint's.
async fn published(api: &Api, helper: &Helper) -> f64 {
    let name = match helper.sink {
        Sink::Webhook => "auth_webhook_published_total",
        _ => "auth_events_published_total",
    };
    let text = api.metrics().await.unwrap_or_default();
    api::metric_sum(&text, name).unwrap_or(0.0)
}

async fn failed(api: &Api, helper: &Helper) -> f64 {
    let name = match helper.sink {
        Sink::Webhook => "auth_webhook_failed_total",
        _ => "auth_events_failed_total",
    };
    let text = api.metrics().await.unwrap_or_default();
    api::metric_sum(&text, name).unwrap_or(0.0)
}

/// What a sink needs beside the service: a Kafka broker of the run's own, or the webhook
/// receiver; the others are the machine's NATS, Redis and RabbitMQ.
struct Helper {
    sink: Sink,
    kafka: Option<Tansu>,
    receiver: Option<Receiver>,
}

impl Helper {
    async fn start(args: &Args, sink: Sink) -> anyhow::Result<Self> {
        let mut helper = Self {
            sink,
            kafka: None,
            receiver: None,
        };
        match sink {
            Sink::Kafka => helper.kafka = Some(Tansu::start().await?),
            Sink::Webhook => helper.receiver = Some(Receiver::start().await?),
            Sink::Nats | Sink::Redis | Sink::Rabbitmq => {
                let url = args.sink_url(sink);
                reachable(&url).await?;
            }
        }
        Ok(helper)
    }

    /// The service's settings for this sink.
    fn env(&self, args: &Args) -> Vec<(&'static str, String)> {
        match self.sink {
            Sink::Nats => vec![
                ("APP__EVENTS__BACKEND", "nats".into()),
                ("APP__EVENTS__NATS_URL", args.sink_url(Sink::Nats)),
            ],
            Sink::Redis => vec![
                ("APP__EVENTS__BACKEND", "redis".into()),
                ("APP__REDIS__URL", args.sink_url(Sink::Redis)),
            ],
            Sink::Rabbitmq => vec![
                ("APP__EVENTS__BACKEND", "rabbitmq".into()),
                ("APP__EVENTS__AMQP_URL", args.sink_url(Sink::Rabbitmq)),
            ],
            Sink::Kafka => vec![
                ("APP__EVENTS__BACKEND", "kafka".into()),
                (
                    "APP__EVENTS__KAFKA_BROKERS",
                    self.kafka
                        .as_ref()
                        .map_or(String::new(), |kafka| kafka.addr.to_string()),
                ),
                ("APP__EVENTS__KAFKA_TOPIC", KAFKA_TOPIC.into()),
            ],
            Sink::Webhook => {
                let url = self.receiver.as_ref().map_or(String::new(), |receiver| {
                    format!("http://{}/hook", receiver.addr)
                });
                // A fixed secret: the receiver does not check signatures (the service signs
                // every delivery all the same, which is the cost measured).
                let secret = "whsec_YXV0aC1iZW5jaC13ZWJob29rLXNlY3JldC0zMmJ5dGVz";
                vec![
                    ("APP__EVENTS__BACKEND", "none".into()),
                    (
                        "APP__EVENTS__WEBHOOKS",
                        format!(r#"[{{name="bench", url="{url}", secret="{secret}"}}]"#),
                    ),
                ]
            }
        }
    }
}

/// Whether something listens at the host and port of `url`, to skip a sink that is not there
/// rather than wait out the service's reconnects.
async fn reachable(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("not a URL: {url}"))?;
    let host = parsed.host_str().context("no host")?.to_owned();
    let port = parsed
        .port_or_known_default()
        .or(match parsed.scheme() {
            "nats" => Some(4222),
            "redis" => Some(6379),
            "amqp" => Some(5672),
            _ => None,
        })
        .context("no port")?;
    tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .context("no answer within 2 s")?
    .with_context(|| format!("nothing listens at {host}:{port}"))?;
    Ok(())
}

/// A local webhook endpoint: answers every request 204 and counts them.
struct Receiver {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    received: Arc<AtomicU64>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let counter = counter.clone();
                        async move {
                            let _ = request.into_body().collect().await;
                            counter.fetch_add(1, Ordering::Relaxed);
                            let mut response = Response::new(Empty::<Bytes>::new());
                            *response.status_mut() = StatusCode::NO_CONTENT;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            task,
            received,
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        eprintln!(
            "         webhook receiver: {} requests",
            self.received.load(Ordering::Relaxed)
        );
        self.task.abort();
    }
}

/// A Kafka-protocol broker of the run's own (tansu, in memory), with the run's topic.
struct Tansu {
    addr: SocketAddr,
    _child: Child,
}

impl Tansu {
    /// `TANSU`, else where `.ci/run` installs it.
    fn program() -> anyhow::Result<PathBuf> {
        if let Some(path) = std::env::var_os("TANSU") {
            return Ok(path.into());
        }
        let home = std::env::var_os("HOME").context("neither TANSU nor HOME is set")?;
        let path = Path::new(&home).join(".cache/auth-service/tansu-0.6.0-dynostore/bin/tansu");
        if path.is_file() {
            Ok(path)
        } else {
            bail!(
                "no tansu (set TANSU, or build it with the Kafka block of .ci/run: cargo install \
                 --locked tansu --version 0.6.0 --features dynostore --root \
                 ~/.cache/auth-service/tansu-0.6.0-dynostore)"
            )
        }
    }

    async fn start() -> anyhow::Result<Self> {
        let program = Self::program()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(&program)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{addr}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{addr}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let tansu = Self {
            addr,
            _child: child,
        };
        tansu.create_topic(&program).await?;
        Ok(tansu)
    }

    /// `tansu topic create`, tried until the broker answers.
    async fn create_topic(&self, program: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + KAFKA_STARTUP;
        let mut last = String::new();
        while Instant::now() < deadline {
            let output = Command::new(program)
                .args(["topic", "create", KAFKA_TOPIC, "--partitions", "3"])
                .arg("--broker")
                .arg(format!("tcp://{}", self.addr))
                .stdin(Stdio::null())
                .output()
                .await?;
            if output.status.success() {
                return Ok(());
            }
            last = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("tansu did not create the topic within {KAFKA_STARTUP:?}: {last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_misses_when_the_outbox_drains_late_or_never() {
        let run = |drain: Option<u64>| {
            Outcome::Measured(SinkRun {
                sink: Sink::Nats,
                written_per_second: 3000.0,
                published_per_second: 2900.0,
                pending_at_stop: 40.0,
                drain: drain.map(Duration::from_millis),
                failures: 0,
                publish_failures: 0.0,
            })
        };
        let table = lines(&[
            run(Some(400)),
            run(Some(1400)),
            run(None),
            Outcome::Skipped(Sink::Kafka, "no tansu".into()),
        ]);

        let verdicts: Vec<Option<Verdict>> = table.iter().map(|line| line.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Some(Verdict::Pass),
                Some(Verdict::Miss),
                Some(Verdict::Miss),
                None
            ]
        );
        assert!(
            table[0].value.contains("2 900/s published"),
            "{}",
            table[0].value
        );
        assert!(table[3].target.contains("no tansu"));
    }

    #[tokio::test]
    async fn the_receiver_answers_204_and_counts() {
        let receiver = Receiver::start().await.unwrap();
        let target = Target::resolve(&format!("http://{}", receiver.addr))
            .await
            .unwrap();
        let request = target
            .prepare(http::Method::POST, "/hook", &[], "{}")
            .unwrap();

        let (status, _) = target.send_once(request).await.unwrap();

        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(receiver.received.load(Ordering::Relaxed), 1);
    }
}
