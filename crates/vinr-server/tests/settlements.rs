//! Settlements (SPEC §7) through the API, on both backends: the test helper and the scheduled
//! worker gather due balance transactions per account, mode and currency into settlements
//! whose figures add up; payouts empty the balance through the ledger; nothing is settled
//! twice, nothing due is left out (also with two nodes running at once on PostgreSQL); the
//! transactions come as JSON pages or CSV; events, filters, isolation and scopes.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::database::{execute, fresh_database, fresh_postgres_database};
use common::ledger::{assert_ledger_consistent, assert_settlements_consistent};
use common::*;
use serde_json::{json, Value};
use vinr_domain::Mode;
use vinr_server::clock::Clock;
use vinr_server::config::SettlementsConfig;
use vinr_server::workers::settlements;

const RUN: &str = "/v1/test_helpers/settlements/run";
const FIVE_MINUTES_MS: i64 = 5 * 60_000;

async fn step(server: &TestServer) {
    settlements::step(server.app())
        .await
        .expect("a settlement step");
}

async fn run_now(api: &Api) -> Vec<Value> {
    api.post_json(RUN, json!({})).await.expect_status(200)["data"]
        .as_array()
        .expect("a list")
        .clone()
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

/// A payment of `amount` `currency`, paid with `card`, optionally captured in part.
async fn paid(api: &Api, amount: i64, currency: &str, card: &str, capture: Option<i64>) -> String {
    let payment = api
        .create_payment(payment_body(
            amount,
            json!({"currency": currency, "capture": capture.is_none()}),
        ))
        .await;
    let id = id_of(&payment);
    api.pay(&id, card).await.expect_status(200);
    if let Some(part) = capture {
        api.capture(&id, json!({"amount": part}))
            .await
            .expect_status(200);
    }
    id
}

/// Checks one settlement against its transactions as the API lists them.
async fn assert_adds_up(api: &Api, settlement: &Value) -> Vec<Value> {
    let id = id_of(settlement);
    let lines = api
        .list_all(&format!("/v1/settlements/{id}/transactions"))
        .await;
    assert_eq!(lines.len() as i64, int(&settlement["transactionCount"]));
    let sum = |pick: &dyn Fn(&Value) -> i64| lines.iter().map(pick).sum::<i64>();
    assert_eq!(
        sum(&|b| int(&b["net"])),
        int(&settlement["net"]),
        "{settlement}"
    );
    assert_eq!(
        sum(&|b| if b["type"] == "payment" {
            int(&b["amount"])
        } else {
            0
        }),
        int(&settlement["gross"])
    );
    assert_eq!(
        sum(&|b| if b["type"] == "refund" {
            -int(&b["amount"])
        } else {
            0
        }),
        int(&settlement["refunds"])
    );
    assert_eq!(
        sum(
            &|b| if b["type"] == "dispute" || b["type"] == "dispute_reversal" {
                -int(&b["amount"])
            } else {
                0
            }
        ),
        int(&settlement["disputes"])
    );
    assert_eq!(sum(&|b| int(&b["fee"])), int(&settlement["fees"]));
    assert_eq!(
        int(&settlement["net"]),
        int(&settlement["gross"])
            - int(&settlement["refunds"])
            - int(&settlement["disputes"])
            - int(&settlement["fees"])
    );
    for line in &lines {
        assert_eq!(line["settlement"], id.as_str());
        assert_eq!(line["currency"], settlement["currency"]);
        assert_ne!(line["type"], "payout", "a payout is never settled: {line}");
    }
    lines
}

/// SPEC §7: per currency, the `net` of every balance transaction the key sees sums to its
/// balance (available + pending).
async fn assert_balance_is_the_sum_of_net(api: &Api) {
    let transactions = api.list_all("/v1/balance_transactions").await;
    let balance = api.get("/v1/balance").await;
    let balance = balance.expect_status(200);
    let mut by_currency: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for b in &transactions {
        let currency = b["currency"].as_str().expect("a currency").to_owned();
        by_currency.entry(currency).or_default().0 += int(&b["net"]);
    }
    for side in ["available", "pending"] {
        for amount in balance[side].as_array().expect("a list") {
            let currency = amount["currency"].as_str().expect("a currency").to_owned();
            by_currency.entry(currency).or_default().1 += int(&amount["amount"]);
        }
    }
    for (currency, (net, on_balance)) in by_currency {
        assert_eq!(
            net, on_balance,
            "{currency}: the balance transactions' net is the balance"
        );
    }
}

/// The `payout` balance transaction of a paid settlement, found by `type` and `source`.
async fn payout_of(api: &Api, settlement: &Value) -> Value {
    let id = id_of(settlement);
    let by_source = api
        .list_all(&format!("/v1/balance_transactions?source={id}"))
        .await;
    assert_eq!(
        by_source.len(),
        1,
        "one payout per settlement: {by_source:?}"
    );
    let payout = by_source[0].clone();
    assert!(id_of(&payout).starts_with("btx_"));
    assert_eq!(payout["object"], "balance_transaction");
    assert_eq!(payout["type"], "payout");
    assert_eq!(int(&payout["amount"]), -int(&settlement["net"]));
    assert_eq!(int(&payout["fee"]), 0);
    assert_eq!(int(&payout["net"]), -int(&settlement["net"]));
    assert_eq!(payout["currency"], settlement["currency"]);
    assert_eq!(payout["livemode"], settlement["livemode"]);
    assert!(payout["settlement"].is_null(), "{payout}");
    assert_eq!(payout["created_at"], settlement["paidAt"]);
    assert_eq!(payout["availableOn"], settlement["paidAt"]);
    let fetched = api
        .get(&format!("/v1/balance_transactions/{}", id_of(&payout)))
        .await;
    assert_eq!(fetched.expect_status(200), &payout);
    payout
}

#[tokio::test]
async fn a_run_settles_each_currency_once_and_the_figures_add_up() {
    let server = TestServer::start().await;
    let api = server.api();
    let full = paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    let part = paid(&api, 1000, "EUR", CARD_APPROVED, Some(600)).await;
    let doomed = paid(&api, 500, "EUR", CARD_REFUNDS_FAIL, None).await;
    let yen = paid(&api, 1234, "JPY", CARD_APPROVED, None).await;
    api.post_json("/v1/refunds", json!({"payment": full, "amount": 400}))
        .await
        .expect_status(201);
    api.post_json("/v1/refunds", json!({"payment": doomed}))
        .await
        .expect_status(201);
    server.finish_refunds(&api).await;

    let made = run_now(&api).await;
    assert_eq!(made.len(), 2, "one settlement per currency: {made:?}");
    let by_currency: BTreeMap<String, Value> = made
        .iter()
        .map(|s| {
            (
                s["currency"].as_str().expect("a currency").to_owned(),
                s.clone(),
            )
        })
        .collect();
    let eur = &by_currency["EUR"];
    assert!(id_of(eur).starts_with("setl_"));
    assert_eq!(eur["object"], "settlement");
    // The sandbox sends test payouts at once.
    assert_eq!(eur["status"], "paid");
    assert!(eur["paidAt"].is_string());
    assert_eq!(eur["livemode"], false);
    // 1000 + 600 + 500 captured; 400 refunded (the failed 500 and its reversal cancel out);
    // fees 39 + 33 + 32.
    assert_eq!(int(&eur["gross"]), 2100);
    assert_eq!(int(&eur["refunds"]), 400);
    assert_eq!(int(&eur["fees"]), 39 + 33 + 32);
    assert_eq!(int(&eur["net"]), 2100 - 400 - 104);
    assert_eq!(int(&eur["transactionCount"]), 6);
    let lines = assert_adds_up(&api, eur).await;
    let sources: BTreeSet<&str> = lines.iter().filter_map(|b| b["source"].as_str()).collect();
    assert!(sources.contains(full.as_str()) && sources.contains(part.as_str()));
    let jpy = &by_currency["JPY"];
    assert_eq!(
        (int(&jpy["gross"]), int(&jpy["fees"]), int(&jpy["net"])),
        (1234, 42, 1192)
    );
    assert_adds_up(&api, jpy).await;
    assert_eq!(
        api.get(&format!("/v1/balance_transactions?source={yen}"))
            .await
            .expect_status(200)["data"][0]["settlement"],
        jpy["id"]
    );

    // Paid out: nothing is left on the balance, each payout is a balance transaction, and
    // nothing is settled twice.
    let balance = api.get("/v1/balance").await;
    for amount in balance.expect_status(200)["available"]
        .as_array()
        .expect("a list")
    {
        assert_eq!(amount["amount"], 0, "{amount}");
    }
    for settlement in [eur, jpy] {
        payout_of(&api, settlement).await;
    }
    let payouts = api.list_all("/v1/balance_transactions?type=payout").await;
    assert_eq!(payouts.len(), 2, "{payouts:?}");
    assert!(payouts.iter().all(|b| b["type"] == "payout"));
    let payout_sources: BTreeSet<&str> = payouts
        .iter()
        .filter_map(|b| b["source"].as_str())
        .collect();
    assert_eq!(
        payout_sources,
        [eur, jpy]
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect::<BTreeSet<_>>()
    );
    assert_balance_is_the_sum_of_net(&api).await;
    assert!(run_now(&api).await.is_empty(), "a second run finds nothing");
    assert_eq!(api.list_all("/v1/settlements").await.len(), 2);

    // Each settlement wrote `settlement.created` (pending) then `settlement.paid`.
    let created = api.list_all("/v1/events?type=settlement.created").await;
    let paid_events = api.list_all("/v1/events?type=settlement.paid").await;
    assert_eq!((created.len(), paid_events.len()), (2, 2));
    assert!(created
        .iter()
        .all(|event| event["data"]["object"]["status"] == "pending"));
    assert!(paid_events
        .iter()
        .all(|event| event["data"]["object"]["status"] == "paid"));

    // New activity goes into the next settlement only.
    let later = paid(&api, 2000, "EUR", CARD_APPROVED, None).await;
    let next = run_now(&api).await;
    assert_eq!(next.len(), 1);
    assert_eq!(int(&next[0]["transactionCount"]), 1);
    assert_eq!(int(&next[0]["net"]), 2000 - 53);
    let lines = assert_adds_up(&api, &next[0]).await;
    assert_eq!(lines[0]["source"], later.as_str());
    payout_of(&api, &next[0]).await;
    assert_eq!(
        api.list_all("/v1/balance_transactions?type=payout")
            .await
            .len(),
        3
    );
    assert_balance_is_the_sum_of_net(&api).await;
    assert_ledger_consistent(server.database_url()).await;
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn settlements_list_filter_retrieve_and_export_csv() {
    let server = TestServer::start().await;
    let api = server.api();
    paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    let eur = run_now(&api).await.remove(0);
    paid(&api, 300, "USD", CARD_APPROVED, None).await;
    paid(&api, 700, "USD", CARD_APPROVED, None).await;
    let usd = run_now(&api).await.remove(0);

    let fetched = api.get(&format!("/v1/settlements/{}", id_of(&eur))).await;
    assert_eq!(fetched.expect_status(200), &eur);
    let all = api.list_all("/v1/settlements").await;
    assert_eq!(
        all.iter().map(id_of).collect::<Vec<_>>(),
        vec![id_of(&usd), id_of(&eur)],
        "newest first"
    );
    let only_usd = api.list_all("/v1/settlements?currency=USD").await;
    assert_eq!(only_usd.len(), 1);
    assert_eq!(only_usd[0]["currency"], "USD");
    assert_eq!(api.list_all("/v1/settlements?status=paid").await.len(), 2);
    assert!(api
        .list_all("/v1/settlements?status=pending")
        .await
        .is_empty());
    let page = api.get("/v1/settlements?limit=1").await;
    assert_eq!(page.expect_status(200)["has_more"], true);
    api.get("/v1/settlements?status=done").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("status"),
    );
    api.get("/v1/settlements?currency=XXX").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("currency"),
    );
    api.get("/v1/settlements?colour=red").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_unknown",
        Some("colour"),
    );
    api.get("/v1/settlements/setl_000000000000000000000000")
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));

    // CSV: a header and one line per transaction, oldest first, adding up to `net`.
    let csv = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/settlements/{}/transactions", id_of(&usd)),
        )
        .header("Accept", "text/csv")
        .send()
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("content-type")
        .is_some_and(|value| value.starts_with("text/csv")));
    assert!(csv
        .header("content-disposition")
        .is_some_and(|value| value.contains(&format!("{}.csv", id_of(&usd)))));
    let rows: Vec<Vec<&str>> = csv
        .text
        .lines()
        .map(|line| line.split(',').collect())
        .collect();
    assert_eq!(
        rows[0],
        vec![
            "id",
            "type",
            "source",
            "amount",
            "fee",
            "net",
            "currency",
            "created_at",
            "availableOn"
        ]
    );
    assert_eq!(rows.len(), 3);
    let net: i64 = rows[1..]
        .iter()
        .map(|row| row[5].parse::<i64>().expect("an integer net"))
        .sum();
    assert_eq!(net, int(&usd["net"]));
    assert!(rows[1..]
        .iter()
        .all(|row| row[1] == "payment" && row[6] == "USD"));
    // The export is what the settlement gathered: its own payout (which would cancel `net`
    // out) is not a line of it.
    let payout = payout_of(&api, &usd).await;
    assert!(
        !csv.text.contains(&id_of(&payout)) && !csv.text.contains(&id_of(&usd)),
        "{}",
        csv.text
    );

    // Another account sees none of it; restricted keys need `settlements:read`.
    let (_, other) = server.new_account("other").await;
    other
        .get(&format!("/v1/settlements/{}", id_of(&eur)))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    other
        .get(&format!("/v1/settlements/{}/transactions", id_of(&eur)))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    assert!(other.list_all("/v1/settlements").await.is_empty());
    assert!(run_now(&other).await.is_empty());
    let sandbox = server.sandbox_account();
    let (_, payments_only) = server
        .new_key(&sandbox, Mode::Test, &["payments:read"])
        .await;
    payments_only.get("/v1/settlements").await.expect_error(
        403,
        "permission_error",
        "insufficient_permissions",
        None,
    );
    let (_, reader) = server
        .new_key(&sandbox, Mode::Test, &["settlements:read"])
        .await;
    assert_eq!(reader.list_all("/v1/settlements").await.len(), 2);
    // The run helper is test mode only.
    let (_, live) = server.new_key(&sandbox, Mode::Live, &[]).await;
    assert_eq!(live.post_json(RUN, json!({})).await.status, 404);
    assert!(live.list_all("/v1/settlements").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_schedule_settles_each_test_interval_once() {
    let server = TestServer::start_with(Options {
        settlements: Some(SettlementsConfig::default()),
        ..Options::default()
    })
    .await;
    let api = server.api();
    // Start just after a five-minute boundary, so nothing made now is due yet.
    let now = server.clock.now().0;
    server
        .clock
        .advance_ms(FIVE_MINUTES_MS - now.rem_euclid(FIVE_MINUTES_MS) + 1_000);
    // The server's own worker runs too (every 2 s, on the same clock): the test drives steps
    // by hand and asserts what exists, never which step made it.
    let first = paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    step(&server).await;
    assert!(api.list_all("/v1/settlements").await.is_empty());

    // Past the boundary, the worker settles what was available by it, and pays it out.
    server.clock.advance_ms(FIVE_MINUTES_MS);
    let second = paid(&api, 500, "EUR", CARD_APPROVED, None).await;
    step(&server).await;
    let made = api.list_all("/v1/settlements").await;
    assert_eq!(made.len(), 1);
    let lines = assert_adds_up(&api, &made[0]).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["source"], first.as_str());
    assert_eq!(made[0]["status"], "paid");
    // The period ends at the boundary, and runs within the same interval find nothing.
    step(&server).await;
    server.clock.advance_ms(60_000);
    step(&server).await;
    assert_eq!(api.list_all("/v1/settlements").await.len(), 1);

    server.clock.advance_ms(FIVE_MINUTES_MS);
    step(&server).await;
    let made = api.list_all("/v1/settlements").await;
    assert_eq!(made.len(), 2);
    let lines = assert_adds_up(&api, &made[0]).await;
    assert_eq!(lines[0]["source"], second.as_str());
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn a_manual_test_schedule_settles_test_mode_only_on_demand() {
    // Stepped workers: every pass below provably ran, and nothing runs between them.
    let server = TestServer::start_with(Options {
        settlements: Some(SettlementsConfig {
            test_schedule: "manual".into(),
            ..SettlementsConfig::default()
        }),
        live_sandbox: true,
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let payment = paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let live_payment = live.create_payment(payment_body(2000, json!({}))).await;
    pay_at_checkout(&live_payment, CARD_APPROVED).await;

    // Many test intervals later, and past the live funds' T+2 and a daily cut-off.
    server.clock.advance_ms(3 * 86_400_000);
    step(&server).await;
    assert!(
        api.list_all("/v1/settlements").await.is_empty(),
        "no scheduled run settles test mode"
    );
    assert_eq!(
        live.list_all("/v1/settlements").await.len(),
        1,
        "live mode keeps its daily schedule"
    );
    for _ in 0..3 {
        server.clock.advance_ms(FIVE_MINUTES_MS);
        step(&server).await;
    }
    assert!(api.list_all("/v1/settlements").await.is_empty());

    // On demand it settles, and pays out at once.
    let made = run_now(&api).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["status"], "paid");
    let lines = assert_adds_up(&api, &made[0]).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["source"], payment.as_str());
    step(&server).await;
    assert_eq!(api.list_all("/v1/settlements").await.len(), 1);
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn a_negative_settlement_is_collected_by_a_positive_payout() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    let first = run_now(&api).await.remove(0);
    assert_eq!(int(&first["net"]), 961);
    assert_balance_is_the_sum_of_net(&api).await;
    // Refunded after its money was paid out: the balance goes below zero.
    api.post_json("/v1/refunds", json!({"payment": payment, "amount": 700}))
        .await
        .expect_status(201);
    server.finish_refunds(&api).await;
    assert_balance_is_the_sum_of_net(&api).await;
    let second = run_now(&api).await.remove(0);
    assert_eq!(
        (int(&second["refunds"]), int(&second["net"])),
        (700, -700),
        "{second}"
    );
    // The first payout is not gathered into the second settlement: only the refund is.
    let lines = assert_adds_up(&api, &second).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "refund");
    // Its payout collects what the merchant owed.
    let payout = payout_of(&api, &second).await;
    assert_eq!(int(&payout["amount"]), 700);
    let balance = api.get("/v1/balance").await;
    assert_eq!(
        balance.expect_status(200)["available"][0]["amount"],
        0,
        "{}",
        balance.text
    );
    assert_balance_is_the_sum_of_net(&api).await;
    let payouts = api.list_all("/v1/balance_transactions?type=payout").await;
    assert_eq!(
        payouts.iter().map(|b| int(&b["net"])).collect::<Vec<_>>(),
        vec![700, -961],
        "newest first"
    );
    // Payouts are never settled: a further run finds nothing.
    assert!(run_now(&api).await.is_empty());
    api.get("/v1/balance_transactions?type=payouts")
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("type"),
        );
    assert_ledger_consistent(server.database_url()).await;
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

/// Migration 0008 books the payouts made before it (ledger entries under the settlement's id,
/// no balance transaction) as the same `payout` balance transactions the server books now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_8_books_the_payouts_made_before_it() {
    let database = fresh_database().await;
    let on = |database: &common::database::TestDatabase| Options {
        database_url: Some(database.url.clone()),
        ..Options::default()
    };
    let server = TestServer::start_with(on(&database)).await;
    let account = server.sandbox_account();
    let api = server.api();
    let payment = paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    paid(&api, 500, "JPY", CARD_APPROVED, None).await;
    assert_eq!(run_now(&api).await.len(), 2);
    api.post_json("/v1/refunds", json!({"payment": payment, "amount": 999}))
        .await
        .expect_status(201);
    server.finish_refunds(&api).await;
    assert_eq!(int(&run_now(&api).await[0]["net"]), -999);
    let booked = api.list_all("/v1/balance_transactions").await;
    assert_eq!(
        booked.iter().filter(|b| b["type"] == "payout").count(),
        3,
        "{booked:?}"
    );
    server.stop().await;

    // Back to the data as 0007 left it, and 0008 not applied.
    let url = &database.url;
    execute(
        url,
        "UPDATE ledger_entries SET movement_id = (SELECT b.source FROM balance_transactions b
             WHERE b.id = ledger_entries.movement_id)
         WHERE movement_id IN (SELECT id FROM balance_transactions WHERE type = 'payout')",
    )
    .await;
    assert_eq!(
        execute(
            url,
            "DELETE FROM balance_transactions WHERE type = 'payout'"
        )
        .await,
        3
    );
    execute(url, "DELETE FROM schema_migrations WHERE version = 8").await;
    // And 0009 after it (its running totals are rebuilt from the ledger 0008 leaves).
    execute(url, "DELETE FROM schema_migrations WHERE version = 9").await;
    // And every later one (10: platform keys, 11: test clocks), which a database at 7
    // cannot have yet.
    execute(url, "DELETE FROM schema_migrations WHERE version >= 10").await;
    // 16: dashboard sessions and the events-by-object index.
    execute(url, "DROP TABLE dashboard_sessions").await;
    execute(url, "DROP INDEX events_object").await;
    // 19: the processor claim's attempt and owner, and the acquirer cancels due.
    execute(url, "DROP INDEX payments_processor_cancel_due").await;
    execute(url, "ALTER TABLE payments DROP COLUMN processor_cancel_due").await;
    execute(
        url,
        "ALTER TABLE payments DROP COLUMN processor_claim_owner",
    )
    .await;
    execute(url, "ALTER TABLE payments DROP COLUMN processor_attempt").await;
    // 18: the request headers of webhook attempts.
    execute(
        url,
        "ALTER TABLE webhook_attempts DROP COLUMN request_headers",
    )
    .await;
    // 17: connectors (the processor claim and the attempts).
    execute(url, "DROP TABLE payment_attempts").await;
    execute(url, "DROP INDEX payments_processor_claimed").await;
    execute(
        url,
        "ALTER TABLE payments DROP COLUMN processor_claimed_until",
    )
    .await;
    execute(url, "ALTER TABLE payments DROP COLUMN processor").await;
    // 15: the auth version (its fault_rules triggers go with that table below).
    if url.starts_with("postgres") {
        execute(url, "DROP TRIGGER api_keys_auth ON api_keys").await;
        execute(url, "DROP TRIGGER accounts_auth ON accounts").await;
    } else {
        for trigger in [
            "api_keys_update_auth",
            "api_keys_delete_auth",
            "accounts_clock_auth",
            "accounts_delete_auth",
        ] {
            execute(url, &format!("DROP TRIGGER {trigger}")).await;
        }
        execute(url, "DROP TABLE auth_version").await;
    }
    // 13: fault rules.
    execute(url, "DROP TABLE fault_rules").await;
    if url.starts_with("postgres") {
        execute(url, "DROP FUNCTION vinr_auth_changed()").await;
    }
    // 12: disputes (0012 rebuilds the settlements table on SQLite, and so runs again as is).
    execute(url, "DROP TABLE disputes").await;
    execute(url, "ALTER TABLE payments DROP COLUMN amount_disputed").await;
    if url.starts_with("postgres") {
        execute(url, "ALTER TABLE settlements DROP COLUMN disputes").await;
        execute(
            url,
            "ALTER TABLE balance_transactions DROP CONSTRAINT balance_transactions_dispute_check",
        )
        .await;
    }
    for index in ["btx_one_dispute", "btx_one_dispute_reversal"] {
        execute(url, &format!("DROP INDEX IF EXISTS {index}")).await;
    }
    // 14: webhook faults.
    execute(url, "DROP INDEX webhook_deliveries_held").await;
    for (table, column) in [
        ("webhook_endpoints", "faults"),
        ("webhook_attempts", "fault"),
        ("webhook_deliveries", "held_at"),
        ("webhook_deliveries", "released_by"),
    ] {
        execute(url, &format!("ALTER TABLE {table} DROP COLUMN {column}")).await;
    }
    execute(url, "DROP TABLE platform_keys").await;
    for index in [
        "accounts_clocked",
        "payments_account_due_expiry",
        "payments_account_due_auto_cancel",
    ] {
        execute(url, &format!("DROP INDEX {index}")).await;
    }
    execute(url, "ALTER TABLE accounts DROP COLUMN test_clock_ms").await;
    execute(url, "DROP TABLE balance_totals").await;
    execute(url, "DROP INDEX btx_by_available_on").await;
    if url.starts_with("postgres") {
        execute(
            url,
            "ALTER TABLE balance_transactions DROP CONSTRAINT balance_transactions_payout_check",
        )
        .await;
        execute(url, "DROP INDEX btx_one_payout").await;
    }

    let server = TestServer::start_with(on(&database)).await;
    let (_, api) = server.new_key(&account, Mode::Test, &[]).await;
    // The same transactions; the migrated payouts are listed after everything made before
    // the migration (lists follow insertion order).
    let by_id = |list: Vec<Value>| -> BTreeMap<String, Value> {
        list.into_iter().map(|b| (id_of(&b), b)).collect()
    };
    assert_eq!(
        by_id(api.list_all("/v1/balance_transactions").await),
        by_id(booked),
        "the migration books the payouts the server would have"
    );
    assert_balance_is_the_sum_of_net(&api).await;
    assert_ledger_consistent(url).await;
    assert_settlements_consistent(url).await;
    // And the server goes on booking them the same way.
    paid(&api, 2000, "EUR", CARD_APPROVED, None).await;
    let next = run_now(&api).await.remove(0);
    payout_of(&api, &next).await;
    assert_balance_is_the_sum_of_net(&api).await;
    assert_ledger_consistent(url).await;
    server.stop().await;
    drop(database);
}

#[tokio::test]
async fn a_manual_account_is_settled_only_on_demand() {
    let server = TestServer::start().await;
    let api = server.api();
    paid(&api, 1000, "EUR", CARD_APPROVED, None).await;
    server.clock.advance_ms(3 * FIVE_MINUTES_MS);
    step(&server).await;
    assert!(api.list_all("/v1/settlements").await.is_empty());
    assert_eq!(run_now(&api).await.len(), 1);
    server.stop().await;
}

/// SPEC §7's invariants over everything the key can see: every captured payment and every
/// refund is in exactly one settlement once due (here: after a final run, everything), each
/// settlement's `net` is its transactions' and `gross − refunds − disputes − fees`, and the settlements
/// plus the unsettled balance are the ledger's total.
async fn assert_invariants(api: &Api) {
    let settled = api.list_all("/v1/settlements").await;
    let transactions = api.list_all("/v1/balance_transactions").await;
    let mut seen = BTreeSet::new();
    for settlement in &settled {
        for line in assert_adds_up(api, settlement).await {
            assert!(
                seen.insert(id_of(&line)),
                "{} is in two settlements",
                id_of(&line)
            );
        }
    }
    let (payouts, unsettled): (Vec<&Value>, Vec<&Value>) = transactions
        .iter()
        .filter(|b| b["settlement"].is_null())
        .partition(|b| b["type"] == "payout");
    assert_eq!(
        seen.len() + unsettled.len() + payouts.len(),
        transactions.len(),
        "every transaction is settled once or not yet, or is a payout"
    );
    // Each paid settlement with something to pay has exactly one payout, of its `net`.
    let paying: Vec<&Value> = settled
        .iter()
        .filter(|s| s["status"] == "paid" && int(&s["net"]) != 0)
        .collect();
    assert_eq!(
        payouts.len(),
        paying.len(),
        "one payout per paid settlement"
    );
    for settlement in paying {
        let payout = payouts
            .iter()
            .find(|b| b["source"] == settlement["id"])
            .unwrap_or_else(|| panic!("no payout for {settlement}"));
        assert_eq!(int(&payout["net"]), -int(&settlement["net"]));
    }
    for payment in api.payments().await {
        if int(&payment["amountCaptured"]) > 0 {
            let id = id_of(&payment);
            let booked: Vec<&Value> = transactions
                .iter()
                .filter(|b| b["source"] == id.as_str() && b["type"] == "payment")
                .collect();
            assert_eq!(booked.len(), 1, "{id} is booked once");
        }
    }
    let balance = api.get("/v1/balance").await;
    let balance = balance.expect_status(200);
    for currency in ["EUR", "JPY", "KWD"] {
        let total: i64 = transactions
            .iter()
            .filter(|b| b["currency"] == currency)
            .map(|b| int(&b["net"]))
            .sum();
        let in_settlements: i64 = settled
            .iter()
            .filter(|s| s["currency"] == currency)
            .map(|s| int(&s["net"]))
            .sum();
        let paid_out: i64 = settled
            .iter()
            .filter(|s| s["currency"] == currency && s["status"] == "paid")
            .map(|s| int(&s["net"]))
            .sum();
        let on_balance: i64 = ["available", "pending"]
            .iter()
            .flat_map(|side| balance[*side].as_array().expect("a list"))
            .filter(|amount| amount["currency"] == currency)
            .map(|amount| int(&amount["amount"]))
            .sum();
        let unsettled_net: i64 = unsettled
            .iter()
            .filter(|b| b["currency"] == currency)
            .map(|b| int(&b["net"]))
            .sum();
        let payouts_net: i64 = payouts
            .iter()
            .filter(|b| b["currency"] == currency)
            .map(|b| int(&b["net"]))
            .sum();
        assert_eq!(
            payouts_net, -paid_out,
            "{currency}: payouts are what was paid"
        );
        assert_eq!(
            in_settlements + unsettled_net + payouts_net,
            total,
            "{currency}"
        );
        assert_eq!(
            on_balance, total,
            "{currency}: the balance is the sum of every balance transaction's net"
        );
        assert_eq!(
            on_balance,
            in_settlements + unsettled_net - paid_out,
            "{currency}: the balance is what was not paid out"
        );
    }
    assert_balance_is_the_sum_of_net(api).await;
}

/// Random payments, captures, refunds (some failing) and runs, with the clock moving.
async fn random_workload(server: &TestServer, api: &Api, seed: u64, steps: usize) {
    let mut rng = Lcg(seed);
    let currencies = ["EUR", "JPY", "KWD"];
    let mut completed: Vec<String> = Vec::new();
    let mut disputes: Vec<String> = Vec::new();
    for _ in 0..steps {
        match rng.below(9) {
            0..=2 => {
                let currency = currencies[rng.below(3) as usize];
                let amount = 1 + rng.below(30_000) as i64;
                let card = match rng.below(8) {
                    0 | 1 => CARD_REFUNDS_FAIL,
                    2 => CARD_DISPUTED,
                    _ => CARD_APPROVED,
                };
                let capture = (rng.below(3) == 0).then(|| 1 + rng.below(amount as u64) as i64);
                completed.push(paid(api, amount, currency, card, capture).await);
            }
            3 if !completed.is_empty() => {
                let id = &completed[rng.below(completed.len() as u64) as usize];
                let reply = api
                    .post_json(
                        "/v1/refunds",
                        json!({"payment": id, "amount": 1 + rng.below(10_000)}),
                    )
                    .await;
                assert!(reply.status == 201 || reply.status == 422, "{}", reply.json);
            }
            4 => server.finish_refunds(api).await,
            // A dispute (SPEC §11) of part of a payment, where money is left.
            7 if !completed.is_empty() => {
                let id = &completed[rng.below(completed.len() as u64) as usize];
                let reply = api
                    .post_json(
                        &format!("/v1/test_helpers/payments/{id}/dispute"),
                        json!({"amount": 1 + rng.below(10_000)}),
                    )
                    .await;
                assert!(reply.status == 201 || reply.status == 422, "{}", reply.json);
                if reply.status == 201 {
                    disputes.push(id_of(&reply.json));
                }
            }
            // Its end: won or lost on submit, accepted, or decided after review.
            8 if !disputes.is_empty() => {
                let id = disputes.remove(rng.below(disputes.len() as u64) as usize);
                let path = format!("/v1/disputes/{id}");
                let reply = match rng.below(4) {
                    0 => {
                        api.post_json(
                            &path,
                            json!({"submit": true, "evidence":
                            {"uncategorizedText": "winning_evidence"}}),
                        )
                        .await
                    }
                    1 => {
                        api.post_json(
                            &path,
                            json!({"submit": true, "evidence":
                            {"uncategorizedText": "losing_evidence"}}),
                        )
                        .await
                    }
                    2 => api.post_json(&format!("{path}/close"), json!({})).await,
                    _ => {
                        api.post_json(&path, json!({"submit": true}))
                            .await
                            .expect_status(200);
                        let outcome = if rng.below(2) == 0 { "won" } else { "lost" };
                        api.post_json(
                            &format!("/v1/test_helpers/disputes/{id}/resolve"),
                            json!({ "outcome": outcome }),
                        )
                        .await
                    }
                };
                reply.expect_status(200);
            }
            5 => {
                run_now(api).await;
            }
            _ => {
                server
                    .clock
                    .advance_ms(1 + rng.below(FIVE_MINUTES_MS as u64) as i64);
                step(server).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_after_a_random_workload() {
    let server = TestServer::start_with(Options {
        settlements: Some(SettlementsConfig::default()),
        ..Options::default()
    })
    .await;
    let api = server.api();
    random_workload(&server, &api, 0x5e771e, 120).await;
    let disputes = api.list_all("/v1/disputes").await;
    assert!(
        disputes.iter().any(|d| d["status"] == "won")
            && disputes.iter().any(|d| d["status"] == "lost"),
        "the workload ends disputes both ways: {disputes:?}"
    );
    // A won dispute is reversed by exactly its amount; the others are not reversed.
    for dispute in &disputes {
        let reversals: Vec<i64> = api
            .list_all(&format!(
                "/v1/balance_transactions?type=dispute_reversal&source={}",
                id_of(dispute)
            ))
            .await
            .iter()
            .map(|b| int(&b["amount"]))
            .collect();
        let expected = if dispute["status"] == "won" {
            vec![int(&dispute["amount"])]
        } else {
            vec![]
        };
        assert_eq!(reversals, expected, "{dispute}");
    }
    // Some transactions may still be unsettled here; the invariants hold all the same.
    assert_invariants(&api).await;
    server.finish_refunds(&api).await;
    run_now(&api).await;
    assert_invariants(&api).await;
    let left: Vec<Value> = api
        .list_all("/v1/balance_transactions")
        .await
        .into_iter()
        .filter(|b| b["settlement"].is_null() && b["type"] != "payout")
        .collect();
    assert!(left.is_empty(), "nothing due is left out: {left:?}");
    assert_ledger_consistent(server.database_url()).await;
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_running_settlement_at_once_settle_everything_once() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let clock = manual_clock();
    let node = || {
        TestServer::start_with(Options {
            database_url: Some(database.url.clone()),
            clock: Some(clock.clone()),
            ..Options::default()
        })
    };
    let (a, b) = tokio::join!(node(), node());
    let account = a
        .account_id
        .clone()
        .or(b.account_id.clone())
        .expect("one bootstrap");
    let (_, api) = a.new_key(&account, Mode::Test, &[]).await;
    // Several accounts, so a run is many transactions that the nodes interleave.
    let mut apis = vec![api];
    for n in 0..5 {
        apis.push(a.new_account(&format!("merchant {n}")).await.1);
    }
    for round in 0..4 {
        for (n, api) in apis.iter().enumerate() {
            for currency in ["EUR", "JPY"] {
                paid(
                    api,
                    1000 + (round * 10 + n) as i64,
                    currency,
                    CARD_APPROVED,
                    None,
                )
                .await;
            }
        }
        let everyone = settlements::Selection {
            on_demand: true,
            ..settlements::Selection::default()
        };
        let (one, two) = tokio::join!(
            settlements::run_once(
                &a.app().store,
                &a.app().settings.settlements,
                clock.now(),
                &everyone
            ),
            settlements::run_once(
                &b.app().store,
                &b.app().settings.settlements,
                clock.now(),
                &everyone
            ),
        );
        let (one, two) = (one.expect("node a runs"), two.expect("node b runs"));
        let made: BTreeSet<String> = one
            .created
            .iter()
            .chain(&two.created)
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(made.len(), one.created.len() + two.created.len());
        assert_eq!(
            made.len(),
            apis.len() * 2,
            "one settlement per account and currency per round, whichever node made it"
        );
        clock.advance_ms(1_000);
    }
    for api in &apis {
        assert_invariants(api).await;
        assert_eq!(api.list_all("/v1/settlements").await.len(), 8);
    }
    assert_settlements_consistent(&database.url).await;
    assert_ledger_consistent(&database.url).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn live_funds_wait_two_days_settle_after_midnight_and_are_paid_out_a_day_later() {
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let server = TestServer::start_with(Options {
        settlements: Some(SettlementsConfig::default()),
        live_sandbox: true,
        ..Options::default()
    })
    .await;
    // Day D, 10:00 UTC.
    let now = server.clock.now().0;
    server
        .clock
        .advance_ms(DAY_MS - now.rem_euclid(DAY_MS) + 10 * HOUR_MS);
    let day = server.clock.now().0 - 10 * HOUR_MS;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let payment = live
        .create_payment(payment_body(1000, json!({"currency": "EUR"})))
        .await;
    pay_at_checkout(&payment, CARD_APPROVED).await;
    let id = id_of(&payment);
    assert_eq!(live.payment(&id).await["status"], "completed");
    let booked = live
        .list_all(&format!("/v1/balance_transactions?source={id}"))
        .await;
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0]["livemode"], true);
    // T+2: available at midnight two days later.
    let two_days_later = vinr_server::render::timestamp(vinr_domain::UnixMillis(day + 2 * DAY_MS));
    assert_eq!(booked[0]["availableOn"], two_days_later.as_str());
    let balance = |api: Api| async move {
        let reply = api.get("/v1/balance").await;
        let body = reply.expect_status(200).clone();
        let first = |side: &str| {
            body[side]
                .as_array()
                .and_then(|a| a.first())
                .map(|a| int(&a["amount"]))
        };
        (first("available"), first("pending"))
    };
    assert_eq!(balance(live.clone()).await, (Some(0), Some(961)));

    // Day D+1 just after midnight: not available yet, nothing to settle.
    server.clock.advance_ms(DAY_MS - 10 * HOUR_MS + 1_000);
    step(&server).await;
    assert!(live.list_all("/v1/settlements").await.is_empty());
    // Day D+2 just after midnight: the daily run settles it; the payout waits 24 h.
    server.clock.advance_ms(DAY_MS);
    step(&server).await;
    let made = live.list_all("/v1/settlements").await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["status"], "pending");
    assert!(
        live.list_all("/v1/balance_transactions?type=payout")
            .await
            .is_empty(),
        "no payout before the settlement is paid"
    );
    assert_eq!(made[0]["livemode"], true);
    assert_eq!(made[0]["periodEnd"], two_days_later.as_str());
    assert_eq!(int(&made[0]["net"]), 961);
    assert_eq!(balance(live.clone()).await, (Some(961), Some(0)));
    // Another run the same day finds nothing new.
    server.clock.advance_ms(12 * HOUR_MS);
    step(&server).await;
    assert_eq!(live.list_all("/v1/settlements").await.len(), 1);
    assert_eq!(
        live.list_all("/v1/settlements").await[0]["status"],
        "pending"
    );
    // 24 h after it was made, the payout is sent.
    server.clock.advance_ms(12 * HOUR_MS);
    step(&server).await;
    let paid_out = live.list_all("/v1/settlements").await;
    assert_eq!(paid_out[0]["status"], "paid");
    assert_eq!(balance(live.clone()).await, (Some(0), Some(0)));
    // The payout is available at once: it takes the money from the available side.
    let payout = payout_of(&live, &paid_out[0]).await;
    assert_eq!(payout["livemode"], true);
    assert_balance_is_the_sum_of_net(&live).await;
    // Test mode saw none of it.
    assert!(server.api().list_all("/v1/settlements").await.is_empty());
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn the_run_helper_refuses_bad_bodies_and_honours_idempotency_keys() {
    let server = TestServer::start().await;
    let api = server.api();
    paid(&api, 1000, "EUR", CARD_APPROVED, None).await;

    // Bad bodies are refused and settle nothing.
    let garbled = api
        .call(reqwest::Method::POST, RUN)
        .raw(Some("application/json"), b"{not json")
        .send()
        .await;
    assert_eq!(garbled.status, 400, "{}", garbled.text);
    assert_eq!(garbled.json["error"]["code"], "body_invalid");
    let unknown = api.post_json(RUN, json!({"account": "acct_x"})).await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    assert_eq!(unknown.json["error"]["code"], "parameter_unknown");
    assert_eq!(unknown.json["error"]["param"], "account");
    assert!(api.list_all("/v1/settlements").await.is_empty());

    // A key's first run is answered again to a retry, with nothing run twice.
    let keyed = || {
        api.call(reqwest::Method::POST, RUN)
            .json(json!({}))
            .idempotency_key("run-1")
            .send()
    };
    let first = keyed().await;
    let made = first.expect_status(200)["data"].clone();
    assert_eq!(made.as_array().map(Vec::len), Some(1), "{made}");
    assert_eq!(first.header("idempotent-replayed"), None);
    paid(&api, 2000, "EUR", CARD_APPROVED, None).await;
    let retried = keyed().await;
    assert_eq!(retried.expect_status(200)["data"], made);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(api.list_all("/v1/settlements").await.len(), 1);
    // Another key runs: the new payment is settled, once.
    let next = api
        .call(reqwest::Method::POST, RUN)
        .json(json!({}))
        .idempotency_key("run-2")
        .send()
        .await;
    let next = next.expect_status(200)["data"].clone();
    assert_eq!(int(&next[0]["gross"]), 2000, "{next}");
    assert_eq!(api.list_all("/v1/settlements").await.len(), 2);
    assert_settlements_consistent(server.database_url()).await;
    server.stop().await;
}
