//! Card numbers: Luhn check, brand detection and the sandbox test cards of SPEC §4. A card
//! number lives only in [`CardNumber`], whose `Debug` is redacted; what is kept of a card is
//! brand, last4 and expiry.

use crate::limits::{
    CARD_EXPIRY_YEAR_MAX, CARD_EXPIRY_YEAR_MIN, CARD_NUMBER_DIGITS_MAX, CARD_NUMBER_DIGITS_MIN,
};
use crate::payment::FailureCode;

/// A Luhn-valid card number of 12–19 digits. Never printed, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardNumber(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardNumberError {
    NotDigits,
    WrongLength,
    ChecksumFailed,
}

impl CardNumber {
    /// Accepts digits with spaces or dashes between them, as shoppers type them.
    pub fn parse(value: &str) -> Result<CardNumber, CardNumberError> {
        let mut digits = String::with_capacity(19);
        for c in value.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(CardNumberError::NotDigits),
            }
            if digits.len() > CARD_NUMBER_DIGITS_MAX {
                return Err(CardNumberError::WrongLength);
            }
        }
        if digits.len() < CARD_NUMBER_DIGITS_MIN {
            return Err(CardNumberError::WrongLength);
        }
        if !luhn_valid(&digits) {
            return Err(CardNumberError::ChecksumFailed);
        }
        Ok(CardNumber(digits))
    }

    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    pub fn brand(&self) -> &'static str {
        let d = self.0.as_bytes();
        let prefix2: u32 = (u32::from(d[0] - b'0')) * 10 + u32::from(d[1] - b'0');
        let prefix4: u32 = self.0[..4].parse().unwrap_or(0);
        match d[0] {
            b'4' => "visa",
            b'5' if (51..=55).contains(&prefix2) => "mastercard",
            b'2' if (2221..=2720).contains(&prefix4) => "mastercard",
            b'3' if prefix2 == 34 || prefix2 == 37 => "amex",
            b'6' if prefix4 == 6011 || prefix2 == 65 => "discover",
            _ => "unknown",
        }
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    sum % 10 == 0
}

/// What the sandbox processor does with a card (SPEC §4 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxOutcome {
    Approve,
    /// 3-D Secure challenge first; the shopper then approves or fails it.
    Challenge,
    Decline(FailureCode),
    /// Approved; every refund of the payment later fails.
    ApproveRefundsFail,
    /// Approved, then disputed for the whole amount (`fraudulent`) as soon as it completes
    /// (SPEC §11).
    ApproveThenDispute,
}

pub fn sandbox_outcome(card: &CardNumber) -> SandboxOutcome {
    match card.digits() {
        "4000000000003220" => SandboxOutcome::Challenge,
        "4000000000000002" => SandboxOutcome::Decline(FailureCode::CardDeclined),
        "4000000000009995" => SandboxOutcome::Decline(FailureCode::InsufficientFunds),
        "4000000000000069" => SandboxOutcome::Decline(FailureCode::ExpiredCard),
        "4000000000000119" => SandboxOutcome::Decline(FailureCode::ProcessingError),
        "4000000000005126" => SandboxOutcome::ApproveRefundsFail,
        "4000000000000259" => SandboxOutcome::ApproveThenDispute,
        // 4242…, 5555…4444 and any other valid number are approved in the sandbox.
        _ => SandboxOutcome::Approve,
    }
}

/// A card expiry (month 1–12, four-digit year) that is not in the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub month: u8,
    pub year: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryError {
    InvalidMonth,
    InvalidYear,
    InPast,
}

impl Expiry {
    /// `now_year`/`now_month` come from the caller's clock. Two-digit years mean 20xx.
    pub fn parse(
        month: u32,
        year: u32,
        now_year: u16,
        now_month: u8,
    ) -> Result<Expiry, ExpiryError> {
        if !(1..=12).contains(&month) {
            return Err(ExpiryError::InvalidMonth);
        }
        let year = if year < 100 {
            CARD_EXPIRY_YEAR_MIN + year
        } else {
            year
        };
        if !(CARD_EXPIRY_YEAR_MIN..=CARD_EXPIRY_YEAR_MAX).contains(&year) {
            return Err(ExpiryError::InvalidYear);
        }
        let (month, year) = (month as u8, year as u16);
        if (year, month) < (now_year, now_month) {
            return Err(ExpiryError::InPast);
        }
        Ok(Expiry { month, year })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_brands() {
        let visa = CardNumber::parse("4242 4242 4242 4242").expect("valid");
        assert_eq!(visa.brand(), "visa");
        assert_eq!(visa.last4(), "4242");
        assert_eq!(
            CardNumber::parse("5555-5555-5555-4444").map(|c| c.brand()),
            Ok("mastercard")
        );
        assert_eq!(
            CardNumber::parse("4242424242424241"),
            Err(CardNumberError::ChecksumFailed)
        );
        assert_eq!(
            CardNumber::parse("4242abcd"),
            Err(CardNumberError::NotDigits)
        );
        assert_eq!(CardNumber::parse("4242"), Err(CardNumberError::WrongLength));
        assert_eq!(
            CardNumber::parse("42424242424242424242"),
            Err(CardNumberError::WrongLength)
        );
        assert_eq!(format!("{visa:?}"), "CardNumber(<redacted>)");
    }

    #[test]
    fn every_test_card_is_valid_and_mapped() {
        let cases = [
            ("4242424242424242", SandboxOutcome::Approve),
            ("4000000000003220", SandboxOutcome::Challenge),
            (
                "4000000000000002",
                SandboxOutcome::Decline(FailureCode::CardDeclined),
            ),
            (
                "4000000000009995",
                SandboxOutcome::Decline(FailureCode::InsufficientFunds),
            ),
            (
                "4000000000000069",
                SandboxOutcome::Decline(FailureCode::ExpiredCard),
            ),
            (
                "4000000000000119",
                SandboxOutcome::Decline(FailureCode::ProcessingError),
            ),
            ("5555555555554444", SandboxOutcome::Approve),
            ("4000000000005126", SandboxOutcome::ApproveRefundsFail),
            ("4000000000000259", SandboxOutcome::ApproveThenDispute),
        ];
        for (number, outcome) in cases {
            let card = CardNumber::parse(number).expect(number);
            assert_eq!(sandbox_outcome(&card), outcome, "{number}");
        }
    }

    #[test]
    fn expiry_rules() {
        assert_eq!(
            Expiry::parse(12, 30, 2026, 11),
            Ok(Expiry {
                month: 12,
                year: 2030
            })
        );
        assert_eq!(
            Expiry::parse(11, 2026, 2026, 11),
            Ok(Expiry {
                month: 11,
                year: 2026
            })
        );
        assert_eq!(Expiry::parse(10, 2026, 2026, 11), Err(ExpiryError::InPast));
        assert_eq!(
            Expiry::parse(13, 2030, 2026, 11),
            Err(ExpiryError::InvalidMonth)
        );
        assert_eq!(
            Expiry::parse(0, 2030, 2026, 11),
            Err(ExpiryError::InvalidMonth)
        );
        assert_eq!(
            Expiry::parse(1, 3000, 2026, 11),
            Err(ExpiryError::InvalidYear)
        );
    }
}
