//! Success paths of every endpoint (SPEC §3, §4, §8): create (JSON and form), retrieve, list
//! with pagination and filters, capture, cancel, the test helpers with every test card, and the
//! operations endpoints.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_json_answers_the_whole_payment() {
    let server = TestServer::start().await;
    let api = server.api();
    let reply = api
        .post_json(
            "/v1/payments",
            json!({
                "amount": 1234,
                "currency": "eur",
                "returnUrl": "https://shop.example/return?order=7",
                "description": "Order #7",
                "metadata": {"order": "7", "customer": "c_1"},
            }),
        )
        .await;
    let payment = reply.expect_status(201);
    let id = id_of(payment);
    assert!(id.starts_with("pay_"), "{id}");
    assert_eq!(payment["object"], "payment");
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["amount"], 1234);
    assert_eq!(payment["currency"], "EUR", "answered in upper case");
    assert_eq!(payment["description"], "Order #7");
    assert_eq!(payment["returnUrl"], "https://shop.example/return?order=7");
    assert_eq!(
        payment["metadata"],
        json!({"order": "7", "customer": "c_1"})
    );
    assert_eq!(payment["livemode"], false);
    assert_eq!(payment["captureMethod"], "automatic");
    assert_eq!(payment["amountCapturable"], 0);
    assert_eq!(payment["amountCaptured"], 0);
    assert_eq!(payment["amountRefunded"], 0);
    assert_eq!(payment["paymentMethod"], Value::Null);
    assert_eq!(payment["failureCode"], Value::Null);
    let created_at = payment["created_at"].as_str().expect("created_at");
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "RFC 3339 UTC: {created_at}"
    );
    assert!(payment["expiresAt"]
        .as_str()
        .is_some_and(|at| at > created_at));
    let public_url = &server.app().settings.public_url;
    let checkout = payment["checkoutUrl"].as_str().expect("checkoutUrl");
    let token = checkout
        .strip_prefix(&format!("{public_url}/checkout/"))
        .unwrap_or_else(|| panic!("{checkout} is not under {public_url}/checkout/"));
    assert!(token.len() >= 32, "an unguessable token: {token}");
    assert!(reply
        .header("x-request-id")
        .is_some_and(|id| id.starts_with("req_")));

    // What was answered is what is stored.
    assert_eq!(&api.payment(&id).await, payment);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_a_form_with_metadata_and_manual_capture() {
    let server = TestServer::start().await;
    let api = server.api();
    let reply = api
        .post_form(
            "/v1/payments",
            "amount=500&currency=jpy&returnUrl=http%3A%2F%2Flocalhost%3A3000%2Fdone\
             &description=Tea%20set&metadata[order]=42&metadata%5Bnote%5D=gift%20wrap&capture=false",
        )
        .await;
    let payment = reply.expect_status(201);
    assert_eq!(payment["amount"], 500);
    assert_eq!(payment["currency"], "JPY");
    assert_eq!(payment["returnUrl"], "http://localhost:3000/done");
    assert_eq!(payment["description"], "Tea set");
    assert_eq!(
        payment["metadata"],
        json!({"order": "42", "note": "gift wrap"})
    );
    assert_eq!(payment["captureMethod"], "manual");
    assert_eq!(&api.payment(&id_of(payment)).await, payment);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_api_key_header_authenticates_too() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let reply = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/payments/{}", id_of(&payment)),
        )
        .without_key()
        .header("X-Api-Key", &api.key)
        .send()
        .await;
    assert_eq!(reply.expect_status(200), &payment);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_url_uses_the_configured_public_url() {
    let server = TestServer::start_with(Options {
        public_url: Some("https://pay.example.com/".into()),
        ..Options::default()
    })
    .await;
    let payment = server.api().new_payment().await;
    let checkout = payment["checkoutUrl"].as_str().expect("checkoutUrl");
    assert!(
        checkout.starts_with("https://pay.example.com/checkout/"),
        "{checkout}"
    );
    server.stop().await;
}

/// SPEC §8: `--public-url` defaults to `http://<listen>`. Listening on port 0, the only usable
/// base is the address actually bound; a `checkoutUrl` on port 0 sends shoppers nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_url_defaults_to_the_bound_address() {
    let server = TestServer::start().await;
    let payment = server.api().new_payment().await;
    let checkout = payment["checkoutUrl"].as_str().expect("checkoutUrl");
    let expected = format!("http://{}/checkout/", server.addr());
    assert!(
        checkout.starts_with(&expected),
        "checkoutUrl {checkout} should start with {expected}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_is_newest_first_and_pages_without_gaps_or_duplicates() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut created = Vec::new();
    for amount in 1..=7 {
        created.push(id_of(
            &api.create_payment(payment_body(amount, json!({}))).await,
        ));
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let all = api.get("/v1/payments").await;
    let all = all.expect_status(200);
    assert_eq!(all["object"], "list");
    assert_eq!(all["has_more"], false);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(
        ids(all),
        newest_first,
        "default limit returns all, newest first"
    );

    // Forwards, three at a time.
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/v1/payments?limit=3".to_owned();
    loop {
        let page = api.get(&path).await;
        let page = page.expect_status(200).clone();
        seen.extend(ids(&page));
        pages.push(ids(&page));
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        let cursor = page["next_cursor"].as_str().expect("next_cursor");
        assert_eq!(Some(cursor), page["data"][2]["id"].as_str());
        path = format!("/v1/payments?limit=3&starting_after={cursor}");
    }
    assert_eq!(seen, newest_first, "no gap, no duplicate");
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );

    // Backwards from the oldest page.
    let oldest = &pages[2][0];
    let page = api
        .get(&format!("/v1/payments?limit=3&ending_before={oldest}"))
        .await;
    let page = page.expect_status(200);
    assert_eq!(ids(page), pages[1], "the page before the last");
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().expect("next_cursor backwards");
    assert_eq!(
        cursor, pages[1][0],
        "the backward cursor is the page's first"
    );
    let page = api
        .get(&format!("/v1/payments?limit=3&ending_before={cursor}"))
        .await;
    let page = page.expect_status(200);
    assert_eq!(ids(page), pages[0]);
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_cursor"], Value::Null);

    // A cursor stays stable while new payments arrive.
    api.new_payment().await;
    let page = api
        .get(&format!(
            "/v1/payments?limit=3&starting_after={}",
            pages[0][2]
        ))
        .await;
    assert_eq!(ids(page.expect_status(200)), pages[1]);
    server.stop().await;
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("a data array")
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_status() {
    let server = TestServer::start().await;
    let api = server.api();
    let pending = id_of(&api.new_payment().await);
    let completed = id_of(&api.completed_payment().await);
    let authorized = id_of(&api.authorized_payment().await);
    let failed = id_of(&api.new_payment().await);
    api.pay(&failed, CARD_DECLINED).await.expect_status(200);
    for (status, expected) in [
        ("pending", &pending),
        ("completed", &completed),
        ("authorized", &authorized),
        ("failed", &failed),
    ] {
        let page = api.get(&format!("/v1/payments?status={status}")).await;
        assert_eq!(
            ids(page.expect_status(200)),
            vec![expected.clone()],
            "status={status}"
        );
    }
    let page = api.get("/v1/payments?status=cancelled").await;
    assert_eq!(ids(page.expect_status(200)), Vec::<String>::new());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_creation_time() {
    let server = TestServer::start().await;
    let api = server.api();
    let start_s = server.now_s();
    let first = id_of(&api.new_payment().await);
    server.clock.advance_ms(10_000);
    let second_payment = api.new_payment().await;
    let second = id_of(&second_payment);
    server.clock.advance_ms(10_000);
    let third = id_of(&api.new_payment().await);

    let query = |q: String| {
        let api = api.clone();
        async move {
            ids(api
                .get(&format!("/v1/payments?{q}"))
                .await
                .expect_status(200))
        }
    };
    assert_eq!(
        query(format!("created[gte]={}", start_s + 10)).await,
        vec![third.clone(), second.clone()]
    );
    assert_eq!(
        query(format!("created[lt]={}", start_s + 20)).await,
        vec![second.clone(), first.clone()]
    );
    assert_eq!(
        query(format!(
            "created%5Bgte%5D={}&created%5Blt%5D={}",
            start_s + 10,
            start_s + 20
        ))
        .await,
        vec![second.clone()]
    );
    let rfc3339 = second_payment["created_at"].as_str().expect("created_at");
    assert_eq!(
        query(format!("created[gte]={rfc3339}")).await,
        vec![third, second]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_in_full() {
    let server = TestServer::start().await;
    let api = server.api();
    let authorized = api.authorized_payment().await;
    assert_eq!(authorized["amountCapturable"], 1000);
    assert_eq!(authorized["amountCaptured"], 0);
    assert!(authorized["authorizedAt"].is_string());
    let id = id_of(&authorized);
    let captured = api.capture(&id, json!({})).await;
    let captured = captured.expect_status(200);
    assert_eq!(captured["status"], "completed");
    assert_eq!(captured["amountCaptured"], 1000);
    assert_eq!(captured["amountCapturable"], 0);
    assert!(captured["capturedAt"].is_string());
    assert_eq!(&api.payment(&id).await, captured);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_capture_releases_the_rest() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.authorized_payment().await);
    let captured = api.capture(&id, json!({"amount": 600})).await;
    let captured = captured.expect_status(200);
    assert_eq!(captured["status"], "completed");
    assert_eq!(captured["amount"], 1000);
    assert_eq!(captured["amountCaptured"], 600);
    assert_eq!(captured["amountCapturable"], 0);
    assert_eq!(&api.payment(&id).await, captured);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_accepts_a_form_body() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.authorized_payment().await);
    let captured = api
        .post_form(&format!("/v1/payments/{id}/capture"), "amount=250")
        .await;
    assert_eq!(captured.expect_status(200)["amountCaptured"], 250);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_pending_requires_authentication_and_authorized() {
    let server = TestServer::start().await;
    let api = server.api();
    let pending = id_of(&api.new_payment().await);
    let challenged = id_of(&api.new_payment().await);
    let challenge = api.pay(&challenged, CARD_3DS).await;
    assert_eq!(
        challenge.expect_status(200)["status"],
        "requires_authentication"
    );
    let authorized = id_of(&api.authorized_payment().await);
    for id in [pending, challenged, authorized] {
        let cancelled = api.cancel(&id).await;
        let cancelled = cancelled.expect_status(200);
        assert_eq!(cancelled["status"], "cancelled", "{id}");
        assert_eq!(cancelled["amountCapturable"], 0);
        assert_eq!(cancelled["amountCaptured"], 0);
        assert!(cancelled["cancelledAt"].is_string());
        assert_eq!(&api.payment(&id).await, cancelled);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_an_empty_body_and_no_content_type() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let reply = api
        .call(reqwest::Method::POST, &format!("/v1/payments/{id}/cancel"))
        .send()
        .await;
    assert_eq!(reply.expect_status(200)["status"], "cancelled");
    server.stop().await;
}

/// Asserts what is kept of the card, and that the number is nowhere in `text`.
#[track_caller]
fn assert_card_kept_safely(payment: &Value, text: &str, card: &str, brand: &str) {
    let method = &payment["paymentMethod"];
    assert_eq!(method["brand"], brand, "{payment}");
    assert_eq!(method["last4"], &card[card.len() - 4..]);
    assert!(method["expMonth"]
        .as_u64()
        .is_some_and(|m| (1..=12).contains(&m)));
    assert!(method["expYear"].as_u64().is_some_and(|y| y >= 2025));
    assert!(
        !text.contains(card),
        "the full card number leaked into {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_cards_complete_or_authorize() {
    let server = TestServer::start().await;
    let api = server.api();
    for (card, brand) in [
        (CARD_APPROVED, "visa"),
        (CARD_MASTERCARD, "mastercard"),
        (CARD_REFUNDS_FAIL, "visa"),
    ] {
        let id = id_of(&api.new_payment().await);
        let reply = api.pay(&id, card).await;
        let paid = reply.expect_status(200);
        assert_eq!(paid["status"], "completed", "{card}");
        assert_eq!(paid["amountCaptured"], 1000);
        assert_eq!(paid["amountCapturable"], 0);
        assert!(paid["authorizedAt"].is_string() && paid["capturedAt"].is_string());
        assert_card_kept_safely(paid, &reply.text, card, brand);

        let manual = id_of(
            &api.create_payment(payment_body(1000, json!({"capture": false})))
                .await,
        );
        let reply = api.pay(&manual, card).await;
        let paid = reply.expect_status(200);
        assert_eq!(paid["status"], "authorized", "{card}");
        assert_eq!(paid["amountCapturable"], 1000);
        assert_eq!(paid["amountCaptured"], 0);
        assert_card_kept_safely(paid, &reply.text, card, brand);
    }
    // Nowhere in lists or events either.
    let everything = format!("{:?}", api.state().await);
    for card in [CARD_APPROVED, CARD_MASTERCARD, CARD_REFUNDS_FAIL] {
        assert!(!everything.contains(card), "{card} leaked");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_echoes_the_expiry_and_accepts_spaced_numbers() {
    let server = TestServer::start().await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let reply = api
        .post_json(
            &format!("/v1/test_helpers/payments/{id}/pay"),
            json!({"card": "5555 5555 5555 4444", "expMonth": 7, "expYear": 2099, "cvc": "123"}),
        )
        .await;
    let paid = reply.expect_status(200);
    assert_eq!(paid["status"], "completed");
    assert_eq!(paid["paymentMethod"]["brand"], "mastercard");
    assert_eq!(paid["paymentMethod"]["last4"], "4444");
    assert_eq!(paid["paymentMethod"]["expMonth"], 7);
    assert_eq!(paid["paymentMethod"]["expYear"], 2099);
    assert!(!reply.text.contains("5555 5555 5555 4444") && !reply.text.contains(CARD_MASTERCARD));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_cards_fail_with_their_reason() {
    let server = TestServer::start().await;
    let api = server.api();
    for (card, code) in [
        (CARD_DECLINED, "card_declined"),
        (CARD_INSUFFICIENT_FUNDS, "insufficient_funds"),
        (CARD_EXPIRED, "expired_card"),
        (CARD_PROCESSING_ERROR, "processing_error"),
    ] {
        let id = id_of(&api.new_payment().await);
        let reply = api.pay(&id, card).await;
        let failed = reply.expect_status(200);
        assert_eq!(failed["status"], "failed", "{card}");
        assert_eq!(failed["failureCode"], code, "{card}");
        assert!(
            failed["failureMessage"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{card}: a failureMessage"
        );
        assert!(failed["failedAt"].is_string());
        assert_eq!(failed["amountCaptured"], 0);
        assert_eq!(failed["amountCapturable"], 0);
        assert_card_kept_safely(failed, &reply.text, card, "visa");
        assert_eq!(&api.payment(&id).await, failed);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_challenge_approved_or_failed() {
    let server = TestServer::start().await;
    let api = server.api();

    let approved = id_of(&api.new_payment().await);
    let reply = api.pay(&approved, CARD_3DS).await;
    let challenged = reply.expect_status(200);
    assert_eq!(challenged["status"], "requires_authentication");
    assert_card_kept_safely(challenged, &reply.text, CARD_3DS, "visa");
    let done = api.authenticate(&approved, "approve").await;
    let done = done.expect_status(200);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["amountCaptured"], 1000);
    assert_eq!(done["paymentMethod"]["last4"], "3220", "the card is kept");

    let manual = id_of(
        &api.create_payment(payment_body(1000, json!({"capture": false})))
            .await,
    );
    api.pay(&manual, CARD_3DS).await.expect_status(200);
    let done = api.authenticate(&manual, "approve").await;
    let done = done.expect_status(200);
    assert_eq!(done["status"], "authorized");
    assert_eq!(done["amountCapturable"], 1000);

    let failed = id_of(&api.new_payment().await);
    api.pay(&failed, CARD_3DS).await.expect_status(200);
    let done = api.authenticate(&failed, "fail").await;
    let done = done.expect_status(200);
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failureCode"], "authentication_failed");
    assert!(done["failureMessage"].is_string());
    assert_eq!(&api.payment(&failed).await, done);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer_without_a_key() {
    let server = TestServer::start().await;
    let anonymous = Api::new(&server.base, "");
    for path in ["/healthz", "/readyz"] {
        let reply = anonymous
            .call(reqwest::Method::GET, path)
            .without_key()
            .send()
            .await;
        assert_eq!(reply.expect_status(200), &json!({"status": "ok"}), "{path}");
        assert!(reply
            .header("x-request-id")
            .is_some_and(|id| id.starts_with("req_")));
    }
    // One API request so the counter has a sample.
    server.api().new_payment().await;
    let metrics = anonymous
        .call(reqwest::Method::GET, "/metrics")
        .without_key()
        .send()
        .await;
    metrics.expect_status(200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain")),
        "Prometheus text content type"
    );
    assert!(
        metrics
            .text
            .lines()
            .any(|line| line.starts_with("vinr_http_requests_total{")
                && line.contains("route=\"/v1/payments\"")
                && line.contains("status=\"201\"")),
        "requests by route and status in:\n{}",
        metrics.text
    );
    assert!(metrics.text.contains("vinr_http_request_duration_seconds"));

    let openapi = anonymous
        .call(reqwest::Method::GET, "/v1/openapi.json")
        .without_key()
        .send()
        .await;
    let document = openapi.expect_status(200);
    assert!(document["openapi"]
        .as_str()
        .is_some_and(|version| version.starts_with("3.1")));
    assert!(document["paths"]["/v1/payments"].is_object());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let server = TestServer::start().await;
    let api = server.api();
    let created = api
        .post_json("/v1/payments", payment_body(100, json!({})))
        .await;
    created.expect_status(201);
    let failed = api.post_json("/v1/payments", json!({"amount": 100})).await;
    failed.expect_error(
        400,
        "invalid_request_error",
        "parameter_missing",
        Some("currency"),
    );
    let unknown_route = api.get("/v1/nothing_here").await;
    unknown_route.expect_status(404);
    let mut seen = Vec::new();
    for reply in [&created, &failed, &unknown_route] {
        let id = reply.header("x-request-id").expect("X-Request-Id");
        assert!(id.starts_with("req_"), "{id}");
        assert_eq!(reply.header("x-vinr-request-id"), Some(id));
        seen.push(id.to_owned());
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "each request has its own id");
    assert_eq!(failed.json["error"]["request_id"], seen[1]);
    server.stop().await;
}
