//! The console's static files, compiled into the binary and served under names that change
//! with their content, so a browser may keep them for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// htmx (npm `htmx.org` 2.0.11, 0BSD), as published: `dist/htmx.min.js`.
const HTMX: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
/// The console's one style sheet.
const CSS: &[u8] = include_bytes!("../../assets/console.css");
/// Swagger UI (npm `swagger-ui-dist` 5.36.0, Apache-2.0), as published, for `/api/docs`: the
/// bundle and its style sheet. Its LICENSE, NOTICE and the licences of the libraries the bundle
/// holds are beside them.
const SWAGGER_UI: &[u8] = include_bytes!("../../assets/swagger-ui-5.36.0/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &[u8] = include_bytes!("../../assets/swagger-ui-5.36.0/swagger-ui.css");
/// Starts Swagger UI on `/api/docs`.
const API_DOCS: &[u8] = include_bytes!("../../assets/api-docs.js");
/// Passkeys on the login and account pages.
const PASSKEYS: &[u8] = include_bytes!("../../assets/passkeys.js");

/// A file and the name it is served under.
pub struct Asset {
    stem: &'static str,
    name: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

impl Asset {
    fn new(
        stem: &'static str,
        ext: &str,
        bytes: &'static [u8],
        content_type: &'static str,
    ) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            stem,
            name: format!("{stem}.{}.{ext}", hex::encode(&digest[..6])),
            bytes,
            content_type,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("/assets/{}", self.name)
    }
}

/// Every file, by the name it is served under.
static ASSETS: LazyLock<[Asset; 6]> = LazyLock::new(|| {
    const JS: &str = "text/javascript; charset=utf-8";
    const STYLE: &str = "text/css; charset=utf-8";
    [
        Asset::new("htmx", "js", HTMX, JS),
        Asset::new("console", "css", CSS, STYLE),
        Asset::new("swagger-ui-bundle", "js", SWAGGER_UI, JS),
        Asset::new("swagger-ui", "css", SWAGGER_UI_CSS, STYLE),
        Asset::new("api-docs", "js", API_DOCS, JS),
        Asset::new("passkeys", "js", PASSKEYS, JS),
    ]
});

/// The URL of the file named `stem` (such as `htmx` or `console`).
pub fn url(stem: &str) -> String {
    ASSETS
        .iter()
        .find(|a| a.stem == stem)
        .map(Asset::url)
        .unwrap_or_default()
}

/// GET `/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
