//! JSON Web Signatures and keys as ACME uses them (RFC 7515, 7517, 7518, 7638, 8037).
//!
//! Trust boundary: every byte handed to this module comes from an ACME client and is hostile
//! until a signature over it verifies. Only what RFC 8555 §6.2 allows is accepted: the flattened
//! JSON serialization with everything in the protected header, the asymmetric algorithms RS256,
//! ES256, ES384 and EdDSA (Ed25519) for requests, and HS256/384/512 for the inner JWS of an
//! External Account Binding (§7.3.4). Sizes are capped before anything is decoded, so a hostile
//! body cannot make us decode or hash more than a real request needs; the overall body size is
//! the HTTP layer's limit.
//!
//! Whether a request must carry `kid` or `jwk` depends on the endpoint (§6.2), so [`Jws::parse`]
//! reads both and leaves that rule to the caller. Nonce and URL checks are the caller's too.

use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, EcdsaVerificationAlgorithm,
    RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use const_oid::db::rfc8410::ID_ED_25519;
use der::Encode as _;
use der::asn1::{Any, BitString, UintRef};
use serde_json::{Map, Value};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::KeyType;
use crate::keys::MIN_RSA_BITS;

/// The largest decoded protected header accepted; real ACME headers (a JWK of an RSA-8192 key,
/// a nonce and a URL) stay under 2 KiB.
const MAX_PROTECTED_HEADER_BYTES: usize = 8 * 1024;
/// The largest RSA modulus accepted, as RFC 8555 clients use and aws-lc-rs verifies.
const MAX_RSA_BITS: usize = 8192;
/// The largest signature any accepted algorithm produces (RSA-8192).
const MAX_SIGNATURE_BYTES: usize = MAX_RSA_BITS / 8;
/// RSA public exponents above 2^33 - 1 are refused by aws-lc-rs at verification; refusing them
/// when the key is read gives the client `badPublicKey` instead of a bare signature failure.
const MAX_RSA_EXPONENT_BITS: usize = 33;
/// JWK members that only a private or symmetric key has (RFC 7518 §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// How much of a client-supplied string is echoed back in an error message.
const ECHO_CHARS: usize = 40;

/// What can be wrong with a JWS or JWK; each variant maps to one ACME problem type.
#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    /// The JWS or its protected header is not well formed (`urn:ietf:params:acme:error:malformed`).
    #[error("{0}")]
    Malformed(String),
    /// The JWS uses an algorithm that is not accepted, or that does not fit the key
    /// (`urn:ietf:params:acme:error:badSignatureAlgorithm`).
    #[error("{0}")]
    BadSignatureAlgorithm(String),
    /// The JWK is not an acceptable public key: private members, an unsupported type or curve,
    /// a key too small or too large, a point not on its curve
    /// (`urn:ietf:params:acme:error:badPublicKey`).
    #[error("{0}")]
    BadPublicKey(String),
    /// The signature does not verify; the caller chooses `malformed` or `unauthorized`.
    #[error("the JWS signature does not verify")]
    BadSignature,
}

/// A JWS signature algorithm accepted on ACME requests (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519 (RFC 8037; the only EdDSA curve accepted).
    EdDsa,
}

impl Algorithm {
    /// Every accepted algorithm, in the order error messages list them.
    pub const ALL: [Algorithm; 4] = [Self::Rs256, Self::Es256, Self::Es384, Self::EdDsa];

    /// The `alg` value: `RS256`, `ES256`, `ES384` or `EdDSA`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Reads an `alg` value. Names are case-sensitive (RFC 7515 §4.1.1).
    ///
    /// # Errors
    /// [`JoseError::BadSignatureAlgorithm`] naming the accepted algorithms, for `none`, the MAC
    /// algorithms (RFC 8555 §6.2 forbids both on requests) and anything unknown.
    pub fn parse(name: &str) -> Result<Self, JoseError> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name() == name)
            .ok_or_else(|| {
                let supported = Self::ALL.map(|alg| alg.name()).join(", ");
                JoseError::BadSignatureAlgorithm(format!(
                    "JWS algorithm \"{}\" is not accepted; use one of {supported}",
                    echo(name)
                ))
            })
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The curves accepted for `kty: EC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    /// The length of one coordinate; RFC 7518 §6.2.1.2 requires the full length, leading zeros
    /// included, which also makes the thumbprint unambiguous.
    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::P256 => SECP_256_R_1,
            Self::P384 => SECP_384_R_1,
        }
    }

    fn verification(self) -> &'static EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &ECDSA_P256_SHA256_FIXED,
            Self::P384 => &ECDSA_P384_SHA384_FIXED,
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            Self::P256 => KeyType::EcP256,
            Self::P384 => KeyType::EcP384,
        }
    }
}

/// The key material, kept exactly as the JWK encoded it: `n` and `e` without leading zeros,
/// EC coordinates at full length, so that re-encoding gives back the client's own strings.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        bits: u32,
    },
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl PublicKey {
    /// The uncompressed SEC1 point of an EC key, as aws-lc-rs and the SPKI want it.
    fn ec_point(x: &[u8], y: &[u8]) -> Vec<u8> {
        let mut point = Vec::with_capacity(1 + x.len() + y.len());
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        point
    }

    fn spki_der(&self) -> Result<Vec<u8>, der::Error> {
        let (oid, parameters, key) = match self {
            Self::Rsa { n, e, .. } => {
                #[derive(der::Sequence)]
                struct RsaPublicKey<'a> {
                    modulus: UintRef<'a>,
                    public_exponent: UintRef<'a>,
                }
                let pkcs1 = RsaPublicKey {
                    modulus: UintRef::new(n)?,
                    public_exponent: UintRef::new(e)?,
                }
                .to_der()?;
                // RFC 3279 §2.3.1: the parameters MUST be present and NULL.
                (RSA_ENCRYPTION, Some(Any::null()), pkcs1)
            }
            Self::Ec { curve, x, y } => (
                ID_EC_PUBLIC_KEY,
                Some(Any::encode_from(&curve.oid())?),
                Self::ec_point(x, y),
            ),
            // RFC 8410 §3: the parameters MUST be absent.
            Self::Ed25519 { x } => (ID_ED_25519, None, x.clone()),
        };
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned { oid, parameters },
            subject_public_key: BitString::from_bytes(&key)?,
        }
        .to_der()
    }
}

/// A public key read from a JWK (RFC 7517, 7518 §6, 8037 §2): RSA with a modulus of 2048 to
/// 8192 bits, EC on P-256 or P-384 with a point on the curve, or OKP Ed25519.
///
/// Members other than the required public ones (`kid`, `use`, `alg`, …) are ignored, as
/// RFC 7638 §3.1 ignores them for the thumbprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    key: PublicKey,
    /// Computed when the key is read so that [`Jwk::spki_der`] cannot fail.
    spki: Vec<u8>,
}

impl Jwk {
    /// Reads a JWK from its JSON value.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] when `value` is not a JSON object; [`JoseError::BadPublicKey`]
    /// for private key members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`), an unknown `kty`
    /// or `crv`, a missing member, a member that is not base64url without padding, a wrong
    /// coordinate length, an RSA modulus outside 2048..=8192 bits or with leading zero octets
    /// (RFC 7518 §2 requires the minimal encoding), an unusable exponent, or an EC point not on
    /// its curve.
    ///
    /// # Security
    /// A JWK carrying private members is refused rather than stripped: a client that sends its
    /// private key has leaked it, and must not have it accepted as an account key.
    pub fn from_json(value: &Value) -> Result<Jwk, JoseError> {
        let members = value
            .as_object()
            .ok_or_else(|| JoseError::Malformed("the JWK is not a JSON object".into()))?;
        if let Some(name) = PRIVATE_MEMBERS
            .iter()
            .find(|name| members.contains_key(**name))
        {
            return Err(JoseError::BadPublicKey(format!(
                "the JWK holds the private key member \"{name}\"; send only the public key"
            )));
        }
        let key = match jwk_string(members, "kty")? {
            "RSA" => rsa_key(members)?,
            "EC" => ec_key(members)?,
            "OKP" => okp_key(members)?,
            other => {
                return Err(JoseError::BadPublicKey(format!(
                    "JWK key type \"{}\" is not supported; use RSA, EC or OKP",
                    echo(other)
                )));
            }
        };
        let spki = key.spki_der().map_err(|_| {
            JoseError::BadPublicKey("the JWK cannot be encoded as a public key".into())
        })?;
        Ok(Jwk { key, spki })
    }

    /// The JWK with only its required public members (`kty` and `n`, `e` / `crv`, `x`, `y` /
    /// `crv`, `x`), as an ACME account object shows it.
    pub fn to_json(&self) -> Value {
        match &self.key {
            PublicKey::Rsa { n, e, .. } => serde_json::json!({
                "kty": "RSA",
                "n": b64(n),
                "e": b64(e),
            }),
            PublicKey::Ec { curve, x, y } => serde_json::json!({
                "kty": "EC",
                "crv": curve.name(),
                "x": b64(x),
                "y": b64(y),
            }),
            PublicKey::Ed25519 { x } => serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(x),
            }),
        }
    }

    /// The RFC 7638 thumbprint: base64url (no padding) of the SHA-256 of the required members
    /// in lexicographic order with no whitespace.
    pub fn thumbprint(&self) -> String {
        // Written out rather than serialized: RFC 7638 fixes member order and spacing, and the
        // values are base64url and fixed names, which never need JSON escaping.
        let canonical = match &self.key {
            PublicKey::Rsa { n, e, .. } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
            }
            PublicKey::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64(x),
                b64(y)
            ),
            PublicKey::Ed25519 { x } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x))
            }
        };
        b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The key as a DER SubjectPublicKeyInfo, encoded as certificates and CSRs carry it
    /// (rsaEncryption with NULL parameters; id-ecPublicKey with the named curve and the
    /// uncompressed point; id-Ed25519 without parameters), so it can be compared byte for byte
    /// with a CSR's or a certificate's key.
    pub fn spki_der(&self) -> Vec<u8> {
        self.spki.clone()
    }

    /// The key's type and size.
    pub fn key_type(&self) -> KeyType {
        match &self.key {
            PublicKey::Rsa { bits, .. } => KeyType::Rsa { bits: *bits },
            PublicKey::Ec { curve, .. } => curve.key_type(),
            PublicKey::Ed25519 { .. } => KeyType::Ed25519,
        }
    }

    /// Whether `alg` is the algorithm for this key: RS256 for RSA, ES256 for P-256, ES384 for
    /// P-384, EdDSA for Ed25519.
    pub fn algorithm_fits(&self, alg: Algorithm) -> bool {
        matches!(
            (&self.key, alg),
            (PublicKey::Rsa { .. }, Algorithm::Rs256)
                | (
                    PublicKey::Ec {
                        curve: Curve::P256,
                        ..
                    },
                    Algorithm::Es256
                )
                | (
                    PublicKey::Ec {
                        curve: Curve::P384,
                        ..
                    },
                    Algorithm::Es384
                )
                | (PublicKey::Ed25519 { .. }, Algorithm::EdDsa)
        )
    }
}

fn rsa_key(members: &Map<String, Value>) -> Result<PublicKey, JoseError> {
    let n = jwk_bytes(members, "n", MAX_RSA_BITS / 8)?;
    let e = jwk_bytes(members, "e", MAX_RSA_EXPONENT_BITS.div_ceil(8))?;
    for (name, value) in [("n", &n), ("e", &e)] {
        if value.first().is_none_or(|b| *b == 0) {
            return Err(JoseError::BadPublicKey(format!(
                "RSA member \"{name}\" must be a positive integer without leading zero octets"
            )));
        }
    }
    let bits = bit_len(&n);
    let min_bits = usize::try_from(MIN_RSA_BITS).unwrap_or(usize::MAX);
    if !(min_bits..=MAX_RSA_BITS).contains(&bits) {
        return Err(JoseError::BadPublicKey(format!(
            "an RSA key of {bits} bits is not accepted; use {MIN_RSA_BITS} to {MAX_RSA_BITS} bits"
        )));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(JoseError::BadPublicKey(
            "the RSA modulus is even, so it is not an RSA modulus".into(),
        ));
    }
    let exponent_bits = bit_len(&e);
    if !(2..=MAX_RSA_EXPONENT_BITS).contains(&exponent_bits) || e.last().is_some_and(|b| b & 1 == 0)
    {
        return Err(JoseError::BadPublicKey(
            "the RSA public exponent must be odd, at least 3 and below 2^33".into(),
        ));
    }
    let bits = u32::try_from(bits)
        .map_err(|_| JoseError::BadPublicKey("the RSA modulus is too large".into()))?;
    Ok(PublicKey::Rsa { n, e, bits })
}

fn ec_key(members: &Map<String, Value>) -> Result<PublicKey, JoseError> {
    let curve = match jwk_string(members, "crv")? {
        "P-256" => Curve::P256,
        "P-384" => Curve::P384,
        other => {
            return Err(JoseError::BadPublicKey(format!(
                "EC curve \"{}\" is not supported; use P-256 or P-384",
                echo(other)
            )));
        }
    };
    let len = curve.coordinate_len();
    let x = jwk_bytes(members, "x", len)?;
    let y = jwk_bytes(members, "y", len)?;
    for (name, value) in [("x", &x), ("y", &y)] {
        if value.len() != len {
            return Err(JoseError::BadPublicKey(format!(
                "EC coordinate \"{name}\" must be {len} bytes for {}",
                curve.name()
            )));
        }
    }
    // aws-lc-rs checks that the point is on the curve; an off-curve point is the classic
    // invalid-curve attack surface, and must be refused before any signature is checked.
    signature::ParsedPublicKey::new(curve.verification(), PublicKey::ec_point(&x, &y)).map_err(
        |_| JoseError::BadPublicKey(format!("the EC point is not on the {} curve", curve.name())),
    )?;
    Ok(PublicKey::Ec { curve, x, y })
}

fn okp_key(members: &Map<String, Value>) -> Result<PublicKey, JoseError> {
    match jwk_string(members, "crv")? {
        "Ed25519" => {}
        other => {
            return Err(JoseError::BadPublicKey(format!(
                "OKP curve \"{}\" is not supported; use Ed25519",
                echo(other)
            )));
        }
    }
    let x = jwk_bytes(members, "x", 32)?;
    if x.len() != 32 {
        return Err(JoseError::BadPublicKey(
            "Ed25519 member \"x\" must be 32 bytes".into(),
        ));
    }
    signature::ParsedPublicKey::new(&ED25519, &x)
        .map_err(|_| JoseError::BadPublicKey("the Ed25519 public key is not usable".into()))?;
    Ok(PublicKey::Ed25519 { x })
}

fn jwk_string<'a>(members: &'a Map<String, Value>, name: &str) -> Result<&'a str, JoseError> {
    match members.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JoseError::BadPublicKey(format!(
            "JWK member \"{name}\" is not a string"
        ))),
        None => Err(JoseError::BadPublicKey(format!(
            "the JWK has no \"{name}\" member"
        ))),
    }
}

/// A base64url JWK member of at most `max_len` decoded bytes; the length is checked before
/// decoding so an oversized member costs nothing.
fn jwk_bytes(
    members: &Map<String, Value>,
    name: &str,
    max_len: usize,
) -> Result<Vec<u8>, JoseError> {
    let text = jwk_string(members, name)?;
    // Padding is left to the decoder, so a padded member is told it is not base64url rather
    // than that it is too long.
    if text.trim_end_matches('=').len() > encoded_len(max_len) {
        return Err(JoseError::BadPublicKey(format!(
            "JWK member \"{name}\" is longer than any accepted key needs"
        )));
    }
    URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        JoseError::BadPublicKey(format!(
            "JWK member \"{name}\" is not base64url without padding"
        ))
    })
}

/// The protected header of a JWS (RFC 7515 §4, RFC 8555 §6.2).
#[derive(Debug, Clone)]
pub struct Header {
    /// The `alg` value as sent; [`Jws::algorithm`] reads it.
    pub alg: String,
    /// The anti-replay nonce (RFC 8555 §6.5).
    pub nonce: Option<String>,
    /// The URL the client meant to reach (RFC 8555 §6.4).
    pub url: Option<String>,
    /// The account URL, for requests signed by an existing account.
    pub kid: Option<String>,
    /// The public key, for new-account and revocation-by-certificate-key requests.
    pub jwk: Option<Jwk>,
}

impl Header {
    fn parse(bytes: &[u8]) -> Result<Header, JoseError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|_| JoseError::Malformed("the JWS protected header is not JSON".into()))?;
        let members = value.as_object().ok_or_else(|| {
            JoseError::Malformed("the JWS protected header is not a JSON object".into())
        })?;
        // We understand no extension, so RFC 7515 §4.1.11 obliges us to refuse any "crit".
        if members.contains_key("crit") {
            return Err(JoseError::Malformed(
                "the JWS protected header has \"crit\"; no JWS extensions are supported".into(),
            ));
        }
        match members.get("b64") {
            None | Some(Value::Bool(true)) => {}
            Some(_) => {
                return Err(JoseError::Malformed(
                    "unencoded JWS payloads (RFC 7797 \"b64\") are not supported".into(),
                ));
            }
        }
        let alg = header_string(members, "alg")?.ok_or_else(|| {
            JoseError::Malformed("the JWS protected header has no \"alg\"".into())
        })?;
        let jwk = members.get("jwk").map(Jwk::from_json).transpose()?;
        Ok(Header {
            alg,
            nonce: header_string(members, "nonce")?,
            url: header_string(members, "url")?,
            kid: header_string(members, "kid")?,
            jwk,
        })
    }
}

fn header_string(members: &Map<String, Value>, name: &str) -> Result<Option<String>, JoseError> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::Malformed(format!(
            "the JWS header parameter \"{name}\" is not a string"
        ))),
    }
}

/// A JWS in the flattened JSON serialization (RFC 7515 §7.2.2), as every ACME POST carries it.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub header: Header,
    /// The decoded payload; empty for POST-as-GET (RFC 8555 §6.3).
    pub payload: Vec<u8>,
    /// `BASE64URL(protected) "." BASE64URL(payload)` exactly as received (RFC 7515 §5.2).
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Reads a request body `{"protected": …, "payload": …, "signature": …}`.
    ///
    /// Both `kid` and `jwk` are read when present, and neither is required: which one an
    /// endpoint demands is the caller's rule (RFC 8555 §6.2). Members other than the three are
    /// ignored.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] for a body that is not a JSON object, a missing or non-string
    /// member, the general serialization (`signatures`), an unprotected `header` (RFC 8555 §6.2
    /// forbids it), a value that is not base64url without padding (RFC 8555 §6.1), a protected
    /// header over 8 KiB or that is not a JSON object, `crit`, `"b64": false`, or an `alg`,
    /// `nonce`, `url` or `kid` that is not a string; [`JoseError::BadPublicKey`] for a `jwk`
    /// that is not an acceptable public key (see [`Jwk::from_json`]).
    pub fn parse(body: &[u8]) -> Result<Jws, JoseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| JoseError::Malformed("the request body is not JSON".into()))?;
        let members = value
            .as_object()
            .ok_or_else(|| JoseError::Malformed("the JWS is not a JSON object".into()))?;
        if members.contains_key("signatures") {
            return Err(JoseError::Malformed(
                "the general JWS JSON serialization is not accepted; use the flattened one".into(),
            ));
        }
        if members.contains_key("header") {
            return Err(JoseError::Malformed(
                "the JWS has an unprotected header; put every parameter in \"protected\"".into(),
            ));
        }
        let protected_b64 = jws_string(members, "protected")?;
        let payload_b64 = jws_string(members, "payload")?;
        let signature_b64 = jws_string(members, "signature")?;
        if protected_b64.len() > encoded_len(MAX_PROTECTED_HEADER_BYTES) {
            return Err(JoseError::Malformed(format!(
                "the JWS protected header is larger than {} KiB",
                MAX_PROTECTED_HEADER_BYTES / 1024
            )));
        }
        if signature_b64.len() > encoded_len(MAX_SIGNATURE_BYTES) {
            return Err(JoseError::Malformed(
                "the JWS signature is longer than any accepted algorithm makes".into(),
            ));
        }
        let protected = jws_bytes("protected", protected_b64)?;
        let signature = jws_bytes("signature", signature_b64)?;
        let payload = jws_bytes("payload", payload_b64)?;
        let header = Header::parse(&protected)?;
        let mut signing_input = Vec::with_capacity(protected_b64.len() + 1 + payload_b64.len());
        signing_input.extend_from_slice(protected_b64.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload_b64.as_bytes());
        Ok(Jws {
            header,
            payload,
            signing_input,
            signature,
        })
    }

    /// The header's algorithm, if it is one accepted on ACME requests.
    ///
    /// # Errors
    /// [`JoseError::BadSignatureAlgorithm`] for `none`, `HS*` and anything unknown, naming the
    /// accepted algorithms.
    pub fn algorithm(&self) -> Result<Algorithm, JoseError> {
        Algorithm::parse(&self.header.alg)
    }

    /// Verifies the signature with `key`.
    ///
    /// # Errors
    /// [`JoseError::BadSignatureAlgorithm`] when the algorithm is not accepted or does not fit
    /// the key (an ES256 header on a P-384 key); [`JoseError::BadSignature`] when the signature
    /// does not verify. ECDSA signatures must be the fixed-size `r || s` of RFC 7518 §3.4, not
    /// DER.
    pub fn verify(&self, key: &Jwk) -> Result<(), JoseError> {
        let alg = self.algorithm()?;
        if !key.algorithm_fits(alg) {
            return Err(JoseError::BadSignatureAlgorithm(format!(
                "JWS algorithm {alg} does not fit the {} key",
                key.key_type()
            )));
        }
        let message = self.signing_input.as_slice();
        let verified = match &key.key {
            PublicKey::Rsa { n, e, .. } => RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, &self.signature),
            PublicKey::Ec { curve, x, y } => {
                UnparsedPublicKey::new(curve.verification(), PublicKey::ec_point(x, y))
                    .verify(message, &self.signature)
            }
            PublicKey::Ed25519 { x } => {
                UnparsedPublicKey::new(&ED25519, x).verify(message, &self.signature)
            }
        };
        verified.map_err(|_| JoseError::BadSignature)
    }

    /// Verifies an HMAC signature (HS256, HS384 or HS512) with `secret`, as the inner JWS of an
    /// External Account Binding carries (RFC 8555 §7.3.4). The comparison is constant-time.
    ///
    /// # Errors
    /// [`JoseError::BadSignatureAlgorithm`] when `alg` is not one of the three;
    /// [`JoseError::BadSignature`] when the MAC does not verify.
    pub fn verify_hmac(&self, secret: &[u8]) -> Result<(), JoseError> {
        let alg = match self.header.alg.as_str() {
            "HS256" => hmac::HMAC_SHA256,
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            other => {
                return Err(JoseError::BadSignatureAlgorithm(format!(
                    "an External Account Binding must be signed with HS256, HS384 or HS512, \
                     not \"{}\"",
                    echo(other)
                )));
            }
        };
        let key = hmac::Key::new(alg, secret);
        hmac::verify(&key, &self.signing_input, &self.signature)
            .map_err(|_| JoseError::BadSignature)
    }
}

fn jws_string<'a>(members: &'a Map<String, Value>, name: &str) -> Result<&'a str, JoseError> {
    match members.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JoseError::Malformed(format!(
            "the JWS member \"{name}\" is not a string"
        ))),
        None => Err(JoseError::Malformed(format!(
            "the JWS has no \"{name}\" member"
        ))),
    }
}

fn jws_bytes(name: &str, text: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        JoseError::Malformed(format!(
            "the JWS member \"{name}\" is not base64url without padding"
        ))
    })
}

/// The key authorization of a challenge (RFC 8555 §8.1): `token "." thumbprint`, where the
/// thumbprint is [`Jwk::thumbprint`] of the account key.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The TXT record value a dns-01 challenge expects (RFC 8555 §8.4): base64url (no padding) of
/// the SHA-256 of the key authorization.
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64(digest::digest(&digest::SHA256, key_authorization.as_bytes()).as_ref())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The unpadded base64 length of `len` bytes: a longer text cannot decode to `len` bytes or
/// fewer.
fn encoded_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

fn bit_len(bytes: &[u8]) -> usize {
    bytes
        .first()
        .map_or(0, |b| bytes.len() * 8 - b.leading_zeros() as usize)
}

/// A client's string cut short for an error message, so a hostile value cannot fill the
/// problem document.
fn echo(s: &str) -> String {
    let mut shown: String = s.chars().take(ECHO_CHARS).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    use der::Decode as _;
    use serde_json::json;

    /// RFC 7515 A.2 / A.3 payload, base64url as the RFC prints it.
    const RFC7515_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    /// RFC 7515 A.3 (and RFC 7517 A.1) P-256 public key.
    const RFC7515_EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const RFC7515_EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn flattened(protected: &str, payload: &str, signature: &[u8]) -> Vec<u8> {
        json!({"protected": protected, "payload": payload, "signature": b64(signature)})
            .to_string()
            .into_bytes()
    }

    /// A key pair made with aws-lc-rs, independent of the code under test.
    enum TestKey {
        Rsa(RsaKeyPair),
        Ec(EcdsaKeyPair, &'static str),
        Ed(Ed25519KeyPair),
    }

    impl TestKey {
        fn generate(alg: Algorithm) -> TestKey {
            match alg {
                Algorithm::Rs256 => TestKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
                Algorithm::Es256 => TestKey::Ec(
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
                    "P-256",
                ),
                Algorithm::Es384 => TestKey::Ec(
                    EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
                    "P-384",
                ),
                Algorithm::EdDsa => TestKey::Ed(Ed25519KeyPair::generate().unwrap()),
            }
        }

        fn jwk_json(&self) -> Value {
            match self {
                TestKey::Rsa(pair) => {
                    let public = pair.public_key();
                    json!({
                        "kty": "RSA",
                        "n": b64(public.modulus().big_endian_without_leading_zero()),
                        "e": b64(public.exponent().big_endian_without_leading_zero()),
                    })
                }
                TestKey::Ec(pair, crv) => {
                    let point = pair.public_key().as_ref();
                    let len = (point.len() - 1) / 2;
                    json!({
                        "kty": "EC",
                        "crv": crv,
                        "x": b64(&point[1..=len]),
                        "y": b64(&point[1 + len..]),
                    })
                }
                TestKey::Ed(pair) => json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64(pair.public_key().as_ref()),
                }),
            }
        }

        fn jwk(&self) -> Jwk {
            Jwk::from_json(&self.jwk_json()).unwrap()
        }

        fn sign(&self, message: &[u8]) -> Vec<u8> {
            match self {
                TestKey::Rsa(pair) => {
                    let mut signature = vec![0; pair.public_modulus_len()];
                    pair.sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        message,
                        &mut signature,
                    )
                    .unwrap();
                    signature
                }
                TestKey::Ec(pair, _) => pair
                    .sign(&SystemRandom::new(), message)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                TestKey::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            }
        }

        /// The SubjectPublicKeyInfo as aws-lc-rs encodes it.
        fn spki_der(&self) -> Vec<u8> {
            match self {
                TestKey::Rsa(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
                TestKey::Ec(pair, _) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
                TestKey::Ed(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            }
        }
    }

    /// The protected header (base64url), payload (base64url) and signature of a JWS.
    fn sign_parts(key: &TestKey, header: &Value, payload: &[u8]) -> (String, String, Vec<u8>) {
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload);
        let signature = key.sign(format!("{protected}.{payload}").as_bytes());
        (protected, payload, signature)
    }

    fn request_header(alg: &str) -> Value {
        json!({
            "alg": alg,
            "nonce": "bm9uY2U",
            "url": "https://ca.example/acme/new-order",
            "kid": "https://ca.example/acme/acct/1",
        })
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        let jwk = Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(jwk.key_type(), KeyType::Rsa { bits: 2048 });
        // Optional members are dropped, and reading the output back gives the same key.
        let public = jwk.to_json();
        assert_eq!(public.as_object().unwrap().len(), 3);
        assert_eq!(Jwk::from_json(&public).unwrap(), jwk);
    }

    #[test]
    fn rfc8037_ed25519_thumbprint_and_signature() {
        let jwk = Jwk::from_json(&json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        let signature = URL_SAFE_NO_PAD
            .decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
            .unwrap();
        let body = flattened(
            "eyJhbGciOiJFZERTQSJ9",
            "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
            &signature,
        );
        let jws = Jws::parse(&body).unwrap();
        assert_eq!(jws.algorithm().unwrap(), Algorithm::EdDsa);
        assert_eq!(jws.payload, b"Example of Ed25519 signing");
        jws.verify(&jwk).unwrap();
    }

    #[test]
    fn rfc7515_a2_rs256_verifies() {
        let jwk = Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
            "e": "AQAB",
        }))
        .unwrap();
        let signature = URL_SAFE_NO_PAD
            .decode("cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw")
            .unwrap();
        let jws = Jws::parse(&flattened(
            "eyJhbGciOiJSUzI1NiJ9",
            RFC7515_PAYLOAD,
            &signature,
        ))
        .unwrap();
        assert_eq!(jws.algorithm().unwrap(), Algorithm::Rs256);
        assert!(jws.payload.starts_with(b"{\"iss\":\"joe\""));
        jws.verify(&jwk).unwrap();
    }

    #[test]
    fn rfc7515_a3_es256_verifies() {
        let jwk = Jwk::from_json(&json!({
            "kty": "EC",
            "crv": "P-256",
            "x": RFC7515_EC_X,
            "y": RFC7515_EC_Y,
        }))
        .unwrap();
        let signature = URL_SAFE_NO_PAD
            .decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
            .unwrap();
        let jws = Jws::parse(&flattened(
            "eyJhbGciOiJFUzI1NiJ9",
            RFC7515_PAYLOAD,
            &signature,
        ))
        .unwrap();
        assert_eq!(jws.algorithm().unwrap(), Algorithm::Es256);
        jws.verify(&jwk).unwrap();
    }

    #[test]
    fn every_algorithm_round_trips_and_tampering_fails() {
        for alg in Algorithm::ALL {
            let key = TestKey::generate(alg);
            let jwk = key.jwk();
            assert!(jwk.algorithm_fits(alg), "{alg}");
            assert_eq!(Jwk::from_json(&jwk.to_json()).unwrap(), jwk, "{alg}");
            for payload in [&br#"{"identifiers":[]}"#[..], b""] {
                let (protected, payload_b64, signature) =
                    sign_parts(&key, &request_header(alg.name()), payload);
                let jws = Jws::parse(&flattened(&protected, &payload_b64, &signature)).unwrap();
                assert_eq!(jws.payload, payload, "{alg}");
                assert_eq!(jws.header.nonce.as_deref(), Some("bm9uY2U"));
                assert_eq!(
                    jws.header.url.as_deref(),
                    Some("https://ca.example/acme/new-order")
                );
                assert_eq!(
                    jws.header.kid.as_deref(),
                    Some("https://ca.example/acme/acct/1")
                );
                assert!(jws.header.jwk.is_none());
                jws.verify(&jwk)
                    .unwrap_or_else(|e| panic!("{alg} does not verify: {e}"));

                for bit in [0, signature.len() * 8 - 1] {
                    let mut flipped = signature.clone();
                    flipped[bit / 8] ^= 1 << (bit % 8);
                    let jws = Jws::parse(&flattened(&protected, &payload_b64, &flipped)).unwrap();
                    assert!(
                        matches!(jws.verify(&jwk), Err(JoseError::BadSignature)),
                        "{alg}: flipped bit {bit} still verifies"
                    );
                }

                let other_payload = b64(br#"{"identifiers":[{"type":"dns"}]}"#);
                let jws = Jws::parse(&flattened(&protected, &other_payload, &signature)).unwrap();
                assert!(
                    matches!(jws.verify(&jwk), Err(JoseError::BadSignature)),
                    "{alg}: a changed payload still verifies"
                );
            }

            // Another key of the same type does not verify it either.
            let (protected, payload_b64, signature) =
                sign_parts(&key, &request_header(alg.name()), b"{}");
            let jws = Jws::parse(&flattened(&protected, &payload_b64, &signature)).unwrap();
            let stranger = TestKey::generate(alg).jwk();
            assert!(matches!(
                jws.verify(&stranger),
                Err(JoseError::BadSignature)
            ));
        }
    }

    #[test]
    fn algorithm_must_fit_the_key() {
        let p384 = TestKey::generate(Algorithm::Es384);
        let (protected, payload, signature) = sign_parts(&p384, &request_header("ES256"), b"{}");
        let jws = Jws::parse(&flattened(&protected, &payload, &signature)).unwrap();
        assert_eq!(jws.algorithm().unwrap(), Algorithm::Es256);
        let err = jws.verify(&p384.jwk()).unwrap_err();
        assert!(
            matches!(&err, JoseError::BadSignatureAlgorithm(m) if m.contains("ES256") && m.contains("P-384")),
            "{err:?}"
        );

        let jwks: Vec<Jwk> = Algorithm::ALL
            .map(|alg| TestKey::generate(alg).jwk())
            .into_iter()
            .collect();
        for (i, jwk) in jwks.iter().enumerate() {
            for (j, alg) in Algorithm::ALL.into_iter().enumerate() {
                assert_eq!(
                    jwk.algorithm_fits(alg),
                    i == j,
                    "{alg} on {}",
                    jwk.key_type()
                );
            }
        }
    }

    #[test]
    fn none_mac_and_unknown_algorithms_are_refused() {
        for alg in [
            "none", "HS256", "HS512", "RS384", "PS256", "ES512", "es256", "",
        ] {
            let protected = b64(json!({"alg": alg}).to_string().as_bytes());
            let jws = Jws::parse(&flattened(&protected, "", b"")).unwrap();
            let err = jws.algorithm().unwrap_err();
            assert!(
                matches!(&err, JoseError::BadSignatureAlgorithm(m) if m.contains("RS256, ES256, ES384, EdDSA")),
                "{alg}: {err:?}"
            );
            let any_key = TestKey::generate(Algorithm::EdDsa).jwk();
            assert!(matches!(
                jws.verify(&any_key),
                Err(JoseError::BadSignatureAlgorithm(_))
            ));
        }
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.name()).unwrap(), alg);
        }
    }

    #[test]
    fn spki_der_matches_aws_lc_rs() {
        for alg in Algorithm::ALL {
            let key = TestKey::generate(alg);
            assert_eq!(key.jwk().spki_der(), key.spki_der(), "{alg}");
        }
    }

    #[test]
    fn spki_der_matches_the_keys_certificates_carry() {
        #[derive(der::Sequence)]
        struct RsaPublicKey<'a> {
            modulus: UintRef<'a>,
            public_exponent: UintRef<'a>,
        }
        for key_type in [
            KeyType::Rsa { bits: 2048 },
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
        ] {
            let key = crate::PrivateKey::generate(key_type).unwrap();
            let raw = key.raw_public_key();
            let json = match key_type {
                KeyType::Rsa { .. } => {
                    let rsa = RsaPublicKey::from_der(raw).unwrap();
                    json!({
                        "kty": "RSA",
                        "n": b64(rsa.modulus.as_bytes()),
                        "e": b64(rsa.public_exponent.as_bytes()),
                    })
                }
                KeyType::EcP256 | KeyType::EcP384 => {
                    let len = (raw.len() - 1) / 2;
                    json!({
                        "kty": "EC",
                        "crv": key_type.curve().unwrap(),
                        "x": b64(&raw[1..=len]),
                        "y": b64(&raw[1 + len..]),
                    })
                }
                KeyType::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}),
            };
            let jwk = Jwk::from_json(&json).unwrap();
            assert_eq!(jwk.spki_der(), key.public_key_der(), "{key_type}");
            assert_eq!(jwk.key_type(), key_type);
            assert_eq!(
                crate::keys::spki_key_type(&jwk.spki_der()).unwrap(),
                key_type
            );
        }
    }

    #[test]
    fn unacceptable_jwks_are_refused() {
        let mut off_curve_y = URL_SAFE_NO_PAD.decode(RFC7515_EC_Y).unwrap();
        if let Some(last) = off_curve_y.last_mut() {
            *last ^= 1;
        }
        let mut rsa_1024 = vec![0xc5; 128];
        rsa_1024[127] = 0x01;
        let mut leading_zero = vec![0x00];
        leading_zero.extend(vec![0xc5; 256]);
        let ec_private = json!({
            "kty": "EC", "crv": "P-256", "x": RFC7515_EC_X, "y": RFC7515_EC_Y,
            "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
        });
        let cases = [
            (ec_private, "\"d\""),
            (
                json!({"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr8"}),
                "\"k\"",
            ),
            (
                json!({"kty": "EC", "crv": "P-256", "x": RFC7515_EC_X, "y": b64(&off_curve_y)}),
                "not on the P-256 curve",
            ),
            (
                json!({"kty": "EC", "crv": "P-384", "x": RFC7515_EC_X, "y": RFC7515_EC_Y}),
                "48 bytes",
            ),
            (
                json!({"kty": "EC", "crv": "P-521", "x": RFC7515_EC_X, "y": RFC7515_EC_Y}),
                "\"P-521\" is not supported",
            ),
            (
                json!({"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
                "\"X25519\" is not supported",
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR"}),
                "base64url",
            ),
            (
                json!({"kty": "RSA", "n": b64(&rsa_1024), "e": "AQAB"}),
                "1024 bits",
            ),
            (
                json!({"kty": "RSA", "n": b64(&vec![0xc5; 1025]), "e": "AQAB"}),
                "longer than",
            ),
            (
                json!({"kty": "RSA", "n": b64(&leading_zero), "e": "AQAB"}),
                "leading zero",
            ),
            (
                json!({"kty": "RSA", "n": b64(&[0xc4; 256]), "e": "AQAB"}),
                "even",
            ),
            (
                json!({"kty": "RSA", "n": b64(&[0xc1; 256]), "e": "AQ"}),
                "exponent",
            ),
            (json!({"kty": "RSA", "e": "AQAB"}), "no \"n\""),
            (json!({"kty": "RSA", "n": 12, "e": "AQAB"}), "not a string"),
            (
                json!({"kty": "EC", "crv": "P-256", "x": format!("{RFC7515_EC_X}="), "y": RFC7515_EC_Y}),
                "base64url",
            ),
            (json!({"kty": "DSA"}), "\"DSA\" is not supported"),
            (json!({"crv": "P-256"}), "no \"kty\""),
        ];
        for (json, expected) in cases {
            match Jwk::from_json(&json) {
                Err(JoseError::BadPublicKey(message)) => {
                    assert!(message.contains(expected), "{json}: {message}");
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        assert!(matches!(
            Jwk::from_json(&json!("eyJrdHkiOiJFQyJ9")),
            Err(JoseError::Malformed(_))
        ));
    }

    #[test]
    fn hmac_for_external_account_binding() {
        let secret = b"an external account binding secret of 32+ bytes";
        let account_key = TestKey::generate(Algorithm::Es256).jwk();
        for (alg, hmac_alg) in [
            ("HS256", hmac::HMAC_SHA256),
            ("HS384", hmac::HMAC_SHA384),
            ("HS512", hmac::HMAC_SHA512),
        ] {
            let protected = b64(json!({
                "alg": alg,
                "kid": "eab-key-1",
                "url": "https://ca.example/acme/new-account",
            })
            .to_string()
            .as_bytes());
            let payload = b64(account_key.to_json().to_string().as_bytes());
            let tag = hmac::sign(
                &hmac::Key::new(hmac_alg, secret),
                format!("{protected}.{payload}").as_bytes(),
            );
            let jws = Jws::parse(&flattened(&protected, &payload, tag.as_ref())).unwrap();
            jws.verify_hmac(secret).unwrap();
            assert_eq!(jws.header.kid.as_deref(), Some("eab-key-1"));
            let bound = Jwk::from_json(&serde_json::from_slice(&jws.payload).unwrap()).unwrap();
            assert_eq!(bound, account_key);
            assert!(matches!(
                jws.verify_hmac(b"another secret"),
                Err(JoseError::BadSignature)
            ));
            // A MAC is never a request signature.
            assert!(matches!(
                jws.algorithm(),
                Err(JoseError::BadSignatureAlgorithm(_))
            ));
        }

        let key = TestKey::generate(Algorithm::Es256);
        let (protected, payload, signature) = sign_parts(&key, &request_header("ES256"), b"{}");
        let jws = Jws::parse(&flattened(&protected, &payload, &signature)).unwrap();
        assert!(matches!(
            jws.verify_hmac(secret),
            Err(JoseError::BadSignatureAlgorithm(_))
        ));
    }

    #[test]
    fn header_carries_both_kid_and_jwk_when_sent() {
        let key = TestKey::generate(Algorithm::EdDsa);
        let header = json!({
            "alg": "EdDSA",
            "nonce": "bm9uY2U",
            "url": "https://ca.example/acme/revoke-cert",
            "kid": "https://ca.example/acme/acct/1",
            "jwk": key.jwk_json(),
        });
        let (protected, payload, signature) = sign_parts(&key, &header, b"{}");
        let jws = Jws::parse(&flattened(&protected, &payload, &signature)).unwrap();
        assert_eq!(jws.header.jwk.as_ref(), Some(&key.jwk()));
        assert!(jws.header.kid.is_some());
        let embedded = jws.header.jwk.clone().unwrap();
        jws.verify(&embedded).unwrap();
    }

    #[test]
    fn badly_formed_requests_are_refused() {
        let es256 = "eyJhbGciOiJFUzI1NiJ9";
        let protected = |header: Value| b64(header.to_string().as_bytes());
        let body = |protected: &str| {
            json!({"protected": protected, "payload": "", "signature": "AAAA"}).to_string()
        };
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not JSON"),
            ("[]".into(), "not a JSON object"),
            (
                json!({"payload": "", "signatures": [{"protected": es256, "signature": "AAAA"}]})
                    .to_string(),
                "general",
            ),
            (
                json!({"protected": es256, "header": {"kid": "x"}, "payload": "", "signature": "AAAA"})
                    .to_string(),
                "unprotected",
            ),
            (
                json!({"protected": es256, "payload": ""}).to_string(),
                "no \"signature\"",
            ),
            (
                json!({"protected": es256, "signature": "AAAA"}).to_string(),
                "no \"payload\"",
            ),
            (
                json!({"protected": es256, "payload": 5, "signature": "AAAA"}).to_string(),
                "not a string",
            ),
            (body(&format!("{es256}==")), "base64url"),
            (
                json!({"protected": es256, "payload": "e30", "signature": "AA+A"}).to_string(),
                "base64url",
            ),
            (
                json!({"protected": es256, "payload": "e30=", "signature": "AAAA"}).to_string(),
                "base64url",
            ),
            (body(&b64(b"alg: ES256")), "not JSON"),
            (body(&protected(json!(["ES256"]))), "not a JSON object"),
            (body(&protected(json!({"nonce": "n"}))), "no \"alg\""),
            (body(&protected(json!({"alg": 256}))), "\"alg\" is not a string"),
            (
                body(&protected(json!({"alg": "ES256", "nonce": 1}))),
                "\"nonce\" is not a string",
            ),
            (
                body(&protected(json!({"alg": "ES256", "crit": ["b64"], "b64": false}))),
                "crit",
            ),
            (
                body(&protected(json!({"alg": "ES256", "b64": false}))),
                "b64",
            ),
            (
                body(&protected(json!({"alg": "ES256", "pad": "x".repeat(9000)}))),
                "8 KiB",
            ),
            (
                json!({"protected": es256, "payload": "", "signature": "A".repeat(2000)})
                    .to_string(),
                "signature is longer",
            ),
            (
                body(&protected(json!({"alg": "ES256", "jwk": "a key"}))),
                "not a JSON object",
            ),
        ];
        for (body, expected) in cases {
            match Jws::parse(body.as_bytes()) {
                Err(JoseError::Malformed(message)) => {
                    assert!(message.contains(expected), "{body}: {message}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }

        let private_jwk = json!({
            "kty": "EC", "crv": "P-256", "x": RFC7515_EC_X, "y": RFC7515_EC_Y,
            "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
        });
        let with_private_jwk = body(&protected(json!({"alg": "ES256", "jwk": private_jwk})));
        assert!(matches!(
            Jws::parse(with_private_jwk.as_bytes()),
            Err(JoseError::BadPublicKey(_))
        ));
    }

    #[test]
    fn key_authorization_and_dns01_value() {
        let thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
        let key_authorization = key_authorization(token, thumbprint);
        assert_eq!(key_authorization, format!("{token}.{thumbprint}"));
        // Computed independently with `openssl dgst -sha256 -binary | base64url`.
        assert_eq!(
            dns01_txt_value(&key_authorization),
            "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
        );
    }

    #[test]
    fn long_client_strings_are_cut_in_messages() {
        let err = Algorithm::parse(&"A".repeat(5000)).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }
}
