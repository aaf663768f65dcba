//! Single sign-on with OpenID Connect against a real provider, npm's `oidc-provider`, started
//! by the test over HTTPS with a certificate certmint issued: providers managed through the
//! API, a browser's whole login (redirect, the provider's login and consent forms, callback),
//! users made with mapped roles, and every callback that must not log in (forged state,
//! replay, a token changed after signing, a local user the provider may not take over, a
//! disabled user) refused with its reason and an audit record. A key rotation at the provider
//! is picked up.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::acme_peers::tool;
use crate::common::{Auth, TestResult, TestServer, post};
use crate::email_alerts::own_server_certificate;

const CLIENT_ID: &str = "certmint-console";
const CLIENT_SECRET: &str = "client secret of the test provider";

/// The oidc-provider package, which scripts/test installs.
fn oidc_provider_package() -> PathBuf {
    let dir = std::env::var_os("CERTMINT_TEST_OIDC_PROVIDER")
        .map(PathBuf::from)
        .expect("CERTMINT_TEST_OIDC_PROVIDER names the oidc-provider package (scripts/test installs it)");
    assert!(
        dir.join("lib/index.js").is_file(),
        "CERTMINT_TEST_OIDC_PROVIDER={} is not the oidc-provider package",
        dir.display()
    );
    dir
}

/// A running OIDC provider.
struct Idp {
    child: tokio::process::Child,
    config: PathBuf,
    issuer: String,
}

impl Idp {
    async fn start(config: PathBuf, issuer: String) -> TestResult<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/oidc_provider.mjs");
        let mut child = tokio::process::Command::new(tool("node", "CERTMINT_TEST_NODE"))
            .arg(script)
            .arg(oidc_provider_package())
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("provider stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready =
            tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line()).await??;
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the OIDC provider did not start"
        );
        // The provider writes notices later; a closed pipe would kill it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            config,
            issuer,
        })
    }

    /// Stops the provider and starts it again: it signs with a new key from now on.
    async fn restart(self) -> TestResult<Self> {
        let Self {
            mut child,
            config,
            issuer,
        } = self;
        child.kill().await?;
        child.wait().await?;
        Self::start(config, issuer).await
    }
}

/// A browser: keeps cookies, follows no redirect by itself, trusts certmint's listener and the
/// provider's certificate (certmint's own CA issued it; the test only drives the pages).
fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .expect("browser")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `href` made absolute against `base`'s origin.
fn absolute(base: &str, href: &str) -> String {
    if href.starts_with("https://") {
        href.to_owned()
    } else {
        let origin: String = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        format!("{origin}{href}")
    }
}

/// The value of the first `name="…"` attribute after `marker` in `html`.
fn attribute<'a>(html: &'a str, marker: &str, name: &str) -> Option<&'a str> {
    let rest = &html[html.find(marker)?..];
    let start = rest.find(&format!("{name}=\""))? + name.len() + 2;
    rest[start..].split('"').next()
}

/// Begins a login at provider `id` as a browser and goes through the provider's login form
/// (as `login`) and consent until the provider sends the browser back; returns the callback
/// URL it was sent to, not yet visited.
async fn to_callback(
    browser: &reqwest::Client,
    server: &TestServer,
    id: i64,
    login: &str,
) -> TestResult<String> {
    let start = browser
        .get(server.url(&format!(
            "/api/v2/sso/login/{id}?next=/console/certificates"
        )))
        .send()
        .await?;
    assert_eq!(
        start.status(),
        StatusCode::SEE_OTHER,
        "{}",
        start.text().await?
    );
    let mut url = location(&start);
    for _ in 0..12 {
        if url.starts_with(&server.https) {
            return Ok(url);
        }
        let page = browser.get(&url).send().await?;
        if page.status().is_redirection() {
            url = absolute(&url, &location(&page));
            continue;
        }
        let status = page.status();
        let html = page.text().await?;
        assert_eq!(status, StatusCode::OK, "{html}");
        let action = attribute(&html, "<form", "action")
            .ok_or("a form")?
            .to_owned();
        let prompt = attribute(&html, "name=\"prompt\"", "value")
            .ok_or("the prompt")?
            .to_owned();
        let fields: Vec<(&str, &str)> = if prompt == "login" {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", prompt.as_str())]
        };
        let sent = browser
            .post(absolute(&url, &action))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::console::form(&fields))
            .send()
            .await?;
        assert!(sent.status().is_redirection(), "{}", sent.status());
        url = absolute(&url, &location(&sent));
    }
    Err("the provider never sent the browser back".into())
}

/// Visits the callback; returns its status, its page and the session cookie it set, if any.
async fn visit(
    browser: &reqwest::Client,
    callback: &str,
) -> TestResult<(StatusCode, String, Option<String>)> {
    let answer = browser.get(callback).send().await?;
    let status = answer.status();
    let session = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("certmint_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    Ok((status, answer.text().await?, session))
}

/// The whole login of `login`: the callback's status, page and session cookie.
async fn sign_in(
    server: &TestServer,
    id: i64,
    login: &str,
) -> TestResult<(StatusCode, String, Option<String>)> {
    let browser = new_browser();
    let callback = to_callback(&browser, server, id, login).await?;
    visit(&browser, &callback).await
}

/// Who the session cookie `cookie` is.
async fn whoami(server: &TestServer, cookie: &str) -> TestResult<Value> {
    let answer = server
        .client
        .get(server.url("/api/v2/auth/verify"))
        .header("cookie", cookie)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::OK);
    Ok(answer.json::<Value>().await?["data"].clone())
}

fn assert_refused(status: StatusCode, page: &str, session: Option<&String>, why: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(page.contains(why), "expected '{why}' in: {page}");
    assert!(session.is_none(), "a refused login set a session");
}

fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn provider_body(issuer: &str) -> Value {
    json!({
        "name": "corporate-idp",
        "provider_type": "oidc",
        "display_name": "Corporate IdP",
        "enabled": true,
        "default_role": "viewer",
        "issuer_url": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "email", "profile", "groups"],
        "role_mappings": [{"group": "PKI-Admins", "role": "operator"}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_provider_signs_people_in_and_every_bad_callback_is_refused() -> TestResult {
    // The callback URL registered at the provider is certmint's public URL: its HTTPS
    // listener, on a port chosen here.
    let https_port = free_port()?;
    let server = TestServer::start_with(|s| {
        s.sso.allow_private_targets = true;
        s.listen = ([127, 0, 0, 1], https_port).into();
        s.public_url = format!("https://127.0.0.1:{https_port}");
    })
    .await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    let (cert, key) = own_server_certificate(&server, &admin, dir.path()).await?;
    let port = free_port()?;
    let issuer = format!("https://localhost:{port}");

    // The provider is made first: the callback URL to register at the IdP is its.
    let (status, made) = post(
        &server,
        &admin,
        "/api/v2/sso/providers",
        provider_body(&issuer).await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let provider = &made["data"];
    let id = provider["id"].as_i64().ok_or("id")?;
    assert_eq!(provider["has_secret"], true);
    assert!(provider.get("client_secret").is_none(), "{provider}");
    assert!(!made.to_string().contains(CLIENT_SECRET));
    let redirect_uri = provider["redirect_uri"].as_str().ok_or("redirect_uri")?;
    assert!(
        redirect_uri.ends_with(&format!("/api/v2/sso/callback/{id}")),
        "{redirect_uri}"
    );

    let config = dir.path().join("idp.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&json!({
            "port": port, "issuer": issuer, "cert": cert, "key": key,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": redirect_uri,
            "accounts": {
                "alice": {"preferred_username": "alice", "email": "alice@example.test",
                          "email_verified": true, "name": "Alice Liddell", "groups": ["pki-admins", "staff"]},
                "bob": {"preferred_username": "bob", "email": "bob@example.test", "groups": ["staff"]},
                "mallory": {"preferred_username": "admin", "groups": ["pki-admins"]},
                "nobody": {"email": "nameless@example.test"},
            },
        }))?,
    )?;
    let idp = Idp::start(config, issuer.clone()).await?;

    // The login page and /sso/available offer it; its test reaches discovery and keys.
    let (status, available) = server
        .call(Method::GET, "/api/v2/sso/available", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{available}");
    assert_eq!(
        available["data"][0]["login_url"],
        format!("/api/v2/sso/login/{id}")
    );
    let login_page = server
        .client
        .get(server.url("/login"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        login_page.contains("Sign in with Corporate IdP"),
        "{login_page}"
    );
    let (status, tested) = post(
        &server,
        &admin,
        &format!("/api/v2/sso/providers/{id}/test"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["success"], true, "{tested}");

    // Alice comes back signed in, made an operator by her group, her profile from the token.
    let browser = new_browser();
    let callback = to_callback(&browser, &server, id, "alice").await?;
    let (status, page, session) = visit(&browser, &callback).await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("/console/certificates"), "{page}");
    let session = session.ok_or("a session cookie")?;
    let me = whoami(&server, &session).await?;
    assert_eq!(me["user"]["username"], "alice", "{me}");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["auth_method"], "sso");
    assert_eq!(me["user"]["email"], "alice@example.test");
    assert_eq!(me["user"]["full_name"], "Alice Liddell");

    // The same callback again, even with the state cookie kept: its state is used up.
    let state = callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .ok_or("the state")?;
    let replayed = new_browser()
        .get(&callback)
        .header("cookie", format!("certmint_sso={state}"))
        .send()
        .await?;
    let status = replayed.status();
    let page = replayed.text().await?;
    assert_refused(status, &page, None, "unknown or used");

    // Bob is in no mapped group: the default role.
    let (status, page, session) = sign_in(&server, id, "bob").await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    let bob = whoami(&server, &session.ok_or("bob's session")?).await?;
    assert_eq!(bob["role"], "viewer", "{bob}");
    let bob_id = bob["user"]["id"].as_i64().ok_or("bob's id")?;

    // A provider account named like the local admin does not become the admin.
    let (status, page, session) = sign_in(&server, id, "mallory").await?;
    assert_refused(
        status,
        &page,
        session.as_ref(),
        "a local user named admin exists",
    );
    // A token without the username claim names nobody.
    let (status, page, session) = sign_in(&server, id, "nobody").await?;
    assert_refused(
        status,
        &page,
        session.as_ref(),
        "no &#39;preferred_username&#39; claim",
    );

    // A callback whose state is not the one this browser was sent with.
    let browser = new_browser();
    let callback = to_callback(&browser, &server, id, "alice").await?;
    let forged = callback.replace("state=", "state=forged");
    let (status, page, session) = visit(&browser, &forged).await?;
    assert_refused(
        status,
        &page,
        session.as_ref(),
        "not the one this browser was sent with",
    );
    // ...nor a callback brought by another browser (no state cookie).
    let (status, page, session) = visit(&new_browser(), &callback).await?;
    assert_refused(
        status,
        &page,
        session.as_ref(),
        "not the one this browser was sent with",
    );

    // An ID token changed after it was signed.
    let tamper = browser
        .get(format!("{issuer}/__tamper?on=1"))
        .send()
        .await?;
    assert_eq!(tamper.status(), StatusCode::OK);
    let (status, page, session) = sign_in(&server, id, "alice").await?;
    assert_refused(status, &page, session.as_ref(), "the ID token is refused");
    browser
        .get(format!("{issuer}/__tamper?on=0"))
        .send()
        .await?;

    // The provider rotates its key: the next token is signed with a key certmint has not seen,
    // which it fetches.
    let _idp = idp.restart().await?;
    let (status, page, session) = sign_in(&server, id, "alice").await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        whoami(&server, &session.ok_or("session")?).await?["user"]["username"],
        "alice"
    );

    // A disabled local user stays disabled, whatever the provider says.
    let (status, toggled) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{bob_id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{toggled}");
    let (status, page, session) = sign_in(&server, id, "bob").await?;
    assert_refused(status, &page, session.as_ref(), "account is disabled");

    // A role that requires a second factor asks for it after the provider too: Alice (an
    // operator) gets the authenticator setup form, not a session.
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/settings/general",
            &Auth::Session(&admin),
            Some(json!({"second_factor_roles": ["operator"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, page, session) = sign_in(&server, id, "alice").await?;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("name=\"pending_token\""), "{page}");
    assert!(session.is_none(), "a session before the second factor");

    // Every refusal is audited.
    let failed = server
        .audit_total(&Auth::Session(&admin), "action=login_failed")
        .await;
    assert!(failed >= 6, "{failed} refused logins audited");
    assert!(
        server
            .audit_total(&Auth::Session(&admin), "action=sso_user_created")
            .await
            >= 2
    );

    // Turned off, the provider is neither offered nor used.
    let (status, _) = post(
        &server,
        &admin,
        &format!("/api/v2/sso/providers/{id}/toggle"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, available) = server
        .call(Method::GET, "/api/v2/sso/available", &Auth::None, None)
        .await;
    assert_eq!(available["data"], json!([]));
    let start = new_browser()
        .get(server.url(&format!("/api/v2/sso/login/{id}")))
        .send()
        .await?;
    assert_eq!(start.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn providers_are_managed_by_administrators_and_secrets_stay_sealed() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, made) = post(
        &server,
        &admin,
        "/api/v2/sso/providers",
        provider_body("https://127.0.0.1:9").await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["data"]["id"].as_i64().ok_or("id")?;
    let path = format!("/api/v2/sso/providers/{id}");

    // Outbound connections refuse loopback unless [sso] allow_private_targets is set.
    let (status, tested) = post(&server, &admin, &format!("{path}/test"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["success"], false);
    let message = tested["data"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("loopback"), "{message}");

    // A reader sees providers but not secrets, and changes nothing.
    let (_, reader_key) = server.api_key(&admin, &["read:users"]).await;
    let reader = Auth::ApiKeyHeader(&reader_key);
    let (status, listed) = server
        .call(Method::GET, "/api/v2/sso/providers", &reader, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"][0]["client_id"], CLIENT_ID);
    assert!(!listed.to_string().contains(CLIENT_SECRET));
    let (status, _) = server
        .call(
            Method::GET,
            &format!("{path}?include_secrets=true"),
            &reader,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (method, p, body) in [
        (
            Method::POST,
            "/api/v2/sso/providers".to_owned(),
            Some(provider_body("https://idp.example.com").await),
        ),
        (
            Method::PUT,
            path.clone(),
            Some(provider_body("https://idp.example.com").await),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/toggle"), None),
        (Method::POST, format!("{path}/test"), None),
    ] {
        let (status, body) = server.call(method.clone(), &p, &reader, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {p}: {body}");
    }

    // The administrator can read the secret back, and that is audited.
    let (status, shown) = server
        .call(
            Method::GET,
            &format!("{path}?include_secrets=true"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["data"]["client_secret"], CLIENT_SECRET);
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=sso_provider_secret_read")
            .await,
        1
    );

    // A replacement without the secret keeps it; a field of the other type or an unknown one
    // is refused, as are SAML and an http:// issuer.
    let mut body = provider_body("https://idp.example.com").await;
    body.as_object_mut()
        .ok_or("object")?
        .remove("client_secret");
    let (status, replaced) = server
        .call(
            Method::PUT,
            &path,
            &Auth::Session(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["data"]["has_secret"], true);
    assert_eq!(replaced["data"]["issuer_url"], "https://idp.example.com");
    for (change, expected) in [
        (json!({"bind_password": "x"}), StatusCode::BAD_REQUEST),
        (json!({"colour": "blue"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"provider_type": "saml"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"provider_type": "ldap"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"issuer_url": "http://idp.example.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"role_mappings": [{"group": "x", "role": "root"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let mut bad = body.clone();
        for (k, v) in change.as_object().ok_or("object")? {
            bad[k] = v.clone();
        }
        let (status, answer) = server
            .call(Method::PUT, &path, &Auth::Session(&admin), Some(bad))
            .await;
        assert_eq!(status, expected, "{change}: {answer}");
    }

    // The secret is sealed at rest.
    let store = server.raw_store().await;
    let rows = store.sso_providers().await?;
    let sealed = rows[0].secret.clone().ok_or("sealed secret")?;
    assert!(
        !sealed
            .windows(CLIENT_SECRET.len())
            .any(|w| w == CLIENT_SECRET.as_bytes())
    );

    let (status, _) = server
        .call(Method::DELETE, &path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(Method::GET, &path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}
