//! CMS EnvelopedData (RFC 5652 §6) as SCEP uses it, the pkcsPKIEnvelope: content encrypted
//! with DES, triple DES or AES in CBC mode under a random key, that key encrypted to one RSA
//! certificate with PKCS#1 v1.5 (KeyTransRecipientInfo).

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{Pkcs1PublicEncryptingKey, PublicEncryptingKey};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_DATA, ID_ENVELOPED_DATA, RC_2_CBC};
use const_oid::db::rfc5912::RSA_ENCRYPTION;
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode, Reader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use super::party::{Certificate, KeyRef, Party};
use super::signed::{ContentInfoRef, elements};
use super::{ContentCipher, FailInfo, Ra, Refusal};
use crate::Error;

/// The most recipients an envelope may name: a client encrypts to the RA, perhaps also to the
/// CA.
const MAX_RECIPIENTS: usize = 8;

/// Decrypts a pkcsPKIEnvelope (a ContentInfo holding an EnvelopedData, DER) with the RA's key:
/// what [`super::read_request`] does with a request's content, for callers that hold an
/// envelope alone. Returns the cipher the content was encrypted with and the content.
///
/// # Errors
/// [`Error::Invalid`] saying why: not an EnvelopedData, a cipher or key transport certmint
/// does not support, not encrypted to the RA certificate, or not decryptable with its key.
pub fn decrypt_envelope(der: &[u8], ra: &Ra) -> Result<(ContentCipher, Vec<u8>), Error> {
    let failed = |r: Refusal| Error::Invalid(r.reason);
    let sealed = Sealed::read(der).map_err(failed)?;
    let cipher = sealed.cipher().map_err(failed)?;
    let content = sealed.open(&ra.party).map_err(failed)?;
    Ok((cipher, content))
}

/// An EnvelopedData as read, not yet decrypted.
pub(crate) struct Sealed<'a> {
    recipients: Vec<&'a [u8]>,
    algorithm: AlgorithmIdentifierRef<'a>,
    encrypted_content: Vec<u8>,
}

/// Most segments a constructed encrypted content may be split into.
const MAX_SEGMENTS: usize = 1024;

/// The octets of a constructed `[0]` encrypted content: its OCTET STRING segments, joined.
/// Go's pkcs7 package, which micromdm's scepclient uses, writes the content this way (one
/// segment in a constructed tag), as BER allows and RFC 5652 §6.1 accepts.
fn segments(value: &[u8]) -> Result<Vec<u8>, String> {
    let mut reader = der::SliceReader::new(value).map_err(|e| e.to_string())?;
    let mut joined = Vec::with_capacity(value.len());
    let mut count = 0;
    while !reader.is_finished() {
        count += 1;
        if count > MAX_SEGMENTS {
            return Err(format!(
                "the encrypted content is split into more than {MAX_SEGMENTS} segments"
            ));
        }
        let segment = OctetStringRef::decode(&mut reader)
            .map_err(|e| format!("a segment of the encrypted content: {e}"))?;
        joined.extend_from_slice(segment.as_bytes());
    }
    Ok(joined)
}

/// One KeyTransRecipientInfo.
struct KeyTrans<'a> {
    rid: &'a [u8],
    key_encryption: ObjectIdentifier,
    encrypted_key: &'a [u8],
}

impl<'a> Sealed<'a> {
    /// Reads the structure; badRequest when it is not an EnvelopedData.
    pub(crate) fn read(der: &'a [u8]) -> Result<Self, Refusal> {
        let malformed = |e: String| Refusal::new(FailInfo::BadRequest, e);
        let info = ContentInfoRef::from_der(der)
            .map_err(|e| malformed(format!("the content is not a CMS message: {e}")))?;
        if info.content_type != ID_ENVELOPED_DATA {
            return Err(malformed(format!(
                "the content is a CMS {}, not an EnvelopedData",
                info.content_type
            )));
        }
        let (recipients, algorithm, encrypted_content) = info
            .content
            .sequence(|r| {
                u8::decode(r)?;
                let context = |number| Tag::ContextSpecific {
                    constructed: true,
                    number,
                };
                if r.peek_tag()? == context(TagNumber::N0) {
                    AnyRef::decode(r)?;
                }
                let recipients = AnyRef::decode(r)?;
                let (algorithm, content) = r.sequence(|r| {
                    ObjectIdentifier::decode(r)?;
                    let algorithm = AlgorithmIdentifierRef::decode(r)?;
                    let content = if r.is_finished() {
                        None
                    } else {
                        Some(AnyRef::decode(r)?)
                    };
                    Ok((algorithm, content))
                })?;
                if !r.is_finished() {
                    AnyRef::decode(r)?.tag().assert_eq(context(TagNumber::N1))?;
                }
                Ok((recipients, algorithm, content))
            })
            .map_err(|e| malformed(format!("malformed EnvelopedData: {e}")))?;
        if recipients.tag() != Tag::Set {
            return Err(malformed(
                "malformed EnvelopedData: recipientInfos is not a SET".into(),
            ));
        }
        let content_tag = |constructed| Tag::ContextSpecific {
            constructed,
            number: TagNumber::N0,
        };
        let encrypted_content = match encrypted_content {
            Some(c) if c.tag() == content_tag(false) => c.value().to_vec(),
            Some(c) if c.tag() == content_tag(true) => segments(c.value()).map_err(malformed)?,
            Some(c) => {
                return Err(malformed(format!(
                    "the encrypted content is tagged {}, not [0]",
                    c.tag()
                )));
            }
            None => {
                return Err(malformed(
                    "the EnvelopedData has no encrypted content".into(),
                ));
            }
        };
        Ok(Self {
            recipients: elements(recipients.value(), MAX_RECIPIENTS, "recipients")
                .map_err(malformed)?,
            algorithm,
            encrypted_content,
        })
    }

    /// The content cipher; badAlg for one certmint does not support.
    pub(crate) fn cipher(&self) -> Result<ContentCipher, Refusal> {
        let oid = self.algorithm.oid;
        ContentCipher::from_oid(oid).ok_or_else(|| {
            let name = if oid == RC_2_CBC {
                "RC2-CBC".to_owned()
            } else {
                oid.to_string()
            };
            Refusal::new(
                FailInfo::BadAlg,
                format!(
                    "content encryption with {name} is not supported; use AES-CBC, \
                     DES-EDE3-CBC or DES-CBC"
                ),
            )
        })
    }

    /// Decrypts the content with `party`'s key: badMessageCheck when the envelope is not for
    /// its certificate or does not decrypt, badAlg for a key transport other than RSA PKCS#1
    /// v1.5.
    pub(crate) fn open(&self, party: &Party) -> Result<Vec<u8>, Refusal> {
        let cipher = self.cipher()?;
        let mine = self
            .recipients
            .iter()
            .filter_map(|tlv| KeyTrans::read(tlv))
            .find(|k| KeyRef::read(k.rid).is_ok_and(|id| party.certificate.is(id)))
            .ok_or_else(|| {
                Refusal::new(
                    FailInfo::BadMessageCheck,
                    "the envelope is not encrypted to the RA certificate",
                )
            })?;
        if mine.key_encryption != RSA_ENCRYPTION {
            return Err(Refusal::new(
                FailInfo::BadAlg,
                format!(
                    "key transport {} is not supported; use RSA PKCS#1 v1.5 (rsaEncryption)",
                    mine.key_encryption
                ),
            ));
        }
        let iv = self
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<OctetStringRef<'_>>().ok())
            .map(|iv| iv.as_bytes())
            .and_then(|iv| iv_context(cipher, iv))
            .ok_or_else(|| {
                Refusal::new(
                    FailInfo::BadRequest,
                    format!(
                        "the {} parameters are not an IV of one block",
                        cipher.name()
                    ),
                )
            })?;
        let key = content_key(party, cipher, mine.encrypted_key)?;
        let undecryptable = || {
            Refusal::new(
                FailInfo::BadMessageCheck,
                "the envelope does not decrypt with the RA's key",
            )
        };
        let key = UnboundCipherKey::new(cipher.algorithm(), &key)
            .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
            .map_err(|_| undecryptable())?;
        let mut buffer = self.encrypted_content.clone();
        let plain = key.decrypt(&mut buffer, iv).map_err(|_| undecryptable())?;
        Ok(plain.to_vec())
    }
}

impl<'a> KeyTrans<'a> {
    /// Reads a KeyTransRecipientInfo; `None` for another kind of RecipientInfo or one that
    /// does not parse (it cannot be the RA's).
    fn read(tlv: &'a [u8]) -> Option<Self> {
        AnyRef::from_der(tlv)
            .and_then(|any| {
                any.sequence(|r| {
                    u8::decode(r)?;
                    let rid = r.tlv_bytes()?;
                    let key_encryption = AlgorithmIdentifierRef::decode(r)?.oid;
                    let encrypted_key = OctetStringRef::decode(r)?.as_bytes();
                    Ok(Self {
                        rid,
                        key_encryption,
                        encrypted_key,
                    })
                })
            })
            .ok()
    }
}

/// The content-encryption key, decrypted with `party`'s RSA key. When that fails, or yields a
/// key of the wrong length, a random key takes its place and decryption goes on (to fail at
/// the padding): whether the RSA step failed is not told apart, by the answer or by an early
/// return, so the key cannot serve as a Bleichenbacher oracle (RFC 3218 §2.3.2).
fn content_key(
    party: &Party,
    cipher: ContentCipher,
    encrypted_key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let mut random = Zeroizing::new(vec![0; cipher.key_len()]);
    crate::random::fill(&mut random)
        .map_err(|e| Refusal::new(FailInfo::BadMessageCheck, e.to_string()))?;
    let mut buffer = Zeroizing::new(vec![0; party.decrypting.key_size_bytes()]);
    match party.decrypting.decrypt(encrypted_key, &mut buffer) {
        Ok(key) if key.len() == cipher.key_len() => Ok(Zeroizing::new(key.to_vec())),
        _ => Ok(random),
    }
}

/// The CBC IV in the form aws-lc-rs takes it, if it is one block of `cipher`.
fn iv_context(cipher: ContentCipher, iv: &[u8]) -> Option<DecryptionContext> {
    if cipher.is_des() {
        let iv: [u8; 8] = iv.try_into().ok()?;
        Some(DecryptionContext::Iv64(FixedLength::from(iv)))
    } else {
        let iv: [u8; 16] = iv.try_into().ok()?;
        Some(DecryptionContext::Iv128(FixedLength::from(iv)))
    }
}

/// Encrypts `content` to `recipient`'s RSA key under a fresh key of `cipher`, and wraps it as a
/// pkcsPKIEnvelope (ContentInfo, EnvelopedData, DER).
pub(crate) fn encrypt(
    content: &[u8],
    recipient: &Certificate,
    cipher: ContentCipher,
) -> Result<Vec<u8>, Error> {
    let crypto = |what: &str| Error::Crypto(format!("cannot {what}"));
    let public_key = encryption_key(recipient).map_err(Error::Invalid)?;
    let mut key = Zeroizing::new(vec![0; cipher.key_len()]);
    crate::random::fill(&mut key)?;
    if cipher.is_des() {
        odd_parity(&mut key);
    }
    let (iv, context) = if cipher.is_des() {
        let iv: [u8; 8] = crate::random::bytes()?;
        (iv.to_vec(), EncryptionContext::Iv64(FixedLength::from(iv)))
    } else {
        let iv: [u8; 16] = crate::random::bytes()?;
        (iv.to_vec(), EncryptionContext::Iv128(FixedLength::from(iv)))
    };
    // A weak DES key (one draw in 2^52) is refused by aws-lc-rs: the caller may try again.
    let encrypting = UnboundCipherKey::new(cipher.algorithm(), &key)
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| crypto("make a content-encryption key"))?;
    let mut encrypted = content.to_vec();
    encrypting
        .less_safe_encrypt(&mut encrypted, context)
        .map_err(|_| crypto("encrypt the content"))?;
    let mut encrypted_key = vec![0; public_key.ciphertext_size()];
    let encrypted_key = public_key
        .encrypt(&key, &mut encrypted_key)
        .map_err(|_| crypto("encrypt the content-encryption key"))?;
    write(recipient, cipher, &iv, encrypted_key, &encrypted)
        .map_err(|e| Error::Invalid(format!("cannot encode an EnvelopedData: {e}")))
}

/// The RSA key in `recipient` that content keys are encrypted to.
pub(crate) fn encryption_key(recipient: &Certificate) -> Result<Pkcs1PublicEncryptingKey, String> {
    if !recipient.is_rsa() {
        return Err(
            "the recipient's key is not RSA of at least 2048 bits: SCEP encrypts with RSA key \
             transport"
                .into(),
        );
    }
    PublicEncryptingKey::from_der(&recipient.spki)
        .ok()
        .and_then(|k| Pkcs1PublicEncryptingKey::new(k).ok())
        .ok_or_else(|| "the recipient's RSA key cannot be encrypted to".into())
}

fn write(
    recipient: &Certificate,
    cipher: ContentCipher,
    iv: &[u8],
    encrypted_key: &[u8],
    encrypted: &[u8],
) -> der::Result<Vec<u8>> {
    #[derive(der::Sequence)]
    struct KeyTransRecipientInfo<'a> {
        version: u8,
        rid: AnyRef<'a>,
        key_encryption_algorithm: AlgorithmIdentifierRef<'a>,
        encrypted_key: OctetStringRef<'a>,
    }
    #[derive(der::Sequence)]
    struct EncryptedContentInfo<'a> {
        content_type: ObjectIdentifier,
        content_encryption_algorithm: AlgorithmIdentifierRef<'a>,
        #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
        encrypted_content: OctetStringRef<'a>,
    }
    #[derive(der::Sequence)]
    struct EnvelopedData<'a> {
        version: u8,
        recipient_infos: AnyRef<'a>,
        encrypted_content_info: EncryptedContentInfo<'a>,
    }
    // The recipient's issuer name is written as its certificate holds it, not decoded and
    // encoded again (and a requester's certificate is no more than the requester says).
    let recipient_info = KeyTransRecipientInfo {
        version: 0,
        rid: AnyRef::from_der(&recipient.issuer_and_serial)?,
        key_encryption_algorithm: AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        },
        encrypted_key: OctetStringRef::new(encrypted_key)?,
    }
    .to_der()?;
    let recipient_infos = super::tlv(Tag::Set, &recipient_info)?;
    let enveloped = EnvelopedData {
        version: 0,
        recipient_infos: AnyRef::from_der(&recipient_infos)?,
        encrypted_content_info: EncryptedContentInfo {
            content_type: ID_DATA,
            content_encryption_algorithm: AlgorithmIdentifierRef {
                oid: cipher.oid(),
                parameters: Some(AnyRef::new(Tag::OctetString, iv)?),
            },
            encrypted_content: OctetStringRef::new(encrypted)?,
        },
    }
    .to_der()?;
    ContentInfoRef {
        content_type: ID_ENVELOPED_DATA,
        content: AnyRef::from_der(&enveloped)?,
    }
    .to_der()
}

/// Sets each DES key byte's low bit so that the byte has an odd number of ones, as DES keys
/// are written (FIPS 46-3); some readers check it.
fn odd_parity(key: &mut [u8]) {
    for byte in key {
        let high = *byte & 0xfe;
        *byte = high | u8::from(high.count_ones() % 2 == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn des_keys_get_odd_parity() {
        let mut key = [0x00, 0x01, 0xfe, 0xff, 0x10, 0x11, 0x7e, 0x7f];
        odd_parity(&mut key);
        assert_eq!(key, [0x01, 0x01, 0xfe, 0xfe, 0x10, 0x10, 0x7f, 0x7f]);
        assert!(key.iter().all(|b| b.count_ones() % 2 == 1));
    }
}
