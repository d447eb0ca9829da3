//! Test clocks (SPEC §10): moving one ([`advance`]) and keeping the accounts whose clock runs
//! ahead up to date as real time passes ([`run`]). The work itself is
//! [`crate::flows::clock::run_due`]; this adds what happens outside a transaction: asking the
//! processor about pending refunds, and pruning what is past its retention on that clock.
//!
//! The other workers pass over real time and leave out the test data of these accounts
//! ([`DueOn::RealTime`]); this one takes each of them on its own time.

use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::limits::{
    TEST_CLOCK_ACCOUNTS_PER_PASS_MAX, TEST_CLOCK_INSTANTS_PER_TRANSACTION_MAX,
    TEST_CLOCK_WORKER_INTERVAL_MS,
};
use vinr_domain::UnixMillis;

use crate::flows::clock::{self as flow, ClockRules};
use crate::flows::FlowError;
use crate::state::AppState;
use crate::store::DueOn;

fn rules(app: &AppState, account_id: &str) -> ClockRules {
    let settlements = &app.settings.settlements;
    let schedule = settlements.schedule(account_id);
    ClockRules {
        authorization_ttl_ms: app.settings.authorization_ttl_ms,
        settlement: (!settlements.test_manual)
            .then_some((schedule, settlements.test_interval_minutes)),
        public_url: app.settings.public_url.clone(),
    }
}

/// Runs everything due on `account_id`'s test clock up to `target` (its current time when
/// `None`), then moves the clock to `target`; answers the account's time after it.
pub async fn run_until(
    app: &AppState,
    account_id: &str,
    target: Option<UnixMillis>,
) -> Result<UnixMillis, FlowError> {
    let real = app.clock.now();
    let account = account_id.to_owned();
    let offset = app
        .store
        .read(move |reader| reader.clock_offset(&account))
        .await?;
    let target = target.unwrap_or(real.plus_ms(offset));
    let on = DueOn::AccountClock(account_id.to_owned());
    // Refunds are answered within a second: those pending now are answered now.
    super::refunds::process(app, &on, offset).await?;
    let rules = rules(app, account_id);
    let reached = loop {
        let (account, rules) = (account_id.to_owned(), rules.clone());
        let reached = app
            .store
            .write(move |tx| {
                flow::run_due(
                    tx,
                    &account,
                    real,
                    target,
                    true,
                    &rules,
                    TEST_CLOCK_INSTANTS_PER_TRANSACTION_MAX,
                )
            })
            .await?;
        if reached.done {
            break reached;
        }
    };
    super::maintenance::prune_due(app, &on, reached.now).await?;
    Ok(app.clock.now().plus_ms(reached.now.0 - real.0))
}

/// Moves `account_id`'s test clock forward to `to`, running everything that comes due on the
/// way in time order; answers the account's time after it.
pub async fn advance(
    app: &AppState,
    account_id: &str,
    to: UnixMillis,
) -> Result<UnixMillis, FlowError> {
    run_until(app, account_id, Some(to)).await
}

/// One pass: catches up every account whose test clock runs ahead; answers how many.
pub async fn step(app: &AppState) -> Result<usize, FlowError> {
    let clocked = app
        .store
        .read(|reader| reader.clocked_accounts(TEST_CLOCK_ACCOUNTS_PER_PASS_MAX))
        .await?;
    for account_id in &clocked {
        run_until(app, account_id, None).await?;
    }
    Ok(clocked.len())
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(TEST_CLOCK_WORKER_INTERVAL_MS);
    super::every("test_clock", interval, shutdown, || async {
        // Catching up is routine: only failures are worth a log line.
        step(&app).await.map(|_| ())
    })
    .await;
}
