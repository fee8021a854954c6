//! The load loop: closed-loop workers, each sending one request at a time until the window ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Client;

/// Latencies are recorded in microseconds, up to an hour, with 3 significant digits.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// A warm-up whose requests are not counted, then the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one worker sends, over and over.
#[derive(Debug, Clone)]
pub enum Request {
    /// `POST /api/auth/login`, cycling through `bodies` starting at `first`.
    Login {
        url: String,
        bodies: Arc<[String]>,
        first: usize,
    },
    /// `GET /api/auth/me` presenting `authorization`.
    Me { url: String, authorization: String },
}

/// Workers whose results are added up under one name.
pub struct Group {
    pub name: String,
    pub workers: Vec<Request>,
}

impl Group {
    pub fn new(name: String, workers: Vec<Request>) -> Self {
        Self { name, workers }
    }

    pub fn is_login(&self) -> bool {
        matches!(self.workers.first(), Some(Request::Login { .. }))
    }
}

/// What the workers of a group saw. Only successes that completed inside the measured window
/// count as requests; every failure counts, warm-up or not.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Microseconds per successful request in the window.
    pub latency: Histogram<u64>,
    /// Non-2xx answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connect error, timeout, broken connection).
    pub transport_errors: u64,
    /// The first failure, quoted, to say what went wrong.
    pub first_failure: Option<String>,
}

impl Stats {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
                .context("cannot create a latency histogram")?,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            first_failure: None,
        })
    }

    pub fn requests(&self) -> u64 {
        self.latency.len()
    }

    pub fn failures(&self) -> u64 {
        self.transport_errors + self.statuses.values().sum::<u64>()
    }

    fn record(&mut self, outcome: Outcome, latency: Duration, counted: bool) {
        match outcome {
            Outcome::Success if counted => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(micros.max(1));
            }
            Outcome::Success => {}
            Outcome::Status(status, body) => {
                *self.statuses.entry(status).or_default() += 1;
                self.first_failure
                    .get_or_insert_with(|| format!("HTTP {status}: {body}"));
            }
            Outcome::Transport(error) => {
                self.transport_errors += 1;
                self.first_failure.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, other: &Self) -> anyhow::Result<()> {
        self.latency
            .add(&other.latency)
            .context("cannot merge latency histograms")?;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        self.transport_errors += other.transport_errors;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
        Ok(())
    }
}

enum Outcome {
    Success,
    Status(u16, String),
    Transport(String),
}

impl Request {
    /// Sends the `n`-th request of this worker and reads the whole answer, so the connection
    /// goes back to the pool.
    async fn send(&self, client: &Client, n: usize) -> Outcome {
        let pending = match self {
            Self::Login { url, bodies, first } => {
                let body = bodies[(first + n) % bodies.len()].clone();
                client
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body)
            }
            Self::Me { url, authorization } => client.get(url).header(AUTHORIZATION, authorization),
        };
        let response = match pending.send().await {
            Ok(response) => response,
            Err(error) => return Outcome::Transport(format!("{error:#}")),
        };
        let status = response.status();
        match response.bytes().await {
            Ok(_) if status.is_success() => Outcome::Success,
            Ok(body) => Outcome::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body).chars().take(300).collect(),
            ),
            Err(error) => Outcome::Transport(format!("reading the body: {error:#}")),
        }
    }
}

/// The measured window of a scenario, shared by all its workers.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// Runs every worker of every group at once through warm-up and window; the results per group.
pub async fn run(
    client: &Client,
    groups: Vec<Group>,
    timing: Timing,
) -> anyhow::Result<Vec<(String, Stats)>> {
    let start = Instant::now() + timing.warmup;
    let window = Window {
        start,
        end: start + timing.duration,
    };
    let mut running = Vec::new();
    for group in groups {
        let mut tasks = Vec::new();
        for request in group.workers {
            let stats = Stats::new()?;
            tasks.push(tokio::spawn(worker(client.clone(), request, window, stats)));
        }
        running.push((group.name, tasks));
    }
    let mut results = Vec::new();
    for (name, tasks) in running {
        let mut total = Stats::new()?;
        for task in tasks {
            total.merge(&task.await.context("a load worker panicked")?)?;
        }
        results.push((name, total));
    }
    Ok(results)
}

/// Sends requests back to back until the window ends. A success counts when it completes
/// inside the window; requests still running at the end finish but are not counted.
async fn worker(client: Client, request: Request, window: Window, mut stats: Stats) -> Stats {
    let mut n = 0;
    while Instant::now() < window.end {
        let sent = Instant::now();
        let outcome = request.send(&client, n).await;
        let done = Instant::now();
        let counted = done >= window.start && done <= window.end;
        stats.record(outcome, done - sent, counted);
        n += 1;
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counted_successes_enter_the_histogram_and_every_failure_counts() {
        let mut stats = Stats::new().unwrap();
        stats.record(Outcome::Success, Duration::from_millis(2), true);
        stats.record(Outcome::Success, Duration::from_millis(2), false);
        stats.record(Outcome::Status(401, "nope".into()), Duration::ZERO, false);
        stats.record(Outcome::Transport("reset".into()), Duration::ZERO, true);

        assert_eq!(stats.requests(), 1);
        assert_eq!(stats.failures(), 2);
        assert_eq!(stats.first_failure.as_deref(), Some("HTTP 401: nope"));
    }

    #[test]
    fn merging_adds_everything_up() {
        let mut a = Stats::new().unwrap();
        a.record(Outcome::Success, Duration::from_millis(1), true);
        let mut b = Stats::new().unwrap();
        b.record(Outcome::Success, Duration::from_millis(3), true);
        b.record(Outcome::Status(503, String::new()), Duration::ZERO, true);

        a.merge(&b).unwrap();

        assert_eq!(a.requests(), 2);
        assert_eq!(a.statuses.get(&503), Some(&1));
    }
}
