//! `/api/docs`: the OpenAPI document rendered by the vendored Swagger UI, public, under the
//! console's headers, from files served with long caching. The browser test
//! (`console_browser.rs`) checks that it renders.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use sha2::{Digest, Sha256};

use crate::common::{TestResult, TestServer};
use crate::console::{assert_strict_page, asset_urls, browser, get};

#[tokio::test]
async fn api_docs_is_a_strict_public_page_over_the_vendored_swagger_ui() -> TestResult {
    let server = TestServer::start().await;
    let client = browser(&server);

    // No session needed: the document it renders is public.
    let response = get(&client, server.url("/api/docs"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"data-url="/api/v2/openapi.json""#),
        "{html}"
    );

    // Each file is the vendored one byte for byte, with its type, cacheable for a year under
    // a name that changes with its content.
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
    let urls = asset_urls(&html);
    assert_eq!(urls.len(), 3, "{urls:?}");
    for url in &urls {
        let (file, kind) = if url.starts_with("/assets/swagger-ui-bundle.") {
            ("swagger-ui-5.36.0/swagger-ui-bundle.js", "text/javascript")
        } else if url.starts_with("/assets/swagger-ui.") {
            ("swagger-ui-5.36.0/swagger-ui.css", "text/css")
        } else if url.starts_with("/assets/api-docs.") {
            ("api-docs.js", "text/javascript")
        } else {
            return Err(format!("an unexpected file: {url}").into());
        };
        let response = get(&client, server.url(url), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(
            response.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        let served_kind = response.headers()[CONTENT_TYPE].to_str()?.to_owned();
        assert!(served_kind.starts_with(kind), "{url}: {served_kind}");
        let vendored = std::fs::read(format!("{assets}/{file}"))?;
        let digest = Sha256::digest(&vendored);
        assert_eq!(Sha256::digest(response.bytes().await?), digest, "{url}");
        assert!(url.contains(&hex::encode(&digest[..6])), "{url}");
    }

    // The document says where it is rendered.
    let document = get(&client, server.url("/api/v2/openapi.json"), None).await;
    assert_eq!(document.status(), StatusCode::OK);
    let document: serde_json::Value = document.json().await?;
    assert!(
        document["info"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("/api/docs")),
        "{}",
        document["info"]
    );

    // Not over plain HTTP while the API is HTTPS-only, as the document itself is not.
    let plain = get(&client, format!("{}/api/docs", server.http), None).await;
    assert_eq!(plain.status(), StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn a_node_that_serves_no_api_has_no_api_docs() -> TestResult {
    let server = TestServer::start_with(|s| s.serve_only = vec!["ocsp".into(), "crl".into()]).await;
    let response = get(&browser(&server), server.url("/api/docs"), None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}
