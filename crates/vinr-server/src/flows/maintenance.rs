//! Maintenance flows: pruning what is past its retention, in bounded batches so the writer is
//! never held long. The retention itself (SPEC §2: idempotency keys ≥ 24 h; SPEC §6: events
//! 30 days) is the caller's: it passes the cut-offs.

use vinr_domain::UnixMillis;

use super::FlowError;
use crate::store::{DueOn, Tx};

/// What one pruning transaction deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrunedRows {
    pub idempotency_keys: usize,
    pub events: usize,
}

/// Deletes at most `limit` idempotency keys created before `keys_before` and at most `limit`
/// events created before `events_before`.
/// On clock `on` only.
pub fn prune(
    tx: &mut Tx<'_>,
    on: &DueOn,
    keys_before: UnixMillis,
    events_before: UnixMillis,
    limit: usize,
) -> Result<PrunedRows, FlowError> {
    Ok(PrunedRows {
        idempotency_keys: tx.prune_idempotency_keys(on, keys_before, limit)?,
        events: tx.prune_events(on, events_before, limit)?,
    })
}
