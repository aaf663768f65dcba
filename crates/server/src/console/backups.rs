//! `/system/backup`: backups from the console — write one now, the backups in this node's
//! directory with each one's rows per table, download and delete them, restore one (from the
//! directory, or uploaded) and the schedule of automatic ones. Everything goes through the
//! authority, which checks `admin:system` and audits as it does for the REST API.
//!
//! A backup runs within its request; while one runs on this node the page says so and
//! reloads itself until it is done. A restore ends with this node starting again over the
//! restored rows, sessions included (one started since the backup is gone): the page says so
//! and sends its visitor to the login page.

use askama::Template;
use axum::Extension;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::form::{Form, blank_is_none, number};
use super::page::{self, Frame, Head, Visitor, filters};
use crate::App;
use crate::api::v2::backup::{self, BackupView, RestoreView, ScheduleView};
use crate::error::{ApiError, ApiResult};
use authority::backup::{BackupKind, BackupRequest, BackupScheduleChange, Frequency};

/// The page.
const PAGE: &str = "/system/backup";

/// The days a weekly backup may run on, as the schedule names them.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// What the page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    /// The backup just written.
    created: Option<BackupView>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/backup.html")]
struct BackupPage {
    head: Head,
    frame: Frame,
    backups: Vec<BackupView>,
    schedule: ScheduleView,
    /// Whether a backup or restore runs on this node now.
    running: bool,
    days: [&'static str; 7],
    created: Option<BackupView>,
    error: Option<String>,
}

/// The page, with `shown`.
async fn backup_page(app: &App, visitor: &Visitor, shown: Shown) -> Response {
    let frame = visitor.frame(PAGE);
    let read = async {
        let backups = app.authority.backups(&visitor.principal).await?;
        let schedule = app.authority.backup_schedule(&visitor.principal).await?;
        Ok::<_, ApiError>((backups, schedule))
    };
    let status = match (&shown.error, &shown.created) {
        (Some(e), _) => e.status(),
        (None, Some(_)) => StatusCode::CREATED,
        (None, None) => StatusCode::OK,
    };
    match read.await {
        Ok((backups, schedule)) => page::render(
            status,
            &BackupPage {
                head: Head::new(),
                frame,
                backups: backups.into_iter().map(BackupView::from).collect(),
                schedule: schedule.into(),
                running: app.authority.backup_running(),
                days: DAYS,
                created: shown.created,
                error: shown.error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// The page with a refusal.
async fn refused(app: &App, visitor: &Visitor, e: ApiError) -> Response {
    let shown = Shown {
        error: Some(e),
        ..Shown::default()
    };
    backup_page(app, visitor, shown).await
}

/// GET `/system/backup`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    backup_page(&app, &visitor, Shown::default()).await
}

/// The form of a backup now.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    passphrase: String,
    include_master_key: Option<String>,
}

/// POST `/system/backup/create`: a backup now; the page shows it, or that another runs.
pub async fn create(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CreateForm>,
) -> Response {
    let request = BackupRequest {
        passphrase: Zeroizing::new(form.passphrase),
        include_master_key: form.include_master_key.is_some(),
    };
    match app
        .authority
        .create_backup(&visitor.principal, request)
        .await
    {
        Ok(record) => {
            let shown = Shown {
                created: Some(record.into()),
                ..Shown::default()
            };
            backup_page(&app, &visitor, shown).await
        }
        Err(e) => refused(&app, &visitor, e.into()).await,
    }
}

/// GET `/system/backup/{id}/download`: the encrypted file.
pub async fn download(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    match backup::download_of(&app, &visitor.principal, &id).await {
        Ok(response) => response,
        Err(e) => page::refused(visitor.frame(PAGE), &e),
    }
}

/// POST `/system/backup/{id}/delete`.
pub async fn delete(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    match app.authority.delete_backup(&visitor.principal, &id).await {
        Ok(_) => Redirect::to(&format!("{PAGE}#backups")).into_response(),
        Err(e) => refused(&app, &visitor, e.into()).await,
    }
}

#[derive(Template)]
#[template(path = "console/backup_restored.html")]
struct RestoredPage {
    head: Head,
    frame: Frame,
    restored: RestoreView,
}

/// The restore of `file`, and the page saying this node starts again.
async fn restore(
    app: &App,
    visitor: &Visitor,
    file: ApiResult<(std::fs::File, Zeroizing<String>)>,
) -> Response {
    let restored = async {
        let (file, passphrase) = file?;
        backup::restored(app, &visitor.principal, file, passphrase).await
    };
    match restored.await {
        Ok(restored) => page::render(
            StatusCode::OK,
            &RestoredPage {
                head: Head::new(),
                frame: visitor.frame(PAGE),
                restored,
            },
        ),
        Err(e) => refused(app, visitor, e).await,
    }
}

/// The form of a restore from this node's directory.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RestoreForm {
    backup_id: String,
    passphrase: String,
}

/// POST `/system/backup/restore`: a backup of this node's directory restored.
pub async fn restore_shelved(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<RestoreForm>,
) -> Response {
    let file = backup::shelved(&app, form.backup_id.trim())
        .map(|file| (file, Zeroizing::new(form.passphrase)));
    restore(&app, &visitor, file).await
}

/// POST `/system/backup/upload`: an uploaded backup (parts `file` and `passphrase`) restored.
pub async fn restore_uploaded(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    upload: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let file = match upload {
        Ok(form) => backup::uploaded(&app, form).await,
        Err(e) => Err(ApiError::bad_request(e.body_text())),
    };
    restore(&app, &visitor, file).await
}

/// The schedule's form. A blank passphrase keeps the one set.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ScheduleForm {
    enabled: Option<String>,
    frequency: String,
    time: String,
    day: String,
    keep: String,
    retention_days: String,
    include_master_key: Option<String>,
    passphrase: String,
}

impl ScheduleForm {
    fn to_change(&self) -> ApiResult<BackupScheduleChange> {
        let frequency = match self.frequency.trim() {
            "hourly" => Frequency::Hourly,
            "daily" => Frequency::Daily,
            "weekly" => Frequency::Weekly,
            other => {
                return Err(ApiError::invalid(format!(
                    "frequency must be hourly, daily or weekly, not '{other}'"
                )));
            }
        };
        let given = |text: &str| blank_is_none(text).map(str::to_owned);
        Ok(BackupScheduleChange {
            enabled: Some(self.enabled.is_some()),
            time: (frequency != Frequency::Hourly)
                .then(|| given(&self.time))
                .flatten(),
            day: (frequency == Frequency::Weekly)
                .then(|| given(&self.day))
                .flatten(),
            frequency: Some(frequency),
            keep: number("keep", &self.keep)?,
            retention_days: Some(number("retention_days", &self.retention_days)?),
            include_master_key: Some(self.include_master_key.is_some()),
            passphrase: (!self.passphrase.is_empty())
                .then(|| Zeroizing::new(self.passphrase.clone())),
        })
    }
}

/// POST `/system/backup/schedule`.
pub async fn update_schedule(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<ScheduleForm>,
) -> Response {
    let done = async {
        app.authority
            .update_backup_schedule(&visitor.principal, form.to_change()?)
            .await?;
        Ok::<_, ApiError>(())
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("{PAGE}#schedule")).into_response(),
        Err(e) => refused(&app, &visitor, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_form_sends_what_its_frequency_uses() -> ApiResult<()> {
        let form = ScheduleForm {
            enabled: Some("1".into()),
            frequency: "weekly".into(),
            time: " 03:30 ".into(),
            day: "sun".into(),
            keep: "5".into(),
            retention_days: String::new(),
            include_master_key: None,
            passphrase: String::new(),
        };
        let change = form.to_change()?;
        assert_eq!(change.frequency, Some(Frequency::Weekly));
        assert_eq!(change.time.as_deref(), Some("03:30"));
        assert_eq!(change.day.as_deref(), Some("sun"));
        assert_eq!(change.keep, Some(5));
        assert_eq!(change.retention_days, Some(None), "blank: no age limit");
        assert_eq!(change.include_master_key, Some(false));
        assert!(change.passphrase.is_none(), "blank keeps the passphrase");
        let hourly = ScheduleForm {
            frequency: "hourly".into(),
            ..form
        }
        .to_change()?;
        assert_eq!((hourly.time, hourly.day), (None, None));
        assert!(
            ScheduleForm {
                frequency: "monthly".into(),
                ..ScheduleForm::default()
            }
            .to_change()
            .is_err()
        );
        Ok(())
    }
}
