//! The writes around a call to an acquirer (SPEC §15, exactly once): claim the payment before
//! the call, name the processor and its reference as soon as they are known, record each
//! attempt, and end the claim (the answer itself is recorded by `payments::transition`, in
//! the transaction of [`end_claim`]).
//!
//! A claim has an owner, random per claim (and per takeover by a repair): every write that
//! changes or ends it is conditional on that owner, so a node whose claim ran out (and was
//! taken over) writes nothing over the one that took it.

use vinr_domain::ids::random_base62;
use vinr_domain::limits::PROCESSOR_CLAIM_OWNER_CHARS;
use vinr_domain::{Payment, PaymentMethod, PaymentStatus, UnixMillis};

use super::payments::{self, Transition};
use super::FlowError;
use crate::store::{AttemptRecord, Scope, Tx};

/// A claim on a payment: who holds it. Not a secret (it only tells claims apart), but never
/// shown anywhere either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOwner(String);

impl ClaimOwner {
    fn new() -> ClaimOwner {
        ClaimOwner(random_base62(PROCESSOR_CLAIM_OWNER_CHARS))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Claims a `pending` payment for one submission's calls until `until`, keeping the card
/// it is paid with (`method`). Answers the payment (its `processor_attempt` the claim's) and
/// the claim's owner, or `None` when it is not pending or another submission (on any node)
/// holds it.
pub fn claim(
    tx: &mut Tx<'_>,
    scope: &Scope,
    payment_id: &str,
    until: UnixMillis,
    method: &PaymentMethod,
) -> Result<Option<(Payment, ClaimOwner)>, FlowError> {
    let Some(mut payment) = tx.get_payment_for_update(scope, payment_id)? else {
        return Err(FlowError::NotFound {
            object: "payment",
            id: payment_id.to_owned(),
        });
    };
    if payment.status != PaymentStatus::Pending || payment.processor_claimed_until.is_some() {
        return Ok(None);
    }
    let owner = ClaimOwner::new();
    if !tx.claim_payment_for_processor(payment_id, until, owner.as_str(), method)? {
        return Ok(None);
    }
    payment.processor_claimed_until = Some(until);
    payment.payment_method = Some(method.clone());
    payment.processor_attempt += 1;
    Ok(Some((payment, owner)))
}

/// Names the processor a claimed payment is being sent to, and its reference once it gave
/// one (what a repair asks about), with the attempt that ended before it, if any. Answers
/// whether the claim is still `owner`'s (nothing is written otherwise).
pub fn name_processor(
    tx: &mut Tx<'_>,
    payment_id: &str,
    owner: &ClaimOwner,
    processor: &str,
    reference: Option<&str>,
    failed_before: Option<&AttemptRecord>,
) -> Result<bool, FlowError> {
    if !tx.set_payment_processor(payment_id, owner.as_str(), processor, reference)? {
        return Ok(false);
    }
    if let Some(attempt) = failed_before {
        tx.insert_payment_attempt(attempt)?;
    }
    Ok(true)
}

/// Records an attempt that changed nothing about the payment (a processor error).
pub fn record_attempt(tx: &mut Tx<'_>, attempt: &AttemptRecord) -> Result<(), FlowError> {
    tx.insert_payment_attempt(attempt)?;
    Ok(())
}

/// Ends a claim without an answer to record: nothing was authorized, the payment stays as
/// it is (`pending`: the shopper may try again). Records the attempt that ended it, if any.
/// Answers whether the claim was still `owner`'s (nothing is written otherwise).
pub fn release(
    tx: &mut Tx<'_>,
    payment_id: &str,
    owner: &ClaimOwner,
    attempt: Option<&AttemptRecord>,
) -> Result<bool, FlowError> {
    if !tx.release_processor_claim(payment_id, owner.as_str())? {
        return Ok(false);
    }
    if let Some(attempt) = attempt {
        tx.insert_payment_attempt(attempt)?;
    }
    Ok(true)
}

/// Records the acquirer's answer (`step`) and ends `owner`'s claim in one transaction;
/// answers whether the claim was still `owner`'s. When it was not, nothing changed and the
/// answer is not recorded: the claim ran out and was taken over.
pub fn end_claim(
    tx: &mut Tx<'_>,
    owner: &ClaimOwner,
    step: Transition<'_>,
) -> Result<bool, FlowError> {
    if !tx.release_processor_claim(step.payment_id, owner.as_str())? {
        return Ok(false);
    }
    payments::transition(tx, step)?;
    Ok(true)
}

/// Leases up to `limit` acquirer cancels due by `now` (payments the expiry ended that the
/// acquirer still holds) until `until`: answers those payments.
pub fn lease_acquirer_cancels(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    until: UnixMillis,
    limit: usize,
) -> Result<Vec<Payment>, FlowError> {
    let mut leased = Vec::new();
    for (id, scope) in tx.due_processor_cancels(now, limit)? {
        if tx.lease_processor_cancel(&id, now, until)? {
            if let Some(payment) = tx.get_payment_for_update(&scope, &id)? {
                leased.push(payment);
            }
        }
    }
    Ok(leased)
}

/// A payment's acquirer cancel is done (or can never be): no more tries.
pub fn acquirer_cancelled(tx: &mut Tx<'_>, payment_id: &str) -> Result<(), FlowError> {
    tx.clear_processor_cancel(payment_id)?;
    Ok(())
}

/// An unfinished 3-D Secure past its checkout's expiry, as its acquirer left it: `step`
/// records the acquirer's answer if it decided after all, or expires the payment once the
/// acquirer cancelled it; either way no cancel is due any more. Answers `false`, changing
/// nothing, when the payment left `requires_authentication` meanwhile (the shopper's return
/// recorded it first).
pub fn end_expired_challenge(tx: &mut Tx<'_>, step: Transition<'_>) -> Result<bool, FlowError> {
    let payment_id = step.payment_id.to_owned();
    let recorded = match payments::transition(tx, step) {
        Ok(_) => true,
        Err(FlowError::State(_)) => false,
        Err(error) => return Err(error),
    };
    tx.clear_processor_cancel(&payment_id)?;
    Ok(recorded)
}

/// Takes over up to `limit` claims that ran out before `now` (their holder died), each until
/// `until`, each with a new owner. Answers those payments (their `processor_attempt` the one
/// that was in flight) and owners: what a repair must ask their acquirer about first.
pub fn reclaim_stale(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    until: UnixMillis,
    limit: usize,
) -> Result<Vec<(Payment, ClaimOwner)>, FlowError> {
    let mut taken = Vec::new();
    for (id, scope) in tx.stale_processor_claims(now, limit)? {
        let owner = ClaimOwner::new();
        if tx.reclaim_stale_processor_claim(&id, now, until, owner.as_str())? {
            if let Some(mut payment) = tx.get_payment_for_update(&scope, &id)? {
                payment.processor_claimed_until = Some(until);
                taken.push((payment, owner));
            }
        }
    }
    Ok(taken)
}
