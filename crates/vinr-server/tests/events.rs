//! Events (SPEC §6): every state change writes its event, whose `data.object` is the payment
//! as answered after the change; `GET /v1/events` (newest first, `type` filter, pagination)
//! and `GET /v1/events/:id`.

mod common;

use common::*;
use serde_json::{json, Value};

/// Asserts `events` (newest first) are exactly `expected` (oldest first): types, and
/// snapshots equal to the answers the API gave at each step.
#[track_caller]
fn assert_history(events: &[Value], expected: &[(&str, &Value)]) {
    let types: Vec<&str> = events
        .iter()
        .rev()
        .filter_map(|e| e["type"].as_str())
        .collect();
    let expected_types: Vec<&str> = expected.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, expected_types);
    for (event, (kind, snapshot)) in events.iter().rev().zip(expected) {
        let id = id_of(event);
        assert!(id.starts_with("evt_"), "{id}");
        assert_eq!(event["object"], "event");
        assert_eq!(event["livemode"], false);
        assert!(event["created_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')));
        assert_eq!(
            &event["data"]["object"], *snapshot,
            "{kind}: the snapshot after the change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_writes_its_event() {
    let server = TestServer::start().await;
    let api = server.api();

    // pending → requires_authentication → completed
    let created = api.new_payment().await;
    let id = id_of(&created);
    let challenged = api.pay(&id, CARD_3DS).await.expect_status(200).clone();
    let completed = api
        .authenticate(&id, "approve")
        .await
        .expect_status(200)
        .clone();
    assert_history(
        &api.events_of(&id).await,
        &[
            ("payment.created", &created),
            ("payment.requires_authentication", &challenged),
            ("payment.completed", &completed),
        ],
    );

    // pending → authorized → completed by capture
    let created = api
        .create_payment(payment_body(
            900,
            json!({"capture": false, "metadata": {"a": "b"}}),
        ))
        .await;
    let id = id_of(&created);
    let authorized = api.pay(&id, CARD_APPROVED).await.expect_status(200).clone();
    let captured = api
        .capture(&id, json!({"amount": 300}))
        .await
        .expect_status(200)
        .clone();
    assert_history(
        &api.events_of(&id).await,
        &[
            ("payment.created", &created),
            ("payment.authorized", &authorized),
            ("payment.completed", &captured),
        ],
    );
    assert_eq!(
        captured["metadata"],
        json!({"a": "b"}),
        "metadata echoed in snapshots"
    );

    // pending → failed
    let created = api.new_payment().await;
    let id = id_of(&created);
    let failed = api
        .pay(&id, CARD_INSUFFICIENT_FUNDS)
        .await
        .expect_status(200)
        .clone();
    assert_history(
        &api.events_of(&id).await,
        &[("payment.created", &created), ("payment.failed", &failed)],
    );

    // pending → requires_authentication → failed
    let created = api.new_payment().await;
    let id = id_of(&created);
    let challenged = api.pay(&id, CARD_3DS).await.expect_status(200).clone();
    let failed = api
        .authenticate(&id, "fail")
        .await
        .expect_status(200)
        .clone();
    assert_history(
        &api.events_of(&id).await,
        &[
            ("payment.created", &created),
            ("payment.requires_authentication", &challenged),
            ("payment.failed", &failed),
        ],
    );

    // pending → cancelled; authorized → cancelled
    let created = api.new_payment().await;
    let id = id_of(&created);
    let cancelled = api.cancel(&id).await.expect_status(200).clone();
    assert_history(
        &api.events_of(&id).await,
        &[
            ("payment.created", &created),
            ("payment.cancelled", &cancelled),
        ],
    );
    let created = api
        .create_payment(payment_body(900, json!({"capture": false})))
        .await;
    let id = id_of(&created);
    let authorized = api
        .pay(&id, CARD_MASTERCARD)
        .await
        .expect_status(200)
        .clone();
    let cancelled = api.cancel(&id).await.expect_status(200).clone();
    assert_history(
        &api.events_of(&id).await,
        &[
            ("payment.created", &created),
            ("payment.authorized", &authorized),
            ("payment.cancelled", &cancelled),
        ],
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_retrieved_listed_and_filtered() {
    let server = TestServer::start().await;
    let api = server.api();
    let completed = api.completed_payment().await;
    let declined = id_of(&api.new_payment().await);
    api.pay(&declined, CARD_DECLINED).await.expect_status(200);
    let pending = api.new_payment().await;

    let all = api.get("/v1/events").await;
    let all = all.expect_status(200);
    assert_eq!(all["object"], "list");
    assert_eq!(all["has_more"], false);
    assert_eq!(all["next_cursor"], Value::Null);
    let data = all["data"].as_array().expect("data");
    let types: Vec<&str> = data.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        vec![
            "payment.created",
            "payment.failed",
            "payment.created",
            "payment.completed",
            "payment.created"
        ],
        "newest first"
    );
    assert_eq!(data[0]["data"]["object"], pending);
    assert_eq!(data[3]["data"]["object"], completed);

    for event in data {
        let one = api.get(&format!("/v1/events/{}", id_of(event))).await;
        assert_eq!(one.expect_status(200), event, "GET /v1/events/:id");
    }

    let created = api.get("/v1/events?type=payment.created").await;
    let created = created.expect_status(200)["data"]
        .as_array()
        .expect("data")
        .clone();
    assert_eq!(created.len(), 3);
    assert!(created.iter().all(|e| e["type"] == "payment.created"));
    let failed = api.get("/v1/events?type=payment.failed").await;
    let failed = failed.expect_status(200)["data"]
        .as_array()
        .expect("data")
        .clone();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["object"]["failureCode"], "card_declined");
    let none = api.get("/v1/events?type=payment.expired").await;
    assert_eq!(none.expect_status(200)["data"], json!([]));

    // Pages of two, forwards, cover the five events once each.
    let first = api.get("/v1/events?limit=2").await;
    let first = first.expect_status(200).clone();
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().expect("next_cursor");
    let second = api
        .get(&format!("/v1/events?limit=2&starting_after={cursor}"))
        .await;
    let second = second.expect_status(200).clone();
    let cursor = second["next_cursor"].as_str().expect("next_cursor");
    let third = api
        .get(&format!("/v1/events?limit=2&starting_after={cursor}"))
        .await;
    let third = third.expect_status(200).clone();
    assert_eq!(third["has_more"], false);
    let paged: Vec<Value> = [first, second, third]
        .iter()
        .flat_map(|page| page["data"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(&paged, data);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_write_no_event() {
    let server = TestServer::start().await;
    let api = server.api();
    let completed = id_of(&api.completed_payment().await);
    let before = api.events().await;
    api.cancel(&completed).await.expect_status(422);
    api.pay(&completed, CARD_APPROVED).await.expect_status(422);
    api.post_json("/v1/payments", json!({"amount": 0}))
        .await
        .expect_status(400);
    assert_eq!(api.events().await, before);
    server.stop().await;
}
