//! The data directory's free space, for readiness, metrics and the system status: on SQLite
//! every write lands there, and a full disk refuses them all.

use std::path::Path;

/// Below this much free space a SQLite node reports itself not ready: a batch of certificates
/// with its write-ahead log needs room, and the last bytes of a disk are not a working margin.
pub const MIN_FREE_BYTES: u64 = 4 * 1024 * 1024;

/// Bytes an unprivileged writer may still use on the filesystem holding `path`, or `None` when
/// it cannot be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The size of the filesystem holding a path, and how much of it is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in all.
    pub total: u64,
    /// Bytes in use (by anyone, reserved blocks included).
    pub used: u64,
}

/// The usage of the filesystem holding `path`, or `None` when it cannot be asked.
pub fn usage(path: &Path) -> Option<Usage> {
    let stats = rustix::fs::statvfs(path).ok()?;
    let total = stats.f_blocks.saturating_mul(stats.f_frsize);
    let free = stats.f_bfree.saturating_mul(stats.f_frsize);
    Some(Usage {
        total,
        used: total.saturating_sub(free),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_free_space_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
        let usage = usage(dir.path()).unwrap();
        assert!(usage.total > 0 && usage.used <= usage.total);
    }
}
