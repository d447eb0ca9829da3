//! Typed configuration: the four flags of SPEC §8 (each with its `VINR_…` variable) plus an
//! optional TOML file for everything else. Unknown keys in the file are an error, so a typo
//! never silently falls back to a default.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use vinr_domain::ledger::Pricing;
use vinr_domain::limits::{
    AMOUNT_MINOR_UNITS_MAX, API_KEY_CHARS_MAX, AUTHORIZATION_TTL_MS_DEFAULT,
    HTTP_BODY_READ_TIMEOUT_MS_DEFAULT, HTTP_CONNECTIONS_MAX, HTTP_HEADER_READ_TIMEOUT_MS_DEFAULT,
    HTTP_KEEP_ALIVE_IDLE_TIMEOUT_MS_DEFAULT, HTTP_TIMEOUT_MS_MAX, HTTP_TIMEOUT_MS_MIN,
    IDEMPOTENCY_RETENTION_HOURS_MAX, IDEMPOTENCY_RETENTION_MS_DEFAULT, PAYMENT_EXPIRY_MS_DEFAULT,
    PRICING_PERCENT_BPS_MAX, SANDBOX_SECRET_KEY_CHARS_MIN,
};
use vinr_domain::settlement::Schedule;
use vinr_domain::Mode;

use crate::redacted::Redacted;
/// The `[webhooks]` table lives with the webhook rules it configures.
pub use crate::webhooks::WebhooksConfig;

pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
pub const DATABASE_URL_DEFAULT: &str = "sqlite://vinr.db";
/// A fixed test secret key for the sandbox account (SPEC §10); wins over `[sandbox] secret_key`.
pub const SANDBOX_SECRET_KEY_VAR: &str = "VINR_SANDBOX_SECRET_KEY";

/// The `[rate_limit]` table (SPEC §2, §8): per API key, separate read and write buckets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub test_per_second: u32,
    pub test_burst: u32,
    pub live_per_second: u32,
    pub live_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            test_per_second: 25,
            test_burst: 50,
            live_per_second: 100,
            live_burst: 200,
        }
    }
}

/// The `[http]` table (SPEC §2 "Connections"): how long a connection may wait, and how many
/// may be open at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A client must finish a request's headers within this many milliseconds of connecting
    /// (or of the first byte of a later request on a kept-alive connection), or it is
    /// disconnected.
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this many milliseconds of its headers, or it
    /// is answered 408 and the connection closed.
    pub body_read_timeout_ms: u64,
    /// A kept-alive connection that sends nothing for this many milliseconds after an answer
    /// is closed.
    pub keep_alive_idle_timeout_ms: u64,
    /// The most connections open at once; beyond it a new connection is accepted and closed
    /// at once. Default: the process's file limit (`ulimit -n`) less a reserve of a quarter
    /// of it (at least 64) for the database, logs and webhook sockets.
    pub max_connections: Option<usize>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_ms: HTTP_HEADER_READ_TIMEOUT_MS_DEFAULT,
            body_read_timeout_ms: HTTP_BODY_READ_TIMEOUT_MS_DEFAULT,
            keep_alive_idle_timeout_ms: HTTP_KEEP_ALIVE_IDLE_TIMEOUT_MS_DEFAULT,
            max_connections: None,
        }
    }
}

impl HttpConfig {
    fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            (
                "keep_alive_idle_timeout_ms",
                self.keep_alive_idle_timeout_ms,
            ),
        ] {
            if !(HTTP_TIMEOUT_MS_MIN..=HTTP_TIMEOUT_MS_MAX).contains(&value) {
                return Err(format!(
                    "http.{key} must be from {HTTP_TIMEOUT_MS_MIN} to {HTTP_TIMEOUT_MS_MAX}"
                ));
            }
        }
        if let Some(max) = self.max_connections {
            if !(1..=HTTP_CONNECTIONS_MAX).contains(&max) {
                return Err(format!(
                    "http.max_connections must be from 1 to {HTTP_CONNECTIONS_MAX}"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long stored answers are kept (SPEC: at least 24 h).
    pub retention_hours: u32,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention_hours: (IDEMPOTENCY_RETENTION_MS_DEFAULT / 3_600_000) as u32,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// How long a checkout stays open before the payment expires.
    pub expiry_minutes: u32,
    /// How long an authorization waits for capture before it is cancelled.
    pub authorization_ttl_hours: u32,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            expiry_minutes: (PAYMENT_EXPIRY_MS_DEFAULT / 60_000) as u32,
            authorization_ttl_hours: (AUTHORIZATION_TTL_MS_DEFAULT / 3_600_000) as u32,
        }
    }
}

/// The `[pricing]` table (SPEC §7): the deployment's default fees, and per-account overrides
/// under `[pricing.accounts.<acct_id>]` (each key optional, falling back to the default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// Percentage of each captured card payment, in basis points (140 = 1.4 %).
    pub percent_bps: u32,
    /// Fixed fee per captured card payment, in minor units.
    pub fixed_minor: u64,
    /// Fee per refund, in minor units (0: refunds are free).
    pub refund_fixed_minor: u64,
    /// Fee per dispute, in minor units (SPEC §11, default 1 500), kept whatever the outcome.
    pub dispute_fee_minor: u64,
    pub accounts: BTreeMap<String, AccountPricingConfig>,
}

impl Default for PricingConfig {
    fn default() -> Self {
        let pricing = Pricing::default();
        PricingConfig {
            percent_bps: pricing.percent_bps,
            fixed_minor: pricing.fixed_minor,
            refund_fixed_minor: pricing.refund_fixed_minor,
            dispute_fee_minor: pricing.dispute_fee_minor,
            accounts: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPricingConfig {
    pub percent_bps: Option<u32>,
    pub fixed_minor: Option<u64>,
    pub refund_fixed_minor: Option<u64>,
    pub dispute_fee_minor: Option<u64>,
}

/// Every account's pricing, resolved from [`PricingConfig`].
#[derive(Debug, Clone, Default)]
pub struct Pricings {
    default: Pricing,
    accounts: HashMap<String, Pricing>,
}

impl Pricings {
    fn new(config: &PricingConfig) -> Result<Pricings, String> {
        let default = Pricing {
            percent_bps: config.percent_bps,
            fixed_minor: config.fixed_minor,
            refund_fixed_minor: config.refund_fixed_minor,
            dispute_fee_minor: config.dispute_fee_minor,
        };
        check_pricing("pricing", default)?;
        let mut accounts = HashMap::new();
        for (account, custom) in &config.accounts {
            let pricing = Pricing {
                percent_bps: custom.percent_bps.unwrap_or(default.percent_bps),
                fixed_minor: custom.fixed_minor.unwrap_or(default.fixed_minor),
                refund_fixed_minor: custom
                    .refund_fixed_minor
                    .unwrap_or(default.refund_fixed_minor),
                dispute_fee_minor: custom
                    .dispute_fee_minor
                    .unwrap_or(default.dispute_fee_minor),
            };
            check_pricing(&format!("pricing.accounts.{account}"), pricing)?;
            accounts.insert(account.clone(), pricing);
        }
        Ok(Pricings { default, accounts })
    }

    /// What `account_id` pays.
    pub fn for_account(&self, account_id: &str) -> Pricing {
        self.accounts
            .get(account_id)
            .copied()
            .unwrap_or(self.default)
    }
}

fn check_pricing(table: &str, pricing: Pricing) -> Result<(), String> {
    if pricing.percent_bps > PRICING_PERCENT_BPS_MAX {
        return Err(format!(
            "{table}.percent_bps must be at most {PRICING_PERCENT_BPS_MAX} (100 %)"
        ));
    }
    if pricing.fixed_minor > AMOUNT_MINOR_UNITS_MAX
        || pricing.refund_fixed_minor > AMOUNT_MINOR_UNITS_MAX
        || pricing.dispute_fee_minor > AMOUNT_MINOR_UNITS_MAX
    {
        return Err(format!(
            "{table}: fixed_minor, refund_fixed_minor and dispute_fee_minor must be at most \
             {AMOUNT_MINOR_UNITS_MAX}"
        ));
    }
    Ok(())
}

/// The `[settlements]` table (SPEC §7): when accounts are settled and when payouts are sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettlementsConfig {
    /// `daily` (default), `weekly` or `manual`: how often live balances are settled.
    pub schedule: String,
    /// `interval` (default): test mode settles every `test_interval_minutes` (unless the
    /// account is `manual`); `manual`: test mode settles only on demand (the test helper,
    /// `vinr settle`), live mode keeps its schedule.
    pub test_schedule: String,
    /// Test mode settles every this many minutes (unless the account is `manual`).
    pub test_interval_minutes: u32,
    /// A live settlement's payout is sent (`paid`) this long after it is made; test mode
    /// payouts are sent on the worker's next pass.
    pub live_payout_delay_hours: u32,
    /// Per-account schedules under `[settlements.accounts.<acct_id>]`.
    pub accounts: BTreeMap<String, AccountSettlementsConfig>,
}

impl Default for SettlementsConfig {
    fn default() -> Self {
        SettlementsConfig {
            schedule: Schedule::Daily.as_str().into(),
            test_schedule: TEST_SCHEDULE_INTERVAL.into(),
            test_interval_minutes: 5,
            live_payout_delay_hours: 24,
            accounts: BTreeMap::new(),
        }
    }
}

const TEST_SCHEDULE_INTERVAL: &str = "interval";
const TEST_SCHEDULE_MANUAL: &str = "manual";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettlementsConfig {
    pub schedule: String,
}

/// [`SettlementsConfig`], validated.
#[derive(Debug, Clone)]
pub struct SettlementSettings {
    default_schedule: Schedule,
    schedules: HashMap<String, Schedule>,
    /// `test_schedule = "manual"`: no scheduled run settles test mode.
    pub test_manual: bool,
    pub test_interval_minutes: u32,
    pub live_payout_delay_ms: i64,
}

impl SettlementSettings {
    pub fn new(config: &SettlementsConfig) -> Result<SettlementSettings, String> {
        let parse = |table: &str, value: &str| {
            Schedule::parse(value).ok_or_else(|| {
                format!("{table}.schedule must be `daily`, `weekly` or `manual`, not `{value}`")
            })
        };
        let default_schedule = parse("settlements", &config.schedule)?;
        let mut schedules = HashMap::new();
        for (account, custom) in &config.accounts {
            let table = format!("settlements.accounts.{account}");
            schedules.insert(account.clone(), parse(&table, &custom.schedule)?);
        }
        if config.test_interval_minutes == 0 {
            return Err("settlements.test_interval_minutes must be at least 1".into());
        }
        let test_manual = match config.test_schedule.as_str() {
            TEST_SCHEDULE_INTERVAL => false,
            TEST_SCHEDULE_MANUAL => true,
            other => {
                return Err(format!(
                    "settlements.test_schedule must be `{TEST_SCHEDULE_INTERVAL}` or \
                     `{TEST_SCHEDULE_MANUAL}`, not `{other}`"
                ))
            }
        };
        Ok(SettlementSettings {
            default_schedule,
            schedules,
            test_manual,
            test_interval_minutes: config.test_interval_minutes,
            live_payout_delay_ms: i64::from(config.live_payout_delay_hours) * 3_600_000,
        })
    }

    /// How often `account_id` is settled (in test mode, unless [`Self::test_manual`]).
    pub fn schedule(&self, account_id: &str) -> Schedule {
        self.schedules
            .get(account_id)
            .copied()
            .unwrap_or(self.default_schedule)
    }
}

impl Default for SettlementSettings {
    fn default() -> Self {
        SettlementSettings::new(&SettlementsConfig::default())
            .unwrap_or_else(|error| unreachable!("the defaults are valid: {error}"))
    }
}

/// The `[sandbox]` table (SPEC §10).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The sandbox account's test secret key, fixed instead of generated on first start (and
    /// added to the sandbox account on a later start if it is missing).
    pub secret_key: Option<Redacted<String>>,
    /// The key came from [`SANDBOX_SECRET_KEY_VAR`], not from the file.
    #[serde(skip)]
    pub secret_key_from_env: bool,
}

/// A fixed sandbox key, validated, and where it was given (for messages, never the key).
#[derive(Debug, Clone)]
pub struct SandboxKey {
    pub secret: Redacted<String>,
    /// `VINR_SANDBOX_SECRET_KEY` or `sandbox.secret_key`.
    pub source: &'static str,
}

impl SandboxConfig {
    fn key(&self) -> Result<Option<SandboxKey>, String> {
        let Some(secret) = &self.secret_key else {
            return Ok(None);
        };
        let source = if self.secret_key_from_env {
            SANDBOX_SECRET_KEY_VAR
        } else {
            "sandbox.secret_key"
        };
        // The message never repeats the value: it is a secret.
        let random = secret
            .expose()
            .strip_prefix("sk_test_")
            .ok_or_else(|| format!("{source}: a sandbox secret key starts with `sk_test_`"))?;
        if !(SANDBOX_SECRET_KEY_CHARS_MIN..=API_KEY_CHARS_MAX).contains(&random.len())
            || !random.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(format!(
                "{source}: a sandbox secret key is `sk_test_` followed by \
                 {SANDBOX_SECRET_KEY_CHARS_MIN} to {API_KEY_CHARS_MAX} letters and digits \
                 (this one has {} characters after the prefix)",
                random.chars().count()
            ));
        }
        Ok(Some(SandboxKey {
            secret: secret.clone(),
            source,
        }))
    }
}

/// Takes [`SANDBOX_SECRET_KEY_VAR`] from the environment into `file` (it wins over the
/// file's `[sandbox] secret_key`). Set but empty is an error, so a CI secret that did not
/// arrive is noticed at start rather than as a key that does not work.
pub fn sandbox_key_from_env(file: &mut FileConfig) -> Result<(), String> {
    let Some(value) = std::env::var_os(SANDBOX_SECRET_KEY_VAR) else {
        return Ok(());
    };
    let value = value
        .into_string()
        .map_err(|_| format!("{SANDBOX_SECRET_KEY_VAR} is not UTF-8"))?;
    if value.is_empty() {
        return Err(format!(
            "{SANDBOX_SECRET_KEY_VAR} is set but empty; unset it for a generated key"
        ));
    }
    file.sandbox.secret_key = Some(Redacted::new(value));
    file.sandbox.secret_key_from_env = true;
    Ok(())
}

/// The `[processors.<name>]` tables live with the connectors they configure (SPEC §15).
pub use crate::connectors::config::{ProcessorConfig, RoutingConfig, RuleConfig};

/// The TOML file named by `--config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Modes this deployment serves: `["test"]` makes a sandbox host where live keys get 401.
    pub modes: Vec<String>,
    pub http: HttpConfig,
    pub rate_limit: RateLimitConfig,
    pub idempotency: IdempotencyConfig,
    pub payments: PaymentsConfig,
    pub webhooks: WebhooksConfig,
    pub pricing: PricingConfig,
    pub settlements: SettlementsConfig,
    pub sandbox: SandboxConfig,
    /// Acquirer connectors by name (SPEC §15).
    pub processors: BTreeMap<String, ProcessorConfig>,
    /// Which processors each mode's payments go to.
    pub routing: RoutingConfig,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            modes: vec!["test".into(), "live".into()],
            http: HttpConfig::default(),
            rate_limit: RateLimitConfig::default(),
            idempotency: IdempotencyConfig::default(),
            payments: PaymentsConfig::default(),
            webhooks: WebhooksConfig::default(),
            pricing: PricingConfig::default(),
            settlements: SettlementsConfig::default(),
            sandbox: SandboxConfig::default(),
            processors: BTreeMap::new(),
            routing: RoutingConfig::default(),
        }
    }
}

/// Everything `vinr serve` runs with, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Base of `checkoutUrl`, without a trailing slash.
    pub public_url: String,
    /// No `--public-url` was given: the server derives it from the address it bound (which
    /// differs from `listen` when that asks for port 0).
    pub public_url_is_default: bool,
    pub test_mode_enabled: bool,
    pub live_mode_enabled: bool,
    pub http: HttpConfig,
    pub rate_limit: RateLimitConfig,
    pub idempotency_retention_ms: i64,
    pub payment_expiry_ms: i64,
    pub authorization_ttl_ms: i64,
    pub webhooks: WebhooksConfig,
    pub pricing: Pricings,
    pub settlements: SettlementSettings,
    /// `VINR_PLATFORM_KEY` (SPEC §10): a platform key made sure of at start, stored hashed.
    pub platform_key: Option<Redacted<String>>,
    /// The sandbox account's fixed test key (`None`: generated on first start).
    pub sandbox_key: Option<SandboxKey>,
    /// The processors and routes, checked, with their secrets read from the environment.
    pub connectors: crate::connectors::config::ConnectorSettings,
}

impl Settings {
    pub fn new(
        listen: SocketAddr,
        database_url: String,
        public_url: Option<String>,
        file: FileConfig,
    ) -> Result<Settings, String> {
        let mut test_mode_enabled = false;
        let mut live_mode_enabled = false;
        for mode in &file.modes {
            match Mode::parse(mode) {
                Some(Mode::Test) => test_mode_enabled = true,
                Some(Mode::Live) => live_mode_enabled = true,
                None => return Err(format!("modes: unknown mode `{mode}` (test or live)")),
            }
        }
        if !test_mode_enabled && !live_mode_enabled {
            return Err("modes: at least one of test and live must be enabled".into());
        }
        file.http.check()?;
        let limits = &file.rate_limit;
        if limits.enabled
            && [
                limits.test_per_second,
                limits.test_burst,
                limits.live_per_second,
                limits.live_burst,
            ]
            .contains(&0)
        {
            return Err("rate_limit: rates and bursts must be at least 1".into());
        }
        // At most the events' 30 days: a stored answer may be the snapshot held by its event.
        if !(24..=IDEMPOTENCY_RETENTION_HOURS_MAX).contains(&file.idempotency.retention_hours) {
            return Err(format!(
                "idempotency.retention_hours must be from 24 to {IDEMPOTENCY_RETENTION_HOURS_MAX}"
            ));
        }
        if file.payments.expiry_minutes == 0 || file.payments.authorization_ttl_hours == 0 {
            return Err(
                "payments: expiry_minutes and authorization_ttl_hours must be positive".into(),
            );
        }
        let webhooks = &file.webhooks;
        if webhooks.retry_schedule_seconds.len() > 20
            || webhooks
                .retry_schedule_seconds
                .iter()
                .any(|&s| s == 0 || s > 7 * 86400)
        {
            return Err(
                "webhooks.retry_schedule_seconds: at most 20 steps, each 1 s to 7 days".into(),
            );
        }
        if !(1..=300).contains(&webhooks.timeout_seconds) {
            return Err("webhooks.timeout_seconds must be from 1 to 300".into());
        }
        if !(10..=60_000).contains(&webhooks.poll_interval_ms) {
            return Err("webhooks.poll_interval_ms must be from 10 to 60000".into());
        }
        let pricing = Pricings::new(&file.pricing)?;
        let settlements = SettlementSettings::new(&file.settlements)?;
        let sandbox_key = file.sandbox.key()?;
        let connectors =
            crate::connectors::config::ConnectorSettings::new(&file.processors, &file.routing)?;
        if let Some(key) = &sandbox_key {
            if !test_mode_enabled {
                return Err(format!(
                    "{}: a sandbox key needs test mode (modes)",
                    key.source
                ));
            }
        }
        let public_url_is_default = public_url.is_none();
        let public_url = public_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        url::Url::parse(&public_url)
            .map_err(|error| format!("--public-url `{public_url}`: {error}"))?;
        Ok(Settings {
            listen,
            database_url,
            public_url,
            public_url_is_default,
            test_mode_enabled,
            live_mode_enabled,
            http: file.http,
            rate_limit: file.rate_limit,
            idempotency_retention_ms: i64::from(file.idempotency.retention_hours) * 3_600_000,
            payment_expiry_ms: i64::from(file.payments.expiry_minutes) * 60_000,
            authorization_ttl_ms: i64::from(file.payments.authorization_ttl_hours) * 3_600_000,
            webhooks: file.webhooks,
            pricing,
            settlements,
            platform_key: None,
            sandbox_key,
            connectors,
        })
    }

    pub fn mode_enabled(&self, mode: Mode) -> bool {
        match mode {
            Mode::Test => self.test_mode_enabled,
            Mode::Live => self.live_mode_enabled,
        }
    }
}

pub fn load_file(path: Option<&Path>) -> Result<FileConfig, String> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_config_parses_the_documented_table() {
        let file: FileConfig = toml::from_str(
            "modes = [\"test\"]\n[rate_limit]\nenabled = false\ntest_per_second = 5\n",
        )
        .expect("valid config");
        assert_eq!(file.modes, vec!["test"]);
        assert!(!file.rate_limit.enabled);
        assert_eq!(file.rate_limit.test_per_second, 5);
        assert_eq!(file.rate_limit.live_burst, 200);
    }

    #[test]
    fn pricing_has_a_default_and_per_account_overrides() {
        let file: FileConfig = toml::from_str(
            "[pricing]\nfixed_minor = 30\n[pricing.accounts.acct_big]\npercent_bps = 90\n\
             dispute_fee_minor = 900\n",
        )
        .expect("valid config");
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let settings =
            Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file).expect("valid");
        let default = settings.pricing.for_account("acct_other");
        assert_eq!((default.percent_bps, default.fixed_minor), (140, 30));
        assert_eq!(default.dispute_fee_minor, 1500);
        let big = settings.pricing.for_account("acct_big");
        assert_eq!(
            (
                big.percent_bps,
                big.fixed_minor,
                big.refund_fixed_minor,
                big.dispute_fee_minor
            ),
            (90, 30, 0, 900)
        );
        let bad: FileConfig =
            toml::from_str("[pricing.accounts.acct_x]\npercent_bps = 10001\n").expect("parses");
        assert!(Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, bad).is_err());
    }

    #[test]
    fn settlement_schedules_have_a_default_and_per_account_overrides() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let file: FileConfig = toml::from_str(
            "[settlements]\nschedule = \"weekly\"\n[settlements.accounts.acct_m]\nschedule = \"manual\"\n",
        )
        .expect("valid config");
        let settings =
            Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file).expect("valid");
        assert_eq!(settings.settlements.schedule("acct_x"), Schedule::Weekly);
        assert_eq!(settings.settlements.schedule("acct_m"), Schedule::Manual);
        let bad: FileConfig =
            toml::from_str("[settlements]\nschedule = \"hourly\"\n").expect("parses");
        assert!(Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, bad).is_err());
    }

    #[test]
    fn test_schedule_is_interval_or_manual() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let settings = |text: &str| {
            let file: FileConfig = toml::from_str(text).expect("parses");
            Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file)
        };
        assert!(!settings("").expect("valid").settlements.test_manual);
        let manual = settings("[settlements]\ntest_schedule = \"manual\"\n").expect("valid");
        assert!(manual.settlements.test_manual);
        assert_eq!(manual.settlements.schedule("acct_x"), Schedule::Daily);
        let error = settings("[settlements]\ntest_schedule = \"hourly\"\n").expect_err("bad");
        assert!(error.contains("settlements.test_schedule"), "{error}");
        assert!(error.contains("`hourly`"), "{error}");
    }

    #[test]
    fn a_sandbox_key_is_checked_and_never_shown() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let good = format!("sk_test_{}", "A1b2".repeat(8));
        let file: FileConfig =
            toml::from_str(&format!("[sandbox]\nsecret_key = \"{good}\"\n")).expect("parses");
        assert!(!format!("{file:?}").contains(&good), "Debug shows the key");
        let settings =
            Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file).expect("valid");
        assert!(
            !format!("{settings:?}").contains(&good),
            "Debug shows the key"
        );
        let key = settings.sandbox_key.expect("a key");
        assert_eq!(
            (key.secret.expose(), key.source),
            (&good, "sandbox.secret_key")
        );
        for bad in [
            format!("sk_test_{}", "a".repeat(31)),
            format!("sk_live_{}", "a".repeat(40)),
            format!("sk_test_{}-", "a".repeat(40)),
            format!("sk_test_{}", "a".repeat(129)),
        ] {
            let mut file = FileConfig::default();
            file.sandbox.secret_key = Some(Redacted::new(bad.clone()));
            let error = Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file)
                .expect_err("refused");
            assert!(error.starts_with("sandbox.secret_key: "), "{error}");
            assert!(!error.contains(&bad), "the message shows the key: {error}");
        }
        let mut live_only = FileConfig {
            modes: vec!["live".into()],
            ..FileConfig::default()
        };
        live_only.sandbox.secret_key = Some(Redacted::new(good));
        assert!(Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, live_only).is_err());
        assert!(toml::from_str::<FileConfig>("[sandbox]\nkey = \"x\"\n").is_err());
    }

    #[test]
    fn webhooks_table_parses_and_is_checked() {
        let file: FileConfig =
            toml::from_str("[webhooks]\nretry_schedule_seconds = [1, 2]\ntimeout_seconds = 2\n")
                .expect("valid config");
        assert_eq!(file.webhooks.retry_schedule_seconds, vec![1, 2]);
        assert_eq!(file.webhooks.retry_after_max_seconds, 86400);
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let mut bad = FileConfig::default();
        bad.webhooks.timeout_seconds = 0;
        assert!(Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, bad).is_err());
        assert!(toml::from_str::<FileConfig>("[webhooks]\ntimeout = 1\n").is_err());
        let listed: FileConfig =
            toml::from_str("[webhooks]\ntest_allowed_hosts = [\"app:3000\", \"receiver\"]\n")
                .expect("a host list parses");
        let hook = url::Url::parse("http://app:3000/hooks").expect("a URL");
        assert!(listed.webhooks.test_allowed_hosts.allows(&hook));
        assert!(!file.webhooks.test_allowed_hosts.allows(&hook));
        let error = toml::from_str::<FileConfig>(
            "[webhooks]\ntest_allowed_hosts = [\"http://app:3000/\"]\n",
        )
        .expect_err("a URL is not a host");
        assert!(
            error
                .to_string()
                .contains("webhooks.test_allowed_hosts: `http://app:3000/`"),
            "{error}"
        );
    }

    #[test]
    fn http_table_parses_and_is_checked() {
        let file: FileConfig =
            toml::from_str("[http]\nheader_read_timeout_ms = 300\nmax_connections = 20\n")
                .expect("valid config");
        assert_eq!(file.http.header_read_timeout_ms, 300);
        assert_eq!(
            file.http.keep_alive_idle_timeout_ms,
            HTTP_KEEP_ALIVE_IDLE_TIMEOUT_MS_DEFAULT
        );
        assert_eq!(file.http.max_connections, Some(20));
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        for bad in [
            "[http]\nheader_read_timeout_ms = 0\n",
            "[http]\nkeep_alive_idle_timeout_ms = 3600001\n",
            "[http]\nmax_connections = 0\n",
        ] {
            let file: FileConfig = toml::from_str(bad).expect("parses");
            assert!(
                Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file).is_err(),
                "{bad}"
            );
        }
        assert!(toml::from_str::<FileConfig>("[http]\nheader_timeout_ms = 1\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("[rate_limit]\nenabeld = false\n").is_err());
    }

    #[test]
    fn settings_reject_bad_values() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let file = FileConfig {
            modes: vec!["prod".into()],
            ..FileConfig::default()
        };
        assert!(Settings::new(listen, DATABASE_URL_DEFAULT.into(), None, file).is_err());
        let settings = Settings::new(
            listen,
            DATABASE_URL_DEFAULT.into(),
            None,
            FileConfig::default(),
        )
        .expect("defaults are valid");
        assert_eq!(settings.public_url, "http://127.0.0.1:8080");
    }
}
