//! Keys of work running in this process: a request holding an idempotency key, a checkout
//! submission being paid. A key is claimed before the work and released when its guard drops.
//! Its own module so that the state, idempotency and checkout modules share it without
//! importing one another.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Keys of work running in this process (idempotency keys, checkout submissions).
pub struct Inflight<K: Eq + Hash + Clone>(Mutex<HashSet<K>>);

impl<K: Eq + Hash + Clone> Default for Inflight<K> {
    fn default() -> Self {
        Inflight(Mutex::new(HashSet::new()))
    }
}

/// Holds a key as in flight until dropped.
pub struct InflightGuard<K: Eq + Hash + Clone> {
    set: Arc<Inflight<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Drop for InflightGuard<K> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.key);
    }
}

impl<K: Eq + Hash + Clone> Inflight<K> {
    /// Claims `key`, or answers `None` while another holder has it.
    pub fn claim(self: &Arc<Self>, key: &K) -> Option<InflightGuard<K>> {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set.insert(key.clone()).then(|| InflightGuard {
            set: Arc::clone(self),
            key: key.clone(),
        })
    }
}
