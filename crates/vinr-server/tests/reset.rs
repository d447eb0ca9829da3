//! `POST /v1/test_helpers/reset` (SPEC §10), black-box over HTTP: it deletes an account's
//! test-mode data and answers the counts, keeps the account, its keys and (unless asked) its
//! webhook endpoints, forgets idempotency keys, drops the attempt of a delivery in flight, is
//! refused to live keys (404), platform keys (403) and bad bodies (400), changes nothing of
//! another account (under traffic while the reset runs) or of live mode, and answers (with the
//! ledger whole) while the account's own requests still run. On SQLite, or on PostgreSQL with
//! `VINR_TEST_DATABASE_URL`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::database::query_integers;
use common::receiver::{Answer, Receiver};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_domain::Mode;

const RESET: &str = "/v1/test_helpers/reset";

/// A server whose workers run only when the test steps them: nothing changes behind its back
/// between counting and resetting.
async fn stepped_server() -> TestServer {
    TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await
}

async fn count(url: &str, sql: &str) -> u64 {
    let counted = query_integers(url, sql).await;
    u64::try_from(counted[0]).expect("a count")
}

/// Rows of `account` in `mode` in every table that holds account data (deliveries through
/// their endpoint).
async fn rows_of(url: &str, account: &str, mode: &str) -> Vec<(&'static str, u64)> {
    let mut counts = Vec::new();
    for table in [
        "payments",
        "refunds",
        "disputes",
        "events",
        "idempotency_keys",
        "balance_transactions",
        "ledger_entries",
        "balance_totals",
        "settlements",
        "webhook_endpoints",
        "webhook_attempts",
    ] {
        let sql = format!(
            "SELECT CAST(count(*) AS BIGINT) FROM {table} \
             WHERE account_id = '{account}' AND mode = '{mode}'"
        );
        counts.push((table, count(url, &sql).await));
    }
    counts.push((
        "webhook_deliveries",
        deliveries_of(url, account, mode).await,
    ));
    counts
}

async fn deliveries_of(url: &str, account: &str, mode: &str) -> u64 {
    let sql = format!(
        "SELECT CAST(count(*) AS BIGINT) FROM webhook_deliveries d \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE e.account_id = '{account}' AND e.mode = '{mode}'"
    );
    count(url, &sql).await
}

fn rows(counts: &[(&str, u64)], table: &str) -> u64 {
    counts
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no table {table} in {counts:?}"))
}

fn len<T>(items: &[T]) -> u64 {
    items.len() as u64
}

/// Sums the amounts of one currency in a balance's `available` and `pending`.
fn balance_total(balance: &Value, currency: &str) -> i64 {
    ["available", "pending"]
        .iter()
        .flat_map(|side| balance[side].as_array().cloned().unwrap_or_default())
        .filter(|amount| amount["currency"] == currency)
        .map(|amount| amount["amount"].as_i64().expect("an amount"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_deletes_the_test_data_and_answers_what_it_deleted() {
    let server = stepped_server().await;
    let url = server.database_url().to_owned();
    let (account, api) = server.new_account("Reset me").await;
    let receiver = Receiver::start().await;
    let endpoint = api
        .post_json("/v1/webhooks", json!({"url": receiver.url()}))
        .await
        .expect_status(201)
        .clone();
    let endpoint_id = id_of(&endpoint);

    // Payments (one completed and part refunded, one pending made with a key), a settlement,
    // events with their deliveries and attempts, and idempotency keys.
    let completed = api.completed_payment().await;
    api.call(Method::POST, "/v1/refunds")
        .json(json!({"payment": id_of(&completed), "amount": 100}))
        .idempotency_key("refund-1")
        .send()
        .await
        .expect_status(201);
    server.finish_refunds(&api).await;
    api.post_json(
        &format!("/v1/test_helpers/payments/{}/dispute", id_of(&completed)),
        json!({"amount": 100}),
    )
    .await
    .expect_status(201);
    // A fault rule (SPEC §12) that nothing matches.
    api.post_json(
        "/v1/test_helpers/faults",
        json!({"method": "GET", "path": "/v1/never/*", "fault": "status=503"}),
    )
    .await
    .expect_status(201);
    let keyed = api
        .create_with_key("pay-1", payment_body(500, json!({})))
        .await
        .expect_status(201)
        .clone();
    let run = api
        .call(Method::POST, "/v1/test_helpers/settlements/run")
        .json(json!({}))
        .idempotency_key("settle-1")
        .send()
        .await;
    assert!(
        !run.expect_status(200)["data"]
            .as_array()
            .expect("a list")
            .is_empty(),
        "the run settled something: {}",
        run.text
    );
    assert!(server.deliver_due_webhooks().await > 0);

    let payments = api.payments().await;
    let refunds = api.list_all("/v1/refunds").await;
    let disputes = api.list_all("/v1/disputes").await;
    let events = api.events().await;
    let transactions = api.list_all("/v1/balance_transactions").await;
    let settlements = api.list_all("/v1/settlements").await;
    let before = rows_of(&url, &account, "test").await;
    assert_eq!(len(&payments), 2);
    assert_eq!(len(&refunds), 1);
    assert!(len(&settlements) >= 1);
    assert_eq!(rows(&before, "idempotency_keys"), 3, "{before:?}");
    assert!(rows(&before, "webhook_deliveries") > 0, "{before:?}");
    assert!(rows(&before, "webhook_attempts") > 0, "{before:?}");
    assert!(rows(&before, "ledger_entries") > 0, "{before:?}");

    let reset = api
        .call(Method::POST, RESET)
        .json(json!({}))
        .idempotency_key("reset-1")
        .send()
        .await;
    let answer = reset.expect_status(200).clone();
    assert_eq!(
        answer,
        json!({
            "object": "reset",
            "deleted": {
                "payments": len(&payments),
                "refunds": len(&refunds),
                "disputes": len(&disputes),
                "events": len(&events),
                "balanceTransactions": len(&transactions),
                "settlements": len(&settlements),
                "webhookDeliveries": rows(&before, "webhook_deliveries"),
                "webhookAttempts": rows(&before, "webhook_attempts"),
                "idempotencyKeys": 3,
                "webhookEndpoints": 0,
                "faultRules": 1,
            }
        })
    );

    // Nothing of the test data is left but the endpoint (and the reset's own stored answer).
    let after = rows_of(&url, &account, "test").await;
    for (table, rows) in &after {
        let left = match *table {
            "webhook_endpoints" | "idempotency_keys" => 1,
            _ => 0,
        };
        assert_eq!(*rows, left, "{table} after the reset: {after:?}");
    }
    assert!(api.payments().await.is_empty());
    assert!(api.events().await.is_empty());
    assert!(api.list_all("/v1/refunds").await.is_empty());
    assert!(api.list_all("/v1/balance_transactions").await.is_empty());
    assert!(api.list_all("/v1/settlements").await.is_empty());
    let balance = api.get("/v1/balance").await.expect_status(200).clone();
    assert_eq!(balance_total(&balance, "EUR"), 0, "{balance}");
    api.get(&format!("/v1/payments/{}", id_of(&completed)))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));

    // The account, its key and its endpoint stay; the endpoint's history is gone.
    assert_eq!(
        api.get("/v1/account").await.expect_status(200)["id"],
        account.as_str()
    );
    let kept = api.get(&format!("/v1/webhooks/{endpoint_id}")).await;
    assert_eq!(kept.expect_status(200)["url"], endpoint["url"]);
    assert!(api.webhook_attempts(&endpoint_id).await.is_empty());

    // The same key after the reset makes a new payment: its stored answer is gone.
    let again = api
        .create_with_key("pay-1", payment_body(500, json!({})))
        .await;
    let again_payment = again.expect_status(201).clone();
    assert_ne!(id_of(&again_payment), id_of(&keyed), "a new payment");
    assert_eq!(again.header("idempotent-replayed"), None);

    // The reset itself is idempotent: its retry answers the first reset, deleting nothing.
    let retried = api
        .call(Method::POST, RESET)
        .json(json!({}))
        .idempotency_key("reset-1")
        .send()
        .await;
    assert_eq!(retried.expect_status(200), &answer);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    api.payment(&id_of(&again_payment)).await;

    // The kept endpoint still receives the events of new objects.
    let received = receiver.received().len();
    let fresh = api.completed_payment().await;
    assert!(server.deliver_due_webhooks().await > 0);
    assert!(receiver.received().len() > received);
    assert!(!api.events_of(&id_of(&fresh)).await.is_empty());
    common::ledger::assert_ledger_consistent(&url).await;
    receiver.stop();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_endpoints_go_only_when_asked() {
    let server = stepped_server().await;
    let url = server.database_url().to_owned();
    let (account, api) = server.new_account("Endpoints").await;
    let receiver = Receiver::start().await;
    let first = id_of(
        api.post_json("/v1/webhooks", json!({"url": receiver.url()}))
            .await
            .expect_status(201),
    );
    let second = id_of(
        api.post_json(
            "/v1/webhooks",
            json!({"url": "https://shop.example/hooks", "events": ["refund.created"]}),
        )
        .await
        .expect_status(201),
    );
    api.completed_payment().await;
    // Deliveries queued, not yet attempted.
    let queued = deliveries_of(&url, &account, "test").await;
    assert!(queued > 0);

    // `false`, as a form: the endpoints stay.
    let kept = api
        .call(Method::POST, RESET)
        .form("webhookEndpoints=false")
        .send()
        .await;
    let kept = kept.expect_status(200);
    assert_eq!(kept["deleted"]["webhookEndpoints"], 0);
    assert_eq!(kept["deleted"]["webhookDeliveries"], queued);
    assert_eq!(kept["deleted"]["payments"], 1);
    assert_eq!(api.list_all("/v1/webhooks").await.len(), 2);

    api.completed_payment().await;
    assert_eq!(deliveries_of(&url, &account, "test").await, queued);
    let gone = api
        .post_json(RESET, json!({"webhookEndpoints": true}))
        .await;
    let gone = gone.expect_status(200);
    assert_eq!(gone["deleted"]["webhookEndpoints"], 2);
    assert_eq!(gone["deleted"]["webhookDeliveries"], queued);
    assert_eq!(gone["deleted"]["payments"], 1);
    assert!(api.list_all("/v1/webhooks").await.is_empty());
    for id in [&first, &second] {
        api.get(&format!("/v1/webhooks/{id}")).await.expect_error(
            404,
            "invalid_request_error",
            "resource_missing",
            Some("id"),
        );
    }
    let after = rows_of(&url, &account, "test").await;
    assert!(after.iter().all(|(_, n)| *n == 0), "{after:?}");
    let orphans = count(
        &url,
        "SELECT CAST(count(*) AS BIGINT) FROM webhook_deliveries d \
         WHERE NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id)",
    )
    .await;
    assert_eq!(orphans, 0, "no delivery outlives its endpoint");
    receiver.stop();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_is_deleted_and_its_attempt_dropped() {
    let server = stepped_server().await;
    let url = server.database_url().to_owned();
    let (account, api) = server.new_account("In flight").await;
    // Slow answers: the attempt is still being made when the reset commits.
    let receiver = Receiver::with_plan(Arc::new(|_, _, _| Answer {
        delay: Duration::from_millis(1_500),
        ..Answer::status(500)
    }))
    .await;
    let endpoint = id_of(
        api.post_json("/v1/webhooks", json!({"url": receiver.url()}))
            .await
            .expect_status(201),
    );
    api.new_payment().await;
    let app = server.app().clone();
    let pass = tokio::spawn(async move { vinr_server::workers::webhooks::step(&app).await });
    receiver
        .wait_until(Duration::from_secs(10), "the attempt", |received| {
            !received.is_empty()
        })
        .await;
    let reset = api.post_json(RESET, json!({})).await;
    assert_eq!(reset.expect_status(200)["deleted"]["webhookDeliveries"], 1);
    let attempts = pass.await.expect("the pass ends").expect("a webhook pass");
    assert_eq!(attempts, 1, "the attempt was made");
    assert_eq!(deliveries_of(&url, &account, "test").await, 0);
    let sql = format!(
        "SELECT CAST(count(*) AS BIGINT) FROM webhook_attempts WHERE account_id = '{account}'"
    );
    assert_eq!(count(&url, &sql).await, 0, "the attempt was dropped");
    assert!(api.webhook_attempts(&endpoint).await.is_empty());
    // Nothing is due again: the delivery is gone, not retried.
    assert_eq!(server.deliver_due_webhooks().await, 0);
    receiver.stop();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_is_refused_to_live_and_platform_keys_and_bad_bodies() {
    let server = stepped_server().await;
    let url = server.database_url().to_owned();
    let (account, api) = server.new_account("Refusals").await;
    api.completed_payment().await;
    let before = rows_of(&url, &account, "test").await;

    let (_, live) = server.new_key(&account, Mode::Live, &[]).await;
    live.post_json(RESET, json!({})).await.expect_error(
        404,
        "invalid_request_error",
        "route_missing",
        None,
    );
    let platform = server.platform_api().await;
    platform.post_json(RESET, json!({})).await.expect_error(
        403,
        "permission_error",
        "account_key_required",
        None,
    );
    let (_, reader) = server
        .new_key(&account, Mode::Test, &["payments:read"])
        .await;
    let refused = reader.post_json(RESET, json!({})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json["error"]["type"], "permission_error");

    api.post_json(RESET, json!({"webhookEndpoints": "yes"}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("webhookEndpoints"),
        );
    api.post_json(RESET, json!({"payments": true}))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_unknown",
            Some("payments"),
        );
    api.call(Method::POST, RESET)
        .form("webhookEndpoints=maybe")
        .send()
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("webhookEndpoints"),
        );
    let not_json = api
        .call(Method::POST, RESET)
        .raw(Some("application/json"), b"{\"webhookEndpoints\": tru")
        .send()
        .await;
    assert_eq!(not_json.status, 400, "{}", not_json.text);
    assert_eq!(
        rows_of(&url, &account, "test").await,
        before,
        "nothing was deleted"
    );
    server.stop().await;
}

/// What account B got a 2xx for while A was reset.
#[derive(Default)]
struct Made {
    /// Payment id and the status of its last 2xx answer.
    payments: Vec<(String, String)>,
    refunds: Vec<String>,
}

/// Creates and pays payments of `api`'s account in a loop (a refund now and then) until `stop`;
/// answers every object it got a 2xx for. `name` keeps its idempotency keys apart.
async fn traffic(
    name: &'static str,
    api: Api,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
) -> Made {
    let mut made = Made::default();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let created = api
            .call(Method::POST, "/v1/payments")
            .json(payment_body(
                1000 + i64::try_from(n).expect("small"),
                json!({}),
            ))
            .idempotency_key(&format!("{name}-{n}"))
            .send()
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = id_of(&created.json);
        made.payments.push((id.clone(), "pending".into()));
        let paid = api.pay(&id, CARD_APPROVED).await;
        assert_eq!(paid.status, 200, "{}", paid.text);
        made.payments.last_mut().expect("this payment").1 = "completed".into();
        if n % 3 == 0 {
            let refund = api
                .post_json("/v1/refunds", json!({"payment": id, "amount": 100}))
                .await;
            assert_eq!(refund.status, 201, "{}", refund.text);
            made.refunds.push(id_of(&refund.json));
        }
        rounds.fetch_add(1, Ordering::SeqCst);
    }
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_account_and_live_mode_are_untouched_under_traffic() {
    let server = TestServer::start_with(Options {
        live_sandbox: true,
        ..Options::default()
    })
    .await;
    let url = server.database_url().to_owned();
    let (a, api_a) = server.new_account("A").await;
    let (b, api_b) = server.new_account("B").await;

    // A's live data: a payment made with a key, its events, a live endpoint.
    let (_, live_a) = server.new_key(&a, Mode::Live, &[]).await;
    let live_payment = live_a
        .create_with_key("live-1", payment_body(700, json!({})))
        .await
        .expect_status(201)
        .clone();
    let live_before = rows_of(&url, &a, "live").await;
    assert_eq!(rows(&live_before, "payments"), 1, "{live_before:?}");
    let live_events = live_a.events().await;

    // A's test data: enough that the reset takes a while.
    for _ in 0..10 {
        api_a.completed_payment().await;
        api_a.new_payment().await;
    }

    // B has an endpoint: its events queue deliveries while A's are deleted.
    let receiver = Receiver::start().await;
    api_b
        .post_json("/v1/webhooks", json!({"url": receiver.url()}))
        .await
        .expect_status(201);

    // Two loops of B's traffic, running while A is reset.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let tasks = ["b1", "b2"]
        .map(|name| tokio::spawn(traffic(name, api_b.clone(), stop.clone(), rounds.clone())));
    let wait_rounds = |at_least: usize| {
        let rounds = rounds.clone();
        async move {
            for _ in 0..600 {
                if rounds.load(Ordering::SeqCst) >= at_least {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("B's traffic made fewer than {at_least} rounds");
        }
    };
    wait_rounds(3).await;
    let reset = api_a.post_json(RESET, json!({})).await;
    let reset = reset.expect_status(200).clone();
    assert_eq!(reset["deleted"]["payments"], 20, "{reset}");
    let done = rounds.load(Ordering::SeqCst);
    wait_rounds(done + 4).await;
    stop.store(true, Ordering::SeqCst);
    let mut made = Made::default();
    for task in tasks {
        let part = task.await.expect("B's traffic ends");
        made.payments.extend(part.payments);
        made.refunds.extend(part.refunds);
    }
    assert!(made.payments.len() >= 7);
    // The refunds worker runs: let it finish, so that B's objects and events stay still.
    server.finish_refunds(&api_b).await;

    // Every object B got a 2xx for is there, as it was answered.
    for (id, status) in &made.payments {
        assert_eq!(&api_b.payment(id).await["status"], status, "payment {id}");
    }
    for id in &made.refunds {
        api_b
            .get(&format!("/v1/refunds/{id}"))
            .await
            .expect_status(200);
    }
    assert_eq!(api_b.payments().await.len(), made.payments.len());
    assert_eq!(
        api_b.list_all("/v1/refunds").await.len(),
        made.refunds.len()
    );
    let balance = api_b.get("/v1/balance").await.expect_status(200).clone();
    let transactions = api_b.list_all("/v1/balance_transactions").await;
    let net: i64 = transactions
        .iter()
        .filter(|t| t["currency"] == "EUR")
        .map(|t| t["net"].as_i64().expect("a net"))
        .sum();
    assert!(net > 0);
    assert_eq!(balance_total(&balance, "EUR"), net, "{balance}");
    let rows_b = rows_of(&url, &b, "test").await;
    assert_eq!(rows(&rows_b, "idempotency_keys"), len(&made.payments));
    // Every event of B was queued to its endpoint, none deleted.
    assert_eq!(
        rows(&rows_b, "webhook_deliveries"),
        len(&api_b.events().await),
        "{rows_b:?}"
    );

    // A's live mode is as it was: its payment, events and idempotency key.
    assert_eq!(rows_of(&url, &a, "live").await, live_before);
    assert_eq!(
        live_a.payment(&id_of(&live_payment)).await,
        live_payment,
        "the live payment is unchanged"
    );
    assert_eq!(live_a.events().await, live_events);
    let replayed = live_a
        .create_with_key("live-1", payment_body(700, json!({})))
        .await;
    assert_eq!(replayed.expect_status(201), &live_payment);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    // A's test mode is empty but for what came after.
    assert!(api_a.payments().await.is_empty());
    common::ledger::assert_ledger_consistent(&url).await;
    receiver.stop();
    server.stop().await;
}

/// Creates, pays and refunds payments of `api`'s account until `stop`: a reset deletes its
/// objects under it (404s), and on PostgreSQL a request of the account whose locks cross the
/// reset's may be the deadlock's victim, answered 503 (rolled back: retry) — never 500.
/// Answers how many rounds it made.
async fn own_traffic(api: Api, stop: Arc<AtomicBool>) -> usize {
    let mut rounds = 0;
    let never_500 = |reply: &Reply| {
        assert!(
            reply.status < 500 || reply.status == 503,
            "{}: {}",
            reply.status,
            reply.text
        );
    };
    while !stop.load(Ordering::SeqCst) {
        rounds += 1;
        let created = api
            .post_json("/v1/payments", payment_body(1000, json!({})))
            .await;
        never_500(&created);
        let Some(id) = created.json["id"].as_str().map(str::to_owned) else {
            continue;
        };
        never_500(&api.pay(&id, CARD_APPROVED).await);
        let refund = api
            .post_json("/v1/refunds", json!({"payment": id, "amount": 100}))
            .await;
        never_500(&refund);
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_during_the_accounts_own_traffic_answers_and_keeps_the_ledger_whole() {
    let server = TestServer::start().await;
    let url = server.database_url().to_owned();
    let (_, api) = server.new_account("Busy").await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..3)
        .map(|_| tokio::spawn(own_traffic(api.clone(), stop.clone())))
        .collect();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let reset = api.post_json(RESET, json!({})).await;
        reset.expect_status(200);
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        assert!(task.await.expect("the traffic ends") > 0);
    }
    server.finish_refunds(&api).await;
    // The ledger stays whole: every balance transaction with its entries, the running totals
    // equal to the entries. (A request racing a reset may leave part of what it made: on
    // PostgreSQL the balance transaction of a payment paid while the reset deleted it.)
    common::ledger::assert_ledger_consistent(&url).await;
    server.stop().await;
}
