//! Races of SPEC §9, shared by the one-node tests (`concurrency.rs`) and the two-node tests
//! (`multinode.rs`): many requests released at once, spread round-robin over the given nodes,
//! and what must hold afterwards, seen from every node.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{id_of, payment_body, Api, Reply, CARD_APPROVED, CARD_DECLINED};

/// Runs `count` requests concurrently, request `index` against `apis[index % apis.len()]`, and
/// answers the replies in completion order. Each API's connection pool is filled first, so that
/// connecting does not serialize the requests; a barrier then releases them together.
pub async fn all_at_once<F, Fut>(apis: &[Api], count: usize, request: F) -> Vec<Reply>
where
    F: Fn(usize, Api) -> Fut,
    Fut: Future<Output = Reply> + Send + 'static,
{
    assert!(!apis.is_empty(), "at least one API to send to");
    let node_of = |index: usize| apis[index % apis.len()].clone();
    let mut warm_up = JoinSet::new();
    for index in 0..count {
        let api = node_of(index);
        warm_up.spawn(async move { api.get("/healthz").await.status });
    }
    while let Some(status) = warm_up.join_next().await {
        assert_eq!(status.expect("a warm-up task"), 200);
    }
    let barrier = Arc::new(Barrier::new(count));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let barrier = barrier.clone();
        let future = request(index, node_of(index));
        tasks.spawn(async move {
            barrier.wait().await;
            future.await
        });
    }
    let mut replies = Vec::with_capacity(count);
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.expect("a request task"));
    }
    replies
}

/// The events about `payment_id` whose type is one of `types`.
pub async fn events_of_types(api: &Api, payment_id: &str, types: &[&str]) -> Vec<Value> {
    api.events_of(payment_id)
        .await
        .into_iter()
        .filter(|event| types.iter().any(|t| event["type"] == *t))
        .collect()
}

/// Asserts every node reads `payment_id` as `expected`.
async fn assert_every_node_reads(apis: &[Api], payment_id: &str, expected: &Value) {
    for (node, api) in apis.iter().enumerate() {
        assert_eq!(
            &api.payment(payment_id).await,
            expected,
            "node {node} reads another state of {payment_id}"
        );
    }
}

/// 32 creations with one `Idempotency-Key` and one body: exactly one runs; every other answer
/// is its replay (201, the same body, `Idempotent-Replayed: true`) or 409
/// `idempotency_key_in_use`; one payment and one event exist, seen from every node, and a
/// later retry on any node replays.
pub async fn one_idempotency_key_sent_32_times(apis: &[Api]) {
    let body = payment_body(4200, json!({"metadata": {"cart": "c_77"}}));
    let replies = all_at_once(apis, 32, |_, api| {
        let body = body.clone();
        async move { api.create_with_key("race-1", body).await }
    })
    .await;

    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    let fresh: Vec<&&Reply> = created
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one request ran");
    let fresh = fresh[0];
    for reply in &created {
        assert_eq!(reply.text, fresh.text, "every 201 answers the same body");
    }
    let replays = created
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(
        replays + 1,
        created.len(),
        "every other 201 says it is a replay"
    );
    for reply in replies.iter().filter(|r| r.status != 201) {
        reply.expect_error(
            409,
            "idempotency_error",
            "idempotency_key_in_use",
            Some("Idempotency-Key"),
        );
    }

    for (node, api) in apis.iter().enumerate() {
        let payments = api.payments().await;
        assert_eq!(payments.len(), 1, "node {node}: exactly one payment exists");
        assert_eq!(payments[0], fresh.json, "node {node}: the payment answered");
        assert_eq!(
            api.events().await.len(),
            1,
            "node {node}: one payment.created"
        );
        let later = api.create_with_key("race-1", body.clone()).await;
        later.expect_status(201);
        assert_eq!(later.header("idempotent-replayed"), Some("true"));
        assert_eq!(later.text, fresh.text, "node {node}: a later retry replays");
    }
}

/// 32 creations without keys: each is its own payment with its own event.
pub async fn creations_without_keys_are_all_kept(apis: &[Api]) {
    let replies = all_at_once(apis, 32, |index, api| async move {
        api.post_json("/v1/payments", payment_body(index as i64 + 1, json!({})))
            .await
    })
    .await;
    let mut ids = BTreeSet::new();
    for reply in &replies {
        ids.insert(id_of(reply.expect_status(201)));
    }
    assert_eq!(ids.len(), 32, "32 distinct payments answered");
    for (node, api) in apis.iter().enumerate() {
        let payments = api.payments().await;
        let listed: BTreeSet<String> = payments.iter().map(id_of).collect();
        assert_eq!(
            listed, ids,
            "node {node}: exactly the acknowledged payments"
        );
        let amounts: BTreeSet<u64> = payments
            .iter()
            .filter_map(|p| p["amount"].as_u64())
            .collect();
        assert_eq!(
            amounts,
            (1..=32).collect(),
            "each body went to its own payment"
        );
        let events = api.events().await;
        let created: BTreeSet<String> = events
            .iter()
            .filter(|event| event["type"] == "payment.created")
            .map(|event| id_of(&event["data"]["object"]))
            .collect();
        assert_eq!(events.len(), 32, "node {node}: only payment.created events");
        assert_eq!(created, ids, "node {node}: one payment.created each");
    }
}

/// `rounds` times: 16 captures and cancels of one authorized payment at once leave exactly one
/// 200, the rest 422 `payment_state_invalid`, a final state the table allows, and one final
/// event carrying it.
pub async fn captures_and_cancels_leave_one_winner(apis: &[Api], rounds: usize) {
    for round in 0..rounds {
        let payment = apis[round % apis.len()].authorized_payment().await;
        let id = id_of(&payment);
        let replies = all_at_once(apis, 16, |index, api| {
            let id = id.clone();
            // Interleave the kinds so every node gets both; the round varies which goes first.
            let capture = (index / apis.len() + round) % 2 == 0;
            async move {
                if capture {
                    api.capture(&id, json!({})).await
                } else {
                    api.cancel(&id).await
                }
            }
        })
        .await;
        let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one 200");
        for reply in replies.iter().filter(|r| r.status != 200) {
            reply.expect_error(422, "invalid_request_error", "payment_state_invalid", None);
        }
        let after = winners[0].json.clone();
        assert_every_node_reads(apis, &id, &after).await;
        match after["status"].as_str() {
            Some("completed") => {
                assert_eq!(after["amountCaptured"], 1000);
                assert_eq!(after["amountCapturable"], 0);
                assert!(after["cancelledAt"].is_null());
            }
            Some("cancelled") => {
                assert_eq!(after["amountCaptured"], 0);
                assert_eq!(after["amountCapturable"], 0);
                assert!(after["capturedAt"].is_null());
            }
            other => panic!("round {round}: final status {other:?}"),
        }
        for (node, api) in apis.iter().enumerate() {
            let finals =
                events_of_types(api, &id, &["payment.completed", "payment.cancelled"]).await;
            assert_eq!(
                finals.len(),
                1,
                "round {round}, node {node}: one final event"
            );
            assert_eq!(finals[0]["data"]["object"], after);
        }
    }
    for (node, api) in apis.iter().enumerate() {
        assert_eq!(
            api.payments().await.len(),
            rounds,
            "node {node}: one per round"
        );
    }
}

/// 16 attempts to pay one payment at once, half with an approved card and half with a declined
/// one: exactly one runs, and exactly one outcome event follows.
pub async fn payments_with_different_cards_charge_once(apis: &[Api]) {
    let id = id_of(&apis[0].new_payment().await);
    let replies = all_at_once(apis, 16, |index, api| {
        let id = id.clone();
        // Every node gets both cards.
        let card = if (index / apis.len()) % 2 == 0 {
            CARD_APPROVED
        } else {
            CARD_DECLINED
        };
        async move { api.pay(&id, card).await }
    })
    .await;
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one payment attempt ran");
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.expect_error(422, "invalid_request_error", "payment_state_invalid", None);
    }
    assert_every_node_reads(apis, &id, &winners[0].json).await;
    for (node, api) in apis.iter().enumerate() {
        let finals = events_of_types(api, &id, &["payment.completed", "payment.failed"]).await;
        assert_eq!(finals.len(), 1, "node {node}: one outcome event");
        assert_eq!(api.events_of(&id).await.len(), 2, "created + one outcome");
    }
}

/// SPEC §12: a fault rule with `count: 3` hit by 20 requests at once (spread over the nodes)
/// faults exactly 3 of them, whichever node each reaches; the rest run, and the rule is gone.
pub async fn fault_rule_count_is_taken_exactly(apis: &[Api]) {
    let rule = apis[0]
        .post_json(
            "/v1/test_helpers/faults",
            json!({"method": "POST", "path": "/v1/payments", "fault": "status=503", "count": 3}),
        )
        .await;
    let rule_id = id_of(rule.expect_status(201));
    let replies = all_at_once(apis, 20, |index, api| async move {
        api.post_json("/v1/payments", payment_body(100 + index as i64, json!({})))
            .await
    })
    .await;
    let faulted: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(faulted.len(), 3, "exactly the rule's count is faulted");
    assert_eq!(created, 17, "every other request runs");
    for reply in faulted {
        reply.expect_error(503, "api_error", "injected_fault", None);
        assert_eq!(reply.header("vinr-test-fault"), Some("status=503"));
        assert_eq!(reply.header("vinr-test-fault-rule"), Some(rule_id.as_str()));
    }
    for (node, api) in apis.iter().enumerate() {
        assert_eq!(api.payments().await.len(), 17, "node {node}: 17 payments");
        let rules = api.get("/v1/test_helpers/faults").await;
        assert_eq!(
            rules.expect_status(200)["data"],
            json!([]),
            "node {node}: the used-up rule is gone"
        );
    }
}
