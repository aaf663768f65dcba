//! OCSP responses per second from the pre-signed cache, GET and POST, driven by wrk (a second
//! process) over loopback, beside `openssl ocsp -index … -port …` answering the same kind of
//! requests on the same machine in the same run, so that the ratio means something.
//!
//! `cargo bench -p certmint-server --bench ocsp` runs it in full (1,000 certificates, a tenth
//! revoked, 10 s per measurement; `CERTMINT_BENCH_SECONDS` changes that); `-- certmint` or
//! `-- openssl` runs one side alone. Under `cargo test` it runs each side for a second, so
//! that it keeps working.
//!
//! `openssl ocsp -port` listens on every interface, so it and its wrk run inside `unshare -n`
//! (a network namespace with loopback only); it also hangs on a connection closed without a
//! request, which is what wrk's address probe does, so the wrk script skips the probe.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use authority::pki::ocsp::{self, CertId, HashAlgorithm, IssuerKeyHashes};
use authority::pki::{DistinguishedName, KeyType, NameAttribute, inspect};
use authority::{IssueRequest, KeySource, Principal, RevocationReason};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certmint_server::{Secrets, Settings};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PASSWORD: &str = "benchmark password 1234";
/// Connections wrk keeps open: enough to keep both cores busy.
const CONNECTIONS: &str = "64";

fn main() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let certificates = if full { 1000 } else { 20 };
    let seconds: u64 = match std::env::var("CERTMINT_BENCH_SECONDS") {
        Ok(v) => v.parse()?,
        Err(_) if full => 10,
        Err(_) => 1,
    };
    let sides: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |side: &str| sides.is_empty() || sides.iter().any(|s| s == side);
    let work = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "OCSP benchmark: {certificates} certificates (a tenth revoked), P-256 responders, \
         {cores} cores, wrk with {CONNECTIONS} connections, {seconds} s each"
    );
    if wanted("certmint") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(certmint(work.path(), certificates, seconds))?;
    }
    if wanted("openssl") {
        openssl(work.path(), certificates, seconds)?;
    }
    Ok(())
}

/// The wrk script: each request is the next of the file named by the first argument, a GET
/// path or a hex-encoded POST body (by the second argument); anything but 200 is counted and
/// the first printed. The address probe is skipped (see the module comment).
const WRK_SCRIPT: &str = r#"
local items, method, sent, refused = {}, "GET", 0, 0
wrk.resolve = function(host, service)
  wrk.addrs = { wrk.lookup(host, service)[1] }
end
function init(args)
  method = args[2]
  for line in io.lines(args[1]) do
    if method == "POST" then
      line = line:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end)
    end
    items[#items + 1] = line
  end
end
function request()
  sent = sent + 1
  local item = items[(sent - 1) % #items + 1]
  if method == "POST" then
    return wrk.format("POST", "/ocsp", { ["Content-Type"] = "application/ocsp-request" }, item)
  end
  return wrk.format("GET", item)
end
function response(status, _, body)
  if status ~= 200 then
    refused = refused + 1
    if refused == 1 then io.stderr:write("refused: " .. status .. "\n") end
  end
end
"#;

/// The wrk command line for `requests` (one per line) sent as `method` to `base`.
fn wrk_args(dir: &Path, base: &str, requests: &Path, method: &str, seconds: u64) -> Vec<String> {
    let script = dir.join("ocsp.lua");
    vec![
        "wrk".into(),
        "-t".into(),
        "1".into(),
        "-c".into(),
        CONNECTIONS.into(),
        "-d".into(),
        format!("{seconds}s"),
        "-s".into(),
        script.display().to_string(),
        base.into(),
        "--".into(),
        requests.display().to_string(),
        method.into(),
    ]
}

/// Requests per second from wrk's report; fails on errors, non-200 answers or no count.
fn wrk_rate(stdout: &str, stderr: &str) -> Result<f64> {
    if stdout.contains("Non-2xx") || stderr.contains("refused") {
        return Err(format!("wrk: {stdout}{stderr}").into());
    }
    stdout
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Requests/sec:")?
                .trim()
                .parse()
                .ok()
        })
        .ok_or_else(|| format!("wrk printed no rate: {stdout}{stderr}").into())
}

/// Writes `requests` as GET paths (base64, percent-encoded, under `prefix`) and hex POST
/// bodies; returns the two files.
fn write_requests(
    dir: &Path,
    name: &str,
    prefix: &str,
    requests: &[Vec<u8>],
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let mut gets = String::new();
    let mut posts = String::new();
    for der in requests {
        let encoded = STANDARD
            .encode(der)
            .replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D");
        writeln!(gets, "{prefix}{encoded}")?;
        writeln!(posts, "{}", hex::encode(der))?;
    }
    let get = dir.join(format!("{name}-get.txt"));
    let post = dir.join(format!("{name}-post.txt"));
    std::fs::write(&get, gets)?;
    std::fs::write(&post, posts)?;
    std::fs::write(dir.join("ocsp.lua"), WRK_SCRIPT)?;
    Ok((get, post))
}

/// One request per serial (hex), SHA-1 CertIDs without a nonce, as RFC 5019 clients send.
fn requests_for(ca_der: &[u8], serials: &[String]) -> Result<Vec<Vec<u8>>> {
    let hashes = IssuerKeyHashes::new(&inspect::Certificate::parse(ca_der)?)?;
    serials
        .iter()
        .map(|serial| {
            let id = CertId::for_certificate(&hashes, &hex::decode(serial)?, HashAlgorithm::Sha1)?;
            Ok(ocsp::request(&[id], None)?)
        })
        .collect()
}

async fn certmint(dir: &Path, certificates: usize, seconds: u64) -> Result<()> {
    let data = dir.join("certmint");
    let settings = Settings {
        data_dir: data.clone(),
        listen: "127.0.0.1:0".parse()?,
        http_listen: "127.0.0.1:0".into(),
        serve_only: Vec::new(),
        ..Settings::default()
    };
    let secrets = Secrets {
        master_key: None,
        admin_password: Some(PASSWORD.into()),
    };
    let running =
        certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?).await?;
    let authority = running.app.authority.clone();
    let http = running.http_addr.ok_or("no plain-HTTP listener")?;
    let system = Principal::local("bench");
    let mut serials = Vec::with_capacity(certificates);
    for i in 0..certificates {
        let mut subject = DistinguishedName::new();
        subject.set(NameAttribute::CommonName, &format!("host-{i}.bench.test"))?;
        let issued = authority
            .issue(
                &system,
                IssueRequest {
                    ca_id: None,
                    subject,
                    sans: Vec::new(),
                    key: KeySource::Generate(Some(KeyType::EcP256)),
                    template_id: None,
                    validity_days: Some(90),
                    key_usage: None,
                    extended_key_usage: None,
                    description: None,
                    source: authority::CertificateSource::Api,
                    renewed_from: None,
                },
            )
            .await?;
        if i % 10 == 0 {
            authority
                .revoke(
                    &system,
                    issued.certificate.id,
                    RevocationReason::KeyCompromise,
                    None,
                    None,
                )
                .await?;
        }
        serials.push(issued.certificate.cert.serial);
    }
    // The publisher's revocation watch looks back 2 s and evicts once more what it finds
    // there; past that, the answers cached below stay cached.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let ca = authority
        .reader()
        .default_ca()
        .await?
        .ok_or("no default CA")?;
    let requests = requests_for(&ca.cert.der, &serials)?;
    let (get, post) = write_requests(dir, "certmint", "/ocsp/", &requests)?;

    // Every response is signed and cached once before the clock starts.
    let client = reqwest::Client::new();
    for der in &requests {
        let body = client
            .post(format!("http://{http}/ocsp"))
            .header("content-type", "application/ocsp-request")
            .body(der.clone())
            .send()
            .await?
            .bytes()
            .await?;
        if body.len() < 100 {
            return Err(format!("not a signed response: {}", hex::encode(&body)).into());
        }
    }
    let before = authority.ocsp_stats();
    for (method, file) in [("GET", &get), ("POST", &post)] {
        let args = wrk_args(dir, &format!("http://{http}"), file, method, seconds);
        let output = tokio::process::Command::new(&args[0])
            .args(&args[1..])
            .output()
            .await
            .map_err(|e| format!("wrk could not be run (scripts/test installs it): {e}"))?;
        let rate = wrk_rate(
            &String::from_utf8_lossy(&output.stdout),
            &String::from_utf8_lossy(&output.stderr),
        )?;
        println!(
            "{:<58} {rate:>9.0}/s",
            format!("certmint, cached {method} /ocsp")
        );
    }
    let after = authority.ocsp_stats();
    let misses = after.cache_misses - before.cache_misses;
    println!(
        "  served from memory: {} of {} (misses {misses})",
        after.cache_hits - before.cache_hits,
        after.requests - before.requests
    );
    if misses > 0 {
        return Err(format!("{misses} requests missed the cache under load").into());
    }
    running.shutdown().await;
    Ok(())
}

/// Runs `openssl` with `args` in `dir`, failing with its output when it fails.
fn run_openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("openssl could not be run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// The same measurement against `openssl ocsp` as a responder: a P-256 CA, a delegated P-256
/// responder, an index of `certificates` entries (a tenth revoked), `-multi` with one worker
/// per core.
fn openssl(dir: &Path, certificates: usize, seconds: u64) -> Result<()> {
    let dir = dir.join("openssl");
    std::fs::create_dir_all(&dir)?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run_openssl(
        &dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=bench CA",
                "-days",
                "30",
            ],
        ]
        .concat(),
    )?;
    std::fs::write(
        dir.join("ocsp.ext"),
        "extendedKeyUsage=OCSPSigning\nkeyUsage=critical,digitalSignature\n",
    )?;
    run_openssl(
        &dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "ocsp.key",
                "-out",
                "ocsp.csr",
                "-subj",
                "/CN=bench responder",
            ],
        ]
        .concat(),
    )?;
    run_openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "ocsp.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-days",
            "30",
            "-extfile",
            "ocsp.ext",
            "-out",
            "ocsp.pem",
            "-set_serial",
            "1",
        ],
    )?;
    let mut index = String::new();
    let mut serials = Vec::with_capacity(certificates);
    for i in 0..certificates {
        // Sixteen octets with the top bit clear, as DER writes a positive serial.
        let serial = format!("{:032X}", (0x4000_0000_u128 << 96) + i as u128);
        if i % 10 == 0 {
            writeln!(
                index,
                "R\t271231000000Z\t261201000000Z,keyCompromise\t{serial}\tunknown\t/CN=host-{i}"
            )?;
        } else {
            writeln!(index, "V\t271231000000Z\t\t{serial}\tunknown\t/CN=host-{i}")?;
        }
        serials.push(serial.to_lowercase());
    }
    std::fs::write(dir.join("index.txt"), index)?;
    let ca_der = authority::pki::pem::find_blocks(&std::fs::read(dir.join("ca.pem"))?)?
        .into_iter()
        .next()
        .ok_or("openssl wrote no CA certificate")?
        .der;
    let requests = requests_for(&ca_der, &serials)?;
    let (get, post) = write_requests(&dir, "openssl", "/", &requests)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for (method, file) in [("GET", &get), ("POST", &post)] {
        let wrk = wrk_args(&dir, "http://127.0.0.1:8888", file, method, seconds).join(" ");
        // The responder, then wrk, in a namespace of their own; the responder's workers are
        // stopped by PID, as -multi ignores SIGTERM while they run.
        let script = format!(
            "ip link set lo up && \
             openssl ocsp -index index.txt -port 8888 -rsigner ocsp.pem -rkey ocsp.key \
               -CA ca.pem -nmin 60 -multi {cores} -ignore_err 2>responder.log & \
             sleep 1; {wrk} > wrk.out 2> wrk.err; status=$?; \
             pkill -KILL -P $! ; kill -KILL $! ; exit $status"
        );
        let output = Command::new("unshare")
            .current_dir(&dir)
            .args(["-n", "sh", "-c", &script])
            .output()
            .map_err(|e| format!("unshare could not be run: {e}"))?;
        let stdout = std::fs::read_to_string(dir.join("wrk.out")).unwrap_or_default();
        let stderr = std::fs::read_to_string(dir.join("wrk.err")).unwrap_or_default();
        if !output.status.success() {
            return Err(format!(
                "openssl side failed: {}{stdout}{stderr}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let rate = wrk_rate(&stdout, &stderr)?;
        println!(
            "{:<58} {rate:>9.0}/s",
            format!("openssl ocsp -multi {cores}, {method}")
        );
    }
    Ok(())
}
