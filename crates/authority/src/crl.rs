//! CRLs: built from what the store holds, signed by their CA, kept by number. A revocation
//! marks its CA's CRL due; the publisher builds it once the changes have rested, so a bulk
//! revocation yields one CRL, and rebuilds every CA's CRL before it goes stale.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use pki::crl::{CrlSpec, Revoked};
use store::{CaId, CaRow, CertificateStatus, CrlRow, NewEvent, PendingChanges, RevokedEntry};
use time::Duration;

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result, RevocationReason};

/// How long revocation changes must rest before their CRL is built.
const QUIET: StdDuration = StdDuration::from_secs(2);
/// The longest a change waits for its CRL while further changes keep coming.
const MAX_WAIT: StdDuration = StdDuration::from_secs(60);
/// How far before its base's thisUpdate a delta CRL looks for changes: a revocation stamped
/// just before the base was built may have committed just after its entries were read.
const DELTA_OVERLAP: Duration = Duration::minutes(1);

/// Full or delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// Every revoked certificate.
    Full,
    /// The changes since the latest full CRL (RFC 5280 §5.2.4).
    Delta,
}

impl Authority {
    /// Builds, signs and stores CA `ca`'s next CRL: for `principal`, who asked and is audited,
    /// or for the publisher (`None`), whose routine publications are logged, not audited.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the CA has no key here, or a delta is asked for before any full
    /// CRL; [`Error::Conflict`] when another node published that number meanwhile.
    pub(crate) async fn publish_crl(
        &self,
        principal: Option<&Principal>,
        ca: &CaRow,
        kind: CrlKind,
    ) -> Result<CrlRow> {
        // Numbers are taken before the CRL is built; on this node one CRL is built at a time,
        // so that the publisher and a regenerate request never take the same one.
        let _one_at_a_time = self.crl_publishing.lock().await;
        let now = self.now();
        let number = self.store.next_crl_number(ca.id).await?;
        let s = &ca.revocation;
        let (spec, entries, delta_of) = match kind {
            CrlKind::Full => (
                CrlSpec {
                    number: crl_number(number)?,
                    this_update: now,
                    next_update: now + Duration::hours(s.crl_validity_hours),
                    delta_of: None,
                    freshest_crl_urls: if s.delta_crl_enabled {
                        vec![self.publishing().delta_crl_url(&ca.refid)]
                    } else {
                        Vec::new()
                    },
                },
                self.store.revoked_entries(ca.id, now).await?,
                None,
            ),
            CrlKind::Delta => {
                let base = self
                    .store
                    .latest_crl_info(ca.id, false)
                    .await?
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "CA '{}' has no full CRL for a delta to update",
                            ca.name
                        ))
                    })?;
                (
                    CrlSpec {
                        number: crl_number(number)?,
                        this_update: now,
                        next_update: now + Duration::hours(s.delta_crl_validity_hours),
                        delta_of: Some(crl_number(base.number)?),
                        freshest_crl_urls: Vec::new(),
                    },
                    self.store
                        .revocation_changes(ca.id, base.this_update - DELTA_OVERLAP)
                        .await?,
                    Some(base.number),
                )
            }
        };
        let revoked = entries.iter().map(crl_entry).collect::<Result<Vec<_>>>()?;
        let count = i64::try_from(revoked.len()).unwrap_or(i64::MAX);
        let (this_update, next_update) = (spec.this_update, spec.next_update);
        let der = self.sign_crl(ca, spec, revoked).await?;
        let row = CrlRow {
            ca_id: ca.id,
            number,
            delta_of,
            this_update,
            next_update,
            entries: count,
            der,
        };
        let mut tx = self.store.begin_write().await?;
        tx.insert_crl(&row).await.map_err(|e| match e {
            store::Error::Conflict(_) => Error::Conflict(format!(
                "CRL {number} of CA '{}' was published meanwhile",
                ca.name
            )),
            other => other.into(),
        })?;
        if let Some(pending) = ca.pending_changes {
            tx.clear_pending_changes(ca.id, pending.latest).await?;
        }
        if let Some(principal) = principal {
            let what = match kind {
                CrlKind::Full => "CRL".to_owned(),
                CrlKind::Delta => format!("delta CRL over {}", row.delta_of.unwrap_or_default()),
            };
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    "crl_published",
                    "ca",
                    ca.id,
                    format!("'{}': {what} {number}, {count} entries", ca.name),
                ),
            ))
            .await?;
        }
        tx.queue_event(
            &NewEvent {
                event_type: "crl_published".into(),
                resource_type: "ca".into(),
                resource_id: ca.id.to_string(),
                payload: serde_json::json!({
                    "ca_id": ca.id,
                    "number": number,
                    "delta_of": row.delta_of,
                    "entries": count,
                    "this_update": crate::rfc3339(this_update),
                    "next_update": crate::rfc3339(next_update),
                }),
            },
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Builds CA `ca_id`'s next full CRL now, and its next delta when it publishes deltas.
    /// Returns what was published, full CRL first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:cas`; [`Error::NotFound`]; as
    /// [`Authority::publish_crl`].
    pub async fn regenerate_crl(&self, principal: &Principal, ca_id: CaId) -> Result<Vec<CrlRow>> {
        if !principal.can(Permission::WriteCas) {
            return Err(Error::Forbidden("publishing a CRL needs write:cas".into()));
        }
        let ca = self.ca(ca_id).await?;
        let mut published = vec![
            self.publish_crl(Some(principal), &ca, CrlKind::Full)
                .await?,
        ];
        if ca.revocation.delta_crl_enabled {
            published.push(
                self.publish_crl(Some(principal), &ca, CrlKind::Delta)
                    .await?,
            );
        }
        Ok(published)
    }

    /// One round of the CRL publisher: each CA that publishes CRLs gets a new full CRL when its
    /// latest is due for refresh (or there is none), and after revocation changes have rested;
    /// with deltas, changes go into a delta CRL instead, and a delta is rebuilt at half its
    /// validity.
    /// Returns how many CRLs it published, and the failures, one line per CA.
    pub(crate) async fn crl_round(&self, watch: &mut CrlWatch) -> Result<(usize, Vec<String>)> {
        let _one_round_at_a_time = self.crl_rounds.lock().await;
        let mut published = 0;
        let mut failures = Vec::new();
        let now = self.now();
        let signal = self.revocations.count();
        for ca in self.store.cas().await? {
            let s = &ca.revocation;
            if ca.key_id.is_none() || !s.cdp_enabled || ca.cert.not_after <= now {
                continue;
            }
            let settled = watch.settled(ca.id, ca.pending_changes, signal);
            let full = self.store.latest_crl_info(ca.id, false).await?;
            let refresh = Duration::hours(s.crl_refresh_hours);
            let kind = match &full {
                None => Some(CrlKind::Full),
                Some(f) if now >= f.this_update + refresh || now >= f.next_update => {
                    Some(CrlKind::Full)
                }
                Some(_) if settled && !s.delta_crl_enabled => Some(CrlKind::Full),
                Some(f) if s.delta_crl_enabled => {
                    let delta = self.store.latest_crl_info(ca.id, true).await?;
                    let half = Duration::hours(s.delta_crl_validity_hours) / 2;
                    let stale = delta.is_none_or(|d| {
                        d.delta_of != Some(f.number) || now >= d.this_update + half
                    });
                    (settled || stale).then_some(CrlKind::Delta)
                }
                Some(_) => None,
            };
            let Some(kind) = kind else { continue };
            match self.publish_crl(None, &ca, kind).await {
                Ok(crl) => {
                    watch.published(ca.id);
                    published += 1;
                    tracing::info!(ca = %ca.name, number = crl.number, entries = crl.entries, ?kind, "published a CRL");
                }
                Err(e) => {
                    tracing::warn!(ca = %ca.name, error = %e, "could not publish a CRL");
                    failures.push(format!("'{}': {e}", ca.name));
                }
            }
        }
        Ok((published, failures))
    }

    /// The `crl_refresh` job: publishes the CRLs due by time. Changes from revocations are the
    /// publisher's, which sees them within a second; a watch of its own never finds them
    /// settled, so this job leaves them to it.
    pub(crate) async fn crl_refresh(&self) -> Result<String> {
        let (published, failures) = self.crl_round(&mut CrlWatch::default()).await?;
        if failures.is_empty() {
            Ok(format!("{published} CRLs published"))
        } else {
            Err(Error::Internal(format!(
                "{published} CRLs published; failed for {}",
                failures.join("; ")
            )))
        }
    }
}

fn crl_number(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Internal(format!("CRL number {n} is negative")))
}

/// A stored revocation as a CRL entry; a released hold becomes removeFromCRL.
fn crl_entry(e: &RevokedEntry) -> Result<Revoked> {
    let serial = hex::decode(&e.serial)
        .map_err(|_| Error::Internal(format!("stored serial '{}' is not hex", e.serial)))?;
    let reason = if e.status == CertificateStatus::Revoked {
        RevocationReason::parse(e.reason.as_deref().unwrap_or("unspecified"))?
    } else {
        RevocationReason::RemoveFromCrl
    };
    Ok(Revoked {
        serial,
        revoked_at: e.revoked_at,
        reason: Some(reason.code()),
        invalidity_date: e.invalidity_date,
    })
}

/// What the publisher has seen of each CA's pending revocation changes, and since when, on
/// this node's monotonic clock (the injected clock may stand still in tests, and other nodes'
/// clocks may differ).
#[derive(Debug, Default)]
pub(crate) struct CrlWatch {
    seen: HashMap<CaId, Seen>,
}

#[derive(Debug)]
struct Seen {
    mark: (PendingChanges, u64),
    first: Instant,
    changed: Instant,
}

impl CrlWatch {
    /// Whether CA `ca_id`'s pending changes have rested: unchanged, and no revocation on this
    /// node, for [`QUIET`]; or pending for [`MAX_WAIT`] whatever comes.
    fn settled(&mut self, ca_id: CaId, pending: Option<PendingChanges>, signal: u64) -> bool {
        let Some(pending) = pending else {
            self.seen.remove(&ca_id);
            return false;
        };
        let now = Instant::now();
        let mark = (pending, signal);
        let seen = self.seen.entry(ca_id).or_insert(Seen {
            mark,
            first: now,
            changed: now,
        });
        if seen.mark != mark {
            seen.mark = mark;
            seen.changed = now;
        }
        seen.changed.elapsed() >= QUIET || seen.first.elapsed() >= MAX_WAIT
    }

    fn published(&mut self, ca_id: CaId) {
        self.seen.remove(&ca_id);
    }
}
