//! Webhook faults on purpose (SPEC §12): what a test-mode endpoint may be told to do wrong —
//! duplicate an event, sign its first attempt badly, wait before each attempt, deliver events
//! out of order — and the rule deciding "with probability p" without randomness, so every node
//! and every retry of a delivery agree. Sending and holding are the delivery worker's.

use crate::limits::WEBHOOK_FAULT_DELAY_MS_MAX;

/// The fault one attempt carried, as recorded and shown (`fault` of an attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFault {
    /// A second, identical POST right after a delivery's first attempt.
    Duplicate,
    /// A well-formed but wrong signature, on a delivery's first attempt only.
    BadSignature,
    /// The attempt waited `delayMs` before it was sent.
    Delay,
    /// The delivery was held back for a later event's (`outOfOrder`).
    OutOfOrder,
}

impl WebhookFault {
    pub const ALL: [WebhookFault; 4] = [
        WebhookFault::Duplicate,
        WebhookFault::BadSignature,
        WebhookFault::Delay,
        WebhookFault::OutOfOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFault::Duplicate => "duplicate",
            WebhookFault::BadSignature => "badSignature",
            WebhookFault::Delay => "delay",
            WebhookFault::OutOfOrder => "outOfOrder",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookFault> {
        WebhookFault::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// The faults of an endpoint as asked for, before they are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WebhookFaultsInput {
    pub duplicate: Option<f64>,
    pub bad_signature: Option<f64>,
    pub delay_ms: Option<i64>,
    pub out_of_order: Option<bool>,
}

/// Why faults were refused: the field (its wire name) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookFaultsError {
    /// `duplicate`, `badSignature` or `delayMs`.
    pub field: &'static str,
    pub message: String,
}

/// Checked faults of a test-mode endpoint; at least one injects something.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WebhookFaults {
    duplicate: f64,
    bad_signature: f64,
    delay_ms: u64,
    out_of_order: bool,
}

fn probability(field: &'static str, value: Option<f64>) -> Result<f64, WebhookFaultsError> {
    let value = value.unwrap_or(0.0);
    // NaN fails the range test too.
    if !(0.0..=1.0).contains(&value) {
        return Err(WebhookFaultsError {
            field,
            message: format!("`faults.{field}` must be a probability, a number from 0 to 1."),
        });
    }
    Ok(value)
}

impl WebhookFaults {
    /// Checks `input`: probabilities in 0–1, `delayMs` at most [`WEBHOOK_FAULT_DELAY_MS_MAX`].
    /// Answers `None` when nothing would be injected (every field absent, 0 or false).
    pub fn parse(input: WebhookFaultsInput) -> Result<Option<WebhookFaults>, WebhookFaultsError> {
        let faults = WebhookFaults {
            duplicate: probability("duplicate", input.duplicate)?,
            bad_signature: probability("badSignature", input.bad_signature)?,
            delay_ms: match u64::try_from(input.delay_ms.unwrap_or(0)) {
                Ok(ms) if ms <= WEBHOOK_FAULT_DELAY_MS_MAX => ms,
                _ => {
                    return Err(WebhookFaultsError {
                        field: "delayMs",
                        message: format!(
                            "`faults.delayMs` must be an integer from 0 to \
                             {WEBHOOK_FAULT_DELAY_MS_MAX} (milliseconds)."
                        ),
                    })
                }
            },
            out_of_order: input.out_of_order.unwrap_or(false),
        };
        let injects = faults.duplicate > 0.0
            || faults.bad_signature > 0.0
            || faults.delay_ms > 0
            || faults.out_of_order;
        Ok(injects.then_some(faults))
    }

    pub fn duplicate(&self) -> f64 {
        self.duplicate
    }

    pub fn bad_signature(&self) -> f64 {
        self.bad_signature
    }

    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }

    pub fn out_of_order(&self) -> bool {
        self.out_of_order
    }

    /// Whether a delivery whose draw for `fault` is `draw` (a uniform 64-bit number, the same
    /// on every node for one endpoint, event and fault) gets it: with probability `duplicate`
    /// or `badSignature` (1 always, 0 never); `delay` whenever `delayMs` > 0, `outOfOrder`
    /// whenever it is set.
    pub fn chooses(&self, fault: WebhookFault, draw: u64) -> bool {
        let below = |p: f64| {
            // The top 53 bits as a fraction in [0, 1): exact in an f64.
            let fraction = (draw >> 11) as f64 / (1u64 << 53) as f64;
            fraction < p
        };
        match fault {
            WebhookFault::Duplicate => below(self.duplicate),
            WebhookFault::BadSignature => below(self.bad_signature),
            WebhookFault::Delay => self.delay_ms > 0,
            WebhookFault::OutOfOrder => self.out_of_order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(duplicate: Option<f64>, bad: Option<f64>, delay: Option<i64>) -> WebhookFaultsInput {
        WebhookFaultsInput {
            duplicate,
            bad_signature: bad,
            delay_ms: delay,
            out_of_order: None,
        }
    }

    #[test]
    fn probabilities_and_delays_are_bounded() {
        for bad in [-0.1, 1.000_001, f64::NAN, f64::INFINITY] {
            let error = WebhookFaults::parse(input(Some(bad), None, None)).expect_err("refused");
            assert_eq!(error.field, "duplicate");
            let error = WebhookFaults::parse(input(None, Some(bad), None)).expect_err("refused");
            assert_eq!(error.field, "badSignature");
        }
        for delay in [-1, WEBHOOK_FAULT_DELAY_MS_MAX as i64 + 1] {
            let error = WebhookFaults::parse(input(None, None, Some(delay))).expect_err("refused");
            assert_eq!(error.field, "delayMs");
        }
        let most = WebhookFaults::parse(input(Some(1.0), Some(0.0), Some(30_000)))
            .expect("valid")
            .expect("some");
        assert_eq!(most.delay_ms(), 30_000);
    }

    #[test]
    fn nothing_to_inject_is_no_faults() {
        assert_eq!(
            WebhookFaults::parse(WebhookFaultsInput::default()),
            Ok(None)
        );
        assert_eq!(
            WebhookFaults::parse(input(Some(0.0), Some(0.0), Some(0))),
            Ok(None)
        );
    }

    #[test]
    fn one_always_zero_never_and_a_half_about_half() {
        let always = WebhookFaults::parse(input(Some(1.0), Some(0.0), None))
            .expect("valid")
            .expect("some");
        let half = WebhookFaults::parse(input(Some(0.5), None, None))
            .expect("valid")
            .expect("some");
        let mut chosen = 0;
        for draw in [0, 1, u64::MAX / 3, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            assert!(always.chooses(WebhookFault::Duplicate, draw));
            assert!(!always.chooses(WebhookFault::BadSignature, draw));
            assert!(!always.chooses(WebhookFault::Delay, draw));
            assert!(!always.chooses(WebhookFault::OutOfOrder, draw));
            chosen += usize::from(half.chooses(WebhookFault::Duplicate, draw));
        }
        // 0, 1, MAX/3 and MAX/2 (just under a half) fall below 0.5.
        assert_eq!(chosen, 4);
    }

    #[test]
    fn fault_names_round_trip() {
        for fault in WebhookFault::ALL {
            assert_eq!(WebhookFault::parse(fault.as_str()), Some(fault));
        }
        assert_eq!(WebhookFault::parse("delayMs"), None);
    }
}
