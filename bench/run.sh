#!/usr/bin/env bash
# The benchmark suite in one command: builds the release binaries, then runs auth-bench.
# Without arguments it runs on SQLite and then on PostgreSQL at
# postgres://postgres@127.0.0.1:5432/test (where it creates and drops a database of its own);
# with arguments, they go to auth-bench as they are (see `auth-bench --help`).
#
#   bench/run.sh                                   # both databases
#   bench/run.sh --database-url postgres://…       # PostgreSQL on another server only
#   bench/run.sh --duration 5 --both               # shorter scenarios
#   cargo bench -p auth-bench --bench crypto       # the crypto micro-benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p auth-service -p auth-bench
# Cargo's output directory: CARGO_TARGET_DIR when set (auth-bench then spawns the service
# built there too), else the workspace's target/.
release="${CARGO_TARGET_DIR:-target}/release"
# PostgreSQL refuses to start without a key that seals the signing keys; the benchmark's
# databases live for one run, so a fresh key per run does.
export APP__AUTH__KEY_ENCRYPTION_KEY="${APP__AUTH__KEY_ENCRYPTION_KEY:-$(head -c 32 /dev/urandom | base64)}"
if [ "$#" -eq 0 ]; then
  set -- --both
fi
exec "$release/auth-bench" "$@"
