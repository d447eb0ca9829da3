//! Domain → wire: the one place objects become the JSON merchants see.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;
use vinr_domain::dispute::Dispute;
use vinr_domain::fault::FaultRule;
use vinr_domain::settlement::Settlement;
use vinr_domain::{Mode, Payment, Refund, UnixMillis};
use vinr_types as wire;

use crate::store::{AttemptRecord, BalanceAmounts, BalanceTransactionRecord, EventRecord};

const RFC3339_SECONDS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// RFC 3339 UTC with whole seconds, as in the seed (`2026-04-15T10:30:00Z`).
pub fn timestamp(at: UnixMillis) -> String {
    OffsetDateTime::from_unix_timestamp(at.0.div_euclid(1000))
        .ok()
        .and_then(|at| at.format(RFC3339_SECONDS).ok())
        .unwrap_or_default()
}

pub fn checkout_url(public_url: &str, token: &str) -> String {
    format!("{public_url}/checkout/{token}")
}

pub fn payment(p: &Payment, public_url: &str) -> wire::Payment {
    wire::Payment {
        id: p.id.clone(),
        object: "payment".into(),
        status: p.status.as_str().into(),
        amount: p.amount,
        currency: p.currency.code().into(),
        description: p.description.clone(),
        return_url: p.return_url.clone(),
        checkout_url: checkout_url(public_url, &p.checkout_token),
        metadata: p.metadata.clone(),
        created_at: timestamp(p.created_at),
        livemode: p.mode == Mode::Live,
        capture_method: p.capture_method.as_str().into(),
        amount_capturable: p.amount_capturable,
        amount_captured: p.amount_captured,
        amount_refunded: p.amount_refunded,
        amount_disputed: p.amount_disputed,
        payment_method: p.payment_method.as_ref().map(|m| wire::PaymentMethod {
            brand: m.brand.clone(),
            last4: m.last4.clone(),
            exp_month: m.exp_month,
            exp_year: m.exp_year,
            fingerprint: m.fingerprint.clone(),
        }),
        failure_code: p.failure_code.map(|code| code.as_str().into()),
        failure_message: p.failure_code.map(|code| code.message().into()),
        expires_at: timestamp(p.expires_at),
        authorized_at: p.authorized_at.map(timestamp),
        captured_at: p.captured_at.map(timestamp),
        cancelled_at: p.cancelled_at.map(timestamp),
        failed_at: p.failed_at.map(timestamp),
        expired_at: p.expired_at.map(timestamp),
        processor: p.processor.clone(),
        processor_reference: p.processor_reference.clone().filter(|r| !r.is_empty()),
    }
}

pub fn payment_attempt(a: &AttemptRecord) -> wire::PaymentAttempt {
    wire::PaymentAttempt {
        id: a.id.clone(),
        object: "payment_attempt".into(),
        payment: a.payment_id.clone(),
        processor: a.processor.clone(),
        outcome: a.outcome.clone(),
        failure_code: a.failure_code.clone(),
        latency_ms: a.latency_ms,
        created_at: timestamp(a.created_at),
    }
}

/// The payment as JSON bytes: the response body, the event snapshot and the stored
/// idempotent answer are all this one serialization.
pub fn payment_json(p: &Payment, public_url: &str) -> String {
    serde_json::to_string(&payment(p, public_url)).unwrap_or_default()
}

pub fn refund(r: &Refund) -> wire::Refund {
    wire::Refund {
        id: r.id.clone(),
        object: "refund".into(),
        payment: r.payment_id.clone(),
        amount: r.amount,
        currency: r.currency.code().into(),
        status: r.status.as_str().into(),
        reason: r.reason.map(|reason| reason.as_str().into()),
        metadata: r.metadata.clone(),
        failure_reason: r.failure_reason.clone(),
        created_at: timestamp(r.created_at),
        livemode: r.mode == Mode::Live,
    }
}

pub fn refund_json(r: &Refund) -> String {
    serde_json::to_string(&refund(r)).unwrap_or_default()
}

pub fn dispute(d: &Dispute) -> wire::Dispute {
    let e = &d.evidence;
    wire::Dispute {
        id: d.id.clone(),
        object: "dispute".into(),
        payment: d.payment_id.clone(),
        amount: d.amount,
        currency: d.currency.code().into(),
        reason: d.reason.as_str().into(),
        status: d.status.as_str().into(),
        evidence: wire::DisputeEvidence {
            customer_name: e.customer_name.clone(),
            product_description: e.product_description.clone(),
            shipping_tracking_number: e.shipping_tracking_number.clone(),
            uncategorized_text: e.uncategorized_text.clone(),
        },
        evidence_due_by: timestamp(d.evidence_due_by),
        fee: d.fee,
        created_at: timestamp(d.created_at),
        closed_at: d.closed_at.map(timestamp),
        livemode: d.mode == Mode::Live,
        metadata: d.metadata.clone(),
    }
}

pub fn dispute_json(d: &Dispute) -> String {
    serde_json::to_string(&dispute(d)).unwrap_or_default()
}

pub fn balance_transaction(b: &BalanceTransactionRecord) -> wire::BalanceTransaction {
    wire::BalanceTransaction {
        id: b.id.clone(),
        object: "balance_transaction".into(),
        kind: b.kind.as_str().into(),
        source: b.source.clone(),
        amount: b.amount,
        fee: b.fee,
        net: b.net,
        currency: b.currency.code().into(),
        created_at: timestamp(b.created_at),
        available_on: timestamp(b.available_on),
        settlement: b.settlement_id.clone(),
        livemode: b.scope.mode == Mode::Live,
    }
}

pub fn balance(amounts: &[BalanceAmounts], mode: Mode) -> wire::Balance {
    let side = |pick: fn(&BalanceAmounts) -> i64| {
        amounts
            .iter()
            .map(|a| wire::BalanceAmount {
                amount: pick(a),
                currency: a.currency.code().into(),
            })
            .collect()
    };
    wire::Balance {
        object: "balance".into(),
        available: side(|a| a.available),
        pending: side(|a| a.pending),
        livemode: mode == Mode::Live,
    }
}

pub fn settlement(s: &Settlement) -> wire::Settlement {
    wire::Settlement {
        id: s.id.clone(),
        object: "settlement".into(),
        status: s.status.as_str().into(),
        currency: s.currency.code().into(),
        gross: s.totals.gross,
        refunds: s.totals.refunds,
        disputes: s.totals.disputes,
        fees: s.totals.fees,
        net: s.totals.net,
        transaction_count: s.totals.transaction_count,
        period_start: timestamp(s.period_start),
        period_end: timestamp(s.period_end),
        created_at: timestamp(s.created_at),
        paid_at: s.paid_at.map(timestamp),
        livemode: s.mode == Mode::Live,
    }
}

pub fn settlement_json(s: &Settlement) -> String {
    serde_json::to_string(&settlement(s)).unwrap_or_default()
}

pub fn event(record: EventRecord) -> wire::Event {
    // The snapshot was written by this server as JSON; a broken one shows as null.
    let object = serde_json::value::RawValue::from_string(record.data)
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned());
    wire::Event {
        id: record.id,
        object: "event".into(),
        kind: record.kind,
        created_at: timestamp(record.created_at),
        livemode: record.scope.mode == Mode::Live,
        data: wire::EventData { object },
    }
}

pub fn fault_rule(rule: &FaultRule) -> wire::FaultRule {
    wire::FaultRule {
        id: rule.id.clone(),
        object: "fault_rule".into(),
        method: rule.method.clone(),
        path: rule.path.clone(),
        fault: rule.fault.to_string(),
        remaining: rule.remaining,
        created_at: timestamp(rule.created_at),
        livemode: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        assert_eq!(
            timestamp(UnixMillis(1_776_249_000_999)),
            "2026-04-15T10:30:00Z"
        );
        assert_eq!(timestamp(UnixMillis(0)), "1970-01-01T00:00:00Z");
    }
}
