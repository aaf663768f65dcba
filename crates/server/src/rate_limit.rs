//! A fixed-window limit per client address, for the endpoints that check passwords (each
//! request counts), and for EST's passwords (each wrong one counts). It lives in this node's
//! memory: with several nodes, each node allows the limit.
//!
//! IPv6 clients are counted per /64, the smallest block a site is usually given, so one host
//! cannot step through its own addresses to get fresh windows. The table is bounded: when it is
//! full of live windows, addresses it does not track yet are refused until windows expire,
//! rather than letting a flood of addresses grow memory or evict the counts of real attackers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked addresses, expired windows are swept out.
const SWEEP_AT: usize = 10_000;
/// The most addresses tracked at once.
const MAX_TRACKED: usize = 100_000;

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
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per address; 0 turns it off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
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
        if self.per_minute == 0 {
            return Ok(());
        }
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get(&bucket(ip)) {
            Some((start, count))
                if *count >= self.per_minute && now.duration_since(*start) < WINDOW =>
            {
                Err(WINDOW
                    .saturating_sub(now.duration_since(*start))
                    .as_secs()
                    .max(1))
            }
            _ => Ok(()),
        }
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        self.check_bounded(ip, now, MAX_TRACKED)
    }

    fn check_bounded(&self, ip: IpAddr, now: Instant, max_tracked: usize) -> Result<(), u64> {
        if self.per_minute == 0 {
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
                return Err(WINDOW.as_secs());
            }
        }
        let (start, count) = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(left.as_secs().max(1));
        }
        *count += 1;
        Ok(())
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
    fn zero_means_off() {
        let limiter = RateLimiter::new(0);
        for _ in 0..100 {
            assert!(limiter.check([10, 0, 0, 1].into()).is_ok());
        }
    }
}
