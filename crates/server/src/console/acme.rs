//! `/acme`: the ACME server from the console — its settings, the profiles (one directory
//! each) with their external account binding keys, and the accounts and orders clients made.
//! Every read and change goes through the authority's ACME administration, which checks the
//! visitor's permissions as it does for the REST API.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::choices::{self, Cas, Choice};
use super::form::{Form, blank_is_none, lines, number};
use super::page::{self, Frame, Head, Pager, Visitor, filters};
use crate::App;
use crate::api::v2::acme::accounts::AccountView;
use crate::api::v2::acme::eab_keys::{EabKeyView, NewEabKeyView};
use crate::api::v2::acme::orders::OrderView;
use crate::api::v2::acme::profiles::{ProfileBody, ProfileView};
use crate::api::v2::acme::settings::SettingsView;
use crate::error::{ApiError, ApiResult};
use authority::acme::{AcmeProfileInput, AcmeSettingsChange};
use authority::{AcmeFilter, CaId, PageRequest};

/// Accounts and orders on a page.
const PER_PAGE: u32 = 25;
/// The challenge types a profile may offer, as its form names them.
const CHALLENGES: [(&str, &str); 3] = [
    ("http_01", "http-01"),
    ("dns_01", "dns-01"),
    ("tls_alpn_01", "tls-alpn-01"),
];

#[derive(Template)]
#[template(path = "console/acme.html")]
struct OverviewPage {
    head: Head,
    frame: Frame,
    settings: SettingsView,
    profiles: Vec<ProfileView>,
    cas: Vec<Choice>,
    error: Option<String>,
}

async fn overview(app: &App, visitor: &Visitor, error: Option<ApiError>) -> Response {
    let frame = visitor.frame("/acme");
    let read = async {
        let settings = app.authority.acme_settings(&visitor.principal).await?;
        let profiles = app.authority.acme_profiles(&visitor.principal).await?;
        Ok::<_, ApiError>((
            SettingsView::new(settings, app),
            profiles
                .into_iter()
                .map(|p| ProfileView::new(p, app))
                .collect(),
            choices::cas(app, &frame, Cas::Issuing).await?,
        ))
    };
    match read.await {
        Ok((settings, profiles, cas)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &OverviewPage {
                head: Head::new(),
                frame,
                settings,
                profiles,
                cas,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/acme`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    overview(&app, &visitor, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    enabled: Option<String>,
    issuing_ca_id: String,
    validity_days: String,
    orders_per_account_hour: String,
    accounts_per_address_hour: String,
}

impl SettingsForm {
    fn change(&self) -> ApiResult<AcmeSettingsChange> {
        Ok(AcmeSettingsChange {
            enabled: Some(self.enabled.is_some()),
            orders_per_account_hour: number(
                "orders_per_account_hour",
                &self.orders_per_account_hour,
            )?,
            accounts_per_address_hour: number(
                "accounts_per_address_hour",
                &self.accounts_per_address_hour,
            )?,
            issuing_ca_id: Some(number("issuing_ca_id", &self.issuing_ca_id)?.map(CaId)),
            validity_days: number("validity_days", &self.validity_days)?,
            require_approval: None,
        })
    }
}

/// POST `/acme/settings`.
pub async fn update_settings(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let done = async {
        app.authority
            .update_acme_settings(&visitor.principal, form.change()?)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to("/acme").into_response(),
        Err(e) => overview(&app, &visitor, Some(e)).await,
    }
}

/// What a profile's form holds, kept to fill it again after a refusal.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    name: String,
    description: String,
    enabled: Option<String>,
    ca_id: String,
    template_id: String,
    validity_days: String,
    require_eab: Option<String>,
    allowed_identifiers: String,
    http_01: Option<String>,
    dns_01: Option<String>,
    tls_alpn_01: Option<String>,
    terms_of_service: String,
    website: String,
}

impl ProfileForm {
    /// A new profile's form: enabled, every challenge offered.
    fn blank() -> Self {
        let on = Some("1".to_owned());
        Self {
            enabled: on.clone(),
            http_01: on.clone(),
            dns_01: on.clone(),
            tls_alpn_01: on,
            ..Self::default()
        }
    }

    /// The form of `p`, to edit it.
    fn of(p: &ProfileView) -> Self {
        let on = |b: bool| b.then(|| "1".to_owned());
        let offers = |t: &str| on(p.challenge_types.iter().any(|c| c == t));
        Self {
            name: p.name.clone(),
            description: p.description.clone(),
            enabled: on(p.enabled),
            ca_id: p.ca_id.map(|id| id.to_string()).unwrap_or_default(),
            template_id: p.template_id.map(|id| id.to_string()).unwrap_or_default(),
            validity_days: p.validity_days.to_string(),
            require_eab: on(p.require_eab),
            allowed_identifiers: p.allowed_identifiers.join("\n"),
            http_01: offers("http-01"),
            dns_01: offers("dns-01"),
            tls_alpn_01: offers("tls-alpn-01"),
            terms_of_service: p.terms_of_service.clone(),
            website: p.website.clone(),
        }
    }

    /// Whether the box of challenge `field` is ticked.
    fn offers(&self, field: &str) -> bool {
        match field {
            "http_01" => self.http_01.is_some(),
            "dns_01" => self.dns_01.is_some(),
            "tls_alpn_01" => self.tls_alpn_01.is_some(),
            _ => false,
        }
    }

    /// The request the REST API takes; `name` only for a new profile.
    fn to_rest(&self, new: bool) -> ApiResult<ProfileBody> {
        Ok(ProfileBody {
            name: new.then(|| self.name.trim().to_owned()),
            description: Some(self.description.trim().to_owned()),
            enabled: Some(self.enabled.is_some()),
            ca_id: Some(number("ca_id", &self.ca_id)?),
            template_id: Some(number("template_id", &self.template_id)?),
            validity_days: number("validity_days", &self.validity_days)?,
            require_eab: Some(self.require_eab.is_some()),
            allowed_identifiers: Some(
                lines(&self.allowed_identifiers)
                    .map(str::to_owned)
                    .collect(),
            ),
            challenge_types: Some(
                CHALLENGES
                    .iter()
                    .filter(|(field, _)| self.offers(field))
                    .map(|(_, kind)| (*kind).to_owned())
                    .collect(),
            ),
            terms_of_service: Some(self.terms_of_service.trim().to_owned()),
            website: Some(self.website.trim().to_owned()),
        })
    }
}

#[derive(Template)]
#[template(path = "console/acme_profile.html")]
struct ProfilePage {
    head: Head,
    frame: Frame,
    /// The profile shown, or `None` for a new one.
    profile: Option<ProfileView>,
    form: ProfileForm,
    cas: Vec<Choice>,
    templates: Vec<Choice>,
    keys: Vec<EabKeyView>,
    /// A key just made, with its HMAC key: shown this once.
    new_key: Option<NewEabKeyView>,
    challenges: [(&'static str, &'static str); 3],
    error: Option<String>,
}

/// The page of profile `id` (`None`: the form for a new one).
async fn profile_page(
    app: &App,
    visitor: &Visitor,
    id: Option<i64>,
    form: Option<ProfileForm>,
    new_key: Option<NewEabKeyView>,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame("/acme");
    let read = async {
        let (profile, keys) = match id {
            Some(id) => {
                let profile = app
                    .authority
                    .acme_profile_details(&visitor.principal, id)
                    .await?;
                let keys = app.authority.acme_eab_keys(&visitor.principal, id).await?;
                (
                    Some(ProfileView::new(profile, app)),
                    keys.into_iter().map(EabKeyView::from).collect(),
                )
            }
            None => (None, Vec::new()),
        };
        Ok::<_, ApiError>((
            profile,
            keys,
            choices::cas(app, &frame, Cas::Issuing).await?,
            choices::templates(app, &frame).await?,
        ))
    };
    match read.await {
        Ok((profile, keys, cas, templates)) => {
            let form = form.unwrap_or_else(|| match &profile {
                Some(p) => ProfileForm::of(p),
                None => ProfileForm::blank(),
            });
            let status = match (&error, &new_key) {
                (Some(e), _) => e.status(),
                (None, Some(_)) => StatusCode::CREATED,
                (None, None) => StatusCode::OK,
            };
            page::render(
                status,
                &ProfilePage {
                    head: Head::new(),
                    frame,
                    profile,
                    form,
                    cas,
                    templates,
                    keys,
                    new_key,
                    challenges: CHALLENGES,
                    error: error.map(|e| e.message().to_owned()),
                },
            )
        }
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/acme/profiles/new`.
pub async fn new_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    profile_page(&app, &visitor, None, None, None, None).await
}

/// POST `/acme/profiles/new`: creates the profile and shows it.
pub async fn create_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let created = async {
        let input = AcmeProfileInput::from(form.to_rest(true)?);
        Ok::<_, ApiError>(
            app.authority
                .create_acme_profile(&visitor.principal, input)
                .await?,
        )
    };
    match created.await {
        Ok(profile) => Redirect::to(&format!("/acme/profiles/{}", profile.id)).into_response(),
        Err(e) => profile_page(&app, &visitor, None, Some(form), None, Some(e)).await,
    }
}

/// GET `/acme/profiles/{id}`.
pub async fn show_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    profile_page(&app, &visitor, Some(id), None, None, None).await
}

/// POST `/acme/profiles/{id}`: changes the profile (its name stays).
pub async fn update_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let updated = async {
        let input = AcmeProfileInput::from(form.to_rest(false)?);
        app.authority
            .update_acme_profile(&visitor.principal, id, input)
            .await?;
        Ok::<_, ApiError>(())
    };
    match updated.await {
        Ok(()) => Redirect::to(&format!("/acme/profiles/{id}")).into_response(),
        Err(e) => profile_page(&app, &visitor, Some(id), Some(form), None, Some(e)).await,
    }
}

/// POST `/acme/profiles/{id}/delete`: deletes the profile with its accounts and orders.
pub async fn delete_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app
        .authority
        .delete_acme_profile(&visitor.principal, id)
        .await
    {
        Ok(()) => Redirect::to("/acme").into_response(),
        Err(e) => profile_page(&app, &visitor, Some(id), None, None, Some(e.into())).await,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EabForm {
    description: String,
}

/// POST `/acme/profiles/{id}/eab-keys`: makes a key and shows its HMAC key, this once.
pub async fn create_eab_key(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<EabForm>,
) -> Response {
    match app
        .authority
        .create_acme_eab_key(&visitor.principal, id, form.description.trim())
        .await
    {
        Ok(key) => {
            profile_page(
                &app,
                &visitor,
                Some(id),
                None,
                Some(NewEabKeyView::from(key)),
                None,
            )
            .await
        }
        Err(e) => profile_page(&app, &visitor, Some(id), None, None, Some(e.into())).await,
    }
}

/// POST `/acme/profiles/{id}/eab-keys/{key}/revoke`.
pub async fn revoke_eab_key(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path((id, key)): Path<(i64, String)>,
) -> Response {
    match app
        .authority
        .revoke_acme_eab_key(&visitor.principal, id, &key)
        .await
    {
        Ok(_) => Redirect::to(&format!("/acme/profiles/{id}")).into_response(),
        Err(e) => profile_page(&app, &visitor, Some(id), None, None, Some(e.into())).await,
    }
}

/// The filters of the account and order lists.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    profile_id: String,
    account_id: String,
    status: String,
    page: Option<u32>,
}

impl ListQuery {
    fn filter(&self) -> ApiResult<AcmeFilter> {
        Ok(AcmeFilter {
            profile_id: number("profile_id", &self.profile_id)?,
            account_id: number("account_id", &self.account_id)?,
            status: blank_is_none(&self.status).map(str::to_owned),
        })
    }

    /// The filters, as the query string names them.
    fn filters(&self) -> [(&'static str, &str); 3] {
        [
            ("profile_id", &self.profile_id),
            ("account_id", &self.account_id),
            ("status", &self.status),
        ]
    }
}

/// Accounts or orders, with their pages.
pub enum Listed {
    Accounts(Vec<AccountView>),
    Orders(Vec<OrderView>),
}

#[derive(Template)]
#[template(path = "console/acme_list.html")]
struct ListPage {
    head: Head,
    frame: Frame,
    title: &'static str,
    path: &'static str,
    listed: Listed,
    query: ListQuery,
    pager: Pager,
    error: Option<String>,
}

async fn list_page(
    app: &App,
    visitor: &Visitor,
    query: ListQuery,
    orders: bool,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame("/acme");
    let page = query.page.unwrap_or(1).max(1);
    let request = PageRequest {
        page,
        per_page: PER_PAGE,
        after: None,
    };
    let read = async {
        let filter = query.filter()?;
        Ok::<_, ApiError>(if orders {
            let found = app
                .authority
                .acme_orders(&visitor.principal, &filter, request)
                .await?;
            let items = found.items.into_iter().map(|o| OrderView::new(o, false));
            (Listed::Orders(items.collect()), found.total)
        } else {
            let found = app
                .authority
                .acme_accounts(&visitor.principal, &filter, request)
                .await?;
            let items = found.items.into_iter().map(AccountView::from);
            (Listed::Accounts(items.collect()), found.total)
        })
    };
    let (title, path) = if orders {
        ("ACME orders", "/acme/orders")
    } else {
        ("ACME accounts", "/acme/accounts")
    };
    match read.await {
        Ok((listed, total)) => page::render(
            error.as_ref().map_or(StatusCode::OK, ApiError::status),
            &ListPage {
                head: Head::new(),
                frame,
                title,
                path,
                listed,
                pager: Pager::new(path, &query.filters(), page, PER_PAGE, total),
                query,
                error: error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/acme/accounts`.
pub async fn accounts(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    list_page(&app, &visitor, query, false, None).await
}

/// GET `/acme/orders`.
pub async fn orders(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    list_page(&app, &visitor, query, true, None).await
}

/// POST `/acme/accounts/{id}/deactivate`: the account can make no more requests.
pub async fn deactivate_account(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    match app
        .authority
        .deactivate_acme_account(&visitor.principal, id)
        .await
    {
        Ok(_) => Redirect::to("/acme/accounts").into_response(),
        Err(e) => list_page(&app, &visitor, ListQuery::default(), false, Some(e.into())).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_form_becomes_the_rest_request_and_back() -> ApiResult<()> {
        let form = ProfileForm {
            name: " lab ".into(),
            validity_days: "30".into(),
            allowed_identifiers: "lab.example\n\n.internal.example".into(),
            dns_01: None,
            require_eab: Some("1".into()),
            ..ProfileForm::blank()
        };
        let body = form.to_rest(true)?;
        assert_eq!(body.name.as_deref(), Some("lab"));
        assert_eq!(body.validity_days, Some(30));
        assert_eq!(body.ca_id, Some(None));
        assert_eq!(
            body.challenge_types,
            Some(vec!["http-01".to_owned(), "tls-alpn-01".to_owned()])
        );
        assert_eq!(
            body.allowed_identifiers,
            Some(vec![
                "lab.example".to_owned(),
                ".internal.example".to_owned()
            ])
        );
        assert_eq!(body.require_eab, Some(true));
        assert_eq!(form.to_rest(false)?.name, None);
        let bad = ProfileForm {
            validity_days: "ninety".into(),
            ..ProfileForm::blank()
        };
        assert!(bad.to_rest(true).is_err());
        Ok(())
    }
}
