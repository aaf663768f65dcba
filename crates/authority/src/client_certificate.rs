//! A TLS client certificate, judged by a door: issued by one of the CAs the door trusts (the
//! signature verifies with its key), valid now, and not revoked in certmint's inventory. The
//! HTTPS listener accepts any chain whose handshake signature verifies; what a certificate is
//! worth is decided here, for EST and for certificate login alike.

use pki::inspect::Certificate;
use store::{CaRow, CertificateRow, CertificateStatus};

use crate::{Authority, Error, Result};

/// A client certificate that passed the checks.
#[derive(Debug)]
pub(crate) struct ClientCertificate {
    pub info: Certificate,
    /// Its row, when certmint issued or imported it.
    pub row: Option<CertificateRow>,
}

fn refused(why: impl Into<String>) -> Error {
    Error::Forbidden(why.into())
}

/// The CAs `issuers` name, for a refusal.
fn named(issuers: &[CaRow]) -> String {
    match issuers {
        [one] => format!("CA '{}'", one.name),
        _ => format!(
            "a CA trusted here ({})",
            issuers
                .iter()
                .map(|ca| format!("'{}'", ca.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Authority {
    /// Checks client certificate `der` against `issuers`: issued by one of them, in its
    /// validity period, and not revoked (or on hold) in the inventory.
    ///
    /// # Errors
    /// [`Error::Forbidden`] saying which check failed; store errors.
    pub(crate) async fn check_client_certificate(
        &self,
        der: &[u8],
        issuers: &[CaRow],
    ) -> Result<ClientCertificate> {
        let info = Certificate::parse(der)
            .map_err(|e| refused(format!("the client certificate cannot be read: {e}")))?;
        let mut issued = false;
        for ca in issuers {
            let issuer = Certificate::parse(&ca.cert.der)
                .map_err(|e| Error::Internal(format!("CA '{}': {e}", ca.name)))?;
            if info.is_issued_by(&issuer) {
                issued = true;
                break;
            }
        }
        if !issued {
            return Err(refused(format!(
                "the client certificate was not issued by {}",
                named(issuers)
            )));
        }
        let now = self.now();
        if info.not_after <= now {
            return Err(refused("the client certificate has expired"));
        }
        if info.not_before > now {
            return Err(refused("the client certificate is not valid yet"));
        }
        let row = self
            .store
            .certificates_with_serial(&info.serial)
            .await?
            .into_iter()
            .find(|c| c.cert.fingerprint_sha256 == info.fingerprint_sha256);
        if row
            .as_ref()
            .is_some_and(|r| r.status == CertificateStatus::Revoked)
        {
            return Err(refused("the client certificate is revoked"));
        }
        Ok(ClientCertificate { info, row })
    }
}
