# auth-service container image (SPEC §1). See docs/operations.md, "Deployment".
#
#   docker build -t auth-service .
#   docker run --rm -p 8080:8080 -v auth-data:/data auth-service
#
# Two stages: a Rust toolchain compiles the release binary; a slim Debian image of the same
# release (bookworm, so the glibc matches) runs it as an unprivileged user.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /build

# The shipped binary carries no symbol table or debug info (34 MB). Set for the image only, not
# in Cargo.toml's [profile.release]: `cargo bench` inherits the release profile, and local
# release builds keep their symbols for profilers; a panic still prints its message and
# location. Before step 1, so both builds share one profile and the dependency layer is reused.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# Builder steps keep to paths under /build (the binary stays in target/release): CI replays
# them on a checkout without Docker (.ci/dockerfile-replay, docs/operations.md).

# 1. Dependencies only, so they are cached in their own layer and rebuilt only when a manifest
#    or Cargo.lock changes. Cargo parses every workspace member's manifest, and a target a
#    manifest declares must have its file, so every member gets stub files for its targets:
#    auth-service (lib, bin, build.rs — so the build dependencies are compiled here too),
#    auth-client (lib), bench (the `auth-bench` bin and the `crypto` bench). A new [[bin]],
#    [[bench]], [[example]] or [[test]] in a manifest needs its stub here: the CI replay fails
#    with cargo's "can't find ..." until it has one. Only auth-service is built. The native
#    code (ring, aws-lc, bundled SQLite, bundled librdkafka for the Kafka publisher) needs the
#    C compiler of this image and `make` (librdkafka's configure-and-make build; aws-lc builds
#    without cmake or clang); TLS is rustls, so no OpenSSL. Swagger UI assets are vendored by
#    a crate. Network: crates.io, and Debian's archive for `make` when the image lacks it.
# (The builder stage is thrown away, so its apt lists need no cleaning.)
RUN command -v make >/dev/null \
    || (apt-get update && apt-get install -y --no-install-recommends make)
COPY Cargo.toml Cargo.lock ./
COPY crates/auth-service/Cargo.toml crates/auth-service/Cargo.toml
COPY crates/auth-client/Cargo.toml crates/auth-client/Cargo.toml
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p crates/auth-service/src crates/auth-client/src bench/src bench/benches \
    && echo 'fn main() {}' > crates/auth-service/src/main.rs \
    && echo 'fn main() {}' > crates/auth-service/build.rs \
    && touch crates/auth-service/src/lib.rs crates/auth-client/src/lib.rs \
    && echo 'fn main() {}' > bench/src/main.rs \
    && echo 'fn main() {}' > bench/benches/crypto.rs \
    && cargo build --release -p auth-service --locked \
    && rm -rf crates/auth-service/src crates/auth-service/build.rs \
        target/release/auth-service* \
        target/release/deps/auth_service-* \
        target/release/deps/libauth_service-* \
        target/release/.fingerprint/auth-service-* \
        target/release/build/auth-service-*

# 2. The service itself. The migrations are embedded at compile time (sqlx::migrate!), so they
#    must be in place before this build; they are not needed at run time. build.rs compiles
#    the gRPC proto with protox (pure Rust): no protoc in the image.
COPY crates/auth-service/build.rs crates/auth-service/build.rs
COPY crates/auth-service/proto crates/auth-service/proto
COPY crates/auth-service/migrations crates/auth-service/migrations
COPY crates/auth-service/src crates/auth-service/src
RUN cargo build --release -p auth-service --locked

# ---------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to SMTP relays, PostgreSQL and Redis with TLS. Nothing else is needed:
# the binary links only glibc, and SQLite is compiled in.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric, unprivileged user, so Kubernetes' `runAsNonRoot` can verify it and volume
# ownership is predictable. /data holds the SQLite file when no PostgreSQL is configured.
RUN groupadd --system --gid 10001 auth \
    && useradd --system --uid 10001 --gid auth --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin auth \
    && mkdir -p /app /data \
    && chown auth:auth /app /data

COPY --from=builder /build/target/release/auth-service /usr/local/bin/auth-service

WORKDIR /app
USER 10001:10001

# Defaults for a single container; override any key with APP__SECTION__KEY
# (docs/configuration.md). With PostgreSQL, set APP__DATABASE__URL=postgres://… and
# APP__AUTH__KEY_ENCRYPTION_KEY (it refuses to start without a key that seals the signing
# keys), and /data stays unused. On SQLite without that key, /data also holds the generated
# auth.key beside auth.db.
ENV APP__SERVER__HOST=0.0.0.0 \
    APP__DATABASE__URL=sqlite:///data/auth.db
VOLUME ["/data"]

# HTTP and gRPC (server.port, server.grpc_port).
EXPOSE 8080 50051

# Liveness only (/health: the process serves HTTP). No curl or wget in the image: bash (part of
# debian:bookworm-slim) speaks the one HTTP request through /dev/tcp, so the probe adds no
# package and no attack surface. Readiness (/ready: 503 only while this replica cannot serve —
# database unreachable, shutting down; Redis or a broker away is `degraded` with 200) belongs to
# the orchestrator: docker-compose.yml and Kubernetes probes use it, so a database outage takes
# replicas out of rotation instead of restarting them.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${APP__SERVER__PORT:-8080} && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# SIGTERM (docker stop's signal) stops accepting, lets in-flight requests finish for
# server.shutdown_timeout (10 s), then flushes the outbox (events.publish_timeout + 2 s) while
# queued mail drains (at most 5 s), closes the pool (at most 2 s) and exits 0: at most 19 s with
# the defaults (docs/operations.md, "Shutdown"), so give the container a stop timeout above it
# (`docker stop -t 25`, compose `stop_grace_period: 25s`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["auth-service"]
CMD ["serve"]
