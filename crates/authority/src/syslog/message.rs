//! An audit record as an RFC 5424 syslog message, framed by octet counting (RFC 6587 §3.4.1,
//! RFC 5425 §4.3) for a stream transport.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME certmint - MSGID [certmint@32473 id=".." ...] BOM{json}
//! ```
//!
//! PRI is the configured facility with the severity of the outcome: `notice` for a success,
//! `warning` for a failure. MSGID is the record's action. The structured data carries the
//! fields a collector filters on; MSG carries the whole record as JSON (the fields of
//! `GET /api/v2/audit/logs/{id}`), so nothing needs parsing out of free text.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;
use store::AuditRecord;

use crate::{Error, Result};

/// The SD-ID of certmint's structured data. certmint has no private enterprise number of its
/// own, so it uses 32473, the one RFC 5612 sets aside for documentation and examples.
pub const SD_ID: &str = "certmint@32473";
/// APP-NAME.
const APP_NAME: &str = "certmint";
/// RFC 5424's longest HOSTNAME, MSGID and PARAM-VALUE kept here.
const MAX_HOSTNAME: usize = 255;
const MAX_MSGID: usize = 32;
const MAX_PARAM: usize = 512;
/// The longest `details` and `user_agent` kept in MSG, so that a message stays under the
/// 8 KiB that RFC 5425 receivers should accept (rsyslog's default limit too).
const MAX_DETAILS: usize = 4096;
const MAX_USER_AGENT: usize = 512;

/// A syslog facility (RFC 5424 §6.2.1), named as syslog daemons name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Facility(u8);

/// The facilities by code.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

impl Facility {
    /// `authpriv` (10): security and authorisation messages, which syslog daemons keep in a
    /// file only administrators read — where an audit trail naming users and addresses belongs.
    pub const AUTHPRIV: Facility = Facility(10);

    /// Its name.
    pub fn name(self) -> &'static str {
        FACILITIES
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("authpriv")
    }
}

impl Default for Facility {
    fn default() -> Self {
        Self::AUTHPRIV
    }
}

impl FromStr for Facility {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        FACILITIES
            .iter()
            .position(|f| f.eq_ignore_ascii_case(name))
            .and_then(|code| u8::try_from(code).ok())
            .map(Facility)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "'{name}' is not a syslog facility; expected one of {}",
                    FACILITIES.join(", ")
                ))
            })
    }
}

impl TryFrom<String> for Facility {
    type Error = Error;

    fn try_from(name: String) -> Result<Self> {
        name.parse()
    }
}

impl From<Facility> for String {
    fn from(f: Facility) -> Self {
        f.name().to_owned()
    }
}

/// Severity `warning` (4) for a failed action, `notice` (5) for one that succeeded.
fn severity(success: bool) -> u8 {
    if success { 5 } else { 4 }
}

/// `record` as one RFC 5424 message from host `hostname`.
pub fn message(record: &AuditRecord, facility: Facility, hostname: &str) -> String {
    let e = &record.entry;
    let pri = u16::from(facility.0) * 8 + u16::from(severity(e.success));
    let at = e.at.to_offset(time::UtcOffset::UTC);
    // RFC 5424 allows at most six digits of fraction; records are kept to the microsecond.
    let timestamp = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    );
    let mut sd = format!("[{SD_ID}");
    let id = record.id.to_string();
    let outcome = if e.success { "success" } else { "failure" };
    let params = [
        ("id", Some(id.as_str())),
        ("actor", e.username.as_deref()),
        ("resource_type", e.resource_type.as_deref()),
        ("resource_id", e.resource_id.as_deref()),
        ("outcome", Some(outcome)),
        ("ip", e.ip_address.as_deref()),
        ("hash", Some(record.hash.as_str()).filter(|h| !h.is_empty())),
    ];
    for (name, value) in params {
        if let Some(value) = value {
            let _ = write!(sd, " {name}=\"{}\"", param_value(value));
        }
    }
    sd.push(']');
    let body = json!({
        "id": record.id,
        "timestamp": crate::rfc3339(e.at),
        "username": e.username,
        "action": e.action,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "details": e.details.as_deref().map(|d| cut(d, MAX_DETAILS)),
        "ip_address": e.ip_address,
        "user_agent": e.user_agent.as_deref().map(|u| cut(u, MAX_USER_AGENT)),
        "success": e.success,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    });
    format!(
        "<{pri}>1 {timestamp} {} {APP_NAME} - {} {sd} \u{feff}{body}",
        header_field(hostname, MAX_HOSTNAME),
        header_field(&e.action, MAX_MSGID),
    )
}

/// Appends `message` to `out` framed by octet counting: `MSG-LEN SP SYSLOG-MSG`, the length
/// in bytes.
pub fn frame(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
}

/// A header field: printable US-ASCII without spaces (RFC 5424 PRINTUSASCII), at most `max`
/// characters, or the NILVALUE `-` when nothing is left.
fn header_field(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if kept.is_empty() { "-".into() } else { kept }
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3), cut to
/// [`MAX_PARAM`] bytes on a character boundary.
fn param_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in cut(value, MAX_PARAM).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::AuditEntry;
    use time::macros::datetime;

    fn record(success: bool) -> AuditRecord {
        AuditRecord {
            id: 42,
            entry: AuditEntry {
                at: datetime!(2026-12-06 19:30:05.123456 UTC),
                username: Some("ali\"ce]\\".into()),
                action: "certificate_issued".into(),
                resource_type: Some("certificate".into()),
                resource_id: Some("7".into()),
                details: Some("line one\nline \"two\"".into()),
                ip_address: Some("192.0.2.1".into()),
                user_agent: None,
                success,
            },
            prev_hash: "aa".into(),
            hash: "bb".into(),
        }
    }

    #[test]
    fn a_record_is_an_rfc_5424_message() -> Result<()> {
        let text = message(&record(true), Facility::AUTHPRIV, "ca1.example.net");
        let (head, json) = text
            .split_once(" \u{feff}")
            .ok_or_else(|| Error::Internal("no BOM before MSG".into()))?;
        assert_eq!(
            head,
            "<85>1 2026-12-06T19:30:05.123456Z ca1.example.net certmint - certificate_issued \
             [certmint@32473 id=\"42\" actor=\"ali\\\"ce\\]\\\\\" resource_type=\"certificate\" \
             resource_id=\"7\" outcome=\"success\" ip=\"192.0.2.1\" hash=\"bb\"]"
        );
        let body: serde_json::Value =
            serde_json::from_str(json).map_err(|e| Error::Internal(e.to_string()))?;
        assert_eq!(body["id"], 42);
        assert_eq!(body["username"], "ali\"ce]\\");
        assert_eq!(body["details"], "line one\nline \"two\"");
        assert_eq!(body["hash"], "bb");
        assert_eq!(body["prev_hash"], "aa");
        assert_eq!(body["timestamp"], "2026-12-06T19:30:05.123456Z");
        Ok(())
    }

    #[test]
    fn the_severity_follows_the_outcome_and_the_facility_the_setting() -> Result<()> {
        let failed = message(&record(false), "local0".parse()?, "h");
        // local0 (16) * 8 + warning (4)
        assert!(failed.starts_with("<132>1 "), "{failed}");
        assert!(failed.contains("outcome=\"failure\""), "{failed}");
        let ok = message(&record(true), "LOCAL7".parse()?, "h");
        // local7 (23) * 8 + notice (5)
        assert!(ok.starts_with("<189>1 "), "{ok}");
        assert!("udp".parse::<Facility>().is_err());
        assert_eq!(Facility::default().name(), "authpriv");
        Ok(())
    }

    #[test]
    fn header_fields_are_printable_ascii_or_nil() {
        assert_eq!(header_field("", MAX_HOSTNAME), "-");
        assert_eq!(header_field("host name\u{e9}", MAX_HOSTNAME), "host_name_");
        assert_eq!(header_field(&"a".repeat(40), MAX_MSGID).len(), 32);
        let mut unnamed = record(true);
        unnamed.entry.username = None;
        unnamed.hash = String::new();
        let text = message(&unnamed, Facility::AUTHPRIV, "");
        assert!(text.contains(" - certmint - "), "{text}");
        assert!(!text.contains("actor="), "{text}");
        assert!(!text.contains("hash="), "{text}");
    }

    #[test]
    fn values_are_cut_on_character_boundaries() {
        let long = "é".repeat(MAX_PARAM);
        let escaped = param_value(&long);
        assert!(escaped.len() <= MAX_PARAM, "{}", escaped.len());
        assert!(escaped.chars().all(|c| c == 'é'));
        assert_eq!(param_value("a]b\"c\\d"), "a\\]b\\\"c\\\\d");
    }

    #[test]
    fn frames_carry_the_byte_length() {
        let mut out = Vec::new();
        frame(&mut out, "<85>1 é");
        frame(&mut out, "x");
        assert_eq!(out, "8 <85>1 é1 x".as_bytes());
    }
}
