//! `/ca/{refid}.cer` and `/ca/{refid}.pem` (or by the CA's numeric id): CA certificates for
//! anyone, on both listeners, so that AIA caIssuers URLs and trust-store setup work without
//! credentials.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::error::{ApiError, ApiResult, ErrorBody};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(download))
}

/// A CA certificate: `{refid}.cer` as DER (`application/pkix-cert`, RFC 2585) or
/// `{refid}.pem` as PEM; the CA's numeric id serves in place of its refid.
#[utoipa::path(get, path = "/ca/{file}", tag = "cas", security(()),
    params(("file" = String, Path, description = "`{refid}.cer` or `{refid}.pem`, or `{id}.cer`, `{id}.pem`")),
    responses((status = 200, description = "The CA certificate"),
              (status = 404, description = "No such CA", body = ErrorBody)))]
async fn download(State(app): State<App>, Path(file): Path<String>) -> ApiResult<Response> {
    let not_found = || ApiError::not_found(format!("no CA certificate '{file}'"));
    let (name, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
    // Served while the database is unreachable, as last read: AIA fetches must not fail then.
    let ca = app.authority.public_ca(name).await?.ok_or_else(not_found)?;
    match ext {
        "cer" | "crt" | "der" => Ok((
            [(header::CONTENT_TYPE, "application/pkix-cert")],
            ca.cert.der.clone(),
        )
            .into_response()),
        "pem" => Ok((
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            authority::pki::pem::encode("CERTIFICATE", &ca.cert.der),
        )
            .into_response()),
        _ => Err(not_found()),
    }
}
