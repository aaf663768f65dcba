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
use authority::{CaId, ImportInput, Principal};

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
    /// Display name: the CA's name when the file holds one CA; a lone certificate's
    /// description when none is given.
    pub name: Option<String>,
    pub description: Option<String>,
    /// The CA that issued the imported certificate(s), to link them to: each certificate but
    /// a root must carry its signature, or nothing is imported (422). Without it, issuers are
    /// found by key identifier and signature.
    pub ca_id: Option<i64>,
    /// Keep the private keys in the file (default true). With false they are dropped, and a
    /// `private_key` sent apart is refused.
    pub import_key: Option<bool>,
}

/// What an import of several certificates stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub cas: Vec<CaView>,
    pub certificates: Vec<CertificateView>,
    /// Subjects of certificates that were stored already.
    pub skipped: Vec<String>,
}

/// The answer to an import: the stored certificate or CA when the file held one certificate,
/// as the reference shows it; otherwise what was stored and skipped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ImportAnswer {
    Certificate(CertificateView),
    Ca(CaView),
    Report(ImportView),
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
                ca_id: fields.ca_id.map(CaId),
                import_key: fields.import_key.unwrap_or(true),
            },
        )
        .await?;
    let now = app.authority.now();
    let mut cas = Vec::new();
    for id in report.cas {
        cas.push(super::cas::view(app, app.authority.ca(id).await?).await?);
    }
    let mut certificates = Vec::new();
    for id in report.certificates {
        certificates.push(CertificateView::new(
            app.authority.certificate(id).await?,
            now,
        ));
    }
    // A lone certificate that was stored already is refused by the authority, so a file of
    // one certificate gave exactly one CA or one certificate here.
    if report.read == 1 {
        if let Some(ca) = cas.pop() {
            let message = if only_cas {
                format!("CA \"{}\" imported successfully", ca.name)
            } else {
                format!(
                    "CA certificate \"{}\" imported successfully (detected as CA)",
                    ca.name
                )
            };
            return Ok(created(ImportAnswer::Ca(ca), message));
        }
        if let Some(cert) = certificates.pop() {
            let name = cert
                .description
                .clone()
                .or_else(|| cert.common_name.clone())
                .unwrap_or_else(|| cert.subject.clone());
            let message = format!("Certificate \"{name}\" imported successfully");
            return Ok(created(ImportAnswer::Certificate(cert), message));
        }
    }
    let message = format!(
        "{} CA(s) and {} certificate(s) imported, {} already known",
        cas.len(),
        certificates.len(),
        report.skipped.len()
    );
    Ok(created(
        ImportAnswer::Report(ImportView {
            cas,
            certificates,
            skipped: report.skipped,
        }),
        message,
    ))
}
