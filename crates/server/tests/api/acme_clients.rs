//! The ACME server driven by the real clients people run against it: certbot (standalone
//! http-01, manual dns-01 with hooks, renewal, revocation, external account binding) and lego
//! (http-01, tls-alpn-01). Every certificate they obtain is checked with openssl: its SANs, and
//! its chain against the server's root.
//!
//! A missing client fails the test that needs it (the drivers panic; scripts/test installs
//! them).

use std::path::PathBuf;

use instant_acme::{Account, NewAccount};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acme::AcmeServer;
use crate::acme_peers::{Certbot, DnsServer, Lego, LegoSolver, free_port};
use crate::common::{Auth, TestResult, openssl, post};

/// The subjectAltName entries (`DNS:…`) of the first certificate in `pem`, sorted, as openssl
/// prints them (`openssl x509 -ext subjectAltName`).
fn openssl_sans(acme: &AcmeServer, pem: &str) -> TestResult<Vec<String>> {
    let path = acme.dir.path().join("leaf.pem");
    std::fs::write(&path, pem)?;
    let text = openssl(
        acme.dir.path(),
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            path.to_str().ok_or("a UTF-8 path")?,
        ],
    )?;
    let mut names: Vec<String> = text
        .lines()
        .skip_while(|line| !line.contains("Subject Alternative Name"))
        .skip(1)
        .flat_map(|line| line.split(','))
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort();
    Ok(names)
}

/// The serial of the first certificate in `pem`, upper-case hex without leading zero bytes.
fn openssl_serial(acme: &AcmeServer, pem: &str) -> TestResult<String> {
    let path = acme.dir.path().join("leaf.pem");
    std::fs::write(&path, pem)?;
    let text = openssl(
        acme.dir.path(),
        &[
            "x509",
            "-noout",
            "-serial",
            "-in",
            path.to_str().ok_or("a UTF-8 path")?,
        ],
    )?;
    let serial = text
        .trim()
        .strip_prefix("serial=")
        .ok_or_else(|| format!("openssl -serial printed {text:?}"))?;
    Ok(normal_serial(serial))
}

fn normal_serial(hex: &str) -> String {
    let mut serial = hex.to_ascii_uppercase().replace(':', "");
    while serial.len() > 2 && serial.starts_with("00") {
        serial.drain(..2);
    }
    serial
}

/// Asserts that `chain` (leaf first) verifies against the server's root with openssl and that
/// the leaf's SANs are exactly the DNS names `names`.
#[track_caller]
fn assert_issued(acme: &AcmeServer, chain: &str, names: &[&str]) {
    let verified = acme
        .verify(chain)
        .unwrap_or_else(|e| panic!("openssl verify: {e}"));
    assert!(verified.contains(": OK"), "openssl verify: {verified}");
    let sans = openssl_sans(acme, chain).unwrap_or_else(|e| panic!("the SANs: {e}"));
    let mut expected: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    expected.sort();
    assert_eq!(sans, expected, "the certificate's subjectAltName");
}

/// The REST API's view of the certificate with `serial` (normalized), as the admin sees it.
async fn inventory_entry(acme: &AcmeServer, serial: &str) -> TestResult<Value> {
    let server = &acme.server;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/certificates?per_page=100",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .ok_or("a list of certificates")?
        .iter()
        .find(|c| c["serial_number"].as_str().map(normal_serial).as_deref() == Some(serial))
        .cloned()
        .ok_or_else(|| format!("no certificate with serial {serial} in {body}").into())
}

fn cert_path(certbot: &Certbot, name: &str) -> PathBuf {
    certbot.live_dir(name).join("cert.pem")
}

#[tokio::test]
async fn certbot_standalone_http01_obtains_renews_and_revokes() -> TestResult {
    let name = "solo.example.test";
    let http_port = free_port();
    let acme = AcmeServer::start(http_port, 1, None, &[name]).await;
    let certbot = Certbot::new(&acme.directory(), &acme.root);

    certbot
        .certonly_standalone(http_port, &[name])
        .await
        .assert_success("certbot certonly --standalone");
    let first = certbot.live(name);
    assert_issued(&acme, &first.fullchain, &[name]);
    assert!(first.fullchain.starts_with(&first.cert), "leaf first");
    let first_serial = openssl_serial(&acme, &first.cert)?;

    certbot
        .renew_forced()
        .await
        .assert_success("certbot renew --force-renewal");
    let renewed = certbot.live(name);
    assert_issued(&acme, &renewed.fullchain, &[name]);
    let renewed_serial = openssl_serial(&acme, &renewed.cert)?;
    assert_ne!(
        renewed_serial, first_serial,
        "the renewal is a new certificate"
    );

    let before = inventory_entry(&acme, &renewed_serial).await?;
    assert_eq!(before["status"], "active", "{before}");
    certbot
        .revoke(&cert_path(&certbot, name), Some("keycompromise"))
        .await
        .assert_success("certbot revoke --cert-path");
    let after = inventory_entry(&acme, &renewed_serial).await?;
    assert_eq!(after["status"], "revoked", "{after}");
    assert!(!after["revoked_at"].is_null(), "{after}");
    // The first certificate is untouched.
    let untouched = inventory_entry(&acme, &first_serial).await?;
    assert_eq!(untouched["status"], "active", "{untouched}");
    // A second revocation is refused: the first one took.
    let again = certbot.revoke(&cert_path(&certbot, name), None).await;
    assert!(!again.success(), "revoked twice: {}", again.output);
    assert!(
        again.output.contains("alreadyRevoked") || again.output.contains("already revoked"),
        "{}",
        again.output
    );
    Ok(())
}

#[tokio::test]
async fn certbot_standalone_http01_for_two_names() -> TestResult {
    let names = ["www.pair.example.test", "api.pair.example.test"];
    let http_port = free_port();
    let acme = AcmeServer::start(http_port, 1, None, &names).await;
    let certbot = Certbot::new(&acme.directory(), &acme.root).email("ops@pair.example.test");

    certbot
        .certonly_standalone(http_port, &names)
        .await
        .assert_success("certbot certonly --standalone -d www -d api");
    let live = certbot.live(names[0]);
    assert_issued(&acme, &live.fullchain, &names);
    assert!(live.privkey.contains("PRIVATE KEY"));
    Ok(())
}

#[tokio::test]
async fn certbot_manual_dns01_obtains_a_wildcard_and_its_apex() -> TestResult {
    let names = ["*.wild.example.test", "wild.example.test"];
    let dns = DnsServer::start();
    let acme = AcmeServer::start(1, 1, Some(dns.addr()), &[]).await;
    let certbot = Certbot::new(&acme.directory(), &acme.root);

    certbot
        .certonly_dns(&dns, &names)
        .await
        .assert_success("certbot certonly --manual --preferred-challenges dns");
    let live = certbot.live("wild.example.test");
    assert_issued(&acme, &live.fullchain, &names);
    // The validator asked our DNS server; the cleanup hook withdrew both values.
    assert!(
        dns.queries()
            .iter()
            .any(|(name, _)| name == "_acme-challenge.wild.example.test"),
        "{:?}",
        dns.queries()
    );
    assert!(
        !dns.records_dir()
            .join("_acme-challenge.wild.example.test")
            .exists(),
        "cleaned up"
    );
    Ok(())
}

#[tokio::test]
async fn lego_http01_obtains_a_certificate() -> TestResult {
    let name = "http.lego.example.test";
    let http_port = free_port();
    let acme = AcmeServer::start(http_port, 1, None, &[name]).await;
    let lego = Lego::new(&acme.directory(), &acme.root, "ops@lego.example.test");

    lego.run(LegoSolver::Http01 { port: http_port }, &[name])
        .await
        .assert_success("lego --http run");
    let issued = lego.certificate(name);
    // lego bundles: the certificate, then its issuer.
    assert_issued(&acme, &issued.certificate, &[name]);
    assert!(issued.key.contains("PRIVATE KEY"));
    Ok(())
}

#[tokio::test]
async fn lego_tls_alpn01_obtains_a_certificate() -> TestResult {
    let name = "tls.lego.example.test";
    let tls_port = free_port();
    let acme = AcmeServer::start(1, tls_port, None, &[name]).await;
    let lego = Lego::new(&acme.directory(), &acme.root, "ops@lego.example.test");

    lego.run(LegoSolver::TlsAlpn01 { port: tls_port }, &[name])
        .await
        .assert_success("lego --tls run");
    assert_issued(&acme, &lego.certificate(name).certificate, &[name]);
    Ok(())
}

#[tokio::test]
async fn certbot_registers_with_external_account_binding_on_a_profile_that_requires_it()
-> TestResult {
    let name = "eab.example.test";
    let http_port = free_port();
    let acme = AcmeServer::start(http_port, 1, None, &[name]).await;
    let server = &acme.server;
    let admin = server.admin().await;
    let (status, body) = post(
        server,
        &admin,
        "/api/v2/acme/profiles",
        json!({"name": "partners", "require_eab": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let profile_id = body["data"]["id"].as_i64().ok_or("a profile id")?;
    assert_eq!(
        body["data"]["directory"], "/acme/partners/directory",
        "{body}"
    );
    let (status, body) = post(
        server,
        &admin,
        &format!("/api/v2/acme/profiles/{profile_id}/eab-keys"),
        json!({"description": "certbot"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let kid = body["data"]["key_id"]
        .as_str()
        .ok_or("a key id")?
        .to_owned();
    let hmac_key = body["data"]["hmac_key"]
        .as_str()
        .ok_or("an HMAC key")?
        .to_owned();
    let directory = server.url("/acme/partners/directory");

    // Without a binding: certbot reads externalAccountRequired from the directory and stops;
    // a client that registers anyway gets the externalAccountRequired problem.
    let refused = Certbot::new(&directory, &acme.root).register().await;
    assert!(
        !refused.success(),
        "registered without EAB: {}",
        refused.output
    );
    assert!(
        refused.output.contains("externalAccountRequired")
            || refused
                .output
                .contains("Server requires external account binding"),
        "{}",
        refused.output
    );
    let problem = Account::builder_with_root(&acme.root)?
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            None,
        )
        .await
        .err()
        .ok_or("an account without EAB on a profile that requires it")?;
    match &problem {
        instant_acme::Error::Api(problem) => assert_eq!(
            problem.r#type.as_deref(),
            Some("urn:ietf:params:acme:error:externalAccountRequired"),
            "{problem:?}"
        ),
        other => panic!("expected an ACME problem, got {other:?}"),
    }

    // With it: certbot registers and obtains a certificate from the profile. The values go
    // in the `--flag=value` form: a base64url kid or HMAC key may begin with '-', which
    // certbot's argument parser would take for a flag (`Certbot::eab` passes them apart).
    let certbot = Certbot::new(&directory, &acme.root);
    let port = http_port.to_string();
    let (eab_kid, eab_hmac_key) = (
        format!("--eab-kid={kid}"),
        format!("--eab-hmac-key={hmac_key}"),
    );
    certbot
        .command(&[
            "certonly",
            "--standalone",
            "--http-01-port",
            &port,
            "--http-01-address",
            "127.0.0.1",
            "-d",
            name,
            &eab_kid,
            &eab_hmac_key,
        ])
        .await
        .assert_success("certbot certonly --eab-kid --eab-hmac-key");
    assert_issued(&acme, &certbot.live(name).fullchain, &[name]);
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/acme/profiles/{profile_id}/eab-keys"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = &body["data"][0];
    assert_eq!(key["key_id"], kid.as_str(), "{body}");
    assert_eq!(key["status"], "used", "{body}");
    assert!(key["account_id"].is_i64(), "{body}");
    Ok(())
}
