//! PKCS#12 (RFC 7292) files, read and written over the RustCrypto ASN.1 types (`pkcs12`, `cms`,
//! `pkcs5`) and block ciphers.
//!
//! Reading returns every certificate and private key a file holds, in file order, and builds no
//! chains, so no arrangement of issuer names can make it loop. It treats the file as hostile:
//! every key derivation is weighed against the limits of [`crate::kdf`] before it runs, nested
//! SafeContents have a depth limit, and no SET OF from the file is decoded, because `der` decodes
//! a SET OF by insertion sort, quadratic in the number of elements, and nothing read here needs
//! the attributes those SETs hold.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use cms::enveloped_data::EncryptedContentInfo;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ANY_EXTENDED_KEY_USAGE;
use const_oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA};
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use der::asn1::{AnyRef, BmpString, OctetString, SetOfVec};
use der::{Any, Decode, Encode, EncodeValue, ErrorKind, Tagged};
use des::TdesEde3;
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Mac, SimpleHmac};
use pkcs5::pbes2;
use pkcs12::authenticated_safe::AuthenticatedSafe;
use pkcs12::cert_type::CertBag;
use pkcs12::digest_info::DigestInfo;
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use pkcs12::mac_data::MacData;
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::SafeBag;
use pkcs12::{
    PKCS_12_CERT_BAG_OID, PKCS_12_KEY_BAG_OID, PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC,
    PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC, PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC,
    PKCS_12_PKCS8_KEY_BAG_OID, PKCS_12_SAFE_CONTENTS_BAG_OID, PKCS_12_X509_CERT_OID,
};
use rc2::Rc2;
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, Attributes};
use zeroize::Zeroizing;

use crate::bundle::Pkcs12Cipher;
use crate::kdf::{KdfBudget, pbes2_decrypt};
use crate::{Error, PrivateKey};

/// Iterations for the files we write, for the MAC and for each encryption. KB5025823: .NET
/// refuses to import files whose counts are well above the 2,000–10,000 that export tools use.
const ITERATIONS: u16 = 10_000;
/// How deep safeContentsBags may nest.
const MAX_NESTING: u8 = 8;

/// pkcs-9 friendlyName (RFC 2985).
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// pkcs-9 localKeyId (RFC 2985).
const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
/// Oracle's trustedKeyUsage: Java reads a certificate bag carrying it as a trusted certificate.
const JAVA_TRUSTED_KEY_USAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");

/// What a PKCS#12 file holds.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    /// Every X.509 certificate bag, DER, in file order.
    pub certificates: Vec<Vec<u8>>,
    /// Every key bag and shrouded key bag, in file order.
    pub private_keys: Vec<PrivateKey>,
}

/// A certificate to write as trusted, with the alias it is listed under.
pub(crate) struct TrustedCert<'a> {
    pub der: &'a [u8],
    pub alias: String,
}

/// Just enough of a PFX to recognise one before asking for its password.
#[derive(der::Sequence)]
struct PfxHead {
    version: u8,
    _auth_safe: ContentInfo,
    _mac_data: Option<Any>,
}

/// A SafeBag as read, attributes undecoded (see the module comment). `pkcs12::safe_bag::SafeBag`
/// would also hand its value back still wrapped in the `[0]` tag it writes it without.
#[derive(der::Sequence)]
struct BagRef<'a> {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: AnyRef<'a>,
    _bag_attributes: Option<AnyRef<'a>>,
}

/// An EncryptedData as read, unprotected attributes undecoded.
#[derive(der::Sequence)]
struct EncryptedDataRef<'a> {
    _version: CmsVersion,
    enc_content_info: EncryptedContentInfo,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    _unprotected_attrs: Option<Vec<AnyRef<'a>>>,
}

/// Whether `der` is a PFX (version 3), whatever its contents.
pub(crate) fn is_pfx(der: &[u8]) -> bool {
    PfxHead::from_der(der).is_ok_and(|pfx| pfx.version == 3)
}

/// Reads every certificate and private key of a PKCS#12 file. `password` checks the MAC and
/// decrypts; a file with neither MAC nor encryption reads without one.
///
/// # Errors
/// [`Error::Invalid`]: "this PKCS#12 file needs a password", "wrong PKCS#12 password",
/// "malformed PKCS#12: …", an unsupported algorithm or mode, an iteration count over the limit,
/// or a private key that is unusable.
pub(crate) fn read(der: &[u8], password: Option<&str>) -> Result<Contents, Error> {
    let pfx = Pfx::from_der(der).map_err(malformed)?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(unsupported(
            "integrity mode (not password-based)",
            pfx.auth_safe.content_type,
        ));
    }
    let auth_safe: OctetString = pfx.auth_safe.content.decode_as().map_err(malformed)?;
    let mut reader = Reader {
        password,
        mac_verified: false,
        budget: KdfBudget::for_file(),
        contents: Contents::default(),
    };
    if let Some(mac_data) = &pfx.mac_data {
        reader.verify_mac(mac_data, auth_safe.as_bytes())?;
    }
    for safe in AuthenticatedSafe::from_der(auth_safe.as_bytes()).map_err(malformed)? {
        reader.read_safe(&safe)?;
    }
    Ok(reader.contents)
}

struct Reader<'p> {
    password: Option<&'p str>,
    /// Once the MAC matched, the password is right, and content that will not decrypt is
    /// damaged rather than locked with another password.
    mac_verified: bool,
    budget: KdfBudget,
    contents: Contents,
}

impl<'p> Reader<'p> {
    fn password(&self) -> Result<&'p str, Error> {
        self.password
            .ok_or_else(|| invalid("this PKCS#12 file needs a password"))
    }

    /// Counts a key derivation's iterations against the limits before it runs.
    fn spend(&mut self, iterations: impl Into<i64>) -> Result<(), Error> {
        self.budget
            .iterations(iterations)
            .map_err(|e| context("PKCS#12", e))
    }

    fn verify_mac(&mut self, mac_data: &MacData, auth_safe: &[u8]) -> Result<(), Error> {
        let password = self.password()?;
        let digest = MacDigest::from_oid(mac_data.mac.algorithm.oid)?;
        self.spend(mac_data.iterations)?;
        let mac = digest.mac(
            password,
            mac_data.mac_salt.as_bytes(),
            mac_data.iterations,
            auth_safe,
        )?;
        aws_lc_rs::constant_time::verify_slices_are_equal(&mac, mac_data.mac.digest.as_bytes())
            .map_err(|_| invalid("wrong PKCS#12 password"))?;
        self.mac_verified = true;
        Ok(())
    }

    /// What a decryption that fails, or yields nonsense, means.
    fn undecryptable(&self) -> Error {
        if self.mac_verified {
            malformed("content that does not decrypt with the password that matched the MAC")
        } else {
            invalid("wrong PKCS#12 password (the contents do not decrypt)")
        }
    }

    fn read_safe(&mut self, safe: &ContentInfo) -> Result<(), Error> {
        match safe.content_type {
            ID_DATA => {
                let data: OctetString = safe.content.decode_as().map_err(malformed)?;
                let bags = Vec::<BagRef>::from_der(data.as_bytes()).map_err(malformed)?;
                self.read_bags(&bags, 0)
            }
            ID_ENCRYPTED_DATA => {
                let encrypted: EncryptedDataRef = safe.content.decode_as().map_err(malformed)?;
                let info = encrypted.enc_content_info;
                let ciphertext = info
                    .encrypted_content
                    .ok_or_else(|| malformed("EncryptedData without content"))?;
                let plain = self.decrypt(&info.content_enc_alg, ciphertext.as_bytes())?;
                let bags = Vec::<BagRef>::from_der(&plain).map_err(|_| self.undecryptable())?;
                self.read_bags(&bags, 0)
            }
            other => Err(unsupported("privacy mode (not password-based)", other)),
        }
    }

    fn read_bags(&mut self, bags: &[BagRef], depth: u8) -> Result<(), Error> {
        bags.iter().try_for_each(|bag| self.read_bag(bag, depth))
    }

    fn read_bag(&mut self, bag: &BagRef, depth: u8) -> Result<(), Error> {
        match bag.bag_id {
            PKCS_12_CERT_BAG_OID => {
                let cert: CertBag = bag.bag_value.decode_as().map_err(malformed)?;
                // The only other certificate type, SDSI, is not X.509.
                if cert.cert_id == PKCS_12_X509_CERT_OID {
                    self.contents
                        .certificates
                        .push(cert.cert_value.into_bytes());
                }
                Ok(())
            }
            PKCS_12_KEY_BAG_OID => {
                let pkcs8 = Zeroizing::new(bag.bag_value.to_der().map_err(malformed)?);
                self.push_key(&pkcs8)
            }
            PKCS_12_PKCS8_KEY_BAG_OID => {
                let info: EncryptedPrivateKeyInfo = bag.bag_value.decode_as().map_err(malformed)?;
                let pkcs8 =
                    self.decrypt(&info.encryption_algorithm, info.encrypted_data.as_bytes())?;
                pkcs8::PrivateKeyInfo::from_der(&pkcs8).map_err(|_| self.undecryptable())?;
                self.push_key(&pkcs8)
            }
            PKCS_12_SAFE_CONTENTS_BAG_OID => {
                if depth >= MAX_NESTING {
                    return Err(malformed(format!(
                        "SafeContents nested over {MAX_NESTING} deep"
                    )));
                }
                let bags: Vec<BagRef> = bag.bag_value.decode_as().map_err(malformed)?;
                self.read_bags(&bags, depth + 1)
            }
            // CRL and secret bags hold neither certificates nor private keys.
            _ => Ok(()),
        }
    }

    fn push_key(&mut self, pkcs8: &[u8]) -> Result<(), Error> {
        let key =
            PrivateKey::from_pkcs8_der(pkcs8).map_err(|e| context("PKCS#12 private key", e))?;
        self.contents.private_keys.push(key);
        Ok(())
    }

    fn decrypt(
        &mut self,
        algorithm: &AlgorithmIdentifierOwned,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let password = self.password()?;
        let params = algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| malformed(format!("no parameters for {}", algorithm.oid)))?;
        let plain = if algorithm.oid == pbes2::PBES2_OID {
            let params: pbes2::Parameters = params.decode_as().map_err(algorithm_error)?;
            pbes2_decrypt(&mut self.budget, &params, password, ciphertext)
                .map_err(|e| context("PKCS#12", e))?
        } else {
            let cipher = Pkcs12Pbe::from_oid(algorithm.oid)?;
            let params: Pkcs12PbeParams = params.decode_as().map_err(malformed)?;
            self.spend(params.iterations)?;
            cipher.decrypt(password, &params, ciphertext)
        };
        plain.ok_or_else(|| self.undecryptable())
    }
}

/// The PKCS#12 password-based ciphers (RFC 7292 Appendix C) read here.
#[derive(Clone, Copy)]
enum Pkcs12Pbe {
    TripleDes,
    Rc2With128BitKey,
    Rc2With40BitKey,
}

impl Pkcs12Pbe {
    fn from_oid(oid: ObjectIdentifier) -> Result<Self, Error> {
        match oid {
            PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => Ok(Self::TripleDes),
            PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => Ok(Self::Rc2With128BitKey),
            PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => Ok(Self::Rc2With40BitKey),
            other => Err(unsupported("encryption algorithm", other)),
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::TripleDes => 24,
            Self::Rc2With128BitKey => 16,
            Self::Rc2With40BitKey => 5,
        }
    }

    /// `None` when the padding is wrong.
    fn decrypt(
        self,
        password: &str,
        params: &Pkcs12PbeParams,
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let (key, iv) = pkcs12_pbe_key_and_iv(password, params, self.key_len());
        match self {
            Self::TripleDes => cbc_decrypt::<TdesEde3>(&key, &iv, ciphertext),
            // RC2 built from a key alone takes the key's length as its effective key length,
            // which is what both PKCS#12 RC2 variants use.
            Self::Rc2With128BitKey | Self::Rc2With40BitKey => {
                cbc_decrypt::<Rc2>(&key, &iv, ciphertext)
            }
        }
    }
}

/// Key and IV from the PKCS#12 KDF (RFC 7292 Appendix B) with SHA-1, as the Appendix C
/// ciphers all use.
fn pkcs12_pbe_key_and_iv(
    password: &str,
    params: &Pkcs12PbeParams,
    key_len: usize,
) -> (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>) {
    let password = kdf_password(password);
    let salt = params.salt.as_bytes();
    let derive = |usage, len| {
        Zeroizing::new(derive_key::<Sha1>(
            &password,
            salt,
            usage,
            params.iterations,
            len,
        ))
    };
    (
        derive(Pkcs12KeyType::EncryptionKey, key_len),
        derive(Pkcs12KeyType::Iv, 8),
    )
}

fn cbc_decrypt<C: BlockCipher + BlockDecryptMut + KeyInit>(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let len = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_mut::<Pkcs7>(&mut buffer)
        .ok()?
        .len();
    buffer.truncate(len);
    Some(buffer)
}

/// The password as the PKCS#12 KDF takes it: a BMPString (UTF-16 big-endian) with a trailing
/// null. Characters outside the BMP become surrogate pairs, as OpenSSL makes them.
fn kdf_password(password: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        password
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_be_bytes)
            .collect(),
    )
}

/// The digests of the PKCS#12 MAC (HMAC keyed by the PKCS#12 KDF).
#[derive(Clone, Copy)]
enum MacDigest {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl MacDigest {
    fn from_oid(oid: ObjectIdentifier) -> Result<Self, Error> {
        match oid {
            ID_SHA_1 => Ok(Self::Sha1),
            ID_SHA_256 => Ok(Self::Sha256),
            ID_SHA_384 => Ok(Self::Sha384),
            ID_SHA_512 => Ok(Self::Sha512),
            other => Err(unsupported("MAC algorithm", other)),
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => ID_SHA_1,
            Self::Sha256 => ID_SHA_256,
            Self::Sha384 => ID_SHA_384,
            Self::Sha512 => ID_SHA_512,
        }
    }

    fn mac(
        self,
        password: &str,
        salt: &[u8],
        iterations: i32,
        data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let password = kdf_password(password);
        match self {
            Self::Sha1 => pkcs12_hmac::<Sha1>(&password, salt, iterations, data),
            Self::Sha256 => pkcs12_hmac::<Sha256>(&password, salt, iterations, data),
            Self::Sha384 => pkcs12_hmac::<Sha384>(&password, salt, iterations, data),
            Self::Sha512 => pkcs12_hmac::<Sha512>(&password, salt, iterations, data),
        }
    }
}

fn pkcs12_hmac<D>(
    password: &[u8],
    salt: &[u8],
    iterations: i32,
    data: &[u8],
) -> Result<Vec<u8>, Error>
where
    D: Digest + FixedOutputReset + BlockSizeUser,
{
    let key = Zeroizing::new(derive_key::<D>(
        password,
        salt,
        Pkcs12KeyType::Mac,
        iterations,
        <D as Digest>::output_size(),
    ));
    let mut hmac = <SimpleHmac<D> as Mac>::new_from_slice(&key)
        .map_err(|e| Error::Crypto(format!("HMAC: {e}")))?;
    hmac.update(data);
    Ok(hmac.finalize().into_bytes().to_vec())
}

/// Writes a file holding one private key, its certificate and the chain. Key bag and
/// certificate bag carry `friendly_name` and a localKeyId, the certificate's SHA-1 as OpenSSL
/// makes it, that links them.
pub(crate) fn write_key(
    key: &PrivateKey,
    cert_der: &[u8],
    chain: &[&[u8]],
    friendly_name: &str,
    password: &str,
    cipher: Pkcs12Cipher,
) -> Result<Vec<u8>, Error> {
    let local_key_id =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der);
    let attributes = attributes(vec![
        attribute(FRIENDLY_NAME, &bmp_string(friendly_name)?)?,
        attribute(LOCAL_KEY_ID, &octet_string(local_key_id.as_ref().to_vec())?)?,
    ])?;
    let mut certs = vec![cert_bag(cert_der, Some(attributes.clone()))?];
    for der in chain {
        certs.push(cert_bag(der, None)?);
    }
    let (algorithm, encrypted) = encrypt(cipher, password, key.pkcs8_der())?;
    let key_bag = bag(
        PKCS_12_PKCS8_KEY_BAG_OID,
        &EncryptedPrivateKeyInfo {
            encryption_algorithm: algorithm,
            encrypted_data: octet_string(encrypted)?,
        },
        Some(attributes),
    )?;
    let safes = vec![
        encrypted_safe(certs, password, cipher)?,
        plain_safe(vec![key_bag])?,
    ];
    pfx(safes, password, cipher)
}

/// Writes certificates only, each marked as trusted for Java and named by its alias.
pub(crate) fn write_trusted(
    certs: &[TrustedCert],
    password: &str,
    cipher: Pkcs12Cipher,
) -> Result<Vec<u8>, Error> {
    let trusted = attribute(JAVA_TRUSTED_KEY_USAGE, &ANY_EXTENDED_KEY_USAGE)?;
    let bags = certs
        .iter()
        .map(|cert| {
            let name = attribute(FRIENDLY_NAME, &bmp_string(&cert.alias)?)?;
            cert_bag(cert.der, Some(attributes(vec![name, trusted.clone()])?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    pfx(
        vec![encrypted_safe(bags, password, cipher)?],
        password,
        cipher,
    )
}

/// The PFX around `safes`, with its MAC.
fn pfx(safes: Vec<ContentInfo>, password: &str, cipher: Pkcs12Cipher) -> Result<Vec<u8>, Error> {
    let auth_safe = safes.to_der().map_err(encoding)?;
    let digest = match cipher {
        Pkcs12Cipher::Aes256 => MacDigest::Sha256,
        Pkcs12Cipher::Legacy3Des => MacDigest::Sha1,
    };
    let salt: [u8; 16] = crate::random::bytes()?;
    let iterations = i32::from(ITERATIONS);
    let mac = digest.mac(password, &salt, iterations, &auth_safe)?;
    Pfx {
        version: Version::V3,
        auth_safe: data_content(auth_safe)?,
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid: digest.oid(),
                    parameters: Some(Any::null()),
                },
                digest: octet_string(mac)?,
            },
            mac_salt: octet_string(salt.to_vec())?,
            iterations,
        }),
    }
    .to_der()
    .map_err(encoding)
}

fn plain_safe(bags: Vec<SafeBag>) -> Result<ContentInfo, Error> {
    data_content(bags.to_der().map_err(encoding)?)
}

fn encrypted_safe(
    bags: Vec<SafeBag>,
    password: &str,
    cipher: Pkcs12Cipher,
) -> Result<ContentInfo, Error> {
    let (algorithm, encrypted) = encrypt(cipher, password, &bags.to_der().map_err(encoding)?)?;
    let data = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: algorithm,
            encrypted_content: Some(octet_string(encrypted)?),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo {
        content_type: ID_ENCRYPTED_DATA,
        content: Any::encode_from(&data).map_err(encoding)?,
    })
}

fn data_content(bytes: Vec<u8>) -> Result<ContentInfo, Error> {
    Ok(ContentInfo {
        content_type: ID_DATA,
        content: Any::encode_from(&octet_string(bytes)?).map_err(encoding)?,
    })
}

fn cert_bag(der: &[u8], attributes: Option<Attributes>) -> Result<SafeBag, Error> {
    let cert = CertBag {
        cert_id: PKCS_12_X509_CERT_OID,
        cert_value: octet_string(der.to_vec())?,
    };
    bag(PKCS_12_CERT_BAG_OID, &cert, attributes)
}

fn bag(
    id: ObjectIdentifier,
    value: &impl Encode,
    attributes: Option<Attributes>,
) -> Result<SafeBag, Error> {
    Ok(SafeBag {
        bag_id: id,
        bag_value: value.to_der().map_err(encoding)?,
        bag_attributes: attributes,
    })
}

fn attributes(list: Vec<Attribute>) -> Result<Attributes, Error> {
    SetOfVec::try_from(list).map_err(encoding)
}

fn attribute(
    oid: ObjectIdentifier,
    value: &(impl Tagged + EncodeValue),
) -> Result<Attribute, Error> {
    let value = Any::encode_from(value).map_err(encoding)?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(encoding)?,
    })
}

fn bmp_string(text: &str) -> Result<BmpString, Error> {
    BmpString::from_utf8(text).map_err(|_| {
        invalid(format!(
            "the name '{text}' has characters a PKCS#12 friendlyName cannot hold"
        ))
    })
}

fn octet_string(bytes: Vec<u8>) -> Result<OctetString, Error> {
    OctetString::new(bytes).map_err(encoding)
}

/// Encrypts with a fresh salt (and IV): PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, or
/// pbeWithSHAAnd3-KeyTripleDES-CBC.
fn encrypt(
    cipher: Pkcs12Cipher,
    password: &str,
    plaintext: &[u8],
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), Error> {
    match cipher {
        Pkcs12Cipher::Aes256 => {
            let salt: [u8; 16] = crate::random::bytes()?;
            let iv: [u8; 16] = crate::random::bytes()?;
            let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(ITERATIONS.into(), &salt, &iv)
                .map_err(|e| Error::Crypto(e.to_string()))?;
            let encrypted = params
                .encrypt(password, plaintext)
                .map_err(|e| Error::Crypto(e.to_string()))?;
            Ok((algorithm(pbes2::PBES2_OID, &params)?, encrypted))
        }
        Pkcs12Cipher::Legacy3Des => {
            let params = Pkcs12PbeParams {
                salt: octet_string(crate::random::bytes::<8>()?.to_vec())?,
                iterations: ITERATIONS.into(),
            };
            let (key, iv) =
                pkcs12_pbe_key_and_iv(password, &params, Pkcs12Pbe::TripleDes.key_len());
            let encrypted = cbc::Encryptor::<TdesEde3>::new_from_slices(&key, &iv)
                .map_err(|e| Error::Crypto(e.to_string()))?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
            let algorithm = algorithm(PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC, &params)?;
            Ok((algorithm, encrypted))
        }
    }
}

fn algorithm(
    oid: ObjectIdentifier,
    params: &(impl Tagged + EncodeValue),
) -> Result<AlgorithmIdentifierOwned, Error> {
    Ok(AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::encode_from(params).map_err(encoding)?),
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Prefixes an [`Error::Invalid`] message with what was being read.
fn context(what: &str, e: Error) -> Error {
    match e {
        Error::Invalid(m) => invalid(format!("{what}: {m}")),
        other => other,
    }
}

fn malformed(detail: impl std::fmt::Display) -> Error {
    invalid(format!("malformed PKCS#12: {detail}"))
}

fn unsupported(what: &str, oid: ObjectIdentifier) -> Error {
    invalid(format!(
        "the PKCS#12 file uses an unsupported {what}: {oid}"
    ))
}

/// pkcs5 reports an algorithm it does not implement as an unknown OID.
fn algorithm_error(e: der::Error) -> Error {
    match e.kind() {
        ErrorKind::OidUnknown { oid } => unsupported("algorithm", oid),
        _ => malformed(e),
    }
}

fn encoding(e: der::Error) -> Error {
    invalid(format!("cannot write the PKCS#12 file: {e}"))
}

#[cfg(test)]
mod tests {
    use cms::encrypted_data::EncryptedData;
    use pkcs5::pbes2::{Pbkdf2Params, Pbkdf2Prf};
    use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer};

    use super::*;
    use crate::KeyType;
    use crate::kdf::tests::within_a_minute;

    const PASSWORD: &str = "correct horse";

    fn params(common_name: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
    }

    fn self_signed(common_name: &str) -> (PrivateKey, Vec<u8>) {
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let cert = params(common_name).self_signed(key.rcgen()).unwrap();
        (key, cert.der().to_vec())
    }

    /// A file holding a key, its certificate and one other certificate.
    fn sample(cipher: Pkcs12Cipher) -> Vec<u8> {
        let (key, cert) = self_signed("leaf");
        let (_, other) = self_signed("other");
        write_key(&key, &cert, &[&other], "leaf", PASSWORD, cipher).unwrap()
    }

    fn without_mac(p12: &[u8]) -> Vec<u8> {
        let mut pfx = Pfx::from_der(p12).unwrap();
        pfx.mac_data = None;
        pfx.to_der().unwrap()
    }

    /// A file of `safes` with no MAC.
    fn unprotected(safes: Vec<ContentInfo>) -> Vec<u8> {
        Pfx {
            version: Version::V3,
            auth_safe: data_content(safes.to_der().unwrap()).unwrap(),
            mac_data: None,
        }
        .to_der()
        .unwrap()
    }

    /// `p12` with its first safe's PBKDF2 iteration count replaced.
    fn with_pbkdf2_iterations(p12: &[u8], iterations: u32) -> Vec<u8> {
        let pfx = Pfx::from_der(p12).unwrap();
        let data: OctetString = pfx.auth_safe.content.decode_as().unwrap();
        let mut safes = AuthenticatedSafe::from_der(data.as_bytes()).unwrap();
        let mut encrypted: EncryptedData = safes[0].content.decode_as().unwrap();
        let algorithm = &mut encrypted.enc_content_info.content_enc_alg;
        let old = algorithm.parameters.as_ref().unwrap().to_der().unwrap();
        let mut params = pbes2::Parameters::from_der(&old).unwrap();
        let mut kdf = *params.kdf.pbkdf2().unwrap();
        kdf.iteration_count = iterations;
        params.kdf = kdf.into();
        algorithm.parameters = Some(Any::encode_from(&params).unwrap());
        safes[0].content = Any::encode_from(&encrypted).unwrap();
        let mut pfx = Pfx::from_der(&without_mac(p12)).unwrap();
        pfx.auth_safe = data_content(safes.to_der().unwrap()).unwrap();
        pfx.to_der().unwrap()
    }

    fn error(result: Result<Contents, Error>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn certificates_naming_each_other_as_issuer_read_in_bounded_time() {
        let key_a = PrivateKey::generate(KeyType::EcP256).unwrap();
        let key_b = PrivateKey::generate(KeyType::EcP256).unwrap();
        let (params_a, params_b) = (params("A"), params("B"));
        let issued = |subject: &CertificateParams, key: &PrivateKey, issuer, issuer_key| {
            let issuer = Issuer::from_params(issuer, issuer_key);
            let cert = subject.signed_by(key.rcgen(), &issuer).unwrap();
            cert.der().to_vec()
        };
        let a = issued(&params_a, &key_a, &params_b, key_b.rcgen());
        let b = issued(&params_b, &key_b, &params_a, key_a.rcgen());
        let (_, unrelated) = self_signed("unrelated");
        let expected = vec![a.clone(), b.clone(), unrelated.clone()];
        for cipher in [Pkcs12Cipher::Aes256, Pkcs12Cipher::Legacy3Des] {
            let p12 = write_key(&key_a, &a, &[&b, &unrelated], "a", PASSWORD, cipher).unwrap();
            let (certs, keys) = within_a_minute(move || {
                let contents = read(&p12, Some(PASSWORD)).unwrap();
                let keys = contents.private_keys.iter().map(|k| k.pkcs8_der().to_vec());
                (contents.certificates, keys.collect::<Vec<_>>())
            });
            assert_eq!(certs, expected, "{cipher:?}");
            assert_eq!(keys, [key_a.pkcs8_der()], "{cipher:?}");
        }
    }

    #[test]
    fn wrong_and_missing_passwords_are_named_with_or_without_a_mac() {
        for cipher in [Pkcs12Cipher::Aes256, Pkcs12Cipher::Legacy3Des] {
            let p12 = sample(cipher);
            for file in [p12.clone(), without_mac(&p12)] {
                let contents = read(&file, Some(PASSWORD)).unwrap();
                assert_eq!(contents.certificates.len(), 2);
                assert_eq!(contents.private_keys.len(), 1);
                let wrong = error(read(&file, Some("correct battery")));
                assert!(wrong.contains("wrong PKCS#12 password"), "{wrong}");
                let missing = error(read(&file, None));
                assert_eq!(missing, "this PKCS#12 file needs a password");
            }
        }
    }

    #[test]
    fn truncated_files_are_malformed() {
        let p12 = sample(Pkcs12Cipher::Aes256);
        for len in 0..p12.len() {
            let err = error(read(&p12[..len], Some(PASSWORD)));
            assert!(err.starts_with("malformed PKCS#12: "), "{len}: {err}");
        }
        let err = crate::bundle::read(&p12[..p12.len() - 1], Some(PASSWORD)).unwrap_err();
        assert!(err.to_string().contains("truncated DER"), "{err}");
    }

    #[test]
    fn absurd_iteration_counts_are_refused_before_any_work() {
        let p12 = sample(Pkcs12Cipher::Aes256);
        let with_mac_iterations = |iterations| {
            let mut pfx = Pfx::from_der(&p12).unwrap();
            pfx.mac_data.as_mut().unwrap().iterations = iterations;
            pfx.to_der().unwrap()
        };
        let cases = [
            (
                with_mac_iterations(i32::MAX),
                "PKCS#12: iteration count 2147483647 is over the limit of 10000000",
            ),
            (
                with_mac_iterations(-1),
                "PKCS#12: iteration count -1 is not a positive number",
            ),
            (
                with_pbkdf2_iterations(&p12, 20_000_000),
                "PKCS#12: iteration count 20000000 is over the limit of 10000000",
            ),
        ];
        for (file, expected) in cases {
            let err = within_a_minute(move || error(read(&file, Some(PASSWORD))));
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn iterations_are_limited_for_the_whole_file() {
        let mut reader = Reader {
            password: None,
            mac_verified: false,
            budget: KdfBudget::for_file(),
            contents: Contents::default(),
        };
        for _ in 0..3 {
            reader.spend(crate::kdf::MAX_WORK).unwrap();
        }
        let err = reader.spend(1).unwrap_err().to_string();
        assert_eq!(
            err,
            "PKCS#12: the key derivations of this input cost over 30000000 iterations in all"
        );
    }

    #[test]
    fn unencrypted_bags_need_no_password_and_nesting_is_limited() {
        let (key, cert) = self_signed("leaf");
        let file = |depth: u8| {
            let key_bag = bag(
                PKCS_12_KEY_BAG_OID,
                &Any::from_der(key.pkcs8_der()).unwrap(),
                None,
            );
            let mut bags = vec![cert_bag(&cert, None).unwrap(), key_bag.unwrap()];
            for _ in 0..depth {
                bags = vec![bag(PKCS_12_SAFE_CONTENTS_BAG_OID, &bags, None).unwrap()];
            }
            unprotected(vec![plain_safe(bags).unwrap()])
        };
        for depth in [0, MAX_NESTING] {
            let contents = read(&file(depth), None).unwrap();
            assert_eq!(contents.certificates, std::slice::from_ref(&cert));
            assert_eq!(contents.private_keys[0].pkcs8_der(), key.pkcs8_der());
        }
        let err = error(read(&file(MAX_NESTING + 1), None));
        assert_eq!(err, "malformed PKCS#12: SafeContents nested over 8 deep");
    }

    #[test]
    fn every_single_byte_corruption_is_read_or_refused_without_panicking() {
        let (key, cert) = self_signed("leaf");
        let key_bag = bag(
            PKCS_12_KEY_BAG_OID,
            &Any::from_der(key.pkcs8_der()).unwrap(),
            None,
        );
        let bags = vec![cert_bag(&cert, None).unwrap(), key_bag.unwrap()];
        let nested = bag(PKCS_12_SAFE_CONTENTS_BAG_OID, &bags, None).unwrap();
        let file = unprotected(vec![plain_safe(vec![nested]).unwrap()]);
        for i in 0..file.len() {
            let mut corrupt = file.clone();
            corrupt[i] ^= 0xff;
            let _ = read(&corrupt, None);
        }
    }

    #[test]
    fn pbes2_keys_read_with_each_prf_and_aes_key_size() {
        let (key, _) = self_signed("leaf");
        let (salt, iv) = ([7; 16], [9; 16]);
        for (prf, encryption) in [
            (
                Pbkdf2Prf::HmacWithSha1,
                pbes2::EncryptionScheme::Aes128Cbc { iv: &iv },
            ),
            (
                Pbkdf2Prf::HmacWithSha256,
                pbes2::EncryptionScheme::Aes192Cbc { iv: &iv },
            ),
            (
                Pbkdf2Prf::HmacWithSha512,
                pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
            ),
        ] {
            let kdf = Pbkdf2Params {
                salt: &salt,
                iteration_count: 2048,
                key_length: None,
                prf,
            };
            let params = pbes2::Parameters {
                kdf: kdf.into(),
                encryption,
            };
            let shrouded = pkcs8::PrivateKeyInfo::from_der(key.pkcs8_der())
                .unwrap()
                .encrypt_with_params(params, PASSWORD)
                .unwrap();
            let key_bag = SafeBag {
                bag_id: PKCS_12_PKCS8_KEY_BAG_OID,
                bag_value: shrouded.as_bytes().to_vec(),
                bag_attributes: None,
            };
            let file = unprotected(vec![plain_safe(vec![key_bag]).unwrap()]);
            let contents = read(&file, Some(PASSWORD)).unwrap();
            assert_eq!(
                contents.private_keys[0].pkcs8_der(),
                key.pkcs8_der(),
                "{prf:?}"
            );
            let wrong = error(read(&file, Some("correct battery")));
            assert!(wrong.contains("wrong PKCS#12 password"), "{prf:?}: {wrong}");
        }
    }
}
