//! The test clock (SPEC §10), black-box over HTTP on the configured backend: each account's
//! test mode has its own time, moved forward by `POST /v1/test_helpers/clock/advance`, and
//! everything that comes due on the way happens before the answer, with its events, stamped
//! with the instant it came due. Two PostgreSQL nodes agree on the clock and never do a due
//! item twice.
//!
//! The servers run on a manual real-time clock with their background workers stepped by the
//! tests, so nothing but the advance itself (or a step the test makes) changes anything.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::database::fresh_postgres_database;
use common::receiver::{Answer, Receiver};
use common::*;
use serde_json::{json, Value};
use vinr_domain::Mode;
use vinr_server::config::SettlementsConfig;
use vinr_server::workers::clock;

const MINUTE_S: i64 = 60;
const DAY_S: i64 = 24 * 60 * MINUTE_S;

async fn stepped() -> TestServer {
    TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await
}

/// [`stepped`], with the default settlement schedules (the harness's default is `manual`):
/// test mode is settled every `test_interval_minutes` (5).
async fn scheduled() -> TestServer {
    TestServer::start_with(Options {
        stepped_workers: true,
        settlements: Some(SettlementsConfig::default()),
        ..Options::default()
    })
    .await
}

fn unix_s(timestamp: &Value) -> i64 {
    let text = timestamp.as_str().unwrap_or_else(|| panic!("{timestamp}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .unix_timestamp()
}

/// The account's test clock, in Unix seconds.
async fn clock_now(api: &Api) -> i64 {
    let clock = api.get("/v1/test_helpers/clock").await;
    let clock = clock.expect_status(200);
    assert_eq!(clock["object"], "test_clock");
    assert_eq!(clock["livemode"], false);
    unix_s(&clock["now"])
}

async fn advance(api: &Api, body: Value) -> i64 {
    let moved = api.post_json("/v1/test_helpers/clock/advance", body).await;
    unix_s(&moved.expect_status(200)["now"])
}

/// The events about `id`, oldest first.
async fn events_of(api: &Api, id: &str) -> Vec<Value> {
    let mut events = api.events_of(id).await;
    events.reverse();
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_starts_on_real_time_and_only_moves_forward() {
    let server = stepped().await;
    let api = server.api();
    let real = server.now_s();
    assert_eq!(clock_now(&api).await, real);
    assert_eq!(advance(&api, json!({"seconds": 3600})).await, real + 3600);
    assert_eq!(clock_now(&api).await, real + 3600);
    let to = "2099-01-01T00:00:00Z";
    let far = api
        .post_json("/v1/test_helpers/clock/advance", json!({"to": to}))
        .await;
    far.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("to"),
    );
    let next_day = time::OffsetDateTime::from_unix_timestamp(real + 3600 + DAY_S)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    assert_eq!(
        advance(&api, json!({"to": next_day})).await,
        real + 3600 + DAY_S
    );
    let now = real + 3600 + DAY_S;
    // Backwards, zero, too far, both, neither, wrong types: 400 naming the field, no move.
    let past = time::OffsetDateTime::from_unix_timestamp(now - 1)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    for (body, code, param) in [
        (json!({"to": past}), "parameter_invalid", "to"),
        (json!({"seconds": 0}), "parameter_invalid", "seconds"),
        (json!({"seconds": -60}), "parameter_invalid", "seconds"),
        (
            json!({"seconds": 400 * DAY_S + 1}),
            "parameter_invalid",
            "seconds",
        ),
        (json!({"seconds": i64::MAX}), "parameter_invalid", "seconds"),
        (json!({"seconds": 5, "to": past}), "parameter_invalid", "to"),
        (json!({}), "parameter_missing", "seconds"),
        (json!({"seconds": "soon"}), "parameter_invalid", "seconds"),
        (json!({"to": "tomorrow"}), "parameter_invalid", "to"),
        (json!({"minutes": 5}), "parameter_unknown", "minutes"),
    ] {
        api.post_json("/v1/test_helpers/clock/advance", body.clone())
            .await
            .expect_error(400, "invalid_request_error", code, Some(param));
    }
    api.post_form("/v1/test_helpers/clock/advance", "seconds=")
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("seconds"),
        );
    assert_eq!(clock_now(&api).await, now, "nothing moved");
    // 400 days at once is allowed; a form body too.
    let moved = api
        .post_form(
            "/v1/test_helpers/clock/advance",
            &format!("seconds={}", 400 * DAY_S),
        )
        .await;
    assert_eq!(unix_s(&moved.expect_status(200)["now"]), now + 400 * DAY_S);
    // Objects are made on the clock.
    let payment = api.new_payment().await;
    assert_eq!(unix_s(&payment["created_at"]), now + 400 * DAY_S);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_made_at_once_add_up() {
    let server = stepped().await;
    let api = server.api();
    let start = clock_now(&api).await;
    let moves = (0..8).map(|_| {
        let api = api.clone();
        async move {
            api.post_json("/v1/test_helpers/clock/advance", json!({"seconds": 3600}))
                .await
        }
    });
    let answers = futures_util::future::join_all(moves).await;
    let mut nows: Vec<i64> = answers
        .iter()
        .map(|answer| unix_s(&answer.expect_status(200)["now"]))
        .collect();
    nows.sort_unstable();
    assert_eq!(clock_now(&api).await, start + 8 * 3600);
    assert_eq!(
        nows,
        (1..=8).map(|n| start + n * 3600).collect::<Vec<_>>(),
        "each move answered its own time"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_test_keys_of_an_account_reach_the_clock() {
    let server = stepped().await;
    let account = server.sandbox_account();
    let (_, live) = server.new_key(&account, Mode::Live, &[]).await;
    live.get("/v1/test_helpers/clock").await.expect_error(
        404,
        "invalid_request_error",
        "route_missing",
        None,
    );
    live.post_json("/v1/test_helpers/clock/advance", json!({"seconds": 60}))
        .await
        .expect_error(404, "invalid_request_error", "route_missing", None);
    let (_, reader) = server
        .new_key(&account, Mode::Test, &["payments:read"])
        .await;
    assert_eq!(clock_now(&reader).await, server.now_s());
    reader
        .post_json("/v1/test_helpers/clock/advance", json!({"seconds": 60}))
        .await
        .expect_error(403, "permission_error", "insufficient_permissions", None);
    let platform = server.platform_api().await;
    platform
        .post_json("/v1/test_helpers/clock/advance", json!({"seconds": 60}))
        .await
        .expect_error(403, "permission_error", "account_key_required", None);
    Api::new(&server.base, "sk_test_nope")
        .get("/v1/test_helpers/clock")
        .await
        .expect_error(401, "authentication_error", "api_key_invalid", None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_sets_the_clock_back_to_real_time() {
    let server = stepped().await;
    let api = server.api();
    let real = server.now_s();
    advance(&api, json!({"seconds": 90 * DAY_S})).await;
    let reset = api.post_json("/v1/test_helpers/reset", json!({})).await;
    reset.expect_status(200);
    assert_eq!(clock_now(&api).await, real);
    assert_eq!(unix_s(&api.new_payment().await["created_at"]), real);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_one_account_leaves_another_on_real_time() {
    let server = stepped().await;
    let api = server.api();
    let (_, other) = server.new_account("other").await;
    let real = server.now_s();
    let theirs = other.new_payment().await;
    advance(&api, json!({"seconds": 30 * DAY_S})).await;
    assert_eq!(clock_now(&other).await, real);
    let later = other.new_payment().await;
    assert_eq!(unix_s(&later["created_at"]), real);
    // The other account's checkout is not expired by this account's month.
    assert_eq!(other.payment(&id_of(&theirs)).await["status"], "pending");
    let mine = api.new_payment().await;
    assert_eq!(unix_s(&mine["created_at"]), real + 30 * DAY_S);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_expires_when_the_clock_passes_expires_at() {
    let server = stepped().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let id = id_of(&payment);
    let expires_at = unix_s(&payment["expiresAt"]);
    advance(&api, json!({"seconds": 59 * MINUTE_S})).await;
    assert_eq!(api.payment(&id).await["status"], "pending");
    advance(&api, json!({"seconds": 2 * MINUTE_S})).await;
    let expired = api.payment(&id).await;
    assert_eq!(expired["status"], "expired");
    // Stamped with the instant it came due, as the worker would have done then.
    assert_eq!(unix_s(&expired["expiredAt"]), expires_at);
    let events = events_of(&api, &id).await;
    assert_eq!(types(&events), ["payment.created", "payment.expired"]);
    assert_eq!(unix_s(&events[1]["created_at"]), expires_at);
    assert_eq!(events[1]["data"]["object"], expired);
    // The checkout page agrees.
    let page = reqwest::get(expired["checkoutUrl"].as_str().expect("a checkout URL"))
        .await
        .expect("the checkout page");
    let html = page.text().await.expect("a page");
    assert!(html.contains("expired"), "{html}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_is_cancelled_seven_days_on_and_events_keep_time_order() {
    let server = stepped().await;
    let api = server.api();
    let authorized = id_of(&api.authorized_payment().await);
    let authorized_at = unix_s(&api.payment(&authorized).await["authorizedAt"]);
    // Made a day later: cancelled a day after the first.
    advance(&api, json!({"seconds": DAY_S})).await;
    let second = id_of(&api.authorized_payment().await);
    let open = id_of(&api.new_payment().await);
    advance(&api, json!({"seconds": 7 * DAY_S + 60})).await;
    for (id, due) in [
        (&authorized, authorized_at + 7 * DAY_S),
        (&second, authorized_at + 8 * DAY_S),
    ] {
        let cancelled = api.payment(id).await;
        assert_eq!(cancelled["status"], "cancelled", "{id}");
        let events = events_of(&api, id).await;
        assert_eq!(types(&events).last(), Some(&"payment.cancelled"));
        let stamped = unix_s(&events.last().expect("an event")["created_at"]);
        assert!(
            (due..=due + 1).contains(&stamped),
            "{id}: {stamped} vs {due}"
        );
    }
    assert_eq!(api.payment(&open).await["status"], "expired");
    // All events of the account, newest first, are in time order too.
    let all = api.events().await;
    let times: Vec<i64> = all.iter().map(|e| unix_s(&e["created_at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_payment_is_settled_and_paid_out_when_its_period_ends() {
    let server = scheduled().await;
    let api = server.api();
    let paid = id_of(&api.completed_payment().await);
    assert!(api.list_all("/v1/settlements").await.is_empty());
    // Test mode settles every 5 minutes (`test_interval_minutes`); a day later there is one
    // settlement, paid out.
    advance(&api, json!({"seconds": DAY_S})).await;
    let settlements = api.list_all("/v1/settlements").await;
    assert_eq!(settlements.len(), 1, "{settlements:?}");
    let settlement = &settlements[0];
    assert_eq!(settlement["status"], "paid");
    let created = unix_s(&settlement["created_at"]);
    assert_eq!(created % (5 * MINUTE_S), 0, "settled at a period's end");
    let transactions = api
        .list_all(&format!(
            "/v1/settlements/{}/transactions",
            id_of(settlement)
        ))
        .await;
    assert!(transactions.iter().any(|t| t["source"] == paid.as_str()));
    let types_seen = types(&api.events().await)
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>();
    assert!(types_seen.contains(&"settlement.created".to_owned()));
    assert!(types_seen.contains(&"settlement.paid".to_owned()));
    // A refund made after it is answered by the next move of the clock itself, stamped on it;
    // another one by the clock's own worker pass as real time goes on.
    let refund = api
        .post_json("/v1/refunds", json!({"payment": paid, "amount": 100}))
        .await;
    let refund = id_of(refund.expect_status(201));
    let now = advance(&api, json!({"seconds": 1})).await;
    let answered = api.get(&format!("/v1/refunds/{refund}")).await;
    assert_eq!(answered.expect_status(200)["status"], "succeeded");
    let events = events_of(&api, &refund).await;
    assert_eq!(types(&events), ["refund.created", "refund.succeeded"]);
    assert!((now - 1..=now).contains(&unix_s(&events[1]["created_at"])));
    let second = api
        .post_json("/v1/refunds", json!({"payment": paid, "amount": 100}))
        .await;
    let second = id_of(second.expect_status(201));
    vinr_server::workers::refunds::step(server.app())
        .await
        .expect("a refunds pass");
    let pending = api.get(&format!("/v1/refunds/{second}")).await;
    assert_eq!(
        pending.expect_status(200)["status"],
        "pending",
        "the real-time pass leaves a clocked account alone"
    );
    assert_eq!(clock::step(server.app()).await.expect("a clock pass"), 1);
    let answered = api.get(&format!("/v1/refunds/{second}")).await;
    assert_eq!(answered.expect_status(200)["status"], "succeeded");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_expire_on_the_clock() {
    let server = stepped().await;
    let api = server.api();
    let body = payment_body(1200, json!({}));
    let first = api
        .call(reqwest::Method::POST, "/v1/payments")
        .json(body.clone())
        .idempotency_key("order-1")
        .send()
        .await;
    let first = id_of(first.expect_status(201));
    advance(&api, json!({"seconds": 25 * 3600})).await;
    let again = api
        .call(reqwest::Method::POST, "/v1/payments")
        .json(body)
        .idempotency_key("order-1")
        .send()
        .await;
    assert_ne!(
        id_of(again.expect_status(201)),
        first,
        "the key was kept 24 h"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_webhooks_are_retried_after_an_advance_in_due_order() {
    let server = stepped().await;
    let api = server.api();
    let receiver = Receiver::with_plan(Arc::new(|_, n, _| {
        if n == 1 {
            Answer::status(500)
        } else {
            Answer::ok()
        }
    }))
    .await;
    let endpoint = api
        .post_json(
            "/v1/webhooks",
            json!({"url": receiver.url(), "events": ["payment.created"]}),
        )
        .await;
    let endpoint = id_of(endpoint.expect_status(201));
    let first = id_of(&api.new_payment().await);
    // The second payment's first attempt fails 10 minutes later, so its retry is due later.
    server.deliver_due_webhooks().await;
    advance(&api, json!({"seconds": 10})).await;
    let second = id_of(&api.new_payment().await);
    server.deliver_due_webhooks().await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(server.deliver_due_webhooks().await, 0, "no retry due yet");
    // Past both retries (60 s after each failure).
    advance(&api, json!({"seconds": 120})).await;
    assert_eq!(server.deliver_due_webhooks().await, 2);
    let received = receiver.received();
    let order: Vec<String> = received[2..]
        .iter()
        .map(|r| {
            r.json()["data"]["object"]["id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(order, [first, second], "retried in due order");
    let attempts = api.webhook_attempts(&endpoint).await;
    assert_eq!(attempts.len(), 4);
    let now = clock_now(&api).await;
    for attempt in &attempts {
        let at = unix_s(&attempt["created_at"]);
        assert!(
            at <= now && at >= now - 200,
            "attempts are on the clock: {attempt}"
        );
    }
    receiver.stop();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_worker_keeps_an_advanced_account_running_on_its_time() {
    let server = stepped().await;
    let api = server.api();
    advance(&api, json!({"seconds": 10 * DAY_S})).await;
    let payment = id_of(&api.new_payment().await);
    // Real time passes an hour: the real-time sweep leaves this account alone, the clock's
    // pass expires the checkout on the account's time.
    server.clock.advance_ms(61 * MINUTE_S * 1000);
    let swept = vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry step");
    assert_eq!(swept.expired, 0);
    assert_eq!(api.payment(&payment).await["status"], "pending");
    assert_eq!(clock::step(server.app()).await.expect("a clock pass"), 1);
    assert_eq!(api.payment(&payment).await["status"], "expired");
    server.stop().await;
}

/// Advancing a year through the due work of a few thousand objects stays fast. Prints the
/// figure BENCHMARKS.md quotes (`cargo test --release -p vinr-server --test clock -- year
/// --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_a_year_over_thousands_of_objects_is_fast() {
    const EACH: usize = 700;
    let server = scheduled().await;
    let api = server.api();
    let mut ids = Vec::new();
    for round in 0..EACH {
        let (open, authorized, completed) = tokio::join!(
            api.new_payment(),
            api.authorized_payment(),
            api.completed_payment()
        );
        ids.extend([id_of(&open), id_of(&authorized), id_of(&completed)]);
        // Spread over time, so the due instants are many and distinct: a second apart, and
        // a settlement period apart every 100.
        server.clock.advance_ms(1000);
        if round % 100 == 99 {
            advance(&api, json!({"seconds": 7 * MINUTE_S})).await;
        }
    }
    let started = Instant::now();
    advance(&api, json!({"seconds": 365 * DAY_S})).await;
    let took = started.elapsed();
    println!(
        "advanced a year over {} payments ({EACH} open checkouts, {EACH} authorizations, \
         {EACH} captured) in {:.2} s on {}",
        ids.len(),
        took.as_secs_f64(),
        server.database_url().split(':').next().unwrap_or("?")
    );
    let payments = api.payments().await;
    let count = |status: &str| payments.iter().filter(|p| p["status"] == status).count();
    assert_eq!(
        (count("expired"), count("cancelled"), count("completed")),
        (EACH, EACH, EACH)
    );
    let settlements = api.list_all("/v1/settlements").await;
    assert!(settlements.iter().all(|s| s["status"] == "paid"));
    let settled: i64 = settlements
        .iter()
        .map(|s| s["gross"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(settled, (EACH as i64) * 1000, "every capture settled once");
    assert!(
        took < Duration::from_secs(60),
        "a year took {took:?} (debug build)"
    );
    server.stop().await;
}

/// Two nodes on one PostgreSQL database: an advance through one is seen by the other's next
/// request and by its workers, and two advances at once never do a due item twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_clock_and_never_do_due_work_twice() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let real = manual_clock();
    let node = |clock| {
        TestServer::start_with(Options {
            database_url: Some(database.url.clone()),
            stepped_workers: true,
            clock: Some(clock),
            ..Options::default()
        })
    };
    let a = node(Arc::clone(&real)).await;
    let b = node(Arc::clone(&real)).await;
    let through_a = a.api();
    let through_b = b.client(&through_a.key);
    let start = clock_now(&through_a).await;
    advance(&through_a, json!({"seconds": DAY_S})).await;
    assert_eq!(clock_now(&through_b).await, start + DAY_S);
    let made_on_b = through_b.new_payment().await;
    assert_eq!(unix_s(&made_on_b["created_at"]), start + DAY_S);
    // B's clock pass expires what came due as real time went on.
    real.advance_ms(61 * MINUTE_S * 1000);
    clock::step(b.app()).await.expect("a clock pass on B");
    assert_eq!(
        through_a.payment(&id_of(&made_on_b)).await["status"],
        "expired"
    );
    // Many checkouts and authorizations, then two advances at once through both nodes.
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(id_of(&through_a.new_payment().await));
        ids.push(id_of(&through_b.authorized_payment().await));
    }
    let (one, two) = tokio::join!(
        through_a.post_json(
            "/v1/test_helpers/clock/advance",
            json!({"seconds": 8 * DAY_S})
        ),
        through_b.post_json(
            "/v1/test_helpers/clock/advance",
            json!({"seconds": 8 * DAY_S})
        ),
    );
    one.expect_status(200);
    two.expect_status(200);
    for id in &ids {
        let payment = through_a.payment(id).await;
        assert!(
            ["expired", "cancelled"].contains(&payment["status"].as_str().unwrap_or("")),
            "{payment}"
        );
        let finals = types(&events_of(&through_a, id).await)
            .iter()
            .filter(|t| ["payment.expired", "payment.cancelled"].contains(t))
            .count();
        assert_eq!(finals, 1, "{id} changed once");
    }
    // Both moves count: the clock is at least 8 days on (each started from the time it read).
    assert!(clock_now(&through_b).await >= start + 9 * DAY_S);
    a.stop().await;
    b.stop().await;
}

/// PostgreSQL: a move of the clock waits for a due payment another transaction holds (a
/// capture in flight, say) instead of skipping it, and does everything due before answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advance_waits_for_a_due_payment_held_by_another_transaction() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let server = TestServer::start_with(Options {
        database_url: Some(database.url.clone()),
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let authorized = id_of(&api.authorized_payment().await);
    let open = id_of(&api.new_payment().await);
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .expect("a PostgreSQL connection");
    let connection = tokio::spawn(connection);
    client.batch_execute("BEGIN").await.expect("BEGIN");
    client
        .execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", &[&open])
        .await
        .expect("the checkout's row locked");
    let moving = tokio::spawn({
        let api = api.clone();
        async move { advance(&api, json!({"seconds": 8 * DAY_S})).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!moving.is_finished(), "the move waits for the held row");
    client.batch_execute("COMMIT").await.expect("COMMIT");
    moving.await.expect("the move answers");
    assert_eq!(api.payment(&open).await["status"], "expired");
    assert_eq!(api.payment(&authorized).await["status"], "cancelled");
    drop(client);
    let _ = connection.await;
    server.stop().await;
}

/// PostgreSQL: resets and clock passes of one account at once never deadlock (both lock the
/// account's row first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_clock_passes_at_once_never_deadlock() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let server = TestServer::start_with(Options {
        database_url: Some(database.url.clone()),
        stepped_workers: true,
        settlements: Some(SettlementsConfig::default()),
        ..Options::default()
    })
    .await;
    let api = server.api();
    for _ in 0..12 {
        advance(&api, json!({"seconds": 60})).await;
        api.completed_payment().await;
        api.authorized_payment().await;
        // Due on the clock when real time moves on: the next pass settles and cancels.
        server.clock.advance_ms(8 * DAY_S * 1000);
        let (pass, reset) = tokio::join!(
            clock::step(server.app()),
            api.post_json("/v1/test_helpers/reset", json!({}))
        );
        pass.expect("a clock pass");
        reset.expect_status(200);
    }
    common::ledger::assert_ledger_consistent(&database.url).await;
    server.stop().await;
}
