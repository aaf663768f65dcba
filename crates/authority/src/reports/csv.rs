//! Reports as CSV: a header row of the report's columns, one row per record, quoted where
//! needed. Text that a spreadsheet would run as a formula is defused.

use serde_json::Value;

use super::Report;
use crate::{Error, Result};

/// `report` as CSV.
pub(super) fn render(report: &Report) -> Result<Vec<u8>> {
    let failed = |e: csv::Error| Error::Internal(format!("writing a CSV report: {e}"));
    let columns = report.report_type.columns();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(columns).map_err(failed)?;
    for record in &report.records {
        out.write_record(columns.iter().map(|c| cell(record.get(*c))))
            .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| Error::Internal(format!("writing a CSV report: {e}")))
}

/// A field as CSV text. Strings come from certificates and audit records, which anyone who
/// can ask for a certificate partly controls: one a spreadsheet would read as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => defused(s),
        Some(Value::Array(items)) => defused(
            &items
                .iter()
                .map(|v| cell(Some(v)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Some(other) => other.to_string(),
    }
}

/// `text` as a CSV cell a spreadsheet shows as text: one that would start a formula (OWASP's
/// CSV injection) gets a leading `'`.
pub fn defused(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formulas_are_defused_and_other_values_kept() {
        for (value, text) in [
            (json!("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")"),
            (json!("+1"), "'+1"),
            (json!("-2"), "'-2"),
            (json!("@SUM(A1)"), "'@SUM(A1)"),
            (json!("\tx"), "'\tx"),
            (json!("\rx"), "'\rx"),
            (json!("a=b"), "a=b"),
            (json!("plain, with comma"), "plain, with comma"),
            (json!(-3), "-3"),
            (json!(true), "true"),
            (Value::Null, ""),
        ] {
            assert_eq!(cell(Some(&value)), text, "{value}");
        }
    }
}
