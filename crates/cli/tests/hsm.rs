//! CA keys in a PKCS#11 token: SoftHSM2 (Debian `softhsm2`) in a token directory of the test's
//! own, looked at with OpenSC's `pkcs11-tool`, certificates issued through REST and through
//! ACME (lego, http-01), and everything the token signs checked with openssl. The server runs as its own process, because a PKCS#11 module is loaded once per
//! process and reads its configuration (`SOFTHSM2_CONF`) then.
//!
//! Runs on a fresh PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server, else
//! on SQLite.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{EPHEMERAL, Http, Server, TestResult, api_key, call, openssl, serve, text};
use reqwest::Method;
use serde_json::{Value, json};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "certmint";
const PIN: &str = "20261207";
const ACME_NAME: &str = "acme.token.example.test";

/// A SoftHSM2 configuration with a token directory of its own and one token in it.
struct SoftHsm {
    conf: PathBuf,
    tokens: PathBuf,
}

impl SoftHsm {
    fn new(root: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let tokens = root.join("tokens");
        std::fs::create_dir_all(&tokens)?;
        let conf = root.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )?;
        let hsm = Self { conf, tokens };
        let made = hsm.tool(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--so-pin",
                "12345678",
                "--pin",
                PIN,
            ],
        )?;
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        Ok(hsm)
    }

    /// Runs a tool with this configuration; the tests need it, so its absence is a failure.
    fn tool(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        Command::new(program)
            .env("SOFTHSM2_CONF", &self.conf)
            .args(args)
            .output()
            .map_err(|e| {
                format!("{program} (Debian softhsm2 and opensc) is required for this test: {e}")
            })
    }

    /// `pkcs11-tool --list-objects` of the private keys: one block of lines per key.
    fn private_keys(&self) -> Result<Vec<String>, String> {
        let listed = self.tool(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
                "--type",
                "privkey",
            ],
        )?;
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let out = String::from_utf8_lossy(&listed.stdout).into_owned();
        Ok(out
            .split("Private Key Object")
            .skip(1)
            .map(str::to_owned)
            .collect())
    }

    /// The one token's directory under the token directory.
    fn token_dir(&self) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let mut dirs = std::fs::read_dir(&self.tokens)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir());
        Ok(dirs.next().ok_or("no token directory")?)
    }
}

/// The `Access:` flags of a `pkcs11-tool` key block, split as the tool writes them.
fn access(block: &str) -> Vec<String> {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("Access:"))
        .map(|flags| flags.split(", ").map(|f| f.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn created(status: u16, body: &Value) -> Result<i64, Box<dyn std::error::Error>> {
    assert_eq!(status, 201, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("an id")?)
}

/// The PEM blocks of a chain, leaf first.
fn blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim().to_owned())
        .collect()
}

fn stdout(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn cas_in_a_token_sign_everything_and_outlive_the_token_going_away() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let hsm = SoftHsm::new(root.path())?;
    let data = root.path().join("data");
    let database = http.database_args();
    // ACME's http-01 challenges for one name are answered by lego on a port of its own.
    let acme_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = root.path().join("certmint.toml");
    std::fs::write(
        &config,
        format!(
            "[acme.validation]\nallow_private_addresses = true\nhttp_port = {acme_port}\n\
             [acme.validation.hosts]\n\"{ACME_NAME}\" = \"127.0.0.1\"\n"
        ),
    )?;
    let server = Server::start(
        serve(&data, EPHEMERAL)
            .arg("--config")
            .arg(&config)
            .args(&database)
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("CERTMINT_HSM_PIN", PIN),
        &data,
    )?;
    let password = server.admin_password().ok_or("the admin password")?;
    let key = api_key(&http, &server, &password, &["*"])?;
    let api = |method: Method, path: &str, body: Option<Value>| {
        call(&http, &server, &key, method, path, body)
    };

    // A provider loads a module into the server: a narrow key cannot make one, no module
    // outside the allowed paths is taken, and a PIN is read only from CERTMINT_HSM_….
    let reader = api_key(&http, &server, &password, &["read:cas"])?;
    let provider = json!({"name": "soft", "type": "softhsm2", "token_label": TOKEN, "pin": PIN,
                          "allow_key_import": true});
    let (status, _) = call(
        &http,
        &server,
        &reader,
        Method::POST,
        "/api/v2/hsm/providers",
        Some(provider.clone()),
    )?;
    assert_eq!(status, 403);
    let (status, body) = api(
        Method::POST,
        "/api/v2/hsm/providers",
        Some(
            json!({"name": "evil", "type": "pkcs11", "module_path": "/tmp/libevil.so",
                    "token_label": TOKEN, "pin": PIN}),
        ),
    )?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("not one certmint may load"),
        "{body}"
    );
    let (status, body) = api(
        Method::POST,
        "/api/v2/hsm/providers",
        Some(
            json!({"name": "snoop", "type": "softhsm2", "token_label": TOKEN,
                    "pin_env": "CERTMINT_MASTER_KEY"}),
        ),
    )?;
    assert_eq!(status, 422, "{body}");

    let (status, body) = api(Method::POST, "/api/v2/hsm/providers", Some(provider))?;
    let provider_id = created(status, &body)?;
    assert_eq!(body["data"]["pin_source"], "sealed");
    let (status, body) = api(
        Method::GET,
        &format!("/api/v2/hsm/providers/{provider_id}"),
        None,
    )?;
    assert_eq!(status, 200);
    assert!(
        !body.to_string().contains(PIN),
        "the PIN is never shown: {body}"
    );
    // A second provider on the same token, its PIN from the environment, takes no imports.
    let (status, body) = api(
        Method::POST,
        "/api/v2/hsm/providers",
        Some(
            json!({"name": "soft-env", "type": "softhsm2", "token_label": TOKEN,
                    "pin_env": "CERTMINT_HSM_PIN"}),
        ),
    )?;
    let env_provider = created(status, &body)?;
    for id in [provider_id, env_provider] {
        let (status, body) = api(
            Method::POST,
            &format!("/api/v2/hsm/providers/{id}/test"),
            None,
        )?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["label"], TOKEN);
        let types = body["data"]["key_types"].to_string();
        assert!(
            types.contains("EC P-384") && types.contains("RSA 2048"),
            "{types}"
        );
    }

    // A root and an intermediate with their keys made in the token, and a software root.
    let (status, body) = api(
        Method::POST,
        "/api/v2/cas",
        Some(
            json!({"common_name": "Token Root", "key_algorithm": "EC", "curve": "P-384",
                    "hsm_provider_id": provider_id, "require_template": false}),
        ),
    )?;
    let hsm_root = created(status, &body)?;
    let (status, body) = api(
        Method::POST,
        "/api/v2/cas",
        Some(
            json!({"common_name": "Token Issuing", "ca_type": "intermediate",
                    "parent_id": hsm_root, "key_algorithm": "RSA", "key_size": 2048,
                    "hsm_provider_id": env_provider, "hsm_key_label": "issuing",
                    "require_template": false, "is_default": true}),
        ),
    )?;
    let issuing = created(status, &body)?;
    // It signs its OCSP responses itself, rather than through a delegated responder (whose
    // certificate the token signs, but whose key is a software key).
    let (status, body) = api(
        Method::PATCH,
        &format!("/api/v2/cas/{issuing}"),
        Some(json!({"ocsp_signer": "ca"})),
    )?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(
        Method::POST,
        "/api/v2/cas",
        Some(json!({"common_name": "Software Root", "require_template": false})),
    )?;
    let software = created(status, &body)?;

    // Their keys are the token's: sensitive, never extractable, made there; the database
    // holds no private key for them.
    let (status, body) = api(Method::GET, "/api/v2/hsm/keys", None)?;
    assert_eq!(status, 200);
    let keys = body["data"].as_array().ok_or("keys")?.clone();
    assert_eq!(keys.len(), 2, "{body}");
    for k in &keys {
        let (status, one) = api(Method::GET, &format!("/api/v2/hsm/keys/{}", k["id"]), None)?;
        assert_eq!(status, 200);
        let p = &one["data"]["protection"];
        assert_eq!(p["sensitive"], true, "{one}");
        assert_eq!(p["extractable"], false, "{one}");
        assert_eq!(p["never_extractable"], true, "{one}");
        assert_eq!(p["local"], true, "{one}");
    }
    let blocks_before = hsm.private_keys()?;
    assert_eq!(blocks_before.len(), 2, "{blocks_before:?}");
    for block in &blocks_before {
        let flags = access(block);
        assert!(flags.contains(&"sensitive".to_owned()), "{block}");
        assert!(flags.contains(&"never extractable".to_owned()), "{block}");
        assert!(!flags.contains(&"extractable".to_owned()), "{block}");
    }
    let store = http.rt.block_on(async {
        let url = match database.get(1) {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data.join("certmint.db").display()),
        };
        store::Store::connect(&url, 1).await
    })?;
    for k in &keys {
        let id = store::KeyId(k["id"].as_i64().ok_or("key id")?);
        let row = http.rt.block_on(store.key(id))?.ok_or("the key row")?;
        assert_eq!(
            row.sealed, None,
            "no private key of a token CA in the database"
        );
        assert_eq!(row.backend, "pkcs11");
    }
    // A key a CA uses cannot be destroyed, nor its provider deleted.
    let (status, _) = api(
        Method::DELETE,
        &format!("/api/v2/hsm/keys/{}", keys[0]["id"]),
        None,
    )?;
    assert_eq!(status, 409);
    let (status, _) = api(
        Method::DELETE,
        &format!("/api/v2/hsm/providers/{provider_id}"),
        None,
    )?;
    assert_eq!(status, 409);

    // A certificate from the token's intermediate verifies up to the token's root.
    let issue = |ca: i64, name: &str| {
        api(
            Method::POST,
            "/api/v2/certificates",
            Some(json!({"common_name": name, "san": [format!("dns:{name}")], "ca_id": ca})),
        )
    };
    let (status, body) = issue(issuing, "www.token.example.test")?;
    let leaf_id = created(status, &body)?;
    let dir = root.path();
    let chain = blocks(&text(
        &http,
        &server,
        &key,
        &format!("/api/v2/certificates/{leaf_id}/export?format=chain"),
    )?);
    let root_pem = text(
        &http,
        &server,
        &key,
        &format!("/api/v2/cas/{hsm_root}/export"),
    )?;
    std::fs::write(dir.join("leaf.pem"), &chain[0])?;
    std::fs::write(dir.join("issuing.pem"), &chain[1])?;
    std::fs::write(dir.join("root.pem"), &root_pem)?;
    std::fs::write(dir.join("cas.pem"), format!("{root_pem}\n{}\n", chain[1]))?;
    let path = |name: &str| dir.join(name).display().to_string();
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &path("root.pem"),
        "-untrusted",
        &path("issuing.pem"),
        &path("leaf.pem"),
    ])?;
    assert!(verified.status.success(), "{}", stdout(&verified));

    // A CRL signed by the token verifies under the intermediate.
    let (status, body) = api(
        Method::POST,
        &format!("/api/v2/crl/{issuing}/regenerate"),
        None,
    )?;
    assert!(status == 200 || status == 201, "{body}");
    let (_, ca) = api(Method::GET, &format!("/api/v2/cas/{issuing}"), None)?;
    let refid = ca["data"]["refid"].as_str().ok_or("refid")?.to_owned();
    let crl = text(&http, &server, &key, &format!("/crl/{refid}.pem"))?;
    std::fs::write(dir.join("crl.pem"), crl)?;
    let crl_checked = openssl(&[
        "crl",
        "-in",
        &path("crl.pem"),
        "-CAfile",
        &path("cas.pem"),
        "-noout",
    ])?;
    assert!(
        stdout(&crl_checked).contains("verify OK"),
        "{}",
        stdout(&crl_checked)
    );

    // OCSP answers, signed through the token, verify.
    let ocsp = || -> Result<String, Box<dyn std::error::Error>> {
        let http_addr = server.http.ok_or("the plain-HTTP listener")?;
        let asked = openssl(&[
            "ocsp",
            "-issuer",
            &path("issuing.pem"),
            "-cert",
            &path("leaf.pem"),
            "-url",
            &format!("http://{http_addr}/ocsp"),
            "-CAfile",
            &path("cas.pem"),
            "-no_nonce",
            "-resp_text",
        ])?;
        Ok(stdout(&asked))
    };
    let said = ocsp()?;
    assert!(said.contains("Response verify OK"), "{said}");
    assert!(said.contains("leaf.pem: good"), "{said}");
    // Signed by the intermediate's own key (the one in the token): the responder id is the
    // hash of that key, as a request's CertID carries it.
    let made = openssl(&[
        "ocsp",
        "-issuer",
        &path("issuing.pem"),
        "-cert",
        &path("leaf.pem"),
        "-no_nonce",
        "-reqout",
        &path("request.der"),
    ])?;
    assert!(made.status.success(), "{}", stdout(&made));
    let request = stdout(&openssl(&[
        "ocsp",
        "-reqin",
        &path("request.der"),
        "-req_text",
    ])?);
    let key_hash = request
        .lines()
        .find_map(|l| l.trim().strip_prefix("Issuer Key Hash: "))
        .ok_or("no issuer key hash")?
        .trim()
        .to_owned();
    assert!(
        said.contains(&format!("Responder Id: {key_hash}")),
        "signed by the intermediate's key in the token ({key_hash}): {said}"
    );

    // ACME: lego (http-01) gets a certificate from the default CA, the token's intermediate.
    let mut trust = std::fs::read_to_string(data.join("tls/server.crt"))?;
    let (_, cas) = api(Method::GET, "/api/v2/cas", None)?;
    for ca in cas["data"].as_array().ok_or("CAs")? {
        trust.push('\n');
        trust.push_str(&text(
            &http,
            &server,
            &key,
            &format!("/api/v2/cas/{}/export", ca["id"]),
        )?);
    }
    std::fs::write(dir.join("trust.pem"), trust)?;
    let lego = Command::new("lego")
        .env("LEGO_CA_CERTIFICATES", dir.join("trust.pem"))
        .args([
            "--server",
            &server.https_url("/acme/directory"),
            "--accept-tos",
        ])
        .args(["--email", "ops@token.example.test", "--path"])
        .arg(dir.join("lego"))
        .args(["--http", "--http.port", &format!("127.0.0.1:{acme_port}")])
        .args(["--domains", ACME_NAME, "run"])
        .output()
        .map_err(|e| format!("lego is required for this test: {e}"))?;
    assert!(lego.status.success(), "{}", stdout(&lego));
    let acme_leaf = dir
        .join("lego")
        .join("certificates")
        .join(format!("{ACME_NAME}.crt"));
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &path("root.pem"),
        "-untrusted",
        &path("issuing.pem"),
        &acme_leaf.display().to_string(),
    ])?;
    assert!(verified.status.success(), "{}", stdout(&verified));

    // The token goes away: its CAs answer 503 and write nothing, cached OCSP answers keep
    // being served, other CAs keep issuing.
    let token_dir = hsm.token_dir()?;
    let away = root.path().join("token-away");
    std::fs::rename(&token_dir, &away)?;
    let count = |ca: i64| -> Result<i64, Box<dyn std::error::Error>> {
        let (_, body) = api(Method::GET, &format!("/api/v2/cas/{ca}/certificates"), None)?;
        Ok(body["meta"]["total"]
            .as_i64()
            .or_else(|| body["data"].as_array().map(|a| a.len() as i64))
            .ok_or("a count")?)
    };
    let before = count(issuing)?;
    for attempt in 0..3 {
        let (status, body) = issue(issuing, &format!("down{attempt}.token.example.test"))?;
        assert_eq!(status, 503, "{body}");
        assert!(body.to_string().contains("token"), "{body}");
    }
    assert_eq!(
        count(issuing)?,
        before,
        "nothing written while the token is away"
    );
    let said = ocsp()?;
    assert!(said.contains("leaf.pem: good"), "{said}");
    let (status, body) = issue(software, "still.software.example.test")?;
    created(status, &body)?;
    let (_, status_body) = api(Method::GET, "/api/v2/system/hsm-status", None)?;
    let env_state = status_body["data"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == env_provider))
        .ok_or("the provider's status")?
        .clone();
    assert_eq!(env_state["state"]["available"], false, "{env_state}");

    // It comes back: issuance resumes without a restart.
    std::fs::rename(&away, &token_dir)?;
    std::thread::sleep(Duration::from_millis(1200));
    let (status, body) = issue(issuing, "back.token.example.test")?;
    created(status, &body)?;
    let (_, status_body) = api(Method::GET, "/api/v2/system/hsm-status", None)?;
    let env_state = status_body["data"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == env_provider))
        .ok_or("the provider's status")?
        .clone();
    assert_eq!(env_state["state"]["available"], true, "{env_state}");
    assert!(
        env_state["state"]["recoveries"].as_u64() >= Some(1),
        "{env_state}"
    );

    // A software CA key moves into the token where the provider allows it: the sealed copy is
    // gone, the CA signs with the token, and what it signs verifies under its certificate.
    let (status, body) = api(
        Method::POST,
        &format!("/api/v2/hsm/providers/{env_provider}/import"),
        Some(json!({"ca_id": software})),
    )?;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api(
        Method::POST,
        &format!("/api/v2/hsm/providers/{provider_id}/import"),
        Some(json!({"ca_id": software, "label": "moved"})),
    )?;
    assert_eq!(status, 200, "{body}");
    let moved = store::KeyId(body["data"]["id"].as_i64().ok_or("key id")?);
    let row = http.rt.block_on(store.key(moved))?.ok_or("the key row")?;
    assert_eq!(row.sealed, None, "the software copy is erased");
    let (status, body) = issue(software, "moved.software.example.test")?;
    let moved_leaf = created(status, &body)?;
    let moved_chain = blocks(&text(
        &http,
        &server,
        &key,
        &format!("/api/v2/certificates/{moved_leaf}/export?format=chain"),
    )?);
    std::fs::write(dir.join("moved-leaf.pem"), &moved_chain[0])?;
    std::fs::write(dir.join("moved-root.pem"), &moved_chain[1])?;
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &path("moved-root.pem"),
        &path("moved-leaf.pem"),
    ])?;
    assert!(verified.status.success(), "{}", stdout(&verified));
    let blocks_after = hsm.private_keys()?;
    assert_eq!(blocks_after.len(), 3, "{blocks_after:?}");
    let imported = blocks_after
        .iter()
        .find(|b| b.contains("moved"))
        .ok_or("the imported key")?;
    let flags = access(imported);
    assert!(flags.contains(&"sensitive".to_owned()), "{imported}");
    assert!(!flags.contains(&"extractable".to_owned()), "{imported}");

    http.rt.block_on(store.close());
    server.stop()?;
    http.drop_database(&database);
    Ok(())
}
