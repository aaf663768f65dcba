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

/// A file and the name it is served under.
pub struct Asset {
    pub name: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

impl Asset {
    fn new(stem: &str, ext: &str, bytes: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
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
pub static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        Asset::new("htmx", "js", HTMX, "text/javascript; charset=utf-8"),
        Asset::new("console", "css", CSS, "text/css; charset=utf-8"),
    ]
});

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
