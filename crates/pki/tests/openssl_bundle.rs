//! Import and export interoperability with the real `openssl` command line tool, both ways.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use certmint_pki::PrivateKey;
use certmint_pki::bundle::{self, Pkcs12Cipher};

const PASSWORD: &str = "s3cret pass";

/// Runs `openssl` in `dir` and returns its output; panics (never skips) when it cannot run or
/// fails.
fn openssl(dir: &Path, args: &[&str]) -> Output {
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
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ec,
    Rsa,
}

impl Kind {
    fn newkey(self) -> &'static [&'static str] {
        match self {
            Kind::Ec => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Kind::Rsa => &["-newkey", "rsa:2048"],
        }
    }
}

/// A CA and a leaf it issued, made by openssl in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
    kind: Kind,
    leaf_der: Vec<u8>,
    ca_der: Vec<u8>,
    /// The leaf's public key as openssl writes it (DER SubjectPublicKeyInfo).
    leaf_public_der: Vec<u8>,
}

impl Fixture {
    fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let req = |extra: &[&str]| {
            let mut args = vec!["req", "-nodes"];
            args.extend_from_slice(kind.newkey());
            args.extend_from_slice(extra);
            openssl(d, &args);
        };
        req(&[
            "-x509",
            "-subj",
            "/CN=Test CA",
            "-days",
            "30",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        req(&[
            "-subj", "/CN=leaf", "-keyout", "leaf.key", "-out", "leaf.csr",
        ]);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                "leaf.pem",
            ],
        );
        let der = |pem: &str| openssl(d, &["x509", "-in", pem, "-outform", "DER"]).stdout;
        let leaf_public_der = openssl(
            d,
            &["pkey", "-in", "leaf.key", "-pubout", "-outform", "DER"],
        )
        .stdout;
        let chain = [
            std::fs::read(d.join("leaf.pem")).unwrap(),
            std::fs::read(d.join("ca.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(d.join("chain.pem"), chain).unwrap();
        Self {
            kind,
            leaf_der: der("leaf.pem"),
            ca_der: der("ca.pem"),
            leaf_public_der,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) -> Output {
        openssl(self.dir.path(), args)
    }

    fn leaf_key(&self) -> PrivateKey {
        PrivateKey::parse(&std::fs::read(self.path("leaf.key")).unwrap(), None).unwrap()
    }

    fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.leaf_der.clone(), self.ca_der.clone()]
    }

    /// Reads a file openssl wrote, checking that it holds the leaf and CA certificates in order
    /// and, when `with_key`, the leaf's private key.
    fn assert_reads(&self, input: &[u8], password: Option<&str>, with_key: bool) {
        let bundle = bundle::read(input, password)
            .unwrap_or_else(|e| panic!("{:?}: {e}\n{}", self.kind, text(input)));
        assert_eq!(bundle.certificates, self.chain(), "{:?}", self.kind);
        if with_key {
            assert_eq!(bundle.private_keys.len(), 1);
            assert_eq!(
                bundle.private_keys[0].public_key_der(),
                self.leaf_public_der
            );
        }
    }
}

fn fixtures() -> [Fixture; 2] {
    [Fixture::new(Kind::Ec), Fixture::new(Kind::Rsa)]
}

#[test]
fn our_pkcs12_files_open_in_openssl() {
    for f in fixtures() {
        let key = f.leaf_key();
        for (cipher, mac, encryption) in [
            (
                Pkcs12Cipher::Aes256,
                "MAC: sha256",
                "PBES2, PBKDF2, AES-256-CBC",
            ),
            (
                Pkcs12Cipher::Legacy3Des,
                "MAC: sha1",
                "pbeWithSHA1And3-KeyTripleDES-CBC",
            ),
        ] {
            let p12 = bundle::pkcs12(
                Some(key.pkcs8_der()),
                &f.leaf_der,
                &[&f.ca_der],
                PASSWORD,
                "my leaf",
                cipher,
            )
            .unwrap();
            std::fs::write(f.path("ours.p12"), p12).unwrap();
            let pass = format!("pass:{PASSWORD}");
            let out = f.openssl(&[
                "pkcs12", "-in", "ours.p12", "-info", "-nodes", "-passin", &pass,
            ]);
            // openssl prints the structure on stderr and the PEM (with bag attributes) on stdout.
            let info = text(&out.stderr);
            let pem = text(&out.stdout);
            assert!(info.contains(encryption), "{cipher:?}: {info}");
            assert!(
                info.contains(&format!("Shrouded Keybag: {encryption}")),
                "{cipher:?}: {info}"
            );
            assert!(pem.contains("friendlyName: my leaf"), "{pem}");
            assert!(pem.contains("localKeyID:"), "{pem}");
            f.assert_reads(&out.stdout, None, true);

            let out = f.openssl(&[
                "pkcs12", "-in", "ours.p12", "-info", "-passin", &pass, "-nokeys",
            ]);
            let info = text(&out.stderr);
            assert!(info.contains(mac), "{cipher:?}: {info}");
            assert!(
                info.contains(&format!("PKCS7 Encrypted data: {encryption}")),
                "{cipher:?}: {info}"
            );
        }
    }
}

#[test]
fn our_certificate_only_pkcs12_opens_in_openssl() {
    let f = Fixture::new(Kind::Ec);
    let p12 = bundle::pkcs12(
        None,
        &f.leaf_der,
        &[&f.ca_der],
        PASSWORD,
        "leaf",
        Pkcs12Cipher::Aes256,
    )
    .unwrap();
    std::fs::write(f.path("certs.p12"), p12).unwrap();
    let pass = format!("pass:{PASSWORD}");
    let out = f.openssl(&["pkcs12", "-in", "certs.p12", "-nodes", "-passin", &pass]);
    let mut certs = bundle::read(&out.stdout, None).unwrap().certificates;
    certs.sort();
    let mut expected = f.chain();
    expected.sort();
    assert_eq!(certs, expected);
}

#[test]
fn openssl_pkcs12_files_read_back() {
    for f in fixtures() {
        let pass = format!("pass:{PASSWORD}");
        for (name, legacy) in [("modern.p12", false), ("legacy.p12", true)] {
            let mut args = vec![
                "pkcs12",
                "-export",
                "-inkey",
                "leaf.key",
                "-in",
                "leaf.pem",
                "-certfile",
                "ca.pem",
                "-name",
                "exported",
                "-passout",
                &pass,
                "-out",
                name,
            ];
            if legacy {
                args.push("-legacy");
            }
            f.openssl(&args);
            let p12 = std::fs::read(f.path(name)).unwrap();
            f.assert_reads(&p12, Some(PASSWORD), true);

            let err = bundle::read(&p12, Some("not the password")).unwrap_err();
            assert!(err.to_string().contains("wrong PKCS#12 password"), "{err}");
            let err = bundle::read(&p12, None).unwrap_err();
            assert!(
                err.to_string().contains("a PKCS#12 file needs a password"),
                "{err}"
            );
        }
    }
}

#[test]
fn pkcs7_both_ways() {
    let f = Fixture::new(Kind::Rsa);
    let p7 = bundle::pkcs7_certs_only(&[&f.leaf_der, &f.ca_der]).unwrap();
    std::fs::write(f.path("ours.p7b"), &p7).unwrap();
    let out = f.openssl(&["pkcs7", "-inform", "DER", "-in", "ours.p7b", "-print_certs"]);
    let printed = text(&out.stdout);
    assert!(printed.contains("subject=CN = leaf"), "{printed}");
    assert!(printed.contains("subject=CN = Test CA"), "{printed}");

    for form in ["DER", "PEM"] {
        let out = f.openssl(&[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "chain.pem",
            "-outform",
            form,
        ]);
        f.assert_reads(&out.stdout, None, false);
    }
}

#[test]
fn pem_der_csr_and_key_forms_read() {
    for f in fixtures() {
        let read_file = |name: &str| std::fs::read(f.path(name)).unwrap();

        // `openssl x509 -text` puts a dump before each block.
        let described: Vec<u8> = ["leaf.pem", "ca.pem"]
            .iter()
            .flat_map(|pem| f.openssl(&["x509", "-in", pem, "-text"]).stdout)
            .collect();
        f.assert_reads(&described, None, false);

        let bundle = bundle::read(&f.leaf_der, None).unwrap();
        assert_eq!(bundle.certificates, std::slice::from_ref(&f.leaf_der));

        let trusted = f.openssl(&[
            "x509",
            "-in",
            "leaf.pem",
            "-trustout",
            "-addtrust",
            "serverAuth",
        ]);
        assert!(text(&trusted.stdout).contains("BEGIN TRUSTED CERTIFICATE"));
        let bundle = bundle::read(&trusted.stdout, None).unwrap();
        assert_eq!(bundle.certificates, std::slice::from_ref(&f.leaf_der));

        let csr_der = f
            .openssl(&["req", "-in", "leaf.csr", "-outform", "DER"])
            .stdout;
        for (csr, label) in [
            (read_file("leaf.csr"), "BEGIN CERTIFICATE REQUEST"),
            (
                f.openssl(&["req", "-in", "leaf.csr", "-newhdr"]).stdout,
                "BEGIN NEW CERTIFICATE REQUEST",
            ),
            (csr_der.clone(), ""),
        ] {
            assert!(text(&csr).contains(label));
            let bundle = bundle::read(&csr, None).unwrap();
            assert_eq!(bundle.csrs, std::slice::from_ref(&csr_der));
            assert!(bundle.certificates.is_empty());
        }

        let traditional = f
            .openssl(&["pkey", "-in", "leaf.key", "-traditional"])
            .stdout;
        let label = match f.kind {
            Kind::Ec => "BEGIN EC PRIVATE KEY",
            Kind::Rsa => "BEGIN RSA PRIVATE KEY",
        };
        assert!(text(&traditional).contains(label), "{}", text(&traditional));
        let pass = format!("pass:{PASSWORD}");
        let encrypted = f
            .openssl(&["pkcs8", "-topk8", "-in", "leaf.key", "-passout", &pass])
            .stdout;
        assert!(text(&encrypted).contains("BEGIN ENCRYPTED PRIVATE KEY"));
        for (key, password) in [
            (read_file("leaf.key"), None),
            (traditional, None),
            (encrypted.clone(), Some(PASSWORD)),
        ] {
            let bundle = bundle::read(&key, password).unwrap();
            assert_eq!(bundle.private_keys.len(), 1);
            assert_eq!(bundle.private_keys[0].public_key_der(), f.leaf_public_der);
        }
        let err = bundle::read(&encrypted, None).unwrap_err();
        assert!(err.to_string().contains("passphrase is required"), "{err}");

        // A certificate and its key in one file, as many servers keep them.
        let both = [read_file("chain.pem"), read_file("leaf.key")].concat();
        f.assert_reads(&both, None, true);
    }
}

#[test]
fn bad_input_gets_named_errors() {
    let f = Fixture::new(Kind::Ec);
    let chain = std::fs::read(f.path("chain.pem")).unwrap();
    let cases: [(Vec<u8>, &str); 5] = [
        (
            b"\x01\x02garbage bytes".to_vec(),
            "not a certificate, PKCS#7, PKCS#12 or CSR",
        ),
        (
            f.leaf_der[..f.leaf_der.len() - 10].to_vec(),
            "truncated DER",
        ),
        (
            chain[..chain.len() - 40].to_vec(),
            "without a matching END line",
        ),
        (
            [f.leaf_der.as_slice(), b"junk", &f.ca_der].concat(),
            "unexpected data after the DER object",
        ),
        (
            b"just some text\nwithout blocks\n".to_vec(),
            "not a certificate, PKCS#7, PKCS#12 or CSR",
        ),
    ];
    for (input, expected) in cases {
        let err = bundle::read(&input, None).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?}, got {err:?}");
    }
}
