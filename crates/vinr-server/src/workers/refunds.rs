//! Refund processing: asks the processor about each `pending` refund and records its answer
//! (sandbox: within a second), from the processor that has the refund's payment. A refund is leased in one transaction, sent to the processor
//! outside any transaction, and finished in another; the lease keeps a second worker (on this
//! or another node) from asking about it at the same time, and an expired lease (a crash in
//! between) lets it be asked again.

use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::limits::{REFUND_WORKER_BATCH_REFUNDS_MAX, REFUND_WORKER_INTERVAL_MS};

use crate::flows::{refunds, FlowError};
use crate::state::AppState;
use crate::store::DueOn;

/// One pass on real time: answers how many refunds it finished.
pub async fn step(app: &AppState) -> Result<usize, FlowError> {
    process(app, &DueOn::RealTime, 0).await
}

/// Sends the pending refunds of clock `on` to the processor and records the answers, stamped
/// on that clock (`clock_offset_ms` ahead of real time).
pub async fn process(app: &AppState, on: &DueOn, clock_offset_ms: i64) -> Result<usize, FlowError> {
    let now = app.clock.now();
    let on = on.clone();
    let lease_ms = app.connectors.refund_lease_ms();
    let leased = app
        .store
        .write(move |tx| {
            refunds::lease_pending(
                tx,
                &on,
                now,
                now.plus_ms(lease_ms),
                REFUND_WORKER_BATCH_REFUNDS_MAX,
            )
        })
        .await?;
    let mut finished = 0;
    for leased in leased {
        let refund = leased.refund;
        // The refund goes to the processor that has the payment (SPEC §15).
        let answer = match app.connectors.of_payment(leased.processor.as_deref()) {
            Some(routed) => match routed
                .processor
                .refund(leased.reference.as_deref(), &refund)
                .await
            {
                Ok(answer) => answer,
                Err(error) => {
                    // The processor did not decide: the lease runs out and it is asked again.
                    tracing::warn!(refund_id = %refund.id, processor = %routed.name, %error,
                        "refund: processor error; retrying after the lease");
                    continue;
                }
            },
            None => Err("processor_unavailable".to_owned()),
        };
        let now = app.clock.now().plus_ms(clock_offset_ms);
        let id = refund.id.clone();
        let reached = app
            .store
            .write(move |tx| refunds::finish(tx, &id, answer.err(), now))
            .await?;
        finished += usize::from(reached.is_some());
    }
    Ok(finished)
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(REFUND_WORKER_INTERVAL_MS);
    super::every("refunds", interval, shutdown, || step(&app)).await;
}
