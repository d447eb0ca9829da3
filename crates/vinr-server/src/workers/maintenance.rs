//! Maintenance: prunes idempotency keys past their retention (SPEC §2: ≥ 24 h) and events past
//! 30 days (SPEC §6), in bounded batches so the writer is never held long, and forgets idle
//! rate-limit buckets.

use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::limits::{
    EVENT_RETENTION_MS, MAINTENANCE_BATCHES_PER_STEP_MAX, MAINTENANCE_INTERVAL_MS,
    PRUNE_BATCH_ROWS_MAX,
};

use crate::flows::maintenance::{self, PrunedRows};
use crate::flows::FlowError;
use crate::state::AppState;
use crate::store::DueOn;
use vinr_domain::UnixMillis;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub idempotency_keys: usize,
    pub events: usize,
}

/// One pass: prune what is due now on real time.
pub async fn step(app: &AppState) -> Result<Pruned, FlowError> {
    let pruned = prune_due(app, &DueOn::RealTime, app.clock.now()).await?;
    if let Some(limits) = &app.rate_limits {
        limits.shrink();
    }
    Ok(pruned)
}

/// Prunes what is past its retention at `now` on clock `on`.
pub async fn prune_due(app: &AppState, on: &DueOn, now: UnixMillis) -> Result<Pruned, FlowError> {
    let keys_before = now.plus_ms(-app.settings.idempotency_retention_ms);
    let events_before = now.plus_ms(-EVENT_RETENTION_MS);
    let mut pruned = Pruned::default();
    for _ in 0..MAINTENANCE_BATCHES_PER_STEP_MAX {
        let on = on.clone();
        let PrunedRows {
            idempotency_keys: keys,
            events,
        } = app
            .store
            .write(move |tx| {
                maintenance::prune(tx, &on, keys_before, events_before, PRUNE_BATCH_ROWS_MAX)
            })
            .await?;
        pruned.idempotency_keys += keys;
        pruned.events += events;
        if keys < PRUNE_BATCH_ROWS_MAX && events < PRUNE_BATCH_ROWS_MAX {
            break;
        }
    }
    Ok(pruned)
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(MAINTENANCE_INTERVAL_MS);
    super::every("maintenance", interval, shutdown, || step(&app)).await;
}
