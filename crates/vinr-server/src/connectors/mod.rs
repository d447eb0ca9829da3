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

use vinr_domain::limits::{PROCESSOR_CLAIM_CALLS_PER_PROCESSOR, PROCESSOR_CLAIM_MARGIN_MS};
use vinr_domain::{Currency, Mode};

use crate::processor::{Processor, SandboxProcessor};
use config::{ConnectorSettings, SANDBOX};

/// A processor of a route: its configured name and the connector.
#[derive(Clone)]
pub struct Routed {
    pub name: String,
    pub processor: Arc<dyn Processor>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    consecutive_errors: u32,
    open_until: Option<Instant>,
}

pub struct Connectors {
    processors: HashMap<String, Arc<dyn Processor>>,
    timeouts_ms: HashMap<String, u64>,
    settings: ConnectorSettings,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Connectors {
    /// The connectors `settings` configure, the sandbox among them. `live` stands in for
    /// live mode's route when given (tests serve live mode with the simulator).
    pub fn new(
        settings: &ConnectorSettings,
        live: Option<Arc<dyn Processor>>,
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
                "stripe" => Arc::new(stripe::StripeConnector::new(processor)?),
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

    /// The processors a payment goes to, in order, without those whose breaker is open.
    pub fn route(&self, mode: Mode, currency: Currency, brand: &str, amount: u64) -> Vec<Routed> {
        let now = Instant::now();
        let breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        self.list(mode, currency, brand, amount)
            .iter()
            .filter(|name| {
                breakers
                    .get(name.as_str())
                    .and_then(|b| b.open_until)
                    .is_none_or(|until| until <= now)
            })
            .filter_map(|name| self.get(name))
            .collect()
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

    /// The longest claim any route may take (what a repair waits for).
    pub fn longest_claim_ms(&self) -> i64 {
        let all: Vec<Routed> = self
            .processors
            .keys()
            .filter_map(|name| self.get(name))
            .collect();
        self.claim_ms(&all)
    }

    /// Counts an attempt's outcome: a processor error towards the breaker, anything else (the
    /// acquirer answered) resets it.
    pub fn record(&self, name: &str, outcome: &str, latency: Duration) {
        metrics::counter!(
            "vinr_processor_attempts_total",
            "processor" => name.to_owned(),
            "outcome" => outcome.to_owned()
        )
        .increment(1);
        metrics::histogram!("vinr_processor_latency_seconds", "processor" => name.to_owned())
            .record(latency.as_secs_f64());
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let breaker = breakers.entry(name.to_owned()).or_default();
        if outcome == "processor_error" {
            breaker.consecutive_errors += 1;
            if breaker.consecutive_errors >= self.settings.breaker_errors {
                breaker.open_until =
                    Some(Instant::now() + Duration::from_millis(self.settings.breaker_cooldown_ms));
                breaker.consecutive_errors = 0;
                tracing::warn!(
                    processor = name,
                    cooldown_ms = self.settings.breaker_cooldown_ms,
                    "processor skipped after consecutive errors"
                );
            }
        } else {
            *breaker = Breaker::default();
        }
    }
}
