//! Every documented client error (SPEC §2, §3): the status, `type`, `code` and `param` of the
//! answer, and that the request changed nothing. Authentication, permissions and isolation are
//! in `auth.rs`; idempotency conflicts in `idempotency.rs`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_server::config::RateLimitConfig;

/// One bad request and the error it must get.
struct Case {
    what: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
}

fn json_case(
    what: &'static str,
    body: Value,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
) -> Case {
    Case {
        what,
        content_type: Some("application/json"),
        body: body.to_string().into_bytes(),
        headers: Vec::new(),
        status,
        code,
        param,
    }
}

fn raw_case(
    what: &'static str,
    content_type: Option<&'static str>,
    body: &[u8],
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
) -> Case {
    Case {
        what,
        content_type,
        body: body.to_vec(),
        headers: Vec::new(),
        status,
        code,
        param,
    }
}

/// Sends every case to `POST path` and checks its answer, and that nothing changed.
async fn check_cases(api: &Api, path: &str, cases: Vec<Case>) {
    let before = api.state().await;
    for case in cases {
        let mut call = api
            .call(Method::POST, path)
            .raw(case.content_type, &case.body);
        for (name, value) in &case.headers {
            call = call.header(name, value);
        }
        let reply = call.send().await;
        assert_eq!(
            reply.status, case.status,
            "{}: expected {} but got {} {}",
            case.what, case.status, reply.status, reply.text
        );
        let kind = "invalid_request_error";
        assert_eq!(
            reply.json["error"]["type"], kind,
            "{}: {}",
            case.what, reply.text
        );
        assert_eq!(
            reply.json["error"]["code"], case.code,
            "{}: {}",
            case.what, reply.text
        );
        assert_eq!(
            reply.json["error"]["param"].as_str(),
            case.param,
            "{}: {}",
            case.what,
            reply.text
        );
        reply.expect_error(case.status, kind, case.code, case.param);
        api.expect_unchanged(&before, case.what).await;
    }
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

fn metadata_with_keys(count: usize) -> Value {
    let map: serde_json::Map<String, Value> = (0..count)
        .map(|i| (format!("key{i}"), Value::from("v")))
        .collect();
    Value::Object(map)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_payment_refuses_bad_parameters() {
    let server = TestServer::start().await;
    let api = server.api();
    // One payment exists, so "nothing changed" compares against a non-empty state.
    api.new_payment().await;
    let missing = "parameter_missing";
    let invalid = "parameter_invalid";
    let cases = vec![
        json_case(
            "missing amount",
            json!({"currency": "EUR", "returnUrl": RETURN_URL}),
            400,
            missing,
            Some("amount"),
        ),
        json_case(
            "missing currency",
            json!({"amount": 100, "returnUrl": RETURN_URL}),
            400,
            missing,
            Some("currency"),
        ),
        json_case(
            "missing returnUrl",
            json!({"amount": 100, "currency": "EUR"}),
            400,
            missing,
            Some("returnUrl"),
        ),
        json_case(
            "negative amount",
            payment_body(-100, json!({})),
            400,
            invalid,
            Some("amount"),
        ),
        json_case("zero amount", payment_body(0, json!({})), 400, invalid, Some("amount")),
        json_case(
            "amount above 99 999 999",
            payment_body(100_000_000, json!({})),
            400,
            invalid,
            Some("amount"),
        ),
        raw_case(
            "amount beyond i64",
            Some("application/json"),
            br#"{"amount": 18446744073709551615, "currency": "EUR", "returnUrl": "https://shop.example/return"}"#,
            400,
            invalid,
            Some("amount"),
        ),
        raw_case(
            "amount beyond u64",
            Some("application/json"),
            br#"{"amount": 99999999999999999999999, "currency": "EUR", "returnUrl": "https://shop.example/return"}"#,
            400,
            invalid,
            Some("amount"),
        ),
        raw_case(
            "amount 1e30",
            Some("application/json"),
            br#"{"amount": 1e30, "currency": "EUR", "returnUrl": "https://shop.example/return"}"#,
            400,
            invalid,
            Some("amount"),
        ),
        json_case(
            "amount as a string",
            json!({"amount": "1000", "currency": "EUR", "returnUrl": RETURN_URL}),
            400,
            invalid,
            Some("amount"),
        ),
        json_case(
            "fractional amount",
            json!({"amount": 10.5, "currency": "EUR", "returnUrl": RETURN_URL}),
            400,
            invalid,
            Some("amount"),
        ),
        json_case(
            "unknown currency",
            json!({"amount": 100, "currency": "XYZ", "returnUrl": RETURN_URL}),
            400,
            invalid,
            Some("currency"),
        ),
        json_case(
            "currency as a number",
            json!({"amount": 100, "currency": 978, "returnUrl": RETURN_URL}),
            400,
            invalid,
            Some("currency"),
        ),
        json_case(
            "relative returnUrl",
            json!({"amount": 100, "currency": "EUR", "returnUrl": "/return"}),
            400,
            invalid,
            Some("returnUrl"),
        ),
        json_case(
            "ftp returnUrl",
            json!({"amount": 100, "currency": "EUR", "returnUrl": "ftp://shop.example/return"}),
            400,
            invalid,
            Some("returnUrl"),
        ),
        json_case(
            "description of 1001 characters",
            payment_body(100, json!({"description": long(1001)})),
            400,
            invalid,
            Some("description"),
        ),
        json_case(
            "metadata with 51 keys",
            payment_body(100, json!({"metadata": metadata_with_keys(51)})),
            400,
            invalid,
            Some("metadata"),
        ),
        json_case(
            "metadata key of 41 characters",
            payment_body(100, json!({"metadata": {long(41): "v"}})),
            400,
            invalid,
            Some("metadata"),
        ),
        json_case(
            "metadata value of 501 characters",
            payment_body(100, json!({"metadata": {"k": long(501)}})),
            400,
            invalid,
            Some("metadata"),
        ),
        json_case(
            "metadata value that is not a string",
            payment_body(100, json!({"metadata": {"k": 1}})),
            400,
            invalid,
            Some("metadata.k"),
        ),
        json_case(
            "capture that is not a boolean",
            payment_body(100, json!({"capture": "yes"})),
            400,
            invalid,
            Some("capture"),
        ),
        raw_case(
            "invalid JSON",
            Some("application/json"),
            br#"{"amount": 100, "currency": "#,
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "invalid UTF-8",
            Some("application/json"),
            b"{\"amount\": 100, \"currency\": \"EUR\", \"returnUrl\": \"https://shop.example/\xff\xfe\"}",
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "a JSON body of whitespace alone (not JSON; only an absent body means {})",
            Some("application/json"),
            b"\t\n",
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "JSON null",
            Some("application/json"),
            b"null",
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "trailing garbage after the JSON object",
            Some("application/json"),
            br#"{"amount": 100, "currency": "EUR", "returnUrl": "https://shop.example/r"} x"#,
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "form amount that is not a number",
            Some("application/x-www-form-urlencoded"),
            b"amount=ten&currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2Fr",
            400,
            invalid,
            Some("amount"),
        ),
        Case {
            headers: vec![("Idempotency-Key", long(256))],
            ..json_case(
                "Idempotency-Key of 256 characters",
                payment_body(100, json!({})),
                400,
                invalid,
                Some("Idempotency-Key"),
            )
        },
        json_case(
            "idempotencyKey field of 256 characters",
            payment_body(100, json!({"idempotencyKey": long(256)})),
            400,
            invalid,
            Some("idempotencyKey"),
        ),
    ];
    check_cases(&api, "/v1/payments", cases).await;
    server.stop().await;
}

/// SPEC §2: `param` names the offending field, here the unknown one itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_and_named() {
    let server = TestServer::start().await;
    let api = server.api();
    let unknown = "parameter_unknown";
    check_cases(
        &api,
        "/v1/payments",
        vec![
            json_case(
                "unknown field",
                payment_body(100, json!({"colour": "blue"})),
                400,
                unknown,
                Some("colour"),
            ),
            raw_case(
                "unknown form field",
                Some("application/x-www-form-urlencoded"),
                b"amount=100&currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2Fr&colour=blue",
                400,
                unknown,
                Some("colour"),
            ),
        ],
    )
    .await;
    let authorized = api.authorized_payment().await;
    let id = id_of(&authorized);
    check_cases(
        &api,
        &format!("/v1/payments/{id}/capture"),
        vec![json_case(
            "capture with a misspelt field",
            json!({"amout": 5}),
            400,
            unknown,
            Some("amout"),
        )],
    )
    .await;
    check_cases(
        &api,
        &format!("/v1/payments/{id}/cancel"),
        vec![json_case(
            "cancel with a field",
            json!({"reason": "x"}),
            400,
            unknown,
            Some("reason"),
        )],
    )
    .await;
    assert_eq!(api.payment(&id).await, authorized);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_inclusive() {
    let server = TestServer::start().await;
    let api = server.api();
    let metadata: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("{i:0>40}"), Value::from(long(500))))
        .collect();
    let biggest = api
        .create_payment(payment_body(
            99_999_999,
            json!({"description": long(1000), "metadata": metadata}),
        ))
        .await;
    assert_eq!(biggest["amount"], 99_999_999);
    assert_eq!(biggest["metadata"].as_object().map(|m| m.len()), Some(50));
    let smallest = api.create_payment(payment_body(1, json!({}))).await;
    assert_eq!(smallest["amount"], 1);
    let key = long(255);
    let keyed = api
        .call(Method::POST, "/v1/payments")
        .json(payment_body(2, json!({})))
        .idempotency_key(&key)
        .send()
        .await;
    keyed.expect_status(201);
    assert_eq!(api.payments().await.len(), 3);
    server.stop().await;
}

/// A syntactically valid payment whose description alone is over 64 KiB.
fn oversized_payment() -> Value {
    payment_body(100, json!({"description": long(65 * 1024 + 1)}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413() {
    let server = TestServer::start().await;
    let api = server.api();
    let before = api.state().await;
    // Its own client: the server closes this connection (see the next test).
    let throwaway = Api::new(&api.base, &api.key);
    let reply = throwaway
        .post_json("/v1/payments", oversized_payment())
        .await;
    reply.expect_error(413, "invalid_request_error", "body_too_large", None);
    api.expect_unchanged(&before, "413").await;
    server.stop().await;
}

/// The server answers 413 without reading the body and then closes the connection; unless
/// it says so (`Connection: close`), a keep-alive client sends its next request into a closed
/// connection and gets no answer at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_answer_says_the_connection_closes() {
    let server = TestServer::start().await;
    let api = server.api();
    let reply = api.post_json("/v1/payments", oversized_payment()).await;
    reply.expect_status(413);
    assert_eq!(
        reply.header("connection"),
        Some("close"),
        "headers of the 413: {:?}",
        reply.headers
    );
    server.stop().await;
}

/// Bodies that are not a payment object: a JSON array (SPEC §2 lists "JSON array body" among
/// bad input: a payment is an object, and an array must not be read positionally as one), and
/// a body of another content type, or of none (415).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arrays_and_other_content_types_are_refused() {
    let server = TestServer::start().await;
    let api = server.api();
    let cases = vec![
        raw_case(
            "empty JSON array",
            Some("application/json"),
            b"[]",
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "JSON array with the fields in order",
            Some("application/json"),
            br#"[1000, "EUR", "https://shop.example/return"]"#,
            400,
            "body_invalid",
            None,
        ),
        raw_case(
            "text/plain",
            Some("text/plain"),
            payment_body(100, json!({})).to_string().as_bytes(),
            415,
            "content_type_unsupported",
            None,
        ),
        raw_case(
            "no Content-Type with a body",
            None,
            payment_body(100, json!({})).to_string().as_bytes(),
            415,
            "content_type_unsupported",
            None,
        ),
    ];
    check_cases(&api, "/v1/payments", cases).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_refuses_bad_queries() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let invalid = "parameter_invalid";
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("limit=0".into(), invalid, Some("limit")),
        ("limit=101".into(), invalid, Some("limit")),
        ("limit=-1".into(), invalid, Some("limit")),
        ("limit=ten".into(), invalid, Some("limit")),
        (
            format!("starting_after={id}&ending_before={id}"),
            invalid,
            Some("ending_before"),
        ),
        (
            "starting_after=pay_000000000000000000000000".into(),
            invalid,
            Some("starting_after"),
        ),
        ("status=paid".into(), invalid, Some("status")),
        (
            "created[gte]=yesterday".into(),
            invalid,
            Some("created[gte]"),
        ),
        (
            "created[lt]=2026-13-01".into(),
            invalid,
            Some("created[lt]"),
        ),
        ("colour=blue".into(), "parameter_unknown", Some("colour")),
        (
            "created[gt]=1".into(),
            "parameter_unknown",
            Some("created[gt]"),
        ),
        ("created=5".into(), invalid, Some("created")),
        ("limit[x]=5".into(), invalid, Some("limit")),
    ];
    for (query, code, param) in cases {
        let reply = api.get(&format!("/v1/payments?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        reply.expect_error(400, "invalid_request_error", code, param);
    }
    for query in ["limit=0", "limit=101", "type=Payment.Created"] {
        let reply = api.get(&format!("/v1/events?{query}")).await;
        assert_eq!(reply.status, 400, "events {query}: {}", reply.text);
        assert_eq!(reply.json["error"]["type"], "invalid_request_error");
    }
    // Retrieves take no parameters: one is refused, not ignored.
    let event = id_of(&api.events_of(&id).await[0]);
    for path in [
        format!("/v1/payments/{id}"),
        format!("/v1/events/{event}"),
        "/v1/balance".to_owned(),
    ] {
        let reply = api.get(&format!("{path}?expand[]=customer")).await;
        reply.expect_error(
            400,
            "invalid_request_error",
            "parameter_unknown",
            Some("expand"),
        );
        api.get(&path).await.expect_status(200);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_objects_and_routes_are_404() {
    let server = TestServer::start().await;
    let api = server.api();
    api.new_payment().await;
    let before = api.state().await;
    let missing = "pay_000000000000000000000000";
    for path in [
        format!("/v1/payments/{missing}"),
        "/v1/payments/pay_nope".to_owned(),
        "/v1/payments/evt_000000000000000000000000".to_owned(),
    ] {
        let reply = api.get(&path).await;
        reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    }
    for path in [
        format!("/v1/payments/{missing}/capture"),
        format!("/v1/payments/{missing}/cancel"),
    ] {
        let reply = api.post_json(&path, json!({})).await;
        reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    }
    let reply = api.pay(missing, CARD_APPROVED).await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let reply = api.authenticate(missing, "approve").await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let reply = api.get("/v1/events/evt_000000000000000000000000").await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let reply = api.get("/v1/refundz").await;
    reply.expect_error(404, "invalid_request_error", "route_missing", None);
    api.expect_unchanged(&before, "404s").await;
    server.stop().await;
}

/// Asserts `reply` is 422 with `code` and `param`, and that the payment is unchanged.
async fn expect_refused(
    api: &Api,
    case: &str,
    reply: Reply,
    code: &str,
    param: Option<&str>,
    before: &Value,
) {
    assert_eq!(reply.status, 422, "{case}: {}", reply.text);
    assert_eq!(reply.json["error"]["code"], code, "{case}: {}", reply.text);
    assert_eq!(
        reply.json["error"]["param"].as_str(),
        param,
        "{case}: {}",
        reply.text
    );
    reply.expect_error(422, "invalid_request_error", code, param);
    let id = id_of(before);
    assert_eq!(
        &api.payment(&id).await,
        before,
        "{case}: the payment changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_not_allowed_in_the_status_are_422() {
    let server = TestServer::start().await;
    let api = server.api();
    let state_invalid = "payment_state_invalid";

    let pending = api.new_payment().await;
    let completed = api.completed_payment().await;
    let authorized = api.authorized_payment().await;
    let failed = id_of(&api.new_payment().await);
    let failed = api
        .pay(&failed, CARD_DECLINED)
        .await
        .expect_status(200)
        .clone();
    let cancelled = id_of(&api.new_payment().await);
    let cancelled = api.cancel(&cancelled).await.expect_status(200).clone();
    let challenged = id_of(&api.new_payment().await);
    let challenged = api
        .pay(&challenged, CARD_3DS)
        .await
        .expect_status(200)
        .clone();

    // (the payment's status, the payment, the refused operation, its code and param)
    let cases = [
        (
            "pending",
            &pending,
            Op::Capture(json!({})),
            state_invalid,
            None,
        ),
        (
            "pending",
            &pending,
            Op::Authenticate("approve"),
            state_invalid,
            None,
        ),
        ("completed", &completed, Op::Cancel, state_invalid, None),
        (
            "completed",
            &completed,
            Op::Capture(json!({})),
            state_invalid,
            None,
        ),
        (
            "completed",
            &completed,
            Op::Pay(CARD_APPROVED),
            state_invalid,
            None,
        ),
        (
            "completed",
            &completed,
            Op::Pay(CARD_DECLINED),
            state_invalid,
            None,
        ),
        (
            "authorized",
            &authorized,
            Op::Capture(json!({"amount": 1001})),
            "amount_too_large",
            Some("amount"),
        ),
        (
            "authorized",
            &authorized,
            Op::Pay(CARD_APPROVED),
            state_invalid,
            None,
        ),
        (
            "failed",
            &failed,
            Op::Pay(CARD_APPROVED),
            state_invalid,
            None,
        ),
        ("failed", &failed, Op::Cancel, state_invalid, None),
        ("cancelled", &cancelled, Op::Cancel, state_invalid, None),
        (
            "cancelled",
            &cancelled,
            Op::Pay(CARD_APPROVED),
            state_invalid,
            None,
        ),
        (
            "challenged",
            &challenged,
            Op::Pay(CARD_APPROVED),
            state_invalid,
            None,
        ),
        (
            "challenged",
            &challenged,
            Op::Capture(json!({})),
            state_invalid,
            None,
        ),
    ];
    for (status, before, op, code, param) in &cases {
        let case = format!("{op:?} on a {status} payment");
        let reply = api.apply(&id_of(before), op).await;
        expect_refused(&api, &case, reply, code, *param, before).await;
    }

    // No refused operation wrote an event: each payment has `payment.created` and the
    // events of the transitions it really went through.
    let histories = [
        (&pending, 1),
        (&completed, 2),
        (&authorized, 2),
        (&failed, 2),
        (&cancelled, 2),
        (&challenged, 2),
    ];
    for (payment, count) in histories {
        let id = id_of(payment);
        let kinds: Vec<Value> = api
            .events_of(&id)
            .await
            .iter()
            .map(|e| e["type"].clone())
            .collect();
        assert_eq!(kinds.len(), count, "{id}: {kinds:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_and_test_helpers_refuse_bad_parameters() {
    let server = TestServer::start().await;
    let api = server.api();
    let authorized = api.authorized_payment().await;
    let authorized_id = id_of(&authorized);
    let invalid = "parameter_invalid";
    check_cases(
        &api,
        &format!("/v1/payments/{authorized_id}/capture"),
        vec![
            json_case(
                "capture 0",
                json!({"amount": 0}),
                400,
                invalid,
                Some("amount"),
            ),
            json_case(
                "capture -1",
                json!({"amount": -1}),
                400,
                invalid,
                Some("amount"),
            ),
            json_case(
                "capture a string",
                json!({"amount": "5"}),
                400,
                invalid,
                Some("amount"),
            ),
        ],
    )
    .await;
    assert_eq!(api.payment(&authorized_id).await, authorized);

    let pending_id = id_of(&api.new_payment().await);
    check_cases(
        &api,
        &format!("/v1/test_helpers/payments/{pending_id}/pay"),
        vec![
            json_case("no card", json!({}), 400, "parameter_missing", Some("card")),
            json_case(
                "Luhn failure",
                json!({"card": "4242424242424241"}),
                400,
                invalid,
                Some("card"),
            ),
            json_case(
                "letters",
                json!({"card": "4242abcd42424242"}),
                400,
                invalid,
                Some("card"),
            ),
            json_case(
                "too short",
                json!({"card": "4242"}),
                400,
                invalid,
                Some("card"),
            ),
            json_case(
                "expired",
                json!({"card": CARD_APPROVED, "expMonth": 1, "expYear": 2020}),
                400,
                invalid,
                Some("expYear"),
            ),
            json_case(
                "month 13",
                json!({"card": CARD_APPROVED, "expMonth": 13, "expYear": 2099}),
                400,
                invalid,
                Some("expMonth"),
            ),
            json_case(
                "two-digit cvc",
                json!({"card": CARD_APPROVED, "cvc": "12"}),
                400,
                invalid,
                Some("cvc"),
            ),
        ],
    )
    .await;
    let challenged_id = id_of(&api.new_payment().await);
    api.pay(&challenged_id, CARD_3DS).await.expect_status(200);
    check_cases(
        &api,
        &format!("/v1/test_helpers/payments/{challenged_id}/authenticate"),
        vec![
            json_case(
                "no outcome",
                json!({}),
                400,
                "parameter_missing",
                Some("outcome"),
            ),
            json_case(
                "unknown outcome",
                json!({"outcome": "maybe"}),
                400,
                invalid,
                Some("outcome"),
            ),
        ],
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_write_is_429_and_changes_nothing() {
    let server = TestServer::start_with(Options {
        rate_limit: Some(RateLimitConfig {
            enabled: true,
            test_per_second: 1,
            test_burst: 2,
            ..RateLimitConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();
    // Another key of the same account reads the state: it has buckets of its own.
    let (_, reader) = server
        .new_key(&server.sandbox_account(), vinr_domain::Mode::Test, &[])
        .await;

    let mut replies = Vec::new();
    for amount in [101, 102, 103] {
        replies.push(
            api.post_json("/v1/payments", payment_body(amount, json!({})))
                .await,
        );
    }
    for (reply, remaining) in replies[..2].iter().zip(["1", "0"]) {
        reply.expect_status(201);
        assert_eq!(reply.header("x-ratelimit-limit"), Some("2"));
        assert_eq!(reply.header("x-ratelimit-remaining"), Some(remaining));
        assert!(reply.header("x-ratelimit-reset").is_some());
    }
    let limited = &replies[2];
    limited.expect_error(429, "rate_limit_error", "rate_limited", None);
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("a numeric Retry-After");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_eq!(limited.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert!(limited.header("x-ratelimit-reset").is_some());

    let payments = reader.payments().await;
    let amounts: Vec<&Value> = payments.iter().map(|p| &p["amount"]).collect();
    assert_eq!(
        amounts,
        vec![&json!(102), &json!(101)],
        "the 429 created nothing"
    );
    assert_eq!(reader.events().await.len(), 2);

    // Reads have their own bucket.
    let read = api.get("/v1/payments?limit=1").await;
    read.expect_status(200);
    assert_eq!(read.header("x-ratelimit-limit"), Some("2"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_refused_without_effect() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let before = api.state().await;
    let reply = api
        .call(Method::DELETE, &format!("/v1/payments/{id}"))
        .send()
        .await;
    assert!(
        reply.status == 404 || reply.status == 405,
        "DELETE on a payment: {} {}",
        reply.status,
        reply.text
    );
    assert_eq!(reply.json["error"]["type"], "invalid_request_error");
    api.expect_unchanged(&before, "DELETE").await;
    server.stop().await;
}
