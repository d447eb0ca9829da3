//! The `Processor` trait: where card authorization happens. The sandbox simulator decides by
//! test card number (SPEC §4); an acquirer connector (`crate::connectors`, SPEC §15)
//! implements the same trait over the network. A processor is called outside any database
//! transaction, because a real one is a network call.
//!
//! A card payment is two calls, so that the acquirer's reference is recorded before any money
//! can move: [`Processor::prepare`] makes the acquirer's object for the payment with the card
//! (no money moves), and [`Processor::authorize`] asks it to authorize (and, with automatic
//! capture, capture). After a crash between the acquirer's answer and our commit,
//! [`Processor::retrieve`] tells what became of it.
//!
//! Every answer tells a *decline* (the acquirer decided: the payment fails with a
//! [`FailureCode`]) from a [`ProcessorError`] (the acquirer did not decide: 401, 5xx, a
//! timeout, an answer that does not parse), which the router may fail over on.

use std::future::Future;
use std::pin::Pin;

use vinr_domain::card::{sandbox_outcome, CardNumber, Expiry, SandboxOutcome};
use vinr_domain::{FailureCode, Payment, Refund};

use crate::redacted::Redacted;

pub type ProcessorFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A card as the shopper entered it. The number and the CVC are redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct CardInput {
    pub number: CardNumber,
    pub expiry: Expiry,
    /// The security code, when the shopper gave one (the checkout form asks for it).
    pub cvc: Option<Redacted<String>>,
}

/// The processor's answer to an authorization or a 3-D Secure result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Approved {
        reference: String,
    },
    ChallengeRequired {
        reference: String,
        /// Where the acquirer wants the shopper sent to authenticate, when it gives a page.
        redirect_url: Option<String>,
    },
    Declined {
        code: FailureCode,
        reference: String,
    },
}

impl Authorization {
    pub fn reference(&self) -> &str {
        match self {
            Authorization::Approved { reference }
            | Authorization::ChallengeRequired { reference, .. }
            | Authorization::Declined { reference, .. } => reference,
        }
    }
}

/// What [`Processor::prepare`] made of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The acquirer's object for the payment, ready to authorize.
    Ready { reference: String },
    /// The acquirer refused the card itself (a decline: nothing to authorize).
    Declined { code: FailureCode },
}

/// What the acquirer says became of a payment (reconciliation, crash repair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retrieved {
    /// Nothing was authorized, and nothing will be without another call from us.
    NotAuthorized,
    /// Cancelled at the acquirer: nothing was authorized, and nothing ever will be (no cancel
    /// to send).
    Cancelled,
    /// The acquirer decided (or waits for the shopper's 3-D Secure).
    Decided(Authorization),
}

/// A refund's answer from the acquirer: `Ok` when the money went back, `Err(reason)` when
/// refused (e.g. `declined`).
pub type RefundAnswer = Result<(), String>;

/// The acquirer did not decide. Never a decline; never holds a secret or a card number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorError {
    pub kind: ProcessorErrorKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorErrorKind {
    /// No connection, or no answer within the timeout.
    Unreachable,
    /// 401/403: the key is wrong or lacks a permission.
    Unauthorized,
    /// 5xx or 429: the acquirer is failing or shedding load.
    Server,
    /// Another 4xx: the acquirer refused the request itself (not the card).
    Refused,
    /// 409: a call with the same idempotency key is still running at the acquirer (or
    /// conflicts with it); asked again later, it answers.
    Conflict,
    /// An answer that does not parse, is too long, or says something impossible.
    BadAnswer,
}

impl ProcessorErrorKind {
    /// Whether the error says the processor is failing (what its circuit breaker counts):
    /// no answer, a 5xx or 429, a key it refuses, an answer that does not parse. A request
    /// it refused (another 4xx) or a call still running says nothing about its health.
    pub fn processor_failing(self) -> bool {
        match self {
            ProcessorErrorKind::Unreachable
            | ProcessorErrorKind::Unauthorized
            | ProcessorErrorKind::Server
            | ProcessorErrorKind::BadAnswer => true,
            ProcessorErrorKind::Refused | ProcessorErrorKind::Conflict => false,
        }
    }
}

impl ProcessorError {
    pub fn new(kind: ProcessorErrorKind, detail: impl Into<String>) -> ProcessorError {
        ProcessorError {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for ProcessorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

pub trait Processor: Send + Sync + 'static {
    /// Whether calls leave this process (an acquirer): its payments are claimed in the
    /// database before any call and their attempts timed. The sandbox answers at once,
    /// from the card number alone, and changes nothing anywhere.
    fn remote(&self) -> bool {
        false
    }

    /// Makes the acquirer's object for `payment` with `card`; no money moves yet.
    fn prepare<'a>(
        &'a self,
        payment: &'a Payment,
        card: &'a CardInput,
    ) -> ProcessorFuture<'a, Result<Prepared, ProcessorError>>;

    /// Authorizes `payment.amount` on the prepared object (`reference`), capturing at once
    /// when the payment's capture method is automatic.
    fn authorize<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<Authorization, ProcessorError>>;

    /// Finishes a 3-D Secure challenge. The sandbox takes the shopper's answer on our page
    /// (`approved`); an acquirer's own authentication page decides, and it is asked.
    fn complete_challenge<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
        approved: bool,
    ) -> ProcessorFuture<'a, Result<Authorization, ProcessorError>>;

    /// Captures `amount` of an authorized payment (the rest is released).
    fn capture<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
        amount: u64,
    ) -> ProcessorFuture<'a, Result<(), ProcessorError>>;

    /// Cancels a payment's authorization (or its unfinished 3-D Secure).
    fn cancel<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<(), ProcessorError>>;

    /// Refunds `refund.amount` of the payment the processor knows as `payment_reference`.
    fn refund<'a>(
        &'a self,
        payment_reference: Option<&'a str>,
        refund: &'a Refund,
    ) -> ProcessorFuture<'a, Result<RefundAnswer, ProcessorError>>;

    /// What became of the payment the processor knows as `reference`.
    fn retrieve<'a>(
        &'a self,
        payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<Retrieved, ProcessorError>>;
}

/// The built-in simulator: outcomes follow the sandbox test cards, instantly.
#[derive(Debug, Default)]
pub struct SandboxProcessor;

/// Prefix of the reference of a payment whose refunds the sandbox will decline.
pub const SANDBOX_REFUNDS_FAIL_REFERENCE: &str = "sim_refunds_fail";

/// The reference of a payment the sandbox's bank disputes as soon as it completes (SPEC §11).
pub const SANDBOX_DISPUTED_REFERENCE: &str = "sim_disputed";

/// The sandbox's references: what the card decided, carried from `prepare` to `authorize`.
const SANDBOX_APPROVED: &str = "sim_approved";
const SANDBOX_CHALLENGE: &str = "sim_challenge";
const SANDBOX_DECLINED: &str = "sim_declined";

fn ready<'a, T: Send + 'a>(value: T) -> ProcessorFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl SandboxProcessor {
    /// The reference `prepare` answers for a card: its outcome, to be played by `authorize`.
    fn reference_for(card: &CardNumber) -> String {
        match sandbox_outcome(card) {
            SandboxOutcome::Approve => SANDBOX_APPROVED.into(),
            SandboxOutcome::ApproveRefundsFail => SANDBOX_REFUNDS_FAIL_REFERENCE.into(),
            SandboxOutcome::ApproveThenDispute => SANDBOX_DISPUTED_REFERENCE.into(),
            SandboxOutcome::Challenge => SANDBOX_CHALLENGE.into(),
            SandboxOutcome::Decline(code) => format!("{SANDBOX_DECLINED}:{}", code.as_str()),
        }
    }

    fn outcome(reference: &str) -> Authorization {
        if reference == SANDBOX_CHALLENGE {
            return Authorization::ChallengeRequired {
                reference: SANDBOX_CHALLENGE.into(),
                redirect_url: None,
            };
        }
        if let Some(code) = reference.strip_prefix(SANDBOX_DECLINED) {
            let code = code
                .strip_prefix(':')
                .and_then(FailureCode::parse)
                .unwrap_or(FailureCode::CardDeclined);
            return Authorization::Declined {
                code,
                reference: SANDBOX_DECLINED.into(),
            };
        }
        Authorization::Approved {
            reference: reference.into(),
        }
    }
}

impl Processor for SandboxProcessor {
    fn prepare<'a>(
        &'a self,
        _payment: &'a Payment,
        card: &'a CardInput,
    ) -> ProcessorFuture<'a, Result<Prepared, ProcessorError>> {
        ready(Ok(Prepared::Ready {
            reference: SandboxProcessor::reference_for(&card.number),
        }))
    }

    fn authorize<'a>(
        &'a self,
        _payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<Authorization, ProcessorError>> {
        ready(Ok(SandboxProcessor::outcome(reference)))
    }

    fn complete_challenge<'a>(
        &'a self,
        _payment: &'a Payment,
        _reference: &'a str,
        approved: bool,
    ) -> ProcessorFuture<'a, Result<Authorization, ProcessorError>> {
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
        ready(Ok(answer))
    }

    fn capture<'a>(
        &'a self,
        _payment: &'a Payment,
        _reference: &'a str,
        _amount: u64,
    ) -> ProcessorFuture<'a, Result<(), ProcessorError>> {
        ready(Ok(()))
    }

    fn cancel<'a>(
        &'a self,
        _payment: &'a Payment,
        _reference: &'a str,
    ) -> ProcessorFuture<'a, Result<(), ProcessorError>> {
        ready(Ok(()))
    }

    fn refund<'a>(
        &'a self,
        payment_reference: Option<&'a str>,
        _refund: &'a Refund,
    ) -> ProcessorFuture<'a, Result<RefundAnswer, ProcessorError>> {
        let answer = if payment_reference == Some(SANDBOX_REFUNDS_FAIL_REFERENCE) {
            Err("declined".to_owned())
        } else {
            Ok(())
        };
        ready(Ok(answer))
    }

    fn retrieve<'a>(
        &'a self,
        _payment: &'a Payment,
        reference: &'a str,
    ) -> ProcessorFuture<'a, Result<Retrieved, ProcessorError>> {
        ready(Ok(Retrieved::Decided(SandboxProcessor::outcome(reference))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_references_carry_the_outcome() {
        for (card, expected) in [
            ("4242424242424242", "approved"),
            ("4000000000003220", "challenge"),
            ("4000000000009995", "insufficient_funds"),
        ] {
            let number = CardNumber::parse(card).expect("a test card");
            let answer = SandboxProcessor::outcome(&SandboxProcessor::reference_for(&number));
            let got = match answer {
                Authorization::Approved { .. } => "approved".to_owned(),
                Authorization::ChallengeRequired { .. } => "challenge".to_owned(),
                Authorization::Declined { code, reference } => {
                    assert_eq!(reference, "sim_declined");
                    code.as_str().to_owned()
                }
            };
            assert_eq!(got, expected);
        }
    }
}
