//! CA keys in a PKCS#11 token against software keys of the same type, side by side in one
//! run: OCSP responses signed per second (each request carries a nonce, so each answer is
//! signed by the CA's key) and certificates signed and stored per second through
//! `Authority::issue`, for EC P-256 and RSA 2048, from a CA whose key is in a SoftHSM2 token
//! and from one whose key is sealed by certmint. SoftHSM is software too: the ratio is
//! certmint's overhead per PKCS#11 call (a pooled session, a blocking thread, SoftHSM's own
//! locking), not a hardware limit.
//!
//! `cargo bench -p certmint-server --bench hsm` runs it in full (`CERTMINT_BENCH_N` per
//! measurement, 5,000 by default); under `cargo test` it runs a few of each, so that it keeps
//! working. It needs `softhsm2-util` (Debian `softhsm2`, which `scripts/test` installs). A
//! PKCS#11 module reads its configuration when it is loaded, once per process, so the
//! benchmark makes a token directory and runs itself again with `SOFTHSM2_CONF` naming it.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authority::hsm::ProviderInput;
use authority::pki::csr::{self, Csr};
use authority::pki::ocsp::{self, CertId, HashAlgorithm, IssuerKeyHashes};
use authority::pki::{DistinguishedName, KeyType, NameAttribute, PrivateKey, SubjectAltName};
use authority::{
    Authority, CaId, CaKind, IssueRequest, KeyLocation, KeySource, NewCaInput, Pointers, Principal,
};
use certmint_server::{Secrets, Settings};
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PASSWORD: &str = "benchmark password 1234";
const TOKEN: &str = "bench";
const PIN: &str = "20261207";
/// Issuances in flight: enough to keep every session of the token and both cores busy.
const CONCURRENCY: usize = 64;
/// OCSP requests in flight: as many as the responder's signing threads and queue take by
/// default (one thread per core and 32 waiting); past them it answers `tryLater`.
const OCSP_CONCURRENCY: usize = 32;

fn main() -> Result<()> {
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        return in_a_token_directory();
    }
    let full = std::env::args().any(|a| a == "--bench");
    let n = match std::env::var("CERTMINT_BENCH_N") {
        Ok(v) => v.parse()?,
        Err(_) if full => 5_000,
        Err(_) => 16,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(n))
}

/// Makes a SoftHSM2 token directory with one token, and runs this benchmark again with
/// `SOFTHSM2_CONF` naming it.
fn in_a_token_directory() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    let made = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN])
        .args(["--so-pin", "12345678", "--pin", PIN])
        .output()
        .map_err(|e| format!("softhsm2-util (Debian softhsm2) is required: {e}"))?;
    if !made.status.success() {
        return Err(format!("softhsm2-util: {}", String::from_utf8_lossy(&made.stderr)).into());
    }
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("SOFTHSM2_CONF", &conf)
        .status()?;
    if !status.success() {
        return Err(format!("the benchmark ended with {status}").into());
    }
    Ok(())
}

fn name(cn: &str) -> Result<DistinguishedName> {
    let mut subject = DistinguishedName::new();
    subject.set(NameAttribute::CommonName, cn)?;
    Ok(subject)
}

/// A root CA that signs its OCSP responses itself (not through a delegated responder, whose
/// key is a software key), so that each response is a signature of the key measured.
async fn create_ca(
    authority: &Authority,
    cn: &str,
    key_type: KeyType,
    key_location: KeyLocation,
) -> Result<authority::CaRow> {
    let ca = authority
        .create_ca(
            &Principal::local("bench"),
            NewCaInput {
                name: Some(cn.into()),
                description: None,
                subject: name(cn)?,
                kind: CaKind::Root,
                parent_id: None,
                key_type,
                key_location,
                validity_days: 3650,
                path_len: None,
                name_constraints: None,
                make_default: false,
                require_template: false,
                pointers: Pointers::default(),
            },
        )
        .await?;
    let revocation = authority::RevocationSettings {
        ocsp_signer: "ca".into(),
        ..ca.revocation.clone()
    };
    Ok(authority
        .update_ca(
            &Principal::local("bench"),
            ca.id,
            authority::CaUpdate {
                revocation: Some(revocation),
                ..authority::CaUpdate::default()
            },
        )
        .await?)
}

/// Runs `job(i)` for every `i` below `n` with `concurrency` tasks; returns the wall time.
async fn drive<F, Fut>(n: usize, concurrency: usize, job: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), Box<dyn std::error::Error + Send + Sync>>(());
                    }
                    job(i).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

/// OCSP requests for `serial` under CA certificate `ca_der`, each with its own nonce.
fn ocsp_requests(ca_der: &[u8], serial: &str, n: usize) -> Result<Vec<Vec<u8>>> {
    let hashes = IssuerKeyHashes::new(&authority::pki::inspect::Certificate::parse(ca_der)?)?;
    let id = CertId::for_certificate(&hashes, &hex::decode(serial)?, HashAlgorithm::Sha1)?;
    (0..n)
        .map(|i| {
            let nonce = (i as u64).to_be_bytes();
            Ok(ocsp::request(std::slice::from_ref(&id), Some(&nonce))?)
        })
        .collect()
}

/// OCSP responses signed per second by CA `ca` (each request with a nonce).
async fn ocsp_signed(authority: Arc<Authority>, ca: &authority::CaRow, n: usize) -> Result<f64> {
    let issued = issue_one(&authority, ca.id, "ocsp.bench.example").await?;
    let requests = Arc::new(ocsp_requests(&ca.cert.der, &issued, n)?);
    let took = drive(n, OCSP_CONCURRENCY, move |i| {
        let (authority, requests) = (authority.clone(), requests.clone());
        async move {
            let answer = authority.ocsp_respond(&requests[i]).await;
            // A signed successful response: status 0 and a basic response inside.
            if answer.der.len() < 100 {
                return Err(format!("not a signed OCSP response: {:02x?}", answer.der).into());
            }
            Ok(())
        }
    })
    .await?;
    Ok(n as f64 / took.as_secs_f64())
}

async fn issue_one(authority: &Authority, ca: CaId, cn: &str) -> Result<String> {
    let key = PrivateKey::generate(KeyType::EcP256)?;
    let csr = Csr::from_der(&csr::make(&key, &name(cn)?, &[])?.der)?;
    let issued = authority
        .issue(&Principal::local("bench"), request(ca, csr, cn)?)
        .await?;
    Ok(issued.certificate.cert.serial)
}

fn request(ca: CaId, csr: Csr, cn: &str) -> Result<IssueRequest> {
    Ok(IssueRequest {
        ca_id: Some(ca),
        subject: csr.subject.clone(),
        sans: vec![SubjectAltName::parse(&format!("dns:{cn}"))?],
        key: KeySource::Csr(Box::new(csr)),
        template_id: None,
        validity_days: Some(90),
        key_usage: None,
        extended_key_usage: None,
        description: None,
        source: authority::CertificateSource::Api,
        renewed_from: None,
    })
}

/// Certificates signed and stored per second by CA `ca`, from `n` CSRs made beforehand.
async fn issued(authority: Arc<Authority>, ca: CaId, n: usize) -> Result<f64> {
    let key = PrivateKey::generate(KeyType::EcP256)?;
    let csrs: Vec<Vec<u8>> = (0..n)
        .map(|i| Ok(csr::make(&key, &name(&format!("host{i}.bench.example"))?, &[])?.der))
        .collect::<Result<_>>()?;
    let csrs = Arc::new(csrs);
    let took = drive(n, CONCURRENCY, move |i| {
        let (authority, csrs) = (authority.clone(), csrs.clone());
        async move {
            let csr = Csr::from_der(&csrs[i])?;
            let cn = format!("host{i}.bench.example");
            authority
                .issue(&Principal::local("bench"), request(ca, csr, &cn)?)
                .await?;
            Ok(())
        }
    })
    .await?;
    Ok(n as f64 / took.as_secs_f64())
}

async fn run(n: usize) -> Result<()> {
    let data = tempfile::tempdir()?;
    let settings = Settings {
        data_dir: data.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http_listen: String::new(),
        ..Settings::default()
    };
    let secrets = Secrets {
        master_key: None,
        admin_password: Some(PASSWORD.into()),
    };
    let running =
        certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?).await?;
    let authority = running.app.authority.clone();
    let sessions = 4;
    let provider = authority
        .create_hsm_provider(
            &Principal::local("bench"),
            ProviderInput {
                name: "bench".into(),
                provider_type: "softhsm2".into(),
                token_label: Some(TOKEN.into()),
                pin: Some(Zeroizing::new(PIN.into())),
                max_sessions: Some(sessions),
                ..ProviderInput::default()
            },
        )
        .await?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "certmint HSM benchmark: SoftHSM2 against software keys, {n} per measurement, \
         {OCSP_CONCURRENCY} OCSP requests or {CONCURRENCY} issuances in flight, {sessions} \
         token sessions, {cores} cores, SQLite"
    );
    println!(
        "{:<12} {:>22} {:>22} {:>7}",
        "key", "token", "software", "ratio"
    );
    // Every CA is made before the first OCSP request: the responder reads its CAs once a
    // while, not at each request.
    let mut pairs = Vec::new();
    for key_type in [KeyType::EcP256, KeyType::Rsa { bits: 2048 }] {
        let label = key_type.label();
        let in_token = create_ca(
            &authority,
            &format!("Token {label}"),
            key_type,
            KeyLocation::HsmProvider {
                provider_id: provider.id,
                label: None,
            },
        )
        .await?;
        let in_software = create_ca(
            &authority,
            &format!("Software {label}"),
            key_type,
            KeyLocation::Software,
        )
        .await?;
        pairs.push((label, in_token, in_software));
    }
    for (label, in_token, in_software) in &pairs {
        let token = ocsp_signed(authority.clone(), in_token, n).await?;
        let software = ocsp_signed(authority.clone(), in_software, n).await?;
        println!(
            "{:<12} {:>14.0} OCSP/s {:>14.0} OCSP/s {:>7.2}",
            label,
            token,
            software,
            token / software
        );
        let token = issued(authority.clone(), in_token.id, n).await?;
        let software = issued(authority.clone(), in_software.id, n).await?;
        println!(
            "{:<12} {:>14.0} cert/s {:>14.0} cert/s {:>7.2}",
            label,
            token,
            software,
            token / software
        );
    }
    Ok(())
}
