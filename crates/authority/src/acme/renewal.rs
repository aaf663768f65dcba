//! ACME Renewal Information (RFC 9773): suggested renewal windows, and the certificates a new
//! order may say it replaces.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use store::{AcmeAccountRow, CertificateId, CertificateRow, CertificateStatus};
use time::{Duration, OffsetDateTime};

use super::{AcmeError, Problem, ProblemType, Status};
use crate::Authority;
use crate::Error;

/// A suggested renewal window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalWindow {
    /// Renew from then on …
    pub start: OffsetDateTime,
    /// … and before then.
    pub end: OffsetDateTime,
}

/// How long a client should wait before asking again (RFC 9773 §4.3: hours, not minutes).
pub const RENEWAL_INFO_RETRY: Duration = Duration::hours(6);

fn not_found() -> Error {
    Error::NotFound("no certificate this server issued has that identifier".into())
}

/// The window for `cert` at `now`: the third sixth of its remaining life after two thirds of
/// its lifetime, as Let's Encrypt suggests; at once for a revoked one.
pub(crate) fn window(cert: &CertificateRow, now: OffsetDateTime) -> RenewalWindow {
    if cert.status == CertificateStatus::Revoked {
        return RenewalWindow {
            start: now - Duration::hours(1),
            end: now,
        };
    }
    let (not_before, not_after) = (cert.cert.not_before, cert.cert.not_after);
    let lifetime = not_after - not_before;
    let start = not_before + lifetime * 2 / 3;
    RenewalWindow {
        start,
        end: start + lifetime / 6,
    }
}

impl Authority {
    /// The certificate an ARI identifier (`base64url(AKI keyIdentifier) "." base64url(serial)`,
    /// RFC 9773 §4.1) names, if this server issued it.
    pub(crate) async fn certificate_by_ari(&self, ari: &str) -> Result<CertificateRow, AcmeError> {
        let malformed = || {
            Problem::new(
                ProblemType::Malformed,
                format!(
                    "'{ari}' is not a certificate identifier (base64url keyIdentifier \".\" base64url serial)"
                ),
            )
        };
        let (aki, serial) = ari.split_once('.').ok_or_else(malformed)?;
        let aki = URL_SAFE_NO_PAD.decode(aki).map_err(|_| malformed())?;
        let serial = URL_SAFE_NO_PAD.decode(serial).map_err(|_| malformed())?;
        if aki.is_empty() || serial.is_empty() || serial.len() > 21 {
            return Err(malformed().into());
        }
        for row in self
            .store
            .certificates_with_serial(&hex::encode(&serial))
            .await?
        {
            let info = pki::inspect::Certificate::parse(&row.cert.der)?;
            if info.authority_key_id.as_deref() == Some(aki.as_slice()) {
                return Ok(row);
            }
        }
        Err(not_found().into())
    }

    /// The suggested renewal window of the certificate `ari` names.
    ///
    /// # Errors
    /// `malformed` for an identifier that is not one; 404 for a certificate this server did
    /// not issue.
    pub async fn acme_renewal_info(&self, ari: &str) -> Result<RenewalWindow, AcmeError> {
        let cert = self.certificate_by_ari(ari).await?;
        Ok(window(&cert, self.now()))
    }

    /// Checks that `account` may replace the certificate `ari` names: its own, and not
    /// replaced yet by a finalized order. Returns the certificate's id.
    pub(crate) async fn acme_replaceable(
        &self,
        account: &AcmeAccountRow,
        ari: &str,
    ) -> Result<CertificateId, AcmeError> {
        let cert = self.certificate_by_ari(ari).await?;
        let issued_to = self.store.acme_order_of_certificate(cert.id).await?;
        if issued_to.is_none_or(|o| o.account_id != account.id) {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                "the certificate to replace was not issued to this account",
            )
            .into());
        }
        let finalized = self
            .store
            .acme_orders_replacing(ari)
            .await?
            .into_iter()
            .any(|o| matches!(o.status, Status::Valid | Status::Processing));
        if finalized {
            return Err(Problem::new(
                ProblemType::AlreadyReplaced,
                "another order already replaced that certificate",
            )
            .into());
        }
        Ok(cert.id)
    }
}
