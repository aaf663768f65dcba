//! Where a CA key signs a certificate: the request is laid out, linted, signed and read back
//! (`pki::cert::prepare`, `Prepared::lint`, `Linted::sign`); a refusal at any step is audited
//! and nothing is signed or handed out.

use pki::CertSpec;
use pki::cert::{Built, Issuer};
use pki::lint::{Policy, Report};
use store::CaRow;

use crate::audit::Event;
use crate::principal::Principal;
use crate::{Authority, Error, Result};

impl Authority {
    /// The lint policy of certificates and CRLs `ca` signs: every rule refuses, except those
    /// the CA's `lint_warn_only` setting downgrades to warnings.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the setting names a rule this version does not have.
    pub(crate) fn lint_policy(&self, ca: &CaRow) -> Result<Policy> {
        Ok(Policy::default().downgrading(&ca.lint_warn_only)?)
    }

    /// Signs the certificate `spec` describes on behalf of `issuer` under `policy`, for
    /// `principal`. Returns it with the linter's warnings.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a spec the issuer may not sign; [`Error::Lint`] when the linter
    /// finds an error; [`Error::Internal`] when signing fails or the signed certificate does
    /// not say what was asked. The last two are audited.
    pub(crate) async fn sign_certificate(
        &self,
        principal: &Principal,
        spec: &CertSpec,
        issuer: Issuer<'_>,
        policy: &Policy,
    ) -> Result<(Built, Report)> {
        let signed = pki::cert::prepare(spec, issuer)
            .map_err(Error::from)
            .and_then(|prepared| {
                let linted = prepared.lint(policy)?;
                let report = linted.report().clone();
                Ok((linted.sign()?, report))
            });
        match signed {
            Err(e @ (Error::Lint(_) | Error::Internal(_))) => {
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
