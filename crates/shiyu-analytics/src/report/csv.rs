//! The report as CSV (RFC 4180) for Excel and for scripts.

use super::tables::{tables, Cell};
use super::MonthlyReport;

/// The report as CSV: a byte order mark first, because Excel reads a file without one in the system's ANSI
/// code page and garbles the Chinese; CRLF line ends as RFC 4180 asks; each section a block of its title,
/// its header and its rows, blocks separated by a blank line. Missing rates are empty cells.
pub fn to_csv(report: &MonthlyReport) -> String {
    let mut out = String::from("\u{FEFF}");
    for (i, table) in tables(report).iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        line(&mut out, [field(table.title)]);
        line(&mut out, table.header.iter().map(|h| field(h)));
        for row in &table.rows {
            line(&mut out, row.iter().map(cell));
        }
    }
    out
}

fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&f);
    }
    out.push_str("\r\n");
}

fn cell(cell: &Cell) -> String {
    match cell {
        // Names come from citizens and departments: a name that starts like a formula would run as one in
        // Excel (CSV injection), so it gets the apostrophe that Excel itself uses to mark text.
        Cell::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => field(&format!("'{text}")),
        other => field(&other.display("")),
    }
}

/// One field, quoted when it holds a separator, a quote or a line break, with its quotes doubled.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
