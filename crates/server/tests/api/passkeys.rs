//! Passkeys (WebAuthn) over the REST API. A software authenticator made here (a P-256 key,
//! `none` attestation) writes the bytes a browser relays, so the whole path runs without a
//! browser: registration, login, the signature counter, and every refusal (garbage, another
//! origin or RP id, a ceremony used, expired or forged, a disabled passkey or account, an API
//! key). `console_browser.rs` does it again with Chromium's own virtual authenticator.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, post};

const ORIGIN: &str = "https://pki.test.example";
const RP_ID: &str = "pki.test.example";

/// A server whose relying party is `pki.test.example` at [`ORIGIN`].
async fn server() -> TestServer {
    TestServer::start_with(|s| s.public_url = ORIGIN.into()).await
}

/// CBOR (RFC 8949), the little of it an attestation needs.
mod cbor {
    fn head(major: u8, n: usize, out: &mut Vec<u8>) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=255 => out.extend([m | 24, n as u8]),
            _ => {
                out.push(m | 25);
                out.extend(u16::try_from(n).expect("short").to_be_bytes());
            }
        }
    }
    pub fn int(v: i64, out: &mut Vec<u8>) {
        if v >= 0 {
            head(0, v as usize, out);
        } else {
            head(1, (-1 - v) as usize, out);
        }
    }
    pub fn bytes(b: &[u8], out: &mut Vec<u8>) {
        head(2, b.len(), out);
        out.extend(b);
    }
    pub fn text(s: &str, out: &mut Vec<u8>) {
        head(3, s.len(), out);
        out.extend(s.as_bytes());
    }
    pub fn map(n: usize, out: &mut Vec<u8>) {
        head(5, n, out);
    }
}

/// A passkey on a software authenticator: user present and verified on every use.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
    rp_id: String,
    origin: String,
}

impl Authenticator {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).expect("random");
        Self {
            key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .expect("key"),
            credential_id,
            user_handle: Vec::new(),
            counter: 0,
            rp_id: RP_ID.into(),
            origin: ORIGIN.into(),
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false
        }))
        .expect("JSON")
    }

    /// Authenticator data: the RP id's hash, flags UP and UV (and AT with `attested`), the
    /// counter, and the credential when `attested`.
    fn authenticator_data(&self, attested: bool) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(if attested { 0x45 } else { 0x05 });
        data.extend(self.counter.to_be_bytes());
        if attested {
            data.extend([0u8; 16]);
            data.extend(
                u16::try_from(self.credential_id.len())
                    .expect("short")
                    .to_be_bytes(),
            );
            data.extend(&self.credential_id);
            let point = self.key.public_key().as_ref();
            let mut cose = Vec::new();
            cbor::map(5, &mut cose);
            for (k, v) in [(1, 2), (3, -7), (-1, 1)] {
                cbor::int(k, &mut cose);
                cbor::int(v, &mut cose);
            }
            cbor::int(-2, &mut cose);
            cbor::bytes(&point[1..33], &mut cose);
            cbor::int(-3, &mut cose);
            cbor::bytes(&point[33..65], &mut cose);
            data.extend(cose);
        }
        data
    }

    /// What `navigator.credentials.create()` would give for `options`.
    fn create(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        self.user_handle = B64
            .decode(public_key["user"]["id"].as_str().expect("user id"))
            .expect("user id");
        self.counter += 1;
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let mut attestation = Vec::new();
        cbor::map(3, &mut attestation);
        cbor::text("fmt", &mut attestation);
        cbor::text("none", &mut attestation);
        cbor::text("attStmt", &mut attestation);
        cbor::map(0, &mut attestation);
        cbor::text("authData", &mut attestation);
        cbor::bytes(&self.authenticator_data(true), &mut attestation);
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(attestation),
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", challenge)),
            },
            "extensions": {},
        })
    }

    /// What `navigator.credentials.get()` would give for `options`.
    fn get(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_again(options)
    }

    /// An assertion for `options` without moving the counter on, as a clone would make.
    fn assert_again(&self, options: &Value) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        let data = self.authenticator_data(false);
        let mut signed = data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("signature");
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(data),
                "clientDataJSON": B64.encode(client_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": B64.encode(&self.user_handle),
            },
            "extensions": {},
        })
    }
}

async fn register_options(server: &TestServer, session: &Session) -> Value {
    let (status, body) = post(
        server,
        session,
        "/api/v2/account/webauthn/register/options",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// Registers `authenticator` on `session`'s account as `name`; the passkey's id.
async fn register(
    server: &TestServer,
    session: &Session,
    authenticator: &mut Authenticator,
    name: &str,
) -> i64 {
    let options = register_options(server, session).await;
    let answer = authenticator.create(&options);
    let (status, body) = post(
        server,
        session,
        "/api/v2/account/webauthn/register/verify",
        json!({"name": name, "response": answer}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_i64().expect("passkey id")
}

async fn login_options(server: &TestServer) -> Value {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/webauthn/start",
            &Auth::None,
            Some(json!({"username": "whoever"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// Sends a login answer; the status, the body and the session cookie when one was set.
async fn login_verify(server: &TestServer, answer: Value) -> (StatusCode, Value, Option<String>) {
    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/login/webauthn/verify",
            &Auth::None,
            Some(json!({"response": answer})),
        )
        .await;
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body, cookie)
}

async fn passkeys(server: &TestServer, auth: &Auth<'_>, path: &str) -> Vec<Value> {
    let (status, body) = server.call(Method::GET, path, auth, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().expect("list").clone()
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// With the default settings the origin is an IP address, where browsers refuse passkeys:
/// they are not offered, and their routes say why.
#[tokio::test]
async fn passkeys_need_a_domain_name() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/account/webauthn/available",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["available"], false, "{body}");
    assert!(
        body["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no domain name")),
        "{body}"
    );
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/account/webauthn/register/options",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        message(&body).contains("passkeys are not available"),
        "{body}"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/webauthn/start",
            &Auth::None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["webauthn"], false, "{body}");

    // An RP id that is not the origin's host or a parent of it is refused by name.
    let server = TestServer::start_with(|s| {
        s.public_url = ORIGIN.into();
        s.webauthn_rp_id = "other.example".into();
    })
    .await;
    let admin = server.admin().await;
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/webauthn/register/options",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        message(&body).contains("webauthn_rp_id 'other.example'"),
        "{body}"
    );
    Ok(())
}

/// Register, log in with the passkey (a session with `auth_method` `webauthn`, no second
/// factor asked), the counter and last use recorded; the same answer again, an assertion with
/// a counter that did not move on (a clone), and the same authenticator registered twice are
/// refused.
#[tokio::test]
async fn a_passkey_registers_logs_in_and_counts_its_signatures() -> TestResult {
    let server = server().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/account/webauthn/available",
            &auth,
            None,
        )
        .await;
    assert_eq!(
        body["data"],
        json!({"available": true, "rp_id": RP_ID, "origin": ORIGIN, "reason": null})
    );
    let (_, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": "nobody-at-all"})),
        )
        .await;
    assert_eq!(body["data"]["webauthn"], true, "{body}");
    assert_eq!(body["data"]["webauthn_credentials"], 0, "{body}");

    let options = register_options(&server, &admin).await;
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID, "{options}");
    assert_eq!(public_key["user"]["name"], "admin", "{options}");
    let selection = &public_key["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");

    let mut authenticator = Authenticator::new();
    let answer = authenticator.create(&options);
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/account/webauthn/register/verify",
        json!({"name": "Laptop", "credential": answer}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["name"], "Laptop");
    assert_eq!(body["data"]["enabled"], true);
    assert_eq!(body["data"]["sign_count"], 1);
    assert_eq!(
        body["data"]["credential_id"],
        B64.encode(&authenticator.credential_id)
    );
    assert_eq!(
        server.audit_total(&auth, "action=passkey_registered").await,
        1
    );
    // The same passkey again: refused, even though the ceremony is fresh.
    let again = authenticator.create(&register_options(&server, &admin).await);
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/account/webauthn/register/verify",
        json!({"name": "Again", "response": again}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("registered already"), "{body}");
    // Listed at both places.
    for path in [
        "/api/v2/account/webauthn/credentials",
        "/api/v2/webauthn/credentials",
    ] {
        assert_eq!(passkeys(&server, &auth, path).await.len(), 1, "{path}");
    }

    let options = login_options(&server).await;
    assert_eq!(
        options["publicKey"]["userVerification"], "required",
        "{options}"
    );
    assert_eq!(options["publicKey"]["rpId"], RP_ID, "{options}");
    assert!(options.get("mediation").is_none(), "{options}");
    let answer = authenticator.get(&options);
    let (status, body, cookie) = login_verify(&server, answer.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["auth_method"], "webauthn", "{body}");
    assert_eq!(body["data"]["user"]["username"], "admin", "{body}");
    let session = Session {
        cookie: cookie.expect("session cookie"),
        csrf: body["data"]["csrf_token"]
            .as_str()
            .expect("csrf")
            .to_owned(),
    };
    let (status, me) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["data"]["auth_method"], "webauthn", "{me}");
    let listed = passkeys(&server, &auth, "/api/v2/account/webauthn/credentials").await;
    assert_eq!(listed[0]["sign_count"], authenticator.counter, "{listed:?}");
    assert!(listed[0]["last_used_at"].is_string(), "{listed:?}");

    // The same answer again: its ceremony is used up.
    let (status, body, _) = login_verify(&server, answer).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        message(&body).contains("unknown, used or expired"),
        "{body}"
    );
    // A fresh ceremony, but a counter that did not move on.
    let stale = authenticator.assert_again(&login_options(&server).await);
    let (status, body, _) = login_verify(&server, stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("counter"), "{body}");
    // Naming another account than the passkey's.
    let answer = authenticator.get(&login_options(&server).await);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/webauthn/verify",
            &Auth::None,
            Some(json!({"username": "somebody", "response": answer})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("another account's"), "{body}");
    assert!(server.audit_total(&auth, "action=login_failed").await >= 3);
    Ok(())
}

/// Garbage, answers made for another origin or RP id, forged, used and expired ceremonies:
/// each a clear 4xx and an audit record, for registration and for login.
#[tokio::test]
async fn forged_and_garbage_answers_are_refused_and_audited() -> TestResult {
    let server = server().await;
    let admin = server.admin().await;
    let verify = |body: Value| {
        let server = &server;
        let admin = &admin;
        async move {
            post(
                server,
                admin,
                "/api/v2/account/webauthn/register/verify",
                body,
            )
            .await
        }
    };

    let (status, body) = verify(json!({"name": "x", "response": {"id": "nope"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("not a WebAuthn answer"), "{body}");
    let (status, body) = verify(json!({"name": "x"})).await;
    assert!(
        status.is_client_error(),
        "no answer at all: {status} {body}"
    );

    // Another origin: named, with this server's.
    let options = register_options(&server, &admin).await;
    let mut phished = Authenticator::new();
    phished.origin = "https://pki.test.example.evil.example".into();
    let (status, body) = verify(json!({"response": phished.create(&options)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message(&body).contains("'https://pki.test.example.evil.example'")
            && message(&body).contains(&format!("'{ORIGIN}'")),
        "{body}"
    );
    // Another RP id, from the right origin (the ceremony above was not used by the refusal).
    let mut other_rp = Authenticator::new();
    other_rp.rp_id = "evil.example".into();
    let (status, body) = verify(json!({"response": other_rp.create(&options)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("webauthn_rp_id"), "{body}");
    // That one used the ceremony up: a good answer to it is refused now.
    let (status, body) = verify(json!({"response": Authenticator::new().create(&options)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message(&body).contains("unknown, used or expired"),
        "{body}"
    );
    // A challenge the server never gave.
    let forged = json!({"publicKey": {"challenge": B64.encode([7u8; 32]), "user": {"id": B64.encode([1u8; 16])}}});
    let (status, body) = verify(json!({"response": Authenticator::new().create(&forged)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message(&body).contains("unknown, used or expired"),
        "{body}"
    );
    // Expired.
    let options = register_options(&server, &admin).await;
    server.clock.advance(time::Duration::minutes(6));
    let (status, body) = verify(json!({"response": Authenticator::new().create(&options)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message(&body).contains("unknown, used or expired"),
        "{body}"
    );
    let admin = server.admin().await;
    let auth_now = Auth::Session(&admin);
    assert!(
        server
            .audit_total(&auth_now, "action=passkey_register_failed")
            .await
            >= 5
    );
    assert!(
        passkeys(&server, &auth_now, "/api/v2/webauthn/credentials")
            .await
            .is_empty()
    );

    // Login: garbage, another origin, an unknown passkey, a used ceremony, an expired one.
    let before = server.audit_total(&auth_now, "action=login_failed").await;
    let (status, body, _) = login_verify(&server, json!("garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let options = login_options(&server).await;
    let mut stranger = Authenticator::new();
    stranger.user_handle = vec![9; 16];
    stranger.origin = "http://localhost:8080".into();
    let (status, body, _) = login_verify(&server, stranger.get(&options)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("'http://localhost:8080'"), "{body}");
    stranger.origin = ORIGIN.into();
    let answer = stranger.get(&options);
    let (status, body, _) = login_verify(&server, answer.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("not registered here"), "{body}");
    let (status, body, _) = login_verify(&server, answer).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        message(&body).contains("unknown, used or expired"),
        "{body}"
    );
    let options = login_options(&server).await;
    server.clock.advance(time::Duration::minutes(6));
    let (status, body, _) = login_verify(&server, stranger.get(&options)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        message(&body).contains("unknown, used or expired"),
        "{body}"
    );
    let admin = server.admin().await;
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=login_failed")
            .await,
        before + 5
    );
    Ok(())
}

/// A disabled passkey and a disabled account are refused (and audited); the passkey comes
/// back when enabled, goes when deleted. The alias paths serve the same.
#[tokio::test]
async fn a_disabled_passkey_or_account_is_refused() -> TestResult {
    let server = server().await;
    let admin = server.admin().await;
    let pia_id = server.user(&admin, "pia", "operator").await;
    let pia = server.login("pia", ADMIN_PASSWORD).await;
    let mut authenticator = Authenticator::new();
    let id = register(&server, &pia, &mut authenticator, "Phone").await;
    // The same authenticator on another account: one passkey opens one account.
    let handle = authenticator.user_handle.clone();
    let options = register_options(&server, &admin).await;
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/account/webauthn/register/verify",
        json!({"name": "Borrowed", "response": authenticator.create(&options)}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).contains("registered already"), "{body}");
    authenticator.user_handle = handle;

    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/webauthn/credentials/{id}/toggle"),
            &Auth::Session(&pia),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], false, "{body}");
    let (status, body, _) =
        login_verify(&server, authenticator.get(&login_options(&server).await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("'Phone' is disabled"), "{body}");

    let (status, body) = post(
        &server,
        &pia,
        &format!("/api/v2/account/webauthn/credentials/{id}/toggle"),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], true, "{body}");
    let (status, body, _) =
        login_verify(&server, authenticator.get(&login_options(&server).await)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The account disabled: the passkey does not open it.
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{pia_id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, cookie) =
        login_verify(&server, authenticator.get(&login_options(&server).await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("disabled"), "{body}");
    assert!(cookie.is_none());
    let auth = Auth::Session(&admin);
    assert_eq!(
        server.audit_total(&auth, "action=passkey_disabled").await,
        1
    );
    assert_eq!(server.audit_total(&auth, "action=passkey_enabled").await, 1);
    assert!(
        server
            .audit_total(&auth, "action=login_failed&username=pia")
            .await
            >= 2
    );

    // Someone else's passkey is not found; one's own is deleted, once.
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/account/webauthn/credentials/{id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/v2/webauthn/credentials/{id}/toggle"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{pia_id}/toggle"),
            &auth,
            None,
        )
        .await;
    let pia = server.login("pia", ADMIN_PASSWORD).await;
    for want in [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND] {
        let (status, body) = server
            .call(
                Method::DELETE,
                &format!("/api/v2/webauthn/credentials/{id}"),
                &Auth::Session(&pia),
                None,
            )
            .await;
        assert_eq!(status, want, "{body}");
    }
    assert_eq!(server.audit_total(&auth, "action=passkey_deleted").await, 1);
    let (status, body, _) =
        login_verify(&server, authenticator.get(&login_options(&server).await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("not registered here"), "{body}");
    Ok(())
}

/// An API key lists passkeys but cannot add, switch or remove one: that needs a login.
#[tokio::test]
async fn an_api_key_cannot_change_passkeys() -> TestResult {
    let server = server().await;
    let admin = server.admin().await;
    let id = register(&server, &admin, &mut Authenticator::new(), "Key").await;
    let (_, key) = server.api_key(&admin, &["*"]).await;
    let auth = Auth::Bearer(&key);
    for (method, path) in [
        (
            Method::POST,
            "/api/v2/account/webauthn/register/options".to_owned(),
        ),
        (Method::POST, "/api/v2/webauthn/register/options".to_owned()),
        (
            Method::POST,
            "/api/v2/account/webauthn/register/verify".to_owned(),
        ),
        (
            Method::POST,
            format!("/api/v2/account/webauthn/credentials/{id}/toggle"),
        ),
        (
            Method::POST,
            format!("/api/v2/webauthn/credentials/{id}/toggle"),
        ),
        (
            Method::DELETE,
            format!("/api/v2/account/webauthn/credentials/{id}"),
        ),
    ] {
        let (status, body) = server
            .call(method.clone(), &path, &auth, Some(json!({"response": {}})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    assert_eq!(
        passkeys(&server, &auth, "/api/v2/account/webauthn/credentials")
            .await
            .len(),
        1
    );
    Ok(())
}

/// The OpenAPI document lists every passkey route, at both places.
#[tokio::test]
async fn the_openapi_document_lists_the_passkey_paths() -> TestResult {
    let server = TestServer::start().await;
    let (status, doc) = server
        .call(Method::GET, "/api/v2/openapi.json", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v2/account/webauthn/available", "get"),
        ("/api/v2/account/webauthn/credentials", "get"),
        ("/api/v2/account/webauthn/register/options", "post"),
        ("/api/v2/account/webauthn/register/verify", "post"),
        (
            "/api/v2/account/webauthn/credentials/{credential_id}/toggle",
            "post",
        ),
        (
            "/api/v2/account/webauthn/credentials/{credential_id}",
            "delete",
        ),
        ("/api/v2/webauthn/credentials", "get"),
        (
            "/api/v2/webauthn/credentials/{credential_id}/toggle",
            "post",
        ),
        ("/api/v2/webauthn/credentials/{credential_id}", "delete"),
        ("/api/v2/webauthn/register/options", "post"),
        ("/api/v2/webauthn/register/verify", "post"),
        ("/api/v2/auth/login/webauthn/start", "post"),
        ("/api/v2/auth/login/webauthn/verify", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    Ok(())
}
