//! Reports as PDF: A4 pages in the standard Helvetica fonts (no font file to embed), charts
//! drawn as vector shapes, tables that run over as many pages as they need.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};
use time::OffsetDateTime;

use super::csv::cell;
use super::executive::Executive;
use super::{MAX_RECORDS, Report, rfc3339};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
/// Helvetica's average glyph width, in ems: enough to cut text to a column's width.
const AVERAGE_GLYPH: f32 = 0.52;
/// The most rows a PDF table shows; CSV and JSON carry them all (up to [`MAX_RECORDS`]).
const MAX_TABLE_ROWS: usize = 2_000;
/// The most bars a chart shows.
const MAX_BARS: usize = 15;

/// Bar colours, as RGB.
const PALETTE: [(f32, f32, f32); 6] = [
    (0.16, 0.38, 0.67),
    (0.20, 0.60, 0.40),
    (0.85, 0.55, 0.13),
    (0.75, 0.22, 0.20),
    (0.45, 0.35, 0.65),
    (0.35, 0.55, 0.60),
];
const GREEN: (f32, f32, f32) = (0.20, 0.60, 0.40);
const RED: (f32, f32, f32) = (0.75, 0.22, 0.20);

/// A document being written, page by page, top to bottom.
struct Doc {
    title: String,
    pages: Vec<Content>,
    page: Content,
    /// Where the next line goes.
    y: f32,
}

impl Doc {
    fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            pages: Vec::new(),
            page: Content::new(),
            y: HEIGHT - MARGIN,
        }
    }

    fn new_page(&mut self) {
        let done = std::mem::replace(&mut self.page, Content::new());
        self.pages.push(done);
        self.y = HEIGHT - MARGIN;
    }

    /// Starts a page unless `height` more points fit on this one.
    fn room(&mut self, height: f32) {
        if self.y - height < MARGIN + 20.0 {
            self.new_page();
        }
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let bytes = win_ansi(text);
        self.page
            .begin_text()
            .set_font(if bold { BOLD } else { REGULAR }, size)
            .next_line(x, y)
            .show(Str(&bytes))
            .end_text();
    }

    fn fill(&mut self, (r, g, b): (f32, f32, f32), x: f32, y: f32, w: f32, h: f32) {
        self.page
            .set_fill_rgb(r, g, b)
            .rect(x, y, w, h)
            .fill_nonzero()
            .set_fill_gray(0.0);
    }

    fn heading(&mut self, text: &str) {
        self.room(40.0);
        self.y -= 22.0;
        self.text_at(MARGIN, self.y, 15.0, true, text);
        self.y -= 6.0;
        self.page
            .set_stroke_gray(0.6)
            .move_to(MARGIN, self.y)
            .line_to(WIDTH - MARGIN, self.y)
            .stroke();
        self.y -= 6.0;
    }

    /// A paragraph, wrapped to the page.
    fn para(&mut self, text: &str) {
        let per_line = fit_chars(WIDTH - 2.0 * MARGIN, 10.0);
        for line in wrap(text, per_line) {
            self.room(14.0);
            self.y -= 14.0;
            self.text_at(MARGIN, self.y, 10.0, false, &line);
        }
    }

    /// Label and value pairs, two columns of text.
    fn facts(&mut self, facts: &[(&str, String)]) {
        for (label, value) in facts {
            self.room(15.0);
            self.y -= 15.0;
            self.text_at(MARGIN, self.y, 10.0, true, label);
            self.text_at(MARGIN + 230.0, self.y, 10.0, false, value);
        }
    }

    /// A horizontal bar chart of `bars`, each bar its label's count.
    fn bar_chart(&mut self, title: &str, bars: &[(String, i64)]) {
        let bars = &bars[..bars.len().min(MAX_BARS)];
        self.room(30.0 + 16.0 * bars.len().max(1) as f32);
        self.y -= 18.0;
        self.text_at(MARGIN, self.y, 11.0, true, title);
        if bars.is_empty() {
            self.y -= 14.0;
            self.text_at(MARGIN, self.y, 10.0, false, "Nothing to show.");
            return;
        }
        let label_width = 160.0;
        let room = WIDTH - 2.0 * MARGIN - label_width - 50.0;
        let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f32;
        for (i, (label, n)) in bars.iter().enumerate() {
            self.y -= 16.0;
            let label = clip(label, fit_chars(label_width - 6.0, 9.0));
            self.text_at(MARGIN, self.y + 2.0, 9.0, false, &label);
            let w = (*n as f32 / max * room).max(if *n > 0 { 1.0 } else { 0.0 });
            self.fill(
                PALETTE[i % PALETTE.len()],
                MARGIN + label_width,
                self.y,
                w,
                11.0,
            );
            self.text_at(
                MARGIN + label_width + w + 4.0,
                self.y + 2.0,
                9.0,
                false,
                &n.to_string(),
            );
        }
        self.y -= 6.0;
    }

    /// One stacked bar per item: the part that passes in green, the part that fails in red.
    fn pass_fail_chart(&mut self, title: &str, items: &[(String, i64, i64)]) {
        self.room(30.0 + 16.0 * items.len() as f32);
        self.y -= 18.0;
        self.text_at(MARGIN, self.y, 11.0, true, title);
        let label_width = 160.0;
        let room = WIDTH - 2.0 * MARGIN - label_width - 90.0;
        for (label, pass, fail) in items {
            self.y -= 16.0;
            self.text_at(MARGIN, self.y + 2.0, 9.0, false, label);
            let all = (pass + fail).max(1) as f32;
            let pass_w = *pass as f32 / all * room;
            let fail_w = *fail as f32 / all * room;
            let x = MARGIN + label_width;
            if pass + fail == 0 {
                self.page
                    .set_stroke_gray(0.6)
                    .rect(x, self.y, room, 11.0)
                    .stroke();
            }
            self.fill(GREEN, x, self.y, pass_w, 11.0);
            self.fill(RED, x + pass_w, self.y, fail_w, 11.0);
            self.text_at(
                x + room + 6.0,
                self.y + 2.0,
                9.0,
                false,
                &format!("{pass} ok / {fail} fail"),
            );
        }
        self.y -= 6.0;
    }

    /// A table with a header row; widths are fractions of the page's width.
    fn table(&mut self, headers: &[&str], widths: &[f32], rows: &[Vec<String>]) {
        let full = WIDTH - 2.0 * MARGIN;
        let header = |doc: &mut Doc| {
            doc.room(30.0);
            doc.y -= 16.0;
            doc.fill((0.90, 0.92, 0.95), MARGIN, doc.y - 3.0, full, 14.0);
            let mut x = MARGIN + 2.0;
            for (h, w) in headers.iter().zip(widths) {
                let text = clip(h, fit_chars(w * full - 4.0, 8.0));
                doc.text_at(x, doc.y, 8.0, true, &text);
                x += w * full;
            }
        };
        header(self);
        for row in rows {
            if self.y - 12.0 < MARGIN + 20.0 {
                self.new_page();
                header(self);
            }
            self.y -= 12.0;
            let mut x = MARGIN + 2.0;
            for (value, w) in row.iter().zip(widths) {
                let text = clip(value, fit_chars(w * full - 4.0, 8.0));
                self.text_at(x, self.y, 8.0, false, &text);
                x += w * full;
            }
        }
        self.y -= 6.0;
    }

    /// The PDF: every page with a footer naming the document and the page.
    fn finish(mut self, generated_at: OffsetDateTime) -> Vec<u8> {
        self.new_page();
        let count = self.pages.len();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first = 6;
        let page_ref = |i: usize| Ref::new(first + 2 * i32::try_from(i).unwrap_or(0));
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids((0..count).map(page_ref))
            .count(i32::try_from(count).unwrap_or(i32::MAX));
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.document_info(info)
            .title(TextStr(&self.title))
            .producer(TextStr("certmint"));
        let pages = std::mem::take(&mut self.pages);
        for (i, mut content) in pages.into_iter().enumerate() {
            let footer = format!(
                "{} - generated {} - page {} of {count}",
                self.title,
                rfc3339(generated_at),
                i + 1
            );
            let bytes = win_ansi(&footer);
            content
                .set_fill_gray(0.4)
                .begin_text()
                .set_font(REGULAR, 8.0)
                .next_line(MARGIN, MARGIN - 20.0)
                .show(Str(&bytes))
                .end_text();
            let id = page_ref(i);
            let contents = Ref::new(id.get() + 1);
            let mut page = pdf.page(id);
            page.parent(tree)
                .media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT))
                .contents(contents);
            page.resources()
                .fonts()
                .pair(REGULAR, regular)
                .pair(BOLD, bold);
            drop(page);
            pdf.stream(contents, &content.finish());
        }
        pdf.finish()
    }
}

/// `report` as a PDF: title, summary, chart and the records as a table.
pub(super) fn report(report: &Report, organization: &str) -> Vec<u8> {
    let t = report.report_type;
    let mut doc = Doc::new(&format!("{} report", t.name()));
    doc.text_at(MARGIN, doc.y - 24.0, 22.0, true, t.name());
    doc.y -= 44.0;
    doc.para(&format!(
        "{organization} - {} - generated {}",
        t.description(),
        rfc3339(report.generated_at)
    ));
    let mut facts = vec![("Records", report.total.to_string())];
    if !t.params().is_empty() {
        facts.push(("Days", report.params.days.to_string()));
    }
    doc.facts(&facts);
    let (title, bars) = &report.chart;
    doc.bar_chart(title, bars);
    let columns = t.pdf_columns();
    let rows: Vec<Vec<String>> = report
        .records
        .iter()
        .take(MAX_TABLE_ROWS)
        .map(|r| columns.iter().map(|c| cell(r.get(*c))).collect())
        .collect();
    let weight = |c: &str| match c {
        "common_name" | "name" | "check" | "action" | "description" => 3.0,
        "serial" | "ca" | "parent" | "not_after" | "revoked_at" | "last_at" | "reason" => 2.2,
        _ => 1.2,
    };
    let sum: f32 = columns.iter().map(|c| weight(c)).sum();
    let widths: Vec<f32> = columns.iter().map(|c| weight(c) / sum).collect();
    doc.heading("Records");
    doc.table(columns, &widths, &rows);
    if report.records.len() > MAX_TABLE_ROWS || report.truncated() {
        doc.para(&format!(
            "The table shows {} of {} records; the CSV and JSON forms carry up to {MAX_RECORDS}.",
            rows.len(),
            report.total
        ));
    }
    doc.finish(report.generated_at)
}

/// The executive report.
pub(super) fn executive(e: &Executive) -> Vec<u8> {
    let mut doc = Doc::new("Executive certificate report");
    // Cover page.
    doc.fill((0.16, 0.38, 0.67), 0.0, HEIGHT - 260.0, WIDTH, 260.0);
    doc.page.set_fill_rgb(1.0, 1.0, 1.0);
    doc.text_at(MARGIN, HEIGHT - 150.0, 28.0, true, "Certificate Management");
    doc.text_at(MARGIN, HEIGHT - 185.0, 28.0, true, "Executive Report");
    doc.page.set_fill_gray(0.0);
    doc.text_at(MARGIN, HEIGHT - 330.0, 18.0, true, &e.organization);
    doc.text_at(
        MARGIN,
        HEIGHT - 360.0,
        12.0,
        false,
        &format!("Generated {}", rfc3339(e.generated_at)),
    );
    doc.text_at(
        MARGIN,
        HEIGHT - 380.0,
        12.0,
        false,
        &format!(
            "{} certificates, {} certificate authorities",
            e.certificates,
            e.cas.len()
        ),
    );
    doc.new_page();

    doc.heading("Executive summary");
    doc.facts(&[
        ("Certificates", e.certificates.to_string()),
        ("Active", e.states.active.to_string()),
        ("Expiring within 30 days", e.states.expiring.to_string()),
        ("Expired", e.states.expired.to_string()),
        ("Revoked", e.states.revoked.to_string()),
        ("Certificate authorities", e.cas.len().to_string()),
        ("Compliance score", format!("{}%", e.compliance_score())),
    ]);
    doc.bar_chart(
        "Certificates by status",
        &[
            ("active".to_owned(), e.states.active),
            ("expiring (30 days)".to_owned(), e.states.expiring),
            ("expired".to_owned(), e.states.expired),
            ("revoked".to_owned(), e.states.revoked),
        ],
    );

    doc.heading("Risk assessment");
    doc.facts(&[
        ("Risk level", e.risk_level().to_owned()),
        ("Expired, not revoked", e.states.expired.to_string()),
        ("Expiring within 7 days", e.expiring_7.to_string()),
        ("Expiring within 30 days", e.states.expiring.to_string()),
        ("Weak keys in use", e.check("key_strength").to_string()),
        (
            "Weak signatures in use",
            e.check("signature_algorithm").to_string(),
        ),
    ]);
    doc.bar_chart("Certificates expiring per week", &e.weekly_expiry);

    doc.heading("Certificate inventory breakdown");
    doc.bar_chart("Certificates in use by key type", &e.key_types);
    doc.bar_chart("Certificates by source", &e.sources);

    doc.heading("Compliance status");
    let items: Vec<(String, i64, i64)> = e
        .checks
        .iter()
        .map(|c| {
            (
                c.id.to_owned(),
                c.applicable - c.non_compliant,
                c.non_compliant,
            )
        })
        .collect();
    doc.pass_fail_chart("Checks: compliant and non-compliant certificates", &items);
    for c in &e.checks {
        doc.para(&format!(
            "{} - {}: {}",
            c.id,
            c.description,
            if c.passed() { "pass" } else { "FAIL" }
        ));
    }

    doc.heading("Lifecycle analysis");
    doc.facts(&[
        ("Issued in the last 30 days", e.issued_30.to_string()),
        ("Revoked in the last 30 days", e.revoked_30.to_string()),
    ]);
    doc.bar_chart(
        "Certificates issued per week (last 8 weeks)",
        &e.weekly_issued,
    );

    doc.heading("CA infrastructure overview");
    let rows: Vec<Vec<String>> = e
        .cas
        .iter()
        .map(|ca| {
            vec![
                format!("{}{}", "  ".repeat(ca.depth), ca.name),
                ca.ca_type.clone(),
                if ca.active { "active" } else { "inactive" }.to_owned(),
                ca.not_after.date().to_string(),
                ca.certificates.to_string(),
            ]
        })
        .collect();
    doc.table(
        &["Name", "Type", "Status", "Expires", "Certificates"],
        &[0.38, 0.16, 0.14, 0.16, 0.16],
        &rows,
    );

    doc.heading("Recommendations");
    for (i, r) in e.recommendations().iter().enumerate() {
        doc.para(&format!("{}. {r}", i + 1));
    }
    doc.finish(e.generated_at)
}

/// How many characters of `size`-point Helvetica fit in `width` points.
fn fit_chars(width: f32, size: f32) -> usize {
    (width / (size * AVERAGE_GLYPH)).max(1.0) as usize
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(3)).collect();
        out.push_str("...");
        out
    }
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&clip(word, width));
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` in the standard fonts' WinAnsi encoding: Latin-1 as is, anything else as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_wrapped_clipped_and_encoded() {
        assert_eq!(
            wrap("one two three four", 9),
            vec!["one two", "three", "four"]
        );
        assert_eq!(clip("abcdefghij", 6), "abc...");
        assert_eq!(win_ansi("é€x"), vec![0xe9, b'?', b'x']);
    }
}
