//! The cost of the OCSP responder's pure work, one thread: reading a request as `openssl ocsp`
//! writes it (one SHA-1 CertID, a 16-octet nonce), matching it to the issuer, and building and
//! signing the response for each key type, with the encoding alone measured through a signer
//! that does not sign. x509-ocsp's own decoder reads the same request for comparison.
//!
//! `cargo bench -p certmint-pki --bench ocsp` runs it in full; under `cargo test` each loop runs
//! a few times, so that it keeps working.

// Tests and benches read the wall clock and draw randomness where they need to.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use certmint_pki::cert::{self, Signer};
use certmint_pki::inspect::Certificate;
use certmint_pki::ocsp::{
    self, CertId, CertStatus, HashAlgorithm, IssuerKeyHashes, Request, Responder, ResponseData,
    SingleResponse,
};
use certmint_pki::{
    CertSpec, DistinguishedName, Error, ExtendedKeyUsage, Issuer, KeyType, NameAttribute,
    PrivateKey, random,
};
use der::Decode;
use time::{Duration, OffsetDateTime};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Runs `f` `n` times; prints and returns the time per call.
fn measure(what: &str, n: u32, mut f: impl FnMut() -> Result<()>) -> Result<()> {
    for _ in 0..n.div_ceil(10) {
        f()?;
    }
    let start = Instant::now();
    for _ in 0..n {
        f()?;
    }
    let per_call = start.elapsed() / n;
    println!(
        "{what:<52} {:>9.2} µs  ({:>9.0}/s)",
        per_call.as_secs_f64() * 1e6,
        1.0 / per_call.as_secs_f64()
    );
    Ok(())
}

fn subject(cn: &str) -> Result<DistinguishedName> {
    let mut name = DistinguishedName::new();
    name.set(NameAttribute::Organization, "certmint bench")?;
    name.set(NameAttribute::CommonName, cn)?;
    Ok(name)
}

fn ca(key: &Arc<PrivateKey>) -> Result<cert::CaSigner> {
    let now = OffsetDateTime::now_utc();
    let spec = CertSpec {
        ca: Some(None),
        ..CertSpec::new(
            subject("OCSP benchmark CA")?,
            key.public_key_der(),
            random::serial()?,
            now - Duration::minutes(5),
            now + Duration::days(365),
        )
    };
    let der = cert::build(
        &spec,
        Issuer::SelfSigned(key.as_ref()),
        &certmint_pki::lint::Policy::default(),
    )?
    .der;
    Ok(cert::CaSigner::new(&der, key.clone())?)
}

/// Signs nothing: what [`ocsp::sign`] costs besides the signature.
struct NoSignature(Arc<PrivateKey>);

impl Signer for NoSignature {
    fn key_type(&self) -> KeyType {
        self.0.key_type()
    }

    fn public_key_der(&self) -> Vec<u8> {
        self.0.public_key_der()
    }

    fn sign(&self, _message: &[u8]) -> std::result::Result<Vec<u8>, Error> {
        Ok(vec![0x30; 72])
    }
}

fn main() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |n: u32| if full { n } else { 3 };

    let key = Arc::new(PrivateKey::generate(KeyType::EcP256)?);
    let ca = ca(&key)?;
    let hashes = IssuerKeyHashes::new(ca.info())?;
    let cert_id = CertId::for_certificate(&hashes, &random::serial()?, HashAlgorithm::Sha1)?;
    let der = ocsp::request(std::slice::from_ref(&cert_id), Some(&random::serial()?))?;

    println!("OCSP, one thread, a {}-octet request", der.len());
    measure("Request::parse", scale(1_000_000), || {
        black_box(Request::parse(black_box(&der))?);
        Ok(())
    })?;
    measure(
        "x509_ocsp::OcspRequest::from_der (comparison)",
        scale(1_000_000),
        || {
            black_box(x509_ocsp::OcspRequest::from_der(black_box(&der))?);
            Ok(())
        },
    )?;
    let request = Request::parse(&der)?;
    measure("IssuerKeyHashes::matches", scale(10_000_000), || {
        black_box(hashes.matches(black_box(&request.cert_ids()[0])));
        Ok(())
    })?;

    let now = OffsetDateTime::now_utc();
    let responses = [SingleResponse {
        cert_id: &request.cert_ids()[0],
        status: CertStatus::Good,
        this_update: now,
        next_update: now + Duration::days(1),
    }];
    let data = ResponseData {
        produced_at: now,
        responses: &responses,
        nonce: request.nonce(),
    };
    let sign = |what: &str, responder: &Responder, n: u32| {
        measure(what, scale(n), || {
            black_box(ocsp::sign(black_box(&data), responder)?);
            Ok(())
        })
    };
    sign(
        "sign, encoding only (no signature)",
        &Responder::new(Arc::new(NoSignature(key.clone())), None)?,
        200_000,
    )?;

    let delegated_key = Arc::new(PrivateKey::generate(KeyType::EcP256)?);
    let spec = CertSpec {
        extended_key_usage: vec![ExtendedKeyUsage::OcspSigning],
        ocsp_no_check: true,
        ..CertSpec::new(
            subject("OCSP benchmark responder")?,
            delegated_key.public_key_der(),
            random::serial()?,
            now - Duration::minutes(5),
            now + Duration::days(30),
        )
    };
    let responder_der = cert::build(
        &spec,
        Issuer::Ca(&ca),
        &certmint_pki::lint::Policy::default(),
    )?
    .der;
    Certificate::parse(&responder_der)?;
    sign(
        "sign, encoding only, with the responder certificate",
        &Responder::new(
            Arc::new(NoSignature(delegated_key.clone())),
            Some(responder_der.clone()),
        )?,
        200_000,
    )?;
    sign(
        "sign, P-256 delegated responder (certificate included)",
        &Responder::new(delegated_key, Some(responder_der))?,
        50_000,
    )?;

    for (key_type, n) in [
        (KeyType::EcP256, 50_000),
        (KeyType::EcP384, 10_000),
        (KeyType::Ed25519, 50_000),
        (KeyType::Rsa { bits: 2048 }, 2_000),
    ] {
        let key = Arc::new(PrivateKey::generate(key_type)?);
        sign(
            &format!("sign, {key_type} CA key"),
            &Responder::new(key, None)?,
            n,
        )?;
    }
    Ok(())
}
