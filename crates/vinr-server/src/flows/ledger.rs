//! Booking money (SPEC §7): a flow that moves money calls [`book`] (or [`book_payout`]) inside
//! its transaction, so the state change, its balance transaction and its ledger entries commit
//! together or not at all. The amounts come from the pure rules in `vinr_domain::ledger`.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::ledger::{available_on, Movement};
use vinr_domain::settlement::Settlement;
use vinr_domain::{Currency, UnixMillis};

use crate::store::{BalanceTransactionRecord, Scope, StoreError, Tx};

/// Writes `movement` for `source` (a `pay_`/`re_` id) as a balance transaction with its
/// entries.
pub fn book(
    tx: &mut Tx<'_>,
    scope: &Scope,
    movement: Movement,
    source: &str,
    currency: Currency,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let btx = record(
        new_id(Prefix::BalanceTransaction, now),
        scope,
        &movement,
        source,
        currency,
        now,
        available_on(scope.mode, now),
    );
    tx.insert_balance_transaction(&btx, &movement.entries)
}

/// Writes the payout of `settlement` (being paid at `now`) as a `payout` balance transaction
/// with its entries: source the `setl_` id, amount −net, never gathered into a settlement, and
/// available at once (the money leaves the balance when it is paid). Nothing for a settlement
/// whose `net` is 0.
pub fn book_payout(
    tx: &mut Tx<'_>,
    settlement: &Settlement,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let Some(movement) = Movement::payout(settlement.totals.net) else {
        return Ok(());
    };
    let scope = Scope {
        account_id: settlement.account_id.clone(),
        mode: settlement.mode,
    };
    let btx = record(
        settlement.payout_transaction_id(),
        &scope,
        &movement,
        &settlement.id,
        settlement.currency,
        now,
        now,
    );
    tx.insert_balance_transaction(&btx, &movement.entries)
}

fn record(
    id: String,
    scope: &Scope,
    movement: &Movement,
    source: &str,
    currency: Currency,
    now: UnixMillis,
    available_on: UnixMillis,
) -> BalanceTransactionRecord {
    BalanceTransactionRecord {
        id,
        scope: scope.clone(),
        kind: movement.kind,
        source: source.to_owned(),
        amount: movement.amount,
        fee: movement.fee,
        net: movement.net,
        currency,
        created_at: now,
        available_on,
        settlement_id: None,
    }
}
