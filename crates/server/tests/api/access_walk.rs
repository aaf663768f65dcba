//! Every route declares its access, and the server enforces exactly that.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, TestResult, TestServer};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{role}" => "nosuchrole",
            s if s.starts_with('{') => "999999",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn body_for(method: &Method) -> Option<Value> {
    (*method == Method::POST || *method == Method::PUT || *method == Method::PATCH)
        .then(|| json!({}))
}

/// Public routes that answer 401 to a caller without credentials from their own handler: the
/// logins that need nothing in the body (a TLS client certificate; an OIDC callback, whose
/// state and code come in the query).
const LOGIN_DOORS: [&str; 2] = [
    "/api/v2/auth/login/mtls",
    "/api/v2/sso/callback/{provider_id}",
];

#[tokio::test]
async fn every_route_enforces_its_declared_permission() -> TestResult {
    let server = TestServer::start().await;
    let routes: Vec<(Method, String, certmint_server::Access)> = server
        .running
        .as_ref()
        .ok_or("not running")?
        .app
        .access
        .iter()
        .map(|(m, p, a)| (m.clone(), p.to_owned(), a.clone()))
        .collect();
    assert!(
        routes.len() >= 40,
        "only {} routes in the access table",
        routes.len()
    );
    let mut failures = Vec::new();
    for (method, template, access) in &routes {
        // A fresh session each time: some routes (logout, revoke-all) end the sessions in use.
        let admin = server.admin().await;
        let path = concrete(template);
        let body = body_for(method);
        let (anonymous, refusal) = server
            .call(method.clone(), &path, &Auth::None, body.clone())
            .await;
        match access {
            certmint_server::Access::Public => {
                // A login door refuses a caller without credentials itself, saying why; the
                // gate's refusal would say authentication is required.
                let gate = refusal["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("authentication required"));
                let door = LOGIN_DOORS.contains(&template.as_str());
                if anonymous == StatusCode::UNAUTHORIZED && (gate || !door) {
                    failures.push(format!(
                        "{method} {template}: public but 401 without credentials"
                    ));
                }
                continue;
            }
            _ if anonymous != StatusCode::UNAUTHORIZED => {
                failures.push(format!(
                    "{method} {template}: {anonymous} without credentials, expected 401"
                ));
            }
            _ => {}
        }
        if *access == certmint_server::Access::Session {
            // Even a key holding everything is refused; a session gets through.
            let (_, key) = server.api_key(&admin, &["*"]).await;
            let (status, _) = server
                .call(method.clone(), &path, &Auth::Bearer(&key), body.clone())
                .await;
            if status != StatusCode::FORBIDDEN {
                failures.push(format!(
                    "{method} {template}: {status} with an API key, expected 403"
                ));
            }
            let (status, _) = server
                .call(method.clone(), &path, &Auth::Session(&admin), body.clone())
                .await;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                failures.push(format!(
                    "{method} {template}: {status} for an admin session"
                ));
            }
            continue;
        }
        let (right, wrong) = match access {
            certmint_server::Access::Permission(p) => {
                let other = if *p == authority::Permission::ReadCertificates {
                    "read:cas"
                } else {
                    "read:certificates"
                };
                (p.as_str().to_owned(), Some(other))
            }
            _ => ("read:cas".to_owned(), None),
        };
        if let Some(wrong) = wrong {
            let (_, key) = server.api_key(&admin, &[wrong]).await;
            let (status, _) = server
                .call(method.clone(), &path, &Auth::Bearer(&key), body.clone())
                .await;
            if status != StatusCode::FORBIDDEN {
                failures.push(format!(
                    "{method} {template}: {status} with only {wrong}, expected 403"
                ));
            }
        }
        let (status, _) = server
            .call(method.clone(), &path, &Auth::Session(&admin), body.clone())
            .await;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            failures.push(format!(
                "{method} {template}: {status} for an admin session"
            ));
        }
        let (_, key) = server.api_key(&server.admin().await, &[&right]).await;
        let (status, answer) = server
            .call(method.clone(), &path, &Auth::Bearer(&key), body)
            .await;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            failures.push(format!(
                "{method} {template}: {status} with {right}: {answer}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "access failures:\n{}",
        failures.join("\n")
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn documented_routes_are_registered_and_unknown_ones_are_not() -> TestResult {
    let server = TestServer::start().await;
    let (status, doc) = server
        .call(Method::GET, "/api/v2/openapi.json", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    assert_eq!(
        doc["paths"]["/api/v2/users"]["get"]["security"][1]["api_key"][0],
        "read:users"
    );
    let paths = doc["paths"].as_object().ok_or("no paths")?;
    let mut operations = 0;
    for (template, item) in paths {
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            if item.get(name).is_none() {
                continue;
            }
            operations += 1;
            let response = server
                .request(
                    method.clone(),
                    &concrete(template),
                    &Auth::None,
                    body_for(&method),
                )
                .await;
            assert!(
                response
                    .headers()
                    .get(certmint_server::UNROUTED_HEADER)
                    .is_none(),
                "{name} {template} is documented but not registered"
            );
            assert_ne!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{name} {template}"
            );
        }
    }
    assert!(operations >= 40);
    // Every DELETE answers 204 No Content, as the reference's status table says.
    for (template, item) in paths {
        if let Some(delete) = item.get("delete") {
            assert!(
                delete["responses"]["204"].is_object(),
                "DELETE {template}: no 204"
            );
            assert!(
                delete["responses"]["200"].is_null(),
                "DELETE {template}: a 200"
            );
        }
    }
    // The reference's endpoints and fields added for it are documented with their schemas.
    for (method, template) in [
        ("get", "/api/v2/dashboard/activity"),
        ("get", "/api/v2/dashboard/system-status"),
        ("post", "/api/v2/tools/check-ssl"),
    ] {
        assert!(
            paths[template][method]["responses"]["200"].is_object(),
            "{method} {template}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("ImportBody", "ca_id"),
        ("ImportBody", "import_key"),
        ("ImportBody", "name"),
        ("CaView", "certificates_count"),
        ("CaView", "is_root"),
        ("CaView", "descr"),
        ("Overview", "acme_accounts"),
        ("SearchResults", "csrs"),
        ("SearchResults", "users"),
        ("SslCheck", "chain_valid"),
        ("SystemStatus", "crl"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema}.{field}"
        );
    }
    let response = server
        .request(Method::GET, "/api/v2/no/such/route", &Auth::None, None)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .headers()
            .get(certmint_server::UNROUTED_HEADER)
            .is_some()
    );
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        json!({"error": true, "code": 404, "message": "no route for /api/v2/no/such/route"})
    );
    server.stop().await;
    Ok(())
}

/// Routes are registered only through `utoipa_axum::routes!`, which documents them in the same
/// act; a plain axum registration would be served without documentation or an access rule.
fn plain_registrations(source: &str) -> Vec<String> {
    const FORBIDDEN: [&str; 5] = [
        ".route(",
        ".route_service(",
        ".nest_service(",
        "Router::new(",
        "MethodRouter::new(",
    ];
    let plain = |line: &str, pattern: &str| {
        line.match_indices(pattern).any(|(at, _)| {
            !pattern.starts_with(char::is_alphabetic)
                || !line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
    };
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| FORBIDDEN.iter().any(|f| plain(line, f)))
        .map(str::to_owned)
        .collect()
}

/// The console's routes that stand outside its gate: the login page, the static files and the
/// API's documentation (public, as the OpenAPI document is). Every other console route is
/// registered through `gate::page` with what it needs (the console's equivalent of a route's
/// OpenAPI declaration), which the tests in `tests/api/console*.rs` attack.
const CONSOLE_PUBLIC: [&str; 8] = [
    "/login",
    "/login/2fa",
    "/login/certificate",
    "/login/ldap",
    "/forgot-password",
    "/reset-password",
    "/assets/{name}",
    "/api/docs",
];

/// The console routes in `source` registered outside the gate.
fn ungated_console_routes(source: &str) -> Vec<String> {
    source
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| {
            let (path, handler) = rest.split_once("\",")?;
            (!handler.trim_start().starts_with("page(")).then(|| path.to_owned())
        })
        .filter(|path| !CONSOLE_PUBLIC.contains(&path.as_str()))
        .collect()
}

#[test]
fn routes_are_only_registered_with_their_documentation() -> TestResult {
    assert_eq!(plain_registrations("    .route(\"/x\", get(h))").len(), 1);
    assert_eq!(
        ungated_console_routes(".route(\"/a\", get(h)).route(\"/b\",\n page(&app, None, get(h)))"),
        ["/a"]
    );
    assert_eq!(plain_registrations("let r = axum::Router::new();").len(), 1);
    assert!(plain_registrations("    .routes(routes!(h))").is_empty());
    assert!(plain_registrations("    OpenApiRouter::new()").is_empty());
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                let source = std::fs::read_to_string(&path)?;
                if path.components().any(|c| c.as_os_str() == "console") {
                    for routed in ungated_console_routes(&source) {
                        found.push(format!(
                            "{}: console route {routed} outside the gate",
                            path.display()
                        ));
                    }
                    continue;
                }
                for line in plain_registrations(&source) {
                    found.push(format!("{}: {}", path.display(), line.trim()));
                }
            }
        }
    }
    assert!(files > 10);
    assert!(
        found.is_empty(),
        "routes registered without documentation:\n{}",
        found.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn disabled_locked_expired_and_revoked_credentials_get_401() -> TestResult {
    let server = TestServer::start_with(|s| s.lockout_threshold = 3).await;
    let admin = server.admin().await;

    // A deactivated user: its session and its key stop working.
    let id = server.user(&admin, "dora", "operator").await;
    let dora = server.login("dora", crate::common::ADMIN_PASSWORD).await;
    let (_, dora_key) = server.api_key(&dora, &["read:users"]).await;
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for auth in [Auth::Session(&dora), Auth::Bearer(&dora_key)] {
        let (status, body) = server
            .call(Method::GET, "/api/v2/auth/verify", &auth, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "account is disabled");
    }

    // A locked user: its earlier session and key stop working.
    server.user(&admin, "lou", "operator").await;
    let lou = server.login("lou", crate::common::ADMIN_PASSWORD).await;
    let (_, lou_key) = server.api_key(&lou, &["read:users"]).await;
    for _ in 0..3 {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/v2/auth/login/password",
                &Auth::None,
                Some(json!({"username": "lou", "password": "wrong password!!"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for auth in [Auth::Session(&lou), Auth::Bearer(&lou_key)] {
        let (status, body) = server.call(Method::GET, "/api/v2/users", &auth, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("locked")),
            "{body}"
        );
    }

    // An expired key.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Session(&admin),
            Some(json!({"name": "short", "expires_days": 1, "permissions": ["read:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let expiring = body["data"]["key"].as_str().ok_or("key")?.to_owned();
    let (status, _) = server
        .call(Method::GET, "/api/v2/users", &Auth::Bearer(&expiring), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A disabled key and a deleted key.
    let (disabled_id, disabled) = server.api_key(&admin, &["read:users"]).await;
    let (deleted_id, deleted) = server.api_key(&admin, &["read:users"]).await;
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/account/apikeys/{disabled_id}"),
            &Auth::Session(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/account/apikeys/{deleted_id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (key, message) in [
        (&disabled, "API key is disabled"),
        (&deleted, "invalid API key"),
    ] {
        let (status, body) = server
            .call(Method::GET, "/api/v2/users", &Auth::Bearer(key), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], message);
    }

    server.clock.advance(time::Duration::days(2));
    let (status, body) = server
        .call(Method::GET, "/api/v2/users", &Auth::Bearer(&expiring), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "API key has expired");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn keys_never_exceed_their_permissions_or_their_owners() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, reader) = server.api_key(&admin, &["read:users"]).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/users",
            &Auth::Bearer(&reader),
            Some(json!({"username": "x", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A key cannot mint a key wider than itself.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Bearer(&reader),
            Some(json!({"name": "wider", "permissions": ["write:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.user(&admin, "opal", "operator").await;
    let opal = server.login("opal", crate::common::ADMIN_PASSWORD).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Session(&opal),
            Some(json!({"name": "k", "permissions": ["write:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Session(&opal),
            Some(json!({"name": "k", "permissions": ["fly:kites"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
    Ok(())
}

/// The document is valid OpenAPI 3.1, as `openapi-spec-validator` (from PyPI) reads it.
#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1() -> TestResult {
    let validator =
        crate::acme_peers::tool("openapi-spec-validator", "CERTMINT_TEST_OPENAPI_VALIDATOR");
    let server = TestServer::start().await;
    let doc = server
        .request(Method::GET, "/api/v2/openapi.json", &Auth::None, None)
        .await
        .bytes()
        .await?;
    server.stop().await;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &doc)?;
    let output = std::process::Command::new(&validator)
        .args(["--schema", "3.1", "--errors", "all"])
        .arg(&path)
        .output()?;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
