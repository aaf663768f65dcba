//! Expiry alerts: the `expiry_scan` job finds the certificates and CAs that crossed one of the
//! alert thresholds (days before they expire) or expired, records one notice per subject and
//! threshold (so each is announced once, across runs, restarts and nodes), queues an event
//! for it in the same transaction, and mails the notices: one message per recipient per run,
//! to the configured recipients and to each certificate's owner.
//!
//! The scan reads only the window from `now - largest threshold` to `now + largest threshold`
//! along the `certificates_expiry` index, in pages. A notice's mail stays queued with it until
//! the mail server took it, so a mail server that is down delays the mail rather than losing it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use store::{ExpiryCandidate, ExpirySubject, NewEvent};
use time::{Duration, OffsetDateTime};

use crate::audit::Event;
use crate::email::{Mail, html_escape, parse_address};
use crate::{Authority, Error, Permission, Principal, Result};

/// The settings key.
const KEY: &str = "expiry_alerts";
/// Candidates read per page and recorded per transaction.
const BATCH: i64 = 500;
/// Queued mails read per pass.
const MAIL_BATCH: i64 = 1000;
/// The most thresholds, recipients, and the largest threshold.
const MAX_THRESHOLDS: usize = 10;
const MAX_RECIPIENTS: usize = 50;
const MAX_THRESHOLD_DAYS: i64 = 365;

/// The expiry alert settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryAlerts {
    /// Whether the scan records notices, queues events and sends mail.
    pub enabled: bool,
    /// Days before expiry at which to warn, largest first.
    pub thresholds: Vec<i64>,
    /// Who gets every alert mail, besides each certificate's owner.
    pub recipients: Vec<String>,
}

impl Default for ExpiryAlerts {
    fn default() -> Self {
        Self {
            enabled: true,
            thresholds: vec![30, 14, 7, 1],
            recipients: Vec::new(),
        }
    }
}

/// A change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ExpiryAlertsChange {
    /// Whether alerts are on.
    pub enabled: Option<bool>,
    /// Days before expiry, each 1 to 365.
    pub thresholds: Option<Vec<i64>>,
    /// Email addresses.
    pub recipients: Option<Vec<String>>,
}

/// Something the scan announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryNotice {
    /// `certificate` or `ca`.
    pub subject_type: &'static str,
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// When it expires.
    pub not_after: OffsetDateTime,
    /// The threshold crossed, in days; 0 when it expired.
    pub threshold_days: i64,
}

/// What a scan did.
#[derive(Debug, Clone, Default)]
pub struct ExpiryScan {
    /// The new notices, each with its event queued.
    pub notices: Vec<ExpiryNotice>,
    /// Mail messages the mail server took.
    pub messages_sent: usize,
    /// Their recipients.
    pub recipients: Vec<String>,
}

impl ExpiryScan {
    fn summary(&self) -> String {
        format!(
            "{} new expiry notices, {} messages sent",
            self.notices.len(),
            self.messages_sent
        )
    }
}

/// What a queued mail says about one notice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MailItem {
    subject_type: String,
    refid: String,
    name: String,
    serial: String,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    threshold_days: i64,
    owner_email: Option<String>,
}

/// The threshold `not_after` has crossed at `now`: 0 once expired, else the smallest threshold
/// it lies within; `None` when it lies beyond them all. `thresholds` are in ascending order.
fn crossed(thresholds: &[i64], not_after: OffsetDateTime, now: OffsetDateTime) -> Option<i64> {
    if not_after <= now {
        return Some(0);
    }
    thresholds
        .iter()
        .copied()
        .find(|t| not_after <= now + Duration::days(*t))
}

/// Whole days until `not_after`, counting a started day: 4 days and 23 hours is 5 days.
fn days_left(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let seconds = (not_after - now).whole_seconds();
    seconds.div_euclid(86_400) + i64::from(seconds.rem_euclid(86_400) != 0)
}

impl Authority {
    pub(super) async fn stored_expiry_alerts(&self) -> Result<ExpiryAlerts> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored expiry alerts: {e}"))),
            None => Ok(ExpiryAlerts::default()),
        }
    }

    /// The expiry alert settings.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn expiry_alerts(&self, principal: &Principal) -> Result<ExpiryAlerts> {
        principal.require(Permission::AdminSystem, "reading the expiry alerts")?;
        self.stored_expiry_alerts().await
    }

    /// Changes the expiry alert settings. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for no threshold, more
    /// than 10, one outside 1 to 365 days, more than 50 recipients or one that is not an email
    /// address; store errors.
    pub async fn update_expiry_alerts(
        &self,
        principal: &Principal,
        change: ExpiryAlertsChange,
    ) -> Result<ExpiryAlerts> {
        principal.require(Permission::AdminSystem, "changing the expiry alerts")?;
        let before = self.stored_expiry_alerts().await?;
        let mut after = before.clone();
        if let Some(enabled) = change.enabled {
            after.enabled = enabled;
        }
        if let Some(mut thresholds) = change.thresholds {
            if thresholds.is_empty()
                || thresholds.len() > MAX_THRESHOLDS
                || thresholds
                    .iter()
                    .any(|t| !(1..=MAX_THRESHOLD_DAYS).contains(t))
            {
                return Err(Error::Invalid(format!(
                    "thresholds: give 1 to {MAX_THRESHOLDS} numbers of days, each from 1 to \
                     {MAX_THRESHOLD_DAYS}"
                )));
            }
            thresholds.sort_unstable_by(|a, b| b.cmp(a));
            thresholds.dedup();
            after.thresholds = thresholds;
        }
        if let Some(recipients) = change.recipients {
            if recipients.len() > MAX_RECIPIENTS {
                return Err(Error::Invalid(format!(
                    "recipients: at most {MAX_RECIPIENTS}"
                )));
            }
            let mut parsed = recipients
                .iter()
                .map(|r| parse_address(r, "recipients").map(|a| a.to_string()))
                .collect::<Result<Vec<_>>>()?;
            parsed.dedup();
            after.recipients = parsed;
        }
        if after == before {
            return Ok(before);
        }
        let value = serde_json::to_value(&after)
            .map_err(|e| Error::Internal(format!("expiry alerts: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(KEY, &value, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "expiry_alerts_updated",
                "settings",
                KEY,
                format!(
                    "enabled {}, thresholds {:?}, recipients {}",
                    after.enabled,
                    after.thresholds,
                    after.recipients.join(" ")
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Runs the expiry scan now and says what it announced and sent.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Upstream`] when the mail
    /// server did not take the mail (the notices stay recorded and their mail queued); store
    /// errors.
    pub async fn check_expiry(&self, principal: &Principal) -> Result<ExpiryScan> {
        principal.require(Permission::AdminSystem, "running the expiry check")?;
        self.expiry_scan().await
    }

    /// The `expiry_scan` job.
    pub(crate) async fn expiry_scan_job(&self) -> Result<String> {
        Ok(self.expiry_scan().await?.summary())
    }

    async fn expiry_scan(&self) -> Result<ExpiryScan> {
        let alerts = self.stored_expiry_alerts().await?;
        if !alerts.enabled {
            return Ok(ExpiryScan::default());
        }
        let mail_on = self.email_if_enabled().await?.is_some();
        let now = self.now();
        let mut ascending = alerts.thresholds.clone();
        ascending.sort_unstable();
        let widest = Duration::days(ascending.last().copied().unwrap_or(0));
        let mut scan = ExpiryScan::default();
        for subject in [ExpirySubject::Certificate, ExpirySubject::Ca] {
            let mut cursor = None;
            loop {
                let page = self
                    .store
                    .expiry_candidates(subject, now - widest, now + widest, cursor, BATCH)
                    .await?;
                let Some(last) = page.last() else { break };
                cursor = Some((last.not_after, last.id));
                let full = page.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
                self.record_notices(subject, &page, &ascending, mail_on, now, &mut scan)
                    .await?;
                if !full {
                    break;
                }
            }
        }
        if mail_on {
            self.send_expiry_mail(&alerts, &mut scan).await?;
        }
        Ok(scan)
    }

    /// Records the notices `page` calls for, with their events, in one transaction.
    async fn record_notices(
        &self,
        subject: ExpirySubject,
        page: &[ExpiryCandidate],
        ascending: &[i64],
        mail_on: bool,
        now: OffsetDateTime,
        scan: &mut ExpiryScan,
    ) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let mut fresh = Vec::new();
        for c in page {
            let Some(threshold) = crossed(ascending, c.not_after, now) else {
                continue;
            };
            if c.noticed.is_some_and(|n| n <= threshold) {
                continue;
            }
            // The thresholds passed over since the last notice are recorded too, unannounced:
            // a certificate first seen 5 days from expiry is not also announced at 30 and 14.
            let mut thresholds = vec![threshold];
            thresholds.extend(
                ascending
                    .iter()
                    .copied()
                    .filter(|t| *t > threshold && c.noticed.is_none_or(|n| *t < n)),
            );
            let item = MailItem {
                subject_type: subject.as_str().to_owned(),
                refid: c.refid.clone(),
                name: c.name.clone(),
                serial: c.serial.clone(),
                not_after: c.not_after,
                threshold_days: threshold,
                owner_email: c.owner_email.clone(),
            };
            let mail = if mail_on {
                Some(
                    serde_json::to_value(&item)
                        .map_err(|e| Error::Internal(format!("expiry mail: {e}")))?,
                )
            } else {
                None
            };
            if !tx
                .record_expiry_notice(subject, c.id, &thresholds, mail.as_ref(), now)
                .await?
            {
                continue;
            }
            let event_type = match (subject, threshold) {
                (ExpirySubject::Certificate, 0) => "certificate_expired",
                (ExpirySubject::Certificate, _) => "certificate_expiring",
                (ExpirySubject::Ca, 0) => "ca_expired",
                (ExpirySubject::Ca, _) => "ca_expiring",
            };
            let days_left = days_left(c.not_after, now);
            tx.queue_event(
                &NewEvent {
                    event_type: event_type.into(),
                    resource_type: subject.as_str().into(),
                    resource_id: c.id.to_string(),
                    payload: serde_json::json!({
                        "name": c.name,
                        "refid": c.refid,
                        "serial": c.serial,
                        "not_after": crate::rfc3339(c.not_after),
                        "threshold_days": threshold,
                        "days_left": days_left,
                    }),
                },
                now,
            )
            .await?;
            fresh.push(ExpiryNotice {
                subject_type: subject.as_str(),
                id: c.id,
                name: c.name.clone(),
                not_after: c.not_after,
                threshold_days: threshold,
            });
        }
        tx.commit().await?;
        scan.notices.extend(fresh);
        Ok(())
    }

    /// Mails the queued notices: one message per recipient, then marks them sent.
    async fn send_expiry_mail(&self, alerts: &ExpiryAlerts, scan: &mut ExpiryScan) -> Result<()> {
        let Some(settings) = self.email_if_enabled().await? else {
            return Ok(());
        };
        loop {
            let queued = self.store.unmailed_expiry_notices(MAIL_BATCH).await?;
            if queued.is_empty() {
                return Ok(());
            }
            let mut by_recipient: BTreeMap<String, Vec<MailItem>> = BTreeMap::new();
            for notice in &queued {
                let item: MailItem = serde_json::from_value(notice.mail.clone())
                    .map_err(|e| Error::Internal(format!("queued expiry mail: {e}")))?;
                let mut to: Vec<String> = alerts.recipients.clone();
                if let Some(owner) = item.owner_email.as_deref()
                    && let Ok(owner) = parse_address(owner, "owner")
                {
                    to.push(owner.to_string());
                }
                to.sort();
                to.dedup();
                for recipient in to {
                    by_recipient
                        .entry(recipient)
                        .or_default()
                        .push(item.clone());
                }
            }
            let mails: Vec<Mail> = by_recipient
                .into_iter()
                .map(|(to, items)| expiry_mail(to, &items, self.now()))
                .collect();
            if !mails.is_empty() {
                self.send_mail(&settings, &mails).await?;
            }
            let keys: Vec<(String, i64, i64)> = queued
                .iter()
                .map(|n| (n.subject_type.clone(), n.subject_id, n.threshold_days))
                .collect();
            let mut tx = self.store.begin_write().await?;
            tx.expiry_notices_mailed(&keys).await?;
            tx.commit().await?;
            scan.messages_sent += mails.len();
            scan.recipients.extend(mails.into_iter().map(|m| m.to));
            if queued.len() < usize::try_from(MAIL_BATCH).unwrap_or(usize::MAX) {
                return Ok(());
            }
        }
    }
}

/// The alert mail for `to` about `items`, soonest first.
fn expiry_mail(to: String, items: &[MailItem], now: OffsetDateTime) -> Mail {
    let mut items = items.to_vec();
    items.sort_by(|a, b| a.not_after.cmp(&b.not_after).then(a.refid.cmp(&b.refid)));
    let line = |i: &MailItem| {
        let what = if i.subject_type == "ca" {
            "CA"
        } else {
            "certificate"
        };
        let when = i
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let state = if i.threshold_days == 0 {
            "expired".to_owned()
        } else {
            format!("expires in {} days", days_left(i.not_after, now))
        };
        (what, when, state)
    };
    let mut text = String::from("These certificates expire soon or have expired:\n\n");
    let mut html = String::from(
        "<p>These certificates expire soon or have expired:</p>\n<table>\n\
         <tr><th>Kind</th><th>Name</th><th>Id</th><th>Serial</th><th>Not after</th><th>State</th></tr>\n",
    );
    for i in &items {
        let (what, when, state) = line(i);
        text.push_str(&format!(
            "- {what} {} (id {}, serial {}): {state}, not after {when}\n",
            i.name, i.refid, i.serial
        ));
        html.push_str(&format!(
            "<tr><td>{what}</td><td>{}</td><td>{}</td><td>{}</td><td>{when}</td><td>{state}</td></tr>\n",
            html_escape(&i.name),
            html_escape(&i.refid),
            html_escape(&i.serial)
        ));
    }
    html.push_str("</table>\n");
    let subject = match items.len() {
        1 => format!("certmint: 1 certificate expiring ({})", items[0].name),
        n => format!("certmint: {n} certificates expiring"),
    };
    Mail {
        to,
        subject,
        text,
        html,
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_threshold_crossed_is_the_one_announced() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let t = [1, 7, 14, 30];
        assert_eq!(crossed(&t, now + Duration::days(40), now), None);
        assert_eq!(crossed(&t, now + Duration::days(30), now), Some(30));
        assert_eq!(crossed(&t, now + Duration::days(20), now), Some(30));
        assert_eq!(crossed(&t, now + Duration::days(5), now), Some(7));
        assert_eq!(crossed(&t, now + Duration::hours(12), now), Some(1));
        assert_eq!(crossed(&t, now, now), Some(0));
        assert_eq!(crossed(&t, now - Duration::days(3), now), Some(0));
    }

    #[test]
    fn names_from_certificates_are_escaped_in_html() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let item = MailItem {
            subject_type: "certificate".into(),
            refid: "r1".into(),
            name: "<script>x</script>".into(),
            serial: "01".into(),
            not_after: now + Duration::days(5),
            threshold_days: 7,
            owner_email: None,
        };
        let mail = expiry_mail("a@example.com".into(), &[item], now);
        assert!(mail.html.contains("&lt;script&gt;"));
        assert!(!mail.html.contains("<script>"));
        assert!(mail.text.contains("expires in 5 days"));
    }
}
