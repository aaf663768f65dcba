//! The certificate inventory: reading and deletion (key export is in `ca::keys`, the one
//! place stored keys are opened).

use store::{CertificateId, CertificateRow};

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

impl Authority {
    /// The certificates that renewed certificate `id`, oldest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn renewals_of(&self, id: CertificateId) -> Result<Vec<CertificateId>> {
        Ok(self.store.renewals_of(id).await?)
    }

    /// One certificate.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none with this id.
    pub async fn certificate(&self, id: CertificateId) -> Result<CertificateRow> {
        self.store
            .certificate(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("certificate {id} not found")))
    }

    /// Deletes certificate `id` from the inventory, with the key certmint held for it. It is
    /// not revoked: revoke first when it must stop being trusted.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:certificates`; [`Error::NotFound`].
    pub async fn delete_certificate(&self, principal: &Principal, id: CertificateId) -> Result<()> {
        if !principal.can(Permission::DeleteCertificates) {
            return Err(Error::Forbidden(
                "deleting certificates needs delete:certificates".into(),
            ));
        }
        let cert = self.certificate(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_certificate(id).await? {
            return Err(Error::NotFound(format!("certificate {id} not found")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "certificate_deleted",
                "certificate",
                id,
                format!("'{}' serial {}", cert.cert.subject, cert.cert.serial),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
