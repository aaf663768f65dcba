//! Each profile's RA: an RSA certificate from the profile's CA that clients encrypt their
//! requests to and that signs the replies. Made the first time a profile needs one, and again
//! when it is revoked, near its end, or the profile moved to another CA.

use std::sync::Arc;

use pki::cert::KeyUsage;
use pki::{DistinguishedName, KeyType, NameAttribute};
use store::{CertificateSource, CertificateStatus, ScepProfileRow};
use time::Duration;

use crate::audit::Event;
use crate::issue::{IssueRequest, KeySource};
use crate::{Authority, Error, Principal, Result};

/// SCEP clients encrypt to the RA's key with RSA, whatever the CA's key is.
const RA_KEY: KeyType = KeyType::Rsa { bits: 2048 };
/// Validity of an RA certificate, within the CA's.
const RA_DAYS: i64 = 365;
/// An RA certificate this close to its end is replaced, so that a client never gets one that
/// expires before its enrollment is done.
const RA_RENEW_BEFORE: Duration = Duration::days(7);

impl Authority {
    /// Profile `profile`'s RA, made when it has none usable.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the profile's CA cannot issue; store and key errors.
    pub(super) async fn scep_ra(&self, profile: &ScepProfileRow) -> Result<Arc<pki::scep::Ra>> {
        let ca = self.usable_issuer(profile.ca_id).await?;
        if let Some(id) = profile.ra_certificate_id {
            if let Some(ra) = self.scep.ra(profile.id, id) {
                return Ok(ra);
            }
            let row = self.certificate(id).await?;
            let usable = row.status == CertificateStatus::Valid
                && row.ca_id == Some(ca.id)
                && row.cert.not_after - RA_RENEW_BEFORE > self.now();
            if let (true, Some(key_id)) = (usable, row.key_id) {
                let key = self.open_key(key_id).await?;
                let ra = Arc::new(
                    pki::scep::Ra::new(&row.cert.der, &key)
                        .map_err(|e| Error::Internal(format!("SCEP RA {id}: {e}")))?,
                );
                self.scep.put_ra(profile.id, id, ra.clone());
                return Ok(ra);
            }
        }
        self.make_scep_ra(
            profile,
            ca.id,
            (ca.cert.not_after - self.now()).whole_days(),
        )
        .await
    }

    async fn make_scep_ra(
        &self,
        profile: &ScepProfileRow,
        ca_id: store::CaId,
        ca_days_left: i64,
    ) -> Result<Arc<pki::scep::Ra>> {
        let mut subject = DistinguishedName::new();
        subject.set(
            NameAttribute::CommonName,
            &format!("certmint SCEP RA ({})", profile.name),
        )?;
        let system = Principal::local("scep");
        let issued = self
            .issue(
                &system,
                IssueRequest {
                    ca_id: Some(ca_id),
                    subject,
                    sans: Vec::new(),
                    key: KeySource::Generate(Some(RA_KEY)),
                    template_id: None,
                    validity_days: Some(RA_DAYS.min(ca_days_left - 1).max(1)),
                    key_usage: Some(vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment]),
                    extended_key_usage: Some(Vec::new()),
                    description: Some(format!("SCEP RA of profile '{}'", profile.name)),
                    source: CertificateSource::System,
                    renewed_from: None,
                },
            )
            .await?;
        let key = issued
            .key
            .ok_or_else(|| Error::Internal("the SCEP RA was issued without its key".into()))?;
        let id = issued.certificate.id;
        let mut tx = self.store.begin_write().await?;
        let won = tx
            .replace_scep_ra(profile.id, profile.ra_certificate_id, id, self.now())
            .await?;
        if won {
            tx.audit(&self.entry_by(
                &system,
                Event::new(
                    "scep_ra_created",
                    "scep_profile",
                    profile.id,
                    format!("RA certificate {id} for profile '{}'", profile.name),
                ),
            ))
            .await?;
        }
        tx.commit().await?;
        if !won {
            // Another node made one at the same time: use the one the profile now names.
            let current = self.scep_profile_by_id(profile.id).await?;
            return Box::pin(self.scep_ra(&current)).await;
        }
        let ra = Arc::new(
            pki::scep::Ra::new(&issued.certificate.cert.der, &key)
                .map_err(|e| Error::Internal(format!("SCEP RA {id}: {e}")))?,
        );
        self.scep.put_ra(profile.id, id, ra.clone());
        Ok(ra)
    }
}
