//! API keys and platform keys as values: how a key is made (256 random bits behind its kind
//! and mode, or behind `plk_`), the SHA-256 it is stored as, and the short form a list shows.
//! Below both the flows that create keys and `auth`, which checks them.

use sha2::{Digest, Sha256};
use vinr_domain::ids::random_base62;
use vinr_domain::limits::{
    API_KEY_RANDOM_CHARS, PLATFORM_KEY_RANDOM_CHARS, PLATFORM_KEY_SECRET_CHARS_MAX,
    PLATFORM_KEY_SECRET_CHARS_MIN,
};
use vinr_domain::Mode;

use crate::redacted::Redacted;
use crate::store::KeyKind;

pub type SecretKey = Redacted<String>;

pub fn generate_key(kind: KeyKind, mode: Mode) -> SecretKey {
    let prefix = match kind {
        KeyKind::Secret => "sk",
        KeyKind::Restricted => "rk",
    };
    Redacted::new(format!(
        "{prefix}_{}_{}",
        mode.as_str(),
        random_base62(API_KEY_RANDOM_CHARS)
    ))
}

/// The prefix of every platform key.
pub const PLATFORM_KEY_PREFIX: &str = "plk_";

/// A new platform key: `plk_` and 43 random base62 characters (256 bits).
pub fn generate_platform_key() -> SecretKey {
    Redacted::new(format!(
        "{PLATFORM_KEY_PREFIX}{}",
        random_base62(PLATFORM_KEY_RANDOM_CHARS)
    ))
}

/// Whether `key` has a platform key's shape: `plk_` then 32 to 128 characters of
/// `A-Z a-z 0-9 _ -` (a value chosen for `VINR_PLATFORM_KEY` need not be base62).
pub fn is_platform_key_shape(key: &str) -> bool {
    key.strip_prefix(PLATFORM_KEY_PREFIX).is_some_and(|secret| {
        (PLATFORM_KEY_SECRET_CHARS_MIN..=PLATFORM_KEY_SECRET_CHARS_MAX).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `sk_test_…Ab3d` (`plk_…Ab3d`): enough to tell keys apart in a list.
pub fn display_key(key: &str) -> String {
    if key.starts_with(PLATFORM_KEY_PREFIX) {
        let last4 = &key[key.len().saturating_sub(4)..];
        return format!("{PLATFORM_KEY_PREFIX}…{last4}");
    }
    let prefix_len = key
        .find('_')
        .and_then(|first| key[first + 1..].find('_').map(|second| first + second + 2));
    let prefix = prefix_len.map_or("", |len| &key[..len]);
    let last4 = &key[key.len().saturating_sub(4)..];
    format!("{prefix}…{last4}")
}
