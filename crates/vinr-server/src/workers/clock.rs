//! Test clocks (SPEC §10): moving one ([`advance`]) and keeping the accounts whose clock runs
//! ahead up to date as real time passes ([`run`]). The work itself is
//! [`crate::flows::clock::run_due`]; this adds what happens outside a transaction: asking the
//! processor about pending refunds, and pruning what is past its retention on that clock.
//!
//! The other workers pass over real time and leave out the test data of these accounts
//! ([`DueOn::RealTime`]); this one takes each of them on its own time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};
use vinr_domain::limits::{
    MAINTENANCE_INTERVAL_MS, TEST_CLOCK_ACCOUNTS_PER_PASS_MAX,
    TEST_CLOCK_INSTANTS_PER_TRANSACTION_MAX, TEST_CLOCK_WORKER_INTERVAL_MS,
};
use vinr_domain::UnixMillis;

use crate::flows::clock::{self as flow, ClockRules, Target};
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

/// Runs everything due on `account_id`'s test clock up to `target`, then moves the clock
/// there; answers the account's time after it.
pub async fn run_until(
    app: &AppState,
    account_id: &str,
    target: Target,
) -> Result<UnixMillis, FlowError> {
    let real = app.clock.now();
    let account = account_id.to_owned();
    let offset = app
        .store
        .read(move |reader| reader.clock_offset(&account))
        .await?;
    let on = DueOn::AccountClock(account_id.to_owned());
    // Refunds are answered within a second: those pending now are answered now.
    super::refunds::process(app, &on, offset).await?;
    let rules = rules(app, account_id);
    let mut target = target;
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
                    &rules,
                    TEST_CLOCK_INSTANTS_PER_TRANSACTION_MAX,
                )
            })
            .await?;
        if reached.done {
            break reached;
        }
        // The rest of the same move: to the instant its first transaction fixed.
        target = Target::At(reached.target);
    };
    super::maintenance::prune_due(app, &on, reached.now).await?;
    Ok(app.clock.now().plus_ms(reached.now.0 - real.0))
}

/// Moves `account_id`'s test clock forward to `to` (or `by` ms past its time when the move
/// starts), running everything that comes due on the way in time order; answers the
/// account's time after it.
pub async fn advance(
    app: &AppState,
    account_id: &str,
    to: Target,
) -> Result<UnixMillis, FlowError> {
    run_until(app, account_id, to).await
}

/// Whether `account_id` has anything to do on its clock now: due work, a pending refund, or
/// (at most once per maintenance interval) pruning. Read only, so that an idle clocked account
/// costs the writer nothing.
async fn has_work(app: &AppState, account_id: &str, prune: bool) -> Result<bool, FlowError> {
    if prune {
        return Ok(true);
    }
    let rules = rules(app, account_id);
    let account = account_id.to_owned();
    let real = app.clock.now();
    let (offset, due, refunds) = app
        .store
        .read(move |reader| {
            Ok::<_, crate::store::StoreError>((
                reader.clock_offset(&account)?,
                reader.due_on_clock(&account)?,
                reader.pending_refunds_on_clock(&account)?,
            ))
        })
        .await?;
    let now = real.plus_ms(offset);
    Ok(refunds || rules.next_instant(&due).is_some_and(|at| at <= now))
}

/// Where the clock worker goes on: the accounts after this id (from the start when `None`),
/// and when each account was last pruned.
#[derive(Default)]
pub struct Progress {
    after: Option<String>,
    pruned_at: HashMap<String, UnixMillis>,
}

/// One pass: catches up the next clocked accounts (at most
/// [`TEST_CLOCK_ACCOUNTS_PER_PASS_MAX`], going on where the last pass stopped); answers how
/// many it caught up. One account's failure is logged and the others go on.
pub async fn step_from(app: &AppState, progress: &mut Progress) -> Result<usize, FlowError> {
    let after = progress.after.clone();
    let clocked = app
        .store
        .read(move |reader| {
            reader.clocked_accounts(after.as_deref(), TEST_CLOCK_ACCOUNTS_PER_PASS_MAX)
        })
        .await?;
    progress.after = match clocked.len() < TEST_CLOCK_ACCOUNTS_PER_PASS_MAX {
        true => None,
        false => clocked.last().cloned(),
    };
    let real = app.clock.now();
    let mut caught_up = 0;
    for account_id in &clocked {
        let prune = progress
            .pruned_at
            .get(account_id)
            .is_none_or(|at| real.0 - at.0 >= MAINTENANCE_INTERVAL_MS as i64);
        let outcome = match has_work(app, account_id, prune).await {
            Ok(false) => continue,
            Ok(true) => run_until(app, account_id, Target::Now).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(_) => {
                caught_up += 1;
                progress.pruned_at.insert(account_id.clone(), real);
            }
            Err(error) => tracing::warn!(account_id, ?error, "test clock: cannot catch up"),
        }
    }
    progress
        .pruned_at
        .retain(|id, _| clocked.contains(id) || progress.after.is_some());
    Ok(caught_up)
}

/// One pass from the first clocked account (tests).
pub async fn step(app: &AppState) -> Result<usize, FlowError> {
    step_from(app, &mut Progress::default()).await
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(TEST_CLOCK_WORKER_INTERVAL_MS);
    let progress = Arc::new(Mutex::new(Progress::default()));
    super::every("test_clock", interval, shutdown, || {
        let (app, progress) = (app.clone(), Arc::clone(&progress));
        async move {
            let mut progress = progress.lock().await;
            // Catching up is routine: only failures are worth a log line.
            step_from(&app, &mut progress).await.map(|_| ())
        }
    })
    .await;
}
