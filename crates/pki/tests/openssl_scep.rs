//! SCEP's CMS layers against the real `openssl cms`: envelopes openssl encrypts to the RA are
//! decrypted by certmint, CertReps certmint signs verify and decrypt in openssl, and a request
//! signed by openssl with SHA-1 is read.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use certmint_pki::cert::{self, CaSigner};
use certmint_pki::crl::{self, CrlSpec};
use certmint_pki::lint::Policy;
use certmint_pki::scep::client::{self, Message, Outcome, RaCertificate, Requester};
use certmint_pki::scep::{
    self, ContentCipher, Digest, FailInfo, MessageType, Ra, Reply, RequestContent,
};
use certmint_pki::{CertSpec, DistinguishedName, Issuer, KeyType, NameAttribute, PrivateKey, pem};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{OctetString, SetOfVec};
use der::{Decode, Encode};
use sha1::Digest as _;
use time::{Duration, OffsetDateTime};

/// Runs openssl in `dir`, which must succeed; panics (never skips) when it is missing.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command is required for this test: {e}"));
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::Organization, "certmint tests")
        .unwrap();
    dn.set(NameAttribute::CommonName, cn).unwrap();
    dn
}

/// OpenSSL 3 keeps single DES in its legacy provider.
fn cipher_flags(cipher: ContentCipher) -> &'static [&'static str] {
    match cipher {
        ContentCipher::DesCbc => &["-des", "-provider", "legacy", "-provider", "default"],
        ContentCipher::DesEde3Cbc => &["-des3"],
        ContentCipher::Aes128Cbc => &["-aes128"],
        ContentCipher::Aes192Cbc => &["-aes192"],
        ContentCipher::Aes256Cbc => &["-aes256"],
    }
}

const LEGACY: &[&str] = &["-provider", "legacy", "-provider", "default"];

/// A CA whose certificate and key are the RA's, a requester with a transient certificate, a
/// certificate the CA issued to it and the CA's CRL; `ra.pem`, `client.pem` and `client.key`
/// in the directory.
struct Fixture {
    dir: tempfile::TempDir,
    ca: CaSigner,
    ra: Ra,
    ra_cert: RaCertificate,
    requester: Requester,
    issued: Vec<u8>,
    crl: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let ca_key = Arc::new(PrivateKey::generate(KeyType::Rsa { bits: 2048 }).unwrap());
    let mut spec = CertSpec::new(
        name("SCEP Interop CA"),
        ca_key.public_key_der(),
        certmint_pki::random::serial().unwrap(),
        now - Duration::hours(1),
        now + Duration::days(365),
    );
    spec.ca = Some(None);
    let ca_der = cert::build(
        &spec,
        Issuer::SelfSigned(ca_key.as_ref()),
        &Policy::default(),
    )
    .unwrap()
    .der;
    let ca = CaSigner::new(&ca_der, ca_key.clone()).unwrap();
    let ra = Ra::new(&ca_der, &ca_key).unwrap();
    assert!(
        ca.info().subject_key_id.is_some(),
        "the RA certificate has a subject key identifier, for -keyid"
    );

    let key = PrivateKey::generate(KeyType::Rsa { bits: 2048 }).unwrap();
    let transient = client::transient_certificate(&key, &name("device-7"), now).unwrap();
    let requester = Requester::new(&transient, &key).unwrap();
    let issued = cert::build(
        &CertSpec::new(
            name("device-7"),
            key.public_key_der(),
            certmint_pki::random::serial().unwrap(),
            now - Duration::minutes(5),
            now + Duration::days(30),
        ),
        Issuer::Ca(&ca),
        &Policy::default(),
    )
    .unwrap()
    .der;
    let crl = crl::build(
        &CrlSpec {
            number: 3,
            this_update: now,
            next_update: now + Duration::days(1),
            delta_of: None,
            freshest_crl_urls: Vec::new(),
        },
        [],
        &ca,
        &Policy::default(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ra.pem"),
        pem::encode("CERTIFICATE", &ca_der),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("client.pem"),
        pem::encode("CERTIFICATE", &transient),
    )
    .unwrap();
    std::fs::write(dir.path().join("client.key"), key.to_pkcs8_pem().as_bytes()).unwrap();
    Fixture {
        dir,
        ra_cert: RaCertificate::new(&ca_der).unwrap(),
        ca,
        ra,
        requester,
        issued,
        crl,
    }
}

#[test]
fn envelopes_openssl_encrypts_to_the_ra_decrypt() {
    let f = fixture();
    let dir = f.dir.path();
    let csr = client::csr(
        &PrivateKey::generate(KeyType::Rsa { bits: 2048 }).unwrap(),
        &name("device-7"),
        Some("challenge"),
    )
    .unwrap();
    std::fs::write(dir.join("csr.der"), &csr).unwrap();
    for cipher in ContentCipher::ALL {
        // -keyid names the RA by subject key identifier rather than issuer and serial.
        for keyid in [false, true] {
            let mut args = vec![
                "cms", "-encrypt", "-binary", "-outform", "DER", "-in", "csr.der", "-out",
                "env.der", "-recip", "ra.pem",
            ];
            args.extend_from_slice(cipher_flags(cipher));
            if keyid {
                args.push("-keyid");
            }
            openssl(dir, &args);
            let envelope = std::fs::read(dir.join("env.der")).unwrap();
            let (used, content) = scep::decrypt_envelope(&envelope, &f.ra)
                .unwrap_or_else(|e| panic!("{} (keyid {keyid}): {e}", cipher.name()));
            assert_eq!(used, cipher);
            assert_eq!(content, csr, "{}", cipher.name());
        }
    }
}

#[test]
fn cert_reps_verify_and_decrypt_in_openssl() {
    let f = fixture();
    let dir = f.dir.path();
    let ca_der = f.ca.info().der.clone();
    for cipher in ContentCipher::ALL {
        for (message_type, digest) in [
            (MessageType::PkcsReq, Digest::Sha256),
            (MessageType::GetCrl, Digest::Sha512),
        ] {
            let case = format!(
                "{} {} {}",
                message_type.name(),
                cipher.name(),
                digest.name()
            );
            let content = match message_type {
                MessageType::GetCrl => RequestContent::IssuerAndSerial {
                    issuer: f.ca.info().issuer_raw.clone(),
                    serial: hex::decode(&f.ca.info().serial).unwrap(),
                },
                _ => RequestContent::Csr(
                    client::csr(
                        &PrivateKey::generate(KeyType::Rsa { bits: 2048 }).unwrap(),
                        &name("device-7"),
                        None,
                    )
                    .unwrap(),
                ),
            };
            let sent = client::request(
                &f.requester,
                &f.ra_cert,
                &Message {
                    message_type,
                    transaction_id: "C0FFEE",
                    content: &content,
                    digest,
                    cipher,
                },
            )
            .unwrap();
            let request = scep::read_request(&sent.der, &f.ra).unwrap();
            let certificates = [f.issued.as_slice(), ca_der.as_slice()];
            let reply = match message_type {
                MessageType::GetCrl => Reply::Crl(&f.crl),
                _ => Reply::Success {
                    certificates: &certificates,
                },
            };
            let rep = scep::cert_rep(&f.ra, &request.reply_to, &reply).unwrap();
            std::fs::write(dir.join("rep.der"), &rep).unwrap();

            // The RA certificate is the trust anchor; `-purpose any` because a CA certificate
            // is not an S/MIME signer's.
            openssl(
                dir,
                &[
                    "cms",
                    "-verify",
                    "-binary",
                    "-inform",
                    "DER",
                    "-in",
                    "rep.der",
                    "-CAfile",
                    "ra.pem",
                    "-purpose",
                    "any",
                    "-out",
                    "envelope.der",
                ],
            );
            let printed = String::from_utf8(
                openssl(
                    dir,
                    &[
                        "cms", "-cmsout", "-print", "-inform", "DER", "-in", "rep.der",
                    ],
                )
                .stdout,
            )
            .unwrap();
            let digest_name = match digest {
                Digest::Sha512 => "sha512",
                _ => "sha256",
            };
            assert!(printed.contains(digest_name), "{case}: {printed}");

            let mut args = vec![
                "cms",
                "-decrypt",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "envelope.der",
                "-inkey",
                "client.key",
                "-recip",
                "client.pem",
                "-outform",
                "DER",
                "-out",
                "inner.der",
            ];
            if cipher == ContentCipher::DesCbc {
                args.extend_from_slice(LEGACY);
            }
            openssl(dir, &args);
            let listed = String::from_utf8(
                openssl(
                    dir,
                    &[
                        "pkcs7",
                        "-inform",
                        "DER",
                        "-in",
                        "inner.der",
                        "-print_certs",
                        "-text",
                    ],
                )
                .stdout,
            )
            .unwrap();
            match message_type {
                MessageType::GetCrl => {
                    assert!(
                        listed.contains("Certificate Revocation List"),
                        "{case}: {listed}"
                    );
                    assert!(listed.contains("X509v3 CRL Number"), "{case}: {listed}");
                }
                _ => {
                    assert_eq!(
                        listed.matches("-----BEGIN CERTIFICATE-----").count(),
                        2,
                        "{case}: {listed}"
                    );
                    // In the order given: the issued certificate first.
                    let leaf = listed.find("Subject: O=certmint tests, CN=device-7");
                    let ca = listed.find("Subject: O=certmint tests, CN=SCEP Interop CA");
                    assert!(
                        leaf.is_some() && ca.is_some() && leaf < ca,
                        "{case}: {listed}"
                    );
                }
            }
        }
    }
}

#[test]
fn failure_replies_verify_in_openssl() {
    let f = fixture();
    let dir = f.dir.path();
    let content = RequestContent::IssuerAndSerial {
        issuer: f.ca.info().issuer_raw.clone(),
        serial: vec![1, 2, 3],
    };
    let sent = client::request(
        &f.requester,
        &f.ra_cert,
        &Message {
            message_type: MessageType::GetCert,
            transaction_id: "FAIL-1",
            content: &content,
            digest: Digest::Sha256,
            cipher: ContentCipher::Aes256Cbc,
        },
    )
    .unwrap();
    let request = scep::read_request(&sent.der, &f.ra).unwrap();
    let rep = scep::cert_rep(
        &f.ra,
        &request.reply_to,
        &Reply::Failure(FailInfo::BadCertId),
    )
    .unwrap();
    std::fs::write(dir.join("fail.der"), &rep).unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    // No content: the signature covers an empty message, as for a detached signature.
    openssl(
        dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "fail.der",
            "-content",
            "empty",
            "-noverify",
            "-out",
            "/dev/null",
        ],
    );
}

#[test]
fn a_request_signed_by_openssl_with_sha1_is_read() {
    let f = fixture();
    let dir = f.dir.path();
    let content = RequestContent::Csr(
        client::csr(
            &PrivateKey::generate(KeyType::Rsa { bits: 2048 }).unwrap(),
            &name("device-7"),
            Some("challenge"),
        )
        .unwrap(),
    );
    let sent = client::request(
        &f.requester,
        &f.ra_cert,
        &Message {
            message_type: MessageType::PkcsReq,
            transaction_id: "SHA1-CLIENT",
            content: &content,
            digest: Digest::Sha256,
            cipher: ContentCipher::DesCbc,
        },
    )
    .unwrap();

    // What a SHA-1 client sends: the same message, its digest and signature made with SHA-1,
    // the signature by `openssl dgst -sha1 -sign`.
    let sha1 = spki::AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_1,
        parameters: None,
    };
    let mut info = ContentInfo::from_der(&sent.der).unwrap();
    let mut signed: SignedData = info.content.decode_as().unwrap();
    let econtent = signed.encap_content_info.econtent.as_ref().unwrap().value();
    let message_digest = sha1::Sha1::digest(econtent);
    signed.digest_algorithms = SetOfVec::try_from(vec![sha1.clone()]).unwrap();
    let mut signers = signed.signer_infos.0.clone().into_vec();
    let signer = &mut signers[0];
    signer.digest_alg = sha1;
    let attrs = signer
        .signed_attrs
        .take()
        .unwrap()
        .into_vec()
        .into_iter()
        .map(|mut attr| {
            if attr.oid == const_oid::db::rfc5911::ID_MESSAGE_DIGEST {
                let value =
                    der::Any::encode_from(&OctetString::new(message_digest.to_vec()).unwrap())
                        .unwrap();
                attr.values = SetOfVec::try_from(vec![value]).unwrap();
            }
            attr
        })
        .collect::<Vec<_>>();
    let attrs = SetOfVec::try_from(attrs).unwrap();
    std::fs::write(dir.join("attrs.der"), attrs.to_der().unwrap()).unwrap();
    openssl(
        dir,
        &[
            "dgst",
            "-sha1",
            "-sign",
            "client.key",
            "-out",
            "sig.bin",
            "attrs.der",
        ],
    );
    signer.signature = OctetString::new(std::fs::read(dir.join("sig.bin")).unwrap()).unwrap();
    signer.signed_attrs = Some(attrs);
    signed.signer_infos.0 = signers.try_into().unwrap();
    info.content = der::Any::encode_from(&signed).unwrap();
    let request_der = info.to_der().unwrap();

    let request = scep::read_request(&request_der, &f.ra).unwrap();
    assert_eq!(request.reply_to.digest, Digest::Sha1);
    assert_eq!(request.content, content);
    let certificates = [f.issued.as_slice()];
    let rep = scep::cert_rep(
        &f.ra,
        &request.reply_to,
        &Reply::Success {
            certificates: &certificates,
        },
    )
    .unwrap();
    let read = client::read_cert_rep(&rep, &f.requester, &f.ra_cert, &sent).unwrap();
    assert_eq!(
        read.digest,
        Digest::Sha256,
        "SHA-1 requests get SHA-256 replies"
    );
    assert_eq!(
        read.outcome,
        Outcome::Success {
            certificates: vec![f.issued.clone()],
            crls: Vec::new(),
            cipher: ContentCipher::DesCbc,
        }
    );

    // And openssl itself agrees the request's signature verifies.
    std::fs::write(dir.join("req.der"), &request_der).unwrap();
    openssl(
        dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "req.der",
            "-noverify",
            "-out",
            "/dev/null",
        ],
    );
}
