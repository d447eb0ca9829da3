//! Events (SPEC §6): every state change writes its event, whose `data.object` is the payment
//! as answered after the change; `GET /v1/events` (newest first, `type` filter, pagination)
//! and `GET /v1/events/:id`.

mod common;

use common::*;
use serde_json::{json, Value};

/// Asserts `events` (newest first) are exactly `expected` (oldest first): types, and
/// snapshots equal to the answers the API gave at each step. `case` names the failure.
#[track_caller]
fn assert_history(case: &str, events: &[Value], expected: &[(&str, &Value)]) {
    let types: Vec<&str> = events
        .iter()
        .rev()
        .filter_map(|e| e["type"].as_str())
        .collect();
    let expected_types: Vec<&str> = expected.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, expected_types, "{case}");
    for (event, (kind, snapshot)) in events.iter().rev().zip(expected) {
        let id = id_of(event);
        assert!(id.starts_with("evt_"), "{case}: {id}");
        assert_eq!(event["object"], "event", "{case}: {kind}");
        assert_eq!(event["livemode"], false, "{case}: {kind}");
        assert!(
            event["created_at"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z')),
            "{case}: {kind}: {event}"
        );
        assert_eq!(
            &event["data"]["object"], *snapshot,
            "{case}: {kind}: the snapshot after the change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_writes_its_event() {
    let server = TestServer::start().await;
    let api = server.api();
    let automatic = || payment_body(1000, json!({}));
    let manual = |extra: Value| {
        let mut extra = extra;
        extra["capture"] = json!(false);
        payment_body(900, extra)
    };
    // (the path, the created payment, each operation and the event it writes)
    let cases = [
        (
            "pending → requires_authentication → completed",
            automatic(),
            vec![
                (Op::Pay(CARD_3DS), "payment.requires_authentication"),
                (Op::Authenticate("approve"), "payment.completed"),
            ],
        ),
        (
            "pending → authorized → completed by capture",
            manual(json!({"metadata": {"a": "b"}})),
            vec![
                (Op::Pay(CARD_APPROVED), "payment.authorized"),
                (Op::Capture(json!({"amount": 300})), "payment.completed"),
            ],
        ),
        (
            "pending → failed",
            automatic(),
            vec![(Op::Pay(CARD_INSUFFICIENT_FUNDS), "payment.failed")],
        ),
        (
            "pending → requires_authentication → failed",
            automatic(),
            vec![
                (Op::Pay(CARD_3DS), "payment.requires_authentication"),
                (Op::Authenticate("fail"), "payment.failed"),
            ],
        ),
        (
            "pending → cancelled",
            automatic(),
            vec![(Op::Cancel, "payment.cancelled")],
        ),
        (
            "pending → authorized → cancelled",
            manual(json!({})),
            vec![
                (Op::Pay(CARD_MASTERCARD), "payment.authorized"),
                (Op::Cancel, "payment.cancelled"),
            ],
        ),
    ];
    for (case, body, steps) in cases {
        let created = api.create_payment(body.clone()).await;
        let id = id_of(&created);
        let mut answers = vec![created];
        for (op, _) in &steps {
            let reply = api.apply(&id, op).await;
            assert_eq!(reply.status, 200, "{case}: {op:?}: {}", reply.text);
            answers.push(reply.json);
        }
        let mut expected = vec![("payment.created", &answers[0])];
        expected.extend(steps.iter().map(|(_, kind)| *kind).zip(&answers[1..]));
        assert_history(case, &api.events_of(&id).await, &expected);
        if let Some(metadata) = body.get("metadata") {
            for answer in &answers {
                assert_eq!(
                    &answer["metadata"], metadata,
                    "{case}: metadata echoed in snapshots"
                );
            }
        }
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_by_payment_with_its_refunds_and_disputes() {
    let server = TestServer::start().await;
    let api = server.api();
    let paid = api.completed_payment().await;
    let id = id_of(&paid);
    let refund = api
        .post_json("/v1/refunds", json!({"payment": id, "amount": 100}))
        .await;
    let refund = id_of(refund.expect_status(201));
    let dispute = api
        .post_json(
            &format!("/v1/test_helpers/payments/{id}/dispute"),
            json!({"amount": 100}),
        )
        .await;
    let dispute = id_of(dispute.expect_status(201));
    let other = api.completed_payment().await;
    let (_, stranger) = server.new_account("Other shop").await;
    let theirs = id_of(&stranger.completed_payment().await);

    let about = api.list_all(&format!("/v1/events?payment={id}")).await;
    let objects: Vec<&str> = about
        .iter()
        .filter_map(|e| e["data"]["object"]["id"].as_str())
        .collect();
    assert!(objects.contains(&id.as_str()), "{objects:?}");
    assert!(objects.contains(&refund.as_str()), "{objects:?}");
    assert!(objects.contains(&dispute.as_str()), "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|o| [&id, &refund, &dispute].contains(&&o.to_string())),
        "only this payment's: {objects:?}"
    );
    let all = api.list_all("/v1/events").await;
    let expected: Vec<&Value> = all
        .iter()
        .filter(|e| {
            let object = e["data"]["object"]["id"].as_str().unwrap_or("");
            [&id, &refund, &dispute].contains(&&object.to_owned())
        })
        .collect();
    assert_eq!(about.iter().collect::<Vec<_>>(), expected, "newest first");
    // With the type filter, and paged by one.
    let typed = api
        .list_all(&format!("/v1/events?payment={id}&type=refund.created"))
        .await;
    assert_eq!(typed.len(), 1);
    let first = api.get(&format!("/v1/events?payment={id}&limit=1")).await;
    let first = first.expect_status(200).clone();
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let second = api
        .get(&format!(
            "/v1/events?payment={id}&limit=1&starting_after={cursor}"
        ))
        .await;
    assert_eq!(second.expect_status(200)["data"][0], about[1]);
    // Another payment's events are not among them; another account's payment has none here.
    assert!(!about
        .iter()
        .any(|e| e["data"]["object"]["id"] == other["id"]));
    let none = api.get(&format!("/v1/events?payment={theirs}")).await;
    assert_eq!(none.expect_status(200)["data"], json!([]));
    // Values that cannot be a payment id name none: an empty list, never an error or a 500.
    let long = "x".repeat(2_000);
    for bad in ["re_123", "pay_short", "pay_%27%20OR%201%3D1", long.as_str()] {
        let none = api.get(&format!("/v1/events?payment={bad}")).await;
        assert_eq!(
            none.expect_status(200)["data"],
            json!([]),
            "payment={bad:.20}"
        );
    }
    server.stop().await;
}
