//! Hostile text (SPEC §2): NUL and other C0 control characters, DEL, and invalid UTF-8 in every
//! place client text enters — JSON and form bodies, metadata keys and values, query
//! parameters, cursors, ids in paths, the Idempotency-Key header — get the same 400
//! `parameter_invalid` naming the parameter on every backend (PostgreSQL cannot store NUL,
//! SQLite can: before, one answered 500 and the other stored it), and change nothing. Tab,
//! newline and carriage return stay allowed in free text and come back verbatim. Integer fields
//! refuse fractions (`1000.5`) as JSON and as form data alike.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// One hostile request and the 400 it must get.
struct Case {
    method: Method,
    path: String,
    /// Content type and body, for a POST.
    body: Option<(&'static str, Vec<u8>)>,
    headers: Vec<(&'static str, &'static str)>,
    code: &'static str,
    param: Option<String>,
}

fn post(path: &str, content_type: &'static str, body: impl Into<Vec<u8>>, param: &str) -> Case {
    Case {
        method: Method::POST,
        path: path.to_owned(),
        body: Some((content_type, body.into())),
        headers: Vec::new(),
        code: "parameter_invalid",
        param: Some(param.to_owned()),
    }
}

fn post_json(path: &str, body: Value, param: &str) -> Case {
    post(path, JSON, body.to_string(), param)
}

fn get(path: &str, param: &str) -> Case {
    Case {
        method: Method::GET,
        path: path.to_owned(),
        body: None,
        headers: Vec::new(),
        code: "parameter_invalid",
        param: Some(param.to_owned()),
    }
}

/// Sends every case, expects each to be refused with its 400, and then that nothing the key can
/// see differs from `before`.
async fn assert_all_refused(api: &Api, cases: Vec<Case>, before: &[Vec<Value>]) {
    for case in cases {
        let shown = format!(
            "{} {} {}",
            case.method,
            case.path,
            case.body
                .as_ref()
                .map(|(_, body)| String::from_utf8_lossy(body).escape_debug().to_string())
                .unwrap_or_default()
        );
        let mut call = api.call(case.method.clone(), &case.path);
        if let Some((content_type, body)) = &case.body {
            call = call.raw(Some(content_type), body);
        }
        for (name, value) in &case.headers {
            call = call.header(name, value);
        }
        let reply = call.send().await;
        assert_eq!(reply.status, 400, "{shown}: {}", reply.text);
        reply.expect_error(
            400,
            "invalid_request_error",
            case.code,
            case.param.as_deref(),
        );
    }
    assert_eq!(
        everything(api).await,
        before,
        "a refused request changed something"
    );
}

/// Everything the tests' key can see that a refused request could have changed.
async fn everything(api: &Api) -> Vec<Vec<Value>> {
    let mut lists = Vec::new();
    for path in [
        "/v1/payments",
        "/v1/events",
        "/v1/refunds",
        "/v1/webhooks",
        "/v1/balance_transactions",
    ] {
        lists.push(api.list_all(path).await);
    }
    lists
}

/// The payment fields a hostile `returnUrl`, `description`, `metadata` … would replace.
fn payment_with(extra: Value) -> Value {
    payment_body(1000, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_and_invalid_utf8_are_refused_everywhere() {
    let server = TestServer::start().await;
    let api = server.api();
    let paid = id_of(&api.completed_payment().await);
    let endpoint = api
        .post_json(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/vinr", "description": "orders"}),
        )
        .await;
    let endpoint = id_of(endpoint.expect_status(201));
    let event = id_of(&api.events_of(&paid).await[0]);
    let before = everything(&api).await;
    assert_eq!(
        before[0].len(),
        1,
        "one payment before the hostile requests"
    );

    let payments = "/v1/payments";
    let form_payment = |extra: &[u8]| {
        [
            &b"amount=1000&currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2Fr&"[..],
            extra,
        ]
        .concat()
    };
    let mut cases = Vec::new();
    // JSON bodies: every control character but the three free-text ones, in each kind of field.
    for c in ['\u{0}', '\u{1}', '\u{1b}', '\u{7f}'] {
        let text = format!("a{c}b");
        cases.extend([
            post_json(
                payments,
                payment_with(json!({"description": text})),
                "description",
            ),
            post_json(
                payments,
                payment_with(json!({"metadata": {"order": text}})),
                "metadata.order",
            ),
            post_json(
                payments,
                payment_with(json!({"metadata": {text.clone(): "v"}})),
                "metadata",
            ),
            post_json(
                payments,
                payment_with(json!({"returnUrl": format!("https://shop.example/{text}")})),
                "returnUrl",
            ),
            post_json(
                payments,
                payment_with(json!({"currency": format!("EU{c}")})),
                "currency",
            ),
            post_json(
                payments,
                payment_with(json!({"idempotencyKey": text})),
                "idempotencyKey",
            ),
            post_json(
                "/v1/refunds",
                json!({"payment": format!("pay_{c}abc")}),
                "payment",
            ),
            post_json(
                "/v1/refunds",
                json!({"payment": paid, "metadata": {"why": text}}),
                "metadata.why",
            ),
            post_json(
                "/v1/refunds",
                json!({"payment": paid, "reason": text}),
                "reason",
            ),
            post_json(
                "/v1/webhooks",
                json!({"url": format!("http://127.0.0.1:9/{text}")}),
                "url",
            ),
            post_json(
                "/v1/webhooks",
                json!({"url": "http://127.0.0.1:9/x", "description": text}),
                "description",
            ),
            post_json(
                "/v1/webhooks",
                json!({"url": "http://127.0.0.1:9/x", "events": ["payment.created", text]}),
                "events[1]",
            ),
            post_json(
                &format!("/v1/webhooks/{endpoint}"),
                json!({"description": text}),
                "description",
            ),
            post_json(
                &format!("/v1/events/{event}/resend"),
                json!({"webhook": format!("we_{c}")}),
                "webhook",
            ),
        ]);
    }
    // Tab, newline and carriage return are free text, not allowed in URLs, keys, ids, codes.
    for c in ['\t', '\n', '\r'] {
        cases.extend([
            post_json(
                payments,
                payment_with(json!({"returnUrl": format!("https://shop.example/a{c}b")})),
                "returnUrl",
            ),
            post_json(
                payments,
                payment_with(json!({"metadata": {format!("k{c}"): "v"}})),
                "metadata",
            ),
            post_json(
                payments,
                payment_with(json!({"idempotencyKey": format!("k{c}")})),
                "idempotencyKey",
            ),
            post_json(
                "/v1/refunds",
                json!({"payment": format!("{paid}{c}")}),
                "payment",
            ),
        ]);
    }
    // Form bodies: control characters and invalid UTF-8, percent-encoded or raw.
    for (extra, param) in [
        (&b"description=a%00b"[..], "description"),
        (b"description=%1b", "description"),
        (b"description=%ff%fe", "description"),
        (b"description=caf\xe9", "description"),
        (b"metadata[k%ff]=v", "metadata"),
        (b"metadata[k]=v%ff", "metadata.k"),
        (b"metadata%5Bk%5D=v%C3", "metadata.k"),
        (b"metadata[k%00]=v", "metadata"),
        (b"metadata[k%0A]=v", "metadata"),
        (b"metadata[k]=%01", "metadata.k"),
        (b"idempotencyKey=%7f", "idempotencyKey"),
    ] {
        cases.push(post(payments, FORM, form_payment(extra), param));
    }
    cases.extend([
        post(
            payments,
            FORM,
            &b"amount=1000&currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2F%00"[..],
            "returnUrl",
        ),
        post(
            payments,
            FORM,
            &b"amount=1000&currency=EUR%ff&returnUrl=https%3A%2F%2Fshop.example%2Fr"[..],
            "currency",
        ),
        post("/v1/refunds", FORM, &b"payment=pay_%00abc"[..], "payment"),
        post(
            "/v1/refunds",
            FORM,
            format!("payment={paid}&metadata[why]=%ff"),
            "metadata.why",
        ),
        post(
            "/v1/webhooks",
            FORM,
            &b"url=http%3A%2F%2F127.0.0.1%3A9%2Fx&description=%ff"[..],
            "description",
        ),
        post(
            "/v1/webhooks",
            FORM,
            &b"url=http%3A%2F%2F127.0.0.1%3A9%2F%00"[..],
            "url",
        ),
        post(
            &format!("/v1/webhooks/{endpoint}"),
            FORM,
            &b"description=%00"[..],
            "description",
        ),
        post(
            &format!("/v1/test_helpers/payments/{paid}/pay"),
            FORM,
            &b"card=4242424242424242%00"[..],
            "card",
        ),
        post(
            &format!("/v1/test_helpers/payments/{paid}/pay"),
            JSON,
            json!({"card": CARD_APPROVED, "cvc": "12\u{0}"}).to_string(),
            "cvc",
        ),
        post(
            &format!("/v1/test_helpers/payments/{paid}/dispute"),
            FORM,
            &b"reason=general%00"[..],
            "reason",
        ),
        post(
            &format!("/v1/test_helpers/payments/{paid}/dispute"),
            FORM,
            &b"reason=%ff"[..],
            "reason",
        ),
    ]);
    // JSON cannot carry invalid UTF-8 in an escape either: a lone surrogate is not a character.
    cases.push(Case {
        code: "body_invalid",
        param: None,
        ..post(
            payments,
            JSON,
            r#"{"amount": 1000, "currency": "EUR", "returnUrl": "https://shop.example/r", "description": "a\ud800b"}"#,
            "",
        )
    });
    // Ids in paths: 400 `id`, as for an id that is not text at all.
    for path in [
        "/v1/payments/pay_%00x",
        "/v1/payments/pay_%1bx",
        "/v1/payments/pay_%ff",
        "/v1/refunds/re_%00",
        "/v1/events/evt_%7f",
        "/v1/webhooks/we_%00",
        "/v1/webhooks/we_%0a/deliveries",
        "/v1/settlements/setl_%00",
        "/v1/settlements/setl_%00/transactions",
        "/v1/balance_transactions/btx_%09",
        "/v1/disputes/dp_%00",
    ] {
        cases.push(get(path, "id"));
    }
    for path in [
        "/v1/payments/pay_%00x/capture",
        "/v1/payments/pay_%00x/cancel",
        "/v1/test_helpers/payments/pay_%00x/pay",
        "/v1/events/evt_%00/resend",
        "/v1/webhooks/we_%00",
        "/v1/webhooks/we_%00/test",
        "/v1/disputes/dp_%00",
        "/v1/disputes/dp_%1b/close",
        "/v1/test_helpers/payments/pay_%00x/dispute",
        "/v1/test_helpers/disputes/dp_%00/resolve",
    ] {
        cases.push(post(path, JSON, "{}", "id"));
    }
    // Query parameters, cursors included: all strict, all UTF-8.
    for (path, param) in [
        ("/v1/refunds?payment=pay_%00abc", "payment"),
        ("/v1/disputes?payment=pay_%00abc", "payment"),
        ("/v1/disputes?status=%ff", "status"),
        ("/v1/settlements?ending_before=%00", "ending_before"),
        ("/v1/settlements?currency=%1b", "currency"),
        ("/v1/settlements?status=%ff", "status"),
        ("/v1/balance_transactions?source=%00", "source"),
        ("/v1/balance_transactions?settlement=setl_%01", "settlement"),
        ("/v1/balance_transactions?type=%7f", "type"),
        ("/v1/payments?starting_after=%00", "starting_after"),
        ("/v1/payments?ending_before=pay_%0a", "ending_before"),
        ("/v1/payments?status=%ff%fe", "status"),
        ("/v1/payments?created[gte]=%00", "created[gte]"),
        ("/v1/payments?limit=1%00", "limit"),
        ("/v1/events?type=payment.created%00", "type"),
        ("/v1/events?starting_after=evt_%09", "starting_after"),
        ("/v1/webhooks?starting_after=we_%00", "starting_after"),
        ("/v1/payments?created%5Bgte%ff%5D=1", "created"),
    ] {
        cases.push(get(path, param));
    }
    cases.push(get(
        &format!("/v1/webhooks/{endpoint}/deliveries?ending_before=%00"),
        "ending_before",
    ));
    // A parameter name that cannot be named is the query's fault.
    for path in [
        "/v1/payments?%00=1".to_owned(),
        format!("/v1/payments/{paid}?a%ff=1"),
    ] {
        cases.push(Case {
            code: "body_invalid",
            param: Some("query".to_owned()),
            ..get(&path, "query")
        });
    }
    // The Idempotency-Key header: visible ASCII only (a tab is the one control character a
    // header can carry).
    cases.push(Case {
        headers: vec![("Idempotency-Key", "key\twith-tab")],
        ..post_json(payments, payment_with(json!({})), "Idempotency-Key")
    });

    assert_all_refused(&api, cases, &before).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_newline_and_carriage_return_stay_allowed_in_free_text() {
    let server = TestServer::start().await;
    let api = server.api();
    let description = "Order 7\n\tline two\r\nend";
    let metadata = json!({"note": "a\tb\nc\rd", "plain": "x"});
    let created = api
        .create_payment(payment_with(
            json!({"description": description, "metadata": metadata}),
        ))
        .await;
    assert_eq!(created["description"], description);
    assert_eq!(created["metadata"], metadata);
    let id = id_of(&created);
    assert_eq!(api.payment(&id).await, created, "retrieved verbatim");
    let listed = api.payments().await;
    assert_eq!(listed, vec![created.clone()], "listed verbatim");
    let event = &api.events_of(&id).await[0];
    assert_eq!(event["data"]["object"]["description"], description);
    assert_eq!(event["data"]["object"]["metadata"], metadata);

    // The same through a form body.
    let form = api
        .post_form(
            "/v1/payments",
            "amount=500&currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2Fr\
             &description=a%09b%0Ac%0D%0A&metadata[note]=x%0Ay&metadata%5Bcaf%C3%A9%5D=%C3%A9t%C3%A9",
        )
        .await;
    let form = form.expect_status(201);
    assert_eq!(form["description"], "a\tb\nc\r\n");
    assert_eq!(form["metadata"], json!({"note": "x\ny", "café": "été"}));
    assert_eq!(&api.payment(&id_of(form)).await, form);

    // Webhook descriptions and refund metadata are free text too.
    let endpoint = api
        .post_json(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/vinr", "description": "line\none\tz"}),
        )
        .await;
    let endpoint = id_of(endpoint.expect_status(201));
    let fetched = api.get(&format!("/v1/webhooks/{endpoint}")).await;
    assert_eq!(fetched.expect_status(200)["description"], "line\none\tz");
    let paid = id_of(&api.completed_payment().await);
    let refund = api
        .post_json(
            "/v1/refunds",
            json!({"payment": paid, "amount": 100, "metadata": {"why": "late\r\nparcel"}}),
        )
        .await;
    let refund = refund.expect_status(201).clone();
    let fetched = api.get(&format!("/v1/refunds/{}", id_of(&refund))).await;
    assert_eq!(
        fetched.expect_status(200)["metadata"]["why"],
        "late\r\nparcel"
    );
    server.stop().await;
}

/// Integer body fields take whole numbers however written (`1000.0` counts as an integer in
/// JSON Schema, see tests/openapi.rs), but a fraction is refused in both content types, and
/// query integers (`limit`) take digits only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_fields_refuse_fractions_in_json_and_forms() {
    let server = TestServer::start().await;
    let api = server.api();
    let authorized = id_of(&api.authorized_payment().await);
    let pending = id_of(&api.new_payment().await);
    let before = everything(&api).await;
    let form_payment = "currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2Fr";
    let pay = |id: &str| format!("/v1/test_helpers/payments/{id}/pay");
    let cases = vec![
        post(
            "/v1/payments",
            JSON,
            r#"{"amount": 1000.5, "currency": "EUR", "returnUrl": "https://shop.example/r"}"#,
            "amount",
        ),
        post(
            "/v1/payments",
            JSON,
            r#"{"amount": 1e-3, "currency": "EUR", "returnUrl": "https://shop.example/r"}"#,
            "amount",
        ),
        post(
            "/v1/payments",
            FORM,
            format!("amount=1000.5&{form_payment}"),
            "amount",
        ),
        post(
            "/v1/payments",
            FORM,
            format!("amount=1e-3&{form_payment}"),
            "amount",
        ),
        post(
            &format!("/v1/payments/{authorized}/capture"),
            JSON,
            r#"{"amount": 500.5}"#,
            "amount",
        ),
        post(
            &format!("/v1/payments/{authorized}/capture"),
            FORM,
            "amount=500.5",
            "amount",
        ),
        post(
            &pay(&pending),
            JSON,
            json!({"card": CARD_APPROVED, "expMonth": 12.5}).to_string(),
            "expMonth",
        ),
        post(
            &pay(&pending),
            FORM,
            format!("card={CARD_APPROVED}&expMonth=12&expYear=2040.5"),
            "expYear",
        ),
        get("/v1/payments?limit=10.0", "limit"),
        get("/v1/events?limit=1e1", "limit"),
    ];
    assert_all_refused(&api, cases, &before).await;
    // The same values written as integers are accepted.
    let reply = api
        .post_form("/v1/payments", &format!("amount=1000&{form_payment}"))
        .await;
    assert_eq!(reply.expect_status(201)["amount"], 1000);
    server.stop().await;
}

/// A webhook receiver's answer is text the server keeps but no client sent: a binary answer
/// (NUL, ESC) is recorded with U+FFFD in their place on every backend, never refused (on
/// PostgreSQL the attempt could not be stored before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_control_characters_is_recorded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let responder = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // Read the request's headers and body, which fit in one read for a test event.
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let body = b"ok\0bin\x1b[31m\tend";
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(&[head.as_bytes(), body].concat()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    let server = TestServer::start().await;
    let api = server.api();
    let endpoint = api
        .post_json(
            "/v1/webhooks",
            json!({"url": format!("http://127.0.0.1:{}/hook", addr.port())}),
        )
        .await;
    let endpoint = id_of(endpoint.expect_status(201));
    let attempt = api
        .post_json(&format!("/v1/webhooks/{endpoint}/test"), json!({}))
        .await;
    let attempt = attempt.expect_status(200).clone();
    assert_eq!(attempt["statusCode"], 200, "{attempt}");
    assert_eq!(attempt["responseExcerpt"], "ok\u{fffd}bin\u{fffd}[31m\tend");
    let listed = api
        .list_all(&format!("/v1/webhooks/{endpoint}/deliveries"))
        .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["responseExcerpt"], attempt["responseExcerpt"]);
    responder.abort();
    server.stop().await;
}
