//! The pure core of VINR: money and currencies, ids, the payment state machine, test cards and
//! every limit. Nothing here does I/O, knows about SQL or HTTP, or reads a clock: time and
//! randomness are passed in, so every rule can be tested as a plain function.

pub mod card;
pub mod dispute;
pub mod fault;
pub mod ids;
pub mod ledger;
pub mod limits;
pub mod metadata;
pub mod money;
pub mod payment;
pub mod refund;
pub mod settlement;
pub mod text;
pub mod time;
pub mod webhook;

pub use dispute::{Dispute, DisputeError, DisputeReason, DisputeStatus};
pub use money::{Amount, AmountError, Currency};
pub use payment::{
    CaptureMethod, FailureCode, NewPayment, Operation, Payment, PaymentMethod, PaymentStatus,
    StateError,
};
pub use refund::{Refund, RefundError, RefundReason, RefundStatus};
pub use time::UnixMillis;

/// The two worlds an API key and every object live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    pub fn parse(value: &str) -> Option<Mode> {
        match value {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }

    pub fn is_live(self) -> bool {
        self == Mode::Live
    }
}
