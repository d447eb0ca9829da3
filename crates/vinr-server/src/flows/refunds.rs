//! Refund flows (SPEC §5): create (reserve the amount on the payment, insert the `pending`
//! refund, `refund.created`), lease (the worker's claim on pending refunds to ask the
//! processor about) and finish (the processor's answer: `refund.succeeded`, or
//! `refund.failed`, which frees the amount again). A refund is booked in the ledger when it is
//! made (with the account's refund fee, if any) and reversed if it fails. The payment's
//! `amount_refunded` changes in the same transaction as the refund, under the database's CHECK
//! that it never passes `amount_captured` — on any number of nodes.

use std::collections::BTreeMap;

use vinr_domain::ledger::{Movement, Pricing};
use vinr_domain::refund::{finish as finish_refund, reserve};
use vinr_domain::{Refund, RefundReason, RefundStatus, UnixMillis};

use super::{ledger, FlowError};
use crate::outbox;
use crate::render;
use crate::store::{DueOn, Scope, Tx};

pub struct NewRefund {
    pub scope: Scope,
    pub payment_id: String,
    /// Minor units, or `None` for all that remains refundable.
    pub amount: Option<u64>,
    pub reason: Option<RefundReason>,
    pub metadata: BTreeMap<String, String>,
    pub now: UnixMillis,
    pub pricing: Pricing,
}

/// Creates a `pending` refund; answers its JSON.
pub fn create(tx: &mut Tx<'_>, new: NewRefund) -> Result<String, FlowError> {
    let mut payment = tx
        .get_payment_for_update(&new.scope, &new.payment_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "payment",
            id: new.payment_id.clone(),
        })?;
    let amount = reserve(&mut payment, new.amount)?;
    let refund = Refund::new(&payment, amount, new.reason, new.metadata, new.now);
    tx.insert_refund(&refund)?;
    tx.update_payment(&payment, None)?;
    ledger::book(
        tx,
        &new.scope,
        Movement::refund(amount),
        &refund.id,
        refund.currency,
        new.now,
    )?;
    if let Some(fee) = Movement::fee(new.pricing.refund_fixed_minor) {
        ledger::book(tx, &new.scope, fee, &refund.id, refund.currency, new.now)?;
    }
    let json = render::refund_json(&refund);
    outbox::record(
        tx,
        &new.scope,
        "refund.created",
        &refund.id,
        json.clone(),
        new.now,
    )?;
    Ok(json)
}

/// A leased refund with where it goes: the processor that has its payment (`None`: the
/// sandbox, for payments from before connectors) and that processor's reference.
pub struct LeasedRefund {
    pub refund: Refund,
    pub processor: Option<String>,
    pub reference: Option<String>,
}

/// Leases up to `limit` pending refunds until `lease_until`, each with the processor and
/// reference of its payment (what the refund is made against).
pub fn lease_pending(
    tx: &mut Tx<'_>,
    on: &DueOn,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
) -> Result<Vec<LeasedRefund>, FlowError> {
    let refunds = tx.lease_pending_refunds(on, now, lease_until, limit)?;
    refunds
        .into_iter()
        .map(|refund| {
            let (processor, reference) = tx.payment_processor_of(&refund.payment_id)?;
            Ok(LeasedRefund {
                refund,
                processor,
                reference,
            })
        })
        .collect()
}

/// Records the processor's answer for a pending refund (`failure_reason` `None` = succeeded).
/// Answers the status reached, or `None` when the refund was already final (another worker
/// finished it first).
pub fn finish(
    tx: &mut Tx<'_>,
    refund_id: &str,
    failure_reason: Option<String>,
    now: UnixMillis,
) -> Result<Option<RefundStatus>, FlowError> {
    let mut refund = tx
        .get_refund_for_update(refund_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "refund",
            id: refund_id.to_owned(),
        })?;
    if refund.status != RefundStatus::Pending {
        return Ok(None);
    }
    let scope = Scope {
        account_id: refund.account_id.clone(),
        mode: refund.mode,
    };
    let mut payment = tx
        .get_payment_for_update(&scope, &refund.payment_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "payment",
            id: refund.payment_id.clone(),
        })?;
    let reached = finish_refund(&mut refund, &mut payment, failure_reason)?;
    tx.update_refund(&refund)?;
    if reached == RefundStatus::Failed {
        tx.update_payment(&payment, None)?;
        ledger::book(
            tx,
            &scope,
            Movement::refund_reversal(refund.amount),
            &refund.id,
            refund.currency,
            now,
        )?;
    }
    outbox::record(
        tx,
        &scope,
        &format!("refund.{}", reached.as_str()),
        &refund.id,
        render::refund_json(&refund),
        now,
    )?;
    Ok(Some(reached))
}
