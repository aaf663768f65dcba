//! Import and export interoperability with the real `openssl` command line tool, both ways.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    std::fs::write(f.path("certs.p12"), &p12).unwrap();
    let pass = format!("pass:{PASSWORD}");
    let out = f.openssl(&["pkcs12", "-in", "certs.p12", "-nodes", "-passin", &pass]);
    assert_eq!(
        bundle::read(&out.stdout, None).unwrap().certificates,
        f.chain()
    );
    // Java takes each certificate as a trusted entry named by its friendlyName.
    let pem = text(&out.stdout);
    assert!(pem.contains("friendlyName: leaf"), "{pem}");
    assert!(pem.contains("friendlyName: CN=Test CA"), "{pem}");
    assert_eq!(
        pem.matches("2.16.840.1.113894.746875.1.1").count(),
        2,
        "{pem}"
    );
    assert_eq!(
        bundle::read(&p12, Some(PASSWORD)).unwrap().certificates,
        f.chain()
    );
}

/// `openssl pkcs12 -export` options, with what `openssl pkcs12 -info` then reports, so that each
/// case is known to exercise the algorithm it names.
const OPENSSL_EXPORTS: [(&[&str], &[&str]); 7] = [
    (
        &[],
        &[
            "MAC: sha256",
            "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC",
            "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC",
        ],
    ),
    (
        &["-legacy"],
        &[
            "MAC: sha1",
            "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC",
            "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC",
        ],
    ),
    (
        &["-legacy", "-certpbe", "PBE-SHA1-RC2-128"],
        &["PKCS7 Encrypted data: pbeWithSHA1And128BitRC2-CBC"],
    ),
    (&["-macalg", "sha384"], &["MAC: sha384"]),
    (&["-macalg", "sha512"], &["MAC: sha512"]),
    (
        &[
            "-macalg",
            "sha1",
            "-keypbe",
            "AES-128-CBC",
            "-certpbe",
            "AES-192-CBC",
        ],
        &[
            "MAC: sha1",
            "PKCS7 Encrypted data: PBES2, PBKDF2, AES-192-CBC",
            "Shrouded Keybag: PBES2, PBKDF2, AES-128-CBC",
        ],
    ),
    (
        &["-nomac"],
        &[
            "MAC is absent",
            "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC",
        ],
    ),
];

impl Fixture {
    /// Runs `openssl pkcs12 -export` with `args` and the password, into `out`, checks that
    /// `-info` reports each of `reported`, and returns the file.
    fn export_pkcs12(&self, args: &[&str], out: &str, reported: &[&str]) -> Vec<u8> {
        let pass = format!("pass:{PASSWORD}");
        let mut export = vec!["pkcs12", "-export", "-passout", &pass, "-out", out];
        export.extend_from_slice(args);
        self.openssl(&export);
        let info = self.openssl(&[
            "pkcs12", "-legacy", "-in", out, "-info", "-noout", "-passin", &pass,
        ]);
        let info = text(&info.stderr) + &text(&info.stdout);
        for expected in reported {
            assert!(
                info.contains(expected),
                "{args:?}: {expected:?} not in {info}"
            );
        }
        std::fs::read(self.path(out)).unwrap()
    }

    /// An intermediate CA under the fixture's CA and a leaf it issued: `sub.key`, `sub.pem` and
    /// `cas.pem` (intermediate, then CA). Returns leaf, intermediate and CA, DER, and the leaf's
    /// public key.
    fn two_level_chain(&self) -> ([Vec<u8>; 3], Vec<u8>) {
        std::fs::write(
            self.path("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        let issue = |name: &str, issuer: &str, extra: &[&str]| {
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let mut req = vec!["req", "-nodes", "-subj"];
            let subject = format!("/CN={name}");
            req.push(&subject);
            req.extend_from_slice(self.kind.newkey());
            req.extend_from_slice(&["-keyout", &key, "-out", &csr]);
            self.openssl(&req);
            let (ca_pem, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
            let mut sign = vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                &pem,
            ];
            sign.extend_from_slice(extra);
            self.openssl(&sign);
            self.openssl(&["x509", "-in", &pem, "-outform", "DER"])
                .stdout
        };
        let intermediate = issue("int", "ca", &["-extfile", "ca.ext"]);
        let leaf = issue("sub", "int", &[]);
        let cas = [
            std::fs::read(self.path("int.pem")).unwrap(),
            std::fs::read(self.path("ca.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(self.path("cas.pem"), cas).unwrap();
        let public = self
            .openssl(&["pkey", "-in", "sub.key", "-pubout", "-outform", "DER"])
            .stdout;
        ([leaf, intermediate, self.ca_der.clone()], public)
    }
}

#[test]
fn openssl_pkcs12_files_read_back() {
    for f in fixtures() {
        for (i, (options, reported)) in OPENSSL_EXPORTS.iter().enumerate() {
            let mut args = vec![
                "-inkey",
                "leaf.key",
                "-in",
                "leaf.pem",
                "-certfile",
                "ca.pem",
                "-name",
                "exported",
            ];
            args.extend_from_slice(options);
            let p12 = f.export_pkcs12(&args, &format!("export{i}.p12"), reported);
            f.assert_reads(&p12, Some(PASSWORD), true);

            let err = bundle::read(&p12, Some("not the password")).unwrap_err();
            assert!(
                err.to_string().contains("wrong PKCS#12 password"),
                "{options:?}: {err}"
            );
            let err = bundle::read(&p12, None).unwrap_err();
            assert!(
                err.to_string()
                    .contains("this PKCS#12 file needs a password"),
                "{options:?}: {err}"
            );
        }
    }
}

#[test]
fn openssl_pkcs12_with_a_two_certificate_chain_reads_back() {
    for f in fixtures() {
        let (certs, leaf_public_der) = f.two_level_chain();
        for (name, legacy) in [("chain.p12", &[][..]), ("chain-legacy.p12", &["-legacy"])] {
            let mut args = vec![
                "-inkey",
                "sub.key",
                "-in",
                "sub.pem",
                "-certfile",
                "cas.pem",
            ];
            args.extend_from_slice(legacy);
            let p12 = f.export_pkcs12(&args, name, &[]);
            let bundle = bundle::read(&p12, Some(PASSWORD)).unwrap();
            assert_eq!(bundle.certificates, certs, "{:?} {legacy:?}", f.kind);
            assert_eq!(bundle.private_keys.len(), 1);
            assert_eq!(bundle.private_keys[0].public_key_der(), leaf_public_der);
        }
    }
}

#[test]
fn openssl_certificate_only_pkcs12_reads_every_certificate() {
    let f = Fixture::new(Kind::Ec);
    let (certs, _) = f.two_level_chain();
    let all = [
        std::fs::read(f.path("sub.pem")).unwrap(),
        std::fs::read(f.path("cas.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(f.path("all.pem"), all).unwrap();
    for (options, reported) in [
        (&[][..], "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC"),
        (
            &["-legacy"],
            "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC",
        ),
    ] {
        let mut args = vec!["-nokeys", "-in", "all.pem"];
        args.extend_from_slice(options);
        let p12 = f.export_pkcs12(&args, "certs.p12", &[reported]);
        let bundle = bundle::read(&p12, Some(PASSWORD)).unwrap();
        assert_eq!(bundle.certificates, certs, "{options:?}");
        assert!(bundle.private_keys.is_empty());
    }
}

#[test]
fn openssl_unprotected_pkcs12_reads_without_a_password() {
    let f = Fixture::new(Kind::Rsa);
    let args = [
        "-inkey",
        "leaf.key",
        "-in",
        "leaf.pem",
        "-certfile",
        "ca.pem",
        "-keypbe",
        "NONE",
        "-certpbe",
        "NONE",
        "-nomac",
    ];
    let p12 = f.export_pkcs12(&args, "open.p12", &["MAC is absent", "Key bag"]);
    f.assert_reads(&p12, None, true);
    f.assert_reads(&p12, Some("any password"), true);
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

/// The PKCS#12 KDF takes the password as UTF-16 and PBES2 as UTF-8: both must agree with
/// OpenSSL for a password beyond ASCII, both ways.
#[test]
fn non_ascii_passwords_agree_with_openssl() {
    let f = Fixture::new(Kind::Ec);
    let password = "pässwörd ✓ 😀";
    let pass = format!("pass:{password}");
    for (cipher, legacy) in [
        (Pkcs12Cipher::Aes256, &[][..]),
        (Pkcs12Cipher::Legacy3Des, &["-legacy"]),
    ] {
        let ours = bundle::pkcs12(
            Some(f.leaf_key().pkcs8_der()),
            &f.leaf_der,
            &[&f.ca_der],
            password,
            "leaf",
            cipher,
        )
        .unwrap();
        std::fs::write(f.path("ours.p12"), ours).unwrap();
        let out = f.openssl(&["pkcs12", "-in", "ours.p12", "-nodes", "-passin", &pass]);
        f.assert_reads(&out.stdout, None, true);

        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "leaf.key",
            "-in",
            "leaf.pem",
            "-certfile",
            "ca.pem",
            "-passout",
            &pass,
            "-out",
            "theirs.p12",
        ];
        args.extend_from_slice(legacy);
        f.openssl(&args);
        let theirs = std::fs::read(f.path("theirs.p12")).unwrap();
        f.assert_reads(&theirs, Some(password), true);
    }
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

/// Encrypted private keys as openssl writes them open within the key-derivation limits: its
/// default PBES2 (PBKDF2, 2048 iterations) and `-scrypt`.
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
        )
        .stdout;
        let expected = PrivateKey::parse(&plain, None).unwrap();
        for extra in [&[][..], &["-scrypt"][..]] {
            let mut args = vec!["pkcs8", "-topk8", "-in", "key.pem", "-passout", &pass];
            args.extend_from_slice(extra);
            let encrypted = openssl(dir.path(), &args).stdout;
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
