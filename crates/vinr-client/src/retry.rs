//! When to try a request again, and how long to wait first: exponential backoff with jitter,
//! at least what `Retry-After` asks, bounded by a number of retries and by a total time.
//!
//! Only what is safe to repeat is retried: every POST carries an `Idempotency-Key` that each
//! retry reuses (the server answers a repeat with the stored first answer), and GET and DELETE
//! change nothing twice.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;

/// How a [`Client`](crate::Client) retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The wait before the first retry; each further one doubles it, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt: the call then fails with
    /// the last answer.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first), or `None` when the policy says
    /// stop: too many retries, or the wait would end past `max_elapsed` since the first attempt.
    /// The backoff is "equal jitter": half of the exponential step, plus a random part of up to
    /// the other half, so many clients that failed together do not retry together. A
    /// `Retry-After` longer than that is waited in full.
    pub fn wait_before(
        &self,
        retry: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if retry == 0 || retry > self.max_retries {
            return None;
        }
        let doublings = (retry - 1).min(30);
        let step = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        let half = step / 2;
        let jitter_ms = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        let backoff = half + Duration::from_millis(jitter_ms);
        let wait = backoff.max(retry_after.unwrap_or_default());
        (elapsed.saturating_add(wait) <= self.max_elapsed).then_some(wait)
    }
}

/// Whether an error answer may be retried: 409 `idempotency_key_in_use` (the first request is
/// still running), 429 and every 5xx. Any other status is the final answer.
pub(crate) fn retryable_status(status: StatusCode, code: &str) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || (status == StatusCode::CONFLICT && code == "idempotency_key_in_use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_bounded() {
        let policy = RetryPolicy {
            max_retries: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
            max_elapsed: Duration::from_secs(60),
        };
        for (retry, step_ms) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 800), (6, 800)] {
            for _ in 0..50 {
                let wait = policy
                    .wait_before(retry, Duration::ZERO, None)
                    .expect("a retry");
                let wait_ms = wait.as_millis() as u64;
                assert!(
                    (step_ms / 2..=step_ms).contains(&wait_ms),
                    "retry {retry}: {wait_ms} ms outside {}..={step_ms}",
                    step_ms / 2
                );
            }
        }
        assert_eq!(policy.wait_before(7, Duration::ZERO, None), None);
        assert_eq!(policy.wait_before(0, Duration::ZERO, None), None);
    }

    #[test]
    fn retry_after_is_honoured_and_total_time_bounds_it() {
        let policy = RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
            max_elapsed: Duration::from_secs(5),
        };
        let asked = Some(Duration::from_secs(2));
        assert_eq!(
            policy.wait_before(1, Duration::ZERO, asked),
            Some(Duration::from_secs(2))
        );
        assert_eq!(policy.wait_before(1, Duration::from_secs(4), asked), None);
    }

    #[test]
    fn what_is_retried() {
        assert!(retryable_status(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited"
        ));
        assert!(retryable_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "injected_fault"
        ));
        assert!(retryable_status(StatusCode::BAD_GATEWAY, ""));
        assert!(retryable_status(
            StatusCode::CONFLICT,
            "idempotency_key_in_use"
        ));
        assert!(!retryable_status(
            StatusCode::CONFLICT,
            "idempotency_key_reused"
        ));
        assert!(!retryable_status(
            StatusCode::BAD_REQUEST,
            "parameter_invalid"
        ));
        assert!(!retryable_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "payment_state_invalid"
        ));
    }
}
