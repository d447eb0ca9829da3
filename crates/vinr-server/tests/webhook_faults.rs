//! Webhook faults on purpose (SPEC §12, issue 15): a test-mode endpoint's `faults` make its
//! deliveries arrive twice, badly signed once, late, or out of order, at a real receiver on a
//! local port whose signatures are checked by its own HMAC code and by the official Standard
//! Webhooks library; every attempt records the fault it carried. Also how `faults` is
//! validated, cleared and sent as a form. On SQLite, or on PostgreSQL with
//! `VINR_TEST_DATABASE_URL` (where two nodes sharing one database also keep `outOfOrder`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::process::Served;
use common::receiver::{verify_each_with_library, verify_with_library, Answer, Received, Receiver};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use vinr_domain::Mode;
use vinr_server::config::WebhooksConfig;

const WAIT: Duration = Duration::from_secs(30);
/// `outOfOrder` holds a lone event this long (SPEC §12).
const HOLD: Duration = Duration::from_secs(5);

/// The real `vinr serve` on the wall clock (retries and holds come due in real time), with
/// its own database: retries a second after a failure, attempts time out after 5 s, due work
/// is looked for every 50 ms.
struct Deployment {
    _served: Served,
    api: Api,
    _dir: tempfile::TempDir,
    _database: TestDatabase,
}

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("vinr.toml");
    std::fs::write(
        &config,
        "[rate_limit]\nenabled = false\n\n[webhooks]\nretry_schedule_seconds = [1, 1, 1]\n\
         timeout_seconds = 5\npoll_interval_ms = 50\n",
    )
    .expect("config written");
    config
}

async fn deployment() -> Deployment {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = write_config(dir.path());
    let database = fresh_database().await;
    let served = Served::start(dir.path(), &database.url, &config);
    let api = Api::new(&served.base, served.printed_key.as_deref().expect("a key"));
    Deployment {
        _served: served,
        api,
        _dir: dir,
        _database: database,
    }
}

/// The in-process server (for what needs no clock: validation, both modes' keys).
async fn server() -> TestServer {
    TestServer::start_with(Options {
        webhooks: Some(WebhooksConfig {
            retry_schedule_seconds: vec![1, 1, 1],
            timeout_seconds: 5,
            poll_interval_ms: 50,
            ..WebhooksConfig::default()
        }),
        ..Options::default()
    })
    .await
}

/// Registers an endpoint for `payment.created` with `faults`; answers (id, secret).
async fn register(api: &Api, url: &str, faults: Value) -> (String, String) {
    let reply = api
        .post_json(
            "/v1/webhooks",
            json!({"url": url, "events": ["payment.created"], "faults": faults}),
        )
        .await;
    let endpoint = reply.expect_status(201);
    (
        id_of(endpoint),
        endpoint["secret"].as_str().expect("a secret").to_owned(),
    )
}

/// A new payment's `payment.created` event id.
async fn created_event(api: &Api) -> String {
    let payment = api.new_payment().await;
    let events = api.events_of(&id_of(&payment)).await;
    assert_eq!(events.len(), 1);
    id_of(&events[0])
}

/// The receiver's own check of a Standard Webhooks signature (HMAC-SHA256 of
/// "id.timestamp.body" with the secret's key), written here from the specification.
fn signature_holds(secret: &str, received: &Received) -> bool {
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return false;
    };
    let Ok(key) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(
        format!(
            "{}.{}.{}",
            received.header("webhook-id"),
            received.header("webhook-timestamp"),
            received.body
        )
        .as_bytes(),
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    received
        .header("webhook-signature")
        .split(' ')
        .any(|signature| signature.strip_prefix("v1,") == Some(expected.as_str()))
}

/// A receiver that answers 400 to a request whose signature does not hold and 200 to the
/// rest, as a merchant's should; the secret is set once the endpoint exists.
async fn verifying_receiver() -> (Receiver, Arc<std::sync::Mutex<String>>) {
    let secret = Arc::new(std::sync::Mutex::new(String::new()));
    let known = Arc::clone(&secret);
    let receiver = Receiver::judging(Arc::new(move |received| {
        if signature_holds(&known.lock().expect("lock"), received) {
            Answer::ok()
        } else {
            Answer::status(400)
        }
    }))
    .await;
    (receiver, secret)
}

/// Waits until no more requests arrive for `quiet`; answers what was received.
async fn settled(receiver: &Receiver, quiet: Duration) -> Vec<Received> {
    let mut seen = receiver.received().len();
    loop {
        tokio::time::sleep(quiet).await;
        let now = receiver.received().len();
        if now == seen {
            return receiver.received();
        }
        seen = now;
    }
}

#[tokio::test]
async fn a_bad_signature_fails_verification_once_and_the_retry_verifies() {
    let deployment = deployment().await;
    let api = &deployment.api;
    let (receiver, known) = verifying_receiver().await;
    let (endpoint, secret) = register(api, &receiver.url(), json!({"badSignature": 1})).await;
    *known.lock().expect("lock") = secret.clone();
    let event = created_event(api).await;
    receiver
        .wait_delivered(std::slice::from_ref(&event), WAIT)
        .await;
    let received = settled(&receiver, Duration::from_millis(1500)).await;
    assert_eq!(received.len(), 2, "one refused attempt, one good retry");
    let (first, retry) = (&received[0], &received[1]);
    assert_eq!((first.id.as_str(), first.nth), (event.as_str(), 1));
    assert_eq!((retry.id.as_str(), retry.nth), (event.as_str(), 2));
    assert_eq!(first.status, 400, "the receiver refused the bad signature");
    assert_eq!(retry.status, 200);
    assert_eq!(first.body, retry.body);
    for request in [first, retry] {
        let signature = request.header("webhook-signature");
        let encoded = signature.strip_prefix("v1,").expect("a v1 signature");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("well-formed base64");
        assert_eq!(bytes.len(), 32, "an HMAC-SHA256's length");
        assert_eq!(request.header("x-vinr-signature"), signature);
    }
    if let Some(verified) =
        verify_each_with_library(&[(secret.as_str(), first), (secret.as_str(), retry)])
    {
        assert_eq!(verified, vec![false, true], "the library agrees");
    }
    let attempts = api.recorded_webhook_attempts(&endpoint, 2, WAIT).await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["fault"], "badSignature");
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["statusCode"], 400);
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["fault"], Value::Null);
    assert_eq!(attempts[1]["status"], "succeeded");
    assert_eq!(api.injected_faults("webhook_bad_signature").await, 1);
    assert_eq!(api.injected_faults("webhook_duplicate").await, 0);
    receiver.stop();
    drop(deployment);
}

#[tokio::test]
async fn a_duplicate_arrives_twice_with_one_webhook_id_and_both_verify() {
    let deployment = deployment().await;
    let api = &deployment.api;
    let (receiver, known) = verifying_receiver().await;
    let (endpoint, secret) = register(api, &receiver.url(), json!({"duplicate": 1})).await;
    *known.lock().expect("lock") = secret.clone();
    let event = created_event(api).await;
    receiver
        .wait_until(WAIT, "the event twice", |received| received.len() >= 2)
        .await;
    let received = settled(&receiver, Duration::from_millis(1500)).await;
    assert_eq!(received.len(), 2, "the original and one copy");
    let (original, copy) = (&received[0], &received[1]);
    for request in [original, copy] {
        assert_eq!(request.header("webhook-id"), event);
        assert_eq!(request.status, 200, "correctly signed");
    }
    assert_eq!(original.body, copy.body, "the same message");
    assert_eq!(
        original.header("webhook-timestamp"),
        copy.header("webhook-timestamp")
    );
    assert_eq!(
        original.header("webhook-signature"),
        copy.header("webhook-signature")
    );
    verify_with_library(&[(secret.as_str(), original), (secret.as_str(), copy)]);
    let attempts = api.recorded_webhook_attempts(&endpoint, 2, WAIT).await;
    assert_eq!(attempts.len(), 2);
    let faults: Vec<&Value> = attempts.iter().map(|a| &a["fault"]).collect();
    assert_eq!(faults, [&Value::Null, &json!("duplicate")]);
    for attempt in &attempts {
        assert_eq!(attempt["attempt"], 1);
        assert_eq!(attempt["event"], event.as_str());
        assert_eq!(attempt["status"], "succeeded");
    }
    assert_eq!(api.injected_faults("webhook_duplicate").await, 1);
    receiver.stop();
    drop(deployment);
}

/// The copy never decides the delivery's state: an original that failed is retried although
/// its copy succeeded, and an original that succeeded is not retried although its copy failed.
#[tokio::test]
async fn the_delivery_follows_the_original_attempt_not_its_duplicate() {
    let deployment = deployment().await;
    let api = &deployment.api;
    for (original, copy, retried) in [(500, 200, true), (200, 500, false)] {
        let receiver = Receiver::with_plan(Arc::new(move |_, nth, _| match nth {
            1 => Answer::status(original),
            2 => Answer::status(copy),
            _ => Answer::ok(),
        }))
        .await;
        let (endpoint, _) = register(api, &receiver.url(), json!({"duplicate": 1})).await;
        let event = created_event(api).await;
        let expected = if retried { 3 } else { 2 };
        receiver
            .wait_until(WAIT, "the original and its copy", |received| {
                received.len() >= expected
            })
            .await;
        // The retry schedule is 1 s: a retry that should not happen would show within 2.5 s.
        let received = settled(&receiver, Duration::from_millis(2500)).await;
        assert_eq!(received.len(), expected, "original {original}, copy {copy}");
        assert!(received.iter().all(|r| r.header("webhook-id") == event));
        let mut attempts = api
            .recorded_webhook_attempts(&endpoint, expected, WAIT)
            .await;
        attempts.sort_by_key(|a| (a["attempt"].as_i64(), a["fault"].is_string()));
        let summary: Vec<(i64, String, Value)> = attempts
            .iter()
            .map(|a| {
                (
                    a["attempt"].as_i64().expect("a number"),
                    a["status"].as_str().expect("a status").to_owned(),
                    a["fault"].clone(),
                )
            })
            .collect();
        let status = |code: u16| if code < 300 { "succeeded" } else { "failed" }.to_owned();
        let mut wanted = vec![
            (1, status(original), Value::Null),
            (1, status(copy), json!("duplicate")),
        ];
        if retried {
            // The retry is an ordinary attempt: only a delivery's first attempt is duplicated.
            wanted.push((2, "succeeded".to_owned(), Value::Null));
        }
        assert_eq!(summary, wanted, "original {original}, copy {copy}");
        receiver.stop();
    }
    drop(deployment);
}

#[tokio::test]
async fn out_of_order_delivers_the_later_event_first_and_a_lone_one_after_the_hold() {
    let deployment = deployment().await;
    let api = &deployment.api;
    let receiver = Receiver::start().await;
    let (endpoint, secret) = register(api, &receiver.url(), json!({"outOfOrder": true})).await;
    // Two events back to back: the first is held until the second has been attempted.
    let first = created_event(api).await;
    let second = created_event(api).await;
    let received = receiver
        .wait_delivered(&[first.clone(), second.clone()], WAIT)
        .await;
    let order: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, [second.as_str(), first.as_str()], "reversed");
    let gap = received[1].at - received[0].at;
    assert!(
        gap < Duration::from_secs(3),
        "the held event follows the later one at once, not after its hold ({gap:?})"
    );
    verify_with_library(&[
        (secret.as_str(), &received[0]),
        (secret.as_str(), &received[1]),
    ]);
    // A lone event waits out its hold, then is sent anyway.
    let created_at = Instant::now();
    let lone = created_event(api).await;
    let received = receiver
        .wait_delivered(std::slice::from_ref(&lone), WAIT)
        .await;
    let arrived = received.iter().find(|r| r.id == lone).expect("delivered");
    let waited = arrived.at - created_at;
    assert!(
        waited + Duration::from_millis(50) >= HOLD && waited < HOLD + Duration::from_secs(5),
        "held {waited:?}"
    );
    let attempts = api.recorded_webhook_attempts(&endpoint, 3, WAIT).await;
    let fault_of = |event: &str| {
        let mine: Vec<&Value> = attempts.iter().filter(|a| a["event"] == event).collect();
        assert_eq!(mine.len(), 1, "one attempt of {event}");
        mine[0]["fault"].clone()
    };
    assert_eq!(fault_of(&first), "outOfOrder");
    assert_eq!(fault_of(&second), Value::Null);
    assert_eq!(fault_of(&lone), "outOfOrder");
    assert_eq!(api.injected_faults("webhook_out_of_order").await, 2);
    receiver.stop();
    drop(deployment);
}

#[tokio::test]
async fn out_of_order_swaps_a_burst_in_pairs_each_held_event_released_once() {
    let deployment = deployment().await;
    let api = &deployment.api;
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(api, &receiver.url(), json!({"outOfOrder": true})).await;
    // Three at once: the first is held and released by the second; the third is not released
    // by the second too (one release per held event), so it is held in turn, and with no
    // fourth event it goes after its hold.
    let events = [
        created_event(api).await,
        created_event(api).await,
        created_event(api).await,
    ];
    let received = receiver.wait_delivered(&events, WAIT).await;
    let order: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        order,
        [events[1].as_str(), events[0].as_str(), events[2].as_str()],
        "pairs swapped"
    );
    let held_third = received[2].at - received[1].at;
    assert!(
        held_third + Duration::from_secs(1) >= HOLD,
        "the third waited out its own hold ({held_third:?})"
    );
    let attempts = api.recorded_webhook_attempts(&endpoint, 3, WAIT).await;
    assert_eq!(attempts.len(), 3, "one attempt each: {attempts:?}");
    receiver.stop();
    drop(deployment);
}

#[tokio::test]
async fn out_of_order_holds_across_two_nodes_sharing_one_database() {
    let Some(database) = common::database::fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = write_config(dir.path());
    let first_node = Served::start(dir.path(), &database.url, &config);
    let key = first_node.printed_key.clone().expect("a key");
    let second_node = Served::start(dir.path(), &database.url, &config);
    let nodes = [
        Api::new(&first_node.base, &key),
        Api::new(&second_node.base, &key),
    ];
    let receiver = Receiver::start().await;
    register(&nodes[0], &receiver.url(), json!({"outOfOrder": true})).await;
    // Each pair written through both nodes, back to back: whichever node leases which, the
    // later event arrives first and the held one right after it.
    for pair in 0..3 {
        let earlier = created_event(&nodes[pair % 2]).await;
        let later = created_event(&nodes[(pair + 1) % 2]).await;
        let received = receiver
            .wait_delivered(&[earlier.clone(), later.clone()], WAIT)
            .await;
        let arrived = |id: &str| received.iter().find(|r| r.id == id).expect("arrived").at;
        assert!(
            arrived(&later) < arrived(&earlier),
            "pair {pair}: the later event first"
        );
        let gap = arrived(&earlier) - arrived(&later);
        assert!(gap < Duration::from_secs(3), "pair {pair}: held {gap:?}");
    }
    assert_eq!(receiver.received().len(), 6, "each event once");
    receiver.stop();
    drop((first_node, second_node));
    drop(database);
}

#[tokio::test]
async fn a_delayed_attempt_arrives_no_earlier_than_the_delay() {
    const DELAY: Duration = Duration::from_millis(1200);
    let deployment = deployment().await;
    let api = &deployment.api;
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(
        api,
        &receiver.url(),
        json!({"delayMs": DELAY.as_millis() as u64}),
    )
    .await;
    let before = Instant::now();
    let event = created_event(api).await;
    let received = receiver
        .wait_delivered(std::slice::from_ref(&event), WAIT)
        .await;
    let waited = received[0].at - before;
    assert!(waited >= DELAY, "arrived after {waited:?}");
    let attempts = api.recorded_webhook_attempts(&endpoint, 1, WAIT).await;
    assert_eq!(attempts[0]["fault"], "delay");
    assert_eq!(attempts[0]["status"], "succeeded");
    assert_eq!(api.injected_faults("webhook_delay").await, 1);
    receiver.stop();
    drop(deployment);
}

#[tokio::test]
async fn faults_are_validated_strictly_and_refused_in_live_mode() {
    let server = server().await;
    let api = server.api();
    let url = "http://127.0.0.1:9/hooks";
    let invalid = "parameter_invalid";
    let cases = [
        (json!({"duplicate": -0.1}), invalid, "faults.duplicate"),
        (json!({"duplicate": 1.5}), invalid, "faults.duplicate"),
        (json!({"duplicate": "half"}), invalid, "faults.duplicate"),
        (json!({"badSignature": 2}), invalid, "faults.badSignature"),
        (
            json!({"badSignature": true}),
            invalid,
            "faults.badSignature",
        ),
        (json!({"delayMs": -1}), invalid, "faults.delayMs"),
        (json!({"delayMs": 30001}), invalid, "faults.delayMs"),
        (json!({"delayMs": 1.5}), invalid, "faults.delayMs"),
        (json!({"delayMs": "10"}), invalid, "faults.delayMs"),
        (json!({"outOfOrder": 1}), invalid, "faults.outOfOrder"),
        (json!({"outOfOrder": "yes"}), invalid, "faults.outOfOrder"),
        (json!({"dropped": 1}), "parameter_unknown", "faults.dropped"),
        (json!(5), invalid, "faults"),
        (json!([1]), invalid, "faults"),
    ];
    let (endpoint, _) = register(&api, url, json!(null)).await;
    for (faults, code, param) in &cases {
        let reply = api
            .post_json("/v1/webhooks", json!({"url": url, "faults": faults}))
            .await;
        assert!(reply.status < 500, "{faults}: {}", reply.text);
        reply.expect_error(400, "invalid_request_error", code, Some(param));
        let reply = api
            .post_json(
                &format!("/v1/webhooks/{endpoint}"),
                json!({"faults": faults}),
            )
            .await;
        reply.expect_error(400, "invalid_request_error", code, Some(param));
    }
    // The bounds themselves are fine.
    let reply = api
        .post_json(
            "/v1/webhooks",
            json!({"url": url, "faults": {"duplicate": 1, "badSignature": 0,
                "delayMs": 30000, "outOfOrder": false}}),
        )
        .await;
    let created = reply.expect_status(201);
    assert_eq!(
        created["faults"],
        json!({"duplicate": 1.0, "badSignature": 0.0, "delayMs": 30000, "outOfOrder": false})
    );
    // Only the one endpoint with nothing to inject and the valid one exist.
    assert_eq!(api.list_all("/v1/webhooks").await.len(), 2);
    // Live mode: faults are refused, on creation and on change.
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let live_url = "https://shop.example/hooks";
    let reply = live
        .post_json(
            "/v1/webhooks",
            json!({"url": live_url, "faults": {"duplicate": 1}}),
        )
        .await;
    reply.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("faults"),
    );
    let message = reply.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("test mode"), "{message}");
    let reply = live
        .post_json("/v1/webhooks", json!({"url": live_url}))
        .await;
    let live_endpoint = reply.expect_status(201);
    assert_eq!(live_endpoint["faults"], Value::Null);
    let live_id = id_of(live_endpoint);
    live.post_json(
        &format!("/v1/webhooks/{live_id}"),
        json!({"faults": {"outOfOrder": true}}),
    )
    .await
    .expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("faults"),
    );
    let fetched = live.get(&format!("/v1/webhooks/{live_id}")).await;
    assert_eq!(fetched.expect_status(200)["faults"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn faults_are_replaced_kept_and_cleared_with_null() {
    let server = server().await;
    let api = server.api();
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(&api, &receiver.url(), json!({"duplicate": 1})).await;
    let path = format!("/v1/webhooks/{endpoint}");
    let shown = api.get(&path).await.expect_status(200)["faults"].clone();
    assert_eq!(
        shown,
        json!({"duplicate": 1.0, "badSignature": 0.0, "delayMs": 0, "outOfOrder": false})
    );
    // A change without `faults` keeps them; one with `faults` replaces them.
    let changed = api
        .post_json(&path, json!({"description": "kept"}))
        .await
        .expect_status(200)["faults"]
        .clone();
    assert_eq!(changed, shown);
    let replaced = api
        .post_json(&path, json!({"faults": {"delayMs": 10}}))
        .await
        .expect_status(200)["faults"]
        .clone();
    assert_eq!(
        replaced,
        json!({"duplicate": 0.0, "badSignature": 0.0, "delayMs": 10, "outOfOrder": false})
    );
    let cleared = api.post_json(&path, json!({"faults": null})).await;
    assert_eq!(cleared.expect_status(200)["faults"], Value::Null);
    assert_eq!(
        api.get(&path).await.expect_status(200)["faults"],
        Value::Null
    );
    // Nothing to inject is no faults.
    let nothing = api
        .post_json(&path, json!({"faults": {"duplicate": 0}}))
        .await;
    assert_eq!(nothing.expect_status(200)["faults"], Value::Null);
    // And a delivery now arrives once, without a fault.
    let event = created_event(&api).await;
    receiver
        .wait_delivered(std::slice::from_ref(&event), WAIT)
        .await;
    let received = settled(&receiver, Duration::from_millis(1000)).await;
    assert_eq!(received.len(), 1, "no duplicate once cleared");
    let attempts = api.recorded_webhook_attempts(&endpoint, 1, WAIT).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["fault"], Value::Null);
    receiver.stop();
    server.stop().await;
}

#[tokio::test]
async fn faults_can_be_sent_as_a_form() {
    let server = server().await;
    let api = server.api();
    let url = "http%3A%2F%2F127.0.0.1%3A9%2Fhooks";
    let reply = api
        .post_form(
            "/v1/webhooks",
            &format!(
                "url={url}&faults[duplicate]=0.5&faults[badSignature]=1&faults[delayMs]=5\
                 &faults[outOfOrder]=true"
            ),
        )
        .await;
    let created = reply.expect_status(201);
    assert_eq!(
        created["faults"],
        json!({"duplicate": 0.5, "badSignature": 1.0, "delayMs": 5, "outOfOrder": true})
    );
    let id = id_of(created);
    let reply = api
        .post_form(
            &format!("/v1/webhooks/{id}"),
            "faults[outOfOrder]=false&faults[delayMs]=7",
        )
        .await;
    assert_eq!(
        reply.expect_status(200)["faults"],
        json!({"duplicate": 0.0, "badSignature": 0.0, "delayMs": 7, "outOfOrder": false})
    );
    let cases = [
        (
            "faults[duplicate]=2",
            "parameter_invalid",
            "faults.duplicate",
        ),
        (
            "faults[duplicate]=",
            "parameter_invalid",
            "faults.duplicate",
        ),
        ("faults[delayMs]=abc", "parameter_invalid", "faults.delayMs"),
        (
            "faults[delayMs]=40000",
            "parameter_invalid",
            "faults.delayMs",
        ),
        (
            "faults[outOfOrder]=maybe",
            "parameter_invalid",
            "faults.outOfOrder",
        ),
        ("faults[nope]=1", "parameter_unknown", "faults.nope"),
    ];
    for (form, code, param) in cases {
        let reply = api
            .post_form("/v1/webhooks", &format!("url={url}&{form}"))
            .await;
        assert!(reply.status < 500, "{form}: {}", reply.text);
        reply.expect_error(400, "invalid_request_error", code, Some(param));
    }
    server.stop().await;
}
