//! What the clients were told: every write sent, with the answer it got (acknowledged,
//! refused, or none because the server died under it). The checker compares this with what
//! the server holds after the restart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hyper::body::Bytes;
use serde_json::Value;

/// The writes of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Pay,
    Capture,
    Cancel,
    Refund,
    /// `POST /v1/test_helpers/settlements/run` (with `--settlements`).
    Settle,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Pay => "pay",
            OpKind::Capture => "capture",
            OpKind::Cancel => "cancel",
            OpKind::Refund => "refund",
            OpKind::Settle => "settle",
        }
    }
}

/// One POST, kept whole so that it can be sent again, byte for byte, after a crash.
#[derive(Clone, Debug)]
pub struct Op {
    pub kind: OpKind,
    /// The `Idempotency-Key`; for creates and refunds also `metadata[torture]`, so every
    /// stored object names the key that made it.
    pub key: String,
    pub path: String,
    pub body: Bytes,
    /// The create key of the payment this op is about.
    pub payment_key: String,
}

/// How a request ended.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx with a JSON body.
    Ack(Value),
    /// 2xx whose body is not the JSON object expected.
    Garbled(String),
    /// A non-2xx answer (its body's start in `detail`).
    Refused { status: u16, detail: String },
    /// Sent, but the connection broke or timed out before an answer: the effect is unknown.
    InFlight(String),
    /// Never reached the server (connect refused): certainly no effect.
    NotSent(String),
}

/// When a request was sent: under load, or as a retry after the restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Load,
    Retry,
}

/// What the caller of [`Model::record`] may go on with.
pub enum Reply {
    Acked(Value),
    /// Refused (or garbled): the chain stops here.
    Refused,
    /// No answer: keep the op for the retry after the restart.
    InFlight,
    NotSent,
}

/// A broken promise, by kind (stable names for the summary) and the objects involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// A payment as acknowledged so far.
#[derive(Clone, Debug, Default)]
pub struct PaymentModel {
    /// From the create's answer; `None` until acknowledged.
    pub id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub manual: bool,
    /// `status` of the last acknowledged answer about this payment.
    pub status: Option<String>,
    /// `amountCaptured` of the last acknowledged answer.
    pub captured: i64,
    /// An op on it never got an answer, even after the retries: its state may be ahead.
    pub unresolved: bool,
}

/// A refund as acknowledged.
#[derive(Clone, Debug, Default)]
pub struct RefundModel {
    pub payment_key: String,
    pub amount: i64,
    pub id: Option<String>,
    pub unresolved: bool,
}

/// Request counts of a round.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub sent: u64,
    pub acked: u64,
    /// Concurrent refunds refused with 422 `amount_too_large`, as they must be.
    pub refused_expected: u64,
    /// Unanswered when the server died (retried after the restart).
    pub in_flight: u64,
    pub retried_acked: u64,
    /// Of those, answered `Idempotent-Replayed`: committed before the kill, answer lost.
    pub retried_replayed: u64,
    pub retried_refused: u64,
    pub unresolved: u64,
    pub not_sent: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.refused_expected += other.refused_expected;
        self.in_flight += other.in_flight;
        self.retried_acked += other.retried_acked;
        self.retried_replayed += other.retried_replayed;
        self.retried_refused += other.retried_refused;
        self.unresolved += other.unresolved;
        self.not_sent += other.not_sent;
    }
}

/// Everything the clients of one round (one account) were told.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// By create key.
    pub payments: BTreeMap<String, PaymentModel>,
    /// By refund key.
    pub refunds: BTreeMap<String, RefundModel>,
    /// Keys of creates and refunds that were refused or never sent: no object may carry one.
    pub no_effect: BTreeSet<String>,
    /// Seen while the requests ran (a 5xx, an unexpected refusal, …).
    pub violations: Vec<Violation>,
    pub counts: Counts,
}

impl Model {
    pub fn begin_payment(&mut self, key: &str, amount: i64, currency: &str, manual: bool) {
        self.payments.insert(
            key.to_owned(),
            PaymentModel {
                amount,
                currency: currency.to_owned(),
                manual,
                ..PaymentModel::default()
            },
        );
    }

    pub fn begin_refund(&mut self, key: &str, payment_key: &str, amount: i64) {
        self.refunds.insert(
            key.to_owned(),
            RefundModel {
                payment_key: payment_key.to_owned(),
                amount,
                ..RefundModel::default()
            },
        );
    }

    pub fn violation(&mut self, kind: &'static str, detail: String) {
        self.violations.push(Violation { kind, detail });
    }

    pub fn merge(&mut self, other: Model) {
        self.payments.extend(other.payments);
        self.refunds.extend(other.refunds);
        self.no_effect.extend(other.no_effect);
        self.violations.extend(other.violations);
        self.counts.add(&other.counts);
    }

    /// Records the final outcome of `op` (in `phase`) and says how the caller goes on.
    pub fn record(&mut self, op: &Op, outcome: Outcome, phase: Phase) -> Reply {
        if phase == Phase::Load && !matches!(outcome, Outcome::NotSent(_)) {
            self.counts.sent += 1;
        }
        match outcome {
            Outcome::Ack(body) => {
                match phase {
                    Phase::Load => self.counts.acked += 1,
                    Phase::Retry => self.counts.retried_acked += 1,
                }
                self.resolve(op);
                self.apply_ack(op, &body);
                Reply::Acked(body)
            }
            Outcome::Garbled(detail) => {
                self.violation(
                    "bad_response",
                    format!("{} {}: {detail}", op.kind.name(), op.path),
                );
                Reply::Refused
            }
            Outcome::Refused { status, detail } => {
                if phase == Phase::Retry {
                    self.counts.retried_refused += 1;
                }
                self.resolve(op);
                let room_taken = status == 422 && detail.contains("amount_too_large");
                if op.kind == OpKind::Refund && room_taken {
                    self.counts.refused_expected += 1;
                } else {
                    let kind = if status >= 500 {
                        "server_error"
                    } else {
                        "unexpected_status"
                    };
                    let when = match phase {
                        Phase::Load => "",
                        Phase::Retry => ", retried after the restart",
                    };
                    self.violation(
                        kind,
                        format!(
                            "{} {} (key {}{when}): HTTP {status} {detail}",
                            op.kind.name(),
                            op.path,
                            op.key
                        ),
                    );
                }
                if matches!(op.kind, OpKind::Create | OpKind::Refund) {
                    self.no_effect.insert(op.key.clone());
                }
                Reply::Refused
            }
            Outcome::InFlight(_) => {
                self.counts.in_flight += 1;
                self.mark_unresolved(op);
                Reply::InFlight
            }
            Outcome::NotSent(_) => {
                self.counts.not_sent += 1;
                if matches!(op.kind, OpKind::Create | OpKind::Refund) {
                    self.no_effect.insert(op.key.clone());
                }
                Reply::NotSent
            }
        }
    }

    /// An in-flight op whose retries never got an answer either.
    pub fn record_unresolved(&mut self, op: &Op, last: &str) {
        self.counts.unresolved += 1;
        self.violation(
            "retry_unresolved",
            format!(
                "{} {} (key {}) still unanswered after the restart: {last}",
                op.kind.name(),
                op.path,
                op.key
            ),
        );
    }

    fn mark_unresolved(&mut self, op: &Op) {
        if let Some(payment) = self.payments.get_mut(&op.payment_key) {
            payment.unresolved = true;
        }
        if op.kind == OpKind::Refund {
            if let Some(refund) = self.refunds.get_mut(&op.key) {
                refund.unresolved = true;
            }
        }
    }

    fn resolve(&mut self, op: &Op) {
        if let Some(payment) = self.payments.get_mut(&op.payment_key) {
            payment.unresolved = false;
        }
        if op.kind == OpKind::Refund {
            if let Some(refund) = self.refunds.get_mut(&op.key) {
                refund.unresolved = false;
            }
        }
    }

    fn apply_ack(&mut self, op: &Op, body: &Value) {
        if op.kind == OpKind::Settle {
            // A list of the settlements made; the ledger check covers their payouts.
            return;
        }
        let id = body.get("id").and_then(Value::as_str).map(str::to_owned);
        let Some(id) = id else {
            self.violation(
                "bad_response",
                format!("{} {}: an answer without an id", op.kind.name(), op.path),
            );
            return;
        };
        let mut problems = Vec::new();
        match op.kind {
            OpKind::Refund => {
                if let Some(refund) = self.refunds.get_mut(&op.key) {
                    if refund.id.as_ref().is_some_and(|known| *known != id) {
                        problems.push((
                            "duplicate_effect",
                            format!(
                                "refund key {} answered {id}, earlier {}",
                                op.key,
                                refund.id.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                    let amount = body.get("amount").and_then(Value::as_i64);
                    if amount != Some(refund.amount) {
                        problems.push((
                            "bad_response",
                            format!("refund {id}: amount {amount:?}, asked {}", refund.amount),
                        ));
                    }
                    refund.id = Some(id);
                }
            }
            _ => {
                if let Some(payment) = self.payments.get_mut(&op.payment_key) {
                    match &payment.id {
                        Some(known) if *known != id => problems.push((
                            if op.kind == OpKind::Create {
                                "duplicate_effect"
                            } else {
                                "bad_response"
                            },
                            format!(
                                "{} (key {}) answered payment {id}, earlier {known}",
                                op.kind.name(),
                                op.key
                            ),
                        )),
                        _ => {}
                    }
                    payment.id = Some(id);
                    payment.status = body
                        .get("status")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    payment.captured = body
                        .get("amountCaptured")
                        .and_then(Value::as_i64)
                        .unwrap_or_default();
                }
            }
        }
        for (kind, detail) in problems {
            self.violation(kind, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(key: &str) -> Op {
        Op {
            kind: OpKind::Create,
            key: key.into(),
            path: "/v1/payments".into(),
            body: Bytes::from_static(b"{}"),
            payment_key: key.into(),
        }
    }

    fn refund(key: &str, payment_key: &str) -> Op {
        Op {
            kind: OpKind::Refund,
            key: key.into(),
            path: "/v1/refunds".into(),
            body: Bytes::from_static(b"{}"),
            payment_key: payment_key.into(),
        }
    }

    #[test]
    fn answers_are_classified() {
        let mut model = Model::default();
        model.begin_payment("k1", 1000, "EUR", false);
        let ack = serde_json::json!({"id": "pay_1", "status": "pending", "amountCaptured": 0});
        assert!(matches!(
            model.record(&create("k1"), Outcome::Ack(ack), Phase::Load),
            Reply::Acked(_)
        ));
        assert_eq!(model.payments["k1"].id.as_deref(), Some("pay_1"));

        // A racing refund refused for want of room is expected, and its key must make nothing.
        model.begin_refund("r1", "k1", 600);
        let room = Outcome::Refused {
            status: 422,
            detail: r#"{"error":{"type":"invalid_request_error","code":"amount_too_large"}}"#
                .into(),
        };
        model.record(&refund("r1", "k1"), room, Phase::Load);
        assert_eq!(model.counts.refused_expected, 1);
        assert!(model.no_effect.contains("r1"));
        assert!(model.violations.is_empty());

        // A 500, or any other refusal of a valid request, is a violation.
        model.begin_payment("k2", 1000, "EUR", false);
        let error = Outcome::Refused {
            status: 500,
            detail: "api_error".into(),
        };
        model.record(&create("k2"), error, Phase::Load);
        model.begin_payment("k3", 1000, "EUR", false);
        let conflict = Outcome::Refused {
            status: 409,
            detail: "idempotency_key_reused".into(),
        };
        model.record(&create("k3"), conflict, Phase::Retry);
        let kinds: Vec<&str> = model.violations.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, ["server_error", "unexpected_status"]);
        assert!(model.violations[1]
            .detail
            .contains("retried after the restart"));
    }

    #[test]
    fn unanswered_requests_are_kept_until_resolved() {
        let mut model = Model::default();
        model.begin_payment("k1", 1000, "EUR", false);
        let op = create("k1");
        assert!(matches!(
            model.record(&op, Outcome::InFlight("reset".into()), Phase::Load),
            Reply::InFlight
        ));
        assert!(model.payments["k1"].unresolved);
        assert_eq!((model.counts.sent, model.counts.in_flight), (1, 1));
        let ack = serde_json::json!({"id": "pay_1", "status": "pending"});
        model.record(&op, Outcome::Ack(ack), Phase::Retry);
        assert!(!model.payments["k1"].unresolved);
        assert_eq!((model.counts.sent, model.counts.retried_acked), (1, 1));

        // Never sent: no effect allowed, not counted as sent.
        model.begin_payment("k2", 1000, "EUR", false);
        model.record(
            &create("k2"),
            Outcome::NotSent("refused".into()),
            Phase::Load,
        );
        assert!(model.no_effect.contains("k2"));
        assert_eq!(model.counts.sent, 1);

        // A retry that never got an answer is a violation.
        model.record_unresolved(&create("k3"), "timeout");
        assert_eq!(model.violations[0].kind, "retry_unresolved");
    }
}
