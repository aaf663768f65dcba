//! `/truststore`: the certificates of other CAs that certmint trusts, one decoded, adding one
//! by pasting its PEM, and removing one. Each action calls what the REST handler calls.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::{Form, Refusal, blank_is_none};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::tools::{DecodedCertificate, decoded_certificate};
use crate::api::v2::truststore::{TrustCreate, TrustedView, trust_one};
use crate::error::{ApiError, ApiResult};

/// Rows on a page of the list.
const PER_PAGE: u32 = 50;

/// The page of the list, as the query string carries it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "console/truststore.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    rows: Vec<TrustedView>,
    pager: Pager,
}

/// GET `/truststore`.
pub async fn list(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    let frame = visitor.frame("/truststore");
    let page = query.page.unwrap_or(1).max(1);
    let request = authority::PageRequest {
        page,
        per_page: PER_PAGE,
        after: None,
    };
    match app.authority.trusted_certificates(request).await {
        Ok(result) => page::render(
            StatusCode::OK,
            &ListPage {
                head: Head::new(),
                frame,
                rows: result.items.into_iter().map(TrustedView::from).collect(),
                pager: Pager::new("/truststore", &[], page, PER_PAGE, result.total),
            },
        ),
        Err(e) => page::refused(frame, &e.into()),
    }
}

/// What the form holds, kept to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddForm {
    certificate: String,
    name: String,
    description: String,
    purpose: String,
    notes: String,
}

impl AddForm {
    fn to_rest(&self) -> TrustCreate {
        let given = |text: &str| blank_is_none(text).map(str::to_owned);
        TrustCreate {
            certificate: self.certificate.clone(),
            name: given(&self.name),
            description: given(&self.description),
            purpose: given(&self.purpose),
            notes: given(&self.notes),
        }
    }
}

/// The form's fields, with the words a refusal uses for each; anything else is about the
/// certificate.
const ADD_FIELDS: &[(&str, &[&str])] = &[
    ("purpose", &[" purpose '"]),
    ("notes", &[" notes are"]),
    ("certificate", &[""]),
];

#[derive(Template)]
#[template(path = "console/truststore_new.html")]
struct AddPage {
    head: Head,
    frame: Frame,
    form: AddForm,
    error: Option<Refusal>,
}

impl AddPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|r| r.about(field))
    }

    /// The one-line fields: name, label, value.
    fn text_fields(&self) -> [(&'static str, &'static str, &str); 3] {
        [
            ("name", "Name (the common name when empty)", &self.form.name),
            ("description", "Description", &self.form.description),
            (
                "purpose",
                "Purpose (lower-case letters, digits, _ or -; trust_anchor when empty)",
                &self.form.purpose,
            ),
        ]
    }
}

fn add_page(visitor: &Visitor, form: AddForm, error: Option<&ApiError>) -> Response {
    page::render(
        error.map_or(StatusCode::OK, ApiError::status),
        &AddPage {
            head: Head::new(),
            frame: visitor.frame("/truststore"),
            form,
            error: error.map(|e| Refusal::of(e, ADD_FIELDS)),
        },
    )
}

/// GET `/truststore/new`.
pub async fn new(Extension(visitor): Extension<Visitor>) -> Response {
    add_page(&visitor, AddForm::default(), None)
}

/// POST `/truststore/new`: trusts the certificate and shows it; on a refusal, the form again
/// with the reason beside the field.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<AddForm>,
) -> Response {
    match trust_one(&app, &visitor.principal, form.to_rest()).await {
        Ok(view) => Redirect::to(&format!("/truststore/{}", view.id)).into_response(),
        Err(e) => add_page(&visitor, form, Some(&e)),
    }
}

#[derive(Template)]
#[template(path = "console/trusted.html")]
struct DetailPage {
    head: Head,
    frame: Frame,
    trusted: TrustedView,
    decoded: DecodedCertificate,
    error: Option<String>,
}

/// The page of trusted certificate `id`, with `error` in its removal form.
async fn detail(app: &App, visitor: &Visitor, id: i64, error: Option<ApiError>) -> Response {
    let frame = visitor.frame("/truststore");
    let read = async {
        let row = app.authority.trusted_certificate(id).await?;
        let decoded = decoded_certificate(&row.der)?;
        Ok::<_, ApiError>((TrustedView::from(row), decoded))
    };
    match read.await {
        Ok((trusted, decoded)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &DetailPage {
                head: Head::new(),
                frame,
                trusted,
                decoded,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/truststore/{id}`.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    detail(&app, &visitor, id, None).await
}

/// POST `/truststore/{id}/delete`: stops trusting it, then the list.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let removed: ApiResult<()> = app
        .authority
        .untrust(&visitor.principal, id)
        .await
        .map_err(Into::into);
    match removed {
        Ok(()) => Redirect::to("/truststore").into_response(),
        Err(e) => detail(&app, &visitor, id, Some(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_shown_beside_the_field_it_names() {
        for (message, field) in [
            (
                "purpose 'Web!' must be 1 to 64 lower-case letters, digits, '_' or '-'",
                "purpose",
            ),
            ("notes are longer than 4000 characters", "notes"),
            (
                "'CN=leaf, O=purpose ' is not a CA certificate; the trust store holds CAs",
                "certificate",
            ),
            ("the certificate is trusted already", "certificate"),
        ] {
            let refusal = Refusal::of(&ApiError::invalid(message), ADD_FIELDS);
            assert_eq!(refusal.about(field), Some(message), "{message}");
        }
    }

    #[test]
    fn blank_labels_are_not_given() {
        let form = AddForm {
            certificate: "pem".into(),
            name: " ".into(),
            purpose: "mtls".into(),
            ..AddForm::default()
        };
        let body = form.to_rest();
        assert_eq!(body.name, None);
        assert_eq!(body.purpose.as_deref(), Some("mtls"));
    }
}
