//! Booking money (SPEC §7): a flow that moves money calls [`book`] inside its transaction, so
//! the state change, its balance transaction and its ledger entries commit together or not at
//! all. The amounts come from the pure rules in `vinr_domain::ledger`.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::ledger::{available_on, Movement};
use vinr_domain::{Currency, UnixMillis};

use crate::store::{BalanceTransactionRecord, Scope, StoreError, Tx};

/// Writes `movement` for `source` (a `pay_`/`re_` id) as a balance transaction with its
/// entries.
pub fn book(
    tx: &mut dyn Tx,
    scope: &Scope,
    movement: Movement,
    source: &str,
    currency: Currency,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let btx = BalanceTransactionRecord {
        id: new_id(Prefix::BalanceTransaction, now),
        scope: scope.clone(),
        kind: movement.kind,
        source: source.to_owned(),
        amount: movement.amount,
        fee: movement.fee,
        net: movement.net,
        currency,
        created_at: now,
        available_on: available_on(scope.mode, now),
        settlement_id: None,
    };
    tx.insert_balance_transaction(&btx, &movement.entries)
}
