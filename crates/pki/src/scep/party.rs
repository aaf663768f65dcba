//! The two ends of a SCEP exchange, each an RSA key with its certificate, read once: the RA,
//! which decrypts requests and signs replies, and the requester ([`super::client`]), which does
//! the opposite. And certificates named in messages (signers, recipients), read from DER.

use aws_lc_rs::rsa::{Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use der::{Decode, Tag, TagNumber, Tagged};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::Digest;
use crate::{Error, KeyType, PrivateKey};

/// A certificate as messages name it: by issuer and serial number (RFC 5652
/// `IssuerAndSerialNumber`) or by subject key identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRef<'a> {
    /// The `IssuerAndSerialNumber` SEQUENCE, DER (tag and length included).
    IssuerAndSerial(&'a [u8]),
    /// The `[0] IMPLICIT SubjectKeyIdentifier` value.
    KeyId(&'a [u8]),
}

impl<'a> KeyRef<'a> {
    /// Reads a `SignerIdentifier` or `RecipientIdentifier` TLV.
    pub(crate) fn read(tlv: &'a [u8]) -> Result<Self, String> {
        let any = der::AnyRef::from_der(tlv).map_err(|e| format!("unreadable identifier: {e}"))?;
        match any.tag() {
            Tag::Sequence => Ok(Self::IssuerAndSerial(tlv)),
            Tag::ContextSpecific {
                constructed: false,
                number: TagNumber::N0,
            } => Ok(Self::KeyId(any.value())),
            other => Err(format!("a certificate identifier tagged {other}")),
        }
    }
}

/// A certificate with what messages use of it.
#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    pub(crate) der: Vec<u8>,
    /// Its `IssuerAndSerialNumber`, DER.
    pub(crate) issuer_and_serial: Vec<u8>,
    /// Its subject key identifier, if it has one.
    key_id: Option<Vec<u8>>,
    /// Its SubjectPublicKeyInfo, DER.
    pub(crate) spki: Vec<u8>,
    /// Its key's type; `None` for a key certmint does not use.
    pub(crate) key_type: Option<KeyType>,
    /// The subjectPublicKey BIT STRING's content: for RSA, the PKCS#1 RSAPublicKey.
    pub(crate) public_key: Vec<u8>,
}

impl Certificate {
    /// Reads a DER certificate that must fill `der`.
    pub(crate) fn parse(der: &[u8]) -> Result<Self, String> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("unexpected data after the certificate".into());
        }
        let tbs = &cert.tbs_certificate;
        let serial = super::tlv(Tag::Integer, tbs.raw_serial()).map_err(|e| e.to_string())?;
        let mut issuer_and_serial = tbs.issuer.as_raw().to_vec();
        issuer_and_serial.extend_from_slice(&serial);
        let issuer_and_serial =
            super::tlv(Tag::Sequence, &issuer_and_serial).map_err(|e| e.to_string())?;
        let key_id = cert
            .extensions()
            .iter()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        let spki = cert.public_key();
        Ok(Self {
            der: der.to_vec(),
            issuer_and_serial,
            key_id,
            spki: spki.raw.to_vec(),
            key_type: crate::keys::spki_key_type(spki.raw).ok(),
            public_key: spki.subject_public_key.data.to_vec(),
        })
    }

    /// Whether `id` names this certificate.
    pub(crate) fn is(&self, id: KeyRef<'_>) -> bool {
        match id {
            KeyRef::IssuerAndSerial(tlv) => tlv == self.issuer_and_serial,
            KeyRef::KeyId(key_id) => self.key_id.as_deref() == Some(key_id),
        }
    }

    pub(crate) fn is_rsa(&self) -> bool {
        matches!(self.key_type, Some(KeyType::Rsa { .. }))
    }
}

/// An RSA key and its certificate, ready to sign and to decrypt.
pub(crate) struct Party {
    pub(crate) certificate: Certificate,
    /// The certificate as the cms crate writes it into SignedData.
    pub(crate) x509: x509_cert::Certificate,
    /// The certificate's `IssuerAndSerialNumber`, as the cms crate writes it into SignerInfo.
    pub(crate) sid: cms::cert::IssuerAndSerialNumber,
    /// One signing key per digest: rcgen fixes the algorithm when the key is read.
    sha256: rcgen::KeyPair,
    sha512: rcgen::KeyPair,
    pub(crate) decrypting: Pkcs1PrivateDecryptingKey,
}

impl Party {
    /// `role` names the party in errors ("the RA", "the requester").
    pub(crate) fn new(cert_der: &[u8], key: &PrivateKey, role: &str) -> Result<Self, Error> {
        let invalid = |what: String| Error::Invalid(format!("{role}: {what}"));
        if !matches!(key.key_type(), KeyType::Rsa { .. }) {
            return Err(invalid(format!(
                "a {} key cannot be used for SCEP, which encrypts with RSA key transport: use \
                 an RSA key",
                key.key_type()
            )));
        }
        let certificate = Certificate::parse(cert_der).map_err(invalid)?;
        if certificate.spki != key.public_key_der() {
            return Err(invalid(
                "the private key does not belong to the certificate".into(),
            ));
        }
        let x509 = x509_cert::Certificate::from_der(cert_der)
            .map_err(|e| invalid(format!("unusable certificate: {e}")))?;
        let sid = cms::cert::IssuerAndSerialNumber::from_der(&certificate.issuer_and_serial)
            .map_err(|e| invalid(format!("unusable certificate: {e}")))?;
        let signing = |alg| {
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key.pkcs8_der().into(), alg)
                .map_err(|e| invalid(format!("unusable RSA key: {e}")))
        };
        let decrypting = PrivateDecryptingKey::from_pkcs8(key.pkcs8_der())
            .ok()
            .and_then(|k| Pkcs1PrivateDecryptingKey::new(k).ok())
            .ok_or_else(|| invalid("unusable RSA key".into()))?;
        Ok(Self {
            sha256: signing(&rcgen::PKCS_RSA_SHA256)?,
            sha512: signing(&rcgen::PKCS_RSA_SHA512)?,
            certificate,
            x509,
            sid,
            decrypting,
        })
    }

    /// Signs `message` with RSA PKCS#1 v1.5 and `digest`, which must be one
    /// [`Digest::for_signing`] gives.
    pub(crate) fn sign(&self, digest: Digest, message: &[u8]) -> Result<Vec<u8>, Error> {
        let key = match digest {
            Digest::Sha256 => &self.sha256,
            Digest::Sha512 => &self.sha512,
            Digest::Sha1 => {
                return Err(Error::Invalid(
                    "certmint cannot sign with SHA-1 (aws-lc-rs signs RSA with SHA-2 only)".into(),
                ));
            }
        };
        rcgen::SigningKey::sign(key, message).map_err(Error::from)
    }
}

/// The RA's identity: the certificate clients encrypt requests to and that signs replies, with
/// its RSA key, prepared once and shared by every request.
pub struct Ra {
    pub(crate) party: Party,
}

impl Ra {
    /// Reads the RA certificate (DER) and its private key.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a key that is not RSA (SCEP clients encrypt to the RA with RSA key
    /// transport), a certificate that does not parse, or a key that does not belong to it.
    pub fn new(cert_der: &[u8], key: &PrivateKey) -> Result<Self, Error> {
        Ok(Self {
            party: Party::new(cert_der, key, "the SCEP RA")?,
        })
    }

    /// The RA certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.party.certificate.der
    }
}

impl std::fmt::Debug for Ra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ra")
            .field(
                "issuer_and_serial",
                &hex::encode(&self.party.certificate.issuer_and_serial),
            )
            .finish_non_exhaustive()
    }
}
