//! EST's own ASN.1 (RFC 7030): the CSR attributes a server asks clients to put in their
//! requests (§4.5.2), with the key types written as RFC 9908 describes.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ID_CE_SUBJECT_ALT_NAME, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
};
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode};
use x509_cert::attr::Attribute;

use crate::{Error, KeyType};

/// id-Ed25519 (RFC 8410).
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// One element of a `CsrAttrs`: `AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute
/// Attribute }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrAttr {
    /// A bare OID: put this in the request (an attribute, an extension).
    Oid(ObjectIdentifier),
    /// An attribute with the values asked for, DER.
    Attribute {
        /// Its type.
        oid: ObjectIdentifier,
        /// Its values, each a DER encoding.
        values: Vec<Vec<u8>>,
    },
}

impl CsrAttr {
    /// The key type asked for: `id-ecPublicKey` with its curve, `rsaEncryption` with its
    /// modulus size (RFC 9908 §3.4), or the bare `id-Ed25519`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a value cannot be encoded.
    pub fn key_type(key_type: KeyType) -> Result<Self, Error> {
        Ok(match key_type {
            KeyType::EcP256 => Self::Attribute {
                oid: ID_EC_PUBLIC_KEY,
                values: vec![encoded(&SECP_256_R_1)?],
            },
            KeyType::EcP384 => Self::Attribute {
                oid: ID_EC_PUBLIC_KEY,
                values: vec![encoded(&SECP_384_R_1)?],
            },
            KeyType::Rsa { bits } => Self::Attribute {
                oid: RSA_ENCRYPTION,
                values: vec![encoded(&bits)?],
            },
            KeyType::Ed25519 => Self::Oid(ID_ED25519),
        })
    }

    /// The subjectAltName extension, for a profile that requires one.
    pub fn subject_alt_name() -> Self {
        Self::Oid(ID_CE_SUBJECT_ALT_NAME)
    }
}

fn encoded(value: &impl Encode) -> Result<Vec<u8>, Error> {
    value.to_der().map_err(encode_error)
}

fn encode_error(e: der::Error) -> Error {
    Error::Invalid(format!("cannot encode CSR attributes: {e}"))
}

/// The DER `CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID` holding `attrs`, in order.
///
/// # Errors
/// [`Error::Invalid`] when a value is not DER, or an attribute has no values or repeats one.
pub fn csr_attrs(attrs: &[CsrAttr]) -> Result<Vec<u8>, Error> {
    let mut items = Vec::with_capacity(attrs.len());
    for attr in attrs {
        items.push(match attr {
            CsrAttr::Oid(oid) => Any::encode_from(oid).map_err(encode_error)?,
            CsrAttr::Attribute { oid, values } => {
                let values = values
                    .iter()
                    .map(|v| Any::from_der(v).map_err(encode_error))
                    .collect::<Result<Vec<_>, _>>()?;
                if values.is_empty() {
                    return Err(Error::Invalid(format!("attribute {oid} has no values")));
                }
                let values = SetOfVec::try_from(values).map_err(encode_error)?;
                Any::encode_from(&Attribute { oid: *oid, values }).map_err(encode_error)?
            }
        });
    }
    items.to_der().map_err(encode_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::SequenceOf;

    #[test]
    fn attributes_and_oids_encode_in_order() {
        let der = csr_attrs(&[
            CsrAttr::key_type(KeyType::EcP384).expect("attr"),
            CsrAttr::subject_alt_name(),
            CsrAttr::key_type(KeyType::Rsa { bits: 3072 }).expect("attr"),
        ])
        .expect("encodes");
        let items = SequenceOf::<Any, 8>::from_der(&der).expect("a SEQUENCE OF");
        let items: Vec<&Any> = items.iter().collect();
        assert_eq!(items.len(), 3);
        let ec = items[0].decode_as::<Attribute>().expect("an Attribute");
        assert_eq!(ec.oid, ID_EC_PUBLIC_KEY);
        let curve: ObjectIdentifier = ec.values.get(0).expect("a value").decode_as().expect("oid");
        assert_eq!(curve, SECP_384_R_1);
        let san: ObjectIdentifier = items[1].decode_as().expect("an OID");
        assert_eq!(san, ID_CE_SUBJECT_ALT_NAME);
        let rsa = items[2].decode_as::<Attribute>().expect("an Attribute");
        let bits: u32 = rsa
            .values
            .get(0)
            .expect("a value")
            .decode_as()
            .expect("int");
        assert_eq!((rsa.oid, bits), (RSA_ENCRYPTION, 3072));
    }

    #[test]
    fn nothing_asked_is_an_empty_sequence() {
        assert_eq!(csr_attrs(&[]).expect("encodes"), [0x30, 0x00]);
    }
}
