//! The repair of payments whose call to an acquirer was interrupted (SPEC §15): a claim that
//! ran out belongs to a process that died between its call and its commit (or before it
//! called); the acquirer is asked what became of the payment, and that is recorded before
//! anything else is done with it. Runs on every node; the claim is taken over in one
//! conditional statement, so one node repairs each payment.
//!
//! It also sends the acquirer cancels the expiry left due (SPEC §15): a payment that expired
//! in 3-D Secure or whose authorization was auto-cancelled is cancelled at the acquirer that
//! holds it, leased like a claim so that one node sends each, and tried again after its lease
//! while the acquirer cannot be reached.

use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::limits::PROCESSOR_REPAIR_INTERVAL_MS;

use crate::connectors::pay;
use crate::flows::FlowError;
use crate::state::AppState;

/// One pass: answers how many payments it settled (repaired claims and acquirer cancels).
pub async fn step(app: &AppState) -> Result<usize, FlowError> {
    Ok(pay::repair(app).await? + pay::cancel_expired(app).await?)
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(PROCESSOR_REPAIR_INTERVAL_MS);
    super::every("processor repair", interval, shutdown, || step(&app)).await;
}
