//! Property test over random sequences of create → pay → capture → refunds (some of which
//! fail) and disputes (some won): every ledger movement sums to zero, `amount_refunded` equals
//! the sum of refunds that have not failed, `amount_disputed` the sum of disputes not won,
//! refunds and disputes together never pass the captured amount, and the merchant's balance
//! equals captured − refunds − disputes − fees.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vinr_domain::dispute::{Dispute, DisputeOperation, DisputeReason, DisputeStatus, Outcome};
use vinr_domain::ledger::{self, Entry, Movement, Pricing};
use vinr_domain::refund::{finish, reserve};
use vinr_domain::{
    CaptureMethod, Currency, Mode, Operation, Payment, PaymentStatus, Refund, RefundStatus,
    UnixMillis,
};

#[derive(Debug, Clone)]
enum Step {
    /// Ask for a refund of this much (`None`: everything that remains).
    Refund(Option<u64>),
    /// The processor answers the oldest pending refund: `true` succeeded, `false` failed.
    Settle(bool),
    /// The shopper's bank disputes this much (`None`: everything that is disputable).
    Dispute(Option<u64>),
    /// The oldest open dispute ends: `true` won (after review), `false` lost (accepted).
    Decide(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::option::of(1u64..2_000).prop_map(Step::Refund),
        any::<bool>().prop_map(Step::Settle),
        proptest::option::of(1u64..2_000).prop_map(Step::Dispute),
        any::<bool>().prop_map(Step::Decide),
    ]
}

fn new_payment(amount: u64, currency: &str) -> Payment {
    Payment {
        id: "pay_p".into(),
        account_id: "acct_p".into(),
        mode: Mode::Test,
        status: PaymentStatus::Pending,
        amount,
        currency: Currency::parse(currency).expect("a currency"),
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
        created_at: UnixMillis(0),
        expires_at: UnixMillis(1),
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

fn sums_to_zero(movement: &[Entry]) -> bool {
    movement.iter().map(|entry| entry.amount).sum::<i64>() == 0
}

proptest! {
    #[test]
    fn ledger_and_refunds_always_add_up(
        amount in 1u64..100_000,
        capture_share in 1u64..=100,
        currency in prop_oneof![Just("JPY"), Just("EUR"), Just("KWD")],
        percent_bps in 0u32..500,
        fixed_minor in 0u64..100,
        refund_fixed_minor in prop_oneof![Just(0u64), 1u64..50],
        dispute_fee_minor in prop_oneof![Just(0u64), 1u64..2_000],
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let pricing = Pricing { percent_bps, fixed_minor, refund_fixed_minor, dispute_fee_minor };
        let mut payment = new_payment(amount, currency);
        payment.apply(Operation::Approve { capture: false }, UnixMillis(1)).expect("authorize");
        let captured = (amount * capture_share / 100).max(1);
        payment.apply(Operation::Capture { amount: Some(captured) }, UnixMillis(2)).expect("capture");

        let capture = Movement::capture(captured, pricing);
        let fee = pricing.card_fee(captured);
        prop_assert!(fee <= captured);
        prop_assert_eq!(capture.fee, i64::try_from(fee).expect("small"));
        prop_assert!(sums_to_zero(&capture.entries));
        // What balance transactions show must be what the ledger says.
        let mut shown_net = capture.net;
        let mut entries = capture.entries;
        let mut refund_fees = 0i64;

        let mut refunds: Vec<Refund> = Vec::new();
        let mut disputes: Vec<Dispute> = Vec::new();
        for step in steps {
            match step {
                Step::Dispute(requested) => {
                    let before = payment.amount_disputed;
                    let opened = Dispute::open(
                        &mut payment,
                        requested,
                        DisputeReason::General,
                        pricing.dispute_fee_minor,
                        UnixMillis(3),
                    );
                    match opened {
                        Ok(dispute) => {
                            let movement = Movement::dispute(dispute.amount, dispute.fee);
                            prop_assert!(sums_to_zero(&movement.entries));
                            prop_assert_eq!(movement.balance_change(), movement.net);
                            shown_net += movement.net;
                            entries.extend(movement.entries);
                            disputes.push(dispute);
                        }
                        Err(_) => prop_assert_eq!(payment.amount_disputed, before),
                    }
                }
                Step::Decide(won) => {
                    if let Some(dispute) = disputes.iter_mut().find(|d| !d.status.is_final()) {
                        if won {
                            dispute.apply(DisputeOperation::Submit, &mut payment, UnixMillis(4))
                                .expect("submit");
                            let reached = dispute
                                .apply(DisputeOperation::Resolve(Outcome::Won), &mut payment, UnixMillis(5))
                                .expect("won");
                            prop_assert_eq!(reached, DisputeStatus::Won);
                            let movement = Movement::dispute_reversal(dispute.amount);
                            prop_assert!(sums_to_zero(&movement.entries));
                            shown_net += movement.net;
                            entries.extend(movement.entries);
                        } else {
                            dispute.apply(DisputeOperation::Accept, &mut payment, UnixMillis(4))
                                .expect("accept");
                        }
                    }
                }
                Step::Refund(requested) => {
                    let before = payment.amount_refunded;
                    match reserve(&mut payment, requested) {
                        Ok(refunded) => {
                            let movement = Movement::refund(refunded);
                            prop_assert!(sums_to_zero(&movement.entries));
                            prop_assert_eq!(movement.balance_change(), movement.net);
                            shown_net += movement.net;
                            entries.extend(movement.entries);
                            if let Some(charged) = Movement::fee(pricing.refund_fixed_minor) {
                                prop_assert!(sums_to_zero(&charged.entries));
                                refund_fees += charged.fee;
                                shown_net += charged.net;
                                entries.extend(charged.entries);
                            }
                            refunds.push(Refund {
                                id: format!("re_{}", refunds.len()),
                                account_id: "acct_p".into(),
                                mode: Mode::Test,
                                payment_id: "pay_p".into(),
                                amount: refunded,
                                currency: payment.currency,
                                status: RefundStatus::Pending,
                                reason: None,
                                metadata: BTreeMap::new(),
                                failure_reason: None,
                                created_at: UnixMillis(3),
                            });
                        }
                        Err(_) => prop_assert_eq!(payment.amount_refunded, before),
                    }
                }
                Step::Settle(succeeded) => {
                    if let Some(refund) = refunds.iter_mut().find(|r| r.status == RefundStatus::Pending) {
                        let failure = (!succeeded).then(|| "declined".to_owned());
                        let reached = finish(refund, &mut payment, failure).expect("pending");
                        if reached == RefundStatus::Failed {
                            let movement = Movement::refund_reversal(refund.amount);
                            prop_assert!(sums_to_zero(&movement.entries));
                            shown_net += movement.net;
                            entries.extend(movement.entries);
                        }
                    }
                }
            }
            let not_failed: u64 = refunds
                .iter()
                .filter(|r| r.status != RefundStatus::Failed)
                .map(|r| r.amount)
                .sum();
            prop_assert_eq!(payment.amount_refunded, not_failed);
            let not_won: u64 = disputes
                .iter()
                .filter(|d| d.status != DisputeStatus::Won)
                .map(|d| d.amount)
                .sum();
            let dispute_fees: u64 = disputes.iter().map(|d| d.fee).sum();
            prop_assert_eq!(payment.amount_disputed, not_won);
            prop_assert!(payment.amount_refunded + payment.amount_disputed <= payment.amount_captured);
            let expected = i64::try_from(captured).expect("small")
                - i64::try_from(not_failed).expect("small")
                - i64::try_from(not_won).expect("small")
                - i64::try_from(fee).expect("small")
                - refund_fees
                - i64::try_from(dispute_fees).expect("small");
            prop_assert_eq!(ledger::merchant_balance(&entries), expected);
            prop_assert_eq!(shown_net, expected);
            prop_assert!(sums_to_zero(&entries));
        }
    }
}
