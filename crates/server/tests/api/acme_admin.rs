//! ACME administration through `/api/v2/acme`: settings and statistics, profiles (whose
//! directories serve at once), external account binding keys (the HMAC key shown once, then
//! used by a real ACME client), accounts and orders, who may do what, and the audit trail.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use instant_acme::{Account, ExternalAccountKey, Identifier, NewAccount, NewOrder};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Session, TestResult, TestServer};

/// A server with an admin session and the root CA as a PEM file, for ACME clients.
struct Admin {
    server: TestServer,
    admin: Session,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Admin {
    async fn start() -> TestResult<Self> {
        let server = TestServer::start().await;
        let admin = server.admin().await;
        let dir = tempfile::tempdir()?;
        let authority = &server.running.as_ref().ok_or("not running")?.app.authority;
        let ca = authority.default_ca().await?;
        let chain = authority.ca_chain(ca.id).await?;
        let root = dir.path().join("root.pem");
        std::fs::write(
            &root,
            pki::pem::encode("CERTIFICATE", chain.last().ok_or("no root")?),
        )?;
        Ok(Self {
            server,
            admin,
            root,
            _dir: dir,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.server
            .call(method, path, &Auth::Session(&self.admin), body)
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// Creates a profile from `body` and returns it.
    async fn profile(&self, body: Value) -> TestResult<Value> {
        let (status, answer) = self
            .call(Method::POST, "/api/v2/acme/profiles", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        Ok(answer["data"].clone())
    }

    /// The status of `GET {https}{path}` without credentials, and its JSON body.
    async fn public(&self, path: &str) -> TestResult<(StatusCode, Value)> {
        let response = self.server.client.get(self.server.url(path)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn audit(&self, action: &str) -> i64 {
        self.server
            .audit_total(&Auth::Session(&self.admin), &format!("action={action}"))
            .await
    }

    async fn register(
        &self,
        directory: &str,
        eab: Option<&ExternalAccountKey>,
    ) -> Result<Account, instant_acme::Error> {
        let (account, _) = Account::builder_with_root(&self.root)?
            .create(
                &NewAccount {
                    contact: &["mailto:ops@example.test"],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.server.url(directory),
                eab,
            )
            .await?;
        Ok(account)
    }
}

fn id(value: &Value) -> TestResult<i64> {
    Ok(value["id"].as_i64().ok_or("no id")?)
}

/// Asserts that `body` is the API's error body with `status`.
fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"], true, "{what}: {body}");
    assert_eq!(body["code"], expected.as_u16(), "{what}: {body}");
}

#[tokio::test]
async fn settings_follow_the_reference_and_switch_acme_off_at_once() -> TestResult {
    let t = Admin::start().await?;
    let (status, body) = t.get("/api/v2/acme/settings").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let s = &body["data"];
    assert_eq!(s["enabled"], true, "{s}");
    assert_eq!(s["issuing_ca_id"], Value::Null, "the default CA: {s}");
    assert_eq!(s["validity_days"], 90, "{s}");
    assert_eq!(s["require_approval"], false, "{s}");
    assert_eq!(s["orders_per_account_hour"], 300, "{s}");
    assert_eq!(s["accounts_per_address_hour"], 100, "{s}");
    assert_eq!(s["directory"], "/acme/directory", "{s}");
    let default_profile = s["default_profile_id"].as_i64().ok_or("default profile")?;

    let (_, cas) = t.get("/api/v2/cas").await;
    let root = cas["data"]
        .as_array()
        .ok_or("CA list")?
        .iter()
        .find(|c| c["name"] == "certmint Root CA")
        .ok_or("no root CA")?;
    let root_id = id(root)?;

    // The reference's shape, with certmint's rate limits.
    let (status, body) = t
        .call(
            Method::PATCH,
            "/api/v2/acme/settings",
            Some(json!({
                "enabled": true,
                "issuing_ca_id": root_id,
                "validity_days": 30,
                "require_approval": false,
                "orders_per_account_hour": 10,
                "accounts_per_address_hour": 0,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["message"].is_string(), "{body}");
    let s = &body["data"];
    assert_eq!(s["issuing_ca_id"], root_id, "{s}");
    assert_eq!(s["validity_days"], 30, "{s}");
    assert_eq!(s["orders_per_account_hour"], 10, "{s}");
    assert_eq!(s["accounts_per_address_hour"], 0, "{s}");
    // The settings are the default profile's.
    let (_, profile) = t
        .get(&format!("/api/v2/acme/profiles/{default_profile}"))
        .await;
    assert_eq!(profile["data"]["ca_id"], root_id, "{profile}");
    assert_eq!(profile["data"]["validity_days"], 30, "{profile}");
    assert_eq!(profile["data"]["directory"], "/acme/directory", "{profile}");
    assert_eq!(t.audit("acme_settings_updated").await, 1);

    // Back to the default CA with null.
    let (status, body) = t
        .call(
            Method::PATCH,
            "/api/v2/acme/settings",
            Some(json!({"issuing_ca_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["issuing_ca_id"], Value::Null, "{body}");

    let refused = [
        (json!({"require_approval": true}), "require_approval"),
        (json!({"issuing_ca_id": 999_999}), "CA 999999"),
        (json!({"validity_days": 0}), "validity_days"),
        (json!({"validity_days": 3651}), "validity_days"),
        (
            json!({"orders_per_account_hour": -1}),
            "orders_per_account_hour",
        ),
        (
            json!({"accounts_per_address_hour": 1_000_001}),
            "accounts_per_address_hour",
        ),
        (json!({"enabled": "yes"}), "invalid"),
        (json!({"issuing_ca": 1}), "unknown field"),
    ];
    for (patch, says) in refused {
        let (status, body) = t
            .call(Method::PATCH, "/api/v2/acme/settings", Some(patch.clone()))
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            &patch.to_string(),
        );
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(says)),
            "{patch}: {body}"
        );
    }
    // Nothing refused was written.
    let (_, body) = t.get("/api/v2/acme/settings").await;
    assert_eq!(body["data"]["validity_days"], 30, "{body}");
    assert_eq!(body["data"]["require_approval"], false, "{body}");
    assert_eq!(t.audit("acme_settings_updated").await, 2);

    // Off: the directory answers 404 at once (no stale snapshot); on again: served.
    let (status, _) = t.public("/acme/directory").await?;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t
        .call(
            Method::PATCH,
            "/api/v2/acme/settings",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], false, "{body}");
    let (status, problem) = t.public("/acme/directory").await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _) = t.public("/acme/default/directory").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.call(
        Method::PATCH,
        "/api/v2/acme/settings",
        Some(json!({"enabled": true})),
    )
    .await;
    let (status, directory) = t.public("/acme/directory").await?;
    assert_eq!(status, StatusCode::OK, "{directory}");
    assert!(directory["newAccount"].is_string(), "{directory}");

    let (status, body) = t.get("/api/v2/acme/stats").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = &body["data"];
    assert_eq!(stats["enabled"], true, "{stats}");
    assert_eq!(stats["profiles"], 1, "{stats}");
    assert_eq!(stats["profiles_enabled"], 1, "{stats}");
    assert_eq!(stats["accounts"]["total"], 0, "{stats}");
    assert_eq!(stats["orders"]["total"], 0, "{stats}");
    assert_eq!(stats["eab_keys"], 0, "{stats}");
    t.server.stop().await;
    Ok(())
}

#[tokio::test]
async fn profiles_are_checked_and_their_directories_serve_at_once() -> TestResult {
    let t = Admin::start().await?;
    let (_, cas) = t.get("/api/v2/cas").await;
    let ca_id = cas["data"]
        .as_array()
        .ok_or("CA list")?
        .iter()
        .find(|c| c["is_default"] == true)
        .map(id)
        .ok_or("no default CA")??;
    let (_, templates) = t.get("/api/v2/templates").await;
    let template = |name: &str| {
        templates["data"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == name))
            .and_then(|t| t["id"].as_i64())
    };
    let tls_server = template("TLS Server").ok_or("TLS Server template")?;
    let sub_ca = template("Subordinate CA").ok_or("Subordinate CA template")?;

    let created = t
        .profile(json!({
            "name": "internal",
            "description": "Internal services",
            "ca_id": ca_id,
            "template_id": tls_server,
            "validity_days": 30,
            "require_eab": false,
            "allowed_identifiers": ["Example.TEST", ".corp.example.test", "10.0.0.0/8"],
            "challenge_types": ["dns-01", "http-01", "dns-01"],
            "terms_of_service": "https://example.test/tos",
            "website": "http://example.test/",
        }))
        .await?;
    let profile_id = id(&created)?;
    assert_eq!(created["name"], "internal", "{created}");
    assert_eq!(created["enabled"], true, "{created}");
    assert_eq!(created["is_default"], false, "{created}");
    assert_eq!(
        created["directory"], "/acme/internal/directory",
        "{created}"
    );
    assert_eq!(created["ca_id"], ca_id, "{created}");
    assert_eq!(created["template_id"], tls_server, "{created}");
    assert_eq!(created["validity_days"], 30, "{created}");
    assert_eq!(
        created["allowed_identifiers"],
        json!(["example.test", ".corp.example.test", "10.0.0.0/8"]),
        "stored in canonical form: {created}"
    );
    assert_eq!(
        created["challenge_types"],
        json!(["dns-01", "http-01"]),
        "{created}"
    );
    assert_eq!(t.audit("acme_profile_created").await, 1);

    // Served at once, with the profile's meta.
    let (status, directory) = t.public("/acme/internal/directory").await?;
    assert_eq!(status, StatusCode::OK, "{directory}");
    assert!(
        directory["newAccount"]
            .as_str()
            .is_some_and(|u| u.ends_with("/acme/internal/new-account")),
        "{directory}"
    );
    assert_eq!(
        directory["meta"]["termsOfService"], "https://example.test/tos",
        "{directory}"
    );

    // Defaults for what is left out.
    let minimal = t.profile(json!({"name": "lab-2"})).await?;
    assert_eq!(minimal["validity_days"], 90, "{minimal}");
    assert_eq!(minimal["ca_id"], Value::Null, "{minimal}");
    assert_eq!(
        minimal["challenge_types"],
        json!(["http-01", "dns-01", "tls-alpn-01"]),
        "{minimal}"
    );

    let refused = [
        (
            json!({"name": "Bad_Name"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lowercase",
        ),
        (
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lowercase",
        ),
        (
            json!({"name": "x".repeat(64)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "63",
        ),
        (
            json!({"name": "acct"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reserved",
        ),
        (
            json!({"name": "directory"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reserved",
        ),
        (
            json!({"name": "new-order"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reserved",
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        (json!({"name": "internal"}), StatusCode::CONFLICT, "exists"),
        (json!({"name": "default"}), StatusCode::CONFLICT, "exists"),
        (
            json!({"name": "p", "ca_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "CA 999999",
        ),
        (
            json!({"name": "p", "template_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "template 999999",
        ),
        (
            json!({"name": "p", "template_id": sub_ca}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "CA certificates",
        ),
        (
            json!({"name": "p", "template_id": tls_server, "validity_days": 398}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "397",
        ),
        (
            json!({"name": "p", "validity_days": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validity_days",
        ),
        (
            json!({"name": "p", "validity_days": 3651}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validity_days",
        ),
        (
            json!({"name": "p", "challenge_types": ["http-01", "http-02"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http-02",
        ),
        (
            json!({"name": "p", "challenge_types": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least one",
        ),
        (
            json!({"name": "p", "allowed_identifiers": ["bad name!"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad name!",
        ),
        (
            json!({"name": "p", "allowed_identifiers": ["10.0.0.0/33"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "10.0.0.0/33",
        ),
        (
            json!({"name": "p", "terms_of_service": "ftp://example.test/tos"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms_of_service",
        ),
        (
            json!({"name": "p", "website": "example.test"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "website",
        ),
        (
            json!({"name": "p", "is_default": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
    ];
    for (body, expected, says) in refused {
        let (status, answer) = t
            .call(Method::POST, "/api/v2/acme/profiles", Some(body.clone()))
            .await;
        assert_error(status, &answer, expected, &body.to_string());
        assert!(
            answer["message"].as_str().is_some_and(|m| m.contains(says)),
            "{body}: {answer}"
        );
    }
    let (_, list) = t.get("/api/v2/acme/profiles").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .ok_or("profile list")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["default", "internal", "lab-2"],
        "nothing refused was made"
    );

    // A CA that cannot issue is refused too.
    let (status, body) = t
        .call(
            Method::PATCH,
            &format!("/api/v2/cas/{ca_id}"),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t
        .call(
            Method::POST,
            "/api/v2/acme/profiles",
            Some(json!({"name": "p", "ca_id": ca_id})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "inactive CA",
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("inactive")),
        "{body}"
    );
    t.call(
        Method::PATCH,
        &format!("/api/v2/cas/{ca_id}"),
        Some(json!({"is_active": true})),
    )
    .await;

    // Update: the fields given change; the name cannot; bad values are refused.
    let path = format!("/api/v2/acme/profiles/{profile_id}");
    let (status, body) = t
        .call(
            Method::PATCH,
            &path,
            Some(json!({"description": "changed", "template_id": null, "validity_days": 700, "require_eab": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p = &body["data"];
    assert_eq!(p["description"], "changed", "{p}");
    assert_eq!(p["template_id"], Value::Null, "{p}");
    assert_eq!(p["validity_days"], 700, "{p}");
    assert_eq!(p["require_eab"], true, "{p}");
    assert_eq!(
        p["challenge_types"],
        json!(["dns-01", "http-01"]),
        "unchanged: {p}"
    );
    let (_, directory) = t.public("/acme/internal/directory").await?;
    assert_eq!(
        directory["meta"]["externalAccountRequired"], true,
        "served at once: {directory}"
    );
    // Same name is fine, another is not; a template now must allow the current validity.
    let (status, body) = t
        .call(Method::PATCH, &path, Some(json!({"name": "internal"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (patch, says) in [
        (json!({"name": "renamed"}), "cannot change"),
        (json!({"template_id": tls_server}), "397"),
        (json!({"challenge_types": ["dns-02"]}), "dns-02"),
        (json!({"ca_id": 999_999}), "CA 999999"),
    ] {
        let (status, body) = t.call(Method::PATCH, &path, Some(patch.clone())).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            &patch.to_string(),
        );
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(says)),
            "{patch}: {body}"
        );
    }
    let (status, body) = t
        .call(
            Method::PATCH,
            "/api/v2/acme/profiles/999999",
            Some(json!({})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown profile");

    // Disabled: its directory answers 404 at once; the default one still serves.
    let (status, body) = t
        .call(Method::PATCH, &path, Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, problem) = t.public("/acme/internal/directory").await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _) = t.public("/acme/directory").await?;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t.get("/api/v2/acme/stats").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["profiles"], 3, "{body}");
    assert_eq!(body["data"]["profiles_enabled"], 2, "{body}");
    assert!(t.audit("acme_profile_updated").await >= 3);

    // The default profile cannot be deleted; another can, and is gone at once.
    let (_, one) = t.get(&path).await;
    assert_eq!(one["data"]["name"], "internal", "{one}");
    let default_id = list["data"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["is_default"] == true))
        .map(id)
        .ok_or("default profile")??;
    let (status, body) = t
        .call(
            Method::DELETE,
            &format!("/api/v2/acme/profiles/{default_id}"),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "delete the default profile",
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("default")),
        "{body}"
    );
    let lab = format!("/api/v2/acme/profiles/{}", id(&minimal)?);
    let (status, _) = t.public("/acme/lab-2/directory").await?;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t.call(Method::DELETE, &lab, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = t.get(&lab).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "deleted profile");
    let (status, _) = t.public("/acme/lab-2/directory").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = t.call(Method::DELETE, &lab, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "deleted twice");
    assert_eq!(t.audit("acme_profile_deleted").await, 1);
    t.server.stop().await;
    Ok(())
}

#[tokio::test]
async fn eab_keys_register_accounts_whose_orders_administrators_see() -> TestResult {
    let t = Admin::start().await?;
    let profile = t
        .profile(json!({"name": "bound", "require_eab": true}))
        .await?;
    let profile_id = id(&profile)?;
    let keys_path = format!("/api/v2/acme/profiles/{profile_id}/eab-keys");

    // The HMAC key comes once, in the answer to the POST.
    let (status, body) = t
        .call(
            Method::POST,
            &keys_path,
            Some(json!({"description": "build farm"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not shown again")),
        "{body}"
    );
    let key = body["data"].clone();
    let kid = key["key_id"].as_str().ok_or("key id")?.to_owned();
    let hmac = key["hmac_key"].as_str().ok_or("hmac key")?.to_owned();
    // Neither may start with '-', which a command line would read as an option.
    assert_eq!(hex::decode(&kid)?.len(), 16, "{key}");
    assert_eq!(URL_SAFE_NO_PAD.decode(&hmac)?.len(), 32, "{key}");
    assert!(!hmac.starts_with('-'), "{key}");
    assert_eq!(key["status"], "unused", "{key}");
    assert_eq!(key["description"], "build farm", "{key}");
    assert_eq!(t.audit("acme_eab_key_created").await, 1);

    let (status, body) = t.get(&keys_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body["data"].as_array().ok_or("key list")?;
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["key_id"], kid.as_str(), "{body}");
    assert!(
        listed[0].get("hmac_key").is_none(),
        "no HMAC in lists: {body}"
    );
    assert!(
        !body.to_string().contains(&hmac),
        "no HMAC in lists: {body}"
    );
    // Nor in the audit log.
    let (_, audit) = t
        .get("/api/v2/audit/logs?action=acme_eab_key_created")
        .await;
    assert!(!audit.to_string().contains(&hmac), "{audit}");
    assert!(audit.to_string().contains(&kid), "{audit}");

    // A real client registers with it; without it, it may not.
    let directory = "/acme/bound/directory";
    assert!(
        t.register(directory, None).await.is_err(),
        "the profile requires EAB"
    );
    let binding = ExternalAccountKey::new(kid.clone(), &URL_SAFE_NO_PAD.decode(&hmac)?);
    let account = t.register(directory, Some(&binding)).await?;
    let account_refid = account
        .id()
        .rsplit('/')
        .next()
        .ok_or("account URL")?
        .to_owned();
    let (_, body) = t.get(&keys_path).await;
    let used = &body["data"][0];
    assert_eq!(used["status"], "used", "{body}");
    let account_id = used["account_id"].as_i64().ok_or("bound account")?;

    // An order, placed by the client, as administrators see it.
    let mut order = account
        .new_order(&NewOrder::new(&[Identifier::Dns(
            "www.example.test".into(),
        )]))
        .await?;
    let order_refid = order
        .url()
        .rsplit('/')
        .next()
        .ok_or("order URL")?
        .to_owned();
    assert_eq!(order.state().status, instant_acme::OrderStatus::Pending);

    let (status, body) = t
        .get(&format!("/api/v2/acme/accounts?profile_id={profile_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 1, "{body}");
    let listed = &body["data"][0];
    assert_eq!(listed["id"], account_id, "{body}");
    assert_eq!(listed["refid"], account_refid.as_str(), "{body}");
    assert_eq!(listed["status"], "valid", "{body}");
    assert_eq!(
        listed["contact"],
        json!(["mailto:ops@example.test"]),
        "{body}"
    );
    assert_eq!(listed["eab_key_id"], key["id"], "{body}");
    assert!(listed["jwk"]["kty"].is_string(), "{body}");
    let (_, other) = t.get("/api/v2/acme/accounts?status=deactivated").await;
    assert_eq!(other["meta"]["total"], 0, "{other}");
    let (status, body) = t.get("/api/v2/acme/accounts?status=sleeping").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "unknown account status",
    );
    let (status, body) = t.get(&format!("/api/v2/acme/accounts/{account_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["profile_id"], profile_id, "{body}");
    let (status, body) = t.get("/api/v2/acme/accounts/999999").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown account");

    let (status, body) = t
        .get(&format!(
            "/api/v2/acme/orders?account_id={account_id}&status=pending"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 1, "{body}");
    let listed = &body["data"][0];
    assert_eq!(listed["refid"], order_refid.as_str(), "{body}");
    assert_eq!(listed["status"], "pending", "{body}");
    assert_eq!(
        listed["identifiers"][0]["value"], "www.example.test",
        "{body}"
    );
    assert!(
        listed.get("authorizations").is_none(),
        "not in lists: {body}"
    );
    let (_, body) = t
        .get(&format!("/api/v2/acme/orders?profile_id={profile_id}"))
        .await;
    assert_eq!(body["meta"]["total"], 1, "{body}");
    let (_, body) = t.get("/api/v2/acme/orders?status=valid").await;
    assert_eq!(body["meta"]["total"], 0, "{body}");
    let (status, body) = t.get("/api/v2/acme/orders?status=done").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "unknown order status",
    );
    let (status, body) = t.get(&format!("/api/v2/acme/orders/{order_refid}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail = &body["data"];
    assert_eq!(detail["profile_id"], profile_id, "{detail}");
    assert_eq!(detail["account_refid"], account_refid.as_str(), "{detail}");
    let challenges = detail["authorizations"][0]["challenges"]
        .as_array()
        .ok_or("challenges")?;
    assert_eq!(challenges.len(), 3, "{detail}");
    let (status, body) = t.get("/api/v2/acme/orders/nosuchorder").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "unknown order");

    let (_, body) = t.get("/api/v2/acme/stats").await;
    let stats = &body["data"];
    assert_eq!(stats["accounts"]["total"], 1, "{stats}");
    assert_eq!(stats["accounts"]["by_status"]["valid"], 1, "{stats}");
    assert_eq!(stats["orders"]["by_status"]["pending"], 1, "{stats}");
    assert_eq!(stats["eab_keys"], 1, "{stats}");

    // Deactivated by an administrator: the account can do nothing more.
    let deactivate = format!("/api/v2/acme/accounts/{account_id}/deactivate");
    let (status, body) = t.call(Method::POST, &deactivate, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "deactivated", "{body}");
    let (status, body) = t.call(Method::POST, &deactivate, None).await;
    assert_error(status, &body, StatusCode::CONFLICT, "deactivated twice");
    assert!(
        account
            .new_order(&NewOrder::new(&[Identifier::Dns(
                "api.example.test".into()
            )]))
            .await
            .is_err(),
        "a deactivated account places no orders"
    );
    assert_eq!(t.audit("acme_account_deactivated").await, 1);

    // A second key, revoked (by its kid) before use: listed as revoked, refused to clients.
    let (status, body) = t.call(Method::POST, &keys_path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second_kid = body["data"]["key_id"].as_str().ok_or("key id")?.to_owned();
    let second_hmac = URL_SAFE_NO_PAD.decode(body["data"]["hmac_key"].as_str().ok_or("hmac")?)?;
    let (status, body) = t
        .call(Method::DELETE, &format!("{keys_path}/{second_kid}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null, "a DELETE answers no body");
    let (_, body) = t.get(&keys_path).await;
    let second = body["data"]
        .as_array()
        .ok_or("key list")?
        .iter()
        .find(|k| k["key_id"] == second_kid.as_str())
        .ok_or("second key listed")?;
    assert_eq!(second["status"], "revoked", "{body}");
    assert!(second["revoked_at"].is_string(), "{body}");
    let (status, body) = t
        .call(Method::DELETE, &format!("{keys_path}/{second_kid}"), None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "revoked twice");
    let binding = ExternalAccountKey::new(second_kid.clone(), &second_hmac);
    assert!(
        t.register(directory, Some(&binding)).await.is_err(),
        "a revoked key registers nothing"
    );
    // The first key, revoked by its id.
    let (status, body) = t
        .call(Method::DELETE, &format!("{keys_path}/{}", id(&key)?), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = t.get(&keys_path).await;
    let statuses: Vec<&str> = body["data"]
        .as_array()
        .ok_or("key list")?
        .iter()
        .filter_map(|k| k["status"].as_str())
        .collect();
    assert_eq!(statuses, ["revoked", "revoked"], "{body}");
    assert!(!body.to_string().contains("hmac_key"), "{body}");
    assert_eq!(t.audit("acme_eab_key_revoked").await, 2);

    for (method, path) in [
        (
            Method::GET,
            "/api/v2/acme/profiles/999999/eab-keys".to_owned(),
        ),
        (
            Method::POST,
            "/api/v2/acme/profiles/999999/eab-keys".to_owned(),
        ),
        (Method::DELETE, format!("{keys_path}/999999")),
        (Method::DELETE, format!("{keys_path}/nosuchkid")),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let (status, answer) = t.call(method.clone(), &path, body).await;
        assert_error(
            status,
            &answer,
            StatusCode::NOT_FOUND,
            &format!("{method} {path}"),
        );
    }
    // A key of another profile is not this profile's.
    let (_, other) = t.get("/api/v2/acme/settings").await;
    let default_id = other["data"]["default_profile_id"]
        .as_i64()
        .ok_or("default")?;
    let (status, answer) = t
        .call(
            Method::DELETE,
            &format!("/api/v2/acme/profiles/{default_id}/eab-keys/{kid}"),
            None,
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::NOT_FOUND,
        "another profile's key",
    );
    t.server.stop().await;
    Ok(())
}

#[tokio::test]
async fn roles_decide_who_reads_changes_and_deletes() -> TestResult {
    let t = Admin::start().await?;
    let profile = t.profile(json!({"name": "team"})).await?;
    let profile_path = format!("/api/v2/acme/profiles/{}", id(&profile)?);
    t.server.user(&t.admin, "vera", "viewer").await;
    t.server.user(&t.admin, "otto", "operator").await;
    let viewer = t.server.login("vera", crate::common::ADMIN_PASSWORD).await;
    let operator = t.server.login("otto", crate::common::ADMIN_PASSWORD).await;
    let as_viewer = Auth::Session(&viewer);
    let as_operator = Auth::Session(&operator);

    for path in [
        "/api/v2/acme/settings",
        "/api/v2/acme/stats",
        "/api/v2/acme/profiles",
        "/api/v2/acme/accounts",
        "/api/v2/acme/orders",
        profile_path.as_str(),
    ] {
        let (status, body) = t.server.call(Method::GET, path, &as_viewer, None).await;
        assert_eq!(status, StatusCode::OK, "viewer reads {path}: {body}");
    }
    let writes = [
        (
            Method::PATCH,
            "/api/v2/acme/settings".to_owned(),
            json!({"enabled": false}),
        ),
        (
            Method::POST,
            "/api/v2/acme/profiles".to_owned(),
            json!({"name": "mine"}),
        ),
        (
            Method::PATCH,
            profile_path.clone(),
            json!({"description": "x"}),
        ),
        (Method::DELETE, profile_path.clone(), Value::Null),
        (Method::POST, format!("{profile_path}/eab-keys"), json!({})),
        (
            Method::DELETE,
            format!("{profile_path}/eab-keys/1"),
            Value::Null,
        ),
        (
            Method::POST,
            "/api/v2/acme/accounts/1/deactivate".to_owned(),
            Value::Null,
        ),
    ];
    for (method, path, body) in &writes {
        let body = (!body.is_null()).then(|| body.clone());
        let (status, answer) = t.server.call(method.clone(), path, &as_viewer, body).await;
        assert_error(
            status,
            &answer,
            StatusCode::FORBIDDEN,
            &format!("viewer {method} {path}"),
        );
    }
    // An API key with read:acme only reads.
    let (_, key) = t.server.api_key(&t.admin, &["read:acme"]).await;
    let (status, _) = t
        .server
        .call(
            Method::GET,
            "/api/v2/acme/profiles",
            &Auth::Bearer(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = t
        .server
        .call(
            Method::POST,
            "/api/v2/acme/profiles",
            &Auth::Bearer(&key),
            Some(json!({"name": "keyed"})),
        )
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "read-only key");
    // And one with write:acme only writes, without needing read:acme as well.
    let (_, key) = t.server.api_key(&t.admin, &["write:acme"]).await;
    let (status, answer) = t
        .server
        .call(
            Method::PATCH,
            "/api/v2/acme/settings",
            &Auth::Bearer(&key),
            Some(json!({"orders_per_account_hour": 50})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["orders_per_account_hour"], 50, "{answer}");
    let (status, answer) = t
        .server
        .call(
            Method::GET,
            "/api/v2/acme/settings",
            &Auth::Bearer(&key),
            None,
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::FORBIDDEN,
        "write-only key reads",
    );

    // The operator changes ACME but does not delete profiles.
    let (status, body) = t
        .server
        .call(
            Method::POST,
            "/api/v2/acme/profiles",
            &as_operator,
            Some(json!({"name": "ops"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = t
        .server
        .call(
            Method::POST,
            &format!("{profile_path}/eab-keys"),
            &as_operator,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, answer) = t
        .server
        .call(Method::DELETE, &profile_path, &as_operator, None)
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::FORBIDDEN,
        "operator deletes a profile",
    );
    // The changes are in the audit log under who made them.
    assert_eq!(
        t.server
            .audit_total(
                &Auth::Session(&t.admin),
                "action=acme_profile_created&username=otto"
            )
            .await,
        1
    );
    // Nothing the viewer tried happened.
    let (_, list) = t.get("/api/v2/acme/profiles").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(3), "{list}");
    let (_, settings) = t.get("/api/v2/acme/settings").await;
    assert_eq!(settings["data"]["enabled"], true, "{settings}");
    t.server.stop().await;
    Ok(())
}
