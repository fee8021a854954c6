//! What every request handler can reach: the use cases, the configuration, the trusted
//! proxies, readiness and the metrics handle. Never the store or the clock: transports go
//! through `services`.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::caller::TrustedProxies;
use crate::config::Config;
use crate::services::readiness::Readiness;
use crate::services::Services;

/// The state of both transports (HTTP handlers and gRPC methods).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// Shared, not cloned field by field: axum clones the state for every request (each
    /// `State` extractor and the route's handler), and a `Services` by value is a few dozen
    /// reference counts to bump and drop each time (issue 20's profile of `me`: about 5 % of
    /// the service's CPU in `Services::clone` and its drop).
    pub services: Arc<Services>,
    pub proxies: Arc<TrustedProxies>,
    /// `/ready`: the database, Redis and the event broker, and whether we are stopping.
    pub readiness: Readiness,
}
