//! Logs and metrics: the tracing subscriber (pretty or JSON, `RUST_LOG` wins over config)
//! and the Prometheus recorder behind `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogConfig, LogFormat};

/// Installs the global log subscriber; called once by `main`.
pub fn init_logs(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Buckets (seconds) of the HTTP and gRPC request duration histograms.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process-wide Prometheus recorder. The `metrics` facade has one global recorder, so
/// every `App` in a process (tests start many) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Both transports' latencies are histograms with the same buckets, so they can be
            // summed across replicas and compared with each other (a summary can be neither).
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("auth_http_request_duration_seconds".into()),
                    REQUEST_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("auth_grpc_request_duration_seconds".into()),
                        REQUEST_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("auth_password_hash_duration_seconds".into()),
                        &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                    )
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program); then ours
            // only renders what it records, which is nothing, and `/metrics` says so.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "auth_http_requests_total",
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        "auth_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_counter!(
        "auth_grpc_requests_total",
        "gRPC calls of auth.v1.AuthService answered, by rpc and status code"
    );
    describe_histogram!(
        "auth_grpc_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a gRPC call, by rpc"
    );
    describe_counter!(
        "auth_operations_total",
        "Use-case outcomes, by operation and status"
    );
    describe_counter!("auth_tokens_generated_total", "Tokens issued, by type");
    describe_histogram!(
        "auth_password_hash_duration_seconds",
        Unit::Seconds,
        "Time to hash or verify a password"
    );
    describe_gauge!(
        "auth_active_sessions",
        "Sessions neither ended nor expired, across all replicas (recounted every 10 s)"
    );
    describe_gauge!(
        "auth_outbox_pending",
        "Events waiting in the outbox, across all replicas"
    );
    describe_counter!(
        "auth_events_published_total",
        "Events this replica handed to the broker, by type"
    );
    describe_counter!(
        "auth_events_failed_total",
        "Event publish attempts that failed and were scheduled for a retry"
    );
    describe_counter!(
        "auth_rate_limited_total",
        "Requests refused by a rate limit, by scope"
    );
    describe_gauge!(
        "auth_rate_limiter_fallback",
        "1 while Redis is unreachable and rate limits are counted in process"
    );
    describe_counter!(
        "auth_mail_sent_total",
        "Mails handed to the transport, by kind"
    );
    describe_counter!(
        "auth_mail_failures_total",
        "Mails not sent, by kind and reason"
    );
}
