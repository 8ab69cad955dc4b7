//! The monthly report (月度分析报告): the figures of one month for one jurisdiction, as plain data, and its
//! renderings in Chinese, all built from the same tables so that their figures agree:
//! - [`to_csv`]: UTF-8 with a BOM (so that Excel reads the Chinese), CRLF, one block per section (title row,
//!   header row, data) with a blank line between blocks; rates as percentages with one decimal.
//! - [`to_xlsx`]: a workbook written here as minimal Office Open XML in an uncompressed zip, one sheet per
//!   section, numbers as numbers and rates as numbers formatted as percentages.
//! - [`to_html`]: one self-contained printable A4 page, inline CSS and SVG charts drawn here, no scripts.

mod csv;
mod html;
mod tables;
#[cfg(test)]
mod tests;
mod xlsx;
mod zip;

pub use csv::to_csv;
pub use html::to_html;
pub use xlsx::to_xlsx;

use serde::Serialize;

/// Why a report cannot be rendered. Only the workbook has limits that the data can exceed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A cell of Excel holds at most 32,767 characters; a longer text is refused here rather than cut, so
    /// that the workbook never says less than the data without saying so.
    #[error("报表第“{sheet}”页有一格文字过长（{chars} 字符，Excel 上限 32767） / a cell of sheet {sheet} holds {chars} characters, more than Excel's 32767")]
    CellTooLong { sheet: &'static str, chars: usize },
    /// The zip written here has no ZIP64 extension: parts and the archive stay under 4 GiB.
    #[error("报表文件过大 / the workbook exceeds the 4 GiB limit of a zip without ZIP64")]
    TooLarge,
}

/// One month's figures for one jurisdiction (or the whole city).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonthlyReport {
    /// e.g. "南通市" or "崇川区"
    pub jurisdiction: String,
    /// "2026-10"
    pub month: String,
    /// The same month a year before is not kept; the previous month is, for the change column.
    pub previous_month: String,
    pub totals: Totals,
    pub previous_totals: Totals,
    /// Cases received per day of the month, in order: (date "2026-10-01", count).
    pub daily: Vec<(String, u64)>,
    /// Cases per category, largest first: (category name, count).
    pub categories: Vec<(String, u64)>,
    /// Departments ranked by composite score, best first.
    pub departments: Vec<RankedUnit>,
    /// The command centers one level down (or the counties for the city), ranked the same way.
    pub centers: Vec<RankedUnit>,
    /// The places with most cases: (name, count), most first.
    pub hotspots: Vec<(String, u64)>,
    /// The indicator definitions, as printed under the tables: (name, definition).
    pub definitions: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub received: u64,
    pub closed: u64,
    pub overdue: u64,
    /// Rates as fractions 0..=1; `None` where the denominator is zero.
    pub response_rate: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankedUnit {
    pub rank: u32,
    pub name: String,
    pub cases: u64,
    pub response_rate: Option<f64>,
    pub resolution_rate: Option<f64>,
    pub satisfaction_rate: Option<f64>,
    pub on_time_rate: Option<f64>,
    pub overdue: u64,
    /// Average handling time in hours.
    pub handling_hours: Option<f64>,
    /// 0..=100
    pub score: f64,
}

/// `text` made safe inside XML or HTML text and attribute values. Characters that XML 1.0 forbids (control
/// characters, U+FFFE, U+FFFF) are dropped: one of them in a name would make Excel refuse the whole workbook.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
