//! Settlements (SPEC §7): when an account's due balance transactions are gathered (its
//! schedule), what a settlement's totals are, and its small state machine (`pending` →
//! `paid`). Pure; the flow gathers the rows and persists the result.

use crate::ids::Prefix;
use crate::ledger::BalanceType;
use crate::time::UnixMillis;
use crate::{Currency, Mode};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// 1970-01-01 was a Thursday: Monday 1970-01-05 starts the first whole week.
const FIRST_MONDAY_MS: i64 = 4 * DAY_MS;
const WEEK_MS: i64 = 7 * DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementStatus {
    /// Gathered; the payout has not been sent yet.
    Pending,
    /// The payout was sent.
    Paid,
}

impl SettlementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SettlementStatus::Pending => "pending",
            SettlementStatus::Paid => "paid",
        }
    }

    pub fn parse(value: &str) -> Option<SettlementStatus> {
        [SettlementStatus::Pending, SettlementStatus::Paid]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// How often an account is settled in live mode. Test mode follows the sandbox's interval
/// (every few minutes) unless the account is `Manual`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Once per UTC day (the default).
    Daily,
    /// Once per week, from Monday 00:00 UTC.
    Weekly,
    /// Only on demand (`vinr settle`, the test helper).
    Manual,
}

impl Schedule {
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Daily => "daily",
            Schedule::Weekly => "weekly",
            Schedule::Manual => "manual",
        }
    }

    pub fn parse(value: &str) -> Option<Schedule> {
        [Schedule::Daily, Schedule::Weekly, Schedule::Manual]
            .into_iter()
            .find(|schedule| schedule.as_str() == value)
    }

    /// The cut-off of a scheduled run at `now`: it settles what was available by the start
    /// of the current period — midnight UTC (daily), Monday midnight UTC (weekly), or in test
    /// mode the last multiple of `test_interval_minutes` — so each period is settled once,
    /// by the first run after it ends. `None` for `Manual` (only on demand).
    pub fn cutoff(
        self,
        mode: Mode,
        now: UnixMillis,
        test_interval_minutes: u32,
    ) -> Option<UnixMillis> {
        let floor =
            |period: i64, origin: i64| (now.0 - origin).div_euclid(period) * period + origin;
        match (self, mode) {
            (Schedule::Manual, _) => None,
            (_, Mode::Test) => {
                let interval = i64::from(test_interval_minutes.max(1)) * MINUTE_MS;
                Some(UnixMillis(floor(interval, 0)))
            }
            (Schedule::Daily, Mode::Live) => Some(UnixMillis(floor(DAY_MS, 0))),
            (Schedule::Weekly, Mode::Live) => Some(UnixMillis(floor(WEEK_MS, FIRST_MONDAY_MS))),
        }
    }
}

/// One balance transaction as a settlement counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub kind: BalanceType,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub created_at: UnixMillis,
}

/// A settlement's figures. `gross` is what captured payments brought, `refunds` what refunds
/// took back (less the reversals of failed ones), `disputes` what disputes took (less what won
/// disputes gave back), `fees` every fee (dispute fees included); `net` is the sum of the
/// lines' `net`, which always equals `gross − refunds − disputes − fees`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub gross: i64,
    pub refunds: i64,
    pub disputes: i64,
    pub fees: i64,
    pub net: i64,
    pub transaction_count: u64,
    /// The earliest line's `created_at`.
    pub period_start: Option<UnixMillis>,
}

impl Totals {
    pub fn of<'a>(lines: impl IntoIterator<Item = &'a Line>) -> Totals {
        let mut totals = Totals::default();
        for line in lines {
            match line.kind {
                BalanceType::Payment => totals.gross += line.amount,
                BalanceType::Refund => totals.refunds -= line.amount,
                BalanceType::Dispute | BalanceType::DisputeReversal => {
                    totals.disputes -= line.amount
                }
                // A payout is never gathered (SPEC §7); if one were, its `net` would break
                // `net = gross − refunds − disputes − fees`, which the settlements table checks.
                BalanceType::Fee | BalanceType::Payout => {}
            }
            totals.fees += line.fee;
            totals.net += line.net;
            totals.transaction_count += 1;
            totals.period_start = Some(
                totals
                    .period_start
                    .map_or(line.created_at, |start| start.min(line.created_at)),
            );
        }
        totals
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub id: String,
    pub account_id: String,
    pub mode: Mode,
    pub currency: Currency,
    pub status: SettlementStatus,
    pub totals: Totals,
    pub period_start: UnixMillis,
    /// The run's cut-off: every line was due by then.
    pub period_end: UnixMillis,
    pub created_at: UnixMillis,
    pub paid_at: Option<UnixMillis>,
}

impl Settlement {
    /// The id of the balance transaction that books this settlement's payout: the
    /// settlement's id under the `btx_` prefix, so there is one per settlement (migration 0008
    /// derives the same ids for the payouts made before payouts were balance transactions).
    pub fn payout_transaction_id(&self) -> String {
        let suffix = self
            .id
            .strip_prefix(Prefix::Settlement.as_str())
            .unwrap_or(&self.id);
        format!("{}{suffix}", Prefix::BalanceTransaction.as_str())
    }

    /// Marks the payout sent; answers `false` when it already was.
    pub fn pay(&mut self, now: UnixMillis) -> bool {
        if self.status == SettlementStatus::Paid {
            return false;
        }
        self.status = SettlementStatus::Paid;
        self.paid_at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: BalanceType, amount: i64, fee: i64, at: i64) -> Line {
        Line {
            kind,
            amount,
            fee,
            net: amount - fee,
            created_at: UnixMillis(at),
        }
    }

    #[test]
    fn totals_add_up_and_net_is_gross_minus_refunds_minus_fees() {
        let lines = [
            line(BalanceType::Payment, 1000, 39, 30),
            line(BalanceType::Payment, 600, 33, 10),
            line(BalanceType::Refund, -400, 0, 40),
            // A failed refund's reversal gives back what it took.
            line(BalanceType::Refund, -100, 0, 50),
            line(BalanceType::Refund, 100, 0, 60),
            line(BalanceType::Fee, 0, 15, 70),
            line(BalanceType::Dispute, -300, 1500, 80),
            line(BalanceType::Dispute, -200, 1500, 90),
            // A won dispute gives back exactly its amount, not the fee.
            line(BalanceType::DisputeReversal, 200, 0, 95),
        ];
        let totals = Totals::of(&lines);
        assert_eq!(totals.gross, 1600);
        assert_eq!(totals.refunds, 400);
        assert_eq!(totals.disputes, 300);
        assert_eq!(totals.fees, 39 + 33 + 15 + 1500 + 1500);
        assert_eq!(totals.net, lines.iter().map(|l| l.net).sum::<i64>());
        assert_eq!(
            totals.net,
            totals.gross - totals.refunds - totals.disputes - totals.fees
        );
        assert_eq!(totals.transaction_count, 9);
        assert_eq!(totals.period_start, Some(UnixMillis(10)));
        assert_eq!(Totals::of(&[]), Totals::default());
    }

    #[test]
    fn scheduled_runs_settle_up_to_the_start_of_the_current_period() {
        // 2026-11-25 (a Wednesday) 17:32 UTC.
        let now = UnixMillis(1_795_627_920_000);
        let midnight = UnixMillis(1_795_564_800_000);
        assert_eq!(Schedule::Daily.cutoff(Mode::Live, now, 5), Some(midnight));
        assert_eq!(
            Schedule::Daily.cutoff(Mode::Live, midnight, 5),
            Some(midnight)
        );
        // Monday 2026-11-23 00:00 UTC.
        let monday = UnixMillis(midnight.0 - 2 * DAY_MS);
        assert_eq!(Schedule::Weekly.cutoff(Mode::Live, now, 5), Some(monday));
        assert_eq!(Schedule::Weekly.cutoff(Mode::Live, monday, 5), Some(monday));
        assert_eq!(
            Schedule::Weekly.cutoff(Mode::Live, UnixMillis(monday.0 - 1), 5),
            Some(UnixMillis(monday.0 - WEEK_MS))
        );
        // Test mode: every `test_interval_minutes` (17:30), whatever the live schedule.
        let half_past = UnixMillis(1_795_627_800_000);
        assert_eq!(Schedule::Daily.cutoff(Mode::Test, now, 5), Some(half_past));
        assert_eq!(Schedule::Weekly.cutoff(Mode::Test, now, 5), Some(half_past));
        assert_eq!(
            Schedule::Daily.cutoff(Mode::Test, now, 1),
            Some(UnixMillis(1_795_627_920_000))
        );
        // Manual: never by the schedule.
        assert_eq!(Schedule::Manual.cutoff(Mode::Test, now, 5), None);
        assert_eq!(Schedule::Manual.cutoff(Mode::Live, now, 5), None);
    }

    #[test]
    fn a_settlement_is_paid_once() {
        let mut settlement = Settlement {
            id: "setl_x".into(),
            account_id: "acct_x".into(),
            mode: Mode::Test,
            currency: Currency::parse("EUR").expect("EUR"),
            status: SettlementStatus::Pending,
            totals: Totals::default(),
            period_start: UnixMillis(0),
            period_end: UnixMillis(1),
            created_at: UnixMillis(1),
            paid_at: None,
        };
        assert!(settlement.pay(UnixMillis(5)));
        assert!(!settlement.pay(UnixMillis(9)));
        assert_eq!(settlement.paid_at, Some(UnixMillis(5)));
        settlement.id = crate::ids::new_id(Prefix::Settlement, UnixMillis(5));
        let payout = settlement.payout_transaction_id();
        assert!(crate::ids::looks_like(Prefix::BalanceTransaction, &payout));
        assert_eq!(payout[4..], settlement.id[5..]);
    }
}
