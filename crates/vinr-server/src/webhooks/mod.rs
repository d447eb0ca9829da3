//! Webhooks (SPEC §6), the pure parts: the event types an endpoint may subscribe to, endpoint
//! URL rules, secrets and Standard Webhooks signatures, the retry schedule (and the
//! `[webhooks]` table that sets it, [`WebhooksConfig`]), and the address rules that keep
//! delivery away from private networks ([`ssrf`]). Sending is the delivery worker's
//! (`workers::webhooks`); storage is the store's.

pub mod send;
pub mod ssrf;
pub mod wire;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vinr_domain::webhook::{WebhookFault, WebhookFaults, WebhookFaultsInput};
use vinr_domain::Mode;
use vinr_types as types;

use crate::redacted::Redacted;
use ssrf::AllowedHosts;
use vinr_domain::limits::{WEBHOOK_SECRET_RANDOM_BYTES, WEBHOOK_URL_BYTES_MAX};

/// The `[webhooks]` table (SPEC §6): the retry schedule and the attempt timeout. Tests and
/// sandboxes use a schedule in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Delay before each retry after a failed attempt; after the last, the delivery fails.
    pub retry_schedule_seconds: Vec<u64>,
    /// How long an attempt may take (connect, send, answer) before it counts as failed.
    pub timeout_seconds: u64,
    /// The most a receiver's `Retry-After` may postpone the next attempt.
    pub retry_after_max_seconds: u64,
    /// How often a node looks for due deliveries when no commit of its own woke it.
    pub poll_interval_ms: u64,
    /// A PEM file of CA certificates trusted for HTTPS deliveries besides the bundled public
    /// roots: receivers behind a private CA (or a local test CA).
    pub root_certificates: Option<std::path::PathBuf>,
    /// Hosts (`app`) or host:port pairs (`app:3000`) test-mode endpoints may reach by http or
    /// https whatever their address: a receiver in another container of a CI job (SPEC §6).
    /// Loopback needs no entry; live mode ignores the list.
    pub test_allowed_hosts: AllowedHosts,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            retry_schedule_seconds: vec![60, 300, 1800, 7200, 86400],
            timeout_seconds: 30,
            retry_after_max_seconds: 86400,
            poll_interval_ms: 250,
            root_certificates: None,
            test_allowed_hosts: AllowedHosts::default(),
        }
    }
}

/// Every event type a flow writes (SPEC §6), the ones an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "payment.created",
    "payment.requires_authentication",
    "payment.authorized",
    "payment.completed",
    "payment.failed",
    "payment.cancelled",
    "payment.expired",
    "refund.created",
    "refund.succeeded",
    "refund.failed",
    "dispute.created",
    "dispute.updated",
    "dispute.closed",
    "settlement.created",
    "settlement.paid",
];

/// The type of the event `POST /v1/webhooks/:id/test` sends; never stored, never subscribed.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Why an endpoint URL is refused; the message names the rule.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Not a usable webhook URL at all (400 `parameter_invalid`).
    Invalid(String),
    /// A URL whose host this mode may not reach (400 `url_not_allowed`).
    NotAllowed(String),
}

fn invalid(message: impl Into<String>) -> UrlError {
    UrlError::Invalid(message.into())
}

/// Checks an endpoint URL (SPEC §6). Live mode: `https`, to a host that is not a loopback,
/// private, link-local, CGNAT, unique-local or metadata address literal (in any spelling) nor
/// `localhost`. Test mode: `https`, or `http` to loopback; private and metadata literals are
/// refused there too. A host (or host:port) in `allowed` (`[webhooks] test_allowed_hosts`) is
/// allowed in test mode by `http` or `https` whatever its address. Names are checked again on
/// what they resolve to, at delivery. Answers the URL as given.
pub fn validate_url(text: &str, mode: Mode, allowed: &AllowedHosts) -> Result<String, UrlError> {
    if text.is_empty() || text.len() > WEBHOOK_URL_BYTES_MAX {
        return Err(invalid(format!(
            "`url` must be 1 to {WEBHOOK_URL_BYTES_MAX} characters."
        )));
    }
    let url = url::Url::parse(text).map_err(|_| invalid("`url` is not a valid absolute URL."))?;
    let scheme = url.scheme();
    if scheme != "https" && scheme != "http" {
        let shown: String = scheme.chars().take(32).collect();
        return Err(invalid(match mode {
            Mode::Live => format!("`url` must be an https URL; `{shown}` URLs are not supported."),
            Mode::Test => {
                format!("`url` must be an https or http URL; `{shown}` URLs are not supported.")
            }
        }));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("`url` must not carry credentials."));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("`url` must name a host."));
    }
    if mode == Mode::Test && allowed.allows(&url) {
        return Ok(text.to_owned());
    }
    let reach = ssrf::Reach::of(mode);
    if let Err(refused) = ssrf::check_url(&url, reach) {
        let what = match refused.ip {
            Some(ip) => format!("{ip}, a {} address", refused.kind.describe()),
            None => format!("{}, a {} name", refused.host, refused.kind.describe()),
        };
        return Err(UrlError::NotAllowed(format!(
            "`url` points at {what}: {}.",
            reach.rule()
        )));
    }
    match (scheme, mode) {
        ("https", _) => Ok(text.to_owned()),
        ("http", Mode::Test) if ssrf::is_loopback_host(&url) => Ok(text.to_owned()),
        ("http", Mode::Test) => Err(invalid(
            "`url` must use https; http is allowed in test mode only for loopback (localhost, \
             127.0.0.1, [::1]) and the hosts listed in `[webhooks] test_allowed_hosts`.",
        )),
        _ => Err(invalid("`url` must use https in live mode.")),
    }
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> Redacted<String> {
    let mut bytes = [0u8; WEBHOOK_SECRET_RANDOM_BYTES];
    rand::rng().fill(&mut bytes[..]);
    Redacted::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The Standard Webhooks signature of one message: `v1,` and the base64 of
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}"), the key being the base64-decoded part of the
/// secret after `whsec_`. `None` when the secret is not in that format.
pub fn sign(secret: &Redacted<String>, id: &str, timestamp_s: i64, body: &[u8]) -> Option<String> {
    let encoded = secret.expose().strip_prefix("whsec_")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// A wrong signature of the same shape as [`sign`]'s (`v1,` and the base64 of 32 bytes): the
/// right one with every bit flipped, so no receiver can verify it (`badSignature`, SPEC §12).
pub fn spoil_signature(signature: &str) -> String {
    let encoded = signature.strip_prefix("v1,").unwrap_or(signature);
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| vec![0; 32]);
    for byte in &mut bytes {
        *byte = !*byte;
    }
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The draw deciding whether the delivery of `event_id` to `endpoint_id` gets `fault`: 64 bits
/// of a SHA-256 of the three, so every node and every retry decide alike
/// ([`WebhookFaults::chooses`]).
pub fn fault_draw(endpoint_id: &str, event_id: &str, fault: WebhookFault) -> u64 {
    let mut hasher = Sha256::new();
    for part in [endpoint_id, event_id, fault.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Whether the delivery of `event_id` to `endpoint_id` gets `fault` under `faults`.
pub fn fault_chosen(
    faults: &WebhookFaults,
    endpoint_id: &str,
    event_id: &str,
    fault: WebhookFault,
) -> bool {
    faults.chooses(fault, fault_draw(endpoint_id, event_id, fault))
}

/// The faults of a request body, unchecked.
pub fn faults_input(faults: &types::WebhookFaults) -> WebhookFaultsInput {
    WebhookFaultsInput {
        duplicate: faults.duplicate,
        bad_signature: faults.bad_signature,
        delay_ms: faults.delay_ms,
        out_of_order: faults.out_of_order,
    }
}

/// Faults as shown and stored: every field written out.
pub fn faults_wire(faults: &WebhookFaults) -> types::WebhookFaults {
    types::WebhookFaults {
        duplicate: Some(faults.duplicate()),
        bad_signature: Some(faults.bad_signature()),
        delay_ms: Some(i64::try_from(faults.delay_ms()).unwrap_or(i64::MAX)),
        out_of_order: Some(faults.out_of_order()),
    }
}

/// The stored form of an endpoint's faults: the wire JSON.
pub fn encode_faults(faults: &WebhookFaults) -> String {
    serde_json::to_string(&faults_wire(faults)).unwrap_or_else(|_| "{}".to_owned())
}

/// Reads stored faults back through the same checks as a request's; `None` when the text is
/// not faults (corrupt), `Some(None)` when they inject nothing.
pub fn decode_faults(text: &str) -> Option<Option<WebhookFaults>> {
    let faults: types::WebhookFaults = serde_json::from_str(text).ok()?;
    WebhookFaults::parse(faults_input(&faults)).ok()
}

/// The retry schedule: how long after the `attempt`-th failed attempt (1-based) the next is
/// made, or `None` when that was the last. `jitter_permille` (0..=1000) of the step is added, so
/// an attempt is never early and endpoints that fail together do not retry together.
/// `retry_after_s` (a receiver's `Retry-After`) postpones it further, up to `retry_after_max_s`.
pub fn next_delay_ms(
    schedule_s: &[u64],
    attempt: u32,
    jitter_permille: u64,
    retry_after_s: Option<u64>,
    retry_after_max_s: u64,
) -> Option<u64> {
    let step_s = *schedule_s.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    let step_ms = step_s.saturating_mul(1000);
    let jitter_ms = step_ms / 10 * jitter_permille.min(1000) / 1000;
    let scheduled_ms = step_ms.saturating_add(jitter_ms);
    let asked_ms = retry_after_s
        .map(|seconds| seconds.min(retry_after_max_s).saturating_mul(1000))
        .unwrap_or(0);
    Some(scheduled_ms.max(asked_ms))
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date (answered as seconds from `now_s`).
pub fn parse_retry_after(value: &str, now_s: i64) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format).ok()?;
    let at_s = at.assume_utc().unix_timestamp();
    Some(u64::try_from(at_s.saturating_sub(now_s)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_matches_the_standard_webhooks_vectors() {
        let text = include_str!("../../tests/data/webhook-signatures.json");
        let file: serde_json::Value = serde_json::from_str(text).expect("vectors parse");
        let vectors = file["vectors"].as_array().expect("a vector list");
        assert!(vectors.len() >= 3);
        for vector in vectors {
            let secret = Redacted::new(vector["secret"].as_str().expect("secret").to_owned());
            let id = vector["webhook-id"].as_str().expect("id");
            let timestamp = vector["webhook-timestamp"].as_i64().expect("timestamp");
            let body = vector["body"].as_str().expect("body");
            assert_eq!(
                sign(&secret, id, timestamp, body.as_bytes()).as_deref(),
                vector["webhook-signature"].as_str(),
                "vector {id}"
            );
        }
    }

    #[test]
    fn a_spoiled_signature_is_well_formed_and_wrong() {
        let secret = new_secret();
        let right = sign(&secret, "evt_1", 1_700_000_000, b"{}").expect("signed");
        let wrong = spoil_signature(&right);
        assert_ne!(wrong, right);
        let encoded = wrong.strip_prefix("v1,").expect("v1,");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn faults_round_trip_through_storage_and_draws_are_stable() {
        let input = WebhookFaultsInput {
            duplicate: Some(0.25),
            bad_signature: None,
            delay_ms: Some(1500),
            out_of_order: Some(true),
        };
        let faults = WebhookFaults::parse(input).expect("valid").expect("some");
        assert_eq!(decode_faults(&encode_faults(&faults)), Some(Some(faults)));
        assert_eq!(decode_faults("not json"), None);
        assert_eq!(decode_faults(r#"{"duplicate": 2}"#), None);
        let draw = fault_draw("we_1", "evt_1", WebhookFault::Duplicate);
        assert_eq!(draw, fault_draw("we_1", "evt_1", WebhookFault::Duplicate));
        assert_ne!(
            draw,
            fault_draw("we_1", "evt_1", WebhookFault::BadSignature)
        );
        assert_ne!(draw, fault_draw("we_1", "evt_2", WebhookFault::Duplicate));
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let secret = new_secret();
        let encoded = secret.expose().strip_prefix("whsec_").expect("prefix");
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(key.len(), WEBHOOK_SECRET_RANDOM_BYTES);
        assert_ne!(new_secret(), secret);
        assert!(sign(&Redacted::new("nope".into()), "a", 1, b"{}").is_none());
    }

    #[test]
    fn urls_follow_the_mode_rules() {
        let none = AllowedHosts::default();
        let ok = |text: &str, mode| validate_url(text, mode, &none).is_ok();
        let invalid =
            |text: &str, mode| matches!(validate_url(text, mode, &none), Err(UrlError::Invalid(_)));
        let not_allowed = |text: &str, mode| {
            matches!(
                validate_url(text, mode, &none),
                Err(UrlError::NotAllowed(_))
            )
        };
        assert!(ok("https://shop.example/hooks", Mode::Live));
        assert!(invalid("http://shop.example/hooks", Mode::Live));
        assert!(not_allowed("http://localhost:9000/hooks", Mode::Live));
        assert!(not_allowed("https://localhost:9000/hooks", Mode::Live));
        assert!(ok("http://localhost:9000/hooks", Mode::Test));
        assert!(ok("http://127.0.0.1:9000/", Mode::Test));
        assert!(ok("http://127.1:9000/", Mode::Test));
        assert!(ok("http://[::1]:9000/", Mode::Test));
        assert!(ok("https://localhost:9000/", Mode::Test));
        assert!(not_allowed("http://10.0.0.1/", Mode::Test));
        assert!(not_allowed("https://169.254.169.254/", Mode::Test));
        assert!(invalid("http://shop.example/", Mode::Test));
        assert!(invalid("ftp://shop.example/", Mode::Test));
        assert!(invalid("https://user:pw@shop.example/", Mode::Test));
        assert!(invalid("not a url", Mode::Test));
        assert!(invalid("", Mode::Test));
        let long = format!("https://shop.example/{}", "a".repeat(WEBHOOK_URL_BYTES_MAX));
        assert!(invalid(&long, Mode::Test));
    }

    #[test]
    fn other_schemes_are_named_not_blamed_on_live_mode() {
        let none = AllowedHosts::default();
        for mode in [Mode::Test, Mode::Live] {
            let Err(UrlError::Invalid(message)) =
                validate_url("gopher://127.0.0.1:70/_x", mode, &none)
            else {
                panic!("gopher:// must be refused");
            };
            assert!(
                message.contains("`gopher` URLs are not supported"),
                "{message}"
            );
            assert!(!message.contains("live mode"), "{message}");
        }
    }

    #[test]
    fn every_reserved_spelling_is_not_allowed_in_live_mode_and_only_loopback_in_test_mode() {
        let none = AllowedHosts::default();
        for (host, loopback) in [
            ("127.1", true),
            ("2130706433", true),
            ("0x7f000001", true),
            ("0177.0.0.1", true),
            ("[::ffff:127.0.0.1]", true),
            ("localhost", true),
            ("[::1]", true),
            ("[::ffff:a9fe:a9fe]", false),
            ("169.254.169.254", false),
            ("[fd00:ec2::254]", false),
            ("10.0.0.1", false),
            ("[fd00::1]", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("[::]", false),
        ] {
            for scheme in ["https", "http"] {
                let text = format!("{scheme}://{host}:8443/hooks");
                let live = validate_url(&text, Mode::Live, &none);
                let Err(UrlError::NotAllowed(message)) = &live else {
                    panic!("{text} in live mode: {live:?}");
                };
                assert!(
                    message.contains("live-mode endpoints must be public"),
                    "{message}"
                );
                let test = validate_url(&text, Mode::Test, &none);
                if loopback {
                    assert_eq!(test, Ok(text.clone()), "{text} in test mode");
                } else {
                    assert!(
                        matches!(&test, Err(UrlError::NotAllowed(m)) if m.contains("test_allowed_hosts")),
                        "{text} in test mode: {test:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn listed_hosts_are_allowed_in_test_mode_only() {
        let allowed = AllowedHosts::parse(&["app:3000", "10.0.0.1"]).expect("valid");
        for text in [
            "http://app:3000/hooks",
            "https://app:3000/",
            "http://10.0.0.1/",
            "http://10.1:9/",
        ] {
            assert_eq!(
                validate_url(text, Mode::Test, &allowed),
                Ok(text.to_owned()),
                "{text}"
            );
        }
        assert!(matches!(
            validate_url("http://app:3001/", Mode::Test, &allowed),
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            validate_url("http://10.0.0.2/", Mode::Test, &allowed),
            Err(UrlError::NotAllowed(_))
        ));
        assert!(matches!(
            validate_url("https://10.0.0.1/", Mode::Live, &allowed),
            Err(UrlError::NotAllowed(_))
        ));
        assert!(matches!(
            validate_url("http://app:3000/", Mode::Live, &allowed),
            Err(UrlError::Invalid(_))
        ));
    }

    #[test]
    fn schedule_steps_are_never_early_and_end() {
        let schedule = [60, 300, 1800, 7200, 86400];
        assert_eq!(next_delay_ms(&schedule, 1, 0, None, 86400), Some(60_000));
        assert_eq!(next_delay_ms(&schedule, 1, 1000, None, 86400), Some(66_000));
        assert_eq!(
            next_delay_ms(&schedule, 5, 0, None, 86400),
            Some(86_400_000)
        );
        assert_eq!(next_delay_ms(&schedule, 6, 0, None, 86400), None);
        assert_eq!(next_delay_ms(&schedule, 0, 0, None, 86400), None);
        // Retry-After postpones, capped; it never brings an attempt forward.
        assert_eq!(
            next_delay_ms(&schedule, 1, 0, Some(600), 86400),
            Some(600_000)
        );
        assert_eq!(next_delay_ms(&schedule, 1, 0, Some(5), 86400), Some(60_000));
        assert_eq!(
            next_delay_ms(&schedule, 1, 0, Some(10_000_000), 86400),
            Some(86_400_000)
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120", 0), Some(120));
        assert_eq!(parse_retry_after(" 3 ", 0), Some(3));
        // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_480 - 30),
            Some(30)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_480 + 30),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-5", 0), None);
    }

    #[test]
    fn subscribable_types_exclude_the_test_type() {
        assert!(!EVENT_TYPES.contains(&TEST_EVENT_TYPE));
        assert_eq!(EVENT_TYPES.len(), 15);
    }
}
