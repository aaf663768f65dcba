//! A fixed-window limit per client address, for the endpoints that check passwords (each
//! request counts), and for EST's passwords (each wrong one counts). The counts live in this
//! node's memory: with several nodes, each node allows the limit. The limit itself is a live
//! setting shared by all nodes (`auth_rate_limit_per_minute`), followed by [`Limiters::follow`],
//! and so are resets of the counts.
//!
//! IPv6 clients are counted per /64, the smallest block a site is usually given, so one host
//! cannot step through its own addresses to get fresh windows. The table is bounded: when it is
//! full of live windows, addresses it does not track yet are refused until windows expire,
//! rather than letting a flood of addresses grow memory or evict the counts of real attackers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long each address's count runs.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked addresses, expired windows are swept out.
const SWEEP_AT: usize = 10_000;
/// The most addresses tracked at once.
const MAX_TRACKED: usize = 100_000;
/// The most limited addresses [`RateLimiter::stats`] names.
const MAX_LISTED: usize = 100;

/// The block `ip` is counted in: an IPv4 address itself (IPv4-mapped IPv6 included), or an
/// IPv6 address's /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Allows `per_minute` requests per address in each one-minute window.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: AtomicU32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Requests refused since this node started.
    refused: AtomicU64,
}

/// A limiter's counts on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterStats {
    /// The limit in force; 0 when off.
    pub per_minute: u32,
    /// Addresses (IPv6: /64 blocks) with a window open.
    pub tracked: usize,
    /// Those that have used up their window, at most [`MAX_LISTED`] of them.
    pub limited: Vec<IpAddr>,
    /// Requests refused since this node started.
    pub refused: u64,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per address; 0 turns it off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: AtomicU32::new(per_minute),
            windows: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Allows `per_minute` from now on; windows already open keep their counts.
    pub fn set_limit(&self, per_minute: u32) {
        self.per_minute.store(per_minute, Ordering::Relaxed);
    }

    /// Forgets the counts of `client`'s address (its block), or of every address.
    pub fn clear(&self, client: Option<IpAddr>) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match client {
            Some(ip) => {
                windows.remove(&bucket(ip));
            }
            None => windows.clear(),
        }
    }

    /// The limit, the addresses counted and limited, and the refusals so far.
    pub fn stats(&self) -> LimiterStats {
        self.stats_at(Instant::now())
    }

    fn stats_at(&self, now: Instant) -> LimiterStats {
        let per_minute = self.per_minute.load(Ordering::Relaxed);
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = windows
            .iter()
            .filter(|(_, (start, _))| now.duration_since(*start) < WINDOW);
        let tracked = open.clone().count();
        let limited = open
            .filter(|(_, (_, count))| per_minute > 0 && *count >= per_minute)
            .map(|(ip, _)| *ip)
            .take(MAX_LISTED)
            .collect();
        LimiterStats {
            per_minute,
            tracked,
            limited,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn refuse(&self, retry_after: u64) -> Result<(), u64> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(retry_after)
    }

    /// Counts a request from `ip`.
    ///
    /// # Errors
    /// The seconds until the window reopens, when the limit is reached.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    /// Whether `ip` has used up its window, without counting a request: for limits that count
    /// failures only, asked before the work that may fail.
    ///
    /// # Errors
    /// The seconds until the window reopens, when the limit is reached.
    pub fn spent(&self, ip: IpAddr) -> Result<(), u64> {
        self.spent_at(ip, Instant::now())
    }

    fn spent_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let per_minute = self.per_minute.load(Ordering::Relaxed);
        if per_minute == 0 {
            return Ok(());
        }
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get(&bucket(ip)) {
            Some((start, count)) if *count >= per_minute && now.duration_since(*start) < WINDOW => {
                self.refuse(
                    WINDOW
                        .saturating_sub(now.duration_since(*start))
                        .as_secs()
                        .max(1),
                )
            }
            _ => Ok(()),
        }
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        self.check_bounded(ip, now, MAX_TRACKED)
    }

    fn check_bounded(&self, ip: IpAddr, now: Instant, max_tracked: usize) -> Result<(), u64> {
        let per_minute = self.per_minute.load(Ordering::Relaxed);
        if per_minute == 0 {
            return Ok(());
        }
        let ip = bucket(ip);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= SWEEP_AT.min(max_tracked) && !windows.contains_key(&ip) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= max_tracked {
                return self.refuse(WINDOW.as_secs());
            }
        }
        let (start, count) = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return self.refuse(left.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }
}

/// The limiters of the doors that check passwords, and the last reset of their counts applied
/// on this node.
#[derive(Debug)]
pub struct Limiters {
    /// Requests to the login endpoints, per address.
    pub login: RateLimiter,
    /// Wrong EST passwords, per address.
    pub est_failures: RateLimiter,
    /// The generation of the last reset applied here.
    reset_seen: AtomicU64,
}

impl Limiters {
    /// Both limiters allowing `per_minute` (0: off) until [`Limiters::follow`] says otherwise.
    pub fn new(per_minute: u32) -> Self {
        Self {
            login: RateLimiter::new(per_minute),
            est_failures: RateLimiter::new(per_minute),
            reset_seen: AtomicU64::new(0),
        }
    }

    /// Takes up the limit in force and any reset of the counts made on any node, as the
    /// authority last read them (at most [`authority::InForce`]'s age).
    pub async fn follow(&self, authority: &authority::Authority) {
        self.apply(&authority.in_force().await);
    }

    /// Counts a login request from `ip` against the limit in force.
    ///
    /// # Errors
    /// The seconds until the window reopens, when the limit is reached.
    pub async fn check_login(
        &self,
        authority: &authority::Authority,
        ip: IpAddr,
    ) -> Result<(), u64> {
        self.follow(authority).await;
        self.login.check(ip)
    }

    /// Takes up the limit and the last reset in `in_force`.
    pub fn apply(&self, in_force: &authority::InForce) {
        let policy = &in_force.policy;
        let per_minute = if policy.auth_rate_limit_enabled {
            policy.auth_rate_limit_per_minute
        } else {
            0
        };
        self.login.set_limit(per_minute);
        self.est_failures.set_limit(per_minute);
        let reset = &in_force.reset;
        let seen = self
            .reset_seen
            .fetch_max(reset.generation, Ordering::Relaxed);
        if reset.generation > seen {
            // Resets missed in between may have named other clients: clear everyone's then.
            let client = reset.client.filter(|_| reset.generation == seen + 1);
            self.login.clear(client);
            self.est_failures.clear(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_reopens() {
        let limiter = RateLimiter::new(2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        assert!(limiter.check_at(a, t0).is_ok());
        assert!(limiter.check_at(a, t0).is_ok());
        assert_eq!(limiter.check_at(a, t0 + Duration::from_secs(10)), Err(50));
        assert!(limiter.check_at(b, t0).is_ok());
        assert!(limiter.check_at(a, t0 + WINDOW).is_ok());
    }

    #[test]
    fn spent_tells_without_counting() {
        let limiter = RateLimiter::new(2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.spent_at(a, t0).is_ok(), "asking counts nothing");
        }
        assert!(limiter.check_at(a, t0).is_ok());
        assert!(limiter.check_at(a, t0).is_ok());
        assert_eq!(limiter.spent_at(a, t0 + Duration::from_secs(20)), Err(40));
        assert!(limiter.spent_at(a, t0 + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn counts_ipv6_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        let host: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.check_at(host, t0).is_ok());
        assert!(limiter.check_at(same_64, t0).is_ok());
        assert!(limiter.check_at(host, t0).is_err());
        assert!(limiter.check_at(next_64, t0).is_ok());

        let v4: IpAddr = [192, 0, 2, 7].into();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(limiter.check_at(v4, t0).is_ok());
        assert!(limiter.check_at(mapped, t0).is_ok());
        assert!(limiter.check_at(v4, t0).is_err());
    }

    #[test]
    fn a_full_table_refuses_new_addresses_until_windows_expire() {
        let limiter = RateLimiter::new(5);
        let t0 = Instant::now();
        let tracked: IpAddr = [198, 51, 100, 1].into();
        assert!(limiter.check_bounded(tracked, t0, 3).is_ok());
        assert!(
            limiter
                .check_bounded([198, 51, 100, 2].into(), t0, 3)
                .is_ok()
        );
        assert!(
            limiter
                .check_bounded([198, 51, 100, 3].into(), t0, 3)
                .is_ok()
        );
        let newcomer: IpAddr = [198, 51, 100, 4].into();
        assert_eq!(limiter.check_bounded(newcomer, t0, 3), Err(60));
        // Addresses already tracked keep their own windows.
        assert!(limiter.check_bounded(tracked, t0, 3).is_ok());
        // Once the windows have expired, the sweep makes room.
        assert!(limiter.check_bounded(newcomer, t0 + WINDOW, 3).is_ok());
        let len = limiter.windows.lock().unwrap().len();
        assert_eq!(len, 1);
    }

    #[test]
    fn counts_refusals_lists_the_limited_and_clears() {
        let limiter = RateLimiter::new(2);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let t0 = Instant::now();
        assert!(limiter.check_at(a, t0).is_ok());
        assert!(limiter.check_at(a, t0).is_ok());
        assert!(limiter.check_at(a, t0).is_err());
        assert!(limiter.check_at(b, t0).is_ok());
        let stats = limiter.stats_at(t0);
        assert_eq!(stats.tracked, 2);
        assert_eq!(stats.limited, vec![a]);
        assert_eq!(stats.refused, 1);
        limiter.clear(Some(a));
        assert!(limiter.check_at(a, t0).is_ok(), "a's count was cleared");
        assert!(limiter.check_at(b, t0).is_ok());
        assert!(limiter.check_at(b, t0).is_err(), "b's was not");
        limiter.clear(None);
        assert!(limiter.check_at(b, t0).is_ok());
        limiter.set_limit(0);
        for _ in 0..5 {
            assert!(limiter.check_at(b, t0).is_ok(), "off");
        }
        assert_eq!(limiter.stats_at(t0).refused, 2);
    }

    #[test]
    fn zero_means_off() {
        let limiter = RateLimiter::new(0);
        for _ in 0..100 {
            assert!(limiter.check([10, 0, 0, 1].into()).is_ok());
        }
    }
}
