//! Settlement runs (SPEC §7): every few seconds the worker settles the groups whose schedule
//! makes them due and sends due payouts; `vinr settle` and the test helper run the same code
//! on demand. Each group is its own transaction ([`settlements::settle_group`]), so a run that
//! dies half-way has settled some groups wholly and the rest not at all, and the next run
//! picks up the rest.

use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::settlement::Settlement;
use vinr_domain::{Mode, UnixMillis};

use crate::config::SettlementSettings;
use crate::flows::settlements;
use crate::flows::FlowError;
use crate::state::AppState;
use crate::store::{Scope, Store};

const INTERVAL: Duration = Duration::from_secs(2);
const PAYOUTS_PER_TRANSACTION: usize = 100;

/// Which groups a run looks at.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this account (all accounts when `None`).
    pub account_id: Option<String>,
    /// Only this mode (both when `None`).
    pub mode: Option<Mode>,
    /// Settle what is due now, whatever the schedules say.
    pub on_demand: bool,
}

/// What one run did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub created: Vec<Settlement>,
    pub paid: Vec<Settlement>,
}

/// Settles every selected group at `now`, then sends the payouts that are due.
pub async fn run_once(
    store: &Store,
    settings: &SettlementSettings,
    now: UnixMillis,
    selection: &Selection,
) -> Result<Outcome, FlowError> {
    let account = selection.account_id.clone();
    let groups = store
        .read(move |reader| reader.unsettled_groups(now, account.as_deref()))
        .await?;
    let mut outcome = Outcome::default();
    for (group, oldest) in groups {
        if selection.mode.is_some_and(|mode| mode != group.scope.mode) {
            continue;
        }
        let cutoff = if selection.on_demand {
            Some(now)
        } else {
            settings.schedule(&group.scope.account_id).cutoff(
                group.scope.mode,
                now,
                settings.test_interval_minutes,
            )
        };
        let Some(cutoff) = cutoff.filter(|cutoff| oldest <= *cutoff) else {
            continue;
        };
        let settled = store
            .write(move |tx| settlements::settle_group(tx, &group, cutoff, now))
            .await?;
        outcome.created.extend(settled);
    }
    for mode in [Mode::Test, Mode::Live] {
        if selection.mode.is_some_and(|selected| selected != mode) {
            continue;
        }
        let before = match mode {
            Mode::Test => now,
            Mode::Live => UnixMillis(now.0 - settings.live_payout_delay_ms),
        };
        loop {
            let paid = store
                .write(move |tx| {
                    settlements::pay_out(tx, mode, before, now, PAYOUTS_PER_TRANSACTION)
                })
                .await?;
            let done = paid.len() < PAYOUTS_PER_TRANSACTION;
            outcome.paid.extend(paid);
            if done {
                break;
            }
        }
    }
    Ok(outcome)
}

/// The settlements a run made for one account and mode, as the test helper answers them.
pub fn created_in(outcome: &Outcome, scope: &Scope) -> Vec<Settlement> {
    outcome
        .created
        .iter()
        .filter(|s| s.account_id == scope.account_id && s.mode == scope.mode)
        .map(|s| {
            // A test-mode payout may have been sent in the same run.
            outcome
                .paid
                .iter()
                .find(|paid| paid.id == s.id)
                .unwrap_or(s)
                .clone()
        })
        .collect()
}

/// One scheduled pass: answers (settlements made, payouts sent).
pub async fn step(app: &AppState) -> Result<(usize, usize), FlowError> {
    let outcome = run_once(
        &app.store,
        &app.settings.settlements,
        app.clock.now(),
        &Selection::default(),
    )
    .await?;
    Ok((outcome.created.len(), outcome.paid.len()))
}

pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    super::every("settlements", INTERVAL, shutdown, || step(&app)).await;
}
