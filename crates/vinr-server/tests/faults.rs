//! Faults on purpose (SPEC §12), black-box over HTTP on the configured backend: the
//! `Vinr-Test-Fault` header and fault rules make test-mode requests wait, fail without running,
//! or run and commit with their answer replaced by a 500 or by a closed connection — and the
//! idempotency key then answers the real outcome. Live keys never see any of it.

mod common;

use std::time::{Duration, Instant};

use common::race;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vinr_domain::Mode;

const FAULTS: &str = "/v1/test_helpers/faults";

fn with_fault<'a>(api: &'a Api, method: Method, path: &str, fault: &str) -> Call<'a> {
    api.call(method, path).header("Vinr-Test-Fault", fault)
}

async fn add_rule(api: &Api, body: Value) -> Value {
    api.post_json(FAULTS, body).await.expect_status(201).clone()
}

async fn rules(api: &Api) -> Vec<Value> {
    let list = api.get(FAULTS).await;
    let list = list.expect_status(200);
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    list["data"].as_array().expect("a data array").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_fault_answers_the_error_and_runs_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    for (status, kind) in [
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
    ] {
        let before = api.injected_faults(&format!("status_{status}")).await;
        let fault = format!("status={status}");
        let reply = with_fault(&api, Method::POST, "/v1/payments", &fault)
            .json(payment_body(1000, json!({})))
            .idempotency_key(&format!("status-{status}"))
            .send()
            .await;
        reply.expect_error(status, kind, "injected_fault", None);
        assert_eq!(reply.header("vinr-test-fault"), Some(fault.as_str()));
        if status == 429 {
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
            assert!(reply.header("x-ratelimit-limit").is_some());
            assert_eq!(reply.header("x-ratelimit-reset"), Some("1"));
        } else {
            assert_eq!(reply.header("retry-after"), None);
        }
        // In-process servers of one test binary share the metrics: others may add more.
        assert!(
            api.injected_faults(&format!("status_{status}")).await > before,
            "counted by kind"
        );
        // Nothing ran, and nothing was stored for the key: the retry runs for real.
        assert_eq!(api.payments().await.len(), 0);
        let retry = api
            .create_with_key(&format!("status-{status}"), payment_body(1000, json!({})))
            .await;
        retry.expect_status(201);
        assert_eq!(retry.header("idempotent-replayed"), None);
        api.post_json("/v1/test_helpers/reset", json!({}))
            .await
            .expect_status(200);
    }
    // A read is faulted the same way.
    with_fault(&api, Method::GET, "/v1/payments", "status=503")
        .send()
        .await
        .expect_error(503, "api_error", "injected_fault", None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_429_reports_the_keys_real_bucket_when_limits_are_on() {
    let server = TestServer::start_with(Options {
        rate_limit: Some(vinr_server::config::RateLimitConfig {
            enabled: true,
            test_per_second: 100,
            test_burst: 40,
            ..vinr_server::config::RateLimitConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();
    let reply = with_fault(&api, Method::GET, "/v1/payments", "status=429")
        .send()
        .await;
    reply.expect_error(429, "rate_limit_error", "injected_fault", None);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("x-ratelimit-limit"), Some("40"));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    // The next request has the real bucket's headers again.
    let next = api.get("/v1/payments").await;
    next.expect_status(200);
    assert_eq!(next.header("x-ratelimit-limit"), Some("40"));
    assert_ne!(next.header("x-ratelimit-remaining"), Some("0"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_the_request_which_then_runs() {
    let server = TestServer::start().await;
    let api = server.api();
    let before = api.injected_faults("latency").await;
    let started = Instant::now();
    let reply = with_fault(&api, Method::POST, "/v1/payments", "latency=400")
        .json(payment_body(1000, json!({})))
        .send()
        .await;
    let waited = started.elapsed();
    reply.expect_status(201);
    assert_eq!(reply.header("vinr-test-fault"), Some("latency=400"));
    assert!(waited >= Duration::from_millis(400), "waited {waited:?}");
    assert_eq!(api.payments().await.len(), 1);
    assert!(api.injected_faults("latency").await > before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_500_keeps_the_change_and_the_key_replays_the_real_answer() {
    let server = TestServer::start().await;
    let api = server.api();
    let before = api.injected_faults("commit_then_500").await;
    let body = payment_body(4200, json!({"description": "order 7"}));
    let faulted = with_fault(&api, Method::POST, "/v1/payments", "commit-then-500")
        .json(body.clone())
        .idempotency_key("order-7")
        .send()
        .await;
    faulted.expect_error(500, "api_error", "injected_fault", None);
    assert_eq!(faulted.header("vinr-test-fault"), Some("commit-then-500"));
    let payments = api.payments().await;
    assert_eq!(payments.len(), 1, "the request committed");
    let retry = api.create_with_key("order-7", body.clone()).await;
    let replayed = retry.expect_status(201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(id_of(replayed), id_of(&payments[0]));
    assert_eq!(replayed["description"], "order 7");
    assert_eq!(api.payments().await.len(), 1, "exactly one payment");
    // Without a key the retry is a second payment: what the fault is there to show.
    with_fault(&api, Method::POST, "/v1/payments", "commit-then-500")
        .json(body.clone())
        .send()
        .await
        .expect_status(500);
    api.post_json("/v1/payments", body).await.expect_status(201);
    assert_eq!(api.payments().await.len(), 3);
    // A state change elsewhere: the capture happened although the answer said 500.
    let payment = api.authorized_payment().await;
    let id = id_of(&payment);
    with_fault(
        &api,
        Method::POST,
        &format!("/v1/payments/{id}/capture"),
        "commit-then-500",
    )
    .json(json!({}))
    .idempotency_key("capture-1")
    .send()
    .await
    .expect_status(500);
    assert_eq!(api.payment(&id).await["status"], "completed");
    let retry = api
        .call(Method::POST, &format!("/v1/payments/{id}/capture"))
        .json(json!({}))
        .idempotency_key("capture-1")
        .send()
        .await;
    assert_eq!(retry.expect_status(200)["status"], "completed");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert!(api.injected_faults("commit_then_500").await >= before + 3);
    server.stop().await;
}

/// A raw HTTP/1.1 request on its own connection; answers every byte the server sent before it
/// closed the connection.
async fn raw_request(server: &TestServer, key: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    let mut socket = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("a connection");
    let request = format!(
        "POST /v1/payments HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        server.addr(),
        body.len()
    );
    socket
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut received))
        .await
        .expect("the server closes the connection within 10 s");
    // A reset instead of a clean close is a closed connection too.
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_drop_closes_the_connection_unanswered_and_the_key_replays() {
    let server = TestServer::start().await;
    let api = server.api();
    let before = api.injected_faults("commit_then_drop").await;
    let body = payment_body(1500, json!({})).to_string();
    let received = raw_request(
        &server,
        &api.key,
        "Idempotency-Key: dropped-1\r\nVinr-Test-Fault: commit-then-drop\r\n",
        &body,
    )
    .await;
    assert!(
        received.is_empty(),
        "no byte of an answer: {:?}",
        String::from_utf8_lossy(&received)
    );
    // The same raw client without the fault gets an answer: the harness can tell the two.
    let answered = raw_request(&server, &api.key, "Connection: close\r\n", &body).await;
    assert!(answered.starts_with(b"HTTP/1.1 201"), "an answer");
    let payments = api.payments().await;
    assert_eq!(payments.len(), 2, "the dropped request committed");
    let retry = api
        .create_with_key("dropped-1", serde_json::from_str(&body).expect("JSON"))
        .await;
    let replayed = retry.expect_status(201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert!(payments.iter().any(|p| id_of(p) == id_of(replayed)));
    assert_eq!(api.payments().await.len(), 2);
    assert!(api.injected_faults("commit_then_drop").await > before);
    // The server keeps serving.
    api.get("/v1/payments").await.expect_status(200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_fault_header_is_a_400_naming_it_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    for value in [
        "",
        "status=404",
        "status=200",
        "latency=30001",
        "latency=-1",
        "latency=abc",
        "commit-then-501",
        "COMMIT-THEN-500",
        "explode",
        "status=503,latency=5",
    ] {
        let reply = with_fault(&api, Method::POST, "/v1/payments", value)
            .json(payment_body(1000, json!({})))
            .send()
            .await;
        reply.expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("Vinr-Test-Fault"),
        );
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Vinr-Test-Fault")),
            "{}",
            reply.text
        );
    }
    assert_eq!(api.payments().await.len(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_keys_ignore_the_header_and_have_no_rules() {
    let server = TestServer::start().await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    for fault in [
        "status=503",
        "commit-then-500",
        "commit-then-drop",
        "nonsense",
    ] {
        let reply = with_fault(&live, Method::POST, "/v1/payments", fault)
            .json(payment_body(1000, json!({})))
            .send()
            .await;
        reply.expect_status(201);
        assert_eq!(reply.header("vinr-test-fault"), None, "never echoed");
    }
    assert_eq!(live.payments().await.len(), 4);
    live.post_json(
        FAULTS,
        json!({"method": "GET", "path": "/v1/payments", "fault": "status=503"}),
    )
    .await
    .expect_error(404, "invalid_request_error", "route_missing", None);
    live.get(FAULTS)
        .await
        .expect_error(404, "invalid_request_error", "route_missing", None);
    live.call(Method::DELETE, FAULTS).send().await.expect_error(
        404,
        "invalid_request_error",
        "route_missing",
        None,
    );
    // A test-mode rule of the same account never touches live requests.
    let test = server.api();
    add_rule(
        &test,
        json!({"method": "GET", "path": "/v1/payments", "fault": "status=503", "count": 5}),
    )
    .await;
    live.get("/v1/payments").await.expect_status(200);
    assert_eq!(rules(&test).await[0]["remaining"], 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_fault_their_count_of_matching_requests_then_are_gone() {
    let server = TestServer::start().await;
    let api = server.api();
    let rule = add_rule(
        &api,
        json!({"method": "POST", "path": "/v1/payments", "fault": "status=502", "count": 2}),
    )
    .await;
    assert_eq!(rule["object"], "fault_rule");
    assert!(id_of(&rule).starts_with("flt_"));
    assert_eq!(rule["method"], "POST");
    assert_eq!(rule["path"], "/v1/payments");
    assert_eq!(rule["fault"], "status=502");
    assert_eq!(rule["remaining"], 2);
    assert_eq!(rule["livemode"], false);
    assert!(rule["created_at"].is_string());
    assert_eq!(rules(&api).await, vec![rule.clone()]);
    // Another method or path does not match, and takes nothing from the count.
    api.get("/v1/payments").await.expect_status(200);
    api.post_json("/v1/test_helpers/clock/advance", json!({"seconds": 1}))
        .await
        .expect_status(200);
    assert_eq!(rules(&api).await[0]["remaining"], 2);
    let first = api
        .post_json("/v1/payments", payment_body(1000, json!({})))
        .await;
    first.expect_error(502, "api_error", "injected_fault", None);
    assert_eq!(
        first.header("vinr-test-fault-rule"),
        Some(id_of(&rule).as_str())
    );
    assert_eq!(rules(&api).await[0]["remaining"], 1);
    // A header wins over the rule, which keeps its count.
    with_fault(&api, Method::POST, "/v1/payments", "latency=1")
        .json(payment_body(1000, json!({})))
        .send()
        .await
        .expect_status(201);
    assert_eq!(rules(&api).await[0]["remaining"], 1);
    api.post_json("/v1/payments", payment_body(1000, json!({})))
        .await
        .expect_error(502, "api_error", "injected_fault", None);
    assert_eq!(rules(&api).await, Vec::<Value>::new(), "used up, gone");
    api.post_json("/v1/payments", payment_body(1000, json!({})))
        .await
        .expect_status(201);
    assert_eq!(api.payments().await.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_rule_matches_paths_below_it_without_the_query_and_never_the_rules_route() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let id = id_of(&payment);
    add_rule(
        &api,
        json!({"method": "GET", "path": "/v1/*", "fault": "status=500", "count": 100}),
    )
    .await;
    // The rules themselves are never faulted: they can always be read and cleared.
    assert_eq!(rules(&api).await.len(), 1);
    api.get(&format!("/v1/payments/{id}?expand=nothing"))
        .await
        .expect_status(500);
    api.get("/v1/payments?limit=1").await.expect_status(500);
    assert_eq!(rules(&api).await[0]["remaining"], 98);
    // POSTs are not matched by a GET rule.
    api.new_payment().await;
    let cleared = api.call(Method::DELETE, FAULTS).send().await;
    assert_eq!(
        cleared.expect_status(200),
        &json!({"object": "fault_rules_cleared", "deleted": 1})
    );
    api.get("/v1/payments").await.expect_status(200);

    // The oldest matching rule hits first.
    let exact = add_rule(
        &api,
        json!({"method": "GET", "path": format!("/v1/payments/{id}"), "fault": "status=503"}),
    )
    .await;
    let prefix = add_rule(
        &api,
        json!({"method": "GET", "path": "/v1/payments/*", "fault": "status=429"}),
    )
    .await;
    let first = api.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(first.status, 503);
    assert_eq!(
        first.header("vinr-test-fault-rule"),
        Some(id_of(&exact).as_str())
    );
    let second = api.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(second.status, 429);
    assert_eq!(
        second.header("vinr-test-fault-rule"),
        Some(id_of(&prefix).as_str())
    );
    api.get(&format!("/v1/payments/{id}"))
        .await
        .expect_status(200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_validated_field_by_field() {
    let server = TestServer::start().await;
    let api = server.api();
    let valid = json!({"method": "POST", "path": "/v1/payments", "fault": "status=503"});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("method", json!("PUT")), "method"),
        (with("method", json!("post")), "method"),
        (with("path", json!("/payments")), "path"),
        (with("path", json!("/v1/pay*ments")), "path"),
        (with("path", json!("/v1/payments?limit=1")), "path"),
        (with("path", json!(FAULTS)), "path"),
        (with("fault", json!("status=404")), "fault"),
        (with("fault", json!("latency=30001")), "fault"),
        (with("fault", json!("")), "fault"),
        (with("count", json!(0)), "count"),
        (with("count", json!(10_001)), "count"),
        (with("count", json!(1.5)), "count"),
        (with("count", json!("3")), "count"),
        (with("extra", json!(1)), "extra"),
    ];
    for (body, param) in cases {
        let reply = api.post_json(FAULTS, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(
            reply.json["error"]["param"], param,
            "{body}: {}",
            reply.text
        );
    }
    for missing in ["method", "path", "fault"] {
        let mut body = valid.clone();
        body.as_object_mut().expect("an object").remove(missing);
        let reply = api.post_json(FAULTS, body).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(reply.json["error"]["param"], missing, "{}", reply.text);
    }
    assert_eq!(rules(&api).await.len(), 0, "nothing was made");
    // Form bodies are read as JSON ones; a whole-number `count` may be written 3.0.
    let form = api
        .post_form(
            FAULTS,
            "method=GET&path=%2Fv1%2Fevents%2A&fault=latency%3D5&count=3",
        )
        .await;
    let form = form.expect_status(201);
    assert_eq!(form["path"], "/v1/events*");
    assert_eq!(form["remaining"], 3);
    add_rule(&api, with("count", json!(3.0))).await;
    // One rule per idempotency key.
    let keyed = || {
        api.call(Method::POST, FAULTS)
            .json(valid.clone())
            .idempotency_key("rule-1")
            .send()
    };
    let first = keyed().await;
    let again = keyed().await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.json, again.json);
    assert_eq!(rules(&api).await.len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_at_most_100_rules_and_a_reset_clears_them() {
    let server = TestServer::start().await;
    let api = server.api();
    for index in 0..100 {
        add_rule(
            &api,
            json!({"method": "GET", "path": format!("/v1/payments/pay_{index}"), "fault": "status=503"}),
        )
        .await;
    }
    let refused = api
        .post_json(
            FAULTS,
            json!({"method": "GET", "path": "/v1/payments", "fault": "status=503"}),
        )
        .await;
    refused.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("path"),
    );
    let reset = api.post_json("/v1/test_helpers/reset", json!({})).await;
    assert_eq!(reset.expect_status(200)["deleted"]["faultRules"], 100);
    assert_eq!(rules(&api).await.len(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_rules_never_touch_another_account() {
    let server = TestServer::start().await;
    let api = server.api();
    let (_, other) = server.new_account("other shop").await;
    add_rule(
        &api,
        json!({"method": "GET", "path": "/v1/payments", "fault": "status=503", "count": 3}),
    )
    .await;
    other.get("/v1/payments").await.expect_status(200);
    assert_eq!(rules(&other).await.len(), 0);
    assert_eq!(
        other
            .call(Method::DELETE, FAULTS)
            .send()
            .await
            .expect_status(200)["deleted"],
        0
    );
    assert_eq!(rules(&api).await[0]["remaining"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_hit_by_20_requests_at_once_faults_exactly_its_count() {
    let server = TestServer::start().await;
    race::fault_rule_count_is_taken_exactly(&[server.api()]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_500_over_a_refusal_replays_the_refusal() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.authorized_payment().await;
    let id = id_of(&payment);
    api.cancel(&id).await.expect_status(200);
    let capture = |fault: Option<&str>| {
        let mut call = api
            .call(Method::POST, &format!("/v1/payments/{id}/capture"))
            .json(json!({}))
            .idempotency_key("capture-cancelled");
        if let Some(fault) = fault {
            call = call.header("Vinr-Test-Fault", fault);
        }
        call.send()
    };
    capture(Some("commit-then-500"))
        .await
        .expect_error(500, "api_error", "injected_fault", None);
    // The real answer was the refusal, stored for the key: the retry gets it.
    let retry = capture(None).await;
    assert_eq!(retry.status, 422, "{}", retry.text);
    assert_eq!(retry.json["error"]["code"], "payment_state_invalid");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_can_drop_the_connection_and_the_key_replays() {
    let server = TestServer::start().await;
    let api = server.api();
    let rule = add_rule(
        &api,
        json!({"method": "POST", "path": "/v1/payments", "fault": "commit-then-drop"}),
    )
    .await;
    assert_eq!(rule["fault"], "commit-then-drop");
    let body = payment_body(2500, json!({})).to_string();
    let received = raw_request(&server, &api.key, "Idempotency-Key: rule-drop\r\n", &body).await;
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(rules(&api).await.len(), 0, "the rule's one count is used");
    let retry = api
        .create_with_key("rule-drop", serde_json::from_str(&body).expect("JSON"))
        .await;
    retry.expect_status(201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(api.payments().await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_route_ignores_the_header_and_a_header_is_sent_once() {
    let server = TestServer::start().await;
    let api = server.api();
    // Never faulted: a rule can always be made, read and cleared.
    let made = with_fault(&api, Method::POST, FAULTS, "status=503")
        .json(json!({"method": "GET", "path": "/v1/events", "fault": "status=503"}))
        .send()
        .await;
    made.expect_status(201);
    assert_eq!(made.header("vinr-test-fault"), None);
    with_fault(&api, Method::DELETE, FAULTS, "commit-then-drop")
        .send()
        .await
        .expect_status(200);
    // Two header lines are refused, as a comma-joined pair is.
    let twice = api
        .call(Method::GET, "/v1/payments")
        .header("Vinr-Test-Fault", "status=503")
        .header("Vinr-Test-Fault", "latency=5")
        .send()
        .await;
    twice.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("Vinr-Test-Fault"),
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_rule_matches_head_requests_too() {
    let server = TestServer::start().await;
    let api = server.api();
    add_rule(
        &api,
        json!({"method": "GET", "path": "/v1/payments", "fault": "status=503"}),
    )
    .await;
    let head = api.call(Method::HEAD, "/v1/payments").send().await;
    assert_eq!(head.status, 503);
    assert_eq!(rules(&api).await.len(), 0);
    server.stop().await;
}

/// The counter by kind, exactly: on a `vinr serve` process of its own (the in-process servers
/// of this binary share one metrics recorder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_are_counted_by_kind() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = common::database::fresh_database().await;
    let config = common::process::config_without_rate_limits(dir.path());
    let served = common::process::Served::start(dir.path(), &database.url, &config);
    let api = Api::new(&served.base, served.printed_key.as_deref().expect("a key"));
    for fault in [
        "status=503",
        "status=503",
        "status=429",
        "latency=0",
        "commit-then-500",
    ] {
        with_fault(&api, Method::GET, "/v1/payments", fault)
            .send()
            .await;
    }
    add_rule(
        &api,
        json!({"method": "GET", "path": "/v1/events", "fault": "status=502", "count": 2}),
    )
    .await;
    for _ in 0..3 {
        api.get("/v1/events").await;
    }
    for (kind, count) in [
        ("status_503", 2),
        ("status_429", 1),
        ("status_502", 2),
        ("status_500", 0),
        ("latency", 1),
        ("commit_then_500", 1),
        ("commit_then_drop", 0),
    ] {
        assert_eq!(api.injected_faults(kind).await, count, "{kind}");
    }
    served.terminate();
}
