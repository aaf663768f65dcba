//! Encrypted private keys as the real `openssl` command line tool writes them open within the
//! key-derivation limits: its default PBES2 (PBKDF2, 2048 iterations) and `-scrypt`.

use std::path::Path;
use std::process::Command;

use certmint_pki::PrivateKey;

const PASSWORD: &str = "s3cret pass";

/// Runs `openssl` in `dir` and returns its standard output; panics (never skips) when it cannot
/// run or fails.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("these tests need the `openssl` command line tool, which cannot run: {e}")
        });
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The key derivation of an `ENCRYPTED PRIVATE KEY`: `pbkdf2 <iterations>` or
/// `scrypt <N> <r> <p>`.
fn kdf_of(pem: &[u8]) -> String {
    let (label, der) = pkcs8::Document::from_pem(std::str::from_utf8(pem).unwrap()).unwrap();
    assert_eq!(label, "ENCRYPTED PRIVATE KEY");
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_bytes()).unwrap();
    let params = info.encryption_algorithm.pbes2().unwrap();
    match (params.kdf.pbkdf2(), params.kdf.scrypt()) {
        (Some(p), _) => format!("pbkdf2 {}", p.iteration_count),
        (_, Some(s)) => format!(
            "scrypt {} {} {}",
            s.cost_parameter, s.block_size, s.parallelization
        ),
        _ => "other".into(),
    }
}

#[test]
fn openssl_encrypted_keys_open_with_pbkdf2_and_scrypt() {
    let dir = tempfile::tempdir().unwrap();
    let pass = format!("pass:{PASSWORD}");
    for algorithm in [
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ] {
        let mut genpkey = vec!["genpkey", "-out", "key.pem"];
        genpkey.extend_from_slice(algorithm);
        openssl(dir.path(), &genpkey);
        let plain = openssl(
            dir.path(),
            &["pkcs8", "-topk8", "-nocrypt", "-in", "key.pem"],
        );
        let expected = PrivateKey::parse(&plain, None).unwrap();
        for extra in [&[][..], &["-scrypt"][..]] {
            let mut args = vec!["pkcs8", "-topk8", "-in", "key.pem", "-passout", &pass];
            args.extend_from_slice(extra);
            let encrypted = openssl(dir.path(), &args);
            assert_eq!(
                kdf_of(&encrypted),
                extra.first().map_or("pbkdf2 2048", |_| "scrypt 16384 8 1")
            );
            let opened = PrivateKey::parse(&encrypted, Some(PASSWORD))
                .unwrap_or_else(|e| panic!("{algorithm:?} {extra:?}: {e}"));
            assert_eq!(opened.pkcs8_der(), expected.pkcs8_der(), "{extra:?}");
        }
    }
}
