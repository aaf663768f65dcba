//! Report schedules and their delivery by mail.
//!
//! Each report type has one schedule (daily, weekly or monthly at a UTC time) kept in the
//! settings table. The `report_delivery` job sends a report once per scheduled occurrence:
//! the occurrence is claimed in the database before the mail goes out, so another node, or
//! this one after a restart, never sends it again. A delivery that fails is not retried; the
//! job's run says why, and the next occurrence goes out as usual.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, Time};

use super::{RenderedReport, ReportFormat, ReportParams, ReportType, rfc3339};
use crate::audit::Event;
use crate::email::{Mail, MailAttachment, html_escape, parse_address};
use crate::{Authority, Error, Permission, Principal, Result};

/// The settings key.
const KEY: &str = "report_schedules";
/// The most recipients of one schedule.
pub const MAX_RECIPIENTS: usize = 50;

/// How often a scheduled report goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// Every day at the time.
    Daily,
    /// Every week on `day_of_week` at the time.
    Weekly,
    /// Every month on `day_of_month` at the time.
    Monthly,
}

impl Frequency {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

impl FromStr for Frequency {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "daily" => Ok(Self::Daily),
            "weekly" => Ok(Self::Weekly),
            "monthly" => Ok(Self::Monthly),
            other => Err(Error::Invalid(format!(
                "config.frequency: '{other}' is none of daily, weekly, monthly"
            ))),
        }
    }
}

/// A report's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSchedule {
    /// Whether it goes out.
    pub enabled: bool,
    /// How often.
    pub frequency: Frequency,
    /// When, `HH:MM` UTC.
    pub time: String,
    /// For weekly: 0 (Monday) to 6 (Sunday).
    pub day_of_week: u8,
    /// For monthly: 1 to 28.
    pub day_of_month: u8,
    /// Who gets it.
    pub recipients: Vec<String>,
    /// `csv`, `json` or `pdf`.
    pub format: String,
    /// When it was last changed: occurrences before this are not sent.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub changed_at: Option<OffsetDateTime>,
}

impl Default for ReportSchedule {
    fn default() -> Self {
        Self {
            enabled: false,
            frequency: Frequency::Weekly,
            time: "08:00".to_owned(),
            day_of_week: 0,
            day_of_month: 1,
            recipients: Vec::new(),
            format: "csv".to_owned(),
            changed_at: None,
        }
    }
}

/// A new schedule as given, checked by [`Authority::update_report_schedule`].
#[derive(Debug, Clone, Default)]
pub struct ScheduleChange {
    /// Whether it goes out.
    pub enabled: bool,
    /// `daily`, `weekly` or `monthly`.
    pub frequency: String,
    /// `HH:MM`, 24-hour, UTC.
    pub time: String,
    /// For weekly: 0 (Monday) to 6 (Sunday); absent: 0.
    pub day_of_week: Option<i64>,
    /// For monthly: 1 to 28; absent: 1.
    pub day_of_month: Option<i64>,
    /// Email addresses, at most [`MAX_RECIPIENTS`].
    pub recipients: Vec<String>,
    /// `csv`, `json` or `pdf`.
    pub format: String,
}

/// `HH:MM`, 24-hour.
fn parse_time(text: &str) -> Result<Time> {
    let bad = || {
        Error::Invalid(format!(
            "config.time: '{text}' is not HH:MM (00:00 to 23:59)"
        ))
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u8 = h.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    Time::from_hms(h, m, 0).map_err(|_| bad())
}

impl ScheduleChange {
    /// The schedule this asks for, checked, as of `now`.
    fn check(self, now: OffsetDateTime) -> Result<ReportSchedule> {
        let frequency: Frequency = self.frequency.parse()?;
        parse_time(&self.time)?;
        let day_of_week = self.day_of_week.unwrap_or(0);
        let day_of_week = u8::try_from(day_of_week)
            .ok()
            .filter(|d| *d <= 6)
            .ok_or_else(|| {
                Error::Invalid("config.day_of_week: give 0 (Monday) to 6 (Sunday)".into())
            })?;
        let day_of_month = self.day_of_month.unwrap_or(1);
        let day_of_month = u8::try_from(day_of_month)
            .ok()
            .filter(|d| (1..=28).contains(d))
            .ok_or_else(|| Error::Invalid("config.day_of_month: give 1 to 28".into()))?;
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(Error::Invalid(format!(
                "config.recipients: at most {MAX_RECIPIENTS} addresses"
            )));
        }
        let mut recipients = Vec::with_capacity(self.recipients.len());
        for r in &self.recipients {
            let address = parse_address(r, "config.recipients")?.to_string();
            if !recipients.contains(&address) {
                recipients.push(address);
            }
        }
        if self.enabled && recipients.is_empty() {
            return Err(Error::Invalid(
                "config.recipients: an enabled schedule needs at least one address".into(),
            ));
        }
        let format: ReportFormat = self.format.parse().map_err(|_| {
            Error::Invalid(format!(
                "config.format: '{}' is none of csv, json, pdf",
                self.format
            ))
        })?;
        Ok(ReportSchedule {
            enabled: self.enabled,
            frequency,
            time: self.time,
            day_of_week,
            day_of_month,
            recipients,
            format: format.as_str().to_owned(),
            changed_at: Some(now),
        })
    }
}

impl ReportSchedule {
    /// The latest scheduled time at or before `now`.
    fn latest_occurrence(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = parse_time(&self.time).ok()?;
        let on = |date: Date| date.with_time(at).assume_utc();
        let today = now.date();
        let occurrence = match self.frequency {
            Frequency::Daily => {
                let t = on(today);
                if t <= now {
                    t
                } else {
                    on(today.previous_day()?)
                }
            }
            Frequency::Weekly => {
                let back = (i64::from(today.weekday().number_days_from_monday())
                    - i64::from(self.day_of_week))
                .rem_euclid(7);
                let t = on(today - Duration::days(back));
                if t <= now { t } else { t - Duration::days(7) }
            }
            Frequency::Monthly => {
                let this =
                    on(
                        Date::from_calendar_date(today.year(), today.month(), self.day_of_month)
                            .ok()?,
                    );
                if this <= now {
                    this
                } else {
                    let (year, month) = match today.month() {
                        Month::January => (today.year() - 1, Month::December),
                        m => (today.year(), m.previous()),
                    };
                    on(Date::from_calendar_date(year, month, self.day_of_month).ok()?)
                }
            }
        };
        Some(occurrence)
    }

    /// The occurrence due at `now`, if any: the latest one, when enabled and it came after
    /// the schedule was set.
    fn due(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if !self.enabled {
            return None;
        }
        let occurrence = self.latest_occurrence(now)?;
        let changed = self.changed_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        (occurrence >= changed).then_some(occurrence)
    }
}

impl Authority {
    async fn stored_schedules(&self) -> Result<BTreeMap<String, ReportSchedule>> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored report schedules: {e}"))),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Every report type's schedule (the default, off, for those never set).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn report_schedules(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(ReportType, ReportSchedule)>> {
        principal.require(Permission::AdminSystem, "reading the report schedules")?;
        let stored = self.stored_schedules().await?;
        Ok(ReportType::ALL
            .into_iter()
            .map(|t| (t, stored.get(t.id()).cloned().unwrap_or_default()))
            .collect())
    }

    /// Sets the schedule of `report_type`. Audited. Occurrences before now are not sent.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a frequency, time,
    /// day, address or format that is not one, more than [`MAX_RECIPIENTS`] recipients, or an
    /// enabled schedule without any; store errors.
    pub async fn update_report_schedule(
        &self,
        principal: &Principal,
        report_type: ReportType,
        change: ScheduleChange,
    ) -> Result<ReportSchedule> {
        principal.require(Permission::AdminSystem, "changing a report schedule")?;
        let now = self.now();
        let schedule = change.check(now)?;
        let mut all = self.stored_schedules().await?;
        all.insert(report_type.id().to_owned(), schedule.clone());
        let value = serde_json::to_value(&all)
            .map_err(|e| Error::Internal(format!("report schedules: {e}")))?;
        let details = format!(
            "{} {} at {} UTC, {} recipient(s), {}",
            if schedule.enabled {
                "enabled"
            } else {
                "disabled"
            },
            schedule.frequency.as_str(),
            schedule.time,
            schedule.recipients.len(),
            schedule.format
        );
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(KEY, &value, now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "report_schedule_updated",
                "report",
                report_type.id(),
                details,
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// Generates `report_type` now and mails it to `recipient` in its schedule's format,
    /// through the stored mail settings whether or not mail is on. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for an address that
    /// is not one or mail not set up; [`Error::Unavailable`] when the mail server does not
    /// take it.
    pub async fn send_test_report(
        &self,
        principal: &Principal,
        report_type: ReportType,
        recipient: &str,
    ) -> Result<()> {
        principal.require(Permission::AdminSystem, "sending a test report")?;
        let to = parse_address(recipient, "recipient")?.to_string();
        let schedule = self
            .stored_schedules()
            .await?
            .remove(report_type.id())
            .unwrap_or_default();
        let stored = self.stored_email().await?;
        let mail = self.report_mail(report_type, &schedule).await?;
        let mail = Mail {
            to: to.clone(),
            ..mail
        };
        let outcome = self.send_mail(&stored, std::slice::from_ref(&mail)).await;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "report_test_sent",
                "report",
                report_type.id(),
                match &outcome {
                    Ok(()) => format!("test report to {to} accepted"),
                    Err(e) => format!("test report to {to} failed: {e}"),
                },
            ),
        ))
        .await?;
        tx.commit().await?;
        outcome
    }

    /// The `report_delivery` job: sends every scheduled report whose occurrence is due and
    /// not claimed yet, one mail per recipient.
    pub(crate) async fn deliver_reports(&self) -> Result<String> {
        let schedules = self.stored_schedules().await?;
        let now = self.now();
        let due: Vec<(ReportType, ReportSchedule, OffsetDateTime)> = schedules
            .into_iter()
            .filter_map(|(id, s)| {
                let t = id.parse::<ReportType>().ok()?;
                let occurrence = s.due(now)?;
                Some((t, s, occurrence))
            })
            .collect();
        if due.is_empty() {
            return Ok("no report due".into());
        }
        let Some(email) = self.email_if_enabled().await? else {
            return Ok(format!(
                "{} report(s) due, not sent: email is off",
                due.len()
            ));
        };
        let (mut sent, mut failed) = (0, Vec::new());
        for (report_type, schedule, occurrence) in due {
            let period = rfc3339(occurrence);
            if !self
                .store
                .claim_report_delivery(report_type.id(), &period, now)
                .await?
            {
                continue;
            }
            let outcome = async {
                let mail = self.report_mail(report_type, &schedule).await?;
                let mails: Vec<Mail> = schedule
                    .recipients
                    .iter()
                    .map(|to| Mail {
                        to: to.clone(),
                        ..mail.clone()
                    })
                    .collect();
                self.send_mail(&email, &mails).await
            }
            .await;
            let error = outcome.as_ref().err().map(ToString::to_string);
            self.store
                .finish_report_delivery(report_type.id(), &period, self.now(), error.as_deref())
                .await?;
            match error {
                None => sent += 1,
                Some(e) => failed.push(format!("{}: {e}", report_type.id())),
            }
        }
        if failed.is_empty() {
            Ok(format!("sent {sent} scheduled report(s)"))
        } else {
            Err(Error::Unavailable(format!(
                "sent {sent} scheduled report(s); failed: {}",
                failed.join("; ")
            )))
        }
    }

    /// The mail carrying `report_type` as `schedule` asks, without its recipient.
    async fn report_mail(
        &self,
        report_type: ReportType,
        schedule: &ReportSchedule,
    ) -> Result<Mail> {
        let format: ReportFormat = schedule.format.parse().unwrap_or(ReportFormat::Csv);
        let report = self
            .build_report(report_type, ReportParams::default())
            .await?;
        let organization = self.report_organization().await?;
        let RenderedReport {
            filename,
            content_type,
            bytes,
        } = report.render(format, &organization)?;
        let text = format!(
            "The {} report of {organization}, generated {}: {} record(s). It is attached as {filename}.",
            report_type.name(),
            rfc3339(report.generated_at),
            report.total
        );
        Ok(Mail {
            to: String::new(),
            subject: format!("certmint report: {}", report_type.name()),
            text: format!("{text}\n"),
            html: format!("<p>{}</p>", html_escape(&text)),
            attachments: vec![MailAttachment {
                filename,
                content_type: content_type.to_owned(),
                bytes,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn schedule(frequency: Frequency, time: &str) -> ReportSchedule {
        ReportSchedule {
            enabled: true,
            frequency,
            time: time.into(),
            day_of_week: 2,
            day_of_month: 15,
            recipients: vec!["ops@example.com".into()],
            format: "csv".into(),
            changed_at: Some(datetime!(2026-01-01 00:00 UTC)),
        }
    }

    #[test]
    fn the_latest_occurrence_follows_the_frequency() {
        // 2026-12-09 is a Wednesday (day 2).
        let now = datetime!(2026-12-09 07:30 UTC);
        let cases = [
            (Frequency::Daily, "08:00", datetime!(2026-12-08 08:00 UTC)),
            (Frequency::Daily, "07:00", datetime!(2026-12-09 07:00 UTC)),
            (Frequency::Weekly, "07:00", datetime!(2026-12-09 07:00 UTC)),
            (Frequency::Weekly, "08:00", datetime!(2026-12-02 08:00 UTC)),
            (Frequency::Monthly, "08:00", datetime!(2026-11-15 08:00 UTC)),
        ];
        for (frequency, time, expected) in cases {
            assert_eq!(
                schedule(frequency, time).latest_occurrence(now),
                Some(expected),
                "{frequency:?} {time}"
            );
        }
        let january = datetime!(2026-01-10 00:00 UTC);
        assert_eq!(
            schedule(Frequency::Monthly, "08:00").latest_occurrence(january),
            Some(datetime!(2025-12-15 08:00 UTC))
        );
    }

    #[test]
    fn only_occurrences_after_the_change_are_due() {
        let mut s = schedule(Frequency::Daily, "08:00");
        s.changed_at = Some(datetime!(2026-12-09 09:00 UTC));
        assert_eq!(s.due(datetime!(2026-12-09 10:00 UTC)), None);
        assert_eq!(
            s.due(datetime!(2026-12-10 08:00 UTC)),
            Some(datetime!(2026-12-10 08:00 UTC))
        );
        s.enabled = false;
        assert_eq!(s.due(datetime!(2026-12-10 08:00 UTC)), None);
    }

    #[test]
    fn changes_are_checked() {
        let now = datetime!(2026-12-09 10:00 UTC);
        let good = ScheduleChange {
            enabled: true,
            frequency: "weekly".into(),
            time: "08:00".into(),
            day_of_week: Some(1),
            day_of_month: None,
            recipients: vec!["a@example.com".into()],
            format: "pdf".into(),
        };
        assert!(good.clone().check(now).is_ok());
        let bad = [
            ScheduleChange {
                frequency: "hourly".into(),
                ..good.clone()
            },
            ScheduleChange {
                time: "8:00".into(),
                ..good.clone()
            },
            ScheduleChange {
                time: "24:00".into(),
                ..good.clone()
            },
            ScheduleChange {
                day_of_week: Some(7),
                ..good.clone()
            },
            ScheduleChange {
                day_of_month: Some(29),
                ..good.clone()
            },
            ScheduleChange {
                recipients: vec!["not an address".into()],
                ..good.clone()
            },
            ScheduleChange {
                recipients: vec![],
                ..good.clone()
            },
            ScheduleChange {
                recipients: (0..51).map(|i| format!("u{i}@example.com")).collect(),
                ..good.clone()
            },
            ScheduleChange {
                format: "xml".into(),
                ..good.clone()
            },
        ];
        for change in bad {
            assert!(
                matches!(change.clone().check(now), Err(Error::Invalid(_))),
                "{change:?}"
            );
        }
    }
}
