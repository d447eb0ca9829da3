//! API keys as values: how a key is made (256 random bits behind its kind and mode), the
//! SHA-256 it is stored as, and the short form a list shows. Below both the flows that create
//! keys and `auth`, which checks them.

use sha2::{Digest, Sha256};
use vinr_domain::ids::random_base62;
use vinr_domain::limits::API_KEY_RANDOM_CHARS;
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

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `sk_test_…Ab3d`: enough to tell keys apart in a list.
pub fn display_key(key: &str) -> String {
    let prefix_len = key
        .find('_')
        .and_then(|first| key[first + 1..].find('_').map(|second| first + second + 2));
    let prefix = prefix_len.map_or("", |len| &key[..len]);
    let last4 = &key[key.len().saturating_sub(4)..];
    format!("{prefix}…{last4}")
}
