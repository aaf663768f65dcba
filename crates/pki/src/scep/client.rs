//! The requester's side of SCEP: building pkiMessages and reading the CertRep that answers
//! them. For tests, benchmarks and certmint's own client; a server reads requests with
//! [`super::read_request`].

use const_oid::db::rfc5911::ID_DATA;
use der::Tag;
use time::{Duration, OffsetDateTime};

use super::attributes::{self, FAILURE, Outgoing, PENDING, SUCCESS};
use super::envelope::{self, Sealed};
use super::party::{Certificate, Party};
use super::{ContentCipher, Digest, FailInfo, MessageType, RequestContent, signed};
use crate::{DistinguishedName, Error, KeyType, PrivateKey};

/// The requester: its RSA key and the certificate that signs its requests (a transient
/// self-signed one from [`transient_certificate`], or for RenewalReq the certificate being
/// renewed), prepared once.
pub struct Requester {
    pub(super) party: Party,
}

impl Requester {
    /// Reads the requester's certificate (DER) and its private key.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a key that is not RSA, a certificate that does not parse, or a
    /// key that does not belong to it.
    pub fn new(cert_der: &[u8], key: &PrivateKey) -> Result<Self, Error> {
        Ok(Self {
            party: Party::new(cert_der, key, "the SCEP requester")?,
        })
    }

    /// The requester's certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.party.certificate.der
    }
}

impl std::fmt::Debug for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requester").finish_non_exhaustive()
    }
}

/// The RA certificate (from GetCACert) that requests are encrypted to and that signs replies,
/// read once.
#[derive(Debug, Clone)]
pub struct RaCertificate {
    certificate: Certificate,
}

impl RaCertificate {
    /// Reads the RA certificate, DER.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a certificate that does not parse or whose key is not RSA.
    pub fn new(der: &[u8]) -> Result<Self, Error> {
        let certificate = Certificate::parse(der)
            .map_err(|e| Error::Invalid(format!("the RA certificate: {e}")))?;
        envelope::encryption_key(&certificate)
            .map_err(|e| Error::Invalid(format!("the RA certificate: {e}")))?;
        Ok(Self { certificate })
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.certificate.der
    }
}

/// A request to build.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Its type: any but [`MessageType::CertRep`].
    pub message_type: MessageType,
    /// The transactionID: PrintableString characters (RFC 8894 suggests a hash of the public
    /// key in hex), the same for every message about one enrolment.
    pub transaction_id: &'a str,
    /// What it asks; the variant must fit the type ([`RequestContent::Csr`] for PKCSReq and
    /// RenewalReq, `IssuerAndSubject` for CertPoll, `IssuerAndSerial` for GetCert and GetCRL).
    pub content: &'a RequestContent,
    /// The digest to sign with: SHA-256 or SHA-512.
    pub digest: Digest,
    /// The cipher to encrypt the content with.
    pub cipher: ContentCipher,
}

/// A request built, with what its reply must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The pkiMessage, DER: the body of a POST to `?operation=PKIOperation`.
    pub der: Vec<u8>,
    /// Its transactionID.
    pub transaction_id: String,
    /// Its senderNonce: 16 random octets, which the reply's recipientNonce repeats.
    pub sender_nonce: Vec<u8>,
}

/// Builds and signs a request.
///
/// # Errors
/// [`Error::Invalid`] for a CertRep, content that does not fit the message type, a
/// transactionID a PrintableString cannot hold (or longer than 128 characters), or SHA-1 (not
/// signed by certmint); [`Error::Crypto`] when randomness, encryption or signing fails.
pub fn request(
    requester: &Requester,
    ra: &RaCertificate,
    message: &Message<'_>,
) -> Result<Sent, Error> {
    if message.digest == Digest::Sha1 {
        return Err(Error::Invalid(
            "certmint signs SCEP requests with SHA-256 or SHA-512, not SHA-1".into(),
        ));
    }
    if message.transaction_id.len() > attributes::MAX_TRANSACTION_ID {
        return Err(Error::Invalid(format!(
            "a transactionID of more than {} characters",
            attributes::MAX_TRANSACTION_ID
        )));
    }
    let content = encode_content(message.message_type, message.content)?;
    let envelope = envelope::encrypt(&content, &ra.certificate, message.cipher)?;
    let sender_nonce: [u8; 16] = crate::random::bytes()?;
    let attributes = Outgoing {
        message_type: message.message_type,
        transaction_id: message.transaction_id,
        sender_nonce: &sender_nonce,
        recipient_nonce: None,
        pki_status: None,
        fail_info: None,
    };
    let der = signed::sign(
        &requester.party,
        message.digest,
        &attributes,
        Some(&envelope),
    )?;
    Ok(Sent {
        der,
        transaction_id: message.transaction_id.to_owned(),
        sender_nonce: sender_nonce.to_vec(),
    })
}

/// The DER a request of `message_type` encrypts.
fn encode_content(message_type: MessageType, content: &RequestContent) -> Result<Vec<u8>, Error> {
    let encoding = |e: der::Error| Error::Invalid(format!("cannot encode the request: {e}"));
    match (message_type, content) {
        (MessageType::PkcsReq | MessageType::RenewalReq, RequestContent::Csr(csr)) => {
            Ok(csr.clone())
        }
        (MessageType::CertPoll, RequestContent::IssuerAndSubject { issuer, subject }) => {
            super::tlv(Tag::Sequence, &[issuer.as_slice(), subject].concat()).map_err(encoding)
        }
        (
            MessageType::GetCert | MessageType::GetCrl,
            RequestContent::IssuerAndSerial { issuer, serial },
        ) => {
            let serial = super::tlv(Tag::Integer, serial).map_err(encoding)?;
            super::tlv(Tag::Sequence, &[issuer.as_slice(), &serial].concat()).map_err(encoding)
        }
        (message_type, _) => Err(Error::Invalid(format!(
            "{} does not carry that content",
            message_type.name()
        ))),
    }
}

/// What a CertRep answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SUCCESS: the certificates and CRLs of the certs-only content (DER, in the order the
    /// reply holds them).
    Success {
        /// The certificates.
        certificates: Vec<Vec<u8>>,
        /// The CRLs (GetCRL).
        crls: Vec<Vec<u8>>,
        /// The cipher the content was encrypted with.
        cipher: ContentCipher,
    },
    /// PENDING: poll with CertPoll.
    Pending,
    /// FAILURE, and why.
    Failure(FailInfo),
}

/// A CertRep, its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRep {
    /// The digest the RA signed with.
    pub digest: Digest,
    /// The RA's senderNonce.
    pub sender_nonce: Vec<u8>,
    /// The answer.
    pub outcome: Outcome,
}

/// Reads the CertRep (DER) answering `sent`: checks that the RA signed it, that it repeats the
/// transactionID and the senderNonce (as recipientNonce), and decrypts a SUCCESS reply's
/// content with the requester's key.
///
/// # Errors
/// [`Error::Invalid`] saying what is wrong: not a CertRep, not signed by the RA or a signature
/// that does not verify, another transaction or nonce, a status or failInfo RFC 8894 does not
/// define, or content that does not decrypt or read.
pub fn read_cert_rep(
    der: &[u8],
    requester: &Requester,
    ra: &RaCertificate,
    sent: &Sent,
) -> Result<CertRep, Error> {
    let invalid = |what: String| Error::Invalid(format!("CertRep: {what}"));
    let message = signed::read(der).map_err(invalid)?;
    let signer = message
        .signer
        .as_ref()
        .ok_or_else(|| invalid("no signer".into()))?;
    if !ra.certificate.is(signer.sid) {
        return Err(invalid("not signed by the RA certificate".into()));
    }
    let digest = signer
        .verify(&ra.certificate)
        .map_err(|r| invalid(r.reason))?;
    let attributes = attributes::read(signer.signed_attrs).map_err(invalid)?;
    if attributes.message_type != Some(MessageType::CertRep.code()) {
        return Err(invalid(format!(
            "messageType {}",
            attributes.message_type.unwrap_or("(none)")
        )));
    }
    if attributes.transaction_id != Some(sent.transaction_id.as_str()) {
        return Err(invalid("another transactionID".into()));
    }
    if attributes.recipient_nonce != Some(sent.sender_nonce.as_slice()) {
        return Err(invalid(
            "the recipientNonce is not the request's senderNonce".into(),
        ));
    }
    let sender_nonce = attributes
        .sender_nonce
        .ok_or_else(|| invalid("no senderNonce".into()))?;
    if message.content_type != ID_DATA || attributes.content_type != Some(ID_DATA) {
        return Err(invalid("the signed content is not id-data".into()));
    }
    let content = message.content.unwrap_or_default();
    if attributes.message_digest != Some(digest.hash(content).as_ref()) {
        return Err(invalid(
            "the messageDigest does not match the content".into(),
        ));
    }
    let outcome = match attributes.pki_status {
        Some(SUCCESS) => success(message.content, requester).map_err(invalid)?,
        Some(PENDING) => Outcome::Pending,
        Some(FAILURE) => Outcome::Failure(
            attributes
                .fail_info
                .and_then(FailInfo::from_code)
                .ok_or_else(|| invalid("FAILURE without a failInfo RFC 8894 defines".into()))?,
        ),
        other => return Err(invalid(format!("pkiStatus {}", other.unwrap_or("(none)")))),
    };
    Ok(CertRep {
        digest,
        sender_nonce: sender_nonce.to_vec(),
        outcome,
    })
}

fn success(content: Option<&[u8]>, requester: &Requester) -> Result<Outcome, String> {
    let content = content.ok_or("SUCCESS without content")?;
    let sealed = Sealed::read(content).map_err(|r| r.reason)?;
    let cipher = sealed.cipher().map_err(|r| r.reason)?;
    let inner = sealed.open(&requester.party).map_err(|r| r.reason)?;
    let degenerate = signed::read(&inner).map_err(|e| format!("the decrypted content: {e}"))?;
    let owned = |list: &[&[u8]]| list.iter().map(|der| der.to_vec()).collect();
    Ok(Outcome::Success {
        certificates: owned(&degenerate.certificates),
        crls: owned(&degenerate.crls),
        cipher,
    })
}

/// A self-signed certificate for `key` (RSA) with `subject`, valid from an hour before `now`
/// for 30 days: what signs a PKCSReq (RFC 8894 §2.3), whose subject should be the CSR's.
///
/// # Errors
/// [`Error::Invalid`] for a key that is not RSA or a subject rcgen cannot write;
/// [`Error::Crypto`] when signing fails.
pub fn transient_certificate(
    key: &PrivateKey,
    subject: &DistinguishedName,
    now: OffsetDateTime,
) -> Result<Vec<u8>, Error> {
    if !matches!(key.key_type(), KeyType::Rsa { .. }) {
        return Err(Error::Invalid(
            "a SCEP requester's key must be RSA: replies are encrypted to it".into(),
        ));
    }
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject.to_rcgen()?;
    params.serial_number = Some(crate::random::serial()?.to_vec().into());
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(30);
    Ok(params.self_signed(key.rcgen())?.der().to_vec())
}

/// A PKCS#10 CSR (DER) for `key` with `subject`, carrying `challenge_password` (RFC 2985
/// challengePassword, as a PrintableString or, for other characters, a UTF8String) when given:
/// what a PKCSReq encrypts.
///
/// # Errors
/// [`Error::Invalid`] for a subject rcgen cannot write; [`Error::Crypto`] when signing fails.
pub fn csr(
    key: &PrivateKey,
    subject: &DistinguishedName,
    challenge_password: Option<&str>,
) -> Result<Vec<u8>, Error> {
    use der::Encode;
    const CHALLENGE_PASSWORD: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject.to_rcgen()?;
    let mut attributes = Vec::new();
    if let Some(password) = challenge_password {
        let encoding = |e: der::Error| Error::Invalid(format!("challenge password: {e}"));
        let value = match der::asn1::PrintableStringRef::new(password) {
            Ok(printable) => printable.to_der(),
            Err(_) => der::asn1::Utf8StringRef::new(password).and_then(|s| s.to_der()),
        }
        .map_err(encoding)?;
        attributes.push(rcgen::Attribute {
            oid: CHALLENGE_PASSWORD,
            values: super::tlv(Tag::Set, &value).map_err(encoding)?,
        });
    }
    Ok(params
        .serialize_request_with_attributes(key.rcgen(), attributes)?
        .der()
        .to_vec())
}
