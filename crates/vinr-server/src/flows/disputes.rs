//! Dispute flows (SPEC §11): open (the sandbox triggers: the test helper, and the
//! `4000 0000 0000 0259` card when its payment completes), update and submit evidence, close
//! (accept), the bank's decision (the sandbox's evidence keywords, the resolve helper) and the
//! missed deadline. Each runs in one transaction with the dispute's event, and every change
//! of money is booked there too: opening a `dispute` balance transaction (−amount, the dispute
//! fee), winning a `dispute_reversal` (+amount). The payment's `amount_disputed` changes with
//! the dispute, under the database's CHECK that refunds and disputes together never pass
//! `amount_captured`.
//!
//! Lock order: a dispute, then its payment — as the refunds worker locks a refund, then its
//! payment; opening locks only the payment (the dispute is new).

use std::collections::BTreeMap;

use vinr_domain::dispute::{
    Dispute, DisputeOperation, DisputeReason, DisputeStatus, Evidence, Outcome,
};
use vinr_domain::ledger::{Movement, Pricing};
use vinr_domain::{Payment, UnixMillis};

use super::{ledger, FlowError};
use crate::outbox;
use crate::render;
use crate::store::{DueOn, Scope, Tx};

/// Opens a dispute on `payment` (already read for update, written back by the caller) and
/// books it: answers the new dispute.
pub fn open_on(
    tx: &mut Tx<'_>,
    scope: &Scope,
    payment: &mut Payment,
    amount: Option<u64>,
    reason: DisputeReason,
    pricing: Pricing,
    now: UnixMillis,
) -> Result<Dispute, FlowError> {
    let dispute = Dispute::open(payment, amount, reason, pricing.dispute_fee_minor, now)?;
    tx.insert_dispute(&dispute)?;
    ledger::book(
        tx,
        scope,
        Movement::dispute(dispute.amount, dispute.fee),
        &dispute.id,
        dispute.currency,
        now,
    )?;
    outbox::record(
        tx,
        scope,
        "dispute.created",
        &dispute.id,
        render::dispute_json(&dispute),
        now,
    )?;
    Ok(dispute)
}

pub struct NewDispute {
    pub scope: Scope,
    pub payment_id: String,
    /// Minor units, or `None` for all that is disputable.
    pub amount: Option<u64>,
    pub reason: DisputeReason,
    pub pricing: Pricing,
    pub now: UnixMillis,
}

/// Opens a dispute on a payment (the test helper); answers the dispute's JSON.
pub fn open(tx: &mut Tx<'_>, new: NewDispute) -> Result<String, FlowError> {
    let mut payment = tx
        .get_payment_for_update(&new.scope, &new.payment_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "payment",
            id: new.payment_id.clone(),
        })?;
    let dispute = open_on(
        tx,
        &new.scope,
        &mut payment,
        new.amount,
        new.reason,
        new.pricing,
        new.now,
    )?;
    tx.update_payment(&payment, None)?;
    Ok(render::dispute_json(&dispute))
}

/// What `POST /v1/disputes/:id` changes.
pub struct DisputeChanges {
    /// Fields given replace the stored ones.
    pub evidence: Option<Evidence>,
    /// Replaces the metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    pub submit: bool,
}

/// Updates a dispute that `needs_response` (evidence, metadata) and, with `submit`, sends it
/// for review; in the sandbox, evidence with `winning_evidence` or `losing_evidence` is decided
/// at once. Answers the dispute's JSON after everything.
pub fn update(
    tx: &mut Tx<'_>,
    scope: &Scope,
    id: &str,
    changes: DisputeChanges,
    now: UnixMillis,
) -> Result<String, FlowError> {
    let (mut dispute, mut payment) = locked(tx, scope, id)?;
    let operation = if changes.submit {
        DisputeOperation::Submit
    } else {
        DisputeOperation::Update
    };
    dispute.apply(operation, &mut payment, now)?;
    if let Some(evidence) = changes.evidence {
        dispute.evidence.merge(evidence);
    }
    if let Some(metadata) = changes.metadata {
        dispute.metadata = metadata;
    }
    tx.update_dispute(&dispute)?;
    record(tx, scope, &dispute, now)?;
    // The sandbox decides submitted evidence at once by its keywords; live mode waits for
    // the bank.
    let sandbox = changes.submit && !scope.mode.is_live();
    if let Some(outcome) = sandbox
        .then(|| dispute.evidence.sandbox_outcome())
        .flatten()
    {
        decide(
            tx,
            scope,
            &mut dispute,
            &mut payment,
            DisputeOperation::Resolve(outcome),
            now,
        )?;
    }
    Ok(render::dispute_json(&dispute))
}

/// Accepts a dispute (`POST /v1/disputes/:id/close`): it is `lost`.
pub fn close(
    tx: &mut Tx<'_>,
    scope: &Scope,
    id: &str,
    now: UnixMillis,
) -> Result<String, FlowError> {
    let (mut dispute, mut payment) = locked(tx, scope, id)?;
    decide(
        tx,
        scope,
        &mut dispute,
        &mut payment,
        DisputeOperation::Accept,
        now,
    )?;
    Ok(render::dispute_json(&dispute))
}

/// The bank's decision on a dispute under review (the sandbox's resolve helper).
pub fn resolve(
    tx: &mut Tx<'_>,
    scope: &Scope,
    id: &str,
    outcome: Outcome,
    now: UnixMillis,
) -> Result<String, FlowError> {
    let (mut dispute, mut payment) = locked(tx, scope, id)?;
    decide(
        tx,
        scope,
        &mut dispute,
        &mut payment,
        DisputeOperation::Resolve(outcome),
        now,
    )?;
    Ok(render::dispute_json(&dispute))
}

/// Disputes on clock `on` whose `evidenceDueBy` passed by `now` without a response are lost:
/// at most `limit`, each with its event. Answers how many it changed.
pub fn sweep_deadlines(
    tx: &mut Tx<'_>,
    on: &DueOn,
    now: UnixMillis,
    limit: usize,
) -> Result<usize, FlowError> {
    let mut due = tx.claim_due_disputes(on, now, limit)?;
    // Their payments are locked in one order on every node: two nodes sweeping at once never
    // wait for each other's payments in a circle.
    due.sort_by(|a, b| a.payment_id.cmp(&b.payment_id));
    let count = due.len();
    for mut dispute in due {
        let scope = Scope {
            account_id: dispute.account_id.clone(),
            mode: dispute.mode,
        };
        let mut payment = payment_of(tx, &scope, &dispute)?;
        decide(
            tx,
            &scope,
            &mut dispute,
            &mut payment,
            DisputeOperation::Expire,
            now,
        )?;
    }
    Ok(count)
}

/// The dispute `id` of `scope` and its payment, both locked.
fn locked(tx: &mut Tx<'_>, scope: &Scope, id: &str) -> Result<(Dispute, Payment), FlowError> {
    let dispute = tx
        .get_dispute_for_update(scope, id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "dispute",
            id: id.to_owned(),
        })?;
    let payment = payment_of(tx, scope, &dispute)?;
    Ok((dispute, payment))
}

fn payment_of(tx: &mut Tx<'_>, scope: &Scope, dispute: &Dispute) -> Result<Payment, FlowError> {
    tx.get_payment_for_update(scope, &dispute.payment_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "payment",
            id: dispute.payment_id.clone(),
        })
}

/// Runs a closing operation (accept, expire, the bank's decision): writes the dispute, gives a
/// won dispute's amount back to the payment and the balance, records the events.
fn decide(
    tx: &mut Tx<'_>,
    scope: &Scope,
    dispute: &mut Dispute,
    payment: &mut Payment,
    operation: DisputeOperation,
    now: UnixMillis,
) -> Result<(), FlowError> {
    let reached = dispute.apply(operation, payment, now)?;
    tx.update_dispute(dispute)?;
    if reached == DisputeStatus::Won {
        tx.update_payment(payment, None)?;
        ledger::book(
            tx,
            scope,
            Movement::dispute_reversal(dispute.amount),
            &dispute.id,
            dispute.currency,
            now,
        )?;
    }
    record(tx, scope, dispute, now)
}

/// `dispute.closed` once won or lost, else `dispute.updated`.
fn record(
    tx: &mut Tx<'_>,
    scope: &Scope,
    dispute: &Dispute,
    now: UnixMillis,
) -> Result<(), FlowError> {
    let kind = if dispute.status.is_final() {
        "dispute.closed"
    } else {
        "dispute.updated"
    };
    outbox::record(
        tx,
        scope,
        kind,
        &dispute.id,
        render::dispute_json(dispute),
        now,
    )?;
    Ok(())
}
