//! LDAP sign-in against a real directory, Debian's `slapd`, started by the test on local ports
//! with a server certificate certmint itself issued: the settings managed through
//! `/settings/ldap`, logins over LDAPS, StartTLS and (when allowed on purpose) plain LDAP
//! making users with their mapped roles, and every login that must not go through (a wrong or
//! empty password, an injection attempt, an ambiguous entry, a disabled local user, a directory
//! whose certificate certmint does not trust, a loopback directory without
//! `[sso] allow_private_targets`) refused with its reason and an audit record.

use std::path::Path;
use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acme_peers::tool;
use crate::common::{Auth, Session, TestResult, TestServer, post};
use crate::email_alerts::own_server_certificate;

const BASE_DN: &str = "dc=example,dc=test";
const SERVICE_DN: &str = "cn=certmint,ou=services,dc=example,dc=test";
const SERVICE_PASSWORD: &str = "service account secret";

/// The directory: the service account, four people (one of them, twin, in two entries), and
/// the groups the role mappings look at.
const DIRECTORY: &str = "\
dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=services,dc=example,dc=test
objectClass: organizationalUnit
ou: services

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=contractors,dc=example,dc=test
objectClass: organizationalUnit
ou: contractors

dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: cn=certmint,ou=services,dc=example,dc=test
objectClass: person
cn: certmint
sn: service
userPassword: service account secret

dn: uid=alice,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.test
userPassword: alice's directory password

dn: uid=bob,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.test
userPassword: bob's directory password

dn: uid=carol,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Carol
userPassword: carol's directory password

dn: uid=twin,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: One
userPassword: twin password

dn: uid=twin,ou=contractors,dc=example,dc=test
objectClass: inetOrgPerson
uid: twin
cn: Twin Two
sn: Two
userPassword: twin password

dn: cn=operators,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: operators
member: uid=alice,ou=people,dc=example,dc=test

dn: cn=auditors,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: auditors
member: uid=bob,ou=people,dc=example,dc=test
";

/// A running slapd.
struct Slapd {
    _child: tokio::process::Child,
    /// The LDAPS port.
    ldaps: u16,
    /// The port of plain LDAP and StartTLS.
    ldap: u16,
}

fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Slapd {
    /// Loads the directory into a new database under `dir` and serves it with the
    /// certificate `cert` (and its key).
    async fn start(dir: &Path, cert: &Path, key: &Path) -> TestResult<Self> {
        let slapd = tool("slapd", "CERTMINT_TEST_SLAPD");
        let db = dir.join("db");
        std::fs::create_dir_all(&db)?;
        let config = dir.join("slapd.conf");
        std::fs::write(
            &config,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 pidfile {dir}/slapd.pid\n\
                 argsfile {dir}/slapd.args\n\
                 TLSCertificateFile {cert}\n\
                 TLSCertificateKeyFile {key}\n\
                 database mdb\n\
                 suffix \"{BASE_DN}\"\n\
                 directory {db}\n\
                 access to attrs=userPassword by anonymous auth by * none\n\
                 access to * by users read by * none\n",
                dir = dir.display(),
                cert = cert.display(),
                key = key.display(),
                db = db.display(),
            ),
        )?;
        let ldif = dir.join("directory.ldif");
        std::fs::write(&ldif, DIRECTORY)?;
        let loaded = std::process::Command::new(slapd.with_file_name("slapadd"))
            .arg("-f")
            .arg(&config)
            .arg("-l")
            .arg(&ldif)
            .output()?;
        assert!(loaded.status.success(), "slapadd: {loaded:?}");
        let (ldaps, ldap) = (free_port()?, free_port()?);
        let child = tokio::process::Command::new(&slapd)
            .arg("-f")
            .arg(&config)
            .arg("-h")
            .arg(format!(
                "ldaps://127.0.0.1:{ldaps}/ ldap://127.0.0.1:{ldap}/"
            ))
            // Any debug level keeps slapd in the foreground, where the test can stop it.
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", ldaps))
                .await
                .is_ok()
            {
                return Ok(Self {
                    _child: child,
                    ldaps,
                    ldap,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err("slapd did not start listening".into())
    }
}

/// A login at `POST /api/v2/sso/ldap/login`: the status, the body, and the session cookie.
async fn ldap_login(
    server: &TestServer,
    username: &str,
    password: &str,
) -> TestResult<(StatusCode, Value, Option<String>)> {
    let response = server
        .client
        .post(server.url("/api/v2/sso/ldap/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, response.json().await?, cookie))
}

async fn patch_settings(server: &TestServer, auth: &Auth<'_>, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::PATCH, "/api/v2/settings/ldap", auth, Some(body))
        .await
}

async fn test_settings(server: &TestServer, admin: &Session) -> TestResult<Value> {
    let (status, body) = post(server, admin, "/api/v2/settings/ldap/test", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["data"].clone())
}

async fn failed_logins(server: &TestServer, admin: &Session) -> i64 {
    server
        .audit_total(&Auth::Session(admin), "action=login_failed")
        .await
}

/// Asserts a refused login: 401 with `reason` in the message, no session, one more audit
/// record.
async fn assert_refused(
    server: &TestServer,
    admin: &Session,
    username: &str,
    password: &str,
    reason: &str,
) -> TestResult {
    let before = failed_logins(server, admin).await;
    let (status, body, cookie) = ldap_login(server, username, password).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{username}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{username}: {message}");
    assert!(cookie.is_none(), "{username} got a session");
    assert_eq!(
        failed_logins(server, admin).await,
        before + 1,
        "{username}: the refusal is audited"
    );
    Ok(())
}

#[tokio::test]
async fn ldap_logins_over_ldaps_starttls_and_plain_against_slapd() -> TestResult {
    let server = TestServer::start_with(|s| s.sso.allow_private_targets = true).await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    let (cert, key) = own_server_certificate(&server, &admin, dir.path()).await?;
    let slapd = Slapd::start(&dir.path().join("directory"), &cert, &key).await?;

    // A narrow key reads the settings and cannot change them.
    let (_, reader) = server.api_key(&admin, &["read:users"]).await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/settings/ldap",
            &Auth::Bearer(&reader),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["provider_id"], Value::Null);
    assert_eq!(body["data"]["enabled"], false);
    let settings = json!({
        "enabled": true,
        "server": "localhost",
        "port": slapd.ldaps,
        "use_tls": true,
        "base_dn": BASE_DN,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "role_mappings": [
            {"group": "operators", "role": "operator"},
            {"group": "cn=auditors,ou=groups,dc=example,dc=test", "role": "auditor"}
        ]
    });
    let (status, _) = patch_settings(&server, &Auth::Bearer(&reader), settings.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/settings/ldap/test",
            &Auth::Bearer(&reader),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Plain LDAP only on purpose.
    let mut plain = settings.clone();
    plain["use_tls"] = json!(false);
    plain["port"] = json!(slapd.ldap);
    let (status, body) = patch_settings(&server, &Auth::Session(&admin), plain).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("allow_plain"),
        "{body}"
    );

    // LDAPS.
    let (status, body) = patch_settings(&server, &Auth::Session(&admin), settings).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["has_bind_password"], true);
    assert!(body["data"].get("bind_password").is_none(), "{body}");
    assert_eq!(
        body["data"]["user_filter"],
        "(&(objectClass=person)(uid={username}))"
    );
    let provider_id = body["data"]["provider_id"].as_i64().ok_or("provider id")?;
    assert!(
        server
            .audit_total(&Auth::Session(&admin), "action=sso_provider_created")
            .await
            >= 1
    );
    let test = test_settings(&server, &admin).await?;
    assert_eq!(test["success"], true, "{test}");
    assert!(
        test["message"]
            .as_str()
            .unwrap_or_default()
            .contains("LDAPS"),
        "{test}"
    );
    // The same provider is one of /sso/providers, and on the login page's list.
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/sso/providers/{provider_id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "ldap");
    let (_, available) = server
        .call(Method::GET, "/api/v2/sso/available", &Auth::None, None)
        .await;
    assert_eq!(available["data"][0]["provider_type"], "ldap", "{available}");

    // Alice signs in; her user is made with the role her group maps to.
    let (status, body, cookie) = ldap_login(&server, "alice", "alice's directory password").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(cookie.is_some());
    assert_eq!(body["data"]["role"], "operator", "{body}");
    assert_eq!(body["data"]["auth_method"], "sso");
    assert_eq!(body["data"]["user"]["username"], "alice");
    assert_eq!(body["data"]["user"]["email"], "alice@example.test");

    // Refusals, each with its reason and audit record.
    assert_refused(
        &server,
        &admin,
        "alice",
        "wrong",
        "invalid username or password",
    )
    .await?;
    assert_refused(
        &server,
        &admin,
        "nobody",
        "whatever",
        "invalid username or password",
    )
    .await?;
    assert_refused(&server, &admin, "alice", "", "empty").await?;
    for attempt in ["*", "admin)(|(uid=*", "*)(uid=*))(|(uid=*", "alice)(uid=*"] {
        assert_refused(&server, &admin, attempt, "whatever", "not a username").await?;
        assert_refused(
            &server,
            &admin,
            attempt,
            "alice's directory password",
            "not a username",
        )
        .await?;
    }
    assert_refused(&server, &admin, "twin", "twin password", "more than one").await?;

    // StartTLS, to the address rather than the name (the certificate names both).
    let (status, body) = patch_settings(
        &server,
        &Auth::Session(&admin),
        json!({"server": "127.0.0.1", "port": slapd.ldap, "starttls": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = test_settings(&server, &admin).await?;
    assert_eq!(test["success"], true, "{test}");
    assert!(
        test["message"]
            .as_str()
            .unwrap_or_default()
            .contains("StartTLS"),
        "{test}"
    );
    let (status, body, _) = ldap_login(&server, "bob", "bob's directory password").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["role"], "auditor", "{body}");
    let bob_id = body["data"]["user"]["id"].as_i64().ok_or("bob's id")?;
    // Carol is in no group: the default role.
    let (status, body, _) = ldap_login(&server, "carol", "carol's directory password").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["role"], "viewer", "{body}");

    // A disabled local user stays disabled, whatever the directory says.
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{bob_id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_refused(
        &server,
        &admin,
        "bob",
        "bob's directory password",
        "disabled",
    )
    .await?;

    // Plain LDAP, allowed on purpose.
    let (status, body) = patch_settings(
        &server,
        &Auth::Session(&admin),
        json!({"use_tls": false, "starttls": false, "allow_plain": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = test_settings(&server, &admin).await?;
    assert!(
        test["message"]
            .as_str()
            .unwrap_or_default()
            .contains("without TLS"),
        "{test}"
    );
    let (status, body, _) = ldap_login(&server, "alice", "alice's directory password").await?;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The console's login page offers the directory's form, which signs in.
    let page = server
        .client
        .get(server.url("/login"))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("action=\"/login/ldap\""), "{page}");
    let id = provider_id.to_string();
    let browser = crate::console::browser(&server);
    let form = async |password: &str| {
        crate::console::post_form(
            &browser,
            server.url("/login/ldap"),
            None,
            &[
                ("provider_id", id.as_str()),
                ("username", "alice"),
                ("password", password),
                ("next", "/console/certificates"),
            ],
        )
        .await
    };
    let refused = form("wrong").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .text()
            .await?
            .contains("invalid username or password")
    );
    let signed_in = form("alice's directory password").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/console/certificates")
    );
    assert!(signed_in.headers().get("set-cookie").is_some());
    Ok(())
}

#[tokio::test]
async fn a_directory_certmint_cannot_trust_or_may_not_reach_is_refused() -> TestResult {
    let server = TestServer::start_with(|s| s.sso.allow_private_targets = true).await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    // A certificate for the right names, signed by no CA certmint or the system knows.
    let (cert, key) = (dir.path().join("self.crt"), dir.path().join("self.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    assert!(made.status.success(), "{made:?}");
    let slapd = Slapd::start(&dir.path().join("directory"), &cert, &key).await?;
    let (status, body) = patch_settings(
        &server,
        &Auth::Session(&admin),
        json!({
            "enabled": true,
            "server": "localhost",
            "port": slapd.ldaps,
            "base_dn": BASE_DN,
            "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = test_settings(&server, &admin).await?;
    assert_eq!(test["success"], false, "{test}");
    assert!(
        test["message"]
            .as_str()
            .unwrap_or_default()
            .contains("certificate"),
        "{test}"
    );
    let before = failed_logins(&server, &admin).await;
    let (status, body, _) = ldap_login(&server, "alice", "alice's directory password").await?;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(failed_logins(&server, &admin).await, before + 1);

    // The same directory, from a server that keeps SSO to public addresses.
    let public_only = TestServer::start().await;
    let admin = public_only.admin().await;
    let (status, body) = patch_settings(
        &public_only,
        &Auth::Session(&admin),
        json!({
            "enabled": true,
            "server": "localhost",
            "port": slapd.ldaps,
            "base_dn": BASE_DN,
            "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let test = test_settings(&public_only, &admin).await?;
    assert_eq!(test["success"], false, "{test}");
    let message = test["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("loopback") && message.contains("allow_private_targets"),
        "{test}"
    );
    let before = failed_logins(&public_only, &admin).await;
    let (status, body, _) = ldap_login(&public_only, "alice", "alice's directory password").await?;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    // The reason, with the directory's address, is for the audit log only.
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("audit log"), "{body}");
    assert!(
        !message.contains("127.0.0.1") && !message.contains("localhost"),
        "{body}"
    );
    assert_eq!(failed_logins(&public_only, &admin).await, before + 1);
    let (status, audit) = public_only
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=login_failed",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert!(
        audit.to_string().contains("allow_private_targets"),
        "{audit}"
    );
    Ok(())
}
