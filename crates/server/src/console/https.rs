//! `/system/https`: the certificate this node serves, a new one from certmint's own CA, or an
//! uploaded certificate and key. Each runs the REST route's own function
//! (`api/v2/https.rs`): checked and audited the same, served from the next connection on.
//! A pasted key is never shown again.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::form::{Form, blank_is_none, lines, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::https::{self, HttpsCertificate};
use crate::error::{ApiError, ApiResult};
use authority::ListenerRequest;

/// The page.
const PAGE: &str = "/system/https";

#[derive(Template)]
#[template(path = "console/https.html")]
struct HttpsPage {
    head: Head,
    frame: Frame,
    served: HttpsCertificate,
    /// What was just done to it.
    done: Option<&'static str>,
    error: Option<String>,
}

/// The page: the certificate served, with `done` or the refusal of what was asked.
async fn https_page(
    app: &App,
    visitor: &Visitor,
    outcome: ApiResult<Option<&'static str>>,
) -> Response {
    let frame = visitor.frame(PAGE);
    let (done, error) = match outcome {
        Ok(done) => (done, None),
        Err(e) => (None, Some(e)),
    };
    match https::served(app, &visitor.principal).await {
        Ok(served) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &HttpsPage {
                head: Head::new(),
                frame,
                served,
                done,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/system/https`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    https_page(&app, &visitor, Ok(None)).await
}

/// The form of a new certificate; blank fields take certmint's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegenerateForm {
    common_name: String,
    /// One name or address a line.
    sans: String,
    validity_days: String,
}

impl RegenerateForm {
    fn to_request(&self) -> ApiResult<ListenerRequest> {
        let sans: Vec<String> = lines(&self.sans).map(str::to_owned).collect();
        Ok(ListenerRequest {
            common_name: blank_is_none(&self.common_name).map(str::to_owned),
            sans: (!sans.is_empty()).then_some(sans),
            validity_days: number("validity_days", &self.validity_days)?,
        })
    }
}

/// POST `/system/https/regenerate`.
pub async fn regenerate(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<RegenerateForm>,
) -> Response {
    let done = async {
        https::regenerated(&app, &visitor.principal, form.to_request()?).await?;
        Ok(Some("A new certificate from certmint's CA is served now."))
    };
    https_page(&app, &visitor, done.await).await
}

/// The form of an uploaded certificate.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ApplyForm {
    certificate: String,
    private_key: String,
}

/// POST `/system/https/apply`.
pub async fn apply(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ApplyForm>,
) -> Response {
    let done = async {
        https::applied(
            &app,
            &visitor.principal,
            &form.certificate,
            &form.private_key,
        )
        .await?;
        Ok(Some("The uploaded certificate is served now."))
    };
    https_page(&app, &visitor, done.await).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_fields_take_the_defaults() -> ApiResult<()> {
        let blank = RegenerateForm::default().to_request()?;
        assert_eq!(
            (blank.common_name, blank.sans, blank.validity_days),
            (None, None, None)
        );
        let given = RegenerateForm {
            common_name: " ca.example ".into(),
            sans: "ca.example\n\n 10.0.0.1 \n".into(),
            validity_days: "90".into(),
        }
        .to_request()?;
        assert_eq!(given.common_name.as_deref(), Some("ca.example"));
        assert_eq!(
            given.sans,
            Some(vec!["ca.example".to_owned(), "10.0.0.1".to_owned()])
        );
        assert_eq!(given.validity_days, Some(90));
        Ok(())
    }
}
