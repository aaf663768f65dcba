//! The HTTPS listener's own certificate.
//!
//! At first start each node makes one for itself: issued by the default CA through the
//! issuance pipeline, or self-signed when no CA can issue (the default CA was deactivated,
//! say), and kept in its data directory. An administrator may then replace it for every node
//! at once: regenerate it from the default CA, or apply a certificate and key brought from
//! elsewhere. The replacement lives in the database (`settings`, its key sealed under the
//! master key with the same vault context as the file's), so every node serving that database
//! takes it up while serving, and again after a restart. Each of these steps is audited.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pki::{
    DistinguishedName, ExtendedKeyUsage, KeyType, KeyUsage, PrivateKey, SubjectAltName,
    TlsIdentity, inspect,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::{Authority, Error, IssueRequest, KeySource, Permission, Principal, Result};
use store::{CaId, CertificateSource};

/// Days of validity of the HTTPS listener's certificate (the CA/Browser Forum's 397-day cap).
const LISTENER_DAYS: i64 = 397;

/// The vault context of the listener's sealed key, in the data directory and the database.
pub const LISTENER_KEY_CONTEXT: &str = "https-listener-key";

/// The settings key of the certificate every node serves.
const SHARED_KEY: &str = "https_listener";

/// Names a regenerated certificate may carry.
const MAX_NAMES: usize = 100;

/// Certificates an applied chain may hold: a leaf and its intermediates, never a bundle of
/// everything.
const MAX_CHAIN: usize = 8;

/// Where the certificate the listener serves came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerSource {
    /// The node's own, made at its first start and kept in its data directory.
    File,
    /// Regenerated from the default CA, for every node.
    Generated,
    /// Applied by an administrator, for every node.
    Uploaded,
}

impl ListenerSource {
    /// `file`, `generated` or `uploaded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Generated => "generated",
            Self::Uploaded => "uploaded",
        }
    }
}

/// A certificate chain for the HTTPS listener and its private key.
pub struct ListenerIdentity {
    /// DER, the listener's own certificate first, then its issuers.
    pub chain: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8_der: Zeroizing<Vec<u8>>,
    /// Where it came from.
    pub source: ListenerSource,
}

impl std::fmt::Debug for ListenerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerIdentity")
            .field("certificates", &self.chain.len())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ListenerIdentity {
    /// The chain from a PEM file and the key sealed beside it, as made at first start.
    ///
    /// # Errors
    /// [`Error::Invalid`] for PEM without a certificate, or a key that does not open under
    /// this master key.
    pub fn from_files(chain_pem: &[u8], sealed_key: &[u8], vault: &crate::Vault) -> Result<Self> {
        let chain = pki::bundle::read(chain_pem, None)?.certificates;
        if chain.is_empty() {
            return Err(Error::Invalid("the file holds no certificate".into()));
        }
        Ok(Self {
            chain,
            key_pkcs8_der: vault.open(sealed_key, LISTENER_KEY_CONTEXT)?,
            source: ListenerSource::File,
        })
    }

    /// SHA-256 of the listener's own certificate, lower-case hex.
    pub fn fingerprint_sha256(&self) -> String {
        use sha2::Digest as _;
        self.chain
            .first()
            .map(|leaf| hex::encode(sha2::Sha256::digest(leaf)))
            .unwrap_or_default()
    }

    /// The chain and key as rustls serves them, the key checked against the certificate.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a key rustls cannot sign with or that is not the certificate's.
    pub fn certified_key(&self) -> Result<CertifiedKey> {
        let chain = self
            .chain
            .iter()
            .map(|der| CertificateDer::from(der.clone()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8_der.to_vec()));
        CertifiedKey::from_der(chain, key, &rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| Error::Invalid(format!("the TLS stack cannot serve this key: {e}")))
    }
}

/// What the listener serves, for people.
#[derive(Debug)]
pub struct ListenerInfo {
    /// The listener's own certificate.
    pub certificate: inspect::Certificate,
    /// Certificates served in all, its own included.
    pub chain_length: usize,
    /// Where it came from.
    pub source: ListenerSource,
    /// The certmint CA that signed it, when one did.
    pub issuer_ca: Option<(CaId, String)>,
}

/// What a regenerated listener certificate names; absent fields come from the one served.
#[derive(Debug, Clone, Default)]
pub struct ListenerRequest {
    /// The subject's common name; the first name otherwise.
    pub common_name: Option<String>,
    /// DNS names and IP addresses.
    pub sans: Option<Vec<String>>,
    /// 1 to 397 days; 397 when absent (less when the CA expires sooner).
    pub validity_days: Option<i64>,
}

/// The key of the listener certificate all nodes share, sealed in its setting.
pub(crate) const SEALED_SHARED_LISTENER_KEY: crate::sealed_settings::SealedSetting =
    crate::sealed_settings::SealedSetting {
        kind: "https_listener_shared_key",
        label: "shared HTTPS listener key",
        key: SHARED_KEY,
        field: "sealed_key",
        context: LISTENER_KEY_CONTEXT,
    };

/// The listener identity as the database keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct SharedListener {
    source: ListenerSource,
    fingerprint_sha256: String,
    chain_pem: String,
    /// The key sealed under the master key, base64.
    sealed_key: String,
}

impl Authority {
    /// The HTTPS listener's certificate and key for `names` (DNS names or IP addresses):
    /// issued by the default CA, or self-signed, audited as `listener_certificate_self_signed`
    /// with the reason, when no CA can issue it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no names or a name that is neither a DNS name nor an IP address;
    /// [`Error::Internal`] when neither way gives a certificate; store errors.
    pub async fn listener_identity(&self, names: &[String]) -> Result<TlsIdentity> {
        let why = match self
            .issue_listener_identity(None, names, LISTENER_DAYS)
            .await
        {
            Ok((chain, key)) => {
                return Ok(TlsIdentity {
                    cert_pem: pki::bundle::certificates_pem(
                        &chain.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                    ),
                    key_pkcs8_der: key.pkcs8_der().to_vec(),
                });
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(reason = %why, "no CA can issue the HTTPS certificate; using a self-signed one");
        let identity = pki::self_signed_tls(
            names,
            self.now(),
            LISTENER_DAYS,
            crate::token::random_bytes::<16>()?,
        )?;
        let der = pki::bundle::read(identity.cert_pem.as_bytes(), None)?
            .certificates
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Internal("the self-signed certificate did not read back".into())
            })?;
        let info = inspect::Certificate::parse(&der)?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            &Principal::local("system"),
            Event::new(
                "listener_certificate_self_signed",
                "certificate",
                "",
                format!(
                    "'{}' (serial {}, SHA-256 {}): {why}",
                    info.subject, info.serial, info.fingerprint_sha256
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(identity)
    }

    /// The listener identity every node serves, when an administrator set one and it is not
    /// the one whose fingerprint is `serving` already.
    ///
    /// # Errors
    /// [`Error::Internal`] for a stored identity that does not read back; the vault's errors
    /// for a key sealed under another master key; store errors.
    pub async fn shared_listener_identity(
        &self,
        serving: Option<&str>,
    ) -> Result<Option<ListenerIdentity>> {
        let Some(value) = self.store.setting(SHARED_KEY).await? else {
            return Ok(None);
        };
        let stored: SharedListener = serde_json::from_value(value)
            .map_err(|e| Error::Internal(format!("stored listener certificate: {e}")))?;
        if serving == Some(stored.fingerprint_sha256.as_str()) {
            return Ok(None);
        }
        let sealed = BASE64
            .decode(&stored.sealed_key)
            .map_err(|e| Error::Internal(format!("stored listener key: {e}")))?;
        let chain = pki::bundle::read(stored.chain_pem.as_bytes(), None)
            .map_err(|e| Error::Internal(format!("stored listener certificate: {e}")))?
            .certificates;
        Ok(Some(ListenerIdentity {
            chain,
            key_pkcs8_der: self.vault.open(&sealed, LISTENER_KEY_CONTEXT)?,
            source: stored.source,
        }))
    }

    /// What `serving` is: its certificate read, where it came from, and which certmint CA
    /// signed it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn listener_info(
        &self,
        principal: &Principal,
        serving: &ListenerIdentity,
    ) -> Result<ListenerInfo> {
        principal.require(Permission::AdminSystem, "reading the HTTPS certificate")?;
        self.describe_listener(serving).await
    }

    async fn describe_listener(&self, identity: &ListenerIdentity) -> Result<ListenerInfo> {
        let leaf = identity
            .chain
            .first()
            .ok_or_else(|| Error::Internal("a listener identity without a certificate".into()))?;
        let certificate = inspect::Certificate::parse(leaf)?;
        let issuer_ca = self.signing_ca(&certificate).await?;
        Ok(ListenerInfo {
            certificate,
            chain_length: identity.chain.len(),
            source: identity.source,
            issuer_ca,
        })
    }

    /// Issues a new listener certificate from the default CA, through the issuance pipeline,
    /// and makes it the one every node serves. Names and common name not given are those of
    /// `serving`. Audited as `https_certificate_regenerated`. Returns the new identity, for
    /// this node to serve at once, and its description.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a bad name, no
    /// name at all, or a validity outside 1 to 397 days; as [`Authority::issue`].
    pub async fn regenerate_listener(
        &self,
        principal: &Principal,
        request: ListenerRequest,
        serving: &ListenerIdentity,
    ) -> Result<(ListenerIdentity, ListenerInfo)> {
        principal.require(
            Permission::AdminSystem,
            "regenerating the HTTPS certificate",
        )?;
        let days = request.validity_days.unwrap_or(LISTENER_DAYS);
        if !(1..=LISTENER_DAYS).contains(&days) {
            return Err(Error::Invalid(format!(
                "validity_days must be 1 to {LISTENER_DAYS}, not {days}"
            )));
        }
        let current = serving
            .chain
            .first()
            .map(|der| inspect::Certificate::parse(der))
            .transpose()?;
        let mut names = match request.sans {
            Some(sans) if sans.len() > MAX_NAMES => {
                return Err(Error::Invalid(format!(
                    "sans: at most {MAX_NAMES} names, not {}",
                    sans.len()
                )));
            }
            Some(sans) if sans.is_empty() => {
                return Err(Error::Invalid(
                    "sans: name at least one, or leave sans out to keep the current names".into(),
                ));
            }
            Some(sans) => sans,
            None => current.as_ref().map_or_else(Vec::new, |c| {
                c.sans
                    .iter()
                    .filter_map(|s| s.strip_prefix("dns:").or_else(|| s.strip_prefix("ip:")))
                    .map(str::to_owned)
                    .collect()
            }),
        };
        let common_name = request
            .common_name
            .or_else(|| names.first().cloned())
            .or_else(|| current.and_then(|c| c.common_name));
        let Some(common_name) = common_name.filter(|cn| !cn.trim().is_empty()) else {
            return Err(Error::Invalid(
                "the HTTPS certificate needs a name: send common_name or sans".into(),
            ));
        };
        let cn_san = SubjectAltName::parse(&common_name)?;
        if !names
            .iter()
            .any(|n| SubjectAltName::parse(n).is_ok_and(|san| san == cn_san))
        {
            names.insert(0, common_name.clone());
        }
        let (chain, key) = self
            .issue_listener_identity(Some(&common_name), &names, days)
            .await?;
        let identity = ListenerIdentity {
            chain,
            key_pkcs8_der: Zeroizing::new(key.pkcs8_der().to_vec()),
            source: ListenerSource::Generated,
        };
        self.share_listener(principal, &identity, "https_certificate_regenerated")
            .await?;
        let info = self.describe_listener(&identity).await?;
        Ok((identity, info))
    }

    /// Makes an administrator's certificate chain (PEM, its own certificate first, then each
    /// issuer) and private key (PEM) the ones every node serves, after checking that the key
    /// is the certificate's, that the certificate is valid now and fit for a TLS server, and
    /// that each certificate was signed by the next. Audited as `https_certificate_applied`.
    /// Returns the identity, for this node to serve at once, and its description.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] saying which check
    /// failed; store errors.
    pub async fn apply_listener(
        &self,
        principal: &Principal,
        certificate: &str,
        private_key: &str,
    ) -> Result<(ListenerIdentity, ListenerInfo)> {
        principal.require(Permission::AdminSystem, "applying an HTTPS certificate")?;
        let field = |name: &str, e: pki::Error| Error::Invalid(format!("{name}: {e}"));
        let bundle =
            pki::bundle::read(certificate.as_bytes(), None).map_err(|e| field("certificate", e))?;
        if !bundle.private_keys.is_empty() || !bundle.csrs.is_empty() {
            return Err(Error::Invalid(
                "certificate: send only certificates here, the key in private_key".into(),
            ));
        }
        if bundle.certificates.is_empty() || bundle.certificates.len() > MAX_CHAIN {
            return Err(Error::Invalid(format!(
                "certificate: send 1 to {MAX_CHAIN} certificates, not {}",
                bundle.certificates.len()
            )));
        }
        let key =
            PrivateKey::parse(private_key.as_bytes(), None).map_err(|e| field("private_key", e))?;
        let chain = bundle
            .certificates
            .iter()
            .map(|der| inspect::Certificate::parse(der))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| field("certificate", e))?;
        let leaf = &chain[0];
        if key.public_key_der() != leaf.public_key_der {
            return Err(Error::Invalid(format!(
                "the private key does not belong to '{}': their public keys differ",
                leaf.subject
            )));
        }
        let now = self.now();
        if leaf.not_after <= now {
            return Err(Error::Invalid(format!(
                "'{}' expired at {}",
                leaf.subject,
                crate::rfc3339(leaf.not_after)
            )));
        }
        if leaf.not_before > now {
            return Err(Error::Invalid(format!(
                "'{}' is not valid before {}",
                leaf.subject,
                crate::rfc3339(leaf.not_before)
            )));
        }
        if leaf.is_ca {
            return Err(Error::Invalid(format!(
                "'{}' is a CA certificate, not a server's",
                leaf.subject
            )));
        }
        let server_auth = [ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::Any];
        if !leaf.extended_key_usage.is_empty()
            && !leaf
                .extended_key_usage
                .iter()
                .any(|u| server_auth.contains(u))
        {
            return Err(Error::Invalid(format!(
                "'{}' is not for TLS servers (its extended key usage lacks serverAuth)",
                leaf.subject
            )));
        }
        if let Some(i) = (1..chain.len()).find(|&i| !chain[i - 1].is_issued_by(&chain[i])) {
            return Err(Error::Invalid(format!(
                "certificate {} ('{}') did not sign certificate {i}: send the server's \
                 certificate first, then each issuer in turn",
                i + 1,
                chain[i].subject
            )));
        }
        let identity = ListenerIdentity {
            chain: bundle.certificates,
            key_pkcs8_der: Zeroizing::new(key.pkcs8_der().to_vec()),
            source: ListenerSource::Uploaded,
        };
        identity.certified_key()?;
        self.share_listener(principal, &identity, "https_certificate_applied")
            .await?;
        let info = self.describe_listener(&identity).await?;
        Ok((identity, info))
    }

    /// Stores `identity` as the one every node serves, audited as `action` in the same
    /// transaction.
    async fn share_listener(
        &self,
        principal: &Principal,
        identity: &ListenerIdentity,
        action: &'static str,
    ) -> Result<()> {
        let leaf = identity
            .chain
            .first()
            .ok_or_else(|| Error::Internal("a listener identity without a certificate".into()))?;
        let info = inspect::Certificate::parse(leaf)?;
        let stored = SharedListener {
            source: identity.source,
            fingerprint_sha256: info.fingerprint_sha256.clone(),
            chain_pem: pki::bundle::certificates_pem(
                &identity.chain.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            ),
            sealed_key: BASE64.encode(
                self.vault
                    .seal(&identity.key_pkcs8_der, LISTENER_KEY_CONTEXT)?,
            ),
        };
        let value = serde_json::to_value(&stored)
            .map_err(|e| Error::Internal(format!("listener certificate: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(SHARED_KEY, &value, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                action,
                "settings",
                SHARED_KEY,
                format!(
                    "'{}' (serial {}, SHA-256 {}, valid until {}), served by every node",
                    info.subject,
                    info.serial,
                    info.fingerprint_sha256,
                    crate::rfc3339(info.not_after)
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The CA certmint holds a key for that signed `certificate`, if one did.
    async fn signing_ca(
        &self,
        certificate: &inspect::Certificate,
    ) -> Result<Option<(CaId, String)>> {
        Ok(self
            .cas()
            .await?
            .into_iter()
            .filter(|ca| ca.key_id.is_some())
            .find(|ca| {
                inspect::Certificate::parse(&ca.cert.der)
                    .is_ok_and(|c| certificate.is_issued_by(&c))
            })
            .map(|ca| (ca.id, ca.name)))
    }

    /// Issues a listener certificate from the default CA, through the same pipeline as every
    /// other certificate. It is the system's own certificate whoever asked for it (what allows
    /// an administrator to ask is `admin:system`, not `write:certificates`), so the system
    /// issues it. Returns the chain (leaf first, root left out) and the key.
    ///
    /// # Errors
    /// As [`Authority::issue`]; [`Error::Invalid`] for a name that is neither a DNS name nor an
    /// IP address.
    async fn issue_listener_identity(
        &self,
        common_name: Option<&str>,
        names: &[String],
        days: i64,
    ) -> Result<(Vec<Vec<u8>>, PrivateKey)> {
        let sans = names
            .iter()
            .map(|n| SubjectAltName::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut subject = DistinguishedName::new();
        subject.set(
            pki::NameAttribute::CommonName,
            common_name.unwrap_or_else(|| names.first().map_or("certmint", String::as_str)),
        )?;
        let ca = self.default_ca().await?;
        let days = days.min((ca.cert.not_after - self.now()).whole_days());
        let issued = self
            .issue(
                &Principal::local("system"),
                IssueRequest {
                    ca_id: Some(ca.id),
                    subject,
                    sans,
                    key: KeySource::Generate(Some(KeyType::EcP256)),
                    template_id: None,
                    validity_days: Some(days),
                    key_usage: Some(vec![KeyUsage::DigitalSignature]),
                    extended_key_usage: Some(vec![ExtendedKeyUsage::ServerAuth]),
                    description: Some("certmint HTTPS listener".into()),
                    source: CertificateSource::System,
                    renewed_from: None,
                },
            )
            .await?;
        let key = issued
            .key
            .ok_or_else(|| Error::Internal("the listener key was not generated".into()))?;
        let mut chain = vec![issued.certificate.cert.der];
        let above = self.ca_chain(ca.id).await?;
        chain.extend(
            above
                .into_iter()
                .filter(|der| inspect::Certificate::parse(der).is_ok_and(|c| !c.self_signed)),
        );
        Ok((chain, key))
    }
}
