//! Authentication, scopes and isolation (SPEC §2): 401 for missing, malformed, unknown and
//! revoked keys; 403 outside a restricted key's scopes; and objects of one account and mode
//! invisible (404, never 403) to every other.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_domain::Mode;

/// A key with the right shape that was never issued.
const UNKNOWN_KEY: &str = "sk_test_0000000000000000000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_unknown_keys_are_401() {
    let server = TestServer::start().await;
    let api = server.api();
    api.new_payment().await;
    let before = api.state().await;
    let valid = api.key.clone();
    let cases: Vec<(&str, Option<(&str, String)>)> = vec![
        ("no key", None),
        ("empty bearer", Some(("Authorization", "Bearer ".into()))),
        (
            "basic auth",
            Some(("Authorization", format!("Basic {valid}"))),
        ),
        ("key without Bearer", Some(("Authorization", valid.clone()))),
        (
            "truncated key",
            Some(("Authorization", format!("Bearer {}", &valid[..20]))),
        ),
        (
            "unknown prefix",
            Some(("Authorization", format!("Bearer pk{}", &valid[2..]))),
        ),
        (
            "unknown key",
            Some(("Authorization", format!("Bearer {UNKNOWN_KEY}"))),
        ),
        ("unknown X-Api-Key", Some(("X-Api-Key", UNKNOWN_KEY.into()))),
        (
            "test key claiming live mode",
            Some((
                "Authorization",
                format!("Bearer {}", valid.replace("_test_", "_live_")),
            )),
        ),
    ];
    for (what, header) in cases {
        for (method, path, body) in [
            (Method::GET, "/v1/payments", None),
            (
                Method::POST,
                "/v1/payments",
                Some(payment_body(100, json!({}))),
            ),
            (Method::GET, "/v1/events", None),
        ] {
            let mut call = api.call(method.clone(), path).without_key();
            if let Some((name, value)) = &header {
                call = call.header(name, value);
            }
            if let Some(body) = body {
                call = call.json(body);
            }
            let reply = call.send().await;
            assert_eq!(reply.status, 401, "{what}, {method} {path}: {}", reply.text);
            reply.expect_error(401, "authentication_error", "api_key_invalid", None);
        }
    }
    api.expect_unchanged(&before, "401s").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_effect_on_the_next_request() {
    let server = TestServer::start().await;
    let (key_id, doomed) = server
        .new_key(&server.sandbox_account(), Mode::Test, &[])
        .await;
    let payment = doomed.new_payment().await;
    doomed.get("/v1/payments").await.expect_status(200);
    server.revoke(&key_id).await;
    let reply = doomed.get("/v1/payments").await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);
    let reply = doomed.cancel(&id_of(&payment)).await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);
    // The account's other key still works, and the payment was not cancelled.
    let api = server.api();
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "pending");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_key_is_confined_to_its_scopes() {
    let server = TestServer::start().await;
    let api = server.api();
    let account = server.sandbox_account();
    let payment = api.authorized_payment().await;
    let id = id_of(&payment);
    let before = api.state().await;

    let (_, reader) = server
        .new_key(&account, Mode::Test, &["payments:read"])
        .await;
    assert!(reader.key.starts_with("rk_test_"), "{}", reader.key);
    assert_eq!(reader.payment(&id).await, payment);
    assert_eq!(reader.payments().await.len(), 1);
    let refused = [
        reader
            .post_json("/v1/payments", payment_body(100, json!({})))
            .await,
        reader.capture(&id, json!({})).await,
        reader.cancel(&id).await,
        reader.pay(&id, CARD_APPROVED).await,
        reader.get("/v1/events").await,
        reader
            .get(&format!("/v1/events/{}", id_of(&before.1[0])))
            .await,
    ];
    for reply in &refused {
        reply.expect_error(403, "permission_error", "insufficient_permissions", None);
    }
    api.expect_unchanged(&before, "403s").await;

    let (_, events_reader) = server.new_key(&account, Mode::Test, &["events:read"]).await;
    assert_eq!(events_reader.events().await.len(), before.1.len());
    let reply = events_reader.get("/v1/payments").await;
    reply.expect_error(403, "permission_error", "insufficient_permissions", None);

    // `payments:write` implies `payments:read`.
    let (_, writer) = server
        .new_key(&account, Mode::Test, &["payments:write"])
        .await;
    let created = writer.new_payment().await;
    assert_eq!(writer.payment(&id_of(&created)).await, created);
    let captured = writer.capture(&id, json!({})).await;
    assert_eq!(captured.expect_status(200)["status"], "completed");
    server.stop().await;
}

/// Everything account B's key tries on account A's payment is a 404, as for an unknown id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_see_or_touch_each_others_payments() {
    let server = TestServer::start().await;
    let a = server.api();
    let (_, b) = server.new_account("Other shop").await;
    let b_payment = b.new_payment().await;

    let pending = a.new_payment().await;
    let authorized = a.authorized_payment().await;
    let challenged = id_of(&a.new_payment().await);
    let challenged = a
        .pay(&challenged, CARD_3DS)
        .await
        .expect_status(200)
        .clone();
    let a_before = a.state().await;
    let b_before = b.state().await;

    for payment in [&pending, &authorized, &challenged] {
        let id = id_of(payment);
        let replies = [
            b.get(&format!("/v1/payments/{id}")).await,
            b.capture(&id, json!({})).await,
            b.cancel(&id).await,
            b.pay(&id, CARD_APPROVED).await,
            b.authenticate(&id, "approve").await,
        ];
        for reply in &replies {
            reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
        }
    }
    for event in &a_before.1 {
        let reply = b.get(&format!("/v1/events/{}", id_of(event))).await;
        reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    }
    // A's ids are no cursor in B's lists either.
    let reply = b
        .get(&format!("/v1/payments?starting_after={}", id_of(&pending)))
        .await;
    reply.expect_status(400);

    let b_after = b.state().await;
    assert_eq!(
        b_after.0,
        vec![b_payment.clone()],
        "B sees only its payment"
    );
    assert!(
        b_after
            .1
            .iter()
            .all(|event| event["data"]["object"]["id"] == b_payment["id"]),
        "B sees only its events"
    );
    b.assert_unchanged(&b_before, &b_after, "B's view");
    a.expect_unchanged(&a_before, "A's payments after B's attempts")
        .await;
    assert!(a
        .payments()
        .await
        .iter()
        .all(|p| p["id"] != b_payment["id"]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_and_live_mode_objects_are_invisible_to_each_other() {
    let server = TestServer::start().await;
    let test = server.api();
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    assert!(live.key.starts_with("sk_live_"), "{}", live.key);

    let test_payment = test.new_payment().await;
    let live_payment = live
        .create_payment(json!({"amount": 700, "currency": "usd", "returnUrl": RETURN_URL}))
        .await;
    assert_eq!(live_payment["livemode"], true);
    assert_eq!(test_payment["livemode"], false);

    let reply = live
        .get(&format!("/v1/payments/{}", id_of(&test_payment)))
        .await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let reply = live.cancel(&id_of(&test_payment)).await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let reply = test
        .get(&format!("/v1/payments/{}", id_of(&live_payment)))
        .await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let reply = test.cancel(&id_of(&live_payment)).await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));

    assert_eq!(live.payments().await, vec![live_payment.clone()]);
    assert_eq!(test.payments().await, vec![test_payment.clone()]);
    let live_events = live.events().await;
    assert_eq!(live_events.len(), 1);
    assert_eq!(live_events[0]["livemode"], true);
    assert_eq!(live_events[0]["data"]["object"]["id"], live_payment["id"]);
    let test_events = test.events().await;
    assert!(test_events.iter().all(|event| event["livemode"] == false));
    let reply = test
        .get(&format!("/v1/events/{}", id_of(&live_events[0])))
        .await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_rules() {
    let server = TestServer::start().await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    // `returnUrl` must be https in live mode.
    let reply = live
        .post_json(
            "/v1/payments",
            json!({"amount": 700, "currency": "EUR", "returnUrl": "http://shop.example/r"}),
        )
        .await;
    reply.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("returnUrl"),
    );
    assert_eq!(live.payments().await, Vec::<Value>::new());

    // Test helpers do not exist for live keys.
    let payment = live.new_payment().await;
    let id = id_of(&payment);
    let reply = live.pay(&id, CARD_APPROVED).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.json["error"]["type"], "invalid_request_error");
    let reply = live.authenticate(&id, "approve").await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(live.payment(&id).await, payment, "unchanged");
    assert_eq!(live.events_of(&id).await.len(), 1, "only payment.created");

    // A live payment is cancelled like a test one.
    let cancelled = live.cancel(&id).await;
    assert_eq!(cancelled.expect_status(200)["status"], "cancelled");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_only_deployment_refuses_live_keys() {
    let server = TestServer::start_with(Options {
        modes: Some(vec!["test".into()]),
        ..Options::default()
    })
    .await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let reply = live.get("/v1/payments").await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);
    let reply = live
        .post_json("/v1/payments", payment_body(100, json!({})))
        .await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);
    server.api().get("/v1/payments").await.expect_status(200);
    server.stop().await;
}
