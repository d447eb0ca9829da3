//! Settlement flows (SPEC §7). [`settle_group`] gathers one group's due balance transactions
//! into a `pending` settlement and writes `settlement.created`; [`pay_out`] sends the payouts
//! of pending settlements (`paid`, the `payout` balance transaction with its ledger entries,
//! `settlement.paid`), so the balance transactions' `net` always sums to the balance.
//!
//! Exactly once: each group is settled in one transaction that first takes the group's lock
//! (an advisory lock on PostgreSQL; SQLite has one writer), so a run repeated, crashed half-way
//! or started on two nodes at once either settles a group wholly or not at all, and a balance
//! transaction's single `settlement_id` column can only ever name one settlement.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::settlement::{Settlement, SettlementStatus, Totals};
use vinr_domain::{Mode, UnixMillis};

use super::{ledger, FlowError};
use crate::outbox;
use crate::render;
use crate::store::{DueOn, Scope, SettlementGroup, Tx};

/// Settles what `group` had available by `cutoff` (the run's cut-off, inclusive) if anything;
/// answers the settlement.
pub fn settle_group(
    tx: &mut Tx<'_>,
    group: &SettlementGroup,
    cutoff: UnixMillis,
    now: UnixMillis,
) -> Result<Option<Settlement>, FlowError> {
    tx.lock_exclusive(&format!(
        "settle:{}:{}:{}",
        group.scope.account_id,
        group.scope.mode.as_str(),
        group.currency.code()
    ))?;
    let id = new_id(Prefix::Settlement, now);
    let lines = tx.gather_balance_transactions(group, cutoff, &id)?;
    let totals = Totals::of(&lines);
    let Some(period_start) = totals.period_start else {
        return Ok(None);
    };
    let settlement = Settlement {
        id,
        account_id: group.scope.account_id.clone(),
        mode: group.scope.mode,
        currency: group.currency,
        status: SettlementStatus::Pending,
        totals,
        period_start,
        period_end: cutoff,
        created_at: now,
        paid_at: None,
    };
    tx.insert_settlement(&settlement)?;
    outbox::record(
        tx,
        &group.scope,
        "settlement.created",
        &settlement.id,
        render::settlement_json(&settlement),
        now,
    )?;
    Ok(Some(settlement))
}

/// Sends the payouts of up to `limit` `pending` settlements of `mode` made by `before`;
/// answers them, `paid`.
pub fn pay_out(
    tx: &mut Tx<'_>,
    mode: Mode,
    on: &DueOn,
    before: UnixMillis,
    now: UnixMillis,
    limit: usize,
) -> Result<Vec<Settlement>, FlowError> {
    let mut paid = Vec::new();
    let mut claimed = tx.claim_pending_settlements(mode, on, before, limit)?;
    // Booked in one order of (account, currency) on every node: each payout adds to that
    // group's balance-total row, so two nodes paying out at once take those rows in the same
    // order and never wait for each other in a circle.
    claimed.sort_by(|a, b| {
        (&a.account_id, a.currency.code()).cmp(&(&b.account_id, b.currency.code()))
    });
    for mut settlement in claimed {
        if !settlement.pay(now) {
            continue;
        }
        tx.update_settlement(&settlement)?;
        let scope = Scope {
            account_id: settlement.account_id.clone(),
            mode: settlement.mode,
        };
        ledger::book_payout(tx, &settlement, now)?;
        outbox::record(
            tx,
            &scope,
            "settlement.paid",
            &settlement.id,
            render::settlement_json(&settlement),
            now,
        )?;
        paid.push(settlement);
    }
    Ok(paid)
}
