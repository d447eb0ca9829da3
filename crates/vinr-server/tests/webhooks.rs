//! Webhooks (SPEC §6), black-box: endpoints over the API, and deliveries to a real receiver
//! on a local port, whose signatures the official Standard Webhooks library verifies. On
//! SQLite, or on PostgreSQL with `VINR_TEST_DATABASE_URL`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::receiver::{verify_with_library, Answer, Received, Receiver, TestCa};
use common::*;
use serde_json::{json, Value};
use vinr_domain::Mode;
use vinr_server::config::WebhooksConfig;

const WAIT: Duration = Duration::from_secs(20);

/// Registers an endpoint for every event type; answers (id, secret).
async fn register(api: &Api, url: &str) -> (String, String) {
    let reply = api.post_json("/v1/webhooks", json!({ "url": url })).await;
    let endpoint = reply.expect_status(201);
    (
        endpoint["id"].as_str().expect("an id").to_owned(),
        endpoint["secret"].as_str().expect("a secret").to_owned(),
    )
}

/// `POST /v1/webhooks/:id/test`: the attempt it answers with (200).
async fn send_test(api: &Api, endpoint: &str) -> Value {
    let reply = api
        .post_json(&format!("/v1/webhooks/{endpoint}/test"), json!({}))
        .await;
    reply.expect_status(200).clone()
}

fn event_ids(events: &[Value]) -> Vec<String> {
    events.iter().map(id_of).collect()
}

/// Waits until every event type in `wanted` is among the account's events; answers them all.
async fn events_with_types(api: &Api, wanted: &BTreeSet<&str>) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let events = api.events().await;
        let types: BTreeSet<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        if wanted.iter().all(|t| types.contains(t)) {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing types: {:?}",
            wanted.difference(&types).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until no delivery in the database at `url` is pending: none is leased or can be
/// leased again, so nothing more is sent until a new event is written.
async fn no_delivery_pending(url: &str) {
    let pending = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'";
    let deadline = std::time::Instant::now() + WAIT;
    while common::database::query_integers(url, pending).await[0] > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries still pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn endpoints_are_created_listed_retrieved_and_deleted() {
    let server = TestServer::start().await;
    let api = server.api();
    let reply = api
        .post_json(
            "/v1/webhooks",
            json!({"url": "https://shop.example/hooks", "events": ["payment.completed", "refund.created", "payment.completed"], "description": "orders"}),
        )
        .await;
    let created = reply.expect_status(201).clone();
    let id = id_of(&created);
    assert!(id.starts_with("we_"), "{id}");
    assert_eq!(created["object"], "webhook_endpoint");
    assert_eq!(created["url"], "https://shop.example/hooks");
    assert_eq!(
        created["events"],
        json!(["payment.completed", "refund.created"])
    );
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["livemode"], false);
    assert_eq!(created["description"], "orders");
    assert!(created["created_at"].as_str().is_some());
    let secret = created["secret"].as_str().expect("the secret, once");
    let key = secret.strip_prefix("whsec_").expect("a whsec_ secret");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("base64");
    assert_eq!(bytes.len(), 32);

    let fetched = api.get(&format!("/v1/webhooks/{id}")).await;
    let fetched = fetched.expect_status(200);
    assert!(fetched.get("secret").is_none(), "the secret is shown once");
    assert_eq!(fetched["events"], created["events"]);

    let all = register(&api, "http://localhost:9/x").await;
    let listed = api.list_all("/v1/webhooks").await;
    assert_eq!(event_ids(&listed), vec![all.0.clone(), id.clone()]);
    assert!(listed.iter().all(|e| e.get("secret").is_none()));
    assert_eq!(listed[0]["events"], json!(["*"]));
    let page = api.get("/v1/webhooks?limit=1").await;
    let page = page.expect_status(200);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["next_cursor"], all.0.as_str());

    // Another account does not see it (404, not 403).
    let (_, other) = server.new_account("other").await;
    other.get(&format!("/v1/webhooks/{id}")).await.expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some("id"),
    );

    let deleted = api
        .call(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
        .send()
        .await;
    let deleted = deleted.expect_status(200);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["livemode"], false);
    api.get(&format!("/v1/webhooks/{id}")).await.expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some("id"),
    );
    api.call(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
        .send()
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    server.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "parameter_missing", "url"),
        (
            json!({"url": "http://shop.example/hooks"}),
            "parameter_invalid",
            "url",
        ),
        (
            json!({"url": "http://10.0.0.1/hooks"}),
            "url_not_allowed",
            "url",
        ),
        (
            json!({"url": "ftp://shop.example/"}),
            "parameter_invalid",
            "url",
        ),
        (json!({"url": "not a url"}), "parameter_invalid", "url"),
        (json!({"url": ""}), "parameter_invalid", "url"),
        (
            json!({"url": format!("https://shop.example/{}", "a".repeat(3000))}),
            "parameter_invalid",
            "url",
        ),
        (json!({"url": 5}), "parameter_invalid", "url"),
        (
            json!({"url": "https://a.example", "events": []}),
            "parameter_invalid",
            "events",
        ),
        (
            json!({"url": "https://a.example", "events": ["*", "payment.created"]}),
            "parameter_invalid",
            "events",
        ),
        (
            json!({"url": "https://a.example", "events": ["payment.created", "payment.teleported"]}),
            "parameter_invalid",
            "events[1]",
        ),
        (
            json!({"url": "https://a.example", "events": ["webhook.test"]}),
            "parameter_invalid",
            "events[0]",
        ),
        (
            json!({"url": "https://a.example", "events": "payment.created"}),
            "parameter_invalid",
            "events",
        ),
        (
            json!({"url": "https://a.example", "description": "d".repeat(501)}),
            "parameter_invalid",
            "description",
        ),
        (
            json!({"url": "https://a.example", "secret": "whsec_mine"}),
            "parameter_unknown",
            "secret",
        ),
    ];
    for (body, code, param) in cases {
        let reply = api.post_json("/v1/webhooks", body.clone()).await;
        assert!(reply.status < 500, "{body}: {}", reply.text);
        reply.expect_error(400, "invalid_request_error", code, Some(param));
    }
    // Live mode: https only, and never localhost.
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    live.post_json("/v1/webhooks", json!({"url": "http://shop.example/hooks"}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("url"),
        );
    live.post_json(
        "/v1/webhooks",
        json!({"url": "http://localhost:9000/hooks"}),
    )
    .await
    .expect_error(400, "invalid_request_error", "url_not_allowed", Some("url"));
    assert!(api.list_all("/v1/webhooks").await.is_empty());
    assert!(live.list_all("/v1/webhooks").await.is_empty());
    // Ids that cannot exist, and list parameters.
    api.get("/v1/webhooks/we_nope").await.expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some("id"),
    );
    api.get("/v1/webhooks/we_nope/deliveries")
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    api.get("/v1/webhooks?limit=0").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("limit"),
    );
    api.get("/v1/webhooks?colour=red").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_unknown",
        Some("colour"),
    );
    api.get("/v1/webhooks?starting_after=we_nope")
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("starting_after"),
        );
    api.post_json("/v1/events/evt_nope/resend", json!({}))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    // At most 16 endpoints per account and mode.
    for n in 0..16 {
        register(&api, &format!("https://shop.example/{n}")).await;
    }
    api.post_json("/v1/webhooks", json!({"url": "https://shop.example/17"}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("url"),
        );
    server.stop().await;
}

#[tokio::test]
async fn creation_is_idempotent_and_scoped() {
    let server = TestServer::start().await;
    let api = server.api();
    let body = json!({"url": "https://shop.example/hooks"});
    let first = api
        .call(reqwest::Method::POST, "/v1/webhooks")
        .json(body.clone())
        .idempotency_key("wh-1")
        .send()
        .await;
    let first_json = first.expect_status(201).clone();
    let again = api
        .call(reqwest::Method::POST, "/v1/webhooks")
        .json(body)
        .idempotency_key("wh-1")
        .send()
        .await;
    assert_eq!(again.expect_status(201), &first_json);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    api.call(reqwest::Method::POST, "/v1/webhooks")
        .json(json!({"url": "https://shop.example/other"}))
        .idempotency_key("wh-1")
        .send()
        .await
        .expect_error(
            409,
            "idempotency_error",
            "idempotency_key_reused",
            Some("Idempotency-Key"),
        );
    assert_eq!(api.list_all("/v1/webhooks").await.len(), 1);

    // Restricted keys: `webhooks:read` lists, only `webhooks:write` creates, deletes, resends.
    let account = server.sandbox_account();
    let (_, reader) = server
        .new_key(&account, Mode::Test, &["webhooks:read"])
        .await;
    let (_, writer) = server
        .new_key(&account, Mode::Test, &["webhooks:write"])
        .await;
    let (_, payments) = server
        .new_key(&account, Mode::Test, &["payments:write"])
        .await;
    assert_eq!(reader.list_all("/v1/webhooks").await.len(), 1);
    reader
        .post_json("/v1/webhooks", json!({"url": "https://shop.example/r"}))
        .await
        .expect_error(403, "permission_error", "insufficient_permissions", None);
    payments.get("/v1/webhooks").await.expect_error(
        403,
        "permission_error",
        "insufficient_permissions",
        None,
    );
    writer
        .post_json("/v1/webhooks", json!({"url": "https://shop.example/w"}))
        .await
        .expect_status(201);
    let payment = api.new_payment().await;
    let event = id_of(&api.events_of(&id_of(&payment)).await[0]);
    let (_, events_reader) = server.new_key(&account, Mode::Test, &["events:read"]).await;
    events_reader
        .post_json(&format!("/v1/events/{event}/resend"), json!({}))
        .await
        .expect_error(403, "permission_error", "insufficient_permissions", None);
    writer
        .post_json(&format!("/v1/events/{event}/resend"), json!({}))
        .await
        .expect_status(202);
    server.stop().await;
}

#[tokio::test]
async fn every_sandbox_event_type_arrives_signed_as_the_events_api_shows_it() {
    let server = TestServer::start().await;
    let api = server.api();
    let receiver = Receiver::start().await;
    let (endpoint, secret) = register(&api, &receiver.url()).await;
    // One payment of each fate, and refunds that succeed and fail.
    let completed = api.completed_payment().await;
    let authorized = api.authorized_payment().await;
    api.cancel(&id_of(&authorized)).await.expect_status(200);
    let captured = api.authorized_payment().await;
    api.capture(&id_of(&captured), json!({}))
        .await
        .expect_status(200);
    let declined = api.new_payment().await;
    api.pay(&id_of(&declined), CARD_DECLINED).await;
    let challenged = api.new_payment().await;
    api.pay(&id_of(&challenged), CARD_3DS)
        .await
        .expect_status(200);
    api.authenticate(&id_of(&challenged), "approve")
        .await
        .expect_status(200);
    api.post_json(
        "/v1/refunds",
        json!({"payment": id_of(&completed), "amount": 100}),
    )
    .await
    .expect_status(201);
    let refunds_fail = api.new_payment().await;
    api.pay(&id_of(&refunds_fail), CARD_REFUNDS_FAIL)
        .await
        .expect_status(200);
    api.post_json("/v1/refunds", json!({"payment": id_of(&refunds_fail)}))
        .await
        .expect_status(201);
    // A settlement of what moved so far: `settlement.created`, then `settlement.paid`.
    let settled = api
        .post_json("/v1/test_helpers/settlements/run", json!({}))
        .await;
    assert_eq!(settled.expect_status(200)["data"][0]["status"], "paid");
    let expiring = api.new_payment().await;
    // The workers run on their own. Before the clock jumps, the refunds are final and every
    // delivery so far is made: a delivery leased before the jump would look expired after it
    // and be leased, and sent, a second time.
    events_with_types(&api, &["refund.succeeded", "refund.failed"].into()).await;
    no_delivery_pending(server.database_url()).await;
    server.clock.advance_ms(2 * 60 * 60 * 1000);
    // The expiry worker runs on its own; wait for its event.
    let wanted: BTreeSet<&str> = [
        "payment.created",
        "payment.requires_authentication",
        "payment.authorized",
        "payment.completed",
        "payment.failed",
        "payment.cancelled",
        "payment.expired",
        "refund.created",
        "refund.succeeded",
        "refund.failed",
        "settlement.created",
        "settlement.paid",
    ]
    .into();
    let events = events_with_types(&api, &wanted).await;
    assert!(events
        .iter()
        .any(|e| e["data"]["object"]["id"] == id_of(&expiring).as_str()));
    let ids = event_ids(&events);
    let received = receiver.wait_delivered(&ids, WAIT).await;
    let by_id: BTreeMap<&str, &Received> = received.iter().map(|r| (r.id.as_str(), r)).collect();
    for event in &events {
        let id = id_of(event);
        let request = by_id[id.as_str()];
        // The body is the event exactly as `GET /v1/events/:id` shows it.
        assert_eq!(&request.json(), event, "body of {id}");
        assert_eq!(request.header("content-type"), "application/json");
        let signature = request.header("webhook-signature");
        assert!(signature.starts_with("v1,"), "{signature}");
        assert_eq!(request.header("x-vinr-signature"), signature);
        assert_eq!(
            request.header("x-vinr-timestamp"),
            request.header("webhook-timestamp")
        );
    }
    // Exactly once each here: every attempt succeeded.
    assert_eq!(received.len(), events.len(), "one request per event");
    let messages: Vec<(&str, &Received)> = received.iter().map(|r| (secret.as_str(), r)).collect();
    verify_with_library(&messages);
    // Every attempt is listed, succeeded, with the status code and latency.
    let listed = api
        .recorded_webhook_attempts(&endpoint, events.len(), WAIT)
        .await;
    assert_eq!(listed.len(), events.len());
    for attempt in &listed {
        assert_eq!(attempt["object"], "webhook_attempt");
        assert_eq!(attempt["status"], "succeeded");
        assert_eq!(attempt["statusCode"], 200);
        assert_eq!(attempt["attempt"], 1);
        assert_eq!(attempt["webhook"], endpoint.as_str());
        assert!(attempt["latencyMs"].as_u64().is_some());
        assert!(attempt["responseExcerpt"]
            .as_str()
            .is_some_and(|text| text.starts_with("answer 200")));
    }
    let metrics = api.get("/metrics").await;
    for name in [
        "vinr_webhook_attempts_total",
        "vinr_webhook_commit_to_attempt_seconds",
        "vinr_webhook_request_seconds",
        "vinr_webhook_queue_depth",
    ] {
        assert!(metrics.text.contains(name), "{name} in /metrics");
    }
    receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn endpoints_receive_only_their_types_and_their_account() {
    let server = TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let receiver = Receiver::start().await;
    let completed_url = format!("{}?only=completed", receiver.url());
    api.post_json(
        "/v1/webhooks",
        json!({"url": completed_url, "events": ["payment.completed"]}),
    )
    .await
    .expect_status(201);
    let (_, other) = server.new_account("other").await;
    let other_receiver = Receiver::start().await;
    register(&other, &other_receiver.url()).await;
    let payment = api.completed_payment().await;
    let events = api.events_of(&id_of(&payment)).await;
    let completed: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "payment.completed")
        .map(id_of)
        .collect();
    assert_eq!(completed.len(), 1);
    // The worker's passes attempt everything due, wrongly queued deliveries included.
    assert_eq!(server.deliver_due_webhooks().await, 1, "one attempt in all");
    receiver.wait_delivered(&completed, WAIT).await;
    assert_eq!(receiver.received().len(), 1, "only payment.completed");
    assert!(
        other_receiver.received().is_empty(),
        "not another account's"
    );
    receiver.stop();
    other_receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn test_sends_resends_and_deletion() {
    let config = WebhooksConfig {
        retry_schedule_seconds: vec![60, 60],
        ..WebhooksConfig::default()
    };
    let server = TestServer::start_with(Options {
        webhooks: Some(config),
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let receiver = Receiver::start().await;
    let (endpoint, secret) = register(&api, &receiver.url()).await;

    // POST /v1/webhooks/:id/test: sent at once, answered with the attempt.
    let tested = send_test(&api, &endpoint).await;
    assert_eq!(tested["status"], "succeeded");
    assert_eq!(tested["statusCode"], 200);
    assert_eq!(tested["eventType"], "webhook.test");
    let received = receiver.received();
    assert_eq!(
        received.len(),
        1,
        "the test event arrived before the answer"
    );
    let test_event = received[0].json();
    assert_eq!(test_event["type"], "webhook.test");
    assert_eq!(test_event["data"]["object"]["id"], endpoint.as_str());
    assert!(test_event["data"]["object"].get("secret").is_none());
    assert_eq!(tested["event"], test_event["id"]);
    verify_with_library(&[(secret.as_str(), &received[0])]);
    // The test event is not an event of the account.
    assert!(api.events().await.is_empty());

    // One idempotency key, two requests at once while the receiver is slow: one send; the
    // other request is refused as in use, and a retry afterwards replays the first answer.
    receiver.set_plan(Arc::new(|_, _, _| Answer {
        delay: Duration::from_secs(1),
        ..Answer::ok()
    }));
    let keyed = || {
        api.call(
            reqwest::Method::POST,
            &format!("/v1/webhooks/{endpoint}/test"),
        )
        .json(json!({}))
        .idempotency_key("test-once")
        .send()
    };
    let (first, second) = tokio::join!(keyed(), keyed());
    let mut statuses = [first.status, second.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", first.text, second.text);
    let refused = if first.status == 409 { &first } else { &second };
    assert_eq!(refused.json["error"]["code"], "idempotency_key_in_use");
    let answered = if first.status == 200 { &first } else { &second };
    let retried = keyed().await;
    assert_eq!(retried.json, answered.json);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(receiver.received().len(), 2, "the keyed test was sent once");
    receiver.set_plan(Arc::new(|_, _, _| Answer::ok()));

    // Resend: a delivered event is sent again, to the endpoints listed in the answer.
    let payment = api.new_payment().await;
    let created = id_of(&api.events_of(&id_of(&payment)).await[0]);
    server.deliver_due_webhooks().await;
    receiver
        .wait_delivered(std::slice::from_ref(&created), WAIT)
        .await;
    let resent = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/events/{created}/resend"),
        )
        .json(json!({"webhook": endpoint}))
        .idempotency_key("resend-1")
        .send()
        .await;
    let resent_json = resent.expect_status(202).clone();
    assert_eq!(resent_json["webhooks"], json!([endpoint]));
    assert_eq!(resent_json["event"], created.as_str());
    assert_eq!(resent_json["livemode"], false);
    server.deliver_due_webhooks().await;
    receiver
        .wait_until(WAIT, "the resent event", |received| {
            received.iter().filter(|r| r.id == created).count() == 2
        })
        .await;
    // A replay of the same request queues nothing more.
    let replay = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/events/{created}/resend"),
        )
        .json(json!({"webhook": endpoint}))
        .idempotency_key("resend-1")
        .send()
        .await;
    assert_eq!(replay.expect_status(202), &resent_json);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // An endpoint not subscribed to the type, or unknown, is named.
    let (narrow, _) = {
        let reply = api
            .post_json(
                "/v1/webhooks",
                json!({"url": receiver.url(), "events": ["refund.created"]}),
            )
            .await;
        (id_of(reply.expect_status(201)), ())
    };
    api.post_json(
        &format!("/v1/events/{created}/resend"),
        json!({"webhook": narrow}),
    )
    .await
    .expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("webhook"),
    );
    api.post_json(
        &format!("/v1/events/{created}/resend"),
        json!({"webhook": "we_nope"}),
    )
    .await
    .expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some("webhook"),
    );

    // Deletion: a delivery waiting for its retry is never attempted again.
    receiver.set_plan(Arc::new(|_, _, _| Answer::status(500)));
    let failing = api.new_payment().await;
    let failing_event = id_of(&api.events_of(&id_of(&failing)).await[0]);
    server.deliver_due_webhooks().await;
    receiver
        .wait_until(WAIT, "the failing first attempt", |received| {
            received.iter().any(|r| r.id == failing_event)
        })
        .await;
    // The attempt is recorded just after the receiver answered: wait for it.
    let deadline = std::time::Instant::now() + WAIT;
    let failed = loop {
        let listed = api.webhook_attempts(&endpoint).await;
        if let Some(failed) = listed
            .into_iter()
            .find(|a| a["event"] == failing_event.as_str())
        {
            break failed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failed attempt is recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["statusCode"], 500);
    assert!(failed["nextAttemptAt"].as_str().is_some());
    api.call(reqwest::Method::DELETE, &format!("/v1/webhooks/{endpoint}"))
        .send()
        .await
        .expect_status(200);
    api.call(reqwest::Method::DELETE, &format!("/v1/webhooks/{narrow}"))
        .send()
        .await
        .expect_status(200);
    receiver.set_plan(Arc::new(|_, _, _| Answer::ok()));
    let before = receiver.received().len();
    server.clock.advance_ms(10 * 60 * 1000);
    api.new_payment().await;
    // The retry is due now: a pass of the worker runs, and attempts nothing.
    assert_eq!(server.deliver_due_webhooks().await, 0, "no attempt");
    assert_eq!(
        receiver.received().len(),
        before,
        "nothing sent after deletion"
    );
    receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn live_mode_never_delivers_to_private_addresses() {
    let server = TestServer::start().await;
    let account = server.sandbox_account();
    let (_, live) = server.new_key(&account, Mode::Live, &[]).await;
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    // Registration refuses these URLs now; endpoints stored before it did (changed here in
    // the database behind the server's back) are refused at delivery, on the address.
    let stored = |url: String| {
        let live = live.clone();
        let database = server.database_url().to_owned();
        async move {
            let (id, _) = register(&live, "https://shop.example/hooks").await;
            let changed = common::database::execute(
                &database,
                &format!("UPDATE webhook_endpoints SET url = '{url}' WHERE id = '{id}'"),
            )
            .await;
            assert_eq!(changed, 1);
            id
        }
    };
    let by_name = stored(format!("https://localhost:{port}/hooks")).await;
    let by_literal = stored(format!("https://127.0.0.1:{port}/hooks")).await;
    let mapped = stored("https://[::ffff:169.254.169.254]/latest".to_owned()).await;
    for endpoint in [&by_literal, &mapped, &by_name] {
        let tested = send_test(&live, endpoint).await;
        assert_eq!(tested["status"], "failed", "{tested}");
        assert_eq!(tested["statusCode"], Value::Null);
        let error = tested["error"].as_str().expect("an error");
        assert!(error.starts_with("refused:"), "{error}");
        assert!(tested["livemode"] == true);
        // Refused before connecting: nothing was sent, so no request headers.
        assert_eq!(tested["requestHeaders"], Value::Null, "{tested}");
    }
    // Through the outbox too: a live payment's event is refused, recorded, retried later.
    live.create_payment(payment_body(1000, json!({}))).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let listed = live.webhook_attempts(&by_name).await;
        if let Some(attempt) = listed.iter().find(|a| a["eventType"] == "payment.created") {
            let error = attempt["error"].as_str().expect("an error");
            assert!(error.contains("loopback"), "{error}");
            assert!(attempt["nextAttemptAt"].as_str().is_some());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refused attempt recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    receiver.stop();
    server.stop().await;
}

/// Every spelling of a loopback, private, link-local, CGNAT, unique-local or metadata address
/// literal (and `localhost`), by http and https.
const RESERVED_HOSTS: &[(&str, bool)] = &[
    // (host, loopback)
    ("127.1", true),
    ("2130706433", true),
    ("0x7f000001", true),
    ("0177.0.0.1", true),
    ("127.0.0.1", true),
    ("[::1]", true),
    ("[::ffff:127.0.0.1]", true),
    ("localhost", true),
    ("[::ffff:a9fe:a9fe]", false),
    ("169.254.169.254", false),
    ("[fd00:ec2::254]", false),
    ("10.0.0.1", false),
    ("[fd00::1]", false),
    ("100.64.0.1", false),
    ("0.0.0.0", false),
    ("[::]", false),
];

#[tokio::test]
async fn live_registration_refuses_every_spelling_of_a_reserved_address() {
    let server = TestServer::start().await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    for (host, _) in RESERVED_HOSTS {
        for scheme in ["https", "http"] {
            let url = format!("{scheme}://{host}:8443/hooks");
            let reply = live.post_json("/v1/webhooks", json!({ "url": url })).await;
            reply.expect_error(400, "invalid_request_error", "url_not_allowed", Some("url"));
            let message = reply.json["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("live-mode endpoints must be public"),
                "{url}: {message}"
            );
        }
        // Form bodies too.
        let form = format!(
            "url=https%3A%2F%2F{}%2Fhooks",
            host.replace('[', "%5B")
                .replace(']', "%5D")
                .replace(':', "%3A")
        );
        let reply = live.post_form("/v1/webhooks", &form).await;
        reply.expect_error(400, "invalid_request_error", "url_not_allowed", Some("url"));
    }
    // A URL change is held to the same rules, and changes nothing.
    let (id, _) = register(&live, "https://shop.example/hooks").await;
    let path = format!("/v1/webhooks/{id}");
    let before = live.get(&path).await.expect_status(200).clone();
    for (host, _) in RESERVED_HOSTS {
        live.post_json(&path, json!({ "url": format!("https://{host}/hooks") }))
            .await
            .expect_error(400, "invalid_request_error", "url_not_allowed", Some("url"));
    }
    assert_eq!(live.get(&path).await.expect_status(200), &before);
    assert_eq!(live.list_all("/v1/webhooks").await.len(), 1);
    // A public address literal is fine.
    register(&live, "https://8.8.8.8/hooks").await;
    server.stop().await;
}

#[tokio::test]
async fn test_registration_allows_loopback_refuses_private_addresses_and_names_the_scheme() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut made = Vec::new();
    for (host, loopback) in RESERVED_HOSTS {
        let url = format!("http://{host}:9/hooks");
        let reply = api.post_json("/v1/webhooks", json!({ "url": url })).await;
        if *loopback {
            assert_eq!(reply.status, 201, "{url}: {}", reply.text);
            assert_eq!(reply.json["url"], url.as_str());
            made.push(id_of(&reply.json));
        } else {
            reply.expect_error(400, "invalid_request_error", "url_not_allowed", Some("url"));
            let message = reply.json["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("test_allowed_hosts"), "{url}: {message}");
        }
    }
    for id in made {
        api.call(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
            .send()
            .await
            .expect_status(200);
    }
    // Not http(s): the scheme is named, and live mode is not blamed.
    for url in ["gopher://127.0.0.1:70/_x", "gopher://shop.example/"] {
        let reply = api.post_json("/v1/webhooks", json!({ "url": url })).await;
        reply.expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("url"),
        );
        let message = reply.json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("`gopher` URLs are not supported"),
            "{message}"
        );
        assert!(!message.contains("live mode"), "{message}");
    }
    // http to a public name stays refused in test mode.
    api.post_json("/v1/webhooks", json!({"url": "http://shop.example/hooks"}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("url"),
        );
    assert!(api.list_all("/v1/webhooks").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn test_allowed_hosts_let_test_mode_reach_listed_hosts() {
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    let server = TestServer::start_with(Options {
        webhooks: Some(WebhooksConfig {
            test_allowed_hosts: vinr_server::webhooks::ssrf::AllowedHosts::parse(&[
                "10.0.0.1:8080".to_owned(),
                "app:3000".to_owned(),
                format!("localhost:{port}"),
            ])
            .expect("valid hosts"),
            ..WebhooksConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();
    // Listed: registered (and deleted at once: nothing is ever sent to a non-loopback address
    // from a test).
    for url in [
        "http://10.0.0.1:8080/hooks",
        "http://app:3000/hooks",
        "https://app:3000/",
    ] {
        let (id, _) = register(&api, url).await;
        api.call(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
            .send()
            .await
            .expect_status(200);
    }
    // Not listed: another port, another private address.
    for url in ["http://10.0.0.1/hooks", "http://10.0.0.2:8080/hooks"] {
        api.post_json("/v1/webhooks", json!({ "url": url }))
            .await
            .expect_error(400, "invalid_request_error", "url_not_allowed", Some("url"));
    }
    api.post_json("/v1/webhooks", json!({"url": "http://app:3001/hooks"}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("url"),
        );
    // Live mode ignores the list.
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    for url in ["https://10.0.0.1:8080/hooks", "https://app:3000/"] {
        let reply = live.post_json("/v1/webhooks", json!({ "url": url })).await;
        assert_eq!(
            reply.status,
            if url.contains("app") { 201 } else { 400 },
            "{url}: {}",
            reply.text
        );
        if reply.status == 201 {
            live.call(
                reqwest::Method::DELETE,
                &format!("/v1/webhooks/{}", id_of(&reply.json)),
            )
            .send()
            .await
            .expect_status(200);
        }
    }
    // A listed name is delivered to through the client for listed hosts (here it resolves to
    // the loopback receiver).
    let (endpoint, _) = register(&api, &format!("http://localhost:{port}/hooks")).await;
    let tested = send_test(&api, &endpoint).await;
    assert_eq!(tested["status"], "succeeded", "{tested}");
    assert_eq!(receiver.received().len(), 1);
    receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn two_nodes_never_attempt_one_delivery_at_the_same_time() {
    let Some(database) = common::database::fresh_postgres_database().await else {
        return;
    };
    let clock = manual_clock();
    let node = || {
        TestServer::start_with(Options {
            database_url: Some(database.url.clone()),
            clock: Some(clock.clone()),
            ..Options::default()
        })
    };
    let (first, second) = tokio::join!(node(), node());
    let key = if first.account_id.is_some() {
        first.api().key
    } else {
        second.api().key
    };
    let apis = [first.client(&key), second.client(&key)];
    // A slow receiver: an attempt stays open long enough for a second one to overlap it.
    let receiver = Receiver::with_plan(Arc::new(|_, _, _| Answer {
        delay: Duration::from_millis(30),
        ..Answer::ok()
    }))
    .await;
    register(&apis[0], &receiver.url()).await;
    let mut created = tokio::task::JoinSet::new();
    for n in 0..200 {
        let api = apis[n % 2].clone();
        created.spawn(async move { api.new_payment().await });
    }
    while let Some(payment) = created.join_next().await {
        payment.expect("a creation");
    }
    let events = apis[0].events().await;
    assert_eq!(events.len(), 200);
    receiver.wait_delivered(&event_ids(&events), WAIT).await;
    // Not a pause and a hope that nothing more comes: once no delivery is pending none can be
    // leased again, and with both nodes stopped no attempt starts at all.
    no_delivery_pending(&database.url).await;
    first.stop().await;
    second.stop().await;
    assert_eq!(
        receiver.overlaps(),
        0,
        "two attempts of one delivery overlapped"
    );
    // Every attempt succeeded, so each event was attempted exactly once, by one node.
    assert_eq!(receiver.received().len(), 200);
    let attempts = "SELECT count(*) FROM webhook_attempts";
    assert_eq!(
        common::database::query_integers(&database.url, attempts).await[0],
        200,
        "one recorded attempt per delivery"
    );
    receiver.stop();
    drop(database);
}

#[tokio::test]
async fn delivery_history_is_pruned_with_the_events_but_pending_deliveries_stay() {
    let server = TestServer::start().await;
    let api = server.api();
    let receiver = Receiver::start().await;
    // Only `payment.created`: the month the clock jumps expires the payments, and those events
    // must not be delivered into what this test counts.
    let created_only = |url: String| json!({"url": url, "events": ["payment.created"]});
    let endpoint = id_of(
        api.post_json("/v1/webhooks", created_only(receiver.url()))
            .await
            .expect_status(201),
    );
    let payment = api.new_payment().await;
    let created = event_ids(&api.events_of(&id_of(&payment)).await);
    receiver.wait_delivered(&created, WAIT).await;
    // A second endpoint that fails: its delivery stays pending (next attempt in a minute).
    let failing = Receiver::with_plan(Arc::new(|_, _, _| Answer::status(500))).await;
    let failing_endpoint = id_of(
        api.post_json("/v1/webhooks", created_only(failing.url()))
            .await
            .expect_status(201),
    );
    let second = api.new_payment().await;
    let second_event = event_ids(&api.events_of(&id_of(&second)).await);
    failing
        .wait_until(WAIT, "the failing attempt", |received| !received.is_empty())
        .await;
    let deadline = std::time::Instant::now() + WAIT;
    while api.webhook_attempts(&failing_endpoint).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the failure is recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.recorded_webhook_attempts(&endpoint, 2, WAIT).await;
    let app = server.app();
    assert_eq!(
        vinr_server::workers::webhooks::prune(app)
            .await
            .expect("pruned"),
        0,
        "nothing is old yet"
    );
    server.clock.advance_ms(31 * 24 * 60 * 60 * 1000);
    let pruned = vinr_server::workers::webhooks::prune(app)
        .await
        .expect("pruned");
    // Two finished deliveries (the first endpoint got both events) and three attempts.
    assert!(pruned >= 4, "pruned {pruned} rows");
    assert!(api.webhook_attempts(&endpoint).await.is_empty());
    // The pending delivery is still attempted: it is due, its clock having moved on.
    failing.set_plan(Arc::new(|_, _, _| Answer::ok()));
    failing.wait_delivered(&second_event, WAIT).await;
    receiver.stop();
    failing.stop();
    server.stop().await;
}

#[tokio::test]
async fn endpoints_can_be_changed_and_disabled_and_enabled_again() {
    let config = WebhooksConfig {
        retry_schedule_seconds: vec![60, 60],
        ..WebhooksConfig::default()
    };
    let server = TestServer::start_with(Options {
        webhooks: Some(config),
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(&api, &receiver.url()).await;
    let path = format!("/v1/webhooks/{endpoint}");

    // Narrow it to payment.completed and describe it: only those fields change.
    let changed = api
        .post_json(
            &path,
            json!({"events": ["payment.completed"], "description": "orders"}),
        )
        .await;
    let changed = changed.expect_status(200).clone();
    assert_eq!(changed["events"], json!(["payment.completed"]));
    assert_eq!(changed["description"], "orders");
    assert_eq!(changed["status"], "enabled");
    assert_eq!(changed["url"], receiver.url().as_str());
    assert!(
        changed.get("secret").is_none_or(Value::is_null),
        "{changed}"
    );
    assert_eq!(api.get(&path).await.expect_status(200), &changed);
    let first = api.completed_payment().await;
    let completed = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "payment.completed")
            .map(id_of)
            .collect()
    };
    let first_completed = completed(api.events_of(&id_of(&first)).await);
    // The worker's passes attempt everything due, wrongly queued deliveries included.
    server.deliver_due_webhooks().await;
    receiver.wait_delivered(&first_completed, WAIT).await;
    assert_eq!(receiver.received().len(), 1, "payment.completed only");

    // A failing receiver leaves a delivery queued for a retry; disabling drops it and queues
    // nothing new.
    receiver.set_plan(Arc::new(|_, _, _| Answer::status(500)));
    let second = api.completed_payment().await;
    let second_completed = completed(api.events_of(&id_of(&second)).await);
    server.deliver_due_webhooks().await;
    api.recorded_webhook_attempts(&endpoint, 2, WAIT).await;
    let queued = |url: String, endpoint: String| async move {
        common::database::query_integers(
            &url,
            &format!(
                "SELECT count(*) FROM webhook_deliveries
                 WHERE endpoint_id = '{endpoint}' AND status = 'pending'"
            ),
        )
        .await[0]
    };
    let url = server.database_url().to_owned();
    assert_eq!(
        queued(url.clone(), endpoint.clone()).await,
        1,
        "the retry waits"
    );
    let disabled = api.post_json(&path, json!({"status": "disabled"})).await;
    assert_eq!(disabled.expect_status(200)["status"], "disabled");
    assert_eq!(
        queued(url.clone(), endpoint.clone()).await,
        0,
        "dropped at once"
    );
    receiver.set_plan(Arc::new(|_, _, _| Answer::ok()));
    let third = api.completed_payment().await;
    let third_completed = completed(api.events_of(&id_of(&third)).await);
    assert_eq!(
        queued(url.clone(), endpoint.clone()).await,
        0,
        "nothing queued"
    );
    assert_eq!(server.deliver_due_webhooks().await, 0, "no attempt");
    assert_eq!(receiver.received().len(), 2, "nothing sent while disabled");
    // Resending to a disabled endpoint is refused rather than silently dropped.
    let refused = api
        .post_json(
            &format!("/v1/events/{}/resend", third_completed[0]),
            json!({"webhook": endpoint}),
        )
        .await;
    assert!(
        refused.status >= 400,
        "{}: {}",
        refused.status,
        refused.json
    );

    // Enabled again: new events flow, and what was missed can be resent.
    let enabled = api.post_json(&path, json!({"status": "enabled"})).await;
    assert_eq!(enabled.expect_status(200)["status"], "enabled");
    for missed in [&second_completed[0], &third_completed[0]] {
        api.post_json(&format!("/v1/events/{missed}/resend"), json!({}))
            .await
            .expect_status(202);
    }
    let fourth = api.completed_payment().await;
    let fourth_completed = completed(api.events_of(&id_of(&fourth)).await);
    let all: Vec<String> = [second_completed, third_completed, fourth_completed].concat();
    server.deliver_due_webhooks().await;
    receiver.wait_delivered(&all, WAIT).await;

    // A new URL under the same rules; bad changes are refused precisely and change nothing.
    let other = Receiver::start().await;
    let moved = api.post_json(&path, json!({"url": other.url()})).await;
    assert_eq!(moved.expect_status(200)["url"], other.url().as_str());
    let before = api.get(&path).await.expect_status(200).clone();
    for (body, param) in [
        (json!({"status": "paused"}), "status"),
        (json!({"url": "http://shop.example/hooks"}), "url"),
        (json!({"events": ["payment.nope"]}), "events[0]"),
        (json!({"events": []}), "events"),
        (json!({"description": "x".repeat(5000)}), "description"),
    ] {
        api.post_json(&path, body).await.expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some(param),
        );
    }
    // A form field given empty is the empty string, as in JSON: not "unchanged".
    for (body, param) in [("url=&status=", "url"), ("status=", "status")] {
        api.post_form(&path, body).await.expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some(param),
        );
    }
    api.post_json(&path, json!({"colour": "red"}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_unknown",
            Some("colour"),
        );
    assert_eq!(api.get(&path).await.expect_status(200), &before);
    // Not another account's, nor an unknown one.
    let (_, stranger) = server.new_account("stranger").await;
    stranger
        .post_json(&path, json!({"status": "disabled"}))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    api.post_json("/v1/webhooks/we_000000000000000000000000", json!({}))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    assert_eq!(api.get(&path).await.expect_status(200), &before);
    receiver.stop();
    other.stop();
    server.stop().await;
}

#[tokio::test]
async fn https_receivers_are_reached_when_their_certificate_verifies() {
    let ca = TestCa::new();
    let receiver = Receiver::https(&ca).await;
    assert!(receiver.url().starts_with("https://localhost:"));

    // A server that does not trust the receiver's CA: the attempt fails on the certificate,
    // and nothing reaches the receiver's handler.
    let untrusting = TestServer::start().await;
    let api = untrusting.api();
    let (endpoint, _) = register(&api, &receiver.url()).await;
    let tested = send_test(&api, &endpoint).await;
    assert_eq!(tested["status"], "failed", "{tested}");
    assert_eq!(tested["statusCode"], Value::Null);
    let error = tested["error"].as_str().expect("an error");
    assert!(error.contains("certificate"), "{error}");
    assert!(receiver.received().is_empty());
    untrusting.stop().await;

    // `[webhooks] root_certificates` naming the CA: the test send and the events of a paid
    // payment arrive over TLS, and their signatures verify with the official library.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.ca_pem).expect("the CA written");
    let server = TestServer::start_with(Options {
        webhooks: Some(WebhooksConfig {
            root_certificates: Some(ca_path),
            ..WebhooksConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();
    let (endpoint, secret) = register(&api, &receiver.url()).await;
    let tested = send_test(&api, &endpoint).await;
    assert_eq!(tested["status"], "succeeded", "{tested}");
    assert_eq!(tested["statusCode"], 200);
    let payment = api.new_payment().await;
    api.pay(&id_of(&payment), "4242424242424242")
        .await
        .expect_status(200);
    let events = event_ids(&api.events_of(&id_of(&payment)).await);
    assert!(events.len() >= 2, "{events:?}");
    let received = receiver.wait_delivered(&events, WAIT).await;
    let mut messages: Vec<(&str, &Received)> = received
        .iter()
        .map(|request| (secret.as_str(), request))
        .collect();
    messages.retain(|(_, request)| request.json()["type"] != "webhook.test");
    assert_eq!(messages.len(), events.len());
    verify_with_library(&messages);
    receiver.stop();
    server.stop().await;
}
