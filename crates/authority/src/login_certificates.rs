//! Logging in with a TLS client certificate (mTLS), and the certificates that do it.
//!
//! A user gets a login certificate from their account (certmint generates the key, or signs
//! their CSR), through the one issuance pipeline, from the CA the settings name; the link
//! between the certificate and the user is what lets it log in. With `map_by_email`, a valid
//! certificate from a trusted CA whose e-mail SAN is exactly one enabled user's address logs
//! that user in without a link: everyone who can issue from those CAs can then log in as
//! anyone, so it is off by default and meant for a CA kept for people.
//!
//! The key of a login certificate is a password: it goes to its owner only, in a login
//! session, whatever `export:keys` others hold; and an API key cannot make, enable or fetch
//! one, so a key never turns into a session broader than itself.

use pki::cert::{ExtendedKeyUsage, KeyUsage};
use pki::{DistinguishedName, KeyType, PrivateKey, SubjectAltName};
use serde::{Deserialize, Serialize};
use store::{
    CaId, CaRow, CertificateId, CertificateSource, CertificateState, Page, PageRequest, TemplateId,
    UserCertificateFilter, UserCertificateRow, UserCertificateStats, UserRow,
};
use time::Duration;

use crate::audit::Event;
use crate::issue::{IssueRequest, KeySource};
use crate::revoke::RevocationReason;
use crate::sessions::{LoginMethod, LoginStep};
use crate::{Authority, Error, Origin, Permission, Principal, Result};

/// The setting's key.
const KEY: &str = "mtls";

/// The longest name a login certificate can have.
const MAX_NAME_CHARS: usize = 100;

/// The longest validity an administrator can set for login certificates.
const MAX_VALIDITY_DAYS: i64 = 3650;

/// How far ahead "expiring soon" looks.
const SOON: Duration = Duration::days(30);

/// How certificate login works on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MtlsSettings {
    /// Whether certificates log in at all.
    pub enabled: bool,
    /// The CA that issues login certificates; its certificates log in.
    pub issuing_ca_id: Option<i64>,
    /// Further CAs whose certificates log in.
    pub trusted_ca_ids: Vec<i64>,
    /// Whether a certificate without a link logs in the one enabled user whose e-mail its
    /// e-mail SAN names.
    pub map_by_email: bool,
    /// How long new login certificates are valid.
    pub validity_days: i64,
    /// The template login certificates are issued from, for an issuing CA that requires one.
    pub template_id: Option<i64>,
}

impl Default for MtlsSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            template_id: None,
            issuing_ca_id: None,
            trusted_ca_ids: Vec::new(),
            map_by_email: false,
            validity_days: 365,
        }
    }
}

impl MtlsSettings {
    /// The CAs whose certificates log in: the issuing one, then the trusted ones.
    fn login_ca_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.issuing_ca_id.into_iter().collect();
        for id in &self.trusted_ca_ids {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        ids
    }
}

/// A change to [`MtlsSettings`]; what is absent stays.
#[derive(Debug, Clone, Default)]
pub struct MtlsChange {
    /// Turns certificate login on or off.
    pub enabled: Option<bool>,
    /// The issuing CA; `Some(None)` clears it.
    pub issuing_ca_id: Option<Option<i64>>,
    /// Further trusted CAs.
    pub trusted_ca_ids: Option<Vec<i64>>,
    /// E-mail mapping.
    pub map_by_email: Option<bool>,
    /// Validity of new login certificates.
    pub validity_days: Option<i64>,
    /// The template; `Some(None)` clears it.
    pub template_id: Option<Option<i64>>,
}

/// How a new login certificate gets its key.
#[derive(Debug)]
pub enum LoginKey {
    /// certmint generates one (EC P-256 unless a type is named) and hands it over once.
    Generate(Option<KeyType>),
    /// The user holds the key; the CSR (PEM or DER) proves it.
    Csr(Vec<u8>),
}

/// A login certificate just made, with the key certmint generated for it.
#[derive(Debug)]
pub struct NewLoginCertificate {
    /// The login certificate.
    pub certificate: UserCertificateRow,
    /// The generated key, shown this once (certmint keeps it sealed for its owner).
    pub key: Option<PrivateKey>,
}

/// Whose login certificates an operation may reach.
#[derive(Debug, Clone, Copy)]
pub enum Reach {
    /// The caller's own only (the account pages).
    Own,
    /// The caller's own, and anyone's with this permission (the administrators' view).
    Anyone(Permission),
}

fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::Invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "name must not hold control characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn describe(before: &MtlsSettings, after: &MtlsSettings) -> String {
    format!(
        "certificate login {}, issuing CA {}, trusted CAs {:?}, e-mail mapping {}, {} days, \
         template {:?} (was {}, {}, {:?}, {}, {} days, template {:?})",
        if after.enabled { "on" } else { "off" },
        after
            .issuing_ca_id
            .map_or_else(|| "none".to_owned(), |id| id.to_string()),
        after.trusted_ca_ids,
        if after.map_by_email { "on" } else { "off" },
        after.validity_days,
        after.template_id,
        if before.enabled { "on" } else { "off" },
        before
            .issuing_ca_id
            .map_or_else(|| "none".to_owned(), |id| id.to_string()),
        before.trusted_ca_ids,
        if before.map_by_email { "on" } else { "off" },
        before.validity_days,
        before.template_id,
    )
}

impl Authority {
    /// How certificate login works now; every signed-in user may read it.
    ///
    /// # Errors
    /// Store errors; [`Error::Internal`] for a stored value that does not read.
    pub async fn mtls_settings(&self) -> Result<MtlsSettings> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored mTLS settings: {e}"))),
            None => Ok(MtlsSettings::default()),
        }
    }

    /// Changes how certificate login works. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for an unknown CA, an
    /// issuing CA whose key certmint does not hold, a validity out of range, or login turned
    /// on without any CA; store errors.
    pub async fn update_mtls_settings(
        &self,
        principal: &Principal,
        change: MtlsChange,
    ) -> Result<MtlsSettings> {
        principal.require(Permission::AdminSystem, "changing the mTLS settings")?;
        let before = self.mtls_settings().await?;
        let after = MtlsSettings {
            enabled: change.enabled.unwrap_or(before.enabled),
            issuing_ca_id: change.issuing_ca_id.unwrap_or(before.issuing_ca_id),
            trusted_ca_ids: change
                .trusted_ca_ids
                .unwrap_or_else(|| before.trusted_ca_ids.clone()),
            map_by_email: change.map_by_email.unwrap_or(before.map_by_email),
            validity_days: change.validity_days.unwrap_or(before.validity_days),
            template_id: change.template_id.unwrap_or(before.template_id),
        };
        if !(1..=MAX_VALIDITY_DAYS).contains(&after.validity_days) {
            return Err(Error::Invalid(format!(
                "validity_days must be 1 to {MAX_VALIDITY_DAYS}"
            )));
        }
        if after.trusted_ca_ids.len() > 20 {
            return Err(Error::Invalid("trust at most 20 CAs for login".into()));
        }
        if let Some(id) = after.template_id {
            self.rules(Some(TemplateId(id))).await?;
        }
        if let Some(id) = after.issuing_ca_id {
            let ca = self.known_ca(id).await?;
            if ca.key_id.is_none() {
                return Err(Error::Invalid(format!(
                    "CA '{}' cannot issue login certificates: certmint does not hold its key",
                    ca.name
                )));
            }
            if ca.require_template && after.template_id.is_none() {
                return Err(Error::Invalid(format!(
                    "CA '{}' issues only from a template: set template_id (a template that \
                     allows clientAuth, such as TLS Client)",
                    ca.name
                )));
            }
        }
        for id in &after.trusted_ca_ids {
            self.known_ca(*id).await?;
        }
        if after.enabled && after.login_ca_ids().is_empty() {
            return Err(Error::Invalid(
                "certificate login needs an issuing_ca_id or trusted_ca_ids".into(),
            ));
        }
        if after == before {
            return Ok(after);
        }
        let value =
            serde_json::to_value(&after).map_err(|e| Error::Internal(format!("mTLS: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(KEY, &value, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "mtls_settings_updated",
                "settings",
                KEY,
                describe(&before, &after),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn known_ca(&self, id: i64) -> Result<CaRow> {
        self.store
            .ca(CaId(id))
            .await?
            .ok_or_else(|| Error::Invalid(format!("there is no CA {id}")))
    }

    /// Makes a login certificate for the caller, from the issuing CA, named after their
    /// account (common name the username, e-mail SAN their address), for client
    /// authentication, and links it to them. Needs a login session.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key; [`Error::Conflict`] when certificate login is off
    /// or has no issuing CA; [`Error::Invalid`] for a bad name or validity; [`Error::BadCsr`]
    /// for a CSR that does not read or verify; the pipeline's errors.
    pub async fn create_login_certificate(
        &self,
        principal: &Principal,
        name: &str,
        validity_days: Option<i64>,
        key: LoginKey,
    ) -> Result<NewLoginCertificate> {
        principal.require_session("making a login certificate")?;
        let user = principal.account()?.clone();
        let name = checked_name(name)?;
        let settings = self.mtls_settings().await?;
        let ca_id = match (settings.enabled, settings.issuing_ca_id) {
            (true, Some(id)) => id,
            (false, _) => {
                return Err(Error::Conflict("certificate login is turned off".into()));
            }
            (true, None) => {
                return Err(Error::Conflict(
                    "certificate login has no issuing CA: an administrator sets one in the \
                     mTLS settings"
                        .into(),
                ));
            }
        };
        let days = validity_days.unwrap_or(settings.validity_days);
        if !(1..=settings.validity_days).contains(&days) {
            return Err(Error::Invalid(format!(
                "validity_days must be 1 to {}",
                settings.validity_days
            )));
        }
        let key = match key {
            LoginKey::Generate(key_type) => {
                KeySource::Generate(Some(key_type.unwrap_or(KeyType::EcP256)))
            }
            LoginKey::Csr(input) => KeySource::Csr(Box::new(crate::parse_csr(&input)?)),
        };
        let mut subject = DistinguishedName::new();
        subject.set(pki::NameAttribute::CommonName, &user.username)?;
        let sans = match user.email.as_deref().filter(|e| !e.is_empty()) {
            Some(email) => vec![SubjectAltName::parse(&format!("email:{email}"))?],
            None => Vec::new(),
        };
        let issued = self
            .issue_for(
                principal,
                IssueRequest {
                    ca_id: Some(CaId(ca_id)),
                    subject,
                    sans,
                    key,
                    template_id: settings.template_id.map(TemplateId),
                    validity_days: Some(days),
                    key_usage: Some(vec![KeyUsage::DigitalSignature]),
                    extended_key_usage: Some(vec![ExtendedKeyUsage::ClientAuth]),
                    description: Some(format!(
                        "Login certificate '{name}' of user '{}'",
                        user.username
                    )),
                    source: CertificateSource::Api,
                    renewed_from: None,
                },
            )
            .await?;
        let certificate_id = issued.certificate.id;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_user_certificate(user.id, certificate_id, &name, now)
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "login_certificate_created",
                "user_certificate",
                id,
                format!(
                    "'{name}' for user '{}': certificate {certificate_id}, serial {}",
                    user.username, issued.certificate.cert.serial
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(NewLoginCertificate {
            certificate: self.stored_login_certificate(id).await?,
            key: issued.key,
        })
    }

    async fn stored_login_certificate(&self, id: i64) -> Result<UserCertificateRow> {
        self.store
            .user_certificate(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("login certificate {id} not found")))
    }

    /// Login certificate `id`, when `reach` lets `principal` see it. Someone else's, out of
    /// reach, is not found rather than forbidden, so ids reveal nothing.
    ///
    /// # Errors
    /// [`Error::NotFound`]; store errors.
    pub async fn login_certificate(
        &self,
        principal: &Principal,
        id: i64,
        reach: Reach,
    ) -> Result<UserCertificateRow> {
        let row = self.stored_login_certificate(id).await?;
        let own = principal.user.as_ref().is_some_and(|u| u.id == row.user_id);
        let reached = match reach {
            Reach::Own => own,
            Reach::Anyone(permission) => own || principal.can(permission),
        };
        match (reached, reach) {
            (true, _) => Ok(row),
            (false, Reach::Anyone(permission))
                if principal.can(Permission::ReadUserCertificates) =>
            {
                Err(Error::Forbidden(format!(
                    "this, on someone else's login certificate, needs {permission}"
                )))
            }
            (false, _) => Err(Error::NotFound(format!("login certificate {id} not found"))),
        }
    }

    /// A page of login certificates: the caller's own, or everyone's for a caller with
    /// `read:user_certificates` when `reach` allows it.
    ///
    /// # Errors
    /// Store errors.
    pub async fn login_certificates(
        &self,
        principal: &Principal,
        reach: Reach,
        state: Option<CertificateState>,
        page: PageRequest,
    ) -> Result<Page<UserCertificateRow>> {
        let filter = UserCertificateFilter {
            user_id: self.reach_user(principal, reach),
            state,
        };
        Ok(self
            .store
            .user_certificates(filter, self.now(), page)
            .await?)
    }

    /// How many login certificates in each state, of those `reach` shows the caller.
    ///
    /// # Errors
    /// Store errors.
    pub async fn login_certificate_stats(
        &self,
        principal: &Principal,
        reach: Reach,
    ) -> Result<UserCertificateStats> {
        let now = self.now();
        Ok(self
            .store
            .user_certificate_stats(self.reach_user(principal, reach), now, now + SOON)
            .await?)
    }

    /// The one user whose certificates a listing shows, or `None` for everyone's. A caller
    /// without an account (the command line) holds every permission.
    fn reach_user(&self, principal: &Principal, reach: Reach) -> Option<i64> {
        let everyone = match reach {
            Reach::Own => false,
            Reach::Anyone(permission) => principal.can(permission),
        };
        if everyone {
            None
        } else {
            Some(principal.user.as_ref().map_or(-1, |u| u.id))
        }
    }

    /// Lets login certificate `id` log in, or not. Audited.
    ///
    /// # Errors
    /// As [`Self::login_certificate`]; [`Error::Forbidden`] for an API key turning one on.
    pub async fn enable_login_certificate(
        &self,
        principal: &Principal,
        id: i64,
        enabled: bool,
        reach: Reach,
    ) -> Result<UserCertificateRow> {
        if enabled {
            principal.require_session("turning a login certificate on")?;
        }
        let row = self.login_certificate(principal, id, reach).await?;
        let mut tx = self.store.begin_write().await?;
        tx.set_user_certificate_enabled(id, enabled).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                if enabled {
                    "login_certificate_enabled"
                } else {
                    "login_certificate_disabled"
                },
                "user_certificate",
                id,
                format!("'{}' of user '{}'", row.name, row.username),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.stored_login_certificate(id).await
    }

    /// Revokes login certificate `id` through the revocation pipeline (CRL and OCSP show it).
    ///
    /// # Errors
    /// As [`Self::login_certificate`] and [`Self::revoke`].
    pub async fn revoke_login_certificate(
        &self,
        principal: &Principal,
        id: i64,
        reason: RevocationReason,
        reach: Reach,
    ) -> Result<UserCertificateRow> {
        if reason == RevocationReason::RemoveFromCrl {
            return Err(Error::Invalid(
                "a login certificate is not released from hold: make a new one".into(),
            ));
        }
        let row = self.login_certificate(principal, id, reach).await?;
        self.revoke_for(principal, row.certificate.id, reason, None, None)
            .await?;
        self.stored_login_certificate(id).await
    }

    /// Ends login certificate `id`: revoked (cessation of operation) unless it already is, and
    /// unlinked. The certificate stays in the inventory, as everything a CA issued does.
    ///
    /// # Errors
    /// As [`Self::revoke_login_certificate`].
    pub async fn delete_login_certificate(
        &self,
        principal: &Principal,
        id: i64,
        reach: Reach,
    ) -> Result<()> {
        let row = self.login_certificate(principal, id, reach).await?;
        if CertificateState::of(
            row.certificate.status,
            row.certificate.cert.not_after,
            self.now(),
        ) == CertificateState::Active
        {
            self.revoke_for(
                principal,
                row.certificate.id,
                RevocationReason::CessationOfOperation,
                Some("login certificate deleted"),
                None,
            )
            .await?;
        }
        let mut tx = self.store.begin_write().await?;
        tx.delete_user_certificate(id).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "login_certificate_deleted",
                "user_certificate",
                id,
                format!(
                    "'{}' of user '{}' (certificate {} stays in the inventory, revoked)",
                    row.name, row.username, row.certificate.id
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The private key of login certificate `id`, for its owner only (in a login session),
    /// when certmint holds it. Audited.
    ///
    /// # Errors
    /// As [`Self::login_certificate`]; [`Error::Forbidden`] for an API key or someone else's
    /// certificate; [`Error::NotFound`] for a key certmint does not hold; store errors.
    pub async fn login_certificate_key(
        &self,
        principal: &Principal,
        id: i64,
        reach: Reach,
    ) -> Result<(UserCertificateRow, PrivateKey)> {
        let row = self.login_certificate(principal, id, reach).await?;
        if principal.user.as_ref().is_none_or(|u| u.id != row.user_id) {
            return Err(Error::Forbidden(format!(
                "login certificate {id} logs user '{}' in: its key goes to that user only",
                row.username
            )));
        }
        principal.require_session("fetching a login certificate's key")?;
        let key = self
            .certificate_key_for(principal, row.certificate.id)
            .await?;
        Ok((row, key))
    }

    /// Refuses the key of certificate `id` to anyone but its owner when it is a login
    /// certificate: whoever holds it logs in as its owner.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for someone else's login certificate; store errors.
    pub(crate) async fn guard_login_key(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<()> {
        match self.store.user_certificate_of(id).await? {
            Some(link) if principal.user.as_ref().is_none_or(|u| u.id != link.user_id) => {
                Err(Error::Forbidden(format!(
                    "certificate {id} logs user '{}' in: its key goes to that user only",
                    link.username
                )))
            }
            _ => Ok(()),
        }
    }

    /// Logs in the user a TLS client certificate belongs to. The certificate must come from a
    /// CA the settings trust, be valid and unrevoked in the inventory, and be linked to an
    /// enabled user (or, with e-mail mapping, name exactly one enabled user's address). Every
    /// refusal is audited with its reason. The session opens through the one login pipeline,
    /// so a second factor is asked for as for a password.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] saying why the certificate does not log in; store errors.
    pub async fn login_with_certificate(
        &self,
        der: Option<&[u8]>,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let (user, link) = match self.certificate_user(der).await {
            Ok(found) => found,
            Err(Error::Forbidden(reason) | Error::Unauthorized(reason)) => {
                self.record_failure(None, "client certificate", origin, &reason)
                    .await?;
                return Err(Error::Unauthorized(reason));
            }
            Err(other) => return Err(other),
        };
        let step = self
            .open_session(user, LoginMethod::ClientCertificate, origin)
            .await?;
        if let Some(id) = link {
            let mut tx = self.store.begin_write().await?;
            tx.touch_user_certificate(id, self.now()).await?;
            tx.commit().await?;
        }
        Ok(step)
    }

    /// The user certificate `der` logs in, and the link that says so (none for an e-mail
    /// match).
    async fn certificate_user(&self, der: Option<&[u8]>) -> Result<(UserRow, Option<i64>)> {
        let settings = self.mtls_settings().await?;
        if !settings.enabled {
            return Err(Error::Unauthorized(
                "certificate login is turned off".into(),
            ));
        }
        let der = der.ok_or_else(|| {
            Error::Unauthorized(
                "no client certificate: present one in the TLS handshake (HTTPS)".into(),
            )
        })?;
        let mut cas = Vec::new();
        for id in settings.login_ca_ids() {
            if let Some(ca) = self.store.ca(CaId(id)).await? {
                cas.push(ca);
            }
        }
        let checked = self.check_client_certificate(der, &cas).await?;
        let row = checked.row.ok_or_else(|| {
            Error::Unauthorized(
                "the client certificate is not in certmint's inventory, so its revocation \
                 cannot be checked"
                    .into(),
            )
        })?;
        if let Some(link) = self.store.user_certificate_of(row.id).await? {
            if !link.enabled {
                return Err(Error::Unauthorized(format!(
                    "login certificate '{}' is turned off",
                    link.name
                )));
            }
            let user = self.store.user(link.user_id).await?.ok_or_else(|| {
                Error::Unauthorized("the certificate's user no longer exists".into())
            })?;
            return Ok((user, Some(link.id)));
        }
        if settings.map_by_email {
            let emails = checked
                .info
                .sans
                .iter()
                .filter_map(|san| san.strip_prefix("email:"));
            let mut found = Vec::new();
            for email in emails {
                found.extend(self.store.enabled_users_by_email(email).await?);
            }
            found.sort_by_key(|u| u.id);
            found.dedup_by_key(|u| u.id);
            if let [user] = found.as_slice() {
                return Ok((user.clone(), None));
            }
            if found.len() > 1 {
                return Err(Error::Unauthorized(
                    "the client certificate's e-mail names more than one user".into(),
                ));
            }
        }
        Err(Error::Unauthorized(
            "the client certificate is not registered to any user".into(),
        ))
    }
}
