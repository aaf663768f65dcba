//! The trust store: certificates of other CAs that certmint trusts, added by hand, imported
//! from a file, or synced from the operating system's bundle.

use pki::{bundle, inspect};
use store::{NewTrusted, Page, PageRequest, TrustSource, TrustStats, TrustedRow};

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// How trusted certificates are labelled: all optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustLabels<'a> {
    /// Names a file's only certificate; otherwise each is named by its common name.
    pub name: Option<&'a str>,
    /// Free text.
    pub description: Option<&'a str>,
    /// What it is trusted for: 1 to 64 lower-case letters, digits, `_` or `-`;
    /// `trust_anchor` when absent.
    pub purpose: Option<&'a str>,
    /// Free notes, at most 4,000 characters.
    pub notes: Option<&'a str>,
}

/// The purpose of a certificate trusted without one.
const DEFAULT_PURPOSE: &str = "trust_anchor";
/// The longest notes kept.
const MAX_NOTES: usize = 4000;

impl TrustLabels<'_> {
    fn purpose(&self) -> Result<String> {
        let Some(purpose) = self.purpose.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(DEFAULT_PURPOSE.to_owned());
        };
        let fits = purpose.len() <= 64
            && purpose
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !fits {
            return Err(Error::Invalid(format!(
                "purpose '{purpose}' must be 1 to 64 lower-case letters, digits, '_' or '-' \
                 (such as trust_anchor)"
            )));
        }
        Ok(purpose.to_owned())
    }

    fn notes(&self) -> Result<Option<String>> {
        match self.notes.map(str::trim).filter(|n| !n.is_empty()) {
            Some(notes) if notes.chars().count() > MAX_NOTES => Err(Error::Invalid(format!(
                "notes are longer than {MAX_NOTES} characters"
            ))),
            notes => Ok(notes.map(str::to_owned)),
        }
    }
}

/// What adding to the trust store did.
#[derive(Debug, Default)]
pub struct TrustReport {
    /// Ids of the certificates added.
    pub added: Vec<i64>,
    /// Certificates that were trusted already.
    pub skipped: usize,
}

impl Authority {
    /// One page of the trust store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn trusted_certificates(&self, page: PageRequest) -> Result<Page<TrustedRow>> {
        Ok(self.store.trusted_certificates(page).await?)
    }

    /// Trusted certificate `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn trusted_certificate(&self, id: i64) -> Result<TrustedRow> {
        self.store
            .trusted_certificate(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("trusted certificate {id} does not exist")))
    }

    /// Counts of the trust store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn trust_stats(&self) -> Result<TrustStats> {
        Ok(self.store.trust_stats(self.now()).await?)
    }

    /// Trusts every certificate of `data` (PEM, DER, PKCS#7, PKCS#12 with `password`), in one
    /// transaction, labelled with `labels`. Each must be a CA certificate or self-signed (old
    /// roots have no basic constraints).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:truststore`; [`Error::Invalid`] for a file that
    /// does not read, an end-entity certificate, or a purpose or notes out of bounds.
    pub async fn trust(
        &self,
        principal: &Principal,
        data: &[u8],
        password: Option<&str>,
        labels: TrustLabels<'_>,
        source: TrustSource,
    ) -> Result<TrustReport> {
        principal.require(Permission::WriteTruststore, "adding to the trust store")?;
        let (purpose, notes) = (labels.purpose()?, labels.notes()?);
        let (data, password) = (data.to_vec(), password.map(str::to_owned));
        let certificates = self
            .cpu
            .run(move || Ok(bundle::read(&data, password.as_deref())?.certificates))
            .await?;
        if certificates.is_empty() {
            return Err(Error::Invalid("the file holds no certificate".into()));
        }
        let single = certificates.len() == 1;
        let mut rows = Vec::with_capacity(certificates.len());
        for der in &certificates {
            let info = inspect::Certificate::parse(der)?;
            if !info.is_ca && !info.self_signed {
                return Err(Error::Invalid(format!(
                    "'{}' is not a CA certificate; the trust store holds CAs",
                    info.subject
                )));
            }
            let name = labels
                .name
                .filter(|n| single && !n.trim().is_empty())
                .map(str::to_owned)
                .or_else(|| info.common_name.clone())
                .unwrap_or_else(|| info.subject.clone());
            rows.push(NewTrusted {
                name,
                description: labels.description.map(str::to_owned),
                purpose: purpose.clone(),
                notes: notes.clone(),
                subject: info.subject,
                issuer: info.issuer,
                serial: info.serial,
                not_before: info.not_before,
                not_after: info.not_after,
                is_root: info.self_signed,
                fingerprint_sha256: info.fingerprint_sha256,
                der: info.der,
                source,
            });
        }
        let now = self.now();
        let mut report = TrustReport::default();
        let mut tx = self.store.begin_write().await?;
        for row in &rows {
            let Some(id) = tx.insert_trusted(row, now).await? else {
                report.skipped += 1;
                continue;
            };
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    "trusted_certificate_added",
                    "truststore",
                    id,
                    format!("'{}' ({}, {source})", row.name, row.subject),
                ),
            ))
            .await?;
            report.added.push(id);
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Stops trusting certificate `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:truststore`; [`Error::NotFound`].
    pub async fn untrust(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(
            Permission::DeleteTruststore,
            "removing from the trust store",
        )?;
        let row = self.trusted_certificate(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_trusted(id).await? {
            return Err(Error::NotFound(format!(
                "trusted certificate {id} does not exist"
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "trusted_certificate_removed",
                "truststore",
                id,
                format!("'{}' ({})", row.name, row.subject),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_default_the_purpose_and_bound_purpose_and_notes() {
        let none = TrustLabels::default();
        assert_eq!(none.purpose().ok().as_deref(), Some(DEFAULT_PURPOSE));
        assert_eq!(none.notes().ok(), Some(None));
        let long = "n".repeat(MAX_NOTES + 1);
        for bad in [
            TrustLabels {
                purpose: Some("Trust Anchor"),
                ..none
            },
            TrustLabels {
                purpose: Some(&long[..65]),
                ..none
            },
        ] {
            assert!(matches!(bad.purpose(), Err(Error::Invalid(_))), "{bad:?}");
        }
        let too_long = TrustLabels {
            notes: Some(&long),
            ..none
        };
        assert!(matches!(too_long.notes(), Err(Error::Invalid(_))));
        let fits = TrustLabels {
            notes: Some(&long[..MAX_NOTES]),
            purpose: Some("client-auth_2"),
            ..none
        };
        assert_eq!(
            fits.notes().ok().flatten().map(|n| n.len()),
            Some(MAX_NOTES)
        );
        assert_eq!(fits.purpose().ok().as_deref(), Some("client-auth_2"));
    }
}
