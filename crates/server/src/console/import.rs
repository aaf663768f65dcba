//! `/cas/import` and `/certificates/import`: certificates pasted as PEM (with a key, when
//! given) stored through the authority's import, as `POST /api/v2/cas/import` and
//! `/certificates/import` store them, with a summary of what was stored and what was known
//! already. A pasted key or password is never shown again.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::form::{Form, blank_is_none};
use super::page::{self, Frame, Head, Visitor};
use crate::App;
use crate::api::v2::cas::{self, CaView};
use crate::api::v2::certificates::CertificateView;
use crate::error::ApiError;
use authority::ImportInput;

/// What an import page takes in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CA certificates only.
    Cas,
    /// Any certificate; CA certificates among them become CAs.
    Certificates,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Self::Cas => "/cas",
            Self::Certificates => "/certificates",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImportForm {
    certificate: String,
    private_key: String,
    password: String,
    name: String,
}

/// What an import stored, and the subjects that were there already.
pub struct Imported {
    pub cas: Vec<CaView>,
    pub certificates: Vec<CertificateView>,
    pub skipped: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    head: Head,
    frame: Frame,
    /// Where the page is, and what it takes in.
    path: &'static str,
    only_cas: bool,
    name: String,
    imported: Option<Imported>,
    error: Option<String>,
}

fn import_page(
    visitor: &Visitor,
    kind: Kind,
    name: String,
    imported: Option<Imported>,
    error: Option<ApiError>,
) -> Response {
    let status = match (&error, &imported) {
        (Some(e), _) => e.status(),
        (None, Some(_)) => StatusCode::CREATED,
        (None, None) => StatusCode::OK,
    };
    page::render(
        status,
        &ImportPage {
            head: Head::new(),
            frame: visitor.frame(kind.path()),
            path: kind.path(),
            only_cas: kind == Kind::Cas,
            name,
            imported,
            error: error.map(|e| e.message().to_owned()),
        },
    )
}

async fn run(app: &App, visitor: &Visitor, kind: Kind, form: ImportForm) -> Response {
    let imported = async {
        let report = app
            .authority
            .import(
                &visitor.principal,
                ImportInput {
                    data: form.certificate.clone().into_bytes(),
                    private_key: blank_is_none(&form.private_key).map(|k| k.as_bytes().to_vec()),
                    password: blank_is_none(&form.password).map(str::to_owned),
                    name: blank_is_none(&form.name).map(str::to_owned),
                    description: None,
                    only_cas: kind == Kind::Cas,
                    ca_id: None,
                    import_key: true,
                },
            )
            .await?;
        let now = app.authority.now();
        let mut imported = Imported {
            cas: Vec::new(),
            certificates: Vec::new(),
            skipped: report.skipped,
        };
        for id in report.cas {
            imported
                .cas
                .push(cas::view(app, app.authority.ca(id).await?).await?);
        }
        for id in report.certificates {
            let row = app.authority.certificate(id).await?;
            imported.certificates.push(CertificateView::new(row, now));
        }
        Ok::<_, ApiError>(imported)
    };
    match imported.await {
        Ok(done) => import_page(visitor, kind, String::new(), Some(done), None),
        Err(e) => import_page(visitor, kind, form.name, None, Some(e)),
    }
}

/// GET `/cas/import`.
pub async fn cas_form(Extension(visitor): Extension<Visitor>) -> Response {
    import_page(&visitor, Kind::Cas, String::new(), None, None)
}

/// POST `/cas/import`.
pub async fn cas(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ImportForm>,
) -> Response {
    run(&app, &visitor, Kind::Cas, form).await
}

/// GET `/certificates/import`.
pub async fn certificates_form(Extension(visitor): Extension<Visitor>) -> Response {
    import_page(&visitor, Kind::Certificates, String::new(), None, None)
}

/// POST `/certificates/import`.
pub async fn certificates(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ImportForm>,
) -> Response {
    run(&app, &visitor, Kind::Certificates, form).await
}
