//! Reports: the inventory, expiry, revocation, CA, audit and compliance figures as JSON, CSV
//! or PDF, an executive PDF, and the schedules that mail them.
//!
//! Reading a report needs the permission of what it shows (`read:certificates`, `read:cas` or
//! `read:audit`); schedules and test mail need `admin:system`. A report holds at most
//! [`MAX_RECORDS`] records, whatever the inventory: `total` still counts every match, and
//! `truncated` says when records were left out.

mod compliance;
mod csv;
mod executive;
mod generate;
mod pdf;
mod schedule;

use std::str::FromStr;

use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use compliance::ComplianceCheck;
pub use csv::{cell as csv_cell, defused as csv_text};
pub use schedule::{Frequency, ReportSchedule, ScheduleChange};

use crate::{Error, Permission, Result};

/// The most records one report holds.
pub const MAX_RECORDS: u32 = 10_000;
/// The look-ahead (expiring certificates) or look-back (audit summary) when none is given.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest look-ahead or look-back, in days.
pub const MAX_DAYS: i64 = 3650;

/// A kind of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportType {
    /// Certificates expiring within N days.
    ExpiringCertificates,
    /// Revoked certificates with their reason.
    RevokedCertificates,
    /// The CA tree with issued certificate counts.
    CaHierarchy,
    /// Audit activity grouped by action.
    AuditSummary,
    /// Policy compliance across the live certificates.
    ComplianceStatus,
    /// Every certificate with its metadata.
    CertificateInventory,
}

impl ReportType {
    /// Every report type.
    pub const ALL: [ReportType; 6] = [
        Self::ExpiringCertificates,
        Self::RevokedCertificates,
        Self::CaHierarchy,
        Self::AuditSummary,
        Self::ComplianceStatus,
        Self::CertificateInventory,
    ];

    /// Its key in the API.
    pub fn id(self) -> &'static str {
        match self {
            Self::ExpiringCertificates => "expiring_certificates",
            Self::RevokedCertificates => "revoked_certificates",
            Self::CaHierarchy => "ca_hierarchy",
            Self::AuditSummary => "audit_summary",
            Self::ComplianceStatus => "compliance_status",
            Self::CertificateInventory => "certificate_inventory",
        }
    }

    /// Its title.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExpiringCertificates => "Expiring Certificates",
            Self::RevokedCertificates => "Revoked Certificates",
            Self::CaHierarchy => "CA Hierarchy",
            Self::AuditSummary => "Audit Summary",
            Self::ComplianceStatus => "Compliance Status",
            Self::CertificateInventory => "Certificate Inventory",
        }
    }

    /// What it shows.
    pub fn description(self) -> &'static str {
        match self {
            Self::ExpiringCertificates => "Certificates expiring within a specified number of days",
            Self::RevokedCertificates => "All revoked certificates with reason and date",
            Self::CaHierarchy => "Certificate Authority tree with counts",
            Self::AuditSummary => "Recent audit log activity by action type",
            Self::ComplianceStatus => "Policy compliance overview",
            Self::CertificateInventory => "Full inventory of all certificates",
        }
    }

    /// The parameters it takes.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Self::ExpiringCertificates | Self::AuditSummary => &["days"],
            _ => &[],
        }
    }

    /// The permission reading it needs.
    pub fn permission(self) -> Permission {
        match self {
            Self::CaHierarchy => Permission::ReadCas,
            Self::AuditSummary => Permission::ReadAudit,
            _ => Permission::ReadCertificates,
        }
    }

    /// The record fields, in column order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Self::ExpiringCertificates => &[
                "id",
                "common_name",
                "serial",
                "ca",
                "not_after",
                "days_left",
                "key_type",
                "sans",
            ],
            Self::RevokedCertificates => &[
                "id",
                "common_name",
                "serial",
                "ca",
                "revoked_at",
                "reason",
                "not_after",
            ],
            Self::CaHierarchy => &[
                "id",
                "name",
                "type",
                "parent",
                "depth",
                "subject",
                "active",
                "not_after",
                "certificates",
            ],
            Self::AuditSummary => &["action", "total", "failures", "last_at"],
            Self::ComplianceStatus => &[
                "check",
                "description",
                "status",
                "applicable",
                "compliant",
                "non_compliant",
            ],
            Self::CertificateInventory => &[
                "id",
                "common_name",
                "subject",
                "serial",
                "ca",
                "status",
                "not_before",
                "not_after",
                "key_type",
                "signature_algorithm",
                "source",
                "is_ca",
                "sans",
            ],
        }
    }

    /// The columns a PDF page has room for.
    fn pdf_columns(self) -> &'static [&'static str] {
        match self {
            Self::ExpiringCertificates => {
                &["common_name", "serial", "ca", "not_after", "days_left"]
            }
            Self::RevokedCertificates => &["common_name", "serial", "ca", "revoked_at", "reason"],
            Self::CaHierarchy => &[
                "name",
                "type",
                "parent",
                "active",
                "not_after",
                "certificates",
            ],
            Self::AuditSummary => &["action", "total", "failures", "last_at"],
            Self::ComplianceStatus => &[
                "check",
                "status",
                "applicable",
                "compliant",
                "non_compliant",
            ],
            Self::CertificateInventory => &[
                "common_name",
                "serial",
                "ca",
                "status",
                "not_after",
                "key_type",
            ],
        }
    }
}

impl FromStr for ReportType {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id).ok_or_else(|| {
            Error::Invalid(format!(
                "report_type: '{id}' is none of {}",
                Self::ALL.map(Self::id).join(", ")
            ))
        })
    }
}

/// What a report is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFormat {
    /// The JSON the API answers with.
    #[default]
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// A PDF document with a chart and a table.
    Pdf,
}

impl ReportFormat {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Pdf => "pdf",
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Pdf => "application/pdf",
        }
    }
}

impl FromStr for ReportFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "pdf" => Ok(Self::Pdf),
            other => Err(Error::Invalid(format!(
                "format: '{other}' is none of json, csv, pdf"
            ))),
        }
    }
}

/// The parameters of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportParams {
    /// Look-ahead (expiring certificates) or look-back (audit summary), 1 to [`MAX_DAYS`].
    pub days: i64,
}

impl ReportParams {
    /// Checks `days` (absent: [`DEFAULT_DAYS`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] outside 1 to [`MAX_DAYS`].
    pub fn new(days: Option<i64>) -> Result<Self> {
        let days = days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::Invalid(format!(
                "params.days: give 1 to {MAX_DAYS} days"
            )));
        }
        Ok(Self { days })
    }
}

impl Default for ReportParams {
    fn default() -> Self {
        Self { days: DEFAULT_DAYS }
    }
}

/// A generated report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Which report.
    pub report_type: ReportType,
    /// Its parameters.
    pub params: ReportParams,
    /// When it was made.
    pub generated_at: OffsetDateTime,
    /// The records, at most [`MAX_RECORDS`], each with the fields of
    /// [`ReportType::columns`].
    pub records: Vec<Map<String, Value>>,
    /// How many records matched in all.
    pub total: i64,
    /// What the chart of the PDF shows: a title and labelled counts.
    pub chart: (String, Vec<(String, i64)>),
}

impl Report {
    /// Whether records were left out ([`MAX_RECORDS`]).
    pub fn truncated(&self) -> bool {
        usize::try_from(self.total).unwrap_or(usize::MAX) > self.records.len()
    }

    /// The JSON the API answers with (the `data` of its envelope).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "report_type": self.report_type.id(),
            "generated_at": rfc3339(self.generated_at),
            "params": {"days": self.params.days},
            "records": self.records,
            "total": self.total,
            "truncated": self.truncated(),
        })
    }

    /// The report rendered as `format`.
    ///
    /// # Errors
    /// [`Error::Internal`] when rendering fails.
    pub fn render(&self, format: ReportFormat, organization: &str) -> Result<RenderedReport> {
        let bytes = match format {
            ReportFormat::Json => serde_json::to_vec_pretty(&self.to_json())
                .map_err(|e| Error::Internal(format!("report JSON: {e}")))?,
            ReportFormat::Csv => csv::render(self)?,
            ReportFormat::Pdf => pdf::report(self, organization),
        };
        Ok(RenderedReport {
            filename: format!(
                "{}-{}.{}",
                self.report_type.id(),
                self.generated_at.date(),
                format.as_str()
            ),
            content_type: format.content_type(),
            bytes,
        })
    }
}

/// A report as a file.
#[derive(Debug, Clone)]
pub struct RenderedReport {
    /// Its file name, e.g. `revoked_certificates-2026-12-07.csv`.
    pub filename: String,
    /// Its media type.
    pub content_type: &'static str,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// `t` as RFC 3339, to the second: what reports show and what names a schedule's occurrence.
fn rfc3339(t: OffsetDateTime) -> String {
    crate::rfc3339(t.replace_nanosecond(0).unwrap_or(t))
}
