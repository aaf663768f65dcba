//! `/cas`: the hierarchy as a tree, creating a root or an intermediate, a CA's page (its
//! certificate decoded, what its certificates point to, its CRLs with "publish now", its OCSP
//! responder, downloads), and importing CA certificates.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::choices::{self, Cas, Choice};
use super::form::{Form, KEY_TYPES, Refusal, blank_is_none, key_choice, lines, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::cas::{self as rest, CaCreate, CaNode, CaView};
use crate::api::v2::crl::{self, CaCrlDetail};
use crate::api::v2::ocsp::{self, CaOcspView};
use crate::api::v2::tools::{DecodedCertificate, decoded_certificate};
use crate::api::v2::views::SubjectFields;
use crate::error::{ApiError, ApiResult};
use authority::CaId;

/// A CA in the tree, with what an operator checks at a glance.
pub struct TreeEntry {
    pub depth: usize,
    pub view: CaView,
    /// Days until it expires (negative once expired).
    pub days_left: i64,
}

#[derive(Template)]
#[template(path = "console/cas.html")]
struct TreePage {
    head: Head,
    frame: Frame,
    entries: Vec<TreeEntry>,
}

/// The tree in display order: each CA followed by the CAs below it.
fn flatten(nodes: Vec<CaNode>, depth: usize, out: &mut Vec<(usize, i64)>) {
    for node in nodes {
        out.push((depth, node.id));
        flatten(node.children, depth + 1, out);
    }
}

/// GET `/cas`.
pub async fn list(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    let frame = visitor.frame("/cas");
    let read = async {
        let all = app.authority.cas().await?;
        let mut order = Vec::new();
        flatten(rest::subtree(&all, None), 0, &mut order);
        let now = app.authority.now();
        let mut entries = Vec::new();
        for (depth, id) in order {
            let Some(ca) = all.iter().find(|c| c.id.0 == id) else {
                continue;
            };
            let view = rest::view(&app, ca.clone()).await?;
            entries.push(TreeEntry {
                depth,
                days_left: (view.valid_until - now).whole_days(),
                view,
            });
        }
        Ok::<_, ApiError>(entries)
    };
    match read.await {
        Ok(entries) => page::render(
            StatusCode::OK,
            &TreePage {
                head: Head::new(),
                frame,
                entries,
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

#[derive(Template)]
#[template(path = "console/ca.html")]
struct DetailPage {
    head: Head,
    frame: Frame,
    ca: CaView,
    decoded: DecodedCertificate,
    crls: CaCrlDetail,
    ocsp: CaOcspView,
    now: OffsetDateTime,
    /// The outcome of "publish now", when it was just asked for.
    published: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DetailQuery {
    published: Option<i64>,
}

async fn detail(
    app: &App,
    visitor: &Visitor,
    id: i64,
    published: Option<String>,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame("/cas");
    let read = async {
        let row = app.authority.ca(CaId(id)).await?;
        let decoded = decoded_certificate(&row.cert.der)?;
        let crls = crl::detail(app, row.clone()).await?;
        let ocsp = ocsp::ca_status(app, row.clone()).await?;
        Ok::<_, ApiError>((rest::view(app, row).await?, decoded, crls, ocsp))
    };
    match read.await {
        Ok((ca, decoded, crls, ocsp)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &DetailPage {
                head: Head::new(),
                frame,
                ca,
                decoded,
                crls,
                ocsp,
                now: app.authority.now(),
                published,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/cas/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let published = q.published.map(|n| format!("CRL {n} published"));
    detail(&app, &visitor, id, published, None).await
}

/// POST `/cas/{id}/crl`: publishes the CA's next CRL now (and its delta), then shows the CA.
pub async fn publish_crl(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app
        .authority
        .regenerate_crl(&visitor.principal, CaId(id))
        .await
    {
        Ok(published) => {
            let to = match published.first() {
                Some(crl) => format!("/cas/{id}?published={}", crl.number),
                None => format!("/cas/{id}"),
            };
            Redirect::to(&to).into_response()
        }
        Err(e) => detail(&app, &visitor, id, None, Some(e.into())).await,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportQuery {
    format: String,
}

/// GET `/cas/{id}/export?format=pem|der|chain`: the CA certificate as a file.
pub async fn export(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let format = blank_is_none(&q.format);
    let file = async {
        let ca = app.authority.ca(CaId(id)).await?;
        let (content_type, body) = rest::ca_file(&app, CaId(id), format).await?;
        Ok::<_, ApiError>((ca.name, content_type, body))
    };
    match file.await {
        Ok((name, content_type, body)) => {
            let ext = match format {
                Some("der") => "cer",
                Some("chain") => "chain.pem",
                _ => "pem",
            };
            crate::envelope::attachment(content_type, &format!("{name}.{ext}"), body)
        }
        Err(e) => page::refused(visitor.frame("/cas"), &e),
    }
}

/// What the creation form holds, kept to fill it again after a refusal. A box left unticked
/// is a field the browser does not send.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    ca_type: String,
    parent_id: String,
    name: String,
    common_name: String,
    organization: String,
    country: String,
    key_type: String,
    hsm_provider_id: String,
    validity_days: String,
    path_length: String,
    permitted: String,
    excluded: String,
    cdp_enabled: Option<String>,
    ocsp_enabled: Option<String>,
    aia_ca_issuers_enabled: Option<String>,
    is_default: Option<String>,
    require_template: Option<String>,
}

impl CreateForm {
    /// A new form: a root, publishing everything.
    fn blank() -> Self {
        let on = Some("1".to_owned());
        Self {
            ca_type: "root".into(),
            cdp_enabled: on.clone(),
            ocsp_enabled: on.clone(),
            aia_ca_issuers_enabled: on,
            ..Self::default()
        }
    }

    fn to_rest(&self) -> ApiResult<CaCreate> {
        let (key_algorithm, key_size, curve) = key_choice(blank_is_none(&self.key_type))?;
        let subtrees = |text: &str| lines(text).map(str::to_owned).collect();
        Ok(CaCreate {
            subject: SubjectFields {
                common_name: blank_is_none(&self.common_name).map(str::to_owned),
                organization: blank_is_none(&self.organization).map(str::to_owned),
                country: blank_is_none(&self.country).map(str::to_owned),
                ..SubjectFields::default()
            },
            name: blank_is_none(&self.name).map(str::to_owned),
            description: None,
            ca_type: Some(self.ca_type.clone()),
            parent_id: number("parent_id", &self.parent_id)?,
            key_algorithm,
            key_size,
            curve,
            validity_days: number("validity_days", &self.validity_days)?,
            path_length: number("path_length", &self.path_length)?,
            is_default: self.is_default.is_some(),
            require_template: Some(self.require_template.is_some()),
            permitted_subtrees: subtrees(&self.permitted),
            excluded_subtrees: subtrees(&self.excluded),
            cdp_enabled: Some(self.cdp_enabled.is_some()),
            ocsp_enabled: Some(self.ocsp_enabled.is_some()),
            aia_ca_issuers_enabled: Some(self.aia_ca_issuers_enabled.is_some()),
            hsm_provider_id: number("hsm_provider_id", &self.hsm_provider_id)?,
            hsm_key_label: None,
            hsm_key_id: None,
        })
    }
}

#[derive(Template)]
#[template(path = "console/ca_new.html")]
struct CreatePage {
    head: Head,
    frame: Frame,
    form: CreateForm,
    parents: Vec<Choice>,
    hsm_providers: Vec<Choice>,
    key_types: [&'static str; 6],
    error: Option<Refusal>,
}

/// The fields of the creation form, with the words a refusal uses for each.
const CREATE_FIELDS: &[(&str, &[&str])] = &[
    ("permitted", &["subtree", "constraint"]),
    ("parent_id", &["parent"]),
    ("hsm_provider_id", &["HSM", "token"]),
    ("common_name", &["common_name", "common name"]),
    ("country", &["country"]),
    ("organization", &["organization"]),
    ("validity_days", &["validity"]),
    ("path_length", &["path_length", "path length"]),
    (
        "key_type",
        &["key type", "key_algorithm", "curve", "key_size"],
    ),
    ("name", &["a ca named", "name"]),
];

impl CreatePage {
    /// The form's text fields: name, label, value and a hint.
    fn text_fields(&self) -> [(&'static str, &'static str, &str, &'static str); 6] {
        let f = &self.form;
        [
            ("common_name", "Common name", &f.common_name, ""),
            ("organization", "Organization", &f.organization, ""),
            ("country", "Country", &f.country, "two letters"),
            (
                "name",
                "Display name",
                &f.name,
                "the common name when empty",
            ),
            (
                "validity_days",
                "Validity in days",
                &f.validity_days,
                "3650 for a root, 1825 for an intermediate when empty",
            ),
            (
                "path_length",
                "Path length",
                &f.path_length,
                "CAs allowed below it; unlimited when empty",
            ),
        ]
    }

    /// The refusal, when it names `field` (`None`: when it names no field of the form).
    fn error_for(&self, field: Option<&str>) -> Option<&str> {
        let refusal = self.error.as_ref()?;
        match field {
            Some(field) => refusal.about(field),
            None => refusal.general(),
        }
    }
}

async fn create_page(
    app: &App,
    visitor: &Visitor,
    form: CreateForm,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame("/cas");
    let parents = match choices::cas(app, &frame, Cas::Issuing).await {
        Ok(parents) => parents,
        Err(e) => return page::refused(frame, &e),
    };
    let hsm_providers = match choices::hsm_providers(app, &frame, &visitor.principal).await {
        Ok(providers) => providers,
        Err(e) => return page::refused(frame, &e),
    };
    page::render(
        error.as_ref().map_or(StatusCode::OK, ApiError::status),
        &CreatePage {
            head: Head::new(),
            frame,
            form,
            parents,
            hsm_providers,
            key_types: KEY_TYPES,
            error: error.map(|e| Refusal::of(&e, CREATE_FIELDS)),
        },
    )
}

/// GET `/cas/new`.
pub async fn new(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    create_page(&app, &visitor, CreateForm::blank(), None).await
}

/// POST `/cas/new`: creates the CA and shows it; on a refusal, the form again with the
/// reason beside the field it names.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CreateForm>,
) -> Response {
    let created = async {
        let body = form.to_rest()?;
        rest::create_ca(&app, &visitor.principal, body).await
    };
    match created.await {
        Ok(ca) => Redirect::to(&format!("/cas/{}", ca.id)).into_response(),
        Err(e) => create_page(&app, &visitor, form, Some(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_lists_each_ca_before_those_below_it() {
        let node = |id, children| CaNode {
            id,
            name: String::new(),
            ca_type: String::new(),
            parent_id: None,
            children,
        };
        let mut order = Vec::new();
        flatten(
            vec![
                node(1, vec![node(2, vec![node(3, vec![])]), node(4, vec![])]),
                node(5, vec![]),
            ],
            0,
            &mut order,
        );
        assert_eq!(order, [(0, 1), (1, 2), (2, 3), (1, 4), (0, 5)]);
    }

    #[test]
    fn a_form_becomes_the_rest_request() -> ApiResult<()> {
        let form = CreateForm {
            ca_type: "intermediate".into(),
            parent_id: "3".into(),
            common_name: "Lab Issuing".into(),
            key_type: "RSA 3072".into(),
            permitted: "dns:lab.example\n\n ip:10.0.0.0/8 ".into(),
            aia_ca_issuers_enabled: None,
            ..CreateForm::blank()
        };
        let body = form.to_rest()?;
        assert_eq!(body.parent_id, Some(3));
        assert_eq!(body.key_size, Some(3072));
        assert_eq!(
            body.permitted_subtrees,
            ["dns:lab.example", "ip:10.0.0.0/8"]
        );
        assert_eq!(
            (
                body.cdp_enabled,
                body.ocsp_enabled,
                body.aia_ca_issuers_enabled
            ),
            (Some(true), Some(true), Some(false))
        );
        Ok(())
    }

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (message, field) in [
            ("an intermediate CA needs a parent_id", Some("parent_id")),
            ("a CA needs a common_name", Some("common_name")),
            (
                "validity_days must be between 1 and 9125",
                Some("validity_days"),
            ),
            ("a CA named 'Lab' exists", Some("name")),
            ("invalid subtree 'dns:'", Some("permitted")),
            ("nothing to say", None),
        ] {
            let refusal = Refusal::of(&ApiError::invalid(message), CREATE_FIELDS);
            assert_eq!(refusal.field(), field, "{message}");
        }
    }
}
