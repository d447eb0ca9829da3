//! Payment flows: create, and every transition of the state machine (pay, 3-D Secure result,
//! capture, cancel). Each writes the payment and its `payment.<status>` event together; the
//! step that completes a payment also books the captured amount and its fee in the ledger,
//! and, for the sandbox's disputed test card, opens its dispute (SPEC §11).

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::ledger::{Movement, Pricing};
use vinr_domain::{DisputeReason, Operation, Payment, PaymentMethod, PaymentStatus, UnixMillis};

use super::{disputes, ledger, FlowError};
use crate::charge::Charge;
use crate::outbox;
use crate::processor::SANDBOX_DISPUTED_REFERENCE;
use crate::render;
use crate::store::{AttemptRecord, Due, DueOn, Scope, Tx};

/// Inserts a new payment and its `payment.created` event. `json` is the payment rendered
/// once by the caller (outside the writer), reused as the event snapshot.
pub fn create(tx: &mut Tx<'_>, payment: &Payment, json: &str) -> Result<(), FlowError> {
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
    /// The processor that answered, when this step records its answer: it is named on the
    /// payment, and its claim on the payment (if any) ends with this step.
    pub processor: Option<&'a str>,
    /// The processor call this step records, if any (SPEC §15 attempts).
    pub attempt: Option<AttemptRecord>,
    pub now: UnixMillis,
    pub public_url: &'a str,
    /// What the account pays, should this step capture money.
    pub pricing: Pricing,
}

impl<'a> Transition<'a> {
    /// A step that ends a payment without money moving (expiry, auto-cancel): no card, no
    /// processor answer, no capture.
    fn ending(
        scope: &'a Scope,
        payment_id: &'a str,
        operation: Operation,
        only_from: Option<&'a [PaymentStatus]>,
        now: UnixMillis,
        public_url: &'a str,
    ) -> Transition<'a> {
        Transition {
            scope,
            payment_id,
            operation,
            only_from,
            payment_method: None,
            processor_reference: None,
            processor: None,
            attempt: None,
            now,
            public_url,
            pricing: Pricing::default(),
        }
    }

    /// The step that expires an unfinished 3-D Secure its acquirer cancelled (the connectors
    /// worker, after the checkout's expiry).
    pub fn expired_at_acquirer(
        scope: &'a Scope,
        payment_id: &'a str,
        now: UnixMillis,
        public_url: &'a str,
    ) -> Transition<'a> {
        let from: &'a [PaymentStatus] = &[PaymentStatus::RequiresAuthentication];
        Transition::ending(
            scope,
            payment_id,
            Operation::Expire,
            Some(from),
            now,
            public_url,
        )
    }

    /// The step that records a card charge's outcome (checkout, the sandbox test helpers).
    pub fn charged(
        charge: &'a Charge,
        scope: &'a Scope,
        payment_id: &'a str,
        now: UnixMillis,
        public_url: &'a str,
        pricing: Pricing,
    ) -> Transition<'a> {
        Transition {
            scope,
            payment_id,
            operation: charge.operation,
            only_from: Some(charge.only_from),
            payment_method: charge.payment_method.clone(),
            processor_reference: Some(&charge.processor_reference),
            processor: Some(&charge.processor),
            attempt: Some(attempt_of(charge, payment_id, now)),
            now,
            public_url,
            pricing,
        }
    }
}

/// The attempt a charge's answer is: its outcome is the step it calls for.
pub fn attempt_of(charge: &Charge, payment_id: &str, now: UnixMillis) -> AttemptRecord {
    let (outcome, failure_code) = match charge.operation {
        Operation::Approve { .. } => ("approved", None),
        Operation::RequireAuthentication => ("requires_authentication", None),
        Operation::Decline { code } => ("declined", Some(code.as_str().to_owned())),
        other => (other.name(), None),
    };
    AttemptRecord {
        id: new_id(Prefix::PaymentAttempt, now),
        payment_id: payment_id.to_owned(),
        processor: charge.processor.clone(),
        outcome: outcome.to_owned(),
        failure_code,
        detail: None,
        latency_ms: charge.latency_ms,
        created_at: now,
    }
}

/// Applies the transition and records its event; answers the payment's JSON after the change.
pub fn transition(tx: &mut Tx<'_>, step: Transition<'_>) -> Result<String, FlowError> {
    let payment = tx
        .get_payment_for_update(step.scope, step.payment_id)?
        .ok_or_else(|| FlowError::NotFound {
            object: "payment",
            id: step.payment_id.to_owned(),
        })?;
    // A payment held for a call to its acquirer changes only with that call's answer.
    let claimed = payment.processor_claimed_until.is_some() && step.processor.is_none();
    if let Some(allowed) = step.only_from.filter(|_| !claimed) {
        if !allowed.contains(&payment.status) {
            return Err(FlowError::State(vinr_domain::StateError::NotAllowed {
                from: payment.status,
                operation: step.operation.name(),
            }));
        }
    }
    if claimed {
        return Err(FlowError::State(vinr_domain::StateError::NotAllowed {
            from: payment.status,
            operation: step.operation.name(),
        }));
    }
    apply(tx, payment, step)
}

/// Runs `step.operation` on a payment read for update, writes it and its event.
fn apply(tx: &mut Tx<'_>, mut payment: Payment, step: Transition<'_>) -> Result<String, FlowError> {
    let reached = payment.apply(step.operation, step.now)?;
    if let Some(method) = step.payment_method {
        payment.payment_method = Some(method);
    }
    if let Some(processor) = step.processor {
        payment.processor = Some(processor.to_owned());
        payment.processor_claimed_until = None;
    }
    if let Some(reference) = step.processor_reference {
        payment.processor_reference = Some(reference.to_owned());
    }
    tx.update_payment(&payment, step.processor_reference)?;
    if let Some(attempt) = &step.attempt {
        tx.insert_payment_attempt(attempt)?;
    }
    if reached == PaymentStatus::Completed {
        ledger::book(
            tx,
            step.scope,
            Movement::capture(payment.amount_captured, step.pricing),
            &payment.id,
            payment.currency,
            step.now,
        )?;
    }
    let json = render::payment_json(&payment, step.public_url);
    outbox::record(
        tx,
        step.scope,
        &format!("payment.{}", reached.as_str()),
        &payment.id,
        json.clone(),
        step.now,
    )?;
    if reached == PaymentStatus::Completed
        && sandbox_disputed(tx, &payment, step.processor_reference)?
    {
        disputes::open_on(
            tx,
            step.scope,
            &mut payment,
            None,
            DisputeReason::Fraudulent,
            step.pricing,
            step.now,
        )?;
        tx.update_payment(&payment, None)?;
        return Ok(render::payment_json(&payment, step.public_url));
    }
    Ok(json)
}

/// Whether the sandbox's bank disputes this payment as soon as it completes: test mode, paid
/// with `4000 0000 0000 0259` (the reference is the processor's answer at authorization,
/// stored with the payment when the capture comes later).
fn sandbox_disputed(
    tx: &mut Tx<'_>,
    payment: &Payment,
    processor_reference: Option<&str>,
) -> Result<bool, FlowError> {
    if payment.mode.is_live() {
        return Ok(false);
    }
    let reference = match processor_reference {
        Some(reference) => Some(reference.to_owned()),
        None => tx.payment_processor_reference(&payment.id)?,
    };
    Ok(reference.as_deref() == Some(SANDBOX_DISPUTED_REFERENCE))
}

/// Expires unfinished checkouts, or cancels authorizations left uncaptured, that are due by
/// `now`: at most `limit` payments, each with its event. Answers how many it took (an
/// acquirer's unfinished 3-D Secure among them is handed to the connectors worker instead).
pub fn sweep(
    tx: &mut Tx<'_>,
    due: Due,
    on: &DueOn,
    before: UnixMillis,
    now: UnixMillis,
    limit: usize,
    public_url: &str,
) -> Result<usize, FlowError> {
    let operation = match due {
        Due::Expiry => Operation::Expire,
        Due::AutoCancel => Operation::AutoCancel,
    };
    let payments = tx.claim_due_payments(due, on, before, limit)?;
    let swept = payments.len();
    for payment in payments {
        // The acquirer still holds what ends here (an authorization, an unfinished 3-D
        // Secure): its cancel is due at once, sent by the connectors worker (SPEC §15), which
        // runs on real time whatever the account's test clock says.
        if payment.processor_reference.is_some()
            && payment
                .processor
                .as_deref()
                .is_some_and(|name| name != crate::connectors::config::SANDBOX)
        {
            tx.mark_processor_cancel_due(&payment.id, UnixMillis(0))?;
            // An unfinished 3-D Secure may have been finished at the bank by a shopper who
            // never came back: the money may have moved. It is not expired here; the worker
            // asks the acquirer first, records its answer if it decided, and only expires
            // what it cancelled there (`connectors::pay::cancel_expired`).
            if payment.status == PaymentStatus::RequiresAuthentication {
                continue;
            }
        }
        let scope = Scope {
            account_id: payment.account_id.clone(),
            mode: payment.mode,
        };
        let payment_id = payment.id.clone();
        // Expiry and auto-cancel never capture.
        let step = Transition::ending(&scope, &payment_id, operation, None, now, public_url);
        apply(tx, payment, step)?;
    }
    Ok(swept)
}
