//! What a key held on a device (a PKCS#11 token) needs from pure code: its public key put
//! together from the parts a token gives, the curve parameters a token takes, the token's
//! signatures in the encoding X.509 wants, a check that a signature is the key's, and a
//! software key taken apart to be imported into a token.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ED25519, RSA_PKCS1_2048_8192_SHA256,
    UnparsedPublicKey, VerificationAlgorithm,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use const_oid::db::rfc8410::ID_ED_25519;
use der::asn1::{BitString, OctetString, OctetStringRef, PrintableStringRef, UintRef};
use der::{Any, Decode, Encode};
use pkcs8::PrivateKeyInfo;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use crate::keys::spki_key_type;
use crate::{Error, KeyType, PrivateKey};

fn malformed(what: &str) -> impl Fn(der::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("malformed {what}: {e}"))
}

/// The DER SubjectPublicKeyInfo of the RSA key with this modulus and public exponent
/// (`CKA_MODULUS`, `CKA_PUBLIC_EXPONENT`: big-endian unsigned integers).
///
/// # Errors
/// [`Error::Invalid`] for empty parts or a modulus under 2048 bits.
pub fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, Error> {
    let key = pkcs1::RsaPublicKey {
        modulus: UintRef::new(modulus).map_err(malformed("RSA modulus"))?,
        public_exponent: UintRef::new(exponent).map_err(malformed("RSA exponent"))?,
    }
    .to_der()
    .map_err(malformed("RSA public key"))?;
    let der = spki_der(RSA_ENCRYPTION, Some(Any::from(der::asn1::Null)), &key)?;
    spki_key_type(&der)?;
    Ok(der)
}

/// The DER SubjectPublicKeyInfo of an EC or Ed25519 key of `key_type` from its `CKA_EC_POINT`:
/// the point as a DER OCTET STRING, as PKCS#11 says, or bare, as some tokens give it.
///
/// # Errors
/// [`Error::Invalid`] for an RSA `key_type` or a point of the wrong size or form.
pub fn ec_public_key(key_type: KeyType, ec_point: &[u8]) -> Result<Vec<u8>, Error> {
    let point = match OctetStringRef::from_der(ec_point) {
        Ok(inner) => inner.as_bytes(),
        Err(_) => ec_point,
    };
    let size = match key_type {
        KeyType::EcP256 => 65,
        KeyType::EcP384 => 97,
        KeyType::Ed25519 => 32,
        KeyType::Rsa { .. } => {
            return Err(Error::Invalid("an RSA key has no EC point".into()));
        }
    };
    let uncompressed = key_type == KeyType::Ed25519 || point.first() == Some(&4);
    if point.len() != size || !uncompressed {
        return Err(Error::Invalid(format!(
            "the token's {key_type} public key is not a {size}-byte {} point",
            if key_type == KeyType::Ed25519 {
                "Ed25519"
            } else {
                "uncompressed"
            }
        )));
    }
    match key_type {
        KeyType::Ed25519 => spki_der(ID_ED_25519, None, point),
        _ => spki_der(ID_EC_PUBLIC_KEY, Some(curve_any(key_type)?), point),
    }
}

fn curve_any(key_type: KeyType) -> Result<Any, Error> {
    Any::encode_from(&curve_oid(key_type)?).map_err(malformed("curve"))
}

fn curve_oid(key_type: KeyType) -> Result<ObjectIdentifier, Error> {
    match key_type {
        KeyType::EcP256 => Ok(SECP_256_R_1),
        KeyType::EcP384 => Ok(SECP_384_R_1),
        KeyType::Ed25519 => Ok(ID_ED_25519),
        KeyType::Rsa { .. } => Err(Error::Invalid("an RSA key has no curve".into())),
    }
}

fn spki_der(oid: ObjectIdentifier, parameters: Option<Any>, key: &[u8]) -> Result<Vec<u8>, Error> {
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid, parameters },
        subject_public_key: BitString::from_bytes(key).map_err(malformed("public key"))?,
    }
    .to_der()
    .map_err(malformed("public key"))
}

/// `CKA_EC_PARAMS` for a key of `key_type`: the DER of its curve's object identifier (RFC 8410's
/// for Ed25519, as PKCS#11 3.0 allows).
///
/// # Errors
/// [`Error::Invalid`] for RSA.
pub fn ec_params(key_type: KeyType) -> Result<Vec<u8>, Error> {
    curve_oid(key_type)?.to_der().map_err(malformed("curve"))
}

/// The key type of a token's `CKA_EC_PARAMS`: a named curve's object identifier, or
/// PKCS#11 3.0's printable curve name for Ed25519.
///
/// # Errors
/// [`Error::Invalid`] for other curves and forms.
pub fn ec_params_key_type(params: &[u8]) -> Result<KeyType, Error> {
    if let Ok(oid) = ObjectIdentifier::from_der(params) {
        return match oid {
            SECP_256_R_1 => Ok(KeyType::EcP256),
            SECP_384_R_1 => Ok(KeyType::EcP384),
            ID_ED_25519 => Ok(KeyType::Ed25519),
            other => Err(Error::Invalid(format!(
                "curve {other} is not supported; use P-256, P-384 or Ed25519"
            ))),
        };
    }
    match PrintableStringRef::from_der(params).map(|name| name.as_str().to_owned()) {
        Ok(name) if name == "edwards25519" => Ok(KeyType::Ed25519),
        Ok(name) => Err(Error::Invalid(format!(
            "curve '{name}' is not supported; use P-256, P-384 or Ed25519"
        ))),
        Err(e) => Err(malformed("EC parameters")(e)),
    }
}

/// What a token is given to sign `message` with a key of `key_type`, with `CKM_SHA256_RSA_PKCS`,
/// `CKM_ECDSA` or `CKM_EDDSA`: the message itself for RSA and Ed25519, its digest for ECDSA
/// (SHA-256 on P-256, SHA-384 on P-384), which every token's plain ECDSA takes.
pub fn to_be_signed(key_type: KeyType, message: &[u8]) -> Vec<u8> {
    match key_type {
        KeyType::EcP256 => sha2::Sha256::digest(message).to_vec(),
        KeyType::EcP384 => sha2::Sha384::digest(message).to_vec(),
        KeyType::Rsa { .. } | KeyType::Ed25519 => message.to_vec(),
    }
}

/// A token's signature in the encoding certificates carry: ECDSA's `r || s` as a DER
/// Ecdsa-Sig-Value; RSA and Ed25519 signatures as they are.
///
/// # Errors
/// [`Error::Crypto`] for an ECDSA signature of the wrong length.
pub fn x509_signature(key_type: KeyType, signature: Vec<u8>) -> Result<Vec<u8>, Error> {
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    let half = match key_type {
        KeyType::EcP256 => 32,
        KeyType::EcP384 => 48,
        KeyType::Rsa { .. } | KeyType::Ed25519 => return Ok(signature),
    };
    if signature.len() != 2 * half {
        return Err(Error::Crypto(format!(
            "the token's {key_type} signature has {} bytes, not {}",
            signature.len(),
            2 * half
        )));
    }
    let (r, s) = signature.split_at(half);
    let bad = |e: der::Error| Error::Crypto(format!("cannot encode the token's signature: {e}"));
    EcdsaSigValue {
        r: UintRef::new(r).map_err(bad)?,
        s: UintRef::new(s).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

/// Checks that `signature` (as [`x509_signature`] gives it) over `message` verifies under the
/// DER SubjectPublicKeyInfo `public_key`: that a token key is the key certmint recorded.
///
/// # Errors
/// [`Error::Invalid`] for a public key certmint does not read; [`Error::Crypto`] for a
/// signature that does not verify.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    let key_type = spki_key_type(public_key)?;
    let spki = SubjectPublicKeyInfoRef::from_der(public_key).map_err(malformed("public key"))?;
    let raw = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::Invalid("malformed public key".into()))?;
    let algorithm: &dyn VerificationAlgorithm = match key_type {
        KeyType::Rsa { .. } => &RSA_PKCS1_2048_8192_SHA256,
        KeyType::EcP256 => &ECDSA_P256_SHA256_ASN1,
        KeyType::EcP384 => &ECDSA_P384_SHA384_ASN1,
        KeyType::Ed25519 => &ED25519,
    };
    UnparsedPublicKey::new(algorithm, raw)
        .verify(message, signature)
        .map_err(|_| {
            Error::Crypto(format!(
                "the {key_type} signature does not verify under the recorded public key"
            ))
        })
}

/// A private key taken apart, for a token's `C_CreateObject`. Every part is a big-endian
/// unsigned integer or a byte string, zeroized on drop.
pub enum KeyParts {
    /// RSA: `CKA_MODULUS`, `CKA_PUBLIC_EXPONENT`, `CKA_PRIVATE_EXPONENT`, `CKA_PRIME_1`,
    /// `CKA_PRIME_2`, `CKA_EXPONENT_1`, `CKA_EXPONENT_2`, `CKA_COEFFICIENT`, in that order.
    Rsa([Zeroizing<Vec<u8>>; 8]),
    /// EC or Ed25519: `CKA_EC_PARAMS`, the private `CKA_VALUE` and the public `CKA_EC_POINT`
    /// (a DER OCTET STRING).
    Ec {
        /// `CKA_EC_PARAMS`.
        params: Vec<u8>,
        /// The private scalar (EC) or seed (Ed25519).
        value: Zeroizing<Vec<u8>>,
        /// The public point, DER OCTET STRING.
        point: Vec<u8>,
    },
}

impl std::fmt::Debug for KeyParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rsa(_) => "KeyParts::Rsa",
            Self::Ec { .. } => "KeyParts::Ec",
        })
    }
}

/// `key` taken apart for import into a token.
///
/// # Errors
/// [`Error::Invalid`] when its PKCS#8 does not read as the key type it says it is.
pub fn key_parts(key: &PrivateKey) -> Result<KeyParts, Error> {
    let info = PrivateKeyInfo::from_der(key.pkcs8_der()).map_err(malformed("PKCS#8 key"))?;
    let key_type = key.key_type();
    match key_type {
        KeyType::Rsa { .. } => {
            let rsa = pkcs1::RsaPrivateKey::from_der(info.private_key)
                .map_err(malformed("RSA private key"))?;
            let part = |u: UintRef<'_>| Zeroizing::new(u.as_bytes().to_vec());
            Ok(KeyParts::Rsa([
                part(rsa.modulus),
                part(rsa.public_exponent),
                part(rsa.private_exponent),
                part(rsa.prime1),
                part(rsa.prime2),
                part(rsa.exponent1),
                part(rsa.exponent2),
                part(rsa.coefficient),
            ]))
        }
        KeyType::EcP256 | KeyType::EcP384 | KeyType::Ed25519 => {
            let value = if key_type == KeyType::Ed25519 {
                OctetStringRef::from_der(info.private_key)
                    .map_err(malformed("Ed25519 private key"))?
                    .as_bytes()
                    .to_vec()
            } else {
                sec1::EcPrivateKey::from_der(info.private_key)
                    .map_err(malformed("EC private key"))?
                    .private_key
                    .to_vec()
            };
            let public = key.public_key_der();
            let spki =
                SubjectPublicKeyInfoRef::from_der(&public).map_err(malformed("public key"))?;
            let raw = spki
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| Error::Invalid("malformed public key".into()))?;
            Ok(KeyParts::Ec {
                params: ec_params(key_type)?,
                value: Zeroizing::new(value),
                point: OctetString::new(raw)
                    .and_then(|o| o.to_der())
                    .map_err(malformed("EC point"))?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signer;

    /// A software key's parts put back together give its public key, and a signature made as
    /// a token makes it (over `to_be_signed`, in the token's raw form) verifies after
    /// `x509_signature`.
    #[test]
    fn parts_and_signatures_round_trip() -> Result<(), Error> {
        for key_type in KeyType::ALL {
            let key = PrivateKey::generate(key_type)?;
            let public = key.public_key_der();
            let rebuilt = match key_parts(&key)? {
                KeyParts::Rsa(parts) => rsa_public_key(&parts[0], &parts[1])?,
                KeyParts::Ec { params, point, .. } => {
                    assert_eq!(ec_params_key_type(&params)?, key_type);
                    ec_public_key(key_type, &point)?
                }
            };
            assert_eq!(rebuilt, public, "{key_type}");
            let message = b"to be signed";
            let signature = key.sign(message)?;
            verify(&public, message, &signature)?;
            assert!(verify(&public, b"something else", &signature).is_err());
        }
        Ok(())
    }

    #[test]
    fn raw_ecdsa_signatures_become_der() -> Result<(), Error> {
        let mut raw = vec![0x80; 32];
        raw.extend([0x01; 32]);
        let der = x509_signature(KeyType::EcP256, raw)?;
        // SEQUENCE { INTEGER 0x00 0x80…, INTEGER 0x01… }: a high bit gets its leading zero.
        assert_eq!(&der[..5], &[0x30, 0x45, 0x02, 0x21, 0x00]);
        assert!(x509_signature(KeyType::EcP384, vec![1; 64]).is_err());
        Ok(())
    }

    #[test]
    fn bad_points_and_curves_are_refused() {
        assert!(ec_public_key(KeyType::EcP256, &[4; 33]).is_err());
        assert!(ec_public_key(KeyType::EcP256, &[2; 65]).is_err());
        assert!(ec_public_key(KeyType::Rsa { bits: 2048 }, &[4; 65]).is_err());
        assert!(ec_params_key_type(&[0x13, 0x03, b'f', b'o', b'o']).is_err());
        assert_eq!(
            ec_params_key_type(&[
                0x13, 12, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9'
            ])
            .ok(),
            Some(KeyType::Ed25519)
        );
        assert!(rsa_public_key(&[0xc5; 128], &[1, 0, 1]).is_err());
    }
}
