//! Credentials as recently found good: sessions and API keys with their users, and EST
//! passwords that verified. Every authenticated request presents one; reading its row and its
//! user's row from the database each time cost more CPU than the TLS and HTTP work of the
//! request, and an Argon2 verification costs tens of milliseconds.
//!
//! An entry is used for at most [`crate::STALE_AFTER`], and not at all once a change to users,
//! sessions, API keys or EST credentials has committed through this node's store (a logout, a
//! revocation, a disabled account, a lockout, a new password...), so this node sees its own
//! changes at once and another node's within that time. The checks themselves (expiry, idle
//! time, enabled, locked) run on every request against the current time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use store::{ApiKeyRow, SessionRow, UserRow};

use crate::STALE_AFTER;

/// More entries than this and the cache starts over: only successful authentications are
/// kept, so this bounds what many live sessions and keys can take.
const MAX_ENTRIES: usize = 10_000;

/// What a presented secret was found to be.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Session(SessionRow),
    ApiKey(ApiKeyRow),
}

/// A session or an API key with its user and what the user's groups grant, as read.
pub(crate) type Login = (Credential, UserRow, Vec<String>);

#[derive(Debug)]
struct Entry<V> {
    read: Instant,
    generation: u64,
    value: V,
}

/// Entries by the SHA-256 of the presented secret.
#[derive(Debug)]
pub(crate) struct Credentials<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
}

impl<V> Default for Credentials<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
        }
    }
}

impl<V: Clone> Credentials<V> {
    /// What was read for `digest`, if that was recently and at `generation` of the store's
    /// credentials.
    pub(crate) fn get(&self, digest: &str, generation: u64) -> Option<V> {
        self.read_within(digest, generation, STALE_AFTER)
    }

    /// What was read for `digest` at `generation` less than `max_age` ago: longer than
    /// [`Self::get`] trusts, for the few reads that may be let in while the database cannot be
    /// read to check the credential again (see [`crate::DatabaseDown`]).
    pub(crate) fn read_within(
        &self,
        digest: &str,
        generation: u64,
        max_age: Duration,
    ) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|e| e.generation == generation && e.read.elapsed() < max_age)
            .map(|e| e.value.clone())
    }

    /// Keeps what was read for `digest`; `generation` is the store's as it was before reading.
    pub(crate) fn put(&self, digest: String, generation: u64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            digest,
            Entry {
                read: Instant::now(),
                generation,
                value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_only_within_its_age_and_generation() {
        let cache = Credentials::<u8>::default();
        cache.put("d".into(), 7, 1);
        assert_eq!(cache.get("d", 7), Some(1));
        assert_eq!(cache.get("d", 8), None, "a credential changed since");
        assert_eq!(cache.get("other", 7), None);
        assert_eq!(cache.read_within("d", 7, Duration::from_secs(600)), Some(1));
        assert_eq!(cache.read_within("d", 8, Duration::from_secs(600)), None);
        assert_eq!(cache.read_within("d", 7, Duration::ZERO), None);
        std::thread::sleep(STALE_AFTER);
        assert_eq!(cache.get("d", 7), None, "read over a second ago");
        assert_eq!(cache.read_within("d", 7, Duration::from_secs(600)), Some(1));
    }
}
