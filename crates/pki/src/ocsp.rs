//! OCSP (RFC 6960), as a responder following the lightweight profile of RFC 5019 needs it:
//! reading requests, telling whether a CertID names an issuer it answers for, and building and
//! signing responses. Like the rest of this crate it does no I/O and reads no clock: every time
//! comes in as an argument.
//!
//! # Trust boundary
//! [`Request::parse`] reads bytes from anyone on the network, on the responder's hot path. It
//! accepts strict DER only, stops at the first CertID past [`MAX_CERT_IDS`], allocates one small
//! buffer per CertID and never panics. A request's `optionalSignature` is skipped unread:
//! certmint answers anyone (signing requests is optional in RFC 6960 §4.1.2, and RFC 5019 §2.1.2
//! clients do not sign), so a signature would prove nothing that the responder acts on. A
//! responder that must refuse unsigned requests answers [`ResponseStatus::SigRequired`] itself.
//!
//! # Echoing CertIDs
//! A client finds its answer by comparing the CertID of each SingleResponse with the one it
//! sent (OpenSSL's `OCSP_id_cmp`, for one). A [`CertId`] keeps the DER it was read from, and
//! [`sign`] writes the same octets back, whatever hash algorithm and parameter encoding the
//! client chose: strict DER decodes and encodes to itself.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::Arc;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use const_oid::db::rfc6960::{ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NONCE, ID_PKIX_OCSP_RESPONSE};
use der::asn1::{AnyRef, BitString, GeneralizedTime, IntRef, OctetString, OctetStringRef};
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, TagNumber};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use time::OffsetDateTime;
use x509_cert::ext::Extension;
use x509_ocsp as wire;

use crate::Error;
use crate::cert::{ExtendedKeyUsage, Signer};
use crate::crl::{self, signature_algorithm, unix};
use crate::inspect::Certificate;

/// The most CertIDs one request may name. RFC 5019 §2.1.1 clients send one, and browsers and
/// OpenSSL a handful at most; the cap keeps a single request from making the responder look up
/// and sign for many. More is `malformedRequest`, found while parsing, before any lookup.
pub const MAX_CERT_IDS: usize = 16;

/// The most extensions one list may carry (the request's, or one CertID's): RFC 6960 and
/// RFC 8954 define three, so more is not a client that needs answering.
pub const MAX_EXTENSIONS: usize = 8;

/// The longest nonce accepted, in octets (RFC 8954 §2.1: `OCTET STRING (SIZE(1..32))`).
pub const MAX_NONCE_LEN: usize = 32;

/// The longest serial number in a CertID, in content octets: RFC 5280 §4.1.2.2 allows 20, and
/// a 20-octet value with its top bit set takes one more to stay positive.
const MAX_SERIAL_LEN: usize = 21;

/// The hash algorithm of a CertID (RFC 6960 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1, what most clients still send (OpenSSL by default).
    Sha1,
    /// SHA-256.
    Sha256,
    /// Any other algorithm: the request is well formed, but no issuer can be matched by it, so
    /// the responder answers `unknown` or `unauthorized`.
    Other(ObjectIdentifier),
}

impl HashAlgorithm {
    /// The algorithm with the OID of content octets `oid`, compared as octets first: a request
    /// names SHA-1 or SHA-256 nearly always, and decoding the arcs costs more.
    fn read(oid: &[u8]) -> Result<Self, Error> {
        Ok(if oid == ID_SHA_1.as_bytes() {
            Self::Sha1
        } else if oid == ID_SHA_256.as_bytes() {
            Self::Sha256
        } else {
            Self::Other(ObjectIdentifier::from_bytes(oid).map_err(malformed)?)
        })
    }
}

/// The identity of one certificate in a request and in the response to it (RFC 6960 §4.1.1):
/// the hash algorithm, the hashes of its issuer's name and key, and its serial number.
///
/// Equality and hashing are over the DER, so a cache keyed by `CertId` keeps apart two
/// encodings of the same certificate (SHA-1 and SHA-256 hashes, say), each of which needs its
/// own response echoing it.
#[derive(Clone)]
pub struct CertId {
    /// The CertID's DER, as read or built; the ranges below index into it.
    der: Box<[u8]>,
    hash_algorithm: HashAlgorithm,
    issuer_name_hash: Range<usize>,
    issuer_key_hash: Range<usize>,
    serial: Range<usize>,
}

impl CertId {
    /// The CertID a client would send for the certificate with `serial` (the content octets of
    /// its DER INTEGER, as [`crate::inspect::Certificate::serial`] gives them in hex) issued by
    /// `issuer`, with hashes made by `hash_algorithm`; its AlgorithmIdentifier carries NULL
    /// parameters, as OpenSSL writes them.
    ///
    /// # Errors
    /// [`Error::Invalid`] for [`HashAlgorithm::Other`], which certmint cannot compute, and for a
    /// serial that is not a DER INTEGER's minimal content or is longer than 21 octets.
    pub fn for_certificate(
        issuer: &IssuerKeyHashes,
        serial: &[u8],
        hash_algorithm: HashAlgorithm,
    ) -> Result<Self, Error> {
        let (oid, (name_hash, key_hash)) = match hash_algorithm {
            HashAlgorithm::Sha1 => (ID_SHA_1, issuer.sha1()),
            HashAlgorithm::Sha256 => (ID_SHA_256, issuer.sha256()),
            HashAlgorithm::Other(oid) => {
                return Err(Error::Invalid(format!(
                    "CertIDs can be made with SHA-1 or SHA-256, not {oid}"
                )));
            }
        };
        let bad_serial = |e: der::Error| Error::Invalid(format!("bad serial number: {e}"));
        // Written out as given, for the decoder to hold to DER's rules.
        let serial_der = with_header(Tag::Integer, serial.to_vec())?;
        let cert_id = wire::CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: Some(AnyRef::NULL.into()),
            },
            issuer_name_hash: OctetString::new(name_hash).map_err(encoding)?,
            issuer_key_hash: OctetString::new(key_hash).map_err(encoding)?,
            serial_number: Decode::from_der(&serial_der).map_err(bad_serial)?,
        };
        Self::read(&cert_id.to_der().map_err(encoding)?)
    }

    /// Reads a CertID from its DER, as [`Self::der`] gives it: a responder that keeps
    /// responses signs them again for the same CertID.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything but one well-formed CertID.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        Self::read(der)
    }

    /// The CertID's DER, octet for octet as the request carried it.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The hash algorithm of [`Self::issuer_name_hash`] and [`Self::issuer_key_hash`].
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash_algorithm
    }

    /// The hash of the issuer's subject name DER.
    pub fn issuer_name_hash(&self) -> &[u8] {
        self.part(&self.issuer_name_hash)
    }

    /// The hash of the issuer's subjectPublicKey BIT STRING value.
    pub fn issuer_key_hash(&self) -> &[u8] {
        self.part(&self.issuer_key_hash)
    }

    /// The certificate's serial number: the content octets of its DER INTEGER, as
    /// [`crate::inspect::Certificate::serial`] gives them in hex. Any value a client sends is
    /// kept, negative and zero included; only a certificate actually issued will match it.
    pub fn serial(&self) -> &[u8] {
        self.part(&self.serial)
    }

    fn part(&self, range: &Range<usize>) -> &[u8] {
        // The ranges were read from `der` itself, so this is never empty by mistake.
        self.der.get(range.clone()).unwrap_or_default()
    }

    /// Reads one CertID TLV, all of `der`.
    fn read(der: &[u8]) -> Result<Self, Error> {
        let mut outer = reader(der)?;
        let body = content(&mut outer, Tag::Sequence)?;
        done(outer)?;
        // `body` ends `der`: positions in it are positions in `der` less the header.
        let header_len = der.len().saturating_sub(body.len());
        let mut r = reader(body)?;
        let span = |r: &SliceReader<'_>, value: &[u8]| -> Result<Range<usize>, Error> {
            let end = header_len + usize::try_from(r.position()).map_err(malformed)?;
            Ok(end.saturating_sub(value.len())..end)
        };
        let mut algorithm = reader(content(&mut r, Tag::Sequence)?)?;
        let hash_algorithm = HashAlgorithm::read(content(&mut algorithm, Tag::ObjectIdentifier)?)?;
        // The parameters, one TLV if any, are only echoed. For SHA-1 and SHA-2 they are NULL or
        // absent (RFC 5754 §2): anything else would give one certificate endless CertIDs, each
        // answered, cached and stored apart.
        if !algorithm.is_finished() {
            let parameters = algorithm.tlv_bytes().map_err(malformed)?;
            if !matches!(hash_algorithm, HashAlgorithm::Other(_)) && parameters != [0x05, 0x00] {
                return Err(malformed(
                    "SHA-1 and SHA-256 take NULL or absent parameters (RFC 5754 §2)",
                ));
            }
        }
        done(algorithm)?;
        let name_hash = content(&mut r, Tag::OctetString)?;
        let issuer_name_hash = span(&r, name_hash)?;
        let key_hash = content(&mut r, Tag::OctetString)?;
        let issuer_key_hash = span(&r, key_hash)?;
        // IntRef checks DER's rules (not empty, no redundant leading octet) and keeps the
        // content octets as they are.
        let serial = IntRef::from_der(r.tlv_bytes().map_err(malformed)?).map_err(malformed)?;
        if serial.as_bytes().len() > MAX_SERIAL_LEN {
            return Err(malformed(format!(
                "a serial number of {} octets is longer than RFC 5280 allows",
                serial.as_bytes().len()
            )));
        }
        let serial = span(&r, serial.as_bytes())?;
        done(r)?;
        Ok(Self {
            der: der.into(),
            hash_algorithm,
            issuer_name_hash,
            issuer_key_hash,
            serial,
        })
    }

    /// The CertID as x509-ocsp's type, for encoding.
    fn to_wire(&self) -> Result<wire::CertId, Error> {
        wire::CertId::from_der(&self.der).map_err(encoding)
    }
}

impl PartialEq for CertId {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for CertId {}

impl Hash for CertId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Everything else is read from the DER.
        self.der.hash(state);
    }
}

impl fmt::Debug for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertId")
            .field("hash_algorithm", &self.hash_algorithm)
            .field("issuer_name_hash", &hex::encode(self.issuer_name_hash()))
            .field("issuer_key_hash", &hex::encode(self.issuer_key_hash()))
            .field("serial", &hex::encode(self.serial()))
            .finish()
    }
}

/// An OCSP request (RFC 6960 §4.1.1), reduced to what a responder acts on: the certificates
/// asked about and the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    cert_ids: Vec<CertId>,
    nonce: Option<Vec<u8>>,
}

impl Request {
    /// Reads a DER OCSPRequest, as an HTTP POST body carries it or a GET URL carries it after
    /// base64 (RFC 6960 Appendix A.1).
    ///
    /// Accepted and ignored: a `requestorName`, an `optionalSignature` (unverified, see the
    /// module documentation), a version field saying v1, extensions not understood that are
    /// not critical, and a critical Acceptable Response Types extension (RFC 6960 §4.4.3: the
    /// answer is always `id-pkix-ocsp-basic`, which every client must accept).
    ///
    /// # Errors
    /// [`Error::Invalid`], for the responder to answer [`ResponseStatus::MalformedRequest`]:
    /// bytes that are not one strict-DER OCSPRequest (garbage, truncation, trailing bytes), no
    /// CertID or more than [`MAX_CERT_IDS`], more than [`MAX_EXTENSIONS`] extensions in a list,
    /// SHA-1 or SHA-256 parameters other than NULL, a serial number longer than 21 octets, a version
    /// other than v1, a critical extension not understood, a nonce given twice, or a nonce
    /// that is not an OCTET STRING of 1 to [`MAX_NONCE_LEN`] octets (RFC 8954 §2.1).
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let mut outer = reader(der)?;
        let ocsp_request = content(&mut outer, Tag::Sequence)?;
        done(outer)?;
        let mut r = reader(ocsp_request)?;
        let tbs_request = content(&mut r, Tag::Sequence)?;
        // optionalSignature: skipped unread.
        optional(&mut r, explicit(TagNumber::N0))?;
        done(r)?;

        let mut r = reader(tbs_request)?;
        if let Some(version) = optional(&mut r, explicit(TagNumber::N0))? {
            // v1 is the DEFAULT, so DER leaves it out; a client that writes it is forgiven.
            if version != [0x02, 0x01, 0x00] {
                return Err(malformed("only version 1 is defined"));
            }
        }
        // requestorName: who the client says it is, which nothing here relies on.
        optional(&mut r, explicit(TagNumber::N1))?;
        let request_list = content(&mut r, Tag::Sequence)?;
        let request_extensions = optional(&mut r, explicit(TagNumber::N2))?;
        done(r)?;

        let mut cert_ids = Vec::with_capacity(1);
        let mut list = reader(request_list)?;
        while !list.is_finished() {
            if cert_ids.len() == MAX_CERT_IDS {
                return Err(malformed(format!(
                    "more than {MAX_CERT_IDS} certificates in one request"
                )));
            }
            let mut single = reader(content(&mut list, Tag::Sequence)?)?;
            let cert_id = CertId::read(single.tlv_bytes().map_err(malformed)?)?;
            if let Some(extensions) = optional(&mut single, explicit(TagNumber::N0))? {
                // None is understood (a service locator is for proxies, RFC 6960 §4.4.6).
                for_each_extension(extensions, |oid, critical, _| {
                    refuse_critical(oid, critical)
                })?;
            }
            done(single)?;
            cert_ids.push(cert_id);
        }
        if cert_ids.is_empty() {
            return Err(malformed("the request names no certificate"));
        }

        let mut nonce = None;
        if let Some(extensions) = request_extensions {
            for_each_extension(extensions, |oid, critical, value| {
                if oid == ID_PKIX_OCSP_NONCE.as_bytes() {
                    if nonce.is_some() {
                        return Err(malformed("the nonce extension appears twice"));
                    }
                    nonce = Some(read_nonce(value)?.to_vec());
                    Ok(())
                } else if oid == ID_PKIX_OCSP_RESPONSE.as_bytes() {
                    Ok(())
                } else {
                    refuse_critical(oid, critical)
                }
            })?;
        }
        Ok(Self { cert_ids, nonce })
    }

    /// The certificates asked about, in the request's order: at least one, at most
    /// [`MAX_CERT_IDS`].
    pub fn cert_ids(&self) -> &[CertId] {
        &self.cert_ids
    }

    /// The nonce (RFC 8954), 1 to [`MAX_NONCE_LEN`] octets, for [`ResponseData::nonce`] to
    /// echo; a response with a nonce is fresh for this request only and cannot be cached.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }
}

/// Encodes an unsigned OCSP request for `cert_ids`, with a nonce if given: what a client sends,
/// for tests and benchmarks of the responder.
///
/// # Errors
/// [`Error::Invalid`] for no CertID or more than [`MAX_CERT_IDS`], or a nonce that is empty or
/// longer than [`MAX_NONCE_LEN`] octets: requests that [`Request::parse`] would refuse.
pub fn request(cert_ids: &[CertId], nonce: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    if cert_ids.is_empty() || cert_ids.len() > MAX_CERT_IDS {
        return Err(Error::Invalid(format!(
            "a request names 1 to {MAX_CERT_IDS} certificates, not {}",
            cert_ids.len()
        )));
    }
    let request_list = cert_ids
        .iter()
        .map(|id| {
            Ok(wire::Request {
                req_cert: id.to_wire()?,
                single_request_extensions: None,
            })
        })
        .collect::<Result<_, Error>>()?;
    wire::OcspRequest {
        tbs_request: wire::TbsRequest {
            request_list,
            request_extensions: nonce.map(nonce_extension).transpose()?.map(|e| vec![e]),
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(encoding)
}

/// The hashes by which CertIDs name one issuing CA (RFC 6960 §4.1.1), in SHA-1 and SHA-256,
/// computed once per CA so that matching a request costs two comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeyHashes {
    sha1_name: [u8; 20],
    sha1_key: [u8; 20],
    sha256_name: [u8; 32],
    sha256_key: [u8; 32],
}

impl IssuerKeyHashes {
    /// The hashes of CA certificate `issuer`: of its subject name's DER, and of the value of
    /// its subjectPublicKey BIT STRING without tag, length or unused-bits octet (RFC 6960
    /// §4.1.1), as OpenSSL computes them.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the certificate's public key cannot be read.
    pub fn new(issuer: &Certificate) -> Result<Self, Error> {
        let key = public_key_bits(&issuer.public_key_der)?;
        Ok(Self {
            sha1_name: Sha1::digest(&issuer.subject_raw).into(),
            sha1_key: Sha1::digest(key).into(),
            sha256_name: Sha256::digest(&issuer.subject_raw).into(),
            sha256_key: Sha256::digest(key).into(),
        })
    }

    /// Whether `cert_id` names a certificate of this issuer: both of its hashes match, in a
    /// hash algorithm certmint computes ([`HashAlgorithm::Other`] never matches).
    pub fn matches(&self, cert_id: &CertId) -> bool {
        let (name, key) = match cert_id.hash_algorithm() {
            HashAlgorithm::Sha1 => self.sha1(),
            HashAlgorithm::Sha256 => self.sha256(),
            HashAlgorithm::Other(_) => return false,
        };
        cert_id.issuer_name_hash() == name && cert_id.issuer_key_hash() == key
    }

    fn sha1(&self) -> (&[u8], &[u8]) {
        (&self.sha1_name, &self.sha1_key)
    }

    fn sha256(&self) -> (&[u8], &[u8]) {
        (&self.sha256_name, &self.sha256_key)
    }
}

/// What a response says of one certificate (RFC 6960 §4.2.1 CertStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by the CA and not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// When it was revoked.
        revoked_at: OffsetDateTime,
        /// The RFC 5280 §5.3.1 CRLReason code; for none or `unspecified` (0) the response
        /// carries no reason, as the CA/Browser Forum's Baseline Requirements ask.
        reason: Option<u8>,
    },
    /// The responder does not know the certificate (RFC 6960 §2.2).
    Unknown,
}

/// The answer for one certificate (RFC 6960 §4.2.1 SingleResponse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleResponse<'a> {
    /// The CertID as the request carried it, echoed octet for octet.
    pub cert_id: &'a CertId,
    /// Its status.
    pub status: CertStatus,
    /// When the status was known to be correct (RFC 6960 §4.2.2.1).
    pub this_update: OffsetDateTime,
    /// When newer information will be available, after `this_update`: clients and caches keep
    /// the response until then (RFC 5019 §2.2.4, §6).
    pub next_update: OffsetDateTime,
}

/// What a response says besides its signature (RFC 6960 §4.2.1 ResponseData).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseData<'a> {
    /// When the response was signed.
    pub produced_at: OffsetDateTime,
    /// One answer per certificate asked about; at least one.
    pub responses: &'a [SingleResponse<'a>],
    /// The request's nonce, to echo (RFC 8954); `None` for a response that may be cached and
    /// served to anyone (RFC 5019 §4).
    pub nonce: Option<&'a [u8]>,
}

/// The key that signs responses, with what every response it signs repeats: its ResponderID
/// and, for a delegated responder, its certificate.
pub struct Responder {
    signer: Arc<dyn Signer>,
    algorithm: AlgorithmIdentifierOwned,
    /// The SHA-1 hash of the key's BIT STRING value: the ResponderID `byKey`.
    key_hash: [u8; 20],
    /// The BasicOCSPResponse's `certs` field, `[0] EXPLICIT SEQUENCE OF Certificate`, holding
    /// the delegated responder's certificate as given; empty for none.
    certs: Vec<u8>,
}

impl Responder {
    /// A responder signing with `signer`. For the CA's own key `certificate` is `None`:
    /// clients hold the CA certificate already. For a delegated responder (RFC 6960
    /// §4.2.2.2) it is the responder's certificate, issued by the CA, which every response then
    /// carries so that clients can check it.
    ///
    /// The ResponderID is `byKey`, the SHA-1 hash of the signer's subjectPublicKey BIT STRING
    /// value (RFC 6960 §4.2.2.3), as the RFC 5019 §2.2 profile recommends: it is shorter than a
    /// name and does not change when the certificate is reissued.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `certificate` cannot be read, is not for the signer's key, or
    /// lacks the OCSPSigning extended key usage that clients require of a delegated
    /// responder.
    pub fn new(signer: Arc<dyn Signer>, certificate: Option<Vec<u8>>) -> Result<Self, Error> {
        let public_key = signer.public_key_der();
        let certs = match certificate {
            None => Vec::new(),
            Some(der) => {
                let info = Certificate::parse(&der)?;
                if info.public_key_der != public_key {
                    return Err(Error::Invalid(
                        "the responder certificate is not for the responder's key".into(),
                    ));
                }
                if !info
                    .extended_key_usage
                    .contains(&ExtendedKeyUsage::OcspSigning)
                {
                    return Err(Error::Invalid(
                        "a delegated responder's certificate needs the OCSPSigning extended \
                         key usage (RFC 6960 §4.2.2.2)"
                            .into(),
                    ));
                }
                let list = with_header(Tag::Sequence, der)?;
                with_header(explicit(TagNumber::N0), list)?
            }
        };
        Ok(Self {
            algorithm: signature_algorithm(signer.key_type())?,
            key_hash: Sha1::digest(public_key_bits(&public_key)?).into(),
            certs,
            signer,
        })
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("key_type", &self.signer.key_type())
            .field("key_hash", &hex::encode(self.key_hash))
            .field("delegated", &!self.certs.is_empty())
            .finish_non_exhaustive()
    }
}

/// Builds and signs a successful OCSPResponse holding a BasicOCSPResponse (RFC 6960 §4.2.1)
/// for `data`, with `responder`'s key. Times are written as GeneralizedTime in whole seconds
/// (RFC 6960 §4.2.2.1); the signature algorithm follows the key (as for CRLs).
///
/// # Errors
/// [`Error::Invalid`] for no SingleResponse, a `next_update` not after its `this_update`, a
/// reason code that is not RFC 5280's or is `removeFromCRL` (8, for delta CRLs only), a time
/// before 1970 or after 9999, or a nonce that is empty or longer than [`MAX_NONCE_LEN`]
/// octets; [`Error::Crypto`] when signing fails.
pub fn sign(data: &ResponseData<'_>, responder: &Responder) -> Result<Vec<u8>, Error> {
    if data.responses.is_empty() {
        return Err(Error::Invalid(
            "an OCSP response answers for at least one certificate".into(),
        ));
    }
    let tbs = wire::ResponseData {
        version: wire::Version::V1,
        responder_id: wire::ResponderId::ByKey(
            OctetString::new(responder.key_hash).map_err(encoding)?,
        ),
        produced_at: generalized_time(data.produced_at)?,
        responses: data
            .responses
            .iter()
            .map(single_response)
            .collect::<Result<_, _>>()?,
        response_extensions: data
            .nonce
            .map(nonce_extension)
            .transpose()?
            .map(|e| vec![e]),
    };
    // The BasicOCSPResponse is put together around the tbsResponseData's DER, the octets
    // signed, rather than from x509-ocsp's type: that would encode them a second time and the
    // responder certificate anew each time.
    let mut basic = tbs.to_der().map_err(encoding)?;
    let signature = responder.signer.sign(&basic)?;
    responder
        .algorithm
        .encode_to_vec(&mut basic)
        .map_err(encoding)?;
    BitString::from_bytes(&signature)
        .and_then(|bits| bits.encode_to_vec(&mut basic))
        .map_err(encoding)?;
    basic.extend_from_slice(&responder.certs);
    wire::OcspResponse {
        response_status: wire::OcspResponseStatus::Successful,
        response_bytes: Some(wire::ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(with_header(Tag::Sequence, basic)?).map_err(encoding)?,
        }),
    }
    .to_der()
    .map_err(encoding)
}

/// `content` as the value of a TLV tagged `tag`.
fn with_header(tag: Tag, content: Vec<u8>) -> Result<Vec<u8>, Error> {
    let length = der::Length::try_from(content.len()).map_err(encoding)?;
    let mut tlv = Header::new(tag, length)
        .and_then(|header| header.to_der())
        .map_err(encoding)?;
    tlv.extend_from_slice(&content);
    Ok(tlv)
}

fn single_response(single: &SingleResponse<'_>) -> Result<wire::SingleResponse, Error> {
    if single.next_update <= single.this_update {
        return Err(Error::Invalid(
            "an OCSP response's nextUpdate must come after its thisUpdate".into(),
        ));
    }
    let cert_status = match single.status {
        CertStatus::Good => wire::CertStatus::good(),
        CertStatus::Unknown => wire::CertStatus::unknown(),
        CertStatus::Revoked { revoked_at, reason } => {
            let revocation_reason = match reason {
                None | Some(0) => None,
                Some(8) => {
                    return Err(Error::Invalid(
                        "removeFromCRL (8) belongs in delta CRLs: a certificate taken off \
                         hold is good"
                            .into(),
                    ));
                }
                Some(code) => Some(crl::reason(code)?),
            };
            wire::CertStatus::revoked(wire::RevokedInfo {
                revocation_time: generalized_time(revoked_at)?,
                revocation_reason,
            })
        }
    };
    Ok(wire::SingleResponse {
        cert_id: single.cert_id.to_wire()?,
        cert_status,
        this_update: generalized_time(single.this_update)?,
        next_update: Some(generalized_time(single.next_update)?),
        single_extensions: None,
    })
}

/// A response status other than `successful` (RFC 6960 §4.2.1): such a response is only
/// that status, unsigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    /// `malformedRequest` (1): the request could not be read.
    MalformedRequest,
    /// `internalError` (2): the responder is in an inconsistent state.
    InternalError,
    /// `tryLater` (3): the responder cannot answer now.
    TryLater,
    /// `sigRequired` (5): the responder answers signed requests only.
    SigRequired,
    /// `unauthorized` (6): the responder cannot answer for this certificate (RFC 5019 §2.2.3:
    /// not one of its CAs).
    Unauthorized,
}

/// The DER of the OCSPResponse that says only `status`: `30 03 0a 01 <status>`.
pub fn error_response(status: ResponseStatus) -> &'static [u8] {
    match status {
        ResponseStatus::MalformedRequest => &[0x30, 0x03, 0x0a, 0x01, 0x01],
        ResponseStatus::InternalError => &[0x30, 0x03, 0x0a, 0x01, 0x02],
        ResponseStatus::TryLater => &[0x30, 0x03, 0x0a, 0x01, 0x03],
        ResponseStatus::SigRequired => &[0x30, 0x03, 0x0a, 0x01, 0x05],
        ResponseStatus::Unauthorized => &[0x30, 0x03, 0x0a, 0x01, 0x06],
    }
}

/// The id-pkix-ocsp-nonce extension for `nonce`: its value is the DER of an OCTET STRING
/// holding the nonce (RFC 8954 §2.1), not critical.
fn nonce_extension(nonce: &[u8]) -> Result<Extension, Error> {
    check_nonce_len(nonce.len()).map_err(Error::Invalid)?;
    let inner = OctetStringRef::new(nonce)
        .and_then(|n| n.to_der())
        .map_err(encoding)?;
    Ok(Extension {
        extn_id: ID_PKIX_OCSP_NONCE,
        critical: false,
        extn_value: OctetString::new(inner).map_err(encoding)?,
    })
}

/// The nonce in a nonce extension's value.
fn read_nonce(value: &[u8]) -> Result<&[u8], Error> {
    let nonce = OctetStringRef::from_der(value)
        .map_err(|e| malformed(format!("the nonce is not an OCTET STRING: {e}")))?
        .as_bytes();
    check_nonce_len(nonce.len()).map_err(malformed)?;
    Ok(nonce)
}

fn check_nonce_len(len: usize) -> Result<(), String> {
    if (1..=MAX_NONCE_LEN).contains(&len) {
        Ok(())
    } else {
        Err(format!(
            "a nonce has 1 to {MAX_NONCE_LEN} octets, not {len} (RFC 8954)"
        ))
    }
}

/// Calls `f` with the OID (its content octets), criticality and value of each Extension in
/// `explicit`, the content of an `[n] EXPLICIT Extensions`.
fn for_each_extension<'a>(
    explicit: &'a [u8],
    mut f: impl FnMut(&'a [u8], bool, &'a [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut outer = reader(explicit)?;
    let mut list = reader(content(&mut outer, Tag::Sequence)?)?;
    done(outer)?;
    let mut count = 0;
    while !list.is_finished() {
        count += 1;
        if count > MAX_EXTENSIONS {
            return Err(malformed(format!(
                "more than {MAX_EXTENSIONS} extensions in one list"
            )));
        }
        let mut extension = reader(content(&mut list, Tag::Sequence)?)?;
        let oid = content(&mut extension, Tag::ObjectIdentifier)?;
        let critical = match optional(&mut extension, Tag::Boolean)? {
            None => false,
            Some([0xff]) => true,
            // DEFAULT FALSE, so DER leaves it out; a client that writes it is forgiven.
            Some([0x00]) => false,
            Some(_) => return Err(malformed("an extension's critical flag is not DER")),
        };
        let value = content(&mut extension, Tag::OctetString)?;
        done(extension)?;
        f(oid, critical, value)?;
    }
    Ok(())
}

/// Checks an extension not understood: its OID must be one, and it must not be critical.
fn refuse_critical(oid: &[u8], critical: bool) -> Result<(), Error> {
    let oid = ObjectIdentifier::from_bytes(oid).map_err(malformed)?;
    if critical {
        Err(malformed(format!(
            "critical extension {oid} is not understood (RFC 6960 §4.1.2)"
        )))
    } else {
        Ok(())
    }
}

/// The value of the subjectPublicKey BIT STRING of SubjectPublicKeyInfo `spki`, without its
/// unused-bits octet: what CertIDs and ResponderIDs hash.
fn public_key_bits(spki: &[u8]) -> Result<&[u8], Error> {
    SubjectPublicKeyInfoRef::from_der(spki)
        .map_err(|e| Error::Invalid(format!("malformed public key: {e}")))?
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::Invalid("malformed public key bit string".into()))
}

fn generalized_time(t: OffsetDateTime) -> Result<wire::OcspGeneralizedTime, Error> {
    GeneralizedTime::from_unix_duration(unix(t)?)
        .map(wire::OcspGeneralizedTime)
        .map_err(|e| Error::Invalid(format!("{t} cannot be written as GeneralizedTime: {e}")))
}

fn explicit(number: TagNumber) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number,
    }
}

fn reader(der: &[u8]) -> Result<SliceReader<'_>, Error> {
    SliceReader::new(der).map_err(malformed)
}

/// The content of the next TLV, which must be tagged `tag`.
fn content<'a>(r: &mut SliceReader<'a>, tag: Tag) -> Result<&'a [u8], Error> {
    let header = Header::decode(r).map_err(malformed)?;
    header.tag.assert_eq(tag).map_err(malformed)?;
    r.read_slice(header.length).map_err(malformed)
}

/// The content of the next TLV if it is tagged `tag`.
fn optional<'a>(r: &mut SliceReader<'a>, tag: Tag) -> Result<Option<&'a [u8]>, Error> {
    if r.is_finished() || r.peek_tag().map_err(malformed)? != tag {
        return Ok(None);
    }
    content(r, tag).map(Some)
}

/// Checks that nothing follows in `r`.
fn done(r: SliceReader<'_>) -> Result<(), Error> {
    r.finish(()).map_err(malformed)
}

fn malformed(e: impl fmt::Display) -> Error {
    Error::Invalid(format!("malformed OCSP request: {e}"))
}

fn encoding(e: der::Error) -> Error {
    Error::Invalid(format!("the OCSP message cannot be encoded: {e}"))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{CertSpec, DistinguishedName, Issuer, KeyType, NameAttribute, PrivateKey};

    /// A DER TLV of `tag` around the concatenation of `parts`.
    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let content = parts.concat();
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend(content);
        out
    }

    const SEQ: u8 = 0x30;
    const SHA1_NO_PARAMS: &[u8] = &[0x30, 0x07, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
    const SHA1_WITH_NULL: &[u8] = &[
        0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
    ];
    const SHA384_WITH_NULL: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
    ];

    fn cert_id_der(algorithm: &[u8], hash_len: usize, serial: &[u8]) -> Vec<u8> {
        tlv(
            SEQ,
            &[
                algorithm,
                &tlv(0x04, &[&vec![0x11; hash_len]]),
                &tlv(0x04, &[&vec![0x22; hash_len]]),
                &tlv(0x02, &[serial]),
            ],
        )
    }

    /// An OCSPRequest around `requests` (each a Request's content), with `before` ahead of
    /// the list in the TBSRequest, `extensions` (the content of `[2]`), and `after` the
    /// TBSRequest.
    fn request_der(
        before: &[u8],
        requests: &[Vec<u8>],
        extensions: &[u8],
        after: &[u8],
    ) -> Vec<u8> {
        let list: Vec<Vec<u8>> = requests.iter().map(|r| tlv(SEQ, &[r])).collect();
        let list: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        let extensions = if extensions.is_empty() {
            Vec::new()
        } else {
            tlv(0xa2, &[&tlv(SEQ, &[extensions])])
        };
        tlv(
            SEQ,
            &[&tlv(SEQ, &[before, &tlv(SEQ, &list), &extensions]), after],
        )
    }

    fn extension(oid: &[u8], critical: Option<u8>, value: &[u8]) -> Vec<u8> {
        let critical = critical.map(|c| vec![0x01, 0x01, c]).unwrap_or_default();
        tlv(SEQ, &[&tlv(0x06, &[oid]), &critical, &tlv(0x04, &[value])])
    }

    const NONCE_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
    const RESPONSE_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x04];
    const OTHER_OID: &[u8] = &[0x2a, 0x03, 0x04];

    /// `count` non-critical extensions that are not understood, one after another.
    fn others(count: usize) -> Vec<u8> {
        vec![extension(OTHER_OID, None, b""); count].concat()
    }

    fn nonce(len: usize) -> Vec<u8> {
        extension(NONCE_OID, None, &tlv(0x04, &[&vec![0x5a; len]]))
    }

    fn ca() -> (Arc<PrivateKey>, Certificate) {
        let key = Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap());
        let mut subject = DistinguishedName::new();
        subject
            .set(NameAttribute::CommonName, "OCSP unit CA")
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let spec = CertSpec {
            ca: Some(None),
            ..CertSpec::new(
                subject,
                key.public_key_der(),
                crate::random::serial().unwrap(),
                now,
                now + time::Duration::days(1),
            )
        };
        let der = crate::cert::build(
            &spec,
            Issuer::SelfSigned(key.as_ref()),
            &crate::lint::Policy::default(),
        )
        .unwrap()
        .der;
        (key, Certificate::parse(&der).unwrap())
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn cert_ids_are_read_and_echoed_octet_for_octet() {
        let (key, _) = ca();
        let responder = Responder::new(key.clone(), None).unwrap();
        let cases = [
            (
                cert_id_der(SHA1_NO_PARAMS, 20, &[0x01]),
                HashAlgorithm::Sha1,
                vec![0x01],
            ),
            (
                cert_id_der(SHA384_WITH_NULL, 48, &[0x00, 0x80]),
                HashAlgorithm::Other(const_oid::db::rfc5912::ID_SHA_384),
                vec![0x00, 0x80],
            ),
            (
                cert_id_der(SHA1_NO_PARAMS, 3, &[0xff, 0x7f]),
                HashAlgorithm::Sha1,
                vec![0xff, 0x7f],
            ),
            (
                cert_id_der(SHA1_NO_PARAMS, 20, &[0x00]),
                HashAlgorithm::Sha1,
                vec![0x00],
            ),
            (
                cert_id_der(
                    SHA1_NO_PARAMS,
                    20,
                    &[[0x00].as_slice(), &[0x99; 20]].concat(),
                ),
                HashAlgorithm::Sha1,
                [[0x00].as_slice(), &[0x99; 20]].concat(),
            ),
        ];
        for (der, algorithm, serial) in cases {
            let request =
                Request::parse(&request_der(&[], std::slice::from_ref(&der), &[], &[])).unwrap();
            let [cert_id] = request.cert_ids() else {
                panic!("one CertID expected")
            };
            assert_eq!(cert_id.hash_algorithm(), algorithm);
            assert_eq!(cert_id.serial(), serial);
            assert_eq!(cert_id.issuer_name_hash().first(), Some(&0x11));
            assert_eq!(cert_id.issuer_key_hash().first(), Some(&0x22));
            assert_eq!(
                cert_id.issuer_name_hash().len(),
                cert_id.issuer_key_hash().len()
            );

            let response = sign(
                &ResponseData {
                    produced_at: at(1_800_000_000),
                    responses: &[SingleResponse {
                        cert_id,
                        status: CertStatus::Unknown,
                        this_update: at(1_800_000_000),
                        next_update: at(1_800_003_600),
                    }],
                    nonce: None,
                },
                &responder,
            )
            .unwrap();
            assert!(contains(&response, &der), "{cert_id:?} not echoed as sent");
        }
    }

    #[test]
    fn a_signed_response_says_what_it_was_given() {
        let (key, ca) = ca();
        let hashes = IssuerKeyHashes::new(&ca).unwrap();
        let ids = [
            CertId::for_certificate(&hashes, &[0x01, 0x02], HashAlgorithm::Sha1).unwrap(),
            CertId::for_certificate(&hashes, &[0x03], HashAlgorithm::Sha256).unwrap(),
        ];
        assert!(ids.iter().all(|id| hashes.matches(id)));
        let produced_at = at(1_800_000_000) + time::Duration::milliseconds(999);
        let responses = [
            SingleResponse {
                cert_id: &ids[0],
                status: CertStatus::Revoked {
                    revoked_at: at(1_700_000_000),
                    reason: Some(1),
                },
                this_update: produced_at,
                next_update: produced_at + time::Duration::hours(1),
            },
            SingleResponse {
                cert_id: &ids[1],
                status: CertStatus::Revoked {
                    revoked_at: at(1_700_000_000),
                    reason: Some(0),
                },
                this_update: produced_at,
                next_update: produced_at + time::Duration::hours(1),
            },
        ];
        let nonce = [9; 32];
        let der = sign(
            &ResponseData {
                produced_at,
                responses: &responses,
                nonce: Some(&nonce),
            },
            &Responder::new(key.clone(), None).unwrap(),
        )
        .unwrap();

        let response = wire::OcspResponse::from_der(&der).unwrap();
        assert_eq!(
            response.response_status,
            wire::OcspResponseStatus::Successful
        );
        let bytes = response.response_bytes.unwrap();
        assert_eq!(
            bytes.response_type,
            const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC
        );
        let basic = wire::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        assert_eq!(basic.certs, None);
        assert_eq!(
            basic.signature_algorithm.oid,
            const_oid::db::rfc5912::ECDSA_WITH_SHA_256
        );
        let tbs = &basic.tbs_response_data;
        let wire::ResponderId::ByKey(hash) = &tbs.responder_id else {
            panic!("byKey expected")
        };
        assert_eq!(
            hash.as_bytes(),
            Sha1::digest(public_key_bits(&ca.public_key_der).unwrap()).as_slice()
        );
        // Whole seconds.
        assert_eq!(
            tbs.produced_at.0.to_unix_duration().as_secs(),
            1_800_000_000
        );
        assert_eq!(
            tbs.produced_at.0.to_der().unwrap(),
            b"\x18\x0f20270115080000Z"
        );
        let reasons: Vec<_> = tbs
            .responses
            .iter()
            .map(|r| match r.cert_status {
                wire::CertStatus::Revoked(info) => info.revocation_reason,
                other => panic!("revoked expected, not {other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [Some(x509_cert::ext::pkix::CrlReason::KeyCompromise), None]
        );
        assert_eq!(basic.nonce().unwrap().0.as_bytes(), nonce);

        // The signature covers the tbsResponseData.
        let tbs_der = tbs.to_der().unwrap();
        let spki = SubjectPublicKeyInfoRef::from_der(&ca.public_key_der).unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            spki.subject_public_key.raw_bytes(),
        )
        .verify(&tbs_der, basic.signature.raw_bytes())
        .unwrap();
    }

    #[test]
    fn error_responses_are_the_statuses_encoded() {
        for (status, wire_status) in [
            (
                ResponseStatus::MalformedRequest,
                wire::OcspResponseStatus::MalformedRequest,
            ),
            (
                ResponseStatus::InternalError,
                wire::OcspResponseStatus::InternalError,
            ),
            (ResponseStatus::TryLater, wire::OcspResponseStatus::TryLater),
            (
                ResponseStatus::SigRequired,
                wire::OcspResponseStatus::SigRequired,
            ),
            (
                ResponseStatus::Unauthorized,
                wire::OcspResponseStatus::Unauthorized,
            ),
        ] {
            let encoded = wire::OcspResponse {
                response_status: wire_status,
                response_bytes: None,
            }
            .to_der()
            .unwrap();
            assert_eq!(error_response(status), encoded, "{status:?}");
        }
    }

    #[test]
    fn built_requests_read_back() {
        let (_, ca) = ca();
        let hashes = IssuerKeyHashes::new(&ca).unwrap();
        let a = CertId::for_certificate(&hashes, &[0x00, 0xff], HashAlgorithm::Sha1).unwrap();
        let b = CertId::for_certificate(&hashes, &[0x00, 0xff], HashAlgorithm::Sha256).unwrap();
        assert_ne!(a, b, "the hash algorithm is part of the identity");
        assert_eq!(a.serial(), [0x00, 0xff]);
        for nonce in [None, Some(&[1u8][..]), Some(&[2; 32][..])] {
            let der = request(&[a.clone(), b.clone()], nonce).unwrap();
            let parsed = Request::parse(&der).unwrap();
            assert_eq!(parsed.cert_ids(), [a.clone(), b.clone()]);
            assert_eq!(parsed.nonce(), nonce);
        }
        let set: HashSet<CertId> = [a.clone(), b.clone(), a.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);

        assert!(request(&[], None).is_err());
        assert!(request(&vec![a.clone(); MAX_CERT_IDS + 1], None).is_err());
        assert!(request(std::slice::from_ref(&a), Some(&[])).is_err());
        assert!(request(std::slice::from_ref(&a), Some(&[0; 33])).is_err());
        let other = HashAlgorithm::Other(const_oid::db::rfc5912::ID_SHA_384);
        assert!(CertId::for_certificate(&hashes, &[1], other).is_err());
        for serial in [&[][..], &[0x00, 0x01], &[0xff, 0x80], &[0x01; 22]] {
            assert!(
                CertId::for_certificate(&hashes, serial, HashAlgorithm::Sha1).is_err(),
                "{serial:?}"
            );
        }
    }

    #[test]
    fn requests_are_read_leniently_where_rfc_6960_allows_and_strictly_elsewhere() {
        let id = cert_id_der(SHA1_NO_PARAMS, 20, &[0x05]);
        let one = [id.clone()];
        let version = |v: u8| tlv(0xa0, &[&[0x02, 0x01, v]]);
        let requestor = tlv(0xa1, &[&tlv(0x82, &[b"client.example"])]);
        let signature = tlv(0xa0, &[&tlv(SEQ, &[SHA1_NO_PARAMS, &[0x03, 0x01, 0x00]])]);
        let single_ext = |critical| {
            [
                id.clone(),
                tlv(0xa0, &[&tlv(SEQ, &[&extension(OTHER_OID, critical, b"")])]),
            ]
            .concat()
        };
        let accepted: Vec<(&str, Vec<u8>)> = vec![
            ("plain", request_der(&[], &one, &[], &[])),
            (
                "version v1 written out",
                request_der(&version(0), &one, &[], &[]),
            ),
            ("requestorName", request_der(&requestor, &one, &[], &[])),
            ("signed", request_der(&[], &one, &[], &signature)),
            (
                "unknown extension",
                request_der(&[], &one, &extension(OTHER_OID, None, b""), &[]),
            ),
            (
                "critical FALSE written out",
                request_der(&[], &one, &extension(OTHER_OID, Some(0x00), b""), &[]),
            ),
            (
                "critical acceptable responses",
                request_der(
                    &[],
                    &one,
                    &extension(RESPONSE_OID, Some(0xff), b"\x30\x00"),
                    &[],
                ),
            ),
            (
                "single request extension",
                request_der(&[], &[single_ext(None)], &[], &[]),
            ),
            ("nonce", request_der(&[], &one, &nonce(16), &[])),
            (
                "SHA-1 with NULL parameters",
                request_der(&[], &[cert_id_der(SHA1_WITH_NULL, 20, &[0x05])], &[], &[]),
            ),
            (
                "as many extensions as allowed",
                request_der(&[], &one, &others(MAX_EXTENSIONS), &[]),
            ),
        ];
        for (what, der) in accepted {
            let request = Request::parse(&der).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(request.cert_ids().len(), 1, "{what}");
        }

        let refused: Vec<(&str, Vec<u8>)> = vec![
            ("version v2", request_der(&version(1), &one, &[], &[])),
            (
                "SHA-1 with parameters other than NULL",
                request_der(
                    &[],
                    &[cert_id_der(
                        &tlv(SEQ, &[&SHA1_NO_PARAMS[2..], &[0x04, 0x01, 0x07]]),
                        20,
                        &[0x05],
                    )],
                    &[],
                    &[],
                ),
            ),
            (
                "one CertID more than allowed",
                request_der(&[], &vec![id.clone(); MAX_CERT_IDS + 1], &[], &[]),
            ),
            (
                "one request extension more than allowed",
                request_der(&[], &one, &others(MAX_EXTENSIONS + 1), &[]),
            ),
            (
                "one CertID extension more than allowed",
                request_der(
                    &[],
                    &[[
                        id.clone(),
                        tlv(0xa0, &[&tlv(SEQ, &[&others(MAX_EXTENSIONS + 1)])]),
                    ]
                    .concat()],
                    &[],
                    &[],
                ),
            ),
            ("no CertID", request_der(&[], &[], &[], &[])),
            (
                "too many",
                request_der(&[], &vec![id.clone(); MAX_CERT_IDS + 1], &[], &[]),
            ),
            (
                "critical unknown extension",
                request_der(&[], &one, &extension(OTHER_OID, Some(0xff), b""), &[]),
            ),
            (
                "critical flag not DER",
                request_der(&[], &one, &extension(OTHER_OID, Some(0x01), b""), &[]),
            ),
            (
                "critical single request extension",
                request_der(&[], &[single_ext(Some(0xff))], &[], &[]),
            ),
            ("empty nonce", request_der(&[], &one, &nonce(0), &[])),
            ("33-octet nonce", request_der(&[], &one, &nonce(33), &[])),
            (
                "two nonces",
                request_der(&[], &one, &[nonce(8), nonce(8)].concat(), &[]),
            ),
            (
                "nonce not an OCTET STRING",
                request_der(
                    &[],
                    &one,
                    &extension(NONCE_OID, None, &[0x02, 0x01, 0x01]),
                    &[],
                ),
            ),
            (
                "nonce with trailing bytes",
                request_der(
                    &[],
                    &one,
                    &extension(NONCE_OID, None, &[0x04, 0x01, 0x01, 0x00]),
                    &[],
                ),
            ),
            (
                "22-octet serial",
                request_der(
                    &[],
                    &[cert_id_der(SHA1_NO_PARAMS, 20, &[0x7f; 22])],
                    &[],
                    &[],
                ),
            ),
            (
                "serial with a redundant zero",
                request_der(
                    &[],
                    &[cert_id_der(SHA1_NO_PARAMS, 20, &[0x00, 0x7f])],
                    &[],
                    &[],
                ),
            ),
            (
                "empty serial",
                request_der(&[], &[cert_id_der(SHA1_NO_PARAMS, 20, &[])], &[], &[]),
            ),
            (
                "CertID with something after the serial",
                request_der(&[], &[[&id[..], &[0x05, 0x00]].concat()], &[], &[]),
            ),
            (
                "CertID with trailing bytes inside",
                request_der(&[], &[tlv(SEQ, &[&id[2..], &[0x05, 0x00]])], &[], &[]),
            ),
            (
                "trailing bytes",
                [request_der(&[], &one, &[], &[]), vec![0x00]].concat(),
            ),
            (
                "something after the signature",
                request_der(&[], &one, &[], &[0x05, 0x00]),
            ),
            (
                "long-form length where short form does",
                [&[0x30, 0x81][..], &request_der(&[], &one, &[], &[])[1..]].concat(),
            ),
            (
                "indefinite length",
                [
                    &[0x30, 0x80][..],
                    &request_der(&[], &one, &[], &[])[2..],
                    &[0x00, 0x00],
                ]
                .concat(),
            ),
        ];
        for (what, der) in refused {
            assert!(Request::parse(&der).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn random_and_damaged_input_is_refused_without_panicking() {
        let (_, ca) = ca();
        let hashes = IssuerKeyHashes::new(&ca).unwrap();
        let id = CertId::for_certificate(&hashes, &[0x42; 16], HashAlgorithm::Sha256).unwrap();
        let valid = request(&[id.clone(), id], Some(&[7; 16])).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut der = valid.clone();
            for _ in 0..=next() % 4 {
                let i = (next() % der.len() as u64) as usize;
                der[i] = next() as u8;
            }
            let cut = (next() % (der.len() as u64 + 1)) as usize;
            let _ = Request::parse(&der[..cut]);
            let _ = Request::parse(&der);
            let random: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let _ = Request::parse(&random);
        }
    }

    #[test]
    fn bad_responses_are_refused_before_signing() {
        let (key, ca) = ca();
        let responder = Responder::new(key.clone(), None).unwrap();
        let hashes = IssuerKeyHashes::new(&ca).unwrap();
        let id = CertId::for_certificate(&hashes, &[0x01], HashAlgorithm::Sha1).unwrap();
        let t = at(1_800_000_000);
        let single = |status, next_update| SingleResponse {
            cert_id: &id,
            status,
            this_update: t,
            next_update,
        };
        let revoked = |reason| CertStatus::Revoked {
            revoked_at: t,
            reason: Some(reason),
        };
        let later = t + time::Duration::hours(1);
        for (what, responses, nonce) in [
            ("no response", vec![], None),
            (
                "nextUpdate = thisUpdate",
                vec![single(CertStatus::Good, t)],
                None,
            ),
            ("reason 7", vec![single(revoked(7), later)], None),
            ("removeFromCRL", vec![single(revoked(8), later)], None),
            ("reason 11", vec![single(revoked(11), later)], None),
            (
                "empty nonce",
                vec![single(CertStatus::Good, later)],
                Some(&[][..]),
            ),
            (
                "33-octet nonce",
                vec![single(CertStatus::Good, later)],
                Some(&[0; 33][..]),
            ),
        ] {
            let data = ResponseData {
                produced_at: t,
                responses: &responses,
                nonce,
            };
            assert!(sign(&data, &responder).is_err(), "{what}");
        }
        let before_1970 = SingleResponse {
            this_update: at(-1),
            ..single(CertStatus::Good, later)
        };
        let data = ResponseData {
            produced_at: t,
            responses: &[before_1970],
            nonce: None,
        };
        assert!(sign(&data, &responder).is_err(), "before 1970");
    }

    #[test]
    fn delegated_responder_certificates_are_checked() {
        let (key, ca) = ca();
        // The CA's own certificate has no OCSPSigning.
        assert!(Responder::new(key.clone(), Some(ca.der.clone())).is_err());
        // Another key's certificate.
        let other = Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap());
        assert!(Responder::new(other, Some(ca.der.clone())).is_err());
        assert!(Responder::new(key, Some(b"not a certificate".to_vec())).is_err());
    }
}
