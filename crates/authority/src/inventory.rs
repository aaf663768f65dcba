//! The certificate inventory: reading, key export and deletion.

use pki::PrivateKey;
use store::CertificateRow;

use crate::audit::Event;
use crate::{Authority, Error, Principal, Result};

impl Authority {
    /// One certificate.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none with this id.
    pub async fn certificate(&self, id: i64) -> Result<CertificateRow> {
        self.store
            .certificate(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("certificate {id} not found")))
    }

    /// The private key of a certificate; needs `export:keys`, and every export is audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `export:keys`; [`Error::NotFound`] when certmint
    /// does not hold the key.
    pub async fn certificate_key(&self, principal: &Principal, id: i64) -> Result<PrivateKey> {
        if !principal.can("export:keys") {
            return Err(Error::Forbidden(
                "exporting a private key needs export:keys".into(),
            ));
        }
        let cert = self.certificate(id).await?;
        let key_id = cert.key_id.ok_or_else(|| {
            Error::NotFound(format!(
                "certmint does not hold the key of certificate {id}"
            ))
        })?;
        let key = self.open_key(key_id).await?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "private_key_exported",
                "certificate",
                id,
                format!(
                    "key of '{}' (serial {})",
                    cert.cert.subject, cert.cert.serial
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Deletes certificate `id` from the inventory, with the key certmint held for it. It is
    /// not revoked: revoke first when it must stop being trusted.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:certificates`; [`Error::NotFound`].
    pub async fn delete_certificate(&self, principal: &Principal, id: i64) -> Result<()> {
        if !principal.can("delete:certificates") {
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
