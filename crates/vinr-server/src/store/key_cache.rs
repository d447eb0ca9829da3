//! The key cache: what authentication looked up for a key hash ([`KeyLookup`]), kept while
//! the database says nothing it answers has changed (issue 16).
//!
//! Every entry belongs to one *auth version*: a number the backend answers before each lookup
//! and that moves with every committed write that could change a lookup's answer (a key
//! revoked or deleted, an account's test clock moved or the account deleted, a fault rule
//! added or removed), whichever process made it. On SQLite it is a row that triggers bump in
//! the writing transaction, read before every lookup; on PostgreSQL a counter that moves with
//! each `vinr_auth` notification (triggers notify at commit) and with this process's own such
//! commits. A version that differs from the cache's empties the cache. The version is read
//! before the database is, so an entry can only be older than a change that also moved the
//! version past it. When the backend cannot answer a version (PostgreSQL while its listening
//! connection is down), nothing is cached or answered from the cache.
//!
//! Only keys that were found are kept (a flood of made-up keys cannot fill it), at most
//! [`KEY_CACHE_KEYS_MAX`]; a full cache starts over empty.

use std::collections::HashMap;
use std::sync::Mutex;

use vinr_domain::limits::KEY_CACHE_KEYS_MAX;

use super::KeyLookup;

#[derive(Default)]
pub struct KeyCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    version: u64,
    keys: HashMap<[u8; 32], KeyLookup>,
}

impl KeyCache {
    /// The lookup cached for `key_hash` under `version`.
    pub fn get(&self, version: u64, key_hash: &[u8; 32]) -> Option<KeyLookup> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.version != version {
            state.version = version;
            state.keys.clear();
            return None;
        }
        state.keys.get(key_hash).cloned()
    }

    /// Keeps `lookup`, read after `version` was, unless the version has moved on since.
    pub fn put(&self, version: u64, key_hash: [u8; 32], lookup: KeyLookup) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.version != version {
            return;
        }
        if state.keys.len() >= KEY_CACHE_KEYS_MAX {
            state.keys.clear();
        }
        state.keys.insert(key_hash, lookup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ApiKeyRecord, KeyKind};
    use vinr_domain::{Mode, UnixMillis};

    fn lookup(id: &str) -> KeyLookup {
        KeyLookup {
            key: ApiKeyRecord {
                id: id.into(),
                account_id: "acct_x".into(),
                mode: Mode::Test,
                kind: KeyKind::Secret,
                scopes: Vec::new(),
                key_hash: [1; 32],
                display: String::new(),
                created_at: UnixMillis(0),
                revoked_at: None,
            },
            clock_offset_ms: 0,
            fault_rules: false,
        }
    }

    #[test]
    fn a_new_version_empties_the_cache() {
        let cache = KeyCache::default();
        assert!(cache.get(1, &[1; 32]).is_none());
        cache.put(1, [1; 32], lookup("key_a"));
        assert_eq!(
            cache.get(1, &[1; 32]).map(|l| l.key.id),
            Some("key_a".into())
        );
        assert!(cache.get(2, &[1; 32]).is_none());
        // Back to the old number: still empty (it was emptied, not switched).
        assert!(cache.get(1, &[1; 32]).is_none());
    }

    #[test]
    fn a_lookup_read_before_a_change_is_not_kept() {
        let cache = KeyCache::default();
        assert!(cache.get(1, &[1; 32]).is_none());
        // Another request saw version 2 meanwhile.
        assert!(cache.get(2, &[2; 32]).is_none());
        cache.put(1, [1; 32], lookup("key_stale"));
        assert!(cache.get(2, &[1; 32]).is_none());
    }
}
