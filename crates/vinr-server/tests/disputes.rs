//! Disputes (SPEC §11), black-box over HTTP on the configured backend: the sandbox triggers
//! (the `4000 0000 0000 0259` card, the test helper), every transition and every refused one
//! (422 `dispute_state_invalid`, nothing changed), the sandbox outcomes on submit, the resolve
//! helper, the evidence deadline on the account's clock and on real time, lists, scopes,
//! idempotency, the money (balance transactions, the fee, `amountDisputed`, refunds limited by
//! disputes, settlements' `disputes`), webhooks, and refunds racing a dispute (two nodes on
//! PostgreSQL). The ledger is checked after every test.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::database::{execute, fresh_postgres_database, try_execute};
use common::ledger::{assert_ledger_consistent, assert_settlements_consistent};
use common::receiver::{verify_with_library, Received, Receiver};
use common::*;
use serde_json::{json, Value};
use vinr_domain::Mode;
use vinr_server::config::PricingConfig;

const DAY_S: i64 = 24 * 60 * 60;

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

fn unix_s(timestamp: &Value) -> i64 {
    let text = timestamp.as_str().unwrap_or_else(|| panic!("{timestamp}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .unix_timestamp()
}

async fn open(api: &Api, payment: &str, body: Value) -> Reply {
    api.post_json(
        &format!("/v1/test_helpers/payments/{payment}/dispute"),
        body,
    )
    .await
}

async fn opened(api: &Api, payment: &str, body: Value) -> Value {
    let reply = open(api, payment, body).await;
    let dispute = reply.expect_status(201).clone();
    assert_eq!(dispute["object"], "dispute");
    assert_eq!(dispute["status"], "needs_response");
    dispute
}

async fn dispute(api: &Api, id: &str) -> Value {
    api.get(&format!("/v1/disputes/{id}"))
        .await
        .expect_status(200)
        .clone()
}

async fn update(api: &Api, id: &str, body: Value) -> Reply {
    api.post_json(&format!("/v1/disputes/{id}"), body).await
}

async fn close(api: &Api, id: &str) -> Reply {
    api.post_json(&format!("/v1/disputes/{id}/close"), json!({}))
        .await
}

async fn resolve(api: &Api, id: &str, outcome: &str) -> Reply {
    api.post_json(
        &format!("/v1/test_helpers/disputes/{id}/resolve"),
        json!({ "outcome": outcome }),
    )
    .await
}

/// The balance transactions of `source`, oldest first.
async fn booked(api: &Api, source: &str) -> Vec<Value> {
    let mut all = api
        .list_all(&format!("/v1/balance_transactions?source={source}"))
        .await;
    all.reverse();
    all
}

async fn assert_balance_is_the_sum_of_net(api: &Api) {
    let net: i64 = api
        .list_all("/v1/balance_transactions")
        .await
        .iter()
        .map(|b| int(&b["net"]))
        .sum();
    let balance = api.get("/v1/balance").await;
    let balance = balance.expect_status(200);
    let on_balance: i64 = ["available", "pending"]
        .iter()
        .flat_map(|side| balance[*side].as_array().expect("a list").clone())
        .map(|amount| int(&amount["amount"]))
        .sum();
    assert_eq!(net, on_balance, "the balance is the sum of net");
}

/// What every test ends with: the ledger and the settlements add up, then the server stops.
async fn finish(server: TestServer) {
    assert_ledger_consistent(server.database_url()).await;
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

/// A refused operation: 422 `dispute_state_invalid`, and the dispute is as it was.
async fn refused(api: &Api, reply: Reply, before: &Value) {
    reply.expect_error(
        422,
        "invalid_request_error",
        "dispute_state_invalid",
        Some("id"),
    );
    assert_eq!(
        &dispute(api, &id_of(before)).await,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn the_disputed_test_card_opens_a_dispute_for_the_whole_amount() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let paid = api.pay(&id_of(&payment), CARD_DISPUTED).await;
    let paid = paid.expect_status(200);
    assert_eq!(paid["status"], "completed");
    assert_eq!(paid["amountDisputed"], 1000);
    let listed = api
        .list_all(&format!("/v1/disputes?payment={}", id_of(&payment)))
        .await;
    assert_eq!(listed.len(), 1);
    let opened = &listed[0];
    assert!(id_of(opened).starts_with("dp_"));
    assert_eq!(opened["payment"], id_of(&payment).as_str());
    assert_eq!(opened["amount"], 1000);
    assert_eq!(opened["currency"], "EUR");
    assert_eq!(opened["reason"], "fraudulent");
    assert_eq!(opened["status"], "needs_response");
    assert_eq!(opened["fee"], 1500);
    assert_eq!(opened["livemode"], false);
    assert_eq!(opened["closedAt"], Value::Null);
    assert_eq!(
        unix_s(&opened["evidenceDueBy"]),
        unix_s(&opened["created_at"]) + 7 * DAY_S
    );
    // Booked: −amount with the fee.
    let lines = booked(&api, &id_of(opened)).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "dispute");
    assert_eq!(
        (
            int(&lines[0]["amount"]),
            int(&lines[0]["fee"]),
            int(&lines[0]["net"])
        ),
        (-1000, 1500, -2500)
    );
    // Nothing is left to refund.
    api.post_json("/v1/refunds", json!({"payment": id_of(&payment)}))
        .await
        .expect_error(
            422,
            "invalid_request_error",
            "amount_too_large",
            Some("amount"),
        );
    let types: Vec<Value> = api
        .events()
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types[..2],
        [json!("dispute.created"), json!("payment.completed")]
    );

    // With manual capture the dispute opens when the payment completes: at capture.
    let manual = api
        .create_payment(payment_body(800, json!({"capture": false})))
        .await;
    let authorized = api.pay(&id_of(&manual), CARD_DISPUTED).await;
    assert_eq!(authorized.expect_status(200)["status"], "authorized");
    assert!(api
        .list_all(&format!("/v1/disputes?payment={}", id_of(&manual)))
        .await
        .is_empty());
    let captured = api.capture(&id_of(&manual), json!({"amount": 600})).await;
    assert_eq!(captured.expect_status(200)["amountDisputed"], 600);
    let disputes = api
        .list_all(&format!("/v1/disputes?payment={}", id_of(&manual)))
        .await;
    assert_eq!(disputes.len(), 1);
    assert_eq!(disputes[0]["amount"], 600);
    // Another approved card is not disputed.
    assert_eq!(api.completed_payment().await["amountDisputed"], 0);
    assert_balance_is_the_sum_of_net(&api).await;
    finish(server).await;
}

#[tokio::test]
async fn every_transition_and_every_refused_one() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = id_of(&api.completed_payment().await);

    // needs_response → (evidence, metadata) → needs_response → submit → under_review → won.
    let first = opened(
        &api,
        &payment,
        json!({"amount": 400, "reason": "duplicate"}),
    )
    .await;
    let id = id_of(&first);
    assert_eq!(
        (first["amount"].clone(), first["reason"].clone()),
        (json!(400), json!("duplicate"))
    );
    assert_eq!(api.payment(&payment).await["amountDisputed"], 400);
    let updated = update(
        &api,
        &id,
        json!({"evidence": {"customerName": "Ada", "productDescription": "A lamp\nwith a shade"},
               "metadata": {"case": "7"}}),
    )
    .await;
    let updated = updated.expect_status(200).clone();
    assert_eq!(updated["status"], "needs_response");
    assert_eq!(updated["evidence"]["customerName"], "Ada");
    assert_eq!(updated["metadata"]["case"], "7");
    // Evidence fields left out stay; given ones replace.
    let updated = update(
        &api,
        &id,
        json!({"evidence": {"shippingTrackingNumber": "TRK1"}}),
    )
    .await;
    let updated = updated.expect_status(200).clone();
    assert_eq!(updated["evidence"]["customerName"], "Ada");
    assert_eq!(updated["evidence"]["shippingTrackingNumber"], "TRK1");
    // Resolve needs a dispute under review.
    refused(&api, resolve(&api, &id, "won").await, &updated).await;
    let submitted = update(
        &api,
        &id,
        json!({"evidence": {"uncategorizedText": "receipt attached"}, "submit": true}),
    )
    .await;
    let submitted = submitted.expect_status(200).clone();
    assert_eq!(submitted["status"], "under_review");
    assert_eq!(submitted["closedAt"], Value::Null);
    // Under review: no update, no second submit, no close.
    refused(
        &api,
        update(&api, &id, json!({"metadata": {"a": "b"}})).await,
        &submitted,
    )
    .await;
    refused(
        &api,
        update(&api, &id, json!({"submit": true})).await,
        &submitted,
    )
    .await;
    refused(&api, close(&api, &id).await, &submitted).await;
    let won = resolve(&api, &id, "won").await;
    let won = won.expect_status(200).clone();
    assert_eq!(won["status"], "won");
    assert!(won["closedAt"].is_string());
    // A won dispute gives its amount back (not the fee).
    assert_eq!(api.payment(&payment).await["amountDisputed"], 0);
    let lines = booked(&api, &id).await;
    let kinds: Vec<&str> = lines
        .iter()
        .map(|b| b["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["dispute", "dispute_reversal"]);
    assert_eq!((int(&lines[1]["amount"]), int(&lines[1]["fee"])), (400, 0));
    // Final: nothing more.
    for reply in [
        resolve(&api, &id, "lost").await,
        resolve(&api, &id, "won").await,
        close(&api, &id).await,
        update(&api, &id, json!({"submit": true})).await,
    ] {
        refused(&api, reply, &won).await;
    }
    let kinds: Vec<Value> = api
        .events_of(&id)
        .await
        .iter()
        .rev()
        .map(|e| json!([e["type"], e["data"]["object"]["status"]]))
        .collect();
    assert_eq!(
        kinds,
        [
            json!(["dispute.created", "needs_response"]),
            json!(["dispute.updated", "needs_response"]),
            json!(["dispute.updated", "needs_response"]),
            json!(["dispute.updated", "under_review"]),
            json!(["dispute.closed", "won"]),
        ]
    );

    // needs_response → close (accept) → lost; the amount stays disputed.
    let second = opened(&api, &payment, json!({"amount": 300})).await;
    assert_eq!(second["reason"], "general");
    let lost = close(&api, &id_of(&second)).await;
    let lost = lost.expect_status(200).clone();
    assert_eq!(lost["status"], "lost");
    assert!(lost["closedAt"].is_string());
    assert_eq!(api.payment(&payment).await["amountDisputed"], 300);
    refused(&api, close(&api, &id_of(&second)).await, &lost).await;
    refused(&api, resolve(&api, &id_of(&second), "won").await, &lost).await;
    assert_eq!(booked(&api, &id_of(&second)).await.len(), 1);

    // under_review → lost by the resolve helper.
    let third = opened(&api, &payment, json!({"amount": 100})).await;
    update(&api, &id_of(&third), json!({"submit": true}))
        .await
        .expect_status(200);
    let lost = resolve(&api, &id_of(&third), "lost").await;
    assert_eq!(lost.expect_status(200)["status"], "lost");

    // Sandbox outcomes on submit: decided at once, with both events.
    let winning = opened(&api, &payment, json!({"amount": 50})).await;
    let reply = update(
        &api,
        &id_of(&winning),
        json!({"evidence": {"uncategorizedText": "here: winning_evidence"}, "submit": true}),
    )
    .await;
    assert_eq!(reply.expect_status(200)["status"], "won");
    let losing = opened(&api, &payment, json!({"amount": 50})).await;
    let reply = update(
        &api,
        &id_of(&losing),
        json!({"evidence": {"uncategorizedText": "losing_evidence"}, "submit": true}),
    )
    .await;
    assert_eq!(reply.expect_status(200)["status"], "lost");
    let kinds: Vec<Value> = api
        .events_of(&id_of(&losing))
        .await
        .iter()
        .rev()
        .map(|e| json!([e["type"], e["data"]["object"]["status"]]))
        .collect();
    assert_eq!(
        kinds,
        [
            json!(["dispute.created", "needs_response"]),
            json!(["dispute.updated", "under_review"]),
            json!(["dispute.closed", "lost"]),
        ]
    );
    // 300 + 100 + 50 lost, 400 + 50 won.
    assert_eq!(api.payment(&payment).await["amountDisputed"], 450);
    assert_balance_is_the_sum_of_net(&api).await;
    finish(server).await;
}

#[tokio::test]
async fn bad_input_is_refused_with_its_param_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = id_of(&api.completed_payment().await);
    let pending = id_of(&api.new_payment().await);
    let invalid = |reply: Reply, param: &str| {
        reply.expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some(param),
        );
    };
    invalid(open(&api, &payment, json!({"amount": 0})).await, "amount");
    invalid(
        open(&api, &payment, json!({"amount": 100000000})).await,
        "amount",
    );
    invalid(
        open(&api, &payment, json!({"reason": "bored"})).await,
        "reason",
    );
    open(&api, &payment, json!({"amount": 1, "extra": 1}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_unknown",
            Some("extra"),
        );
    open(&api, &payment, json!({"amount": 1001}))
        .await
        .expect_error(
            422,
            "invalid_request_error",
            "amount_too_large",
            Some("amount"),
        );
    open(&api, &pending, json!({})).await.expect_error(
        422,
        "invalid_request_error",
        "payment_state_invalid",
        Some("id"),
    );
    open(&api, "pay_nope", json!({})).await.expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some("id"),
    );
    assert!(api.list_all("/v1/disputes").await.is_empty());

    let id = id_of(&opened(&api, &payment, json!({"amount": 10})).await);
    let before = dispute(&api, &id).await;
    let long = "x".repeat(5001);
    invalid(
        update(&api, &id, json!({"evidence": {"uncategorizedText": long}})).await,
        "evidence.uncategorizedText",
    );
    update(&api, &id, json!({"evidence": {"color": "red"}}))
        .await
        .expect_status(400);
    invalid(
        update(&api, &id, json!({"evidence": {"customerName": "a\u{0}b"}})).await,
        "evidence.customerName",
    );
    invalid(update(&api, &id, json!({"submit": "yes"})).await, "submit");
    assert_eq!(dispute(&api, &id).await, before, "nothing changed");
    // Tab and newline are free text in evidence.
    let reply = update(
        &api,
        &id,
        json!({"evidence": {"uncategorizedText": "a\tb\nc"}}),
    )
    .await;
    reply.expect_status(200);
    let (status, _) = (
        api.get("/v1/disputes/dp_nope").await.status,
        api.get("/v1/disputes?status=open").await,
    );
    assert_eq!(status, 404);
    invalid(api.get("/v1/disputes?status=open").await, "status");
    api.get("/v1/disputes?colour=red").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_unknown",
        Some("colour"),
    );
    for reply in [
        close(&api, "dp_nope").await,
        resolve(&api, "dp_nope", "won").await,
    ] {
        reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    }
    resolve(&api, &id, "maybe").await.expect_status(400);
    finish(server).await;
}

#[tokio::test]
async fn refunds_never_take_disputed_money_and_disputes_never_take_refunded_money() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = id_of(&api.completed_payment().await);
    let refund =
        |amount: i64| api.post_json("/v1/refunds", json!({"payment": payment, "amount": amount}));
    refund(300).await.expect_status(201);
    open(&api, &payment, json!({"amount": 701}))
        .await
        .expect_error(
            422,
            "invalid_request_error",
            "amount_too_large",
            Some("amount"),
        );
    let dispute = opened(&api, &payment, json!({})).await;
    assert_eq!(dispute["amount"], 700, "all that is not refunded");
    refund(1).await.expect_error(
        422,
        "invalid_request_error",
        "amount_too_large",
        Some("amount"),
    );
    update(&api, &id_of(&dispute), json!({"submit": true}))
        .await
        .expect_status(200);
    resolve(&api, &id_of(&dispute), "won")
        .await
        .expect_status(200);
    // Won: the money may be refunded again.
    refund(700).await.expect_status(201);
    server.finish_refunds(&api).await;
    let after = api.payment(&payment).await;
    assert_eq!(
        (
            after["amountRefunded"].clone(),
            after["amountDisputed"].clone()
        ),
        (json!(1000), json!(0))
    );
    assert_balance_is_the_sum_of_net(&api).await;
    finish(server).await;
}

/// The database refuses refunds and disputes past the captured amount by itself (the CHECK on
/// the payment row), whatever a flow might do.
#[tokio::test]
async fn the_database_refuses_more_refunded_and_disputed_than_captured() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = id_of(&api.completed_payment().await);
    api.post_json("/v1/refunds", json!({"payment": payment, "amount": 300}))
        .await
        .expect_status(201);
    opened(&api, &payment, json!({"amount": 500})).await;
    let url = server.database_url().to_owned();
    for sql in [
        format!("UPDATE payments SET amount_disputed = 701 WHERE id = '{payment}'"),
        format!("UPDATE payments SET amount_refunded = 501 WHERE id = '{payment}'"),
        format!("UPDATE payments SET amount_disputed = -1 WHERE id = '{payment}'"),
    ] {
        let refused = try_execute(&url, &sql).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|error| error.to_lowercase().contains("check")),
            "`{sql}`: {refused:?}"
        );
    }
    assert_eq!(
        try_execute(
            &url,
            &format!("UPDATE payments SET amount_disputed = 700 WHERE id = '{payment}'")
        )
        .await,
        Ok(1),
        "up to the captured amount is allowed"
    );
    execute(
        &url,
        &format!("UPDATE payments SET amount_disputed = 500 WHERE id = '{payment}'"),
    )
    .await;
    server.finish_refunds(&api).await;
    finish(server).await;
}

#[tokio::test]
async fn a_missed_deadline_loses_the_dispute_on_the_accounts_clock() {
    let server = TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let payment = id_of(&api.completed_payment().await);
    let waiting = opened(&api, &payment, json!({"amount": 100})).await;
    let answered = opened(&api, &payment, json!({"amount": 100})).await;
    update(&api, &id_of(&answered), json!({"submit": true}))
        .await
        .expect_status(200);
    // Seven days less a second: still open.
    let advance = |seconds: i64| {
        api.post_json(
            "/v1/test_helpers/clock/advance",
            json!({ "seconds": seconds }),
        )
    };
    advance(7 * DAY_S - 1).await.expect_status(200);
    assert_eq!(
        dispute(&api, &id_of(&waiting)).await["status"],
        "needs_response"
    );
    advance(DAY_S + 1).await.expect_status(200);
    let lost = dispute(&api, &id_of(&waiting)).await;
    assert_eq!(lost["status"], "lost");
    assert_eq!(
        lost["closedAt"], lost["evidenceDueBy"],
        "lost when it came due"
    );
    let closed = api.events_of(&id_of(&waiting)).await;
    assert_eq!(closed[0]["type"], "dispute.closed");
    assert_eq!(closed[0]["created_at"], lost["evidenceDueBy"]);
    // One under review waits for the bank.
    assert_eq!(
        dispute(&api, &id_of(&answered)).await["status"],
        "under_review"
    );
    assert_eq!(api.payment(&payment).await["amountDisputed"], 200);

    // On real time (an account whose clock was never moved), the expiry worker does it.
    let (_, other) = server.new_account("Real time").await;
    let paid = id_of(&other.completed_payment().await);
    let late = opened(&other, &paid, json!({})).await;
    vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry pass");
    assert_eq!(
        dispute(&other, &id_of(&late)).await["status"],
        "needs_response"
    );
    server.clock.advance_ms(7 * DAY_S * 1000 + 1000);
    // Past `evidenceDueBy`, before any sweep: no response is taken any more.
    let before = dispute(&other, &id_of(&late)).await;
    let winning = json!({"evidence": {"uncategorizedText": "winning_evidence"}, "submit": true});
    refused(
        &other,
        update(&other, &id_of(&late), winning).await,
        &before,
    )
    .await;
    refused(&other, close(&other, &id_of(&late)).await, &before).await;
    let swept = vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry pass");
    assert_eq!(
        swept.disputes_lost, 1,
        "only the real-time account's dispute"
    );
    assert_eq!(dispute(&other, &id_of(&late)).await["status"], "lost");
    finish(server).await;
}

#[tokio::test]
async fn lists_filter_by_payment_status_and_created_and_page_with_cursors() {
    let server = TestServer::start().await;
    let api = server.api();
    let one = id_of(&api.completed_payment().await);
    let two = id_of(&api.completed_payment().await);
    let mut made = Vec::new();
    for payment in [&one, &two, &one, &two, &one] {
        made.push(id_of(&opened(&api, payment, json!({"amount": 100})).await));
    }
    close(&api, &made[0]).await.expect_status(200);
    let ids = |list: &[Value]| list.iter().map(id_of).collect::<Vec<_>>();
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(ids(&api.list_all("/v1/disputes").await), newest_first);
    let of_one = api.list_all(&format!("/v1/disputes?payment={one}")).await;
    assert_eq!(
        ids(&of_one),
        [made[4].clone(), made[2].clone(), made[0].clone()]
    );
    let lost = api.list_all("/v1/disputes?status=lost").await;
    assert_eq!(ids(&lost), [made[0].clone()]);
    let open_of_one = api
        .list_all(&format!("/v1/disputes?payment={one}&status=needs_response"))
        .await;
    assert_eq!(ids(&open_of_one), [made[4].clone(), made[2].clone()]);
    // Pages of two, and back.
    let page = api.get("/v1/disputes?limit=2").await;
    let page = page.expect_status(200);
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    assert_eq!(
        ids(page["data"].as_array().expect("data")),
        newest_first[..2]
    );
    let next = page["next_cursor"].as_str().expect("a cursor").to_owned();
    let page = api
        .get(&format!("/v1/disputes?limit=2&starting_after={next}"))
        .await;
    let page = page.expect_status(200);
    assert_eq!(
        ids(page["data"].as_array().expect("data")),
        newest_first[2..4]
    );
    let page = api
        .get(&format!("/v1/disputes?limit=2&ending_before={}", made[2]))
        .await;
    assert_eq!(
        ids(page.expect_status(200)["data"].as_array().expect("data")),
        newest_first[..2]
    );
    let future = server.now_s() + 3600;
    assert!(api
        .list_all(&format!("/v1/disputes?created[gte]={future}"))
        .await
        .is_empty());
    assert_eq!(
        api.list_all(&format!("/v1/disputes?created[lt]={future}"))
            .await
            .len(),
        5
    );
    api.get("/v1/disputes?starting_after=dp_nope")
        .await
        .expect_status(400);
    // Another account sees none of them.
    let (_, other) = server.new_account("Other").await;
    assert!(other.list_all("/v1/disputes").await.is_empty());
    other
        .get(&format!("/v1/disputes/{}", made[1]))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    finish(server).await;
}

#[tokio::test]
async fn scopes_idempotency_and_live_keys() {
    let server = TestServer::start_with(Options {
        live_sandbox: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let account = server.sandbox_account();
    let payment = id_of(&api.completed_payment().await);
    let id = id_of(&opened(&api, &payment, json!({"amount": 100})).await);

    let (_, reader) = server
        .new_key(&account, Mode::Test, &["disputes:read"])
        .await;
    reader
        .get(&format!("/v1/disputes/{id}"))
        .await
        .expect_status(200);
    reader.get("/v1/disputes").await.expect_status(200);
    for reply in [
        close(&reader, &id).await,
        update(&reader, &id, json!({})).await,
        open(&reader, &payment, json!({})).await,
    ] {
        reply.expect_error(403, "permission_error", "insufficient_permissions", None);
    }
    let (_, payments_only) = server
        .new_key(&account, Mode::Test, &["payments:write"])
        .await;
    payments_only.get("/v1/disputes").await.expect_status(403);
    let (_, writer) = server
        .new_key(&account, Mode::Test, &["disputes:write"])
        .await;
    writer
        .get(&format!("/v1/disputes/{id}"))
        .await
        .expect_status(200);

    // Idempotency: the same key replays; another body with it is refused.
    let first = writer
        .call(reqwest::Method::POST, &format!("/v1/disputes/{id}"))
        .json(json!({"metadata": {"n": "1"}}))
        .idempotency_key("update-1")
        .send()
        .await;
    first.expect_status(200);
    update(&writer, &id, json!({"metadata": {"n": "2"}}))
        .await
        .expect_status(200);
    let replayed = writer
        .call(reqwest::Method::POST, &format!("/v1/disputes/{id}"))
        .json(json!({"metadata": {"n": "1"}}))
        .idempotency_key("update-1")
        .send()
        .await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.json, first.json);
    assert_eq!(dispute(&api, &id).await["metadata"]["n"], "2");
    writer
        .call(reqwest::Method::POST, &format!("/v1/disputes/{id}"))
        .json(json!({"metadata": {"n": "3"}}))
        .idempotency_key("update-1")
        .send()
        .await
        .expect_error(
            409,
            "idempotency_error",
            "idempotency_key_reused",
            Some("Idempotency-Key"),
        );
    let open_twice = |key: &'static str| {
        api.call(
            reqwest::Method::POST,
            &format!("/v1/test_helpers/payments/{payment}/dispute"),
        )
        .json(json!({"amount": 5}))
        .idempotency_key(key)
        .send()
    };
    let made = open_twice("open-1").await;
    let again = open_twice("open-1").await;
    assert_eq!(made.expect_status(201), again.expect_status(201));
    assert_eq!(api.list_all("/v1/disputes").await.len(), 2, "opened once");

    // Live keys do not see the test helpers; live disputes are not test disputes.
    let (_, live) = server.new_key(&account, Mode::Live, &[]).await;
    open(&live, &payment, json!({})).await.expect_error(
        404,
        "invalid_request_error",
        "route_missing",
        None,
    );
    resolve(&live, &id, "won").await.expect_error(
        404,
        "invalid_request_error",
        "route_missing",
        None,
    );
    live.get(&format!("/v1/disputes/{id}")).await.expect_error(
        404,
        "invalid_request_error",
        "resource_missing",
        Some("id"),
    );
    assert!(live.list_all("/v1/disputes").await.is_empty());
    finish(server).await;
}

#[tokio::test]
async fn settlements_carry_disputes_and_the_fee_comes_from_pricing() {
    let server = TestServer::start_with(Options {
        pricing: Some(PricingConfig {
            dispute_fee_minor: 900,
            ..PricingConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();
    let a = id_of(&api.completed_payment().await);
    let b = id_of(&api.completed_payment().await);
    let won = opened(&api, &a, json!({"amount": 400})).await;
    assert_eq!(won["fee"], 900);
    update(
        &api,
        &id_of(&won),
        json!({"evidence": {"uncategorizedText": "winning_evidence"}, "submit": true}),
    )
    .await
    .expect_status(200);
    let lost = opened(&api, &b, json!({"amount": 250})).await;
    close(&api, &id_of(&lost)).await.expect_status(200);
    let run = api
        .post_json("/v1/test_helpers/settlements/run", json!({}))
        .await;
    let settlements = run.expect_status(200)["data"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(settlements.len(), 1);
    let settlement = &settlements[0];
    // Two payments of 1000 (fee 39 each), two dispute fees; only the lost 250 stays disputed.
    assert_eq!(int(&settlement["gross"]), 2000);
    assert_eq!(int(&settlement["refunds"]), 0);
    assert_eq!(int(&settlement["disputes"]), 250);
    assert_eq!(int(&settlement["fees"]), 39 + 39 + 900 + 900);
    assert_eq!(
        int(&settlement["net"]),
        int(&settlement["gross"])
            - int(&settlement["refunds"])
            - int(&settlement["disputes"])
            - int(&settlement["fees"])
    );
    let lines = api
        .list_all(&format!(
            "/v1/settlements/{}/transactions",
            id_of(settlement)
        ))
        .await;
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines.iter().map(|b| int(&b["net"])).sum::<i64>(),
        int(&settlement["net"])
    );
    assert_balance_is_the_sum_of_net(&api).await;
    finish(server).await;
}

#[tokio::test]
async fn webhooks_deliver_the_three_dispute_events_signed() {
    let server = TestServer::start().await;
    let api = server.api();
    let receiver = Receiver::start().await;
    let endpoint = api
        .post_json(
            "/v1/webhooks",
            json!({"url": receiver.url(), "events": ["dispute.created", "dispute.updated", "dispute.closed"]}),
        )
        .await;
    let endpoint = endpoint.expect_status(201).clone();
    let secret = endpoint["secret"].as_str().expect("a secret").to_owned();
    let payment = api.new_payment().await;
    api.pay(&id_of(&payment), CARD_DISPUTED)
        .await
        .expect_status(200);
    let id = id_of(&api.list_all("/v1/disputes").await[0]);
    update(
        &api,
        &id,
        json!({"evidence": {"uncategorizedText": "winning_evidence"}, "submit": true}),
    )
    .await
    .expect_status(200);
    let events: Vec<Value> = api.events_of(&id).await;
    let types: BTreeSet<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["dispute.closed", "dispute.created", "dispute.updated"].into()
    );
    let ids: Vec<String> = events.iter().map(id_of).collect();
    let received = receiver.wait_delivered(&ids, Duration::from_secs(20)).await;
    let delivered: Vec<&Received> = received
        .iter()
        .filter(|r| ids.contains(&r.id) && (200..300).contains(&r.status))
        .collect();
    for event in &events {
        let request = delivered
            .iter()
            .find(|r| r.id == id_of(event))
            .expect("delivered");
        assert_eq!(&request.json(), event);
    }
    let closed = events
        .iter()
        .find(|e| e["type"] == "dispute.closed")
        .expect("closed");
    assert_eq!(closed["data"]["object"]["status"], "won");
    let messages: Vec<(&str, &Received)> =
        delivered.iter().map(|r| (secret.as_str(), *r)).collect();
    verify_with_library(&messages);
    receiver.stop();
    finish(server).await;
}

/// 50 partial refunds of 30 race a dispute of 500 on one 1000 payment: whatever wins, refunds
/// and disputes together never take more than was captured. On PostgreSQL through two nodes.
async fn race(first: &Api, second: &Api) {
    let payment = id_of(&first.completed_payment().await);
    let mut tasks = Vec::new();
    for n in 0..50 {
        let api = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let refunded = payment.clone();
        tasks.push(tokio::spawn(async move {
            api.post_json("/v1/refunds", json!({"payment": refunded, "amount": 30}))
                .await
                .status
        }));
        if n == 25 {
            let api = second.clone();
            let payment = payment.clone();
            tasks.push(tokio::spawn(async move {
                open(&api, &payment, json!({"amount": 500})).await.status + 1000
            }));
        }
    }
    let mut refunded = 0;
    let mut disputed = 0;
    for task in tasks {
        match task.await.expect("a request") {
            201 => refunded += 30,
            1201 => disputed += 500,
            422 | 1422 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    let after = first.payment(&payment).await;
    assert_eq!(int(&after["amountRefunded"]), refunded);
    assert_eq!(int(&after["amountDisputed"]), disputed);
    assert!(refunded + disputed <= 1000, "{refunded} + {disputed}");
    // Refused only when it did not fit any more.
    assert!(disputed == 500 || refunded > 500, "{refunded} + {disputed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_racing_a_dispute_never_take_more_than_was_captured() {
    let server = TestServer::start().await;
    let api = server.api();
    for _ in 0..3 {
        race(&api, &api).await;
    }
    finish(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_refunds_and_a_dispute_never_take_more_than_was_captured() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let real = manual_clock();
    let node = |clock| {
        TestServer::start_with(Options {
            database_url: Some(database.url.clone()),
            clock: Some(clock),
            ..Options::default()
        })
    };
    let a = node(Arc::clone(&real)).await;
    let b = node(Arc::clone(&real)).await;
    let through_a = a.api();
    let through_b = b.client(&through_a.key);
    for _ in 0..3 {
        race(&through_a, &through_b).await;
    }
    assert_ledger_consistent(&database.url).await;
    b.stop().await;
    a.stop().await;
    drop(database);
}

/// Two nodes sweeping the same missed deadlines at once lose each dispute exactly once, with
/// one `dispute.closed` each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sweeping_deadlines_lose_each_dispute_once() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let real = manual_clock();
    let node = |clock| {
        TestServer::start_with(Options {
            database_url: Some(database.url.clone()),
            clock: Some(clock),
            stepped_workers: true,
            ..Options::default()
        })
    };
    let a = node(Arc::clone(&real)).await;
    let b = node(Arc::clone(&real)).await;
    let api = a.api();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let payment = id_of(&api.completed_payment().await);
        ids.push(id_of(&opened(&api, &payment, json!({})).await));
    }
    real.advance_ms(7 * DAY_S * 1000 + 1000);
    let (one, two) = tokio::join!(
        vinr_server::workers::expiry::step(a.app()),
        vinr_server::workers::expiry::step(b.app())
    );
    let lost = one.expect("a pass on A").disputes_lost + two.expect("a pass on B").disputes_lost;
    assert_eq!(lost, ids.len(), "each dispute lost by one node");
    for id in &ids {
        assert_eq!(dispute(&api, id).await["status"], "lost");
        let closed = api
            .events_of(id)
            .await
            .iter()
            .filter(|e| e["type"] == "dispute.closed")
            .count();
        assert_eq!(closed, 1, "{id}");
    }
    assert_ledger_consistent(&database.url).await;
    b.stop().await;
    a.stop().await;
    drop(database);
}
