//! `/csrs`: stored certificate signing requests (list with their status, one decoded),
//! submitting one as PEM, signing it into a certificate with a chosen CA, template and
//! validity, and deleting it. Each action calls what the REST handler calls.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::choices::{self, Cas, Choice};
use super::form::{Form, Refusal, blank_is_none, number};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::csrs::{self as rest, CsrSign, CsrView};
use crate::api::v2::tools::{DecodedCsr, decoded_csr};
use crate::error::{ApiError, ApiResult};
use authority::CsrId;

/// Rows on a page of the list.
const PER_PAGE: u32 = 50;

/// The list's filter and page, as the query string carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "console/csrs.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    query: ListQuery,
    rows: Vec<CsrView>,
    pager: Pager,
    error: Option<String>,
}

/// GET `/csrs`.
pub async fn list(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    let frame = visitor.frame("/csrs");
    let page = query.page.unwrap_or(1).max(1);
    let request = authority::PageRequest {
        page,
        per_page: PER_PAGE,
        after: None,
    };
    let (rows, total, error, status) =
        match rest::csrs_page(&app, blank_is_none(&query.status), request).await {
            Ok((rows, total)) => (rows, total, None, StatusCode::OK),
            Err(e) => (Vec::new(), 0, Some(e.message().to_owned()), e.status()),
        };
    let filters = [("status", query.status.as_str())];
    page::render(
        status,
        &ListPage {
            head: Head::new(),
            pager: Pager::new("/csrs", &filters, page, PER_PAGE, total),
            frame,
            query,
            rows,
            error,
        },
    )
}

/// What the submission form holds, kept to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubmitForm {
    name: String,
    pem: String,
}

#[derive(Template)]
#[template(path = "console/csr_new.html")]
struct SubmitPage {
    head: Head,
    frame: Frame,
    form: SubmitForm,
    error: Option<Refusal>,
}

impl SubmitPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|r| r.about(field))
    }
}

/// The submission form's fields, with the words a refusal uses for each; anything else is
/// about the CSR itself.
const SUBMIT_FIELDS: &[(&str, &[&str])] = &[("name", &["name must"]), ("pem", &[""])];

fn submit_page(visitor: &Visitor, form: SubmitForm, error: Option<&ApiError>) -> Response {
    page::render(
        error.map_or(StatusCode::OK, ApiError::status),
        &SubmitPage {
            head: Head::new(),
            frame: visitor.frame("/csrs"),
            form,
            error: error.map(|e| Refusal::of(e, SUBMIT_FIELDS)),
        },
    )
}

/// GET `/csrs/new`.
pub async fn new(Extension(visitor): Extension<Visitor>) -> Response {
    submit_page(&visitor, SubmitForm::default(), None)
}

/// POST `/csrs/new`: keeps the CSR (as `POST /api/v2/csrs/upload` does) and shows it; on a
/// refusal, the form again with the reason beside the field.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<SubmitForm>,
) -> Response {
    let name = blank_is_none(&form.name).map(str::to_owned);
    match app
        .authority
        .upload_csr(&visitor.principal, name, form.pem.as_bytes())
        .await
    {
        Ok(row) => Redirect::to(&format!("/csrs/{}", row.id.0)).into_response(),
        Err(e) => submit_page(&visitor, form, Some(&e.into())),
    }
}

/// What the signing form holds, kept to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignForm {
    ca_id: String,
    template_id: String,
    validity_days: String,
}

impl SignForm {
    fn to_rest(&self) -> ApiResult<CsrSign> {
        Ok(CsrSign {
            ca_id: number("ca_id", &self.ca_id)?,
            validity_days: number("validity_days", &self.validity_days)?,
            template_id: number("template_id", &self.template_id)?,
        })
    }
}

/// The signing form's fields, with the words a refusal uses for each. A template that does
/// not fit the CSR is refused beside the template.
const SIGN_FIELDS: &[(&str, &[&str])] = &[
    ("validity_days", &["validity"]),
    ("template_id", &["template"]),
    ("ca_id", &["ca_id", " ca ", "authority"]),
];

/// Where an action on the detail page went wrong.
pub struct Notice {
    /// The form it belongs to: sign or delete.
    form: &'static str,
    refusal: Refusal,
}

#[derive(Template)]
#[template(path = "console/csr.html")]
struct DetailPage {
    head: Head,
    frame: Frame,
    csr: CsrView,
    decoded: DecodedCsr,
    cas: Vec<Choice>,
    templates: Vec<Choice>,
    form: SignForm,
    notice: Option<Notice>,
}

impl DetailPage {
    /// The refusal of the form `form`, when it is about `field` ("" for none).
    fn error_for(&self, form: &str, field: &str) -> Option<&str> {
        let notice = self.notice.as_ref().filter(|n| n.form == form)?;
        match field {
            "" => notice.refusal.general(),
            field => notice.refusal.about(field),
        }
    }
}

/// The page of CSR `id`, the signing form filled with `form`, and `notice` beside the form
/// that failed.
async fn detail(
    app: &App,
    visitor: &Visitor,
    id: i64,
    form: SignForm,
    notice: Option<Notice>,
) -> Response {
    let frame = visitor.frame("/csrs");
    let read = async {
        let row = app.authority.csr(CsrId(id)).await?;
        let decoded = decoded_csr(&row.der)?;
        let signing =
            row.status == authority::CsrStatus::Pending && frame.can("write:certificates");
        let (cas, templates) = if signing {
            (
                choices::cas(app, &frame, Cas::Issuing).await?,
                choices::templates(app, &frame).await?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok::<_, ApiError>((CsrView::from(row), decoded, cas, templates))
    };
    match read.await {
        Ok((csr, decoded, cas, templates)) => page::render(
            StatusCode::OK,
            &DetailPage {
                head: Head::new(),
                frame,
                csr,
                decoded,
                cas,
                templates,
                form,
                notice,
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/csrs/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    detail(&app, &visitor, id, SignForm::default(), None).await
}

/// Back to the CSR's page with `e` beside `form`, in the status it deserves.
async fn failed(
    app: &App,
    visitor: &Visitor,
    id: i64,
    (form, values): (&'static str, SignForm),
    e: ApiError,
) -> Response {
    let refusal = match form {
        "sign" => Refusal::of(&e, SIGN_FIELDS),
        _ => Refusal::of(&e, &[]),
    };
    let mut response = detail(app, visitor, id, values, Some(Notice { form, refusal })).await;
    if response.status() != StatusCode::NOT_FOUND {
        *response.status_mut() = e.status();
    }
    response
}

/// POST `/csrs/{id}/sign`: signs and shows the certificate made.
pub async fn sign(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<SignForm>,
) -> Response {
    let signed = async {
        let body = form.to_rest()?;
        rest::sign_csr(&app, &visitor.principal, id, body).await
    };
    match signed.await {
        Ok(certificate) => {
            Redirect::to(&format!("/certificates/{}", certificate.id)).into_response()
        }
        Err(e) => failed(&app, &visitor, id, ("sign", form), e).await,
    }
}

/// POST `/csrs/{id}/delete`: deletes, then the list.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app
        .authority
        .delete_csr(&visitor.principal, CsrId(id))
        .await
    {
        Ok(()) => Redirect::to("/csrs").into_response(),
        Err(e) => {
            failed(
                &app,
                &visitor,
                id,
                ("delete", SignForm::default()),
                e.into(),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_refusal_is_shown_beside_the_field_it_names() {
        for (message, field) in [
            (
                "validity_days must be between 1 and 397 (template 'TLS Server')",
                Some("validity_days"),
            ),
            (
                "template 'TLS Server' needs at least one subject alternative name (dns or ip)",
                Some("template_id"),
            ),
            ("template 99 does not exist", Some("template_id")),
            ("CA 'Old root' is inactive", Some("ca_id")),
            ("ca_id must be a whole number in range", Some("ca_id")),
            ("the database is down", None),
        ] {
            let refusal = Refusal::of(&ApiError::invalid(message), SIGN_FIELDS);
            match field {
                Some(f) => assert_eq!(refusal.about(f), Some(message)),
                None => assert_eq!(refusal.general(), Some(message)),
            }
        }
        let bad = Refusal::of(&ApiError::invalid("not a CSR"), SUBMIT_FIELDS);
        assert_eq!(bad.about("pem"), Some("not a CSR"));
        let long = Refusal::of(
            &ApiError::invalid("name must be at most 200 characters"),
            SUBMIT_FIELDS,
        );
        assert!(long.about("name").is_some());
    }

    #[test]
    fn a_form_becomes_the_rest_request() -> ApiResult<()> {
        let form = SignForm {
            ca_id: "3".into(),
            template_id: " ".into(),
            validity_days: "30".into(),
        };
        let body = form.to_rest()?;
        assert_eq!(
            (body.ca_id, body.template_id, body.validity_days),
            (Some(3), None, Some(30))
        );
        Ok(())
    }
}
