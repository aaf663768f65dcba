//! Private keys: generation, the forms users bring (PKCS#8, encrypted PKCS#8, PKCS#1 RSA, SEC1
//! EC, PEM or DER), and signing through aws-lc-rs.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, Ed25519KeyPair, RsaKeyPair,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ID_EC_PUBLIC_KEY as EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
};
use const_oid::db::rfc8410::ID_ED_25519 as ED25519;
use der::Decode;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rcgen::{PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256};
use zeroize::Zeroizing;

use crate::Error;
use crate::kdf::KdfBudget;

/// The smallest RSA modulus certmint accepts anywhere.
pub const MIN_RSA_BITS: u32 = 2048;

/// A key's algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: u32,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// Reads the API's `key_algorithm` (`RSA`, `EC`/`ECDSA`, `Ed25519`) with `key_size` (RSA bits;
    /// for EC also 256 or 384) or `curve` (`P-256`, `P-384`, `secp256r1`, `prime256v1`, …).
    /// Without a size, RSA is 2048 bits and EC is P-256.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the accepted values.
    pub fn parse(
        algorithm: &str,
        key_size: Option<u32>,
        curve: Option<&str>,
    ) -> Result<Self, Error> {
        match algorithm.to_ascii_lowercase().as_str() {
            "rsa" => match key_size.unwrap_or(2048) {
                bits @ (2048 | 3072 | 4096) => Ok(Self::Rsa { bits }),
                other => Err(Error::Invalid(format!(
                    "RSA key size {other} is not supported; use 2048, 3072 or 4096"
                ))),
            },
            "ec" | "ecdsa" => {
                let curve = curve.map(str::to_ascii_lowercase);
                match (curve.as_deref(), key_size) {
                    (None, None | Some(256))
                    | (Some("p-256" | "p256" | "secp256r1" | "prime256v1"), _) => Ok(Self::EcP256),
                    (None, Some(384)) | (Some("p-384" | "p384" | "secp384r1"), _) => {
                        Ok(Self::EcP384)
                    }
                    (Some(c), _) => Err(Error::Invalid(format!(
                        "curve '{c}' is not supported; use P-256 or P-384"
                    ))),
                    (None, Some(s)) => Err(Error::Invalid(format!(
                        "EC key size {s} is not supported; use 256 or 384"
                    ))),
                }
            }
            "ed25519" => Ok(Self::Ed25519),
            other => Err(Error::Invalid(format!(
                "key algorithm '{other}' is not supported; use RSA, EC or Ed25519"
            ))),
        }
    }

    /// The API's `key_algorithm` value: `RSA`, `EC` or `Ed25519`.
    pub fn algorithm(self) -> &'static str {
        match self {
            Self::Rsa { .. } => "RSA",
            Self::EcP256 | Self::EcP384 => "EC",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// Key size in bits (the curve size for EC, 256 for Ed25519).
    pub fn bits(self) -> u32 {
        match self {
            Self::Rsa { bits } => bits,
            Self::EcP256 | Self::Ed25519 => 256,
            Self::EcP384 => 384,
        }
    }

    /// The curve name for EC keys.
    pub fn curve(self) -> Option<&'static str> {
        match self {
            Self::EcP256 => Some("P-256"),
            Self::EcP384 => Some("P-384"),
            Self::Rsa { .. } | Self::Ed25519 => None,
        }
    }

    /// A short label such as `RSA 2048`, `EC P-384` or `Ed25519`.
    pub fn label(self) -> String {
        match self {
            Self::Rsa { bits } => format!("RSA {bits}"),
            Self::EcP256 => "EC P-256".into(),
            Self::EcP384 => "EC P-384".into(),
            Self::Ed25519 => "Ed25519".into(),
        }
    }

    /// Every supported key type.
    pub const ALL: [KeyType; 6] = [
        Self::EcP256,
        Self::EcP384,
        Self::Rsa { bits: 2048 },
        Self::Rsa { bits: 3072 },
        Self::Rsa { bits: 4096 },
        Self::Ed25519,
    ];

    /// Reads a label as [`KeyType::label`] writes it (`RSA 3072`, `EC P-256`, `Ed25519`),
    /// ignoring case and spacing.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a label that names no supported key type.
    pub fn from_label(label: &str) -> Result<Self, Error> {
        let squash = |s: &str| s.replace(' ', "").to_ascii_lowercase();
        let wanted = squash(label);
        Self::ALL
            .into_iter()
            .find(|t| squash(&t.label()) == wanted)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "key type '{label}' is not supported; use one of {}",
                    Self::ALL.map(Self::label).join(", ")
                ))
            })
    }

    /// The signature algorithm certmint signs with for this key.
    pub(crate) fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Rsa { .. } => &PKCS_RSA_SHA256,
            Self::EcP256 => &PKCS_ECDSA_P256_SHA256,
            Self::EcP384 => &PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &PKCS_ED25519,
        }
    }

    /// The name of that signature algorithm, as `openssl x509 -text` prints it.
    pub fn signature_algorithm_name(self) -> &'static str {
        match self {
            Self::Rsa { .. } => "sha256WithRSAEncryption",
            Self::EcP256 => "ecdsa-with-SHA256",
            Self::EcP384 => "ecdsa-with-SHA384",
            Self::Ed25519 => "ED25519",
        }
    }

    fn ecdsa(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            Self::EcP256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
            Self::EcP384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
            Self::Rsa { .. } | Self::Ed25519 => None,
        }
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// Reads the key type of a DER SubjectPublicKeyInfo.
///
/// # Errors
/// [`Error::Invalid`] for malformed DER, an unsupported algorithm or RSA under 2048 bits.
pub fn spki_key_type(spki_der: &[u8]) -> Result<KeyType, Error> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::Invalid(format!("malformed public key: {e}")))?;
    let oid = spki.algorithm.oid;
    if oid == RSA_ENCRYPTION {
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::Invalid("malformed RSA public key".into()))?;
        let bits = rsa_modulus_bits(key)?;
        return check_rsa(bits);
    }
    if oid == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|_| Error::Invalid("EC public key without a named curve".into()))?;
        return curve_key_type(curve);
    }
    if oid == ED25519 {
        return Ok(KeyType::Ed25519);
    }
    Err(Error::Invalid(format!(
        "public key algorithm {oid} is not supported; use RSA, EC P-256/P-384 or Ed25519"
    )))
}

fn curve_key_type(curve: ObjectIdentifier) -> Result<KeyType, Error> {
    if curve == SECP_256_R_1 {
        Ok(KeyType::EcP256)
    } else if curve == SECP_384_R_1 {
        Ok(KeyType::EcP384)
    } else {
        Err(Error::Invalid(format!(
            "EC curve {curve} is not supported; use P-256 or P-384"
        )))
    }
}

fn check_rsa(bits: u32) -> Result<KeyType, Error> {
    if bits < MIN_RSA_BITS {
        return Err(Error::Invalid(format!(
            "RSA key of {bits} bits is too small; at least {MIN_RSA_BITS} bits are required"
        )));
    }
    Ok(KeyType::Rsa { bits })
}

/// The size in bits of the modulus of a PKCS#1 RSAPublicKey.
fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<u32, Error> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        _exponent: der::asn1::UintRef<'a>,
    }
    let key = RsaPublicKey::from_der(rsa_public_key)
        .map_err(|e| Error::Invalid(format!("malformed RSA public key: {e}")))?;
    let bytes = key.modulus.as_bytes();
    let leading = bytes.first().map_or(0, |b| b.leading_zeros());
    u32::try_from(bytes.len() * 8)
        .map(|bits| bits - leading)
        .map_err(|_| Error::Invalid("RSA modulus too large".into()))
}

/// A private key held in memory as PKCS#8 (zeroized on drop), with its public key.
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    key_type: KeyType,
    signer: rcgen::KeyPair,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a key of the given type.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an RSA size other than 2048, 3072 or 4096; [`Error::Crypto`] when
    /// generation fails.
    pub fn generate(key_type: KeyType) -> Result<Self, Error> {
        let failed = |_: aws_lc_rs::error::Unspecified| {
            Error::Crypto(format!("cannot generate a {key_type} key"))
        };
        let pkcs8 = match key_type {
            KeyType::Rsa { bits } => {
                let size = match bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    other => {
                        return Err(Error::Invalid(format!(
                            "RSA key size {other} is not supported; use 2048, 3072 or 4096"
                        )));
                    }
                };
                let pair = RsaKeyPair::generate(size).map_err(failed)?;
                let der =
                    AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(failed)?;
                der.as_ref().to_vec()
            }
            KeyType::EcP256 | KeyType::EcP384 => {
                let alg = key_type
                    .ecdsa()
                    .ok_or(Error::Crypto(format!("no ECDSA algorithm for {key_type}")))?;
                let pair = EcdsaKeyPair::generate(alg).map_err(failed)?;
                pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()
            }
            KeyType::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(failed)?;
                pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()
            }
        };
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Reads an unencrypted PKCS#8 PrivateKeyInfo.
    ///
    /// # Errors
    /// [`Error::Invalid`] for malformed DER, an unsupported algorithm or RSA under 2048 bits.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let info = PrivateKeyInfo::from_der(der)
            .map_err(|e| Error::Invalid(format!("malformed PKCS#8 private key: {e}")))?;
        let oid = info.algorithm.oid;
        let key_type = if oid == RSA_ENCRYPTION {
            let pair = RsaKeyPair::from_pkcs8(der)
                .map_err(|e| Error::Invalid(format!("unusable RSA private key: {e}")))?;
            let bits = u32::try_from(pair.public_modulus_len() * 8)
                .map_err(|_| Error::Invalid("RSA modulus too large".into()))?;
            check_rsa(bits)?
        } else if oid == EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| Error::Invalid("EC private key without a named curve".into()))?;
            curve_key_type(curve)?
        } else if oid == ED25519 {
            KeyType::Ed25519
        } else {
            return Err(Error::Invalid(format!(
                "private key algorithm {oid} is not supported; use RSA, EC P-256/P-384 or Ed25519"
            )));
        };
        let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &der.to_vec().into(),
            key_type.signature_algorithm(),
        )
        .map_err(|e| Error::Invalid(format!("unusable {key_type} private key: {e}")))?;
        Ok(Self {
            pkcs8: Zeroizing::new(der.to_vec()),
            key_type,
            signer,
        })
    }

    /// Reads a key in any form users bring: PEM (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`,
    /// `RSA PRIVATE KEY`, `EC PRIVATE KEY`, with text around the block) or DER (PKCS#8,
    /// encrypted PKCS#8, PKCS#1 or SEC1). `passphrase` opens encrypted PKCS#8.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong: not a key, a wrong or missing passphrase, an
    /// unsupported algorithm, RSA under 2048 bits.
    pub fn parse(input: &[u8], passphrase: Option<&str>) -> Result<Self, Error> {
        if let Some(block) = crate::pem::find_blocks(input)?
            .into_iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
        {
            return Self::from_labelled_der(&block.label, &block.der, passphrase);
        }
        if crate::pem::looks_like_pem(input) {
            return Err(Error::Invalid("no PEM private key block found".into()));
        }
        Self::from_labelled_der("", input, passphrase)
    }

    /// Reads DER whose form is named by its PEM label (empty when unknown: every form is tried).
    ///
    /// # Errors
    /// As [`PrivateKey::parse`].
    pub fn from_labelled_der(
        label: &str,
        der: &[u8],
        passphrase: Option<&str>,
    ) -> Result<Self, Error> {
        Self::read_labelled(label, der, passphrase, &mut KdfBudget::for_key())
    }

    /// As [`PrivateKey::from_labelled_der`], an encrypted key's derivation counted against
    /// `budget`, which a file of several keys shares.
    pub(crate) fn read_labelled(
        label: &str,
        der: &[u8],
        passphrase: Option<&str>,
        budget: &mut KdfBudget,
    ) -> Result<Self, Error> {
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(der),
            "ENCRYPTED PRIVATE KEY" => Self::from_encrypted_pkcs8(der, passphrase, budget),
            "RSA PRIVATE KEY" => Self::from_pkcs1(der),
            "EC PRIVATE KEY" => Self::from_sec1(der),
            "" => {
                if PrivateKeyInfo::from_der(der).is_ok() {
                    Self::from_pkcs8_der(der)
                } else if EncryptedPrivateKeyInfo::from_der(der).is_ok() {
                    Self::from_encrypted_pkcs8(der, passphrase, budget)
                } else {
                    Self::from_pkcs1(der)
                        .or_else(|_| Self::from_sec1(der))
                        .map_err(|_| {
                            Error::Invalid(
                                "not a private key (expected PKCS#8, PKCS#1 or SEC1, PEM or DER)"
                                    .into(),
                            )
                        })
                }
            }
            other => Err(Error::Invalid(format!(
                "PEM block '{other}' is not a supported private key"
            ))),
        }
    }

    /// Weighs the key derivation the file asks for against `budget` before running it.
    fn from_encrypted_pkcs8(
        der: &[u8],
        passphrase: Option<&str>,
        budget: &mut KdfBudget,
    ) -> Result<Self, Error> {
        let passphrase = passphrase.filter(|p| !p.is_empty()).ok_or_else(|| {
            Error::Invalid("the private key is encrypted: a passphrase is required".into())
        })?;
        let info = EncryptedPrivateKeyInfo::from_der(der)
            .map_err(|e| Error::Invalid(format!("malformed encrypted private key: {e}")))?;
        let scheme = &info.encryption_algorithm;
        let params = scheme.pbes2().ok_or_else(|| {
            Error::Invalid(format!(
                "the private key is encrypted with PBES1 ({}), which is not supported; use PBES2",
                scheme.oid()
            ))
        })?;
        let wrong = || {
            Error::Invalid(
                "cannot decrypt the private key: wrong passphrase or unsupported cipher".into(),
            )
        };
        let plain = crate::kdf::pbes2_decrypt(budget, params, passphrase, info.encrypted_data)
            .map_err(|e| match e {
                Error::Invalid(m) => Error::Invalid(format!("encrypted private key: {m}")),
                other => other,
            })?
            .ok_or_else(wrong)?;
        // A wrong passphrase passes the padding check once in 256 tries, and yields noise.
        PrivateKeyInfo::from_der(&plain).map_err(|_| wrong())?;
        Self::from_pkcs8_der(&plain)
    }

    fn from_pkcs1(der: &[u8]) -> Result<Self, Error> {
        let pair = RsaKeyPair::from_der(der)
            .map_err(|e| Error::Invalid(format!("malformed RSA private key: {e}")))?;
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| Error::Invalid("unusable RSA private key".into()))?;
        Self::from_pkcs8_der(pkcs8.as_ref())
    }

    fn from_sec1(der: &[u8]) -> Result<Self, Error> {
        for key_type in [KeyType::EcP256, KeyType::EcP384] {
            let Some(alg) = key_type.ecdsa() else {
                continue;
            };
            if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, der)
                && let Ok(pkcs8) = pair.to_pkcs8v1()
            {
                return Self::from_pkcs8_der(pkcs8.as_ref());
            }
        }
        Err(Error::Invalid(
            "not an EC private key on P-256 or P-384".into(),
        ))
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The key as PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key as a `PRIVATE KEY` PEM block.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::pem::encode("PRIVATE KEY", &self.pkcs8))
    }

    /// The key as an `ENCRYPTED PRIVATE KEY` PEM block (PBES2: PBKDF2-SHA256, AES-256-CBC), as
    /// `openssl pkcs8 -topk8` writes by default.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty passphrase; [`Error::Crypto`] when encryption fails.
    pub fn to_encrypted_pem(&self, passphrase: &str) -> Result<String, Error> {
        if passphrase.is_empty() {
            return Err(Error::Invalid("the passphrase must not be empty".into()));
        }
        let salt: [u8; 16] = crate::random::bytes()?;
        let iv: [u8; 16] = crate::random::bytes()?;
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(600_000, &salt, &iv)
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let info =
            PrivateKeyInfo::from_der(&self.pkcs8).map_err(|e| Error::Crypto(e.to_string()))?;
        let encrypted = info
            .encrypt_with_params(params, passphrase)
            .map_err(|e| Error::Crypto(e.to_string()))?;
        Ok(crate::pem::encode(
            "ENCRYPTED PRIVATE KEY",
            encrypted.as_bytes(),
        ))
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.signer)
    }

    pub(crate) fn rcgen(&self) -> &rcgen::KeyPair {
        &self.signer
    }

    /// The public key of an EC key as an uncompressed point, or of an RSA key as PKCS#1, as the
    /// subjectPublicKey BIT STRING holds it.
    pub fn raw_public_key(&self) -> &[u8] {
        rcgen::PublicKeyData::der_bytes(&self.signer)
    }
}

#[cfg(test)]
mod tests {
    use der::Encode;
    use pkcs8::pkcs5::pbes1;
    use pkcs8::pkcs5::pbes2::{self, Kdf, Pbkdf2Params, Pbkdf2Prf, ScryptParams};

    use super::*;
    use crate::kdf::tests::within_a_minute;

    /// An `ENCRYPTED PRIVATE KEY` of random bytes under `scheme`: the limits are checked before
    /// any key derivation, so nothing needs to decrypt.
    fn encrypted_under(scheme: pkcs8::pkcs5::EncryptionScheme) -> String {
        let noise: [u8; 64] = crate::random::bytes().unwrap();
        let info = EncryptedPrivateKeyInfo {
            encryption_algorithm: scheme,
            encrypted_data: &noise,
        };
        crate::pem::encode("ENCRYPTED PRIVATE KEY", &info.to_der().unwrap())
    }

    fn pbes2_with(kdf: Kdf<'static>) -> String {
        encrypted_under(
            pbes2::Parameters {
                kdf,
                encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &[7; 16] },
            }
            .into(),
        )
    }

    fn scrypt(n: u64, r: u16, p: u16) -> String {
        pbes2_with(
            ScryptParams {
                salt: &[1; 16],
                cost_parameter: n,
                block_size: r,
                parallelization: p,
                key_length: None,
            }
            .into(),
        )
    }

    #[test]
    fn key_derivations_over_the_limits_are_refused_before_they_run() {
        let pbkdf2 = pbes2_with(
            Pbkdf2Params {
                salt: &[1; 16],
                iteration_count: u32::MAX,
                key_length: None,
                prf: Pbkdf2Prf::HmacWithSha256,
            }
            .into(),
        );
        let pbes1 = encrypted_under(
            pbes1::Algorithm {
                encryption: pbes1::EncryptionScheme::PbeWithMd5AndDesCbc,
                parameters: pbes1::Parameters {
                    salt: [1; 8],
                    iteration_count: u16::MAX,
                },
            }
            .into(),
        );
        let cases = [
            (
                pbkdf2,
                "encrypted private key: iteration count 4294967295 is over the limit of 10000000",
            ),
            (
                scrypt(1 << 20, u16::MAX, 1),
                "encrypted private key: scrypt with N = 1048576, r = 65535, p = 1 needs \
                 8795967192960 bytes of memory, over the limit of 67108864",
            ),
            (
                scrypt(1 << 30, 8, 1),
                "encrypted private key: scrypt with N = 1073741824, r = 8, p = 1 needs \
                 1099511628800 bytes of memory, over the limit of 67108864",
            ),
            (
                scrypt(16_384, 8, 1024),
                "encrypted private key: scrypt parallelization p = 1024 is over the limit of 16",
            ),
            (
                pbes1,
                "the private key is encrypted with PBES1 (1.2.840.113549.1.5.3), which is not \
                 supported; use PBES2",
            ),
        ];
        for (pem, expected) in cases {
            let file = format!("{pem}{pem}");
            let err = within_a_minute(move || {
                PrivateKey::parse(pem.as_bytes(), Some("correct horse"))
                    .unwrap_err()
                    .to_string()
            });
            assert_eq!(err, expected);
            let in_bundle = within_a_minute(move || {
                crate::bundle::read(file.as_bytes(), Some("correct horse"))
                    .unwrap_err()
                    .to_string()
            });
            assert!(in_bundle.ends_with(expected), "{in_bundle}");
        }
    }

    #[test]
    fn scrypt_within_the_limits_opens() {
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let (salt, iv) = ([3; 16], [4; 16]);
        // What `openssl pkcs8 -scrypt` writes: N = 16384, r = 8, p = 1.
        let params = pbes2::Parameters::scrypt_aes256cbc(
            pkcs8::pkcs5::scrypt::Params::new(14, 8, 1, 32).unwrap(),
            &salt,
            &iv,
        )
        .unwrap();
        let sealed = PrivateKeyInfo::from_der(key.pkcs8_der())
            .unwrap()
            .encrypt_with_params(params, "correct horse")
            .unwrap();
        let pem = crate::pem::encode("ENCRYPTED PRIVATE KEY", sealed.as_bytes());
        let opened = PrivateKey::parse(pem.as_bytes(), Some("correct horse")).unwrap();
        assert_eq!(opened.pkcs8_der(), key.pkcs8_der());
    }

    #[test]
    fn every_supported_type_generates_and_round_trips() {
        for key_type in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa { bits: 2048 },
        ] {
            let key = PrivateKey::generate(key_type).unwrap();
            assert_eq!(key.key_type(), key_type);
            assert_eq!(spki_key_type(&key.public_key_der()).unwrap(), key_type);
            let again = PrivateKey::parse(key.to_pkcs8_pem().as_bytes(), None).unwrap();
            assert_eq!(again.pkcs8_der(), key.pkcs8_der());
            let sealed = key.to_encrypted_pem("correct horse").unwrap();
            let opened = PrivateKey::parse(sealed.as_bytes(), Some("correct horse")).unwrap();
            assert_eq!(opened.pkcs8_der(), key.pkcs8_der());
            let wrong = PrivateKey::parse(sealed.as_bytes(), Some("wrong")).unwrap_err();
            assert!(wrong.to_string().contains("wrong passphrase"), "{wrong}");
            let missing = PrivateKey::parse(sealed.as_bytes(), None).unwrap_err();
            assert!(
                missing.to_string().contains("passphrase is required"),
                "{missing}"
            );
        }
    }

    #[test]
    fn key_type_names_are_read_as_the_api_writes_them() {
        assert_eq!(
            KeyType::parse("RSA", Some(4096), None).unwrap(),
            KeyType::Rsa { bits: 4096 }
        );
        assert_eq!(
            KeyType::parse("EC", None, Some("P-384")).unwrap(),
            KeyType::EcP384
        );
        assert_eq!(
            KeyType::parse("ec", Some(256), None).unwrap(),
            KeyType::EcP256
        );
        assert_eq!(
            KeyType::parse("Ed25519", None, None).unwrap(),
            KeyType::Ed25519
        );
        assert!(
            KeyType::parse("RSA", Some(1024), None)
                .unwrap_err()
                .to_string()
                .contains("1024")
        );
        assert!(
            KeyType::parse("DSA", None, None)
                .unwrap_err()
                .to_string()
                .contains("'dsa'")
        );
        assert!(KeyType::parse("EC", None, Some("P-521")).is_err());
    }

    #[test]
    fn garbage_is_not_a_key() {
        let err = PrivateKey::parse(b"hello world", None).unwrap_err();
        assert!(err.to_string().contains("not a private key"), "{err}");
        let err = PrivateKey::parse(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
    }
}
