//! Starting and stopping `vinr serve`: open the store, bootstrap an empty database, bind,
//! serve until told to stop, then finish in-flight requests, stop workers and the writer.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::rate_limit::RateLimits;
use crate::clock::Clock;
use crate::config::Settings;
use crate::connectors::Connectors;
use crate::flows;
use crate::flows::accounts::SandboxStart;
use crate::http::connections::{self, ConnectionLimits};
use crate::inflight::Inflight;
use crate::processor::Processor;
use crate::redacted::Redacted;
use crate::state::{App, AppState};
use crate::store::Store;
use crate::webhooks::send::Sender;
use crate::{http, workers};

/// The process-wide metrics recorder (a recorder can be installed once per process; tests
/// start many servers in one).
fn metrics_handle() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ])
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|error| format!("cannot install the metrics recorder: {error}"))
        })
        .clone()
}

/// A sandbox account made on first start, with its key (shown once, unless it is the fixed
/// key the operator gave).
pub struct Bootstrapped {
    pub account_id: String,
    pub secret_key: Redacted<String>,
    /// The key is the fixed one (`VINR_SANDBOX_SECRET_KEY` / `[sandbox] secret_key`).
    pub fixed: bool,
}

pub struct Running {
    pub addr: SocketAddr,
    pub app: AppState,
    pub bootstrapped: Option<Bootstrapped>,
    /// A later start added the missing fixed sandbox key to this (sandbox) account.
    pub sandbox_key_added: Option<String>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops workers, drains the writer.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(error) = self.server.await {
            tracing::error!(%error, "the connection loop panicked");
        }
        for worker in self.workers {
            let _ = worker.await;
        }
        let store = self.app.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
    }
}

/// Whether the background workers that change data (expiry, test clocks, refunds,
/// settlements, maintenance, webhooks) run on their own. `Stepped` is for tests: nothing happens behind
/// the test's back, and it runs one pass of a worker with that worker's `step` (e.g.
/// [`workers::webhooks::step`]), so an assertion that nothing happened follows a pass that
/// provably ran. Metrics upkeep runs either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    Running,
    Stepped,
}

pub async fn start(settings: Settings, clock: Arc<dyn Clock>) -> Result<Running, String> {
    start_with_live_processor(settings, clock, None).await
}

/// [`start`] with a card processor for live mode (none is configured by default, and live
/// card payments answer that processing is unavailable).
pub async fn start_with_live_processor(
    settings: Settings,
    clock: Arc<dyn Clock>,
    live_processor: Option<Arc<dyn Processor>>,
) -> Result<Running, String> {
    start_with_workers(settings, clock, live_processor, Workers::Running).await
}

/// [`start_with_live_processor`], choosing whether the background workers run on their own.
pub async fn start_with_workers(
    mut settings: Settings,
    clock: Arc<dyn Clock>,
    live_processor: Option<Arc<dyn Processor>>,
    workers: Workers,
) -> Result<Running, String> {
    // Everything that can fail without the database first: a first start that stopped after
    // bootstrapping the sandbox account would have made a key nobody was ever shown.
    let webhooks = Arc::new(Sender::new(&settings.webhooks)?);
    // Checked now; made again below once the public URL is known (the connectors' 3-D
    // Secure return pages are under it, and a default one names the bound port).
    Connectors::new(
        &settings.connectors,
        live_processor.clone(),
        &settings.public_url,
    )?;
    if let Some(platform_key) = &settings.platform_key {
        if !crate::keys::is_platform_key_shape(platform_key.expose()) {
            return Err(format!(
                "VINR_PLATFORM_KEY: a platform key is `plk_` and {} to {} characters of \
                 A-Z a-z 0-9 _ -",
                vinr_domain::limits::PLATFORM_KEY_SECRET_CHARS_MIN,
                vinr_domain::limits::PLATFORM_KEY_SECRET_CHARS_MAX
            ));
        }
    }
    let listener = connections::bind(settings.listen)
        .map_err(|error| format!("cannot listen on {}: {error}", settings.listen))?;
    let addr = listener.local_addr().map_err(|error| error.to_string())?;
    if settings.public_url_is_default {
        settings.public_url = format!("http://{addr}");
    }
    let connectors = Connectors::new(&settings.connectors, live_processor, &settings.public_url)?;
    let store = Store::open(&settings.database_url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", settings.database_url))?;
    let now = clock.now();
    let fixed = settings.sandbox_key.as_ref().map(|key| key.secret.clone());
    let (sandbox, fingerprint_secret) = store
        .write(move |tx| flows::accounts::first_start(tx, now, fixed.as_ref()))
        .await
        .map_err(|error| format!("cannot prepare the database: {error:?}"))?;
    if let Some(platform_key) = settings.platform_key.clone() {
        let added = store
            .write(move |tx| flows::accounts::ensure_platform_key(tx, platform_key.expose(), now))
            .await
            .map_err(|error| match error {
                flows::FlowError::Invalid { param, message } => format!("{param}: {message}"),
                other => format!("cannot store the platform key: {other:?}"),
            })?;
        tracing::info!(added, "platform key from VINR_PLATFORM_KEY");
    }
    let mut bootstrapped = None;
    let mut sandbox_key_added = None;
    match sandbox {
        Some(SandboxStart::Created { account, key }) => {
            bootstrapped = Some(Bootstrapped {
                account_id: account.id,
                secret_key: key.secret,
                fixed: settings.sandbox_key.is_some(),
            });
        }
        Some(SandboxStart::KeyAdded { account_id, .. }) => sandbox_key_added = Some(account_id),
        Some(SandboxStart::KeyRevoked { key_id }) => {
            let source = settings.sandbox_key.as_ref().map_or("", |key| key.source);
            tracing::warn!(
                %key_id,
                "the sandbox key from {source} was revoked and stays revoked: requests with \
                 it are refused; give another key or none"
            );
        }
        None => {}
    }
    let app: AppState = Arc::new(App {
        store,
        rate_limits: RateLimits::new(&settings.rate_limit),
        settings,
        clock,
        connectors,
        inflight: Arc::new(Inflight::default()),
        checkout_submissions: Arc::new(Inflight::default()),
        metrics: metrics_handle()?,
        fingerprint_secret: Redacted::new(fingerprint_secret),
        webhooks,
    });
    let (shutdown, stopped) = watch::channel(false);
    let router = http::router(app.clone());
    let limits = ConnectionLimits::new(&app.settings.http);
    tracing::info!(
        connections_max = limits.connections_max,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        keep_alive_idle_timeout_ms = limits.keep_alive_idle_timeout.as_millis() as u64,
        "connection limits"
    );
    let server = tokio::spawn(connections::serve(
        listener,
        router,
        limits,
        stopped.clone(),
    ));
    let mut running = vec![tokio::spawn(workers::metrics::run(
        app.clone(),
        stopped.clone(),
    ))];
    if workers == Workers::Running {
        running.extend([
            tokio::spawn(workers::expiry::run(app.clone(), stopped.clone())),
            tokio::spawn(workers::clock::run(app.clone(), stopped.clone())),
            tokio::spawn(workers::refunds::run(app.clone(), stopped.clone())),
            tokio::spawn(workers::connectors::run(app.clone(), stopped.clone())),
            tokio::spawn(workers::settlements::run(app.clone(), stopped.clone())),
            tokio::spawn(workers::maintenance::run(app.clone(), stopped.clone())),
            tokio::spawn(workers::webhooks::run(app.clone(), stopped)),
        ]);
    }
    Ok(Running {
        addr,
        app,
        bootstrapped,
        sandbox_key_added,
        shutdown,
        server,
        workers: running,
    })
}
