//! Charging a card, shared by the hosted checkout and the sandbox test helper: the keyed card
//! fingerprint, the calendar month expiry is judged against, and the mapping of a processor's
//! answer onto the state machine. Knows nothing of HTTP; never keeps or prints a card number.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use vinr_domain::card::CardNumber;
use vinr_domain::{CaptureMethod, Operation, PaymentMethod, UnixMillis};

use crate::processor::{Authorization, CardInput};

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
        Authorization::ChallengeRequired { reference } => {
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
