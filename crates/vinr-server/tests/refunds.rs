//! Refunds (SPEC §5): full, partial and default-amount refunds bounded by `amountCaptured`;
//! only `completed` payments; asynchronous settlement by the refunds worker (`succeeded`, or
//! `failed` with `declined` for the 5126 card, freeing the amount again); events; lists with
//! filters and pagination; bad input, isolation, scopes and idempotency; and the sum bound
//! under 50 concurrent requests.
//!
//! The server's own refunds worker also runs (every ~200 ms), so a refund read after its
//! creation may already be final: the tests assert outcomes, never how many refunds one step
//! finished, and drive the worker by hand only to finish sooner.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::race::all_at_once;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_domain::Mode;
use vinr_server::workers::refunds;

const MISSING_PAYMENT: &str = "pay_000000000000000000000000";
const MISSING_REFUND: &str = "re_000000000000000000000000";
/// How long a refund may stay `pending` while the worker is driven.
const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// A refund body for `payment_id` with `extra` merged in.
fn refund_body(payment_id: &str, extra: Value) -> Value {
    let mut body = json!({ "payment": payment_id });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

async fn post_refund(api: &Api, body: Value) -> Reply {
    api.post_json("/v1/refunds", body).await
}

/// A refund of `payment_id` (`amount` or, with `None`, the default), expecting 201.
async fn refund(api: &Api, payment_id: &str, amount: Option<i64>) -> Value {
    let extra = amount.map_or_else(|| json!({}), |amount| json!({ "amount": amount }));
    post_refund(api, refund_body(payment_id, extra))
        .await
        .expect_status(201)
        .clone()
}

async fn get_refund(api: &Api, refund_id: &str) -> Value {
    api.get(&format!("/v1/refunds/{refund_id}"))
        .await
        .expect_status(200)
        .clone()
}

/// The refunds of `payment_id`, newest first.
async fn refunds_of(api: &Api, payment_id: &str) -> Vec<Value> {
    api.list_all(&format!("/v1/refunds?payment={payment_id}"))
        .await
}

async fn amount_refunded(api: &Api, payment_id: &str) -> i64 {
    api.payment(payment_id).await["amountRefunded"]
        .as_i64()
        .expect("an integer amountRefunded")
}

/// A completed 1000 EUR payment paid with `card`.
async fn completed_with(api: &Api, card: &str) -> Value {
    let id = id_of(&api.new_payment().await);
    let paid = api.pay(&id, card).await;
    let paid = paid.expect_status(200);
    assert_eq!(paid["status"], "completed");
    paid.clone()
}

async fn run_worker(server: &TestServer) {
    refunds::step(server.app()).await.expect("a refunds step");
}

/// Drives the refunds worker until no refund of the account is `pending` (at most
/// [`FINISH_WITHIN`]); answers every refund, newest first.
async fn finish_all(server: &TestServer, api: &Api) -> Vec<Value> {
    let deadline = Instant::now() + FINISH_WITHIN;
    loop {
        run_worker(server).await;
        let all = api.list_all("/v1/refunds").await;
        if all.iter().all(|refund| refund["status"] != "pending") {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "refunds still pending after {FINISH_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The refund `refund_id` once final, read through `GET /v1/refunds/:id`.
async fn finished(server: &TestServer, api: &Api, refund_id: &str) -> Value {
    finish_all(server, api).await;
    get_refund(api, refund_id).await
}

/// Everything the key can see: payments, events and refunds.
async fn everything(api: &Api) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let (payments, events) = api.state().await;
    (payments, events, api.list_all("/v1/refunds").await)
}

#[track_caller]
fn assert_same(
    before: &(Vec<Value>, Vec<Value>, Vec<Value>),
    after: &(Vec<Value>, Vec<Value>, Vec<Value>),
    what: &str,
) {
    assert_eq!(before.0, after.0, "{what}: the payments changed");
    assert_eq!(before.1, after.1, "{what}: the events changed");
    assert_eq!(before.2, after.2, "{what}: the refunds changed");
}

/// 422 `amount_too_large` names `amount`, also when the request left it to the default.
#[track_caller]
fn expect_too_large(reply: &Reply) {
    reply.expect_error(
        422,
        "invalid_request_error",
        "amount_too_large",
        Some("amount"),
    );
}

/// 422 `payment_state_invalid` names `payment`, the field whose object is in the wrong state.
#[track_caller]
fn expect_state_invalid(reply: &Reply) {
    reply.expect_error(
        422,
        "invalid_request_error",
        "payment_state_invalid",
        Some("payment"),
    );
}

#[track_caller]
fn expect_missing(reply: &Reply, param: &str) {
    reply.expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some(param),
    );
}

#[track_caller]
fn expect_forbidden(reply: &Reply) {
    reply.expect_error(403, "permission_error", "insufficient_permissions", None);
}

fn ids(objects: &[Value]) -> Vec<String> {
    objects.iter().map(id_of).collect()
}

fn page_ids(page: &Value) -> Vec<String> {
    ids(page["data"].as_array().expect("a data array"))
}

/// The refund as answered while pending and as read once final differ only in `status` and
/// `failureReason`.
#[track_caller]
fn assert_final_of(pending: &Value, last: &Value, status: &str, failure_reason: Value) {
    assert_eq!(last["status"], status, "{last}");
    assert_eq!(last["failureReason"], failure_reason, "{last}");
    let mut expected = pending.clone();
    expected["status"] = json!(status);
    expected["failureReason"] = failure_reason;
    assert_eq!(last, &expected, "only status and failureReason change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_refund_answers_the_whole_refund_and_succeeds() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.completed_payment().await;
    let payment_id = id_of(&payment);
    assert_eq!(payment["amountRefunded"], 0);

    let created = post_refund(
        &api,
        refund_body(
            &payment_id,
            json!({"amount": 1000, "reason": "requested_by_customer", "metadata": {"order": "42"}}),
        ),
    )
    .await;
    let created = created.expect_status(201).clone();
    let id = id_of(&created);
    assert!(id.starts_with("re_"), "{id}");
    assert_eq!(created["object"], "refund");
    assert_eq!(created["payment"], payment_id.as_str());
    assert_eq!(created["amount"], 1000);
    assert_eq!(created["currency"], "EUR");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["reason"], "requested_by_customer");
    assert_eq!(created["metadata"], json!({"order": "42"}));
    assert_eq!(created["failureReason"], Value::Null);
    assert!(
        created["created_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{created}"
    );
    assert_eq!(created["livemode"], false);

    // Pending counts at once; the payment stays completed.
    let after = api.payment(&payment_id).await;
    assert_eq!(after["amountRefunded"], 1000);
    assert_eq!(after["status"], "completed");
    assert_eq!(after["amountCaptured"], 1000);

    let read = get_refund(&api, &id).await;
    assert!(
        read == created || read["status"] == "succeeded",
        "GET answers the refund: {read}"
    );
    let last = finished(&server, &api, &id).await;
    assert_final_of(&created, &last, "succeeded", Value::Null);
    assert_eq!(amount_refunded(&api, &payment_id).await, 1000);
    assert_eq!(refunds_of(&api, &payment_id).await, vec![last]);

    // Nothing remains: with or without an amount.
    let before = everything(&api).await;
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 1}))).await);
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({}))).await);
    assert_same(
        &before,
        &everything(&api).await,
        "refunds beyond the captured amount",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_sum_exactly_to_the_captured_amount() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&api.completed_payment().await);
    let mut refunded = 0;
    for amount in [100, 250, 649, 1] {
        let created = refund(&api, &payment_id, Some(amount)).await;
        assert_eq!(created["amount"], amount);
        assert_eq!(created["status"], "pending");
        assert_eq!(created["reason"], Value::Null);
        assert_eq!(created["metadata"], json!({}));
        refunded += amount;
        assert_eq!(amount_refunded(&api, &payment_id).await, refunded);
    }
    assert_eq!(refunded, 1000);

    let before = everything(&api).await;
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 1}))).await);
    let after = everything(&api).await;
    // The worker may have finished some refunds between the reads: compare the rest.
    assert_eq!(before.0, after.0, "the payment changed");
    assert_eq!(ids(&before.2), ids(&after.2), "a refund was written");

    let finished_refunds = finish_all(&server, &api).await;
    assert_eq!(finished_refunds.len(), 4);
    assert!(finished_refunds.iter().all(|r| r["status"] == "succeeded"));
    assert_eq!(amount_refunded(&api, &payment_id).await, 1000);
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 1}))).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omitted_amount_refunds_what_remains() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&api.completed_payment().await);
    refund(&api, &payment_id, Some(250)).await;
    let rest = refund(&api, &payment_id, None).await;
    assert_eq!(rest["amount"], 750);
    assert_eq!(amount_refunded(&api, &payment_id).await, 1000);

    let before = everything(&api).await;
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({}))).await);
    assert_eq!(ids(&before.2), ids(&api.list_all("/v1/refunds").await));
    assert_eq!(amount_refunded(&api, &payment_id).await, 1000);

    // A form body, with the whole remainder by default.
    let other = id_of(&api.completed_payment().await);
    let created = api
        .post_form(
            "/v1/refunds",
            &format!("payment={other}&reason=duplicate&metadata[order]=7"),
        )
        .await;
    let created = created.expect_status(201);
    assert_eq!(created["amount"], 1000);
    assert_eq!(created["reason"], "duplicate");
    assert_eq!(created["metadata"], json!({"order": "7"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_completed_payments_can_be_refunded() {
    let server = TestServer::start().await;
    let api = server.api();
    // Expired first: the sweep would expire any other unfinished payment too.
    let expired = id_of(&api.new_payment().await);
    server.clock.advance_ms(61 * 60 * 1000);
    vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry step");
    assert_eq!(api.payment(&expired).await["status"], "expired");
    let pending = id_of(&api.new_payment().await);
    let challenged = id_of(&api.new_payment().await);
    api.pay(&challenged, CARD_3DS).await.expect_status(200);
    let authorized = id_of(&api.authorized_payment().await);
    let failed = id_of(&api.new_payment().await);
    api.pay(&failed, CARD_DECLINED).await.expect_status(200);
    let cancelled = id_of(&api.new_payment().await);
    api.cancel(&cancelled).await.expect_status(200);

    let before = everything(&api).await;
    for id in [
        &pending,
        &challenged,
        &authorized,
        &failed,
        &cancelled,
        &expired,
    ] {
        for extra in [json!({}), json!({"amount": 100})] {
            let reply = post_refund(&api, refund_body(id, extra.clone())).await;
            assert_eq!(reply.status, 422, "{id} {extra}: {}", reply.text);
            expect_state_invalid(&reply);
        }
    }
    let after = everything(&api).await;
    assert_same(
        &before,
        &after,
        "refunds of payments that are not completed",
    );
    assert!(after.2.is_empty(), "no refund exists");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partially_captured_payment_is_bounded_by_the_captured_amount() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&api.authorized_payment().await);
    let captured = api.capture(&payment_id, json!({"amount": 600})).await;
    assert_eq!(captured.expect_status(200)["amountCaptured"], 600);

    let before = everything(&api).await;
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 601}))).await);
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 1000}))).await);
    assert_same(&before, &everything(&api).await, "refunds beyond 600");

    let all = refund(&api, &payment_id, None).await;
    assert_eq!(
        all["amount"], 600,
        "the default is amountCaptured, not amount"
    );
    let payment = api.payment(&payment_id).await;
    assert_eq!(payment["amountRefunded"], 600);
    assert_eq!(payment["amount"], 1000);
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 1}))).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_refund_fails_and_frees_its_amount() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&completed_with(&api, CARD_REFUNDS_FAIL).await);

    let first = refund(&api, &payment_id, Some(400)).await;
    assert_eq!(first["status"], "pending");
    let id = id_of(&first);
    // Read the payment before the refund: if the refund is still pending now, it was then.
    let refunded_then = amount_refunded(&api, &payment_id).await;
    if get_refund(&api, &id).await["status"] == "pending" {
        assert_eq!(refunded_then, 400, "a pending refund counts");
    }

    let failed = finished(&server, &api, &id).await;
    assert_final_of(&first, &failed, "failed", json!("declined"));
    assert_eq!(
        amount_refunded(&api, &payment_id).await,
        0,
        "a failed refund frees its amount"
    );
    let payment = api.payment(&payment_id).await;
    assert_eq!(payment["status"], "completed");

    // The whole amount is refundable again, and that refund fails too.
    let again = refund(&api, &payment_id, None).await;
    assert_eq!(again["amount"], 1000);
    assert_eq!(again["status"], "pending");
    let again = finished(&server, &api, &id_of(&again)).await;
    assert_eq!(again["status"], "failed");
    assert_eq!(again["failureReason"], "declined");
    assert_eq!(amount_refunded(&api, &payment_id).await, 0);
    assert_eq!(refunds_of(&api, &payment_id).await, vec![again, failed]);
    server.stop().await;
}

/// One bad refund request and the 400 it must get.
struct Bad {
    what: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    code: &'static str,
    param: Option<&'static str>,
}

fn bad_json(
    what: &'static str,
    body: Value,
    code: &'static str,
    param: Option<&'static str>,
) -> Bad {
    Bad {
        what,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        code,
        param,
    }
}

fn bad_raw(
    what: &'static str,
    content_type: &'static str,
    body: String,
    code: &'static str,
    param: Option<&'static str>,
) -> Bad {
    Bad {
        what,
        content_type,
        body: body.into_bytes(),
        code,
        param,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    let p = id_of(&api.completed_payment().await);
    // One finished refund, so "nothing changed" compares against a non-empty state.
    refund(&api, &p, Some(100)).await;
    finish_all(&server, &api).await;

    let invalid = "parameter_invalid";
    let amount = Some("amount");
    let with = |extra: Value| refund_body(&p, extra);
    let cases = vec![
        bad_json(
            "no payment",
            json!({"amount": 100}),
            "parameter_missing",
            Some("payment"),
        ),
        bad_json(
            "payment as a number",
            json!({"payment": 7}),
            invalid,
            Some("payment"),
        ),
        bad_json("amount 0", with(json!({"amount": 0})), invalid, amount),
        bad_json("amount -1", with(json!({"amount": -1})), invalid, amount),
        bad_json(
            "amount -300",
            with(json!({"amount": -300})),
            invalid,
            amount,
        ),
        bad_json(
            "amount above 99 999 999",
            with(json!({"amount": 100_000_000})),
            invalid,
            amount,
        ),
        bad_json(
            "amount as a string",
            with(json!({"amount": "300"})),
            invalid,
            amount,
        ),
        bad_json(
            "fractional amount",
            with(json!({"amount": 10.5})),
            invalid,
            amount,
        ),
        bad_json(
            "amount as a boolean",
            with(json!({"amount": true})),
            invalid,
            amount,
        ),
        bad_raw(
            "amount beyond u64",
            "application/json",
            format!(r#"{{"payment": "{p}", "amount": 99999999999999999999999}}"#),
            invalid,
            amount,
        ),
        bad_json(
            "unknown reason",
            with(json!({"reason": "because"})),
            invalid,
            Some("reason"),
        ),
        bad_json(
            "reason in capitals",
            with(json!({"reason": "DUPLICATE"})),
            invalid,
            Some("reason"),
        ),
        bad_json(
            "reason as a number",
            with(json!({"reason": 1})),
            invalid,
            Some("reason"),
        ),
        bad_json(
            "metadata as a string",
            with(json!({"metadata": "x"})),
            invalid,
            Some("metadata"),
        ),
        bad_json(
            "metadata value as a number",
            with(json!({"metadata": {"k": 1}})),
            invalid,
            Some("metadata.k"),
        ),
        bad_json(
            "metadata key of 41 characters",
            with(json!({"metadata": {"k".repeat(41): "v"}})),
            invalid,
            Some("metadata"),
        ),
        bad_json(
            "unknown field",
            with(json!({"colour": "blue"})),
            "parameter_unknown",
            Some("colour"),
        ),
        bad_json(
            "currency is not a refund field",
            with(json!({"currency": "EUR"})),
            "parameter_unknown",
            Some("currency"),
        ),
        bad_raw(
            "invalid JSON",
            "application/json",
            format!(r#"{{"payment": "{p}", "#),
            "body_invalid",
            None,
        ),
        bad_raw(
            "JSON array",
            "application/json",
            format!(r#"["{p}", 100]"#),
            "body_invalid",
            None,
        ),
        bad_raw(
            "form amount that is not a number",
            "application/x-www-form-urlencoded",
            format!("payment={p}&amount=ten"),
            invalid,
            amount,
        ),
        bad_raw(
            "unknown form field",
            "application/x-www-form-urlencoded",
            format!("payment={p}&colour=blue"),
            "parameter_unknown",
            Some("colour"),
        ),
    ];
    let before = everything(&api).await;
    for case in cases {
        let reply = api
            .call(Method::POST, "/v1/refunds")
            .raw(Some(case.content_type), &case.body)
            .send()
            .await;
        assert_eq!(reply.status, 400, "{}: {}", case.what, reply.text);
        assert_eq!(
            reply.json["error"]["param"].as_str(),
            case.param,
            "{}: {}",
            case.what,
            reply.text
        );
        reply.expect_error(400, "invalid_request_error", case.code, case.param);
        assert_same(&before, &everything(&api).await, case.what);
    }
    let reply = api
        .call(Method::POST, "/v1/refunds")
        .json(with(json!({"amount": 100})))
        .idempotency_key(&"k".repeat(256))
        .send()
        .await;
    reply.expect_error(
        400,
        "invalid_request_error",
        invalid,
        Some("Idempotency-Key"),
    );
    assert_same(
        &before,
        &everything(&api).await,
        "Idempotency-Key of 256 characters",
    );
    assert_eq!(amount_refunded(&api, &p).await, 100);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_accounts_and_modes_see_nothing() {
    let server = TestServer::start().await;
    let a = server.api();
    let (_, b) = server.new_account("Other shop").await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let payment_id = id_of(&a.completed_payment().await);
    let refund_id = id_of(&refund(&a, &payment_id, Some(300)).await);
    finish_all(&server, &a).await;
    let before = everything(&a).await;

    for outsider in [&b, &live] {
        for extra in [json!({}), json!({"amount": 100})] {
            expect_missing(
                &post_refund(outsider, refund_body(&payment_id, extra)).await,
                "payment",
            );
        }
        expect_missing(
            &outsider.get(&format!("/v1/refunds/{refund_id}")).await,
            "id",
        );
        assert!(outsider.list_all("/v1/refunds").await.is_empty());
        let filtered = outsider
            .get(&format!("/v1/refunds?payment={payment_id}"))
            .await;
        if filtered.status == 200 {
            assert_eq!(filtered.json["data"], json!([]), "{}", filtered.text);
        } else {
            assert!(matches!(filtered.status, 400 | 404), "{}", filtered.text);
        }
        let cursor = outsider
            .get(&format!("/v1/refunds?starting_after={refund_id}"))
            .await;
        assert_eq!(
            cursor.status, 400,
            "A's refund is no cursor: {}",
            cursor.text
        );
    }
    expect_missing(
        &post_refund(&a, refund_body(MISSING_PAYMENT, json!({}))).await,
        "payment",
    );
    expect_missing(&a.get(&format!("/v1/refunds/{MISSING_REFUND}")).await, "id");
    expect_missing(&a.get("/v1/refunds/re_nope").await, "id");
    assert_same(&before, &everything(&a).await, "outsiders and unknown ids");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_payment_and_pages_newest_first() {
    let server = TestServer::start().await;
    let api = server.api();
    let start_s = server.now_s();
    let first = id_of(&api.completed_payment().await);
    let second = id_of(&api.completed_payment().await);
    let mut created = Vec::new();
    for amount in 1..=5 {
        created.push(id_of(&refund(&api, &first, Some(amount)).await));
    }
    server.clock.advance_ms(10_000);
    for amount in [6, 7] {
        created.push(id_of(&refund(&api, &second, Some(amount)).await));
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let all = api.get("/v1/refunds").await;
    let all = all.expect_status(200);
    assert_eq!(all["object"], "list");
    assert_eq!(all["has_more"], false);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(page_ids(all), newest_first);
    assert!(all["data"][0]["object"] == "refund");

    let of_first: Vec<String> = newest_first[2..].to_vec();
    assert_eq!(ids(&refunds_of(&api, &first).await), of_first);
    assert_eq!(
        ids(&refunds_of(&api, &second).await),
        newest_first[..2].to_vec()
    );
    assert!(refunds_of(&api, &id_of(&api.completed_payment().await))
        .await
        .is_empty());

    // Forwards three at a time over one payment's refunds, then backwards.
    let mut pages = Vec::new();
    let mut path = format!("/v1/refunds?payment={first}&limit=3");
    loop {
        let page = api.get(&path).await.expect_status(200).clone();
        pages.push(page_ids(&page));
        let Some(cursor) = page["next_cursor"]
            .as_str()
            .filter(|_| page["has_more"] == true)
        else {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        };
        assert_eq!(Some(cursor), page["data"][2]["id"].as_str());
        path = format!("/v1/refunds?payment={first}&limit=3&starting_after={cursor}");
    }
    assert_eq!(pages, vec![of_first[..3].to_vec(), of_first[3..].to_vec()]);
    let back = api
        .get(&format!(
            "/v1/refunds?payment={first}&limit=2&ending_before={}",
            of_first[3]
        ))
        .await;
    assert_eq!(page_ids(back.expect_status(200)), of_first[1..3].to_vec());

    // Creation time.
    let since = api
        .get(&format!("/v1/refunds?created[gte]={}", start_s + 10))
        .await;
    assert_eq!(
        page_ids(since.expect_status(200)),
        newest_first[..2].to_vec()
    );
    let until = api
        .get(&format!("/v1/refunds?created[lt]={}", start_s + 10))
        .await;
    assert_eq!(page_ids(until.expect_status(200)), of_first);

    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("created[gte]=yesterday", "created[gte]"),
    ] {
        let reply = api.get(&format!("/v1/refunds?{query}")).await;
        reply.expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some(param),
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_write_created_then_final_events() {
    let server = TestServer::start().await;
    let api = server.api();
    let ok_payment = id_of(&api.completed_payment().await);
    let fail_payment = id_of(&completed_with(&api, CARD_REFUNDS_FAIL).await);
    let ok = refund(&api, &ok_payment, Some(300)).await;
    let ko = refund(&api, &fail_payment, Some(500)).await;
    let ok_final = finished(&server, &api, &id_of(&ok)).await;
    let ko_final = finished(&server, &api, &id_of(&ko)).await;

    for (created, last, kind) in [
        (&ok, &ok_final, "refund.succeeded"),
        (&ko, &ko_final, "refund.failed"),
    ] {
        let events = api.events_of(&id_of(created)).await;
        let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(types, [kind, "refund.created"], "newest first");
        assert_eq!(&events[1]["data"]["object"], created, "the pending refund");
        assert_eq!(&events[0]["data"]["object"], last, "the final refund");
        for event in &events {
            assert!(id_of(event).starts_with("evt_"));
            assert_eq!(event["object"], "event");
            assert_eq!(event["livemode"], false);
            let one = api.get(&format!("/v1/events/{}", id_of(event))).await;
            assert_eq!(one.expect_status(200), event);
        }
    }

    for (kind, expected) in [
        ("refund.created", vec![&ko, &ok]),
        ("refund.succeeded", vec![&ok_final]),
        ("refund.failed", vec![&ko_final]),
    ] {
        let listed = api.list_all(&format!("/v1/events?type={kind}")).await;
        assert!(listed.iter().all(|e| e["type"] == kind), "{kind}");
        let objects: Vec<&Value> = listed.iter().map(|e| &e["data"]["object"]).collect();
        assert_eq!(objects, expected, "{kind}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_and_refuses_another_body() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&api.completed_payment().await);
    let send = |key: &'static str, body: Value| {
        let api = api.clone();
        async move {
            api.call(Method::POST, "/v1/refunds")
                .json(body)
                .idempotency_key(key)
                .send()
                .await
        }
    };
    let body = refund_body(&payment_id, json!({"amount": 300, "reason": "duplicate"}));
    let first = send("refund-1", body.clone()).await;
    first.expect_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    finish_all(&server, &api).await;
    let before = everything(&api).await;

    // The replay is the first answer (pending), even though the refund has since succeeded.
    let retry = send("refund-1", body.clone()).await;
    retry.expect_status(201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text, "byte-identical body");
    let form = api
        .call(Method::POST, "/v1/refunds")
        .form(&format!("payment={payment_id}&amount=300&reason=duplicate"))
        .idempotency_key("refund-1")
        .send()
        .await;
    assert_eq!(
        form.header("idempotent-replayed"),
        Some("true"),
        "{}",
        form.text
    );
    assert_eq!(form.text, first.text);

    for other in [
        refund_body(&payment_id, json!({"amount": 301, "reason": "duplicate"})),
        refund_body(&payment_id, json!({"amount": 300})),
        refund_body(&payment_id, json!({})),
    ] {
        let reply = send("refund-1", other).await;
        reply.expect_error(
            409,
            "idempotency_error",
            "idempotency_key_reused",
            Some("Idempotency-Key"),
        );
    }
    assert_same(&before, &everything(&api).await, "replays and 409s");
    assert_eq!(before.2.len(), 1, "one refund");
    assert_eq!(amount_refunded(&api, &payment_id).await, 300);

    // The key is scoped by path: it is free on /v1/payments.
    let payment = api
        .create_with_key("refund-1", payment_body(500, json!({})))
        .await;
    payment.expect_status(201);
    assert_eq!(payment.header("idempotent-replayed"), None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_keys_need_refund_scopes() {
    let server = TestServer::start().await;
    let api = server.api();
    let account = server.sandbox_account();
    let payment_id = id_of(&api.completed_payment().await);
    let existing = id_of(&refund(&api, &payment_id, Some(100)).await);
    finish_all(&server, &api).await;
    let before = everything(&api).await;

    let (_, reader) = server
        .new_key(&account, Mode::Test, &["refunds:read"])
        .await;
    assert!(reader.key.starts_with("rk_test_"), "{}", reader.key);
    assert_eq!(get_refund(&reader, &existing).await, before.2[0]);
    assert_eq!(reader.list_all("/v1/refunds").await, before.2);
    expect_forbidden(&post_refund(&reader, refund_body(&payment_id, json!({"amount": 1}))).await);

    let (_, payments_only) = server
        .new_key(&account, Mode::Test, &["payments:write", "payments:read"])
        .await;
    expect_forbidden(
        &post_refund(
            &payments_only,
            refund_body(&payment_id, json!({"amount": 1})),
        )
        .await,
    );
    expect_forbidden(&payments_only.get("/v1/refunds").await);
    expect_forbidden(&payments_only.get(&format!("/v1/refunds/{existing}")).await);
    assert_same(&before, &everything(&api).await, "403s");

    // `refunds:write` creates, and implies `refunds:read`.
    let (_, writer) = server
        .new_key(&account, Mode::Test, &["refunds:write"])
        .await;
    let created = refund(&writer, &payment_id, Some(200)).await;
    assert_eq!(get_refund(&writer, &id_of(&created)).await["amount"], 200);
    assert_eq!(writer.list_all("/v1/refunds").await.len(), 2);
    assert_eq!(amount_refunded(&api, &payment_id).await, 300);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_partial_refunds_never_exceed_the_captured_amount() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&api.completed_payment().await);
    let body = refund_body(&payment_id, json!({"amount": 30}));
    let replies = all_at_once(std::slice::from_ref(&api), 50, |_, api| {
        let body = body.clone();
        async move { post_refund(&api, body).await }
    })
    .await;

    let accepted: Vec<&Value> = replies
        .iter()
        .filter(|reply| reply.status == 201)
        .map(|reply| &reply.json)
        .collect();
    for reply in replies.iter().filter(|reply| reply.status != 201) {
        expect_too_large(reply);
    }
    let sum: i64 = accepted.iter().filter_map(|r| r["amount"].as_i64()).sum();
    assert!(sum <= 1000, "accepted {sum}");
    assert_eq!(accepted.len(), 33, "every refund that fits is accepted");
    assert_eq!(sum, 990);
    assert_eq!(amount_refunded(&api, &payment_id).await, sum);

    let accepted_ids: BTreeSet<String> = accepted.iter().map(|r| id_of(r)).collect();
    let all = finish_all(&server, &api).await;
    assert_eq!(ids(&all).into_iter().collect::<BTreeSet<_>>(), accepted_ids);
    assert!(
        all.iter().all(|r| r["status"] == "succeeded"),
        "every accepted refund succeeded"
    );
    assert_eq!(amount_refunded(&api, &payment_id).await, 990);
    let created = api.list_all("/v1/events?type=refund.created").await;
    assert_eq!(created.len(), 33, "one refund.created each");

    // Exactly the remaining 10 is still refundable.
    expect_too_large(&post_refund(&api, refund_body(&payment_id, json!({"amount": 11}))).await);
    assert_eq!(refund(&api, &payment_id, None).await["amount"], 10);
    server.stop().await;
}
