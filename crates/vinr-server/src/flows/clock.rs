//! An account's test clock (SPEC §10): real time plus an offset that only grows, stored on the
//! account, so every node and worker reads the same time for it.
//!
//! Moving a clock runs what came due on it in time order: at each instant something is due
//! (the first `expiresAt` of an open checkout, the first authorization reaching the capture
//! window, the first settlement cut-off with something to settle, a payout, the first
//! dispute's `evidenceDueBy`), the clock is set
//! to that instant and the work due then is done, stamped with it, as the workers would have
//! done at that moment. A bounded number of instants runs per transaction, and each
//! transaction leaves the clock at the last instant it finished: whoever reads the account's
//! time meanwhile finds everything due by then already done.

use vinr_domain::limits::{
    EXPIRY_BATCH_DISPUTES_MAX, EXPIRY_BATCH_PAYMENTS_MAX, SETTLEMENT_PAYOUTS_PER_TRANSACTION_MAX,
};
use vinr_domain::settlement::Schedule;
use vinr_domain::{Mode, UnixMillis};

use super::{disputes, payments, settlements, FlowError};
use crate::store::{ClockDue, Due, DueOn, Tx};

/// What decides when work comes due on an account's test clock.
#[derive(Debug, Clone)]
pub struct ClockRules {
    /// The capture window: an authorization older than this is cancelled.
    pub authorization_ttl_ms: i64,
    /// The account's settlement schedule in test mode: `None` when test mode is settled on
    /// demand only (`test_schedule = "manual"`, or the account's schedule is `manual`).
    pub settlement: Option<(Schedule, u32)>,
    pub public_url: String,
}

impl ClockRules {
    /// The cut-off of the test-mode settlement period that `now` has reached.
    fn cutoff(&self, now: UnixMillis) -> Option<UnixMillis> {
        let (schedule, minutes) = self.settlement?;
        schedule.cutoff(Mode::Test, now, minutes)
    }

    /// The first instant anything in `due` is to be done.
    pub fn next_instant(&self, due: &ClockDue) -> Option<UnixMillis> {
        // The first cut-off at or after the oldest unsettled `availableOn`.
        let settle = due.unsettled.and_then(|oldest| {
            let (_, minutes) = self.settlement?;
            let period_ms = i64::from(minutes.max(1)) * 60_000;
            let cutoff = self.cutoff(oldest)?;
            Some(if cutoff < oldest {
                cutoff.plus_ms(period_ms)
            } else {
                cutoff
            })
        });
        [
            due.expiry,
            due.authorized
                .map(|at| at.plus_ms(self.authorization_ttl_ms)),
            settle,
            due.payout,
            due.dispute_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Where a clock move goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This instant on the account's clock.
    At(UnixMillis),
    /// This far past the account's time when the move starts (read under the account's row
    /// lock, so that moves of one account made at once add up).
    By(i64),
    /// The account's time now: catching up, the clock stays where it is.
    Now,
}

/// What a call of [`run_due`] reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// The account's time when the transaction ends.
    pub now: UnixMillis,
    /// Where the move goes: the next call of the same move passes `Target::At(target)`.
    pub target: UnixMillis,
    /// Whether everything due by the target is done.
    pub done: bool,
}

/// Runs at most `instants_max` instants of work due on `account_id`'s test clock up to
/// `target`, moving the clock to each in turn, and at the end to the target itself when all
/// is done. `real` is the real time the call is made at. Pending webhook deliveries move with
/// the clock (they are scheduled on real time).
pub fn run_due(
    tx: &mut Tx<'_>,
    account_id: &str,
    real: UnixMillis,
    target: Target,
    rules: &ClockRules,
    instants_max: usize,
) -> Result<Reached, FlowError> {
    let start = tx.clock_offset_for_update(account_id)?;
    let target = match target {
        Target::At(at) => at,
        Target::By(ms) => real.plus_ms(start).plus_ms(ms),
        Target::Now => real.plus_ms(start),
    };
    let on = DueOn::AccountClock(account_id.to_owned());
    let mut offset = start;
    let mut done = false;
    let mut previous: Option<UnixMillis> = None;
    for _ in 0..instants_max {
        let now = real.plus_ms(offset);
        let due = tx.clock_due(account_id)?;
        let Some(next) = rules.next_instant(&due).filter(|at| *at <= target) else {
            done = true;
            break;
        };
        let at = next.max(now);
        offset = at.0 - real.0;
        let changed = run_instant(tx, &on, account_id, at, rules)?;
        if changed == 0 && previous == Some(at) {
            // Due by the query but nothing the flows take (cannot happen while the two agree):
            // stop rather than spin.
            tracing::warn!(
                account_id,
                at = at.0,
                "test clock: due work that nothing takes"
            );
            done = true;
            break;
        }
        previous = Some(at);
    }
    if done {
        offset = offset.max(target.0 - real.0);
    }
    if offset > start {
        tx.advance_clock(account_id, offset)?;
        tx.advance_webhook_schedule(account_id, offset - start)?;
    }
    Ok(Reached {
        now: real.plus_ms(offset),
        target,
        done,
    })
}

/// Everything due at `at` on the clock: expiry, the capture window, dispute deadlines, the
/// settlement period that ended, payouts. Answers how many objects it changed.
fn run_instant(
    tx: &mut Tx<'_>,
    on: &DueOn,
    account_id: &str,
    at: UnixMillis,
    rules: &ClockRules,
) -> Result<usize, FlowError> {
    let batch = EXPIRY_BATCH_PAYMENTS_MAX;
    let url = &rules.public_url;
    let mut changed = payments::sweep(tx, Due::Expiry, on, at, at, batch, url)?;
    let window_start = at.plus_ms(-rules.authorization_ttl_ms);
    changed += payments::sweep(tx, Due::AutoCancel, on, window_start, at, batch, url)?;
    changed += disputes::sweep_deadlines(tx, on, at, EXPIRY_BATCH_DISPUTES_MAX)?;
    if let Some(cutoff) = rules.cutoff(at) {
        for (group, oldest) in tx.settlement_groups_due(at, Some(account_id))? {
            if group.scope.mode != Mode::Test || oldest > cutoff {
                continue;
            }
            changed += usize::from(settlements::settle_group(tx, &group, cutoff, at)?.is_some());
        }
    }
    let paid = settlements::pay_out(
        tx,
        Mode::Test,
        on,
        at,
        at,
        SETTLEMENT_PAYOUTS_PER_TRANSACTION_MAX,
    )?;
    Ok(changed + paid.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(settlement: Option<(Schedule, u32)>) -> ClockRules {
        ClockRules {
            authorization_ttl_ms: 7 * 86_400_000,
            settlement,
            public_url: String::new(),
        }
    }

    #[test]
    fn the_next_instant_is_the_first_thing_due() {
        let due = ClockDue {
            expiry: Some(UnixMillis(10 * 60_000)),
            authorized: Some(UnixMillis(0)),
            unsettled: Some(UnixMillis(3 * 60_000 + 1)),
            payout: None,
            dispute_deadline: None,
        };
        // Settled at the first 5-minute cut-off at or after the oldest `availableOn`.
        let every_five = rules(Some((Schedule::Daily, 5)));
        assert_eq!(every_five.next_instant(&due), Some(UnixMillis(5 * 60_000)));
        let on_a_cutoff = ClockDue {
            unsettled: Some(UnixMillis(5 * 60_000)),
            expiry: None,
            ..due
        };
        assert_eq!(
            every_five.next_instant(&on_a_cutoff),
            Some(UnixMillis(5 * 60_000))
        );
        // On demand only: the checkout expiry comes first.
        assert_eq!(
            rules(None).next_instant(&due),
            Some(UnixMillis(10 * 60_000))
        );
        let only_authorized = ClockDue {
            authorized: Some(UnixMillis(1)),
            ..ClockDue::default()
        };
        assert_eq!(
            rules(None).next_instant(&only_authorized),
            Some(UnixMillis(7 * 86_400_000 + 1))
        );
        let only_a_dispute = ClockDue {
            dispute_deadline: Some(UnixMillis(42)),
            ..ClockDue::default()
        };
        assert_eq!(
            rules(None).next_instant(&only_a_dispute),
            Some(UnixMillis(42))
        );
        assert_eq!(rules(None).next_instant(&ClockDue::default()), None);
    }
}
