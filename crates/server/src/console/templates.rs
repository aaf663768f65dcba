//! `/templates`: certificate templates, each with its rules; creating, changing and deleting
//! the ones that are not built in. The form becomes the document the REST API takes, read by
//! the same `TemplateSpec` (so its defaults apply), and goes to the same authority calls,
//! which refuse built-in templates.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::form::{Form, Refusal, blank_is_none, lines, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::templates::TemplateView;
use crate::error::{ApiError, ApiResult};
use authority::TemplateId;
use authority::TemplateSpec;
use authority::pki::{ExtendedKeyUsage, KeyType, KeyUsage, SubjectAltName};

/// The key a template gives certificates that ask for none, in words.
fn default_key(spec: &TemplateSpec) -> String {
    match spec.named_key() {
        Ok(Some(key)) => key.label(),
        _ => match spec.allowed_key_types.first() {
            Some(first) => first.clone(),
            None => "EC P-256".to_owned(),
        },
    }
}

/// A template as the list and the detail page show it.
pub struct Row {
    view: TemplateView,
    default_key: String,
}

impl Row {
    fn new(view: TemplateView) -> Self {
        Self {
            default_key: default_key(&view.spec),
            view,
        }
    }

    /// The validity, and its ceiling when it has a higher one.
    fn validity(&self) -> String {
        let spec = &self.view.spec;
        match spec.max_validity_days {
            Some(max) if max != spec.validity_days => {
                format!("{} days (up to {max})", spec.validity_days)
            }
            _ => format!("{} days", spec.validity_days),
        }
    }
}

#[derive(Template)]
#[template(path = "console/templates.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    rows: Vec<Row>,
}

/// GET `/templates`.
pub async fn list(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    let frame = visitor.frame("/templates");
    match app.authority.templates().await {
        Ok(all) => page::render(
            StatusCode::OK,
            &ListPage {
                head: Head::new(),
                frame,
                rows: all
                    .into_iter()
                    .map(|t| Row::new(TemplateView::from(t)))
                    .collect(),
            },
        ),
        Err(e) => page::refused(frame, &e.into()),
    }
}

#[derive(Template)]
#[template(path = "console/template.html")]
struct DetailPage {
    head: Head,
    frame: Frame,
    template: Row,
    error: Option<String>,
}

/// The detail page of template `id`, with `error` at its top.
async fn detail(app: &App, visitor: &Visitor, id: i64, error: Option<ApiError>) -> Response {
    let frame = visitor.frame("/templates");
    match app.authority.template(TemplateId(id)).await {
        Ok(t) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &DetailPage {
                head: Head::new(),
                frame,
                template: Row::new(TemplateView::from(t)),
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e.into()),
    }
}

/// GET `/templates/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    detail(&app, &visitor, id, None).await
}

/// POST `/templates/{id}/delete`: deletes, then the list; a refusal (a built-in template)
/// comes back on the template's page.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app
        .authority
        .delete_template(&visitor.principal, TemplateId(id))
        .await
    {
        Ok(()) => Redirect::to("/templates").into_response(),
        Err(e) => detail(&app, &visitor, id, Some(e.into())).await,
    }
}

/// What the template form holds, kept to fill it again after a refusal. Checkbox groups send
/// their field once per box ticked, which is why the form is read as pairs.
#[derive(Debug, Default)]
pub struct TemplateForm {
    name: String,
    description: String,
    validity_days: String,
    max_validity_days: String,
    default_key: String,
    allowed_key_types: Vec<String>,
    key_usage: Vec<String>,
    extended_key_usage: Vec<String>,
    other_extended_key_usage: String,
    ca: bool,
    path_length: String,
    san_types: Vec<String>,
    require_san: bool,
    allowed_domains: String,
    ocsp_no_check: bool,
}

impl TemplateForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "name" => form.name = value,
                "description" => form.description = value,
                "validity_days" => form.validity_days = value,
                "max_validity_days" => form.max_validity_days = value,
                "default_key" => form.default_key = value,
                "allowed_key_types" => form.allowed_key_types.push(value),
                "key_usage" => form.key_usage.push(value),
                "extended_key_usage" => form.extended_key_usage.push(value),
                "other_extended_key_usage" => form.other_extended_key_usage = value,
                "ca" => form.ca = true,
                "path_length" => form.path_length = value,
                "san_types" => form.san_types.push(value),
                "require_san" => form.require_san = true,
                "allowed_domains" => form.allowed_domains = value,
                "ocsp_no_check" => form.ocsp_no_check = true,
                _ => {}
            }
        }
        form
    }

    /// The form of an existing template, its values written as the checkboxes name them.
    fn from_spec(spec: &TemplateSpec) -> Self {
        let (named, other): (Vec<_>, Vec<_>) = spec
            .extended_key_usage
            .iter()
            .map(|e| match ExtendedKeyUsage::parse(e) {
                Ok(ExtendedKeyUsage::Other(oid)) => (false, oid.to_string()),
                Ok(known) => (true, known.as_string()),
                Err(_) => (false, e.clone()),
            })
            .partition(|(named, _)| *named);
        Self {
            name: spec.name.clone(),
            description: spec.description.clone().unwrap_or_default(),
            validity_days: spec.validity_days.to_string(),
            max_validity_days: spec
                .max_validity_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            default_key: spec
                .named_key()
                .ok()
                .flatten()
                .map(KeyType::label)
                .unwrap_or_default(),
            allowed_key_types: spec
                .allowed_key_types
                .iter()
                .map(|l| KeyType::from_label(l).map_or_else(|_| l.clone(), KeyType::label))
                .collect(),
            key_usage: spec
                .key_usage
                .iter()
                .map(|u| KeyUsage::parse(u).map_or_else(|_| u.clone(), |u| u.as_str().to_owned()))
                .collect(),
            extended_key_usage: named.into_iter().map(|(_, e)| e).collect(),
            other_extended_key_usage: other
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("\n"),
            ca: spec.basic_constraints.ca,
            path_length: spec
                .basic_constraints
                .path_length
                .map(|p| p.to_string())
                .unwrap_or_default(),
            san_types: spec
                .san_types
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            require_san: spec.require_san,
            allowed_domains: spec.allowed_domains.join("\n"),
            ocsp_no_check: spec.ocsp_no_check,
        }
    }

    /// The template document the REST API would receive; what the form leaves blank takes
    /// the API's default.
    fn to_spec(&self) -> ApiResult<TemplateSpec> {
        let mut doc = Map::new();
        doc.insert("name".into(), json!(self.name.trim()));
        if let Some(description) = blank_is_none(&self.description) {
            doc.insert("description".into(), json!(description));
        }
        if let Some(days) = number::<i64>("validity_days", &self.validity_days)? {
            doc.insert("validity_days".into(), json!(days));
        }
        if let Some(days) = number::<i64>("max_validity_days", &self.max_validity_days)? {
            doc.insert("max_validity_days".into(), json!(days));
        }
        if let Some(label) = blank_is_none(&self.default_key) {
            let key = KeyType::from_label(label).map_err(authority::Error::from)?;
            doc.insert("key_algorithm".into(), json!(key.algorithm()));
            match key {
                KeyType::Rsa { bits } => doc.insert("key_size".into(), json!(bits)),
                _ => doc.insert("curve".into(), json!(key.curve())),
            };
        }
        let extended_key_usage: Vec<&str> = self
            .extended_key_usage
            .iter()
            .map(String::as_str)
            .chain(lines(&self.other_extended_key_usage))
            .collect();
        let path_length = number::<u8>("path_length", &self.path_length)?;
        for (field, value) in [
            ("allowed_key_types", json!(self.allowed_key_types)),
            ("key_usage", json!(self.key_usage)),
            ("extended_key_usage", json!(extended_key_usage)),
            (
                "basic_constraints",
                json!({"ca": self.ca, "path_length": path_length}),
            ),
            ("san_types", json!(self.san_types)),
            ("require_san", json!(self.require_san)),
            (
                "allowed_domains",
                json!(lines(&self.allowed_domains).collect::<Vec<_>>()),
            ),
            ("ocsp_no_check", json!(self.ocsp_no_check)),
        ] {
            doc.insert(field.into(), value);
        }
        serde_json::from_value(Value::Object(doc))
            .map_err(|e| ApiError::invalid(format!("invalid template: {e}")))
    }
}

/// The fields of the template form, with the words a refusal uses for each. A refusal names
/// its template first (`template 'x': …`); that part is left out before looking.
const TEMPLATE_FIELDS: &[(&str, &[&str])] = &[
    ("name", &["template name", "a template named"]),
    (
        "max_validity_days",
        &["max_validity_days is below", "max_validity_days must be a"],
    ),
    ("validity_days", &["validity"]),
    ("allowed_key_types", &["allowed_key_types"]),
    (
        "default_key",
        &["key_algorithm", "key_size", "curve", "key type", "key size"],
    ),
    ("extended_key_usage", &["extended key usage"]),
    ("key_usage", &["key usage", "keycertsign"]),
    ("path_length", &["path_length"]),
    ("san_types", &["san type"]),
    ("allowed_domains", &["dns name", "domain"]),
];

/// `e`, beside the field of the template form it is about.
fn refusal(e: &ApiError, name: &str) -> Refusal {
    let prefix = format!("template '{}': ", name.trim());
    let part = e.message().strip_prefix(&prefix).unwrap_or(e.message());
    Refusal::within(e, part, TEMPLATE_FIELDS)
}

#[derive(Template)]
#[template(path = "console/template_form.html")]
struct FormPage {
    head: Head,
    frame: Frame,
    /// The template being changed; none for a new one.
    editing: Option<(i64, String)>,
    form: TemplateForm,
    error: Option<Refusal>,
}

impl FormPage {
    /// Where the form posts.
    fn action(&self) -> String {
        match &self.editing {
            Some((id, _)) => format!("/templates/{id}/edit"),
            None => "/templates/new".to_owned(),
        }
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|r| r.about(field))
    }

    fn general_error(&self) -> Option<&str> {
        self.error.as_ref().and_then(Refusal::general)
    }

    /// The text fields: name, label, value, input mode.
    fn text_fields(&self) -> [(&'static str, &'static str, &str, &'static str); 4] {
        [
            ("name", "Name", &self.form.name, "text"),
            ("description", "Description", &self.form.description, "text"),
            (
                "validity_days",
                "Validity in days (when a request gives none)",
                &self.form.validity_days,
                "numeric",
            ),
            (
                "max_validity_days",
                "Longest validity a request may ask for (the validity when empty)",
                &self.form.max_validity_days,
                "numeric",
            ),
        ]
    }

    /// Key types, by label.
    fn key_types(&self) -> Vec<String> {
        KeyType::ALL.iter().map(|k| k.label()).collect()
    }

    /// The checkbox groups: field, legend, values, those ticked.
    fn groups(&self) -> Vec<(&'static str, &'static str, Vec<String>, &[String])> {
        vec![
            (
                "allowed_key_types",
                "Key types allowed (any when none is ticked)",
                self.key_types(),
                &self.form.allowed_key_types,
            ),
            (
                "key_usage",
                "Key usages",
                KeyUsage::ALL
                    .iter()
                    .map(|u| u.as_str().to_owned())
                    .collect(),
                &self.form.key_usage,
            ),
            (
                "extended_key_usage",
                "Extended key usages",
                ExtendedKeyUsage::NAMED
                    .iter()
                    .map(ExtendedKeyUsage::as_string)
                    .collect(),
                &self.form.extended_key_usage,
            ),
            (
                "san_types",
                "Subject alternative name kinds allowed (any when none is ticked)",
                SubjectAltName::KINDS
                    .iter()
                    .map(|k| (*k).to_owned())
                    .collect(),
                &self.form.san_types,
            ),
        ]
    }

    /// The lone checkboxes: field, label, ticked.
    fn switches(&self) -> [(&'static str, &'static str, bool); 3] {
        [
            (
                "require_san",
                "A request must carry at least one subject alternative name",
                self.form.require_san,
            ),
            (
                "ca",
                "Certificates are CAs (basic constraints)",
                self.form.ca,
            ),
            (
                "ocsp_no_check",
                "Add id-pkix-ocsp-nocheck (delegated OCSP responders)",
                self.form.ocsp_no_check,
            ),
        ]
    }
}

fn form_page(
    visitor: &Visitor,
    editing: Option<(i64, String)>,
    form: TemplateForm,
    error: Option<&ApiError>,
) -> Response {
    page::render(
        error.map_or(StatusCode::OK, ApiError::status),
        &FormPage {
            head: Head::new(),
            frame: visitor.frame("/templates"),
            error: error.map(|e| refusal(e, &form.name)),
            editing,
            form,
        },
    )
}

/// GET `/templates/new`, with the API's defaults filled in.
pub async fn new(Extension(visitor): Extension<Visitor>) -> Response {
    let form = TemplateForm {
        validity_days: "365".to_owned(),
        ..TemplateForm::default()
    };
    form_page(&visitor, None, form, None)
}

/// POST `/templates/new`: creates and shows the template; on a refusal, the form again with
/// the reason beside the field it names.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = TemplateForm::from_pairs(pairs);
    let created = async {
        let spec = form.to_spec()?;
        Ok::<_, ApiError>(
            app.authority
                .create_template(&visitor.principal, spec)
                .await?,
        )
    };
    match created.await {
        Ok(t) => Redirect::to(&format!("/templates/{}", t.id.0)).into_response(),
        Err(e) => form_page(&visitor, None, form, Some(&e)),
    }
}

/// GET `/templates/{id}/edit`; a built-in template has no form, only its page.
pub async fn edit(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app.authority.template(TemplateId(id)).await {
        Ok(t) if t.builtin => Redirect::to(&format!("/templates/{id}")).into_response(),
        Ok(t) => form_page(
            &visitor,
            Some((id, t.spec.name.clone())),
            TemplateForm::from_spec(&t.spec),
            None,
        ),
        Err(e) => page::refused(visitor.frame("/templates"), &e.into()),
    }
}

/// POST `/templates/{id}/edit`: the form replaces the template's rules, then its page; on a
/// refusal (a broken rule, a built-in template), the form again with the reason.
pub async fn update(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = TemplateForm::from_pairs(pairs);
    let current = match app.authority.template(TemplateId(id)).await {
        Ok(t) => t.spec,
        Err(e) => return page::refused(visitor.frame("/templates"), &e.into()),
    };
    let updated = async {
        // The form has no auto-renewal fields: the template keeps its policy.
        let spec = form.to_spec()?.with_renewal_of(&current);
        Ok::<_, ApiError>(
            app.authority
                .update_template(&visitor.principal, TemplateId(id), spec)
                .await?,
        )
    };
    match updated.await {
        Ok(_) => Redirect::to(&format!("/templates/{id}")).into_response(),
        Err(e) => form_page(&visitor, Some((id, current.name)), form, Some(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authority::builtin_templates;

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (message, field) in [
            (
                "a template name must have 1 to 100 characters",
                Some("name"),
            ),
            ("a template named 'Web' exists", Some("name")),
            (
                "template 'validity key usage': max_validity_days is below validity_days",
                Some("max_validity_days"),
            ),
            (
                "template 'x': validity_days and max_validity_days must be between 1 and 3650",
                Some("validity_days"),
            ),
            (
                "template 'x': unknown extended key usage 'foo'; expected one of serverAuth",
                Some("extended_key_usage"),
            ),
            (
                "template 'x': a CA template needs the keyCertSign key usage",
                Some("key_usage"),
            ),
            (
                "template 'x': path_length is for CA templates only",
                Some("path_length"),
            ),
            (
                "template 'x': the default key RSA 2048 is not among allowed_key_types",
                Some("allowed_key_types"),
            ),
            (
                "template 'x': DNS name 'a..b' is not valid",
                Some("allowed_domains"),
            ),
            ("template 'domain name': nothing the form has", None),
            (
                "'TLS Server' is a built-in template and cannot be changed or deleted",
                None,
            ),
        ] {
            let name = message
                .split('\'')
                .nth(1)
                .filter(|_| message.starts_with("template '"))
                .unwrap_or("");
            let shown = refusal(&ApiError::invalid(message), name);
            match field {
                Some(f) => assert_eq!(shown.about(f), Some(message)),
                None => assert_eq!(shown.general(), Some(message)),
            }
        }
    }

    #[test]
    fn every_builtin_template_survives_the_form() -> ApiResult<()> {
        for spec in builtin_templates() {
            let form = TemplateForm::from_spec(&spec);
            assert_eq!(form.to_spec()?, spec, "{}", spec.name);
        }
        Ok(())
    }

    #[test]
    fn a_form_becomes_the_template_document() -> ApiResult<()> {
        let pairs = [
            ("csrf_token", "t"),
            ("name", " Internal web "),
            ("validity_days", "90"),
            ("default_key", "RSA 3072"),
            ("allowed_key_types", "RSA 3072"),
            ("allowed_key_types", "EC P-256"),
            ("key_usage", "digitalSignature"),
            ("extended_key_usage", "serverAuth"),
            ("other_extended_key_usage", "1.3.6.1.4.1.99999.1\n\n"),
            ("san_types", "dns"),
            ("require_san", "1"),
            ("allowed_domains", "example.com\n internal.test \n"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let spec = TemplateForm::from_pairs(pairs.to_vec()).to_spec()?;
        assert_eq!(spec.name, "Internal web");
        assert_eq!(spec.validity_days, 90);
        assert_eq!(spec.max_validity_days, None);
        assert_eq!(spec.key_algorithm.as_deref(), Some("RSA"));
        assert_eq!(spec.key_size, Some(3072));
        assert_eq!(spec.allowed_key_types, ["RSA 3072", "EC P-256"]);
        assert_eq!(
            spec.extended_key_usage,
            ["serverAuth", "1.3.6.1.4.1.99999.1"]
        );
        assert_eq!(spec.allowed_domains, ["example.com", "internal.test"]);
        assert!(spec.require_san && !spec.basic_constraints.ca);
        // Blank, the validity is the API's default.
        let blank = TemplateForm {
            name: "n".into(),
            ..TemplateForm::default()
        };
        assert_eq!(blank.to_spec()?.validity_days, 365);
        let bad = TemplateForm {
            name: "n".into(),
            path_length: "300".into(),
            ..TemplateForm::default()
        };
        assert!(bad.to_spec().is_err());
        Ok(())
    }
}
