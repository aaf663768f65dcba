//! Where a CA key signs. A certificate is laid out, linted, signed and read back
//! (`pki::cert::prepare`, `Prepared::lint`, `Linted::sign`); a CRL is linted before it is
//! signed (`pki::crl::build`); a refusal at any step is audited and nothing is signed or handed
//! out. OCSP responses are signed by a responder whose key is opened here.

use std::sync::Arc;

use pki::cert::{Built, Issuer};
use pki::crl::{CrlSpec, Revoked};
use pki::lint::{Policy, Report};
use pki::ocsp::Responder;
use pki::{CertSpec, Signer};
use store::{CaRow, KeyId};
use time::Duration;

use super::signers::IssuingCa;
use crate::audit::Event;
use crate::principal::Principal;
use crate::{Authority, Error, Result};

/// Whose key signs a certificate.
pub(crate) enum SignAs<'a> {
    /// A new root CA's own key: the one self-signature it makes.
    Root(Arc<dyn Signer>),
    /// A CA that may issue now.
    Ca(&'a IssuingCa),
}

/// The key that signs, owned, so that the signature can be made on another thread.
enum Signing {
    Root(Arc<dyn Signer>),
    Ca(Arc<pki::CaSigner>),
}

impl Signing {
    fn on_device(&self) -> bool {
        match self {
            Self::Root(key) => key.on_device(),
            Self::Ca(ca) => ca.signer().on_device(),
        }
    }
}

impl Authority {
    /// The lint policy of certificates and CRLs `ca` signs: every rule refuses, except those
    /// the CA's `lint_warn_only` setting downgrades to warnings.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the setting names a rule this version does not have.
    pub(crate) fn lint_policy(&self, ca: &CaRow) -> Result<Policy> {
        Ok(Policy::default().downgrading(&ca.lint_warn_only)?)
    }

    /// Signs the certificate `spec` describes as `by`, for `principal`, under the signing CA's
    /// lint policy with at most `max_validity` between notBefore and notAfter. Returns it with
    /// the linter's warnings.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a spec the issuer may not sign; [`Error::Lint`] when the linter
    /// finds an error; [`Error::Internal`] when signing fails or the signed certificate does
    /// not say what was asked. The last two are audited.
    pub(crate) async fn sign_certificate(
        &self,
        principal: &Principal,
        spec: &CertSpec,
        by: SignAs<'_>,
        max_validity: Option<Duration>,
    ) -> Result<(Built, Report)> {
        let (signer, policy) = match by {
            SignAs::Root(key) => (Signing::Root(key), Policy::default()),
            SignAs::Ca(ca) => (Signing::Ca(ca.signer.clone()), self.lint_policy(ca)?),
        };
        let policy = match max_validity {
            Some(max) => policy.with_max_validity(max),
            None => policy,
        };
        let on_device = signer.on_device();
        let sign = {
            let spec = spec.clone();
            move || -> Result<(Built, Report)> {
                let issuer = match &signer {
                    Signing::Root(key) => Issuer::SelfSigned(key.as_ref()),
                    Signing::Ca(ca) => Issuer::Ca(ca),
                };
                let linted = pki::cert::prepare(&spec, issuer)?.lint(&policy)?;
                let report = linted.report().clone();
                Ok((linted.sign()?, report))
            }
        };
        // A token's signature is a round trip to a device: not on an async worker.
        let signed = if on_device {
            tokio::task::spawn_blocking(sign)
                .await
                .map_err(|e| Error::Internal(format!("signing task: {e}")))?
        } else {
            sign()
        };
        match signed {
            Err(e @ (Error::Lint(_) | Error::Internal(_) | Error::KeyUnavailable(_))) => {
                let why = match &e {
                    Error::Internal(detail) => detail.clone(),
                    other => other.to_string(),
                };
                let event = Event::new(
                    "certificate_refused",
                    "certificate",
                    "",
                    format!("'{}': {why}", spec.subject),
                )
                .failed();
                let mut tx = self.store.begin_write().await?;
                tx.audit(&self.entry_by(principal, event)).await?;
                tx.commit().await?;
                Err(e)
            }
            other => other,
        }
    }

    /// CA `ca`'s CRL `spec` listing `revoked`, linted under the CA's policy and signed. A long
    /// list takes a good part of a second to sign and encode, so it is built off the async
    /// workers.
    ///
    /// # Errors
    /// [`Error::Invalid`] when certmint does not hold the CA's key; [`Error::Lint`] when the
    /// linter finds an error; [`Error::Internal`] when signing fails.
    pub(crate) async fn sign_crl(
        &self,
        ca: &CaRow,
        spec: CrlSpec,
        revoked: Vec<Revoked>,
    ) -> Result<Vec<u8>> {
        let signer = self.ca_signer(ca).await?;
        let policy = self.lint_policy(ca)?;
        Ok(
            tokio::task::spawn_blocking(move || pki::crl::build(&spec, &revoked, &signer, &policy))
                .await
                .map_err(|e| Error::Internal(format!("CRL builder: {e}")))??,
        )
    }

    /// The OCSP responder signing with stored key `key_id`: a CA's own key (`certificate`
    /// `None`), or a delegated responder's key with its certificate.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such key; [`Error::Internal`] when it cannot be opened;
    /// [`Error::Invalid`] when the certificate is not for that key or is no responder's.
    pub(crate) async fn ocsp_responder(
        &self,
        key_id: KeyId,
        certificate: Option<Vec<u8>>,
    ) -> Result<Responder> {
        Ok(Responder::new(
            self.open_signer(key_id).await?,
            certificate,
        )?)
    }
}

/// `, lint warnings: rule, rule` for an audit record, or nothing.
pub(crate) fn warnings_note(report: &Report) -> String {
    let names: Vec<&str> = report.warnings().map(|f| f.rule.name).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(", lint warnings: {}", names.join(", "))
    }
}
