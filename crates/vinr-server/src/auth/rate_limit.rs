//! Rate limits per API key (SPEC §2): token buckets from `governor`, one for reads and one for
//! writes, with the mode's rate and burst. Answers the `X-RateLimit-*` headers for every
//! response and the wait for a 429.

use std::num::NonZeroU32;

use axum::http::{HeaderMap, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use vinr_domain::Mode;

use crate::config::RateLimitConfig;

type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

struct Bucket {
    limiter: KeyedLimiter,
    per_second: u32,
    burst: u32,
}

impl Bucket {
    fn new(per_second: u32, burst: u32) -> Bucket {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Bucket {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_second: per_second.max(1),
            burst: burst.max(1),
        }
    }
}

/// The `X-RateLimit-*` values for one response.
#[derive(Debug, Clone)]
pub struct LimitHeaders {
    /// The bucket's size (its burst).
    limit: u32,
    remaining: u32,
    /// Seconds until the bucket is full again.
    reset_s: u64,
}

impl LimitHeaders {
    /// A bucket of `limit` with nothing left, full again in `reset_s`.
    pub fn exhausted(limit: u32, reset_s: u64) -> LimitHeaders {
        LimitHeaders {
            limit,
            remaining: 0,
            reset_s,
        }
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_s));
    }
}

#[derive(Debug, Clone)]
pub struct Limited {
    pub retry_after_s: u64,
    pub headers: LimitHeaders,
}

pub struct RateLimits {
    test_read: Bucket,
    test_write: Bucket,
    live_read: Bucket,
    live_write: Bucket,
    clock: DefaultClock,
}

impl RateLimits {
    /// `None` when limits are turned off (`[rate_limit] enabled = false`).
    pub fn new(config: &RateLimitConfig) -> Option<RateLimits> {
        config.enabled.then(|| RateLimits {
            test_read: Bucket::new(config.test_per_second, config.test_burst),
            test_write: Bucket::new(config.test_per_second, config.test_burst),
            live_read: Bucket::new(config.live_per_second, config.live_burst),
            live_write: Bucket::new(config.live_per_second, config.live_burst),
            clock: DefaultClock::default(),
        })
    }

    /// Takes one token from the key's bucket, or answers how long to wait.
    pub fn check(&self, key_id: &str, mode: Mode, is_read: bool) -> Result<LimitHeaders, Limited> {
        let bucket = match (mode, is_read) {
            (Mode::Test, true) => &self.test_read,
            (Mode::Test, false) => &self.test_write,
            (Mode::Live, true) => &self.live_read,
            (Mode::Live, false) => &self.live_write,
        };
        let refill_s = |remaining: u32| {
            u64::from(bucket.burst - remaining.min(bucket.burst))
                .div_ceil(u64::from(bucket.per_second))
        };
        match bucket.limiter.check_key(&key_id.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(LimitHeaders {
                    limit: bucket.burst,
                    remaining,
                    reset_s: refill_s(remaining),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Limited {
                    // Never tell a client to retry after 0 s: it would retry at once.
                    retry_after_s: (wait.as_millis() as u64).div_ceil(1000).max(1),
                    headers: LimitHeaders::exhausted(bucket.burst, refill_s(0)),
                })
            }
        }
    }

    /// Forgets keys whose buckets are full again, so memory does not grow with old keys.
    pub fn shrink(&self) {
        for bucket in [
            &self.test_read,
            &self.test_write,
            &self.live_read,
            &self.live_write,
        ] {
            bucket.limiter.retain_recent();
            bucket.limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_limited_with_retry_after() {
        let limits = RateLimits::new(&RateLimitConfig {
            enabled: true,
            test_per_second: 1,
            test_burst: 3,
            live_per_second: 100,
            live_burst: 200,
        })
        .expect("enabled");
        for expected_remaining in [2, 1, 0] {
            let headers = limits
                .check("key_a", Mode::Test, false)
                .expect("within burst");
            assert_eq!(headers.remaining, expected_remaining);
            assert_eq!(headers.limit, 3);
        }
        let limited = limits
            .check("key_a", Mode::Test, false)
            .expect_err("over burst");
        assert!(limited.retry_after_s >= 1);
        // Reads have their own bucket, and other keys theirs.
        assert!(limits.check("key_a", Mode::Test, true).is_ok());
        assert!(limits.check("key_b", Mode::Test, false).is_ok());
    }
}
