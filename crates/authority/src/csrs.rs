//! Certificate signing requests kept for later: uploaded ones, ones made here with a
//! server-side key, their private keys, and signing them through the issuance pipeline.

use pki::csr::{self, Csr};
use pki::{DistinguishedName, KeyType, PrivateKey, SubjectAltName};
use store::{
    CaId, CertificateSource, CsrId, CsrRow, CsrSource, CsrStatus, NewCsr, NewEvent, Page,
    PageRequest, TemplateId,
};

use crate::audit::Event;
use crate::issue::{IssueRequest, Issued, KeySource};
use crate::{Authority, Error, Permission, Principal, Result};

/// How a stored CSR is signed.
#[derive(Debug, Clone, Default)]
pub struct SignCsr {
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// Validity; the template's (or 365) when absent.
    pub validity_days: Option<i64>,
    /// The template the request is held to.
    pub template_id: Option<TemplateId>,
}

fn csr_name(name: Option<String>, csr: &Csr) -> Result<String> {
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            csr.subject
                .get(pki::NameAttribute::CommonName)
                .map(str::to_owned)
        })
        .or_else(|| csr.sans.first().map(SubjectAltName::value))
        .unwrap_or_else(|| "CSR".to_owned());
    if name.chars().count() > 200 {
        return Err(Error::Invalid("name must be at most 200 characters".into()));
    }
    Ok(name)
}

/// Reads a certificate signing request (PEM or DER) and checks its signature.
///
/// # Errors
/// [`Error::BadCsr`] for one that does not parse, has a bad signature or an unsupported key.
pub fn parse_csr(input: &[u8]) -> Result<Csr> {
    Csr::parse(input).map_err(|e| match e {
        pki::Error::Invalid(m) => Error::BadCsr(m),
        other => other.into(),
    })
}

impl Authority {
    /// A page of stored CSRs, newest first; `pending` or `signed` only when `status` says so.
    ///
    /// # Errors
    /// Store errors.
    pub async fn csrs(&self, status: Option<CsrStatus>, page: PageRequest) -> Result<Page<CsrRow>> {
        Ok(self.store.csrs(status, page).await?)
    }

    /// Stored CSR `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn csr(&self, id: CsrId) -> Result<CsrRow> {
        self.store
            .csr(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("CSR {id} does not exist")))
    }

    /// Stores an uploaded CSR (PEM or DER) after checking its signature.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:csrs`; [`Error::BadCsr`] for a CSR that does not
    /// parse, has a bad signature or an unsupported key.
    pub async fn upload_csr(
        &self,
        principal: &Principal,
        name: Option<String>,
        input: &[u8],
    ) -> Result<CsrRow> {
        principal.require(Permission::WriteCsrs, "adding CSRs")?;
        let csr = parse_csr(input)?;
        let name = csr_name(name, &csr)?;
        self.store_csr(principal, name, &csr, None, CsrSource::Uploaded)
            .await
    }

    /// Makes a key and a CSR for it here; the key is kept sealed for the certificate.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:csrs`; [`Error::Invalid`] for a request without a
    /// subject or SAN, or a bad name.
    pub async fn generate_csr(
        &self,
        principal: &Principal,
        name: Option<String>,
        subject: &DistinguishedName,
        sans: &[SubjectAltName],
        key_type: KeyType,
    ) -> Result<CsrRow> {
        principal.require(Permission::WriteCsrs, "creating CSRs")?;
        let key = self.generate_key(key_type).await?;
        let csr = csr::make(&key, subject, sans)?;
        let name = csr_name(name, &csr)?;
        self.store_csr(principal, name, &csr, Some(&key), CsrSource::Generated)
            .await
    }

    async fn store_csr(
        &self,
        principal: &Principal,
        name: String,
        csr: &Csr,
        key: Option<&PrivateKey>,
        source: CsrSource,
    ) -> Result<CsrRow> {
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let key_id = match key {
            Some(key) => Some(self.store_key(&mut tx, key, now).await?),
            None => None,
        };
        let id = tx
            .insert_csr(
                &NewCsr {
                    refid: crate::token::refid()?,
                    name: name.clone(),
                    subject: csr.subject_text.clone(),
                    common_name: csr
                        .subject
                        .get(pki::NameAttribute::CommonName)
                        .map(str::to_owned),
                    sans: csr.sans.iter().map(SubjectAltName::to_api_string).collect(),
                    key_type: csr.key_type.label(),
                    signature_algorithm: csr.signature_algorithm.clone(),
                    public_key: csr.public_key_der.clone(),
                    key_id,
                    source,
                    der: csr.der.clone(),
                    owner_id: principal.user.as_ref().map(|u| u.id),
                },
                now,
            )
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "csr_created",
                "csr",
                id,
                format!("'{name}' ({source}), subject '{}'", csr.subject_text),
            ),
        ))
        .await?;
        tx.queue_event(
            &NewEvent {
                event_type: "csr_submitted".into(),
                resource_type: "csr".into(),
                resource_id: id.to_string(),
                payload: serde_json::json!({
                    "name": name,
                    "subject": csr.subject_text,
                    "source": source.to_string(),
                }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        self.csr(id).await
    }

    /// Signs pending CSR `id` through the issuance pipeline: the subject and SANs are the
    /// CSR's, held to the template's rules; the CSR is marked signed in the same transaction.
    ///
    /// # Errors
    /// As [`Authority::issue`]; [`Error::NotFound`]; [`Error::Conflict`] when it is signed
    /// already.
    pub async fn sign_csr(&self, principal: &Principal, id: CsrId, how: SignCsr) -> Result<Issued> {
        let row = self.csr(id).await?;
        if row.status != CsrStatus::Pending {
            return Err(Error::Conflict(format!(
                "CSR {id} is signed already (certificate {})",
                row.certificate_id
                    .map_or_else(|| "deleted".to_owned(), |c| c.to_string())
            )));
        }
        let csr = Csr::from_der(&row.der)?;
        self.issue(
            principal,
            IssueRequest {
                ca_id: how.ca_id,
                subject: csr.subject.clone(),
                sans: csr.sans.clone(),
                key: KeySource::StoredCsr {
                    id,
                    csr: Box::new(csr),
                    key_id: row.key_id,
                },
                template_id: how.template_id,
                validity_days: how.validity_days,
                key_usage: None,
                extended_key_usage: None,
                description: Some(format!("from CSR '{}'", row.name)),
                source: CertificateSource::Csr,
                renewed_from: None,
            },
        )
        .await
    }

    /// Gives certmint the private key of CSR `id` (and of the certificate it was signed into,
    /// if that has none), so that the certificate can be exported with it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:csrs`; [`Error::NotFound`]; [`Error::Invalid`] for
    /// a key that does not parse, needs another passphrase, or does not belong to the CSR;
    /// [`Error::Conflict`] when certmint holds its key already.
    pub async fn set_csr_key(
        &self,
        principal: &Principal,
        id: CsrId,
        input: &[u8],
        passphrase: Option<&str>,
    ) -> Result<CsrRow> {
        principal.require(Permission::WriteCsrs, "adding a CSR's key")?;
        let row = self.csr(id).await?;
        if row.key_id.is_some() {
            return Err(Error::Conflict(format!(
                "certmint holds the key of CSR {id} already"
            )));
        }
        let (input, passphrase) = (input.to_vec(), passphrase.map(str::to_owned));
        let key = self
            .cpu
            .run(move || Ok(PrivateKey::parse(&input, passphrase.as_deref())?))
            .await?;
        if key.public_key_der() != row.public_key {
            return Err(Error::Invalid(format!(
                "the private key does not belong to CSR {id}"
            )));
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let key_id = self.store_key(&mut tx, &key, now).await?;
        tx.set_csr_key(id, key_id, now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "csr_key_added",
                "csr",
                id,
                format!("'{}': {} key", row.name, key.key_type().label()),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.csr(id).await
    }

    /// Deletes CSR `id`, and its key unless a certificate uses it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:csrs`; [`Error::NotFound`].
    pub async fn delete_csr(&self, principal: &Principal, id: CsrId) -> Result<()> {
        principal.require(Permission::DeleteCsrs, "deleting CSRs")?;
        let row = self.csr(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_csr(id).await? {
            return Err(Error::NotFound(format!("CSR {id} does not exist")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new("csr_deleted", "csr", id, format!("'{}'", row.name)),
        ))
        .await?;
        Ok(tx.commit().await?)
    }
}
