//! Certificate signing requests (PKCS#10, RFC 2986): reading real-world CSRs, proof of
//! possession, and making CSRs for server-side keys.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use crate::cert::{ExtendedKeyUsage, KeyUsage};
use crate::keys::{KeyType, spki_key_type};
use crate::name::{DistinguishedName, SubjectAltName};
use crate::{Error, PrivateKey};

/// What a CSR asks for. Certmint builds certificates from policy and takes only the subject,
/// the SANs and the public key from a CSR; the requested usages are shown, not obeyed.
#[derive(Debug, Clone)]
pub struct Csr {
    /// The CSR, DER.
    pub der: Vec<u8>,
    /// The requested subject (attributes certmint does not know are left out).
    pub subject: DistinguishedName,
    /// The subject as RFC 4514 text, all attributes included.
    pub subject_text: String,
    /// The requested SANs.
    pub sans: Vec<SubjectAltName>,
    /// The public key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// The key's type.
    pub key_type: KeyType,
    /// Requested key usages.
    pub key_usage: Vec<KeyUsage>,
    /// Requested extended key usages.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Whether the CSR asks for a CA certificate.
    pub requests_ca: bool,
    /// The signature algorithm, as OpenSSL names it.
    pub signature_algorithm: String,
    /// The challenge password attribute (RFC 2985 §5.4.1), with which SCEP clients prove
    /// they may enroll. Kept out of `Debug`.
    pub challenge_password: Option<ChallengePassword>,
}

/// A CSR's challenge password: a secret, so `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengePassword(pub String);

impl std::fmt::Debug for ChallengePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengePassword(..)")
    }
}

impl Csr {
    /// Reads a CSR from PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`, text around it
    /// allowed) or DER, and verifies its signature.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the problem: not a CSR, malformed DER, a signature that does
    /// not verify (no proof of possession), an unsupported key algorithm, RSA under 2048 bits,
    /// a SAN that breaks the rules.
    pub fn parse(input: &[u8]) -> Result<Self, Error> {
        let blocks = crate::pem::find_blocks(input)?;
        let der = if crate::pem::looks_like_pem(input) {
            blocks
                .into_iter()
                .find(|b| b.label == "CERTIFICATE REQUEST" || b.label == "NEW CERTIFICATE REQUEST")
                .map(|b| b.der)
                .ok_or_else(|| Error::Invalid("no CERTIFICATE REQUEST PEM block found".into()))?
        } else {
            input.to_vec()
        };
        Self::from_der(&der)
    }

    /// Reads a DER CSR and verifies its signature.
    ///
    /// # Errors
    /// As [`Csr::parse`].
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (rest, csr) = X509CertificationRequest::from_der(der)
            .map_err(|e| Error::Invalid(format!("not a valid PKCS#10 CSR: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::Invalid(
                "the CSR has trailing bytes after its DER".into(),
            ));
        }
        let info = &csr.certification_request_info;
        let public_key_der = info.subject_pki.raw.to_vec();
        let key_type = spki_key_type(&public_key_der)?;
        csr.verify_signature().map_err(|_| {
            Error::Invalid(
                "the CSR signature does not verify: it was not signed by the key it carries".into(),
            )
        })?;
        let subject = DistinguishedName::from_x509(&info.subject)?;
        let mut parsed = Self {
            der: der.to_vec(),
            subject_text: subject.to_string(),
            subject,
            sans: Vec::new(),
            public_key_der,
            key_type,
            key_usage: Vec::new(),
            extended_key_usage: Vec::new(),
            requests_ca: false,
            signature_algorithm: crate::inspect::signature_name(
                &csr.signature_algorithm.algorithm.to_id_string(),
            ),
            challenge_password: None,
        };
        for attribute in csr.certification_request_info.iter_attributes() {
            if let ParsedCriAttribute::ChallengePassword(password) = attribute.parsed_attribute() {
                parsed.challenge_password = Some(ChallengePassword(password.0.clone()));
            }
        }
        for ext in csr.requested_extensions().into_iter().flatten() {
            parsed.read_extension(ext)?;
        }
        Ok(parsed)
    }

    fn read_extension(&mut self, ext: &ParsedExtension<'_>) -> Result<(), Error> {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    let text = crate::inspect::general_name(name);
                    if text.starts_with("dirname:")
                        || text.starts_with("other:")
                        || text.starts_with("ip:#")
                    {
                        return Err(Error::Invalid(format!(
                            "the CSR asks for a SAN certmint does not issue: {text}"
                        )));
                    }
                    self.sans.push(SubjectAltName::parse(&text)?);
                }
            }
            ParsedExtension::KeyUsage(ku) => self.key_usage = crate::inspect::key_usages(ku),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                self.extended_key_usage = crate::inspect::extended_key_usages(eku);
            }
            ParsedExtension::BasicConstraints(bc) => self.requests_ca = bc.ca,
            ParsedExtension::ParseError { error } => {
                return Err(Error::Invalid(format!("unreadable CSR extension: {error}")));
            }
            _ => {}
        }
        Ok(())
    }

    /// The CSR as PEM.
    pub fn to_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE REQUEST", &self.der)
    }
}

/// Makes a CSR for `key` with this subject and SANs (for keys generated on the server).
///
/// # Errors
/// [`Error::Invalid`] for a subject and SAN list that are both empty; [`Error::Crypto`] when
/// signing fails.
pub fn make(
    key: &PrivateKey,
    subject: &DistinguishedName,
    sans: &[SubjectAltName],
) -> Result<Csr, Error> {
    if subject.is_empty() && sans.is_empty() {
        return Err(Error::Invalid(
            "a CSR needs a subject name or at least one SAN".into(),
        ));
    }
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject.to_rcgen()?;
    params.subject_alt_names = sans
        .iter()
        .map(SubjectAltName::to_rcgen)
        .collect::<Result<_, _>>()?;
    let request = params.serialize_request(key.rcgen())?;
    Csr::from_der(request.der())
}
