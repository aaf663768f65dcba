//! Importing certificates and CAs made elsewhere: any file `pki::bundle::read` understands,
//! with or without private keys. CA certificates become CAs; each certificate is linked to the
//! CA that issued it (authority key identifier, then signature), or to the CA the importer
//! names once its signature proves it, and keys to their certificates by public key.

use pki::inspect;
use pki::{PrivateKey, bundle};
use store::{CaId, CaSource, CertificateId, CertificateSource, NewCa, NewCertificate, WriteTx};

use crate::audit::Event;
use crate::ca::{cert_fields, free_ca_name};
use crate::{Authority, Error, Permission, Principal, Result};

/// What to import.
#[derive(Debug)]
pub struct ImportInput {
    /// The file: PEM (text around the blocks allowed), DER, PKCS#7 or PKCS#12.
    pub data: Vec<u8>,
    /// A private key sent apart from the file (PEM or DER).
    pub private_key: Option<Vec<u8>>,
    /// Opens PKCS#12 files and encrypted keys.
    pub password: Option<String>,
    /// Name of the CA, when the file holds one CA; the description of a lone certificate
    /// given none (certificates have no name of their own).
    pub name: Option<String>,
    /// Free text for what is imported.
    pub description: Option<String>,
    /// Only CA certificates are accepted (`/cas/import`).
    pub only_cas: bool,
    /// The stored CA that issued the certificates of the file: each one that is not a root
    /// must carry its signature, and is linked to it.
    pub ca_id: Option<CaId>,
    /// Keep the private keys the file holds (the default). Without it they are read only
    /// to open the file and then dropped, and a key sent apart is refused.
    pub import_key: bool,
}

impl Default for ImportInput {
    /// Nothing yet, keeping whatever keys come with it.
    fn default() -> Self {
        Self {
            data: Vec::new(),
            private_key: None,
            password: None,
            name: None,
            description: None,
            only_cas: false,
            ca_id: None,
            import_key: true,
        }
    }
}

/// What an import stored.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// How many certificates the file held, stored or skipped.
    pub read: usize,
    /// New CA ids.
    pub cas: Vec<CaId>,
    /// New certificate ids.
    pub certificates: Vec<CertificateId>,
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
    if input.private_key.is_some() && !input.import_key {
        return Err(Error::Invalid(
            "a private_key was sent with import_key false; send one or the other".into(),
        ));
    }
    // Keys the importer does not want kept are dropped (and wiped) here, unmatched.
    let mut keys = if input.import_key {
        bundle.private_keys
    } else {
        Vec::new()
    };
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
        let named_issuer = match input.ca_id {
            Some(id) => Some(self.named_issuer(id, &items).await?),
            None => None,
        };
        let single_ca = items.iter().filter(|i| i.info.is_ca).count() == 1;
        let lone = items.len() == 1;
        let now = self.now();
        let mut report = ImportReport {
            read: items.len(),
            ..ImportReport::default()
        };
        let mut tx = self.store.begin_write().await?;
        for item in items {
            if tx
                .certificate_known(&item.info.fingerprint_sha256, &item.info.serial)
                .await?
            {
                // A lone certificate that adds nothing is a conflict, not an empty success.
                if lone {
                    return Err(Error::Conflict(format!(
                        "'{}' (serial {}) is stored already",
                        item.info.subject, item.info.serial
                    )));
                }
                report.skipped.push(item.info.subject.clone());
                continue;
            }
            let issuer = if is_root(&item.info) {
                None
            } else if named_issuer.is_some() {
                named_issuer
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
                            source: CaSource::Imported,
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
                            description: input
                                .description
                                .clone()
                                .or_else(|| input.name.clone().filter(|_| lone)),
                            sans: info.sans.clone(),
                            is_ca: false,
                            source: CertificateSource::Imported,
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

/// A self-signed CA certificate: it has no issuer to link to.
fn is_root(cert: &inspect::Certificate) -> bool {
    cert.is_ca && cert.self_signed
}

impl Authority {
    /// CA `id`, after checking that it signed every certificate of `items` but the roots.
    ///
    /// # Errors
    /// [`Error::Invalid`] when there is no such CA, or a certificate does not carry its
    /// signature.
    async fn named_issuer(&self, id: CaId, items: &[Item]) -> Result<CaId> {
        let ca = self
            .store
            .ca(id)
            .await?
            .ok_or_else(|| Error::Invalid(format!("ca_id {id} names no CA")))?;
        let issuer = inspect::Certificate::parse(&ca.cert.der)?;
        if let Some(stranger) = items
            .iter()
            .find(|i| !is_root(&i.info) && !i.info.is_issued_by(&issuer))
        {
            return Err(Error::Invalid(format!(
                "'{}' was not issued by CA {id} ('{}')",
                stranger.info.subject, ca.name
            )));
        }
        Ok(id)
    }
}

/// The stored CA whose key signed `cert`, if certmint has it.
async fn issuer_of(tx: &mut WriteTx, cert: &inspect::Certificate) -> Result<Option<CaId>> {
    let aki = cert.authority_key_id.as_deref().map(hex::encode);
    for (id, der) in tx.issuer_candidates(aki.as_deref(), &cert.issuer).await? {
        if inspect::Certificate::parse(&der).is_ok_and(|ca| cert.is_issued_by(&ca)) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
