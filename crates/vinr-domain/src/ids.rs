//! Prefixed, unguessable identifiers (`pay_…`, `evt_…`): 8 base62 characters of creation time
//! (milliseconds) followed by 16 random ones (95 bits from the OS-seeded CSPRNG).
//!
//! Why time first: unique indexes on random keys put every insert on a random B-tree page,
//! so each group commit rewrites hundreds of pages; time-ordered ids append at the right edge.
//! 95 random bits still make ids impossible to guess or enumerate.

use rand::Rng;

use crate::limits::ID_RANDOM_CHARS;
use crate::UnixMillis;

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
    PlatformKey,
    WebhookAttempt,
    Dispute,
    FaultRule,
    PaymentAttempt,
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
            Prefix::PlatformKey => "plkey_",
            Prefix::WebhookAttempt => "wha_",
            Prefix::Dispute => "dp_",
            Prefix::FaultRule => "flt_",
            Prefix::PaymentAttempt => "patt_",
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

/// Characters of an id that encode its creation time; 62^8 ms reach past the year 8000.
const ID_TIME_CHARS: usize = 8;
const _: () = assert!(ID_RANDOM_CHARS - ID_TIME_CHARS >= 16);

/// `count` base62 characters of `value`, most significant first, so that lexical order is
/// numeric order (the alphabet is in ASCII order).
fn base62_fixed(mut value: u64, count: usize) -> String {
    let mut out = vec![b'0'; count];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out.into_iter().map(char::from).collect()
}

/// A new id created at `now`.
pub fn new_id(prefix: Prefix, now: UnixMillis) -> String {
    let mut id = String::with_capacity(prefix.as_str().len() + ID_RANDOM_CHARS);
    id.push_str(prefix.as_str());
    id.push_str(&base62_fixed(now.0.max(0) as u64, ID_TIME_CHARS));
    id.push_str(&random_base62(ID_RANDOM_CHARS - ID_TIME_CHARS));
    id
}

/// A time-ordered secret token (checkout links): the same layout as ids, with `random_chars`
/// random characters after the time.
pub fn new_token(now: UnixMillis, random_chars: usize) -> String {
    let mut token = base62_fixed(now.0.max(0) as u64, ID_TIME_CHARS);
    token.push_str(&random_base62(random_chars));
    token
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
        let id = new_id(Prefix::Payment, UnixMillis(1_795_600_000_000));
        assert!(id.starts_with("pay_"));
        assert_eq!(id.len(), 4 + ID_RANDOM_CHARS);
        assert!(looks_like(Prefix::Payment, &id));
        assert!(!looks_like(Prefix::Refund, &id));
        assert!(!looks_like(Prefix::Payment, "pay_short"));
        let now = UnixMillis(1_795_600_000_000);
        assert_ne!(new_id(Prefix::Payment, now), new_id(Prefix::Payment, now));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let earlier = new_id(Prefix::Event, UnixMillis(1_795_600_000_000));
        let later = new_id(Prefix::Event, UnixMillis(1_795_600_000_001));
        assert!(earlier < later);
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
    }
}
