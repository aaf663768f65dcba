//! What every console page shares: its headers, the signed-in frame around it, rendering, and
//! the way to the login page.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use authority::Permission;

use super::assets;
use crate::App;
use crate::access;
use crate::envelope::Total;
use crate::error::ApiError;
use crate::listen::Conn;

/// Scripts and styles only from this origin, no inline script or style, no framing, forms
/// posting only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Refuses plain HTTP when the API is HTTPS-only (a password or a session cookie must not
/// cross the network in clear), and adds the console's headers: the CSP, and `no-store` on
/// pages (they show what a session may see); files under `/assets/` set their own caching.
pub async fn headers(State(app): State<App>, req: Request, next: Next) -> Response {
    let tls = req.extensions().get::<Conn>().is_some_and(|c| c.tls);
    if app.settings.api_https_only && !tls {
        return (
            StatusCode::FORBIDDEN,
            "the console is served over HTTPS only",
        )
            .into_response();
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The URLs of the style sheet and of htmx, for the `<head>` of every page.
pub struct Head {
    pub css: String,
    pub htmx: String,
}

impl Head {
    pub fn new() -> Self {
        Self {
            css: assets::url("console"),
            htmx: assets::url("htmx"),
        }
    }
}

/// An entry of the navigation, shown to those who may open it.
struct Entry {
    path: &'static str,
    label: &'static str,
    needs: Option<Permission>,
}

/// The navigation, in order. Pages that later issues add (automation, the system's settings)
/// take their place here.
const NAVIGATION: &[Entry] = &[
    Entry {
        path: "/",
        label: "Dashboard",
        needs: None,
    },
    Entry {
        path: "/cas",
        label: "Authorities",
        needs: Some(Permission::ReadCas),
    },
    Entry {
        path: "/hsm",
        label: "HSM",
        needs: Some(Permission::ReadCas),
    },
    Entry {
        path: "/certificates",
        label: "Certificates",
        needs: Some(Permission::ReadCertificates),
    },
    Entry {
        path: "/csrs",
        label: "CSRs",
        needs: Some(Permission::ReadCsrs),
    },
    Entry {
        path: "/templates",
        label: "Templates",
        needs: Some(Permission::ReadTemplates),
    },
    Entry {
        path: "/truststore",
        label: "Trust store",
        needs: Some(Permission::ReadTruststore),
    },
    Entry {
        path: "/tools",
        label: "Tools",
        needs: None,
    },
    Entry {
        path: "/acme",
        label: "ACME",
        needs: Some(Permission::ReadAcme),
    },
    Entry {
        path: "/enroll/est",
        label: "EST",
        needs: Some(Permission::ReadEst),
    },
    Entry {
        path: "/enroll/scep",
        label: "SCEP",
        needs: Some(Permission::ReadScep),
    },
    Entry {
        path: "/audit",
        label: "Audit",
        needs: Some(Permission::ReadAudit),
    },
    Entry {
        path: "/reports",
        label: "Reports",
        needs: Some(Permission::ReadCertificates),
    },
    Entry {
        path: "/users",
        label: "Users",
        needs: Some(Permission::ReadUsers),
    },
    Entry {
        path: "/groups",
        label: "Groups",
        needs: Some(Permission::ReadUsers),
    },
    Entry {
        path: "/sso",
        label: "Single sign-on",
        needs: Some(Permission::ReadUsers),
    },
    Entry {
        path: "/system/jobs",
        label: "Jobs",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/webhooks",
        label: "Webhooks",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/email",
        label: "Email",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/settings",
        label: "Settings",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/backup",
        label: "Backups",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/security",
        label: "Encryption",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/database",
        label: "Database",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/https",
        label: "HTTPS",
        needs: Some(Permission::AdminSystem),
    },
    Entry {
        path: "/system/syslog",
        label: "Syslog",
        needs: Some(Permission::AdminSystem),
    },
    // One's own account stays last, whatever later issues add above it.
    Entry {
        path: "/account",
        label: "Account",
        needs: None,
    },
];

/// A link of the navigation.
pub struct Link {
    pub path: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of a signed-in page: who is signed in, the token its forms carry, the
/// navigation, and what the visitor may do (templates hide what a role cannot do; the gate
/// and the authority refuse it anyway).
pub struct Frame {
    pub username: String,
    pub role: String,
    pub csrf_token: String,
    pub navigation: Vec<Link>,
    permissions: Vec<Permission>,
}

impl Frame {
    /// Whether the visitor holds `permission`, named as the API names it
    /// (`delete:certificates`); an unknown name is never held.
    pub fn can(&self, permission: &str) -> bool {
        Permission::parse(permission).is_some_and(|p| self.permissions.contains(&p))
    }
}

/// A signed-in visitor, as the gate hands it to a page.
#[derive(Clone)]
pub struct Visitor {
    pub principal: authority::Principal,
    username: String,
    csrf_token: String,
}

impl Visitor {
    /// The frame of the page at `current` (the path its navigation marks).
    pub fn frame(&self, current: &str) -> Frame {
        let permissions: Vec<Permission> = Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.principal.can(*p))
            .collect();
        Frame {
            username: self.username.clone(),
            role: self.principal.role.as_str().to_owned(),
            csrf_token: self.csrf_token.clone(),
            navigation: NAVIGATION
                .iter()
                .filter(|e| e.needs.is_none_or(|p| permissions.contains(&p)))
                .map(|e| Link {
                    path: e.path,
                    label: e.label,
                    current: e.path == current,
                })
                .collect(),
            permissions,
        }
    }
}

/// The visitor behind the session cookie in `headers`; `None` when there is no live session.
pub async fn visitor(app: &App, conn: Option<Conn>, headers: &HeaderMap) -> Option<Visitor> {
    let principal = access::session(
        app,
        headers,
        access::origin(conn.as_ref(), headers),
        authority::DatabaseDown::Refuse,
    )
    .await
    .ok()?;
    let csrf_token = match &principal.credential {
        authority::Credential::Session { csrf_token, .. } => csrf_token.clone(),
        _ => return None,
    };
    let username = principal.account().ok()?.username.clone();
    Some(Visitor {
        principal,
        username,
        csrf_token,
    })
}

/// The pages of a filtered list, each link keeping the filters.
pub struct Pager {
    /// Rows that match, on every page.
    pub total: i64,
    /// Whether `total` is an estimate (shown as "About …").
    pub estimated: bool,
    pub page: u32,
    pub pages: u32,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// Page `page` of `total` rows, `per_page` a page, of `path` with `filters`.
    pub fn new(
        path: &str,
        filters: &[(&str, &str)],
        page: u32,
        per_page: u32,
        total: impl Into<Total>,
    ) -> Self {
        let Total {
            n: total,
            estimated,
        } = total.into();
        let per_page = i64::from(per_page.max(1));
        let pages = u32::try_from((total.max(1) + per_page - 1) / per_page).unwrap_or(u32::MAX);
        Self {
            total,
            estimated,
            page,
            pages,
            previous: (page > 1).then(|| list_link(path, filters, page - 1)),
            next: (page < pages).then(|| list_link(path, filters, page + 1)),
        }
    }
}

/// `path` with the filters that are not blank and, past the first, the page.
pub fn list_link(path: &str, filters: &[(&str, &str)], page: u32) -> String {
    let page = page.to_string();
    let kept: Vec<(&str, &str)> = filters
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .chain((page != "1").then_some(("page", page.as_str())))
        .collect();
    match serde_urlencoded::to_string(kept).unwrap_or_default() {
        query if query.is_empty() => path.to_owned(),
        query => format!("{path}?{query}"),
    }
}

#[derive(Template)]
#[template(path = "console/refused.html")]
struct RefusedPage<'a> {
    head: Head,
    frame: Frame,
    message: &'a str,
}

/// A page saying why a request was refused, with its status.
pub fn refused(frame: Frame, e: &ApiError) -> Response {
    render(
        e.status(),
        &RefusedPage {
            head: Head::new(),
            frame,
            message: e.message(),
        },
    )
}

/// To the login page, coming back to `next` afterwards.
pub fn to_login(next: &str) -> Response {
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// Where a login may send its visitor: a path on this site, or the dashboard.
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}

/// How pages show times, as askama filters: `{{ t|iso }}` for `<time datetime>`, `{{ t|when }}`
/// to the second in UTC for people, `{{ t|day }}` for the date alone.
pub mod filters {
    use askama::{Result, Values};
    use time::OffsetDateTime;

    /// A time, however a template holds it.
    pub trait AsTime {
        fn time(&self) -> OffsetDateTime;
    }

    impl AsTime for OffsetDateTime {
        fn time(&self) -> OffsetDateTime {
            *self
        }
    }

    impl<T: AsTime + ?Sized> AsTime for &T {
        fn time(&self) -> OffsetDateTime {
            (**self).time()
        }
    }

    /// RFC 3339, for machines.
    #[askama::filter_fn]
    pub fn iso(t: impl AsTime, _: &dyn Values) -> Result<String> {
        Ok(authority::rfc3339(t.time()))
    }

    /// `2026-12-06 04:13:29 UTC`, for people.
    #[askama::filter_fn]
    pub fn when(t: impl AsTime, _: &dyn Values) -> Result<String> {
        let iso = authority::rfc3339(t.time());
        Ok(format!(
            "{} UTC",
            iso.replace('T', " ").chars().take(19).collect::<String>()
        ))
    }

    /// `2026-12-06`.
    #[askama::filter_fn]
    pub fn day(t: impl AsTime, _: &dyn Values) -> Result<String> {
        Ok(t.time().date().to_string())
    }
}

/// `page` as HTML with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(e) => {
            tracing::error!("console page failed to render: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_links_keep_the_filters_and_leave_out_blanks_and_the_first_page() {
        let filters = [("status", "expiring"), ("search", ""), ("days", "7")];
        assert_eq!(
            list_link("/certificates", &filters, 1),
            "/certificates?status=expiring&days=7"
        );
        assert_eq!(
            list_link("/certificates", &filters, 3),
            "/certificates?status=expiring&days=7&page=3"
        );
        assert_eq!(list_link("/users", &[("role", "")], 1), "/users");
        assert_eq!(list_link("/users", &[("q", "a&b")], 1), "/users?q=a%26b");
    }

    #[test]
    fn a_pager_counts_pages_and_links_only_where_there_is_a_page() {
        let p = Pager::new("/audit", &[("user", "vera")], 2, 50, 101);
        assert_eq!((p.pages, p.total), (3, 101));
        assert_eq!(p.previous.as_deref(), Some("/audit?user=vera"));
        assert_eq!(p.next.as_deref(), Some("/audit?user=vera&page=3"));
        let empty = Pager::new("/audit", &[], 1, 50, 0);
        assert_eq!(empty.pages, 1);
        assert!(empty.previous.is_none() && empty.next.is_none());
    }

    #[test]
    fn a_login_only_sends_its_visitor_to_this_site() {
        for (next, to) in [
            (
                "/certificates?status=expiring",
                "/certificates?status=expiring",
            ),
            ("/", "/"),
            ("", "/"),
            ("https://evil.example/", "/"),
            ("//evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("/a\r\nSet-Cookie: x=1", "/"),
            ("javascript:alert(1)", "/"),
        ] {
            assert_eq!(local_path(next), to, "{next:?}");
        }
    }

    #[derive(Template)]
    #[template(
        source = "{{ t|when }}|{{ t|day }}|{{ t|iso }}|{{ r|when }}",
        ext = "txt"
    )]
    struct Times<'a> {
        t: time::OffsetDateTime,
        r: &'a time::OffsetDateTime,
    }

    #[test]
    fn times_are_shown_to_the_second_in_utc() -> askama::Result<()> {
        let t = time::macros::datetime!(2026-03-04 05:06:07.891 UTC);
        let shown = Times { t, r: &t }.render()?;
        let parts: Vec<&str> = shown.split('|').collect();
        assert_eq!(parts[0], "2026-03-04 05:06:07 UTC");
        assert_eq!(parts[1], "2026-03-04");
        assert!(parts[2].starts_with("2026-03-04T05:06:07"), "{shown}");
        assert_eq!(parts[3], parts[0]);
        Ok(())
    }
}
