//! SCEP messages (RFC 8894): reading the pkiMessages clients send, building the CertRep answers,
//! and, in [`client`], the other side of both. This is the message layer only: which
//! certificate to issue, and whether to issue it at all, is the caller's decision.
//!
//! A pkiMessage is a CMS SignedData (RFC 5652) signed by the requester, whose SCEP attributes
//! (message type, transaction id, nonces, status) are signed attributes, and whose content is a
//! CMS EnvelopedData encrypted to the RA with RSA key transport.
//!
//! # Trust boundary
//! [`read_request`] reads bytes from anyone on the network. It accepts strict DER only (a BER
//! encoding, such as an indefinite length or a constructed OCTET STRING, is refused), reads at
//! most [`MAX_CERTIFICATES`] certificates and one signer, never sorts what it reads (the cms
//! crate's SET decoding is quadratic), verifies the requester's signature and the message
//! digest before it decrypts anything, and never panics. A failure to decrypt the
//! content-encryption key is not told apart from a failure to decrypt the content (RFC 3218
//! §2.3), so the RA's key cannot be used as a PKCS#1 v1.5 padding oracle.
//!
//! Nothing here checks the requester's certificate beyond its signature on the message: a
//! PKCSReq is signed by a self-signed transient certificate that proves nothing, and whether a
//! RenewalReq's certificate was issued by the CA and is still valid is the caller's to check
//! (with [`ReplyTo::signer_cert`]).
//!
//! # SHA-1
//! Requests signed with SHA-1 are read (older clients send nothing else), but aws-lc-rs signs
//! PKCS#1 v1.5 with SHA-2 only: answers to them are signed with SHA-256, which every client
//! that can verify a signature reads.

mod attributes;
pub mod client;
mod envelope;
mod party;
mod reply;
mod request;
mod signed;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{DES_EDE_3_CBC, ID_AES_128_CBC, ID_AES_192_CBC, ID_AES_256_CBC};
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_512};

pub use envelope::decrypt_envelope;
pub use party::Ra;
pub use reply::cert_rep;
pub use request::read_request;

/// The most certificates a pkiMessage (or the certs-only content of a CertRep) may carry. A
/// request needs one, its signer's; the cap keeps a hostile request from making the reader
/// parse many.
pub const MAX_CERTIFICATES: usize = 10;

/// The answer to `GetCACaps` (RFC 8894 §3.5.2). Besides what RFC 8894 requires of a
/// `SCEPStandard` server (AES, POSTPKIOperation, SHA-256), certmint supports SHA-512, renewal
/// and triple DES: a client without AES support picks DES3 rather than single DES when offered
/// it. SHA-1 is accepted on requests but not offered, so that no client falls back to it;
/// `GetNextCACert` (CA rollover) is not supported.
pub const CA_CAPS: &str = "AES\nDES3\nPOSTPKIOperation\nRenewal\nSCEPStandard\nSHA-256\nSHA-512\n";

/// The messageType attribute (RFC 8894 §3.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `3`: the RA's answer to any request.
    CertRep,
    /// `17`: a certificate request signed by the requester's existing certificate.
    RenewalReq,
    /// `19`: a certificate request signed by a transient self-signed certificate.
    PkcsReq,
    /// `20` (GetCertInitial in older drafts): asks again about a PENDING request.
    CertPoll,
    /// `21`: asks for a certificate by issuer and serial number.
    GetCert,
    /// `22`: asks for the CRL of the issuer of a certificate.
    GetCrl,
}

impl MessageType {
    /// The attribute's value: the decimal number, as a PrintableString carries it.
    pub fn code(self) -> &'static str {
        match self {
            Self::CertRep => "3",
            Self::RenewalReq => "17",
            Self::PkcsReq => "19",
            Self::CertPoll => "20",
            Self::GetCert => "21",
            Self::GetCrl => "22",
        }
    }

    /// The type whose [`code`](Self::code) is `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::CertRep,
            Self::RenewalReq,
            Self::PkcsReq,
            Self::CertPoll,
            Self::GetCert,
            Self::GetCrl,
        ]
        .into_iter()
        .find(|t| t.code() == code)
    }

    /// The name RFC 8894 gives the type (`PKCSReq`, `CertPoll`, …), for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        }
    }
}

/// The digest algorithm a pkiMessage is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA-1: read on requests; answers to them are signed with SHA-256 (see the module
    /// documentation), and [`client`] does not sign with it.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Digest {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => ID_SHA_1,
            Self::Sha256 => ID_SHA_256,
            Self::Sha512 => ID_SHA_512,
        }
    }

    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|d| d.oid() == oid)
    }

    fn hash(self, data: &[u8]) -> aws_lc_rs::digest::Digest {
        let algorithm = match self {
            Self::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(algorithm, data)
    }

    /// The digest signatures by certmint use in answer to a message signed with this one.
    fn for_signing(self) -> Self {
        match self {
            Self::Sha1 | Self::Sha256 => Self::Sha256,
            Self::Sha512 => Self::Sha512,
        }
    }

    /// The algorithm's name (`SHA-256`), as CA capabilities write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
        }
    }
}

/// The cipher an EnvelopedData's content is encrypted with, in CBC mode with PKCS#7 padding
/// and the IV in the algorithm parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// Single DES: what SCEP clients without capabilities use, micromdm's among them.
    DesCbc,
    /// Triple DES (three keys).
    DesEde3Cbc,
    /// AES with a 128-bit key.
    Aes128Cbc,
    /// AES with a 192-bit key.
    Aes192Cbc,
    /// AES with a 256-bit key.
    Aes256Cbc,
}

/// DES-CBC (OIW): not in const-oid's database.
const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");

impl ContentCipher {
    /// Every supported cipher.
    pub const ALL: [Self; 5] = [
        Self::DesCbc,
        Self::DesEde3Cbc,
        Self::Aes128Cbc,
        Self::Aes192Cbc,
        Self::Aes256Cbc,
    ];

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::DesCbc => DES_CBC,
            Self::DesEde3Cbc => DES_EDE_3_CBC,
            Self::Aes128Cbc => ID_AES_128_CBC,
            Self::Aes192Cbc => ID_AES_192_CBC,
            Self::Aes256Cbc => ID_AES_256_CBC,
        }
    }

    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.oid() == oid)
    }

    // aws-lc-rs deprecates DES and 3DES; SCEP clients still encrypt with them.
    #[allow(deprecated)]
    fn algorithm(self) -> &'static aws_lc_rs::cipher::Algorithm {
        use aws_lc_rs::cipher;
        match self {
            Self::DesCbc => &cipher::DES_FOR_LEGACY_USE_ONLY,
            Self::DesEde3Cbc => &cipher::DES_EDE3_FOR_LEGACY_USE_ONLY,
            Self::Aes128Cbc => &cipher::AES_128,
            Self::Aes192Cbc => &cipher::AES_192,
            Self::Aes256Cbc => &cipher::AES_256,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::DesCbc => 8,
            Self::Aes128Cbc => 16,
            Self::DesEde3Cbc | Self::Aes192Cbc => 24,
            Self::Aes256Cbc => 32,
        }
    }

    fn is_des(self) -> bool {
        matches!(self, Self::DesCbc | Self::DesEde3Cbc)
    }

    /// The cipher's name as OpenSSL writes it (`aes-256-cbc`, `des-ede3-cbc`).
    pub fn name(self) -> &'static str {
        match self {
            Self::DesCbc => "des-cbc",
            Self::DesEde3Cbc => "des-ede3-cbc",
            Self::Aes128Cbc => "aes-128-cbc",
            Self::Aes192Cbc => "aes-192-cbc",
            Self::Aes256Cbc => "aes-256-cbc",
        }
    }
}

/// The failInfo attribute of a FAILURE CertRep (RFC 8894 §3.2.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// `0`: unrecognized or unsupported algorithm.
    BadAlg,
    /// `1`: integrity check (signature, digest, decryption) failed.
    BadMessageCheck,
    /// `2`: transaction not permitted or supported.
    BadRequest,
    /// `3`: the message time was not close enough to the system time.
    BadTime,
    /// `4`: no certificate could be identified matching the criteria given.
    BadCertId,
}

impl FailInfo {
    const ALL: [Self; 5] = [
        Self::BadAlg,
        Self::BadMessageCheck,
        Self::BadRequest,
        Self::BadTime,
        Self::BadCertId,
    ];

    /// The attribute's value: the decimal number, as a PrintableString carries it.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadAlg => "0",
            Self::BadMessageCheck => "1",
            Self::BadRequest => "2",
            Self::BadTime => "3",
            Self::BadCertId => "4",
        }
    }

    /// The failure whose [`code`](Self::code) is `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The name RFC 8894 gives the failure (`badMessageCheck`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        }
    }
}

impl std::fmt::Display for FailInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request asks about, decrypted from its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestContent {
    /// PKCSReq and RenewalReq: the PKCS#10 CSR, DER. Only its structure has been checked: its
    /// signature, key and names are for the caller to check (`Csr::from_der`).
    Csr(Vec<u8>),
    /// CertPoll: the issuer and subject of the pending request, each a DER Name.
    IssuerAndSubject {
        /// The CA's name, DER.
        issuer: Vec<u8>,
        /// The subject asked for, DER.
        subject: Vec<u8>,
    },
    /// GetCert and GetCRL: a certificate named by issuer (DER Name) and serial number.
    IssuerAndSerial {
        /// The issuer's name, DER.
        issuer: Vec<u8>,
        /// The serial number's INTEGER content octets, as in the certificate (a leading zero
        /// octet when the top bit of the first is set).
        serial: Vec<u8>,
    },
}

/// Where a reply goes: enough to answer even a request that failed after its attributes were
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The request's transactionID, repeated in the reply. Only PrintableString characters,
    /// at most 128 of them.
    pub transaction_id: String,
    /// The request's senderNonce, the reply's recipientNonce.
    pub sender_nonce: Vec<u8>,
    /// The request's digest algorithm (SHA-256 when it was not one certmint reads).
    pub digest: Digest,
    /// The request envelope's cipher, which a SUCCESS reply is encrypted with; AES-256-CBC
    /// when the request was refused before its envelope was read (a FAILURE reply carries no
    /// envelope).
    pub cipher: ContentCipher,
    /// The certificate that signed the request, DER: the transient self-signed certificate,
    /// or the existing certificate of a RenewalReq. A SUCCESS reply is encrypted to its RSA
    /// key. Empty when the request was refused before its signer was found.
    pub signer_cert: Vec<u8>,
}

/// A request whose signature verified and whose envelope opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its messageType (never [`MessageType::CertRep`]).
    pub message_type: MessageType,
    /// Where the answer goes.
    pub reply_to: ReplyTo,
    /// What it asks for; the variant follows the message type.
    pub content: RequestContent,
}

/// What a CertRep answers.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// SUCCESS with certificates, DER, the issued (or asked for) one first; they go to the
    /// requester in a certs-only SignedData, in this order (clients take the first certificate
    /// for theirs).
    Success {
        /// The certificates; at least one.
        certificates: &'a [&'a [u8]],
    },
    /// SUCCESS to GetCRL: the CRL, DER.
    Crl(&'a [u8]),
    /// PENDING: the request waits for approval; the client polls with CertPoll.
    Pending,
    /// FAILURE with its reason.
    Failure(FailInfo),
}

/// A pkiMessage that cannot be answered, or that must be answered with a FAILURE CertRep.
#[derive(Debug, thiserror::Error)]
pub enum ScepError {
    /// Not even the signed attributes could be read: there is nothing to answer to (HTTP 400).
    #[error("malformed SCEP message: {0}")]
    Malformed(String),
    /// Refused: answer with a FAILURE CertRep carrying `fail_info` to `reply_to`.
    #[error("SCEP request refused ({fail_info}): {reason}")]
    Refused {
        /// Where the FAILURE reply goes.
        reply_to: Box<ReplyTo>,
        /// The failInfo to send.
        fail_info: FailInfo,
        /// What was wrong, for the log (not sent: SCEP's failInfo is the answer).
        reason: String,
    },
}

/// Why a request that can be answered is refused: what becomes [`ScepError::Refused`].
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) fail_info: FailInfo,
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn new(fail_info: FailInfo, reason: impl Into<String>) -> Self {
        Self {
            fail_info,
            reason: reason.into(),
        }
    }
}

/// `content` as the value of a DER TLV tagged `tag`.
fn tlv(tag: der::Tag, content: &[u8]) -> Result<Vec<u8>, der::Error> {
    use der::Encode;
    let mut out = der::Header::new(tag, content.len())?.to_der()?;
    out.extend_from_slice(content);
    Ok(out)
}

#[cfg(test)]
mod tests;
