//! The writes around a call to an acquirer (SPEC §15, exactly once): claim the payment before
//! the call, name the processor and its reference as soon as they are known, record each
//! attempt, and end the claim (the answer itself is recorded by `payments::transition`,
//! whose step ends the claim too).

use vinr_domain::{Payment, PaymentMethod, PaymentStatus, UnixMillis};

use super::FlowError;
use crate::store::{AttemptRecord, Scope, Tx};

/// Claims a `pending` payment for one submission's calls until `until`, keeping the card
/// it is paid with (`method`). Answers the payment,
/// or `None` when it is not pending or another submission (on any node) holds it.
pub fn claim(
    tx: &mut Tx<'_>,
    scope: &Scope,
    payment_id: &str,
    until: UnixMillis,
    method: &PaymentMethod,
) -> Result<Option<Payment>, FlowError> {
    let Some(mut payment) = tx.get_payment_for_update(scope, payment_id)? else {
        return Err(FlowError::NotFound {
            object: "payment",
            id: payment_id.to_owned(),
        });
    };
    if payment.status != PaymentStatus::Pending || payment.processor_claimed_until.is_some() {
        return Ok(None);
    }
    if !tx.claim_payment_for_processor(payment_id, until, method)? {
        return Ok(None);
    }
    payment.processor_claimed_until = Some(until);
    payment.payment_method = Some(method.clone());
    Ok(Some(payment))
}

/// Names the processor a claimed payment is being sent to, and its reference once it gave
/// one (what a repair asks about), with the attempt that ended before it, if any.
pub fn name_processor(
    tx: &mut Tx<'_>,
    payment_id: &str,
    processor: &str,
    reference: Option<&str>,
    failed_before: Option<&AttemptRecord>,
) -> Result<(), FlowError> {
    if let Some(attempt) = failed_before {
        tx.insert_payment_attempt(attempt)?;
    }
    tx.set_payment_processor(payment_id, processor, reference)?;
    Ok(())
}

/// Records an attempt that changed nothing about the payment (a processor error).
pub fn record_attempt(tx: &mut Tx<'_>, attempt: &AttemptRecord) -> Result<(), FlowError> {
    tx.insert_payment_attempt(attempt)?;
    Ok(())
}

/// Ends a claim without an answer to record: nothing was authorized, the payment stays as
/// it is (`pending`: the shopper may try again). Records the attempt that ended it, if any.
pub fn release(
    tx: &mut Tx<'_>,
    payment_id: &str,
    attempt: Option<&AttemptRecord>,
) -> Result<(), FlowError> {
    if let Some(attempt) = attempt {
        tx.insert_payment_attempt(attempt)?;
    }
    tx.release_processor_claim(payment_id)?;
    Ok(())
}

/// Takes over up to `limit` claims that ran out before `now` (their holder died), each until
/// `until`. Answers those payments: what a repair must ask their acquirer about first.
pub fn reclaim_stale(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    until: UnixMillis,
    limit: usize,
) -> Result<Vec<Payment>, FlowError> {
    let mut taken = Vec::new();
    for (id, scope) in tx.stale_processor_claims(now, limit)? {
        if tx.reclaim_stale_processor_claim(&id, now, until)? {
            if let Some(mut payment) = tx.get_payment_for_update(&scope, &id)? {
                payment.processor_claimed_until = Some(until);
                taken.push(payment);
            }
        }
    }
    Ok(taken)
}
