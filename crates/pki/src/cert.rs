//! Building and signing certificates from a [`CertSpec`], conforming to RFC 5280.

use std::net::IpAddr;
use std::sync::Arc;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ANY_EXTENDED_KEY_USAGE, ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING,
    ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
};
use der::asn1::Ia5String;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies};

use crate::keys::{KeyType, spki_key_type};
use crate::lint::{Policy, Report};
use crate::name::{DistinguishedName, SubjectAltName, check_dns_name};
use crate::{Error, PrivateKey};

const ID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const ID_CE_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
const ID_PKIX_OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// Something that signs with a private key: a software key, or later an HSM. Certificates,
/// CRLs and OCSP responses are all signed through this.
pub trait Signer: Send + Sync {
    /// The key's type, which fixes the signature algorithm.
    fn key_type(&self) -> KeyType;
    /// The public key as DER SubjectPublicKeyInfo.
    fn public_key_der(&self) -> Vec<u8>;
    /// Signs `message` (DER-encoded ECDSA signatures; PKCS#1 v1.5 SHA-256 for RSA).
    ///
    /// # Errors
    /// [`Error::Crypto`] when signing fails.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
    /// Whether signing waits on a device (an HSM): callers on async workers then sign on a
    /// blocking thread.
    fn on_device(&self) -> bool {
        false
    }
}

impl Signer for PrivateKey {
    fn key_type(&self) -> KeyType {
        PrivateKey::key_type(self)
    }

    fn public_key_der(&self) -> Vec<u8> {
        PrivateKey::public_key_der(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        rcgen::SigningKey::sign(self.rcgen(), message).map_err(Error::from)
    }
}

/// A key usage bit (RFC 5280 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// `digitalSignature`
    DigitalSignature,
    /// `nonRepudiation` / `contentCommitment`
    ContentCommitment,
    /// `keyEncipherment`
    KeyEncipherment,
    /// `dataEncipherment`
    DataEncipherment,
    /// `keyAgreement`
    KeyAgreement,
    /// `keyCertSign`
    KeyCertSign,
    /// `cRLSign`
    CrlSign,
    /// `encipherOnly`
    EncipherOnly,
    /// `decipherOnly`
    DecipherOnly,
}

impl KeyUsage {
    /// Every key usage, in bit order.
    pub const ALL: [KeyUsage; 9] = [
        Self::DigitalSignature,
        Self::ContentCommitment,
        Self::KeyEncipherment,
        Self::DataEncipherment,
        Self::KeyAgreement,
        Self::KeyCertSign,
        Self::CrlSign,
        Self::EncipherOnly,
        Self::DecipherOnly,
    ];

    /// The RFC 5280 name, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DigitalSignature => "digitalSignature",
            Self::ContentCommitment => "nonRepudiation",
            Self::KeyEncipherment => "keyEncipherment",
            Self::DataEncipherment => "dataEncipherment",
            Self::KeyAgreement => "keyAgreement",
            Self::KeyCertSign => "keyCertSign",
            Self::CrlSign => "cRLSign",
            Self::EncipherOnly => "encipherOnly",
            Self::DecipherOnly => "decipherOnly",
        }
    }

    /// Reads a name in camelCase or snake_case, case-insensitively.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the unknown usage and the accepted ones.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let key = name.replace(['_', '-', ' '], "").to_ascii_lowercase();
        if key == "contentcommitment" {
            return Ok(Self::ContentCommitment);
        }
        Self::ALL
            .into_iter()
            .find(|u| u.as_str().to_ascii_lowercase() == key)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown key usage '{name}'; expected one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }

    /// Whether a key of this type can perform this usage (RFC 5480 §3 for EC, RFC 8410 §5 for
    /// Ed25519: neither encrypts).
    pub fn fits(self, key_type: KeyType) -> bool {
        match key_type {
            KeyType::Rsa { .. } => !matches!(
                self,
                Self::KeyAgreement | Self::EncipherOnly | Self::DecipherOnly
            ),
            KeyType::EcP256 | KeyType::EcP384 => {
                !matches!(self, Self::KeyEncipherment | Self::DataEncipherment)
            }
            KeyType::Ed25519 => matches!(
                self,
                Self::DigitalSignature
                    | Self::ContentCommitment
                    | Self::KeyCertSign
                    | Self::CrlSign
            ),
        }
    }

    fn to_rcgen(self) -> rcgen::KeyUsagePurpose {
        use rcgen::KeyUsagePurpose as K;
        match self {
            Self::DigitalSignature => K::DigitalSignature,
            Self::ContentCommitment => K::ContentCommitment,
            Self::KeyEncipherment => K::KeyEncipherment,
            Self::DataEncipherment => K::DataEncipherment,
            Self::KeyAgreement => K::KeyAgreement,
            Self::KeyCertSign => K::KeyCertSign,
            Self::CrlSign => K::CrlSign,
            Self::EncipherOnly => K::EncipherOnly,
            Self::DecipherOnly => K::DecipherOnly,
        }
    }
}

/// An extended key usage (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtendedKeyUsage {
    /// `serverAuth`
    ServerAuth,
    /// `clientAuth`
    ClientAuth,
    /// `codeSigning`
    CodeSigning,
    /// `emailProtection`
    EmailProtection,
    /// `timeStamping`
    TimeStamping,
    /// `OCSPSigning`
    OcspSigning,
    /// `anyExtendedKeyUsage`
    Any,
    /// Any other purpose, by OID.
    Other(ObjectIdentifier),
}

impl ExtendedKeyUsage {
    /// The purposes known by name, as forms offer them; others are given by OID.
    pub const NAMED: [ExtendedKeyUsage; 7] = [
        Self::ServerAuth,
        Self::ClientAuth,
        Self::CodeSigning,
        Self::EmailProtection,
        Self::TimeStamping,
        Self::OcspSigning,
        Self::Any,
    ];

    /// The name the API writes (`serverAuth`, …), or the dotted OID.
    pub fn as_string(&self) -> String {
        match self {
            Self::ServerAuth => "serverAuth".into(),
            Self::ClientAuth => "clientAuth".into(),
            Self::CodeSigning => "codeSigning".into(),
            Self::EmailProtection => "emailProtection".into(),
            Self::TimeStamping => "timeStamping".into(),
            Self::OcspSigning => "OCSPSigning".into(),
            Self::Any => "anyExtendedKeyUsage".into(),
            Self::Other(oid) => oid.to_string(),
        }
    }

    /// The purpose's OID.
    pub fn oid(&self) -> ObjectIdentifier {
        match self {
            Self::ServerAuth => ID_KP_SERVER_AUTH,
            Self::ClientAuth => ID_KP_CLIENT_AUTH,
            Self::CodeSigning => ID_KP_CODE_SIGNING,
            Self::EmailProtection => ID_KP_EMAIL_PROTECTION,
            Self::TimeStamping => ID_KP_TIME_STAMPING,
            Self::OcspSigning => ID_KP_OCSP_SIGNING,
            Self::Any => ANY_EXTENDED_KEY_USAGE,
            Self::Other(oid) => *oid,
        }
    }

    /// The purpose with this OID.
    pub fn from_oid(oid: ObjectIdentifier) -> Self {
        Self::NAMED
            .into_iter()
            .find(|e| e.oid() == oid)
            .unwrap_or(Self::Other(oid))
    }

    /// Reads a name (camelCase or snake_case, case-insensitive) or a dotted OID.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the unknown purpose and the accepted ones.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let key = name.replace(['_', '-', ' '], "").to_ascii_lowercase();
        let aliases = [
            ("ocspsigning", Self::OcspSigning),
            ("any", Self::Any),
            ("email", Self::EmailProtection),
        ];
        if let Some((_, e)) = aliases.into_iter().find(|(a, _)| *a == key) {
            return Ok(e);
        }
        if let Some(e) = Self::NAMED
            .into_iter()
            .find(|e| e.as_string().to_ascii_lowercase() == key)
        {
            return Ok(e);
        }
        crate::oid::from_text(name).map(Self::Other).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown extended key usage '{name}'; expected one of {} or a dotted OID",
                Self::NAMED.map(|e| e.as_string()).join(", ")
            ))
        })
    }

    fn to_rcgen(&self) -> rcgen::ExtendedKeyUsagePurpose {
        use rcgen::ExtendedKeyUsagePurpose as E;
        match self {
            Self::ServerAuth => E::ServerAuth,
            Self::ClientAuth => E::ClientAuth,
            Self::CodeSigning => E::CodeSigning,
            Self::EmailProtection => E::EmailProtection,
            Self::TimeStamping => E::TimeStamping,
            Self::OcspSigning => E::OcspSigning,
            Self::Any => E::Any,
            Self::Other(oid) => E::Other(oid.arcs().map(u64::from).collect()),
        }
    }
}

/// A name constraint subtree (RFC 5280 §4.2.1.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subtree {
    /// A DNS domain and its subdomains.
    Dns(String),
    /// An email domain, mailbox or `.domain`.
    Email(String),
    /// An IP network.
    Ip {
        /// The network address.
        address: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
}

impl Subtree {
    /// Reads `dns:example.com`, `email:example.com` or `ip:10.0.0.0/8`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the bad value.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Invalid(format!(
                "name constraint '{text}' is not dns:, email: or ip:<net>/<len>"
            ))
        };
        let (kind, value) = text.split_once(':').ok_or_else(bad)?;
        match kind.trim().to_ascii_lowercase().as_str() {
            "dns" => {
                let domain = value.trim().trim_start_matches('.');
                Ok(Self::Dns(check_dns_name(domain, false)?))
            }
            "email" => {
                let value = value.trim();
                if value.is_empty() || !value.is_ascii() || value.contains(' ') {
                    return Err(bad());
                }
                Ok(Self::Email(value.to_owned()))
            }
            "ip" => {
                let (address, prefix) = value.trim().split_once('/').ok_or_else(bad)?;
                let address: IpAddr = address.parse().map_err(|_| bad())?;
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                let max = if address.is_ipv4() { 32 } else { 128 };
                if prefix > max {
                    return Err(bad());
                }
                Ok(Self::Ip { address, prefix })
            }
            _ => Err(bad()),
        }
    }

    /// The `kind:value` form.
    pub fn to_api_string(&self) -> String {
        match self {
            Self::Dns(d) => format!("dns:{d}"),
            Self::Email(e) => format!("email:{e}"),
            Self::Ip { address, prefix } => format!("ip:{address}/{prefix}"),
        }
    }

    fn to_rcgen(&self) -> rcgen::GeneralSubtree {
        match self {
            Self::Dns(d) => rcgen::GeneralSubtree::DnsName(d.clone()),
            Self::Email(e) => rcgen::GeneralSubtree::Rfc822Name(e.clone()),
            Self::Ip { address, prefix } => rcgen::GeneralSubtree::IpAddress(
                rcgen::CidrSubnet::from_addr_prefix(*address, *prefix),
            ),
        }
    }
}

/// Name constraints for a CA certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// Names the CA may certify.
    pub permitted: Vec<Subtree>,
    /// Names the CA may not certify.
    pub excluded: Vec<Subtree>,
}

/// Everything that goes into a certificate apart from the issuer.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Subject name; may be empty when there are SANs.
    pub subject: DistinguishedName,
    /// Subject alternative names.
    pub sans: Vec<SubjectAltName>,
    /// The subject's public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// Serial number (see [`crate::random::serial`]).
    pub serial: [u8; 16],
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// `Some` for a CA certificate, with its path length constraint.
    pub ca: Option<Option<u8>>,
    /// Key usages; usages the subject's key cannot perform are left out.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages (none: the extension is left out).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// OCSP responder URLs (AIA).
    pub ocsp_urls: Vec<String>,
    /// Issuer certificate URLs (AIA caIssuers).
    pub ca_issuer_urls: Vec<String>,
    /// Certificate policy OIDs.
    pub policies: Vec<ObjectIdentifier>,
    /// Name constraints (CA certificates only).
    pub name_constraints: Option<NameConstraints>,
    /// Adds id-pkix-ocsp-nocheck, for OCSP responder certificates (RFC 6960 §4.2.2.2.1).
    pub ocsp_no_check: bool,
}

impl CertSpec {
    /// A certificate for `public_key` named `subject`, valid from `not_before` to `not_after`,
    /// with nothing else: no SANs, usages, URLs, policies or constraints, and not a CA.
    pub fn new(
        subject: DistinguishedName,
        public_key: Vec<u8>,
        serial: [u8; 16],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        Self {
            subject,
            sans: Vec::new(),
            public_key,
            serial,
            not_before,
            not_after,
            ca: None,
            key_usage: Vec::new(),
            extended_key_usage: Vec::new(),
            crl_urls: Vec::new(),
            ocsp_urls: Vec::new(),
            ca_issuer_urls: Vec::new(),
            policies: Vec::new(),
            name_constraints: None,
            ocsp_no_check: false,
        }
    }
}

/// Who signs a new certificate.
pub enum Issuer<'a> {
    /// The certificate signs itself with this key, which must be the subject's.
    SelfSigned(&'a dyn Signer),
    /// Issued by this CA.
    Ca(&'a CaSigner),
}

/// A CA certificate with the key that signs under it, read once: a CA signs many
/// certificates, and reading its certificate again for each costs about as much as building
/// the new one.
pub struct CaSigner {
    info: crate::inspect::Certificate,
    /// The CA's name and key identifier as rcgen writes them into what it lays out.
    layout: rcgen::Issuer<'static, SubjectKey>,
    signer: Arc<dyn Signer>,
    /// The authority key identifier of every certificate it signs: its SKI, or, for a CA
    /// certificate without one, what rcgen derives from its key.
    key_id: Vec<u8>,
}

impl CaSigner {
    /// Pairs CA certificate `der` with `signer`, its key.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a certificate that cannot be read or is not a CA's, or a key that
    /// is not the certificate's.
    pub fn new(der: &[u8], signer: Arc<dyn Signer>) -> Result<Self, Error> {
        let info = crate::inspect::Certificate::parse(der)?;
        if !info.is_ca {
            return Err(Error::Invalid("the issuer is not a CA certificate".into()));
        }
        if info.public_key_der != signer.public_key_der() {
            return Err(Error::Invalid(
                "the signing key does not belong to the issuer certificate".into(),
            ));
        }
        let key = SubjectKey::new(&signer.public_key_der(), signer.key_type())?;
        let key_id = info
            .subject_key_id
            .clone()
            .unwrap_or_else(|| rcgen::CertificateParams::default().key_identifier(&key));
        let layout = rcgen::Issuer::from_ca_cert_der(&der.to_vec().into(), key)
            .map_err(|e| Error::Invalid(format!("unusable issuer certificate: {e}")))?;
        Ok(Self {
            info,
            layout,
            signer,
            key_id,
        })
    }

    /// What the CA certificate says.
    pub fn info(&self) -> &crate::inspect::Certificate {
        &self.info
    }

    /// The key identifier the CA's certificates and CRLs carry as their AKI.
    pub(crate) fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The CA's key.
    pub fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }
}

impl std::fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSigner")
            .field("subject", &self.info.subject)
            .finish_non_exhaustive()
    }
}

/// A certificate just built, with the fields certmint stores of it. They are known from the
/// spec, the issuer and rcgen's encoding rules, so issuance does not parse its own output back;
/// each equals what [`crate::inspect::Certificate::parse`] reads from `der` (the tests hold
/// the two to that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// The subject's common name.
    pub common_name: Option<String>,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial number, lower-case hex of its DER value.
    pub serial: String,
    /// Start of validity, to the second as encoded.
    pub not_before: OffsetDateTime,
    /// End of validity, to the second as encoded.
    pub not_after: OffsetDateTime,
    /// SANs as `kind:value`.
    pub sans: Vec<String>,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// The subject key's type.
    pub key_type: KeyType,
    /// Signature algorithm, as OpenSSL names it.
    pub signature_algorithm: String,
    /// Subject key identifier.
    pub subject_key_id: Vec<u8>,
    /// Authority key identifier (none on a self-signed certificate).
    pub authority_key_id: Option<Vec<u8>>,
    /// SHA-256 fingerprint of the DER, lower-case hex.
    pub fingerprint_sha256: String,
}

/// Builds the certificate `spec` describes, lints it under `policy` and signs it on behalf of
/// `issuer`: [`prepare`], [`Prepared::lint`] and [`Linted::sign`] in one call.
///
/// # Errors
/// As the three steps.
pub fn build(spec: &CertSpec, issuer: Issuer<'_>, policy: &Policy) -> Result<Built, Error> {
    prepare(spec, issuer)?.lint(policy)?.sign()
}

/// Lays out the certificate `spec` describes, to be signed on behalf of `issuer`.
///
/// Checks what RFC 5280 and sound CA practice require of the request: a subject or SANs;
/// validity that ends after it starts and not after the issuer's; an issuer that is a CA
/// allowed to sign certificates (and, for a CA certificate, whose path length allows one more
/// level); name constraints only on CA certificates. Adds SKI, AKI (from the issuer's SKI)
/// and the extensions the spec asks for. Nothing is signed yet: the result must be linted
/// before the key can sign it.
///
/// # Errors
/// [`Error::Invalid`] naming the rule broken.
pub fn prepare<'a>(spec: &CertSpec, issuer: Issuer<'a>) -> Result<Prepared<'a>, Error> {
    let subject_key = spki_key_type(&spec.public_key)?;
    if spec.subject.is_empty() && spec.sans.is_empty() {
        return Err(Error::Invalid(
            "a certificate needs a subject name or at least one SAN".into(),
        ));
    }
    if spec.not_after <= spec.not_before {
        return Err(Error::Invalid(
            "the validity must end after it starts".into(),
        ));
    }
    if spec.name_constraints.is_some() && spec.ca.is_none() {
        return Err(Error::Invalid(
            "name constraints belong on CA certificates only".into(),
        ));
    }
    if spec.ca.is_none() && spec.key_usage.contains(&KeyUsage::KeyCertSign) {
        return Err(Error::Invalid(
            "keyCertSign is for CA certificates only".into(),
        ));
    }

    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = spec.subject.to_rcgen()?;
    params.subject_alt_names = spec
        .sans
        .iter()
        .map(SubjectAltName::to_rcgen)
        .collect::<Result<_, _>>()?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&spec.serial));
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.is_ca = match spec.ca {
        Some(None) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
        Some(Some(n)) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(n)),
        None => rcgen::IsCa::ExplicitNoCa,
    };
    let asked: &[KeyUsage] = if spec.ca.is_some() && spec.key_usage.is_empty() {
        &[
            KeyUsage::DigitalSignature,
            KeyUsage::KeyCertSign,
            KeyUsage::CrlSign,
        ]
    } else {
        &spec.key_usage
    };
    // In bit order, as a parser reads them back.
    let usages: Vec<KeyUsage> = KeyUsage::ALL
        .into_iter()
        .filter(|u| asked.contains(u) && u.fits(subject_key))
        .collect();
    params.key_usages = usages.iter().copied().map(KeyUsage::to_rcgen).collect();
    params.extended_key_usages = spec
        .extended_key_usage
        .iter()
        .map(ExtendedKeyUsage::to_rcgen)
        .collect();
    params.name_constraints = spec
        .name_constraints
        .as_ref()
        .map(|nc| rcgen::NameConstraints {
            permitted_subtrees: nc.permitted.iter().map(Subtree::to_rcgen).collect(),
            excluded_subtrees: nc.excluded.iter().map(Subtree::to_rcgen).collect(),
        });
    if !spec.crl_urls.is_empty() {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: spec.crl_urls.clone(),
        }];
    }
    if let Some(aia) = authority_info_access(&spec.ocsp_urls, &spec.ca_issuer_urls)? {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                ID_PE_AUTHORITY_INFO_ACCESS,
                aia,
            ));
    }
    if !spec.policies.is_empty() {
        let policies = CertificatePolicies(
            spec.policies
                .iter()
                .map(|oid| PolicyInformation {
                    policy_identifier: *oid,
                    policy_qualifiers: None,
                })
                .collect(),
        );
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                ID_CE_CERTIFICATE_POLICIES,
                policies
                    .to_der()
                    .map_err(|e| Error::Invalid(format!("certificate policies: {e}")))?,
            ));
    }
    if spec.ocsp_no_check {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                ID_PKIX_OCSP_NOCHECK,
                vec![0x05, 0x00],
            ));
    }

    let subject = SubjectKey::new(&spec.public_key, subject_key)?;
    let subject_name = spec.subject.to_string();
    // rcgen lays the certificate out around a key that cannot sign: what it produces is the
    // TBS with an empty signature, which the linter reads before the real key sees it.
    let (unsigned, issuer_name, signer, authority_key_id) = match issuer {
        Issuer::SelfSigned(signer) => {
            if signer.public_key_der() != spec.public_key {
                return Err(Error::Invalid(
                    "a self-signed certificate must be signed by its own key".into(),
                ));
            }
            let layout = SubjectKey::new(&spec.public_key, signer.key_type())?;
            (
                params.self_signed(&layout)?,
                subject_name.clone(),
                signer,
                None,
            )
        }
        Issuer::Ca(ca) => {
            check_issuer(&ca.info, spec)?;
            params.use_authority_key_identifier_extension = true;
            (
                params.signed_by(&subject, &ca.layout)?,
                ca.info.subject.clone(),
                ca.signer.as_ref(),
                Some(ca.key_id.clone()),
            )
        }
    };
    let unsigned = Unsigned::from_der(unsigned.der())
        .map_err(|e| Error::Crypto(format!("the laid-out certificate does not decode: {e}")))?;
    let to_second = |t: OffsetDateTime| t - time::Duration::nanoseconds(i64::from(t.nanosecond()));
    Ok(Prepared {
        tbs: unsigned.tbs.to_der().map_err(encoding)?,
        algorithm: unsigned.algorithm.to_der().map_err(encoding)?,
        signer,
        usages,
        built: Built {
            der: Vec::new(),
            fingerprint_sha256: String::new(),
            subject: subject_name,
            common_name: spec
                .subject
                .get(crate::NameAttribute::CommonName)
                .map(str::to_owned),
            issuer: issuer_name,
            serial: serial_hex(&spec.serial),
            not_before: to_second(spec.not_before),
            not_after: to_second(spec.not_after),
            sans: spec
                .sans
                .iter()
                .map(SubjectAltName::to_api_string)
                .collect(),
            is_ca: spec.ca.is_some(),
            key_type: subject_key,
            signature_algorithm: signer.key_type().signature_algorithm_name().to_owned(),
            subject_key_id: params.key_identifier(&subject),
            authority_key_id,
        },
        spec: SpecCheck {
            public_key: spec.public_key.clone(),
            path_len: spec.ca.flatten(),
            extended_key_usage: spec.extended_key_usage.clone(),
            crl_urls: spec.crl_urls.clone(),
            ocsp_urls: spec.ocsp_urls.clone(),
            ca_issuer_urls: spec.ca_issuer_urls.clone(),
            policies: spec.policies.iter().map(ToString::to_string).collect(),
        },
    })
}

/// A certificate's outer SEQUENCE, read without looking inside its TBS.
#[derive(der::Sequence)]
struct Unsigned<'a> {
    tbs: der::asn1::AnyRef<'a>,
    algorithm: der::asn1::AnyRef<'a>,
    signature: der::asn1::BitStringRef<'a>,
}

/// What the spec asked that [`Built`] does not hold, kept to check the signed certificate.
#[derive(Debug)]
struct SpecCheck {
    public_key: Vec<u8>,
    path_len: Option<u8>,
    extended_key_usage: Vec<ExtendedKeyUsage>,
    crl_urls: Vec<String>,
    ocsp_urls: Vec<String>,
    ca_issuer_urls: Vec<String>,
    policies: Vec<String>,
}

/// A certificate laid out but not signed: only [`Prepared::lint`] leads on to a signature.
pub struct Prepared<'a> {
    tbs: Vec<u8>,
    algorithm: Vec<u8>,
    signer: &'a dyn Signer,
    usages: Vec<KeyUsage>,
    built: Built,
    spec: SpecCheck,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("subject", &self.built.subject)
            .field("serial", &self.built.serial)
            .finish_non_exhaustive()
    }
}

impl<'a> Prepared<'a> {
    /// The DER TBSCertificate the key will sign.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// Lints the TBS under `policy`.
    ///
    /// # Errors
    /// [`Error::Lint`] with every finding when any is an error: nothing is signed.
    pub fn lint(self, policy: &Policy) -> Result<Linted<'a>, Error> {
        let report = crate::lint::certificate(&self.tbs, self.signer.key_type(), policy);
        let report = report.into_result()?;
        Ok(Linted {
            prepared: self,
            report,
        })
    }
}

/// A certificate that passed the linter, ready for its signature.
#[derive(Debug)]
pub struct Linted<'a> {
    prepared: Prepared<'a>,
    report: Report,
}

impl Linted<'_> {
    /// The linter's warnings.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Signs the linted TBS, then reads the signed certificate back and checks it says what
    /// was asked (Boulder's `matchesCSR`): subject, SANs, serial, validity, key, CA flag,
    /// usages, URLs, policies and key identifiers.
    ///
    /// # Errors
    /// [`Error::Crypto`] when signing fails or the certificate does not match the request (a
    /// bug: it is not handed out).
    pub fn sign(self) -> Result<Built, Error> {
        let Prepared {
            tbs,
            algorithm,
            signer,
            usages,
            mut built,
            spec,
        } = self.prepared;
        let signature = signer.sign(&tbs)?;
        let signed = Unsigned {
            tbs: der::asn1::AnyRef::from_der(&tbs).map_err(encoding)?,
            algorithm: der::asn1::AnyRef::from_der(&algorithm).map_err(encoding)?,
            signature: der::asn1::BitStringRef::from_bytes(&signature).map_err(encoding)?,
        };
        built.der = signed.to_der().map_err(encoding)?;
        built.fingerprint_sha256 = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &built.der,
        ));
        check_signed(&built, &usages, &spec)?;
        Ok(built)
    }
}

/// Reads the signed certificate with the parser every other path uses and compares it with
/// what was asked.
fn check_signed(built: &Built, usages: &[KeyUsage], spec: &SpecCheck) -> Result<(), Error> {
    let read = crate::inspect::Certificate::parse(&built.der)
        .map_err(|e| Error::Crypto(format!("the signed certificate does not parse: {e}")))?;
    let checks: [(&str, bool); 16] = [
        ("subject", read.subject == built.subject),
        ("issuer", read.issuer == built.issuer),
        ("serial", read.serial == built.serial),
        ("notBefore", read.not_before == built.not_before),
        ("notAfter", read.not_after == built.not_after),
        ("subjectAltName", read.sans == built.sans),
        ("public key", read.public_key_der == spec.public_key),
        ("basicConstraints", read.is_ca == built.is_ca),
        (
            "pathLenConstraint",
            read.path_len == spec.path_len.map(u32::from),
        ),
        ("keyUsage", read.key_usage == usages),
        (
            "extKeyUsage",
            same_members(&read.extended_key_usage, &spec.extended_key_usage),
        ),
        ("CRL distribution points", read.crl_urls == spec.crl_urls),
        (
            "authority information access",
            read.ocsp_urls == spec.ocsp_urls && read.ca_issuer_urls == spec.ca_issuer_urls,
        ),
        ("certificate policies", read.policies == spec.policies),
        (
            "subjectKeyIdentifier",
            read.subject_key_id.as_ref() == Some(&built.subject_key_id),
        ),
        (
            "authorityKeyIdentifier",
            read.authority_key_id == built.authority_key_id,
        ),
    ];
    let mismatched: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    if mismatched.is_empty() {
        Ok(())
    } else {
        Err(Error::Crypto(format!(
            "the signed certificate does not match the request in: {}",
            mismatched.join(", ")
        )))
    }
}

fn same_members<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

fn encoding(e: der::Error) -> Error {
    Error::Crypto(format!("certificate encoding: {e}"))
}

/// The hex of `serial` as a positive DER INTEGER holds it, which is how rcgen writes it:
/// without leading zero bytes, with one where the top bit is set.
fn serial_hex(serial: &[u8]) -> String {
    let start = serial
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    let digits = &serial[start..];
    match digits.first() {
        Some(b) if b & 0x80 != 0 => format!("00{}", hex::encode(digits)),
        _ => hex::encode(digits),
    }
}

/// Checks that the issuer may sign `spec`.
fn check_issuer(info: &crate::inspect::Certificate, spec: &CertSpec) -> Result<(), Error> {
    if !info.key_usage.is_empty() && !info.key_usage.contains(&KeyUsage::KeyCertSign) {
        return Err(Error::Invalid(
            "the issuer's key usage does not allow signing certificates".into(),
        ));
    }
    if spec.ca.is_some() && info.path_len == Some(0) {
        return Err(Error::Invalid(
            "the issuer's path length constraint allows no further CA below it".into(),
        ));
    }
    if spec.not_after > info.not_after {
        return Err(Error::Invalid(format!(
            "the validity ends after the issuer's ({})",
            crate::inspect::rfc3339(info.not_after)
        )));
    }
    Ok(())
}

fn authority_info_access(ocsp: &[String], ca_issuers: &[String]) -> Result<Option<Vec<u8>>, Error> {
    let described = |method: ObjectIdentifier, url: &String| {
        Ia5String::new(url)
            .map(|u| AccessDescription {
                access_method: method,
                access_location: GeneralName::UniformResourceIdentifier(u),
            })
            .map_err(|_| Error::Invalid(format!("URL '{url}' must be ASCII")))
    };
    let entries = ocsp
        .iter()
        .map(|u| described(ID_AD_OCSP, u))
        .chain(ca_issuers.iter().map(|u| described(ID_AD_CA_ISSUERS, u)))
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Ok(None);
    }
    AuthorityInfoAccessSyntax(entries)
        .to_der()
        .map(Some)
        .map_err(|e| Error::Invalid(format!("authority information access: {e}")))
}

/// The raw subjectPublicKey bits and algorithm of a SubjectPublicKeyInfo, as rcgen wants them.
fn raw_public_key(spki_der: &[u8]) -> Result<Vec<u8>, Error> {
    use der::Decode;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::Invalid(format!("malformed public key: {e}")))?;
    spki.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::Invalid("malformed public key bit string".into()))
}

/// The subject's public key in the form rcgen writes into the certificate.
struct SubjectKey {
    raw: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl SubjectKey {
    fn new(spki_der: &[u8], key_type: KeyType) -> Result<Self, Error> {
        Ok(Self {
            raw: raw_public_key(spki_der)?,
            algorithm: key_type.signature_algorithm(),
        })
    }
}

impl rcgen::PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

/// rcgen signs what it lays out; certmint signs only what the linter passed. So rcgen gets a
/// key that answers with an empty signature, and the TBS is cut out of its result.
impl rcgen::SigningKey for SubjectKey {
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(Vec::new())
    }
}
