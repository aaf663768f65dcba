//! CRL build + sign time and memory for 10,000, 100,000 and 1,000,000 revoked entries (ECDSA
//! P-256 CA, 16-byte serials, a reason code on every entry), beside `openssl ca -gencrl` on the
//! same lists in the same run.
//!
//! `cargo bench -p certmint-pki --bench crl` runs it in full; under `cargo test` it builds one
//! small list per side, so that it keeps working.

// Tests and benches read the wall clock and draw randomness where they need to.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration as Elapsed, Instant};

use certmint_pki::cert::{self, CaSigner};
use certmint_pki::crl::{self, CrlSpec, Revoked};
use certmint_pki::{
    CertSpec, DistinguishedName, Issuer, KeyType, NameAttribute, PrivateKey, pem, random,
};
use time::{Duration, OffsetDateTime};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The largest resident set this process has had so far, in bytes (Linux).
fn peak_rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(kib * 1024)
}

/// Forgets the peak so far, so that the next reading is the peak of what follows (Linux).
fn reset_peak() -> Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")?;
    Ok(())
}

fn ca(dir: &Path) -> Result<CaSigner> {
    let key = Arc::new(PrivateKey::generate(KeyType::EcP256)?);
    let mut subject = DistinguishedName::new();
    subject.set(NameAttribute::CommonName, "CRL benchmark CA")?;
    let now = OffsetDateTime::now_utc();
    let spec = CertSpec {
        ca: Some(None),
        ..CertSpec::new(
            subject,
            key.public_key_der(),
            random::serial()?,
            now - Duration::minutes(5),
            now + Duration::days(365),
        )
    };
    let built = cert::build(
        &spec,
        Issuer::SelfSigned(key.as_ref()),
        &certmint_pki::lint::Policy::default(),
    )?;
    std::fs::write(dir.join("ca.pem"), pem::encode("CERTIFICATE", &built.der))?;
    std::fs::write(dir.join("ca.key"), key.to_pkcs8_pem().as_bytes())?;
    Ok(CaSigner::new(&built.der, key)?)
}

fn entries(n: usize) -> Result<Vec<Revoked>> {
    let now = OffsetDateTime::now_utc();
    (0..n)
        .map(|i| {
            Ok(Revoked {
                serial: random::serial()?.to_vec(),
                revoked_at: now - Duration::seconds(i64::try_from(i)?),
                reason: Some(1),
                invalidity_date: None,
            })
        })
        .collect()
}

/// An `openssl ca` setup listing `revoked` as revoked (key compromise), in `dir`.
fn openssl_index(dir: &Path, revoked: &[Revoked]) -> Result<()> {
    let mut index = String::with_capacity(revoked.len() * 64);
    for r in revoked {
        index.push_str(&format!(
            "R\t491231235959Z\t260101000000Z,keyCompromise\t{}\tunknown\t/CN=x\n",
            hex::encode_upper(&r.serial)
        ));
    }
    std::fs::write(dir.join("index.txt"), index)?;
    std::fs::write(dir.join("crlnumber"), "01\n")?;
    std::fs::write(
        dir.join("openssl.cnf"),
        "[ca]\ndefault_ca = bench\n[bench]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         certificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\ndefault_crl_days = 7\n",
    )?;
    Ok(())
}

/// Runs `openssl ca -gencrl` under `/usr/bin/time -v`; returns its wall time and peak RSS.
fn openssl_gencrl(dir: &Path) -> Result<(Elapsed, u64)> {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args([
            "-v",
            "openssl",
            "ca",
            "-config",
            "openssl.cnf",
            "-gencrl",
            "-out",
            "openssl.crl",
        ])
        .current_dir(dir)
        .output()
        .map_err(|e| {
            format!("/usr/bin/time could not run openssl (scripts/test installs both): {e}")
        })?;
    let took = start.elapsed();
    let report = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("openssl ca -gencrl failed: {report}").into());
    }
    let kib = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no peak RSS from /usr/bin/time: {report}"))?;
    Ok((took, kib * 1024))
}

fn main() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[10_000, 100_000, 1_000_000]
    } else {
        &[100]
    };
    let dir = tempfile::tempdir()?;
    let ca = ca(dir.path())?;
    println!("CRL build + sign, ECDSA P-256 CA, 16-byte serials, keyCompromise on every entry");
    for &n in sizes {
        let revoked = entries(n)?;
        let now = OffsetDateTime::now_utc();
        let spec = CrlSpec {
            number: 1,
            this_update: now,
            next_update: now + Duration::days(7),
            delta_of: None,
            freshest_crl_urls: Vec::new(),
        };
        reset_peak()?;
        let before = peak_rss()?;
        let start = Instant::now();
        let der = crl::build(&spec, &revoked, &ca, &certmint_pki::lint::Policy::default())?;
        let took = start.elapsed();
        let total = peak_rss()?;
        let peak = total.saturating_sub(before);

        openssl_index(dir.path(), &revoked)?;
        let (openssl_took, openssl_peak) = openssl_gencrl(dir.path())?;
        let openssl_der = std::fs::metadata(dir.path().join("openssl.crl"))?.len();
        println!(
            "{n:>9} entries: certmint {:>6.3} s, {:>5.1} MB above the input ({:>5.1} MB peak RSS), \
             {:>5.1} MB DER | openssl ca -gencrl {:>6.3} s, {:>5.1} MB peak RSS, {:>5.1} MB PEM | \
             {:.1}x faster",
            took.as_secs_f64(),
            peak as f64 / 1e6,
            total as f64 / 1e6,
            der.len() as f64 / 1e6,
            openssl_took.as_secs_f64(),
            openssl_peak as f64 / 1e6,
            openssl_der as f64 / 1e6,
            openssl_took.as_secs_f64() / took.as_secs_f64(),
        );
    }
    Ok(())
}
