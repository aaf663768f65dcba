//! What the benchmarks that run servers as processes of their own share: CPU time per process,
//! and a free port to hand a server before it starts.

use std::net::Ipv4Addr;
use std::time::Duration;

/// CPU time (user + system) process `pid` has used so far, all its threads, where Linux tells it.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields
        .get(11..13)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    // The kernel reports in USER_HZ, which is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
