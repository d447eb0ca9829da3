//! A year of daily settlement runs stays fast (issue 7): 365 simulated days, each a day of
//! payments, partial captures and refunds (some failing) through the API, then the clock moves
//! to the next day and the scheduled run settles the day before. Every run makes exactly that
//! day's settlement with the day's figures, nothing is left unsettled, and a run at the end of
//! the year takes about as long as one at its start. Prints the run times (see
//! `BENCHMARKS.md`); runs on the backend the suite runs on.

mod common;

use std::time::{Duration, Instant};

use common::database::query_integers;
use common::ledger::{assert_ledger_consistent, assert_settlements_consistent};
use common::*;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use vinr_domain::ledger::Pricing;
use vinr_domain::UnixMillis;
use vinr_server::clock::Clock;
use vinr_server::config::{SettlementSettings, SettlementsConfig};
use vinr_server::workers::refunds;
use vinr_server::workers::settlements::{run_once, Selection};

const DAYS: usize = 365;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Card payments per day: between these two.
const PAYMENTS_PER_DAY_MIN: u64 = 10;
const PAYMENTS_PER_DAY_MAX: u64 = 20;
/// Refunds per day that succeed; each day also has one that fails.
const REFUNDS_PER_DAY: usize = 2;
/// Runs compared at each end of the year.
const WINDOW_DAYS: usize = 30;
/// A run at the end of the year may take this many times as long as one at the start…
const SLOWDOWN_RATIO_MAX: f64 = 3.0;
/// …plus this much, so a shared 2-core machine's noise does not fail the test.
const SLOWDOWN_SLACK_MS: f64 = 10.0;

/// What one day should settle to, from what the test did.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    gross: i64,
    refunds: i64,
    fees: i64,
    transactions: u64,
    /// When the day's first balance transaction moved.
    first_at: i64,
}

/// A payment that can still be refunded.
struct Refundable {
    id: String,
    left: i64,
}

/// One payment of the day: created, paid, and captured whole or in part. Answers its id, what
/// was captured, and the card.
async fn payment(
    api: Api,
    amount: i64,
    card: &'static str,
    part: Option<i64>,
) -> (String, i64, &'static str) {
    let created = api
        .create_payment(payment_body(amount, json!({"capture": part.is_none()})))
        .await;
    let id = id_of(&created);
    api.pay(&id, card).await.expect_status(200);
    match part {
        None => (id, amount, card),
        Some(part) => {
            let captured = api.capture(&id, json!({"amount": part})).await;
            assert_eq!(captured.expect_status(200)["status"], "completed");
            (id, part, card)
        }
    }
}

/// Drives the refunds worker until every refund in `refunds` has its expected outcome. The
/// server's own refunds worker runs too, so either may finish a refund.
async fn finish_refunds(server: &TestServer, api: &Api, refunds: &[(String, &str)]) {
    for _ in 0..200 {
        refunds::step(server.app()).await.expect("a refunds step");
        let mut pending = false;
        for (id, outcome) in refunds {
            let refund = api.get(&format!("/v1/refunds/{id}")).await;
            let status = refund.expect_status(200)["status"].clone();
            if status == "pending" {
                pending = true;
            } else {
                assert_eq!(status, *outcome, "refund {id}");
            }
        }
        if !pending {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("refunds still pending: {refunds:?}");
}

/// One day of activity on the server's clock; answers what it should settle to.
async fn one_day(
    server: &TestServer,
    api: &Api,
    rng: &mut Lcg,
    refundable: &mut Vec<Refundable>,
) -> Expected {
    let pricing = Pricing::default();
    let mut expected = Expected {
        first_at: server.clock.now().0,
        ..Expected::default()
    };
    let count = PAYMENTS_PER_DAY_MIN + rng.below(PAYMENTS_PER_DAY_MAX - PAYMENTS_PER_DAY_MIN + 1);
    let mut payments = JoinSet::new();
    for n in 0..count {
        let amount = 100 + rng.below(50_000) as i64;
        // The day's first payment is on the card whose refunds fail; one in four of the rest
        // is captured in part.
        let card = if n == 0 {
            CARD_REFUNDS_FAIL
        } else {
            CARD_APPROVED
        };
        let part = (n > 0 && rng.below(4) == 0).then(|| 1 + rng.below(amount as u64) as i64);
        payments.spawn(payment(api.clone(), amount, card, part));
    }
    let mut doomed = None;
    while let Some(joined) = payments.join_next().await {
        let (id, captured, card) = joined.expect("a payment");
        expected.gross += captured;
        expected.fees += pricing.card_fee(captured as u64) as i64;
        expected.transactions += 1;
        if card == CARD_REFUNDS_FAIL {
            doomed = Some((id, captured));
        } else {
            refundable.push(Refundable { id, left: captured });
        }
    }
    let (doomed, doomed_amount) = doomed.expect("the day's payment on the failing card");

    server.clock.advance_ms(10 * 60_000);
    let mut refunds = Vec::new();
    for _ in 0..REFUNDS_PER_DAY {
        // Any payment of the year so far that has something left to refund.
        let pick = rng.below(refundable.len() as u64) as usize;
        let payment = &mut refundable[pick];
        let amount = 1 + rng.below(payment.left.min(5_000) as u64) as i64;
        let reply = api
            .post_json(
                "/v1/refunds",
                json!({"payment": payment.id, "amount": amount}),
            )
            .await;
        refunds.push((id_of(reply.expect_status(201)), "succeeded"));
        payment.left -= amount;
        if payment.left == 0 {
            refundable.swap_remove(pick);
        }
        expected.refunds += amount;
        expected.transactions += 1;
    }
    let reply = api
        .post_json(
            "/v1/refunds",
            json!({"payment": doomed, "amount": doomed_amount}),
        )
        .await;
    refunds.push((id_of(reply.expect_status(201)), "failed"));
    // The refund and the reversal of its failure: two transactions that cancel out.
    expected.transactions += 2;
    finish_refunds(server, api, &refunds).await;
    expected
}

fn percentile(sorted_ms: &[f64], percent: usize) -> f64 {
    let rank = (sorted_ms.len() * percent).div_ceil(100).max(1);
    sorted_ms[rank - 1]
}

fn mean(ms: &[f64]) -> f64 {
    ms.iter().sum::<f64>() / ms.len() as f64
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_daily_runs_settles_each_day_once_and_stays_fast() {
    let clock = manual_clock();
    // Every day's activity starts at 01:00 UTC.
    let now = clock.now().0;
    let mut day_start = now - now.rem_euclid(DAY_MS) + DAY_MS;
    clock.advance_ms(day_start + HOUR_MS - now);
    // The server's own settlement worker keeps the harness's `manual` schedule, so it never
    // settles behind the test's back (it would race the timed run for the day's settlement);
    // the timed runs are the scheduled run the worker makes, with a daily schedule in which
    // test mode settles once a day.
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let daily = SettlementSettings::new(&SettlementsConfig {
        test_interval_minutes: 1440,
        schedule: "daily".into(),
        ..SettlementsConfig::default()
    })
    .expect("valid settings");
    let api = server.api();
    let mut rng = Lcg(0x005e_771e_2026);
    let mut refundable = Vec::new();
    let mut runs_ms = Vec::with_capacity(DAYS);
    let (mut transactions, mut net) = (0, 0);
    let year = Instant::now();

    for day in 0..DAYS {
        let expected = one_day(&server, &api, &mut rng, &mut refundable).await;
        // A run during the day settles nothing: the day is not over.
        let early = run_once(
            &server.app().store,
            &daily,
            clock.now(),
            &Selection::default(),
        )
        .await
        .expect("a run");
        assert!(early.created.is_empty(), "day {day}: settled early");

        day_start += DAY_MS;
        clock.advance_ms(day_start + HOUR_MS - clock.now().0);
        let started = Instant::now();
        let outcome = run_once(
            &server.app().store,
            &daily,
            clock.now(),
            &Selection::default(),
        )
        .await
        .expect("a run");
        runs_ms.push(started.elapsed().as_secs_f64() * 1000.0);

        assert_eq!(outcome.created.len(), 1, "day {day}: one settlement");
        let settlement = &outcome.created[0];
        let totals = &settlement.totals;
        let settled = Expected {
            gross: totals.gross,
            refunds: totals.refunds,
            fees: totals.fees,
            transactions: totals.transaction_count,
            first_at: settlement.period_start.0,
        };
        assert_eq!(settled, expected, "day {day}: {settlement:?}");
        assert_eq!(totals.net, totals.gross - totals.refunds - totals.fees);
        assert_eq!(settlement.period_end, UnixMillis(day_start), "day {day}");
        transactions += totals.transaction_count as i64;
        net += totals.net;
    }
    let wall = year.elapsed();

    // Every day settled once, adding up, and paid out; nothing left over.
    let url = server.database_url().to_owned();
    let settlements = api.list_all("/v1/settlements").await;
    assert_eq!(settlements.len(), DAYS);
    assert!(settlements.iter().all(|s| s["status"] == "paid"));
    assert_eq!(settlements.iter().map(|s| int(&s["net"])).sum::<i64>(), net);
    assert_eq!(
        query_integers(
            &url,
            "SELECT count(*) FROM balance_transactions
             WHERE settlement_id IS NULL AND type <> 'payout'"
        )
        .await,
        vec![0],
        "transactions left unsettled"
    );
    assert_eq!(
        query_integers(
            &url,
            "SELECT count(*) FROM balance_transactions WHERE type <> 'payout'"
        )
        .await,
        vec![transactions]
    );
    assert_eq!(
        query_integers(
            &url,
            "SELECT count(*) FROM balance_transactions WHERE type = 'payout'"
        )
        .await,
        vec![DAYS as i64],
        "one payout per day's settlement"
    );
    assert_settlements_consistent(&url).await;
    assert_ledger_consistent(&url).await;
    let balance = api.get("/v1/balance").await;
    for side in ["available", "pending"] {
        for amount in balance.expect_status(200)[side].as_array().expect("a list") {
            assert_eq!(amount["amount"], 0, "{side}: {amount}");
        }
    }

    let first = mean(&runs_ms[..WINDOW_DAYS]);
    let last = mean(&runs_ms[DAYS - WINDOW_DAYS..]);
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let backend = if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!(
        "a year of daily runs on {backend}: {DAYS} days, {transactions} balance transactions, \
         {:.1} s wall; runs p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; mean of the first \
         {WINDOW_DAYS} {first:.2} ms, of the last {WINDOW_DAYS} {last:.2} ms",
        wall.as_secs_f64(),
        percentile(&sorted, 50),
        percentile(&sorted, 99),
        sorted[DAYS - 1],
    );
    let quarters: Vec<String> = runs_ms
        .chunks(DAYS.div_ceil(4))
        .map(|quarter| format!("{:.2}", mean(quarter)))
        .collect();
    println!("mean run per quarter: {} ms", quarters.join(" / "));
    assert!(
        last <= SLOWDOWN_RATIO_MAX * first + SLOWDOWN_SLACK_MS,
        "runs got slower over the year: {first:.2} ms at the start, {last:.2} ms at the end"
    );
    server.stop().await;
}
