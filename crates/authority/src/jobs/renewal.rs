//! The `auto_renewal` job: renews, through the one issuance pipeline, the certificates whose
//! auto-renewal policy (their own, or their template's) says they are due, and whose key
//! certmint holds.
//!
//! It runs on one node at a time, under its job lease, and reads only the due rows along the
//! `auto_renewals_due` index, in pages. A certificate that has a successor is never renewed
//! again: the page query leaves it out and each is checked once more right before renewing.
//! A failed attempt is recorded with its error and retried after a backoff (15 minutes,
//! doubling up to a day), and announced by a `certificate_renewal_failed` event; a success
//! by the pipeline's `certificate_renewed` event. Both are mailed, when mail is on, to each
//! certificate's owner and the expiry alert recipients.

use std::collections::{BTreeMap, HashMap};

use pki::KeyType;
use store::{CertificateSource, DueRenewal, NewEvent, TemplateId};
use time::{Duration, OffsetDateTime};

use crate::audit::Event;
use crate::email::{Mail, html_escape, parse_address};
use crate::issue::KeySource;
use crate::renewal::{KeyPolicy, RenewalPolicy, own_policy};
use crate::{Authority, Error, Principal, Result};

/// Due certificates read per page.
const BATCH: i64 = 100;
/// The wait after the first failed attempt; it doubles with each further one.
const FIRST_RETRY: Duration = Duration::minutes(15);
/// The longest wait between attempts.
const MAX_RETRY: Duration = Duration::hours(24);
/// The longest error kept with a certificate.
const MAX_ERROR: usize = 1000;

/// The wait before the next attempt after `attempts` failed ones.
fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    (FIRST_RETRY * 2_i32.pow(doublings)).min(MAX_RETRY)
}

/// What happened to one certificate, for the mail.
#[derive(Debug, Clone)]
struct Outcome {
    name: String,
    refid: String,
    serial: String,
    not_after: OffsetDateTime,
    owner_email: Option<String>,
    /// The new certificate's id and expiry, on success.
    renewed_by: Option<(i64, OffsetDateTime)>,
    /// Why it failed, and when it is tried again.
    failure: Option<(String, OffsetDateTime)>,
}

impl Authority {
    /// The `auto_renewal` job.
    pub(crate) async fn auto_renewal_job(&self) -> Result<String> {
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.retire_renewals(now).await?;
        tx.commit().await?;
        let principal = Principal::local("auto-renewal");
        let mut templates = HashMap::new();
        let mut outcomes = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.due_renewals(now, cursor, BATCH).await?;
            let Some(last) = page.last() else { break };
            cursor = Some((last.row.due_at.unwrap_or(now), last.row.certificate_id));
            let full = page.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
            for due in page {
                if let Some(outcome) = self.renew_due(&principal, due, &mut templates).await? {
                    outcomes.push(outcome);
                }
            }
            if !full {
                break;
            }
        }
        let renewed = outcomes.iter().filter(|o| o.renewed_by.is_some()).count();
        let failed = outcomes.len() - renewed;
        let mut summary = format!("{renewed} certificates renewed, {failed} failed");
        if !outcomes.is_empty()
            && let Err(e) = self.mail_renewals(&outcomes).await
        {
            // The renewals stand and their events are queued; only the mail is lost.
            tracing::warn!(error = %e, "could not mail the auto-renewal notices");
            summary.push_str(&format!("; the notice mail failed: {e}"));
        }
        Ok(summary)
    }

    /// Renews one due certificate, or records why it could not; `None` when no policy
    /// applies any more or it was renewed meanwhile.
    async fn renew_due(
        &self,
        principal: &Principal,
        due: DueRenewal,
        templates: &mut HashMap<TemplateId, Option<RenewalPolicy>>,
    ) -> Result<Option<Outcome>> {
        let id = due.row.certificate_id;
        let now = self.now();
        let policy = match (&due.row.own, due.template_id) {
            (Some(own), _) => own_policy(own)?,
            (None, Some(t)) => match templates.get(&t) {
                Some(p) => *p,
                None => {
                    let p = self.template_renewal(t).await?;
                    templates.insert(t, p);
                    p
                }
            },
            (None, None) => None,
        };
        let renewed_meanwhile = !self.renewals_of(id).await?.is_empty();
        let Some(policy) = policy.filter(|_| !renewed_meanwhile) else {
            let mut tx = self.store.begin_write().await?;
            tx.renewal_dropped(id, now).await?;
            tx.commit().await?;
            return Ok(None);
        };
        let mut outcome = Outcome {
            name: due.name.clone(),
            refid: due.refid.clone(),
            serial: due.serial.clone(),
            not_after: due.not_after,
            owner_email: due.owner_email.clone(),
            renewed_by: None,
            failure: None,
        };
        match self.renew_by_policy(principal, &due, policy).await {
            Ok(issued) => {
                let new = &issued.certificate;
                let mut tx = self.store.begin_write().await?;
                tx.renewal_succeeded(id, new.id, now).await?;
                // A policy of the certificate's own carries over to its successor.
                if let Some(own) = due.row.own.as_ref() {
                    let due_at = policy.when.due_at(new.cert.not_before, new.cert.not_after);
                    tx.set_auto_renewal(new.id, Some(own), Some(due_at), now)
                        .await?;
                }
                tx.commit().await?;
                outcome.renewed_by = Some((new.id.0, new.cert.not_after));
            }
            Err(e) => {
                let mut error = e.to_string();
                error.truncate(error.floor_char_boundary(MAX_ERROR));
                let attempts = due.row.attempts.saturating_add(1);
                let next = now + backoff(attempts);
                tracing::warn!(certificate = %id, attempts, error = %error, "an automatic renewal failed");
                let mut tx = self.store.begin_write().await?;
                tx.renewal_failed(id, attempts, &error, next, now).await?;
                tx.queue_event(
                    &NewEvent {
                        event_type: "certificate_renewal_failed".into(),
                        resource_type: "certificate".into(),
                        resource_id: id.to_string(),
                        payload: serde_json::json!({
                            "name": due.name,
                            "refid": due.refid,
                            "serial": due.serial,
                            "not_after": crate::rfc3339(due.not_after),
                            "attempts": attempts,
                            "error": error,
                            "next_attempt_at": crate::rfc3339(next),
                        }),
                    },
                    now,
                )
                .await?;
                tx.audit(&self.entry_by(
                    principal,
                    Event::new(
                        "certificate_auto_renewal_failed",
                        "certificate",
                        id,
                        format!(
                            "attempt {attempts}: {error}; next attempt at {}",
                            crate::rfc3339(next)
                        ),
                    ),
                ))
                .await?;
                tx.commit().await?;
                outcome.failure = Some((error, next));
            }
        }
        Ok(Some(outcome))
    }

    /// Renews `due` as `policy` says, through [`Authority::renew_via`].
    async fn renew_by_policy(
        &self,
        principal: &Principal,
        due: &DueRenewal,
        policy: RenewalPolicy,
    ) -> Result<crate::Issued> {
        let id = due.row.certificate_id;
        let new_key = match policy.key_policy {
            KeyPolicy::SameKey => None,
            KeyPolicy::Rekey => {
                let cert = self.certificate(id).await?;
                let key_type = KeyType::from_label(&cert.cert.key_type)
                    .map_err(|e| Error::Invalid(format!("its key cannot be rekeyed: {e}")))?;
                Some(KeySource::Generate(Some(key_type)))
            }
        };
        self.renew_via(
            principal,
            id,
            None,
            None,
            new_key,
            CertificateSource::System,
        )
        .await
    }

    /// Mails the outcomes: one message per recipient, to the expiry alert recipients and each
    /// certificate's owner, when mail is on.
    async fn mail_renewals(&self, outcomes: &[Outcome]) -> Result<()> {
        let Some(settings) = self.email_if_enabled().await? else {
            return Ok(());
        };
        let alerts = self.stored_expiry_alerts().await?;
        let mut by_recipient: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
        for outcome in outcomes {
            let mut to = alerts.recipients.clone();
            if let Some(owner) = outcome.owner_email.as_deref()
                && let Ok(owner) = parse_address(owner, "owner")
            {
                to.push(owner.to_string());
            }
            to.sort();
            to.dedup();
            for recipient in to {
                by_recipient.entry(recipient).or_default().push(outcome);
            }
        }
        let mails: Vec<Mail> = by_recipient
            .into_iter()
            .map(|(to, items)| renewal_mail(to, &items))
            .collect();
        if mails.is_empty() {
            return Ok(());
        }
        self.send_mail(&settings, &mails).await
    }
}

/// The mail for `to` about `items`.
fn renewal_mail(to: String, items: &[&Outcome]) -> Mail {
    let failed = items.iter().filter(|i| i.failure.is_some()).count();
    let renewed = items.len() - failed;
    let mut text = String::from("certmint's automatic renewal:\n\n");
    let mut html = String::from(
        "<p>certmint's automatic renewal:</p>\n<table>\n\
         <tr><th>Name</th><th>Id</th><th>Serial</th><th>Not after</th><th>Outcome</th></tr>\n",
    );
    for i in items {
        let state = match (&i.renewed_by, &i.failure) {
            (Some((new, until)), _) => {
                format!(
                    "renewed by certificate {new}, valid until {}",
                    crate::rfc3339(*until)
                )
            }
            (None, Some((error, next))) => format!(
                "renewal FAILED: {error}; next attempt at {}",
                crate::rfc3339(*next)
            ),
            (None, None) => String::new(),
        };
        let until = crate::rfc3339(i.not_after);
        text.push_str(&format!(
            "- {} (id {}, serial {}, not after {until}): {state}\n",
            i.name, i.refid, i.serial
        ));
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{until}</td><td>{}</td></tr>\n",
            html_escape(&i.name),
            html_escape(&i.refid),
            html_escape(&i.serial),
            html_escape(&state)
        ));
    }
    html.push_str("</table>\n");
    let subject = match (renewed, failed) {
        (_, 0) if items.len() == 1 => format!("certmint: certificate {} renewed", items[0].name),
        (_, 0) => format!("certmint: {renewed} certificates renewed"),
        (0, 1) => format!("certmint: renewal of {} failed", items[0].name),
        _ => format!("certmint: {renewed} certificates renewed, {failed} renewals failed"),
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
    fn the_wait_doubles_from_fifteen_minutes_up_to_a_day() {
        assert_eq!(backoff(1), Duration::minutes(15));
        assert_eq!(backoff(2), Duration::minutes(30));
        assert_eq!(backoff(3), Duration::hours(1));
        assert_eq!(backoff(7), Duration::hours(16));
        assert_eq!(backoff(8), Duration::hours(24));
        assert_eq!(backoff(1000), Duration::hours(24));
    }

    #[test]
    fn failures_are_said_in_the_subject_and_names_escaped() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let item = Outcome {
            name: "<b>x</b>".into(),
            refid: "r".into(),
            serial: "01".into(),
            not_after: now,
            owner_email: None,
            renewed_by: None,
            failure: Some(("CA is inactive".into(), now)),
        };
        let mail = renewal_mail("a@example.com".into(), &[&item]);
        assert!(mail.subject.contains("failed"));
        assert!(mail.text.contains("CA is inactive"));
        assert!(!mail.html.contains("<b>x</b>"));
    }
}
