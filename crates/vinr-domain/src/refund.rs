//! Refunds (SPEC §5): what may be refunded, and a refund's own small state machine
//! (`pending` → `succeeded` | `failed`). Pure; the flow persists the result.

use std::collections::BTreeMap;

use crate::ids::{new_id, Prefix};
use crate::payment::{Payment, PaymentStatus};
use crate::time::UnixMillis;
use crate::{Currency, Mode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<RefundStatus> {
        [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }

    pub fn parse(value: &str) -> Option<RefundReason> {
        [
            RefundReason::Duplicate,
            RefundReason::Fraudulent,
            RefundReason::RequestedByCustomer,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub account_id: String,
    pub mode: Mode,
    pub payment_id: String,
    pub amount: u64,
    pub currency: Currency,
    pub status: RefundStatus,
    pub reason: Option<RefundReason>,
    pub metadata: BTreeMap<String, String>,
    /// Why the processor refused it (`declined`), once `failed`.
    pub failure_reason: Option<String>,
    pub created_at: UnixMillis,
}

impl Refund {
    /// A new `pending` refund of `amount` (already [`reserve`]d) on `payment`.
    pub fn new(
        payment: &Payment,
        amount: u64,
        reason: Option<RefundReason>,
        metadata: BTreeMap<String, String>,
        now: UnixMillis,
    ) -> Refund {
        Refund {
            id: new_id(Prefix::Refund, now),
            account_id: payment.account_id.clone(),
            mode: payment.mode,
            payment_id: payment.id.clone(),
            amount,
            currency: payment.currency,
            status: RefundStatus::Pending,
            reason,
            metadata,
            failure_reason: None,
            created_at: now,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundError {
    /// Only a `completed` payment can be refunded.
    PaymentNotCompleted(PaymentStatus),
    /// More than what remains refundable (which may be 0).
    AmountTooLarge { refundable: u64 },
    /// The refund is already final.
    AlreadyFinal(RefundStatus),
}

impl std::fmt::Display for RefundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefundError::PaymentNotCompleted(status) => write!(
                f,
                "This payment's status is `{}`; only a `completed` payment can be refunded.",
                status.as_str()
            ),
            RefundError::AmountTooLarge { refundable: 0 } => {
                write!(f, "This payment has nothing left to refund.")
            }
            RefundError::AmountTooLarge { refundable } => write!(
                f,
                "The amount to refund is larger than what remains refundable ({refundable})."
            ),
            RefundError::AlreadyFinal(status) => {
                write!(f, "This refund is already `{}`.", status.as_str())
            }
        }
    }
}

/// What remains refundable: captured minus every refund that has not failed, minus what
/// disputes hold (SPEC §11: a refund never takes disputed money).
pub fn refundable(payment: &Payment) -> u64 {
    crate::dispute::disputable(payment)
}

/// Checks a refund of `requested` (or of everything that remains) and reserves it on the
/// payment: answers the amount. On error nothing changes.
pub fn reserve(payment: &mut Payment, requested: Option<u64>) -> Result<u64, RefundError> {
    if payment.status != PaymentStatus::Completed {
        return Err(RefundError::PaymentNotCompleted(payment.status));
    }
    let remaining = refundable(payment);
    let amount = requested.unwrap_or(remaining);
    if amount == 0 || amount > remaining {
        return Err(RefundError::AmountTooLarge {
            refundable: remaining,
        });
    }
    payment.amount_refunded += amount;
    Ok(amount)
}

/// Finishes a pending refund with the processor's answer. A failed refund gives its amount
/// back to the payment's refundable amount.
pub fn finish(
    refund: &mut Refund,
    payment: &mut Payment,
    failure_reason: Option<String>,
) -> Result<RefundStatus, RefundError> {
    if refund.status != RefundStatus::Pending {
        return Err(RefundError::AlreadyFinal(refund.status));
    }
    refund.status = match failure_reason {
        None => RefundStatus::Succeeded,
        Some(reason) => {
            payment.amount_refunded = payment.amount_refunded.saturating_sub(refund.amount);
            refund.failure_reason = Some(reason);
            RefundStatus::Failed
        }
    };
    Ok(refund.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::{CaptureMethod, Operation};

    fn completed(amount: u64, captured: Option<u64>) -> Payment {
        let mut payment = Payment {
            id: "pay_x".into(),
            account_id: "acct_x".into(),
            mode: Mode::Test,
            status: PaymentStatus::Pending,
            amount,
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
            expires_at: UnixMillis(2),
            authorized_at: None,
            captured_at: None,
            cancelled_at: None,
            failed_at: None,
            expired_at: None,
            processor: None,
            processor_reference: None,
            processor_claimed_until: None,
            processor_attempt: 0,
        };
        payment
            .apply(Operation::Approve { capture: false }, UnixMillis(3))
            .expect("authorize");
        payment
            .apply(Operation::Capture { amount: captured }, UnixMillis(4))
            .expect("capture");
        payment
    }

    fn refund_of(amount: u64) -> Refund {
        Refund {
            id: "re_x".into(),
            account_id: "acct_x".into(),
            mode: Mode::Test,
            payment_id: "pay_x".into(),
            amount,
            currency: Currency::parse("EUR").expect("EUR"),
            status: RefundStatus::Pending,
            reason: None,
            metadata: BTreeMap::new(),
            failure_reason: None,
            created_at: UnixMillis(5),
        }
    }

    #[test]
    fn refunds_are_bounded_by_the_captured_amount() {
        let mut payment = completed(1000, Some(600));
        assert_eq!(reserve(&mut payment, Some(400)), Ok(400));
        assert_eq!(
            reserve(&mut payment, Some(201)),
            Err(RefundError::AmountTooLarge { refundable: 200 })
        );
        assert_eq!(
            payment.amount_refunded, 400,
            "a refused refund reserves nothing"
        );
        assert_eq!(
            reserve(&mut payment, None),
            Ok(200),
            "default: all that remains"
        );
        assert_eq!(
            reserve(&mut payment, None),
            Err(RefundError::AmountTooLarge { refundable: 0 })
        );
    }

    #[test]
    fn only_completed_payments_are_refundable() {
        let mut payment = completed(1000, None);
        payment.status = PaymentStatus::Authorized;
        assert_eq!(
            reserve(&mut payment, Some(1)),
            Err(RefundError::PaymentNotCompleted(PaymentStatus::Authorized))
        );
    }

    #[test]
    fn a_failed_refund_frees_its_amount_and_final_refunds_stay_final() {
        let mut payment = completed(1000, None);
        let mut refund = refund_of(reserve(&mut payment, Some(700)).expect("reserve"));
        assert_eq!(
            finish(&mut refund, &mut payment, Some("declined".into())),
            Ok(RefundStatus::Failed)
        );
        assert_eq!(payment.amount_refunded, 0);
        assert_eq!(refund.failure_reason.as_deref(), Some("declined"));
        assert_eq!(
            finish(&mut refund, &mut payment, None),
            Err(RefundError::AlreadyFinal(RefundStatus::Failed))
        );
        let mut next = refund_of(reserve(&mut payment, None).expect("freed again"));
        assert_eq!(next.amount, 1000);
        assert_eq!(
            finish(&mut next, &mut payment, None),
            Ok(RefundStatus::Succeeded)
        );
        assert_eq!(payment.amount_refunded, 1000);
    }
}
