//! The `Processor` trait: where card authorization happens. The sandbox simulator decides by
//! test card number (SPEC §4); a real acquirer connector implements the same trait. A
//! processor is called outside any database transaction, because a real one is a network call.

use std::future::Future;
use std::pin::Pin;

use vinr_domain::card::{sandbox_outcome, CardNumber, Expiry, SandboxOutcome};
use vinr_domain::{FailureCode, Payment, Refund};

pub type ProcessorFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A card as the shopper entered it. The number is redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct CardInput {
    pub number: CardNumber,
    pub expiry: Expiry,
}

/// The processor's answer to an authorization or a 3-D Secure result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Approved {
        reference: String,
    },
    ChallengeRequired {
        reference: String,
    },
    Declined {
        code: FailureCode,
        reference: String,
    },
}

pub trait Processor: Send + Sync + 'static {
    /// Authorizes `payment.amount` on `card`.
    fn authorize<'a>(
        &'a self,
        payment: &'a Payment,
        card: &'a CardInput,
    ) -> ProcessorFuture<'a, Authorization>;

    /// Refunds `refund.amount` of the payment the processor knows as `payment_reference`:
    /// `Ok` when the money went back, `Err(reason)` when refused (e.g. `declined`).
    fn refund<'a>(
        &'a self,
        payment_reference: Option<&'a str>,
        refund: &'a Refund,
    ) -> ProcessorFuture<'a, Result<(), String>>;

    /// Finishes a 3-D Secure challenge with the shopper's answer.
    fn complete_challenge<'a>(
        &'a self,
        payment: &'a Payment,
        approved: bool,
    ) -> ProcessorFuture<'a, Authorization>;
}

/// The built-in simulator: outcomes follow the sandbox test cards, instantly.
#[derive(Debug, Default)]
pub struct SandboxProcessor;

/// Prefix of the reference of a payment whose refunds the sandbox will decline.
pub const SANDBOX_REFUNDS_FAIL_REFERENCE: &str = "sim_refunds_fail";

/// The reference of a payment the sandbox's bank disputes as soon as it completes (SPEC §11).
pub const SANDBOX_DISPUTED_REFERENCE: &str = "sim_disputed";

impl Processor for SandboxProcessor {
    fn authorize<'a>(
        &'a self,
        _payment: &'a Payment,
        card: &'a CardInput,
    ) -> ProcessorFuture<'a, Authorization> {
        let answer = match sandbox_outcome(&card.number) {
            SandboxOutcome::Approve => Authorization::Approved {
                reference: "sim_approved".into(),
            },
            SandboxOutcome::ApproveRefundsFail => Authorization::Approved {
                reference: SANDBOX_REFUNDS_FAIL_REFERENCE.into(),
            },
            SandboxOutcome::ApproveThenDispute => Authorization::Approved {
                reference: SANDBOX_DISPUTED_REFERENCE.into(),
            },
            SandboxOutcome::Challenge => Authorization::ChallengeRequired {
                reference: "sim_challenge".into(),
            },
            SandboxOutcome::Decline(code) => Authorization::Declined {
                code,
                reference: "sim_declined".into(),
            },
        };
        Box::pin(std::future::ready(answer))
    }

    fn refund<'a>(
        &'a self,
        payment_reference: Option<&'a str>,
        _refund: &'a Refund,
    ) -> ProcessorFuture<'a, Result<(), String>> {
        let answer = if payment_reference == Some(SANDBOX_REFUNDS_FAIL_REFERENCE) {
            Err("declined".to_owned())
        } else {
            Ok(())
        };
        Box::pin(std::future::ready(answer))
    }

    fn complete_challenge<'a>(
        &'a self,
        _payment: &'a Payment,
        approved: bool,
    ) -> ProcessorFuture<'a, Authorization> {
        let answer = if approved {
            Authorization::Approved {
                reference: "sim_challenge_approved".into(),
            }
        } else {
            Authorization::Declined {
                code: FailureCode::AuthenticationFailed,
                reference: "sim_challenge_failed".into(),
            }
        };
        Box::pin(std::future::ready(answer))
    }
}
