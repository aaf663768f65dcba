//! Charts drawn on the server as SVG: no script, no inline style (colours come from the style
//! sheet's classes), and the numbers also in text for those who do not see the picture.

use crate::api::v2::dashboard::TrendDay;

/// The drawing's size in its own units; the style sheet scales it to the page.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
/// Room under the bars for the first and last dates.
const AXIS: f64 = 18.0;

/// A bar: its box, its class (which colours it), and what it stands for.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub class: &'static str,
    pub title: String,
}

/// Issued and revoked certificates per day, side by side.
pub struct TrendChart {
    pub view_box: String,
    pub bars: Vec<Bar>,
    pub first: String,
    pub last: String,
    pub baseline: String,
    pub label_y: String,
    pub last_x: String,
    pub max: i64,
    pub issued: i64,
    pub revoked: i64,
    pub days: usize,
}

/// `n` with at most one decimal, as SVG coordinates are written.
fn unit(n: f64) -> String {
    let rounded = (n * 10.0).round() / 10.0;
    format!("{rounded}")
}

impl TrendChart {
    /// The chart of `days`, oldest first.
    pub fn new(days: &[TrendDay]) -> Self {
        let max = days
            .iter()
            .map(|d| d.issued.max(d.revoked))
            .max()
            .unwrap_or(0)
            .max(1);
        let plot = HEIGHT - AXIS;
        let slot = WIDTH / days.len().max(1) as f64;
        let bar = (slot / 2.0 - 1.0).max(0.5);
        let mut bars = Vec::with_capacity(days.len() * 2);
        for (i, day) in days.iter().enumerate() {
            for (offset, count, class, what) in [
                (0.0, day.issued, "issued", "issued"),
                (bar, day.revoked, "revoked", "revoked"),
            ] {
                let height = plot * count as f64 / max as f64;
                bars.push(Bar {
                    x: unit(i as f64 * slot + offset),
                    y: unit(plot - height),
                    width: unit(bar),
                    height: unit(height),
                    class,
                    title: format!("{}: {count} {what}", day.date),
                });
            }
        }
        Self {
            view_box: format!("0 0 {} {}", unit(WIDTH), unit(HEIGHT)),
            bars,
            first: days.first().map(|d| d.date.clone()).unwrap_or_default(),
            last: days.last().map(|d| d.date.clone()).unwrap_or_default(),
            baseline: unit(plot),
            label_y: unit(HEIGHT - 4.0),
            last_x: unit(WIDTH),
            max,
            issued: days.iter().map(|d| d.issued).sum(),
            revoked: days.iter().map(|d| d.revoked).sum(),
            days: days.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, issued: i64, revoked: i64) -> TrendDay {
        TrendDay {
            date: date.into(),
            issued,
            revoked,
        }
    }

    #[test]
    fn bars_scale_to_the_busiest_day_and_sit_on_the_baseline() {
        let chart = TrendChart::new(&[day("2026-12-01", 4, 0), day("2026-12-02", 2, 1)]);
        assert_eq!(chart.max, 4);
        assert_eq!((chart.issued, chart.revoked, chart.days), (6, 1, 2));
        assert_eq!(chart.bars.len(), 4);
        // The busiest bar is the whole plot high; half as many, half as high.
        assert_eq!(chart.bars[0].height, "142");
        assert_eq!(chart.bars[0].y, "0");
        assert_eq!(chart.bars[2].height, "71");
        assert_eq!(chart.bars[2].y, "71");
        assert_eq!(chart.bars[1].height, "0");
        assert_eq!(chart.bars[3].class, "revoked");
        assert_eq!(chart.bars[3].title, "2026-12-02: 1 revoked");
        assert_eq!(
            (chart.first.as_str(), chart.last.as_str()),
            ("2026-12-01", "2026-12-02")
        );
    }

    #[test]
    fn an_empty_trend_draws_nothing_and_divides_by_nothing() {
        let chart = TrendChart::new(&[]);
        assert!(chart.bars.is_empty());
        assert_eq!(chart.max, 1);
        let quiet = TrendChart::new(&[day("2026-12-01", 0, 0)]);
        assert!(quiet.bars.iter().all(|b| b.height == "0"));
    }
}
