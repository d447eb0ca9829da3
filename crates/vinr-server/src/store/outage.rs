//! Whether the database was unavailable a moment ago, as this process saw it: the backends'
//! error classification reports every outage-class error here ([`StoreError::outage`]), and
//! `/readyz` reports not ready until [`READINESS_OUTAGE_HOLD_MS`] have passed without one.
//! Its own probe is not enough: on a full disk SQLite still reads, and a pool may still hold
//! a healthy connection while new ones are refused.
//!
//! One record per process, not per [`Store`](super::Store): a server process serves one
//! database, and the record must be reachable from the classification functions, which hold
//! no store.
//!
//! [`StoreError::outage`]: super::StoreError::outage

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vinr_domain::limits::READINESS_OUTAGE_HOLD_MS;

/// Milliseconds from [`epoch`] to the last outage-class error, plus one (0: none yet).
static LAST_SEEN_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Records that the database refused or did not answer just now.
pub(crate) fn seen() {
    epoch();
    metrics::counter!("vinr_database_unavailable_total").increment(1);
    LAST_SEEN_MS.store(since_epoch_ms().saturating_add(1), Ordering::Relaxed);
}

/// How long ago the database last refused or did not answer, if ever.
pub fn last_seen_ago() -> Option<Duration> {
    match LAST_SEEN_MS.load(Ordering::Relaxed) {
        0 => None,
        stamp => Some(Duration::from_millis(
            since_epoch_ms().saturating_sub(stamp - 1),
        )),
    }
}

/// Whether the database refused or did not answer within the readiness hold.
pub fn recent() -> bool {
    last_seen_ago().is_some_and(|ago| ago < Duration::from_millis(READINESS_OUTAGE_HOLD_MS))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_outage_is_recent_right_after_it_is_seen() {
        super::seen();
        let ago = super::last_seen_ago().expect("an outage was seen");
        assert!(ago.as_millis() < 1000, "{ago:?}");
        assert!(super::recent());
    }
}
