//! Settlement runs (SPEC §7): every few seconds the worker sends due payouts and, whenever a
//! schedule's period has ended, settles the groups that period made due (test mode never, with
//! `[settlements] test_schedule = "manual"`, SPEC §10); `vinr settle` and the test helper run
//! the same code on demand. Each group is its own transaction
//! ([`settlements::settle_group`]), so a run that dies half-way has settled some groups wholly
//! and the rest not at all, and the next run picks up the rest.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use vinr_domain::limits::{SETTLEMENT_PAYOUTS_PER_TRANSACTION_MAX, SETTLEMENT_WORKER_INTERVAL_MS};
use vinr_domain::settlement::{Schedule, Settlement};
use vinr_domain::{Mode, UnixMillis};

use crate::config::SettlementSettings;
use crate::flows::settlements;
use crate::flows::FlowError;
use crate::state::AppState;
use crate::store::{DueOn, Scope, Store};

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
    let created = settle_due(store, settings, now, selection).await?;
    let paid = send_payouts(store, settings, now, selection).await?;
    Ok(Outcome { created, paid })
}

/// Settles every selected group that has something due at `now` (by its schedule's cut-off,
/// or everything available with [`Selection::on_demand`]).
async fn settle_due(
    store: &Store,
    settings: &SettlementSettings,
    now: UnixMillis,
    selection: &Selection,
) -> Result<Vec<Settlement>, FlowError> {
    let account = selection.account_id.clone();
    let groups = store
        .read(move |reader| reader.unsettled_groups(now, account.as_deref()))
        .await?;
    let mut created = Vec::new();
    for (group, oldest) in groups {
        if selection.mode.is_some_and(|mode| mode != group.scope.mode) {
            continue;
        }
        let cutoff = if selection.on_demand {
            Some(now)
        } else if group.scope.mode == Mode::Test && settings.test_manual {
            // `test_schedule = "manual"`: test mode is settled on demand only.
            None
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
        created.extend(settled);
    }
    Ok(created)
}

/// Sends the payouts due at `now` (of `mode` only, when given).
async fn send_payouts(
    store: &Store,
    settings: &SettlementSettings,
    now: UnixMillis,
    selection: &Selection,
) -> Result<Vec<Settlement>, FlowError> {
    let mut sent = Vec::new();
    for payout_mode in [Mode::Test, Mode::Live] {
        if selection
            .mode
            .is_some_and(|selected| selected != payout_mode)
        {
            continue;
        }
        // One account's test mode is paid out on its clock; everything else on real time.
        let on = match (&selection.account_id, payout_mode) {
            (Some(account_id), Mode::Test) => DueOn::AccountClock(account_id.clone()),
            _ => DueOn::RealTime,
        };
        let before = match payout_mode {
            Mode::Test => now,
            Mode::Live => UnixMillis(now.0 - settings.live_payout_delay_ms),
        };
        loop {
            let on = on.clone();
            let paid = store
                .write(move |tx| {
                    settlements::pay_out(
                        tx,
                        payout_mode,
                        &on,
                        before,
                        now,
                        SETTLEMENT_PAYOUTS_PER_TRANSACTION_MAX,
                    )
                })
                .await?;
            let done = paid.len() < SETTLEMENT_PAYOUTS_PER_TRANSACTION_MAX;
            sent.extend(paid);
            if done {
                break;
            }
        }
    }
    Ok(sent)
}

/// The cut-offs every schedule has reached at `now` (test mode's interval, live daily, live
/// weekly). A scheduled run finds something new to settle only once one of them has moved, so
/// the worker looks for due groups — a scan of every unsettled transaction — only then (and
/// once after it starts), not at every pass.
fn periods(settings: &SettlementSettings, now: UnixMillis) -> [Option<UnixMillis>; 3] {
    let interval = settings.test_interval_minutes;
    [
        Schedule::Daily
            .cutoff(Mode::Test, now, interval)
            .filter(|_| !settings.test_manual),
        Schedule::Daily.cutoff(Mode::Live, now, interval),
        Schedule::Weekly.cutoff(Mode::Live, now, interval),
    ]
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
    // The periods whose groups this node has looked for; `None` until the first pass.
    let settled: Arc<Mutex<Option<[Option<UnixMillis>; 3]>>> = Arc::default();
    let interval = Duration::from_millis(SETTLEMENT_WORKER_INTERVAL_MS);
    super::every("settlements", interval, shutdown, || {
        let (app, settled) = (app.clone(), Arc::clone(&settled));
        async move {
            let now = app.clock.now();
            let reached = periods(&app.settings.settlements, now);
            let seen = *settled.lock().unwrap_or_else(PoisonError::into_inner);
            let mut created = 0;
            if seen != Some(reached) {
                let everyone = Selection::default();
                created = settle_due(&app.store, &app.settings.settlements, now, &everyone)
                    .await?
                    .len();
                *settled.lock().unwrap_or_else(PoisonError::into_inner) = Some(reached);
            }
            let everyone = Selection::default();
            let paid = send_payouts(&app.store, &app.settings.settlements, now, &everyone).await?;
            Ok((created, paid.len()))
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SettlementsConfig;

    #[test]
    fn periods_move_only_at_a_boundary() {
        let settings = SettlementSettings::new(&SettlementsConfig::default()).expect("valid");
        // 2026-11-25 17:32 UTC: within the 17:30–17:35 test interval.
        let now = UnixMillis(1_795_627_920_000);
        let minute = 60_000;
        assert_eq!(
            periods(&settings, now),
            periods(&settings, now.plus_ms(2 * minute))
        );
        assert_ne!(
            periods(&settings, now),
            periods(&settings, now.plus_ms(3 * minute))
        );
        // Live daily and weekly cut-offs stay put within the day.
        let later = periods(&settings, now.plus_ms(3 * minute));
        assert_eq!(periods(&settings, now)[1..], later[1..]);
    }
}
