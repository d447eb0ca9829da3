//! The payment and its state machine (SPEC §3). [`next_status`] is the one place that decides
//! which operation is allowed from which status; [`Payment::apply`] runs it and updates the
//! amounts and timestamps that follow. Pure: the caller passes `now` and persists the result.

use std::collections::BTreeMap;

use crate::ids::{new_id, new_token, Prefix};
use crate::limits::CHECKOUT_TOKEN_RANDOM_CHARS;
use crate::time::UnixMillis;
use crate::{Amount, Currency, Mode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    RequiresAuthentication,
    Authorized,
    Completed,
    Failed,
    Cancelled,
    Expired,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Pending,
        PaymentStatus::RequiresAuthentication,
        PaymentStatus::Authorized,
        PaymentStatus::Completed,
        PaymentStatus::Failed,
        PaymentStatus::Cancelled,
        PaymentStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::RequiresAuthentication => "requires_authentication",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Completed => "completed",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::Completed
                | PaymentStatus::Failed
                | PaymentStatus::Cancelled
                | PaymentStatus::Expired
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMethod {
    Automatic,
    Manual,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }

    pub fn parse(value: &str) -> Option<CaptureMethod> {
        match value {
            "automatic" => Some(CaptureMethod::Automatic),
            "manual" => Some(CaptureMethod::Manual),
            _ => None,
        }
    }
}

/// Why a payment failed (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
    ProcessingError,
    AuthenticationFailed,
}

impl FailureCode {
    pub const ALL: [FailureCode; 5] = [
        FailureCode::CardDeclined,
        FailureCode::InsufficientFunds,
        FailureCode::ExpiredCard,
        FailureCode::ProcessingError,
        FailureCode::AuthenticationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::CardDeclined => "card_declined",
            FailureCode::InsufficientFunds => "insufficient_funds",
            FailureCode::ExpiredCard => "expired_card",
            FailureCode::ProcessingError => "processing_error",
            FailureCode::AuthenticationFailed => "authentication_failed",
        }
    }

    pub fn parse(value: &str) -> Option<FailureCode> {
        FailureCode::ALL
            .into_iter()
            .find(|code| code.as_str() == value)
    }

    /// The text a shopper or merchant reads.
    pub fn message(self) -> &'static str {
        match self {
            FailureCode::CardDeclined => "The card was declined.",
            FailureCode::InsufficientFunds => "The card has insufficient funds.",
            FailureCode::ExpiredCard => "The card has expired.",
            FailureCode::ProcessingError => "An error occurred while processing the card.",
            FailureCode::AuthenticationFailed => "3-D Secure authentication failed.",
        }
    }
}

/// What is kept of the card a shopper paid with: never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    /// Keyed hash of the card number: the same card gives the same value on this server.
    pub fingerprint: String,
}

/// Everything that can happen to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The card needs a 3-D Secure challenge.
    RequireAuthentication,
    /// The card (and its challenge, if any) was approved; `capture` is the payment's method.
    Approve {
        capture: bool,
    },
    Decline {
        code: FailureCode,
    },
    Cancel,
    Expire,
    /// `amount` in minor units, or `None` for everything capturable.
    Capture {
        amount: Option<u64>,
    },
    /// An authorization that waited too long for capture.
    AutoCancel,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::RequireAuthentication => "require_authentication",
            Operation::Approve { .. } => "approve",
            Operation::Decline { .. } => "decline",
            Operation::Cancel => "cancel",
            Operation::Expire => "expire",
            Operation::Capture { .. } => "capture",
            Operation::AutoCancel => "auto_cancel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    NotAllowed {
        from: PaymentStatus,
        operation: &'static str,
    },
    /// A capture of more than is capturable.
    AmountTooLarge { capturable: u64 },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::NotAllowed { from, operation } => write!(
                f,
                "This payment's status is `{}`; `{operation}` is not allowed in that status.",
                from.as_str()
            ),
            StateError::AmountTooLarge { capturable } => write!(
                f,
                "The amount to capture is larger than the amount capturable ({capturable})."
            ),
        }
    }
}

/// The transition table of SPEC §3, and nothing else.
pub fn next_status(
    from: PaymentStatus,
    operation: Operation,
    capturable: u64,
) -> Result<PaymentStatus, StateError> {
    use Operation as O;
    use PaymentStatus as S;
    let to = match (from, operation) {
        (S::Pending, O::RequireAuthentication) => S::RequiresAuthentication,
        (S::Pending | S::RequiresAuthentication, O::Approve { capture: true }) => S::Completed,
        (S::Pending | S::RequiresAuthentication, O::Approve { capture: false }) => S::Authorized,
        (S::Pending | S::RequiresAuthentication, O::Decline { .. }) => S::Failed,
        (S::Pending | S::RequiresAuthentication | S::Authorized, O::Cancel) => S::Cancelled,
        (S::Pending | S::RequiresAuthentication, O::Expire) => S::Expired,
        (
            S::Authorized,
            O::Capture {
                amount: Some(amount),
            },
        ) if amount > capturable => return Err(StateError::AmountTooLarge { capturable }),
        (S::Authorized, O::Capture { .. }) => S::Completed,
        (S::Authorized, O::AutoCancel) => S::Cancelled,
        _ => {
            return Err(StateError::NotAllowed {
                from,
                operation: operation.name(),
            })
        }
    };
    Ok(to)
}

/// A payment as the domain sees it. Amounts are minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub account_id: String,
    pub mode: Mode,
    pub status: PaymentStatus,
    pub amount: u64,
    pub currency: Currency,
    pub description: Option<String>,
    pub return_url: String,
    pub checkout_token: String,
    pub metadata: BTreeMap<String, String>,
    pub capture_method: CaptureMethod,
    pub amount_capturable: u64,
    pub amount_captured: u64,
    pub amount_refunded: u64,
    /// Held by disputes that are open or lost (SPEC §11): a won dispute gives its amount back.
    pub amount_disputed: u64,
    pub payment_method: Option<PaymentMethod>,
    pub failure_code: Option<FailureCode>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub authorized_at: Option<UnixMillis>,
    pub captured_at: Option<UnixMillis>,
    pub cancelled_at: Option<UnixMillis>,
    pub failed_at: Option<UnixMillis>,
    pub expired_at: Option<UnixMillis>,
    /// The name of the configured processor that has (or last tried) this payment's card.
    pub processor: Option<String>,
    /// That processor's id for it (e.g. a Stripe `pi_…`).
    pub processor_reference: Option<String>,
    /// Set while a submission holds the payment for a call to its acquirer (SPEC §15,
    /// exactly once): until then no other submission, node or operation touches it; a claim
    /// past this time belongs to a process that died and is repaired.
    pub processor_claimed_until: Option<UnixMillis>,
    /// How many times the payment was claimed for its acquirer: the attempt the idempotency
    /// keys of its calls carry (0 before its first claim).
    pub processor_attempt: u32,
}

/// What a merchant asks for when creating a payment (`POST /v1/payments`), each part already
/// parsed: the handler checks the request's fields, with their error messages, and converts
/// it into this once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub account_id: String,
    pub mode: Mode,
    pub amount: Amount,
    pub currency: Currency,
    pub description: Option<String>,
    pub return_url: String,
    pub metadata: BTreeMap<String, String>,
    pub capture_method: CaptureMethod,
}

impl Payment {
    /// A new `pending` payment with a fresh id and checkout token, expiring `expiry_ms` after
    /// `now` unless paid.
    pub fn new(new: NewPayment, now: UnixMillis, expiry_ms: i64) -> Payment {
        Payment {
            id: new_id(Prefix::Payment, now),
            account_id: new.account_id,
            mode: new.mode,
            status: PaymentStatus::Pending,
            amount: new.amount.minor_units(),
            currency: new.currency,
            description: new.description,
            return_url: new.return_url,
            checkout_token: new_token(now, CHECKOUT_TOKEN_RANDOM_CHARS),
            metadata: new.metadata,
            capture_method: new.capture_method,
            amount_capturable: 0,
            amount_captured: 0,
            amount_refunded: 0,
            amount_disputed: 0,
            payment_method: None,
            failure_code: None,
            created_at: now,
            expires_at: now.plus_ms(expiry_ms),
            authorized_at: None,
            captured_at: None,
            cancelled_at: None,
            failed_at: None,
            expired_at: None,
            processor: None,
            processor_reference: None,
            processor_claimed_until: None,
            processor_attempt: 0,
        }
    }

    /// Runs `operation` through the state machine and updates amounts and timestamps. On error
    /// nothing changes. Returns the status reached, whose event is `payment.<status>`.
    pub fn apply(
        &mut self,
        operation: Operation,
        now: UnixMillis,
    ) -> Result<PaymentStatus, StateError> {
        let to = next_status(self.status, operation, self.amount_capturable)?;
        match operation {
            Operation::RequireAuthentication => {}
            Operation::Approve { capture: true } => {
                self.authorized_at = Some(now);
                self.captured_at = Some(now);
                self.amount_captured = self.amount;
                self.amount_capturable = 0;
            }
            Operation::Approve { capture: false } => {
                self.authorized_at = Some(now);
                self.amount_capturable = self.amount;
            }
            Operation::Decline { code } => {
                self.failure_code = Some(code);
                self.failed_at = Some(now);
            }
            Operation::Cancel | Operation::AutoCancel => {
                self.cancelled_at = Some(now);
                self.amount_capturable = 0;
            }
            Operation::Expire => self.expired_at = Some(now),
            Operation::Capture { amount } => {
                // The rest of the authorization is released (SPEC §3).
                self.amount_captured = amount.unwrap_or(self.amount_capturable);
                self.amount_capturable = 0;
                self.captured_at = Some(now);
            }
        }
        self.status = to;
        debug_assert!(self.amount_captured <= self.amount);
        debug_assert!(self.amount_capturable <= self.amount);
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureCode as F;
    use Operation as O;
    use PaymentStatus as S;

    fn operations() -> Vec<Operation> {
        vec![
            O::RequireAuthentication,
            O::Approve { capture: true },
            O::Approve { capture: false },
            O::Decline {
                code: F::CardDeclined,
            },
            O::Decline {
                code: F::AuthenticationFailed,
            },
            O::Cancel,
            O::Expire,
            O::Capture { amount: None },
            O::Capture { amount: Some(500) },
            O::Capture { amount: Some(1001) },
            O::AutoCancel,
        ]
    }

    /// The expected answer for every (status, operation) pair, written out as a table so that
    /// the forbidden pairs are stated, not implied.
    fn expected(from: S, op: O) -> Option<S> {
        let allowed: &[(S, &str, S)] = &[
            (
                S::Pending,
                "require_authentication",
                S::RequiresAuthentication,
            ),
            (S::Pending, "approve+capture", S::Completed),
            (S::Pending, "approve", S::Authorized),
            (S::Pending, "decline", S::Failed),
            (S::Pending, "cancel", S::Cancelled),
            (S::Pending, "expire", S::Expired),
            (S::RequiresAuthentication, "approve+capture", S::Completed),
            (S::RequiresAuthentication, "approve", S::Authorized),
            (S::RequiresAuthentication, "decline", S::Failed),
            (S::RequiresAuthentication, "cancel", S::Cancelled),
            (S::RequiresAuthentication, "expire", S::Expired),
            (S::Authorized, "cancel", S::Cancelled),
            (S::Authorized, "capture", S::Completed),
            (S::Authorized, "capture<=capturable", S::Completed),
            (S::Authorized, "auto_cancel", S::Cancelled),
        ];
        let key = match op {
            O::Approve { capture: true } => "approve+capture",
            O::Capture {
                amount: Some(amount),
            } if amount <= 1000 => "capture<=capturable",
            O::Capture { amount: Some(_) } => "capture>capturable",
            other => other.name(),
        };
        allowed
            .iter()
            .find(|(status, name, _)| *status == from && *name == key)
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_status_operation_pair() {
        let mut checked = 0;
        for from in S::ALL {
            for op in operations() {
                let got = next_status(from, op, 1000);
                match expected(from, op) {
                    Some(to) => assert_eq!(got, Ok(to), "{from:?} + {op:?}"),
                    None => assert!(
                        got.is_err(),
                        "{from:?} + {op:?} must be refused, got {got:?}"
                    ),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, S::ALL.len() * operations().len());
    }

    #[test]
    fn final_statuses_allow_nothing() {
        for from in S::ALL.into_iter().filter(|s| s.is_final()) {
            for op in operations() {
                assert_eq!(
                    next_status(from, op, 1000),
                    Err(StateError::NotAllowed {
                        from,
                        operation: op.name()
                    })
                );
            }
        }
    }

    #[test]
    fn over_capture_names_the_capturable_amount() {
        assert_eq!(
            next_status(S::Authorized, O::Capture { amount: Some(1001) }, 1000),
            Err(StateError::AmountTooLarge { capturable: 1000 })
        );
    }

    fn payment() -> Payment {
        Payment {
            id: "pay_x".into(),
            account_id: "acct_x".into(),
            mode: Mode::Test,
            status: S::Pending,
            amount: 1000,
            currency: Currency::parse("EUR").expect("EUR"),
            description: None,
            return_url: "https://example.com".into(),
            checkout_token: "t".into(),
            metadata: BTreeMap::new(),
            capture_method: CaptureMethod::Manual,
            amount_capturable: 0,
            amount_captured: 0,
            amount_refunded: 0,
            amount_disputed: 0,
            payment_method: None,
            failure_code: None,
            created_at: UnixMillis(1),
            expires_at: UnixMillis(3_600_001),
            authorized_at: None,
            captured_at: None,
            cancelled_at: None,
            failed_at: None,
            expired_at: None,
            processor: None,
            processor_reference: None,
            processor_claimed_until: None,
            processor_attempt: 0,
        }
    }

    #[test]
    fn partial_capture_releases_the_rest() {
        let mut p = payment();
        assert_eq!(
            p.apply(O::Approve { capture: false }, UnixMillis(5)),
            Ok(S::Authorized)
        );
        assert_eq!(p.amount_capturable, 1000);
        assert_eq!(
            p.apply(O::Capture { amount: Some(600) }, UnixMillis(6)),
            Ok(S::Completed)
        );
        assert_eq!((p.amount_captured, p.amount_capturable), (600, 0));
        assert_eq!(p.captured_at, Some(UnixMillis(6)));
    }

    #[test]
    fn refused_operation_changes_nothing() {
        let mut p = payment();
        let before = p.clone();
        assert!(p.apply(O::Capture { amount: None }, UnixMillis(9)).is_err());
        assert_eq!(p, before);
    }

    #[test]
    fn automatic_capture_captures_everything() {
        let mut p = payment();
        p.capture_method = CaptureMethod::Automatic;
        assert_eq!(
            p.apply(O::Approve { capture: true }, UnixMillis(5)),
            Ok(S::Completed)
        );
        assert_eq!((p.amount_captured, p.amount_capturable), (1000, 0));
    }

    #[test]
    fn decline_keeps_the_reason() {
        let mut p = payment();
        assert_eq!(
            p.apply(
                O::Decline {
                    code: F::InsufficientFunds
                },
                UnixMillis(5)
            ),
            Ok(S::Failed)
        );
        assert_eq!(p.failure_code, Some(F::InsufficientFunds));
        assert_eq!(p.failed_at, Some(UnixMillis(5)));
    }

    #[test]
    fn a_new_payment_is_pending_with_nothing_moved() {
        let now = UnixMillis(1_776_249_000_000);
        let payment = Payment::new(
            NewPayment {
                account_id: "acct_1".into(),
                mode: Mode::Test,
                amount: Amount::parse(1000).expect("an amount"),
                currency: Currency::parse("EUR").expect("a currency"),
                description: Some("Order 7".into()),
                return_url: "https://shop.example/return".into(),
                metadata: BTreeMap::new(),
                capture_method: CaptureMethod::Manual,
            },
            now,
            60_000,
        );
        assert!(crate::ids::looks_like(Prefix::Payment, &payment.id));
        assert_eq!(payment.status, S::Pending);
        assert_eq!(payment.amount, 1000);
        assert_eq!(payment.capture_method, CaptureMethod::Manual);
        assert_eq!(
            (
                payment.amount_capturable,
                payment.amount_captured,
                payment.amount_refunded
            ),
            (0, 0, 0)
        );
        assert_eq!(payment.created_at, now);
        assert_eq!(payment.expires_at, now.plus_ms(60_000));
        assert!(payment.checkout_token.len() > CHECKOUT_TOKEN_RANDOM_CHARS);
        assert_eq!(payment.payment_method, None);
    }
}
