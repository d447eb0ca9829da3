//! The invariants, checked on what one account holds after a crash and restart (read back
//! through the API by `fetch`) against what its clients were told ([`Model`]):
//!
//! * every acknowledged payment and refund is there, with at least the acknowledged state;
//! * no idempotency key has two effects, and a refused or unsent request none;
//! * every stored change has its event, once, and every event names a stored object;
//! * no payment is refunded beyond what was captured, and `amountRefunded` is the sum of its
//!   refunds that did not fail;
//! * the ledger balances: per currency the sum of the balance transactions' `net` is the
//!   balance (available + pending), every payment and refund is booked at its amount, and a
//!   settlement's `net` is the sum of the transactions it gathered.

use std::collections::{BTreeMap, BTreeSet};

use crate::torture::model::{Model, Violation};

#[derive(Clone, Debug, Default)]
pub struct StoredPayment {
    pub id: String,
    /// `metadata[torture]`: the create's idempotency key.
    pub key: Option<String>,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub manual: bool,
    pub captured: i64,
    pub refunded: i64,
}

#[derive(Clone, Debug, Default)]
pub struct StoredRefund {
    pub id: String,
    pub key: Option<String>,
    pub payment: String,
    pub amount: i64,
    pub status: String,
}

#[derive(Clone, Debug, Default)]
pub struct StoredEvent {
    pub kind: String,
    /// `data.object.id`.
    pub object: String,
    /// `data.object.status`: the snapshot's.
    pub status: String,
}

#[derive(Clone, Debug, Default)]
pub struct StoredTransaction {
    pub kind: String,
    pub source: String,
    pub amount: i64,
    pub net: i64,
    pub currency: String,
    /// The settlement that gathered it.
    pub settlement: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct StoredSettlement {
    pub id: String,
    pub net: i64,
}

/// One account's objects, as the server answers them.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub payments: Vec<StoredPayment>,
    pub refunds: Vec<StoredRefund>,
    pub events: Vec<StoredEvent>,
    pub transactions: Vec<StoredTransaction>,
    pub settlements: Vec<StoredSettlement>,
    /// Available + pending, per currency.
    pub balance: BTreeMap<String, i64>,
}

/// Statuses a payment acknowledged in `status` may have reached since.
fn reachable(status: &str) -> &'static [&'static str] {
    match status {
        "pending" => &[
            "pending",
            "requires_authentication",
            "authorized",
            "completed",
            "failed",
            "cancelled",
            "expired",
        ],
        "authorized" => &["authorized", "completed", "cancelled"],
        "completed" => &["completed"],
        "cancelled" => &["cancelled"],
        "failed" => &["failed"],
        _ => &[],
    }
}

/// The events a payment in `status` must have (capture method `manual` or not).
fn payment_events(status: &str, manual: bool) -> &'static [&'static str] {
    match (status, manual) {
        ("authorized", _) => &["payment.created", "payment.authorized"],
        ("completed", true) => &["payment.created", "payment.authorized", "payment.completed"],
        ("completed", false) => &["payment.created", "payment.completed"],
        ("cancelled", _) => &["payment.created", "payment.cancelled"],
        _ => &["payment.created"],
    }
}

/// Every violated invariant of `stored` given `model`; empty when all hold.
pub fn check(model: &Model, stored: &Stored) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut violation = |kind: &'static str, detail: String| {
        found.push(Violation { kind, detail });
    };

    // Keys: each made at most one object, and only if it may have had an effect.
    let mut payments_by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for payment in &stored.payments {
        match payment.key.as_deref() {
            Some(key) if model.payments.contains_key(key) => {
                payments_by_key.entry(key).or_default().push(&payment.id);
            }
            _ => violation(
                "phantom",
                format!("payment {} matches no create that was sent", payment.id),
            ),
        }
    }
    let mut refunds_by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for refund in &stored.refunds {
        match refund.key.as_deref() {
            Some(key) if model.refunds.contains_key(key) => {
                refunds_by_key.entry(key).or_default().push(&refund.id);
            }
            _ => violation(
                "phantom",
                format!("refund {} matches no refund that was sent", refund.id),
            ),
        }
    }
    for (key, ids) in payments_by_key.iter().chain(&refunds_by_key) {
        if ids.len() > 1 {
            violation(
                "duplicate_effect",
                format!("key {key} made {}: {}", ids.len(), ids.join(", ")),
            );
        }
        if model.no_effect.contains(*key) {
            violation(
                "refused_but_stored",
                format!(
                    "key {key} was refused or never sent, yet made {}",
                    ids.join(", ")
                ),
            );
        }
    }

    // Acknowledged payments: there, with at least the acknowledged state.
    let payments: BTreeMap<&str, &StoredPayment> =
        stored.payments.iter().map(|p| (p.id.as_str(), p)).collect();
    for (key, acked) in &model.payments {
        let Some(id) = &acked.id else { continue };
        let Some(payment) = payments.get(id.as_str()) else {
            violation(
                "lost_write",
                format!("acknowledged payment {id} (key {key}) is missing"),
            );
            continue;
        };
        if payment.key.as_deref() != Some(key.as_str()) {
            violation(
                "duplicate_effect",
                format!(
                    "create key {key} was answered {id}, which carries key {:?}",
                    payment.key
                ),
            );
        }
        if payment.amount != acked.amount
            || payment.currency != acked.currency
            || payment.manual != acked.manual
        {
            violation(
                "wrong_amount",
                format!(
                    "payment {id}: {} {} (manual capture: {}), created with {} {} ({})",
                    payment.amount,
                    payment.currency,
                    payment.manual,
                    acked.amount,
                    acked.currency,
                    acked.manual
                ),
            );
        }
        let Some(status) = &acked.status else {
            continue;
        };
        if !reachable(status).contains(&payment.status.as_str()) {
            violation(
                "lost_write",
                format!("payment {id} is {}, acknowledged {status}", payment.status),
            );
        } else if !acked.unresolved && payment.status != *status {
            violation(
                "unacknowledged_effect",
                format!(
                    "payment {id} is {}, yet every request on it was answered and the last said {status}",
                    payment.status
                ),
            );
        }
        if status == "completed" && payment.captured != acked.captured {
            violation(
                "lost_write",
                format!(
                    "payment {id}: amountCaptured {}, acknowledged {}",
                    payment.captured, acked.captured
                ),
            );
        }
    }

    // Acknowledged refunds: there, at the acknowledged amount, on the right payment.
    let refunds: BTreeMap<&str, &StoredRefund> =
        stored.refunds.iter().map(|r| (r.id.as_str(), r)).collect();
    for (key, acked) in &model.refunds {
        let Some(id) = &acked.id else { continue };
        let Some(refund) = refunds.get(id.as_str()) else {
            violation(
                "lost_write",
                format!("acknowledged refund {id} (key {key}) is missing"),
            );
            continue;
        };
        let payment_id = model
            .payments
            .get(&acked.payment_key)
            .and_then(|p| p.id.as_deref());
        if refund.amount != acked.amount || payment_id != Some(refund.payment.as_str()) {
            violation(
                "wrong_amount",
                format!(
                    "refund {id}: {} of {}, acknowledged {} of {payment_id:?}",
                    refund.amount, refund.payment, acked.amount
                ),
            );
        }
    }

    // Refunds never exceed captures, and add up to amountRefunded.
    let mut refunded: BTreeMap<&str, i64> = BTreeMap::new();
    for refund in &stored.refunds {
        if refund.status != "failed" {
            *refunded.entry(&refund.payment).or_default() += refund.amount;
        }
        match payments.get(refund.payment.as_str()) {
            None => violation(
                "orphan",
                format!(
                    "refund {} is of {}, which is not stored",
                    refund.id, refund.payment
                ),
            ),
            Some(payment) if payment.status != "completed" => violation(
                "refund_of_unpaid",
                format!(
                    "refund {} is of {} {}",
                    refund.id, payment.status, payment.id
                ),
            ),
            Some(_) => {}
        }
    }
    for payment in &stored.payments {
        if payment.refunded > payment.captured {
            violation(
                "over_refunded",
                format!(
                    "payment {}: amountRefunded {} > amountCaptured {}",
                    payment.id, payment.refunded, payment.captured
                ),
            );
        }
        let sum = refunded
            .get(payment.id.as_str())
            .copied()
            .unwrap_or_default();
        if sum != payment.refunded {
            violation(
                "refund_sum_mismatch",
                format!(
                    "payment {}: amountRefunded {}, its refunds that did not fail sum to {sum}",
                    payment.id, payment.refunded
                ),
            );
        }
    }

    // Events: every stored change has its event exactly once; every event names an object.
    let mut events: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for event in &stored.events {
        *events
            .entry((event.kind.as_str(), event.object.as_str()))
            .or_default() += 1;
        let known = if event.kind.starts_with("payment.") {
            payments.contains_key(event.object.as_str())
        } else if event.kind.starts_with("refund.") {
            refunds.contains_key(event.object.as_str())
        } else {
            true
        };
        // A payment event's snapshot is the payment right after that change.
        let snapshot = match event.kind.as_str() {
            "payment.created" => Some("pending"),
            "payment.authorized" => Some("authorized"),
            "payment.completed" => Some("completed"),
            "payment.cancelled" => Some("cancelled"),
            _ => None,
        };
        if snapshot.is_some_and(|status| status != event.status) {
            violation(
                "event_snapshot",
                format!(
                    "{} of {} shows status {}",
                    event.kind, event.object, event.status
                ),
            );
        }
        if !known {
            violation(
                "event_without_object",
                format!("{} names {}, which is not stored", event.kind, event.object),
            );
        }
    }
    let mut expected: Vec<(&str, &str)> = Vec::new();
    for payment in &stored.payments {
        for kind in payment_events(&payment.status, payment.manual) {
            expected.push((kind, &payment.id));
        }
    }
    for refund in &stored.refunds {
        expected.push(("refund.created", &refund.id));
    }
    for (kind, object) in expected {
        match events.get(&(kind, object)).copied().unwrap_or_default() {
            0 => violation("missing_event", format!("no {kind} event for {object}")),
            1 => {}
            n => violation("duplicate_event", format!("{n} {kind} events for {object}")),
        }
    }

    // The ledger: the balance is the sum of the transactions, each object booked at its amount.
    let mut net: BTreeMap<&str, i64> = BTreeMap::new();
    let mut booked: BTreeMap<&str, i64> = BTreeMap::new();
    for tx in &stored.transactions {
        *net.entry(&tx.currency).or_default() += tx.net;
        if tx.kind == "payment" || tx.kind == "refund" {
            *booked.entry(&tx.source).or_default() += tx.amount;
        }
        let known = payments.contains_key(tx.source.as_str())
            || refunds.contains_key(tx.source.as_str())
            || tx.source.starts_with("setl_")
            || tx.source.starts_with("dp_");
        if !known {
            violation(
                "ledger_orphan",
                format!(
                    "a {} balance transaction of {}, which is not stored",
                    tx.kind, tx.source
                ),
            );
        }
    }
    let currencies: BTreeSet<&str> = net
        .keys()
        .copied()
        .chain(stored.balance.keys().map(String::as_str))
        .collect();
    for currency in currencies {
        let sum = net.get(currency).copied().unwrap_or_default();
        let balance = stored.balance.get(currency).copied().unwrap_or_default();
        if sum != balance {
            violation(
                "ledger_mismatch",
                format!("{currency}: balance transactions sum to {sum}, the balance is {balance}"),
            );
        }
    }
    let mut gathered: BTreeMap<&str, i64> = stored
        .settlements
        .iter()
        .map(|s| (s.id.as_str(), 0))
        .collect();
    for tx in stored.transactions.iter().filter(|tx| tx.kind != "payout") {
        let Some(settlement) = tx.settlement.as_deref() else {
            continue;
        };
        match gathered.get_mut(settlement) {
            Some(sum) => *sum += tx.net,
            None => violation(
                "ledger_orphan",
                format!(
                    "a {} of {} names settlement {settlement}, which is not stored",
                    tx.kind, tx.source
                ),
            ),
        }
    }
    for settlement in &stored.settlements {
        let sum = gathered
            .get(settlement.id.as_str())
            .copied()
            .unwrap_or_default();
        if sum != settlement.net {
            violation(
                "ledger_mismatch",
                format!(
                    "settlement {}: net {}, its transactions sum to {sum}",
                    settlement.id, settlement.net
                ),
            );
        }
    }
    for payment in &stored.payments {
        let expected = if payment.status == "completed" {
            payment.captured
        } else {
            0
        };
        let amount = booked.get(payment.id.as_str()).copied().unwrap_or_default();
        if amount != expected {
            violation(
                "ledger_mismatch",
                format!(
                    "payment {} ({}, captured {}) is booked at {amount}",
                    payment.id, payment.status, payment.captured
                ),
            );
        }
    }
    for refund in &stored.refunds {
        let expected = if refund.status == "failed" {
            0
        } else {
            -refund.amount
        };
        let amount = booked.get(refund.id.as_str()).copied().unwrap_or_default();
        if amount != expected {
            violation(
                "ledger_mismatch",
                format!(
                    "refund {} ({}, {}) is booked at {amount}",
                    refund.id, refund.status, refund.amount
                ),
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torture::model::{PaymentModel, RefundModel};

    /// One auto-capture payment of 1000 EUR, refunded 300 (acknowledged), and a manual
    /// payment of 500 USD captured 200 — consistent in every way.
    fn consistent() -> (Model, Stored) {
        let mut model = Model::default();
        model.payments.insert(
            "k1".into(),
            PaymentModel {
                id: Some("pay_1".into()),
                amount: 1000,
                currency: "EUR".into(),
                manual: false,
                status: Some("completed".into()),
                captured: 1000,
                unresolved: false,
            },
        );
        model.payments.insert(
            "k2".into(),
            PaymentModel {
                id: Some("pay_2".into()),
                amount: 500,
                currency: "USD".into(),
                manual: true,
                status: Some("completed".into()),
                captured: 200,
                unresolved: false,
            },
        );
        model.refunds.insert(
            "r1".into(),
            RefundModel {
                payment_key: "k1".into(),
                amount: 300,
                id: Some("re_1".into()),
                unresolved: false,
            },
        );
        let payment = |id: &str, key: &str, amount, currency: &str, manual, captured, refunded| {
            StoredPayment {
                id: id.into(),
                key: Some(key.into()),
                status: "completed".into(),
                amount,
                currency: currency.into(),
                manual,
                captured,
                refunded,
            }
        };
        let event = |kind: &str, object: &str| StoredEvent {
            kind: kind.into(),
            object: object.into(),
            status: match kind {
                "payment.created" => "pending",
                "refund.created" => "pending",
                other => other.trim_start_matches("payment."),
            }
            .into(),
        };
        let tx = |kind: &str, source: &str, amount, net, currency: &str| StoredTransaction {
            kind: kind.into(),
            source: source.into(),
            amount,
            net,
            currency: currency.into(),
            settlement: None,
        };
        let stored = Stored {
            payments: vec![
                payment("pay_1", "k1", 1000, "EUR", false, 1000, 300),
                payment("pay_2", "k2", 500, "USD", true, 200, 0),
            ],
            refunds: vec![StoredRefund {
                id: "re_1".into(),
                key: Some("r1".into()),
                payment: "pay_1".into(),
                amount: 300,
                status: "pending".into(),
            }],
            events: vec![
                event("payment.created", "pay_1"),
                event("payment.completed", "pay_1"),
                event("payment.created", "pay_2"),
                event("payment.authorized", "pay_2"),
                event("payment.completed", "pay_2"),
                event("refund.created", "re_1"),
            ],
            transactions: vec![
                tx("payment", "pay_1", 1000, 1000, "EUR"),
                tx("fee", "pay_1", 0, -39, "EUR"),
                tx("refund", "re_1", -300, -300, "EUR"),
                tx("payment", "pay_2", 200, 200, "USD"),
                tx("fee", "pay_2", 0, -28, "USD"),
            ],
            settlements: Vec::new(),
            balance: [("EUR".to_owned(), 661), ("USD".to_owned(), 172)].into(),
        };
        (model, stored)
    }

    fn kinds(model: &Model, stored: &Stored) -> Vec<&'static str> {
        check(model, stored).into_iter().map(|v| v.kind).collect()
    }

    #[test]
    fn a_consistent_state_passes() {
        let (model, stored) = consistent();
        assert_eq!(check(&model, &stored), []);
    }

    #[test]
    fn a_lost_payment_is_caught() {
        let (model, mut stored) = consistent();
        stored.payments.remove(1);
        let found = kinds(&model, &stored);
        assert!(found.contains(&"lost_write"), "{found:?}");
        // Its events and ledger entries now name nothing.
        assert!(found.contains(&"event_without_object"), "{found:?}");
        assert!(found.contains(&"ledger_orphan"), "{found:?}");
    }

    #[test]
    fn a_lost_refund_and_a_regressed_status_are_caught() {
        let (model, mut stored) = consistent();
        stored.refunds.clear();
        stored.payments[1].status = "authorized".into();
        let found = check(&model, &stored);
        assert!(
            found
                .iter()
                .any(|v| v.kind == "lost_write" && v.detail.contains("re_1")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v.kind == "lost_write" && v.detail.contains("pay_2 is authorized")),
            "{found:?}"
        );
    }

    #[test]
    fn a_key_with_two_effects_is_caught() {
        let (model, mut stored) = consistent();
        let mut twin = stored.payments[0].clone();
        twin.id = "pay_3".into();
        twin.refunded = 0;
        stored.payments.push(twin);
        let found = kinds(&model, &stored);
        assert!(found.contains(&"duplicate_effect"), "{found:?}");
        // The twin has no events and is not booked either.
        assert!(found.contains(&"missing_event"), "{found:?}");
        assert!(found.contains(&"ledger_mismatch"), "{found:?}");
    }

    #[test]
    fn a_refused_key_that_made_an_object_is_caught() {
        let (mut model, stored) = consistent();
        model.no_effect.insert("r1".into());
        model.refunds.get_mut("r1").expect("r1").id = None;
        assert_eq!(kinds(&model, &stored), ["refused_but_stored"]);
    }

    #[test]
    fn refunds_beyond_the_capture_are_caught() {
        let (model, mut stored) = consistent();
        stored.payments[1].refunded = 250;
        let found = kinds(&model, &stored);
        assert!(found.contains(&"over_refunded"), "{found:?}");
        assert!(found.contains(&"refund_sum_mismatch"), "{found:?}");
    }

    #[test]
    fn missing_and_duplicate_events_are_caught() {
        let (model, mut stored) = consistent();
        stored.events.remove(1);
        stored.events.push(StoredEvent {
            kind: "refund.created".into(),
            object: "re_1".into(),
            status: "pending".into(),
        });
        stored.events[0].status = "completed".into();
        let found = check(&model, &stored);
        assert!(
            found
                .iter()
                .any(|v| v.kind == "missing_event"
                    && v.detail == "no payment.completed event for pay_1"),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.kind == "duplicate_event"),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.kind == "event_snapshot"
                && v.detail == "payment.created of pay_1 shows status completed"),
            "{found:?}"
        );
    }

    #[test]
    fn a_ledger_that_does_not_balance_is_caught() {
        let (model, mut stored) = consistent();
        stored.balance.insert("EUR".into(), 662);
        assert_eq!(kinds(&model, &stored), ["ledger_mismatch"]);
        let (model, mut stored) = consistent();
        stored.transactions.retain(|tx| tx.source != "re_1");
        stored.balance.insert("EUR".into(), 961);
        assert_eq!(kinds(&model, &stored), ["ledger_mismatch"]);
    }

    #[test]
    fn a_settlement_must_add_up() {
        let (model, mut stored) = consistent();
        for tx in stored
            .transactions
            .iter_mut()
            .filter(|tx| tx.currency == "EUR")
        {
            tx.settlement = Some("setl_1".into());
        }
        stored.settlements.push(StoredSettlement {
            id: "setl_1".into(),
            net: 661,
        });
        assert_eq!(check(&model, &stored), []);
        stored.settlements[0].net = 700;
        assert_eq!(kinds(&model, &stored), ["ledger_mismatch"]);
        stored.settlements.clear();
        let found = kinds(&model, &stored);
        assert!(found.contains(&"ledger_orphan"), "{found:?}");
    }

    #[test]
    fn an_unresolved_op_may_have_moved_the_state_on() {
        let (mut model, mut stored) = consistent();
        let payment = model.payments.get_mut("k2").expect("k2");
        payment.status = Some("authorized".into());
        payment.captured = 0;
        // The capture took effect but its answer was lost, and the retry never got one.
        payment.unresolved = true;
        assert_eq!(check(&model, &stored), []);
        // Answered, it must match exactly.
        model.payments.get_mut("k2").expect("k2").unresolved = false;
        assert_eq!(kinds(&model, &stored), ["unacknowledged_effect"]);
        // And a stored state behind the acknowledged one is lost, resolved or not.
        stored.payments[1].status = "pending".into();
        model.payments.get_mut("k2").expect("k2").unresolved = true;
        let found = kinds(&model, &stored);
        assert!(found.contains(&"lost_write"), "{found:?}");
    }
}
