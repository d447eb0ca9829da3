//! Payment flows: create, and every transition of the state machine (pay, 3-D Secure result,
//! capture, cancel). Each writes the payment and its `payment.<status>` event together.

use vinr_domain::{Operation, Payment, PaymentMethod, PaymentStatus, UnixMillis};

use super::FlowError;
use crate::outbox;
use crate::render;
use crate::store::{Scope, Tx};

/// Inserts a new payment and its `payment.created` event. `json` is the payment rendered
/// once by the caller (outside the writer), reused as the event snapshot.
pub fn create(tx: &mut dyn Tx, payment: &Payment, json: &str) -> Result<(), FlowError> {
    let scope = Scope {
        account_id: payment.account_id.clone(),
        mode: payment.mode,
    };
    tx.insert_payment(payment)?;
    outbox::record(
        tx,
        &scope,
        "payment.created",
        &payment.id,
        json.to_owned(),
        payment.created_at,
    )?;
    Ok(())
}

/// One step of the state machine on a stored payment.
pub struct Transition<'a> {
    pub scope: &'a Scope,
    pub payment_id: &'a str,
    pub operation: Operation,
    /// Statuses this step may start from, narrower than the state machine where the caller
    /// knows more (a shopper pays only a `pending` payment, not one awaiting 3-D Secure).
    pub only_from: Option<&'a [PaymentStatus]>,
    /// The card, when this step is the shopper paying.
    pub payment_method: Option<PaymentMethod>,
    pub processor_reference: Option<&'a str>,
    pub now: UnixMillis,
    pub public_url: &'a str,
}

/// Applies the transition and records its event; answers the payment's JSON after the change.
pub fn transition(tx: &mut dyn Tx, step: Transition<'_>) -> Result<String, FlowError> {
    let mut payment = tx
        .get_payment_for_update(step.scope, step.payment_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "payment",
            id: step.payment_id.to_owned(),
        })?;
    if let Some(allowed) = step.only_from {
        if !allowed.contains(&payment.status) {
            return Err(FlowError::State(vinr_domain::StateError::NotAllowed {
                from: payment.status,
                operation: step.operation.name(),
            }));
        }
    }
    let reached = payment.apply(step.operation, step.now)?;
    if let Some(method) = step.payment_method {
        payment.payment_method = Some(method);
    }
    tx.update_payment(&payment, step.processor_reference)?;
    let json = render::payment_json(&payment, step.public_url);
    outbox::record(
        tx,
        step.scope,
        &format!("payment.{}", reached.as_str()),
        &payment.id,
        json.clone(),
        step.now,
    )?;
    Ok(json)
}
