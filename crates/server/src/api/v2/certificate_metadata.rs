//! What operators record about certificates: owner, team, tags and description
//! (`PATCH /certificates/{id}`, `POST /certificates/bulk/assign`), and where each is deployed
//! (`/certificates/{id}/locations`).

use std::sync::atomic::AtomicUsize;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::certificates::CertificateView;
use super::views::{BulkResult, bulk_counting, nullable};
use crate::App;
use crate::envelope::{Envelope, created, no_content, ok};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id, parse_id};
use authority::{CertificateChange, CertificateId, LocationFields, LocationRow, Principal};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(update))
        .routes(routes!(bulk_assign))
        .routes(routes!(list_locations, add_location))
        .routes(routes!(get_location, update_location, delete_location))
}

/// A change to a certificate's records: a field left out stays as it is, `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateUpdate {
    /// The user who answers for it (its requester until changed).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<Option<i64>>,
    /// The group (team) that answers for it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Its tags, replacing all it had: up to 32, each 1 to 64 letters, digits or -_.:/=@,
    /// kept in lower case.
    pub tags: Option<Vec<String>>,
    /// Tags to add.
    #[serde(default)]
    pub add_tags: Vec<String>,
    /// Tags to take away.
    #[serde(default)]
    pub remove_tags: Vec<String>,
}

impl From<CertificateUpdate> for CertificateChange {
    fn from(u: CertificateUpdate) -> Self {
        Self {
            owner_id: u.owner_id,
            team_id: u.team_id,
            description: u.description,
            tags: u.tags,
            add_tags: u.add_tags,
            remove_tags: u.remove_tags,
        }
    }
}

/// Change a certificate's owner, team, tags or description; the certificate itself is
/// unchanged.
#[utoipa::path(patch, path = "/certificates/{id}", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = CertificateUpdate,
    responses((status = 200, description = "The certificate as it now is", body = Envelope<CertificateView>),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 422, description = "A bad tag, or no such owner or team", body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<CertificateUpdate>,
) -> ApiResult<Response> {
    let cert = app
        .authority
        .change_certificate(&principal, CertificateId(id), &body.into())
        .await?;
    Ok(ok(CertificateView::new(cert, app.authority.now())))
}

/// Owner, team and tags for several certificates at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAssign {
    pub ids: Vec<i64>,
    /// The new owner of each; `null` clears it, left out keeps each one's.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<Option<i64>>,
    /// The new team of each; `null` clears it, left out keeps each one's.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<Option<i64>>,
    /// Tags to add to each.
    #[serde(default)]
    pub add_tags: Vec<String>,
    /// Tags to take from each.
    #[serde(default)]
    pub remove_tags: Vec<String>,
}

/// Reassign several certificates to an owner or team, or tag them, each on its own: one that
/// fails does not stop the rest.
#[utoipa::path(post, path = "/certificates/bulk/assign", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    request_body = BulkAssign,
    responses((status = 200, description = "Which were changed", body = Envelope<BulkResult>),
              (status = 422, description = "Bad ids", body = ErrorBody)))]
async fn bulk_assign(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<BulkAssign>,
) -> ApiResult<Response> {
    let change = CertificateChange {
        owner_id: body.owner_id,
        team_id: body.team_id,
        add_tags: body.add_tags,
        remove_tags: body.remove_tags,
        ..CertificateChange::default()
    };
    let done = AtomicUsize::new(0);
    let result = assign_each(&app, &principal, &body.ids, &change, &done).await?;
    Ok(ok(result))
}

/// Applies `change` to each of `ids` in turn, counting in `done`; the console's bulk tagging
/// runs the same.
pub async fn assign_each(
    app: &App,
    principal: &Principal,
    ids: &[i64],
    change: &CertificateChange,
    done: &AtomicUsize,
) -> ApiResult<BulkResult> {
    let each = |id| async move {
        app.authority
            .change_certificate(principal, CertificateId(id), change)
            .await
            .map(drop)
    };
    bulk_counting(ids, each, done).await
}

/// A place a certificate is deployed.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub id: i64,
    pub certificate_id: i64,
    /// Host name or address.
    pub host: String,
    pub port: Option<u16>,
    /// File path, or another place on the host.
    pub path: Option<String>,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<LocationRow> for LocationView {
    fn from(l: LocationRow) -> Self {
        Self {
            id: l.id,
            certificate_id: l.certificate_id.0,
            host: l.host,
            port: l.port,
            path: l.path,
            note: l.note,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// A place to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    /// Host name or address, without spaces.
    pub host: String,
    /// 1 to 65535.
    pub port: Option<u16>,
    /// File path, or another place on the host.
    pub path: Option<String>,
    pub note: Option<String>,
}

impl From<LocationInput> for LocationFields {
    fn from(l: LocationInput) -> Self {
        Self {
            host: l.host,
            port: l.port,
            path: l.path,
            note: l.note,
        }
    }
}

/// Where a certificate is deployed, in the order recorded.
#[utoipa::path(get, path = "/certificates/{id}/locations", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    responses((status = 200, description = "Locations", body = Envelope<Vec<LocationView>>),
              (status = 404, description = "No such certificate", body = ErrorBody)))]
async fn list_locations(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    let all = app
        .authority
        .certificate_locations(CertificateId(id))
        .await?;
    Ok(ok(all
        .into_iter()
        .map(LocationView::from)
        .collect::<Vec<_>>()))
}

/// Record a place a certificate is deployed (up to 100 per certificate).
#[utoipa::path(post, path = "/certificates/{id}/locations", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = LocationInput,
    responses((status = 201, description = "Recorded", body = Envelope<LocationView>),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 422, description = "A bad host, port, path or note, or too many", body = ErrorBody)))]
async fn add_location(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<LocationInput>,
) -> ApiResult<Response> {
    let location = app
        .authority
        .add_certificate_location(&principal, CertificateId(id), &body.into())
        .await?;
    Ok(created(LocationView::from(location), "location recorded"))
}

/// The certificate and location ids of a location's path.
fn location_path(ids: &(String, String)) -> ApiResult<(CertificateId, i64)> {
    Ok((CertificateId(parse_id(&ids.0)?), parse_id(&ids.1)?))
}

/// One place a certificate is deployed.
#[utoipa::path(get, path = "/certificates/{id}/locations/{location_id}", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "Certificate id"), ("location_id" = i64, Path)),
    responses((status = 200, description = "Location", body = Envelope<LocationView>),
              (status = 404, description = "No such certificate or location", body = ErrorBody)))]
async fn get_location(
    State(app): State<App>,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Response> {
    let (id, location_id) = location_path(&ids)?;
    let location = app.authority.certificate_location(id, location_id).await?;
    Ok(ok(LocationView::from(location)))
}

/// Replace what is recorded of a place.
#[utoipa::path(put, path = "/certificates/{id}/locations/{location_id}", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "Certificate id"), ("location_id" = i64, Path)),
    request_body = LocationInput,
    responses((status = 200, description = "Updated", body = Envelope<LocationView>),
              (status = 404, description = "No such certificate or location", body = ErrorBody),
              (status = 422, description = "A bad host, port, path or note", body = ErrorBody)))]
async fn update_location(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(ids): Path<(String, String)>,
    ApiJson(body): ApiJson<LocationInput>,
) -> ApiResult<Response> {
    let (id, location_id) = location_path(&ids)?;
    let location = app
        .authority
        .update_certificate_location(&principal, id, location_id, &body.into())
        .await?;
    Ok(ok(LocationView::from(location)))
}

/// Forget a place.
#[utoipa::path(delete, path = "/certificates/{id}/locations/{location_id}", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "Certificate id"), ("location_id" = i64, Path)),
    responses((status = 204, description = "Forgotten"),
              (status = 404, description = "No such certificate or location", body = ErrorBody)))]
async fn delete_location(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Response> {
    let (id, location_id) = location_path(&ids)?;
    app.authority
        .delete_certificate_location(&principal, id, location_id)
        .await?;
    Ok(no_content())
}
