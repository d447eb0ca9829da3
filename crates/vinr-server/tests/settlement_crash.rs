//! A settlement run killed half-way (SPEC §7, issue 7): `vinr settle` is started on a database
//! with many settlement groups (account × mode × currency, each settled in its own
//! transaction), killed with `kill -9` as soon as the first settlement is committed, and run
//! again. Every balance transaction ends up in exactly one settlement, every group in exactly
//! one settlement, and every settlement adds up. Runs on the backend the suite runs on.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::database::{query_integers, query_strings};
use common::ledger::{assert_ledger_consistent, assert_settlements_consistent};
use common::process::{vinr, vinr_bin};
use common::*;
use serde_json::json;
use tokio::task::JoinSet;

/// Accounts with payments: each has an EUR and a JPY group, so a run is twice this many
/// transactions, enough that it is still running when the first one is seen.
const ACCOUNTS: usize = 100;
/// Fresh data sets tried before giving up on catching a run half-way.
const ATTEMPTS_MAX: usize = 5;
/// How long a run may take to commit its first settlement.
const FIRST_SETTLEMENT_DEADLINE: Duration = Duration::from_secs(60);

/// What one data set holds.
struct Workload {
    database: TestDatabase,
    /// Settlement groups (account, mode, currency) with balance transactions.
    groups: i64,
    /// Balance transactions the payments booked.
    transactions: i64,
}

async fn count(url: &str, sql: &str) -> i64 {
    query_integers(url, sql).await[0]
}

/// A fresh database with [`ACCOUNTS`] accounts, each with two EUR payments (one captured in
/// part, one refunded in part) and one JPY payment, made through a running server that is
/// then stopped.
async fn workload() -> Workload {
    let database = fresh_database().await;
    let server = TestServer::start_with(Options {
        database_url: Some(database.url.clone()),
        ..Options::default()
    })
    .await;
    let mut merchants = JoinSet::new();
    for n in 0..ACCOUNTS {
        let (_, api) = server.new_account(&format!("merchant {n}")).await;
        merchants.spawn(async move {
            let amount = 1000 + n as i64;
            let full = api.create_payment(payment_body(amount, json!({}))).await;
            api.pay(&id_of(&full), CARD_APPROVED)
                .await
                .expect_status(200);
            let part = api
                .create_payment(payment_body(amount, json!({"capture": false})))
                .await;
            api.pay(&id_of(&part), CARD_APPROVED)
                .await
                .expect_status(200);
            api.capture(&id_of(&part), json!({"amount": amount / 2}))
                .await
                .expect_status(200);
            api.post_json(
                "/v1/refunds",
                json!({"payment": id_of(&full), "amount": 100}),
            )
            .await
            .expect_status(201);
            let yen = api
                .create_payment(payment_body(amount, json!({"currency": "JPY"})))
                .await;
            api.pay(&id_of(&yen), CARD_APPROVED)
                .await
                .expect_status(200);
        });
        // A few merchants at a time: enough to overlap requests, not enough to time out.
        while merchants.len() >= 8 {
            if let Some(joined) = merchants.join_next().await {
                joined.expect("a merchant");
            }
        }
    }
    while let Some(joined) = merchants.join_next().await {
        joined.expect("a merchant");
    }
    server.stop().await;

    let url = &database.url;
    let groups = count(
        url,
        "SELECT count(*) FROM (SELECT DISTINCT account_id, mode, currency
             FROM balance_transactions) AS g",
    )
    .await;
    let transactions = count(url, "SELECT count(*) FROM balance_transactions").await;
    assert_eq!(groups, 2 * ACCOUNTS as i64, "an EUR and a JPY group each");
    // Per account: two captures and a refund in EUR, one capture in JPY.
    assert_eq!(transactions, 4 * ACCOUNTS as i64);
    assert_eq!(
        count(
            url,
            "SELECT count(*) FROM balance_transactions WHERE settlement_id IS NOT NULL"
        )
        .await,
        0,
        "nothing is settled before the run"
    );
    Workload {
        database,
        groups,
        transactions,
    }
}

/// `vinr settle` on `url` as a child process; its standard error goes to `log`.
fn start_settle(url: &str, log: &std::path::Path) -> Child {
    let stderr = std::fs::File::create(log).expect("a log file");
    Command::new(vinr_bin())
        .args(["settle", "--database-url", url])
        .env_remove("VINR_DATABASE_URL")
        .env_remove("VINR_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("vinr settle starts")
}

/// What was in the database when the run was killed.
struct Killed {
    settlements: i64,
}

/// Runs `vinr settle` and kills it (`SIGKILL`) as soon as the database holds a settlement.
/// `None` when the run finished, or had settled every group, before the kill landed.
async fn settle_and_kill(workload: &Workload, dir: &std::path::Path) -> Option<Killed> {
    let url = &workload.database.url;
    let log = dir.join("settle-killed.log");
    let mut child = start_settle(url, &log);
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            eprintln!("the run exited ({status}) before a settlement was seen");
            return None;
        }
        if count(url, "SELECT count(*) FROM settlements").await >= 1 {
            child.kill().expect("SIGKILL sent");
            let status = child.wait().expect("the killed child is reaped");
            assert!(!status.success(), "a killed run does not exit 0: {status}");
            break;
        }
        if started.elapsed() > FIRST_SETTLEMENT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no settlement after {FIRST_SETTLEMENT_DEADLINE:?}; the run's log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let settlements = count(url, "SELECT count(*) FROM settlements").await;
    eprintln!(
        "killed after {:?} with {settlements} of {} groups settled",
        started.elapsed(),
        workload.groups
    );
    (settlements < workload.groups).then_some(Killed { settlements })
}

/// A killed run leaves each group settled wholly or not at all: a settlement holds all of its
/// group's transactions and its totals, and has its `settlement.created` event.
async fn assert_whole_groups(url: &str, settlements: i64) {
    assert_eq!(
        count(
            url,
            "SELECT count(*) FROM balance_transactions b WHERE b.settlement_id IS NULL
                 AND b.type <> 'payout' AND EXISTS (SELECT 1 FROM settlements s WHERE s.account_id = b.account_id
                     AND s.mode = b.mode AND s.currency = b.currency)"
        )
        .await,
        0,
        "a settled group has unsettled transactions"
    );
    assert_eq!(
        count(
            url,
            "SELECT count(*) FROM events WHERE type = 'settlement.created'"
        )
        .await,
        settlements,
        "one settlement.created event per settlement, no more"
    );
    assert_settlements_consistent(url).await;
    assert_ledger_consistent(url).await;
}

/// The `setl_` ids a `vinr settle` run printed, one row each.
fn printed_settlements(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.starts_with("setl_"))
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// `vinr settle --report id` succeeds, lists `id`'s transactions and passes every check.
async fn assert_report_adds_up(url: &str, id: &str) {
    let output = vinr(&["settle", "--report", id, "--database-url", url]).await;
    let stdout = output.expect_success();
    assert!(
        stdout.lines().next().is_some_and(|line| line.contains(id)),
        "the report names {id}:\n{stdout}"
    );
    let listed = stdout
        .lines()
        .filter(|line| line.starts_with("btx_"))
        .count() as i64;
    let stated = count(
        url,
        &format!("SELECT transaction_count FROM settlements WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(listed, stated, "one line per transaction:\n{stdout}");
    let checks: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("ok") || line.starts_with("FAIL"))
        .collect();
    // The seven totals, and the payout (a `payout` balance transaction of −net once paid).
    assert_eq!(checks.len(), 8, "eight checks:\n{stdout}");
    assert!(
        checks.iter().any(|line| line.starts_with("ok   payout: ")),
        "the payout is checked:\n{stdout}"
    );
    assert!(
        checks.iter().all(|line| line.starts_with("ok")),
        "every check passes:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_half_way_and_run_again_settles_everything_exactly_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut caught = None;
    for attempt in 1..=ATTEMPTS_MAX {
        let workload = workload().await;
        if let Some(killed) = settle_and_kill(&workload, dir.path()).await {
            caught = Some((workload, killed));
            break;
        }
        eprintln!("attempt {attempt}: the run settled every group before the kill; again");
    }
    let Some((workload, killed)) = caught else {
        panic!(
            "in {ATTEMPTS_MAX} attempts `vinr settle` never got killed half-way through \
             {} groups: the run is too fast to catch, make the workload bigger",
            2 * ACCOUNTS
        );
    };
    let url = workload.database.url.clone();
    assert!(killed.settlements >= 1 && killed.settlements < workload.groups);
    assert_whole_groups(&url, killed.settlements).await;
    let before_kill = query_strings(&url, "SELECT id FROM settlements ORDER BY seq").await;

    // Run again: it settles exactly the groups the killed run had not reached, and sends every
    // payout, those of the killed run's settlements included.
    let output = vinr(&["settle", "--database-url", &url]).await;
    let made = printed_settlements(output.expect_success());
    assert_eq!(
        made.len() as i64,
        workload.groups - killed.settlements,
        "the second run settles the rest:\n{}",
        output.stdout
    );
    assert!(made.iter().all(|id| !before_kill.contains(id)));
    // And a third run has nothing left to do.
    let output = vinr(&["settle", "--database-url", &url]).await;
    let again = printed_settlements(output.expect_success());
    assert!(again.is_empty(), "settled twice: {again:?}");

    // Every balance transaction in exactly one settlement of its own group, and every group
    // settled exactly once (payouts are balance transactions that are never settled).
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM balance_transactions
             WHERE settlement_id IS NULL AND type <> 'payout'"
        )
        .await,
        0,
        "a transaction was left out"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM balance_transactions b WHERE b.type <> 'payout' AND NOT EXISTS (
                 SELECT 1 FROM settlements s WHERE s.id = b.settlement_id
                     AND s.account_id = b.account_id AND s.mode = b.mode
                     AND s.currency = b.currency)"
        )
        .await,
        0,
        "a transaction names no settlement of its own group"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM balance_transactions WHERE type <> 'payout'"
        )
        .await,
        workload.transactions,
        "the runs made or lost balance transactions"
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM settlements").await,
        workload.groups,
        "one settlement per group"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM (SELECT account_id, mode, currency FROM settlements
                 GROUP BY account_id, mode, currency HAVING count(*) <> 1) AS twice"
        )
        .await,
        0,
        "a group was settled twice"
    );
    assert_eq!(
        count(
            &url,
            "SELECT CAST(COALESCE(SUM(transaction_count), 0) AS BIGINT) FROM settlements"
        )
        .await,
        workload.transactions
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM settlements WHERE status <> 'paid'"
        )
        .await,
        0,
        "every test-mode payout is sent"
    );
    for kind in ["settlement.created", "settlement.paid"] {
        assert_eq!(
            count(
                &url,
                &format!("SELECT count(*) FROM events WHERE type = '{kind}'")
            )
            .await,
            workload.groups,
            "one {kind} event per settlement"
        );
    }
    assert_settlements_consistent(&url).await;
    assert_ledger_consistent(&url).await;

    // The reconciliation of one settlement from each run adds up.
    assert_report_adds_up(&url, &before_kill[0]).await;
    assert_report_adds_up(&url, &made[made.len() - 1]).await;
}
