//! The console in a real browser: Debian's Chromium driven by playwright-core through the
//! scripts in `tests/browser/` (Chromium, playwright-core and axe-core are installed by
//! scripts/test and named by `CERTMINT_TEST_CHROMIUM`, `CERTMINT_TEST_PLAYWRIGHT` and
//! `CERTMINT_TEST_AXE`; a missing tool fails the test, it never skips). Each script prints one
//! JSON line of what it saw, and fails on anything the CSP blocked, any failed load and any
//! script error. `CERTMINT_SCREENSHOTS=dir` (relative to the repository) keeps light and dark
//! screenshots of the main pages (`docs/screenshots` holds those the documentation shows).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, openssl, post};
use crate::console::{browser, get};

/// What a browser run may take at most; the runs take a fraction of it.
const LIMIT: Duration = Duration::from_secs(120);

fn tool(variable: &str, what: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} must name {what} (scripts/test installs it and sets the variable)")
    })
}

/// Where screenshots go, when asked for: relative to the repository, not to this crate
/// (where cargo runs the test).
fn screenshots() -> TestResult<Option<PathBuf>> {
    let Ok(dir) = std::env::var("CERTMINT_SCREENSHOTS") else {
        return Ok(None);
    };
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(dir);
    std::fs::create_dir_all(&dir)?;
    Ok(Some(dir))
}

/// Runs `tests/browser/{script}` against `server` with `vars`, and returns the JSON line it
/// printed after checking that nothing was blocked, failed or thrown.
async fn run(server: &TestServer, script: &str, vars: &[(&str, &str)]) -> TestResult<Value> {
    let chromium = tool("CERTMINT_TEST_CHROMIUM", "Chromium");
    let playwright = tool("CERTMINT_TEST_PLAYWRIGHT", "playwright-core");
    let path = format!("{}/tests/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&path)
        .env("CERTMINT_URL", &server.https)
        .env("CERTMINT_PASSWORD", ADMIN_PASSWORD)
        .env("CERTMINT_PLAYWRIGHT", &playwright)
        .env("CERTMINT_CHROMIUM", &chromium)
        .env_remove("CERTMINT_SCREENSHOTS")
        .kill_on_drop(true);
    if let Some(dir) = screenshots()? {
        command.env("CERTMINT_SCREENSHOTS", dir);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(LIMIT, command.output())
        .await
        .map_err(|_| format!("{script} took over {LIMIT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed after {:?}: {}\n{stdout}",
        started.elapsed(),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?;
    assert_eq!(
        seen["problems"],
        json!([]),
        "nothing blocked, failed or thrown in the browser ({script}): {seen}"
    );
    Ok(seen)
}

/// Signed out to the login page, a wrong password, signing in, the dashboard with htmx loaded
/// under the CSP, the dark theme, the skip link first under the keyboard, signing out.
#[tokio::test]
async fn a_browser_signs_in_sees_the_dashboard_and_signs_out() -> TestResult {
    let server = TestServer::start().await;
    let seen = run(&server, "console.mjs", &[]).await?;
    assert_eq!(seen["next"], "/", "{seen}");
    assert!(
        seen["wrong_password"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{seen}"
    );
    assert_eq!(seen["after_login"], "/", "{seen}");
    assert_eq!(seen["htmx"], "2.0.11", "htmx loads under the CSP: {seen}");
    assert!(
        seen["totals"]
            .as_array()
            .is_some_and(|t| t.iter().any(|d| d == "Certificates")),
        "{seen}"
    );
    assert_eq!(seen["first_tab"], "Skip to content", "{seen}");
    assert_ne!(
        seen["light"], seen["dark"],
        "the dark theme follows the system: {seen}"
    );
    assert_eq!(seen["after_logout"], "/login", "{seen}");
    assert_eq!(seen["after_logout_root"], "/login", "{seen}");
    Ok(())
}

/// `/api/docs` signed out: Swagger UI loads under the page's CSP, fetches the OpenAPI document
/// and renders the operations, such as the certificates list with its parameters.
#[tokio::test]
async fn a_browser_reads_the_api_documentation() -> TestResult {
    let server = TestServer::start().await;
    let seen = run(&server, "api_docs.mjs", &[]).await?;
    assert_eq!(seen["summary"], "Certificates, newest first.", "{seen}");
    assert!(
        seen["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("certmint")),
        "{seen}"
    );
    assert!(
        seen["fetched"]
            .as_array()
            .is_some_and(|f| f.iter().any(|p| p == "/api/v2/openapi.json")),
        "{seen}"
    );
    assert!(
        seen["certificate_paths"]
            .as_array()
            .is_some_and(|p| p.len() >= 10),
        "the certificates tag lists its operations: {seen}"
    );
    for parameter in ["status", "ca_id", "search", "page"] {
        assert!(
            seen["parameters"].as_array().is_some_and(|p| p
                .iter()
                .any(|n| n.as_str().is_some_and(|n| n.starts_with(parameter)))),
            "{parameter}: {seen}"
        );
    }
    Ok(())
}

/// The cookies of a playwright storage state, as a `Cookie` header.
fn cookie_header(state: &Value) -> String {
    state["cookies"]
        .as_array()
        .map(|cookies| {
            cookies
                .iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c["name"].as_str().unwrap_or(""),
                        c["value"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Runs openssl, which may report on stderr (as `openssl ocsp` does): whether it succeeded
/// and all it printed. Async, as the server answers on this test's runtime meanwhile.
async fn openssl_all(dir: &Path, args: &[&str]) -> TestResult<(bool, String)> {
    let out = tokio::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .await
        .map_err(|e| format!("the openssl command is required for this test: {e}"))?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// The whole path through the console in a browser: a new intermediate CA, a certificate
/// from a template issued by it, its PKCS#12 opened by openssl, a viewer without the Revoke
/// button whose forged revocation is refused, the revocation through the form seen by the
/// OCSP responder and in the list and the audit log, signing out, and an expired session.
#[tokio::test]
async fn a_browser_creates_a_ca_issues_exports_and_revokes_a_certificate() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let files = tempfile::tempdir()?;
    let dir = files
        .path()
        .to_str()
        .ok_or("temporary directory")?
        .to_owned();
    let seen = run(
        &server,
        "flow.mjs",
        &[
            ("CERTMINT_PHASE", "flow"),
            ("CERTMINT_VIEWER", "vera"),
            ("CERTMINT_FILES", &dir),
        ],
    )
    .await?;

    // Signed out, the form asked for a login and came back to it.
    assert_eq!(seen["after_login"], "/cas/new", "{seen}");

    // The CA: an intermediate under the root, made through the form.
    let (status, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cas}");
    let find = |name: &str| {
        cas["data"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .cloned()
            .ok_or_else(|| format!("no CA '{name}' in {cas}"))
    };
    let ca = find("Browser Test Intermediate CA")?;
    let root = find("certmint Root CA")?;
    assert_eq!(ca["ca_type"], "intermediate", "{ca}");
    assert_eq!(ca["parent_id"], root["id"], "{ca}");
    assert_eq!(seen["ca_path"], format!("/cas/{}", ca["id"]), "{seen}");
    assert_eq!(seen["ca_type"], "intermediate", "{seen}");
    assert!(
        seen["ca_issuer"]
            .as_str()
            .is_some_and(|i| i.contains("CN=certmint Root CA")),
        "{seen}"
    );
    let ocsp_url = format!("{}/ocsp", server.http);
    assert_eq!(seen["ca_points_to_ocsp"], ocsp_url.as_str(), "{seen}");
    assert!(
        seen["ca_answers_ocsp"]
            .as_str()
            .is_some_and(|a| a.starts_with("yes")),
        "{seen}"
    );
    let tree: Vec<&str> = seen["tree"]
        .as_array()
        .ok_or("tree")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tree.first(), Some(&"depth-0: certmint Root CA"), "{seen}");
    assert!(
        tree.contains(&"depth-1: Browser Test Intermediate CA"),
        "the new CA sits below the root: {seen}"
    );

    // The certificate: from the TLS Server template, issued by the new CA, shown in full.
    let certificate_path = seen["certificate_path"]
        .as_str()
        .ok_or("certificate path")?;
    let id: i64 = certificate_path
        .strip_prefix("/certificates/")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("not a certificate page: {seen}"))?;
    assert_eq!(seen["status_issued"], "active", "{seen}");
    assert_eq!(
        seen["sans"],
        json!([
            "dns:shop.browser.test",
            "dns:www.shop.browser.test",
            "ip:192.0.2.7"
        ]),
        "{seen}"
    );
    assert!(
        seen["certificate_issuer"]
            .as_str()
            .is_some_and(|i| i.contains("Browser Test Intermediate CA")),
        "{seen}"
    );
    assert!(
        seen["certificate_eku"]
            .as_str()
            .is_some_and(|e| e.contains("serverAuth")),
        "the template's extended key usage: {seen}"
    );
    assert_eq!(seen["admin_revoke_buttons"], 1, "{seen}");

    // The downloads, opened by openssl: the PKCS#12 holds the certificate and its key, which
    // chains to the new CA and the root.
    let files = files.path();
    assert_eq!(seen["p12_file"], "shop.browser.test.p12", "{seen}");
    assert_eq!(
        seen["ca_file"], "Browser_Test_Intermediate_CA.pem",
        "{seen}"
    );
    assert_eq!(
        seen["chain_file"], "Browser_Test_Intermediate_CA.chain.pem",
        "{seen}"
    );
    let pass = "pass:browser-export-pass";
    let leaf = openssl(
        files,
        &[
            "pkcs12",
            "-in",
            "certificate.p12",
            "-passin",
            pass,
            "-nokeys",
            "-clcerts",
        ],
    )?;
    std::fs::write(files.join("leaf.pem"), &leaf)?;
    let key = openssl(
        files,
        &[
            "pkcs12",
            "-in",
            "certificate.p12",
            "-passin",
            pass,
            "-nocerts",
            "-nodes",
        ],
    )?;
    assert!(
        key.contains("BEGIN PRIVATE KEY"),
        "the key is in the file: {key}"
    );
    std::fs::write(files.join("key.pem"), &key)?;
    let printed = openssl(
        files,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-subject",
            "-issuer",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ],
    )?;
    for expected in [
        "subject=CN = shop.browser.test",
        "issuer=O = certmint tests, CN = Browser Test Intermediate CA",
        "DNS:shop.browser.test, DNS:www.shop.browser.test, IP Address:192.0.2.7",
        "TLS Web Server Authentication",
    ] {
        assert!(printed.contains(expected), "{expected} in {printed}");
    }
    let responder = openssl(files, &["x509", "-in", "leaf.pem", "-noout", "-ocsp_uri"])?;
    assert_eq!(
        responder.trim(),
        ocsp_url,
        "the certificate names the responder"
    );
    assert_eq!(
        openssl(files, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"])?,
        openssl(files, &["pkey", "-in", "key.pem", "-pubout"])?,
        "the key in the file is the certificate's"
    );
    let verified = openssl(files, &["verify", "-CAfile", "chain.pem", "leaf.pem"])?;
    assert!(verified.contains("leaf.pem: OK"), "{verified}");
    let ca_subject = openssl(files, &["x509", "-in", "ca.pem", "-noout", "-subject"])?;
    assert!(
        ca_subject.contains("CN = Browser Test Intermediate CA"),
        "{ca_subject}"
    );

    // The viewer: no Revoke (nor Renew, nor the key) on the page, and the forged revocation
    // with the viewer's own token refused while an export with it passes, changing nothing.
    assert_eq!(seen["viewer_path"], certificate_path, "{seen}");
    assert_eq!(seen["viewer_role"], "viewer", "{seen}");
    assert_eq!(seen["viewer_download_buttons"], 1, "{seen}");
    assert_eq!(seen["viewer_revoke_buttons"], 0, "{seen}");
    assert_eq!(seen["viewer_renew_buttons"], 0, "{seen}");
    assert_eq!(seen["viewer_pkcs12"], 0, "{seen}");
    assert_eq!(seen["forged"]["revoke"]["status"], 403, "{seen}");
    assert!(
        seen["forged"]["revoke"]["body"]
            .as_str()
            .is_some_and(|page| page.contains("delete:certificates")),
        "refused for the permission, not the token: {seen}"
    );
    assert_eq!(seen["forged"]["export"]["status"], 200, "{seen}");
    assert!(
        seen["forged"]["export"]["body"]
            .as_str()
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")),
        "the same token passes where the role may: {seen}"
    );
    assert_eq!(seen["viewer_status_after_forgery"], "active", "{seen}");
    assert_eq!(seen["status_before_revoke"], "active", "{seen}");

    // The revocation through the form: on the page, in the list, at the OCSP responder.
    assert_eq!(seen["after_revoke"], certificate_path, "{seen}");
    assert!(
        seen["revoked_warning"]
            .as_str()
            .is_some_and(|w| w.starts_with("Revoked") && w.ends_with("keyCompromise")),
        "{seen}"
    );
    assert_eq!(seen["revoke_buttons_after"], 0, "{seen}");
    assert_eq!(
        seen["revoked_list"],
        json!(["shop.browser.test | revoked"]),
        "{seen}"
    );
    // The active ones are the server's own TLS certificate, without the revoked one.
    assert_eq!(seen["active_list"], json!(["localhost"]), "{seen}");
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "revoked", "{body}");
    assert_eq!(body["data"]["revocation_reason"], "keyCompromise", "{body}");
    let (ok, ocsp) = openssl_all(
        files,
        &[
            "ocsp",
            "-url",
            &ocsp_url,
            "-issuer",
            "ca.pem",
            "-cert",
            "leaf.pem",
            "-CAfile",
            "chain.pem",
            "-timeout",
            "20",
        ],
    )
    .await?;
    assert!(ok, "{ocsp}");
    assert!(ocsp.contains("Response verify OK"), "{ocsp}");
    assert!(ocsp.contains("leaf.pem: revoked"), "{ocsp}");
    assert!(ocsp.contains("Reason: keyCompromise"), "{ocsp}");

    // The audit log's record, as the page showed it: user, action, resource, details, result.
    let rows = seen["audit_rows"].as_array().ok_or("audit rows")?;
    assert_eq!(rows.len(), 1, "{seen}");
    let row = &rows[0];
    assert_eq!(row[0], "admin", "{seen}");
    assert_eq!(row[1], "certificate_revoked", "{seen}");
    assert_eq!(row[2], format!("certificate {id}"), "{seen}");
    assert!(
        row[3].as_str().is_some_and(
            |d| d.contains("CN=shop.browser.test") && d.contains("reason keyCompromise")
        ),
        "{seen}"
    );
    assert_eq!(row[4], "succeeded", "{seen}");

    assert_eq!(seen["after_logout"], "/login", "{seen}");
    assert_eq!(seen["after_logout_root"], "/login", "{seen}");

    // The viewer's saved session is good until the clock passes its lifetime; then the page
    // asks for a login and comes back after it.
    let state: Value = serde_json::from_slice(&std::fs::read(files.join("viewer-state.json"))?)?;
    let cookie = cookie_header(&state);
    let client = browser(&server);
    let page = get(&client, server.url(certificate_path), Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK, "the saved session works");
    server.clock.advance(time::Duration::days(2));
    let page = get(&client, server.url(certificate_path), Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "the session expired");
    let seen = run(
        &server,
        "flow.mjs",
        &[
            ("CERTMINT_PHASE", "expired"),
            ("CERTMINT_VIEWER", "vera"),
            ("CERTMINT_FILES", &dir),
            ("CERTMINT_CERTIFICATE", certificate_path),
        ],
    )
    .await?;
    assert_eq!(seen["expired_path"], "/login", "{seen}");
    assert_eq!(seen["expired_next"], certificate_path, "{seen}");
    assert_eq!(seen["signed_in_again"], certificate_path, "{seen}");
    assert_eq!(seen["status"], "revoked", "{seen}");
    Ok(())
}

/// Creates through the REST API what the pages show (an intermediate CA, certificates active
/// and revoked, a CSR, an ACME profile, EST credentials and a label, a SCEP request waiting
/// for approval, a user, a webhook, a backup) and
/// returns the pages to check, with the screenshot name of those the documentation shows.
async fn populate(server: &TestServer, admin: &Session) -> TestResult<Vec<Value>> {
    let id = |body: &Value| {
        body["data"]["id"]
            .as_i64()
            .ok_or(format!("no id in {body}"))
    };
    let (status, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cas}");
    let root = cas["data"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "certmint Root CA"))
        .and_then(|c| c["id"].as_i64())
        .ok_or("no root CA")?;
    let (status, ca) = post(
        server,
        admin,
        "/api/v2/cas",
        json!({"common_name": "Web Services CA", "organization": "Example Corp",
               "ca_type": "intermediate", "parent_id": root, "require_template": false}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ca}");
    let ca = id(&ca)?;
    let mut certificates = Vec::new();
    for (name, days) in [
        ("www.example.test", 90),
        ("api.example.test", 20),
        ("old.example.test", 365),
    ] {
        let (status, body) = post(
            server,
            admin,
            "/api/v2/certificates",
            json!({"common_name": name, "san": [format!("dns:{name}")], "validity_days": days,
                   "ca_id": ca}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        certificates.push(id(&body)?);
    }
    let revoked = certificates[2];
    let (status, body) = post(
        server,
        admin,
        &format!("/api/v2/certificates/{revoked}/revoke"),
        json!({"reason": "superseded"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (pem, _) = crate::console_csrs::rcgen_csr("box.example.test")?;
    let (status, csr) = post(
        server,
        admin,
        "/api/v2/csrs/upload",
        json!({"pem": pem, "name": "build box"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{csr}");
    let (status, profile) = post(
        server,
        admin,
        "/api/v2/acme/profiles",
        json!({"name": "internal", "ca_id": ca, "validity_days": 30, "require_eab": true,
               "challenge_types": ["http-01", "dns-01"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    crate::console_scep::hold(server, admin, &["printer.example.test"]).await?;
    let user = server.user(admin, "vera", "viewer").await;
    let (status, templates) = server
        .call(
            Method::GET,
            "/api/v2/templates",
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{templates}");
    let template = templates["data"][0]["id"].as_i64().ok_or("no template")?;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/est/config",
            &Auth::Session(admin),
            Some(json!({"enabled": true, "username": "device", "password": "device enrollment secret",
                        "labels": [{"label": "routers", "ca_id": ca, "template_id": template,
                                    "username": "routers", "password": "router enrollment secret"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    server.api_key(admin, &["read:certificates"]).await;
    let (status, hook) = post(
        server,
        admin,
        "/api/v2/webhooks",
        json!({"name": "chat-ops", "url": "https://hooks.example.com/certmint",
               "events": ["certificate_issued", "certificate_expiring"], "ca_filter": [ca],
               "custom_headers": {"X-Team": "pki"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = id(&hook)?;

    let (status, group) = post(
        server,
        admin,
        "/api/v2/groups",
        json!({"name": "pki-team", "description": "Runs the PKI", "role": "auditor",
               "permissions": ["write:certificates"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group = id(&group)?;
    let (status, body) = post(
        server,
        admin,
        &format!("/api/v2/groups/{group}/members"),
        json!({"user_id": user, "role": "owner"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, provider) = post(
        server,
        admin,
        "/api/v2/sso/providers",
        json!({"name": "corp", "provider_type": "oidc", "issuer_url": "https://127.0.0.1:9/",
               "client_id": "certmint", "client_secret": "a client secret",
               "role_mappings": [{"group": "PKI-Admins", "role": "operator"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{provider}");
    let provider = id(&provider)?;

    let (status, backup) = post(
        server,
        admin,
        "/api/v2/system/backup/create",
        json!({"passphrase": "a passphrase for the pages"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{backup}");

    // `status`: what the page answers, when not 200.
    let page = |path: String, shot: Option<&str>| json!({"path": path, "shot": shot});
    let submit = |path: String, button: &str, shot: Option<&str>, status: u16| json!({"path": path, "submit": button, "shot": shot, "status": status});
    let profile = id(&profile)?;
    Ok(vec![
        page("/".into(), Some("dashboard")),
        page("/cas".into(), Some("cas")),
        page("/cas/new".into(), None),
        page(format!("/cas/{ca}"), None),
        submit(format!("/cas/{ca}"), "Publish a CRL now", Some("ca"), 200),
        page("/cas/import".into(), None),
        page("/certificates".into(), Some("certificates")),
        submit("/certificates".into(), "Apply", None, 422),
        page("/certificates/import".into(), None),
        page("/certificates/new".into(), Some("certificate-new")),
        submit("/certificates/new".into(), "Issue", None, 422),
        page(
            format!("/certificates/{}", certificates[0]),
            Some("certificate"),
        ),
        page(format!("/certificates/{revoked}"), None),
        page("/csrs".into(), None),
        page("/csrs/new".into(), None),
        page(format!("/csrs/{}", id(&csr)?), None),
        page("/templates".into(), None),
        page("/templates/new".into(), None),
        page(format!("/templates/{template}"), None),
        page("/truststore".into(), None),
        page("/truststore/new".into(), None),
        page("/tools".into(), None),
        submit("/tools".into(), "Decode a certificate", None, 422),
        page("/acme".into(), Some("acme")),
        page("/acme/profiles/new".into(), None),
        page(format!("/acme/profiles/{profile}"), None),
        submit(format!("/acme/profiles/{profile}"), "Make a key", None, 201),
        page("/acme/accounts".into(), None),
        page("/acme/orders".into(), None),
        page("/enroll/est".into(), None),
        submit("/enroll/est".into(), "Save", None, 200),
        page("/enroll/scep".into(), None),
        submit(
            "/enroll/scep".into(),
            "Make a one-time challenge",
            None,
            201,
        ),
        page("/enroll/scep/requests".into(), None),
        page("/audit".into(), Some("audit")),
        page("/audit/verify".into(), None),
        page("/users".into(), None),
        page("/users/new".into(), None),
        submit("/users/new".into(), "Create", None, 422),
        page(format!("/users/{user}"), None),
        page("/groups".into(), None),
        submit("/groups".into(), "Create group", None, 422),
        page(format!("/groups/{group}"), None),
        page("/sso".into(), None),
        page("/sso/new?provider_type=oidc".into(), None),
        page("/sso/new?provider_type=ldap".into(), None),
        submit(
            "/sso/new?provider_type=ldap".into(),
            "Add provider",
            None,
            422,
        ),
        page(format!("/sso/{provider}"), None),
        submit(format!("/sso/{provider}"), "Test the connection", None, 200),
        page("/reports".into(), None),
        page("/system/jobs".into(), None),
        page("/system/webhooks".into(), None),
        page(format!("/system/webhooks/{hook}"), None),
        submit(
            format!("/system/webhooks/{hook}"),
            "Make a new secret",
            None,
            200,
        ),
        page("/system/email".into(), None),
        submit(
            "/system/email".into(),
            "Check for expiring certificates now",
            None,
            200,
        ),
        page("/system/settings".into(), None),
        page("/system/backup".into(), None),
        page("/system/security".into(), None),
        page("/system/database".into(), None),
        submit("/system/database".into(), "Check integrity", None, 200),
        page("/system/https".into(), None),
        page("/system/syslog".into(), None),
        submit("/system/syslog".into(), "Send a test message", None, 422),
        page("/account".into(), None),
    ])
}

/// Every page of the console, in the light and the dark scheme on a desktop screen and light on
/// a phone's, has no serious or critical axe-core violation (contrast, names, labels,
/// landmarks, ARIA, keyboard access to scrolling tables, …): the login page before and after a
/// refusal, lists with rows, detail pages, forms blank and sent empty, actions' outcomes.
#[tokio::test]
async fn every_page_passes_axe_in_both_colour_schemes() -> TestResult {
    let axe = tool("CERTMINT_TEST_AXE", "axe-core's axe.min.js");
    assert!(
        Path::new(&axe).is_file(),
        "CERTMINT_TEST_AXE names {axe}, which is not a file (scripts/test installs axe-core)"
    );
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let pages = populate(&server, &admin).await?;
    let seen = run(
        &server,
        "a11y.mjs",
        &[
            ("CERTMINT_AXE", &axe),
            ("CERTMINT_PAGES", &serde_json::to_string(&pages)?),
        ],
    )
    .await?;
    let audits = seen["audits"].as_array().ok_or("no audits")?;
    // The login page, then after a wrong password, then each page; each in two schemes.
    let statuses: Vec<u64> = [200, 401]
        .into_iter()
        .chain(pages.iter().map(|p| p["status"].as_u64().unwrap_or(200)))
        .flat_map(|status| [status; 3])
        .collect();
    assert_eq!(
        audits
            .iter()
            .map(|a| a["status"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>(),
        statuses,
        "every page checked, each answering what it should: {seen}"
    );
    let mut found = Vec::new();
    let mut lesser = Vec::new();
    for views in audits.chunks(3) {
        let seen_as: Vec<_> = views.iter().map(|v| (&v["scheme"], &v["width"])).collect();
        assert_eq!(
            seen_as,
            [
                (&json!("light"), &json!(1280)),
                (&json!("dark"), &json!(1280)),
                (&json!("light"), &json!(390))
            ],
            "{views:?}"
        );
        assert_ne!(
            views[0]["background"], views[1]["background"],
            "axe saw the dark scheme's colours: {views:?}"
        );
    }
    for audit in audits {
        let name = format!(
            "{} ({}, {} px wide)",
            audit["page"].as_str().unwrap_or("?"),
            audit["scheme"].as_str().unwrap_or("?"),
            audit["width"]
        );
        assert_eq!(
            audit["h1"].as_array().map(Vec::len),
            Some(1),
            "one h1 on {name}: {audit}"
        );
        assert!(
            audit["passes"].as_u64().unwrap_or(0) > 10,
            "axe ran on {name}: {audit}"
        );
        assert_eq!(
            audit["contrast"], true,
            "contrast checked on {name}: {audit}"
        );
        for violation in audit["violations"].as_array().ok_or("violations")? {
            let line = format!(
                "{name}: {} ({}) {}\n    {}",
                violation["id"].as_str().unwrap_or("?"),
                violation["impact"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or(""),
                violation["nodes"]
                    .as_array()
                    .map(|nodes| nodes
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n    "))
                    .unwrap_or_default()
            );
            if matches!(violation["impact"].as_str(), Some("serious" | "critical")) {
                found.push(line);
            } else {
                lesser.push(line);
            }
        }
    }
    // Moderate and minor findings are reported, not failed on.
    if !lesser.is_empty() {
        eprintln!("axe-core, moderate and minor:\n{}", lesser.join("\n"));
    }
    assert!(
        found.is_empty(),
        "{} serious or critical axe-core violations:\n{}",
        found.len(),
        found.join("\n")
    );
    Ok(())
}

/// Passkeys with Chromium's virtual authenticator: added from the account page (a resident
/// credential), then, signed out, signing in with it from the login page opens a session whose
/// `auth_method` is `webauthn`. The server is reached at `http://localhost:port`: browsers
/// refuse passkeys for IP addresses, and localhost is a secure context without TLS (the test
/// server's certificate would be a certificate error, where Chromium refuses passkeys too).
#[tokio::test]
async fn a_browser_adds_a_passkey_and_signs_in_with_it() -> TestResult {
    let port = crate::acme_peers::free_port();
    let base = format!("http://localhost:{port}");
    let server = TestServer::start_with(|s| {
        s.http_listen = format!("127.0.0.1:{port}");
        s.api_https_only = false;
        s.public_url = base.clone();
        s.webauthn_rp_id = "localhost".into();
    })
    .await;
    let seen = run(&server, "passkeys.mjs", &[("CERTMINT_URL", &base)]).await?;
    assert_eq!(seen["listed"], json!(["Virtual authenticator"]), "{seen}");
    assert_eq!(seen["resident"], json!([true]), "{seen}");
    assert_eq!(seen["after_passkey"], "/", "{seen}");
    assert_eq!(seen["session"]["auth_method"], "webauthn", "{seen}");
    assert_eq!(seen["session"]["user"]["username"], "admin", "{seen}");
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    assert_eq!(
        server.audit_total(&auth, "action=passkey_registered").await,
        1
    );
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/account/webauthn/credentials",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"][0]["last_used_at"].is_string(),
        "the login was recorded on the passkey: {body}"
    );
    Ok(())
}
