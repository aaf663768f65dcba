//! The ACME server driven by a Rust ACME client (instant-acme), with real challenge
//! responders: accounts, orders for DNS names and IP addresses, http-01, dns-01 and
//! tls-alpn-01, certificates that openssl verifies.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::acme_jws::{RawClient, jws};
use crate::acme_peers::{HttpResponder, TlsAlpnResponder};
use authority::Clock;

use crate::common::{Auth, TestResult, TestServer, openssl};
use certmint_server::settings::Settings;
use reqwest::{Method, StatusCode};

/// A test server whose validator reaches the given ports on 127.0.0.1 for every name.
pub struct AcmeServer {
    pub server: TestServer,
    pub dir: tempfile::TempDir,
    /// The root CA, PEM file.
    pub root: PathBuf,
}

impl AcmeServer {
    pub async fn start(
        http_port: u16,
        tls_port: u16,
        dns: Option<std::net::SocketAddr>,
        names: &[&str],
    ) -> Self {
        Self::start_with(http_port, tls_port, dns, names, |_| {}).await
    }

    /// As [`AcmeServer::start`], with private addresses allowed and then `configure` applied
    /// to the settings.
    pub async fn start_with(
        http_port: u16,
        tls_port: u16,
        dns: Option<std::net::SocketAddr>,
        names: &[&str],
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let hosts = names
            .iter()
            .map(|n| ((*n).to_owned(), "127.0.0.1".to_owned()))
            .collect();
        let server = TestServer::start_with(|s| {
            s.acme.validation.allow_private_addresses = true;
            s.acme.validation.http_port = http_port;
            s.acme.validation.tls_port = tls_port;
            s.acme.validation.hosts = hosts;
            if let Some(dns) = dns {
                s.acme.validation.dns_resolver = dns.to_string();
            }
            configure(s);
        })
        .await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let authority = &server.running.as_ref().expect("running").app.authority;
        let ca = authority.default_ca().await.expect("default CA");
        let chain = authority.ca_chain(ca.id).await.expect("chain");
        let root = dir.path().join("root.pem");
        std::fs::write(
            &root,
            pki::pem::encode("CERTIFICATE", chain.last().expect("a root")),
        )
        .expect("root PEM");
        Self { server, dir, root }
    }

    pub fn directory(&self) -> String {
        self.server.url("/acme/directory")
    }

    pub async fn account(&self) -> Account {
        let (account, _) = Account::builder_with_root(&self.root)
            .expect("client")
            .create(
                &NewAccount {
                    contact: &["mailto:admin@example.test"],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.directory(),
                None,
            )
            .await
            .expect("account");
        account
    }

    /// Verifies a PEM chain (leaf first) against the root with openssl.
    pub fn verify(&self, chain_pem: &str) -> Result<String, String> {
        let path = self.dir.path().join("chain.pem");
        std::fs::write(&path, chain_pem).map_err(|e| e.to_string())?;
        openssl(
            self.dir.path(),
            &[
                "verify",
                "-CAfile",
                &self.root.display().to_string(),
                "-untrusted",
                &path.display().to_string(),
                &path.display().to_string(),
            ],
        )
    }
}

pub fn retries() -> RetryPolicy {
    RetryPolicy::default()
        .initial_delay(Duration::from_millis(50))
        .backoff(1.5)
        .timeout(Duration::from_secs(30))
}

/// Answers each pending authorization's `kind` challenge of `order` with `answer`, and waits
/// until the order is ready.
pub async fn make_ready(
    mut order: instant_acme::Order,
    kind: ChallengeType,
    answer: impl Fn(&Identifier, &str, &str),
) -> TestResult<instant_acme::Order> {
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let mut challenge = authz
            .challenge(kind.clone())
            .ok_or("challenge not offered")?;
        let identifier = challenge.identifier().identifier.clone();
        let key_authorization = challenge.key_authorization();
        answer(&identifier, &challenge.token, key_authorization.as_str());
        challenge.set_ready().await?;
    }
    let status = order.poll_ready(&retries()).await?;
    if status != OrderStatus::Ready {
        return Err(format!("order is {status:?}: {:?}", order.state().error).into());
    }
    Ok(order)
}

/// Orders `identifiers`, answers each authorization's `kind` challenge with `answer`,
/// finalizes, and returns the certificate chain.
pub async fn obtain(
    account: &Account,
    identifiers: &[Identifier],
    kind: ChallengeType,
    answer: impl Fn(&Identifier, &str, &str),
) -> TestResult<String> {
    let order = account.new_order(&NewOrder::new(identifiers)).await?;
    let mut order = make_ready(order, kind, answer).await?;
    order.finalize().await?;
    Ok(order.poll_certificate(&retries()).await?)
}

/// A CSR for `names` with an empty subject (rcgen's default common name names no identifier),
/// and its key.
pub fn csr(names: &[&str]) -> TestResult<(rcgen::KeyPair, rcgen::CertificateSigningRequest)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    Ok((key, csr))
}

fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.into())
}

#[tokio::test]
async fn http01_for_two_names_gives_a_certificate_openssl_verifies() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(
        http.port(),
        1,
        None,
        &["www.example.test", "api.example.test"],
    )
    .await;
    let account = acme.account().await;
    let chain = obtain(
        &account,
        &[dns("www.example.test"), dns("api.example.test")],
        ChallengeType::Http01,
        |_, token, key_authorization| http.set(token, key_authorization),
    )
    .await?;
    let verified = acme.verify(&chain)?;
    assert!(verified.contains(": OK"), "{verified}");
    let text = openssl(
        acme.dir.path(),
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            &acme.dir.path().join("chain.pem").display().to_string(),
        ],
    )?;
    assert!(
        text.contains("DNS:www.example.test") && text.contains("DNS:api.example.test"),
        "{text}"
    );
    // The validator really fetched each token from the responder.
    assert_eq!(http.requests().len(), 2, "{:?}", http.requests());
    Ok(())
}

#[tokio::test]
async fn tls_alpn01_and_ip_identifiers() -> TestResult {
    let tls = TlsAlpnResponder::start();
    let acme = AcmeServer::start(1, tls.port(), None, &["alpn.example.test"]).await;
    let account = acme.account().await;
    let ip: IpAddr = "127.0.0.1".parse()?;
    let chain = obtain(
        &account,
        &[dns("alpn.example.test"), Identifier::Ip(ip)],
        ChallengeType::TlsAlpn01,
        |identifier, _, key_authorization| match identifier {
            Identifier::Dns(name) => tls.set(name, key_authorization),
            Identifier::Ip(ip) => tls.set_ip(*ip, key_authorization),
            _ => {}
        },
    )
    .await?;
    let verified = acme.verify(&chain)?;
    assert!(verified.contains(": OK"), "{verified}");
    let text = openssl(
        acme.dir.path(),
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            &acme.dir.path().join("chain.pem").display().to_string(),
        ],
    )?;
    assert!(
        text.contains("DNS:alpn.example.test") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    assert_eq!(tls.hellos().len(), 2, "{:?}", tls.hellos());
    Ok(())
}

#[tokio::test]
async fn dns01_with_a_wildcard() -> TestResult {
    let dns_server = crate::acme_peers::DnsServer::start();
    let acme = AcmeServer::start(1, 1, Some(dns_server.addr()), &[]).await;
    let account = acme.account().await;
    let records = std::sync::Mutex::new(std::collections::HashMap::<String, Vec<String>>::new());
    let chain = obtain(
        &account,
        &[dns("*.wild.example.test"), dns("wild.example.test")],
        ChallengeType::Dns01,
        |identifier, _, key_authorization| {
            if let Identifier::Dns(name) = identifier {
                let record = format!("_acme-challenge.{name}");
                let mut records = records
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let values = records.entry(record.clone()).or_default();
                values.push(pki::jose::dns01_txt_value(key_authorization));
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                dns_server.set_txt(&record, &values);
            }
        },
    )
    .await?;
    assert!(acme.verify(&chain)?.contains(": OK"));
    let text = openssl(
        acme.dir.path(),
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            &acme.dir.path().join("chain.pem").display().to_string(),
        ],
    )?;
    assert!(
        text.contains("DNS:*.wild.example.test") && text.contains("DNS:wild.example.test"),
        "{text}"
    );
    Ok(())
}

/// Serves every request on `address` with `respond`, counting them.
async fn fixed_responder(
    address: std::net::SocketAddr,
    respond: fn(u16) -> axum::response::Response,
) -> Arc<AtomicUsize> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("responder listener");
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let port = address.port();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::ready(respond(port))
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    count
}

/// Issue 17, item 4, end to end: the challenge URL of `evil.test` (127.0.0.1) redirects to
/// the cloud metadata path on 127.0.0.2, where a secret is served. By default the validator
/// connects to neither; allowed private addresses (a lab), it follows the redirect, but the
/// problem still does not read the secret back.
#[tokio::test]
async fn http01_neither_reaches_internal_addresses_nor_reads_them_back() -> TestResult {
    use axum::response::IntoResponse;
    let port = crate::acme_peers::free_port();
    let internal: IpAddr = "127.0.0.2".parse()?;
    let secret = fixed_responder((internal, port).into(), |_| {
        "INTERNAL-SECRET-TOKEN aws_secret_access_key=AKIAEXAMPLE".into_response()
    })
    .await;
    let redirector = fixed_responder(([127, 0, 0, 1], port).into(), |port| {
        axum::response::Redirect::to(&format!(
            "http://127.0.0.2:{port}/latest/meta-data/iam/security-credentials/role"
        ))
        .into_response()
    })
    .await;
    for (allow_private, kind) in [(false, "connection"), (true, "incorrectResponse")] {
        let acme = AcmeServer::start_with(port, 1, None, &["evil.test"], |s| {
            s.acme.validation.allow_private_addresses = allow_private;
        })
        .await;
        let account = acme.account().await;
        let mut order = account
            .new_order(&NewOrder::new(&[dns("evil.test")]))
            .await?;
        let mut problems = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            let mut challenge = authz.challenge(ChallengeType::Http01).ok_or("no http-01")?;
            challenge.set_ready().await?;
        }
        match order.poll_ready(&retries()).await {
            Err(instant_acme::Error::Api(problem)) => problems.push(format!("{problem:?}")),
            other => return Err(format!("expected the order to fail, got {other:?}").into()),
        }
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let authz = authz?;
            for challenge in &authz.challenges {
                problems.push(format!("{:?}", challenge.error));
            }
        }
        let problems = problems.join("\n");
        assert!(problems.contains(kind), "{problems}");
        for leaked in [
            "INTERNAL-SECRET",
            "AKIA",
            "127.0.0.2",
            "meta-data",
            "127.0.0.1",
        ] {
            assert!(!problems.contains(leaked), "{leaked} in {problems}");
        }
        if !allow_private {
            assert_eq!(redirector.load(Ordering::SeqCst), 0);
            assert_eq!(secret.load(Ordering::SeqCst), 0);
        }
    }
    assert!(secret.load(Ordering::SeqCst) > 0);
    Ok(())
}

/// An http-01 responder that takes `delay` over each answer and records the most requests it
/// had in hand at once.
#[derive(Default)]
struct SlowResponder {
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl SlowResponder {
    async fn start(port: u16, delay: Duration) -> Arc<Self> {
        let responder = Arc::new(Self::default());
        let state = responder.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let state = state.clone();
            async move {
                let running = state.now.fetch_add(1, Ordering::SeqCst) + 1;
                state.most.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                state.now.fetch_sub(1, Ordering::SeqCst);
                let token = uri.path().rsplit('/').next().unwrap_or_default();
                let answer = state.tokens.lock().expect("lock").get(token).cloned();
                answer.unwrap_or_default()
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("responder listener");
        tokio::spawn(async move { axum::serve(listener, app).await });
        responder
    }
}

/// With one validation per account at a time, an order whose three challenges are answered at
/// once is validated one challenge after the other, and still completes.
#[tokio::test]
async fn an_accounts_validations_over_its_cap_wait_their_turn() -> TestResult {
    let port = crate::acme_peers::free_port();
    let responder = SlowResponder::start(port, Duration::from_millis(300)).await;
    let names = ["q1.example.test", "q2.example.test", "q3.example.test"];
    let acme = AcmeServer::start_with(port, 1, None, &names, |s| {
        s.acme.validation.max_in_flight_per_account = 1;
    })
    .await;
    let account = acme.account().await;
    let identifiers: Vec<Identifier> = names.iter().map(|n| dns(n)).collect();
    let chain = obtain(
        &account,
        &identifiers,
        ChallengeType::Http01,
        |_, token, ka| {
            responder
                .tokens
                .lock()
                .expect("lock")
                .insert(token.to_owned(), ka.to_owned());
        },
    )
    .await?;
    assert!(acme.verify(&chain)?.contains(": OK"));
    assert_eq!(responder.most.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_orders_on_one_account_all_complete() -> TestResult {
    let http = std::sync::Arc::new(HttpResponder::start());
    let names: Vec<String> = (0..50).map(|i| format!("n{i}.example.test")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let acme = AcmeServer::start(http.port(), 1, None, &name_refs).await;
    let account = acme.account().await;
    let mut tasks = tokio::task::JoinSet::new();
    for name in names.clone() {
        let (account, http) = (account.clone(), http.clone());
        tasks.spawn(async move {
            obtain(
                &account,
                &[dns(&name)],
                ChallengeType::Http01,
                |_, token, ka| http.set(token, ka),
            )
            .await
            .map_err(|e| format!("{name}: {e}"))
        });
    }
    let mut chains = Vec::new();
    while let Some(done) = tasks.join_next().await {
        chains.push(done??);
    }
    assert_eq!(chains.len(), 50);
    for chain in &chains {
        assert!(acme.verify(chain)?.contains(": OK"));
    }
    let stored = acme
        .server
        .raw_store()
        .await
        .certificates(
            &Default::default(),
            acme.server.clock.now(),
            store::PageRequest {
                page: 1,
                per_page: 100,
                after: None,
            },
        )
        .await?;
    assert_eq!(
        stored
            .items
            .iter()
            .filter(|c| c.source == authority::CertificateSource::Acme)
            .count(),
        50
    );
    Ok(())
}

#[tokio::test]
async fn key_rollover_and_deactivation() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["roll.example.test"]).await;
    let (key, der) = instant_acme::Key::generate_pkcs8()?;
    let (mut account, _) = Account::builder_with_root(&acme.root)?
        .create_from_key((key, der.clone_key().into()), acme.directory())
        .await?;
    let _credentials = account.update_key().await?;
    // The old key no longer finds the account; the new one still orders.
    let old = Account::builder_with_root(&acme.root)?
        .from_key(
            (
                instant_acme::Key::from_pkcs8_der(der.clone_key())?,
                der.into(),
            ),
            acme.directory(),
        )
        .await;
    let message = format!("{:?}", old.err());
    assert!(message.contains("accountDoesNotExist"), "{message}");
    let chain = obtain(
        &account,
        &[dns("roll.example.test")],
        ChallengeType::Http01,
        |_, t, ka| http.set(t, ka),
    )
    .await?;
    assert!(acme.verify(&chain)?.contains(": OK"));
    account.clone().deactivate().await?;
    let refused = account
        .new_order(&NewOrder::new(&[dns("roll.example.test")]))
        .await;
    let message = format!("{:?}", refused.err());
    assert!(
        message.contains("unauthorized") && message.contains("deactivated"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn renewal_information_and_replacement_orders() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["ari.example.test"]).await;
    let account = acme.account().await;
    let chain = obtain(
        &account,
        &[dns("ari.example.test")],
        ChallengeType::Http01,
        |_, t, ka| http.set(t, ka),
    )
    .await?;
    let leaf_pem: Vec<Vec<u8>> = pki::pem::find_blocks(chain.as_bytes())?
        .into_iter()
        .map(|b| b.der)
        .collect();
    let leaf = rustls::pki_types::CertificateDer::from(leaf_pem[0].clone());
    let id = instant_acme::CertificateIdentifier::try_from(&leaf)?;
    let (info, retry) = account.renewal_info(&id).await?;
    let parsed = pki::inspect::Certificate::parse(&leaf_pem[0])?;
    let (start, end) = (info.suggested_window.start, info.suggested_window.end);
    assert!(
        parsed.not_before < start && start < end && end < parsed.not_after,
        "{start} {end}"
    );
    assert!(retry > Duration::from_secs(3600), "{retry:?}");

    let identifiers = [dns("ari.example.test")];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers).replaces(id.clone()))
        .await?;
    assert_eq!(order.state().status, OrderStatus::Pending);
    let mut order = make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?;
    order.finalize().await?;
    let renewed = order.poll_certificate(&retries()).await?;
    assert!(acme.verify(&renewed)?.contains(": OK"));
    // Replaced once by a finalized order, the certificate cannot be replaced again.
    let again = account
        .new_order(&NewOrder::new(&identifiers).replaces(id))
        .await;
    let message = format!("{:?}", again.err());
    assert!(message.contains("alreadyReplaced"), "{message}");
    // The inventory links the new certificate to the one it renews.
    let store = acme.server.raw_store().await;
    let page = store
        .certificates(
            &Default::default(),
            acme.server.clock.now(),
            store::PageRequest {
                page: 1,
                per_page: 10,
                after: None,
            },
        )
        .await?;
    assert!(
        page.items.iter().any(|c| c.renewed_from.is_some()),
        "no certificate records what it renews"
    );
    Ok(())
}

/// Every JWS algorithm the server accepts registers an account and places an order.
#[tokio::test]
async fn each_jws_algorithm_registers_and_orders() -> TestResult {
    let acme = AcmeServer::start(1, 1, None, &[]).await;
    for alg in ["RS256", "ES256", "ES384", "EdDSA"] {
        let mut client = RawClient::new(acme.server.client.clone(), &acme.directory(), alg).await;
        let created = client.register().await;
        assert_eq!(created.status, 201, "{alg}: {}", created.body);
        assert!(
            client
                .kid
                .as_deref()
                .is_some_and(|k| k.contains("/acme/default/acct/")),
            "{alg}"
        );
        // The same key again finds the same account.
        client.kid = None;
        let again = client.register().await;
        assert_eq!(again.status, 200, "{alg}: {}", again.body);
        let order = client
            .post(
                &client.url("newOrder"),
                Some(&json!({"identifiers": [{"type": "dns", "value": "alg.example.test"}]})),
            )
            .await;
        assert_eq!(order.status, 201, "{alg}: {}", order.body);
        assert_eq!(order.body["status"], "pending");
        assert!(!order.header("replay-nonce").is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_the_rfc_error_types() -> TestResult {
    let acme = AcmeServer::start(1, 1, None, &[]).await;
    let mut client = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    client.register().await;
    let new_order = client.url("newOrder");
    let order_payload = json!({"identifiers": [{"type": "dns", "value": "bad.example.test"}]});

    // A signature that does not verify.
    let header = client.header(&new_order).await;
    let mut body = jws(&client.key, &header, Some(&order_payload));
    let mut signature = body["signature"].as_str().unwrap_or_default().to_owned();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    signature.replace_range(0..1, flipped);
    body["signature"] = json!(signature);
    let reply = client.send(&new_order, &body).await;
    assert_eq!(
        (reply.status.as_u16(), reply.problem_type()),
        (400, "urn:ietf:params:acme:error:malformed"),
        "{}",
        reply.body
    );
    assert_eq!(reply.header("content-type"), "application/problem+json");

    // A nonce used twice: badNonce, with a fresh nonce to retry with.
    let header = client.header(&new_order).await;
    let body = jws(&client.key, &header, Some(&order_payload));
    assert_eq!(client.send(&new_order, &body).await.status, 201);
    let replayed = client.send(&new_order, &body).await;
    assert_eq!(
        replayed.problem_type(),
        "urn:ietf:params:acme:error:badNonce",
        "{}",
        replayed.body
    );
    assert!(!replayed.header("replay-nonce").is_empty());
    // A nonce this server never issued.
    let mut header = client.header(&new_order).await;
    header["nonce"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let made_up = client
        .send(&new_order, &jws(&client.key, &header, Some(&order_payload)))
        .await;
    assert_eq!(
        made_up.problem_type(),
        "urn:ietf:params:acme:error:badNonce"
    );

    // The JWS names another URL than the one it was sent to.
    let mut header = client.header(&new_order).await;
    header["url"] = json!(client.url("revokeCert"));
    let wrong_url = client
        .send(&new_order, &jws(&client.key, &header, Some(&order_payload)))
        .await;
    assert_eq!(
        wrong_url.problem_type(),
        "urn:ietf:params:acme:error:unauthorized",
        "{}",
        wrong_url.body
    );

    // An account that does not exist.
    let mut header = client.header(&new_order).await;
    header["kid"] = json!(
        acme.server
            .url("/acme/default/acct/0190000000007000800000000000dead")
    );
    let unknown = client
        .send(&new_order, &jws(&client.key, &header, Some(&order_payload)))
        .await;
    assert_eq!(
        unknown.problem_type(),
        "urn:ietf:params:acme:error:accountDoesNotExist",
        "{}",
        unknown.body
    );

    // Algorithms the server refuses, listed in the problem.
    for alg in ["none", "HS256"] {
        let mut header = client.header(&new_order).await;
        header["alg"] = json!(alg);
        let refused = client
            .send(&new_order, &jws(&client.key, &header, Some(&order_payload)))
            .await;
        assert_eq!(
            refused.problem_type(),
            "urn:ietf:params:acme:error:badSignatureAlgorithm",
            "{alg}"
        );
        assert!(
            refused.body["algorithms"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("ES256"))),
            "{}",
            refused.body
        );
    }

    // Not application/jose+json.
    let header = client.header(&new_order).await;
    let body = jws(&client.key, &header, Some(&order_payload));
    let plain = acme
        .server
        .client
        .post(&new_order)
        .json(&body)
        .send()
        .await?;
    assert_eq!(plain.status(), 415);

    // Identifiers: an unknown type, and a DNS name that is not one.
    let email = client
        .post(
            &new_order,
            Some(&json!({"identifiers": [{"type": "email", "value": "a@b.test"}]})),
        )
        .await;
    assert_eq!(
        email.problem_type(),
        "urn:ietf:params:acme:error:unsupportedIdentifier",
        "{}",
        email.body
    );
    let junk = client
        .post(
            &new_order,
            Some(&json!({"identifiers": [{"type": "dns", "value": "a..b"}]})),
        )
        .await;
    assert_eq!(
        junk.problem_type(),
        "urn:ietf:params:acme:error:rejectedIdentifier",
        "{}",
        junk.body
    );

    // Finalize before the order is ready.
    let order = client.post(&new_order, Some(&order_payload)).await;
    let finalize = order.body["finalize"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let csr = rcgen::CertificateParams::new(vec!["bad.example.test".to_owned()])?
        .serialize_request(&rcgen::KeyPair::generate()?)?;
    let early = client
        .post(&finalize, Some(&json!({"csr": B64.encode(csr.der())})))
        .await;
    assert_eq!(
        (early.status.as_u16(), early.problem_type()),
        (403, "urn:ietf:params:acme:error:orderNotReady"),
        "{}",
        early.body
    );
    Ok(())
}

#[tokio::test]
async fn a_csr_with_names_the_order_lacks_is_refused() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["csr.example.test"]).await;
    let account = acme.account().await;
    let identifiers = [dns("csr.example.test")];
    let order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut order = make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?;
    let (_, extra) = csr(&["csr.example.test", "other.example.test"])?;
    let refused = order.finalize_csr(extra.der()).await;
    let message = format!("{:?}", refused.err());
    assert!(
        message.contains("badCSR") && message.contains("other.example.test"),
        "{message}"
    );
    // The order is still ready: a correct CSR finalizes it.
    let (_, good) = csr(&["csr.example.test"])?;
    order.finalize_csr(good.der()).await?;
    let chain = order.poll_certificate(&retries()).await?;
    assert!(acme.verify(&chain)?.contains(": OK"));
    Ok(())
}

#[tokio::test]
async fn processing_orders_say_when_to_look_again_and_limits_answer_429() -> TestResult {
    let acme = AcmeServer::start(1, 1, None, &[]).await;
    let mut client = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    client.register().await;
    let new_order = client.url("newOrder");
    let payload = json!({"identifiers": [{"type": "dns", "value": "slow.example.test"}]});
    let order = client.post(&new_order, Some(&payload)).await;
    let url = order.header("location").to_owned();
    let raw = acme.server.raw_store().await;
    let refid = url.rsplit('/').next().unwrap_or_default();
    raw.execute_raw(&format!(
        "UPDATE acme_orders SET status = 'processing' WHERE refid = '{refid}'"
    ))
    .await?;
    let polled = client.post(&url, None).await;
    assert_eq!(polled.body["status"], "processing", "{}", polled.body);
    assert_eq!(polled.header("retry-after"), "1");

    raw.execute_raw("UPDATE acme_state SET orders_per_account_hour = 2")
        .await?;
    // The settings are read at most a second stale.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(client.post(&new_order, Some(&payload)).await);
    }
    let limited = statuses.last().ok_or("no reply")?;
    assert_eq!(
        (limited.status.as_u16(), limited.problem_type()),
        (429, "urn:ietf:params:acme:error:rateLimited"),
        "{}",
        limited.body
    );
    assert!(
        limited
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s > 0 && s <= 3600),
        "{}",
        limited.header("retry-after")
    );
    Ok(())
}

/// A node set the order `processing` and died before it issued: after five minutes the order
/// is `ready` again and finalizes; before that it is not ready.
#[tokio::test]
async fn an_order_abandoned_while_processing_is_ready_again() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["abandoned.example.test"]).await;
    let account = acme.account().await;
    let identifiers = [dns("abandoned.example.test")];
    let order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut order = make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?;
    let refid = order.url().rsplit('/').next().ok_or("refid")?.to_owned();
    let store = acme.server.raw_store().await;
    let mut tx = store.begin_write().await?;
    let row = tx
        .acme_orders_named(&[refid.as_str()])
        .await?
        .pop()
        .ok_or("the order")?;
    let change = store::AcmeOrderChange {
        status: store::AcmeStatus::Processing,
        authorizations: row.authorizations.clone(),
        error: None,
        certificate_id: None,
    };
    tx.update_acme_orders(&[(row.id, change, acme.server.clock.now())])
        .await?;
    tx.commit().await?;
    assert_eq!(order.refresh().await?.status, OrderStatus::Processing);
    let (_, request) = csr(&["abandoned.example.test"])?;
    let early = format!("{:?}", order.finalize_csr(request.der()).await.err());
    assert!(early.contains("orderNotReady"), "{early}");

    acme.server.clock.advance(time::Duration::minutes(6));
    assert_eq!(order.refresh().await?.status, OrderStatus::Ready);
    order.finalize_csr(request.der()).await?;
    let chain = order.poll_certificate(&retries()).await?;
    // Issued on the test clock, six minutes ahead: openssl would call it not yet valid.
    let leaf = pki::pem::find_blocks(chain.as_bytes())?
        .into_iter()
        .next()
        .ok_or("no certificate")?;
    let leaf = pki::inspect::Certificate::parse(&leaf.der)?;
    assert_eq!(
        leaf.dns_names().collect::<Vec<_>>(),
        ["abandoned.example.test"]
    );
    Ok(())
}

/// Two finalizations a node did not finish: one stopped before the certificate was stored,
/// one after. Half a minute on, the recovery job makes the first ready again and the second
/// valid with its certificate — the one already stored, not a second.
#[tokio::test]
async fn the_recovery_job_finishes_orders_a_node_left_processing() -> TestResult {
    let http = HttpResponder::start();
    let names = ["before.example.test", "after.example.test"];
    let acme = AcmeServer::start(http.port(), 1, None, &names).await;
    let account = acme.account().await;
    let mut orders = Vec::new();
    for name in names {
        let order = account.new_order(&NewOrder::new(&[dns(name)])).await?;
        orders.push(make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?);
    }
    let (_, request) = csr(&["after.example.test"])?;
    orders[1].finalize_csr(request.der()).await?;
    let issued = orders[1].poll_certificate(&retries()).await?;

    let store = acme.server.raw_store().await;
    let refids: Vec<String> = orders
        .iter()
        .map(|o| o.url().rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let mut tx = store.begin_write().await?;
    let rows = tx
        .acme_orders_named(&refids.iter().map(String::as_str).collect::<Vec<_>>())
        .await?;
    let changes: Vec<_> = rows
        .iter()
        .map(|row| {
            let change = store::AcmeOrderChange {
                status: store::AcmeStatus::Processing,
                authorizations: row.authorizations.clone(),
                error: None,
                certificate_id: None,
            };
            (row.id, change, acme.server.clock.now())
        })
        .collect();
    tx.update_acme_orders(&changes).await?;
    tx.commit().await?;
    for order in &mut orders {
        assert_eq!(order.refresh().await?.status, OrderStatus::Processing);
    }

    // Only the run asked for below, so that its summary counts both orders.
    let admin = acme.server.admin().await;
    let (status, body) = acme
        .server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/recovery",
            &Auth::Session(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acme.server.clock.advance(time::Duration::seconds(31));
    let job = crate::jobs::run_job(&acme.server, &admin, "recovery").await?;
    assert_eq!(
        job["last_run"]["summary"],
        "1 stalled ACME orders finished with their certificate, 1 made ready again",
        "{job}"
    );
    assert_eq!(orders[0].refresh().await?.status, OrderStatus::Ready);
    assert_eq!(orders[1].refresh().await?.status, OrderStatus::Valid);
    assert_eq!(orders[1].poll_certificate(&retries()).await?, issued);
    let (status, listed) = acme
        .server
        .call(
            Method::GET,
            "/api/v2/certificates?search=after.example.test",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["meta"]["total"], 1,
        "one certificate, not two: {listed}"
    );
    Ok(())
}

#[tokio::test]
async fn revocation_by_the_certificates_own_key() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["revoke.example.test"]).await;
    let account = acme.account().await;
    let identifiers = [dns("revoke.example.test")];
    let order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut order = make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?;
    let (key, request) = csr(&["revoke.example.test"])?;
    order.finalize_csr(request.der()).await?;
    let chain = order.poll_certificate(&retries()).await?;
    let leaf = pki::pem::find_blocks(chain.as_bytes())?
        .into_iter()
        .next()
        .ok_or("no certificate")?
        .der;
    let payload = json!({"certificate": B64.encode(&leaf), "reason": 1});

    // Someone else's key may not revoke it.
    let stranger = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    let refused = stranger
        .post(&stranger.url("revokeCert"), Some(&payload))
        .await;
    assert_eq!(
        refused.problem_type(),
        "urn:ietf:params:acme:error:unauthorized",
        "{}",
        refused.body
    );
    // A reason a subscriber may not give.
    let mut holder = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    holder.key = crate::acme_jws::SigningKey::p256_from_pkcs8(&key.serialize_der());
    let bad_reason = holder
        .post(
            &holder.url("revokeCert"),
            Some(&json!({"certificate": B64.encode(&leaf), "reason": 6})),
        )
        .await;
    assert_eq!(
        bad_reason.problem_type(),
        "urn:ietf:params:acme:error:badRevocationReason",
        "{}",
        bad_reason.body
    );
    // The certificate's own key, in the JWS header as a jwk, may.
    let revoked = holder.post(&holder.url("revokeCert"), Some(&payload)).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let again = holder.post(&holder.url("revokeCert"), Some(&payload)).await;
    assert_eq!(
        again.problem_type(),
        "urn:ietf:params:acme:error:alreadyRevoked",
        "{}",
        again.body
    );
    let serial = pki::inspect::Certificate::parse(&leaf)?.serial;
    let stored = acme
        .server
        .raw_store()
        .await
        .certificates_with_serial(&serial)
        .await?;
    assert_eq!(
        stored
            .first()
            .map(|c| (c.status.as_str(), c.revocation_reason.as_deref())),
        Some(("revoked", Some("keyCompromise")))
    );
    Ok(())
}

#[tokio::test]
async fn order_lists_expiry_and_per_address_account_limits() -> TestResult {
    let acme = AcmeServer::start(1, 1, None, &[]).await;
    let mut client = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    let account = client.register().await;
    let new_order = client.url("newOrder");
    let payload = json!({"identifiers": [{"type": "dns", "value": "list.example.test"}, {"type": "ip", "value": "192.0.2.1"}]});
    let first = client.post(&new_order, Some(&payload)).await;
    let second = client.post(&new_order, Some(&payload)).await;
    let orders_url = account.body["orders"].as_str().ok_or("no orders URL")?;
    let listed = client.post(orders_url, None).await;
    let urls = listed.body["orders"].as_array().ok_or("no orders")?;
    assert_eq!(urls.len(), 2, "{}", listed.body);
    for order in [&first, &second] {
        assert!(
            urls.contains(&json!(order.header("location"))),
            "{}",
            listed.body
        );
    }
    // An IP identifier is offered http-01 and tls-alpn-01, never dns-01 (RFC 8738 §7).
    let authz_urls = first.body["authorizations"]
        .as_array()
        .ok_or("no authorizations")?
        .clone();
    let ip_authz = client
        .post(authz_urls[1].as_str().unwrap_or_default(), None)
        .await;
    let kinds: Vec<&str> = ip_authz.body["challenges"]
        .as_array()
        .ok_or("no challenges")?
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(kinds, ["http-01", "tls-alpn-01"], "{}", ip_authz.body);

    // Unfinished, an order expires after seven days, and its authorizations with it.
    acme.server.clock.advance(time::Duration::days(8));
    let expired = client.post(first.header("location"), None).await;
    assert_eq!(expired.body["status"], "invalid", "{}", expired.body);
    let authz = client
        .post(authz_urls[0].as_str().unwrap_or_default(), None)
        .await;
    assert_eq!(authz.body["status"], "expired", "{}", authz.body);

    // New accounts per client address and hour.
    acme.server
        .raw_store()
        .await
        .execute_raw("UPDATE acme_state SET accounts_per_address_hour = 1")
        .await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The clock moved on: the window is new, so one more account is let in, and no more.
    let mut newcomer = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    assert_eq!(newcomer.register().await.status, 201);
    let mut another = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    let limited = another.register().await;
    assert_eq!(
        (limited.status.as_u16(), limited.problem_type()),
        (429, "urn:ietf:params:acme:error:rateLimited"),
        "{}",
        limited.body
    );
    assert!(!limited.header("retry-after").is_empty());
    Ok(())
}

#[tokio::test]
async fn identifiers_outside_a_profile_are_refused_one_by_one() -> TestResult {
    let acme = AcmeServer::start(1, 1, None, &[]).await;
    acme.server
        .raw_store()
        .await
        .execute_raw("UPDATE acme_profiles SET allowed_identifiers = 'example.test 10.0.0.0/8' WHERE is_default = 1")
        .await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut client = RawClient::new(acme.server.client.clone(), &acme.directory(), "EdDSA").await;
    client.register().await;
    let refused = client
        .post(
            &client.url("newOrder"),
            Some(&json!({"identifiers": [
                {"type": "dns", "value": "ok.example.test"},
                {"type": "dns", "value": "evil.test"},
                {"type": "ip", "value": "192.0.2.9"},
            ]})),
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.problem_type()),
        (403, "urn:ietf:params:acme:error:rejectedIdentifier"),
        "{}",
        refused.body
    );
    let subproblems = refused.body["subproblems"]
        .as_array()
        .ok_or("no subproblems")?;
    let refused_ids: Vec<&Value> = subproblems.iter().map(|p| &p["identifier"]).collect();
    assert_eq!(
        refused_ids,
        [
            &json!({"type": "dns", "value": "evil.test"}),
            &json!({"type": "ip", "value": "192.0.2.9"})
        ],
        "{}",
        refused.body
    );
    let allowed = client
        .post(&client.url("newOrder"), Some(&json!({"identifiers": [{"type": "dns", "value": "ok.example.test"}, {"type": "ip", "value": "10.1.2.3"}]})))
        .await;
    assert_eq!(allowed.status, 201, "{}", allowed.body);
    Ok(())
}

#[tokio::test]
async fn nonces_contacts_and_the_chain_download_follow_the_rfc() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["dl.example.test"]).await;
    let client = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    // newNonce: HEAD 200, GET 204, both with a nonce, never cached, linking the directory.
    let head = acme
        .server
        .client
        .head(client.url("newNonce"))
        .send()
        .await?;
    let get = acme
        .server
        .client
        .get(client.url("newNonce"))
        .send()
        .await?;
    assert_eq!((head.status().as_u16(), get.status().as_u16()), (200, 204));
    for response in [&head, &get] {
        assert!(response.headers().contains_key("replay-nonce"));
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(
            response.headers()["link"]
                .to_str()?
                .contains("rel=\"index\"")
        );
    }
    // ACME is not served over plain HTTP.
    let plain = acme
        .server
        .client
        .get(format!("{}/acme/directory", acme.server.http))
        .send()
        .await?;
    assert_eq!(plain.status(), 403);

    // Contacts change; a contact that is not mailto: is refused.
    let mut client = client;
    let account = client.register().await;
    let kid = client.kid.clone().ok_or("no kid")?;
    let updated = client
        .post(&kid, Some(&json!({"contact": ["mailto:new@example.test"]})))
        .await;
    assert_eq!(
        updated.body["contact"],
        json!(["mailto:new@example.test"]),
        "{}",
        updated.body
    );
    let refused = client
        .post(&kid, Some(&json!({"contact": ["tel:+1555"]})))
        .await;
    assert_eq!(
        refused.problem_type(),
        "urn:ietf:params:acme:error:unsupportedContact",
        "{}",
        refused.body
    );
    assert_eq!(
        client.post(&kid, None).await.body["contact"],
        json!(["mailto:new@example.test"])
    );
    assert_eq!(account.status, 201);

    // The certificate comes as a PEM chain, leaf first.
    let order = client
        .post(
            &client.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "dl.example.test"}]})),
        )
        .await;
    let authz_url = order.body["authorizations"][0]
        .as_str()
        .ok_or("no authorization")?
        .to_owned();
    let authz = client.post(&authz_url, None).await;
    let challenge = authz.body["challenges"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "http-01"))
        .ok_or("no http-01")?
        .clone();
    let thumbprint = pki::jose::Jwk::from_json(&client.key.jwk())?.thumbprint();
    let token = challenge["token"].as_str().unwrap_or_default();
    http.set(token, &pki::jose::key_authorization(token, &thumbprint));
    client
        .post(
            challenge["url"].as_str().unwrap_or_default(),
            Some(&json!({})),
        )
        .await;
    let order_url = order.header("location").to_owned();
    for _ in 0..100 {
        if client.post(&order_url, None).await.body["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, request) = csr(&["dl.example.test"])?;
    let finalized = client
        .post(
            order.body["finalize"].as_str().unwrap_or_default(),
            Some(&json!({"csr": B64.encode(request.der())})),
        )
        .await;
    assert_eq!(finalized.body["status"], "valid", "{}", finalized.body);
    let certificate_url = finalized.body["certificate"]
        .as_str()
        .ok_or("no certificate URL")?;
    let header = client.header(certificate_url).await;
    let download = acme
        .server
        .client
        .post(certificate_url)
        .header("content-type", "application/jose+json")
        .body(jws(&client.key, &header, None).to_string())
        .send()
        .await?;
    assert_eq!(
        download.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let pem = download.text().await?;
    assert_eq!(
        pem.matches("-----BEGIN CERTIFICATE-----").count(),
        3,
        "leaf, issuing CA, root"
    );
    assert!(acme.verify(&pem)?.contains(": OK"));
    // Another account may not download it, straight after finalization or later.
    let mut stranger = RawClient::new(acme.server.client.clone(), &acme.directory(), "ES256").await;
    stranger.register().await;
    for _ in 0..2 {
        let refused = stranger.post(certificate_url, None).await;
        assert_eq!(refused.status, 404, "{}", refused.body);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    Ok(())
}
