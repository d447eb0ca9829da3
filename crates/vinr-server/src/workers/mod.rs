//! (7) Background workers. Each runs at its own pace, does a bounded amount of work per step,
//! and stops on the shared shutdown signal. Tests call a worker's `step` by hand.

pub mod expiry;
pub mod maintenance;
pub mod refunds;
