//! The card form: parse the urlencoded body, validate each field (Luhn, expiry in the
//! future, CVC digits, a name), and keep what the shopper typed for a re-rendered form —
//! except the card number, which is never echoed back.

use vinr_domain::card::{CardNumber, CardNumberError, Expiry, ExpiryError};
use vinr_domain::limits::{CHECKOUT_FIELD_CHARS_MAX, CHECKOUT_NAME_CHARS_MAX};

use crate::http::text::urlencoded_pairs;
use crate::processor::CardInput;

/// A urlencoded form body, decoded. A field whose value is not valid UTF-8 is kept as present
/// but invalid (never silently turned into U+FFFD), so its check refuses it.
pub struct FormBody(Vec<(String, Option<String>)>);

impl FormBody {
    pub fn parse(bytes: &[u8]) -> FormBody {
        FormBody(
            urlencoded_pairs(bytes)
                .take(32)
                .map(|(name, value)| {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    (name, String::from_utf8(value).ok())
                })
                .collect(),
        )
    }

    /// The value of the first field `name`; `None` when absent or not valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// Every valid value of the fields named `name` (a group of checkboxes), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(field, _)| field == name)
            .filter_map(|(_, value)| value.as_deref())
            .collect()
    }

    /// Whether the first field `name` is present but not valid UTF-8.
    pub fn is_invalid(&self, name: &str) -> bool {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .is_some_and(|(_, value)| value.is_none())
    }
}

/// Field values to show again after an error (no card number among them).
#[derive(Debug, Default, Clone)]
pub struct Kept {
    pub expiry: String,
    pub cvc: String,
    pub name: String,
}

/// One message per invalid field, shown next to it.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    pub number: Option<&'static str>,
    pub expiry: Option<&'static str>,
    pub cvc: Option<&'static str>,
    pub name: Option<&'static str>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.number.is_some() || self.expiry.is_some() || self.cvc.is_some() || self.name.is_some()
    }

    /// (field id, message) in the form's order, for the summary at the top.
    pub fn list(&self) -> Vec<(&'static str, &'static str)> {
        [
            ("card-number", self.number),
            ("card-expiry", self.expiry),
            ("card-cvc", self.cvc),
            ("card-name", self.name),
        ]
        .into_iter()
        .filter_map(|(id, message)| message.map(|message| (id, message)))
        .collect()
    }
}

/// Why a form was refused, and what to show again.
#[derive(Debug)]
pub struct Invalid {
    pub errors: FieldErrors,
    pub kept: Kept,
}

fn bounded(value: Option<&str>) -> String {
    value
        .unwrap_or_default()
        .trim()
        .chars()
        .take(CHECKOUT_FIELD_CHARS_MAX)
        .collect()
}

/// `MM/YY`, `MM / YY`, `MM/YYYY`, `MM-YY` or `MMYY`.
fn parse_expiry(value: &str) -> Option<(u32, u32)> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let (month, year) = match compact.split_once(['/', '-']) {
        Some(parts) => parts,
        None if compact.len() == 4 => compact.split_at(2),
        None => return None,
    };
    let digits = |part: &str, lengths: &[usize]| {
        (lengths.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    Some((digits(month, &[1, 2])?, digits(year, &[2, 4])?))
}

/// Validates the card form against the month `today` (year, month). Answers the card, or
/// the errors with what to show again.
pub fn validate(form: &FormBody, today: (u16, u8)) -> Result<CardInput, Box<Invalid>> {
    let kept = Kept {
        expiry: bounded(form.get("expiry")),
        cvc: bounded(form.get("cvc")),
        name: bounded(form.get("name")),
    };
    let mut errors = FieldErrors::default();
    let raw_number = form.get("number").unwrap_or_default().trim();
    let number = if raw_number.is_empty() {
        errors.number = Some("Enter the card number.");
        None
    } else {
        match CardNumber::parse(raw_number) {
            Ok(number) => Some(number),
            Err(error) => {
                errors.number = Some(match error {
                    CardNumberError::NotDigits => "The card number may contain only digits.",
                    CardNumberError::WrongLength => "The card number must have 12 to 19 digits.",
                    CardNumberError::ChecksumFailed => {
                        "This card number is not valid. Check it and try again."
                    }
                });
                None
            }
        }
    };
    let expiry = if kept.expiry.is_empty() {
        errors.expiry = Some("Enter the expiry date.");
        None
    } else {
        match parse_expiry(&kept.expiry) {
            None => {
                errors.expiry = Some("Enter the expiry date as MM/YY.");
                None
            }
            Some((month, year)) => match Expiry::parse(month, year, today.0, today.1) {
                Ok(expiry) => Some(expiry),
                Err(error) => {
                    errors.expiry = Some(match error {
                        ExpiryError::InvalidMonth => "The expiry month must be 01 to 12.",
                        ExpiryError::InvalidYear => "The expiry year is not valid.",
                        ExpiryError::InPast => "This card has expired: check the expiry date.",
                    });
                    None
                }
            },
        }
    };
    if kept.cvc.is_empty() {
        errors.cvc = Some("Enter the security code (CVC).");
    } else if !(3..=4).contains(&kept.cvc.len()) || !kept.cvc.bytes().all(|b| b.is_ascii_digit()) {
        errors.cvc = Some("The security code is 3 or 4 digits.");
    }
    if form.is_invalid("name") {
        errors.name = Some("The name on the card is not valid.");
    } else if kept.name.is_empty() {
        errors.name = Some("Enter the name on the card.");
    } else if form.get("name").unwrap_or_default().trim().chars().count() > CHECKOUT_NAME_CHARS_MAX
        || kept.name.chars().any(char::is_control)
    {
        errors.name = Some("The name on the card is not valid.");
    }
    match (number, expiry) {
        (Some(number), Some(expiry)) if !errors.any() => Ok(CardInput {
            number,
            expiry,
            cvc: Some(crate::redacted::Redacted::new(kept.cvc.clone())),
        }),
        _ => Err(Box::new(Invalid { errors, kept })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> FormBody {
        FormBody::parse(body.as_bytes())
    }

    #[test]
    fn expiry_formats() {
        assert_eq!(parse_expiry("12/30"), Some((12, 30)));
        assert_eq!(parse_expiry(" 1 / 2031 "), Some((1, 2031)));
        assert_eq!(parse_expiry("0130"), Some((1, 30)));
        assert_eq!(parse_expiry("12-30"), Some((12, 30)));
        assert_eq!(parse_expiry("12/3"), None);
        assert_eq!(parse_expiry("ab/cd"), None);
        assert_eq!(parse_expiry("123/30"), None);
        assert_eq!(parse_expiry(""), None);
    }

    #[test]
    fn a_valid_card_passes() {
        let card = validate(
            &form("number=4242+4242+4242+4242&expiry=12%2F30&cvc=123&name=Ada+Lovelace"),
            (2026, 4),
        )
        .expect("valid");
        assert_eq!(card.number.last4(), "4242");
        assert_eq!((card.expiry.month, card.expiry.year), (12, 2030));
    }

    #[test]
    fn every_field_is_checked_and_kept_but_the_number() {
        let Invalid { errors, kept } = *validate(
            &form("number=4242424242424241&expiry=01%2F20&cvc=12a&name="),
            (2026, 4),
        )
        .expect_err("invalid");
        assert!(errors.number.is_some_and(|m| m.contains("not valid")));
        assert!(errors.expiry.is_some_and(|m| m.contains("expired")));
        assert!(errors.cvc.is_some());
        assert!(errors.name.is_some());
        assert_eq!(errors.list().len(), 4);
        assert_eq!((kept.expiry.as_str(), kept.cvc.as_str()), ("01/20", "12a"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            "",
            "number",
            "%ff%fe=%80",
            "number=%00&expiry=%2F&cvc=99999&name=%07",
        ] {
            assert!(validate(&form(body), (2026, 4)).is_err(), "{body}");
        }
        let huge = format!("name={}", "x".repeat(10_000));
        let Invalid { errors, .. } = *validate(
            &form(&format!(
                "number=4242424242424242&expiry=12%2F30&cvc=123&{huge}"
            )),
            (2026, 4),
        )
        .expect_err("an overlong name");
        assert!(errors.name.is_some());
        // A valid card with a name that is not UTF-8, or holds a control character.
        for name in ["%ff%fe", "Ada%00Lovelace", "Ada%1bLovelace"] {
            let body = format!("number=4242424242424242&expiry=12%2F30&cvc=123&name={name}");
            let Invalid { errors, .. } = *validate(&form(&body), (2026, 4)).expect_err(name);
            assert_eq!(
                errors.name,
                Some("The name on the card is not valid."),
                "{name}"
            );
        }
    }
}
