//! Charging a card, shared by the hosted checkout and the sandbox test helpers: "pay with a
//! card" ([`pay`]) and "answer the 3-D Secure challenge" ([`authenticate`]) exist once, here,
//! with the keyed card fingerprint, the calendar month expiry is judged against, and the
//! mapping of a processor's answer onto the state machine. Each asks the processor outside any
//! transaction (a real one is a network call) and answers a [`Charge`]: what the write
//! transaction then records, through `flows::payments::transition` with
//! `Transition::charged`. Knows nothing of HTTP; never keeps or prints a card number.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use vinr_domain::card::CardNumber;
use vinr_domain::{
    CaptureMethod, Operation, Payment, PaymentMethod, PaymentStatus, StateError, UnixMillis,
};

use crate::processor::{Authorization, CardInput, Prepared, Processor, ProcessorError};

/// A shopper pays only a `pending` payment (one awaiting 3-D Secure already has its card).
pub const PAY_FROM: &[PaymentStatus] = &[PaymentStatus::Pending];
/// A challenge is answered only for a payment awaiting it.
pub const AUTHENTICATE_FROM: &[PaymentStatus] = &[PaymentStatus::RequiresAuthentication];

/// The processor's answer for a payment, as the state-machine step that records it.
#[derive(Debug, Clone)]
pub struct Charge {
    pub operation: Operation,
    /// The statuses the step may start from: checked again inside the write transaction,
    /// where it counts (another submission may have got there first).
    pub only_from: &'static [PaymentStatus],
    /// The card as the payment keeps it, when the shopper paid with one.
    pub payment_method: Option<PaymentMethod>,
    pub processor_reference: String,
    /// The configured name of the processor that answered (`sandbox` for the simulator).
    pub processor: String,
    /// How long the processor took to answer (its attempt's latency).
    pub latency_ms: i64,
}

/// Why a payment was not charged. Nothing was sent to the processor.
#[derive(Debug)]
pub enum ChargeError {
    /// The payment is not in a status the step starts from.
    State(StateError),
    /// The card's fingerprint could not be made.
    Internal(String),
    /// The processor did not decide (SPEC §15): nothing is recorded.
    Processor(ProcessorError),
    /// The acquirer's 3-D Secure is not finished yet: nothing changes.
    StillAuthenticating,
}

/// Refuses before calling the processor: a final payment must not be charged again.
fn refuse_unless(
    payment: &Payment,
    only_from: &[PaymentStatus],
    operation: &'static str,
) -> Result<(), ChargeError> {
    if only_from.contains(&payment.status) {
        Ok(())
    } else {
        Err(ChargeError::State(StateError::NotAllowed {
            from: payment.status,
            operation,
        }))
    }
}

/// Pays a `pending` payment with `card`: asks the processor to authorize it and answers the
/// step its answer calls for, with the card as the payment keeps it.
/// The processor is one that answers at once and changes nothing elsewhere (the sandbox):
/// an acquirer connector goes through `connectors::pay`, which claims the payment first.
pub async fn pay(
    processor: (&str, &dyn Processor),
    fingerprint_secret: &str,
    payment: &Payment,
    card: &CardInput,
) -> Result<Charge, ChargeError> {
    refuse_unless(payment, PAY_FROM, "pay")?;
    // Before the processor: a card whose fingerprint cannot be kept is not charged.
    let method = payment_method(fingerprint_secret, card).map_err(ChargeError::Internal)?;
    let (name, processor) = processor;
    let answer = match processor
        .prepare(payment, card)
        .await
        .map_err(ChargeError::Processor)?
    {
        Prepared::Ready { reference } => processor
            .authorize(payment, &reference)
            .await
            .map_err(ChargeError::Processor)?,
        Prepared::Declined { code } => Authorization::Declined {
            code,
            reference: String::new(),
        },
    };
    Ok(charge_of(&answer, payment, PAY_FROM, Some(method), name))
}

/// The step recording `answer` for `payment`.
pub fn charge_of(
    answer: &Authorization,
    payment: &Payment,
    only_from: &'static [PaymentStatus],
    payment_method: Option<PaymentMethod>,
    processor: &str,
) -> Charge {
    let (operation, reference) = operation_for(answer, payment.capture_method);
    Charge {
        operation,
        only_from,
        payment_method,
        processor_reference: reference.to_owned(),
        processor: processor.to_owned(),
        latency_ms: 0,
    }
}

/// Answers a payment's 3-D Secure challenge (`approved` or not) through the processor and
/// answers the step its answer calls for.
pub async fn authenticate(
    processor: (&str, &dyn Processor),
    payment: &Payment,
    approved: bool,
) -> Result<Charge, ChargeError> {
    refuse_unless(payment, AUTHENTICATE_FROM, "authenticate")?;
    let (name, processor) = processor;
    let reference = payment.processor_reference.as_deref().unwrap_or_default();
    let answer = processor
        .complete_challenge(payment, reference, approved)
        .await
        .map_err(ChargeError::Processor)?;
    if matches!(answer, Authorization::ChallengeRequired { .. }) {
        return Err(ChargeError::StillAuthenticating);
    }
    Ok(charge_of(&answer, payment, AUTHENTICATE_FROM, None, name))
}

/// The (year, month) of `now` in UTC: a card is valid through the end of its expiry month.
pub fn year_month(now: UnixMillis) -> Result<(u16, u8), String> {
    let today = OffsetDateTime::from_unix_timestamp(now.0.div_euclid(1000))
        .map_err(|error| error.to_string())?;
    let year = u16::try_from(today.year()).map_err(|error| error.to_string())?;
    Ok((year, u8::from(today.month())))
}

/// A keyed hash of the card number (HMAC-SHA256, first 128 bits, base64url): the same card
/// gives the same value on this server, and the number cannot be recovered from it.
pub fn card_fingerprint(secret: &str, card: &CardNumber) -> Result<String, String> {
    use base64::Engine;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|error| error.to_string())?;
    mac.update(card.digits().as_bytes());
    let digest = mac.finalize().into_bytes();
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// What the payment keeps of the card: brand, last4, expiry and the fingerprint.
pub fn payment_method(secret: &str, card: &CardInput) -> Result<PaymentMethod, String> {
    Ok(PaymentMethod {
        brand: card.number.brand().into(),
        last4: card.number.last4().into(),
        exp_month: card.expiry.month,
        exp_year: card.expiry.year,
        fingerprint: card_fingerprint(secret, &card.number)?,
    })
}

/// Maps a processor answer onto the state machine; answers the operation and the
/// processor's reference.
pub fn operation_for(answer: &Authorization, capture_method: CaptureMethod) -> (Operation, &str) {
    match answer {
        Authorization::Approved { reference } => (
            Operation::Approve {
                capture: capture_method == CaptureMethod::Automatic,
            },
            reference,
        ),
        Authorization::ChallengeRequired { reference, .. } => {
            (Operation::RequireAuthentication, reference)
        }
        Authorization::Declined { code, reference } => {
            (Operation::Decline { code: *code }, reference)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let card = CardNumber::parse("4242424242424242").expect("a valid card");
        let a = card_fingerprint("secret-a", &card).expect("a fingerprint");
        assert_eq!(
            a,
            card_fingerprint("secret-a", &card).expect("a fingerprint")
        );
        assert_ne!(
            a,
            card_fingerprint("secret-b", &card).expect("a fingerprint")
        );
        assert!(!a.contains("4242"));
    }

    #[test]
    fn year_month_is_utc() {
        // 2026-04-15T10:30:00Z
        assert_eq!(year_month(UnixMillis(1_776_249_000_000)), Ok((2026, 4)));
    }
}
