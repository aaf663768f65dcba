//! The success envelope `{"data", "message", "meta": {"page", "per_page", "total"}}` and the
//! pagination parameters every list takes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default page size.
pub const DEFAULT_PER_PAGE: u32 = 50;
/// Largest page size.
pub const MAX_PER_PAGE: u32 = 100;
/// The header that carries a list's `meta.total`.
pub const TOTAL_COUNT: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-total-count");
/// The header that says a list's total is an estimate (`meta.total_estimated`).
pub const TOTAL_ESTIMATED: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-total-count-estimated");

/// How many items a whole list holds: counted, or estimated where counting would cost too much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub n: i64,
    pub estimated: bool,
}

impl From<i64> for Total {
    fn from(n: i64) -> Self {
        Self {
            n,
            estimated: false,
        }
    }
}

/// A successful response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The payload.
    pub data: T,
    /// A note for a person, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Pagination, on lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// Where a page sits in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Meta {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// Items in the whole list.
    pub total: i64,
    /// Present, and true, when `total` is an estimate: the certificate list estimates past
    /// 20,000 matches.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub total_estimated: bool,
    /// On a list in id order, while items may follow this page: the `cursor` of the next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `?page=&per_page=` (defaults 1 and 50; a `per_page` over 100 gets pages of 100, as the
/// answer's `meta.per_page` says), or `?cursor=&per_page=` on the lists in id order.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// 1-based page number.
    pub page: u32,
    /// Items per page, 1 or more; more than 100 is taken as 100.
    pub per_page: u32,
    /// The page after another, as its `meta.next_cursor` gave it (lists in id order: the
    /// certificates, the audit log, users, SCEP requests; others answer 400): a deep page
    /// costs what the first does, where `page` skips every item before it. Not with `page`.
    pub cursor: Option<String>,
}

impl Default for Pagination {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            cursor: None,
        }
    }
}

impl Pagination {
    /// The request for the store of a list paged by number only, after checking the bounds.
    ///
    /// # Errors
    /// 400 when `page` or `per_page` is 0, or for a cursor.
    pub fn request(&self) -> Result<authority::PageRequest, crate::error::ApiError> {
        if self.cursor.is_some() {
            return Err(crate::error::ApiError::bad_request(
                "this list is paged by number only: it takes no cursor",
            ));
        }
        self.keyset_request()
    }

    /// The request for the store of a list in id order, which also takes a cursor, after
    /// checking the bounds.
    ///
    /// # Errors
    /// 400 when `page` or `per_page` is 0, for a cursor this server did not give, or for a
    /// cursor with a page number.
    pub fn keyset_request(&self) -> Result<authority::PageRequest, crate::error::ApiError> {
        if self.page == 0 {
            return Err(crate::error::ApiError::bad_request(
                "page must be 1 or more",
            ));
        }
        if self.per_page == 0 {
            return Err(crate::error::ApiError::bad_request(
                "per_page must be 1 or more",
            ));
        }
        let after = match self.cursor.as_deref() {
            None => None,
            Some(_) if self.page != 1 => {
                return Err(crate::error::ApiError::bad_request(
                    "cursor and page do not go together: a cursor names its page",
                ));
            }
            Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(
                || {
                    crate::error::ApiError::bad_request(
                        "cursor is not one this server gave: pass meta.next_cursor as it is",
                    )
                },
            )?),
        };
        Ok(authority::PageRequest {
            page: self.page,
            per_page: self.per_page.min(MAX_PER_PAGE),
            after,
        })
    }
}

/// 200 with `data`.
pub fn ok<T: Serialize>(data: T) -> Response {
    Json(Envelope {
        data,
        message: None,
        meta: None,
    })
    .into_response()
}

/// 200 with `data` and a message.
pub fn ok_with<T: Serialize>(data: T, message: impl Into<String>) -> Response {
    Json(Envelope {
        data,
        message: Some(message.into()),
        meta: None,
    })
    .into_response()
}

/// 201 with `data` and a message.
pub fn created<T: Serialize>(data: T, message: impl Into<String>) -> Response {
    (
        StatusCode::CREATED,
        Json(Envelope {
            data,
            message: Some(message.into()),
            meta: None,
        }),
    )
        .into_response()
}

/// 200 with one page of a list.
pub fn page<T: Serialize>(
    items: Vec<T>,
    page: authority::PageRequest,
    total: impl Into<Total>,
) -> Response {
    page_with_cursor(items, page, total.into(), None)
}

/// 200 with one page of a list in id order, and the cursor of the page after it when there
/// may be one: `id` gives an item's id. A numbered page knows whether items follow it; a page
/// by cursor does not know where it stands, and names the next whenever it is full.
pub fn keyset_page<T: Serialize>(
    items: Vec<T>,
    page: authority::PageRequest,
    total: impl Into<Total>,
    id: impl Fn(&T) -> i64,
) -> Response {
    let total = total.into();
    let shown = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let more = match page.after {
        None => {
            let before = i64::from(page.page.saturating_sub(1)) * i64::from(page.per_page);
            before.saturating_add(shown) < total.n
        }
        Some(_) => shown >= i64::from(page.per_page),
    };
    let next = items
        .last()
        .filter(|_| more)
        .map(|last| id(last).to_string());
    page_with_cursor(items, page, total, next)
}

fn page_with_cursor<T: Serialize>(
    items: Vec<T>,
    page: authority::PageRequest,
    total: Total,
    next_cursor: Option<String>,
) -> Response {
    let mut response = Json(Envelope {
        data: items,
        message: None,
        meta: Some(Meta {
            page: page.page,
            per_page: page.per_page,
            total: total.n,
            total_estimated: total.estimated,
            next_cursor,
        }),
    })
    .into_response();
    // The count in a header too: `HEAD` on a list answers it without the items.
    let headers = response.headers_mut();
    headers.insert(TOTAL_COUNT, axum::http::HeaderValue::from(total.n));
    if total.estimated {
        headers.insert(
            TOTAL_ESTIMATED,
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// 204 with no body: what a successful DELETE answers, as the reference's status table says.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 200 with only a message.
pub fn done(message: impl Into<String>) -> Response {
    ok_with(serde_json::Value::Null, message)
}

/// 200 with a file to save: its type, and a name made safe for `Content-Disposition` (anything
/// but letters, digits, `.` and `-` becomes `_`).
pub fn attachment(
    content_type: &str,
    file_name: &str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let safe = safe_file_name(file_name);
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// `name` with anything but letters, digits, `.` and `-` replaced by `_`.
pub fn safe_file_name(name: &str) -> String {
    name.replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
        "_",
    )
}
