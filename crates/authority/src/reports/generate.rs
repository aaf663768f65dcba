//! The records of each report type, read from the store.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use store::{CaId, CaRow, CertificateFilter, CertificateState, ReportCertificate, ReportOrder};
use time::Duration;

use super::{MAX_RECORDS, Report, ReportParams, ReportType, compliance, rfc3339};
use crate::{Authority, Principal, Result};

/// The organization a report names when the default CA's subject has none.
const DEFAULT_ORGANIZATION: &str = "certmint";

impl Authority {
    /// Generates report `report_type` now.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without the report's permission
    /// ([`ReportType::permission`]); store errors.
    pub async fn generate_report(
        &self,
        principal: &Principal,
        report_type: ReportType,
        params: ReportParams,
    ) -> Result<Report> {
        principal.require(report_type.permission(), "reading reports")?;
        self.build_report(report_type, params).await
    }

    /// The organization reports are made for: the `O=` of the default CA's subject, else
    /// "certmint".
    ///
    /// # Errors
    /// Store errors.
    pub async fn report_organization(&self) -> Result<String> {
        let subject = self.store.default_ca().await?.map(|ca| ca.cert.subject);
        Ok(subject
            .as_deref()
            .and_then(organization_of)
            .unwrap_or_else(|| DEFAULT_ORGANIZATION.to_owned()))
    }

    /// Report `report_type`, for whoever may read it (checked by the caller).
    pub(crate) async fn build_report(
        &self,
        report_type: ReportType,
        params: ReportParams,
    ) -> Result<Report> {
        let now = self.now();
        let (records, total, chart) = match report_type {
            ReportType::ExpiringCertificates => {
                let until = now + Duration::days(params.days);
                let filter = CertificateFilter::in_state(CertificateState::ExpiringBefore(until));
                let (certs, total) = self.report_rows(&filter, ReportOrder::Expiry).await?;
                let names = self.ca_names().await?;
                let mut weeks: Vec<(String, i64)> = Vec::new();
                for c in &certs {
                    let week = format!("week {}", (c.not_after - now).whole_days() / 7 + 1);
                    match weeks.last_mut() {
                        Some((label, n)) if *label == week => *n += 1,
                        _ => weeks.push((week, 1)),
                    }
                }
                let records = certs
                    .iter()
                    .map(|c| {
                        record(json!({
                            "id": c.refid,
                            "common_name": c.common_name,
                            "serial": c.serial,
                            "ca": ca_name(&names, c.ca_id),
                            "not_after": rfc3339(c.not_after),
                            "days_left": (c.not_after - now).whole_days(),
                            "key_type": c.key_type,
                            "sans": c.sans.join(", "),
                        }))
                    })
                    .collect();
                (
                    records,
                    total,
                    ("Certificates expiring per week".to_owned(), weeks),
                )
            }
            ReportType::RevokedCertificates => {
                let filter = CertificateFilter::in_state(CertificateState::Revoked);
                let (certs, total) = self.report_rows(&filter, ReportOrder::Revocation).await?;
                let names = self.ca_names().await?;
                let mut reasons: Vec<(String, i64)> = Vec::new();
                for c in &certs {
                    let reason = c
                        .revocation_reason
                        .clone()
                        .unwrap_or_else(|| "unspecified".into());
                    match reasons.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, n)) => *n += 1,
                        None => reasons.push((reason, 1)),
                    }
                }
                let records = certs
                    .iter()
                    .map(|c| {
                        record(json!({
                            "id": c.refid,
                            "common_name": c.common_name,
                            "serial": c.serial,
                            "ca": ca_name(&names, c.ca_id),
                            "revoked_at": c.revoked_at.map(rfc3339),
                            "reason": c.revocation_reason.as_deref().unwrap_or("unspecified"),
                            "not_after": rfc3339(c.not_after),
                        }))
                    })
                    .collect();
                (
                    records,
                    total,
                    ("Revocations by reason".to_owned(), reasons),
                )
            }
            ReportType::CaHierarchy => {
                let cas = self.store.cas().await?;
                let counts = self.store.certificates_per_ca().await?;
                let records: Vec<_> = hierarchy(&cas)
                    .into_iter()
                    .map(|(ca, depth)| {
                        let parent = ca
                            .parent_id
                            .and_then(|p| cas.iter().find(|c| c.id == p))
                            .map(|p| p.name.clone());
                        record(json!({
                            "id": ca.refid,
                            "name": ca.name,
                            "type": ca.ca_type,
                            "parent": parent,
                            "depth": depth,
                            "subject": ca.cert.subject,
                            "active": ca.is_active,
                            "not_after": rfc3339(ca.cert.not_after),
                            "certificates": counts.get(&ca.id).copied().unwrap_or(0),
                        }))
                    })
                    .collect();
                let chart = cas
                    .iter()
                    .map(|ca| (ca.name.clone(), counts.get(&ca.id).copied().unwrap_or(0)))
                    .collect();
                let total = i64::try_from(records.len()).unwrap_or(i64::MAX);
                (
                    records,
                    total,
                    ("Certificates issued per CA".to_owned(), chart),
                )
            }
            ReportType::AuditSummary => {
                let actions = self
                    .store
                    .audit_action_counts(now - Duration::days(params.days))
                    .await?;
                let records: Vec<_> = actions
                    .iter()
                    .map(|a| {
                        record(json!({
                            "action": a.action,
                            "total": a.total,
                            "failures": a.failures,
                            "last_at": rfc3339(a.last_at),
                        }))
                    })
                    .collect();
                let chart = actions
                    .iter()
                    .take(12)
                    .map(|a| (a.action.clone(), a.total))
                    .collect();
                let total = i64::try_from(records.len()).unwrap_or(i64::MAX);
                (
                    records,
                    total,
                    ("Audit records per action".to_owned(), chart),
                )
            }
            ReportType::ComplianceStatus => {
                let checks = compliance::checks(&self.store.certificate_profiles(now).await?);
                let chart = checks
                    .iter()
                    .map(|c| (c.id.to_owned(), c.non_compliant))
                    .collect();
                let records: Vec<_> = checks
                    .iter()
                    .map(compliance::ComplianceCheck::record)
                    .collect();
                let total = i64::try_from(records.len()).unwrap_or(i64::MAX);
                (
                    records,
                    total,
                    ("Non-compliant certificates per check".to_owned(), chart),
                )
            }
            ReportType::CertificateInventory => {
                let filter = CertificateFilter::default();
                let (certs, total) = self.report_rows(&filter, ReportOrder::Stored).await?;
                let names = self.ca_names().await?;
                let states = self
                    .store
                    .certificate_states(now, now + Duration::days(params.days))
                    .await?;
                let records = certs
                    .iter()
                    .map(|c| {
                        record(json!({
                            "id": c.refid,
                            "common_name": c.common_name,
                            "subject": c.subject,
                            "serial": c.serial,
                            "ca": ca_name(&names, c.ca_id),
                            "status": CertificateState::of(c.status, c.not_after, now).as_str(),
                            "not_before": rfc3339(c.not_before),
                            "not_after": rfc3339(c.not_after),
                            "key_type": c.key_type,
                            "signature_algorithm": c.signature_algorithm,
                            "source": c.source.as_str(),
                            "is_ca": c.is_ca,
                            "sans": c.sans.join(", "),
                        }))
                    })
                    .collect();
                let chart = vec![
                    ("active".to_owned(), states.active),
                    ("expiring".to_owned(), states.expiring),
                    ("expired".to_owned(), states.expired),
                    ("revoked".to_owned(), states.revoked),
                ];
                (records, total, ("Certificates by status".to_owned(), chart))
            }
        };
        Ok(Report {
            report_type,
            params,
            generated_at: now,
            records,
            total,
            chart,
        })
    }

    /// The certificates of `filter`, at most [`MAX_RECORDS`], and how many match in all.
    async fn report_rows(
        &self,
        filter: &CertificateFilter,
        order: ReportOrder,
    ) -> Result<(Vec<ReportCertificate>, i64)> {
        let now = self.now();
        let total = self.store.count_certificates(filter, now).await?;
        let rows = self
            .store
            .report_certificates(filter, now, order, MAX_RECORDS)
            .await?;
        Ok((rows, total))
    }

    /// Every CA's name, by id.
    async fn ca_names(&self) -> Result<HashMap<CaId, String>> {
        Ok(self
            .store
            .cas()
            .await?
            .into_iter()
            .map(|ca| (ca.id, ca.name))
            .collect())
    }
}

/// A record from a JSON object literal.
fn record(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn ca_name(names: &HashMap<CaId, String>, id: Option<CaId>) -> Option<String> {
    id.and_then(|id| names.get(&id).cloned())
}

/// The CAs as a tree, depth first, each with its depth: roots (and CAs whose parent is not
/// held here) at depth 0, each followed by the CAs it issued, by name.
pub(super) fn hierarchy(cas: &[CaRow]) -> Vec<(&CaRow, usize)> {
    let mut sorted: Vec<&CaRow> = cas.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let held = |id: Option<CaId>| id.is_some_and(|id| cas.iter().any(|c| c.id == id));
    let mut out = Vec::with_capacity(cas.len());
    let mut stack: Vec<(&CaRow, usize)> = sorted
        .iter()
        .rev()
        .filter(|c| !held(c.parent_id) || c.parent_id == Some(c.id))
        .map(|c| (*c, 0))
        .collect();
    while let Some((ca, depth)) = stack.pop() {
        if out.iter().any(|(c, _): &(&CaRow, usize)| c.id == ca.id) {
            continue;
        }
        out.push((ca, depth));
        stack.extend(
            sorted
                .iter()
                .rev()
                .filter(|c| c.parent_id == Some(ca.id) && c.id != ca.id)
                .map(|c| (*c, depth + 1)),
        );
    }
    out
}

/// The value of the first `O=` in an RFC 4514 subject.
fn organization_of(subject: &str) -> Option<String> {
    subject
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("O="))
        .map(|o| o.replace('\\', ""))
        .find(|o| !o.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_organization_is_the_first_o_of_the_subject() {
        assert_eq!(
            organization_of("CN=Root,O=Example Corp,C=NL").as_deref(),
            Some("Example Corp")
        );
        assert_eq!(organization_of("CN=Root"), None);
    }
}
