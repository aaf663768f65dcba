//! `/account/mtls`: one's own login certificates on the account page. Each handler calls what
//! the REST `/api/v2/account/mtls` handler calls.

use authority::{LoginKey, Reach, RevocationReason};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::account::{NewCertificate, Outcome, account_page, refused};
use super::form::{Form, blank_is_none};
use super::page::Visitor;
use crate::App;
use crate::api::v2::certificates::ExportQuery;
use crate::api::v2::login_certificates as rest;

/// The form that makes a login certificate.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    name: String,
}

/// POST `/account/mtls/create`: makes a login certificate with a key certmint generates, and
/// shows both on this answer only (201, not a redirect: the key is never kept to show here
/// later; the PKCS#12 download serves it to its owner).
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CreateForm>,
) -> Response {
    let made = app
        .authority
        .create_login_certificate(
            &visitor.principal,
            &form.name,
            None,
            LoginKey::Generate(None),
        )
        .await;
    match made {
        Ok(new) => {
            let outcome = Outcome::made(NewCertificate {
                name: new.certificate.name.clone(),
                certificate_pem: pki_pem(&new.certificate.certificate.cert.der),
                private_key_pem: new
                    .key
                    .map(|k| k.to_pkcs8_pem().to_string())
                    .unwrap_or_default(),
            });
            account_page(&app, &visitor, StatusCode::CREATED, outcome).await
        }
        Err(e) => refused(&app, &visitor, "mtls", &e.into(), Outcome::default()).await,
    }
}

fn pki_pem(der: &[u8]) -> String {
    authority::pki::pem::encode("CERTIFICATE", der)
}

/// The switch of a login certificate.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EnableForm {
    enabled: bool,
}

/// POST `/account/mtls/{id}/enable`: lets one's login certificate log in, or not.
pub async fn enable(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<EnableForm>,
) -> Response {
    let done = app
        .authority
        .enable_login_certificate(&visitor.principal, id, form.enabled, Reach::Own)
        .await
        .map(|_| ());
    back(&app, &visitor, done).await
}

/// POST `/account/mtls/{id}/revoke`: revokes one's login certificate.
pub async fn revoke(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let done = app
        .authority
        .revoke_login_certificate(
            &visitor.principal,
            id,
            RevocationReason::Unspecified,
            Reach::Own,
        )
        .await
        .map(|_| ());
    back(&app, &visitor, done).await
}

/// POST `/account/mtls/{id}/delete`: revokes one's login certificate if still valid, and
/// removes it from the list.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let done = app
        .authority
        .delete_login_certificate(&visitor.principal, id, Reach::Own)
        .await;
    back(&app, &visitor, done).await
}

async fn back(app: &App, visitor: &Visitor, done: authority::Result<()>) -> Response {
    match done {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(e) => refused(app, visitor, "mtls", &e.into(), Outcome::default()).await,
    }
}

/// The PKCS#12 download form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DownloadForm {
    password: String,
}

/// POST `/account/mtls/{id}/download`: one's login certificate with its key as PKCS#12, to
/// import into a browser, protected by the password the form gives (never in a URL).
pub async fn download(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DownloadForm>,
) -> Response {
    let query = ExportQuery {
        format: Some("pkcs12".into()),
        include_key: true,
        include_chain: true,
        password: blank_is_none(&form.password).map(str::to_owned),
        encryption: None,
    };
    let file = rest::file(&app, &visitor.principal, id, Reach::Own, query);
    match file.await {
        Ok(file) => file,
        Err(e) => refused(&app, &visitor, "mtls", &e, Outcome::default()).await,
    }
}
