//! Certificate authorities: creating roots and intermediates, and the default hierarchy made at
//! first start.

use pki::cert::{self, NameConstraints};
use pki::inspect;
use std::sync::Arc;

use pki::{CertSpec, DistinguishedName, KeyType, NameAttribute, Signer};
use store::{CaId, CaRow, CaSource, CaUpdate, CertFields, KeyId, NewCa, NewEvent, NewKey};
use time::Duration;

use super::signing::SignAs;
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// Longest CA validity accepted: 30 years.
const MAX_CA_DAYS: i64 = 30 * 365;

/// What kind of CA to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKind {
    /// Self-signed.
    Root,
    /// Signed by a parent CA that certmint holds.
    Intermediate,
}

impl CaKind {
    /// `root` or `intermediate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Intermediate => "intermediate",
        }
    }

    /// Reads `root` or `intermediate` (`sub`, `subordinate` too).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the accepted values.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "root" => Ok(Self::Root),
            "intermediate" | "sub" | "subordinate" => Ok(Self::Intermediate),
            other => Err(Error::Invalid(format!(
                "ca_type '{other}' is not supported; use root or intermediate"
            ))),
        }
    }
}

/// Where a new CA's key is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyLocation {
    /// Made here and sealed by the vault.
    #[default]
    Software,
    /// Made in the token of this HSM provider, labelled `label` (the CA's name when absent).
    HsmProvider {
        /// The provider.
        provider_id: i64,
        /// `CKA_LABEL`.
        label: Option<String>,
    },
    /// This key, already in a token and used by no CA (`/api/v2/hsm/keys`).
    HsmKey(KeyId),
}

/// A CA to create.
#[derive(Debug, Clone)]
pub struct NewCaInput {
    /// Display name; the common name when absent.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Subject; must have a common name.
    pub subject: DistinguishedName,
    /// Root or intermediate.
    pub kind: CaKind,
    /// The issuing CA, for an intermediate.
    pub parent_id: Option<CaId>,
    /// The new CA's key.
    pub key_type: KeyType,
    /// Where the new CA's key is made or found.
    pub key_location: KeyLocation,
    /// Validity in days.
    pub validity_days: i64,
    /// Path length constraint.
    pub path_len: Option<u8>,
    /// Name constraints.
    pub name_constraints: Option<NameConstraints>,
    /// Whether it becomes the default issuing CA.
    pub make_default: bool,
    /// Whether it refuses requests that name no template.
    pub require_template: bool,
    /// What the certificates it issues point to.
    pub pointers: Pointers,
}

/// What a CA's certificates point to: where its CRLs and its OCSP responder are, and where
/// its own certificate downloads (AIA caIssuers). Each also turns the publishing on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointers {
    /// CRL distribution point, and CRL publication.
    pub cdp: bool,
    /// OCSP responder URL, and OCSP answers.
    pub ocsp: bool,
    /// caIssuers URL.
    pub aia_ca_issuers: bool,
}

impl Default for Pointers {
    fn default() -> Self {
        Self {
            cdp: true,
            ocsp: true,
            aia_ca_issuers: true,
        }
    }
}

/// The stored columns of a parsed certificate.
/// The stored fields of a certificate certmint just built.
pub(crate) fn built_fields(built: cert::Built) -> CertFields {
    CertFields {
        subject: built.subject,
        common_name: built.common_name,
        issuer: built.issuer,
        serial: built.serial,
        not_before: built.not_before,
        not_after: built.not_after,
        key_type: built.key_type.label(),
        signature_algorithm: built.signature_algorithm,
        subject_key_id: Some(hex::encode(built.subject_key_id)),
        authority_key_id: built.authority_key_id.map(hex::encode),
        fingerprint_sha256: built.fingerprint_sha256,
        der: built.der,
    }
}

/// The stored fields of a certificate read from elsewhere.
pub(crate) fn cert_fields(info: &inspect::Certificate) -> CertFields {
    CertFields {
        subject: info.subject.clone(),
        common_name: info.common_name.clone(),
        issuer: info.issuer.clone(),
        serial: info.serial.clone(),
        not_before: info.not_before,
        not_after: info.not_after,
        key_type: info
            .key_type
            .map_or_else(|| "unsupported".to_owned(), KeyType::label),
        signature_algorithm: info.signature_algorithm.clone(),
        subject_key_id: info.subject_key_id.as_deref().map(hex::encode),
        authority_key_id: info.authority_key_id.as_deref().map(hex::encode),
        fingerprint_sha256: info.fingerprint_sha256.clone(),
        der: info.der.clone(),
    }
}

impl From<pki::Error> for Error {
    fn from(e: pki::Error) -> Self {
        match e {
            pki::Error::Invalid(m) => Self::Invalid(m),
            pki::Error::Lint(report) => Self::Lint(report),
            pki::Error::Unavailable(why) => Self::KeyUnavailable(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl Authority {
    /// Every CA, by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn cas(&self) -> Result<Vec<CaRow>> {
        Ok(self.store.cas().await?)
    }

    /// One CA.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none with this id.
    pub async fn ca(&self, id: CaId) -> Result<CaRow> {
        self.store
            .ca(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("CA {id} not found")))
    }

    /// The CA that issues when a request names none.
    ///
    /// # Errors
    /// [`Error::Invalid`] when no default CA is set.
    pub async fn default_ca(&self) -> Result<CaRow> {
        self.store.default_ca().await?.ok_or_else(|| {
            Error::Invalid("no CA was named and no default issuing CA is set".into())
        })
    }

    /// Creates a root or an intermediate CA with a new key, audited, in one transaction.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:cas`; [`Error::Invalid`] for a subject without a
    /// common name, a validity out of range, an intermediate without a usable parent;
    /// [`Error::Conflict`] for a name in use.
    pub async fn create_ca(&self, principal: &Principal, input: NewCaInput) -> Result<CaRow> {
        if !principal.can(Permission::WriteCas) {
            return Err(Error::Forbidden("creating a CA needs write:cas".into()));
        }
        let common_name = input
            .subject
            .get(NameAttribute::CommonName)
            .ok_or_else(|| Error::Invalid("a CA needs a common_name".into()))?
            .to_owned();
        if !(1..=MAX_CA_DAYS).contains(&input.validity_days) {
            return Err(Error::Invalid(format!(
                "validity_days must be between 1 and {MAX_CA_DAYS}"
            )));
        }
        let name = input
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| common_name.clone());
        let parent = match (input.kind, input.parent_id) {
            (CaKind::Root, None) => None,
            (CaKind::Root, Some(_)) => {
                return Err(Error::Invalid("a root CA has no parent_id".into()));
            }
            (CaKind::Intermediate, None) => {
                return Err(Error::Invalid(
                    "an intermediate CA needs a parent_id".into(),
                ));
            }
            (CaKind::Intermediate, Some(id)) => Some(self.usable_issuer(Some(id)).await?),
        };

        let now = self.now();
        // A key made for the CA: sealed here, or the record of one made in a token.
        let (key, new_key): (Arc<dyn Signer>, Option<NewKey>) = match &input.key_location {
            KeyLocation::Software => {
                let key = self.generate_key(input.key_type).await?;
                let sealed = self.sealed_key(&key)?;
                (Arc::new(key), Some(sealed))
            }
            KeyLocation::HsmProvider { provider_id, label } => {
                principal.require(
                    Permission::AdminSystem,
                    "creating a CA with its key in an HSM",
                )?;
                let label = label.clone().unwrap_or_else(|| name.clone());
                let (row, signer) = self.token_key(*provider_id, input.key_type, &label).await?;
                (signer, Some(row))
            }
            KeyLocation::HsmKey(id) => {
                principal.require(
                    Permission::AdminSystem,
                    "creating a CA with its key in an HSM",
                )?;
                (self.unused_token_key(*id).await?, None)
            }
        };
        let mut spec = CertSpec {
            ca: Some(input.path_len),
            name_constraints: input.name_constraints.clone(),
            ..CertSpec::new(
                input.subject.clone(),
                key.public_key_der(),
                pki::random::serial()?,
                now - Duration::minutes(5),
                now + Duration::days(input.validity_days),
            )
        };
        if let Some(parent) = &parent {
            self.publishing().point_to(&mut spec, parent);
        }
        let by = match &parent {
            None => SignAs::Root(key.clone()),
            Some(parent) => SignAs::Ca(parent),
        };
        let (built, _) = self.sign_certificate(principal, &spec, by, None).await?;
        let (serial, subject) = (built.serial.clone(), built.subject.clone());

        let mut tx = self.store.begin_write().await?;
        let key_id = match (&new_key, &input.key_location) {
            (Some(row), _) => tx.insert_key(row, now).await?,
            (None, KeyLocation::HsmKey(id)) => *id,
            (None, _) => return Err(Error::Internal("a CA key without its record".into())),
        };
        let id = tx
            .insert_ca(
                &NewCa {
                    refid: crate::token::refid()?,
                    name: name.clone(),
                    description: input.description.clone(),
                    ca_type: input.kind.as_str().into(),
                    parent_id: parent.as_ref().map(|ca| ca.id),
                    key_id: Some(key_id),
                    path_len: input.path_len.map(i64::from),
                    is_default: input.make_default,
                    source: CaSource::Created,
                    require_template: input.require_template,
                    cert: built_fields(built),
                },
                now,
            )
            .await
            .map_err(|e| match e {
                store::Error::Conflict(_) => Error::Conflict(format!("a CA named '{name}' exists")),
                other => other.into(),
            })?;
        if input.pointers != Pointers::default() {
            let p = input.pointers;
            tx.set_pointers(id, p.cdp, p.ocsp, p.aia_ca_issuers).await?;
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "ca_created",
                "ca",
                id,
                format!(
                    "{} CA '{name}' ({}, {} days, serial {})",
                    input.kind.as_str(),
                    input.key_type,
                    input.validity_days,
                    serial
                ),
            ),
        ))
        .await?;
        tx.queue_event(
            &NewEvent {
                event_type: "ca_created".into(),
                resource_type: "ca".into(),
                resource_id: id.to_string(),
                payload: serde_json::json!({"name": name, "subject": subject}),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        self.issuers.changed();
        self.ca(id).await
    }

    /// Renames, describes, activates or deactivates CA `id`, makes it the default, sets
    /// whether it requires a template, or which lint rules only warn for what it signs.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:cas`; [`Error::NotFound`]; [`Error::Invalid`] for an
    /// empty name, for making a CA without a key the default, or for a lint rule that does not
    /// exist; [`Error::Conflict`] for a name in use.
    pub async fn update_ca(
        &self,
        principal: &Principal,
        id: CaId,
        update: CaUpdate,
    ) -> Result<CaRow> {
        if !principal.can(Permission::WriteCas) {
            return Err(Error::Forbidden("changing a CA needs write:cas".into()));
        }
        let before = self.ca(id).await?;
        if update.name.as_ref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Error::Invalid("name must not be empty".into()));
        }
        if update.is_default == Some(true) && before.key_id.is_none() {
            return Err(Error::Invalid(format!(
                "CA '{}' has no private key here, so it cannot be the default issuing CA",
                before.name
            )));
        }
        let mut changes = Vec::new();
        if let Some(name) = &update.name {
            changes.push(format!("name '{}' -> '{name}'", before.name));
        }
        if let Some(active) = update.is_active {
            changes.push(format!("active {} -> {active}", before.is_active));
        }
        if let Some(default) = update.is_default {
            changes.push(format!("default {} -> {default}", before.is_default));
        }
        if update.description.is_some() {
            changes.push("description".into());
        }
        if let Some(required) = update.require_template {
            changes.push(format!(
                "require_template {} -> {required}",
                before.require_template
            ));
        }
        if let Some(names) = &update.lint_warn_only {
            pki::lint::Policy::default().downgrading(names)?;
            changes.push(format!(
                "lint_warn_only [{}] -> [{}]",
                before.lint_warn_only.join(", "),
                names.join(", ")
            ));
        }
        if let Some(r) = &update.revocation {
            check_revocation_settings(r)?;
            changes.push(format!(
                "revocation settings {:?} -> {r:?}",
                before.revocation
            ));
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.update_ca(id, &update, now).await.map_err(|e| match e {
            store::Error::Conflict(_) => Error::Conflict("a CA with that name exists".into()),
            other => other.into(),
        })?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "ca_updated",
                "ca",
                id,
                format!("'{}': {}", before.name, changes.join(", ")),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.issuers.changed();
        self.ca(id).await
    }

    /// Deletes CA `id` and its key. While it has issued certificates that are still valid (or
    /// CAs below it), only with `force`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:cas`; [`Error::NotFound`]; [`Error::Conflict`] when
    /// live certificates depend on it and `force` is not set.
    pub async fn delete_ca(&self, principal: &Principal, id: CaId, force: bool) -> Result<()> {
        if !principal.can(Permission::DeleteCas) {
            return Err(Error::Forbidden("deleting a CA needs delete:cas".into()));
        }
        let ca = self.ca(id).await?;
        let now = self.now();
        let live = self.store.live_certificates_of(id, now).await?;
        if live > 0 && !force {
            return Err(Error::Conflict(format!(
                "CA '{}' has issued {live} certificate(s) or CA(s) that are still valid; \
                 revoke them or delete with force=true",
                ca.name
            )));
        }
        let mut tx = self.store.begin_write().await?;
        tx.delete_ca(id).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "ca_deleted",
                "ca",
                id,
                format!("'{}' ({live} live certificate(s) left unlinked)", ca.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.issuers.forget(&ca.cert.fingerprint_sha256);
        Ok(())
    }

    /// At first start, when there is no CA at all, creates a root (ECDSA P-384, 10 years) and an
    /// issuing intermediate (ECDSA P-256, 5 years) that becomes the default CA. Returns whether
    /// it did. Neither requires a template: with no configuration at all, requests without one
    /// (the listener's certificate, the default ACME profile, a first `cert issue`) must work.
    ///
    /// # Errors
    /// As [`Authority::create_ca`].
    pub async fn ensure_default_hierarchy(&self) -> Result<bool> {
        if !self.store.cas().await?.is_empty() {
            return Ok(false);
        }
        let system = Principal::local("system");
        let subject = |cn: &str| -> Result<DistinguishedName> {
            let mut dn = DistinguishedName::new();
            dn.set(NameAttribute::Organization, "certmint")?;
            dn.set(NameAttribute::CommonName, cn)?;
            Ok(dn)
        };
        let root = self
            .create_ca(
                &system,
                NewCaInput {
                    name: Some("certmint Root CA".into()),
                    description: Some("Created at first start".into()),
                    subject: subject("certmint Root CA")?,
                    kind: CaKind::Root,
                    parent_id: None,
                    key_type: KeyType::EcP384,
                    key_location: KeyLocation::Software,
                    validity_days: 3650,
                    path_len: None,
                    name_constraints: None,
                    make_default: false,
                    require_template: false,
                    pointers: Pointers::default(),
                },
            )
            .await?;
        self.create_ca(
            &system,
            NewCaInput {
                name: Some("certmint Issuing CA".into()),
                description: Some("Created at first start; the default issuing CA".into()),
                subject: subject("certmint Issuing CA")?,
                kind: CaKind::Intermediate,
                parent_id: Some(root.id),
                key_type: KeyType::EcP256,
                key_location: KeyLocation::Software,
                validity_days: 1825,
                path_len: Some(0),
                name_constraints: None,
                make_default: true,
                require_template: false,
                pointers: Pointers::default(),
            },
        )
        .await?;
        Ok(true)
    }

    /// The chain above CA `id`, starting with its own certificate and ending at the root (or at
    /// the highest CA certmint holds), DER.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such CA.
    pub async fn ca_chain(&self, id: CaId) -> Result<Vec<Vec<u8>>> {
        if let Some(chain) = self.issuers.chain(id) {
            return Ok(chain.to_vec());
        }
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(id) = next {
            let ca = self.ca(id).await?;
            if chain.len() > 16 {
                return Err(Error::Internal(format!("CA {id} has a parent loop")));
            }
            chain.push(ca.cert.der);
            next = ca.parent_id;
        }
        self.issuers.put_chain(id, chain.clone().into());
        Ok(chain)
    }
}

/// `wanted`, or `wanted #2`, `#3`… when a CA has that name.
pub(crate) async fn free_ca_name(tx: &mut store::WriteTx, wanted: &str) -> Result<String> {
    let wanted = wanted.trim();
    let mut name = wanted.to_owned();
    let mut n = 1;
    while tx.ca_name_taken(&name).await? {
        n += 1;
        name = format!("{wanted} #{n}");
    }
    Ok(name)
}

/// Checks revocation settings: validities of an hour to a year (a week for OCSP), a full CRL
/// refreshed before it expires, a delta that does not outlive it, and a known OCSP signer.
///
/// # Errors
/// [`Error::Invalid`] naming the setting.
fn check_revocation_settings(s: &store::RevocationSettings) -> Result<()> {
    const YEAR: i64 = 24 * 366;
    if !(1..=YEAR).contains(&s.crl_validity_hours) {
        return Err(Error::Invalid(format!(
            "crl_validity_hours must be 1 to {YEAR}"
        )));
    }
    if !(1..s.crl_validity_hours).contains(&s.crl_refresh_hours) {
        return Err(Error::Invalid(
            "crl_refresh_hours must be at least 1 and less than crl_validity_hours, so a new \
             CRL is out before the last expires"
                .into(),
        ));
    }
    if !(1..=s.crl_validity_hours).contains(&s.delta_crl_validity_hours) {
        return Err(Error::Invalid(
            "delta_crl_validity_hours must be 1 to crl_validity_hours".into(),
        ));
    }
    if !(1..=168).contains(&s.ocsp_validity_hours) {
        return Err(Error::Invalid(
            "ocsp_validity_hours must be 1 to 168".into(),
        ));
    }
    if !["delegated", "ca"].contains(&s.ocsp_signer.as_str()) {
        return Err(Error::Invalid(format!(
            "unknown ocsp_signer '{}'; expected delegated or ca",
            s.ocsp_signer
        )));
    }
    Ok(())
}
