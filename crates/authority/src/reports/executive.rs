//! The executive report: the figures a management summary needs, counted by the database,
//! and the conclusions drawn from them.

use store::{CertificateState, CertificateStates};
use time::{Duration, OffsetDateTime};

use super::compliance::{self, ComplianceCheck};
use super::generate::hierarchy;
use super::pdf;
use crate::{Authority, Permission, Principal, Result};

/// Weeks ahead and behind the executive charts show.
const WEEKS: i64 = 8;

/// One CA as the overview shows it.
#[derive(Debug, Clone)]
pub(super) struct CaLine {
    pub(super) name: String,
    pub(super) ca_type: String,
    pub(super) depth: usize,
    pub(super) active: bool,
    pub(super) not_after: OffsetDateTime,
    pub(super) certificates: i64,
}

/// What the executive report says.
#[derive(Debug, Clone)]
pub(super) struct Executive {
    pub(super) organization: String,
    pub(super) generated_at: OffsetDateTime,
    pub(super) certificates: i64,
    /// States, `expiring` within 30 days.
    pub(super) states: CertificateStates,
    pub(super) expiring_7: i64,
    pub(super) weekly_expiry: Vec<(String, i64)>,
    pub(super) weekly_issued: Vec<(String, i64)>,
    pub(super) issued_30: i64,
    pub(super) revoked_30: i64,
    pub(super) key_types: Vec<(String, i64)>,
    pub(super) sources: Vec<(String, i64)>,
    pub(super) checks: Vec<ComplianceCheck>,
    pub(super) cas: Vec<CaLine>,
    now: OffsetDateTime,
}

impl Executive {
    /// Certificates failing check `id`.
    pub(super) fn check(&self, id: &str) -> i64 {
        self.checks
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.non_compliant)
    }

    /// The share of check results that pass, in percent.
    pub(super) fn compliance_score(&self) -> i64 {
        let applicable: i64 = self.checks.iter().map(|c| c.applicable).sum();
        let failing: i64 = self.checks.iter().map(|c| c.non_compliant).sum();
        if applicable == 0 {
            100
        } else {
            (applicable - failing) * 100 / applicable
        }
    }

    /// `High`, `Medium` or `Low`.
    pub(super) fn risk_level(&self) -> &'static str {
        if self.states.expired > 0
            || self.expiring_7 > 0
            || self.check("key_strength") > 0
            || self.check("signature_algorithm") > 0
        {
            "High"
        } else if self.states.expiring > 0 || self.check("tls_validity") > 0 {
            "Medium"
        } else {
            "Low"
        }
    }

    /// What to do next, most urgent first.
    pub(super) fn recommendations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.expiring_7 > 0 {
            out.push(format!(
                "Renew the {} certificate(s) expiring within 7 days now.",
                self.expiring_7
            ));
        }
        if self.states.expiring > self.expiring_7 {
            out.push(format!(
                "Plan the renewal of the {} certificate(s) expiring within 30 days; ACME or \
                 scheduled renewal removes this work.",
                self.states.expiring
            ));
        }
        if self.states.expired > 0 {
            out.push(format!(
                "Replace or revoke the {} expired certificate(s) still in the inventory.",
                self.states.expired
            ));
        }
        if self.check("key_strength") > 0 {
            out.push(format!(
                "Re-key the {} certificate(s) with weak keys (RSA under 2048 bits or unknown \
                 algorithms).",
                self.check("key_strength")
            ));
        }
        if self.check("signature_algorithm") > 0 {
            out.push(format!(
                "Reissue the {} certificate(s) signed with SHA-1 or MD5.",
                self.check("signature_algorithm")
            ));
        }
        if self.check("tls_validity") > 0 {
            out.push(format!(
                "Shorten the validity of the {} TLS server certificate(s) valid over 398 days: \
                 browsers reject them.",
                self.check("tls_validity")
            ));
        }
        for ca in self.cas.iter().filter(|ca| ca.active) {
            let left = (ca.not_after - self.now).whole_days();
            if left < 365 {
                out.push(format!(
                    "CA '{}' expires in {left} days: plan its renewal and the re-issuance of \
                     what it signed.",
                    ca.name
                ));
            }
        }
        if out.is_empty() {
            out.push(
                "No action needed: keep expiry alerts and scheduled reports on to stay here."
                    .to_owned(),
            );
        }
        out
    }
}

impl Authority {
    /// The executive report as a PDF: cover, summary, risks, inventory, compliance,
    /// lifecycle, CAs and recommendations.
    ///
    /// Its CA overview shows no more than certificates name as their issuers, so
    /// `read:certificates` is enough.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `read:certificates`; store errors.
    pub async fn executive_report(&self, principal: &Principal) -> Result<Vec<u8>> {
        principal.require(Permission::ReadCertificates, "reading the executive report")?;
        Ok(pdf::executive(&self.executive().await?))
    }

    /// The executive report's figures.
    pub(super) async fn executive(&self) -> Result<Executive> {
        let now = self.now();
        let states = self
            .store
            .certificate_states(now, now + Duration::days(30))
            .await?;
        let expiring_within = |days: i64| {
            let filter = store::CertificateFilter::in_state(CertificateState::ExpiringBefore(
                now + Duration::days(days),
            ));
            async move { self.store.count_certificates(&filter, now).await }
        };
        let expiring_7 = expiring_within(7).await?;
        let mut weekly_expiry = Vec::new();
        let mut before = 0;
        for week in 1..=WEEKS {
            let by = expiring_within(7 * week).await?;
            weekly_expiry.push((format!("week {week}"), by - before));
            before = by;
        }
        let trend = self
            .store
            .certificate_trend(now, u32::try_from(7 * WEEKS).unwrap_or(56))
            .await?;
        let weekly_issued = trend
            .chunks(7)
            .map(|days| {
                let first = days.first().map(|d| d.day.to_string()).unwrap_or_default();
                (format!("from {first}"), days.iter().map(|d| d.issued).sum())
            })
            .collect();
        let last_30 = trend.iter().rev().take(30);
        let (issued_30, revoked_30) =
            last_30.fold((0, 0), |(i, r), d| (i + d.issued, r + d.revoked));
        let profiles = self.store.certificate_profiles(now).await?;
        let mut key_types: Vec<(String, i64)> = Vec::new();
        let mut sources: Vec<(String, i64)> = Vec::new();
        for p in &profiles {
            if p.state == "active" {
                add(&mut key_types, &p.key_type, p.count);
            }
            add(&mut sources, p.source.as_str(), p.count);
        }
        key_types.sort_by_key(|k| std::cmp::Reverse(k.1));
        sources.sort_by_key(|s| std::cmp::Reverse(s.1));
        let cas = self.store.cas().await?;
        let counts = self.store.certificates_per_ca().await?;
        let lines = hierarchy(&cas)
            .into_iter()
            .map(|(ca, depth)| CaLine {
                name: ca.name.clone(),
                ca_type: ca.ca_type.clone(),
                depth,
                active: ca.is_active,
                not_after: ca.cert.not_after,
                certificates: counts.get(&ca.id).copied().unwrap_or(0),
            })
            .collect();
        Ok(Executive {
            organization: self.report_organization().await?,
            generated_at: now,
            certificates: self.store.totals().await?.certificates,
            states,
            expiring_7,
            weekly_expiry,
            weekly_issued,
            issued_30,
            revoked_30,
            key_types,
            sources,
            checks: compliance::checks(&profiles),
            cas: lines,
            now,
        })
    }
}

fn add(counts: &mut Vec<(String, i64)>, label: &str, n: i64) {
    match counts.iter_mut().find(|(l, _)| l == label) {
        Some((_, total)) => *total += n,
        None => counts.push((label.to_owned(), n)),
    }
}
