//! Expiry and auto-cancel (SPEC §3) with a controlled clock: unfinished checkouts become
//! `expired` at `expiresAt`, authorizations left uncaptured for 7 days become `cancelled`,
//! each with one event, final payments are never touched, and two nodes sweeping one
//! PostgreSQL database at once change each payment once.
//!
//! The servers start without their background workers, so a test's own passes are the only
//! sweeps: each asserts how many payments its pass swept as well as the outcomes.

mod common;

use common::database::fresh_postgres_database;
use common::*;
use serde_json::{json, Value};
use vinr_server::workers::expiry;

const MINUTE_MS: i64 = 60 * 1000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// A server whose expiry worker runs only when the test steps it.
async fn stepped() -> TestServer {
    TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await
}

/// One pass of the expiry worker: answers (expired, auto-cancelled).
async fn sweep(server: &TestServer) -> (usize, usize) {
    let swept = expiry::step(server.app()).await.expect("an expiry step");
    (swept.expired, swept.auto_cancelled)
}

/// The types of the events about `id`, oldest first.
async fn event_types(api: &Api, id: &str) -> Vec<String> {
    let mut types: Vec<String> = api
        .events_of(id)
        .await
        .iter()
        .filter_map(|event| event["type"].as_str().map(str::to_owned))
        .collect();
    types.reverse();
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_checkouts_expire_at_expires_at() {
    let server = stepped().await;
    let api = server.api();
    let pending = api.new_payment().await;
    let challenged = id_of(&api.new_payment().await);
    api.pay(&challenged, CARD_3DS).await.expect_status(200);

    server.clock.advance_ms(59 * MINUTE_MS);
    assert_eq!(sweep(&server).await, (0, 0), "nothing is due yet");
    assert_eq!(api.payment(&id_of(&pending)).await["status"], "pending");
    assert_eq!(
        api.payment(&challenged).await["status"],
        "requires_authentication"
    );

    server.clock.advance_ms(2 * MINUTE_MS);
    assert_eq!(sweep(&server).await, (2, 0), "both checkouts expire");
    for id in [id_of(&pending), challenged.clone()] {
        let expired = api.payment(&id).await;
        assert_eq!(expired["status"], "expired", "{id}");
        assert!(expired["expiredAt"].is_string());
        let events = api.events_of(&id).await;
        assert_eq!(events[0]["type"], "payment.expired");
        assert_eq!(
            events[0]["data"]["object"], expired,
            "the event holds the snapshot"
        );
        assert_eq!(
            event_types(&api, &id)
                .await
                .iter()
                .filter(|t| *t == "payment.expired")
                .count(),
            1
        );
    }
    // Final: the shopper can no longer pay, the merchant can no longer cancel.
    api.pay(&id_of(&pending), CARD_APPROVED).await.expect_error(
        422,
        "invalid_request_error",
        "payment_state_invalid",
        None,
    );
    api.cancel(&challenged).await.expect_error(
        422,
        "invalid_request_error",
        "payment_state_invalid",
        None,
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_not_captured_in_7_days_are_cancelled() {
    let server = stepped().await;
    let api = server.api();
    let authorized = api.authorized_payment().await;
    let id = id_of(&authorized);

    server.clock.advance_ms(7 * DAY_MS - MINUTE_MS);
    assert_eq!(sweep(&server).await, (0, 0), "nothing is due yet");
    assert_eq!(api.payment(&id).await["status"], "authorized");

    server.clock.advance_ms(2 * MINUTE_MS);
    assert_eq!(
        sweep(&server).await,
        (0, 1),
        "the authorization is cancelled"
    );
    let cancelled = api.payment(&id).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["amountCapturable"], 0);
    assert_eq!(cancelled["amountCaptured"], 0);
    assert_eq!(
        event_types(&api, &id).await,
        ["payment.created", "payment.authorized", "payment.cancelled"]
    );
    api.capture(&id, json!({})).await.expect_error(
        422,
        "invalid_request_error",
        "payment_state_invalid",
        None,
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_payments_are_never_swept() {
    let server = stepped().await;
    let api = server.api();
    let completed = api.completed_payment().await;
    let failed = id_of(&api.new_payment().await);
    api.pay(&failed, CARD_DECLINED).await.expect_status(200);
    let cancelled = id_of(&api.new_payment().await);
    api.cancel(&cancelled).await.expect_status(200);
    let before: Vec<Value> = api.payments().await;
    let events_before = api.events().await.len();

    server.clock.advance_ms(30 * DAY_MS);
    assert_eq!(sweep(&server).await, (0, 0), "nothing is swept");
    assert_eq!(api.payments().await, before, "nothing changed");
    assert_eq!(api.events().await.len(), events_before, "no event written");
    assert_eq!(id_of(&before[2]), id_of(&completed));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sweeping_at_once_change_each_payment_once() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let clock = manual_clock();
    let node = || {
        TestServer::start_with(Options {
            database_url: Some(database.url.clone()),
            clock: Some(clock.clone()),
            public_url: Some("http://payments.vinr.test".to_owned()),
            stepped_workers: true,
            ..Options::default()
        })
    };
    let (a, b) = tokio::join!(node(), node());
    let api = if a.account_id.is_some() {
        a.api()
    } else {
        b.api()
    };
    let mut pending = Vec::new();
    for _ in 0..150 {
        pending.push(id_of(&api.new_payment().await));
    }
    let mut authorized = Vec::new();
    for _ in 0..30 {
        authorized.push(id_of(&api.authorized_payment().await));
    }

    clock.advance_ms(8 * DAY_MS);
    let (first, second) = tokio::join!(expiry::step(a.app()), expiry::step(b.app()));
    let (first, second) = (
        first.expect("node A sweeps"),
        second.expect("node B sweeps"),
    );
    assert!(first.expired + second.expired <= pending.len());
    assert!(first.auto_cancelled + second.auto_cancelled <= authorized.len());
    // Whatever the two passes left (a batch can come back short while the other node holds
    // rows) is swept now; nothing else sweeps, so together they swept each payment once.
    let (expired, auto_cancelled) = sweep(&a).await;
    assert_eq!(first.expired + second.expired + expired, pending.len());
    assert_eq!(
        first.auto_cancelled + second.auto_cancelled + auto_cancelled,
        authorized.len()
    );

    let events = api.events().await;
    let count = |kind: &str, id: &str| {
        events
            .iter()
            .filter(|event| event["type"] == kind && event["data"]["object"]["id"] == id)
            .count()
    };
    for id in &pending {
        assert_eq!(api.payment(id).await["status"], "expired", "{id}");
        assert_eq!(count("payment.expired", id), 1, "{id} expired once");
    }
    for id in &authorized {
        assert_eq!(api.payment(id).await["status"], "cancelled", "{id}");
        assert_eq!(count("payment.cancelled", id), 1, "{id} cancelled once");
    }
    a.stop().await;
    b.stop().await;
    drop(database);
}
