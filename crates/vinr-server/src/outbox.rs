//! (6) Events, written inside the flow's transaction: a state change and its event commit
//! together or not at all. Each event also queues, in the same transaction, one webhook
//! delivery per matching endpoint (SPEC §6); the delivery worker sends them after the commit,
//! never before.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::UnixMillis;

use crate::store::{EventRecord, Scope, StoreError, Tx};

/// Records `kind` (e.g. `payment.completed`) for the object whose JSON snapshot is `data`.
pub fn record(
    tx: &mut Tx<'_>,
    scope: &Scope,
    kind: &str,
    object_id: &str,
    data: String,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let event = EventRecord {
        id: new_id(Prefix::Event, now),
        scope: scope.clone(),
        kind: kind.to_owned(),
        object_id: object_id.to_owned(),
        data,
        created_at: now,
    };
    tx.insert_event(&event)?;
    tx.queue_webhook_deliveries(&event)
}
