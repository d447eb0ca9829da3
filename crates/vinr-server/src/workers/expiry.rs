//! Expiry (SPEC §3): unfinished checkouts become `expired` at `expiresAt`, authorizations
//! not captured within the capture window (7 days by default) become `cancelled`, and disputes
//! not answered by `evidenceDueBy` (SPEC §11) become `lost`, each with its event. Claimed
//! through the database in bounded batches, so any number of nodes can run this worker without
//! doing a payment or a dispute twice.

use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::limits::{
    EXPIRY_BATCHES_PER_STEP_MAX, EXPIRY_BATCH_DISPUTES_MAX, EXPIRY_BATCH_PAYMENTS_MAX,
    EXPIRY_WORKER_INTERVAL_MS,
};

use crate::flows::{disputes, payments, FlowError};
use crate::state::AppState;
use crate::store::{Due, DueOn};
use vinr_domain::UnixMillis;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub auto_cancelled: usize,
    /// Disputes lost for want of a response.
    pub disputes_lost: usize,
}

/// One pass over what is due now on real time.
pub async fn step(app: &AppState) -> Result<Swept, FlowError> {
    sweep_due(app, &DueOn::RealTime, app.clock.now()).await
}

/// Expires and auto-cancels what is due at `now` on clock `on`, a bounded number of batches.
pub async fn sweep_due(app: &AppState, on: &DueOn, now: UnixMillis) -> Result<Swept, FlowError> {
    let mut swept = Swept::default();
    for (due, before) in [
        (Due::Expiry, now),
        (
            Due::AutoCancel,
            now.plus_ms(-app.settings.authorization_ttl_ms),
        ),
    ] {
        for _ in 0..EXPIRY_BATCHES_PER_STEP_MAX {
            let public_url = app.settings.public_url.clone();
            let on = on.clone();
            let count = app
                .store
                .write(move |tx| {
                    payments::sweep(
                        tx,
                        due,
                        &on,
                        before,
                        now,
                        EXPIRY_BATCH_PAYMENTS_MAX,
                        &public_url,
                    )
                })
                .await?;
            match due {
                Due::Expiry => swept.expired += count,
                Due::AutoCancel => swept.auto_cancelled += count,
            }
            if count < EXPIRY_BATCH_PAYMENTS_MAX {
                break;
            }
        }
    }
    for _ in 0..EXPIRY_BATCHES_PER_STEP_MAX {
        let on = on.clone();
        let count = app
            .store
            .write(move |tx| disputes::sweep_deadlines(tx, &on, now, EXPIRY_BATCH_DISPUTES_MAX))
            .await?;
        swept.disputes_lost += count;
        if count < EXPIRY_BATCH_DISPUTES_MAX {
            break;
        }
    }
    Ok(swept)
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(EXPIRY_WORKER_INTERVAL_MS);
    super::every("expiry", interval, shutdown, || step(&app)).await;
}
