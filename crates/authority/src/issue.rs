//! The one issuance pipeline: every certificate, from whichever front door, is checked, built,
//! signed and stored here, with its audit record and outbox event in the same transaction.

use pki::cert::{self, ExtendedKeyUsage, KeyUsage};
use pki::csr::Csr;
use pki::inspect;
use pki::{CertSpec, DistinguishedName, KeyType, PrivateKey, SubjectAltName};
use store::{
    CaId, CaRow, CaSource, CertificateId, CertificateRow, CertificateSource, CsrId, KeyId, NewCa,
    NewCertificate, NewEvent, TemplateId,
};
use time::Duration;

use crate::audit::Event;
use crate::ca::{CaKind, SignAs, built_fields};
use crate::committer::IssueWrite;
use crate::templates::{Asked, MAX_DAYS};
use crate::{Authority, Error, Permission, Principal, Result};

/// Where the certificate's key comes from.
#[derive(Debug)]
pub enum KeySource {
    /// certmint generates the key and keeps it (sealed): of this type, or the template's
    /// default (EC P-256 without a template).
    Generate(Option<KeyType>),
    /// The requester holds the key; the CSR proves it.
    Csr(Box<Csr>),
    /// A CSR kept in the inventory (`/csrs`): marked signed in the same transaction, so it is
    /// signed once; its private key, when certmint holds it, becomes the certificate's.
    StoredCsr {
        /// The stored CSR's id.
        id: CsrId,
        /// The CSR, read again and verified.
        csr: Box<Csr>,
        /// Its private key, when certmint holds it.
        key_id: Option<KeyId>,
    },
    /// The key of the certificate being renewed (stored row, when certmint holds it).
    Reuse {
        /// Public key, DER SubjectPublicKeyInfo.
        public_key: Vec<u8>,
        /// The stored private key.
        key_id: Option<KeyId>,
    },
}

/// What to issue. Front doors translate their wire formats into this.
#[derive(Debug)]
pub struct IssueRequest {
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// Subject name.
    pub subject: DistinguishedName,
    /// Subject alternative names.
    pub sans: Vec<SubjectAltName>,
    /// The key.
    pub key: KeySource,
    /// The template the request is checked against and takes its defaults from.
    pub template_id: Option<TemplateId>,
    /// Validity in days; the template's (365 without one) when absent.
    pub validity_days: Option<i64>,
    /// Key usages; the template's (a TLS server's without one) when absent.
    pub key_usage: Option<Vec<KeyUsage>>,
    /// Extended key usages; the template's (serverAuth without one) when absent.
    pub extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
    /// Free text.
    pub description: Option<String>,
    /// The front door: api, acme, est, scep, system.
    pub source: CertificateSource,
    /// The certificate this one renews.
    pub renewed_from: Option<CertificateId>,
}

/// A certificate just issued.
#[derive(Debug)]
pub struct Issued {
    /// The stored certificate.
    pub certificate: CertificateRow,
    /// The key certmint generated for it (also stored, sealed), for a caller that must hand
    /// it over once.
    pub key: Option<PrivateKey>,
}

/// Whether a certificate with these basic constraints and key usages (what the template and
/// request come to, and what is signed) can sign certificates: a CA by its basic constraints,
/// or with keyCertSign whatever they say. Decided here, on what is about to be built, so that
/// no door and no template can make one unnoticed.
fn makes_ca(ca: Option<Option<u8>>, key_usage: &[KeyUsage]) -> bool {
    ca.is_some() || key_usage.contains(&KeyUsage::KeyCertSign)
}

/// Checks that `issuer` may issue a CA named `subject` with path length `path_len`
/// (RFC 5280 §4.2.1.9: a CA's path length bounds the CAs below it).
fn check_sub_ca(issuer: &CaRow, subject: &DistinguishedName, path_len: Option<u8>) -> Result<()> {
    if subject.is_empty() {
        return Err(Error::Invalid(
            "a CA certificate needs a subject name".into(),
        ));
    }
    match issuer.path_len {
        Some(0) => Err(Error::Invalid(format!(
            "CA '{}' has path length 0: it may not issue CA certificates",
            issuer.name
        ))),
        Some(max) if path_len.is_none_or(|p| i64::from(p) >= max) => Err(Error::Invalid(format!(
            "CA '{}' has path length {max}: a CA below it needs a path length under {max}",
            issuer.name
        ))),
        _ => Ok(()),
    }
}

/// The `cas` row of a CA certificate issued here: below `parent`, without a key (the requester
/// holds it, or certmint keeps it as the certificate's only), so it is listed, chained and
/// revocable, but issues nothing here. Its name is made unique when it is stored.
fn issued_ca(built: &cert::Built, parent: &CaRow, path_len: Option<u8>) -> Result<NewCa> {
    Ok(NewCa {
        refid: crate::token::refid()?,
        name: built
            .common_name
            .clone()
            .unwrap_or_else(|| built.subject.clone()),
        description: Some(format!("Issued by CA '{}'", parent.name)),
        ca_type: CaKind::Intermediate.as_str().into(),
        parent_id: Some(parent.id),
        key_id: None,
        path_len: path_len.map(i64::from),
        is_default: false,
        source: CaSource::Issued,
        require_template: false,
        cert: built_fields(built.clone()),
    })
}

/// How far before the moment of issuance a certificate's validity starts, so that relying
/// parties whose clocks run a little slow accept it at once.
const BACKDATE: Duration = Duration::minutes(5);

/// The SANs to write: those asked for, or, for a TLS server certificate asked without any,
/// its common name when that is a host name or an IP address. Browsers and TLS libraries look
/// only at SANs (RFC 6125 §6.4.4), and the linter refuses a serverAuth certificate without
/// them; a common name that is neither stays as it is and the linter says why.
fn sans_with_common_name(
    asked: &[SubjectAltName],
    subject: &DistinguishedName,
    extended_key_usage: &[ExtendedKeyUsage],
) -> Vec<SubjectAltName> {
    if !asked.is_empty() || !extended_key_usage.contains(&ExtendedKeyUsage::ServerAuth) {
        return asked.to_vec();
    }
    subject
        .get(pki::NameAttribute::CommonName)
        .and_then(|cn| match cn.parse() {
            Ok(ip) => Some(SubjectAltName::Ip(ip)),
            Err(_) => pki::name::check_dns_name(cn, true)
                .ok()
                .map(SubjectAltName::Dns),
        })
        .into_iter()
        .collect()
}

impl Authority {
    /// Issues a certificate: checks the request against its template and the CA, builds and
    /// signs it, and stores it with its audit record and an outbox event in one transaction.
    ///
    /// A CA certificate (basic constraints CA, or keyCertSign) needs `write:cas` as well, and
    /// is also recorded as a CA below the issuing one, without a key, in the same transaction.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates`, or without `write:cas` for a CA
    /// certificate; [`Error::Invalid`] for an unknown template or anything it does not allow,
    /// no template where the CA requires one, an unusable CA, a CA certificate its path length
    /// forbids, a validity out of range or beyond the CA's, a request without names; store
    /// errors.
    pub async fn issue(&self, principal: &Principal, request: IssueRequest) -> Result<Issued> {
        if !principal.can(Permission::WriteCertificates) {
            return Err(Error::Forbidden(
                "issuing certificates needs write:certificates".into(),
            ));
        }
        self.issue_for(principal, request).await
    }

    /// [`Self::issue`] for a principal whose right to this one certificate its door has
    /// already decided (a user's own login certificate): every other check, the signing, the
    /// record and the audit are the pipeline's, attributed to `principal`.
    pub(crate) async fn issue_for(
        &self,
        principal: &Principal,
        request: IssueRequest,
    ) -> Result<Issued> {
        let rules = self.rules(request.template_id).await?;
        let ca = self.usable_issuer(request.ca_id).await?;
        if ca.require_template && request.template_id.is_none() {
            return Err(Error::Invalid(format!(
                "CA '{}' issues only from a template: name a template_id",
                ca.name
            )));
        }
        let (generated, public_key, reused_key) = match &request.key {
            KeySource::Generate(key_type) => {
                let key = self
                    .generate_key(key_type.unwrap_or(rules.default_key()))
                    .await?;
                let public = key.public_key_der();
                (Some(key), public, None)
            }
            KeySource::Csr(csr) => (None, csr.public_key_der.clone(), None),
            KeySource::StoredCsr { csr, key_id, .. } => (None, csr.public_key_der.clone(), *key_id),
            KeySource::Reuse { public_key, key_id } => (None, public_key.clone(), *key_id),
        };
        let applied = rules.apply(&Asked {
            validity_days: request.validity_days,
            key_type: pki::keys::spki_key_type(&public_key)?,
            key_usage: request.key_usage.as_deref(),
            extended_key_usage: request.extended_key_usage.as_deref(),
            sans: &request.sans,
        })?;
        let makes_ca = makes_ca(applied.ca, &applied.key_usage);
        if makes_ca {
            principal.require(Permission::WriteCas, "issuing a CA certificate")?;
            check_sub_ca(&ca, &request.subject, applied.ca.flatten())?;
        }
        let days = applied.validity_days;
        let now = self.now();
        let not_after = now + Duration::days(days);
        if not_after > ca.cert.not_after {
            return Err(Error::Invalid(format!(
                "a validity of {days} days would end after CA '{}' expires ({}); ask for at most {} days",
                ca.name,
                crate::rfc3339(ca.cert.not_after),
                (ca.cert.not_after - now).whole_days()
            )));
        }
        let mut spec = CertSpec {
            sans: sans_with_common_name(
                &request.sans,
                &request.subject,
                &applied.extended_key_usage,
            ),
            ca: applied.ca,
            key_usage: applied.key_usage,
            extended_key_usage: applied.extended_key_usage,
            ocsp_no_check: applied.ocsp_no_check,
            ..CertSpec::new(
                request.subject.clone(),
                public_key,
                pki::random::serial()?,
                now - BACKDATE,
                not_after,
            )
        };
        self.publishing().point_to(&mut spec, &ca);
        let (built, lint) = self
            .sign_certificate(
                principal,
                &spec,
                SignAs::Ca(&ca),
                Some(Duration::days(rules.max_validity_days()) + BACKDATE),
            )
            .await?;
        let new_ca = makes_ca
            .then(|| issued_ca(&built, &ca, spec.ca.flatten()))
            .transpose()?;

        let template = rules
            .template
            .as_ref()
            .map(|(_, name)| format!(", template '{name}'"))
            .unwrap_or_default();
        let (action, renewal) = match request.renewed_from {
            Some(old) => (
                "certificate_renewed",
                format!(", renewing certificate {old}"),
            ),
            None => ("certificate_issued", String::new()),
        };
        let audit = self.entry_by(
            principal,
            Event::new(
                action,
                "certificate",
                "",
                format!(
                    "'{}' by CA '{}', serial {}, {days} days{template}, via {}{renewal}{}{}",
                    built.subject,
                    ca.name,
                    built.serial,
                    request.source,
                    if makes_ca {
                        ", a CA certificate (recorded as a CA without its key)"
                    } else {
                        ""
                    },
                    crate::ca::warnings_note(&lint),
                ),
            ),
        );
        let event = NewEvent {
            event_type: action.into(),
            resource_type: "certificate".into(),
            resource_id: String::new(),
            payload: serde_json::json!({
                "serial": built.serial,
                "subject": built.subject,
                "ca_id": ca.id,
                "not_after": crate::rfc3339(built.not_after),
                "renewed_from": request.renewed_from,
            }),
        };
        // A template's auto-renewal applies to the certificates whose key certmint holds.
        let renew_at = rules
            .renewal
            .filter(|_| !makes_ca && (generated.is_some() || reused_key.is_some()))
            .map(|p| p.when.due_at(built.not_before, built.not_after));
        let write = IssueWrite {
            renew_at,
            new_key: generated.as_ref().map(|k| self.sealed_key(k)).transpose()?,
            ca: new_ca,
            certificate: NewCertificate {
                // Time-ordered, so that each batch appends to the refid index instead of
                // dirtying pages all over it.
                refid: uuid::Uuid::now_v7().to_string(),
                ca_id: Some(ca.id),
                key_id: reused_key,
                template_id: rules.template.as_ref().map(|(id, _)| *id),
                owner_id: principal.user.as_ref().map(|u| u.id),
                renewed_from: request.renewed_from,
                description: request.description.clone(),
                sans: built.sans.clone(),
                is_ca: built.is_ca,
                source: request.source,
                cert: built_fields(built),
            },
            csr_id: match &request.key {
                KeySource::StoredCsr { id, .. } => Some(*id),
                _ => None,
            },
            audit,
            event,
            now,
        };
        let written = self.committer.submit(write).await?;
        if makes_ca {
            self.issuers.changed();
        }
        Ok(Issued {
            certificate: written.certificate.stored_as(written.id, now),
            key: generated,
        })
    }

    /// Renews certificate `id`: a new certificate with the same subject, SANs and usages, a
    /// new serial and validity, from the same CA unless `ca_id` names another. With `new_key`
    /// it is a rekey: a key certmint generates, or the key of a CSR; otherwise the public key
    /// (and the stored private key, if any) carries over.
    ///
    /// # Errors
    /// As [`Authority::issue`]; [`Error::Invalid`] when the original's names cannot be issued
    /// again, its CA is gone and none is named, or `new_key` is a stored CSR or reused key.
    pub async fn renew(
        &self,
        principal: &Principal,
        id: CertificateId,
        validity_days: Option<i64>,
        ca_id: Option<CaId>,
        new_key: Option<KeySource>,
    ) -> Result<Issued> {
        self.renew_via(
            principal,
            id,
            validity_days,
            ca_id,
            new_key,
            CertificateSource::Api,
        )
        .await
    }

    /// [`Authority::renew`], recording `source` as the front door.
    pub(crate) async fn renew_via(
        &self,
        principal: &Principal,
        id: CertificateId,
        validity_days: Option<i64>,
        ca_id: Option<CaId>,
        new_key: Option<KeySource>,
        source: CertificateSource,
    ) -> Result<Issued> {
        let old = self.certificate(id).await?;
        let info = inspect::Certificate::parse(&old.cert.der)?;
        if info.is_ca {
            return Err(Error::Invalid(
                "CA certificates are renewed as CAs, not here".into(),
            ));
        }
        if info.subject_name.is_empty() && !info.subject.is_empty() {
            return Err(Error::Invalid(format!(
                "the subject '{}' of certificate {id} cannot be issued again as it is",
                info.subject
            )));
        }
        let sans = info
            .sans
            .iter()
            .map(|s| SubjectAltName::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let ca_id = ca_id.or(old.ca_id).ok_or_else(|| {
            Error::Invalid(format!(
                "the CA that issued certificate {id} is gone; name a ca_id to renew it"
            ))
        })?;
        let key = match new_key {
            Some(new @ (KeySource::Generate(_) | KeySource::Csr(_))) => new,
            Some(_) => {
                return Err(Error::Invalid(
                    "a rekey takes a key to generate or a CSR".into(),
                ));
            }
            None => KeySource::Reuse {
                public_key: info.public_key_der.clone(),
                key_id: old.key_id,
            },
        };
        let days = validity_days.unwrap_or_else(|| {
            (info.not_after - info.not_before)
                .whole_days()
                .clamp(1, MAX_DAYS)
        });
        self.issue(
            principal,
            IssueRequest {
                ca_id: Some(ca_id),
                subject: info.subject_name.clone(),
                sans,
                key,
                template_id: old.template_id,
                validity_days: Some(days),
                key_usage: Some(info.key_usage.clone()),
                extended_key_usage: Some(info.extended_key_usage.clone()),
                description: old.description.clone(),
                source,
                renewed_from: Some(id),
            },
        )
        .await
    }
}
