//! The binary as an operator runs it: configuration errors, start-up, migration, SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::process::{command, free_port, wait_exit, wait_ready, Spawned};
use crate::support::Backend;

fn run_to_end(mut command: Command) -> (Option<i32>, String, String) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[test]
fn an_invalid_value_exits_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = command(dir.path());
    bad.env("APP__AUTH__ACCESS_TOKEN_TTL", "forever");

    let (code, _, stderr) = run_to_end(bad);

    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("auth.access_token_ttl"), "{stderr}");
}

#[test]
fn an_unknown_key_in_config_toml_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[server]\nprot = 1\n").unwrap();

    let (code, _, stderr) = run_to_end(command(dir.path()));

    assert_eq!(code, Some(2));
    assert!(stderr.contains("server.prot"), "{stderr}");
}

#[test]
fn layers_override_in_order_and_config_prints_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nport = 1111\ngrpc_port = 2222\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "APP__SERVER__PORT=3333\nAPP__DATABASE__URL=postgres://app:s3cret-pw@db/auth\n",
    )
    .unwrap();
    let mut show = command(dir.path());
    show.arg("config").env("APP__SERVER__PORT", "4444");

    let (code, stdout, _) = run_to_end(show);

    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("port = 4444"),
        "environment beats .env and config.toml:\n{stdout}"
    );
    assert!(
        stdout.contains("grpc_port = 2222"),
        "config.toml beats defaults:\n{stdout}"
    );
    assert!(!stdout.contains("s3cret-pw"), "{stdout}");
}

#[test]
fn an_unreachable_database_exits_non_zero_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut start = command(dir.path());
    start
        .env(
            "APP__DATABASE__URL",
            format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port()),
        )
        .env("APP__SERVER__PORT", free_port().to_string());

    let (code, _, stderr) = run_to_end(start);

    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Beyond the documented worst case of a shutdown: a loaded machine may be slow to deliver
/// the signal and to schedule the process.
const SCHEDULING_MARGIN: Duration = Duration::from_secs(10);

/// How long a SIGTERM may take with `config`: the documented bound (`app::shutdown_bound`,
/// docs/operations.md "Shutdown") plus [`SCHEDULING_MARGIN`].
fn exit_within(config: &auth_service::Config) -> Duration {
    auth_service::app::shutdown_bound(config) + SCHEDULING_MARGIN
}

async fn the_binary_migrates_serves_and_stops_on_sigterm(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // Small shutdown bounds, so that the wait below (derived from them) stays short.
    let mut bounds = auth_service::Config::default();
    bounds.server.shutdown_timeout = Duration::from_secs(2);
    bounds.events.publish_timeout = Duration::from_secs(1);
    let within = exit_within(&bounds);
    let env = [
        ("APP__DATABASE__URL", db.url.clone()),
        ("APP__SERVER__SHUTDOWN_TIMEOUT", "2s".to_owned()),
        ("APP__EVENTS__PUBLISH_TIMEOUT", "1s".to_owned()),
    ];

    // Each start takes fresh ports: a port freed by the first run may be taken by then.
    let mut first = Spawned::start(dir.path(), &env).await;
    let first_ready = wait_ready(first.port).await;
    let first_exit = first.terminate(within);
    let first_log = first.output();
    let mut second = Spawned::start(dir.path(), &env).await;
    let second_ready = wait_ready(second.port).await;
    let second_exit = second.terminate(within);
    let second_log = second.output();

    assert!(
        first_ready,
        "first start did not become ready:\n{first_log}"
    );
    assert!(
        second_ready,
        "second start did not become ready:\n{second_log}"
    );
    assert_eq!(first_exit, Some(0), "SIGTERM must exit 0 within {within:?}");
    assert_eq!(second_exit, Some(0));
    assert!(
        first_log.contains("database migrations applied"),
        "{first_log}"
    );
    assert!(
        second_log.contains("database schema is up to date"),
        "{second_log}"
    );
}

backend_tests! {
    the_binary_migrates_serves_and_stops_on_sigterm,
}

#[test]
fn the_default_start_creates_data_auth_db() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = command(dir.path())
        .env("APP__SERVER__PORT", port.to_string())
        .env("APP__SERVER__GRPC_PORT", free_port().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let ready = runtime.block_on(wait_ready(port));
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let exit = wait_exit(&mut child, exit_within(&auth_service::Config::default()));

    assert!(ready);
    assert!(dir.path().join("data/auth.db").exists());
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
}
