//! The load loop: closed-loop workers, each on its own keep-alive connection, sending one
//! request at a time until the window ends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::api;
use crate::http::{Connection, Prepared, Target};

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
pub enum Work {
    /// The same request every time (`me`, introspection), expecting `expect`; `active`
    /// also requires an introspection answer of `{"active":true…`.
    Fixed {
        request: Prepared,
        expect: StatusCode,
        active: bool,
    },
    /// `POST /api/auth/login`, cycling through prepared requests starting at `next`.
    Login {
        requests: Arc<[Prepared]>,
        next: usize,
    },
    /// `POST /api/auth/signup` of a new user each time: `bench-<tag>-w<worker>n<n>`.
    Signup {
        target: Target,
        prefix: String,
        n: u64,
    },
    /// `POST /api/auth/refresh` with the refresh token the previous answer gave: a chain per
    /// worker, so no token is presented twice (a spent token outside the grace window would
    /// end the session as a reuse).
    Refresh { target: Target, token: String },
    /// The same request to each of several services in turn (replicas of one deployment),
    /// each on a keep-alive connection of its own; `requests[i]` goes to `targets[i]`.
    Alternate {
        targets: Arc<[Target]>,
        requests: Arc<[Prepared]>,
        next: usize,
    },
}

/// What the load measures, for picking rows and server metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signup,
    Login,
    Me,
    Refresh,
    Introspect,
    /// `GET /health`: the floor the `me` target is relative to.
    Health,
    /// `POST /oauth/token`, `grant_type=client_credentials` with HTTP Basic (issue 18).
    ClientCredentials,
    /// `GET /api/auth/me` with an API key as the bearer (issue 18).
    ApiKey,
    /// `me` on one replica of a two-replica deployment (issue 20).
    ReplicaOne,
    /// `me` alternating between the two replicas.
    ReplicaPair,
}

/// Workers whose results are added up under one name.
pub struct Group {
    pub kind: Kind,
    pub name: String,
    pub workers: Vec<Work>,
}

/// What the workers of a group saw. Only successes that completed inside the measured window
/// count as requests; every failure counts, warm-up or not.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Microseconds per successful request in the window.
    pub latency: Histogram<u64>,
    /// Successful requests, warm-up and tail included: what the CPU time was spent on.
    pub completed: u64,
    /// Non-2xx answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer, or an answer that was not what the request expects.
    pub transport_errors: u64,
    /// The first failure, quoted, to say what went wrong.
    pub first_failure: Option<String>,
}

impl Stats {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
                .context("cannot create a latency histogram")?,
            completed: 0,
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

    fn record(&mut self, outcome: &Outcome, latency: Duration, counted: bool) {
        if matches!(outcome, Outcome::Success) {
            self.completed += 1;
        }
        match outcome {
            Outcome::Success if counted => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(micros.max(1));
            }
            Outcome::Success => {}
            Outcome::Status(status, body) => {
                *self.statuses.entry(*status).or_default() += 1;
                self.first_failure
                    .get_or_insert_with(|| format!("HTTP {status}: {body}"));
            }
            Outcome::Transport(error) => {
                self.transport_errors += 1;
                self.first_failure.get_or_insert_with(|| error.clone());
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
        self.completed += other.completed;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Outcome {
    Success,
    Status(u16, String),
    Transport(String),
}

#[derive(Deserialize)]
struct Refreshed<'a> {
    #[serde(borrow)]
    refresh_token: &'a str,
}

impl Work {
    /// The next request of this worker, and which of its connections carries it (0 but for
    /// [`Work::Alternate`]).
    fn request(&mut self) -> anyhow::Result<(Prepared, usize)> {
        if let Self::Alternate { requests, next, .. } = self {
            let index = *next % requests.len().max(1);
            *next += 1;
            let request = requests
                .get(index)
                .context("an alternating worker without requests")?;
            return Ok((request.clone(), index));
        }
        Ok((self.single()?, 0))
    }

    /// The target of connection `index`, for the connections a worker opens as it needs them.
    fn target(&self, index: usize) -> Option<&Target> {
        match self {
            Self::Alternate { targets, .. } => targets.get(index),
            _ => None,
        }
    }

    fn single(&mut self) -> anyhow::Result<Prepared> {
        Ok(match self {
            Self::Fixed { request, .. } => request.clone(),
            Self::Login { requests, next } => {
                let request = requests[*next % requests.len()].clone();
                *next += 1;
                request
            }
            Self::Signup { target, prefix, n } => {
                *n += 1;
                let user = api::User {
                    username: format!("{prefix}n{n}"),
                };
                target.prepare(Method::POST, api::SIGNUP, &[], user.signup_body())?
            }
            Self::Refresh { target, token } => {
                let body = format!(r#"{{"refresh_token":"{token}"}}"#);
                target.prepare(Method::POST, api::REFRESH, &[], body)?
            }
            Self::Alternate { .. } => anyhow::bail!("an alternating worker has no single request"),
        })
    }

    fn expected(&self) -> StatusCode {
        match self {
            Self::Fixed { expect, .. } => *expect,
            Self::Signup { .. } => StatusCode::CREATED,
            Self::Login { .. } | Self::Refresh { .. } | Self::Alternate { .. } => StatusCode::OK,
        }
    }

    /// Judges an answer, taking what the next request needs from it.
    fn answered(&mut self, status: StatusCode, body: &Bytes) -> Outcome {
        if status != self.expected() {
            return Outcome::Status(status.as_u16(), quote(body));
        }
        match self {
            Self::Fixed { active: true, .. } if !body.starts_with(br#"{"active":true"#) => {
                Outcome::Transport(format!("introspection said: {}", quote(body)))
            }
            Self::Refresh { token, .. } => match serde_json::from_slice::<Refreshed>(body) {
                Ok(refreshed) => {
                    refreshed.refresh_token.clone_into(token);
                    Outcome::Success
                }
                Err(error) => {
                    Outcome::Transport(format!("refresh answer without a token: {error}"))
                }
            },
            _ => Outcome::Success,
        }
    }
}

fn quote(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

/// The measured window of a scenario, shared by all its workers.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// Runs every worker of every group at once through warm-up and window; the results per group.
///
/// The workers run on one thread of their own (a current-thread runtime), like `wrk -t1`: no
/// work stealing or cross-thread wake-ups, which cost the service's CPU on a small machine.
/// One such thread manages about 1 s / (client CPU per request), some 50 000 `me` a second.
pub async fn run(
    target: &Target,
    groups: Vec<Group>,
    timing: Timing,
) -> anyhow::Result<Vec<(Kind, String, Stats)>> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the load thread")?
            .block_on(drive(&target, groups, timing))
    })
    .await
    .context("the load thread panicked")?
}

async fn drive(
    target: &Target,
    groups: Vec<Group>,
    timing: Timing,
) -> anyhow::Result<Vec<(Kind, String, Stats)>> {
    let start = Instant::now() + timing.warmup;
    let window = Window {
        start,
        end: start + timing.duration,
    };
    let mut running = Vec::new();
    for group in groups {
        let mut tasks = Vec::new();
        for work in group.workers {
            let stats = Stats::new()?;
            let connection = Connection::new(target.clone());
            tasks.push(tokio::spawn(worker(connection, work, window, stats)));
        }
        running.push((group.kind, group.name, tasks));
    }
    let mut results = Vec::new();
    for (kind, name, tasks) in running {
        let mut total = Stats::new()?;
        for task in tasks {
            total.merge(&task.await.context("a load worker panicked")?)?;
        }
        results.push((kind, name, total));
    }
    Ok(results)
}

/// Sends requests back to back until the window ends. A success counts when it completes
/// inside the window; requests still running at the end finish but are not counted.
async fn worker(connection: Connection, mut work: Work, window: Window, mut stats: Stats) -> Stats {
    let mut connections = vec![connection];
    while Instant::now() < window.end {
        let (request, index) = match work.request() {
            Ok(request) => request,
            Err(error) => {
                stats.record(
                    &Outcome::Transport(format!("{error:#}")),
                    Duration::ZERO,
                    true,
                );
                break;
            }
        };
        while connections.len() <= index {
            match work.target(connections.len()) {
                Some(target) => connections.push(Connection::new(target.clone())),
                None => break,
            }
        }
        let Some(connection) = connections.get_mut(index) else {
            stats.record(
                &Outcome::Transport(format!("no connection {index} for this worker")),
                Duration::ZERO,
                true,
            );
            break;
        };
        let sent = Instant::now();
        let answer = connection.send(request).await;
        let done = Instant::now();
        let outcome = match answer {
            Ok((status, body)) => work.answered(status, &body),
            // A refresh without an answer is sent again with the same token: inside the grace
            // window the service answers the same successor, as it would for a real client.
            Err(error) => Outcome::Transport(format!("{error:#}")),
        };
        let counted = done >= window.start && done <= window.end;
        stats.record(&outcome, done - sent, counted);
        // A refused refresh has lost its chain: every later one would be refused too.
        if matches!(
            (&work, &outcome),
            (Work::Refresh { .. }, Outcome::Status(..))
        ) {
            break;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counted_successes_enter_the_histogram_and_every_failure_counts() {
        let mut stats = Stats::new().unwrap();
        stats.record(&Outcome::Success, Duration::from_millis(2), true);
        stats.record(&Outcome::Success, Duration::from_millis(2), false);
        stats.record(&Outcome::Status(401, "nope".into()), Duration::ZERO, false);
        stats.record(&Outcome::Transport("reset".into()), Duration::ZERO, true);

        assert_eq!(stats.requests(), 1);
        assert_eq!(stats.failures(), 2);
        assert_eq!(stats.first_failure.as_deref(), Some("HTTP 401: nope"));
    }

    #[test]
    fn merging_adds_everything_up() {
        let mut a = Stats::new().unwrap();
        a.record(&Outcome::Success, Duration::from_millis(1), true);
        let mut b = Stats::new().unwrap();
        b.record(&Outcome::Success, Duration::from_millis(3), true);
        b.record(&Outcome::Status(503, String::new()), Duration::ZERO, true);

        a.merge(&b).unwrap();

        assert_eq!(a.requests(), 2);
        assert_eq!(a.statuses.get(&503), Some(&1));
    }

    async fn target() -> Target {
        Target::resolve("http://127.0.0.1:1").await.unwrap()
    }

    #[tokio::test]
    async fn a_refresh_chain_presents_each_new_token_once() {
        let mut work = Work::Refresh {
            target: target().await,
            token: "first".into(),
        };

        let outcome = work.answered(
            StatusCode::OK,
            &Bytes::from_static(br#"{"access_token":"a","refresh_token":"second"}"#),
        );
        let (next, _) = work.request().unwrap();

        assert!(matches!(outcome, Outcome::Success));
        let body = http_body_util::BodyExt::collect(next.into_body())
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), r#"{"refresh_token":"second"}"#);
    }

    #[tokio::test]
    async fn an_inactive_introspection_is_a_failure() {
        let target = target().await;
        let request = target
            .prepare(Method::POST, api::INTROSPECT, &[], "{}")
            .unwrap();
        let mut work = Work::Fixed {
            request,
            expect: StatusCode::OK,
            active: true,
        };

        let inactive = work.answered(StatusCode::OK, &Bytes::from_static(br#"{"active":false}"#));
        let active = work.answered(
            StatusCode::OK,
            &Bytes::from_static(br#"{"active":true,"sub":"x"}"#),
        );

        assert!(matches!(inactive, Outcome::Transport(_)));
        assert!(matches!(active, Outcome::Success));
    }

    #[tokio::test]
    async fn an_alternating_worker_takes_its_targets_in_turn() {
        let a = target().await;
        let b = Target::resolve("http://127.0.0.1:2").await.unwrap();
        let request = |t: &Target| t.prepare(Method::GET, api::ME, &[], "").unwrap();
        let mut work = Work::Alternate {
            requests: vec![request(&a), request(&b)].into(),
            targets: vec![a, b].into(),
            next: 0,
        };

        let order: Vec<usize> = (0..4).map(|_| work.request().unwrap().1).collect();

        assert_eq!(order, [0, 1, 0, 1]);
        assert_eq!(
            work.target(1).map(Target::base_url),
            Some("http://127.0.0.1:2")
        );
        assert!(work.target(2).is_none());
    }

    #[tokio::test]
    async fn signups_name_a_new_user_each_time() {
        let mut work = Work::Signup {
            target: target().await,
            prefix: "bench-t-w0".into(),
            n: 0,
        };

        let (first, _) = work.request().unwrap();
        let (second, _) = work.request().unwrap();

        let body = |r: Prepared| async move {
            http_body_util::BodyExt::collect(r.into_body())
                .await
                .unwrap()
                .to_bytes()
        };
        assert_ne!(body(first).await, body(second).await);
    }
}
