//! The HTTPS listener's own certificate, made at first start: issued by the default CA through
//! the issuance pipeline, or self-signed when no CA can issue (the default CA was deactivated,
//! say). Either way it is recorded in the audit log, so an operator can see which one the
//! listener presents and why.

use pki::{
    DistinguishedName, ExtendedKeyUsage, KeyType, KeyUsage, PrivateKey, SubjectAltName,
    TlsIdentity, inspect,
};

use crate::audit::Event;
use crate::{Authority, Error, IssueRequest, KeySource, Principal, Result};
use store::CertificateSource;

/// Days of validity of the HTTPS listener's certificate (the CA/Browser Forum's 397-day cap).
const LISTENER_DAYS: i64 = 397;

impl Authority {
    /// The HTTPS listener's certificate and key for `names` (DNS names or IP addresses):
    /// issued by the default CA, or self-signed, audited as `listener_certificate_self_signed`
    /// with the reason, when no CA can issue it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no names or a name that is neither a DNS name nor an IP address;
    /// [`Error::Internal`] when neither way gives a certificate; store errors.
    pub async fn listener_identity(&self, names: &[String]) -> Result<TlsIdentity> {
        let why = match self.issue_listener_identity(names).await {
            Ok((chain, key)) => {
                return Ok(TlsIdentity {
                    cert_pem: pki::bundle::certificates_pem(
                        &chain.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                    ),
                    key_pkcs8_der: key.pkcs8_der().to_vec(),
                });
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(reason = %why, "no CA can issue the HTTPS certificate; using a self-signed one");
        let identity = pki::self_signed_tls(
            names,
            self.now(),
            LISTENER_DAYS,
            crate::token::random_bytes::<16>()?,
        )?;
        let der = pki::bundle::read(identity.cert_pem.as_bytes(), None)?
            .certificates
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Internal("the self-signed certificate did not read back".into())
            })?;
        let info = inspect::Certificate::parse(&der)?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            &Principal::local("system"),
            Event::new(
                "listener_certificate_self_signed",
                "certificate",
                "",
                format!(
                    "'{}' (serial {}, SHA-256 {}): {why}",
                    info.subject, info.serial, info.fingerprint_sha256
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(identity)
    }

    /// Issues the HTTPS listener's own certificate from the default CA, through the same
    /// pipeline as every other certificate. Returns the chain (leaf first, root left out) and
    /// the key.
    ///
    /// # Errors
    /// As [`Authority::issue`]; [`Error::Invalid`] for a name that is neither a DNS name nor an
    /// IP address.
    async fn issue_listener_identity(
        &self,
        names: &[String],
    ) -> Result<(Vec<Vec<u8>>, PrivateKey)> {
        let sans = names
            .iter()
            .map(|n| SubjectAltName::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut subject = DistinguishedName::new();
        subject.set(
            pki::NameAttribute::CommonName,
            names.first().map_or("certmint", String::as_str),
        )?;
        let ca = self.default_ca().await?;
        let days = LISTENER_DAYS.min((ca.cert.not_after - self.now()).whole_days());
        let issued = self
            .issue(
                &Principal::local("system"),
                IssueRequest {
                    ca_id: Some(ca.id),
                    subject,
                    sans,
                    key: KeySource::Generate(Some(KeyType::EcP256)),
                    template_id: None,
                    validity_days: Some(days),
                    key_usage: Some(vec![KeyUsage::DigitalSignature]),
                    extended_key_usage: Some(vec![ExtendedKeyUsage::ServerAuth]),
                    description: Some("certmint HTTPS listener".into()),
                    source: CertificateSource::System,
                    renewed_from: None,
                },
            )
            .await?;
        let key = issued
            .key
            .ok_or_else(|| Error::Internal("the listener key was not generated".into()))?;
        let mut chain = vec![issued.certificate.cert.der];
        let above = self.ca_chain(ca.id).await?;
        chain.extend(
            above
                .into_iter()
                .filter(|der| inspect::Certificate::parse(der).is_ok_and(|c| !c.self_signed)),
        );
        Ok((chain, key))
    }
}
