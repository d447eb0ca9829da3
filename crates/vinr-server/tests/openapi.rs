//! The OpenAPI document served at `/v1/openapi.json` is the committed `openapi.json`, byte for
//! byte, and every operation in it is routed (both come from `http/routes.rs`). After an intended API change, regenerate the copy with
//! `VINR_UPDATE_OPENAPI=1 cargo test -p vinr-server --test openapi` and commit it.

mod common;

use common::TestServer;
use reqwest::Method;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");

#[tokio::test]
async fn served_document_matches_the_committed_copy() {
    let server = TestServer::start().await;
    let reply = server.api().get("/v1/openapi.json").await;
    reply.expect_status(200);
    let served = reply.text;

    if std::env::var_os("VINR_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &served).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        served == committed,
        "openapi.json is stale: regenerate it with \
         `VINR_UPDATE_OPENAPI=1 cargo test -p vinr-server --test openapi` and commit it"
    );

    let document: serde_json::Value = serde_json::from_str(&served).expect("valid JSON");
    assert!(document["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    for schema in [
        "Payment",
        "ErrorBody",
        "CreatePaymentRequest",
        "Event",
        "PaymentList",
        "Balance",
        "BalanceTransaction",
        "Settlement",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "schema {schema} is missing"
        );
    }

    // The router and the document come from one route table; through HTTP, every documented
    // operation reaches a handler (neither "no such route" nor "method not allowed").
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 26, "routes: {:?}", paths.keys());
    let api = server.api();
    for (path, item) in paths {
        let url = path.replace("{id}", "x");
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let reply = api.call(method.clone(), &url).send().await;
            let code = reply.json["error"]["code"].as_str().unwrap_or("");
            assert!(
                !matches!(code, "route_missing" | "method_not_allowed"),
                "{method} {path} is documented but not routed: {}",
                reply.text
            );
        }
    }
    server.stop().await;
}

/// The document's JSON Schema (OpenAPI 3.1) counts `1000.0` as an integer, and generated
/// clients and fuzzers send it: every integer body field takes a whole number however JSON or
/// a form spells it, and refuses a fraction or a string, with the field named.
#[tokio::test]
async fn integer_fields_take_whole_numbers_as_json_schema_counts_them() {
    use common::{id_of, payment_body};
    use serde_json::json;

    let server = TestServer::start().await;
    let api = server.api();
    let created = api
        .post_json(
            "/v1/payments",
            json!({"amount": 1000.0, "currency": "EUR", "returnUrl": "https://shop.example/r"}),
        )
        .await;
    assert_eq!(created.expect_status(201)["amount"], 1000);
    let form = api
        .post_form(
            "/v1/payments",
            "amount=1000.0&currency=EUR&returnUrl=https%3A%2F%2Fshop.example%2Fr",
        )
        .await;
    assert_eq!(form.expect_status(201)["amount"], 1000);
    for amount in [json!(1000.5), json!("1000"), json!(1e300), json!(null)] {
        api.post_json("/v1/payments", payment_body(0, json!({"amount": amount})))
            .await
            .expect_error(
                400,
                "invalid_request_error",
                "parameter_invalid",
                Some("amount"),
            );
    }

    let authorized = api.authorized_payment().await;
    let captured = api
        .capture(&id_of(&authorized), json!({"amount": 600.0}))
        .await;
    assert_eq!(captured.expect_status(200)["amountCaptured"], 600);
    let refund = api
        .post_json(
            "/v1/refunds",
            json!({"payment": id_of(&authorized), "amount": 100.0}),
        )
        .await;
    assert_eq!(refund.expect_status(201)["amount"], 100);

    let pending = api.new_payment().await;
    let paid = api
        .post_json(
            &format!("/v1/test_helpers/payments/{}/pay", id_of(&pending)),
            json!({"card": "4242424242424242", "expMonth": 12.0, "expYear": 2099.0}),
        )
        .await;
    let paid = paid.expect_status(200);
    assert_eq!(paid["paymentMethod"]["expMonth"], 12);
    assert_eq!(paid["paymentMethod"]["expYear"], 2099);
    let pending = api.new_payment().await;
    api.post_json(
        &format!("/v1/test_helpers/payments/{}/pay", id_of(&pending)),
        json!({"card": "4242424242424242", "expMonth": 12.5}),
    )
    .await
    .expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("expMonth"),
    );
    server.stop().await;
}
