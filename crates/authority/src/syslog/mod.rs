//! Audit forwarding to syslog: every audit record, in order, as an RFC 5424 message over TCP
//! (RFC 6587 octet counting) or TLS (RFC 5425).
//!
//! The audit table is the queue. The `syslog_forward` job (one node at a time, under its
//! lease) sends the records after a cursor kept in the database and moves the cursor only
//! after the server took them, so a restart or another node resumes where forwarding
//! stopped: at least once, in order, nothing lost while records are kept. A failed attempt
//! waits with exponential backoff. Audit writes never touch the forwarder, so a syslog server
//! that is down or slow never delays or fails one.
//!
//! Trust boundary: the server is set by an administrator (`admin:system`), but the
//! connection still goes through the outbound [`AddressPolicy`], so it cannot reach
//! loopback or private addresses unless `[syslog] allow_private_targets` says so. With TLS
//! the server's certificate is verified for its host name against the configured CA
//! certificates, or the system's roots without them.

mod message;
mod transport;

use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration as StdDuration, Instant};

use serde::{Deserialize, Serialize};
use store::{AuditEntry, AuditRecord, SyslogCursor};
use time::Duration;

pub use message::Facility;

use crate::audit::Event;
use crate::outbound::AddressPolicy;
use crate::{Authority, Error, Permission, Principal, Result};
use message::{frame, message};
use transport::Connection;

/// The settings key.
const KEY: &str = "audit_syslog";
/// Records read and sent per batch; the cursor moves after each.
const BATCH: i64 = 500;
/// How long one run keeps sending: a large backlog drains over several runs instead of
/// holding back the jobs after it on this node.
const BUDGET: StdDuration = StdDuration::from_secs(20);
/// The wait after the first failed attempt; it doubles with each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::seconds(5);
const MAX_BACKOFF: Duration = Duration::minutes(5);
/// The longest error kept.
const MAX_ERROR: usize = 1000;
/// Longest host name accepted (RFC 1035's limit on a name's text form).
const MAX_HOST: usize = 253;

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// Plain TCP, octet-counted frames (RFC 6587).
    Tcp,
    /// TLS (RFC 5425), the server's certificate verified.
    #[default]
    Tls,
}

impl SyslogProtocol {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

impl FromStr for SyslogProtocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "tls" => Ok(Self::Tls),
            "udp" => Err(Error::Invalid(
                "protocol udp is not offered: it drops records without anyone knowing; \
                 use tcp or tls"
                    .into(),
            )),
            other => Err(Error::Invalid(format!(
                "'{other}' is not a syslog protocol; expected tcp or tls"
            ))),
        }
    }
}

/// Where audit records are forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyslogSettings {
    /// Whether records are forwarded.
    pub enabled: bool,
    /// The syslog server's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TCP or TLS.
    pub protocol: SyslogProtocol,
    /// PEM certificates the TLS server's certificate must chain to; the system's roots
    /// without them.
    pub ca_pem: Option<String>,
    /// The facility messages are sent with.
    pub facility: Facility,
}

impl Default for SyslogSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            host: String::new(),
            port: 6514,
            protocol: SyslogProtocol::Tls,
            ca_pem: None,
            facility: Facility::AUTHPRIV,
        }
    }
}

/// A change; `None` leaves a field as it is. An empty `ca_pem` removes the CA certificates.
#[derive(Debug, Clone, Default)]
pub struct SyslogChange {
    /// Whether records are forwarded.
    pub enabled: Option<bool>,
    /// The server's host name or address.
    pub host: Option<String>,
    /// Its port (1 to 65535).
    pub port: Option<i64>,
    /// `tcp` or `tls`.
    pub protocol: Option<String>,
    /// PEM CA certificates for TLS.
    pub ca_pem: Option<String>,
    /// A facility name (`authpriv`, `local0`, …).
    pub facility: Option<String>,
}

/// The settings with where forwarding stands.
#[derive(Debug, Clone)]
pub struct SyslogStatus {
    /// The settings.
    pub settings: SyslogSettings,
    /// The cursor and the last failure; `None` before forwarding was first turned on.
    pub cursor: Option<SyslogCursor>,
    /// Audit records not forwarded yet.
    pub backlog: i64,
}

/// How a test message went.
#[derive(Debug, Clone)]
pub struct SyslogTest {
    /// Whether the server took it.
    pub sent: bool,
    /// `host:port` over which protocol.
    pub target: String,
    /// How long connecting and sending took.
    pub latency_ms: i64,
    /// Why it was not sent.
    pub error: Option<String>,
}

impl Authority {
    /// Where the syslog server may be: public addresses only unless `policy` says otherwise.
    /// Set once, at start; without it only public addresses are reached.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it was set already.
    pub fn configure_syslog(&self, policy: AddressPolicy) -> Result<()> {
        self.syslog_policy
            .set(policy)
            .map_err(|_| Error::Conflict("syslog forwarding is already configured".into()))
    }

    fn syslog_address_policy(&self) -> AddressPolicy {
        self.syslog_policy
            .get()
            .cloned()
            .unwrap_or_else(AddressPolicy::public_only)
    }

    async fn stored_syslog(&self) -> Result<SyslogSettings> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored syslog settings: {e}"))),
            None => Ok(SyslogSettings::default()),
        }
    }

    async fn syslog_status(&self, settings: SyslogSettings) -> Result<SyslogStatus> {
        let cursor = self.store.syslog_cursor().await?;
        let backlog = match &cursor {
            // Ids follow each other; the only gap is the prefix retention removed.
            Some(c) => {
                let anchor = self.store.audit_anchor().await?;
                (anchor.last_id - c.after_id.max(anchor.first_id - 1)).max(0)
            }
            None => 0,
        };
        Ok(SyslogStatus {
            settings,
            cursor,
            backlog,
        })
    }

    /// The syslog settings and where forwarding stands.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn syslog(&self, principal: &Principal) -> Result<SyslogStatus> {
        principal.require(Permission::AdminSystem, "reading the syslog settings")?;
        let settings = self.stored_syslog().await?;
        self.syslog_status(settings).await
    }

    /// Changes the syslog settings. Audited. Turning forwarding on the first time starts it
    /// after the newest record (the record of this change is the first sent); any change
    /// while it is on ends a backoff, so the next run tries at once.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a protocol other
    /// than tcp or tls, an unknown facility, a port outside 1–65535, a host that is not a
    /// name or address, one at an address the policy refuses, a CA bundle that holds no
    /// usable certificate, or forwarding turned on without a host; store errors.
    pub async fn update_syslog(
        &self,
        principal: &Principal,
        change: SyslogChange,
    ) -> Result<SyslogStatus> {
        principal.require(Permission::AdminSystem, "changing the syslog settings")?;
        let before = self.stored_syslog().await?;
        let after = self.checked_syslog(before.clone(), change)?;
        if after == before {
            return self.syslog_status(before).await;
        }
        let value =
            serde_json::to_value(&after).map_err(|e| Error::Internal(format!("syslog: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(KEY, &value, self.now()).await?;
        if after.enabled {
            tx.syslog_start().await?;
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "audit_syslog_updated",
                "settings",
                KEY,
                describe_change(&before, &after),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.syslog_status(after).await
    }

    fn checked_syslog(
        &self,
        mut settings: SyslogSettings,
        change: SyslogChange,
    ) -> Result<SyslogSettings> {
        if let Some(host) = change.host {
            settings.host = checked_host(host.trim(), &self.syslog_address_policy())?;
        }
        if let Some(port) = change.port {
            settings.port = u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::Invalid(format!("port {port} is not 1 to 65535")))?;
        }
        if let Some(protocol) = change.protocol {
            settings.protocol = protocol.parse()?;
        }
        if let Some(facility) = change.facility {
            settings.facility = facility.parse()?;
        }
        if let Some(pem) = change.ca_pem {
            settings.ca_pem = if pem.trim().is_empty() {
                None
            } else {
                transport::roots(Some(pem.as_str()))?;
                Some(pem)
            };
        }
        if let Some(enabled) = change.enabled {
            settings.enabled = enabled;
        }
        if settings.enabled && settings.host.is_empty() {
            return Err(Error::Invalid(
                "forwarding to syslog needs the server's host".into(),
            ));
        }
        Ok(settings)
    }

    /// Sends one test message to the configured server now, enabled or not, and says how it
    /// went. It is not an audit record and moves no cursor.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] when no host is set;
    /// store errors. A server that cannot be reached is reported in the answer.
    pub async fn test_syslog(&self, principal: &Principal) -> Result<SyslogTest> {
        principal.require(Permission::AdminSystem, "testing syslog forwarding")?;
        let settings = self.stored_syslog().await?;
        if settings.host.is_empty() {
            return Err(Error::Invalid(
                "set the syslog server's host before testing it".into(),
            ));
        }
        let record = AuditRecord {
            id: 0,
            entry: AuditEntry {
                at: self.now(),
                username: Some(principal.username.clone()),
                action: "syslog_test".into(),
                resource_type: Some("settings".into()),
                resource_id: Some(KEY.into()),
                details: Some("a test message from certmint".into()),
                ip_address: None,
                user_agent: None,
                success: true,
            },
            prev_hash: String::new(),
            hash: String::new(),
        };
        let started = Instant::now();
        let outcome = self.send_records(&settings, &[record]).await;
        Ok(SyslogTest {
            sent: outcome.is_ok(),
            target: format!(
                "{}:{} ({})",
                settings.host,
                settings.port,
                settings.protocol.as_str()
            ),
            latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            error: outcome.err().map(|e| e.to_string()),
        })
    }

    /// Opens a connection, sends `records` and closes it.
    async fn send_records(&self, settings: &SyslogSettings, records: &[AuditRecord]) -> Result<()> {
        let mut conn = Connection::open(settings, &self.syslog_address_policy()).await?;
        conn.send(&frames(settings, records)).await?;
        conn.close().await;
        Ok(())
    }

    /// The `syslog_forward` job: sends the records after the cursor, a batch at a time over
    /// one connection, moving the cursor after each batch, until none is left or the run's
    /// budget is spent. A failure is recorded with its backoff and fails the run.
    pub(crate) async fn forward_audit_to_syslog(&self) -> Result<String> {
        let settings = self.stored_syslog().await?;
        if !settings.enabled {
            return Ok("syslog forwarding is off".into());
        }
        let Some(cursor) = self.store.syslog_cursor().await? else {
            return Ok("syslog forwarding has not started".into());
        };
        if let Some(at) = cursor.next_attempt_at.filter(|at| *at > self.now()) {
            return Ok(format!(
                "waiting until {} to try again after: {}",
                crate::rfc3339(at),
                cursor.last_error.as_deref().unwrap_or("a failure")
            ));
        }
        match self.forward(&settings, cursor.after_id).await {
            Ok(sent) => Ok(format!("{sent} audit records forwarded")),
            Err(e) => {
                let mut text = e.to_string();
                text.truncate(text.floor_char_boundary(MAX_ERROR));
                let now = self.now();
                let wait = backoff(cursor.failures + 1);
                self.store.syslog_failed(&text, now, now + wait).await?;
                Err(e)
            }
        }
    }

    /// Sends the records after `after_id`; returns how many were sent.
    async fn forward(&self, settings: &SyslogSettings, mut after_id: i64) -> Result<i64> {
        let deadline = Instant::now() + BUDGET;
        let mut batch = self
            .store
            .audit_chain_batch(after_id, i64::MAX, BATCH)
            .await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let mut conn = Connection::open(settings, &self.syslog_address_policy()).await?;
        let mut sent = 0;
        while let Some(last) = batch.last().map(|r| r.id) {
            conn.send(&frames(settings, &batch)).await?;
            let count = i64::try_from(batch.len()).unwrap_or(i64::MAX);
            if !self
                .store
                .syslog_advance(after_id, last, count, self.now())
                .await?
            {
                // Another node moved the cursor (this one lost its lease): leave it to it.
                break;
            }
            after_id = last;
            sent += count;
            if count < BATCH || Instant::now() >= deadline {
                break;
            }
            batch = self
                .store
                .audit_chain_batch(after_id, i64::MAX, BATCH)
                .await?;
        }
        conn.close().await;
        Ok(sent)
    }
}

/// `records` as framed messages from this host.
fn frames(settings: &SyslogSettings, records: &[AuditRecord]) -> Vec<u8> {
    let host = crate::publisher::host_name().unwrap_or_default();
    let mut out = Vec::new();
    for record in records {
        frame(&mut out, &message(record, settings.facility, &host));
    }
    out
}

/// A host name (letters, digits, `-`, `.`) or an IP address the policy allows.
fn checked_host(host: &str, policy: &AddressPolicy) -> Result<String> {
    if host.is_empty() {
        return Ok(String::new());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        policy.check(ip).map_err(|range| {
            Error::Invalid(format!(
                "{host} is a {range} address, which syslog forwarding does not reach \
                 (unless [syslog] allow_private_targets is set)"
            ))
        })?;
        return Ok(host.to_owned());
    }
    let name_ok = host.len() <= MAX_HOST
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if name_ok {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(Error::Invalid(format!(
            "'{host}' is not a host name or an IP address"
        )))
    }
}

/// What changed, for the audit record; the CA bundle only as set, changed or removed.
fn describe_change(before: &SyslogSettings, after: &SyslogSettings) -> String {
    let mut changes = Vec::new();
    if before.enabled != after.enabled {
        changes.push(format!("enabled {} → {}", before.enabled, after.enabled));
    }
    if before.host != after.host {
        changes.push(format!("host '{}' → '{}'", before.host, after.host));
    }
    if before.port != after.port {
        changes.push(format!("port {} → {}", before.port, after.port));
    }
    if before.protocol != after.protocol {
        changes.push(format!(
            "protocol {} → {}",
            before.protocol.as_str(),
            after.protocol.as_str()
        ));
    }
    if before.facility != after.facility {
        changes.push(format!(
            "facility {} → {}",
            before.facility.name(),
            after.facility.name()
        ));
    }
    match (&before.ca_pem, &after.ca_pem) {
        (None, Some(_)) => changes.push("CA certificates set".into()),
        (Some(_), None) => changes.push("CA certificates removed".into()),
        (Some(a), Some(b)) if a != b => changes.push("CA certificates changed".into()),
        _ => {}
    }
    changes.join(", ")
}

/// The wait after `failures` failed attempts in a row: 5 s doubled for each one after the
/// first, at most 5 minutes.
fn backoff(failures: i64) -> Duration {
    let doublings = u32::try_from(failures.clamp(1, 16) - 1).unwrap_or(0);
    (FIRST_BACKOFF * 2_i32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::seconds(5));
        assert_eq!(backoff(2), Duration::seconds(10));
        assert_eq!(backoff(4), Duration::seconds(40));
        assert_eq!(backoff(7), Duration::minutes(5));
        assert_eq!(backoff(1000), Duration::minutes(5));
    }

    #[test]
    fn hosts_are_names_or_allowed_addresses() {
        let public = AddressPolicy::public_only();
        assert_eq!(
            checked_host("Logs.Example.NET", &public).ok().as_deref(),
            Some("logs.example.net")
        );
        assert!(checked_host("8.8.8.8", &public).is_ok());
        for bad in ["127.0.0.1", "10.1.2.3", "::1", "169.254.169.254"] {
            let refused = checked_host(bad, &public);
            assert!(
                matches!(&refused, Err(Error::Invalid(m)) if m.contains("allow_private_targets")),
                "{bad}: {refused:?}"
            );
            assert!(checked_host(bad, &AddressPolicy::dangerous_allow_private()).is_ok());
        }
        for bad in [
            "a b",
            "-x.example",
            "x..example",
            "host:514",
            &"a".repeat(64),
        ] {
            assert!(checked_host(bad, &public).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocols_are_tcp_or_tls() {
        assert_eq!(
            "TCP".parse::<SyslogProtocol>().ok(),
            Some(SyslogProtocol::Tcp)
        );
        assert_eq!(
            "tls".parse::<SyslogProtocol>().ok(),
            Some(SyslogProtocol::Tls)
        );
        let udp = "udp".parse::<SyslogProtocol>();
        assert!(
            matches!(&udp, Err(Error::Invalid(m)) if m.contains("tcp or tls")),
            "{udp:?}"
        );
        assert!("http".parse::<SyslogProtocol>().is_err());
    }
}
