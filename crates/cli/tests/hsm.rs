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

/// One answer to an issuance request: status, whether it said when to come back, and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: bool,
    body: Value,
}

impl Answer {
    /// A 201, or a 503 that says why and when to come back: the only answers a token that is
    /// busy or away may cause.
    fn is_clean(&self) -> bool {
        self.status == 201
            || (self.status == 503
                && self.retry_after
                && self.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("HSM provider")))
    }
}

/// Asks CA `ca` for a certificate named `name`.
async fn issue_one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    ca: i64,
    name: &str,
) -> Result<Answer, String> {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(&json!({"common_name": name, "san": [format!("dns:{name}")], "ca_id": ca}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.json().await.unwrap_or_default();
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// `n` issuance requests to CA `ca`, all sent at once.
fn issue_at_once(
    http: &Http,
    server: &Server,
    key: &str,
    ca: i64,
    round: &str,
    n: usize,
) -> Result<Vec<Answer>, Box<dyn std::error::Error>> {
    let client = Http::client(server)?;
    let url = server.https_url("/api/v2/certificates");
    let answers = http.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (client, url, key) = (client.clone(), url.clone(), key.to_owned());
            let name = format!("{round}-{i}.load.example.test");
            set.spawn(async move { issue_one(&client, &url, &key, ca, &name).await });
        }
        let mut answers = Vec::new();
        while let Some(joined) = set.join_next().await {
            answers.push(joined.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(answers)
    })?;
    Ok(answers)
}

/// Issuance requests to one CA from `workers` clients, each sending its next as soon as its
/// last is answered, until stopped.
struct Load {
    answers: std::sync::Arc<std::sync::Mutex<Vec<Answer>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl Load {
    fn start(
        server: &Server,
        key: &str,
        ca: i64,
        workers: usize,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let client = Http::client(server)?;
        let url = server.https_url("/api/v2/certificates");
        let key = key.to_owned();
        let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopped) = (answers.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let mut set = tokio::task::JoinSet::new();
                for w in 0..workers {
                    let (client, url, key) = (client.clone(), url.clone(), key.clone());
                    let (seen, stopped) = (seen.clone(), stopped.clone());
                    set.spawn(async move {
                        let mut i = 0;
                        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                            let name = format!("w{w}-{i}.load.example.test");
                            let answer = issue_one(&client, &url, &key, ca, &name).await?;
                            seen.lock().map_err(|e| e.to_string())?.push(answer);
                            i += 1;
                        }
                        Ok::<_, String>(())
                    });
                }
                while let Some(joined) = set.join_next().await {
                    joined.map_err(|e| e.to_string())??;
                }
                Ok(())
            })
        });
        Ok(Self {
            answers,
            stop,
            thread,
        })
    }

    /// How many answers so far.
    fn len(&self) -> usize {
        self.answers.lock().map(|a| a.len()).unwrap_or_default()
    }

    /// Waits (up to 30 s) for an answer after the first `from` that is `what` (`wanted`).
    fn wait_for(&self, from: usize, what: &str, wanted: impl Fn(&Answer) -> bool) -> TestResult {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let answers = self.answers.lock().map_err(|e| e.to_string())?;
            if answers.iter().skip(from).any(&wanted) {
                return Ok(());
            }
            drop(answers);
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no answer under load was {what} within 30 s").into())
    }

    fn finish(self) -> Result<Vec<Answer>, String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().map_err(|_| "the load panicked")??;
        let answers = std::mem::take(&mut *self.answers.lock().map_err(|e| e.to_string())?);
        Ok(answers)
    }
}

/// Ed25519, RSA 3072 and RSA 4096 keys in a token; signatures bounded by the provider's
/// sessions, 503 at once when none is free and `session_wait_seconds` is 0, a queue instead
/// when it is not; the token taken away under load and given back.
#[test]
fn token_keys_of_every_type_under_load_and_faults() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let hsm = SoftHsm::new(root.path())?;
    let data = root.path().join("data");
    let database = http.database_args();
    // The module under a path of the operator's, allowed by `[hsm] modules`.
    let module = root.path().join("libvendor-pkcs11.so");
    std::fs::copy(MODULE, &module)?;
    let config = root.path().join("certmint.toml");
    let start = |wait: u64| -> Result<Server, Box<dyn std::error::Error>> {
        std::fs::write(
            &config,
            format!(
                "[hsm]\nmodules = [\"{}\"]\nsession_wait_seconds = {wait}\n",
                module.display()
            ),
        )?;
        Ok(Server::start(
            serve(&data, EPHEMERAL)
                .arg("--config")
                .arg(&config)
                .args(&database)
                .env("SOFTHSM2_CONF", &hsm.conf),
            &data,
        )?)
    };
    let server = start(10)?;
    let password = server.admin_password().ok_or("the admin password")?;
    let key = api_key(&http, &server, &password, &["*"])?;

    // One session for the whole token.
    let (status, body) = call(
        &http,
        &server,
        &key,
        Method::POST,
        "/api/v2/hsm/providers",
        Some(
            json!({"name": "vendor", "type": "pkcs11", "module_path": module,
                    "token_label": TOKEN, "pin": PIN, "max_sessions": 1}),
        ),
    )?;
    let provider = created(status, &body)?;
    let (status, body) = call(
        &http,
        &server,
        &key,
        Method::POST,
        &format!("/api/v2/hsm/providers/{provider}/test"),
        None,
    )?;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["key_types"].to_string().contains("Ed25519"),
        "{body}"
    );
    let make_ca = |body: Value| -> Result<i64, Box<dyn std::error::Error>> {
        let mut body = body;
        body["hsm_provider_id"] = json!(provider);
        body["require_template"] = json!(false);
        let (status, made) = call(
            &http,
            &server,
            &key,
            Method::POST,
            "/api/v2/cas",
            Some(body),
        )?;
        created(status, &made)
    };
    let ed_root =
        make_ca(json!({"common_name": "Token Ed25519 Root", "key_algorithm": "Ed25519"}))?;
    let rsa4096 = make_ca(
        json!({"common_name": "Token RSA 4096", "ca_type": "intermediate",
                                  "parent_id": ed_root, "key_algorithm": "RSA", "key_size": 4096}),
    )?;
    let rsa3072 = make_ca(
        json!({"common_name": "Token RSA 3072", "ca_type": "intermediate",
                                  "parent_id": ed_root, "key_algorithm": "RSA", "key_size": 3072}),
    )?;
    let (status, body) = call(
        &http,
        &server,
        &key,
        Method::PATCH,
        &format!("/api/v2/cas/{rsa4096}"),
        Some(json!({"ocsp_signer": "ca"})),
    )?;
    assert_eq!(status, 200, "{body}");

    // Each key signs what openssl verifies: the intermediates under the Ed25519 root, a leaf
    // under each intermediate, and the root's CRL.
    let dir = root.path();
    let path = |name: &str| dir.join(name).display().to_string();
    let root_pem = text(
        &http,
        &server,
        &key,
        &format!("/api/v2/cas/{ed_root}/export"),
    )?;
    std::fs::write(dir.join("ed-root.pem"), &root_pem)?;
    for (ca, name) in [(rsa4096, "rsa4096"), (rsa3072, "rsa3072")] {
        let answers = issue_at_once(&http, &server, &key, ca, name, 1)?;
        let leaf = created(answers[0].status, &answers[0].body)?;
        let chain = blocks(&text(
            &http,
            &server,
            &key,
            &format!("/api/v2/certificates/{leaf}/export?format=chain"),
        )?);
        std::fs::write(dir.join(format!("{name}-leaf.pem")), &chain[0])?;
        std::fs::write(dir.join(format!("{name}.pem")), &chain[1])?;
        let verified = openssl(&[
            "verify",
            "-CAfile",
            &path("ed-root.pem"),
            "-untrusted",
            &path(&format!("{name}.pem")),
            &path(&format!("{name}-leaf.pem")),
        ])?;
        assert!(verified.status.success(), "{name}: {}", stdout(&verified));
        let shown = stdout(&openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            &path(&format!("{name}.pem")),
        ])?);
        let bits = &name[3..];
        assert!(
            shown.contains(&format!("Public-Key: ({bits} bit)")),
            "{shown}"
        );
        assert!(shown.contains("Signature Algorithm: ED25519"), "{shown}");
    }
    let (status, body) = call(
        &http,
        &server,
        &key,
        Method::POST,
        &format!("/api/v2/crl/{ed_root}/regenerate"),
        None,
    )?;
    assert!(status == 200 || status == 201, "{body}");
    let (_, ca) = call(
        &http,
        &server,
        &key,
        Method::GET,
        &format!("/api/v2/cas/{ed_root}"),
        None,
    )?;
    let refid = ca["data"]["refid"].as_str().ok_or("refid")?.to_owned();
    std::fs::write(
        dir.join("ed-root.crl"),
        text(&http, &server, &key, &format!("/crl/{refid}.pem"))?,
    )?;
    let crl = openssl(&[
        "crl",
        "-in",
        &path("ed-root.crl"),
        "-CAfile",
        &path("ed-root.pem"),
        "-noout",
    ])?;
    assert!(stdout(&crl).contains("verify OK"), "{}", stdout(&crl));

    let count = |server: &Server| -> Result<i64, Box<dyn std::error::Error>> {
        let (_, body) = call(
            &http,
            server,
            &key,
            Method::GET,
            &format!("/api/v2/cas/{rsa4096}/certificates?per_page=1"),
            None,
        )?;
        Ok(body["meta"]["total"].as_i64().ok_or("a count")?)
    };
    let sessions = |server: &Server| -> Result<Value, Box<dyn std::error::Error>> {
        let (_, body) = call(
            &http,
            server,
            &key,
            Method::GET,
            "/api/v2/system/hsm-status",
            None,
        )?;
        Ok(body["data"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == provider))
            .ok_or("the provider's status")?["state"]
            .clone())
    };

    // With no wait, requests that find the one session busy are answered 503 at once, and
    // write nothing: more than one signature in flight would let them all through. (The
    // server's own jobs sign CRLs and OCSP responses with the same keys, so the steps above
    // ran with a wait.)
    server.stop()?;
    let server = start(0)?;
    let mut busy = None;
    let mut issued_total = 0;
    for round in 0..5 {
        let before = count(&server)?;
        let answers = issue_at_once(&http, &server, &key, rsa4096, &format!("round{round}"), 24)?;
        assert!(
            answers.iter().all(Answer::is_clean),
            "{:?}",
            answers.iter().find(|a| !a.is_clean())
        );
        let issued = answers.iter().filter(|a| a.status == 201).count() as i64;
        issued_total += issued;
        assert_eq!(
            count(&server)?,
            before + issued,
            "only what was answered 201 is written"
        );
        if let Some(refused) = answers.iter().find(|a| a.status == 503) {
            busy = Some(refused.body["message"].to_string());
        }
        if busy.is_some() && issued_total > 0 {
            break;
        }
    }
    assert!(issued_total > 0, "the one session signed nothing");
    let busy = busy.ok_or("24 requests at once on one session never found it busy")?;
    assert!(busy.contains("sessions") && busy.contains("busy"), "{busy}");
    let state = sessions(&server)?;
    assert_eq!(state["max_sessions"], 1, "{state}");
    assert!(state["sessions_open"].as_u64() <= Some(1), "{state}");

    // With a wait, they queue for the session instead, and every one is issued; the token's
    // keys serve the restarted server.
    server.stop()?;
    let server = start(10)?;
    let answers = issue_at_once(&http, &server, &key, rsa4096, "queued", 24)?;
    assert!(
        answers.iter().all(|a| a.status == 201),
        "{:?}",
        answers.iter().find(|a| a.status != 201)
    );

    // OCSP for a leaf of the RSA 4096 CA, signed by its key in the token, is cached.
    let leaf = answers[0].body["data"]["id"].as_i64().ok_or("leaf id")?;
    let chain = blocks(&text(
        &http,
        &server,
        &key,
        &format!("/api/v2/certificates/{leaf}/export?format=chain"),
    )?);
    std::fs::write(dir.join("load-leaf.pem"), &chain[0])?;
    std::fs::write(dir.join("cas.pem"), format!("{root_pem}\n{}\n", chain[1]))?;
    let ocsp = || -> Result<String, Box<dyn std::error::Error>> {
        let http_addr = server.http.ok_or("the plain-HTTP listener")?;
        Ok(stdout(&openssl(&[
            "ocsp",
            "-issuer",
            &path("rsa4096.pem"),
            "-cert",
            &path("load-leaf.pem"),
            "-url",
            &format!("http://{http_addr}/ocsp"),
            "-CAfile",
            &path("cas.pem"),
            "-no_nonce",
        ])?))
    };
    let said = ocsp()?;
    assert!(
        said.contains("Response verify OK") && said.contains("load-leaf.pem: good"),
        "{said}"
    );

    // The token goes away under load from four clients, then its module fails too, and both
    // come back: every request is issued or answered 503 with the reason, OCSP keeps
    // answering, and the CA issues again without a restart.
    let before = count(&server)?;
    let load = Load::start(&server, &key, rsa4096, 4)?;
    let issued = |a: &Answer| a.status == 201;
    load.wait_for(0, "issued", issued)?;
    let token_dir = hsm.token_dir()?;
    let away = root.path().join("token-away");
    std::fs::rename(&token_dir, &away)?;
    load.wait_for(load.len(), "a 503", |a| a.status == 503)?;
    let state = sessions(&server)?;
    assert_eq!(state["available"], false, "{state}");
    let said = ocsp()?;
    assert!(said.contains("load-leaf.pem: good"), "{said}");
    // Without its configuration, SoftHSM cannot be initialized again.
    let conf_away = root.path().join("softhsm2.conf.away");
    std::fs::rename(&hsm.conf, &conf_away)?;
    load.wait_for(load.len(), "a module that cannot start", |a| {
        a.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot initialize the PKCS#11 module"))
    })?;
    std::fs::rename(&conf_away, &hsm.conf)?;
    std::fs::rename(&away, &token_dir)?;
    load.wait_for(load.len(), "issued", issued)?;
    let answers = load.finish()?;
    assert!(
        answers.iter().all(Answer::is_clean),
        "{:?}",
        answers.iter().find(|a| !a.is_clean())
    );
    let issued = answers.iter().filter(|a| a.status == 201).count() as i64;
    assert_eq!(
        count(&server)?,
        before + issued,
        "what was answered 201 is written, nothing else"
    );
    let state = sessions(&server)?;
    assert_eq!(state["available"], true, "{state}");
    assert!(state["recoveries"].as_u64() >= Some(1), "{state}");

    server.stop()?;
    http.drop_database(&database);
    Ok(())
}
