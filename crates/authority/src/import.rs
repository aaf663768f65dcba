//! Importing certificates and CAs made elsewhere: any file `pki::bundle::read` understands,
//! with or without private keys. CA certificates become CAs; each certificate is linked to the
//! CA that issued it (authority key identifier, then signature), and keys to their
//! certificates by public key.

use pki::inspect;
use pki::{PrivateKey, bundle};
use store::{NewCa, NewCertificate, WriteTx};

use crate::Permission;
use crate::audit::Event;
use crate::ca::{cert_fields, free_ca_name};
use crate::{Authority, Error, Principal, Result};

/// What to import.
#[derive(Debug, Default)]
pub struct ImportInput {
    /// The file: PEM (text around the blocks allowed), DER, PKCS#7 or PKCS#12.
    pub data: Vec<u8>,
    /// A private key sent apart from the file (PEM or DER).
    pub private_key: Option<Vec<u8>>,
    /// Opens PKCS#12 files and encrypted keys.
    pub password: Option<String>,
    /// Name of the CA, when the file holds one CA.
    pub name: Option<String>,
    /// Free text for what is imported.
    pub description: Option<String>,
    /// Only CA certificates are accepted (`/cas/import`).
    pub only_cas: bool,
}

/// What an import stored.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// New CA ids.
    pub cas: Vec<i64>,
    /// New certificate ids.
    pub certificates: Vec<i64>,
    /// Subjects of certificates that were stored already.
    pub skipped: Vec<String>,
}

struct Item {
    info: inspect::Certificate,
    key: Option<PrivateKey>,
}

fn read_items(input: &ImportInput) -> Result<Vec<Item>> {
    let bundle = bundle::read(&input.data, input.password.as_deref())?;
    if !bundle.csrs.is_empty() {
        return Err(Error::Invalid(
            "the file holds a CSR; CSRs are imported at /csrs/import".into(),
        ));
    }
    let mut keys = bundle.private_keys;
    if let Some(extra) = &input.private_key {
        keys.push(PrivateKey::parse(extra, input.password.as_deref())?);
    }
    let mut items = Vec::new();
    for der in &bundle.certificates {
        let info = inspect::Certificate::parse(der)?;
        if input.only_cas && !info.is_ca {
            return Err(Error::Invalid(format!(
                "'{}' is not a CA certificate; import it at /certificates/import",
                info.subject
            )));
        }
        let key = keys
            .iter()
            .position(|k| k.public_key_der() == info.public_key_der)
            .map(|i| keys.swap_remove(i));
        items.push(Item { info, key });
    }
    if items.is_empty() {
        return Err(Error::Invalid("the file holds no certificate".into()));
    }
    if !keys.is_empty() {
        return Err(Error::Invalid(format!(
            "{} private key(s) in the import belong to none of its certificates",
            keys.len()
        )));
    }
    // Issuers before what they issued, so that links within one file resolve: roots first,
    // then by path length, end entities last.
    items.sort_by_key(|i| {
        (
            !i.info.is_ca,
            !i.info.self_signed,
            std::cmp::Reverse(i.info.path_len.unwrap_or(u32::MAX)),
        )
    });
    Ok(items)
}

impl Authority {
    /// Imports the certificates (and keys) of a file in one transaction: all of them, or none
    /// when one is refused. Certificates stored already are skipped.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates` (and `write:cas` for CA
    /// certificates); [`Error::Invalid`] for a file that does not read, a wrong password, a
    /// key that matches no certificate, or a non-CA certificate where only CAs are accepted.
    pub async fn import(&self, principal: &Principal, input: ImportInput) -> Result<ImportReport> {
        let (items, input) = self
            .cpu
            .run(move || read_items(&input).map(|items| (items, input)))
            .await?;
        if !input.only_cas {
            principal.require(Permission::WriteCertificates, "importing certificates")?;
        }
        if items.iter().any(|i| i.info.is_ca) {
            principal.require(Permission::WriteCas, "importing CA certificates")?;
        }
        let single_ca = items.iter().filter(|i| i.info.is_ca).count() == 1;
        let now = self.now();
        let mut report = ImportReport::default();
        let mut tx = self.store.begin_write().await?;
        for item in items {
            if tx
                .certificate_known(&item.info.fingerprint_sha256, &item.info.serial)
                .await?
            {
                report.skipped.push(item.info.subject.clone());
                continue;
            }
            let issuer = if item.info.self_signed {
                None
            } else {
                issuer_of(&mut tx, &item.info).await?
            };
            let key_id = match &item.key {
                Some(key) => Some(self.store_key(&mut tx, key, now).await?),
                None => None,
            };
            let info = &item.info;
            if info.is_ca {
                let wanted = input
                    .name
                    .clone()
                    .filter(|_| single_ca)
                    .or_else(|| info.common_name.clone())
                    .unwrap_or_else(|| info.subject.clone());
                let name = free_ca_name(&mut tx, &wanted).await?;
                let id = tx
                    .insert_ca(
                        &NewCa {
                            refid: crate::token::refid()?,
                            name: name.clone(),
                            description: input.description.clone(),
                            ca_type: if info.self_signed {
                                "root"
                            } else {
                                "intermediate"
                            }
                            .into(),
                            parent_id: issuer,
                            key_id,
                            path_len: info.path_len.map(i64::from),
                            is_default: false,
                            source: "imported".into(),
                            require_template: false,
                            cert: cert_fields(info),
                        },
                        now,
                    )
                    .await?;
                tx.audit(&self.entry_by(
                    principal,
                    Event::new(
                        "ca_imported",
                        "ca",
                        id,
                        format!(
                            "'{name}' ({}), {}",
                            info.subject,
                            if key_id.is_some() {
                                "with its key"
                            } else {
                                "without a key"
                            }
                        ),
                    ),
                ))
                .await?;
                report.cas.push(id);
            } else {
                let id = tx
                    .insert_certificate(
                        &NewCertificate {
                            refid: crate::token::refid()?,
                            ca_id: issuer,
                            key_id,
                            template_id: None,
                            owner_id: principal.user.as_ref().map(|u| u.id),
                            renewed_from: None,
                            description: input.description.clone(),
                            sans: info.sans.clone(),
                            is_ca: false,
                            source: "imported".into(),
                            cert: cert_fields(info),
                        },
                        now,
                    )
                    .await?;
                tx.audit(&self.entry_by(
                    principal,
                    Event::new(
                        "certificate_imported",
                        "certificate",
                        id,
                        format!(
                            "'{}' issued by '{}', serial {}",
                            info.subject, info.issuer, info.serial
                        ),
                    ),
                ))
                .await?;
                report.certificates.push(id);
            }
        }
        tx.commit().await?;
        self.issuers.changed();
        Ok(report)
    }
}

/// The stored CA whose key signed `cert`, if certmint has it.
async fn issuer_of(tx: &mut WriteTx, cert: &inspect::Certificate) -> Result<Option<i64>> {
    let aki = cert.authority_key_id.as_deref().map(hex::encode);
    for (id, der) in tx.issuer_candidates(aki.as_deref(), &cert.issuer).await? {
        if inspect::Certificate::parse(&der).is_ok_and(|ca| cert.is_issued_by(&ca)) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
