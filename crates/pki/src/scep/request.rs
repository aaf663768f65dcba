//! Reading a request: the pkiMessage a client POSTs (or GETs), verified and decrypted.

use const_oid::db::rfc5911::ID_DATA;
use der::asn1::AnyRef;
use der::{Decode, Reader, Tag, Tagged};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::attributes::{self, Attributes};
use super::envelope::{self, Sealed};
use super::party::Certificate;
use super::signed::{self, SignedMessage, SignerInfo};
use super::{
    ContentCipher, Digest, FailInfo, MessageType, Ra, Refusal, ReplyTo, Request, RequestContent,
    ScepError,
};

/// Reads a pkiMessage (DER) sent to `ra`: checks the requester's signature over the signed
/// attributes and the message digest of the content, decrypts the envelope with the RA's key
/// and reads what it holds.
///
/// # Errors
/// [`ScepError::Malformed`] when not even the transactionID and senderNonce could be read
/// (nothing to answer); otherwise [`ScepError::Refused`] with the failInfo to answer with:
/// badAlg for a digest, signature, key or cipher certmint does not support, badMessageCheck for
/// a signer not among the certificates, a signature or digest that does not verify, or an
/// envelope not for the RA or that does not decrypt, badRequest for a message type that is not
/// a request or content that does not read as its type says.
pub fn read_request(der: &[u8], ra: &Ra) -> Result<Request, ScepError> {
    let message = signed::read(der).map_err(ScepError::Malformed)?;
    let signer = message
        .signer
        .as_ref()
        .ok_or_else(|| ScepError::Malformed("the SignedData has no signer".into()))?;
    let attributes = attributes::read(signer.signed_attrs)
        .map_err(|e| ScepError::Malformed(format!("signed attributes: {e}")))?;
    let (Some(transaction_id), Some(sender_nonce)) =
        (attributes.transaction_id, attributes.sender_nonce)
    else {
        return Err(ScepError::Malformed(
            "a pkiMessage needs a transactionID and a senderNonce".into(),
        ));
    };
    let mut reply_to = ReplyTo {
        transaction_id: transaction_id.to_owned(),
        sender_nonce: sender_nonce.to_vec(),
        digest: Digest::from_oid(signer.digest_algorithm).unwrap_or(Digest::Sha256),
        cipher: ContentCipher::Aes256Cbc,
        signer_cert: Vec::new(),
    };
    match check(&message, signer, &attributes, ra, &mut reply_to) {
        Ok((message_type, content)) => Ok(Request {
            message_type,
            reply_to,
            content,
        }),
        Err(Refusal { fail_info, reason }) => Err(ScepError::Refused {
            reply_to: Box::new(reply_to),
            fail_info,
            reason,
        }),
    }
}

/// Everything after the attributes, filling in `reply_to` as it learns more.
fn check(
    message: &SignedMessage<'_>,
    signer: &SignerInfo<'_>,
    attributes: &Attributes<'_>,
    ra: &Ra,
    reply_to: &mut ReplyTo,
) -> Result<(MessageType, RequestContent), Refusal> {
    let certificate = message
        .certificates
        .iter()
        .filter_map(|der| Certificate::parse(der).ok())
        .find(|cert| cert.is(signer.sid))
        .ok_or_else(|| {
            Refusal::new(
                FailInfo::BadMessageCheck,
                "no certificate in the message is the signer's",
            )
        })?;
    reply_to.signer_cert.clone_from(&certificate.der);
    reply_to.digest = signer.verify(&certificate)?;
    // A key that verifies but that aws-lc-rs will not encrypt to (an odd exponent) could be
    // refused now, but not sent a certificate later.
    envelope::encryption_key(&certificate).map_err(|e| Refusal::new(FailInfo::BadAlg, e))?;

    let message_type = attributes
        .message_type
        .and_then(MessageType::from_code)
        .filter(|t| *t != MessageType::CertRep)
        .ok_or_else(|| {
            Refusal::new(
                FailInfo::BadRequest,
                format!(
                    "messageType {} is not a request certmint answers",
                    attributes.message_type.unwrap_or("(none)")
                ),
            )
        })?;
    if message.content_type != ID_DATA || attributes.content_type != Some(ID_DATA) {
        return Err(Refusal::new(
            FailInfo::BadRequest,
            "the signed content is not id-data",
        ));
    }
    let content = message
        .content
        .ok_or_else(|| Refusal::new(FailInfo::BadRequest, "the request has no content"))?;
    let digest = reply_to.digest.hash(content);
    if attributes.message_digest != Some(digest.as_ref()) {
        return Err(Refusal::new(
            FailInfo::BadMessageCheck,
            "the messageDigest attribute does not match the content",
        ));
    }

    let sealed = Sealed::read(content)?;
    reply_to.cipher = sealed.cipher()?;
    let plain = sealed.open(&ra.party)?;
    let content = read_content(message_type, &plain).map_err(|e| {
        Refusal::new(
            FailInfo::BadRequest,
            format!("the {} content: {e}", message_type.name()),
        )
    })?;
    Ok((message_type, content))
}

/// Reads the decrypted content as `message_type` says it is.
fn read_content(message_type: MessageType, der: &[u8]) -> Result<RequestContent, String> {
    match message_type {
        MessageType::PkcsReq | MessageType::RenewalReq => {
            let (rest, _) = X509CertificationRequest::from_der(der)
                .map_err(|e| format!("not a PKCS#10 CSR: {e}"))?;
            if !rest.is_empty() {
                return Err("unexpected data after the CSR".into());
            }
            Ok(RequestContent::Csr(der.to_vec()))
        }
        MessageType::CertPoll => {
            let (issuer, subject) = pair(der)?;
            Ok(RequestContent::IssuerAndSubject {
                issuer: name(issuer)?,
                subject: name(subject)?,
            })
        }
        MessageType::GetCert | MessageType::GetCrl => {
            let (issuer, serial) = pair(der)?;
            let serial = AnyRef::from_der(serial)
                .ok()
                .filter(|s| s.tag() == Tag::Integer && !s.value().is_empty())
                .ok_or("the serial number is not an INTEGER")?;
            Ok(RequestContent::IssuerAndSerial {
                issuer: name(issuer)?,
                serial: serial.value().to_vec(),
            })
        }
        MessageType::CertRep => Err("a CertRep is not a request".into()),
    }
}

/// The two TLVs of a two-element SEQUENCE.
fn pair(der: &[u8]) -> Result<(&[u8], &[u8]), String> {
    AnyRef::from_der(der)
        .and_then(|any| any.sequence(|r| Ok((r.tlv_bytes()?, r.tlv_bytes()?))))
        .map_err(|e| format!("not a SEQUENCE of two: {e}"))
}

/// A DER Name, checked.
fn name(der: &[u8]) -> Result<Vec<u8>, String> {
    match X509Name::from_der(der) {
        Ok(([], _)) => Ok(der.to_vec()),
        _ => Err("not a DER X.509 Name".into()),
    }
}
