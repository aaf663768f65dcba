//! certmint behind a real reverse proxy: nginx terminates TLS on its own port and re-encrypts to
//! the HTTPS listener, appending `X-Forwarded-For`, from 127.0.0.2 (`proxy_bind`) so that its
//! address differs from its clients' (127.0.0.1). certmint has `external_url` set to nginx's
//! address and trusts 127.0.0.2 alone.
//!
//! nginx comes from `CERTMINT_TEST_NGINX` (scripts/test installs Debian's and sets it); the
//! test fails without it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acme::AcmeServer;
use crate::acme_peers::{Certbot, free_port};
use crate::common::{Auth, TestResult};

/// The proxy's own address, the one certmint trusts.
const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A running nginx, stopped on drop.
struct Nginx {
    /// `https://127.0.0.1:port`.
    url: String,
    /// The CA of nginx's TLS certificate, PEM file.
    ca: PathBuf,
    /// A client trusting that CA.
    client: reqwest::Client,
    _process: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on 127.0.0.1:`port` in front of certmint's HTTPS listener `upstream`, whose
    /// certificate chains to `upstream_root`.
    async fn start(port: u16, upstream: SocketAddr, upstream_root: &Path) -> TestResult<Self> {
        let binary = std::env::var_os("CERTMINT_TEST_NGINX")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .expect(
                "CERTMINT_TEST_NGINX is not set: this test needs nginx \
                 (scripts/test installs it and sets the variable)",
            );
        let dir = tempfile::tempdir()?;
        let path = |name: &str| dir.path().join(name).display().to_string();

        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "Reverse Proxy Test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
        leaf.distinguished_name
            .push(DnType::CommonName, "proxy.localhost");
        let key = KeyPair::generate()?;
        let leaf = leaf.signed_by(&key, &ca)?;
        std::fs::write(path("ca.pem"), ca.pem())?;
        std::fs::write(path("proxy.pem"), leaf.pem())?;
        std::fs::write(path("proxy.key"), key.serialize_pem())?;

        let config = format!(
            "daemon off;\n\
             master_process off;\n\
             pid {pid};\n\
             error_log {error_log} info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {tmp}/body;\n\
               proxy_temp_path {tmp}/proxy;\n\
               fastcgi_temp_path {tmp}/fastcgi;\n\
               uwsgi_temp_path {tmp}/uwsgi;\n\
               scgi_temp_path {tmp}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {cert};\n\
                 ssl_certificate_key {key};\n\
                 location / {{\n\
                   proxy_pass https://{upstream};\n\
                   proxy_bind {PROXY};\n\
                   proxy_ssl_trusted_certificate {root};\n\
                   proxy_ssl_verify on;\n\
                   proxy_ssl_name localhost;\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Host $http_host;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 }}\n\
               }}\n\
             }}\n",
            pid = path("nginx.pid"),
            error_log = path("error.log"),
            tmp = dir.path().display(),
            cert = path("proxy.pem"),
            key = path("proxy.key"),
            root = upstream_root.display(),
        );
        std::fs::write(path("nginx.conf"), config)?;
        let mut process = tokio::process::Command::new(&binary)
            .args([
                "-p",
                &path(""),
                "-e",
                &path("error.log"),
                "-c",
                &path("nginx.conf"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let listening = async {
            while tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            () = listening => {}
            exit = process.wait() => {
                let log = std::fs::read_to_string(path("error.log")).unwrap_or_default();
                return Err(format!("nginx exited ({exit:?}):\n{log}").into());
            }
            () = tokio::time::sleep(Duration::from_secs(20)) => {
                return Err("nginx did not listen within 20 s".into());
            }
        }
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes())?])
            .build()?;
        Ok(Self {
            url: format!("https://127.0.0.1:{port}"),
            ca: dir.path().join("ca.pem"),
            client,
            _process: process,
            dir,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// A failed password login, sent by `client` to `url` as `agent` (which tells its audit record
/// apart), with `X-Forwarded-For: forged` when given. Its status.
async fn wrong_login(
    client: &reqwest::Client,
    url: &str,
    agent: &str,
    forged: Option<&str>,
) -> TestResult<StatusCode> {
    let mut request = client
        .post(format!("{url}/api/v2/auth/login/password"))
        .header("user-agent", agent)
        .json(&json!({"username": "admin", "password": "not the password"}));
    if let Some(forged) = forged {
        request = request.header("x-forwarded-for", forged);
    }
    Ok(request.send().await?.status())
}

/// Every URL in the ACME directory `body`.
fn directory_urls(body: &Value) -> Vec<&str> {
    body.as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| *name != "meta")
        .filter_map(|(_, url)| url.as_str())
        .collect()
}

#[tokio::test]
async fn behind_nginx_urls_are_external_and_the_client_is_the_forwarded_one() -> TestResult {
    let name = "proxied.example.test";
    let http_port = free_port();
    // The proxy's port must be known before certmint starts: it is certmint's external URL.
    let nginx_port = free_port();
    let external = format!("https://127.0.0.1:{nginx_port}");
    let acme = AcmeServer::start_with(http_port, 1, None, &[name], |s| {
        s.external_url = format!("{external}/");
        s.trusted_proxies = vec![PROXY.to_string()];
        s.auth_rate_limit_per_minute = 4;
    })
    .await;
    let server = &acme.server;
    let upstream = server.running.as_ref().ok_or("running")?.https_addr;
    let nginx = Nginx::start(nginx_port, upstream, &acme.root).await?;
    assert_eq!(nginx.url, external);

    // The directory, through the proxy and directly: every URL is built on external_url,
    // whatever Host the request carried.
    for (client, url) in [
        (&nginx.client, format!("{}/acme/directory", nginx.url)),
        (&server.client, server.url("/acme/directory")),
    ] {
        let response = client.get(&url).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{url}: {}", nginx.log());
        let body: Value = response.json().await?;
        let urls = directory_urls(&body);
        assert_eq!(urls.len(), 6, "{body}");
        for u in urls {
            assert!(u.starts_with(&format!("{external}/acme/")), "{url}: {u}");
        }
    }

    // certbot, which knows only the proxy, obtains a certificate through it.
    let certbot = Certbot::new(&format!("{external}/acme/directory"), &nginx.ca);
    certbot
        .certonly_standalone(http_port, &[name])
        .await
        .assert_success("certbot certonly through nginx");
    let live = certbot.live(name);
    let verified = acme.verify(&live.fullchain)?;
    assert!(verified.contains(": OK"), "openssl verify: {verified}");

    // The admin's session (one password check by 127.0.0.1, directly).
    let admin = server.admin().await;
    let (status, accounts) = server
        .call(
            Method::GET,
            "/api/v2/acme/accounts",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accounts}");
    let origins: Vec<&Value> = accounts["data"]
        .as_array()
        .ok_or("a list of accounts")?
        .iter()
        .map(|a| &a["origin_ip"])
        .collect();
    assert_eq!(
        origins,
        [&json!("127.0.0.1")],
        "certbot's account records certbot's address, not the proxy's"
    );

    // The addresses the API shows for EST, SCEP and ACME are the external ones too.
    for (path, pointer) in [
        ("/api/v2/est/config", "/data/url"),
        ("/api/v2/scep/config", "/data/url"),
        ("/api/v2/scep/config", "/data/profiles/0/url"),
        ("/api/v2/acme/settings", "/data/directory"),
        ("/api/v2/acme/profiles", "/data/0/directory"),
    ] {
        let (status, body) = server
            .call(Method::GET, path, &Auth::Session(&admin), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let url = body.pointer(pointer).and_then(Value::as_str).unwrap_or("");
        assert!(
            url.starts_with(&format!("{external}/")),
            "{path} {pointer}: {body}"
        );
    }

    // A client on 127.0.0.2 (a trusted proxy, talking to certmint directly).
    let trusted = reqwest::Client::builder()
        .local_address(IpAddr::V4(PROXY))
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&acme.root)?)?])
        .build()?;

    // The login limit (4 a minute) counts 127.0.0.1, whichever way it comes and whatever it
    // claims: the admin's login above, then these three.
    let forged_through_nginx = wrong_login(
        &nginx.client,
        &nginx.url,
        "via-nginx-forged",
        Some("203.0.113.50"),
    )
    .await?;
    assert_eq!(forged_through_nginx, StatusCode::UNAUTHORIZED);
    let forged_directly = wrong_login(
        &server.client,
        &server.https,
        "direct-forged",
        Some("198.51.100.77"),
    )
    .await?;
    assert_eq!(forged_directly, StatusCode::UNAUTHORIZED);
    let from_trusted = wrong_login(
        &trusted,
        &server.https,
        "trusted-forwarding",
        Some("192.0.2.33"),
    )
    .await?;
    assert_eq!(from_trusted, StatusCode::UNAUTHORIZED);
    let via_nginx = wrong_login(&nginx.client, &nginx.url, "via-nginx", None).await?;
    assert_eq!(via_nginx, StatusCode::UNAUTHORIZED);
    // 127.0.0.1 has spent its window, through the proxy and directly, forged header or not.
    for (client, url, forged) in [
        (&nginx.client, &nginx.url, None),
        (&nginx.client, &nginx.url, Some("203.0.113.51")),
        (&server.client, &server.https, Some("198.51.100.78")),
    ] {
        let status = wrong_login(client, url, "limited", forged).await?;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{url} {forged:?}");
    }
    // The proxy's own address was not charged for what it forwarded.
    let proxy_itself = wrong_login(&trusted, &server.https, "proxy-itself", None).await?;
    assert_eq!(proxy_itself, StatusCode::UNAUTHORIZED);

    // The audit records name the client each request came from.
    let (status, logs) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=login_failed&per_page=100",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let mut seen: Vec<(String, String)> = logs["data"]
        .as_array()
        .ok_or("a list of records")?
        .iter()
        .map(|r| {
            (
                r["user_agent"].as_str().unwrap_or("").to_owned(),
                r["ip_address"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = [
        ("direct-forged", "127.0.0.1"),
        ("proxy-itself", "127.0.0.2"),
        ("trusted-forwarding", "192.0.2.33"),
        ("via-nginx", "127.0.0.1"),
        ("via-nginx-forged", "127.0.0.1"),
    ]
    .iter()
    .map(|(a, ip)| ((*a).to_owned(), (*ip).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(seen, expected, "{logs}");
    Ok(())
}
