//! `/certificates`: the inventory (search, filters, pages), one certificate decoded with its
//! actions (export, renew, revoke, hold and release), and issuance from a form. Each handler
//! translates a form into the request the REST handler builds and calls the same function.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::choices::{self, Cas, Choice};
use super::form::{Form, KEY_TYPES, Refusal, blank_is_none, key_choice, lines, number};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::certificate_bulk::{export_each, renew_each, revoke_each};
use crate::api::v2::certificate_metadata::{LocationView, assign_each};
use crate::api::v2::certificate_views::view_query;
use crate::api::v2::certificates::{
    self as rest, CertificateCreate, CertificateQuery, CertificateView, ExportQuery,
};
use crate::api::v2::tools::{DecodedCertificate, decoded_certificate};
use crate::api::v2::views::SubjectFields;
use crate::api::v2::views::{MAX_BULK, bulk_ids};
use crate::envelope::Total;
use crate::error::{ApiError, ApiResult};
use authority::{CertificateChange, CertificateId, LocationFields, Permission, RevocationReason};

/// Rows on a page of the list.
const PER_PAGE: u32 = 50;

/// The list's filters, as the query string carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    ca_id: String,
    search: String,
    days: String,
    source: String,
    key_type: String,
    san_type: String,
    has_key: String,
    renewed: String,
    tag: String,
    team_id: String,
    sort: String,
    order: String,
    page: Option<u32>,
}

/// The choices of the list's selects: the query-string value and its label, "Any" first.
const SOURCES: [(&str, &str); 8] = [
    ("", "Any"),
    ("api", "API"),
    ("acme", "ACME"),
    ("csr", "CSR"),
    ("est", "EST"),
    ("scep", "SCEP"),
    ("imported", "Imported"),
    ("system", "certmint"),
];
const SAN_TYPES: [(&str, &str); 5] = [
    ("", "Any"),
    ("dns", "DNS name"),
    ("ip", "IP address"),
    ("email", "Email"),
    ("uri", "URI"),
];
const YES_NO: [(&str, &str); 3] = [("", "Any"), ("true", "Yes"), ("false", "No")];
const SORTS: [(&str, &str); 3] = [
    ("", "Added"),
    ("valid_until", "Expiry"),
    ("valid_from", "Valid from"),
];
const ORDERS: [(&str, &str); 2] = [("", "Latest first"), ("asc", "Earliest first")];

impl ListQuery {
    /// The filters, as the query string names them.
    fn filters(&self) -> [(&'static str, &str); 13] {
        [
            ("status", &self.status),
            ("ca_id", &self.ca_id),
            ("search", &self.search),
            ("days", &self.days),
            ("source", &self.source),
            ("key_type", &self.key_type),
            ("san_type", &self.san_type),
            ("has_key", &self.has_key),
            ("renewed", &self.renewed),
            ("tag", &self.tag),
            ("team_id", &self.team_id),
            ("sort", &self.sort),
            ("order", &self.order),
        ]
    }

    fn to_rest(&self) -> ApiResult<CertificateQuery> {
        let text = |v: &str| blank_is_none(v).map(str::to_owned);
        Ok(CertificateQuery {
            status: text(&self.status),
            ca_id: number("ca_id", &self.ca_id)?,
            search: text(&self.search),
            days: number("days", &self.days)?,
            source: text(&self.source),
            key_type: text(&self.key_type),
            san_type: text(&self.san_type),
            has_key: yes_no("has_key", &self.has_key)?,
            renewed: yes_no("renewed", &self.renewed)?,
            tag: text(&self.tag),
            team_id: number("team_id", &self.team_id)?,
            sort: text(&self.sort),
            order: text(&self.order),
            ..CertificateQuery::default()
        })
    }

    /// The key types offered: the ones certmint issues, and the one asked for if another.
    fn key_types(&self) -> Vec<&str> {
        let mut types = vec![""];
        types.extend(KEY_TYPES);
        if !types.contains(&self.key_type.as_str()) {
            types.push(&self.key_type);
        }
        types
    }
}

/// A select's `true` or `false`; blank is neither.
fn yes_no(field: &str, value: &str) -> ApiResult<Option<bool>> {
    match value.trim() {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Err(ApiError::bad_request(format!(
            "{field} must be true or false"
        ))),
    }
}

#[derive(Template)]
#[template(path = "console/certificates.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    query: ListQuery,
    cas: Vec<Choice>,
    teams: Vec<Choice>,
    /// The visitor's saved views, and the filters shown, as a view would save them.
    views: Vec<authority::SavedViewRow>,
    current: String,
    rows: Vec<CertificateView>,
    pager: Pager,
    error: Option<String>,
}

/// GET `/certificates`.
pub async fn list(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    let frame = visitor.frame("/certificates");
    let page = query.page.unwrap_or(1).max(1);
    let read = async {
        let request = authority::PageRequest {
            page,
            per_page: PER_PAGE,
            after: None,
        };
        let (rows, total) = rest::certificates_page(&app, query.to_rest()?, request).await?;
        Ok::<_, ApiError>((
            rows,
            total,
            choices::cas(&app, &frame, Cas::All).await?,
            choices::teams(&app, &frame, &visitor.principal).await?,
        ))
    };
    let (rows, total, cas, teams, error, status) = match read.await {
        Ok((rows, total, cas, teams)) => (rows, total, cas, teams, None, StatusCode::OK),
        Err(e) => (
            Vec::new(),
            Total::from(0),
            Vec::new(),
            Vec::new(),
            Some(e.message().to_owned()),
            e.status(),
        ),
    };
    // A visitor without an account (none signs in to the console without one) has no views.
    let views = app
        .authority
        .saved_views(&visitor.principal)
        .await
        .unwrap_or_default();
    let current = page::list_link("", &query.filters(), 1)
        .trim_start_matches('?')
        .to_owned();
    page::render(
        status,
        &ListPage {
            head: Head::new(),
            pager: Pager::new("/certificates", &query.filters(), page, PER_PAGE, total),
            frame,
            query,
            cas,
            teams,
            views,
            current,
            rows,
            error,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ViewForm {
    name: String,
    #[serde(default)]
    query: String,
}

/// POST `/certificates/views`: saves the filters shown as one of the visitor's views, then
/// shows the list through it.
pub async fn save_view(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ViewForm>,
) -> Response {
    let saved = async {
        let query = view_query(&app, &form.query)?;
        app.authority
            .save_view(&visitor.principal, &form.name, &query)
            .await?;
        Ok::<_, ApiError>(query)
    };
    match saved.await {
        Ok(query) if query.is_empty() => Redirect::to("/certificates").into_response(),
        Ok(query) => Redirect::to(&format!("/certificates?{query}")).into_response(),
        Err(e) => page::refused(visitor.frame("/certificates"), &e),
    }
}

/// POST `/certificates/views/{id}/delete`.
pub async fn delete_view(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app.authority.delete_view(&visitor.principal, id).await {
        Ok(()) => Redirect::to("/certificates").into_response(),
        Err(e) => page::refused(visitor.frame("/certificates"), &e.into()),
    }
}

/// Where an action on the detail page went wrong.
pub struct Notice {
    /// The form it belongs to: export, renew, revoke, records or locations.
    form: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "console/certificate.html")]
struct DetailPage {
    head: Head,
    frame: Frame,
    certificate: CertificateView,
    decoded: DecodedCertificate,
    /// The issuing CA and those above it, up to the root (empty without `read:cas`).
    chain: Vec<Choice>,
    /// The certificates that renewed this one.
    renewed_by: Vec<i64>,
    /// Where it is deployed.
    locations: Vec<LocationView>,
    /// The users and groups its owner and team are picked from (empty without `read:users`).
    users: Vec<Choice>,
    teams: Vec<Choice>,
    reasons: Vec<&'static str>,
    notice: Option<Notice>,
}

impl DetailPage {
    /// The name of user or group `id` among `choices` (`kind` and its id when not there).
    fn name_of(&self, choices: &[Choice], id: &i64, kind: &str) -> String {
        choices::name_of(choices, *id, kind)
    }

    /// Whether `id` is among `choices`; one that is not is offered too, so that saving the
    /// form keeps it.
    fn offers(&self, choices: &[Choice], id: &Option<i64>) -> bool {
        id.is_none_or(|id| choices.iter().any(|c| c.id == id))
    }

    /// The message for `form`, if it went wrong.
    fn notice_for(&self, form: &str) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|n| n.form == form)
            .map(|n| n.message.as_str())
    }
}

/// CA `from` and those above it among `all`, up to the root or the highest held here. A
/// parent named twice (a loop no valid hierarchy has) ends the walk.
fn chain_from(all: &[authority::CaRow], from: authority::CaId) -> Vec<Choice> {
    let mut chain: Vec<Choice> = Vec::new();
    let mut next = Some(from);
    while let Some(id) = next {
        let Some(ca) = all.iter().find(|c| c.id == id) else {
            break;
        };
        if chain.iter().any(|c| c.id == id.0) {
            break;
        }
        chain.push(Choice {
            id: id.0,
            name: ca.name.clone(),
        });
        next = ca.parent_id;
    }
    chain
}

/// The detail page of certificate `id`, with `notice` next to the form that failed.
async fn detail(app: &App, visitor: &Visitor, id: i64, notice: Option<Notice>) -> Response {
    let frame = visitor.frame("/certificates");
    let read = async {
        let row = app.authority.certificate(CertificateId(id)).await?;
        let decoded = decoded_certificate(&row.cert.der)?;
        let chain = match row.ca_id {
            Some(ca) if frame.can("read:cas") => chain_from(&app.authority.cas().await?, ca),
            _ => Vec::new(),
        };
        let renewed_by = app.authority.renewals_of(row.id).await?;
        let locations = app.authority.certificate_locations(row.id).await?;
        Ok::<_, ApiError>((
            CertificateView::new(row, app.authority.now()),
            decoded,
            chain,
            renewed_by.into_iter().map(i64::from).collect(),
            locations.into_iter().map(LocationView::from).collect(),
            choices::users(app, &frame).await?,
            choices::teams(app, &frame, &visitor.principal).await?,
        ))
    };
    match read.await {
        Ok((certificate, decoded, chain, renewed_by, locations, users, teams)) => {
            let status = if notice.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            page::render(
                status,
                &DetailPage {
                    head: Head::new(),
                    frame,
                    certificate,
                    decoded,
                    chain,
                    renewed_by,
                    locations,
                    users,
                    teams,
                    reasons: RevocationReason::ALL.iter().map(|r| r.as_str()).collect(),
                    notice,
                },
            )
        }
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/certificates/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    detail(&app, &visitor, id, None).await
}

/// Back to the detail page with what went wrong next to `form`, in the status it deserves.
async fn failed(
    app: &App,
    visitor: &Visitor,
    id: i64,
    form: &'static str,
    e: ApiError,
) -> Response {
    let status = e.status();
    let mut response = detail(
        app,
        visitor,
        id,
        Some(Notice {
            form,
            message: e.message().to_owned(),
        }),
    )
    .await;
    if response.status() != StatusCode::NOT_FOUND {
        *response.status_mut() = status;
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct ExportForm {
    format: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    encryption: String,
    #[serde(default)]
    include_key: Option<String>,
}

/// POST `/certificates/{id}/export`: the file, or the page again with the reason. A POST, so
/// that a PKCS#12 password never sits in a URL.
pub async fn export(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<ExportForm>,
) -> Response {
    let query = ExportQuery {
        format: Some(form.format),
        include_key: form.include_key.is_some(),
        include_chain: false,
        password: blank_is_none(&form.password).map(str::to_owned),
        encryption: blank_is_none(&form.encryption).map(str::to_owned),
    };
    match rest::export_file(&app, &visitor.principal, id, query).await {
        Ok(file) => file,
        Err(e) => failed(&app, &visitor, id, "export", e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    reason: String,
    #[serde(default)]
    comments: String,
}

/// POST `/certificates/{id}/revoke`: revokes, puts on hold (`certificateHold`) or releases a
/// hold (`removeFromCRL`), then shows the certificate.
pub async fn revoke(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<RevokeForm>,
) -> Response {
    let comments = blank_is_none(&form.comments);
    let done = async {
        let reason = rest::revocation_reason(Some(&form.reason), comments)?;
        app.authority
            .revoke(
                &visitor.principal,
                CertificateId(id),
                reason,
                comments,
                None,
            )
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("/certificates/{id}")).into_response(),
        Err(e) => failed(&app, &visitor, id, "revoke", e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct RenewForm {
    #[serde(default)]
    new_key: Option<String>,
}

/// POST `/certificates/{id}/renew`: renews (or, with `new_key`, rekeys) and shows the new
/// certificate.
pub async fn renew(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<RenewForm>,
) -> Response {
    let new_key = form
        .new_key
        .is_some()
        .then_some(authority::KeySource::Generate(None));
    match app
        .authority
        .renew(&visitor.principal, CertificateId(id), None, None, new_key)
        .await
    {
        Ok(issued) => {
            Redirect::to(&format!("/certificates/{}", issued.certificate.id.0)).into_response()
        }
        Err(e) => failed(&app, &visitor, id, "renew", e.into()).await,
    }
}

/// What a bulk action does with the ticked certificates.
enum BulkAction {
    Export,
    Revoke(RevocationReason),
    Renew,
    /// Add (or take away) these tags.
    Tag(CertificateChange),
}

/// The ids ticked in a bulk form, and what to do with them.
fn bulk_request(fields: &[(String, String)]) -> ApiResult<(Vec<i64>, BulkAction)> {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let ids = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::invalid("a ticked id is not a number"))?;
    bulk_ids(&ids).map_err(|_| {
        ApiError::invalid(format!(
            "tick 1 to {MAX_BULK} certificates, each once, for a bulk action"
        ))
    })?;
    let action = match value("action") {
        Some("export") => BulkAction::Export,
        Some("revoke") => BulkAction::Revoke(rest::revocation_reason(value("reason"), None)?),
        Some("renew") => BulkAction::Renew,
        Some(action @ ("tag" | "untag")) => {
            let tags = tag_list(value("tag").unwrap_or_default());
            if tags.is_empty() {
                return Err(ApiError::invalid("name the tag to add or take away"));
            }
            BulkAction::Tag(if action == "tag" {
                CertificateChange {
                    add_tags: tags,
                    ..CertificateChange::default()
                }
            } else {
                CertificateChange {
                    remove_tags: tags,
                    ..CertificateChange::default()
                }
            })
        }
        _ => {
            return Err(ApiError::invalid(
                "choose export, revoke, renew, tag or untag",
            ));
        }
    };
    Ok((ids, action))
}

/// POST `/certificates/bulk`: the ticked certificates downloaded as a ZIP, or revoked or
/// renewed after the answer, which is the page that follows the work.
pub async fn bulk(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let started = async {
        let (ids, action) = bulk_request(&fields)?;
        let principal = &visitor.principal;
        let owner = principal.account()?.id;
        let count = ids.len();
        let (app2, who) = (app.clone(), principal.clone());
        let work = match action {
            BulkAction::Export => return export_each(&app, &ids).await,
            BulkAction::Revoke(reason) => {
                principal.require(Permission::DeleteCertificates, "revoking certificates")?;
                let title = format!("Revoking {count} certificates ({})", reason.as_str());
                let work = app.works.start(owner, title, count)?;
                let w = work.clone();
                tokio::spawn(async move {
                    w.finish(revoke_each(&app2, &who, &ids, reason, None, &w.done).await);
                });
                work
            }
            BulkAction::Renew => {
                principal.require(Permission::WriteCertificates, "renewing certificates")?;
                let work =
                    app.works
                        .start(owner, format!("Renewing {count} certificates"), count)?;
                let w = work.clone();
                tokio::spawn(async move {
                    w.finish(renew_each(&app2, &who, &ids, None, None, &w.done).await);
                });
                work
            }
            BulkAction::Tag(change) => {
                principal.require(Permission::WriteCertificates, "tagging certificates")?;
                let work =
                    app.works
                        .start(owner, format!("Tagging {count} certificates"), count)?;
                let w = work.clone();
                tokio::spawn(async move {
                    w.finish(assign_each(&app2, &who, &ids, &change, &w.done).await);
                });
                work
            }
        };
        Ok::<_, ApiError>(Redirect::to(&format!("/work/{}", work.id)).into_response())
    };
    match started.await {
        Ok(response) => response,
        Err(e) => page::refused(visitor.frame("/certificates"), &e),
    }
}

/// Tags as a person types them: separated by spaces or commas.
fn tag_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The records form. Owner and team are offered only to a visitor who may read users and
/// groups; a field the form did not offer is left as it is.
#[derive(Debug, Deserialize)]
pub struct RecordsForm {
    owner_id: Option<String>,
    team_id: Option<String>,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    description: String,
}

impl RecordsForm {
    fn to_change(&self) -> ApiResult<CertificateChange> {
        let picked = |name: &str, value: &Option<String>| {
            value.as_deref().map(|v| number::<i64>(name, v)).transpose()
        };
        Ok(CertificateChange {
            owner_id: picked("owner_id", &self.owner_id)?,
            team_id: picked("team_id", &self.team_id)?,
            description: Some(blank_is_none(&self.description).map(str::to_owned)),
            tags: Some(tag_list(&self.tags)),
            ..CertificateChange::default()
        })
    }
}

/// POST `/certificates/{id}/records`: owner, team, tags and description.
pub async fn records(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<RecordsForm>,
) -> Response {
    let done = async {
        app.authority
            .change_certificate(&visitor.principal, CertificateId(id), &form.to_change()?)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("/certificates/{id}")).into_response(),
        Err(e) => failed(&app, &visitor, id, "records", e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct LocationForm {
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    note: String,
}

/// POST `/certificates/{id}/locations`: records where it is deployed.
pub async fn add_location(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<LocationForm>,
) -> Response {
    let done = async {
        let fields = LocationFields {
            host: form.host,
            port: number("port", &form.port)?,
            path: blank_is_none(&form.path).map(str::to_owned),
            note: blank_is_none(&form.note).map(str::to_owned),
        };
        app.authority
            .add_certificate_location(&visitor.principal, CertificateId(id), &fields)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("/certificates/{id}")).into_response(),
        Err(e) => failed(&app, &visitor, id, "locations", e).await,
    }
}

/// POST `/certificates/{id}/locations/{location_id}/delete`.
pub async fn delete_location(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path((id, location_id)): Path<(i64, i64)>,
) -> Response {
    match app
        .authority
        .delete_certificate_location(&visitor.principal, CertificateId(id), location_id)
        .await
    {
        Ok(()) => Redirect::to(&format!("/certificates/{id}")).into_response(),
        Err(e) => failed(&app, &visitor, id, "locations", e.into()).await,
    }
}

/// What the issuance form holds, kept to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IssueForm {
    template_id: String,
    ca_id: String,
    common_name: String,
    organization: String,
    san: String,
    validity_days: String,
    key_algorithm: String,
    csr: String,
}

#[derive(Template)]
#[template(path = "console/certificate_new.html")]
struct IssuePage {
    head: Head,
    frame: Frame,
    form: IssueForm,
    templates: Vec<Choice>,
    cas: Vec<Choice>,
    key_types: [&'static str; 6],
    error: Option<Refusal>,
}

impl IssuePage {
    /// The subject's text fields: name, label, value.
    fn subject_fields(&self) -> [(&'static str, &'static str, &str); 2] {
        [
            ("common_name", "Common name", &self.form.common_name),
            ("organization", "Organization", &self.form.organization),
        ]
    }

    /// The refusal, when it names `field`.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|r| r.about(field))
    }

    /// The refusal, when it names no field of the form.
    fn general_error(&self) -> Option<&str> {
        self.error.as_ref().and_then(Refusal::general)
    }
}

/// The fields of the issuance form, with the words a refusal uses for each.
const ISSUE_FIELDS: &[(&str, &[&str])] = &[
    ("csr", &["csr", "signing request"]),
    (
        "san",
        &["san", "subject alternative", "dns name", "ip address"],
    ),
    ("common_name", &["common_name", "common name", "commonname"]),
    ("organization", &["organization"]),
    ("validity_days", &["validity", "days"]),
    (
        "key_algorithm",
        &["key_algorithm", "key type", "key algorithm"],
    ),
    ("template_id", &["template"]),
    ("ca_id", &["ca_id", " ca ", "authority"]),
];

async fn issue_page(
    app: &App,
    visitor: &Visitor,
    form: IssueForm,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame("/certificates");
    let choices = async {
        Ok::<_, ApiError>((
            choices::templates(app, &frame).await?,
            choices::cas(app, &frame, Cas::Issuing).await?,
        ))
    };
    let (templates, cas) = match choices.await {
        Ok(both) => both,
        Err(e) => return page::refused(frame, &e),
    };
    let status = error.as_ref().map_or(StatusCode::OK, ApiError::status);
    page::render(
        status,
        &IssuePage {
            head: Head::new(),
            frame,
            form,
            templates,
            cas,
            key_types: KEY_TYPES,
            error: error.map(|e| Refusal::of(&e, ISSUE_FIELDS)),
        },
    )
}

/// GET `/certificates/new`.
pub async fn new(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    issue_page(&app, &visitor, IssueForm::default(), None).await
}

impl IssueForm {
    fn to_rest(&self) -> ApiResult<CertificateCreate> {
        let validity_days = number("validity_days", &self.validity_days)?;
        let csr = blank_is_none(&self.csr).map(str::to_owned);
        let (key_algorithm, key_size, curve) = key_choice(blank_is_none(&self.key_algorithm))?;
        let san = lines(&self.san)
            .map(|s| {
                if s.contains(':') {
                    s.to_owned()
                } else if s.parse::<std::net::IpAddr>().is_ok() {
                    format!("ip:{s}")
                } else {
                    format!("dns:{s}")
                }
            })
            .collect();
        Ok(CertificateCreate {
            subject: SubjectFields {
                common_name: blank_is_none(&self.common_name).map(str::to_owned),
                organization: blank_is_none(&self.organization).map(str::to_owned),
                ..SubjectFields::default()
            },
            ca_id: number("ca_id", &self.ca_id)?,
            template_id: number("template_id", &self.template_id)?,
            validity_days,
            key_algorithm,
            key_size,
            curve,
            san,
            key_usage: None,
            extended_key_usage: None,
            description: None,
            csr,
        })
    }
}

/// POST `/certificates/new`: issues and shows the certificate; on a refusal, the form again
/// with the reason beside the field it names.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<IssueForm>,
) -> Response {
    let issued = async {
        let body = form.to_rest()?;
        rest::issue_certificate(&app, &visitor.principal, body).await
    };
    match issued.await {
        Ok(view) => Redirect::to(&format!("/certificates/{}", view.id)).into_response(),
        Err(e) => issue_page(&app, &visitor, form, Some(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (message, field) in [
            ("common name is required", Some("common_name")),
            ("invalid SAN 'dns:'", Some("san")),
            ("validity_days must be a number", Some("validity_days")),
            ("the template 'Web Server' needs a DNS name", Some("san")),
            ("template 7 not found", Some("template_id")),
            ("something else entirely", None),
        ] {
            let refusal = Refusal::of(&ApiError::invalid(message), ISSUE_FIELDS);
            assert_eq!(refusal.field(), field, "{message}");
        }
    }

    #[test]
    fn a_bulk_form_names_its_ids_and_its_action() {
        let form = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let ok = bulk_request(&form(&[
            ("csrf_token", "t"),
            ("id", "3"),
            ("id", "5"),
            ("action", "revoke"),
            ("reason", "superseded"),
        ]));
        assert!(matches!(
            ok,
            Ok((ref ids, BulkAction::Revoke(RevocationReason::Superseded))) if ids == &[3, 5]
        ));
        for bad in [
            form(&[("action", "renew")]),
            form(&[("id", "3"), ("id", "3"), ("action", "renew")]),
            form(&[("id", "x"), ("action", "renew")]),
            form(&[("id", "3"), ("action", "delete")]),
            form(&[("id", "3"), ("action", "revoke"), ("reason", "boredom")]),
        ] {
            assert!(bulk_request(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_form_becomes_the_rest_request() -> ApiResult<()> {
        let form = IssueForm {
            common_name: "www.example.com".into(),
            san: "www.example.com\n\n 10.0.0.1 \nemail:a@example.com".into(),
            key_algorithm: "RSA 3072".into(),
            template_id: "2".into(),
            ..IssueForm::default()
        };
        let body = form.to_rest()?;
        assert_eq!(
            body.san,
            ["dns:www.example.com", "ip:10.0.0.1", "email:a@example.com"]
        );
        assert_eq!(body.key_size, Some(3072));
        assert_eq!(body.template_id, Some(2));
        assert_eq!(body.ca_id, None);
        let bad = IssueForm {
            ca_id: "x".into(),
            ..IssueForm::default()
        };
        assert!(bad.to_rest().is_err());
        Ok(())
    }
}
