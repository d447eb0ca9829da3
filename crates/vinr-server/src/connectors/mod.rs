//! Card processing through connectors (SPEC §15): the configured processors by name, the
//! routes that pick them for a payment, a circuit breaker per processor, and the metrics of
//! their attempts. The connector kinds live in their own modules ([`stripe`]); the sandbox
//! simulator is the processor named `sandbox`.
//!
//! The breaker is per node (memory): each node learns on its own that a processor is down,
//! which is what a breaker is for; nothing about a payment's correctness depends on it.

pub mod config;
pub mod pay;
pub mod stripe;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vinr_domain::limits::{
    PROCESSOR_CLAIM_CALLS_PER_PROCESSOR, PROCESSOR_CLAIM_MARGIN_MS, REFUND_LEASE_MARGIN_MS,
    REFUND_LEASE_MS, REFUND_LEASE_PROCESSOR_TIMEOUTS,
};
use vinr_domain::{Currency, Mode};

use crate::processor::{Processor, ProcessorError, SandboxProcessor};
use config::{ConnectorSettings, SANDBOX};

/// A processor of a route: its configured name and the connector.
#[derive(Clone)]
pub struct Routed {
    pub name: String,
    pub processor: Arc<dyn Processor>,
}

/// A processor's circuit breaker: closed (calls go through; consecutive processor errors
/// counted), open (skipped until the cool-down ends), then half-open: one trial call goes
/// through (another only if that one never reports within a cool-down), its success closes
/// the breaker and its failure opens it again. Only errors that say the processor is failing
/// count ([`crate::processor::ProcessorErrorKind::processor_failing`]); declines and requests
/// the acquirer refused are answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed { errors: u32 },
    Open { until: Instant },
    HalfOpen { trial_until: Instant },
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker::Closed { errors: 0 }
    }
}

impl Breaker {
    /// Whether a call could go to the processor now, without taking a half-open trial (a
    /// route lists it; the call itself takes the trial, [`Breaker::allow`]).
    fn may_allow(&self, now: Instant) -> bool {
        match *self {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } | Breaker::HalfOpen { trial_until: until } => now >= until,
        }
    }

    /// Whether a call may go to the processor now; taking the half-open trial if it is that.
    fn allow(&mut self, now: Instant, cooldown: Duration) -> bool {
        match *self {
            Breaker::Closed { .. } => true,
            Breaker::Open { until } | Breaker::HalfOpen { trial_until: until } => {
                if now < until {
                    return false;
                }
                *self = Breaker::HalfOpen {
                    trial_until: now + cooldown,
                };
                true
            }
        }
    }

    /// Counts a call's outcome (`failing`: an error that says the processor is failing);
    /// answers whether this opened the breaker.
    fn record(&mut self, failing: bool, now: Instant, threshold: u32, cooldown: Duration) -> bool {
        let open = Breaker::Open {
            until: now + cooldown,
        };
        match (*self, failing) {
            (_, false) => *self = Breaker::default(),
            (Breaker::Closed { errors }, true) if errors + 1 < threshold => {
                *self = Breaker::Closed { errors: errors + 1 };
            }
            (Breaker::Closed { .. } | Breaker::HalfOpen { .. }, true) => *self = open,
            // A call sent before the breaker opened: it stays open as it was.
            (Breaker::Open { .. }, true) => return false,
        }
        *self == open
    }
}

pub struct Connectors {
    processors: HashMap<String, Arc<dyn Processor>>,
    timeouts_ms: HashMap<String, u64>,
    settings: ConnectorSettings,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Connectors {
    /// The connectors `settings` configure, the sandbox among them. `live` stands in for
    /// live mode's route when given (tests serve live mode with the simulator). An acquirer's
    /// 3-D Secure page sends the shopper back to the checkout under `public_url`.
    pub fn new(
        settings: &ConnectorSettings,
        live: Option<Arc<dyn Processor>>,
        public_url: &str,
    ) -> Result<Connectors, String> {
        let mut processors: HashMap<String, Arc<dyn Processor>> = HashMap::new();
        let mut timeouts_ms = HashMap::new();
        let mut settings = settings.clone();
        if live.is_some() && settings.live.is_empty() {
            settings.live = vec![SANDBOX.into()];
        }
        processors.insert(
            SANDBOX.into(),
            live.unwrap_or_else(|| Arc::new(SandboxProcessor)),
        );
        for processor in &settings.processors {
            let connector: Arc<dyn Processor> = match processor.kind.as_str() {
                "stripe" => Arc::new(stripe::StripeConnector::new(processor, public_url)?),
                other => {
                    return Err(format!(
                        "processors.{}: unknown kind `{other}`",
                        processor.name
                    ))
                }
            };
            processors.insert(processor.name.clone(), connector);
            timeouts_ms.insert(processor.name.clone(), processor.timeout_ms);
        }
        settings.processors.clear();
        Ok(Connectors {
            processors,
            timeouts_ms,
            settings,
            breakers: Mutex::new(HashMap::new()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Routed> {
        self.processors.get(name).map(|processor| Routed {
            name: name.to_owned(),
            processor: processor.clone(),
        })
    }

    /// The processor a payment's later calls (3-D Secure, capture, cancel, refunds) go to:
    /// the one that has it, or, for a payment from before connectors, the sandbox.
    pub fn of_payment(&self, processor: Option<&str>) -> Option<Routed> {
        self.get(processor.unwrap_or(SANDBOX))
    }

    /// The ordered list for a payment: the first rule that matches, else the mode's list.
    fn list(&self, mode: Mode, currency: Currency, brand: &str, amount: u64) -> &[String] {
        self.settings
            .rules
            .iter()
            .filter(|rule| rule.matches(currency, brand, amount))
            .find_map(|rule| rule.list(mode))
            .unwrap_or(match mode {
                Mode::Live => &self.settings.live,
                Mode::Test => &self.settings.test,
            })
    }

    /// Whether a payment of `mode` could be routed anywhere at all (the checkout says card
    /// processing is unavailable otherwise).
    pub fn available(&self, mode: Mode) -> bool {
        let list = match mode {
            Mode::Live => &self.settings.live,
            Mode::Test => &self.settings.test,
        };
        !list.is_empty()
            || self
                .settings
                .rules
                .iter()
                .any(|rule| rule.list(mode).is_some_and(|l| !l.is_empty()))
    }

    /// The processors a payment may go to, in order, without those whose breaker is open (a
    /// half-open one is in it; its one trial is taken by the call, [`Connectors::begin_call`],
    /// not by being listed).
    pub fn route(&self, mode: Mode, currency: Currency, brand: &str, amount: u64) -> Vec<Routed> {
        let now = Instant::now();
        let breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        self.list(mode, currency, brand, amount)
            .iter()
            .filter(|name| {
                breakers
                    .get(name.as_str())
                    .is_none_or(|breaker| breaker.may_allow(now))
            })
            .filter_map(|name| self.get(name))
            .collect()
    }

    /// Whether a payment's call may go to `name` now (its breaker closed, or this the
    /// half-open trial, which it takes); else the route moves to the next processor.
    pub fn begin_call(&self, name: &str) -> bool {
        let cooldown = Duration::from_millis(self.settings.breaker_cooldown_ms);
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        breakers
            .get_mut(name)
            .is_none_or(|breaker| breaker.allow(Instant::now(), cooldown))
    }

    /// How long a claim on a payment routed over `route` lasts before a repair may take it.
    pub fn claim_ms(&self, route: &[Routed]) -> i64 {
        let per: u64 = route
            .iter()
            .map(|r| self.timeout_ms(&r.name) * PROCESSOR_CLAIM_CALLS_PER_PROCESSOR)
            .sum();
        i64::try_from(per + PROCESSOR_CLAIM_MARGIN_MS).unwrap_or(i64::MAX)
    }

    pub fn timeout_ms(&self, name: &str) -> u64 {
        self.timeouts_ms.get(name).copied().unwrap_or(1_000)
    }

    /// How long a refund is leased to the worker sending it (SPEC §15): longer than the
    /// slowest processor's call may take, so that a refund is not sent again while the first
    /// call still runs.
    pub fn refund_lease_ms(&self) -> i64 {
        let longest = self.timeouts_ms.values().copied().max().unwrap_or(0);
        let derived = longest
            .saturating_mul(REFUND_LEASE_PROCESSOR_TIMEOUTS)
            .saturating_add(REFUND_LEASE_MARGIN_MS);
        i64::try_from(derived)
            .unwrap_or(i64::MAX)
            .max(REFUND_LEASE_MS)
    }

    /// The longest claim any route may take (what a repair waits for).
    pub fn longest_claim_ms(&self) -> i64 {
        let all: Vec<Routed> = self
            .processors
            .keys()
            .filter_map(|name| self.get(name))
            .collect();
        self.claim_ms(&all)
    }

    /// Counts an attempt the acquirer answered (`outcome`): its breaker closes.
    pub fn record(&self, name: &str, outcome: &str, latency: Duration) {
        self.count(name, outcome, latency, false);
    }

    /// Counts an attempt that ended in `error`: towards the breaker when it says the
    /// processor is failing, else as an answer.
    pub fn record_error(&self, name: &str, error: &ProcessorError, latency: Duration) {
        self.count(
            name,
            "processor_error",
            latency,
            error.kind.processor_failing(),
        );
    }

    fn count(&self, name: &str, outcome: &str, latency: Duration, failing: bool) {
        metrics::counter!(
            "vinr_processor_attempts_total",
            "processor" => name.to_owned(),
            "outcome" => outcome.to_owned()
        )
        .increment(1);
        metrics::histogram!("vinr_processor_latency_seconds", "processor" => name.to_owned())
            .record(latency.as_secs_f64());
        let cooldown = Duration::from_millis(self.settings.breaker_cooldown_ms);
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let breaker = breakers.entry(name.to_owned()).or_default();
        if breaker.record(
            failing,
            Instant::now(),
            self.settings.breaker_errors,
            cooldown,
        ) {
            tracing::warn!(
                processor = name,
                cooldown_ms = self.settings.breaker_cooldown_ms,
                "processor skipped after consecutive errors"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step of a breaker's life: `Some(failing)` records a call's outcome; `None` asks
    /// whether a call may go through. `at_ms` is when, from the start.
    struct Step {
        at_ms: u64,
        call: Option<bool>,
        expect_allowed: Option<bool>,
    }

    fn ask(at_ms: u64, allowed: bool) -> Step {
        Step {
            at_ms,
            call: None,
            expect_allowed: Some(allowed),
        }
    }

    fn outcome(at_ms: u64, failing: bool) -> Step {
        Step {
            at_ms,
            call: Some(failing),
            expect_allowed: None,
        }
    }

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        // threshold 2, cool-down 100 ms
        let cases: &[(&str, Vec<Step>)] = &[
            (
                "closed lets calls through",
                vec![ask(0, true), outcome(0, true), ask(1, true)],
            ),
            (
                "opens after consecutive errors",
                vec![
                    outcome(0, true),
                    outcome(1, true),
                    ask(2, false),
                    ask(99, false),
                ],
            ),
            (
                "an answer in between resets the count",
                vec![
                    outcome(0, true),
                    outcome(1, false),
                    outcome(2, true),
                    ask(3, true),
                ],
            ),
            (
                "after the cool-down one trial, not two",
                vec![
                    outcome(0, true),
                    outcome(0, true),
                    ask(100, true),
                    ask(101, false),
                ],
            ),
            (
                "a trial's success closes",
                vec![
                    outcome(0, true),
                    outcome(0, true),
                    ask(100, true),
                    outcome(110, false),
                    ask(111, true),
                    ask(112, true),
                ],
            ),
            (
                "a trial's failure opens again for a cool-down",
                vec![
                    outcome(0, true),
                    outcome(0, true),
                    ask(100, true),
                    outcome(110, true),
                    ask(150, false),
                    ask(209, false),
                    ask(210, true),
                ],
            ),
            (
                "a trial that never reports lets another after a cool-down",
                vec![
                    outcome(0, true),
                    outcome(0, true),
                    ask(100, true),
                    ask(199, false),
                    ask(200, true),
                ],
            ),
            (
                "a late failure of a call sent before opening keeps it as it was",
                vec![
                    outcome(0, true),
                    outcome(0, true),
                    outcome(50, true),
                    ask(100, true),
                ],
            ),
        ];
        let start = Instant::now();
        let cooldown = Duration::from_millis(100);
        for (name, steps) in cases {
            let mut breaker = Breaker::default();
            for (i, step) in steps.iter().enumerate() {
                let now = start + Duration::from_millis(step.at_ms);
                if let Some(failing) = step.call {
                    breaker.record(failing, now, 2, cooldown);
                }
                if let Some(expected) = step.expect_allowed {
                    assert_eq!(breaker.allow(now, cooldown), expected, "{name}: step {i}");
                }
            }
        }
    }

    #[test]
    fn listing_a_half_open_processor_leaves_its_trial_to_the_call() {
        let (start, cooldown) = (Instant::now(), Duration::from_millis(100));
        let mut breaker = Breaker::default();
        breaker.record(true, start, 1, cooldown);
        let after = start + cooldown;
        assert!(!breaker.may_allow(start), "open");
        for _ in 0..3 {
            assert!(
                breaker.may_allow(after),
                "listed as often as routes are made"
            );
        }
        assert!(
            breaker.allow(after, cooldown),
            "the first call takes the trial"
        );
        assert!(
            !breaker.may_allow(after),
            "no longer listed while the trial runs"
        );
        assert!(!breaker.allow(after, cooldown), "and no second trial");
    }

    #[test]
    fn only_failing_processors_count() {
        use crate::processor::ProcessorErrorKind as Kind;
        for (kind, failing) in [
            (Kind::Unreachable, true),
            (Kind::Unauthorized, true),
            (Kind::Server, true),
            (Kind::BadAnswer, true),
            (Kind::Refused, false),
            (Kind::Conflict, false),
        ] {
            assert_eq!(kind.processor_failing(), failing, "{kind:?}");
        }
    }
}
