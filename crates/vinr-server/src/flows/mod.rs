//! (4) Flows: each is one transaction against [`Tx`](crate::store::Tx) that reads, runs the
//! pure domain rule, writes the new state and its event, and answers. Flows know nothing of
//! HTTP; the boundary turns [`FlowError`] into status codes.

pub mod accounts;
pub mod clock;
pub mod connectors;
pub mod dashboard;
pub mod disputes;
pub mod faults;
pub mod idempotency;
pub mod ledger;
pub mod maintenance;
pub mod payments;
pub mod refunds;
pub mod settlements;
pub mod webhooks;

use vinr_domain::{DisputeError, RefundError, StateError};

use crate::store::StoreError;

#[derive(Debug)]
pub enum FlowError {
    /// No object with this id in the caller's account and mode.
    NotFound {
        object: &'static str,
        id: String,
    },
    /// The state machine refused the operation.
    State(StateError),
    /// The refund rules refused the refund.
    Refund(RefundError),
    /// The dispute rules (or its state machine) refused the operation.
    Dispute(DisputeError),
    /// A request parameter names something that cannot be used (e.g. an unknown account).
    Invalid {
        param: &'static str,
        message: String,
    },
    /// The account has live-mode objects, which deleting it would destroy.
    AccountHasLiveData {
        account_id: String,
        objects: u64,
    },
    Store(StoreError),
}

impl From<StoreError> for FlowError {
    fn from(error: StoreError) -> Self {
        FlowError::Store(error)
    }
}

impl From<RefundError> for FlowError {
    fn from(error: RefundError) -> Self {
        FlowError::Refund(error)
    }
}

impl From<DisputeError> for FlowError {
    fn from(error: DisputeError) -> Self {
        FlowError::Dispute(error)
    }
}

impl From<StateError> for FlowError {
    fn from(error: StateError) -> Self {
        FlowError::State(error)
    }
}
