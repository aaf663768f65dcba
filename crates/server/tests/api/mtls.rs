//! Logging in with a TLS client certificate, driven by the real `curl` (with the certificate
//! and key certmint made) and checked with `openssl`: the settings, the certificates a user
//! makes and manages, the administrators' view, and every certificate that must not log in
//! (none, another CA's, turned off, expired, revoked, deleted, a disabled user's, an unlinked
//! one without e-mail mapping), each refused with its reason and an audit record.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::common::{Auth, Session, TestResult, TestServer, post};
use crate::console::{browser, get, location, post_form, rest};
use crate::est::{Answer, Est};

const LENA_EMAIL: &str = "lena@example.test";

/// curl's POST to the certificate login, with `args` (`--cert`/`--key`, or none).
fn curl_login(t: &Est, args: &[&str]) -> TestResult<Answer> {
    let mut all = vec!["-X", "POST"];
    all.extend_from_slice(args);
    t.curl_url(&t.server.url("/api/v2/auth/login/mtls"), &all)
}

/// curl's login with the certificate and key in files `{name}.crt` and `{name}.key`.
fn login_as(t: &Est, name: &str) -> TestResult<Answer> {
    let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
    curl_login(t, &["--cert", &cert, "--key", &key])
}

fn json_of(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
}

/// Asserts that `answer` is a refused login whose message says `why`.
fn refused(answer: &Answer, why: &str) {
    assert_eq!(answer.status, 401, "{}", answer.text());
    let message = json_of(answer)["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains(why), "expected '{why}' in: {message}");
    assert!(!answer.headers.contains("set-cookie"), "{}", answer.headers);
}

async fn call(
    t: &Est,
    method: Method,
    path: &str,
    auth: &Auth<'_>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    t.server.call(method, path, auth, body).await
}

/// Makes a login certificate named `name` as `session` and writes `{file}.crt` and
/// `{file}.key`; returns its id and its inventory id.
async fn make(
    t: &Est,
    session: &Session,
    name: &str,
    file: &str,
    days: Option<i64>,
) -> TestResult<(i64, i64)> {
    let mut body = json!({"name": name});
    if let Some(days) = days {
        body["validity_days"] = json!(days);
    }
    let (status, made) = post(
        &t.server,
        session,
        "/api/v2/account/mtls/certificates/create",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let data = &made["data"];
    std::fs::write(
        t.path(&format!("{file}.crt")),
        data["certificate_pem"].as_str().ok_or("pem")?,
    )?;
    std::fs::write(
        t.path(&format!("{file}.key")),
        data["private_key_pem"].as_str().ok_or("key")?,
    )?;
    Ok((
        data["certificate"]["id"].as_i64().ok_or("id")?,
        data["certificate"]["cert_id"].as_i64().ok_or("cert_id")?,
    ))
}

async fn settings(t: &Est, body: Value) -> (StatusCode, Value) {
    call(
        t,
        Method::PUT,
        "/api/v2/account/mtls/settings",
        &Auth::Session(&t.admin),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_logs_its_user_in_until_it_is_turned_off_expires_or_is_revoked()
-> TestResult {
    let t = Est::around(TestServer::start().await).await?;
    let (status, lena_user) = post(
        &t.server,
        &t.admin,
        "/api/v2/users",
        json!({"username": "lena", "password": crate::common::ADMIN_PASSWORD, "role": "viewer",
               "email": LENA_EMAIL}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{lena_user}");
    let lena_id = lena_user["data"]["id"].as_i64().ok_or("user id")?;
    t.server.user(&t.admin, "vic", "viewer").await;
    let lena = t.server.login("lena", crate::common::ADMIN_PASSWORD).await;
    let vic = t.server.login("vic", crate::common::ADMIN_PASSWORD).await;

    // Off as installed: the login says so, and nobody can make a certificate.
    let (status, off) = call(
        &t,
        Method::GET,
        "/api/v2/account/mtls/settings",
        &Auth::Session(&lena),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(off["data"]["enabled"], false);
    refused(&curl_login(&t, &[])?, "turned off");
    let (status, body) = post(
        &t.server,
        &lena,
        "/api/v2/account/mtls/certificates/create",
        json!({"name": "laptop"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Only an administrator turns it on, and only with a CA whose key certmint holds.
    let (status, _) = call(
        &t,
        Method::PUT,
        "/api/v2/account/mtls/settings",
        &Auth::Session(&lena),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        settings(&t, json!({"enabled": true})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        settings(&t, json!({"enabled": true, "issuing_ca_id": 999_999}))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        settings(&t, json!({"validity_days": 0})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        settings(&t, json!({"enabled": true, "surprise": 1}))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, on) = settings(
        &t,
        json!({"enabled": true, "issuing_ca_id": t.default_ca, "validity_days": 90}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{on}");
    assert_eq!(on["data"]["issuing_ca_id"], t.default_ca);

    // An API key cannot make a credential that logs in as a session.
    let (_, lena_key) = t.server.api_key(&lena, &["read:certificates"]).await;
    let (status, _) = call(
        &t,
        Method::POST,
        "/api/v2/account/mtls/certificates/create",
        &Auth::Bearer(&lena_key),
        Some(json!({"name": "key"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "validity_days": 91}),
        json!({"name": "x", "validity_days": 0}),
        json!({"name": "a\u{7}b"}),
    ] {
        let (status, body) = post(
            &t.server,
            &lena,
            "/api/v2/account/mtls/certificates/create",
            bad.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }

    // Lena makes one; openssl reads what she got: her name, her address, client auth only.
    let (laptop, laptop_cert) = make(&t, &lena, "laptop", "lena", None).await?;
    let text = t.openssl(&[
        "x509",
        "-in",
        "lena.crt",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,extendedKeyUsage",
    ])?;
    assert!(
        text.contains("CN=lena") || text.contains("CN = lena"),
        "{text}"
    );
    assert!(text.contains(&format!("email:{LENA_EMAIL}")), "{text}");
    assert!(
        text.contains("TLS Web Client Authentication") && !text.contains("Server Authentication"),
        "{text}"
    );

    // curl logs her in with it: a session cookie, the method named.
    let answer = login_as(&t, "lena")?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let data = &json_of(&answer)["data"];
    assert_eq!(data["user"]["username"], "lena");
    assert_eq!(data["auth_method"], "mtls");
    assert!(
        answer.headers.contains("set-cookie: certmint_session="),
        "{}",
        answer.headers
    );
    let (_, listed) = call(
        &t,
        Method::GET,
        "/api/v2/account/mtls/certificates",
        &Auth::Session(&lena),
        None,
    )
    .await;
    assert_eq!(listed["meta"]["total"], 1);
    assert!(listed["data"][0]["last_used_at"].is_string(), "{listed}");
    assert_eq!(listed["data"][0]["status"], "valid");

    // Not a certificate, or another CA's: refused.
    refused(&curl_login(&t, &[])?, "no client certificate");
    t.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=lena",
        "-days",
        "2",
        "-keyout",
        "self.key",
        "-out",
        "self.crt",
    ])?;
    refused(&login_as(&t, "self")?, "not issued by");

    // A certificate of the inventory that is not registered to anyone does not log in (no
    // e-mail mapping), even naming her address.
    let (status, issued) = post(
        &t.server,
        &t.admin,
        "/api/v2/certificates",
        json!({"common_name": "lena", "san": [format!("email:{LENA_EMAIL}")],
               "key_usage": ["digitalSignature"], "extended_key_usage": ["clientAuth"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let unlinked = issued["data"]["id"].as_i64().ok_or("id")?;
    let pem = t
        .server
        .request(
            Method::GET,
            &format!("/api/v2/certificates/{unlinked}/export?include_key=true"),
            &Auth::Session(&t.admin),
            None,
        )
        .await;
    assert_eq!(pem.status(), StatusCode::OK);
    let pem = pem.text().await?;
    std::fs::write(t.path("unlinked.crt"), &pem)?;
    std::fs::write(t.path("unlinked.key"), &pem)?;
    refused(&login_as(&t, "unlinked")?, "not registered to any user");
    // With e-mail mapping, it logs in the one user that address names…
    assert_eq!(
        settings(&t, json!({"map_by_email": true})).await.0,
        StatusCode::OK
    );
    let answer = login_as(&t, "unlinked")?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(json_of(&answer)["data"]["user"]["username"], "lena");
    // …and nobody once two users share it.
    let (status, _) = post(&t.server, &t.admin, "/api/v2/users", json!({"username": "lena2", "password": crate::common::ADMIN_PASSWORD, "role": "viewer", "email": LENA_EMAIL})).await;
    assert_eq!(status, StatusCode::CREATED);
    refused(&login_as(&t, "unlinked")?, "more than one user");
    assert_eq!(
        settings(&t, json!({"map_by_email": false})).await.0,
        StatusCode::OK
    );

    // Turned off, it does not log in; on again, it does.
    let enable = format!("/api/v2/account/mtls/certificates/{laptop}/enable");
    let (status, body) = post(&t.server, &lena, &enable, json!({"enabled": false})).await;
    assert_eq!(
        (status, &body["data"]["enabled"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    refused(&login_as(&t, "lena")?, "turned off");
    assert_eq!(
        post(&t.server, &lena, &enable, json!({"enabled": true}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(login_as(&t, "lena")?.status, 200);

    // Someone else's certificates are out of Vic's reach, and he sees only his own list.
    for (method, path) in [
        (Method::GET, format!("/api/v2/user-certificates/{laptop}")),
        (
            Method::GET,
            format!("/api/v2/account/mtls/certificates/{laptop}/download"),
        ),
        (
            Method::POST,
            format!("/api/v2/user-certificates/{laptop}/revoke"),
        ),
        (
            Method::POST,
            format!("/api/v2/account/mtls/certificates/{laptop}/enable"),
        ),
        (
            Method::DELETE,
            format!("/api/v2/user-certificates/{laptop}"),
        ),
    ] {
        let body = (method == Method::POST).then(|| json!({"enabled": false}));
        let body = if path.ends_with("revoke") {
            Some(json!({}))
        } else {
            body
        };
        let (status, answer) = call(&t, method.clone(), &path, &Auth::Session(&vic), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    let (_, vics) = call(
        &t,
        Method::GET,
        "/api/v2/user-certificates",
        &Auth::Session(&vic),
        None,
    )
    .await;
    assert_eq!(vics["meta"]["total"], 0, "{vics}");
    let (status, _) = call(
        &t,
        Method::GET,
        "/api/v2/account/mtls/certificates/all",
        &Auth::Session(&vic),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The administrators see everyone's; the key goes to its owner only, by any route.
    let (_, all) = call(
        &t,
        Method::GET,
        "/api/v2/user-certificates?status=valid",
        &Auth::Session(&t.admin),
        None,
    )
    .await;
    assert_eq!(all["meta"]["total"], 1, "{all}");
    assert_eq!(all["data"][0]["username"], "lena");
    let (status, _) = call(
        &t,
        Method::GET,
        "/api/v2/user-certificates?status=sideways",
        &Auth::Session(&t.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, stats) = call(
        &t,
        Method::GET,
        "/api/v2/user-certificates/stats",
        &Auth::Session(&t.admin),
        None,
    )
    .await;
    assert_eq!(
        (
            stats["data"]["total"].as_i64(),
            stats["data"]["valid"].as_i64()
        ),
        (Some(1), Some(1)),
        "{stats}"
    );
    let cert_only = t
        .server
        .request(
            Method::GET,
            &format!("/api/v2/user-certificates/{laptop}/export?format=pem&include_chain=true"),
            &Auth::Session(&t.admin),
            None,
        )
        .await;
    assert_eq!(cert_only.status(), StatusCode::OK);
    assert_eq!(
        cert_only.text().await?.matches("BEGIN CERTIFICATE").count(),
        3,
        "the certificate and two CAs"
    );
    for path in [
        format!("/api/v2/user-certificates/{laptop}/export?include_key=true"),
        format!("/api/v2/user-certificates/{laptop}/export?format=pkcs12&password=long%20enough"),
        format!("/api/v2/certificates/{laptop_cert}/export?include_key=true"),
    ] {
        let (status, body) = call(&t, Method::GET, &path, &Auth::Session(&t.admin), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, _) = call(
        &t,
        Method::GET,
        &format!("/api/v2/account/mtls/certificates/{laptop}/download?include_key=true"),
        &Auth::Bearer(&lena_key),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an API key does not fetch a login key"
    );
    let p12 = t.server.request(Method::GET, &format!("/api/v2/account/mtls/certificates/{laptop}/download?format=pkcs12&password=long%20enough"), &Auth::Session(&lena), None).await;
    assert_eq!(p12.status(), StatusCode::OK);
    std::fs::write(t.path("lena.p12"), p12.bytes().await?)?;
    let bundle = t.openssl(&[
        "pkcs12",
        "-in",
        "lena.p12",
        "-passin",
        "pass:long enough",
        "-nodes",
    ])?;
    assert!(bundle.contains("PRIVATE KEY"), "{bundle}");
    assert!(
        bundle.contains("CN=lena") || bundle.contains("CN = lena"),
        "{bundle}"
    );

    // A disabled user's certificate does not log in.
    let (status, _) = call(
        &t,
        Method::PATCH,
        &format!("/api/v2/users/{lena_id}/toggle"),
        &Auth::Session(&t.admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    refused(&login_as(&t, "lena")?, "disabled");
    let (status, _) = call(
        &t,
        Method::PATCH,
        &format!("/api/v2/users/{lena_id}/toggle"),
        &Auth::Session(&t.admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lena = t.server.login("lena", crate::common::ADMIN_PASSWORD).await;

    // Expired: a one-day certificate, a day and a half later.
    make(&t, &lena, "short", "short", Some(1)).await?;
    assert_eq!(login_as(&t, "short")?.status, 200);
    t.server.clock.advance(Duration::hours(36));
    refused(&login_as(&t, "short")?, "expired");
    // The sessions timed out meanwhile.
    let lena = t.server.login("lena", crate::common::ADMIN_PASSWORD).await;
    let admin = t.server.admin().await;

    // Deleted: revoked and unlinked; the certificate stays in the inventory.
    let (spare, spare_cert) = make(&t, &lena, "spare", "spare", None).await?;
    assert_eq!(login_as(&t, "spare")?.status, 200);
    let (status, _) = call(
        &t,
        Method::DELETE,
        &format!("/api/v2/account/mtls/certificates/{spare}"),
        &Auth::Session(&lena),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    refused(&login_as(&t, "spare")?, "revoked");
    let (_, kept) = call(
        &t,
        Method::GET,
        &format!("/api/v2/certificates/{spare_cert}"),
        &Auth::Session(&admin),
        None,
    )
    .await;
    assert_eq!(kept["data"]["status"], "revoked", "{kept}");

    // Revoked by its owner: refused from then on, and the inventory says so.
    let revoke = format!("/api/v2/account/mtls/certificates/{laptop}/revoke");
    assert_eq!(
        post(&t.server, &lena, &revoke, json!({"reason": "sideways"}))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, body) = post(
        &t.server,
        &lena,
        &revoke,
        json!({"reason": "key_compromise"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "revoked");
    refused(&login_as(&t, "lena")?, "revoked");
    assert_eq!(
        post(&t.server, &lena, &revoke, json!({})).await.0,
        StatusCode::CONFLICT
    );

    // Every refusal is in the audit log with its reason; every change too.
    let auditor = Auth::Session(&admin);
    assert_eq!(
        t.server
            .audit_total(
                &auditor,
                "action=login_failed&username=client%20certificate"
            )
            .await,
        9
    );
    assert_eq!(
        t.server
            .audit_total(&auditor, "action=login_certificate_created")
            .await,
        3
    );
    assert_eq!(
        t.server
            .audit_total(&auditor, "action=login_certificate_disabled")
            .await,
        1
    );
    assert_eq!(
        t.server
            .audit_total(&auditor, "action=login_certificate_deleted")
            .await,
        1
    );
    assert_eq!(
        t.server
            .audit_total(&auditor, "action=mtls_settings_updated")
            .await,
        3
    );
    t.server.stop().await;
    Ok(())
}

/// A browser-like client that presents the certificate and key in PEM `identity`.
fn browser_with(server: &TestServer, identity: &[u8]) -> TestResult<reqwest::Client> {
    let cert = std::fs::read(server._data_dir.path().join("tls/server.crt"))?;
    Ok(reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert)?])
        .identity(reqwest::Identity::from_pem(identity)?)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_makes_a_login_certificate_and_signs_in_with_it() -> TestResult {
    let t = Est::around(TestServer::start().await).await?;
    t.server.user(&t.admin, "vera", "viewer").await;
    let vera = t.server.login("vera", crate::common::ADMIN_PASSWORD).await;
    let client = browser(&t.server);
    let cookie = Some(vera.cookie.as_str());

    // Off: neither the login page nor the account page offers it.
    let login = get(&client, t.server.url("/login"), None)
        .await
        .text()
        .await?;
    assert!(!login.contains("/login/certificate"), "{login}");
    let page = get(&client, t.server.url("/account"), cookie)
        .await
        .text()
        .await?;
    assert!(!page.contains("Login certificates"), "{page}");
    let (status, _) = settings(&t, json!({"enabled": true, "issuing_ca_id": t.default_ca})).await;
    assert_eq!(status, StatusCode::OK);
    let login = get(&client, t.server.url("/login"), None)
        .await
        .text()
        .await?;
    assert!(
        login.contains("Sign in with a client certificate"),
        "{login}"
    );

    // Made on the account page: the key is shown once, on this answer.
    let made = post_form(
        &client,
        t.server.url("/account/mtls/create"),
        cookie,
        &[("csrf_token", &vera.csrf), ("name", "laptop")],
    )
    .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let html = made.text().await?;
    assert!(
        html.contains("BEGIN PRIVATE KEY") && html.contains("laptop"),
        "{html}"
    );
    let bad = post_form(
        &client,
        t.server.url("/account/mtls/create"),
        cookie,
        &[("csrf_token", &vera.csrf), ("name", "")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await?.contains(r#"id="mtls-error""#));
    let listed = rest(&t.server, &vera, "/api/v2/account/mtls/certificates").await;
    let id = listed[0]["id"].as_i64().ok_or("id")?;

    // Downloaded as PKCS#12 with a password; openssl opens it.
    let download = format!("/account/mtls/{id}/download");
    let short = post_form(
        &client,
        t.server.url(&download),
        cookie,
        &[("csrf_token", &vera.csrf), ("password", "short")],
    )
    .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p12 = post_form(
        &client,
        t.server.url(&download),
        cookie,
        &[("csrf_token", &vera.csrf), ("password", "long enough")],
    )
    .await;
    assert_eq!(p12.status(), StatusCode::OK);
    std::fs::write(t.path("vera.p12"), p12.bytes().await?)?;
    let identity = t.openssl(&[
        "pkcs12",
        "-in",
        "vera.p12",
        "-passin",
        "pass:long enough",
        "-nodes",
    ])?;

    // The certificate signs her in from the login page's button.
    let presenting = browser_with(&t.server, identity.as_bytes())?;
    let signed_in = post_form(
        &presenting,
        t.server.url("/login/certificate"),
        None,
        &[("next", "/account")],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/account");
    let session = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("cookie")?
        .to_owned();
    let page = get(&client, t.server.url("/account"), Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await?.contains("laptop"));

    // Without a certificate, or with hers turned off: the login page with the reason.
    let refused = post_form(&client, t.server.url("/login/certificate"), None, &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await?.contains("no client certificate"));
    let off = post_form(
        &client,
        t.server.url(&format!("/account/mtls/{id}/enable")),
        cookie,
        &[("csrf_token", &vera.csrf), ("enabled", "false")],
    )
    .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let refused = post_form(&presenting, t.server.url("/login/certificate"), None, &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await?.contains("turned off"));

    // Revoked from the account page: listed as revoked, and the forms for it are gone.
    let revoked = post_form(
        &client,
        t.server.url(&format!("/account/mtls/{id}/revoke")),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let listed = rest(&t.server, &vera, "/api/v2/account/mtls/certificates").await;
    assert_eq!(listed[0]["status"], "revoked");
    let page = get(&client, t.server.url("/account"), cookie)
        .await
        .text()
        .await?;
    assert!(!page.contains(&download), "{page}");
    t.server.stop().await;
    Ok(())
}
