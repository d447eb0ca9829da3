//! Money: amounts in integer minor units and the ISO 4217 currency table. No floats anywhere.

use crate::limits::{AMOUNT_MINOR_UNITS_MAX, AMOUNT_MINOR_UNITS_MIN};

/// An amount in minor units, within the bounds of SPEC §2. Built only by [`Amount::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    TooSmall,
    TooLarge,
}

impl Amount {
    pub fn parse(value: i64) -> Result<Amount, AmountError> {
        if value < AMOUNT_MINOR_UNITS_MIN as i64 {
            return Err(AmountError::TooSmall);
        }
        let value = value as u64;
        if value > AMOUNT_MINOR_UNITS_MAX {
            return Err(AmountError::TooLarge);
        }
        Ok(Amount(value))
    }

    pub fn minor_units(self) -> u64 {
        self.0
    }
}

/// An ISO 4217 currency this server accepts, with its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_digits: u8,
}

/// Active ISO 4217 currencies and their minor units. Kept sorted by code (checked in a test).
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

impl Currency {
    /// Every supported code, in upper case: what the published contract lists.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(code, _)| *code)
    }

    /// Accepts a code in any case (SPEC §2); answers `None` for anything not in the table.
    pub fn parse(value: &str) -> Option<Currency> {
        if value.len() != 3 || !value.is_ascii() {
            return None;
        }
        let upper = value.to_ascii_uppercase();
        CURRENCIES
            .binary_search_by(|(code, _)| (*code).cmp(upper.as_str()))
            .ok()
            .map(|index| {
                let (code, minor_digits) = CURRENCIES[index];
                Currency { code, minor_digits }
            })
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    pub fn minor_digits(self) -> u8 {
        self.minor_digits
    }

    /// `1234` EUR → `"12.34"`, JPY → `"1234"`, KWD → `"1.234"`.
    pub fn format_minor(self, minor: u64) -> String {
        let digits = u32::from(self.minor_digits);
        if digits == 0 {
            return minor.to_string();
        }
        let scale = 10u64.pow(digits);
        format!(
            "{}.{:0width$}",
            minor / scale,
            minor % scale,
            width = digits as usize
        )
    }
}

/// Symbols people read before an amount, in the English (CLDR `en`) convention; a currency
/// without one here is written with its code after the number (`1.234 KWD`).
const SYMBOLS: &[(&str, &str)] = &[
    ("AUD", "A$"),
    ("BRL", "R$"),
    ("CAD", "CA$"),
    ("CNY", "CN¥"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("HKD", "HK$"),
    ("ILS", "₪"),
    ("INR", "₹"),
    ("JPY", "¥"),
    ("KRW", "₩"),
    ("MXN", "MX$"),
    ("NZD", "NZ$"),
    ("TWD", "NT$"),
    ("USD", "$"),
    ("VND", "₫"),
];

impl Currency {
    /// An amount as people read it, one convention everywhere (English, as CLDR `en` writes
    /// it): the currency's symbol before the number when it has a well-known one, otherwise
    /// its code after it; digits grouped by three with `,`; the currency's own minor digits
    /// after `.`; a minus sign first. `123456` EUR → `€1,234.56`, `1500` JPY → `¥1,500`,
    /// `1234` KWD → `1.234 KWD`, `-250` USD → `-$2.50`.
    pub fn display_minor(self, minor: i64) -> String {
        let digits = u32::from(self.minor_digits);
        let magnitude = minor.unsigned_abs();
        let scale = 10u64.pow(digits);
        let whole = (magnitude / scale).to_string();
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if digits > 0 {
            grouped.push_str(&format!(
                ".{:0width$}",
                magnitude % scale,
                width = digits as usize
            ));
        }
        let sign = if minor < 0 { "-" } else { "" };
        match SYMBOLS.binary_search_by(|(code, _)| (*code).cmp(self.code)) {
            Ok(index) => format!("{sign}{}{grouped}", SYMBOLS[index].1),
            Err(_) => format!("{sign}{grouped} {}", self.code),
        }
    }

    /// `12.34` or `1,234.56` (the major units people type) → minor units; `None` for text that
    /// is not a non-negative number with at most the currency's minor digits. A comma is only
    /// ever a thousands separator between groups of three digits: `12,50` (a decimal comma) is
    /// refused, never read as 1 250.
    pub fn parse_major(self, text: &str) -> Option<i64> {
        let text = text.trim();
        let integer_part = text.split('.').next().unwrap_or_default();
        if integer_part.contains(',') {
            let mut groups = integer_part.split(',');
            let first = groups.next().unwrap_or_default();
            if first.is_empty() || first.len() > 3 || groups.any(|group| group.len() != 3) {
                return None;
            }
        }
        if text
            .split_once('.')
            .is_some_and(|(_, fraction)| fraction.contains(','))
        {
            return None;
        }
        let text = text.replace(',', "");
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole.to_owned(), fraction.to_owned()),
            None => (text.clone(), String::new()),
        };
        let digits = usize::from(self.minor_digits);
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 12 || !all_digits(&whole) || !all_digits(&fraction) {
            return None;
        }
        if fraction.len() > digits || (text.contains('.') && fraction.is_empty()) {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<digits$}").parse().ok()?
        };
        whole
            .checked_mul(10i64.pow(u32::from(self.minor_digits)))?
            .checked_add(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_read_them() {
        let show = |code: &str, minor: i64| Currency::parse(code).map(|c| c.display_minor(minor));
        assert_eq!(show("EUR", 123_456).as_deref(), Some("€1,234.56"));
        assert_eq!(show("JPY", 1500).as_deref(), Some("¥1,500"));
        assert_eq!(show("KWD", 1234).as_deref(), Some("1.234 KWD"));
        assert_eq!(show("USD", -250).as_deref(), Some("-$2.50"));
        assert_eq!(show("EUR", 5).as_deref(), Some("€0.05"));
        assert_eq!(show("USD", 99_999_999).as_deref(), Some("$999,999.99"));
        assert_eq!(show("JPY", 100).as_deref(), Some("¥100"));
        assert_eq!(show("CHF", 100_000).as_deref(), Some("1,000.00 CHF"));
        assert_eq!(
            show("JPY", i64::MIN).as_deref(),
            Some("-¥9,223,372,036,854,775,808")
        );
        assert!(SYMBOLS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(SYMBOLS
            .iter()
            .all(|(code, _)| Currency::parse(code).is_some()));
    }

    #[test]
    fn major_units_parse_to_minor() {
        let parse =
            |code: &str, text: &str| Currency::parse(code).and_then(|c| c.parse_major(text));
        assert_eq!(parse("EUR", "12.34"), Some(1234));
        assert_eq!(parse("EUR", "12.3"), Some(1230));
        assert_eq!(parse("EUR", "1,234"), Some(123_400));
        assert_eq!(parse("EUR", " 5 "), Some(500));
        assert_eq!(parse("JPY", "1500"), Some(1500));
        assert_eq!(parse("JPY", "15.5"), None);
        assert_eq!(parse("KWD", "1.234"), Some(1234));
        assert_eq!(parse("EUR", "1.234"), None);
        assert_eq!(parse("EUR", "-1"), None);
        assert_eq!(parse("EUR", "1."), None);
        assert_eq!(parse("EUR", ""), None);
        assert_eq!(parse("EUR", "abc"), None);
        assert_eq!(parse("EUR", "9999999999999"), None);
        // A comma only separates thousands: a decimal comma is refused, never read as 1 250.
        assert_eq!(parse("EUR", "12,50"), None);
        assert_eq!(parse("EUR", "1,2"), None);
        assert_eq!(parse("EUR", ",500"), None);
        assert_eq!(parse("EUR", "1234,567"), None);
        assert_eq!(parse("EUR", "1.23,4"), None);
        assert_eq!(parse("EUR", "1,234,567.89"), Some(123_456_789));
    }

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(CURRENCIES.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn parses_any_case_and_answers_upper_case() {
        assert_eq!(Currency::parse("eur").map(Currency::code), Some("EUR"));
        assert_eq!(Currency::parse("Jpy").map(Currency::minor_digits), Some(0));
        assert_eq!(Currency::parse("KWD").map(Currency::minor_digits), Some(3));
        assert_eq!(Currency::parse("XXX"), None);
        assert_eq!(Currency::parse("EURO"), None);
        assert_eq!(Currency::parse("€€"), None);
    }

    #[test]
    fn amount_bounds() {
        assert_eq!(Amount::parse(0), Err(AmountError::TooSmall));
        assert_eq!(Amount::parse(-5), Err(AmountError::TooSmall));
        assert_eq!(Amount::parse(1).map(Amount::minor_units), Ok(1));
        assert_eq!(
            Amount::parse(99_999_999).map(Amount::minor_units),
            Ok(99_999_999)
        );
        assert_eq!(Amount::parse(100_000_000), Err(AmountError::TooLarge));
    }

    #[test]
    fn formats_for_minor_digits() {
        let eur = Currency::parse("EUR").expect("EUR");
        let jpy = Currency::parse("JPY").expect("JPY");
        let kwd = Currency::parse("KWD").expect("KWD");
        assert_eq!(eur.format_minor(1234), "12.34");
        assert_eq!(eur.format_minor(5), "0.05");
        assert_eq!(jpy.format_minor(1234), "1234");
        assert_eq!(kwd.format_minor(1234), "1.234");
    }
}
