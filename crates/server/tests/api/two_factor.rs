//! Second factors: authenticators (TOTP) whose codes a real implementation (pyotp) computes,
//! recovery codes, the second step of a login and its limits, a role that requires a second
//! factor, and password resets by a mailed link (a real SMTP server, aiosmtpd).

use std::process::Command;

use authority::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::acme_peers::tool;
use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::email_alerts::SmtpServer;

const LOGIN: &str = "/api/v2/auth/login/password";
const SECOND: &str = "/api/v2/auth/login/2fa";
const STATUS: &str = "/api/v2/account/2fa";
/// The address users reach the server at, behind its proxy.
const PUBLIC: &str = "https://ca.example.test";

/// The code pyotp computes for `secret` at the server's (manual) clock.
fn pyotp(server: &TestServer, secret: &str) -> TestResult<String> {
    let python = tool("python3", "CERTMINT_TEST_PYOTP");
    let at = server.clock.now().unix_timestamp();
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &at.to_string(),
        ])
        .output()?;
    assert!(out.status.success(), "pyotp: {out:?}");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A six-digit code that is not `code`.
fn other_than(code: &str) -> String {
    if code == "000000" { "111111" } else { "000000" }.to_owned()
}

/// A password login that must stop at the second factor; returns its pending token.
async fn pending(server: &TestServer, username: &str, password: &str, kind: &str) -> String {
    let response = server
        .request(
            Method::POST,
            LOGIN,
            &Auth::None,
            Some(json!({"username": username, "password": password})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no session before the second factor"
    );
    let body: Value = response.json().await.expect("body");
    assert_eq!(body["data"]["requires_2fa"], true, "{body}");
    assert_eq!(body["data"]["second_factor"], kind, "{body}");
    assert!(body["data"]["csrf_token"].is_null(), "{body}");
    body["data"]["pending_token"]
        .as_str()
        .expect("pending token")
        .to_owned()
}

/// The second step: status, body, and the session when it succeeded.
async fn second(
    server: &TestServer,
    token: &str,
    code: &str,
) -> (StatusCode, Value, Option<Session>) {
    let response = server
        .request(
            Method::POST,
            SECOND,
            &Auth::None,
            Some(json!({"pending_token": token, "code": code})),
        )
        .await;
    let status = response.status();
    let has_cookie = response.headers().get("set-cookie").is_some();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let session = (status == StatusCode::OK && has_cookie).then(|| {
        let cookie = headers["set-cookie"]
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .expect("cookie")
            .to_owned();
        Session {
            cookie,
            csrf: body["data"]["csrf_token"]
                .as_str()
                .expect("csrf")
                .to_owned(),
        }
    });
    (status, body, session)
}

async fn status_of(server: &TestServer, session: &Session) -> Value {
    let (status, body) = server
        .call(Method::GET, STATUS, &Auth::Session(session), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// Turns on an authenticator for `session`'s user and returns its secret.
pub(crate) async fn enable_totp(server: &TestServer, session: &Session) -> TestResult<String> {
    let auth = Auth::Session(session);
    let (status, body) = server
        .call(Method::POST, "/api/v2/account/2fa/enable", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["data"]["secret"].as_str().ok_or("secret")?.to_owned();
    let code = pyotp(server, &secret)?;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/confirm",
            &auth,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(secret)
}

/// Logs `username` in with the test password and a code of `secret` from the next time step.
pub(crate) async fn login_with_code(
    server: &TestServer,
    username: &str,
    secret: &str,
) -> TestResult<Session> {
    let token = pending(server, username, ADMIN_PASSWORD, "totp").await;
    server.clock.advance(Duration::seconds(30));
    let (status, body, session) = second(server, &token, &pyotp(server, secret)?).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(session.ok_or("no session")?)
}

fn codes(body: &Value, field: &str) -> Vec<String> {
    body["data"][field]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

#[tokio::test]
async fn an_authenticator_guards_logins_with_single_use_codes() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    assert_eq!(
        status_of(&server, &admin).await,
        json!({"enabled": false, "pending": false, "required": false,
               "recovery_codes_remaining": 0, "recovery_codes_total": 0})
    );

    // An API key cannot set up the factor that guards the logins that make keys.
    let (_, key) = server.api_key(&admin, &["*"]).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/enable",
            &Auth::Bearer(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Set up: the secret, its otpauth URI and a QR code.
    let (status, body) = server
        .call(Method::POST, "/api/v2/account/2fa/enable", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["data"]["secret"].as_str().expect("secret").to_owned();
    let uri = body["data"]["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/certmint:admin?")
            && uri.contains(&format!("secret={secret}")),
        "{uri}"
    );
    assert!(uri.contains("issuer=certmint"), "{uri}");
    assert!(
        body["data"]["qr_code"]
            .as_str()
            .expect("qr")
            .contains("<svg"),
        "{body}"
    );
    assert_eq!(status_of(&server, &admin).await["pending"], true);
    // Not on until confirmed: a login needs no code yet.
    let (status, body) = server
        .call(
            Method::POST,
            LOGIN,
            &Auth::None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["csrf_token"].is_string(), "{body}");

    // Confirm: a wrong code is refused, pyotp's code turns it on and gives ten recovery codes.
    let code = pyotp(&server, &secret)?;
    for (bad, want) in [
        (other_than(&code), StatusCode::UNAUTHORIZED),
        ("12345".to_owned(), StatusCode::UNPROCESSABLE_ENTITY),
        ("<script>".to_owned(), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/account/2fa/confirm",
                &auth,
                Some(json!({"code": bad})),
            )
            .await;
        assert_eq!(status, want, "{bad}: {body}");
    }
    assert_eq!(status_of(&server, &admin).await["enabled"], false);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/confirm",
            &auth,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recovery = codes(&body, "recovery_codes");
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        status_of(&server, &admin).await,
        json!({"enabled": true, "pending": false, "required": false,
               "recovery_codes_remaining": 10, "recovery_codes_total": 10})
    );
    let (status, _) = server
        .call(Method::POST, "/api/v2/account/2fa/enable", &auth, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "on already");

    // A login now stops at the second factor; the confirming code's step is used up.
    let token = pending(&server, "admin", ADMIN_PASSWORD, "totp").await;
    let (status, body, _) = second(&server, &token, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed: {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already used"),
        "{body}"
    );
    server.clock.advance(Duration::seconds(30));
    let code = pyotp(&server, &secret)?;
    let (status, body, session) = second(&server, &token, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = session.expect("a session");
    assert_eq!(body["data"]["auth_method"], "password");
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // One pending login, one session.
    let (status, _, _) = second(&server, &token, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same code on another login: refused, it was used.
    let token = pending(&server, "admin", ADMIN_PASSWORD, "totp").await;
    let (status, body, _) = second(&server, &token, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A recovery code works once.
    let (status, body, session) = second(&server, &token, &recovery[0].to_uppercase()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(session.is_some());
    let token = pending(&server, "admin", ADMIN_PASSWORD, "totp").await;
    let (status, _, _) = second(&server, &token, &recovery[0]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a used recovery code");
    assert_eq!(
        status_of(&server, &admin).await["recovery_codes_remaining"],
        9
    );

    // A pending login takes a few codes, then ends: even the right code is refused after.
    let token = pending(&server, "admin", ADMIN_PASSWORD, "totp").await;
    server.clock.advance(Duration::seconds(30));
    let code = pyotp(&server, &secret)?;
    for _ in 0..authority::MAX_CODE_ATTEMPTS {
        let (status, _, _) = second(&server, &token, &other_than(&code)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, _) = second(&server, &token, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too many"),
        "{body}"
    );
    // A pending login expires.
    let token = pending(&server, "admin", ADMIN_PASSWORD, "totp").await;
    server
        .clock
        .advance(authority::PENDING_LIFETIME + Duration::seconds(1));
    let code = pyotp(&server, &secret)?;
    let (status, _, _) = second(&server, &token, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");
    // Garbage: a forged token, a code that is not one, unknown fields.
    for (body, want) in [
        (
            json!({"pending_token": "forged", "code": code}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"pending_token": token, "code": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"pending_token": token, "code": code, "admin": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = server
            .call(Method::POST, SECOND, &Auth::None, Some(body.clone()))
            .await;
        assert!(
            status == want
                || (want == StatusCode::UNPROCESSABLE_ENTITY && status == StatusCode::BAD_REQUEST),
            "{body}: {status} {answer}"
        );
    }
    // Every refusal left an audit record.
    assert!(
        server
            .audit_total(&auth, "action=second_factor_failed")
            .await
            >= 6
    );
    assert_eq!(
        server.audit_total(&auth, "action=recovery_code_used").await,
        1
    );

    // New recovery codes replace the old.
    let fresh = login_with_code(&server, "admin", &secret).await?;
    let auth = Auth::Session(&fresh);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/recovery-codes/regenerate",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = codes(&body, "recovery_codes");
    assert_eq!(renewed.len(), 10);
    let token = pending(&server, "admin", ADMIN_PASSWORD, "totp").await;
    let (status, _, _) = second(&server, &token, &recovery[1]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an old recovery code");

    // Off: a wrong password is refused; a current code turns it off.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/disable",
            &auth,
            Some(json!({"password": "wrong"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/disable",
            &auth,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.clock.advance(Duration::seconds(30));
    let code = pyotp(&server, &secret)?;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/disable",
            &auth,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.admin().await;
    assert_eq!(server.audit_total(&auth, "action=2fa_disabled").await, 1);
    Ok(())
}

#[tokio::test]
async fn a_role_that_requires_a_second_factor_sets_one_up_at_login() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/settings/general",
            &auth,
            Some(json!({"second_factor_roles": ["root"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/settings/general",
            &auth,
            Some(json!({"second_factor_roles": ["operator"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.user(&admin, "olga", "operator").await;

    // Olga's password is right, and she must set up an authenticator before she is in.
    let token = pending(&server, "olga", ADMIN_PASSWORD, "setup").await;
    let (status, _, _) = second(&server, &token, "123456").await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing set up yet");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/2fa/setup",
            &Auth::None,
            Some(json!({"pending_token": token})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["data"]["secret"].as_str().expect("secret").to_owned();
    let (status, body, session) = second(&server, &token, &pyotp(&server, &secret)?).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(codes(&body, "recovery_codes").len(), 10);
    let olga = session.expect("a session");
    let status = status_of(&server, &olga).await;
    assert_eq!(
        (&status["enabled"], &status["required"]),
        (&json!(true), &json!(true))
    );
    // Required: she cannot turn it off.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/2fa/disable",
            &Auth::Session(&olga),
            Some(json!({"password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Her next login asks for a code, not a set-up; a set-up is refused.
    let token = pending(&server, "olga", ADMIN_PASSWORD, "totp").await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/2fa/setup",
            &Auth::None,
            Some(json!({"pending_token": token})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Other roles log in as before.
    server.admin().await;
    Ok(())
}

/// The token of the one reset mail that arrives (sent in the background), to the admin, with
/// its link on the configured public URL whatever the request's headers said.
async fn reset_token(smtp: &SmtpServer) -> TestResult<String> {
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails.extend(smtp.take()?);
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    mails.extend(smtp.take()?);
    assert_eq!(mails.len(), 1, "one mail, to the one account");
    assert_eq!(mails[0].to, "admin@example.test");
    assert!(!mails[0].text.contains("evil.example"), "{}", mails[0].text);
    let base = format!("{PUBLIC}/reset-password?token=");
    let start = mails[0]
        .text
        .find(&base)
        .ok_or_else(|| format!("no link on {base}: {}", mails[0].text))?;
    let token: String = mails[0].text[start + base.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(token.len() >= 40, "{}", mails[0].text);
    Ok(token)
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_a_mailed_single_use_link() -> TestResult {
    let smtp = SmtpServer::start().await?;
    let server = TestServer::start_with(|s| {
        s.email.allow_private_targets = true;
        s.external_url = PUBLIC.into();
    })
    .await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    // Without mail, the same answer and nothing sent.
    let forgot = |email: &str| json!({"email": email});
    let (status, quiet) = server
        .call(
            Method::POST,
            "/api/v2/auth/forgot-password",
            &Auth::None,
            Some(forgot("admin@example.test")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{quiet}");
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/settings/email",
            &auth,
            Some(
                json!({"enabled": true, "host": "127.0.0.1", "port": smtp.port, "security": "none",
                          "from_address": "certmint@example.test"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &auth,
            Some(json!({"email": "admin@example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Unknown and known addresses get the same answer; a Host header does not steer the link.
    let (status, unknown) = server
        .call(
            Method::POST,
            "/api/v2/auth/forgot-password",
            &Auth::None,
            Some(forgot("nobody@example.test")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = server
        .client
        .post(server.url("/api/v2/auth/forgot-password"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .json(&forgot("ADMIN@example.test"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let known: Value = response.json().await?;
    assert_eq!(known, unknown);
    assert_eq!(known, quiet);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/forgot-password",
            &Auth::None,
            Some(forgot("not an address")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let token = reset_token(&smtp).await?;

    // A password the policy refuses leaves the link working; a good one uses it up.
    let reset = |password: &str| json!({"token": token, "password": password});
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/reset-password",
            &Auth::None,
            Some(reset("short")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let chosen = "a brand new passphrase for admin";
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/reset-password",
            &Auth::None,
            Some(reset(chosen)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/reset-password",
            &Auth::None,
            Some(reset("yet another passphrase")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "used once");
    // Every session ended; the old password is gone, the new one works.
    let (status, _) = server
        .call(Method::GET, "/api/v2/auth/verify", &auth, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(
            Method::POST,
            LOGIN,
            &Auth::None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let admin = server.login("admin", chosen).await;
    let auth = Auth::Session(&admin);
    assert_eq!(server.audit_total(&auth, "action=password_reset").await, 1);
    assert!(
        server
            .audit_total(&auth, "action=password_reset_failed")
            .await
            >= 1
    );

    // A link expires.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/forgot-password",
            &Auth::None,
            Some(forgot("admin@example.test")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = reset_token(&smtp).await?;
    server.clock.advance(Duration::minutes(31));
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/reset-password",
            &Auth::None,
            Some(json!({"token": token, "password": "late passphrase here"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");
    Ok(())
}
