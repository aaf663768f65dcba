//! `/enroll/scep`: the SCEP server from the console — the switch, the profiles with their
//! statistics, one-time challenges — and `/enroll/scep/requests`, what clients asked for, with
//! the queue of requests waiting for approval. The protocol owns `/scep` and `/scep/{profile}`,
//! so these pages live under `/enroll`. Every read and change goes through the authority's SCEP
//! administration, which checks the visitor's permissions as it does for the REST API.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::choices::{self, Cas, Choice, name_of};
use super::form::{Form, blank_is_none, number};
use super::page::{self, Frame, Head, Pager, Visitor, filters, list_link};
use crate::api::v2::scep::{
    self as rest, ChallengeView, ProfilePatch, ProfileView, RequestView, StatsView,
};
use crate::error::{ApiError, ApiResult};
use crate::{App, Shared};
use authority::{CaId, ScepConfigChange, ScepProfileChange, ScepProfileRow};

/// The settings page, which the navigation marks for both pages.
const OVERVIEW: &str = "/enroll/scep";
/// The request list.
const REQUESTS: &str = "/enroll/scep/requests";
/// Requests on a page.
const PER_PAGE: u32 = 25;
/// The statuses the request list filters by, as `(value, label)`.
const STATUSES: [(&str, &str); 5] = [
    ("", "All"),
    ("pending", "Pending"),
    ("issued", "Issued"),
    ("rejected", "Rejected"),
    ("failed", "Failed"),
];

/// A profile as the page shows it: the REST view, with its CA and template by name.
pub struct ProfileRow {
    view: ProfileView,
    is_default: bool,
    ca: String,
    /// Whether its CA is among those its form offers ([`choices::offered`]).
    ca_offered: bool,
    template: String,
}

impl ProfileRow {
    fn new(
        row: &ScepProfileRow,
        app: &Shared,
        named: &[Choice],
        issuing: &[Choice],
        templates: &[Choice],
        default_ca: Option<i64>,
    ) -> Self {
        let view = ProfileView::new(row, app);
        let template = match view.template_id {
            Some(id) => name_of(templates, id, "template"),
            None => "none (client certificates)".to_owned(),
        };
        Self {
            ca_offered: choices::offered(issuing, view.ca_id),
            is_default: row.is_default,
            ca: choices::issuer(named, view.ca_id, default_ca),
            template,
            view,
        }
    }
}

/// A one-time challenge just made, with its CA's name.
pub struct NewChallenge {
    view: ChallengeView,
    ca: String,
}

#[derive(Template)]
#[template(path = "console/scep.html")]
struct OverviewPage {
    head: Head,
    frame: Frame,
    enabled: bool,
    profiles: Vec<ProfileRow>,
    stats: StatsView,
    /// The CAs that can issue, for the forms.
    cas: Vec<Choice>,
    default_ca: Option<i64>,
    templates: Vec<Choice>,
    /// A challenge just made: shown this once.
    challenge: Option<NewChallenge>,
    error: Option<String>,
}

/// The settings page, with a challenge just made or a refusal.
async fn overview(
    app: &App,
    visitor: &Visitor,
    challenge: Option<ChallengeView>,
    error: Option<ApiError>,
) -> Response {
    let frame = visitor.frame(OVERVIEW);
    let read = async {
        let config = app.authority.scep_config(&visitor.principal).await?;
        let stats = StatsView::from(app.authority.scep_stats(&visitor.principal).await?);
        let named = choices::cas(app, &frame, Cas::All).await?;
        let cas = choices::cas(app, &frame, Cas::Issuing).await?;
        let templates = choices::templates(app, &frame).await?;
        let default_ca = choices::default_ca(app, &frame).await?;
        let profiles = config
            .profiles
            .iter()
            .map(|p| ProfileRow::new(p, app, &named, &cas, &templates, default_ca))
            .collect();
        let challenge = challenge.map(|view| NewChallenge {
            ca: name_of(&named, view.ca_id, "CA"),
            view,
        });
        Ok::<_, ApiError>(OverviewPage {
            head: Head::new(),
            frame: visitor.frame(OVERVIEW),
            enabled: config.enabled,
            profiles,
            stats,
            cas,
            default_ca,
            templates,
            challenge,
            error: None,
        })
    };
    match read.await {
        Ok(mut shown) => {
            let status = match (&error, &shown.challenge) {
                (Some(e), _) => e.status(),
                (None, Some(_)) => StatusCode::CREATED,
                (None, None) => StatusCode::OK,
            };
            shown.error = error.map(|e| e.message().to_owned());
            page::render(status, &shown)
        }
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/enroll/scep`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    overview(&app, &visitor, None, None).await
}

/// Applies `change`, then back to the settings page at `anchor`; a refusal is shown there.
async fn apply(
    app: &App,
    visitor: &Visitor,
    change: impl Future<Output = ApiResult<ScepConfigChange>>,
    anchor: impl FnOnce(&authority::ScepConfig) -> String,
) -> Response {
    let done = async {
        let config = app
            .authority
            .update_scep_config(&visitor.principal, change.await?)
            .await?;
        Ok::<_, ApiError>(anchor(&config))
    };
    match done.await {
        Ok(anchor) => Redirect::to(&format!("{OVERVIEW}{anchor}")).into_response(),
        Err(e) => overview(app, visitor, None, Some(e)).await,
    }
}

/// The name of profile `id`, which the authority changes profiles by.
async fn profile_name(app: &App, visitor: &Visitor, id: i64) -> ApiResult<String> {
    app.authority
        .scep_config(&visitor.principal)
        .await?
        .profiles
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name)
        .ok_or_else(|| ApiError::not_found(format!("SCEP profile {id} does not exist")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    enabled: Option<String>,
}

/// POST `/enroll/scep/settings`: the switch.
pub async fn update_settings(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let change = async {
        Ok(ScepConfigChange {
            enabled: Some(form.enabled.is_some()),
            ..ScepConfigChange::default()
        })
    };
    apply(&app, &visitor, change, |_| String::new()).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewProfileForm {
    name: String,
}

/// POST `/enroll/scep/profiles`: a new profile with the defaults (serving, from the default
/// CA, issuing at once), which its form then changes.
pub async fn create_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<NewProfileForm>,
) -> Response {
    let name = form.name.trim().to_owned();
    let change = async {
        // The authority creates or changes by name; here a name in use is a mistake.
        let config = app.authority.scep_config(&visitor.principal).await?;
        if config.profiles.iter().any(|p| p.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("there is already a SCEP profile named '{name}'"),
            ));
        }
        Ok(ScepConfigChange {
            profiles: vec![ScepProfileChange {
                name: name.clone(),
                ..ScepProfileChange::default()
            }],
            ..ScepConfigChange::default()
        })
    };
    apply(&app, &visitor, change, |config| {
        config
            .profiles
            .iter()
            .find(|p| p.name == name)
            .map(|p| format!("#profile-{}", p.id))
            .unwrap_or_default()
    })
    .await
}

/// What a profile's form holds. A select that is not shown (the visitor may not read CAs or
/// templates) leaves its field as it is; a blank password keeps the current one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    enabled: Option<String>,
    ca_id: Option<String>,
    template_id: Option<String>,
    auto_approve: Option<String>,
    challenge_password: String,
    remove_challenge: Option<String>,
    challenge_validity: String,
}

impl ProfileForm {
    /// The change the REST API takes for profile `name`.
    fn to_rest(&self, name: String) -> ApiResult<ProfilePatch> {
        // A password is taken as typed: spaces may be part of it.
        let challenge_password = match (
            self.remove_challenge.is_some(),
            self.challenge_password.is_empty(),
        ) {
            (false, true) => None,
            (true, true) => Some(None),
            (false, false) => Some(Some(self.challenge_password.clone())),
            (true, false) => {
                return Err(ApiError::invalid(
                    "either type a new static challenge password or remove it, not both",
                ));
            }
        };
        let picked = |field: &str, text: &Option<String>| {
            text.as_deref().map(|t| number(field, t)).transpose()
        };
        Ok(ProfilePatch {
            name,
            enabled: Some(self.enabled.is_some()),
            ca_id: picked("ca_id", &self.ca_id)?,
            ca_ident: None,
            template_id: picked("template_id", &self.template_id)?,
            auto_approve: Some(self.auto_approve.is_some()),
            challenge_password,
            challenge_validity: number("challenge_validity", &self.challenge_validity)?,
        })
    }
}

/// POST `/enroll/scep/profiles/{id}`: changes the profile (its name stays).
pub async fn update_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<ProfileForm>,
) -> Response {
    let change = async {
        let patch = form.to_rest(profile_name(&app, &visitor, id).await?)?;
        Ok(ScepConfigChange {
            profiles: vec![ScepProfileChange::from(patch)],
            ..ScepConfigChange::default()
        })
    };
    apply(&app, &visitor, change, |_| format!("#profile-{id}")).await
}

/// POST `/enroll/scep/profiles/{id}/delete`: deletes the profile with its requests (not the
/// default one).
pub async fn delete_profile(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
) -> Response {
    let change = async {
        Ok(ScepConfigChange {
            remove_profiles: vec![profile_name(&app, &visitor, id).await?],
            ..ScepConfigChange::default()
        })
    };
    apply(&app, &visitor, change, |_| String::new()).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChallengeForm {
    ca_id: String,
    regenerate: Option<String>,
}

/// POST `/enroll/scep/challenge`: a one-time challenge for a CA, shown on the answer this once
/// (a POST, so that it is never in a URL or a history).
pub async fn make_challenge(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let made = async {
        let ca_id = number("ca_id", &form.ca_id)?
            .ok_or_else(|| ApiError::invalid("choose the CA the challenge is for"))?;
        let issued = app
            .authority
            .scep_challenge(&visitor.principal, CaId(ca_id), form.regenerate.is_some())
            .await?;
        Ok::<_, ApiError>(ChallengeView::from(issued))
    };
    match made.await {
        Ok(challenge) => overview(&app, &visitor, Some(challenge), None).await,
        Err(e) => overview(&app, &visitor, None, Some(e)).await,
    }
}

/// The request list's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    profile_id: String,
    page: Option<u32>,
}

impl ListQuery {
    /// The filters, as the query string names them.
    fn filters(&self) -> [(&'static str, &str); 2] {
        [("status", &self.status), ("profile_id", &self.profile_id)]
    }
}

/// A request as the list shows it, with its profile's name.
pub struct RequestRow {
    view: RequestView,
    profile: String,
}

#[derive(Template)]
#[template(path = "console/scep_requests.html")]
struct RequestsPage {
    head: Head,
    frame: Frame,
    query: ListQuery,
    statuses: [(&'static str, &'static str); 5],
    profiles: Vec<Choice>,
    rows: Vec<RequestRow>,
    pager: Pager,
    error: Option<String>,
}

/// The request list as `query` filters it, with a refusal of an action on it.
async fn requests_page(
    app: &App,
    visitor: &Visitor,
    query: ListQuery,
    error: Option<ApiError>,
) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    let read = async {
        let filter = rest::request_filter(
            blank_is_none(&query.status),
            number("profile_id", &query.profile_id)?,
        )?;
        let profiles: Vec<Choice> = app
            .authority
            .scep_config(&visitor.principal)
            .await?
            .profiles
            .into_iter()
            .map(|p| Choice {
                id: p.id,
                name: p.name,
            })
            .collect();
        let request = authority::PageRequest {
            page,
            per_page: PER_PAGE,
            after: None,
        };
        let found = app
            .authority
            .scep_requests(&visitor.principal, &filter, request)
            .await?;
        let rows = found
            .items
            .into_iter()
            .map(|r| RequestRow {
                profile: name_of(&profiles, r.profile_id, "profile"),
                view: RequestView::from(r),
            })
            .collect();
        Ok::<_, ApiError>((profiles, rows, found.total))
    };
    let (profiles, rows, total, error) = match (read.await, error) {
        (Ok((profiles, rows, total)), error) => (profiles, rows, total, error),
        (Err(e), _) => (Vec::new(), Vec::new(), 0, Some(e)),
    };
    page::render(
        error.as_ref().map_or(StatusCode::OK, ApiError::status),
        &RequestsPage {
            head: Head::new(),
            frame: visitor.frame(OVERVIEW),
            pager: Pager::new(REQUESTS, &query.filters(), page, PER_PAGE, total),
            query,
            statuses: STATUSES,
            profiles,
            rows,
            error: error.map(|e| e.message().to_owned()),
        },
    )
}

/// GET `/enroll/scep/requests`.
pub async fn requests(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    requests_page(&app, &visitor, query, None).await
}

/// An approval or a rejection, with the list's filters to come back to.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DecisionForm {
    reason: String,
    status: String,
    profile_id: String,
}

impl DecisionForm {
    /// The list the form was sent from (its first page: the row has moved on).
    fn list(&self) -> ListQuery {
        ListQuery {
            status: self.status.clone(),
            profile_id: self.profile_id.clone(),
            page: None,
        }
    }
}

/// Back to the list after a decision, or the list with the refusal.
async fn decided(
    app: &App,
    visitor: &Visitor,
    form: &DecisionForm,
    outcome: authority::Result<authority::ScepRequestRow>,
) -> Response {
    let list = form.list();
    match outcome {
        Ok(_) => Redirect::to(&list_link(REQUESTS, &list.filters(), 1)).into_response(),
        Err(e) => requests_page(app, visitor, list, Some(e.into())).await,
    }
}

/// POST `/enroll/scep/requests/{id}/approve`: issues the certificate now; the client receives
/// it when it next polls.
pub async fn approve(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let outcome = app
        .authority
        .approve_scep_request(&visitor.principal, id)
        .await;
    decided(&app, &visitor, &form, outcome).await
}

/// POST `/enroll/scep/requests/{id}/reject`: the client receives a failure when it next polls.
pub async fn reject(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let outcome = app
        .authority
        .reject_scep_request(&visitor.principal, id, blank_is_none(&form.reason))
        .await;
    decided(&app, &visitor, &form, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_form_becomes_the_rest_change() -> ApiResult<()> {
        let form = ProfileForm {
            enabled: Some("1".into()),
            ca_id: Some(String::new()),
            template_id: None,
            challenge_password: " twelve chars ".into(),
            challenge_validity: "48".into(),
            ..ProfileForm::default()
        };
        let patch = form.to_rest("lab".into())?;
        assert_eq!(patch.name, "lab");
        assert_eq!(patch.enabled, Some(true));
        assert_eq!(patch.auto_approve, Some(false));
        assert_eq!(patch.ca_id, Some(None), "blank: the default CA");
        assert_eq!(patch.template_id, None, "not on the form: unchanged");
        assert_eq!(
            patch.challenge_password,
            Some(Some(" twelve chars ".into()))
        );
        assert_eq!(patch.challenge_validity, Some(48));

        let keep = ProfileForm::default().to_rest("lab".into())?;
        assert_eq!(keep.challenge_password, None, "blank keeps the password");
        assert_eq!(keep.challenge_validity, None);
        let remove = ProfileForm {
            remove_challenge: Some("1".into()),
            ..ProfileForm::default()
        };
        assert_eq!(remove.to_rest("lab".into())?.challenge_password, Some(None));
        let both = ProfileForm {
            remove_challenge: Some("1".into()),
            challenge_password: "a new one, long enough".into(),
            ..ProfileForm::default()
        };
        assert!(both.to_rest("lab".into()).is_err());
        let bad = ProfileForm {
            template_id: Some("seven".into()),
            ..ProfileForm::default()
        };
        assert!(bad.to_rest("lab".into()).is_err());
        Ok(())
    }
}
