//! Fees and the double-entry ledger (SPEC §7), as pure rules: what a capture, its fee, a
//! refund and a failed refund move between ledger accounts. Every movement sums to zero;
//! amounts are integers in the currency's minor units, never floats.
//!
//! Sign convention: an entry's amount is positive for a debit and negative for a credit. The
//! merchant's balance is a liability of the platform, so money the merchant is owed shows as
//! a credit there: the merchant's balance is minus the sum of its entries.

use crate::limits::{DISPUTE_FEE_MINOR_DEFAULT, LIVE_AVAILABILITY_DAYS};
use crate::{Mode, UnixMillis};

/// What an account pays: per captured card payment, and optionally per refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    /// Percentage part in basis points (140 = 1.4 %).
    pub percent_bps: u32,
    /// Fixed part in minor units of the payment's currency.
    pub fixed_minor: u64,
    /// A fee per refund, in minor units (0 by default: SPEC §7, refunds cost nothing and
    /// return no fee). Charged when the refund is made and kept if it fails, as acquirers do.
    pub refund_fixed_minor: u64,
    /// The fee per dispute, in minor units (SPEC §11, default 1 500): charged when the
    /// dispute opens, kept whatever its outcome.
    pub dispute_fee_minor: u64,
}

impl Default for Pricing {
    /// SPEC §7: 1.4 % + 25 minor units, nothing per refund; SPEC §11: 1 500 per dispute.
    fn default() -> Self {
        Pricing {
            percent_bps: 140,
            fixed_minor: 25,
            refund_fixed_minor: 0,
            dispute_fee_minor: DISPUTE_FEE_MINOR_DEFAULT,
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// When money moved at `created_at` may be settled: at once in test mode (SPEC §7), else at
/// midnight UTC `LIVE_AVAILABILITY_DAYS` days after the day it moved.
pub fn available_on(mode: Mode, created_at: UnixMillis) -> UnixMillis {
    match mode {
        Mode::Test => created_at,
        Mode::Live => UnixMillis(
            (created_at.0.div_euclid(DAY_MS) + LIVE_AVAILABILITY_DAYS).saturating_mul(DAY_MS),
        ),
    }
}

const BPS_PER_UNIT: u64 = 10_000;

impl Pricing {
    /// The fee for capturing `captured` minor units: the percentage part rounded half up to a
    /// whole minor unit (the same rule for 0-, 2- and 3-decimal currencies, since it works in
    /// minor units), plus the fixed part, but never more than what was captured (a fee never
    /// makes a payment cost the merchant money).
    pub fn card_fee(self, captured: u64) -> u64 {
        let percent = (u128::from(captured) * u128::from(self.percent_bps)
            + u128::from(BPS_PER_UNIT / 2))
            / u128::from(BPS_PER_UNIT);
        let fee = u64::try_from(percent)
            .unwrap_or(u64::MAX)
            .saturating_add(self.fixed_minor);
        fee.min(captured)
    }
}

/// The ledger accounts money moves between (per merchant account, mode and currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerAccount {
    /// Owed to the platform by the processor for captured payments.
    ProcessorClearing,
    /// Owed by the platform to the merchant.
    MerchantBalance,
    /// The platform's fee revenue.
    FeeRevenue,
    /// Money paid out to the merchant's bank by settlements.
    Payouts,
}

impl LedgerAccount {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerAccount::ProcessorClearing => "processor_clearing",
            LedgerAccount::MerchantBalance => "merchant_balance",
            LedgerAccount::FeeRevenue => "fee_revenue",
            LedgerAccount::Payouts => "payouts",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub account: LedgerAccount,
    /// Minor units; debit positive, credit negative.
    pub amount: i64,
}

fn minor(value: u64) -> i64 {
    // Amounts are bounded far below i64::MAX (limits.rs).
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn transfer(debit: LedgerAccount, credit: LedgerAccount, amount: u64) -> [Entry; 2] {
    [
        Entry {
            account: debit,
            amount: minor(amount),
        },
        Entry {
            account: credit,
            amount: -minor(amount),
        },
    ]
}

/// A capture of `captured` and its fee: the processor owes the captured amount, the merchant
/// is owed it less the fee, the platform earns the fee.
pub fn capture(captured: u64, fee: u64) -> Vec<Entry> {
    let mut entries = transfer(
        LedgerAccount::ProcessorClearing,
        LedgerAccount::MerchantBalance,
        captured,
    )
    .to_vec();
    if fee > 0 {
        entries.extend(transfer(
            LedgerAccount::MerchantBalance,
            LedgerAccount::FeeRevenue,
            fee,
        ));
    }
    entries
}

/// A refund of `amount` (refunds return no fee, SPEC §7): the merchant's balance pays it back
/// through the processor.
pub fn refund(amount: u64) -> Vec<Entry> {
    transfer(
        LedgerAccount::MerchantBalance,
        LedgerAccount::ProcessorClearing,
        amount,
    )
    .to_vec()
}

/// A refund that failed after it was booked: the exact reverse of [`refund`].
pub fn refund_failed(amount: u64) -> Vec<Entry> {
    transfer(
        LedgerAccount::ProcessorClearing,
        LedgerAccount::MerchantBalance,
        amount,
    )
    .to_vec()
}

/// A fee charged on its own (not part of a capture): the merchant pays the platform.
pub fn fee(amount: u64) -> Vec<Entry> {
    transfer(
        LedgerAccount::MerchantBalance,
        LedgerAccount::FeeRevenue,
        amount,
    )
    .to_vec()
}

/// A dispute of `amount` with its `fee`: the bank takes the amount back through the processor,
/// and the merchant pays the platform the fee.
pub fn dispute(amount: u64, fee: u64) -> Vec<Entry> {
    let mut entries = refund(amount);
    if fee > 0 {
        entries.extend(self::fee(fee));
    }
    entries
}

/// A dispute that was won: the bank gives the amount back (the fee is kept).
pub fn dispute_won(amount: u64) -> Vec<Entry> {
    refund_failed(amount)
}

/// A settlement paying `amount` out to the merchant's bank (negative: the merchant owed the
/// platform, and the payout collects it).
pub fn payout(amount: i64) -> Vec<Entry> {
    vec![
        Entry {
            account: LedgerAccount::MerchantBalance,
            amount,
        },
        Entry {
            account: LedgerAccount::Payouts,
            amount: -amount,
        },
    ]
}

/// The kinds of balance transaction (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BalanceType {
    /// A captured payment: `amount` captured, `fee` its card fee.
    Payment,
    /// A refund (negative `amount`), or the reversal of one that failed (positive).
    Refund,
    /// A fee charged on its own (a refund fee): `amount` 0, `fee` what was charged.
    Fee,
    /// A settlement's payout (source the `setl_` id): `amount` minus the settlement's `net`
    /// (positive when a negative settlement collected from the merchant), `fee` 0. Never
    /// gathered into a settlement itself.
    Payout,
    /// A dispute opened (source the `dp_` id): `amount` minus the disputed amount, `fee` the
    /// dispute fee.
    Dispute,
    /// A dispute won: `amount` the disputed amount given back, `fee` 0 (the fee is kept).
    DisputeReversal,
}

impl BalanceType {
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceType::Payment => "payment",
            BalanceType::Refund => "refund",
            BalanceType::Fee => "fee",
            BalanceType::Payout => "payout",
            BalanceType::Dispute => "dispute",
            BalanceType::DisputeReversal => "dispute_reversal",
        }
    }

    pub fn parse(value: &str) -> Option<BalanceType> {
        match value {
            "payment" => Some(BalanceType::Payment),
            "refund" => Some(BalanceType::Refund),
            "fee" => Some(BalanceType::Fee),
            "payout" => Some(BalanceType::Payout),
            "dispute" => Some(BalanceType::Dispute),
            "dispute_reversal" => Some(BalanceType::DisputeReversal),
            _ => None,
        }
    }
}

/// One change to a merchant's balance: what a balance transaction shows (`amount`, `fee`,
/// `net` = `amount` − `fee`, the change to the balance) and the ledger entries behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: BalanceType,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub entries: Vec<Entry>,
}

impl Movement {
    /// A payment captured for `captured`, with its card fee.
    pub fn capture(captured: u64, pricing: Pricing) -> Movement {
        let fee = pricing.card_fee(captured);
        Movement {
            kind: BalanceType::Payment,
            amount: minor(captured),
            fee: minor(fee),
            net: minor(captured) - minor(fee),
            entries: capture(captured, fee),
        }
    }

    /// A refund of `amount`, booked when it is made.
    pub fn refund(amount: u64) -> Movement {
        Movement {
            kind: BalanceType::Refund,
            amount: -minor(amount),
            fee: 0,
            net: -minor(amount),
            entries: refund(amount),
        }
    }

    /// A refund of `amount` that failed: the balance gets it back.
    pub fn refund_reversal(amount: u64) -> Movement {
        Movement {
            kind: BalanceType::Refund,
            amount: minor(amount),
            fee: 0,
            net: minor(amount),
            entries: refund_failed(amount),
        }
    }

    /// A fee of `amount` charged on its own; `None` when there is nothing to charge.
    pub fn fee(amount: u64) -> Option<Movement> {
        (amount > 0).then(|| Movement {
            kind: BalanceType::Fee,
            amount: 0,
            fee: minor(amount),
            net: -minor(amount),
            entries: fee(amount),
        })
    }

    /// A dispute of `amount` opened, with the account's dispute `fee`.
    pub fn dispute(amount: u64, fee: u64) -> Movement {
        Movement {
            kind: BalanceType::Dispute,
            amount: -minor(amount),
            fee: minor(fee),
            net: -minor(amount) - minor(fee),
            entries: dispute(amount, fee),
        }
    }

    /// A dispute of `amount` won: the balance gets the amount back, not the fee.
    pub fn dispute_reversal(amount: u64) -> Movement {
        Movement {
            kind: BalanceType::DisputeReversal,
            amount: minor(amount),
            fee: 0,
            net: minor(amount),
            entries: dispute_won(amount),
        }
    }

    /// The payout of a settlement whose `net` is `settlement_net`: the balance loses it (or,
    /// for a negative settlement, gets back what it owed); `None` when there is nothing to pay.
    pub fn payout(settlement_net: i64) -> Option<Movement> {
        (settlement_net != 0).then(|| Movement {
            kind: BalanceType::Payout,
            amount: -settlement_net,
            fee: 0,
            net: -settlement_net,
            entries: payout(settlement_net),
        })
    }

    /// What this movement changes the merchant's balance by, from its entries.
    pub fn balance_change(&self) -> i64 {
        merchant_balance(&self.entries)
    }
}

/// What the merchant is owed after `entries`: minus the sum of its balance entries.
pub fn merchant_balance<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> i64 {
    -entries
        .into_iter()
        .filter(|entry| entry.account == LedgerAccount::MerchantBalance)
        .map(|entry| entry.amount)
        .sum::<i64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn default_fee_is_one_point_four_percent_plus_25_rounded_half_up() {
        let pricing = Pricing::default();
        // 1.4 % of 1000 = 14 exactly.
        assert_eq!(pricing.card_fee(1000), 39);
        // 1.4 % of 1036 = 14.504 → 15; of 1035 = 14.49 → 14; of 1750 = 24.5 → 25 (half up).
        assert_eq!(pricing.card_fee(1036), 40);
        assert_eq!(pricing.card_fee(1035), 39);
        assert_eq!(pricing.card_fee(1750), 50);
        // Never more than the captured amount.
        assert_eq!(pricing.card_fee(10), 10);
        assert_eq!(pricing.card_fee(99_999_999), 1_400_025);
    }

    #[test]
    fn fees_are_in_minor_units_whatever_the_currency_digits() {
        let pricing = Pricing::default();
        for (code, captured, fee) in [
            // JPY (0 decimals): ¥1234 → 17.276 → ¥17 + ¥25.
            ("JPY", 1234, 42),
            // EUR (2 decimals): €12.34 → 17.276 → 17 cents + 25 cents = €0.42.
            ("EUR", 1234, 42),
            // KWD (3 decimals): 1.234 KWD → 17.276 → 17 fils + 25 fils = 0.042 KWD.
            ("KWD", 1234, 42),
        ] {
            let currency = Currency::parse(code).expect("a currency");
            assert_eq!(pricing.card_fee(captured), fee, "{code}");
            assert!(!currency.format_minor(fee).is_empty());
        }
        assert_eq!(
            Currency::parse("KWD").map(|c| c.format_minor(42)),
            Some("0.042".into())
        );
    }

    #[test]
    fn live_funds_are_available_at_midnight_two_days_later_test_funds_at_once() {
        // 2026-11-25T17:30:00Z → 2026-11-27T00:00:00Z.
        let moved = UnixMillis(1_795_627_800_000);
        assert_eq!(available_on(Mode::Test, moved), moved);
        assert_eq!(
            available_on(Mode::Live, moved),
            UnixMillis(1_795_737_600_000)
        );
        // Exactly midnight still waits two whole days.
        assert_eq!(
            available_on(Mode::Live, UnixMillis(1_795_564_800_000)),
            UnixMillis(1_795_737_600_000)
        );
    }

    #[test]
    fn a_movement_shows_what_its_entries_do_to_the_balance() {
        let pricing = Pricing::default();
        for movement in [
            Movement::capture(1000, pricing),
            Movement::capture(10, pricing),
            Movement::refund(400),
            Movement::refund_reversal(400),
            Movement::fee(30).expect("a fee"),
            Movement::payout(961).expect("a payout"),
            Movement::payout(-400).expect("a negative payout"),
            Movement::dispute(1000, 1500),
            Movement::dispute(1000, 0),
            Movement::dispute_reversal(1000),
        ] {
            assert_eq!(movement.net, movement.amount - movement.fee, "{movement:?}");
            assert_eq!(movement.balance_change(), movement.net, "{movement:?}");
            assert_eq!(movement.entries.iter().map(|e| e.amount).sum::<i64>(), 0);
        }
        let capture = Movement::capture(1000, pricing);
        assert_eq!((capture.amount, capture.fee, capture.net), (1000, 39, 961));
        assert_eq!(Movement::fee(0), None);
        let payout = Movement::payout(961).expect("a payout");
        assert_eq!((payout.amount, payout.fee, payout.net), (-961, 0, -961));
        assert_eq!(Movement::payout(0), None);
        let dispute = Movement::dispute(1000, 1500);
        assert_eq!(
            (dispute.amount, dispute.fee, dispute.net),
            (-1000, 1500, -2500)
        );
        let won = Movement::dispute_reversal(1000);
        assert_eq!((won.amount, won.fee, won.net), (1000, 0, 1000));
        for kind in [
            BalanceType::Payment,
            BalanceType::Refund,
            BalanceType::Fee,
            BalanceType::Payout,
            BalanceType::Dispute,
            BalanceType::DisputeReversal,
        ] {
            assert_eq!(BalanceType::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn every_movement_balances() {
        for entries in [
            capture(1000, 39),
            capture(10, 10),
            refund(400),
            refund_failed(400),
        ] {
            assert_eq!(
                entries.iter().map(|e| e.amount).sum::<i64>(),
                0,
                "{entries:?}"
            );
        }
        let mut all = capture(1000, 39);
        all.extend(refund(400));
        assert_eq!(merchant_balance(&all), 1000 - 39 - 400);
        all.extend(refund_failed(400));
        assert_eq!(merchant_balance(&all), 1000 - 39);
    }
}
