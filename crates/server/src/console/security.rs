//! `/system/security`: what is sealed under which master-key version, and the rotation of the
//! master key (started here, run in the background; the page shows how far it is and reloads
//! itself while it runs). Everything goes through the authority, which checks `admin:system`
//! and audits as it does for the REST API.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::security::{EncryptionStatusView, SecretsStatusView};
use crate::error::ApiError;

/// The page.
const PAGE: &str = "/system/security";

#[derive(Template)]
#[template(path = "console/security.html")]
struct SecurityPage {
    head: Head,
    frame: Frame,
    encryption: EncryptionStatusView,
    rotation: SecretsStatusView,
    error: Option<String>,
}

/// The page, with a refusal of what was just asked.
async fn security_page(app: &App, visitor: &Visitor, error: Option<ApiError>) -> Response {
    let frame = visitor.frame(PAGE);
    let read = async {
        let encryption = app.authority.encryption_status(&visitor.principal).await?;
        let rotation = app.authority.secrets_status(&visitor.principal).await?;
        Ok::<_, ApiError>((encryption, rotation))
    };
    match read.await {
        Ok((encryption, rotation)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &SecurityPage {
                head: Head::new(),
                frame,
                encryption: encryption.into(),
                rotation: rotation.into(),
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/system/security`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    security_page(&app, &visitor, None).await
}

/// POST `/system/security/rotate`: a rotation to a new random key (or the one stopped
/// half-way, resumed).
pub async fn rotate(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    match app
        .authority
        .rotate_master_key_in_background(&visitor.principal, None)
        .await
    {
        Ok(_) => Redirect::to(&format!("{PAGE}#rotation")).into_response(),
        Err(e) => security_page(&app, &visitor, Some(e.into())).await,
    }
}
