//! `auth-bench`: the benchmark suite of issues 8, 18, 19 and 20, over real HTTP.
//!
//! Per database it spawns the release binary of the service (limits off) on a new database,
//! restarts it on the now existing one to time startup, reads its memory, measures the
//! argon2id hashing limit, prepares users and drives closed-loop load: signups, logins, the
//! `/health` floor and `me`, rotating refreshes, introspections, client-credential grants and
//! `me` during a login flood (`me` and the floor by wrk when it is installed, the rest by its
//! own lean client); on PostgreSQL also two replicas with Redis (`me` on the pair, and how long
//! a logout on one takes to be refused on the other); then events per second to each sink. It
//! prints one table per database with every figure beside its target. `--url` points it at a
//! service already running instead.

// A benchmark's product is the table it prints on stdout; progress and problems go to stderr.
#![expect(clippy::print_stdout, reason = "the report is printed on stdout")]

mod api;
mod cpu;
mod database;
mod events;
mod fixture;
mod hashing;
mod http;
mod load;
mod process;
mod replicas;
mod report;
mod server;
mod suite;
mod targets;
mod wrk;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::database::Database;
use crate::load::Timing;
use crate::report::Figures;

#[derive(Debug, Parser)]
#[command(
    name = "auth-bench",
    version,
    about = "Benchmark suite of auth-service: startup, hashing limit, signups, logins, me, refreshes, introspections, memory; each figure beside its target"
)]
pub struct Args {
    /// Benchmark the service already running at this base URL (e.g. http://127.0.0.1:8080)
    /// instead of spawning one: no startup times or memory then.
    #[arg(long, conflicts_with_all = ["server_bin", "database_url", "both"])]
    url: Option<String>,

    /// The service binary to spawn; build it first with `cargo build --release -p auth-service`.
    /// Default: `$CARGO_TARGET_DIR/release/auth-service`, else `target/release/auth-service`.
    #[arg(long)]
    server_bin: Option<PathBuf>,

    /// Database of the spawned service. A postgres:// URL names a server: the benchmark
    /// creates a database of its own there and drops it at the end. Default: a SQLite file in
    /// a temporary directory.
    #[arg(long)]
    database_url: Option<String>,

    /// Run on SQLite, then on PostgreSQL (at --database-url, default
    /// postgres://postgres@127.0.0.1:5432/test).
    #[arg(long)]
    both: bool,

    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,

    /// Seconds of load before each measured window; not counted.
    #[arg(long, default_value_t = 1)]
    warmup: u64,

    /// Concurrent signup and login workers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    login_concurrency: u32,

    /// Concurrent `me` and introspection workers.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    me_concurrency: u32,

    /// Concurrent refresh workers, each rotating the tokens of a session of its own.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    refresh_concurrency: u32,

    /// Users whose access tokens the `me` and introspection workers present.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,

    /// Users the login workers log in as, separate from the others: every login beyond
    /// `auth.max_sessions_per_user` evicts that user's oldest session.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    login_users: u32,

    /// Restarts on the existing database whose startup times are measured.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    restarts: u32,

    /// Seconds of hashing to measure the hashing limit.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    hash_seconds: u64,

    /// What drives `GET /api/auth/me`: wrk (lower overhead), auth-bench's own client, or
    /// wrk when it is installed.
    #[arg(long, value_enum, default_value_t = Loader::Auto)]
    loader: Loader,

    /// Skip the loader check (`me` alone driven again by the other loader).
    #[arg(long)]
    no_loader_check: bool,

    /// wrk threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    wrk_threads: u32,

    /// Run only these scenarios (comma-separated), e.g. to profile one: `--only refresh`.
    /// Startup and memory are always measured; the hashing limit with the logins, the
    /// `/health` floor with `me`.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,

    /// The sinks of the events scenario, in turn (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    sinks: Vec<events::Sink>,

    /// Measured seconds of load per sink in the events scenario (after the warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    events_duration: u64,

    /// NATS server of the events scenario.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,

    /// Redis server of the events scenario and of the two-replica run.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,

    /// RabbitMQ server of the events scenario.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
}

/// A load scenario, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Signup,
    Login,
    Me,
    Refresh,
    Introspect,
    /// `me` during a login flood.
    Flood,
    /// `POST /oauth/token` client-credential grants (issue 18).
    ClientCredentials,
    /// `me` with API keys as bearers (issue 18; n/a until API keys exist).
    ApiKey,
    /// Two replicas on PostgreSQL with Redis (issue 20); PostgreSQL runs only.
    Replicas,
    /// Events per second to each sink (issue 19).
    Events,
}

/// What drives `GET /api/auth/me`; every other scenario is driven by auth-bench's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Loader {
    /// wrk if installed, else auth-bench's client.
    Auto,
    Wrk,
    Bench,
}

impl Args {
    /// Whether `scenario` is to run (all are, without `--only`).
    fn runs(&self, scenario: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&scenario)
    }

    fn timing(&self) -> Timing {
        Timing {
            warmup: Duration::from_secs(self.warmup),
            duration: Duration::from_secs(self.duration),
        }
    }

    fn events_timing(&self) -> Timing {
        Timing {
            warmup: Duration::from_secs(self.warmup),
            duration: Duration::from_secs(self.events_duration),
        }
    }

    /// The service binary: `--server-bin`, else the release build of Cargo's target
    /// directory (`CARGO_TARGET_DIR` when set, as `bench/run.sh` builds it).
    fn server_bin(&self) -> PathBuf {
        if let Some(bin) = &self.server_bin {
            return bin.clone();
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|dir| !dir.is_empty())
            .map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("release").join("auth-service")
    }

    /// The sinks of the events scenario: `--sinks`, else all.
    fn sinks(&self) -> Vec<events::Sink> {
        if self.sinks.is_empty() {
            events::Sink::ALL.to_vec()
        } else {
            self.sinks.clone()
        }
    }

    /// The server URL of a broker sink.
    fn sink_url(&self, sink: events::Sink) -> String {
        match sink {
            events::Sink::Nats => self.nats_url.clone(),
            events::Sink::Redis => self.redis_url.clone(),
            events::Sink::Rabbitmq => self.amqp_url.clone(),
            events::Sink::Kafka | events::Sink::Webhook => String::new(),
        }
    }

    /// The `--database-url` of each database run, in order.
    fn databases(&self) -> Vec<Option<String>> {
        if self.both {
            let postgres = self
                .database_url
                .clone()
                .unwrap_or_else(|| database::DEFAULT_POSTGRES.to_owned());
            vec![None, Some(postgres)]
        } else {
            vec![self.database_url.clone()]
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut failures = 0;
    let mut errors = 0;
    println!("{}", report::machine_load("before the run"));
    for url in args.databases() {
        match run(&args, url.as_deref()).await {
            Ok(figures) => {
                println!("{}", figures.render());
                failures += figures.failures();
            }
            Err(error) => {
                eprintln!("auth-bench: error: {error:#}");
                errors += 1;
            }
        }
        if args.url.is_none() && args.runs(Scenario::Events) {
            let outcomes = events::run(&args, url.as_deref()).await;
            println!("{}", report::render_events(url.as_deref(), &outcomes));
        }
    }
    println!("{}", report::machine_load("after the run"));
    if failures > 0 {
        let message = format!(
            "!!! RUN HAD {failures} FAILED REQUESTS (non-2xx, unexpected or no answer): the numbers above are not trustworthy"
        );
        println!("\n{message}");
        eprintln!("{message}");
    }
    if failures > 0 || errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One database: create it, run the suite, drop it — also when interrupted.
async fn run(args: &Args, database_url: Option<&str>) -> anyhow::Result<Figures> {
    let database = match &args.url {
        Some(_) => Database::External,
        None => Database::for_url(database_url).await?,
    };
    // The service is killed when the suite's future is dropped, so a signal ends the run the
    // same way as an error, and the database is dropped in both cases.
    let result = tokio::select! {
        result = suite::run(args, &database) => result,
        signal = interrupted() => Err(anyhow::anyhow!("stopped by {signal}")),
    };
    if let Err(error) = database.drop().await {
        eprintln!("warning: {error:#}");
    }
    result
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
#[cfg(unix)]
async fn interrupted() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("warning: cannot listen for SIGTERM ({error}); only Ctrl-C is handled");
                let _ = tokio::signal::ctrl_c().await;
                return "Ctrl-C";
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[cfg(not(unix))]
async fn interrupted() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = Args::try_parse_from(["auth-bench"]).unwrap();

        assert_eq!((args.duration, args.warmup), (10, 1));
        assert_eq!(
            (
                args.login_concurrency,
                args.me_concurrency,
                args.refresh_concurrency
            ),
            (4, 16, 16)
        );
        assert_eq!((args.users, args.login_users, args.restarts), (8, 8, 3));
        assert_eq!(args.databases(), [None]);
    }

    #[test]
    fn both_runs_sqlite_then_the_given_or_default_postgres() {
        let default = Args::try_parse_from(["auth-bench", "--both"]).unwrap();
        let given =
            Args::try_parse_from(["auth-bench", "--both", "--database-url", "postgres://db/x"])
                .unwrap();

        assert_eq!(
            default.databases(),
            [None, Some(database::DEFAULT_POSTGRES.to_owned())]
        );
        assert_eq!(
            given.databases(),
            [None, Some("postgres://db/x".to_owned())]
        );
    }

    #[test]
    fn only_selects_scenarios() {
        let all = Args::try_parse_from(["auth-bench"]).unwrap();
        let some = Args::try_parse_from(["auth-bench", "--only", "refresh,flood"]).unwrap();

        assert!(all.runs(Scenario::Login) && all.runs(Scenario::Flood));
        assert!(some.runs(Scenario::Refresh) && some.runs(Scenario::Flood));
        assert!(!some.runs(Scenario::Login) && !some.runs(Scenario::Me));
        assert!(Args::try_parse_from(["auth-bench", "--only", "nothing"]).is_err());
    }

    #[test]
    fn url_excludes_spawn_options() {
        let both = Args::try_parse_from([
            "auth-bench",
            "--url",
            "http://127.0.0.1:1",
            "--database-url",
            "postgres://x",
        ]);

        assert!(both.is_err());
    }
}
