//! Verifying what a webhook receiver got (Standard Webhooks, as VINR signs it): the
//! `webhook-signature` header holds one or more `v1,<base64>` signatures, each the HMAC-SHA256
//! of `"{webhook-id}.{webhook-timestamp}.{body}"` keyed with the base64-decoded part of the
//! endpoint's secret after `whsec_`; the timestamp must be within a tolerance of now (replays
//! of old deliveries are refused). Comparison is in constant time.
//!
//! Verify the raw body bytes as they arrived: re-serialized JSON does not verify.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far `webhook-timestamp` may be from now, either way (the Standard Webhooks default).
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a delivery did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is not `whsec_` followed by base64.
    InvalidSecret,
    /// A `webhook-id`, `webhook-timestamp` or `webhook-signature` header is missing or not text.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a number of seconds.
    InvalidTimestamp,
    /// `webhook-timestamp` is further from now than the tolerance.
    TimestampOutOfTolerance,
    /// No `v1` signature in the header matches.
    SignatureMismatch,
    /// The body verified but is not an event.
    InvalidBody(String),
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::InvalidSecret => f.write_str("the secret is not whsec_<base64>"),
            WebhookError::MissingHeader(name) => write!(f, "the {name} header is missing"),
            WebhookError::InvalidTimestamp => f.write_str("webhook-timestamp is not a number"),
            WebhookError::TimestampOutOfTolerance => {
                f.write_str("webhook-timestamp is too far from now")
            }
            WebhookError::SignatureMismatch => f.write_str("no signature matches"),
            WebhookError::InvalidBody(error) => write!(f, "the body is not an event: {error}"),
        }
    }
}

impl std::error::Error for WebhookError {}

/// Verifies deliveries of one webhook endpoint, with its secret.
///
/// ```
/// use vinr_client::WebhookVerifier;
/// # use vinr_client::HeaderMap; use reqwest::header::HeaderValue;
/// // In a receiver: the raw body and the request's headers.
/// # let body = br#"{"test": 2432232314}"#;
/// # let mut headers = HeaderMap::new();
/// # headers.insert("webhook-id", HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"));
/// # headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
/// # headers.insert("webhook-signature", HeaderValue::from_static("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
/// let verifier = WebhookVerifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// # let verifier = verifier.with_tolerance(std::time::Duration::from_secs(u64::MAX / 4));
/// verifier.verify_signature(&headers, body)?; // then act on the body
/// # Ok::<(), vinr_client::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct WebhookVerifier {
    key: Vec<u8>,
    tolerance: Duration,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("key", &"<redacted>")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier for the endpoint's secret (`whsec_…`, shown once when it was created).
    pub fn new(secret: &str) -> Result<WebhookVerifier, WebhookError> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or(WebhookError::InvalidSecret)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::InvalidSecret)?;
        if key.is_empty() {
            return Err(WebhookError::InvalidSecret);
        }
        Ok(WebhookVerifier {
            key,
            tolerance: TIMESTAMP_TOLERANCE,
        })
    }

    /// Another timestamp tolerance than [`TIMESTAMP_TOLERANCE`].
    pub fn with_tolerance(mut self, tolerance: Duration) -> WebhookVerifier {
        self.tolerance = tolerance;
        self
    }

    /// Verifies the delivery and reads its body as an event.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<vinr_types::Event, WebhookError> {
        self.verify_signature(headers, body)?;
        serde_json::from_slice(body).map_err(|error| WebhookError::InvalidBody(error.to_string()))
    }

    /// Verifies the delivery's headers against its raw body, at the current time.
    pub fn verify_signature(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .ok_or(WebhookError::MissingHeader(name))
        };
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        self.verify_parts(
            header("webhook-id")?,
            header("webhook-timestamp")?,
            header("webhook-signature")?,
            body,
            now_s,
        )
    }

    /// Verifies the three header values and the body at `now_s` (Unix seconds).
    pub fn verify_parts(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now_s: i64,
    ) -> Result<(), WebhookError> {
        let timestamp_s: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::InvalidTimestamp)?;
        let tolerance_s = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if now_s.abs_diff(timestamp_s) > tolerance_s.unsigned_abs() {
            return Err(WebhookError::TimestampOutOfTolerance);
        }
        let expected = self.sign(id, timestamp_s, body);
        let matches = signatures
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .any(|candidate| bool::from(candidate.as_slice().ct_eq(expected.as_slice())));
        if matches {
            Ok(())
        } else {
            Err(WebhookError::SignatureMismatch)
        }
    }

    fn sign(&self, id: &str, timestamp_s: i64, body: &[u8]) -> Vec<u8> {
        // An HMAC takes a key of any length: `new_from_slice` cannot fail here.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return Vec::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_s.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed with the public `standardwebhooks` package (the server's tests use
    /// the same file for its signer).
    #[test]
    fn verifies_the_standard_webhooks_vectors_and_nothing_else() {
        let text = include_str!("../../vinr-server/tests/data/webhook-signatures.json");
        let document: serde_json::Value = serde_json::from_str(text).expect("vectors");
        let vectors = document["vectors"].as_array().expect("a vector list");
        assert!(!vectors.is_empty());
        for vector in vectors {
            let verifier =
                WebhookVerifier::new(vector["secret"].as_str().expect("a secret")).expect("ok");
            let id = vector["webhook-id"].as_str().expect("an id");
            let timestamp_s = vector["webhook-timestamp"].as_i64().expect("a timestamp");
            let timestamp = timestamp_s.to_string();
            let signature = vector["webhook-signature"].as_str().expect("a signature");
            let body = vector["body"].as_str().expect("a body").as_bytes();
            verifier
                .verify_parts(id, &timestamp, signature, body, timestamp_s + 10)
                .expect("the vector verifies");
            // Several signatures, the right one last (key rotation).
            let several = format!("v1,AAAA {signature}");
            verifier
                .verify_parts(id, &timestamp, &several, body, timestamp_s)
                .expect("one of several verifies");
            let mut tampered = body.to_vec();
            tampered.push(b' ');
            assert_eq!(
                verifier.verify_parts(id, &timestamp, signature, &tampered, timestamp_s),
                Err(WebhookError::SignatureMismatch)
            );
            assert_eq!(
                verifier.verify_parts("evt_other", &timestamp, signature, body, timestamp_s),
                Err(WebhookError::SignatureMismatch)
            );
            assert_eq!(
                verifier.verify_parts(id, &timestamp, signature, body, timestamp_s + 301),
                Err(WebhookError::TimestampOutOfTolerance)
            );
            assert_eq!(
                verifier.verify_parts(id, &timestamp, signature, body, timestamp_s - 301),
                Err(WebhookError::TimestampOutOfTolerance)
            );
            let v2 = signature.replacen("v1,", "v2,", 1);
            assert_eq!(
                verifier.verify_parts(id, &timestamp, &v2, body, timestamp_s),
                Err(WebhookError::SignatureMismatch)
            );
        }
    }

    #[test]
    fn refuses_malformed_secrets_and_headers() {
        assert_eq!(
            WebhookVerifier::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").err(),
            Some(WebhookError::InvalidSecret)
        );
        assert_eq!(
            WebhookVerifier::new("whsec_!!!").err(),
            Some(WebhookError::InvalidSecret)
        );
        let verifier = WebhookVerifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("ok");
        assert_eq!(
            verifier.verify_signature(&HeaderMap::new(), b"{}"),
            Err(WebhookError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verifier.verify_parts("msg", "soon", "v1,AAAA", b"{}", 0),
            Err(WebhookError::InvalidTimestamp)
        );
        assert!(!format!("{verifier:?}").contains("MfKQ"));
    }
}
