//! `/enroll/est`: the EST server from the console — the switch, the default endpoint's CA,
//! template and credentials, the labels with theirs, and what each endpoint issued and
//! refused. The protocol owns `/.well-known/est/`, so the page lives under `/enroll` beside
//! SCEP's. Every read and change goes through the authority's EST administration, which checks
//! the visitor's permissions as it does for the REST API.
//!
//! The authority takes the labels as a whole list, as the REST API does: a label's form sends
//! the list as it is with that one label changed, added or left out, the others keeping their
//! passwords.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::choices::{self, Cas, Choice, name_of};
use super::form::{Form, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::est::{
    ConfigPatch, ConfigView, LabelPatch, LabelStatsView, LabelView, StatsView,
};
use crate::error::{ApiError, ApiResult};
use authority::est::DEFAULT_ENDPOINT;

/// The page.
const OVERVIEW: &str = "/enroll/est";

/// An endpoint as the page shows it — the default one or a label, in the shape the REST API
/// gives a label — with its CA and template by name.
pub struct EndpointRow {
    view: LabelView,
    /// The id of its form on the page.
    anchor: String,
    ca: String,
    /// Whether its CA is among those its form offers ([`choices::offered`]).
    ca_offered: bool,
    template: String,
}

impl EndpointRow {
    fn new(
        view: LabelView,
        is_default: bool,
        named: &[Choice],
        issuing: &[Choice],
        templates: &[Choice],
        default_ca: Option<i64>,
    ) -> Self {
        Self {
            anchor: if is_default {
                "settings".to_owned()
            } else {
                format!("label-{}", view.label)
            },
            ca: choices::issuer(named, view.ca_id, default_ca),
            ca_offered: choices::offered(issuing, view.ca_id),
            template: view.template_id.map_or_else(
                || "none".to_owned(),
                |id| name_of(templates, id, "template"),
            ),
            view,
        }
    }
}

/// The per-endpoint counts added up.
pub struct Totals {
    issued: i64,
    issued_last_24h: i64,
    failures: i64,
    failures_last_24h: i64,
}

impl From<&StatsView> for Totals {
    fn from(stats: &StatsView) -> Self {
        let sum = |count: fn(&LabelStatsView) -> i64| stats.labels.iter().map(count).sum();
        Self {
            issued: sum(|l| l.issued),
            issued_last_24h: sum(|l| l.issued_last_24h),
            failures: sum(|l| l.failures),
            failures_last_24h: sum(|l| l.failures_last_24h),
        }
    }
}

#[derive(Template)]
#[template(path = "console/est.html")]
struct OverviewPage {
    head: Head,
    frame: Frame,
    enabled: bool,
    updated_at: Option<time::OffsetDateTime>,
    default: EndpointRow,
    labels: Vec<EndpointRow>,
    /// What the new label's form starts from.
    blank: EndpointRow,
    stats: StatsView,
    totals: Totals,
    /// The CAs that can issue, for the forms.
    cas: Vec<Choice>,
    templates: Vec<Choice>,
    error: Option<String>,
}

/// The page, with a refusal shown with its status.
async fn overview(app: &App, visitor: &Visitor, error: Option<ApiError>) -> Response {
    let frame = visitor.frame(OVERVIEW);
    let read = async {
        let config = ConfigView::new(app.authority.est_settings(&visitor.principal).await?, app);
        let stats = StatsView::from(app.authority.est_stats(&visitor.principal).await?);
        let named = choices::cas(app, &frame, Cas::All).await?;
        let cas = choices::cas(app, &frame, Cas::Issuing).await?;
        let templates = choices::templates(app, &frame).await?;
        let default_ca = choices::default_ca(app, &frame).await?;
        let row = |view, is_default| {
            EndpointRow::new(view, is_default, &named, &cas, &templates, default_ca)
        };
        let default = row(
            LabelView {
                label: DEFAULT_ENDPOINT.to_owned(),
                ca_id: config.ca_id,
                template_id: config.template_id,
                username: config.username,
                password_set: config.password_set,
                url: config.url,
            },
            true,
        );
        let labels = config.labels.into_iter().map(|l| row(l, false)).collect();
        let blank = row(
            LabelView {
                label: String::new(),
                ca_id: None,
                template_id: None,
                username: String::new(),
                password_set: false,
                url: String::new(),
            },
            false,
        );
        Ok::<_, ApiError>(OverviewPage {
            head: Head::new(),
            frame: visitor.frame(OVERVIEW),
            enabled: config.enabled,
            updated_at: config.updated_at,
            default,
            labels,
            blank,
            totals: Totals::from(&stats),
            stats,
            cas,
            templates,
            error: None,
        })
    };
    match read.await {
        Ok(mut shown) => {
            let status = error.as_ref().map_or(StatusCode::OK, ApiError::status);
            shown.error = error.map(|e| e.message().to_owned());
            page::render(status, &shown)
        }
        Err(e) => page::refused(frame, &e),
    }
}

/// GET `/enroll/est`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    overview(&app, &visitor, None).await
}

/// Applies `change`, then back to the page at `anchor`; a refusal is shown there.
async fn apply(
    app: &App,
    visitor: &Visitor,
    change: impl Future<Output = ApiResult<ConfigPatch>>,
    anchor: &str,
) -> Response {
    let done = async {
        app.authority
            .update_est_settings(&visitor.principal, change.await?.into())
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("{OVERVIEW}{anchor}")).into_response(),
        Err(e) => overview(app, visitor, Some(e)).await,
    }
}

/// The labels as they are, each keeping its password.
async fn current_labels(app: &App, visitor: &Visitor) -> ApiResult<Vec<LabelPatch>> {
    let settings = ConfigView::new(app.authority.est_settings(&visitor.principal).await?, app);
    Ok(settings.labels.iter().map(LabelPatch::from).collect())
}

/// Where label `label` is among `labels`.
fn position(labels: &[LabelPatch], label: &str) -> ApiResult<usize> {
    labels
        .iter()
        .position(|l| l.label == label)
        .ok_or_else(|| ApiError::not_found(format!("there is no EST label '{label}'")))
}

/// The change that sets the whole list of labels to `labels`.
fn all_labels(labels: Vec<LabelPatch>) -> ConfigPatch {
    ConfigPatch {
        labels: Some(labels),
        ..ConfigPatch::default()
    }
}

/// What an endpoint's form holds. A field that is not on the form (a select the visitor
/// cannot fill without `read:cas` or `read:templates`) leaves its setting as it is; a blank
/// password keeps the current one.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EndpointForm {
    ca_id: Option<String>,
    template_id: Option<String>,
    username: Option<String>,
    password: String,
    remove_password: Option<String>,
}

impl EndpointForm {
    /// The password change: `None` keeps the password, `Some(None)` removes it. A password is
    /// taken as typed: spaces may be part of it.
    fn password(&self) -> ApiResult<Option<Option<String>>> {
        match (self.remove_password.is_some(), self.password.is_empty()) {
            (false, true) => Ok(None),
            (true, true) => Ok(Some(None)),
            (false, false) => Ok(Some(Some(self.password.clone()))),
            (true, false) => Err(ApiError::invalid(
                "either type a new password or remove it, not both",
            )),
        }
    }

    /// The id picked in select `field`: `None` when it is not on the form, `Some(None)` for
    /// its blank choice.
    fn picked(field: &str, text: Option<&String>) -> ApiResult<Option<Option<i64>>> {
        text.map(|t| number(field, t)).transpose()
    }

    /// The user name, without the spaces around it (a Basic user name never needs them).
    fn username(&self) -> Option<String> {
        self.username.as_deref().map(|u| u.trim().to_owned())
    }

    /// The default endpoint's change, with the switch, as the REST API takes it.
    fn to_config(&self, enabled: bool) -> ApiResult<ConfigPatch> {
        Ok(ConfigPatch {
            enabled: Some(enabled),
            ca_id: Self::picked("ca_id", self.ca_id.as_ref())?,
            template_id: Self::picked("template_id", self.template_id.as_ref())?,
            username: self.username(),
            password: self.password()?,
            labels: None,
        })
    }

    /// `label` with this form's changes.
    fn applied_to(&self, label: LabelPatch) -> ApiResult<LabelPatch> {
        Ok(LabelPatch {
            ca_id: Self::picked("ca_id", self.ca_id.as_ref())?.unwrap_or(label.ca_id),
            template_id: Self::picked("template_id", self.template_id.as_ref())?
                .unwrap_or(label.template_id),
            username: self.username().unwrap_or(label.username),
            password: self.password()?,
            label: label.label,
        })
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    enabled: Option<String>,
    #[serde(flatten)]
    endpoint: EndpointForm,
}

/// POST `/enroll/est/settings`: the switch and the default endpoint.
pub async fn update_settings(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let change = async { form.endpoint.to_config(form.enabled.is_some()) };
    apply(&app, &visitor, change, "#settings").await
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct NewLabelForm {
    label: String,
    #[serde(flatten)]
    endpoint: EndpointForm,
}

/// POST `/enroll/est/labels`: a new label, served at once.
pub async fn create_label(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<NewLabelForm>,
) -> Response {
    let label = form.label.trim().to_owned();
    let change = async {
        let mut labels = current_labels(&app, &visitor).await?;
        // The list names each label once; here a name in use is a mistake, not a change.
        if position(&labels, &label).is_ok() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("there is already an EST label '{label}'"),
            ));
        }
        labels.push(form.endpoint.applied_to(LabelPatch {
            label: label.clone(),
            ca_id: None,
            template_id: None,
            username: String::new(),
            password: None,
        })?);
        Ok(all_labels(labels))
    };
    apply(&app, &visitor, change, &format!("#label-{label}")).await
}

/// POST `/enroll/est/labels/{label}`: changes the label (its name stays).
pub async fn update_label(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(label): Path<String>,
    Form(form): Form<EndpointForm>,
) -> Response {
    let change = async {
        let mut labels = current_labels(&app, &visitor).await?;
        let at = position(&labels, &label)?;
        let changed = form.applied_to(labels.remove(at))?;
        labels.insert(at, changed);
        Ok(all_labels(labels))
    };
    apply(&app, &visitor, change, &format!("#label-{label}")).await
}

/// POST `/enroll/est/labels/{label}/delete`: the label stops serving; its certificates stay.
pub async fn delete_label(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(label): Path<String>,
) -> Response {
    let change = async {
        let mut labels = current_labels(&app, &visitor).await?;
        labels.remove(position(&labels, &label)?);
        Ok(all_labels(labels))
    };
    apply(&app, &visitor, change, "#endpoints").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> LabelPatch {
        LabelPatch {
            label: "lab".into(),
            ca_id: Some(3),
            template_id: Some(4),
            username: "lab".into(),
            password: None,
        }
    }

    #[test]
    fn the_settings_form_becomes_the_rest_change() -> ApiResult<()> {
        let form = EndpointForm {
            ca_id: Some(String::new()),
            template_id: Some("7".into()),
            username: Some(" device ".into()),
            password: " a password with spaces ".into(),
            ..EndpointForm::default()
        };
        let patch = form.to_config(true)?;
        assert_eq!(patch.enabled, Some(true));
        assert_eq!(patch.ca_id, Some(None), "blank: the default CA");
        assert_eq!(patch.template_id, Some(Some(7)));
        assert_eq!(patch.username.as_deref(), Some("device"));
        assert_eq!(
            patch.password,
            Some(Some(" a password with spaces ".into())),
            "taken as typed"
        );
        assert_eq!(patch.labels, None, "the labels stay");

        let keep = EndpointForm::default().to_config(false)?;
        assert_eq!(
            keep,
            ConfigPatch {
                enabled: Some(false),
                ..ConfigPatch::default()
            },
            "what is not on the form stays, a blank password too"
        );
        let remove = EndpointForm {
            remove_password: Some("1".into()),
            ..EndpointForm::default()
        };
        assert_eq!(remove.to_config(true)?.password, Some(None));
        let both = EndpointForm {
            remove_password: Some("1".into()),
            password: "a new one, long enough".into(),
            ..EndpointForm::default()
        };
        assert!(both.to_config(true).is_err());
        let bad = EndpointForm {
            ca_id: Some("seven".into()),
            ..EndpointForm::default()
        };
        assert!(bad.to_config(true).is_err());
        Ok(())
    }

    #[test]
    fn a_label_form_changes_only_what_it_holds() -> ApiResult<()> {
        assert_eq!(
            EndpointForm::default().applied_to(lab())?,
            lab(),
            "nothing on the form: the label as it was, its password kept"
        );
        let form = EndpointForm {
            ca_id: Some(String::new()),
            username: Some(String::new()),
            remove_password: Some("1".into()),
            ..EndpointForm::default()
        };
        let changed = form.applied_to(lab())?;
        assert_eq!(
            changed,
            LabelPatch {
                ca_id: None,
                username: String::new(),
                password: Some(None),
                ..lab()
            }
        );
        let form = EndpointForm {
            template_id: Some(String::new()),
            password: "the new password".into(),
            ..EndpointForm::default()
        };
        let changed = form.applied_to(lab())?;
        assert_eq!(
            (changed.template_id, changed.password),
            (None, Some(Some("the new password".into())))
        );
        assert!(
            EndpointForm {
                template_id: Some("x".into()),
                ..EndpointForm::default()
            }
            .applied_to(lab())
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn the_forms_read_as_browsers_send_them() -> Result<(), serde_urlencoded::de::Error> {
        let form: SettingsForm = serde_urlencoded::from_str(
            "csrf_token=t&enabled=1&ca_id=&template_id=2&username=dev&password=p+w&remove_password=1",
        )?;
        assert!(form.enabled.is_some());
        assert_eq!(form.endpoint.ca_id.as_deref(), Some(""));
        assert_eq!(form.endpoint.template_id.as_deref(), Some("2"));
        assert_eq!(form.endpoint.username.as_deref(), Some("dev"));
        assert_eq!(form.endpoint.password, "p w");
        assert!(form.endpoint.remove_password.is_some());
        let form: NewLabelForm = serde_urlencoded::from_str("csrf_token=t&label=lab")?;
        assert_eq!(form.label, "lab");
        assert_eq!(form.endpoint.ca_id, None, "not on the form");
        Ok(())
    }

    #[test]
    fn a_label_is_found_by_its_name() {
        let labels = [lab()];
        assert_eq!(position(&labels, "lab").ok(), Some(0));
        let missing = position(&labels, "lost").err();
        assert_eq!(
            missing.map(|e| e.status()),
            Some(StatusCode::NOT_FOUND),
            "an unknown label"
        );
    }
}
