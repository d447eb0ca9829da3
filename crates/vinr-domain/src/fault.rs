//! Faults on purpose (SPEC §12): what a test-mode request may be made to suffer — from its
//! `Vinr-Test-Fault` header or from a fault rule — and the rules' own validation. Pure: the
//! HTTP layer applies a fault, the store counts a rule down.

use std::fmt;

use crate::ids::{new_id, Prefix};
use crate::limits::{
    TEST_FAULT_CHARS_MAX, TEST_FAULT_LATENCY_MS_MAX, TEST_FAULT_RULE_COUNT_MAX,
    TEST_FAULT_RULE_PATH_CHARS_MAX,
};
use crate::time::UnixMillis;

/// The path of the rules themselves: never faulted, so that a rule can always be removed.
pub const FAULT_RULES_PATH: &str = "/v1/test_helpers/faults";

/// The statuses `status=<n>` may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedStatus {
    TooManyRequests,
    Internal,
    BadGateway,
    Unavailable,
}

impl InjectedStatus {
    pub const ALL: [InjectedStatus; 4] = [
        InjectedStatus::TooManyRequests,
        InjectedStatus::Internal,
        InjectedStatus::BadGateway,
        InjectedStatus::Unavailable,
    ];

    pub fn code(self) -> u16 {
        match self {
            InjectedStatus::TooManyRequests => 429,
            InjectedStatus::Internal => 500,
            InjectedStatus::BadGateway => 502,
            InjectedStatus::Unavailable => 503,
        }
    }

    fn of(code: u16) -> Option<InjectedStatus> {
        InjectedStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// One fault, as the header or a rule's `fault` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    /// Wait this long, then run the request as usual.
    Latency { ms: u32 },
    /// Answer this status and run nothing.
    Status(InjectedStatus),
    /// Run the request (it commits), then answer a 500 in place of its answer.
    CommitThen500,
    /// Run the request (it commits), then close the connection without an answer.
    CommitThenDrop,
}

/// Why a fault value was refused; the message names what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError(pub String);

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a fault may be, for the messages that refuse one.
fn accepted() -> String {
    format!(
        "one of `latency=<ms>` (0 to {TEST_FAULT_LATENCY_MS_MAX}), `status=<429|500|502|503>`, \
         `commit-then-500` or `commit-then-drop`"
    )
}

impl RequestFault {
    /// Parses `latency=250`, `status=503`, `commit-then-500` or `commit-then-drop`, exactly so
    /// (lower case, no spaces).
    pub fn parse(value: &str) -> Result<RequestFault, FaultError> {
        if value.is_empty() {
            return Err(FaultError(format!("is empty; give {}.", accepted())));
        }
        if value.chars().count() > TEST_FAULT_CHARS_MAX {
            return Err(FaultError(format!(
                "is longer than {TEST_FAULT_CHARS_MAX} characters; give {}.",
                accepted()
            )));
        }
        // Decimal digits without a leading zero (one spelling per number).
        let number = |text: &str| -> Option<u32> {
            let canonical = text == "0" || !text.starts_with('0');
            (canonical && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        match value.split_once('=') {
            Some(("latency", ms)) => match number(ms) {
                Some(ms) if ms <= TEST_FAULT_LATENCY_MS_MAX => Ok(RequestFault::Latency { ms }),
                _ => Err(FaultError(format!(
                    "`latency` must be a whole number of milliseconds from 0 to \
                     {TEST_FAULT_LATENCY_MS_MAX}, not `{ms}`."
                ))),
            },
            Some(("status", status)) => match number(status)
                .and_then(|n| u16::try_from(n).ok())
                .and_then(InjectedStatus::of)
            {
                Some(status) => Ok(RequestFault::Status(status)),
                _ => Err(FaultError(format!(
                    "`status` must be 429, 500, 502 or 503, not `{status}`."
                ))),
            },
            None if value == "commit-then-500" => Ok(RequestFault::CommitThen500),
            None if value == "commit-then-drop" => Ok(RequestFault::CommitThenDrop),
            _ => Err(FaultError(format!(
                "`{value}` is not a fault; give {}.",
                accepted()
            ))),
        }
    }

    /// The metric label of this fault's kind.
    pub fn kind(self) -> &'static str {
        match self {
            RequestFault::Latency { .. } => "latency",
            RequestFault::Status(InjectedStatus::TooManyRequests) => "status_429",
            RequestFault::Status(InjectedStatus::Internal) => "status_500",
            RequestFault::Status(InjectedStatus::BadGateway) => "status_502",
            RequestFault::Status(InjectedStatus::Unavailable) => "status_503",
            RequestFault::CommitThen500 => "commit_then_500",
            RequestFault::CommitThenDrop => "commit_then_drop",
        }
    }
}

impl fmt::Display for RequestFault {
    /// The canonical spelling, which [`RequestFault::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFault::Latency { ms } => write!(f, "latency={ms}"),
            RequestFault::Status(status) => write!(f, "status={}", status.code()),
            RequestFault::CommitThen500 => f.write_str("commit-then-500"),
            RequestFault::CommitThenDrop => f.write_str("commit-then-drop"),
        }
    }
}

/// The methods a rule may name: those of the API.
const RULE_METHODS: [&str; 3] = ["GET", "POST", "DELETE"];

/// A rule for clients that cannot set headers: the next `count` test-mode requests of the
/// account with this method and path suffer `fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub id: String,
    pub account_id: String,
    /// `GET`, `POST` or `DELETE`.
    pub method: String,
    /// An exact path, or a prefix ending in `*`; matched without the query string.
    pub path: String,
    pub fault: RequestFault,
    /// Requests still to fault (at least 1: a rule counted down to 0 is gone).
    pub remaining: u32,
    pub created_at: UnixMillis,
}

/// A rule refused, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub param: &'static str,
    pub message: String,
}

fn refuse(param: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        param,
        message: message.into(),
    }
}

impl FaultRule {
    /// A new rule from what the client sent; `count` defaults to 1.
    pub fn new(
        account_id: &str,
        method: &str,
        path: &str,
        fault: &str,
        count: Option<i64>,
        now: UnixMillis,
    ) -> Result<FaultRule, RuleError> {
        if !RULE_METHODS.contains(&method) {
            return Err(refuse(
                "method",
                "`method` must be GET, POST or DELETE (upper case).",
            ));
        }
        let path = rule_path(path)?;
        let fault = RequestFault::parse(fault)
            .map_err(|error| refuse("fault", format!("`fault` {error}")))?;
        let remaining = match count {
            None => 1,
            Some(count) => u32::try_from(count)
                .ok()
                .filter(|count| (1..=TEST_FAULT_RULE_COUNT_MAX).contains(count))
                .ok_or_else(|| {
                    refuse(
                        "count",
                        format!("`count` must be from 1 to {TEST_FAULT_RULE_COUNT_MAX}."),
                    )
                })?,
        };
        Ok(FaultRule {
            id: new_id(Prefix::FaultRule, now),
            account_id: account_id.to_owned(),
            method: method.to_owned(),
            path,
            fault,
            remaining,
            created_at: now,
        })
    }
}

impl FaultRule {
    /// Whether the rule hits a request with `method` (as [`rule_method`] names it) and `path`.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method == method && path_matches(&self.path, path)
    }
}

fn rule_path(path: &str) -> Result<String, RuleError> {
    if !path.starts_with("/v1/") {
        return Err(refuse(
            "path",
            "`path` must be an API path starting with `/v1/` (e.g. `/v1/payments` or \
             `/v1/payments/*`).",
        ));
    }
    if path.chars().count() > TEST_FAULT_RULE_PATH_CHARS_MAX {
        return Err(refuse(
            "path",
            format!("`path` must be at most {TEST_FAULT_RULE_PATH_CHARS_MAX} characters."),
        ));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) || path.contains(['?', '#']) {
        return Err(refuse(
            "path",
            "`path` must be a path without spaces, query string or fragment (rules match the \
             path alone).",
        ));
    }
    if path.trim_end_matches('*').contains('*') || path.ends_with("**") {
        return Err(refuse(
            "path",
            "`path` may hold one `*`, at its end only (a prefix).",
        ));
    }
    if path == FAULT_RULES_PATH {
        return Err(refuse(
            "path",
            "Requests to `/v1/test_helpers/faults` are never faulted.",
        ));
    }
    Ok(path.to_owned())
}

/// The method a rule names for a request with `method`: a `HEAD` is routed, and so matched,
/// as the `GET` it stands for.
pub fn rule_method(method: &str) -> &str {
    if method == "HEAD" {
        "GET"
    } else {
        method
    }
}

/// Whether `pattern` (a rule's `path`) matches the request path `path`, as sent (not
/// percent-decoded).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_print_back() {
        for text in [
            "latency=0",
            "latency=30000",
            "status=429",
            "status=500",
            "status=502",
            "status=503",
            "commit-then-500",
            "commit-then-drop",
        ] {
            let fault = RequestFault::parse(text).expect(text);
            assert_eq!(fault.to_string(), text);
        }
    }

    #[test]
    fn bad_faults_say_what_is_accepted() {
        for text in [
            "",
            "latency",
            "latency=",
            "latency=30001",
            "latency=-1",
            "latency=1.5",
            "latency=+5",
            "status=404",
            "status=5030",
            "status=99999999999",
            "Commit-Then-500",
            "commit-then-501",
            "drop",
            "latency=1;status=500",
            " latency=5",
            "latency=05",
            "status=0503",
        ] {
            let error = RequestFault::parse(text).expect_err(text);
            assert!(!error.0.is_empty());
        }
        let long = "x".repeat(TEST_FAULT_CHARS_MAX + 1);
        assert!(RequestFault::parse(&long).is_err());
    }

    #[test]
    fn rules_are_validated_field_by_field() {
        let now = UnixMillis(1_700_000_000_000);
        let rule = FaultRule::new("acct_1", "POST", "/v1/payments", "status=503", None, now)
            .expect("a rule");
        assert_eq!(rule.method, "POST");
        assert_eq!(rule.remaining, 1);
        assert!(rule.id.starts_with("flt_"));
        let param = |method: &str, path: &str, fault: &str, count: Option<i64>| {
            FaultRule::new("acct_1", method, path, fault, count, now)
                .expect_err("refused")
                .param
        };
        assert_eq!(param("PUT", "/v1/payments", "status=503", None), "method");
        assert_eq!(param("post", "/v1/payments", "status=503", None), "method");
        assert_eq!(param("POST", "/payments", "status=503", None), "path");
        assert_eq!(param("POST", "/v1/pay*ments", "status=503", None), "path");
        assert_eq!(param("POST", "/v1/payments**", "status=503", None), "path");
        assert_eq!(
            param("POST", "/v1/payments?x=1", "status=503", None),
            "path"
        );
        assert_eq!(param("POST", "/v1/pay ments", "status=503", None), "path");
        assert_eq!(param("POST", FAULT_RULES_PATH, "status=503", None), "path");
        assert_eq!(param("POST", "/v1/payments", "status=200", None), "fault");
        assert_eq!(
            param("POST", "/v1/payments", "status=503", Some(0)),
            "count"
        );
        assert_eq!(
            param("POST", "/v1/payments", "status=503", Some(-1)),
            "count"
        );
        assert_eq!(
            param("POST", "/v1/payments", "status=503", Some(i64::MAX)),
            "count"
        );
        assert!(FaultRule::new("a", "GET", "/v1/*", "latency=1", Some(10_000), now).is_ok());
    }

    #[test]
    fn paths_match_exactly_or_by_prefix() {
        assert!(path_matches("/v1/payments", "/v1/payments"));
        assert!(!path_matches("/v1/payments", "/v1/payments/pay_1"));
        assert!(path_matches("/v1/payments/*", "/v1/payments/pay_1/capture"));
        assert!(path_matches("/v1/payments*", "/v1/payments"));
        assert!(!path_matches("/v1/payments/*", "/v1/payments"));
        assert!(!path_matches("/v1/refunds*", "/v1/payments"));
    }
}
