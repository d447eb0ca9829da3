//! Idempotency (SPEC §2): replays answer the stored status and body with
//! `Idempotent-Replayed: true`; another body with the same key is 409; keys are scoped to
//! account + mode + method + path; kept at least 24 h, then pruned.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_server::workers::maintenance;

const HOUR_MS: i64 = 60 * 60 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_replays_the_first_answer() {
    let server = TestServer::start().await;
    let api = server.api();
    let body = payment_body(1500, json!({"metadata": {"order": "9"}}));
    let first = api.create_with_key("order-9", body.clone()).await;
    first.expect_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let state = api.state().await;

    let retry = api.create_with_key("order-9", body).await;
    retry.expect_status(201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text, "byte-identical body");
    assert_ne!(
        retry.header("x-request-id"),
        first.header("x-request-id"),
        "a replay is a new request"
    );

    // The same request sent as a form is the same request.
    let form = api
        .call(Method::POST, "/v1/payments")
        .form("currency=EUR&amount=1500&returnUrl=https%3A%2F%2Fshop.example%2Freturn&metadata[order]=9")
        .idempotency_key("order-9")
        .send()
        .await;
    form.expect_status(201);
    assert_eq!(form.header("idempotent-replayed"), Some("true"));
    assert_eq!(form.text, first.text);

    api.expect_unchanged(&state, "replays").await;
    assert_eq!(state.0.len(), 1);
    assert_eq!(state.1.len(), 1, "one payment.created");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_body_is_409() {
    let server = TestServer::start().await;
    let api = server.api();
    api.create_with_key("k1", payment_body(1000, json!({})))
        .await
        .expect_status(201);
    let state = api.state().await;
    for body in [
        payment_body(1001, json!({})),
        payment_body(1000, json!({"description": "other"})),
        payment_body(1000, json!({"capture": false})),
    ] {
        let reply = api.create_with_key("k1", body).await;
        reply.expect_error(
            409,
            "idempotency_error",
            "idempotency_key_reused",
            Some("Idempotency-Key"),
        );
        assert_eq!(reply.header("idempotent-replayed"), None);
    }
    api.expect_unchanged(&state, "409 reused").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_body_keys_must_agree() {
    let server = TestServer::start().await;
    let api = server.api();
    let reply = api
        .create_with_key(
            "header-key",
            payment_body(1000, json!({"idempotencyKey": "body-key"})),
        )
        .await;
    reply.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("idempotencyKey"),
    );
    assert_eq!(api.state().await, (vec![], vec![]), "nothing created");
    server.stop().await;
}

/// `POST /v1/payments` with `body`, and `key` as the `Idempotency-Key` header if given.
async fn create(api: &Api, key: Option<&str>, body: Value) -> Reply {
    match key {
        Some(key) => api.create_with_key(key, body).await,
        None => api.post_json("/v1/payments", body).await,
    }
}

/// SPEC §2: on `POST /payments` the body field `idempotencyKey` "is the same thing" as the
/// header. Wherever a request and its retry send the key (the body field alone, the header
/// then the body field, both agreeing), the retry replays the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_field_and_the_header_are_one_key() {
    let server = TestServer::start().await;
    // (the case, the first request's header key and body fields, the retry's)
    let cases = [
        (
            "the body field alone deduplicates",
            (None, json!({"idempotencyKey": "in-body"})),
            (None, json!({"idempotencyKey": "in-body"})),
        ),
        (
            "a retry with the header's key in the body",
            (Some("moved"), json!({})),
            (None, json!({"idempotencyKey": "moved"})),
        ),
        (
            "equal keys in the header and the body are one key",
            (Some("same"), json!({"idempotencyKey": "same"})),
            (Some("same"), json!({"idempotencyKey": "same"})),
        ),
    ];
    for (case, (first_key, first_extra), (retry_key, retry_extra)) in cases {
        // An account per case: each counts its own payments.
        let (_, api) = server.new_account(case).await;
        let first = create(&api, first_key, payment_body(1000, first_extra)).await;
        assert_eq!(first.status, 201, "{case}: the first: {}", first.text);
        let retry = create(&api, retry_key, payment_body(1000, retry_extra)).await;
        assert_eq!(retry.status, 201, "{case}: the retry: {}", retry.text);
        assert_eq!(retry.header("idempotent-replayed"), Some("true"), "{case}");
        assert_eq!(retry.text, first.text, "{case}");
        assert_eq!(api.payments().await.len(), 1, "{case}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_nothing_is_deduplicated() {
    let server = TestServer::start().await;
    let api = server.api();
    let body = payment_body(1000, json!({}));
    let first = api.create_payment(body.clone()).await;
    let second = api.create_payment(body).await;
    assert_ne!(first["id"], second["id"]);
    assert_eq!(api.payments().await.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_scoped_to_path_and_account() {
    let server = TestServer::start().await;
    let api = server.api();
    let created = api
        .create_with_key("shared", payment_body(1000, json!({})))
        .await;
    let payment = created.expect_status(201).clone();
    let id = id_of(&payment);

    // The same key on another path is another key.
    let cancelled = api
        .call(Method::POST, &format!("/v1/payments/{id}/cancel"))
        .json(json!({}))
        .idempotency_key("shared")
        .send()
        .await;
    assert_eq!(cancelled.expect_status(200)["status"], "cancelled");
    assert_eq!(cancelled.header("idempotent-replayed"), None);

    // And the creation still replays its own first answer (the pending snapshot).
    let retry = api
        .create_with_key("shared", payment_body(1000, json!({})))
        .await;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json, payment);

    // Another account's identical request is its own.
    let (_, other) = server.new_account("Other").await;
    let theirs = other
        .create_with_key("shared", payment_body(1000, json!({})))
        .await;
    theirs.expect_status(201);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.json["id"], payment["id"]);
    assert_eq!(api.payments().await.len(), 1);
    assert_eq!(other.payments().await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_replay_too() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.authorized_payment().await);
    let capture = |amount: i64| {
        api.call(Method::POST, &format!("/v1/payments/{id}/capture"))
            .json(json!({"amount": amount}))
            .idempotency_key("capture-1")
            .send()
    };
    let first = capture(400).await;
    assert_eq!(first.expect_status(200)["amountCaptured"], 400);
    let state = api.state().await;
    let retry = capture(400).await;
    retry.expect_status(200);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text);
    let other = capture(500).await;
    other.expect_error(
        409,
        "idempotency_error",
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );
    api.expect_unchanged(&state, "capture replays").await;
    let completed: Vec<Value> = api
        .events_of(&id)
        .await
        .into_iter()
        .filter(|event| event["type"] == "payment.completed")
        .collect();
    assert_eq!(completed.len(), 1);
    server.stop().await;
}

/// A retried test-helper pay or authenticate (its first answer lost, e.g. to a crash) replays
/// the first answer; it used to be refused with 422 because the payment was no longer
/// `pending` (found by `vinr-bench torture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_test_payment_replays_its_answer() {
    let server = TestServer::start().await;
    let api = server.api();
    let step = |id: String, action: &'static str, body: Value, key: &'static str| {
        api.call(
            Method::POST,
            &format!("/v1/test_helpers/payments/{id}/{action}"),
        )
        .json(body)
        .idempotency_key(key)
        .send()
    };
    let id = id_of(&api.new_payment().await);
    let card = json!({"card": "4242424242424242"});
    let first = step(id.clone(), "pay", card.clone(), "pay-1").await;
    assert_eq!(first.expect_status(200)["status"], "completed");
    let state = api.state().await;
    let retry = step(id.clone(), "pay", card, "pay-1").await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text);
    // Another body with the key is still a conflict, not a replay.
    let other = step(
        id.clone(),
        "pay",
        json!({"card": "5555555555554444"}),
        "pay-1",
    )
    .await;
    assert_eq!(other.status, 409, "{}", other.text);
    api.expect_unchanged(&state, "pay replays").await;

    let id = id_of(&api.new_payment().await);
    let three_ds = json!({"card": "4000000000003220"});
    let paid = step(id.clone(), "pay", three_ds, "pay-2").await;
    assert_eq!(paid.expect_status(200)["status"], "requires_authentication");
    let approve = json!({"outcome": "approve"});
    let first = step(id.clone(), "authenticate", approve.clone(), "auth-2").await;
    assert_eq!(first.expect_status(200)["status"], "completed");
    let retry = step(id.clone(), "authenticate", approve, "auth-2").await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_the_answer_a_retry_gets() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let refund = |key: &'static str| {
        api.call(Method::POST, "/v1/refunds")
            .json(json!({"payment": id}))
            .idempotency_key(key)
            .send()
    };
    // Refused in the payment's state: that answer is kept for the key, like a success.
    let first = refund("refund-1").await;
    first.expect_error(
        422,
        "invalid_request_error",
        "payment_state_invalid",
        Some("payment"),
    );
    assert_eq!(first.header("idempotent-replayed"), None);
    api.pay(&id, "4242424242424242").await.expect_status(200);
    let retry = refund("refund-1").await;
    assert_eq!(retry.status, 422, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text);
    assert!(api.list_all("/v1/refunds").await.is_empty());
    // A new key is a new request.
    refund("refund-2").await.expect_status(201);
    // A refusal for a missing object is kept too; invalid parameters are not requests that ran.
    let missing = |key: &'static str| {
        api.call(
            Method::POST,
            "/v1/payments/pay_000000000000000000000000/capture",
        )
        .json(json!({}))
        .idempotency_key(key)
        .send()
    };
    missing("capture-x").await.expect_status(404);
    let again = missing("capture-x").await;
    assert_eq!(again.status, 404);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_kept_24_hours_then_pruned() {
    let server = TestServer::start().await;
    let api = server.api();
    api.create_with_key("daily", payment_body(1000, json!({})))
        .await
        .expect_status(201);

    // 23 hours on, the key is still held.
    server.clock.advance_ms(23 * HOUR_MS);
    maintenance::step(server.app())
        .await
        .expect("the maintenance step runs");
    let reply = api
        .create_with_key("daily", payment_body(2000, json!({})))
        .await;
    reply.expect_error(
        409,
        "idempotency_error",
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );

    // Past the 24-hour retention, pruning frees it.
    server.clock.advance_ms(2 * HOUR_MS);
    let pruned = maintenance::step(server.app())
        .await
        .expect("the maintenance step prunes idempotency keys");
    assert_eq!(pruned.idempotency_keys, 1);
    let reply = api
        .create_with_key("daily", payment_body(2000, json!({})))
        .await;
    assert_eq!(reply.expect_status(201)["amount"], 2000);
    assert_eq!(reply.header("idempotent-replayed"), None);
    assert_eq!(api.payments().await.len(), 2);
    server.stop().await;
}
