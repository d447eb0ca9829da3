//! Fees and the double-entry ledger (SPEC §7), as pure rules: what a capture, its fee, a
//! refund and a failed refund move between ledger accounts. Every movement sums to zero;
//! amounts are integers in the currency's minor units, never floats.
//!
//! Sign convention: an entry's amount is positive for a debit and negative for a credit. The
//! merchant's balance is a liability of the platform, so money the merchant is owed shows as
//! a credit there: the merchant's balance is minus the sum of its entries.

/// What an account pays per captured card payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    /// Percentage part in basis points (140 = 1.4 %).
    pub percent_bps: u32,
    /// Fixed part in minor units of the payment's currency.
    pub fixed_minor: u64,
}

impl Default for Pricing {
    /// SPEC §7: 1.4 % + 25 minor units.
    fn default() -> Self {
        Pricing {
            percent_bps: 140,
            fixed_minor: 25,
        }
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
