//! What every handler and worker shares: the store, settings, clock, processors, limits.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use vinr_domain::Mode;

use crate::auth::rate_limit::RateLimits;
use crate::clock::Clock;
use crate::config::Settings;
use crate::connectors::Connectors;
use crate::inflight::Inflight;
use crate::redacted::Redacted;
use crate::store::{IdempotencyScope, Store};
use crate::webhooks::send::Sender;

pub struct App {
    pub store: Store,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    /// The processors (the sandbox simulator and the configured acquirer connectors), their
    /// routes and circuit breakers (SPEC §15).
    pub connectors: Connectors,
    pub rate_limits: Option<RateLimits>,
    /// Idempotency keys whose first request is running on this node.
    pub inflight: Arc<Inflight<IdempotencyScope>>,
    /// Payments whose checkout form is being submitted on this node.
    pub checkout_submissions: Arc<Inflight<String>>,
    pub metrics: PrometheusHandle,
    /// Keys card fingerprints (HMAC-SHA256), so equal cards match without storing numbers.
    pub fingerprint_secret: Redacted<String>,
    /// Sends signed webhook requests (SPEC §6), for the delivery worker and test sends.
    pub webhooks: Arc<Sender>,
}

pub type AppState = Arc<App>;

impl App {
    /// Whether cards of `mode` can be paid at all (some route is configured).
    pub fn processing_available(&self, mode: Mode) -> bool {
        self.connectors.available(mode)
    }
}
