//! OCSP requests made by the real `openssl ocsp` are read; the responses certmint signs are
//! checked by it.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use certmint_pki::cert::{self, CaSigner};
use certmint_pki::inspect::Certificate;
use certmint_pki::ocsp::{
    self, CertId, CertStatus, HashAlgorithm, IssuerKeyHashes, Request, Responder, ResponseData,
    ResponseStatus, SingleResponse,
};
use certmint_pki::{
    CertSpec, DistinguishedName, ExtendedKeyUsage, Issuer, KeyType, KeyUsage, NameAttribute,
    PrivateKey, Signer, pem, random,
};
use der::asn1::OctetString;
use der::{Decode, Encode};
use sha1::{Digest, Sha1};
use time::{Duration, OffsetDateTime};

/// Runs openssl; panics (never skips) when it is missing.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command is required for this test: {e}"))
}

/// Runs openssl, which must succeed; returns stdout and stderr together.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed: {text}");
    text
}

/// Runs openssl, which must fail; returns stdout and stderr together.
fn openssl_fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "openssl {args:?} succeeded: {text}");
    text
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::Country, "DE").unwrap();
    dn.set(NameAttribute::Organization, "certmint tests")
        .unwrap();
    dn.set(NameAttribute::CommonName, cn).unwrap();
    dn
}

fn spec(cn: &str, public_key: Vec<u8>, days: i64) -> CertSpec {
    let now = OffsetDateTime::now_utc();
    CertSpec::new(
        name(cn),
        public_key,
        random::serial().unwrap(),
        now - Duration::minutes(5),
        now + Duration::days(days),
    )
}

fn write_pem(dir: &Path, file: &str, der: &[u8]) {
    std::fs::write(dir.join(file), pem::encode("CERTIFICATE", der)).unwrap();
}

/// A root (P-384) and below it the issuing CA whose certificates get answered for, with a key
/// of `key_type`; `root.pem` and `ca.pem` in the directory.
struct Pki {
    dir: tempfile::TempDir,
    root: CaSigner,
    ca: CaSigner,
    ca_key: Arc<PrivateKey>,
    hashes: IssuerKeyHashes,
}

fn pki(key_type: KeyType) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let root_key = Arc::new(PrivateKey::generate(KeyType::EcP384).unwrap());
    let mut root_spec = spec("OCSP Test Root", root_key.public_key_der(), 3650);
    root_spec.ca = Some(None);
    let root = cert::build(
        &root_spec,
        Issuer::SelfSigned(root_key.as_ref()),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;
    let root = CaSigner::new(&root, root_key).unwrap();

    let ca_key = Arc::new(PrivateKey::generate(key_type).unwrap());
    let mut ca_spec = spec("OCSP Test Issuing CA", ca_key.public_key_der(), 1825);
    ca_spec.ca = Some(Some(0));
    let ca_der = cert::build(
        &ca_spec,
        Issuer::Ca(&root),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;
    let ca = CaSigner::new(&ca_der, ca_key.clone()).unwrap();
    write_pem(dir.path(), "root.pem", &root.info().der);
    write_pem(dir.path(), "ca.pem", &ca_der);
    let hashes = IssuerKeyHashes::new(ca.info()).unwrap();
    Pki {
        dir,
        root,
        ca,
        ca_key,
        hashes,
    }
}

impl Pki {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A leaf of the issuing CA, written to `file`; returns its serial (DER INTEGER content).
    fn leaf(&self, file: &str) -> Vec<u8> {
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let der = cert::build(
            &spec("leaf.example.test", key.public_key_der(), 90),
            Issuer::Ca(&self.ca),
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap()
        .der;
        write_pem(self.path(), file, &der);
        hex::decode(Certificate::parse(&der).unwrap().serial).unwrap()
    }

    /// A delegated responder certificate issued by `issuer`, with OCSPSigning and
    /// id-pkix-ocsp-nocheck; `responder.pem` in the directory.
    fn delegated(&self, key_type: KeyType, issuer: &CaSigner) -> Responder {
        let key = Arc::new(PrivateKey::generate(key_type).unwrap());
        let mut s = spec("OCSP Responder", key.public_key_der(), 30);
        s.key_usage = vec![KeyUsage::DigitalSignature];
        s.extended_key_usage = vec![ExtendedKeyUsage::OcspSigning];
        s.ocsp_no_check = true;
        let der = cert::build(
            &s,
            Issuer::Ca(issuer),
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap()
        .der;
        write_pem(self.path(), "responder.pem", &der);
        Responder::new(key, Some(der)).unwrap()
    }

    /// The issuing CA answering itself.
    fn direct(&self) -> Responder {
        Responder::new(self.ca_key.clone(), None).unwrap()
    }

    /// `openssl ocsp` writing a request for the leaf certificates in `files` to `req.der`.
    fn openssl_request(&self, extra: &[&str], files: &[&str]) -> Request {
        let mut args = vec!["ocsp", "-issuer", "ca.pem"];
        args.extend_from_slice(extra);
        for file in files {
            args.extend_from_slice(&["-cert", file]);
        }
        args.extend_from_slice(&["-reqout", "req.der"]);
        openssl(self.path(), &args);
        Request::parse(&self.read("req.der")).unwrap()
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path().join(file)).unwrap()
    }

    fn write(&self, file: &str, der: &[u8]) {
        std::fs::write(self.path().join(file), der).unwrap();
    }

    /// Signs an answer giving each of `request`'s CertIDs the status at the same index, echoing
    /// `nonce`; writes it to `resp.der`.
    fn answer(
        &self,
        request: &Request,
        statuses: &[CertStatus],
        nonce: Option<&[u8]>,
        responder: &Responder,
    ) {
        let now = OffsetDateTime::now_utc();
        let responses: Vec<SingleResponse<'_>> = request
            .cert_ids()
            .iter()
            .zip(statuses)
            .map(|(cert_id, status)| SingleResponse {
                cert_id,
                status: *status,
                this_update: now - Duration::minutes(1),
                next_update: now + Duration::hours(1),
            })
            .collect();
        let der = ocsp::sign(
            &ResponseData {
                produced_at: now,
                responses: &responses,
                nonce,
            },
            responder,
        )
        .unwrap();
        self.write("resp.der", &der);
    }

    /// Checks `resp.der` as a client asking about `files` would (`-issuer`/`-cert`, without a
    /// nonce, with the CertIDs `extra` asks for), verifying it up to the root; returns
    /// openssl's output, which lists each status.
    fn check_statuses(&self, extra: &[&str], files: &[&str]) -> String {
        let out = openssl(self.path(), &self.status_args(extra, files));
        assert!(out.contains("Response verify OK"), "{out}");
        out
    }

    fn status_args<'a>(&self, extra: &[&'a str], files: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["ocsp", "-issuer", "ca.pem"];
        args.extend_from_slice(extra);
        for file in files {
            args.extend_from_slice(&["-cert", file]);
        }
        args.extend_from_slice(&[
            "-no_nonce",
            "-respin",
            "resp.der",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "ca.pem",
        ]);
        args
    }

    /// Verifies `resp.der` against the request in `req.der` (nonce included) with openssl,
    /// without handing it the issuer as a trusted responder: the response is checked up to the
    /// root, and its signer must be the issuing CA or a responder it authorized. Returns
    /// openssl's output with the response as text.
    fn verify(&self) -> String {
        let out = openssl(self.path(), &self.verify_args());
        assert!(out.contains("Response verify OK"), "{out}");
        out
    }

    fn verify_args(&self) -> Vec<&'static str> {
        vec![
            "ocsp",
            "-reqin",
            "req.der",
            "-respin",
            "resp.der",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "ca.pem",
            "-resp_text",
        ]
    }
}

#[test]
fn requests_made_by_openssl_are_read_and_match_the_issuer() {
    let pki = pki(KeyType::EcP256);
    let serial = pki.leaf("leaf.pem");
    let other = pki.leaf("other.pem");

    for (extra, algorithm) in [
        (&[][..], HashAlgorithm::Sha1),
        (&["-sha256"][..], HashAlgorithm::Sha256),
    ] {
        let mut args = extra.to_vec();
        args.push("-no_nonce");
        let request = pki.openssl_request(&args, &["leaf.pem"]);
        assert_eq!(request.nonce(), None);
        let [cert_id] = request.cert_ids() else {
            panic!("one CertID expected: {request:?}")
        };
        assert_eq!(cert_id.hash_algorithm(), algorithm);
        assert!(pki.hashes.matches(cert_id), "{algorithm:?}");
        assert_eq!(cert_id.serial(), serial);
        // Our CertID for the same certificate is openssl's, octet for octet, and so is our
        // request.
        let ours = CertId::for_certificate(&pki.hashes, &serial, algorithm).unwrap();
        assert_eq!(&ours, cert_id);
        assert_eq!(ocsp::request(&[ours], None).unwrap(), pki.read("req.der"));

        // Another CA with the same name but its own key is not this issuer.
        let stranger = pki_with_name_of(&pki);
        assert!(!stranger.matches(cert_id));

        let request = pki.openssl_request(&[extra, &["-nonce"][..]].concat(), &["leaf.pem"]);
        assert_eq!(request.nonce().map(<[u8]>::len), Some(16));
        assert!(pki.hashes.matches(&request.cert_ids()[0]));

        let request = pki.openssl_request(&args, &["leaf.pem", "other.pem"]);
        let serials: Vec<&[u8]> = request.cert_ids().iter().map(CertId::serial).collect();
        assert_eq!(serials, [&serial[..], &other[..]]);
        assert!(request.cert_ids().iter().all(|id| pki.hashes.matches(id)));
    }
}

/// The hashes of a CA with the same subject name as `pki`'s issuing CA but another key.
fn pki_with_name_of(pki: &Pki) -> IssuerKeyHashes {
    let key = Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap());
    let mut s = spec("OCSP Test Issuing CA", key.public_key_der(), 365);
    s.ca = Some(Some(0));
    let der = cert::build(
        &s,
        Issuer::Ca(&pki.root),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;
    let info = Certificate::parse(&der).unwrap();
    assert_eq!(info.subject_raw, pki.ca.info().subject_raw);
    IssuerKeyHashes::new(&info).unwrap()
}

#[test]
fn good_revoked_and_unknown_answers_verify_with_openssl() {
    let pki = pki(KeyType::EcP256);
    pki.leaf("leaf.pem");
    let request = pki.openssl_request(&["-no_nonce"], &["leaf.pem"]);
    let responder = pki.direct();

    pki.answer(&request, &[CertStatus::Good], None, &responder);
    let out = pki.check_statuses(&[], &["leaf.pem"]);
    assert!(out.contains("leaf.pem: good"), "{out}");
    assert!(
        out.contains("This Update:") && out.contains("Next Update:"),
        "{out}"
    );

    // 2026-01-02 03:04:05 UTC
    let revoked_at = OffsetDateTime::from_unix_timestamp(1_767_323_045).unwrap();
    for (reason, text) in [
        (Some(1), Some("Reason: keyCompromise")),
        (Some(4), Some("Reason: superseded")),
        (Some(0), None),
        (None, None),
    ] {
        pki.answer(
            &request,
            &[CertStatus::Revoked { revoked_at, reason }],
            None,
            &responder,
        );
        let out = pki.check_statuses(&[], &["leaf.pem"]);
        assert!(out.contains("leaf.pem: revoked"), "{out}");
        assert!(
            out.contains("Revocation Time: Jan  2 03:04:05 2026 GMT"),
            "{out}"
        );
        match text {
            Some(text) => assert!(out.contains(text), "{reason:?}: {out}"),
            None => assert!(!out.contains("Reason:"), "{reason:?}: {out}"),
        }
    }

    pki.answer(&request, &[CertStatus::Unknown], None, &responder);
    let out = pki.check_statuses(&[], &["leaf.pem"]);
    assert!(out.contains("leaf.pem: unknown"), "{out}");

    // openssl finds the answer by the CertID: one for another certificate is not it.
    pki.leaf("other.pem");
    let other = pki.openssl_request(&["-no_nonce"], &["other.pem"]);
    pki.answer(&other, &[CertStatus::Good], None, &responder);
    let out = openssl_fails(pki.path(), &pki.status_args(&[], &["leaf.pem"]));
    assert!(out.contains("leaf.pem: ERROR: No Status found"), "{out}");
}

#[test]
fn two_certificates_are_answered_in_one_response() {
    let pki = pki(KeyType::EcP256);
    pki.leaf("a.pem");
    pki.leaf("b.pem");
    for hash in [&[][..], &["-sha256"][..]] {
        let request =
            pki.openssl_request(&[hash, &["-no_nonce"][..]].concat(), &["a.pem", "b.pem"]);
        assert_eq!(request.cert_ids().len(), 2);
        let revoked = CertStatus::Revoked {
            revoked_at: OffsetDateTime::now_utc() - Duration::days(1),
            reason: Some(1),
        };
        pki.answer(&request, &[CertStatus::Good, revoked], None, &pki.direct());
        let out = pki.check_statuses(hash, &["a.pem", "b.pem"]);
        assert!(out.contains("a.pem: good"), "{out}");
        assert!(out.contains("b.pem: revoked"), "{out}");
        pki.verify();
        // Asked with the other hash algorithm, openssl finds no answer.
        let other = if hash.is_empty() {
            &["-sha256"][..]
        } else {
            &[][..]
        };
        let out = openssl_fails(pki.path(), &pki.status_args(other, &["a.pem", "b.pem"]));
        assert!(out.contains("a.pem: ERROR: No Status found"), "{out}");
    }
}

#[test]
fn every_key_type_signs_for_itself_and_as_a_delegated_responder() {
    for key_type in [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa { bits: 2048 },
        KeyType::Ed25519,
    ] {
        let pki = pki(key_type);
        pki.leaf("leaf.pem");
        let request = pki.openssl_request(&["-nonce"], &["leaf.pem"]);
        let nonce = request.nonce();

        pki.answer(&request, &[CertStatus::Good], nonce, &pki.direct());
        let out = pki.verify();
        assert!(out.contains("Cert Status: good"), "{key_type}: {out}");
        assert!(out.contains("Responder Id: "), "{key_type}: {out}");
        assert!(
            !out.contains("Certificate:"),
            "{key_type}: no certs expected: {out}"
        );

        let responder = pki.delegated(key_type, &pki.ca);
        pki.answer(&request, &[CertStatus::Good], nonce, &responder);
        let out = pki.verify();
        assert!(out.contains("Cert Status: good"), "{key_type}: {out}");
        assert!(out.contains("CN=OCSP Responder"), "{key_type}: {out}");
        assert!(out.contains("OCSP No Check"), "{key_type}: {out}");
        // A responder that the issuing CA did not authorize is refused.
        let responder = pki.delegated(key_type, &pki.root);
        pki.answer(&request, &[CertStatus::Good], nonce, &responder);
        let out = openssl_fails(pki.path(), &pki.verify_args());
        assert!(out.contains("Response Verify Failure"), "{key_type}: {out}");
    }
}

#[test]
fn the_signature_and_the_responder_id_are_what_openssl_checks() {
    let pki = pki(KeyType::EcP256);
    pki.leaf("leaf.pem");
    let request = pki.openssl_request(&["-no_nonce"], &["leaf.pem"]);

    // Signed by a key that is not the CA's: refused.
    let stranger = Responder::new(
        Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap()),
        None,
    )
    .unwrap();
    pki.answer(&request, &[CertStatus::Good], None, &stranger);
    let out = openssl_fails(pki.path(), &pki.verify_args());
    assert!(out.contains("Response Verify Failure"), "{out}");

    // A signature over other bytes than the tbsResponseData: refused.
    struct Tampering(Arc<PrivateKey>);
    impl Signer for Tampering {
        fn key_type(&self) -> KeyType {
            self.0.key_type()
        }
        fn public_key_der(&self) -> Vec<u8> {
            self.0.public_key_der()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, certmint_pki::Error> {
            let mut message = message.to_vec();
            message.push(0);
            Signer::sign(self.0.as_ref(), &message)
        }
    }
    let tampering = Responder::new(Arc::new(Tampering(pki.ca_key.clone())), None).unwrap();
    pki.answer(&request, &[CertStatus::Good], None, &tampering);
    let out = openssl_fails(pki.path(), &pki.verify_args());
    assert!(out.contains("Response Verify Failure"), "{out}");

    // The responder ID is the SHA-1 of the key's BIT STRING value, which openssl uses to find
    // the signer among the certificates it has.
    pki.answer(&request, &[CertStatus::Good], None, &pki.direct());
    let out = pki.verify();
    let spki = pki.ca.info().public_key_der.clone();
    let bits = &spki[spki.len() - 65..]; // an uncompressed P-256 point ends the SPKI
    let key_hash = hex::encode_upper(Sha1::digest(bits));
    assert!(out.contains(&format!("Responder Id: {key_hash}")), "{out}");
}

#[test]
fn nonces_are_echoed_and_openssl_notices_when_they_are_not() {
    let pki = pki(KeyType::EcP256);
    pki.leaf("leaf.pem");
    let request = pki.openssl_request(&["-nonce"], &["leaf.pem"]);
    let nonce = request.nonce().unwrap().to_vec();

    pki.answer(&request, &[CertStatus::Good], Some(&nonce), &pki.direct());
    let out = pki.verify();
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert!(
        out.contains(&format!("0410{}", hex::encode_upper(&nonce))),
        "{out}"
    );
    assert!(!out.contains("WARNING"), "{out}");

    // Another nonce: openssl refuses the response.
    let mut wrong = nonce.clone();
    wrong[0] ^= 1;
    pki.answer(&request, &[CertStatus::Good], Some(&wrong), &pki.direct());
    let out = openssl_fails(pki.path(), &pki.verify_args());
    assert!(out.contains("Nonce Verify error"), "{out}");

    // No nonce: openssl warns.
    pki.answer(&request, &[CertStatus::Good], None, &pki.direct());
    let out = pki.verify();
    assert!(out.contains("WARNING: no nonce in response"), "{out}");
}

#[test]
fn error_responses_are_read_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    for (status, text) in [
        (ResponseStatus::MalformedRequest, "malformedrequest (1)"),
        (ResponseStatus::InternalError, "internalerror (2)"),
        (ResponseStatus::TryLater, "trylater (3)"),
        (ResponseStatus::SigRequired, "sigrequired (5)"),
        (ResponseStatus::Unauthorized, "unauthorized (6)"),
    ] {
        std::fs::write(dir.path().join("err.der"), ocsp::error_response(status)).unwrap();
        let out = openssl_fails(dir.path(), &["ocsp", "-respin", "err.der", "-resp_text"]);
        assert!(out.contains(&format!("Responder Error: {text}")), "{out}");
    }
}

#[test]
fn broken_requests_are_refused_without_panicking() {
    let pki = pki(KeyType::EcP256);
    pki.leaf("leaf.pem");
    let request = pki.openssl_request(&["-nonce"], &["leaf.pem"]);
    let der = pki.read("req.der");
    let cert_id = request.cert_ids()[0].clone();

    for len in 0..der.len() {
        assert!(Request::parse(&der[..len]).is_err(), "truncated to {len}");
    }
    for extra in [&[0u8][..], &[0x30, 0x00], &der] {
        assert!(Request::parse(&[&der[..], extra].concat()).is_err());
    }
    for garbage in [
        &b""[..],
        b"\x00",
        b"\x30\x00",
        b"\x30\x80\x00\x00",
        b"GET / HTTP/1.1\r\n\r\n",
        &[0xff; 64],
    ] {
        assert!(Request::parse(garbage).is_err(), "{garbage:?}");
    }
    // Each octet changed in turn: refused or read, never a panic.
    for i in 0..der.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut changed = der.clone();
            changed[i] ^= flip;
            let _ = Request::parse(&changed);
        }
    }

    // Requests openssl does not make, written with x509-ocsp.
    let ours = ocsp::request(std::slice::from_ref(&cert_id), None).unwrap();
    let wire_id = x509_ocsp::OcspRequest::from_der(&ours)
        .unwrap()
        .tbs_request
        .request_list[0]
        .req_cert
        .clone();
    let encode = |ids: usize, nonce: Option<Vec<u8>>| {
        x509_ocsp::OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                request_list: (0..ids)
                    .map(|_| x509_ocsp::Request {
                        req_cert: wire_id.clone(),
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions: nonce.map(|value| {
                    vec![x509_cert::ext::Extension {
                        extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE,
                        critical: false,
                        extn_value: OctetString::new(value).unwrap(),
                    }]
                }),
                ..Default::default()
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    };
    let wrapped = |n: usize| OctetString::new(vec![7; n]).unwrap().to_der().unwrap();

    assert_eq!(
        Request::parse(&encode(1, None)).unwrap().cert_ids(),
        std::slice::from_ref(&cert_id)
    );
    assert!(Request::parse(&encode(0, None)).is_err(), "no CertID");
    assert_eq!(
        Request::parse(&encode(ocsp::MAX_CERT_IDS, None))
            .unwrap()
            .cert_ids()
            .len(),
        ocsp::MAX_CERT_IDS
    );
    assert!(
        Request::parse(&encode(ocsp::MAX_CERT_IDS + 1, None)).is_err(),
        "too many"
    );
    for len in [1, 16, 32] {
        let parsed = Request::parse(&encode(1, Some(wrapped(len)))).unwrap();
        assert_eq!(parsed.nonce(), Some(&[7; 32][..len]));
    }
    assert!(
        Request::parse(&encode(1, Some(wrapped(33)))).is_err(),
        "33-octet nonce"
    );
    assert!(
        Request::parse(&encode(1, Some(wrapped(0)))).is_err(),
        "empty nonce"
    );
    assert!(
        Request::parse(&encode(1, Some(vec![7; 16]))).is_err(),
        "a nonce not wrapped in an OCTET STRING"
    );
}
