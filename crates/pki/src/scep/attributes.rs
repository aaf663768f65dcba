//! The signed attributes of a pkiMessage (RFC 8894 §3.2.1): the SCEP ones and the two CMS
//! requires (contentType, messageDigest), read from a SignerInfo and written for one.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST};
use der::asn1::{Any, AnyRef, OctetStringRef, PrintableStringRef, SetOfVec};
use der::{Decode, Reader, SliceReader, Tag, Tagged};
use x509_cert::attr::Attribute;

const MESSAGE_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
const PKI_STATUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
const FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
const SENDER_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
const RECIPIENT_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
const TRANSACTION_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");

/// The attributes [`read`] reads; others (signingTime, smimeCapabilities, …) are skipped.
const KNOWN: [ObjectIdentifier; 8] = [
    ID_CONTENT_TYPE,
    ID_MESSAGE_DIGEST,
    MESSAGE_TYPE,
    PKI_STATUS,
    FAIL_INFO,
    SENDER_NONCE,
    RECIPIENT_NONCE,
    TRANSACTION_ID,
];

/// The most signed attributes read: a pkiMessage has at most nine (the CMS and SCEP ones,
/// signingTime), and clients add one or two of their own (smimeCapabilities).
const MAX_ATTRIBUTES: usize = 32;

/// The longest transactionID accepted. Clients use a hash of the key in hex or base64 (40 to
/// 64 characters) or a UUID.
pub(crate) const MAX_TRANSACTION_ID: usize = 128;

/// The longest nonce accepted: RFC 8894 §3.2.1.5 makes them 16 octets; some slack for clients
/// that use longer ones.
const MAX_NONCE: usize = 64;

/// The SCEP pkiStatus values (RFC 8894 §3.2.1.3).
pub(crate) const SUCCESS: &str = "0";
pub(crate) const FAILURE: &str = "2";
pub(crate) const PENDING: &str = "3";

/// The signed attributes certmint reads; each at most once, with one value.
#[derive(Debug, Default)]
pub(crate) struct Attributes<'a> {
    pub(crate) content_type: Option<ObjectIdentifier>,
    pub(crate) message_digest: Option<&'a [u8]>,
    pub(crate) message_type: Option<&'a str>,
    pub(crate) pki_status: Option<&'a str>,
    pub(crate) fail_info: Option<&'a str>,
    pub(crate) sender_nonce: Option<&'a [u8]>,
    pub(crate) recipient_nonce: Option<&'a [u8]>,
    pub(crate) transaction_id: Option<&'a str>,
}

/// Reads the value of a SignerInfo's `signedAttrs` (the content of its `[0]`). Attributes
/// certmint does not know are skipped; a known one given twice, with more or fewer than one
/// value, or with a value of the wrong type is an error.
pub(crate) fn read(signed_attrs: &[u8]) -> Result<Attributes<'_>, String> {
    let mut attributes = Attributes::default();
    let mut reader = SliceReader::new(signed_attrs).map_err(|e| e.to_string())?;
    let mut count = 0;
    while !reader.is_finished() {
        count += 1;
        if count > MAX_ATTRIBUTES {
            return Err(format!("more than {MAX_ATTRIBUTES} signed attributes"));
        }
        let (oid, values) = reader
            .sequence(|r| Ok((ObjectIdentifier::decode(r)?, AnyRef::decode(r)?)))
            .map_err(|e| format!("unreadable signed attribute: {e}"))?;
        if !KNOWN.contains(&oid) {
            continue;
        }
        single_value(values)
            .and_then(|value| attributes.set(oid, value))
            .map_err(|e| format!("attribute {oid}: {e}"))?;
    }
    Ok(attributes)
}

fn single_value(values: AnyRef<'_>) -> Result<AnyRef<'_>, String> {
    if values.tag() != Tag::Set {
        return Err("values not in a SET".into());
    }
    let mut reader = SliceReader::new(values.value()).map_err(|e| e.to_string())?;
    let value = AnyRef::decode(&mut reader).map_err(|e| format!("no value: {e}"))?;
    if !reader.is_finished() {
        return Err("more than one value".into());
    }
    Ok(value)
}

impl<'a> Attributes<'a> {
    fn set(&mut self, oid: ObjectIdentifier, value: AnyRef<'a>) -> Result<(), String> {
        fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), String> {
            if slot.replace(value).is_some() {
                return Err("given twice".into());
            }
            Ok(())
        }
        match oid {
            ID_CONTENT_TYPE => once(
                &mut self.content_type,
                value.decode_as().map_err(|e| e.to_string())?,
            ),
            ID_MESSAGE_DIGEST => once(&mut self.message_digest, octets(value, 64)?),
            MESSAGE_TYPE => once(&mut self.message_type, text(value, 8)?),
            PKI_STATUS => once(&mut self.pki_status, text(value, 8)?),
            FAIL_INFO => once(&mut self.fail_info, text(value, 8)?),
            SENDER_NONCE => once(&mut self.sender_nonce, octets(value, MAX_NONCE)?),
            RECIPIENT_NONCE => once(&mut self.recipient_nonce, octets(value, MAX_NONCE)?),
            TRANSACTION_ID => once(&mut self.transaction_id, text(value, MAX_TRANSACTION_ID)?),
            _ => Err("not an attribute certmint reads".into()),
        }
    }
}

/// A non-empty OCTET STRING of at most `max` octets.
fn octets(value: AnyRef<'_>, max: usize) -> Result<&[u8], String> {
    if value.tag() != Tag::OctetString {
        return Err(format!("an OCTET STRING expected, not {}", value.tag()));
    }
    match value.value().len() {
        0 => Err("empty".into()),
        n if n > max => Err(format!("{n} octets, more than {max}")),
        _ => Ok(value.value()),
    }
}

/// A non-empty string of PrintableString characters, at most `max` of them. RFC 8894 makes
/// these PrintableStrings; some clients write UTF8String or IA5String, which are read when
/// their characters are ones a PrintableString could hold (so that the reply can repeat them).
fn text(value: AnyRef<'_>, max: usize) -> Result<&str, String> {
    if !matches!(
        value.tag(),
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String
    ) {
        return Err(format!("a PrintableString expected, not {}", value.tag()));
    }
    let bytes = value.value();
    if bytes.is_empty() {
        return Err("empty".into());
    }
    if bytes.len() > max {
        return Err(format!("{} characters, more than {max}", bytes.len()));
    }
    if !bytes.iter().copied().all(is_printable) {
        return Err("characters a PrintableString cannot hold".into());
    }
    std::str::from_utf8(bytes).map_err(|e| e.to_string())
}

/// X.680's PrintableString alphabet.
fn is_printable(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&byte)
}

/// The attributes of an outgoing pkiMessage, besides contentType and messageDigest.
pub(crate) struct Outgoing<'a> {
    pub(crate) message_type: super::MessageType,
    pub(crate) transaction_id: &'a str,
    pub(crate) sender_nonce: &'a [u8],
    /// For a CertRep: the request's senderNonce.
    pub(crate) recipient_nonce: Option<&'a [u8]>,
    /// For a CertRep: its status and, with FAILURE, the failInfo.
    pub(crate) pki_status: Option<&'static str>,
    pub(crate) fail_info: Option<super::FailInfo>,
}

impl Outgoing<'_> {
    /// The signed attributes, with the contentType (id-data) and the content's `digest`.
    pub(crate) fn encode(&self, digest: &[u8]) -> der::Result<SetOfVec<Attribute>> {
        let mut list = vec![
            attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA))?,
            attribute(ID_MESSAGE_DIGEST, octet_string(digest))?,
            attribute(MESSAGE_TYPE, printable(self.message_type.code()))?,
            attribute(TRANSACTION_ID, printable(self.transaction_id))?,
            attribute(SENDER_NONCE, octet_string(self.sender_nonce))?,
        ];
        if let Some(nonce) = self.recipient_nonce {
            list.push(attribute(RECIPIENT_NONCE, octet_string(nonce))?);
        }
        if let Some(status) = self.pki_status {
            list.push(attribute(PKI_STATUS, printable(status))?);
        }
        if let Some(fail_info) = self.fail_info {
            list.push(attribute(FAIL_INFO, printable(fail_info.code()))?);
        }
        SetOfVec::try_from(list)
    }
}

fn attribute(oid: ObjectIdentifier, value: der::Result<Any>) -> der::Result<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value?])?,
    })
}

fn printable(text: &str) -> der::Result<Any> {
    Any::encode_from(&PrintableStringRef::new(text)?)
}

fn octet_string(bytes: &[u8]) -> der::Result<Any> {
    Any::encode_from(&OctetStringRef::new(bytes)?)
}

#[cfg(test)]
mod tests {
    use der::Encode;

    use super::*;
    use crate::scep::{FailInfo, MessageType};

    /// The content of a signedAttrs holding the attributes of a CertRep, then `extra`.
    fn signed_attrs(extra: &[Attribute]) -> Vec<u8> {
        let outgoing = Outgoing {
            message_type: MessageType::CertRep,
            transaction_id: "txn-1",
            sender_nonce: &[1; 16],
            recipient_nonce: Some(&[2; 16]),
            pki_status: Some(FAILURE),
            fail_info: Some(FailInfo::BadTime),
        };
        let mut content = Vec::new();
        for attribute in outgoing.encode(&[9; 32]).unwrap().iter().chain(extra) {
            attribute.encode_to_vec(&mut content).unwrap();
        }
        content
    }

    fn with(oid: ObjectIdentifier, values: Vec<der::Result<Any>>) -> Attribute {
        Attribute {
            oid,
            values: SetOfVec::try_from(values.into_iter().map(Result::unwrap).collect::<Vec<_>>())
                .unwrap(),
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let content = signed_attrs(&[]);
        let read = read(&content).unwrap();
        assert_eq!(read.content_type, Some(ID_DATA));
        assert_eq!(read.message_digest, Some(&[9; 32][..]));
        assert_eq!(read.message_type, Some("3"));
        assert_eq!(read.transaction_id, Some("txn-1"));
        assert_eq!(read.sender_nonce, Some(&[1; 16][..]));
        assert_eq!(read.recipient_nonce, Some(&[2; 16][..]));
        assert_eq!(read.pki_status, Some(FAILURE));
        assert_eq!(read.fail_info, Some("3"));
    }

    #[test]
    fn unknown_attributes_are_skipped_whatever_they_hold() {
        let signing_time = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
        let content = signed_attrs(&[with(
            signing_time,
            vec![octet_string(b"one"), octet_string(b"two")],
        )]);
        assert_eq!(read(&content).unwrap().transaction_id, Some("txn-1"));
    }

    #[test]
    fn known_attributes_are_checked() {
        let cases = [
            (
                with(TRANSACTION_ID, vec![printable("again")]),
                "attribute 2.16.840.1.113733.1.9.7: given twice",
            ),
            (
                with(SENDER_NONCE, vec![octet_string(&[1; 65])]),
                "65 octets, more than 64",
            ),
            (
                with(MESSAGE_TYPE, vec![octet_string(b"19")]),
                "a PrintableString expected",
            ),
            (
                with(MESSAGE_TYPE, vec![printable("19"), printable("17")]),
                "more than one value",
            ),
            (
                with(
                    MESSAGE_TYPE,
                    vec![Any::encode_from(
                        &der::asn1::Utf8StringRef::new("1\u{e9}").unwrap(),
                    )],
                ),
                "characters a PrintableString cannot hold",
            ),
        ];
        for (attribute, expected) in cases {
            let content = signed_attrs(&[attribute]);
            let err = read(&content).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn attribute_counts_are_bounded() {
        let filler = ObjectIdentifier::new_unwrap("1.2.3.4");
        let extra: Vec<_> = (0..MAX_ATTRIBUTES)
            .map(|_| with(filler, vec![octet_string(b"x")]))
            .collect();
        let err = read(&signed_attrs(&extra)).unwrap_err();
        assert_eq!(err, format!("more than {MAX_ATTRIBUTES} signed attributes"));
    }
}
