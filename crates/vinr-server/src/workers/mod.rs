//! (7) Background workers. Each runs at its own pace, does a bounded amount of work per step,
//! and stops on the shared shutdown signal. Tests call a worker's `step` by hand.

pub mod clock;
pub mod connectors;
pub mod expiry;
pub mod maintenance;
pub mod metrics;
pub mod refunds;
pub mod settlements;
pub mod webhooks;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::flows::FlowError;

/// Runs `step` every `interval` until `shutdown` changes, logging what each step did (when it
/// did anything) and every failure; a failed step is simply tried again next time.
pub async fn every<T, F, Fut>(
    name: &'static str,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) where
    T: Debug + Default + PartialEq,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FlowError>>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        match step().await {
            Ok(done) if done != T::default() => tracing::info!(worker = name, ?done, "worked"),
            Ok(_) => {}
            Err(error) => tracing::warn!(worker = name, ?error, "step failed"),
        }
    }
}
