//! The files certificates and keys travel in: PEM chains, PKCS#7 certs-only (`.p7b`), PKCS#12
//! (`.p12`/`.pfx`), and reading any of them (or a bare DER certificate or CSR) without being told
//! which one it is.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::asn1::SetOfVec;
use der::{Decode, DerOrd, Encode, Header, Reader, SliceReader, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::kdf::KdfBudget;
use crate::pkcs12::TrustedCert;
use crate::{Error, PrivateKey};

/// Cipher suite for PKCS#12 files we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs12Cipher {
    /// AES-256-CBC with PBKDF2-HMAC-SHA256 keys and an HMAC-SHA256 MAC (OpenSSL 3 default).
    Aes256,
    /// PBE-SHA1-3DES for keys and certs, SHA-1 MAC: for old Windows and Java.
    Legacy3Des,
}

/// What an imported file holds.
#[derive(Debug, Default)]
pub struct Bundle {
    /// Certificates, DER, in file order (from PKCS#12: every certificate bag, whether or not a
    /// key goes with it).
    pub certificates: Vec<Vec<u8>>,
    /// Private keys.
    pub private_keys: Vec<PrivateKey>,
    /// Certificate signing requests, DER.
    pub csrs: Vec<Vec<u8>>,
}

impl Bundle {
    fn is_empty(&self) -> bool {
        self.certificates.is_empty() && self.private_keys.is_empty() && self.csrs.is_empty()
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// PEM of each certificate in order.
pub fn certificates_pem(certs: &[&[u8]]) -> String {
    certs
        .iter()
        .map(|der| crate::pem::encode("CERTIFICATE", der))
        .collect()
}

/// A PKCS#7 / CMS SignedData "certs-only" message (degenerate: no signers, no content) holding
/// `certs`, DER: what `.p7b` files are (RFC 5652, RFC 2315). A certificate given twice is
/// written once. The certificates come out in DER SET order, not in the order given.
///
/// # Errors
/// [`Error::Invalid`] for no certificates or one that is not a DER X.509 certificate.
pub fn pkcs7_certs_only(certs: &[&[u8]]) -> Result<Vec<u8>, Error> {
    if certs.is_empty() {
        return Err(invalid("a PKCS#7 bundle needs at least one certificate"));
    }
    let mut sorted: Vec<Vec<u8>> = certs.iter().map(|c| c.to_vec()).collect();
    // `SetOfVec` insertion-sorts its elements into DER order, re-encoding two certificates per
    // comparison; given them in that order already, it only checks. Certificates read as strict
    // DER encode back to the same bytes, so their bytes stand for their encodings.
    sorted.sort_by(|a, b| a.der_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    // A DER SET cannot hold the same element twice, and a repeat carries no meaning.
    sorted.dedup();
    let mut choices = Vec::with_capacity(sorted.len());
    for der in &sorted {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
            let n = certs.iter().position(|c| c == der).map_or(0, |i| i + 1);
            invalid(format!("certificate {n}: not a DER X.509 certificate: {e}"))
        })?;
        choices.push(CertificateChoices::Certificate(cert));
    }
    let encode_error = |e: der::Error| invalid(format!("cannot encode PKCS#7: {e}"));
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(choices).map_err(encode_error)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: der::Any::encode_from(&signed).map_err(encode_error)?,
    }
    .to_der()
    .map_err(encode_error)
}

/// Writes a PKCS#12 file holding one private key (PKCS#8 DER), its certificate and the chain
/// certificates, protected by `password`. The key bag carries `friendly_name` (Java and Windows
/// show it as the alias) and a localKeyId (the certificate's SHA-1, as OpenSSL makes it) that
/// links key and certificate. Without a key, the certificates are written as trusted
/// certificates (a Java truststore); the first one is named `friendly_name`, the others by
/// their subject.
///
/// # Errors
/// [`Error::Invalid`] for an empty password, a certificate that does not parse, an unusable key,
/// a key that does not belong to the certificate, or a name a BMPString cannot hold;
/// [`Error::Crypto`] when encryption fails.
pub fn pkcs12(
    key_pkcs8_der: Option<&[u8]>,
    cert_der: &[u8],
    chain: &[&[u8]],
    password: &str,
    friendly_name: &str,
    cipher: Pkcs12Cipher,
) -> Result<Vec<u8>, Error> {
    if password.is_empty() {
        return Err(invalid("the PKCS#12 password must not be empty"));
    }
    let leaf = certificate(cert_der).map_err(|e| context("the certificate", e))?;
    let mut chain_certs = Vec::with_capacity(chain.len());
    for (i, der) in chain.iter().enumerate() {
        let cert =
            certificate(der).map_err(|e| context(&format!("chain certificate {}", i + 1), e))?;
        chain_certs.push(cert);
    }
    let Some(key_der) = key_pkcs8_der else {
        let aliases = trusted_aliases(friendly_name, &chain_certs);
        let certs: Vec<_> = std::iter::once(cert_der)
            .chain(chain.iter().copied())
            .zip(aliases)
            .map(|(der, alias)| TrustedCert { der, alias })
            .collect();
        return crate::pkcs12::write_trusted(&certs, password, cipher);
    };
    let key = PrivateKey::from_pkcs8_der(key_der)?;
    if key.public_key_der() != leaf.public_key().raw {
        return Err(invalid(
            "the private key does not belong to the certificate",
        ));
    }
    crate::pkcs12::write_key(&key, cert_der, chain, friendly_name, password, cipher)
}

/// Java lists a truststore's certificates by alias, one certificate each: `first` for the
/// first, the subject for the others, numbered where subjects repeat.
fn trusted_aliases(first: &str, chain: &[X509Certificate]) -> Vec<String> {
    let mut aliases = vec![first.to_owned()];
    for cert in chain {
        let subject = cert.subject().to_string();
        let mut alias = subject.clone();
        let mut n = 1;
        while aliases.contains(&alias) {
            n += 1;
            alias = format!("{subject} #{n}");
        }
        aliases.push(alias);
    }
    aliases
}

/// Reads whatever `input` is: PEM (any number of `CERTIFICATE`, `TRUSTED CERTIFICATE`,
/// `X509 CERTIFICATE`, `PKCS7`, `CERTIFICATE REQUEST`, `NEW CERTIFICATE REQUEST` and private-key
/// blocks, with any text before, between and after them; other blocks such as CRLs are
/// skipped), a DER certificate, DER PKCS#7 certs-only, PKCS#12, or a DER CSR. `password` opens
/// PKCS#12 files and encrypted PEM private keys.
///
/// From PKCS#12, every certificate and private key comes back in file order; the password
/// checks the MAC and decrypts, and a file with neither MAC nor encryption needs none.
///
/// # Errors
/// [`Error::Invalid`] naming the problem: not a recognised format, truncated DER, malformed PEM,
/// a block that does not parse, a missing or wrong password, or nothing found at all.
pub fn read(input: &[u8], password: Option<&str>) -> Result<Bundle, Error> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the file is empty"));
    }
    if crate::pem::looks_like_pem(input) {
        read_pem(input, password)
    } else {
        read_der(input, password)
    }
}

fn read_pem(input: &[u8], password: Option<&str>) -> Result<Bundle, Error> {
    let mut bundle = Bundle::default();
    let mut skipped = Vec::new();
    let mut budget = KdfBudget::for_file();
    for (i, block) in crate::pem::find_blocks(input)?.into_iter().enumerate() {
        let label = block.label.as_str();
        let in_block = |e| context(&format!("PEM block {} ({label})", i + 1), e);
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                certificate(&block.der).map_err(in_block)?;
                bundle.certificates.push(block.der);
            }
            "TRUSTED CERTIFICATE" => {
                let cert = trusted_certificate(&block.der).map_err(in_block)?;
                bundle.certificates.push(cert);
            }
            "PKCS7" | "PKCS #7 SIGNED DATA" | "CMS" => {
                let certs = pkcs7_certificates(&block.der).map_err(in_block)?;
                bundle.certificates.extend(certs);
            }
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                csr(&block.der).map_err(in_block)?;
                bundle.csrs.push(block.der);
            }
            _ if label.ends_with("PRIVATE KEY") => {
                let key = PrivateKey::read_labelled(label, &block.der, password, &mut budget)
                    .map_err(in_block)?;
                bundle.private_keys.push(key);
            }
            _ => skipped.push(block.label),
        }
    }
    if bundle.is_empty() {
        let mut message = String::from("no certificate, private key or CSR found");
        if !skipped.is_empty() {
            message.push_str(&format!(" (PEM blocks found: {})", skipped.join(", ")));
        }
        return Err(invalid(message));
    }
    Ok(bundle)
}

fn read_der(input: &[u8], password: Option<&str>) -> Result<Bundle, Error> {
    const NOT_KNOWN: &str = "not a certificate, PKCS#7, PKCS#12 or CSR";
    single_der_sequence(input).map_err(|e| context(NOT_KNOWN, e))?;
    let mut bundle = Bundle::default();
    if certificate(input).is_ok() {
        bundle.certificates.push(input.to_vec());
    } else if let Ok(info) = ContentInfo::from_der(input) {
        bundle.certificates = signed_data_certificates(&info)?;
    } else if csr(input).is_ok() {
        bundle.csrs.push(input.to_vec());
    } else if crate::pkcs12::is_pfx(input) {
        bundle = read_pkcs12(input, password)?;
    } else {
        return Err(invalid(NOT_KNOWN));
    }
    if bundle.is_empty() {
        return Err(invalid("the file holds no certificate, private key or CSR"));
    }
    Ok(bundle)
}

/// Prefixes an [`Error::Invalid`] message with where it happened.
fn context(place: &str, e: Error) -> Error {
    match e {
        Error::Invalid(message) => Error::Invalid(format!("{place}: {message}")),
        other => other,
    }
}

/// Checks that `der` is exactly one complete DER SEQUENCE, so that a cut-off file is reported as
/// such rather than as whatever the first parser to fail says.
fn single_der_sequence(der: &[u8]) -> Result<(), Error> {
    let mut reader = SliceReader::new(der).map_err(|_| invalid("the input is too large"))?;
    let header = Header::decode(&mut reader).map_err(|e| invalid(format!("not DER: {e}")))?;
    if header.tag != Tag::Sequence {
        return Err(invalid(format!(
            "DER starting with {} rather than a SEQUENCE",
            header.tag
        )));
    }
    let remaining = reader.remaining_len();
    match header.length.cmp(&remaining) {
        std::cmp::Ordering::Greater => Err(invalid(format!(
            "truncated DER: {} bytes announced, {} present",
            header.length, remaining
        ))),
        std::cmp::Ordering::Less => Err(invalid(format!(
            "unexpected data after the DER object ({} bytes)",
            u32::from(remaining) - u32::from(header.length)
        ))),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Parses an X.509 certificate that must fill `der` exactly.
fn certificate(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    single_der_sequence(der)?;
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid("unexpected data after the certificate"));
    }
    Ok(cert)
}

/// OpenSSL's `TRUSTED CERTIFICATE` is a certificate followed by its trust settings (one
/// X509_CERT_AUX SEQUENCE); the certificate alone is what the caller imports.
fn trusted_certificate(der: &[u8]) -> Result<Vec<u8>, Error> {
    let (rest, _) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        single_der_sequence(rest).map_err(|e| context("trust settings", e))?;
    }
    let cert = &der[..der.len() - rest.len()];
    certificate(cert)?;
    Ok(cert.to_vec())
}

fn csr(der: &[u8]) -> Result<(), Error> {
    single_der_sequence(der)?;
    let (rest, _) = X509CertificationRequest::from_der(der)
        .map_err(|e| invalid(format!("not a certificate signing request: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid(
            "unexpected data after the certificate signing request",
        ));
    }
    Ok(())
}

fn pkcs7_certificates(der: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    single_der_sequence(der)?;
    let info = ContentInfo::from_der(der).map_err(|e| invalid(format!("malformed PKCS#7: {e}")))?;
    signed_data_certificates(&info)
}

/// The certificates of a PKCS#7 SignedData, in file order.
fn signed_data_certificates(info: &ContentInfo) -> Result<Vec<Vec<u8>>, Error> {
    if info.content_type != ID_SIGNED_DATA {
        return Err(invalid(format!(
            "a PKCS#7 message of type {} holds no certificates; only SignedData (.p7b) does",
            info.content_type
        )));
    }
    let signed: SignedDataInFileOrder = info
        .content
        .decode_as()
        .map_err(|e| invalid(format!("malformed PKCS#7 SignedData: {e}")))?;
    let mut certs = Vec::new();
    for choice in signed.certificates.into_iter().flatten() {
        // Attribute and other certificate formats carry no public key to import.
        if let CertificateChoices::Certificate(cert) = choice {
            let cert = cert
                .to_der()
                .map_err(|e| invalid(format!("unusable certificate in PKCS#7: {e}")))?;
            // The same reader as every other certificate: one the cms crate accepts but the
            // rest of certmint cannot read (a malformed extension) must not get through.
            certificate(&cert)
                .map_err(|e| context(&format!("PKCS#7 certificate {}", certs.len() + 1), e))?;
            certs.push(cert);
        }
    }
    Ok(certs)
}

/// RFC 5652 SignedData, built from the cms crate's types, with its SETs read as lists.
/// `cms::signed_data::SignedData` decodes a SET by insertion-sorting it, re-encoding two
/// certificates per comparison: seconds for a few hundred kilobytes listed in reverse order,
/// growing quadratically. Sorting also loses the order files are written in (leaf first), and
/// it refuses a repeated certificate. The IMPLICIT tags make a SET OF and a SEQUENCE OF read
/// alike; the fields a certs-only reader does not use are kept undecoded.
#[derive(der::Sequence)]
struct SignedDataInFileOrder {
    _version: CmsVersion,
    _digest_algorithms: der::Any,
    _encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<Vec<CertificateChoices>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    _crls: Option<Vec<der::Any>>,
    _signer_infos: der::Any,
}

fn read_pkcs12(input: &[u8], password: Option<&str>) -> Result<Bundle, Error> {
    let contents = crate::pkcs12::read(input, password)?;
    for (i, der) in contents.certificates.iter().enumerate() {
        certificate(der).map_err(|e| context(&format!("PKCS#12 certificate {}", i + 1), e))?;
    }
    Ok(Bundle {
        certificates: contents.certificates,
        private_keys: contents.private_keys,
        csrs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer};

    use super::*;
    use crate::KeyType;

    struct Issued {
        key: PrivateKey,
        cert: Vec<u8>,
    }

    fn params(common_name: &str, ca: bool) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params
    }

    /// A CA and a leaf certificate it issued.
    fn ca_and_leaf() -> (Issued, Issued) {
        let ca_key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let ca_params = params("Test CA", true);
        let ca_cert = ca_params
            .self_signed(ca_key.rcgen())
            .unwrap()
            .der()
            .to_vec();
        let issuer = Issuer::from_params(&ca_params, ca_key.rcgen());
        let leaf_key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let leaf_cert = params("leaf", false)
            .signed_by(leaf_key.rcgen(), &issuer)
            .unwrap()
            .der()
            .to_vec();
        (
            Issued {
                key: ca_key,
                cert: ca_cert,
            },
            Issued {
                key: leaf_key,
                cert: leaf_cert,
            },
        )
    }

    fn message(result: Result<Bundle, Error>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn pkcs12_round_trips_with_both_ciphers() {
        let (ca, leaf) = ca_and_leaf();
        for cipher in [Pkcs12Cipher::Aes256, Pkcs12Cipher::Legacy3Des] {
            let p12 = pkcs12(
                Some(leaf.key.pkcs8_der()),
                &leaf.cert,
                &[&ca.cert],
                "pässword",
                "my leaf",
                cipher,
            )
            .unwrap();
            let bundle = read(&p12, Some("pässword")).unwrap();
            assert_eq!(bundle.certificates, [leaf.cert.clone(), ca.cert.clone()]);
            assert_eq!(bundle.private_keys.len(), 1);
            assert_eq!(bundle.private_keys[0].pkcs8_der(), leaf.key.pkcs8_der());
            let wrong = message(read(&p12, Some("password")));
            assert!(wrong.contains("wrong PKCS#12 password"), "{wrong}");
            let missing = message(read(&p12, None));
            assert!(missing.contains("needs a password"), "{missing}");
        }
    }

    #[test]
    fn pkcs12_without_a_key_holds_the_certificates() {
        let (ca, leaf) = ca_and_leaf();
        let p12 = pkcs12(
            None,
            &leaf.cert,
            &[&ca.cert],
            "pw",
            "leaf",
            Pkcs12Cipher::Aes256,
        )
        .unwrap();
        let bundle = read(&p12, Some("pw")).unwrap();
        assert_eq!(bundle.certificates, [leaf.cert, ca.cert]);
        assert!(bundle.private_keys.is_empty());
    }

    #[test]
    fn pkcs12_refuses_a_foreign_key_an_empty_password_and_bad_certificates() {
        let (ca, leaf) = ca_and_leaf();
        let write = |key: &PrivateKey, chain: &[&[u8]], password: &str| {
            pkcs12(
                Some(key.pkcs8_der()),
                &leaf.cert,
                chain,
                password,
                "x",
                Pkcs12Cipher::Aes256,
            )
            .unwrap_err()
            .to_string()
        };
        let err = write(&ca.key, &[], "pw");
        assert!(err.contains("does not belong"), "{err}");
        let err = write(&leaf.key, &[], "");
        assert!(err.contains("must not be empty"), "{err}");
        let err = write(&leaf.key, &[b"junk"], "pw");
        assert!(err.contains("chain certificate 1"), "{err}");
    }

    /// Found by the `bundle` fuzz target: the cms crate decodes a certificate whose signature
    /// BIT STRING is not DER (an unused bit set), which every other path refuses.
    #[test]
    fn pkcs7_with_an_unreadable_certificate_is_refused() {
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let mut cert = params("bad signature", false)
            .self_signed(key.rcgen())
            .unwrap()
            .der()
            .to_vec();
        // The signature BIT STRING ends the certificate: 03 len 00 (no unused bits), then the
        // value. Saying one bit is unused while the last bit is set breaks DER.
        let n = cert.len();
        let at = (0..n - 3)
            .rev()
            .find(|&i| cert[i] == 0x03 && usize::from(cert[i + 1]) == n - i - 2 && cert[i + 2] == 0)
            .unwrap();
        cert[at + 2] = 1;
        cert[n - 1] |= 1;
        assert!(certificate(&cert).is_err(), "the signature value was read");
        let p7 = pkcs7_certs_only(&[&cert]).unwrap();
        let refused = message(read(&p7, None));
        assert!(refused.contains("PKCS#7 certificate 1"), "{refused}");
        let pem = crate::pem::encode("PKCS7", &p7);
        let refused = message(read(pem.as_bytes(), None));
        assert!(refused.contains("PKCS#7 certificate 1"), "{refused}");
    }

    #[test]
    fn pkcs7_round_trips_and_drops_repeats() {
        let (ca, leaf) = ca_and_leaf();
        let p7 = pkcs7_certs_only(&[&leaf.cert, &ca.cert, &leaf.cert]).unwrap();
        let mut certs = read(&p7, None).unwrap().certificates;
        certs.sort();
        let mut expected = vec![leaf.cert.clone(), ca.cert.clone()];
        expected.sort();
        assert_eq!(certs, expected);
        let pem = crate::pem::encode("PKCS7", &p7);
        assert_eq!(read(pem.as_bytes(), None).unwrap().certificates.len(), 2);
        assert!(pkcs7_certs_only(&[]).is_err());
        let err = pkcs7_certs_only(&[&leaf.cert, b"junk"]).unwrap_err();
        assert!(err.to_string().contains("certificate 2"), "{err}");
    }

    #[test]
    fn pem_blocks_are_read_among_other_text() {
        let (ca, leaf) = ca_and_leaf();
        let csr = params("request", false)
            .serialize_request(leaf.key.rcgen())
            .unwrap()
            .der()
            .to_vec();
        let text = format!(
            "Bag Attributes\n    friendlyName: leaf\n{}notes between\n{}{}trailing words",
            certificates_pem(&[&leaf.cert, &ca.cert]),
            leaf.key.to_encrypted_pem("pw").unwrap(),
            crate::pem::encode("CERTIFICATE REQUEST", &csr),
        );
        let bundle = read(text.as_bytes(), Some("pw")).unwrap();
        assert_eq!(bundle.certificates, [leaf.cert, ca.cert]);
        assert_eq!(bundle.private_keys[0].pkcs8_der(), leaf.key.pkcs8_der());
        assert_eq!(bundle.csrs, std::slice::from_ref(&csr));
        assert_eq!(read(&csr, None).unwrap().csrs, [csr]);
    }

    #[test]
    fn bad_input_is_named() {
        let (ca, leaf) = ca_and_leaf();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                b"hello world".to_vec(),
                "not a certificate, PKCS#7, PKCS#12 or CSR",
            ),
            (
                vec![0x30, 0x03, 0x02, 0x01, 0x05],
                "not a certificate, PKCS#7, PKCS#12 or CSR",
            ),
            (leaf.cert[..leaf.cert.len() / 2].to_vec(), "truncated DER"),
            (
                [leaf.cert.as_slice(), &ca.cert].concat(),
                "unexpected data after",
            ),
            (b"  \n".to_vec(), "empty"),
            (
                crate::pem::encode("CERTIFICATE", &[leaf.cert.as_slice(), &[5, 0]].concat())
                    .into_bytes(),
                "PEM block 1 (CERTIFICATE): unexpected data after",
            ),
            (
                crate::pem::encode("CERTIFICATE", &leaf.cert[..100]).into_bytes(),
                "PEM block 1 (CERTIFICATE): truncated DER",
            ),
            (
                crate::pem::encode("X509 CRL", &[0x30, 0]).into_bytes(),
                "no certificate, private key or CSR found (PEM blocks found: X509 CRL)",
            ),
        ];
        for (input, expected) in cases {
            let err = message(read(&input, None));
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
        let pem = certificates_pem(&[&leaf.cert, &ca.cert]);
        let err = message(read(&pem.as_bytes()[..pem.len() - 100], None));
        assert!(err.contains("without a matching END"), "{err}");
    }
}
