//! Disputes (chargebacks, SPEC §11): what may be disputed, and a dispute's state machine
//! (`needs_response` → `under_review` → `won` | `lost`; `needs_response` → `lost` when accepted
//! or when `evidenceDueBy` passes). [`next_status`] is the one place that decides which
//! operation is allowed from which status. Pure; the flow persists the result.

use std::collections::BTreeMap;

use crate::ids::{new_id, Prefix};
use crate::limits::{DISPUTE_EVIDENCE_CHARS_MAX, DISPUTE_EVIDENCE_DUE_MS};
use crate::payment::{Payment, PaymentStatus};
use crate::time::UnixMillis;
use crate::{Currency, Mode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeStatus {
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

impl DisputeStatus {
    pub const ALL: [DisputeStatus; 4] = [
        DisputeStatus::NeedsResponse,
        DisputeStatus::UnderReview,
        DisputeStatus::Won,
        DisputeStatus::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStatus::NeedsResponse => "needs_response",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Won => "won",
            DisputeStatus::Lost => "lost",
        }
    }

    pub fn parse(value: &str) -> Option<DisputeStatus> {
        DisputeStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    pub fn is_final(self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeReason {
    Fraudulent,
    Duplicate,
    ProductNotReceived,
    ProductUnacceptable,
    SubscriptionCanceled,
    General,
}

impl DisputeReason {
    pub const ALL: [DisputeReason; 6] = [
        DisputeReason::Fraudulent,
        DisputeReason::Duplicate,
        DisputeReason::ProductNotReceived,
        DisputeReason::ProductUnacceptable,
        DisputeReason::SubscriptionCanceled,
        DisputeReason::General,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisputeReason::Fraudulent => "fraudulent",
            DisputeReason::Duplicate => "duplicate",
            DisputeReason::ProductNotReceived => "product_not_received",
            DisputeReason::ProductUnacceptable => "product_unacceptable",
            DisputeReason::SubscriptionCanceled => "subscription_canceled",
            DisputeReason::General => "general",
        }
    }

    pub fn parse(value: &str) -> Option<DisputeReason> {
        DisputeReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == value)
    }
}

/// What the merchant sends to contest a dispute; each field free text of at most
/// [`DISPUTE_EVIDENCE_CHARS_MAX`] characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub customer_name: Option<String>,
    pub product_description: Option<String>,
    pub shipping_tracking_number: Option<String>,
    pub uncategorized_text: Option<String>,
}

/// An evidence field longer than allowed, by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceTooLong {
    pub field: &'static str,
}

impl Evidence {
    /// The fields by their wire names, in a fixed order.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("customerName", self.customer_name.as_deref()),
            ("productDescription", self.product_description.as_deref()),
            (
                "shippingTrackingNumber",
                self.shipping_tracking_number.as_deref(),
            ),
            ("uncategorizedText", self.uncategorized_text.as_deref()),
        ]
    }

    pub fn validate(&self) -> Result<(), EvidenceTooLong> {
        for (field, value) in self.fields() {
            if value.is_some_and(|text| text.chars().count() > DISPUTE_EVIDENCE_CHARS_MAX) {
                return Err(EvidenceTooLong { field });
            }
        }
        Ok(())
    }

    /// `update`'s fields replace this evidence's; fields it leaves out stay.
    pub fn merge(&mut self, update: Evidence) {
        let Evidence {
            customer_name,
            product_description,
            shipping_tracking_number,
            uncategorized_text,
        } = update;
        for (slot, value) in [
            (&mut self.customer_name, customer_name),
            (&mut self.product_description, product_description),
            (&mut self.shipping_tracking_number, shipping_tracking_number),
            (&mut self.uncategorized_text, uncategorized_text),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
    }

    /// The sandbox's decision on submitted evidence (SPEC §11): `uncategorizedText` holding
    /// `winning_evidence` wins, `losing_evidence` loses; otherwise it waits for a resolution.
    pub fn sandbox_outcome(&self) -> Option<Outcome> {
        let text = self.uncategorized_text.as_deref()?;
        if text.contains("winning_evidence") {
            Some(Outcome::Won)
        } else if text.contains("losing_evidence") {
            Some(Outcome::Lost)
        } else {
            None
        }
    }
}

/// How a dispute under review ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Won,
    Lost,
}

/// Everything that can happen to a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeOperation {
    /// New evidence or metadata, not submitted.
    Update,
    /// The evidence is sent to the bank.
    Submit,
    /// The merchant accepts the dispute (`POST /v1/disputes/:id/close`).
    Accept,
    /// `evidenceDueBy` passed without a response.
    Expire,
    /// The bank decided.
    Resolve(Outcome),
}

impl DisputeOperation {
    pub fn name(self) -> &'static str {
        match self {
            DisputeOperation::Update => "update",
            DisputeOperation::Submit => "submit",
            DisputeOperation::Accept => "close",
            DisputeOperation::Expire => "expire",
            DisputeOperation::Resolve(_) => "resolve",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeError {
    /// The state machine refuses the operation (422 `dispute_state_invalid`).
    NotAllowed {
        from: DisputeStatus,
        operation: &'static str,
    },
    /// Only a `completed` payment can be disputed.
    PaymentNotCompleted(PaymentStatus),
    /// More than what is neither refunded nor disputed (which may be 0).
    AmountTooLarge { disputable: u64 },
    /// A response (evidence, submit, accept) after `evidenceDueBy`: the dispute is lost
    /// (422 `dispute_state_invalid`; the deadline sweep records the loss).
    DeadlinePassed,
}

impl std::fmt::Display for DisputeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisputeError::NotAllowed { from, operation } => write!(
                f,
                "This dispute's status is `{}`; `{operation}` is not allowed in that status.",
                from.as_str()
            ),
            DisputeError::PaymentNotCompleted(status) => write!(
                f,
                "This payment's status is `{}`; only a `completed` payment can be disputed.",
                status.as_str()
            ),
            DisputeError::AmountTooLarge { disputable: 0 } => write!(
                f,
                "This payment has nothing left to dispute (all of it is refunded or disputed)."
            ),
            DisputeError::DeadlinePassed => write!(
                f,
                "The evidence for this dispute was due by its `evidenceDueBy`, which has passed: \
                 the dispute is lost and takes no more responses."
            ),
            DisputeError::AmountTooLarge { disputable } => write!(
                f,
                "The amount to dispute is larger than what is neither refunded nor disputed \
                 ({disputable})."
            ),
        }
    }
}

/// The transition table of SPEC §11, and nothing else.
pub fn next_status(
    from: DisputeStatus,
    operation: DisputeOperation,
) -> Result<DisputeStatus, DisputeError> {
    use DisputeOperation as O;
    use DisputeStatus as S;
    let to = match (from, operation) {
        (S::NeedsResponse, O::Update) => S::NeedsResponse,
        (S::NeedsResponse, O::Submit) => S::UnderReview,
        (S::NeedsResponse, O::Accept | O::Expire) => S::Lost,
        (S::UnderReview, O::Resolve(Outcome::Won)) => S::Won,
        (S::UnderReview, O::Resolve(Outcome::Lost)) => S::Lost,
        _ => {
            return Err(DisputeError::NotAllowed {
                from,
                operation: operation.name(),
            })
        }
    };
    Ok(to)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub id: String,
    pub account_id: String,
    pub mode: Mode,
    pub payment_id: String,
    pub amount: u64,
    pub currency: Currency,
    pub reason: DisputeReason,
    pub status: DisputeStatus,
    pub evidence: Evidence,
    pub evidence_due_by: UnixMillis,
    /// The dispute fee charged when it opened (kept whatever the outcome).
    pub fee: u64,
    pub metadata: BTreeMap<String, String>,
    pub created_at: UnixMillis,
    pub closed_at: Option<UnixMillis>,
}

/// What remains disputable: captured minus refunded minus already disputed.
pub fn disputable(payment: &Payment) -> u64 {
    payment
        .amount_captured
        .saturating_sub(payment.amount_refunded)
        .saturating_sub(payment.amount_disputed)
}

impl Dispute {
    /// Opens a dispute of `requested` (default: all that is disputable) on `payment`, which
    /// must be `completed`, and reserves the amount on it (`amount_disputed`). On error
    /// nothing changes.
    pub fn open(
        payment: &mut Payment,
        requested: Option<u64>,
        reason: DisputeReason,
        fee: u64,
        now: UnixMillis,
    ) -> Result<Dispute, DisputeError> {
        if payment.status != PaymentStatus::Completed {
            return Err(DisputeError::PaymentNotCompleted(payment.status));
        }
        let remaining = disputable(payment);
        let amount = requested.unwrap_or(remaining);
        if amount == 0 || amount > remaining {
            return Err(DisputeError::AmountTooLarge {
                disputable: remaining,
            });
        }
        payment.amount_disputed += amount;
        Ok(Dispute {
            id: new_id(Prefix::Dispute, now),
            account_id: payment.account_id.clone(),
            mode: payment.mode,
            payment_id: payment.id.clone(),
            amount,
            currency: payment.currency,
            reason,
            status: DisputeStatus::NeedsResponse,
            evidence: Evidence::default(),
            evidence_due_by: now.plus_ms(DISPUTE_EVIDENCE_DUE_MS),
            fee,
            metadata: BTreeMap::new(),
            created_at: now,
            closed_at: None,
        })
    }

    /// Runs `operation` through the state machine; a dispute that is won gives its amount
    /// back to `payment` (whose `amount_disputed` counts open and lost disputes). On error
    /// nothing changes. Answers the status reached.
    pub fn apply(
        &mut self,
        operation: DisputeOperation,
        payment: &mut Payment,
        now: UnixMillis,
    ) -> Result<DisputeStatus, DisputeError> {
        let responds = matches!(
            operation,
            DisputeOperation::Update | DisputeOperation::Submit | DisputeOperation::Accept
        );
        if responds && self.status == DisputeStatus::NeedsResponse && now >= self.evidence_due_by {
            return Err(DisputeError::DeadlinePassed);
        }
        let to = next_status(self.status, operation)?;
        if to == DisputeStatus::Won {
            payment.amount_disputed = payment.amount_disputed.saturating_sub(self.amount);
        }
        if to.is_final() {
            self.closed_at = Some(now);
        }
        self.status = to;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::{CaptureMethod, Operation};
    use DisputeOperation as O;
    use DisputeStatus as S;

    fn operations() -> Vec<DisputeOperation> {
        vec![
            O::Update,
            O::Submit,
            O::Accept,
            O::Expire,
            O::Resolve(Outcome::Won),
            O::Resolve(Outcome::Lost),
        ]
    }

    /// Every allowed pair written out, so the forbidden ones are stated, not implied.
    fn expected(from: S, op: O) -> Option<S> {
        let allowed: &[(S, O, S)] = &[
            (S::NeedsResponse, O::Update, S::NeedsResponse),
            (S::NeedsResponse, O::Submit, S::UnderReview),
            (S::NeedsResponse, O::Accept, S::Lost),
            (S::NeedsResponse, O::Expire, S::Lost),
            (S::UnderReview, O::Resolve(Outcome::Won), S::Won),
            (S::UnderReview, O::Resolve(Outcome::Lost), S::Lost),
        ];
        allowed
            .iter()
            .find(|(status, operation, _)| *status == from && *operation == op)
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_status_operation_pair() {
        let mut checked = 0;
        for from in S::ALL {
            for op in operations() {
                let got = next_status(from, op);
                match expected(from, op) {
                    Some(to) => assert_eq!(got, Ok(to), "{from:?} + {op:?}"),
                    None => assert_eq!(
                        got,
                        Err(DisputeError::NotAllowed {
                            from,
                            operation: op.name()
                        }),
                        "{from:?} + {op:?} must be refused"
                    ),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, S::ALL.len() * operations().len());
        for from in S::ALL.into_iter().filter(|s| s.is_final()) {
            assert!(operations()
                .into_iter()
                .all(|op| next_status(from, op).is_err()));
        }
    }

    fn completed(amount: u64) -> Payment {
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
            capture_method: CaptureMethod::Automatic,
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
            .apply(Operation::Approve { capture: true }, UnixMillis(3))
            .expect("approve");
        payment
    }

    #[test]
    fn no_response_is_taken_after_the_deadline() {
        let mut payment = completed(1000);
        let mut dispute = Dispute::open(
            &mut payment,
            None,
            DisputeReason::General,
            1500,
            UnixMillis(10),
        )
        .expect("a dispute");
        let due = dispute.evidence_due_by;
        for operation in [O::Update, O::Submit, O::Accept] {
            let mut late = dispute.clone();
            assert_eq!(
                late.apply(operation, &mut payment, due),
                Err(DisputeError::DeadlinePassed),
                "{operation:?}"
            );
            assert_eq!(late, dispute, "nothing changed");
        }
        // The sweep's expiry still applies, and a second before the deadline is in time.
        let mut in_time = dispute.clone();
        assert_eq!(
            in_time.apply(O::Submit, &mut payment, due.plus_ms(-1)),
            Ok(S::UnderReview)
        );
        assert_eq!(dispute.apply(O::Expire, &mut payment, due), Ok(S::Lost));
    }

    #[test]
    fn disputes_take_only_what_is_neither_refunded_nor_disputed() {
        let mut payment = completed(1000);
        payment.amount_refunded = 300;
        let general = DisputeReason::General;
        let first = Dispute::open(&mut payment, Some(400), general, 1500, UnixMillis(10))
            .expect("a dispute");
        assert_eq!((first.amount, payment.amount_disputed), (400, 400));
        assert_eq!(first.evidence_due_by, UnixMillis(10 + 7 * 86_400_000));
        assert_eq!(
            Dispute::open(&mut payment, Some(301), general, 1500, UnixMillis(11)),
            Err(DisputeError::AmountTooLarge { disputable: 300 })
        );
        assert_eq!(
            payment.amount_disputed, 400,
            "a refused dispute takes nothing"
        );
        let rest =
            Dispute::open(&mut payment, None, general, 1500, UnixMillis(12)).expect("the rest");
        assert_eq!(rest.amount, 300);
        assert_eq!(
            Dispute::open(&mut payment, None, general, 1500, UnixMillis(13)),
            Err(DisputeError::AmountTooLarge { disputable: 0 })
        );
        assert_eq!(crate::refund::refundable(&payment), 0);
    }

    #[test]
    fn only_completed_payments_can_be_disputed() {
        let mut payment = completed(1000);
        payment.status = PaymentStatus::Authorized;
        assert_eq!(
            Dispute::open(&mut payment, None, DisputeReason::General, 0, UnixMillis(5)),
            Err(DisputeError::PaymentNotCompleted(PaymentStatus::Authorized))
        );
    }

    #[test]
    fn a_won_dispute_gives_its_amount_back_and_a_lost_one_keeps_it() {
        let mut payment = completed(1000);
        let mut won = Dispute::open(
            &mut payment,
            Some(600),
            DisputeReason::Fraudulent,
            15,
            UnixMillis(5),
        )
        .expect("a dispute");
        let mut lost = Dispute::open(
            &mut payment,
            None,
            DisputeReason::Duplicate,
            15,
            UnixMillis(5),
        )
        .expect("another");
        assert_eq!(
            won.apply(O::Submit, &mut payment, UnixMillis(6)),
            Ok(S::UnderReview)
        );
        assert_eq!(won.closed_at, None);
        assert_eq!(
            won.apply(O::Resolve(Outcome::Won), &mut payment, UnixMillis(7)),
            Ok(S::Won)
        );
        assert_eq!(
            (payment.amount_disputed, won.closed_at),
            (400, Some(UnixMillis(7)))
        );
        assert_eq!(
            lost.apply(O::Expire, &mut payment, UnixMillis(8)),
            Ok(S::Lost)
        );
        assert_eq!(payment.amount_disputed, 400);
        let before = (won.clone(), payment.clone());
        assert!(won.apply(O::Accept, &mut payment, UnixMillis(9)).is_err());
        assert_eq!(
            (won, payment),
            before,
            "a refused operation changes nothing"
        );
    }

    #[test]
    fn evidence_merges_is_bounded_and_decides_sandbox_outcomes() {
        let mut evidence = Evidence {
            customer_name: Some("Ada".into()),
            ..Evidence::default()
        };
        evidence.merge(Evidence {
            uncategorized_text: Some("see winning_evidence".into()),
            ..Evidence::default()
        });
        assert_eq!(evidence.customer_name.as_deref(), Some("Ada"));
        assert_eq!(evidence.sandbox_outcome(), Some(Outcome::Won));
        evidence.uncategorized_text = Some("losing_evidence".into());
        assert_eq!(evidence.sandbox_outcome(), Some(Outcome::Lost));
        evidence.uncategorized_text = Some("a receipt".into());
        assert_eq!(evidence.sandbox_outcome(), None);
        assert_eq!(evidence.validate(), Ok(()));
        evidence.product_description = Some("é".repeat(DISPUTE_EVIDENCE_CHARS_MAX + 1));
        assert_eq!(
            evidence.validate(),
            Err(EvidenceTooLong {
                field: "productDescription"
            })
        );
        for reason in DisputeReason::ALL {
            assert_eq!(DisputeReason::parse(reason.as_str()), Some(reason));
        }
        for status in S::ALL {
            assert_eq!(S::parse(status.as_str()), Some(status));
        }
    }
}
