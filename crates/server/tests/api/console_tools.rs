//! The console's tools: decoding a certificate and a CSR, matching them against a private key
//! (which never comes back in the page), converting to DER and PKCS#12 (downloads), refusals
//! beside their field, and forged forms.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};

use crate::common::{ADMIN_PASSWORD, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form};
use crate::console_csrs::rcgen_csr;
use crate::console_truststore::issued_pem;

/// A self-signed certificate for `cn` and its key, both PEM.
fn rcgen_pair(cn: &str) -> TestResult<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec![cn.to_owned()])?.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The base64 body of a PEM block: what must never come back in a page.
fn body_of(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_tools_decode_match_and_convert() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    // A viewer reads certificates and CSRs: every tool is open to it.
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());
    let csrf = vera.csrf.as_str();

    let response = get(&client, server.url("/tools"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        r#"<a href="/tools" aria-current="page">Tools</a>"#,
        r#"formaction="/tools/decode-cert""#,
        r#"formaction="/tools/decode-csr""#,
        r#"action="/tools/match-keys""#,
        r#"action="/tools/convert""#,
        r#"<label for="match-private_key">"#,
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }

    let issued = issued_pem(&server, &admin, "decoded.console.test").await?;
    let response = post_form(
        &client,
        server.url("/tools/decode-cert"),
        cookie,
        &[("csrf_token", csrf), ("pem", &issued)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        "CN=decoded.console.test",
        "dns:decoded.console.test",
        "SHA-256 fingerprint",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    let (csr, csr_key) = rcgen_csr("asked.console.test")?;
    let html = post_form(
        &client,
        server.url("/tools/decode-csr"),
        cookie,
        &[("csrf_token", csrf), ("pem", &csr)],
    )
    .await
    .text()
    .await?;
    assert!(html.contains("Certificate signing request"), "{html}");
    assert!(html.contains("dns:asked.console.test"), "{html}");
    let response = post_form(
        &client,
        server.url("/tools/decode-cert"),
        cookie,
        &[("csrf_token", csrf), ("pem", &csr)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="decode-pem-error""#), "{html}");

    // Matching: the key is compared and never written back.
    let (cert, key) = rcgen_pair("matched.console.test")?;
    // Nor does a key pasted into the wrong box come back: a bundle decodes its certificate.
    let response = post_form(
        &client,
        server.url("/tools/decode-cert"),
        cookie,
        &[("csrf_token", csrf), ("pem", &format!("{cert}{key}"))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(html.contains("dns:matched.console.test"), "{html}");
    assert!(!html.contains(&body_of(&key)), "the key came back");
    for (certificate, private_key, csr, verdict) in [
        (cert.as_str(), key.as_str(), "", "They match"),
        (cert.as_str(), csr_key.as_str(), "", "They do not match"),
        ("", csr_key.as_str(), csr.as_str(), "They match"),
    ] {
        let response = post_form(
            &client,
            server.url("/tools/match-keys"),
            cookie,
            &[
                ("csrf_token", csrf),
                ("certificate", certificate),
                ("private_key", private_key),
                ("csr", csr),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await?;
        assert!(html.contains(verdict), "{verdict}: {html}");
        assert!(!html.contains(&body_of(private_key)), "the key came back");
    }
    let broken = key.replace("MI", "XX");
    let response = post_form(
        &client,
        server.url("/tools/match-keys"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("certificate", &cert),
            ("private_key", &broken),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="match-private_key-error""#), "{html}");
    assert!(!html.contains(&body_of(&broken)), "the key came back");
    assert!(html.contains(&body_of(&cert)), "the certificate is kept");

    // Converting downloads the file.
    let response = post_form(
        &client,
        server.url("/tools/convert"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("pem", &issued),
            ("output_format", "der"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/pkix-cert");
    assert!(
        response.headers()[CONTENT_DISPOSITION]
            .to_str()?
            .contains("converted.der")
    );
    let der = response.bytes().await?;
    assert_eq!(der.first(), Some(&0x30), "DER starts with a SEQUENCE");

    // PKCS#12 needs a password: refused beside it, and nothing pasted comes back.
    let response = post_form(
        &client,
        server.url("/tools/convert"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("pem", &cert),
            ("private_key", &key),
            ("output_format", "pkcs12"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="convert-password-error""#), "{html}");
    assert!(
        html.contains(r#"<option value="pkcs12" selected>"#),
        "{html}"
    );
    assert!(!html.contains(&body_of(&key)), "the key came back");
    let response = post_form(
        &client,
        server.url("/tools/convert"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("pem", &cert),
            ("private_key", &key),
            ("output_format", "pkcs12"),
            ("password", "long enough"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-pkcs12");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.bytes().await?.len() > 500);
    Ok(())
}

#[tokio::test]
async fn the_tools_refuse_forged_forms_and_visitors_without_a_session() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let (cert, key) = rcgen_pair("forged.console.test")?;
    for tool in ["decode-cert", "decode-csr", "match-keys", "convert"] {
        let path = format!("/tools/{tool}");
        for fields in [
            vec![
                ("csrf_token", "forged"),
                ("pem", cert.as_str()),
                ("certificate", cert.as_str()),
                ("private_key", key.as_str()),
            ],
            vec![("pem", cert.as_str())],
        ] {
            let response =
                post_form(&client, server.url(&path), Some(&admin.cookie), &fields).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{tool}");
            let html = response.text().await?;
            assert!(!html.contains(&body_of(&key)), "the key came back");
        }
        let response = post_form(
            &client,
            server.url(&path),
            None,
            &[("csrf_token", "x"), ("pem", &cert)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{tool}");
        assert_eq!(location(&response), "/login");
    }
    let response = get(&client, server.url("/tools"), None).await;
    assert_eq!(location(&response), "/login?next=%2Ftools");
    Ok(())
}
