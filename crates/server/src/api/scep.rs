//! The SCEP front door (RFC 8894 §4): `GET` and `POST /scep?operation=…` for the default
//! profile, `/scep/{profile}` for the others, each also under the legacy `…/pkiclient.exe`
//! path, on both listeners (SCEP protects its messages itself). GetCACaps, GetCACert and
//! PKIOperation; the messages are read and answered by the registration authority.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use authority::Origin;

/// The largest pkiMessage accepted: a CSR with a 4096-bit key, two certificates and the
/// envelope fit in a fraction of this.
const MAX_MESSAGE: usize = 64 * 1024;
/// The longest base64 message in a GET URL.
const MAX_ENCODED: usize = MAX_MESSAGE.div_ceil(3) * 4;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_default, post_default))
        .routes(routes!(get_default_legacy, post_default_legacy))
        .routes(routes!(get_profile, post_profile))
        .routes(routes!(get_profile_legacy, post_profile_legacy))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE))
}

/// The query every SCEP request carries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Operation {
    /// GetCACaps, GetCACert or PKIOperation.
    pub operation: String,
    /// PKIOperation over GET: the pkiMessage, base64 (URL-encoded); GetCACert: a CA
    /// identifier (ignored: a profile has one CA).
    pub message: Option<String>,
}

/// SCEP for the default profile.
#[utoipa::path(get, path = "/scep", tag = "scep-protocol", security(()),
    params(Operation),
    responses((status = 200, description = "GetCACaps: text/plain; GetCACert: application/x-x509-ca-ra-cert; PKIOperation: application/x-pki-message"),
              (status = 400, description = "Unknown operation, or a message SCEP cannot answer", body = ErrorBody),
              (status = 404, description = "SCEP is disabled", body = ErrorBody)))]
async fn get_default(
    State(app): State<App>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
) -> Response {
    get(&app, None, origin, query).await
}

/// PKIOperation for the default profile: the pkiMessage as the body.
#[utoipa::path(post, path = "/scep", tag = "scep-protocol", security(()),
    params(Operation),
    request_body(content_type = "application/x-pki-message", description = "A DER pkiMessage"),
    responses((status = 200, description = "A CertRep", content_type = "application/x-pki-message"),
              (status = 400, description = "Not a PKIOperation, or a message SCEP cannot answer", body = ErrorBody),
              (status = 413, description = "The body is larger than any pkiMessage", body = ErrorBody)))]
async fn post_default(
    State(app): State<App>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
    body: Bytes,
) -> Response {
    post(&app, None, origin, query, body).await
}

/// The same as `GET /scep`, at the legacy path clients still use.
#[utoipa::path(get, path = "/scep/pkiclient.exe", tag = "scep-protocol", security(()),
    params(Operation),
    responses((status = 200, description = "As GET /scep"),
              (status = 400, description = "Unknown operation", body = ErrorBody)))]
async fn get_default_legacy(
    State(app): State<App>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
) -> Response {
    get(&app, None, origin, query).await
}

/// The same as `POST /scep`, at the legacy path.
#[utoipa::path(post, path = "/scep/pkiclient.exe", tag = "scep-protocol", security(()),
    params(Operation),
    request_body(content_type = "application/x-pki-message", description = "A DER pkiMessage"),
    responses((status = 200, description = "A CertRep", content_type = "application/x-pki-message"),
              (status = 400, description = "Not a PKIOperation", body = ErrorBody)))]
async fn post_default_legacy(
    State(app): State<App>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
    body: Bytes,
) -> Response {
    post(&app, None, origin, query, body).await
}

/// SCEP for profile `profile`.
#[utoipa::path(get, path = "/scep/{profile}", tag = "scep-protocol", security(()),
    params(("profile" = String, Path, description = "The profile's name"), Operation),
    responses((status = 200, description = "As GET /scep"),
              (status = 404, description = "No such profile serving", body = ErrorBody)))]
async fn get_profile(
    State(app): State<App>,
    Path(profile): Path<String>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
) -> Response {
    get(&app, Some(&profile), origin, query).await
}

/// PKIOperation for profile `profile`.
#[utoipa::path(post, path = "/scep/{profile}", tag = "scep-protocol", security(()),
    params(("profile" = String, Path, description = "The profile's name"), Operation),
    request_body(content_type = "application/x-pki-message", description = "A DER pkiMessage"),
    responses((status = 200, description = "A CertRep", content_type = "application/x-pki-message"),
              (status = 404, description = "No such profile serving", body = ErrorBody)))]
async fn post_profile(
    State(app): State<App>,
    Path(profile): Path<String>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
    body: Bytes,
) -> Response {
    post(&app, Some(&profile), origin, query, body).await
}

/// The same as `GET /scep/{profile}`, at the legacy path.
#[utoipa::path(get, path = "/scep/{profile}/pkiclient.exe", tag = "scep-protocol", security(()),
    params(("profile" = String, Path, description = "The profile's name"), Operation),
    responses((status = 200, description = "As GET /scep"),
              (status = 404, description = "No such profile serving", body = ErrorBody)))]
async fn get_profile_legacy(
    State(app): State<App>,
    Path(profile): Path<String>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
) -> Response {
    get(&app, Some(&profile), origin, query).await
}

/// The same as `POST /scep/{profile}`, at the legacy path.
#[utoipa::path(post, path = "/scep/{profile}/pkiclient.exe", tag = "scep-protocol", security(()),
    params(("profile" = String, Path, description = "The profile's name"), Operation),
    request_body(content_type = "application/x-pki-message", description = "A DER pkiMessage"),
    responses((status = 200, description = "A CertRep", content_type = "application/x-pki-message"),
              (status = 404, description = "No such profile serving", body = ErrorBody)))]
async fn post_profile_legacy(
    State(app): State<App>,
    Path(profile): Path<String>,
    origin: Option<axum::Extension<Origin>>,
    ApiQuery(query): ApiQuery<Operation>,
    body: Bytes,
) -> Response {
    post(&app, Some(&profile), origin, query, body).await
}

fn with_type(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn get(
    app: &App,
    profile: Option<&str>,
    origin: Option<axum::Extension<Origin>>,
    query: Operation,
) -> Response {
    let answer = match query.operation.as_str() {
        "GetCACaps" => match app.authority.scep_profile(profile).await {
            Ok(_) => return with_type("text/plain", authority::pki::scep::CA_CAPS),
            Err(e) => Err(e),
        },
        "GetCACert" => match app.authority.scep_ca_certs(profile).await {
            Ok(certs) => return with_type("application/x-x509-ca-ra-cert", certs.pkcs7),
            Err(e) => Err(e),
        },
        "PKIOperation" => {
            let Some(message) = query.message.as_deref() else {
                return ApiError::bad_request("PKIOperation over GET needs a message parameter")
                    .into_response();
            };
            match decode_message(message) {
                Ok(der) => operation(app, profile, origin, der).await,
                Err(e) => return e.into_response(),
            }
        }
        other => return unknown_operation(other),
    };
    match answer {
        Ok(response) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn post(
    app: &App,
    profile: Option<&str>,
    origin: Option<axum::Extension<Origin>>,
    query: Operation,
    body: Bytes,
) -> Response {
    if query.operation != "PKIOperation" {
        return unknown_operation(&query.operation);
    }
    match operation(app, profile, origin, body.to_vec()).await {
        Ok(response) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn operation(
    app: &App,
    profile: Option<&str>,
    origin: Option<axum::Extension<Origin>>,
    message: Vec<u8>,
) -> Result<Response, authority::Error> {
    let origin = origin.map(|o| o.0).unwrap_or_default();
    let answer = app
        .authority
        .scep_operation(profile, message, origin)
        .await?;
    Ok(with_type("application/x-pki-message", answer.cert_rep))
}

fn unknown_operation(operation: &str) -> Response {
    ApiError::bad_request(format!(
        "unknown SCEP operation '{}'; expected GetCACaps, GetCACert or PKIOperation",
        operation.chars().take(64).collect::<String>()
    ))
    .into_response()
}

/// A pkiMessage from a GET URL: base64, where a `+` left unencoded arrives as a space.
fn decode_message(text: &str) -> Result<Vec<u8>, ApiError> {
    if text.len() > MAX_ENCODED {
        return Err(ApiError::new(
            axum::http::StatusCode::URI_TOO_LONG,
            "the message is longer than any pkiMessage",
        ));
    }
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    STANDARD
        .decode(&cleaned)
        .or_else(|_| STANDARD_NO_PAD.decode(cleaned.trim_end_matches('=')))
        .map_err(|_| ApiError::bad_request("the message parameter is not base64"))
}
