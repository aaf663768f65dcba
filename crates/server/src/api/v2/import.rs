//! The body and answer of `/certificates/import` and `/cas/import`, which differ only in
//! whether end-entity certificates are accepted.

use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cas::CaView;
use super::certificates::CertificateView;
use crate::App;
use crate::envelope::created;
use crate::error::ApiResult;
use crate::extract::{Upload, file_or_text};
use authority::{ImportInput, Principal};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImportBody {
    /// The certificate(s), PEM, with JSON bodies. A multipart body sends the file (PEM, DER,
    /// PKCS#7 or PKCS#12) as the part `file` instead.
    pub certificate: Option<String>,
    /// A private key sent apart, PEM.
    pub private_key: Option<String>,
    /// Opens a PKCS#12 file or an encrypted key.
    pub password: Option<String>,
    /// Name for the CA, when the file holds one.
    pub name: Option<String>,
    pub description: Option<String>,
}

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub cas: Vec<CaView>,
    pub certificates: Vec<CertificateView>,
    /// Subjects of certificates that were stored already.
    pub skipped: Vec<String>,
}

/// Runs an import from an upload and answers 201 with what was stored.
pub async fn run(
    app: &App,
    principal: &Principal,
    upload: Upload<ImportBody>,
    only_cas: bool,
) -> ApiResult<Response> {
    let fields = upload.fields;
    let data = file_or_text(upload.file, fields.certificate, "certificate")?;
    let report = app
        .authority
        .import(
            principal,
            ImportInput {
                data,
                private_key: fields.private_key.map(String::into_bytes),
                password: fields.password,
                name: fields.name,
                description: fields.description,
                only_cas,
            },
        )
        .await?;
    let now = app.authority.now();
    let mut cas = Vec::new();
    for id in report.cas {
        cas.push(CaView::new(
            app.authority.ca(id).await?,
            &app.authority.publishing(),
        ));
    }
    let mut certificates = Vec::new();
    for id in report.certificates {
        certificates.push(CertificateView::new(
            app.authority.certificate(id).await?,
            now,
        ));
    }
    let message = format!(
        "{} CA(s) and {} certificate(s) imported, {} already known",
        cas.len(),
        certificates.len(),
        report.skipped.len()
    );
    Ok(created(
        ImportView {
            cas,
            certificates,
            skipped: report.skipped,
        },
        message,
    ))
}
