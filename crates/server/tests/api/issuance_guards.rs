//! What issuance refuses whatever door asks: a CA certificate without write:cas (and one
//! issued is recorded as a CA without a key), the extended key usages only a template may give,
//! requests without a template to a CA that requires one, and an ACME profile whose template
//! became a CA template after it was saved.

use instant_acme::{ChallengeType, Identifier, NewOrder, OrderStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acme::{AcmeServer, make_ready};
use crate::acme_peers::HttpResponder;
use crate::common::{Auth, Session, TestResult, TestServer, post};

/// What the reproduction's key held: enough to issue and to read templates, not CAs.
const NARROW: [&str; 3] = ["write:certificates", "read:certificates", "read:templates"];

async fn template_id(server: &TestServer, auth: &Auth<'_>, name: &str) -> TestResult<i64> {
    let (status, body) = server
        .call(Method::GET, "/api/v2/templates?per_page=100", auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == name))
        .and_then(|t| t["id"].as_i64())
        .ok_or_else(|| format!("no template '{name}': {body}").into())
}

async fn cas(server: &TestServer, admin: &Session) -> TestResult<Vec<Value>> {
    let (status, body) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["data"].as_array().ok_or("no CA list")?.clone())
}

async fn root_id(server: &TestServer, admin: &Session) -> TestResult<i64> {
    cas(server, admin)
        .await?
        .iter()
        .find(|c| c["ca_type"] == "root")
        .and_then(|c| c["id"].as_i64())
        .ok_or_else(|| "no root".into())
}

/// A CSR (PEM) for a CA named `cn`.
fn ca_csr(cn: &str) -> TestResult<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    Ok(params.serialize_request(&key)?.pem()?)
}

/// A non-CA template (serverAuth, any key) named `name`; returns its id.
async fn leaf_template(server: &TestServer, admin: &Session, name: &str) -> TestResult<i64> {
    let (status, body) = post(server, admin, "/api/v2/templates", leaf_spec(name)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("template id")?)
}

fn leaf_spec(name: &str) -> Value {
    json!({"name": name, "validity_days": 365, "max_validity_days": 397,
           "key_usage": ["digitalSignature", "keyEncipherment"],
           "extended_key_usage": ["serverAuth"]})
}

/// Turns template `id` (made by [`leaf_template`]) into a CA template, as an operator may long
/// after others started to use it.
async fn make_ca_template(server: &TestServer, admin: &Session, id: i64, name: &str) -> TestResult {
    let mut spec = leaf_spec(name);
    spec["key_usage"] = json!(["digitalSignature", "keyEncipherment", "keyCertSign"]);
    spec["basic_constraints"] = json!({"ca": true, "path_length": 0});
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/v2/templates/{id}"),
            &Auth::Session(admin),
            Some(spec),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

#[tokio::test]
async fn a_narrow_key_cannot_mint_a_ca_and_one_that_may_records_it_as_a_ca() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, narrow) = server.api_key(&admin, &NARROW).await;
    let narrow = Auth::Bearer(&narrow);
    let sub = template_id(&server, &narrow, "Subordinate CA").await?;
    let root = root_id(&server, &admin).await?;
    let request = json!({"csr": ca_csr("Rogue Sub CA")?, "template_id": sub, "ca_id": root});
    let issuing = cas(&server, &admin)
        .await?
        .iter()
        .find(|c| c["is_default"] == true)
        .and_then(|c| c["id"].as_i64())
        .ok_or("no default CA")?;

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &narrow,
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("write:cas")),
        "{body}"
    );
    let before = cas(&server, &admin).await?.len();

    let (_, wide) = server
        .api_key(&admin, &[&NARROW[..], &["write:cas", "read:cas"]].concat())
        .await;
    let wide = Auth::Bearer(&wide);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &wide,
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let serial = body["data"]["serial_number"].as_str().ok_or("serial")?;
    let mut below_path_len_0 = request.clone();
    below_path_len_0["ca_id"] = json!(issuing);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &wide,
            Some(below_path_len_0),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("path length 0")),
        "{body}"
    );

    let all = cas(&server, &admin).await?;
    assert_eq!(all.len(), before + 1, "{all:?}");
    let recorded = all
        .iter()
        .find(|c| c["serial_number"] == serial)
        .ok_or("the issued CA is not listed")?;
    assert_eq!(recorded["name"], "Rogue Sub CA", "{recorded}");
    assert_eq!(recorded["parent_id"], root, "{recorded}");
    assert_eq!(recorded["has_private_key"], false, "{recorded}");
    assert_eq!(recorded["source"], "issued", "{recorded}");
    assert_eq!(recorded["ca_type"], "intermediate", "{recorded}");
    assert_eq!(recorded["path_length"], 0, "{recorded}");

    // Listed, but without its key here it issues nothing.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &wide,
            Some(
                json!({"common_name": "leaf.example.test", "san": ["dns:leaf.example.test"],
                        "ca_id": recorded["id"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("has no private key here")),
        "{body}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn csr_signing_and_renewal_need_write_cas_for_a_ca_certificate() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, narrow) = server.api_key(&admin, &NARROW).await;
    let narrow = Auth::Bearer(&narrow);
    let sub = template_id(&server, &narrow, "Subordinate CA").await?;
    let root = root_id(&server, &admin).await?;

    // A stored CSR signed as a CA: refused, and left pending.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/csrs",
        json!({"csr": ca_csr("Stored Sub CA")?}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let csr = body["data"]["id"].as_i64().ok_or("csr id")?;
    let sign = format!("/api/v2/csrs/{csr}/sign");
    let (status, body) = server
        .call(
            Method::POST,
            &sign,
            &narrow,
            Some(json!({"template_id": sub, "ca_id": root})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/csrs/{csr}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["data"]["status"]),
        (StatusCode::OK, &json!("pending")),
        "{body}"
    );
    let (status, body) = post(
        &server,
        &admin,
        &sign,
        json!({"template_id": sub, "ca_id": root}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        cas(&server, &admin)
            .await?
            .iter()
            .any(|c| c["name"] == "Stored Sub CA" && c["has_private_key"] == false),
        "signed by an admin, the CSR's CA is recorded"
    );

    // A certificate whose template became a CA template since: its renewal would be a CA.
    let template = leaf_template(&server, &admin, "Switched later").await?;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &narrow,
            Some(json!({"common_name": "renew.example.test",
                        "san": ["dns:renew.example.test"], "template_id": template})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().ok_or("certificate id")?;
    make_ca_template(&server, &admin, template, "Switched later").await?;
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{id}/renew"),
            &narrow,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn only_a_template_gives_ocsp_signing_any_purpose_or_an_unknown_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let request = |usages: Value| {
        json!({"common_name": "eku.example.test", "san": ["dns:eku.example.test"],
               "extended_key_usage": usages})
    };
    for usages in [
        json!(["OCSPSigning"]),
        json!(["serverAuth", "anyExtendedKeyUsage"]),
        json!(["1.3.6.1.4.1.99999.1"]),
    ] {
        let (status, body) = post(
            &server,
            &admin,
            "/api/v2/certificates",
            request(usages.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{usages}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("only a template that allows it")),
            "{usages}: {body}"
        );
    }
    // Nor a CA's key usages.
    let mut ca_usage = request(json!(["serverAuth"]));
    ca_usage["key_usage"] = json!(["digitalSignature", "keyCertSign"]);
    let (status, body) = post(&server, &admin, "/api/v2/certificates", ca_usage).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // What a template allows it gives; ordinary purposes need none.
    let ocsp = template_id(&server, &Auth::Session(&admin), "OCSP Signing").await?;
    let mut templated = request(json!(["OCSPSigning"]));
    templated["template_id"] = json!(ocsp);
    let (status, body) = post(&server, &admin, "/api/v2/certificates", templated).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates",
        request(json!(["serverAuth", "clientAuth"])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_ca_that_requires_a_template_refuses_requests_without_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    for ca in cas(&server, &admin).await? {
        assert_eq!(ca["require_template"], false, "the first start's CAs: {ca}");
    }
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/cas",
        json!({"common_name": "Guarded Root"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["require_template"], true, "{body}");
    let guarded = body["data"]["id"].as_i64().ok_or("CA id")?;
    let leaf = json!({"common_name": "g.example.test", "san": ["dns:g.example.test"],
                      "ca_id": guarded});

    let (status, body) = post(&server, &admin, "/api/v2/certificates", leaf.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("issues only from a template")),
        "{body}"
    );
    let mut templated = leaf.clone();
    templated["template_id"] = json!(template_id(&server, &auth, "TLS Server").await?);
    let (status, body) = post(&server, &admin, "/api/v2/certificates", templated).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Turned off, it issues without a template again; a CA may be created with it off.
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/cas/{guarded}"),
            &auth,
            Some(json!({"require_template": false})),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["require_template"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    let (status, body) = post(&server, &admin, "/api/v2/certificates", leaf).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/cas",
        json!({"common_name": "Open Root", "require_template": false}),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["require_template"]),
        (StatusCode::CREATED, &json!(false)),
        "{body}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn acme_finalize_refuses_a_template_that_became_a_ca_template() -> TestResult {
    let http = HttpResponder::start();
    let acme = AcmeServer::start(http.port(), 1, None, &["ca.example.test"]).await;
    let admin = acme.server.admin().await;
    let template = leaf_template(&acme.server, &admin, "ACME leaves").await?;
    acme.server
        .raw_store()
        .await
        .execute_raw(&format!(
            "UPDATE acme_profiles SET template_id = {template} WHERE is_default = 1"
        ))
        .await?;
    make_ca_template(&acme.server, &admin, template, "ACME leaves").await?;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let account = acme.account().await;
    let identifiers = [Identifier::Dns("ca.example.test".into())];
    let order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut order = make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?;
    let (_, csr) = crate::acme::csr(&["ca.example.test"])?;
    let refused = order.finalize_csr(csr.der()).await;
    let message = format!("{:?}", refused.err());
    assert!(
        message.contains("urn:ietf:params:acme:error:unauthorized")
            && message.contains("write:cas"),
        "{message}"
    );
    let state = order.refresh().await?;
    assert_eq!(state.status, OrderStatus::Invalid, "{state:?}");
    assert!(state.error.is_some(), "{state:?}");
    acme.server.stop().await;
    Ok(())
}
