//! Prefixed, unguessable identifiers (`pay_…`, `evt_…`). The random part is base62 from the OS
//! random source, so ids carry no sequence and cannot be enumerated.

use rand::Rng;

use crate::limits::ID_RANDOM_CHARS;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Payment,
    Refund,
    WebhookEndpoint,
    Event,
    Settlement,
    BalanceTransaction,
    Request,
    Account,
    ApiKey,
}

impl Prefix {
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Payment => "pay_",
            Prefix::Refund => "re_",
            Prefix::WebhookEndpoint => "we_",
            Prefix::Event => "evt_",
            Prefix::Settlement => "setl_",
            Prefix::BalanceTransaction => "btx_",
            Prefix::Request => "req_",
            Prefix::Account => "acct_",
            Prefix::ApiKey => "key_",
        }
    }
}

/// `count` random base62 characters.
pub fn random_base62(count: usize) -> String {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| char::from(BASE62[rng.random_range(0..BASE62.len())]))
        .collect()
}

pub fn new_id(prefix: Prefix) -> String {
    let mut id = String::with_capacity(prefix.as_str().len() + ID_RANDOM_CHARS);
    id.push_str(prefix.as_str());
    id.push_str(&random_base62(ID_RANDOM_CHARS));
    id
}

/// Whether `value` has the shape of an id with this prefix. Used to answer 404 early for ids
/// that cannot exist, without touching the database.
pub fn looks_like(prefix: Prefix, value: &str) -> bool {
    value.strip_prefix(prefix.as_str()).is_some_and(|rest| {
        rest.len() == ID_RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_length() {
        let id = new_id(Prefix::Payment);
        assert!(id.starts_with("pay_"));
        assert_eq!(id.len(), 4 + ID_RANDOM_CHARS);
        assert!(looks_like(Prefix::Payment, &id));
        assert!(!looks_like(Prefix::Refund, &id));
        assert!(!looks_like(Prefix::Payment, "pay_short"));
        assert_ne!(new_id(Prefix::Payment), new_id(Prefix::Payment));
    }
}
