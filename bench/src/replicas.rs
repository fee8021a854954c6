//! Two replicas on one PostgreSQL database with Redis (issue 20): `me` on one replica, then
//! alternating between the two, by the same client and connections; and how long a logout on
//! replica A takes to be refused on replica B, measured by polling B back to back.
//!
//! What bounds the last today: each replica trusts its session cache for at most
//! `auth.session_cache_ttl` (500 ms by default, at most 1 s) after it read the session; a
//! change made through a replica clears that replica's cache at once (its store's write
//! fence), and no message tells the other replica (`services/sessions/cache.rs`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::api::{self, Api, User};
use crate::database::Database;
use crate::fixture::Fixture;
use crate::http::{Connection, Target};
use crate::load::{self, Group, Kind};
use crate::report::Row;
use crate::server::Service;
use crate::Args;

/// Logouts timed.
const TRIALS: usize = 7;
/// How long B is polled for the refusal before the trial is called failed.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long B is polled before the logout, so its cache holds the session.
const WARM: Duration = Duration::from_millis(50);

/// What the two-replica run measured.
#[derive(Debug, Clone)]
pub struct ReplicaFigures {
    /// `me` on replica A alone.
    pub one: Row,
    /// `me` alternating between A and B, request by request.
    pub pair: Row,
    /// Per logout on A: until `me` on B was first refused.
    pub revocations: Vec<Duration>,
    /// Whether A refused the logged-out token on the very next request.
    pub refused_at_once: bool,
}

/// Spawns two replicas on `database` with Redis, measures, stops them.
pub async fn run(
    args: &Args,
    database: &Database,
    fixture: &Fixture,
) -> anyhow::Result<ReplicaFigures> {
    let env = || vec![("APP__REDIS__URL", args.redis_url.clone())];
    let bin = args.server_bin();
    eprintln!("two replicas on one PostgreSQL database, with Redis");
    let a = Service::spawn_with(&bin, database.url(), env()).await?;
    let b = Service::spawn_with(&bin, database.url(), env()).await?;
    let result = measure(args, fixture, &a, &b).await;
    let _ = a.stop().await;
    let _ = b.stop().await;
    result
}

async fn measure(
    args: &Args,
    fixture: &Fixture,
    a: &Service,
    b: &Service,
) -> anyhow::Result<ReplicaFigures> {
    let targets = [
        Target::resolve(a.base_url()).await?,
        Target::resolve(b.base_url()).await?,
    ];
    let concurrency = args.me_concurrency;
    let one = me_row(
        args,
        &targets[0],
        Group {
            kind: Kind::ReplicaOne,
            name: format!("`me` on one replica (c={concurrency}, auth-bench client)"),
            workers: fixture.alternating(&targets[..1], concurrency),
        },
    )
    .await?;
    let pair = me_row(
        args,
        &targets[0],
        Group {
            kind: Kind::ReplicaPair,
            name: format!(
                "`me` alternating over two replicas (c={concurrency}, each request to the other)"
            ),
            workers: fixture.alternating(&targets, concurrency),
        },
    )
    .await?;
    let (revocations, refused_at_once) = revocations(&targets).await?;
    Ok(ReplicaFigures {
        one,
        pair,
        revocations,
        refused_at_once,
    })
}

async fn me_row(args: &Args, first: &Target, group: Group) -> anyhow::Result<Row> {
    eprintln!(
        "running: {} ({} s warm-up + {} s)",
        group.name, args.warmup, args.duration
    );
    let results = load::run(first, vec![group], args.timing()).await?;
    let (kind, name, stats) = results
        .into_iter()
        .next()
        .context("the replica load returned nothing")?;
    Ok(Row::new(kind, name, &stats, args.timing().duration))
}

/// [`TRIALS`] logouts on A, each timed until B refuses the token; and whether A refused each
/// at once.
async fn revocations(targets: &[Target; 2]) -> anyhow::Result<(Vec<Duration>, bool)> {
    let (a, b) = (Api::new(targets[0].clone()), &targets[1]);
    let user = User {
        username: format!("bench-{}-replica", api::run_tag()),
    };
    a.signup(&user).await?;
    let mut times = Vec::new();
    let mut at_once = true;
    for _ in 0..TRIALS {
        let access = a.login(&user).await?.access;
        let mut on_b = Connection::new(b.clone());
        // B reads the session and caches it, then is polled back to back.
        let warm_until = Instant::now() + WARM;
        while Instant::now() < warm_until {
            let status = me(&mut on_b, b, &access).await?;
            if status != StatusCode::OK {
                bail!("replica B refused a live token before the logout: {status}");
            }
        }
        let poll = tokio::spawn({
            let b = b.clone();
            let access = access.clone();
            async move { first_refusal(on_b, &b, &access).await }
        });
        a.logout(&access).await?;
        let logged_out = Instant::now();
        let mut on_a = Connection::new(targets[0].clone());
        at_once &= me(&mut on_a, &targets[0], &access).await? == StatusCode::UNAUTHORIZED;
        let refused = poll.await.context("the poller panicked")??;
        times.push(refused.saturating_duration_since(logged_out));
    }
    Ok((times, at_once))
}

/// Polls `me` on `target` until it answers 401: when it did.
async fn first_refusal(
    mut connection: Connection,
    target: &Target,
    access: &str,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + REFUSAL_TIMEOUT;
    while Instant::now() < deadline {
        let status = me(&mut connection, target, access).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Ok(Instant::now());
        }
        if status != StatusCode::OK {
            bail!("replica B answered {status} while polled");
        }
    }
    bail!(
        "replica B still accepted a logged-out token after {} s",
        REFUSAL_TIMEOUT.as_secs()
    )
}

async fn me(
    connection: &mut Connection,
    target: &Target,
    access: &str,
) -> anyhow::Result<StatusCode> {
    let bearer = format!("Bearer {access}");
    let request = target.prepare(
        Method::GET,
        api::ME,
        &[(http::header::AUTHORIZATION, &bearer)],
        Bytes::new(),
    )?;
    Ok(connection.send(request).await?.0)
}
