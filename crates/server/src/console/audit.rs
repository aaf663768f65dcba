//! `/audit`: the audit log with the REST list's filters and pages, the chain's verification
//! with the records where it breaks, and the CSV export. Each handler translates its form into
//! the query the REST handler reads and calls the same function.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::form::{Form, blank_is_none, number};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::audit::{
    self as rest, AuditQuery, AuditView, ExportFormat, ExportQuery, VerifyData, VerifyQuery,
};
use crate::envelope::Total;
use crate::error::{ApiError, ApiResult};

/// Rows on a page of the list.
const PER_PAGE: u32 = 50;

/// The list's filters, as the query string (and the export form) carries them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    username: String,
    action: String,
    success: String,
    date_from: String,
    date_to: String,
    search: String,
    page: Option<u32>,
}

impl ListQuery {
    /// The filters that are set, by name.
    fn filters(&self) -> Vec<(&'static str, &str)> {
        [
            ("username", self.username.as_str()),
            ("action", self.action.as_str()),
            ("success", self.success.as_str()),
            ("date_from", self.date_from.as_str()),
            ("date_to", self.date_to.as_str()),
            ("search", self.search.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    fn to_rest(&self) -> ApiResult<AuditQuery> {
        let owned = |text: &str| blank_is_none(text).map(str::to_owned);
        let success = match blank_is_none(&self.success) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "success must be true or false, not '{other}'"
                )));
            }
        };
        Ok(AuditQuery {
            username: owned(&self.username),
            action: owned(&self.action),
            success,
            date_from: owned(&self.date_from),
            date_to: owned(&self.date_to),
            search: owned(&self.search),
        })
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    query: ListQuery,
    actions: Vec<String>,
    rows: Vec<AuditView>,
    pager: Pager,
    error: Option<String>,
}

/// The list page for `query`; `failure` (a refused export) is shown in place of the rows.
async fn list_page(
    app: &App,
    visitor: &Visitor,
    query: ListQuery,
    failure: Option<ApiError>,
) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    let read = async {
        if let Some(e) = failure {
            return Err(e);
        }
        let request = authority::PageRequest {
            page,
            per_page: PER_PAGE,
            after: None,
        };
        let (records, total) = rest::logs_page(app, query.to_rest()?, request).await?;
        Ok::<_, ApiError>((records, total))
    };
    let (records, total, error, status) = match read.await {
        Ok((records, total)) => (records, total, None, StatusCode::OK),
        Err(e) => (
            Vec::new(),
            Total::from(0),
            Some(e.message().to_owned()),
            e.status(),
        ),
    };
    // The action filter is a convenience: without it the page still works.
    let actions = app.authority.audit_actions().await.unwrap_or_default();
    page::render(
        status,
        &ListPage {
            head: Head::new(),
            frame: visitor.frame("/audit"),
            pager: Pager::new("/audit", &query.filters(), page, PER_PAGE, total),
            query,
            actions,
            rows: records,
            error,
        },
    )
}

/// GET `/audit`.
pub async fn list(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    list_page(&app, &visitor, query, None).await
}

/// POST `/audit/export`: the records the filters select, as the CSV file the REST export
/// gives. A POST with the form's token, because an export writes its own audit record.
pub async fn export(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(query): Form<ListQuery>,
) -> Response {
    let file = async {
        let e = ExportQuery {
            format: ExportFormat::Csv,
            ..ExportQuery::default()
        };
        rest::export_file(&app, &visitor.principal, e, query.to_rest()?).await
    };
    match file.await {
        Ok(file) => file,
        Err(e) => list_page(&app, &visitor, query, Some(e)).await,
    }
}

/// The range the verification form asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerifyForm {
    start_id: String,
    end_id: String,
    /// The "every record" box: set when ticked.
    full: String,
}

impl VerifyForm {
    fn to_rest(&self) -> ApiResult<VerifyQuery> {
        Ok(VerifyQuery {
            start_id: number("start_id", &self.start_id)?,
            end_id: number("end_id", &self.end_id)?,
            full: Some(!self.full.is_empty()),
        })
    }
}

#[derive(Template)]
#[template(path = "console/audit_verify.html")]
struct VerifyPage {
    head: Head,
    frame: Frame,
    form: VerifyForm,
    report: Option<VerifyData>,
    error: Option<String>,
}

/// GET `/audit/verify`: recomputes the chain over the range asked (by default what is new since
/// the newest trusted checkpoint, every record with the box ticked), as `GET
/// /api/v2/audit/verify` does, and names each record where it breaks.
pub async fn verify(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(form): Query<VerifyForm>,
) -> Response {
    let report = async { rest::verification(&app, form.to_rest()?).await };
    let (report, error, status) = match report.await {
        Ok(report) => (Some(report), None, StatusCode::OK),
        Err(e) => (None, Some(e.message().to_owned()), e.status()),
    };
    page::render(
        status,
        &VerifyPage {
            head: Head::new(),
            frame: visitor.frame("/audit"),
            form,
            report,
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_given_are_kept() {
        let q = ListQuery {
            action: "user_created".into(),
            date_from: "2026-01-01".into(),
            ..ListQuery::default()
        };
        assert_eq!(
            q.filters(),
            [("action", "user_created"), ("date_from", "2026-01-01")]
        );
        assert!(ListQuery::default().filters().is_empty());
    }

    #[test]
    fn filters_become_the_rest_query() -> ApiResult<()> {
        let q = ListQuery {
            username: " vera ".into(),
            success: "true".into(),
            date_to: "2026-02-01".into(),
            ..ListQuery::default()
        };
        let rest = q.to_rest()?;
        assert_eq!(rest.username.as_deref(), Some("vera"));
        assert_eq!(rest.success, Some(true));
        assert_eq!(rest.date_to.as_deref(), Some("2026-02-01"));
        assert_eq!(rest.action, None);
        let bad = ListQuery {
            success: "maybe".into(),
            ..ListQuery::default()
        };
        assert!(bad.to_rest().is_err());
        let range = VerifyForm {
            start_id: "2".into(),
            end_id: String::new(),
            full: String::new(),
        };
        let range = range.to_rest()?;
        assert_eq!(
            (range.start_id, range.end_id, range.full),
            (Some(2), None, Some(false))
        );
        let every = VerifyForm {
            full: "1".into(),
            ..VerifyForm::default()
        };
        assert_eq!(every.to_rest()?.full, Some(true));
        Ok(())
    }
}
