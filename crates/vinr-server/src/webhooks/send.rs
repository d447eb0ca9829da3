//! One signed POST of an event to an endpoint, and what came of it. Three HTTP clients with
//! keep-alive: the live-mode one resolves through [`ssrf::Guarded`] to public addresses only,
//! the test-mode one to public and loopback addresses (a developer's receiver on localhost),
//! and one without that check for the test-mode hosts listed in `[webhooks]
//! test_allowed_hosts` (a CI job's receiver at a private address). Address literals are checked
//! before any of them connects. None follows redirects (a 3xx is a failed attempt) nor uses an
//! environment proxy (which would connect to an address nobody checked).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use vinr_domain::limits::{
    WEBHOOK_CONNECT_TIMEOUT_S_MAX, WEBHOOK_POOL_IDLE_PER_HOST_CONNECTIONS_MAX,
    WEBHOOK_RESPONSE_EXCERPT_BYTES_MAX,
};
use vinr_domain::text::{self, TextKind};
use vinr_domain::Mode;

use super::{parse_retry_after, sign, spoil_signature, ssrf, WebhooksConfig};
use crate::redacted::Redacted;

pub struct Sender {
    test_client: reqwest::Client,
    live_client: reqwest::Client,
    /// For test-mode URLs whose host is in `allowed_hosts`: reaches whatever they resolve to.
    allowed_client: reqwest::Client,
    allowed_hosts: ssrf::AllowedHosts,
    /// The whole attempt: connect, send, answer (`[webhooks] timeout_seconds`).
    timeout: Duration,
    /// The connection alone: the smaller of the attempt's timeout and
    /// `WEBHOOK_CONNECT_TIMEOUT_S_MAX`.
    connect_timeout: Duration,
}

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// A 2xx answer within the timeout.
    pub succeeded: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// The receiver's `Retry-After`, in seconds from now.
    pub retry_after_s: Option<u64>,
    /// `succeeded`, `failed` (an answer that is not a 2xx), `timeout`, `refused` (SSRF) or
    /// `error` (no answer): the label of the attempts counter.
    pub result: &'static str,
    /// The headers sent (or being sent when it failed), name to value; empty when nothing was
    /// sent. The signature is among them, the secret never.
    pub request_headers: BTreeMap<String, String>,
}

/// A message to deliver: the event id (the `webhook-id`) and its JSON.
pub struct Message<'a> {
    pub event_id: &'a str,
    pub body: &'a [u8],
    /// Sign it wrongly on purpose (`badSignature`, SPEC §12).
    pub bad_signature: bool,
}

/// The CA certificates of `[webhooks] root_certificates`, if set.
fn extra_roots(config: &WebhooksConfig) -> Result<Vec<reqwest::Certificate>, String> {
    let Some(path) = &config.root_certificates else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|error| {
        format!(
            "webhooks.root_certificates: cannot read {}: {error}",
            path.display()
        )
    })?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
        format!(
            "webhooks.root_certificates: {} is not PEM certificates: {error}",
            path.display()
        )
    })?;
    if roots.is_empty() {
        return Err(format!(
            "webhooks.root_certificates: {} holds no certificate",
            path.display()
        ));
    }
    Ok(roots)
}

fn client(
    timeout: Duration,
    connect_timeout: Duration,
    reach: Option<ssrf::Reach>,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(WEBHOOK_POOL_IDLE_PER_HOST_CONNECTIONS_MAX)
        .tcp_nodelay(true);
    if let Some(reach) = reach {
        builder = builder.dns_resolver(std::sync::Arc::new(ssrf::Guarded(reach)));
    }
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder
        .build()
        .map_err(|error| format!("cannot build the webhook HTTP client: {error}"))
}

/// The error and its causes in one line: reqwest's own message rarely says which.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn refused_cause(error: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<ssrf::Refused>() {
            return Some(refused.to_string());
        }
        source = cause.source();
    }
    None
}

impl Sender {
    pub fn new(config: &WebhooksConfig) -> Result<Sender, String> {
        let timeout = Duration::from_secs(config.timeout_seconds);
        let connect_timeout = Duration::from_secs(WEBHOOK_CONNECT_TIMEOUT_S_MAX).min(timeout);
        let roots = extra_roots(config)?;
        Ok(Sender {
            test_client: client(
                timeout,
                connect_timeout,
                Some(ssrf::Reach::PublicAndLoopback),
                &roots,
            )?,
            live_client: client(timeout, connect_timeout, Some(ssrf::Reach::Public), &roots)?,
            allowed_client: client(timeout, connect_timeout, None, &roots)?,
            allowed_hosts: config.test_allowed_hosts.clone(),
            timeout,
            connect_timeout,
        })
    }

    /// POSTs `message` to `url`, signed with `secret` at `timestamp_s` (wall-clock seconds:
    /// receivers compare it with their own clock to refuse replays).
    pub async fn send(
        &self,
        mode: Mode,
        url: &str,
        secret: &Redacted<String>,
        message: &Message<'_>,
        timestamp_s: i64,
    ) -> Outcome {
        let started = Instant::now();
        let failed = |result: &'static str, error: String| Outcome {
            succeeded: false,
            status_code: None,
            latency_ms: elapsed_ms(started),
            response_excerpt: None,
            error: Some(error),
            retry_after_s: None,
            result,
            request_headers: BTreeMap::new(),
        };
        let Ok(parsed) = url::Url::parse(url) else {
            return failed("error", "the endpoint's URL does not parse".into());
        };
        let client = match mode {
            Mode::Test if self.allowed_hosts.allows(&parsed) => &self.allowed_client,
            Mode::Test | Mode::Live => {
                if let Err(refused) = ssrf::check_url(&parsed, ssrf::Reach::of(mode)) {
                    return failed("refused", refused.to_string());
                }
                match mode {
                    Mode::Test => &self.test_client,
                    Mode::Live => &self.live_client,
                }
            }
        };
        let Some(mut signature) = sign(secret, message.event_id, timestamp_s, message.body) else {
            return failed(
                "error",
                "the endpoint's secret is not a whsec_ secret".into(),
            );
        };
        if message.bad_signature {
            signature = spoil_signature(&signature);
        }
        let request_headers = request_headers(message, &signature, timestamp_s);
        let mut request = client.post(url);
        for (name, value) in &request_headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let sent = request.body(message.body.to_vec()).send().await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                let failure = if let Some(refused) = refused_cause(&error) {
                    // Refused at resolution: nothing left this server.
                    return failed("refused", refused);
                } else if error.is_timeout() && error.is_connect() {
                    // Name the limit that ran out: the connection's, or the whole attempt's.
                    failed(
                        "timeout",
                        format!(
                            "could not connect within {} s",
                            self.connect_timeout.as_secs()
                        ),
                    )
                } else if error.is_timeout() {
                    failed(
                        "timeout",
                        format!("no answer within {} s", self.timeout.as_secs()),
                    )
                } else {
                    failed("error", describe(&error))
                };
                return Outcome {
                    request_headers,
                    ..failure
                };
            }
        };
        let status = response.status();
        let retry_after_s = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, timestamp_s));
        // Only the start of the answer is kept; the rest is not even read.
        let mut excerpt = Vec::new();
        let mut read_error = None;
        while excerpt.len() < WEBHOOK_RESPONSE_EXCERPT_BYTES_MAX {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => {
                    read_error = Some(if error.is_timeout() {
                        format!(
                            "the answer did not finish within {} s",
                            self.timeout.as_secs()
                        )
                    } else {
                        describe(&error)
                    });
                    break;
                }
            }
        }
        excerpt.truncate(WEBHOOK_RESPONSE_EXCERPT_BYTES_MAX);
        let succeeded = status.is_success() && read_error.is_none();
        Outcome {
            succeeded,
            status_code: Some(status.as_u16()),
            latency_ms: elapsed_ms(started),
            // A binary answer may hold NUL, which PostgreSQL cannot store in `text`.
            response_excerpt: (!excerpt.is_empty()).then(|| {
                text::replace_forbidden(&String::from_utf8_lossy(&excerpt), TextKind::Free)
            }),
            error: read_error.or_else(|| {
                (!status.is_success()).then(|| format!("the receiver answered HTTP {status}"))
            }),
            retry_after_s,
            result: if succeeded { "succeeded" } else { "failed" },
            request_headers,
        }
    }
}

/// The headers of a delivery (SPEC §6: Standard Webhooks, and the same signature as
/// `x-vinr-*`), exactly as sent and as recorded with the attempt.
fn request_headers(
    message: &Message<'_>,
    signature: &str,
    timestamp_s: i64,
) -> BTreeMap<String, String> {
    let timestamp = timestamp_s.to_string();
    [
        (CONTENT_TYPE.as_str(), "application/json"),
        (USER_AGENT.as_str(), "vinr-webhooks/1"),
        ("webhook-id", message.event_id),
        ("webhook-timestamp", &timestamp),
        ("webhook-signature", signature),
        ("x-vinr-signature", signature),
        ("x-vinr-timestamp", &timestamp),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
