//! What ACME requests read again and again, kept for a moment: the account behind every
//! request, and the certificate a client downloads right after its order is finalized. What
//! another node changes shows here within [`crate::STALE_AFTER`]; this node's own changes are
//! forgotten at once.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Instant;

/// Entries kept at most; past this the cache starts again empty.
const CAPACITY: usize = 10_000;

/// Values by key, each good for [`crate::STALE_AFTER`] after it was put.
pub(crate) struct Recent<V> {
    entries: RwLock<HashMap<String, (Instant, V)>>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
        }
    }
}

impl<V> std::fmt::Debug for Recent<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recent")
    }
}

impl<V: Clone> Recent<V> {
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(put_at, _)| put_at.elapsed() < crate::STALE_AFTER)
            .map(|(_, value)| value.clone())
    }

    pub(crate) fn put(&self, key: &str, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }

    pub(crate) fn forget(&self, key: &str) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}
