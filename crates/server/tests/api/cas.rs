//! Certificate authorities: the hierarchy made at first start, read through the API and
//! downloaded by anyone.

use reqwest::{Method, StatusCode};

use crate::common::{Auth, TestResult, TestServer};

#[tokio::test]
async fn first_start_hierarchy_is_listed_and_its_certificates_download_without_credentials()
-> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 2);
    let cas = body["data"].as_array().ok_or("data")?;
    let (root, sub) = (&cas[0], &cas[1]);
    assert_eq!(root["name"], "certmint Root CA");
    assert_eq!(root["ca_type"], "root");
    assert_eq!(root["key_type"], "EC P-384");
    assert_eq!(root["signature_algorithm"], "ecdsa-with-SHA384");
    assert_eq!(sub["name"], "certmint Issuing CA");
    assert_eq!(sub["ca_type"], "intermediate");
    assert_eq!(sub["key_type"], "EC P-256");
    assert_eq!(sub["parent_id"], root["id"]);
    assert_eq!(sub["is_default"], true);
    assert_eq!(sub["has_private_key"], true);
    assert_eq!(sub["path_length"], 0);

    let (status, tree) = server
        .call(
            Method::GET,
            "/api/v2/cas/tree",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tree}");
    assert_eq!(tree["data"][0]["name"], "certmint Root CA");
    assert_eq!(
        tree["data"][0]["children"][0]["name"],
        "certmint Issuing CA"
    );
    assert_eq!(tree["data"].as_array().map(Vec::len), Some(1));

    let id = sub["id"].as_i64().ok_or("id")?;
    let (status, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["refid"], sub["refid"]);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/cas/424242",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Anyone may fetch CA certificates over plain HTTP: DER as .cer, PEM as .pem.
    let plain = reqwest::Client::new();
    let root_refid = root["refid"].as_str().ok_or("refid")?;
    let response = plain
        .get(format!("{}/ca/{root_refid}.cer", server.http))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pkix-cert");
    let der = response.bytes().await?;
    let sub_refid = sub["refid"].as_str().ok_or("refid")?;
    let sub_pem = plain
        .get(format!("{}/ca/{sub_refid}.pem", server.http))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        sub_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{sub_pem}"
    );
    for missing in [
        "/ca/nosuch.cer",
        &format!("/ca/{root_refid}.exe"),
        "/ca/plain",
    ] {
        let response = plain
            .get(format!("{}{missing}", server.http))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }

    // The HTTPS listener's certificate chains up to the downloaded root.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("root.cer"), &der)?;
    std::fs::write(dir.path().join("sub.pem"), &sub_pem)?;
    let listener = server._data_dir.path().join("tls/server.crt");
    openssl(&[
        "x509".as_ref(),
        "-inform".as_ref(),
        "DER".as_ref(),
        "-in".as_ref(),
        dir.path().join("root.cer").as_os_str(),
        "-out".as_ref(),
        dir.path().join("root.pem").as_os_str(),
    ])?;
    openssl(&[
        "verify".as_ref(),
        "-CAfile".as_ref(),
        dir.path().join("root.pem").as_os_str(),
        "-untrusted".as_ref(),
        dir.path().join("sub.pem").as_os_str(),
        "-purpose".as_ref(),
        "sslserver".as_ref(),
        listener.as_os_str(),
    ])?;
    Ok(())
}

fn openssl(args: &[&std::ffi::OsStr]) -> TestResult {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("the openssl command is required for this test: {e}"))?;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
