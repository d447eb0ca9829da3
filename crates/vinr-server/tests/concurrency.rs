//! Correctness under concurrency (SPEC §9): parallel requests with one idempotency key create
//! one payment; parallel captures, cancels and payments of one payment leave exactly one
//! winner, a state the table allows, and one event for it.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// Runs every request concurrently and answers the replies in completion order. `api`'s
/// connection pool is filled first, so that connecting does not serialize the requests.
async fn all_at_once<F, Fut>(api: &Api, count: usize, request: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let mut warm_up = JoinSet::new();
    for _ in 0..count {
        let api = api.clone();
        warm_up.spawn(async move { api.get("/healthz").await.status });
    }
    while let Some(status) = warm_up.join_next().await {
        assert_eq!(status.expect("a warm-up task"), 200);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let barrier = barrier.clone();
        let future = request(index);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_32_times_at_once_creates_one_payment() {
    let server = TestServer::start().await;
    let api = server.api();
    let body = payment_body(4200, json!({"metadata": {"cart": "c_77"}}));
    let replies = all_at_once(&api, 32, |_| {
        let api = api.clone();
        let body = body.clone();
        async move {
            api.call(Method::POST, "/v1/payments")
                .json(body)
                .idempotency_key("race-1")
                .send()
                .await
        }
    })
    .await;

    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty(), "at least one request succeeded");
    let fresh: Vec<&&Reply> = created
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one request ran");
    let body_text = &fresh[0].text;
    for reply in &created {
        assert_eq!(&reply.text, body_text, "every 201 answers the same body");
    }
    for reply in replies.iter().filter(|r| r.status != 201) {
        reply.expect_error(
            409,
            "idempotency_error",
            "idempotency_key_in_use",
            Some("Idempotency-Key"),
        );
    }

    let payments = api.payments().await;
    assert_eq!(payments.len(), 1, "exactly one payment exists");
    assert_eq!(&payments[0], &fresh[0].json);
    assert_eq!(api.events().await.len(), 1, "one payment.created");

    let later = api
        .call(Method::POST, "/v1/payments")
        .json(body)
        .idempotency_key("race-1")
        .send()
        .await;
    later.expect_status(201);
    assert_eq!(later.header("idempotent-replayed"), Some("true"));
    assert_eq!(&later.text, body_text);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_without_keys_are_all_kept() {
    let server = TestServer::start().await;
    let api = server.api();
    let replies = all_at_once(&api, 32, |index| {
        let api = api.clone();
        async move {
            api.post_json("/v1/payments", payment_body(index as i64 + 1, json!({})))
                .await
        }
    })
    .await;
    let mut ids = BTreeSet::new();
    for reply in &replies {
        ids.insert(id_of(reply.expect_status(201)));
    }
    assert_eq!(ids.len(), 32, "32 distinct payments answered");
    let listed: BTreeSet<String> = api.payments().await.iter().map(id_of).collect();
    assert_eq!(listed, ids, "exactly the acknowledged payments exist");
    let events = api.events().await;
    let created: BTreeSet<String> = events
        .iter()
        .filter(|event| event["type"] == "payment.created")
        .map(|event| id_of(&event["data"]["object"]))
        .collect();
    assert_eq!(events.len(), 32);
    assert_eq!(created, ids, "one payment.created each");
    let amounts: BTreeSet<u64> = api
        .payments()
        .await
        .iter()
        .filter_map(|p| p["amount"].as_u64())
        .collect();
    assert_eq!(
        amounts,
        (1..=32).collect(),
        "each body went to its own payment"
    );
    server.stop().await;
}

/// The events about `payment_id` whose type is one of `types`.
async fn events_of_types(api: &Api, payment_id: &str, types: &[&str]) -> Vec<Value> {
    api.events_of(payment_id)
        .await
        .into_iter()
        .filter(|event| types.iter().any(|t| event["type"] == *t))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_captures_and_cancels_leave_one_winner() {
    let server = TestServer::start().await;
    let api = server.api();
    for round in 0..4 {
        let payment = api.authorized_payment().await;
        let id = id_of(&payment);
        let replies = all_at_once(&api, 16, |index| {
            let api = api.clone();
            let id = id.clone();
            async move {
                // Interleave the kinds; the order of a round varies which kind goes first.
                if (index + round) % 2 == 0 {
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
        let after = api.payment(&id).await;
        assert_eq!(
            after, winners[0].json,
            "the winner's answer is the stored state"
        );
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
        let finals = events_of_types(&api, &id, &["payment.completed", "payment.cancelled"]).await;
        assert_eq!(finals.len(), 1, "round {round}: one final event");
        assert_eq!(finals[0]["data"]["object"], after);
    }
    assert_eq!(api.payments().await.len(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_payments_with_different_cards_charge_once() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let replies = all_at_once(&api, 16, |index| {
        let api = api.clone();
        let id = id.clone();
        async move {
            let card = if index % 2 == 0 {
                CARD_APPROVED
            } else {
                CARD_DECLINED
            };
            api.pay(&id, card).await
        }
    })
    .await;
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one payment attempt ran");
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.expect_error(422, "invalid_request_error", "payment_state_invalid", None);
    }
    let after = api.payment(&id).await;
    assert_eq!(after, winners[0].json);
    let finals = events_of_types(&api, &id, &["payment.completed", "payment.failed"]).await;
    assert_eq!(finals.len(), 1);
    assert_eq!(api.events_of(&id).await.len(), 2, "created + one outcome");
    server.stop().await;
}
