//! CMS SignedData (RFC 5652 §5) as pkiMessages use it: read without sorting or decoding more
//! than asked for, its one signer's signature checked, and written (signed with a [`Party`]'s
//! key, or certs-only).

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_2048_8192_SHA512, UnparsedPublicKey,
};
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo as CmsSigner,
    SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use const_oid::db::rfc5912::{
    RSA_ENCRYPTION, SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::{Any, AnyRef, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};

use super::attributes::Outgoing;
use super::party::{Certificate, KeyRef, Party};
use super::{Digest, FailInfo, MAX_CERTIFICATES, Refusal};
use crate::Error;

/// A CMS ContentInfo, borrowed.
#[derive(der::Sequence)]
pub(crate) struct ContentInfoRef<'a> {
    pub(crate) content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub(crate) content: AnyRef<'a>,
}

/// A SignedData as read: the parts a pkiMessage or a certs-only reply uses, each as the DER it
/// was read from.
#[derive(Debug)]
pub(crate) struct SignedMessage<'a> {
    /// The certificates (each a full TLV), at most [`MAX_CERTIFICATES`].
    pub(crate) certificates: Vec<&'a [u8]>,
    /// The CRLs (each a full TLV), at most [`MAX_CERTIFICATES`].
    pub(crate) crls: Vec<&'a [u8]>,
    /// The eContentType.
    pub(crate) content_type: ObjectIdentifier,
    /// The eContent OCTET STRING's content, if present.
    pub(crate) content: Option<&'a [u8]>,
    /// The signer, if there is one (a certs-only SignedData has none).
    pub(crate) signer: Option<SignerInfo<'a>>,
}

/// The TLVs of a SET or SEQUENCE value, at most `max` of them.
pub(crate) fn elements<'a>(
    value: &'a [u8],
    max: usize,
    what: &str,
) -> Result<Vec<&'a [u8]>, String> {
    let mut reader = SliceReader::new(value).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        if out.len() == max {
            return Err(format!("more than {max} {what}"));
        }
        out.push(reader.tlv_bytes().map_err(|e| format!("{what}: {e}"))?);
    }
    Ok(out)
}

fn context(number: TagNumber, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number,
    }
}

/// Reads a ContentInfo holding a SignedData.
pub(crate) fn read<'a>(der: &'a [u8]) -> Result<SignedMessage<'a>, String> {
    let info = ContentInfoRef::from_der(der).map_err(|e| format!("not a CMS message: {e}"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(format!(
            "a CMS {} where a SignedData belongs",
            info.content_type
        ));
    }
    struct Raw<'a> {
        content_type: ObjectIdentifier,
        content: Option<&'a [u8]>,
        certificates: Option<&'a [u8]>,
        crls: Option<&'a [u8]>,
        signer_infos: AnyRef<'a>,
    }
    let raw = info
        .content
        .sequence(|r| {
            u8::decode(r)?;
            AnyRef::decode(r)?;
            let (content_type, content) = r.sequence(|r| {
                let content_type = ObjectIdentifier::decode(r)?;
                let content = der::asn1::ContextSpecific::<OctetStringRef<'_>>::decode_explicit(
                    r,
                    TagNumber::N0,
                )?;
                Ok((content_type, content.map(|c| c.value.as_bytes())))
            })?;
            let mut optional = |number| -> der::Result<Option<&[u8]>> {
                if r.peek_tag().ok() == Some(context(number, true)) {
                    Ok(Some(AnyRef::decode(r)?.value()))
                } else {
                    Ok(None)
                }
            };
            let certificates = optional(TagNumber::N0)?;
            let crls = optional(TagNumber::N1)?;
            Ok(Raw {
                content_type,
                content,
                certificates,
                crls,
                signer_infos: AnyRef::decode(r)?,
            })
        })
        .map_err(|e| format!("malformed SignedData: {e}"))?;
    if raw.signer_infos.tag() != Tag::Set {
        return Err("malformed SignedData: signerInfos is not a SET".into());
    }
    let list = |value: Option<&'a [u8]>, what| {
        value.map_or(Ok(Vec::new()), |v| elements(v, MAX_CERTIFICATES, what))
    };
    let certificates = list(raw.certificates, "certificates")?;
    let crls = list(raw.crls, "CRLs")?;
    let signer = match elements(raw.signer_infos.value(), 1, "signers")?.first() {
        Some(tlv) => Some(SignerInfo::read(tlv)?),
        None => None,
    };
    Ok(SignedMessage {
        certificates,
        crls,
        content_type: raw.content_type,
        content: raw.content,
        signer,
    })
}

/// A SignerInfo as read.
#[derive(Debug)]
pub(crate) struct SignerInfo<'a> {
    pub(crate) sid: KeyRef<'a>,
    pub(crate) digest_algorithm: ObjectIdentifier,
    /// The content of `signedAttrs`: what the signature covers, once tagged as a SET.
    pub(crate) signed_attrs: &'a [u8],
    signature_algorithm: ObjectIdentifier,
    signature: &'a [u8],
}

impl<'a> SignerInfo<'a> {
    fn read(tlv: &'a [u8]) -> Result<Self, String> {
        let malformed = |e: der::Error| format!("malformed SignerInfo: {e}");
        let (sid, digest_algorithm, attrs, signature_algorithm, signature) = AnyRef::from_der(tlv)
            .and_then(|any| {
                any.sequence(|r| {
                    u8::decode(r)?;
                    let sid = r.tlv_bytes()?;
                    let digest = AlgorithmIdentifierRef::decode(r)?.oid;
                    let attrs = AnyRef::decode(r)?;
                    let signature_algorithm = AlgorithmIdentifierRef::decode(r)?.oid;
                    let signature = OctetStringRef::decode(r)?.as_bytes();
                    if !r.is_finished() {
                        AnyRef::decode(r)?;
                    }
                    Ok((sid, digest, attrs, signature_algorithm, signature))
                })
            })
            .map_err(malformed)?;
        if attrs.tag() != context(TagNumber::N0, true) {
            return Err("the SignerInfo has no signed attributes".into());
        }
        Ok(Self {
            sid: KeyRef::read(sid)?,
            digest_algorithm,
            signed_attrs: attrs.value(),
            signature_algorithm,
            signature,
        })
    }

    /// Checks the signature over the signed attributes with `signer`'s key and returns the
    /// digest algorithm: badAlg for an algorithm or key certmint does not read,
    /// badMessageCheck for a signature that does not verify.
    pub(crate) fn verify(&self, signer: &Certificate) -> Result<Digest, Refusal> {
        let digest = Digest::from_oid(self.digest_algorithm).ok_or_else(|| {
            Refusal::new(
                FailInfo::BadAlg,
                format!(
                    "digest algorithm {} is not supported; use SHA-256, SHA-512 or SHA-1",
                    self.digest_algorithm
                ),
            )
        })?;
        let matching = match digest {
            Digest::Sha1 => SHA_1_WITH_RSA_ENCRYPTION,
            Digest::Sha256 => SHA_256_WITH_RSA_ENCRYPTION,
            Digest::Sha512 => SHA_512_WITH_RSA_ENCRYPTION,
        };
        if self.signature_algorithm != RSA_ENCRYPTION && self.signature_algorithm != matching {
            return Err(Refusal::new(
                FailInfo::BadAlg,
                format!(
                    "signature algorithm {} with digest {} is not supported; sign with RSA \
                     PKCS#1 v1.5",
                    self.signature_algorithm,
                    digest.name()
                ),
            ));
        }
        if !signer.is_rsa() {
            return Err(Refusal::new(
                FailInfo::BadAlg,
                "the signer's key is not RSA of at least 2048 bits: SCEP encrypts replies to it \
                 with RSA key transport",
            ));
        }
        let algorithm = match digest {
            Digest::Sha1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Digest::Sha256 => &RSA_PKCS1_2048_8192_SHA256,
            Digest::Sha512 => &RSA_PKCS1_2048_8192_SHA512,
        };
        let signed = super::tlv(Tag::Set, self.signed_attrs)
            .map_err(|e| Refusal::new(FailInfo::BadRequest, e.to_string()))?;
        UnparsedPublicKey::new(algorithm, &signer.public_key)
            .verify(&signed, self.signature)
            .map_err(|_| {
                Refusal::new(
                    FailInfo::BadMessageCheck,
                    "the signature over the signed attributes does not verify",
                )
            })?;
        Ok(digest)
    }
}

/// Writes a pkiMessage: a SignedData around `content` (as id-data), signed by `party` with
/// `digest` over `attributes`, carrying the party's certificate.
pub(crate) fn sign(
    party: &Party,
    digest: Digest,
    attributes: &Outgoing<'_>,
    content: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let encoding = |e: der::Error| Error::Invalid(format!("cannot encode a pkiMessage: {e}"));
    let message_digest = digest.hash(content.unwrap_or_default());
    let signed_attrs = attributes
        .encode(message_digest.as_ref())
        .map_err(encoding)?;
    let signature = party.sign(digest, &signed_attrs.to_der().map_err(encoding)?)?;
    let digest_algorithm = AlgorithmIdentifierOwned {
        oid: digest.oid(),
        parameters: None,
    };
    let signer = CmsSigner {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(party.sid.clone()),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(encoding)?,
        unsigned_attrs: None,
    };
    let econtent = content
        .map(|c| Any::new(Tag::OctetString, c))
        .transpose()
        .map_err(encoding)?;
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm]).map_err(encoding)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![CertificateChoices::Certificate(party.x509.clone())])
                .map_err(encoding)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(encoding)?),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

/// A certs-only SignedData (no signer, no content) holding `certificates` and `crls` (each
/// DER), in the order given: what a SUCCESS reply's envelope holds. Not sorted into DER SET
/// order (which `crate::bundle::pkcs7_certs_only` writes): SCEP clients take the first
/// certificate for the one issued to them (micromdm's and smallstep's `scep` libraries do), and
/// every reader of PKCS#7 takes the SET in whatever order it comes.
pub(crate) fn certs_only(certificates: &[&[u8]], crls: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let encoding = |e: der::Error| Error::Invalid(format!("cannot encode a certs-only reply: {e}"));
    for (i, der) in certificates.iter().enumerate() {
        Certificate::parse(der)
            .map_err(|e| Error::Invalid(format!("certificate {}: {e}", i + 1)))?;
    }
    for der in crls {
        if !AnyRef::from_der(der).is_ok_and(|crl| crl.tag() == Tag::Sequence) {
            return Err(Error::Invalid("the CRL is not DER".into()));
        }
    }
    let empty_set = super::tlv(Tag::Set, &[]).map_err(encoding)?;
    let mut body = 1u8.to_der().map_err(encoding)?;
    body.extend_from_slice(&empty_set);
    EncapsulatedContentInfo {
        econtent_type: ID_DATA,
        econtent: None,
    }
    .encode_to_vec(&mut body)
    .map_err(encoding)?;
    for (number, list) in [(TagNumber::N0, certificates), (TagNumber::N1, crls)] {
        if !list.is_empty() {
            let tagged = super::tlv(context(number, true), &list.concat()).map_err(encoding)?;
            body.extend_from_slice(&tagged);
        }
    }
    body.extend_from_slice(&empty_set);
    let signed = super::tlv(Tag::Sequence, &body).map_err(encoding)?;
    ContentInfoRef {
        content_type: ID_SIGNED_DATA,
        content: AnyRef::from_der(&signed).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}
