//! Issuer links: which stored CA signed each certificate and CA, judged by key identifiers and
//! proven by signature, and the repair of links that are missing or point at the wrong CA.
//! The integrity check judges every link the same way.

use std::sync::Arc;

use pki::inspect;
use store::{CaId, CaRow, CertificateId, CertificateRow};

use crate::audit::Event;
use crate::{Authority, Permission, Principal, Result};

/// Certificates read (and judged in one job of the CPU pool) at a time.
pub(crate) const PAGE: i64 = 500;
/// A report lists at most this many findings; the counts cover them all.
pub(crate) const MAX_LISTED: usize = 100;

/// The stored CAs, parsed once for a whole walk.
#[derive(Debug, Default)]
pub(crate) struct CaIndex {
    /// Those whose stored DER parses (the integrity check reports the others).
    cas: Vec<(CaId, inspect::Certificate)>,
}

/// What a certificate's (or CA's) issuer link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Linked to the CA that signed it.
    Confirmed,
    /// Self-signed: it has no issuer to link to.
    Root,
    /// Not linked, and no stored CA signed it (issued elsewhere).
    External,
    /// Not linked, though stored CA `issuer` signed it.
    Missing { issuer: CaId },
    /// Linked to `linked` (which may no longer exist), which did not sign it; `issuer` did,
    /// when a stored CA did.
    Wrong { linked: CaId, issuer: Option<CaId> },
}

impl CaIndex {
    /// Parses `cas`; CPU work for the pool.
    pub(crate) fn new(cas: &[CaRow]) -> Self {
        Self {
            cas: cas
                .iter()
                .filter_map(|ca| Some((ca.id, inspect::Certificate::parse(&ca.cert.der).ok()?)))
                .collect(),
        }
    }

    fn get(&self, id: CaId) -> Option<&inspect::Certificate> {
        self.cas.iter().find(|(i, _)| *i == id).map(|(_, c)| c)
    }

    /// The stored CA (other than `except`) that signed `cert`: among those whose subject key
    /// identifier is its authority key identifier, or, without one, whose subject is its
    /// issuer.
    fn issuer_of(&self, cert: &inspect::Certificate, except: Option<CaId>) -> Option<CaId> {
        self.cas
            .iter()
            .filter(|(id, _)| Some(*id) != except)
            .filter(|(_, ca)| match &cert.authority_key_id {
                Some(aki) => ca.subject_key_id.as_ref() == Some(aki),
                None => ca.subject_raw == cert.issuer_raw,
            })
            .find(|(_, ca)| cert.is_issued_by(ca))
            .map(|(id, _)| *id)
    }

    /// The link of `cert`, stored as linked to `linked`; `own` is the CA's own id when `cert`
    /// is a CA certificate (a CA never issues itself).
    pub(crate) fn judge(
        &self,
        cert: &inspect::Certificate,
        linked: Option<CaId>,
        own: Option<CaId>,
    ) -> Link {
        if cert.self_signed {
            return Link::Root;
        }
        match linked {
            Some(linked) if self.get(linked).is_some_and(|ca| cert.is_issued_by(ca)) => {
                Link::Confirmed
            }
            Some(linked) => Link::Wrong {
                linked,
                issuer: self.issuer_of(cert, own),
            },
            None => match self.issuer_of(cert, own) {
                Some(issuer) => Link::Missing { issuer },
                None => Link::External,
            },
        }
    }

    /// Each CA's link, with the CA's id and subject; CAs whose DER does not parse are left
    /// out (the integrity check reports them).
    pub(crate) fn ca_links(&self, cas: &[CaRow]) -> Vec<(CaId, String, Option<CaId>, Link)> {
        cas.iter()
            .filter_map(|row| {
                let cert = self.get(row.id)?;
                Some((
                    row.id,
                    row.cert.subject.clone(),
                    row.parent_id,
                    self.judge(cert, row.parent_id, Some(row.id)),
                ))
            })
            .collect()
    }

    /// What is wrong with `link`, in words; none when nothing is.
    pub(crate) fn describe(&self, link: Link) -> Option<String> {
        let Link::Wrong { linked, issuer } = link else {
            return match link {
                Link::Missing { issuer } => {
                    Some(format!("its issuer link is missing: CA {issuer} signed it"))
                }
                _ => None,
            };
        };
        let wrong = if self.get(linked).is_some() {
            format!("its signature does not verify under its issuer, CA {linked}")
        } else {
            format!("it is linked to CA {linked}, which does not exist")
        };
        Some(match issuer {
            Some(issuer) => format!("{wrong}; CA {issuer} signed it"),
            None => format!("{wrong}; no stored CA signed it"),
        })
    }
}

/// A certificate or CA whose issuer link is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFinding {
    /// `certificate` or `ca`.
    pub resource: &'static str,
    /// Its id.
    pub id: i64,
    /// Its subject.
    pub subject: String,
    /// `missing_link` (not linked, though a stored CA signed it) or `wrong_link` (linked to a
    /// CA that did not sign it, or no longer exists).
    pub problem: &'static str,
    /// The CA it is linked to.
    pub linked_ca_id: Option<CaId>,
    /// The stored CA that signed it; none when no stored CA did (then it is left as it is).
    pub issuer_ca_id: Option<CaId>,
    /// Whether a run relinked it to `issuer_ca_id`.
    pub relinked: bool,
}

/// Counts over the whole walk, named as the UCM reference names them where it has a name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainStats {
    /// CAs.
    pub total_cas: i64,
    /// Certificates.
    pub total_certs: i64,
    /// CAs without a parent link though a stored CA signed them.
    pub orphan_cas: i64,
    /// Certificates without an issuer link though a stored CA signed them.
    pub orphan_certs: i64,
    /// CAs linked to a parent that did not sign them.
    pub mislinked_cas: i64,
    /// Certificates linked to a CA that did not sign them.
    pub mislinked_certs: i64,
    /// CAs relinked by this run.
    pub rechained_cas: i64,
    /// Certificates relinked by this run.
    pub rechained_certs: i64,
    /// Wrong links no stored CA can replace (no stored CA signed it): left as they are.
    pub unresolved: i64,
}

/// What a chain repair found, or did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainRepair {
    /// The counts.
    pub stats: ChainStats,
    /// The first [`MAX_LISTED`] findings, CAs first, then certificates by id.
    pub findings: Vec<ChainFinding>,
    /// Whether there were more findings than listed.
    pub truncated: bool,
}

impl ChainRepair {
    fn add(&mut self, finding: ChainFinding) {
        let ca = finding.resource == "ca";
        match (finding.problem, finding.issuer_ca_id) {
            ("missing_link", _) if ca => self.stats.orphan_cas += 1,
            ("missing_link", _) => self.stats.orphan_certs += 1,
            (_, issuer) => {
                if ca {
                    self.stats.mislinked_cas += 1;
                } else {
                    self.stats.mislinked_certs += 1;
                }
                if issuer.is_none() {
                    self.stats.unresolved += 1;
                }
            }
        }
        match (finding.relinked, ca) {
            (true, true) => self.stats.rechained_cas += 1,
            (true, false) => self.stats.rechained_certs += 1,
            _ => {}
        }
        if self.findings.len() < MAX_LISTED {
            self.findings.push(finding);
        } else {
            self.truncated = true;
        }
    }
}

/// A finding for `link`, when it is one.
fn finding(
    resource: &'static str,
    id: i64,
    subject: String,
    linked: Option<CaId>,
    link: Link,
) -> Option<ChainFinding> {
    let (problem, issuer) = match link {
        Link::Missing { issuer } => ("missing_link", Some(issuer)),
        Link::Wrong { issuer, .. } => ("wrong_link", issuer),
        Link::Confirmed | Link::Root | Link::External => return None,
    };
    Some(ChainFinding {
        resource,
        id,
        subject,
        problem,
        linked_ca_id: linked,
        issuer_ca_id: issuer,
        relinked: false,
    })
}

impl Authority {
    /// The stored CAs and their index, parsed in the CPU pool.
    pub(crate) async fn ca_index(&self) -> Result<(Vec<CaRow>, Arc<CaIndex>)> {
        let cas = self.store.cas().await?;
        let (cas, index) = self
            .cpu
            .run(move || {
                let index = CaIndex::new(&cas);
                Ok((cas, index))
            })
            .await?;
        Ok((cas, Arc::new(index)))
    }

    /// Certificates and CAs whose issuer link is missing or points at a CA that did not sign
    /// them. Only links the stored key identifiers do not confirm have their signatures
    /// checked.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Busy`] when the CPU pool is full;
    /// store errors.
    pub async fn chain_report(&self, principal: &Principal) -> Result<ChainRepair> {
        principal.require(Permission::AdminSystem, "reading the chain repair report")?;
        self.walk_chains(None).await
    }

    /// Relinks every certificate and CA whose issuer link is missing or wrong to the stored
    /// CA that signed it, each change audited; links no stored CA can replace are reported
    /// and left. Each page of certificates is relinked in a transaction of its own.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Busy`] when the CPU pool is full;
    /// store errors.
    pub async fn repair_chains(&self, principal: &Principal) -> Result<ChainRepair> {
        principal.require(Permission::AdminSystem, "running the chain repair")?;
        let report = self.walk_chains(Some(principal)).await?;
        let stats = report.stats;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "chain_repair_run",
                "system",
                "chain-repair",
                format!(
                    "relinked {} CAs and {} certificates; {} wrong links left (no stored issuer)",
                    stats.rechained_cas, stats.rechained_certs, stats.unresolved
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        if stats.rechained_cas > 0 {
            self.issuers.changed();
        }
        Ok(report)
    }

    /// Walks every CA and every certificate whose link is unconfirmed; relinks what it can
    /// when `repairing` names who asked.
    async fn walk_chains(&self, repairing: Option<&Principal>) -> Result<ChainRepair> {
        let (cas, index) = self.ca_index().await?;
        let mut report = ChainRepair::default();
        report.stats.total_cas = i64::try_from(cas.len()).unwrap_or(i64::MAX);
        report.stats.total_certs = self
            .store
            .count_certificates(&store::CertificateFilter::default(), self.now())
            .await?;
        let ca_findings: Vec<ChainFinding> = {
            let (index, cas) = (index.clone(), cas.clone());
            self.cpu
                .run(move || {
                    Ok(index
                        .ca_links(&cas)
                        .into_iter()
                        .filter_map(|(id, subject, linked, link)| {
                            finding("ca", id.0, subject, linked, link)
                        })
                        .collect())
                })
                .await?
        };
        self.record(&mut report, ca_findings, repairing).await?;
        let mut after = CertificateId(0);
        loop {
            let page = self.store.unconfirmed_links_after(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let index = index.clone();
            let found = self
                .cpu
                .run(move || Ok(certificate_findings(&index, &page)))
                .await?;
            self.record(&mut report, found, repairing).await?;
        }
        Ok(report)
    }

    /// Adds `found` to `report`, relinking (in one transaction, each relink audited) those a
    /// stored CA signed when `repairing`.
    async fn record(
        &self,
        report: &mut ChainRepair,
        mut found: Vec<ChainFinding>,
        repairing: Option<&Principal>,
    ) -> Result<()> {
        if let Some(principal) =
            repairing.filter(|_| found.iter().any(|f| f.issuer_ca_id.is_some()))
        {
            let now = self.now();
            let mut tx = self.store.begin_write().await?;
            for f in found.iter_mut() {
                let Some(issuer) = f.issuer_ca_id else {
                    continue;
                };
                f.relinked = if f.resource == "ca" {
                    tx.relink_ca(CaId(f.id), f.linked_ca_id, issuer, now)
                        .await?
                } else {
                    tx.relink_certificate(CertificateId(f.id), f.linked_ca_id, issuer, now)
                        .await?
                };
                if f.relinked {
                    let was = f
                        .linked_ca_id
                        .map_or_else(|| "no issuer".to_owned(), |c| format!("CA {c}"));
                    tx.audit(&self.entry_by(
                        principal,
                        Event::new(
                            if f.resource == "ca" {
                                "ca_relinked"
                            } else {
                                "certificate_relinked"
                            },
                            f.resource,
                            f.id,
                            format!("'{}': issuer {was} → CA {issuer}", f.subject),
                        ),
                    ))
                    .await?;
                }
            }
            tx.commit().await?;
        }
        for f in found {
            report.add(f);
        }
        Ok(())
    }
}

/// The findings among `page`; CPU work for the pool. A certificate whose DER does not parse
/// is the integrity check's to report.
fn certificate_findings(index: &CaIndex, page: &[CertificateRow]) -> Vec<ChainFinding> {
    page.iter()
        .filter_map(|row| {
            let cert = inspect::Certificate::parse(&row.cert.der).ok()?;
            let link = index.judge(&cert, row.ca_id, None);
            finding(
                "certificate",
                row.id.0,
                row.cert.subject.clone(),
                row.ca_id,
                link,
            )
        })
        .collect()
}
