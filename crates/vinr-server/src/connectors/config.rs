//! The `[processors.<name>]` and `[routing]` tables (SPEC §15), checked at start: an unknown
//! processor name, a missing environment variable or a URL that does not parse stops
//! `vinr serve` with a message naming it. Secrets come only from the environment, are held
//! [`Redacted`], and no message ever repeats one.

use std::collections::BTreeMap;

use serde::Deserialize;
use vinr_domain::limits::{
    AMOUNT_MINOR_UNITS_MAX, PROCESSOR_BREAKER_COOLDOWN_MS_DEFAULT,
    PROCESSOR_BREAKER_COOLDOWN_MS_MAX, PROCESSOR_BREAKER_ERRORS_DEFAULT, PROCESSOR_NAME_CHARS_MAX,
    PROCESSOR_TIMEOUT_MS_DEFAULT, PROCESSOR_TIMEOUT_MS_MAX, PROCESSOR_TIMEOUT_MS_MIN,
};
use vinr_domain::{Currency, Mode};

use crate::redacted::Redacted;

/// The name of the built-in simulator in routes.
pub const SANDBOX: &str = "sandbox";
/// Connector kinds this build has.
pub const KINDS: &[&str] = &["stripe"];
/// Brands a rule may filter on (what card numbers are recognized as).
pub const BRANDS: &[&str] = &["visa", "mastercard", "amex", "discover", "unknown"];

/// `[processors.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    pub kind: String,
    /// Any compatible base URL (`http://` allowed, for emulators).
    pub api_base: String,
    /// The name of the environment variable holding the secret key.
    pub secret_key_env: String,
    pub timeout_ms: Option<u64>,
    /// Whether the confirm carries a `return_url` (our checkout's return page), so that a
    /// 3-D Secure redirect brings the shopper back (default true; false for an emulator that
    /// refuses the parameter, as localstripe 1.15.10 does).
    pub send_return_url: Option<bool>,
}

/// `[routing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Live mode's processors, in order (none: live cards cannot be paid).
    pub live: Vec<String>,
    /// Test mode's processors, in order (default: the sandbox).
    pub test: Vec<String>,
    /// The first rule that matches a payment gives its lists.
    pub rules: Vec<RuleConfig>,
    /// Consecutive processor errors after which a processor is skipped…
    pub breaker_errors: u32,
    /// …for this many milliseconds.
    pub breaker_cooldown_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            live: Vec::new(),
            test: vec![SANDBOX.into()],
            rules: Vec::new(),
            breaker_errors: PROCESSOR_BREAKER_ERRORS_DEFAULT,
            breaker_cooldown_ms: PROCESSOR_BREAKER_COOLDOWN_MS_DEFAULT,
        }
    }
}

/// `[[routing.rules]]`: filters, and the lists a matching payment uses (a mode a rule does
/// not list falls back to the `[routing]` list).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub currency: Option<String>,
    pub brand: Option<String>,
    pub amount_min: Option<u64>,
    pub amount_max: Option<u64>,
    pub live: Option<Vec<String>>,
    pub test: Option<Vec<String>>,
}

/// A connector, checked, with its secret.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    pub name: String,
    pub kind: String,
    pub api_base: url::Url,
    pub secret_key: Redacted<String>,
    /// Where the key came from (for messages, never the key).
    pub secret_key_env: String,
    pub timeout_ms: u64,
    pub send_return_url: bool,
}

/// A rule, checked.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub currency: Option<Currency>,
    pub brand: Option<String>,
    pub amount_min: Option<u64>,
    pub amount_max: Option<u64>,
    pub live: Option<Vec<String>>,
    pub test: Option<Vec<String>>,
}

impl Rule {
    pub fn matches(&self, currency: Currency, brand: &str, amount: u64) -> bool {
        self.currency.is_none_or(|c| c == currency)
            && self.brand.as_deref().is_none_or(|b| b == brand)
            && self.amount_min.is_none_or(|min| amount >= min)
            && self.amount_max.is_none_or(|max| amount <= max)
    }

    pub fn list(&self, mode: Mode) -> Option<&[String]> {
        match mode {
            Mode::Live => self.live.as_deref(),
            Mode::Test => self.test.as_deref(),
        }
    }
}

/// Everything `[processors]` and `[routing]` say, checked.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    pub processors: Vec<ProcessorSettings>,
    pub live: Vec<String>,
    pub test: Vec<String>,
    pub rules: Vec<Rule>,
    pub breaker_errors: u32,
    pub breaker_cooldown_ms: u64,
}

impl Default for ConnectorSettings {
    fn default() -> Self {
        ConnectorSettings::new(&BTreeMap::new(), &RoutingConfig::default())
            .unwrap_or_else(|error| unreachable!("the defaults are valid: {error}"))
    }
}

impl ConnectorSettings {
    /// Checks the tables, reading each connector's secret from its environment variable.
    pub fn new(
        processors: &BTreeMap<String, ProcessorConfig>,
        routing: &RoutingConfig,
    ) -> Result<ConnectorSettings, String> {
        ConnectorSettings::with_env(processors, routing, |name| std::env::var(name).ok())
    }

    /// [`ConnectorSettings::new`] with the environment given (unit tests).
    pub fn with_env(
        processors: &BTreeMap<String, ProcessorConfig>,
        routing: &RoutingConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ConnectorSettings, String> {
        let mut checked = Vec::new();
        for (name, config) in processors {
            checked.push(processor(name, config, &env)?);
        }
        let known = |list: &[String], at: &str| -> Result<Vec<String>, String> {
            // The simulator approves 4242… without moving money: in a live list (even as a
            // failover after a real processor) it would complete live payments for nothing.
            if at.ends_with("live") && list.iter().any(|name| name == SANDBOX) {
                return Err(format!(
                    "{at}: \"{SANDBOX}\" (the simulator) cannot take live payments; name a real \
                     processor"
                ));
            }
            for name in list {
                if name != SANDBOX && !processors.contains_key(name) {
                    return Err(format!(
                        "{at}: unknown processor `{name}` (configure [processors.{name}], or \
                         use \"{SANDBOX}\")"
                    ));
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(twice) = list.iter().find(|name| !seen.insert(name.as_str())) {
                return Err(format!("{at}: processor `{twice}` is listed twice"));
            }
            Ok(list.to_vec())
        };
        let live = known(&routing.live, "routing.live")?;
        let test = known(&routing.test, "routing.test")?;
        let mut rules = Vec::new();
        for (index, rule) in routing.rules.iter().enumerate() {
            let at = format!("routing.rules[{index}]");
            let currency = rule
                .currency
                .as_deref()
                .map(|code| {
                    Currency::parse(code)
                        .ok_or_else(|| format!("{at}.currency: unknown currency `{code}`"))
                })
                .transpose()?;
            let brand = rule
                .brand
                .as_deref()
                .map(|brand| {
                    let lower = brand.to_ascii_lowercase();
                    if BRANDS.contains(&lower.as_str()) {
                        Ok(lower)
                    } else {
                        Err(format!(
                            "{at}.brand: unknown brand `{brand}` (one of {})",
                            BRANDS.join(", ")
                        ))
                    }
                })
                .transpose()?;
            for (key, value) in [
                ("amount_min", rule.amount_min),
                ("amount_max", rule.amount_max),
            ] {
                if value.is_some_and(|v| !(1..=AMOUNT_MINOR_UNITS_MAX).contains(&v)) {
                    return Err(format!(
                        "{at}.{key} must be from 1 to {AMOUNT_MINOR_UNITS_MAX} (minor units)"
                    ));
                }
            }
            if let (Some(min), Some(max)) = (rule.amount_min, rule.amount_max) {
                if min > max {
                    return Err(format!("{at}: amount_min is larger than amount_max"));
                }
            }
            if rule.live.is_none() && rule.test.is_none() {
                return Err(format!("{at}: a rule needs a `live` or a `test` list"));
            }
            rules.push(Rule {
                currency,
                brand,
                amount_min: rule.amount_min,
                amount_max: rule.amount_max,
                live: rule
                    .live
                    .as_deref()
                    .map(|l| known(l, &format!("{at}.live")))
                    .transpose()?,
                test: rule
                    .test
                    .as_deref()
                    .map(|l| known(l, &format!("{at}.test")))
                    .transpose()?,
            });
        }
        if routing.breaker_errors == 0 {
            return Err("routing.breaker_errors must be at least 1".into());
        }
        if routing.breaker_cooldown_ms > PROCESSOR_BREAKER_COOLDOWN_MS_MAX {
            return Err(format!(
                "routing.breaker_cooldown_ms must be at most {PROCESSOR_BREAKER_COOLDOWN_MS_MAX}"
            ));
        }
        for processor in &checked {
            key_fits_modes(processor, &live, &test, &rules)?;
        }
        Ok(ConnectorSettings {
            processors: checked,
            live,
            test,
            rules,
            breaker_errors: routing.breaker_errors,
            breaker_cooldown_ms: routing.breaker_cooldown_ms,
        })
    }
}

/// The mode a Stripe secret key is for, by its prefix (`sk_live_`/`rk_live_`,
/// `sk_test_`/`rk_test_`); `None` for a key that looks like neither (an emulator's:
/// localstripe takes any key).
fn key_mode(secret: &str) -> Option<Mode> {
    if secret.starts_with("sk_live_") || secret.starts_with("rk_live_") {
        Some(Mode::Live)
    } else if secret.starts_with("sk_test_") || secret.starts_with("rk_test_") {
        Some(Mode::Test)
    } else {
        None
    }
}

/// Refuses a clear mismatch between a processor's key and the modes it is routed in: a test
/// key in a live list (live payments would go to the acquirer's test mode and never be
/// paid) or a live key in a test list (test payments would move real money). A key that
/// looks like neither is taken as it is (an emulator). The message names the processor and
/// the variable, never the key.
fn key_fits_modes(
    processor: &ProcessorSettings,
    live: &[String],
    test: &[String],
    rules: &[Rule],
) -> Result<(), String> {
    let Some(key) = key_mode(processor.secret_key.expose()) else {
        return Ok(());
    };
    let name = &processor.name;
    let routed_in = |mode: Mode| {
        let top = match mode {
            Mode::Live => live,
            Mode::Test => test,
        };
        top.contains(name)
            || rules
                .iter()
                .any(|rule| rule.list(mode).is_some_and(|l| l.contains(name)))
    };
    let (other, prefix) = match key {
        Mode::Live => (Mode::Test, "a live key (sk_live_/rk_live_)"),
        Mode::Test => (Mode::Live, "a test key (sk_test_/rk_test_)"),
    };
    if routed_in(other) {
        return Err(format!(
            "processors.{name}: `{}` holds {prefix}, but the processor is routed in {} mode; \
             give it a {} key or route it in {} mode only",
            processor.secret_key_env,
            other.as_str(),
            other.as_str(),
            key.as_str(),
        ));
    }
    Ok(())
}

fn processor(
    name: &str,
    config: &ProcessorConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<ProcessorSettings, String> {
    let at = format!("processors.{name}");
    if name == SANDBOX {
        return Err(format!(
            "{at}: `{SANDBOX}` is the built-in simulator's name; choose another"
        ));
    }
    if name.is_empty()
        || name.len() > PROCESSOR_NAME_CHARS_MAX
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "{at}: a processor name is 1 to {PROCESSOR_NAME_CHARS_MAX} of A-Z a-z 0-9 _ -"
        ));
    }
    if !KINDS.contains(&config.kind.as_str()) {
        return Err(format!(
            "{at}.kind: unknown kind `{}` (one of {})",
            config.kind,
            KINDS.join(", ")
        ));
    }
    let api_base = url::Url::parse(&config.api_base)
        .map_err(|error| format!("{at}.api_base `{}`: {error}", config.api_base))?;
    if !matches!(api_base.scheme(), "http" | "https") || api_base.host_str().is_none() {
        return Err(format!(
            "{at}.api_base `{}`: must be an http(s) URL with a host",
            config.api_base
        ));
    }
    let var = &config.secret_key_env;
    let secret = env(var).ok_or_else(|| {
        format!("{at}.secret_key_env: the environment variable `{var}` is not set")
    })?;
    if secret.trim().is_empty() {
        return Err(format!(
            "{at}.secret_key_env: the environment variable `{var}` is empty"
        ));
    }
    let timeout_ms = config.timeout_ms.unwrap_or(PROCESSOR_TIMEOUT_MS_DEFAULT);
    if !(PROCESSOR_TIMEOUT_MS_MIN..=PROCESSOR_TIMEOUT_MS_MAX).contains(&timeout_ms) {
        return Err(format!(
            "{at}.timeout_ms must be from {PROCESSOR_TIMEOUT_MS_MIN} to {PROCESSOR_TIMEOUT_MS_MAX}"
        ));
    }
    Ok(ProcessorSettings {
        name: name.to_owned(),
        kind: config.kind.clone(),
        api_base,
        secret_key: Redacted::new(secret),
        secret_key_env: var.clone(),
        timeout_ms,
        send_return_url: config.send_return_url.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConnectorSettings, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            processors: BTreeMap<String, ProcessorConfig>,
            #[serde(default)]
            routing: RoutingConfig,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        ConnectorSettings::with_env(&file.processors, &file.routing, |name| match name {
            "KEY" => Some("emulator_secret".to_owned()),
            "TEST_KEY" => Some("sk_test_secret".to_owned()),
            "LIVE_KEY" => Some("rk_live_secret".to_owned()),
            _ => None,
        })
    }

    const STRIPE: &str = "[processors.stripe_eu]\nkind = \"stripe\"\n\
        api_base = \"http://127.0.0.1:1\"\nsecret_key_env = \"KEY\"\n";

    #[test]
    fn the_documented_tables_parse() {
        let settings = parse(&format!(
            "{STRIPE}[routing]\nlive = [\"stripe_eu\"]\n[[routing.rules]]\ncurrency = \"usd\"\n\
             amount_max = 5000\nlive = [\"stripe_eu\"]\n"
        ))
        .expect("valid");
        assert_eq!(settings.live, ["stripe_eu"]);
        assert_eq!(settings.test, ["sandbox"]);
        assert_eq!(settings.processors[0].timeout_ms, 10_000);
        let usd = Currency::parse("USD").expect("USD");
        assert!(settings.rules[0].matches(usd, "visa", 5000));
        assert!(!settings.rules[0].matches(usd, "visa", 5001));
        // The secret never shows.
        assert!(!format!("{settings:?}").contains("emulator_secret"));
    }

    #[test]
    fn keys_must_fit_the_modes_they_are_routed_in() {
        let stripe = |var: &str| {
            format!(
                "[processors.p]\nkind = \"stripe\"\napi_base = \"http://h\"\n\
                 secret_key_env = \"{var}\"\n"
            )
        };
        let cases = [
            ("TEST_KEY", "[routing]\ntest = [\"p\"]\n", None),
            ("LIVE_KEY", "[routing]\nlive = [\"p\"]\n", None),
            // An emulator's key (neither prefix) goes anywhere.
            ("KEY", "[routing]\nlive = [\"p\"]\ntest = [\"p\"]\n", None),
            (
                "TEST_KEY",
                "[routing]\nlive = [\"p\"]\n",
                Some("processors.p: `TEST_KEY` holds a test key"),
            ),
            (
                "LIVE_KEY",
                "[routing]\ntest = [\"p\"]\n",
                Some("processors.p: `LIVE_KEY` holds a live key"),
            ),
            (
                "TEST_KEY",
                "[[routing.rules]]\ncurrency = \"EUR\"\nlive = [\"p\"]\n",
                Some("routed in live mode"),
            ),
        ];
        for (var, routing, expected) in cases {
            let text = format!("{}{routing}", stripe(var));
            match (parse(&text), expected) {
                (Ok(_), None) => {}
                (Err(error), Some(expected)) => {
                    assert!(
                        error.contains(expected),
                        "{error} should contain {expected}"
                    );
                    assert!(!error.contains("secret"), "the key in {error}");
                }
                (got, expected) => panic!("{text}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn bad_items_are_named() {
        let cases = [
            ("[routing]\nlive = [\"nope\"]\n", "routing.live: unknown processor `nope`"),
            (
                "[processors.x]\nkind = \"stripe\"\napi_base = \"http://h\"\nsecret_key_env = \"MISSING\"\n",
                "`MISSING` is not set",
            ),
            (
                "[processors.x]\nkind = \"stripe\"\napi_base = \"not a url\"\nsecret_key_env = \"KEY\"\n",
                "processors.x.api_base `not a url`",
            ),
            (
                "[processors.x]\nkind = \"adyen\"\napi_base = \"http://h\"\nsecret_key_env = \"KEY\"\n",
                "processors.x.kind: unknown kind `adyen`",
            ),
            (
                "[[routing.rules]]\ncurrency = \"XXQ\"\nlive = []\n",
                "routing.rules[0].currency",
            ),
            (
                "[routing]\nlive = [\"sandbox\"]\n",
                "routing.live: \"sandbox\" (the simulator) cannot take live payments",
            ),
            (
                &format!("{STRIPE}[[routing.rules]]\ncurrency = \"USD\"\nlive = [\"stripe_eu\", \"sandbox\"]\n"),
                "routing.rules[0].live: \"sandbox\"",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(
                error.contains(expected),
                "{error} should contain {expected}"
            );
        }
    }
}
