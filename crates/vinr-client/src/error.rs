//! What a call can fail with: the API's own error body (SPEC §2) sorted by its HTTP status into
//! typed variants, a network failure after the retries ran out, or an answer that did not read
//! as what the operation promises.
//!
//! Every variant says how many attempts were made, so a caller (or a test) can tell an error
//! surfaced at once from one that persisted through the retries.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// The `type` of an API error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorType {
    /// `invalid_request_error` (400, 404, 422 and the other 4xx about the request itself).
    InvalidRequest,
    /// `authentication_error` (401).
    Authentication,
    /// `permission_error` (403).
    Permission,
    /// `idempotency_error` (409).
    Idempotency,
    /// `rate_limit_error` (429).
    RateLimit,
    /// `api_error` (5xx).
    Api,
    /// A `type` this client does not know yet (clients must tolerate new values).
    Other(String),
}

impl ErrorType {
    fn parse(kind: &str) -> ErrorType {
        match kind {
            "invalid_request_error" => ErrorType::InvalidRequest,
            "authentication_error" => ErrorType::Authentication,
            "permission_error" => ErrorType::Permission,
            "idempotency_error" => ErrorType::Idempotency,
            "rate_limit_error" => ErrorType::RateLimit,
            "api_error" => ErrorType::Api,
            other => ErrorType::Other(other.to_owned()),
        }
    }

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorType::InvalidRequest => "invalid_request_error",
            ErrorType::Authentication => "authentication_error",
            ErrorType::Permission => "permission_error",
            ErrorType::Idempotency => "idempotency_error",
            ErrorType::RateLimit => "rate_limit_error",
            ErrorType::Api => "api_error",
            ErrorType::Other(other) => other,
        }
    }
}

/// An error answer of the API: its status and its body
/// `{"error": {"type", "code", "message", "param", "request_id"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub kind: ErrorType,
    /// The stable snake_case code (`parameter_invalid`, `resource_missing`,
    /// `payment_state_invalid`, `idempotency_key_in_use`, `injected_fault`, …).
    pub code: String,
    pub message: String,
    /// The offending field or header, when there is one.
    pub param: Option<String>,
    /// `req_…`, from the body or else the `X-Request-Id` header: quote it to the operator.
    pub request_id: Option<String>,
    /// `Retry-After`, when the answer carried one.
    pub retry_after: Option<Duration>,
    /// How many requests were sent before this answer was surfaced (1 when not retried).
    pub attempts: u32,
}

/// `Retry-After` as delay-seconds (`120`) or an HTTP-date (`Wed, 02 Dec 2026 10:00:00 GMT`,
/// as a proxy may send it), measured from `now`; a date in the past is no wait.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl ApiError {
    /// Reads an error answer; a body that is not the API's error body (a proxy's page, an empty
    /// answer) still gives an error with the status, code `unexpected_response` and the text.
    pub(crate) fn from_answer(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        attempts: u32,
    ) -> ApiError {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry_after(value, std::time::SystemTime::now()));
        match serde_json::from_slice::<vinr_types::ErrorBody>(body) {
            Ok(parsed) => {
                let detail = parsed.error;
                ApiError {
                    status: status.as_u16(),
                    kind: ErrorType::parse(&detail.kind),
                    code: detail.code,
                    message: detail.message,
                    param: detail.param,
                    request_id: Some(detail.request_id),
                    retry_after,
                    attempts,
                }
            }
            Err(_) => {
                const EXCERPT_CHARS_MAX: usize = 200;
                let text: String = String::from_utf8_lossy(body)
                    .chars()
                    .take(EXCERPT_CHARS_MAX)
                    .collect();
                ApiError {
                    status: status.as_u16(),
                    kind: if status.is_server_error() {
                        ErrorType::Api
                    } else {
                        ErrorType::Other(String::new())
                    },
                    code: "unexpected_response".to_owned(),
                    message: format!("HTTP {status} without an API error body: {text}"),
                    param: None,
                    request_id: headers
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned),
                    retry_after,
                    attempts,
                }
            }
        }
    }
}

/// Everything a call can fail with. Match on the variant for the HTTP status class, and on
/// [`ApiError::code`] for the precise reason. The API error is boxed, so a `Result` stays small.
#[derive(Debug)]
pub enum Error {
    /// 400 (and 408, 413, 415): the request is malformed; `param` names what.
    BadRequest(Box<ApiError>),
    /// 401: the key is missing, unknown or revoked.
    Authentication(Box<ApiError>),
    /// 403: the key may not do this (a restricted key's scopes, a platform key on merchant
    /// routes or the reverse).
    Permission(Box<ApiError>),
    /// 404: no such object for this account and mode (`resource_missing`).
    NotFound(Box<ApiError>),
    /// 409: `idempotency_key_reused` (same key, different body), or `idempotency_key_in_use`
    /// that persisted through the retries.
    Conflict(Box<ApiError>),
    /// 422: the operation is not allowed now (`payment_state_invalid`, `amount_too_large`, …).
    Unprocessable(Box<ApiError>),
    /// 429 that persisted through the retries.
    RateLimited(Box<ApiError>),
    /// 5xx that persisted through the retries.
    Server(Box<ApiError>),
    /// Any other status.
    Other(Box<ApiError>),
    /// No answer: connection refused or dropped, a timeout, TLS. Persisted through the retries.
    Network {
        source: reqwest::Error,
        attempts: u32,
    },
    /// A 2xx answer that does not read as what the operation answers.
    Decode {
        status: u16,
        source: serde_json::Error,
        request_id: Option<String>,
    },
    /// The client was set up wrongly (a base URL that does not parse, a header that is not
    /// valid): nothing was sent.
    Config(String),
}

impl Error {
    pub(crate) fn from_api(error: ApiError) -> Error {
        let error = Box::new(error);
        match error.status {
            400 | 408 | 413 | 415 => Error::BadRequest(error),
            401 => Error::Authentication(error),
            403 => Error::Permission(error),
            404 => Error::NotFound(error),
            409 => Error::Conflict(error),
            422 => Error::Unprocessable(error),
            429 => Error::RateLimited(error),
            500..=599 => Error::Server(error),
            _ => Error::Other(error),
        }
    }

    /// The API's error answer, when there was one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::BadRequest(error)
            | Error::Authentication(error)
            | Error::Permission(error)
            | Error::NotFound(error)
            | Error::Conflict(error)
            | Error::Unprocessable(error)
            | Error::RateLimited(error)
            | Error::Server(error)
            | Error::Other(error) => Some(error.as_ref()),
            Error::Network { .. } | Error::Decode { .. } | Error::Config(_) => None,
        }
    }

    /// The HTTP status, when an answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Decode { status, .. } => Some(*status),
            other => other.api().map(|error| error.status),
        }
    }

    /// The error body's `code`.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|error| error.code.as_str())
    }

    /// The error body's `param`.
    pub fn param(&self) -> Option<&str> {
        self.api().and_then(|error| error.param.as_deref())
    }

    /// The request id (`req_…`) of the answer, when one came.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Decode { request_id, .. } => request_id.as_deref(),
            other => other.api().and_then(|error| error.request_id.as_deref()),
        }
    }

    /// How many requests were sent (0 when the client never sent one).
    pub fn attempts(&self) -> u32 {
        match self {
            Error::Network { attempts, .. } => *attempts,
            Error::Decode { .. } => 1,
            Error::Config(_) => 0,
            other => other.api().map_or(0, |error| error.attempts),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Network { source, attempts } => {
                write!(
                    f,
                    "no answer from the VINR API after {attempts} attempt(s): {source}"
                )
            }
            Error::Decode { status, source, .. } => {
                write!(
                    f,
                    "HTTP {status} answer that does not read as expected: {source}"
                )
            }
            Error::Config(message) => write!(f, "client configuration: {message}"),
            other => {
                // Every remaining variant carries an API error.
                if let Some(error) = other.api() {
                    write!(
                        f,
                        "HTTP {} {} {}: {}",
                        error.status,
                        error.kind.as_str(),
                        error.code,
                        error.message
                    )?;
                    if let Some(param) = &error.param {
                        write!(f, " (param {param})")?;
                    }
                    if let Some(request_id) = &error.request_id {
                        write!(f, " [{request_id}]")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Network { source, .. } => Some(source),
            Error::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("12abc", now), None);
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("", now), None);
    }
}
