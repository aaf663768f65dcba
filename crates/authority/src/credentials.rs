//! Sessions and API keys as recently read, with their users. Every authenticated request
//! presents one; reading its row and its user's row from the database each time cost more CPU
//! than the TLS and HTTP work of the request.
//!
//! An entry is used for at most [`crate::STALE_AFTER`], and not at all once a change to users,
//! sessions or API keys has committed through this node's store (a logout, a revocation, a
//! disabled account, a lockout...), so this node sees its own changes at once and another
//! node's within that time. The checks themselves (expiry, idle time, enabled, locked) run on
//! every request against the current time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

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

#[derive(Debug)]
struct Entry {
    read: Instant,
    generation: u64,
    credential: Credential,
    user: UserRow,
}

/// Entries by the SHA-256 of the presented secret.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Credentials {
    /// The credential and user read for `digest`, if that was recently and at `generation` of
    /// the store's credentials.
    pub(crate) fn get(&self, digest: &str, generation: u64) -> Option<(Credential, UserRow)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|e| e.generation == generation && e.read.elapsed() < STALE_AFTER)
            .map(|e| (e.credential.clone(), e.user.clone()))
    }

    /// Keeps what was read for `digest`; `generation` is the store's as it was before reading.
    pub(crate) fn put(
        &self,
        digest: String,
        generation: u64,
        credential: Credential,
        user: UserRow,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            digest,
            Entry {
                read: Instant::now(),
                generation,
                credential,
                user,
            },
        );
    }
}
