//! CRLs for anyone, on both listeners (RFC 5280 §4.2.1.13 distribution points are fetched by
//! relying parties that hold no credentials):
//!
//! * `/crl/{refid}.crl` (DER, `application/pkix-crl`, RFC 2585) and `/crl/{refid}.pem`: the
//!   CA's latest full CRL; `/.well-known/pki/crl/{refid}` is the same (RFC 8615);
//! * `/crl/{refid}/delta.crl|.pem`: its latest delta CRL;
//! * `/crl/{refid}/{number}.crl|.pem`: any CRL it published, by number.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http_cache::{self, Cached};
use authority::CrlRow;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(latest))
        .routes(routes!(by_number))
        .routes(routes!(well_known))
}

/// Which CRL of a CA.
enum Which {
    Latest,
    Delta,
    Number(i64),
}

/// A CA's latest full CRL: `{refid}.crl` as DER (`application/pkix-crl`) or `{refid}.pem`.
/// Cached for `crl_max_age_seconds`, with an ETag and Last-Modified for revalidation.
#[utoipa::path(get, path = "/crl/{file}", tag = "crl", security(()),
    params(("file" = String, Path, description = "`{refid}.crl` or `{refid}.pem`")),
    responses((status = 200, description = "The CRL", content_type = "application/pkix-crl"),
              (status = 304, description = "Not modified"),
              (status = 404, description = "No such CA, or no CRL yet", body = ErrorBody)))]
async fn latest(
    State(app): State<App>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (refid, pem) = split(&file)?;
    serve(&app, &headers, refid, Which::Latest, pem).await
}

/// A CA's latest delta CRL (`delta.crl`, `delta.pem`), or any CRL it published by number
/// (`{number}.crl`, `{number}.pem`).
#[utoipa::path(get, path = "/crl/{refid}/{file}", tag = "crl", security(()),
    params(("refid" = String, Path, description = "The CA's public identifier"),
           ("file" = String, Path, description = "`delta.crl`, `{number}.crl`, or the same with `.pem`")),
    responses((status = 200, description = "The CRL", content_type = "application/pkix-crl"),
              (status = 304, description = "Not modified"),
              (status = 404, description = "No such CA or CRL", body = ErrorBody)))]
async fn by_number(
    State(app): State<App>,
    Path((refid, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (name, pem) = split(&file)?;
    let which = match name {
        "delta" => Which::Delta,
        number => Which::Number(
            number
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| not_found(&file))?,
        ),
    };
    serve(&app, &headers, &refid, which, pem).await
}

/// A CA's latest full CRL, DER, under the RFC 8615 well-known prefix.
#[utoipa::path(get, path = "/.well-known/pki/crl/{refid}", tag = "crl", security(()),
    params(("refid" = String, Path, description = "The CA's public identifier")),
    responses((status = 200, description = "The CRL", content_type = "application/pkix-crl"),
              (status = 304, description = "Not modified"),
              (status = 404, description = "No such CA, or no CRL yet", body = ErrorBody)))]
async fn well_known(
    State(app): State<App>,
    Path(refid): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&app, &headers, &refid, Which::Latest, false).await
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found(format!("no CRL '{what}'"))
}

/// `name.crl` or `name.pem` into the name and whether PEM was asked for.
fn split(file: &str) -> ApiResult<(&str, bool)> {
    match file.rsplit_once('.') {
        Some((name, "crl" | "der")) => Ok((name, false)),
        Some((name, "pem")) => Ok((name, true)),
        _ => Err(not_found(file)),
    }
}

async fn serve(
    app: &App,
    headers: &HeaderMap,
    refid: &str,
    which: Which,
    pem: bool,
) -> ApiResult<Response> {
    // The latest CRLs are served while the database is unreachable, as last read.
    let ca = app
        .authority
        .public_ca(refid)
        .await?
        .filter(|ca| ca.refid == refid)
        .ok_or_else(|| ApiError::not_found(format!("no CA '{refid}'")))?;
    let crl: Option<Arc<CrlRow>> = match which {
        Which::Latest => app.authority.public_latest_crl(ca.id, false).await?,
        Which::Delta => app.authority.public_latest_crl(ca.id, true).await?,
        Which::Number(n) => app
            .authority
            .reader()
            .crl(ca.id, n)
            .await
            .map_err(authority::Error::from)?
            .map(Arc::new),
    };
    let crl = crl.ok_or_else(|| {
        ApiError::not_found(format!("CA '{}' has published no such CRL yet", ca.name))
    })?;
    let now = app.authority.now();
    let until_next = http_cache::seconds_until(now, crl.next_update);
    let max_age = match which {
        // A numbered CRL never changes; the latest may be replaced at any revocation.
        Which::Number(_) => until_next,
        Which::Latest | Which::Delta => until_next.min(app.settings.crl_max_age_seconds),
    };
    let etag = format!(
        "{}-{}{}",
        ca.refid,
        crl.number,
        if pem { "-pem" } else { "" }
    );
    let (content_type, body) = if pem {
        (
            "application/x-pem-file",
            authority::pki::pem::encode("X509 CRL", &crl.der)
                .into_bytes()
                .into(),
        )
    } else {
        ("application/pkix-crl", crl.der.clone().into())
    };
    Ok(http_cache::respond(
        headers,
        Cached {
            content_type,
            body,
            etag: &etag,
            last_modified: crl.this_update,
            max_age,
        },
    ))
}
