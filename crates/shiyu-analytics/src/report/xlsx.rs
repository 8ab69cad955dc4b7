//! The report as an Excel workbook: the minimal set of Office Open XML parts (content types, relationships,
//! workbook, styles, one worksheet per section with inline strings), written here rather than through a
//! spreadsheet crate to keep the build small.

use super::tables::{tables, Cell, Table};
use super::{escape, zip, MonthlyReport, ReportError};
use std::fmt::Write as _;

/// Excel's limit on the characters (UTF-16 units) of one cell.
const CELL_CHARS: usize = 32_767;

/// Indexes into `cellXfs` of [`STYLES`].
const BOLD: u8 = 1;
const PERCENT: u8 = 2;
const SIGNED_PERCENT: u8 = 3;
const POINTS: u8 = 4;
const ONE_DECIMAL: u8 = 5;
const TWO_DECIMALS: u8 = 6;

/// The report as an .xlsx workbook: one sheet per section named as the section (概况, 每日受理量, …), a bold
/// frozen header row, counts and rates as numbers (rates formatted as percentages), missing rates as blank
/// cells. Fails only when a text is longer than a cell may hold.
pub fn to_xlsx(report: &MonthlyReport) -> Result<Vec<u8>, ReportError> {
    let tables = tables(report);
    let mut entries = vec![
        ("[Content_Types].xml".to_string(), content_types(tables.len()).into_bytes()),
        ("_rels/.rels".to_string(), ROOT_RELS.as_bytes().to_vec()),
        ("xl/workbook.xml".to_string(), workbook(&tables).into_bytes()),
        ("xl/_rels/workbook.xml.rels".to_string(), workbook_rels(tables.len()).into_bytes()),
        ("xl/styles.xml".to_string(), STYLES.as_bytes().to_vec()),
    ];
    for (i, table) in tables.iter().enumerate() {
        entries.push((format!("xl/worksheets/sheet{}.xml", i + 1), sheet(table, i == 0)?.into_bytes()));
    }
    zip::store(&entries)
}

const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const PKG_REL_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

const ROOT_RELS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>"#,
    "</Relationships>"
);

// Custom number formats start at 164, after Excel's built-in ones; 2 is the built-in "0.00".
const STYLES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#,
    r#"<numFmts count="4">"#,
    r#"<numFmt numFmtId="164" formatCode="0.0%"/>"#,
    r#"<numFmt numFmtId="165" formatCode="+0.0%;-0.0%;0.0%"/>"#,
    r#"<numFmt numFmtId="166" formatCode="+0.0&quot;个百分点&quot;;-0.0&quot;个百分点&quot;;0.0&quot;个百分点&quot;"/>"#,
    r#"<numFmt numFmtId="167" formatCode="0.0"/>"#,
    "</numFmts>",
    r#"<fonts count="2"><font><sz val="11"/><name val="等线"/></font><font><b/><sz val="11"/><name val="等线"/></font></fonts>"#,
    r#"<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>"#,
    r#"<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>"#,
    r#"<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>"#,
    r#"<cellXfs count="7">"#,
    r#"<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>"#,
    r#"<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>"#,
    r#"<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    r#"<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    r#"<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    r#"<xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    r#"<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    "</cellXfs>",
    r#"<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>"#,
    "</styleSheet>"
);

fn content_types(sheets: usize) -> String {
    let mut xml = format!(
        r#"{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#
    );
    for n in 1..=sheets {
        let _ = write!(
            xml,
            r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
        );
    }
    xml.push_str("</Types>");
    xml
}

fn workbook(tables: &[Table]) -> String {
    let mut xml = format!(r#"{XML_HEAD}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>"#);
    for (i, table) in tables.iter().enumerate() {
        let n = i + 1;
        let _ = write!(xml, r#"<sheet name="{}" sheetId="{n}" r:id="rId{n}"/>"#, escape(table.title));
    }
    xml.push_str("</sheets></workbook>");
    xml
}

fn workbook_rels(sheets: usize) -> String {
    let mut xml = format!(r#"{XML_HEAD}<Relationships xmlns="{PKG_REL_NS}">"#);
    for n in 1..=sheets {
        let _ = write!(
            xml,
            r#"<Relationship Id="rId{n}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>"#
        );
    }
    let _ =
        write!(xml, r#"<Relationship Id="rId{}" Type="{REL_NS}/styles" Target="styles.xml"/>"#, sheets + 1);
    xml.push_str("</Relationships>");
    xml
}

fn sheet(table: &Table, selected: bool) -> Result<String, ReportError> {
    let mut xml = format!(r#"{XML_HEAD}<worksheet xmlns="{MAIN_NS}"><sheetViews><sheetView"#);
    if selected {
        xml.push_str(r#" tabSelected="1""#);
    }
    xml.push_str(r#" workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews><cols>"#);
    for (i, width) in widths(table).into_iter().enumerate() {
        let _ = write!(xml, r#"<col min="{n}" max="{n}" width="{width}" customWidth="1"/>"#, n = i + 1);
    }
    xml.push_str("</cols><sheetData>");
    let header = table.header.iter().map(|h| Cell::Text((*h).to_string())).collect::<Vec<_>>();
    for (r, row) in std::iter::once(&header).chain(&table.rows).enumerate() {
        let _ = write!(xml, r#"<row r="{}">"#, r + 1);
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{}", column(c), r + 1);
            let style = if r == 0 { BOLD } else { 0 };
            write_cell(&mut xml, &at, cell, style, table.title)?;
        }
        xml.push_str("</row>");
    }
    xml.push_str("</sheetData></worksheet>");
    Ok(xml)
}

fn write_cell(
    xml: &mut String,
    at: &str,
    cell: &Cell,
    style: u8,
    sheet: &'static str,
) -> Result<(), ReportError> {
    let number = match cell {
        Cell::Text(text) => {
            let chars = text.encode_utf16().count();
            if chars > CELL_CHARS {
                return Err(ReportError::CellTooLong { sheet, chars });
            }
            let s = if style == 0 { String::new() } else { format!(r#" s="{style}""#) };
            // xml:space keeps leading and trailing spaces, which Excel would otherwise strip.
            let _ = write!(
                xml,
                r#"<c r="{at}"{s} t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
                escape(text)
            );
            return Ok(());
        }
        Cell::Count(n) => Some((n.to_string(), 0)),
        Cell::Rate(r) => number(*r, PERCENT),
        Cell::Growth(g) => number(*g, SIGNED_PERCENT),
        Cell::Points(p) => number(*p, POINTS),
        Cell::Hours(h) => number(*h, ONE_DECIMAL),
        Cell::Score(s) => number(*s, TWO_DECIMALS),
    };
    if let Some((value, format)) = number {
        let s = if format == 0 { String::new() } else { format!(r#" s="{format}""#) };
        let _ = write!(xml, r#"<c r="{at}"{s}><v>{value}</v></c>"#);
    }
    Ok(())
}

/// A value and its style; none for a missing or non-finite value, which becomes a blank cell because Excel has
/// no literal for NaN. Rust prints an f64 without an exponent, as `xsd:double` in a sheet accepts.
fn number(value: Option<f64>, style: u8) -> Option<(String, u8)> {
    value.filter(|v| v.is_finite()).map(|v| (v.to_string(), style))
}

/// Column widths in Excel's units (about one Latin character), from the widest text in each column, with
/// Chinese characters counted twice; capped so that a long definition does not make a column pages wide.
fn widths(table: &Table) -> Vec<usize> {
    let mut widths: Vec<usize> = table.header.iter().map(|h| display_width(h)).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(display_width(&cell.display("")));
            }
        }
    }
    widths.into_iter().map(|w| (w + 2).clamp(6, 80)).collect()
}

pub(super) fn display_width(text: &str) -> usize {
    text.chars().map(|c| if u32::from(c) >= 0x1100 { 2 } else { 1 }).sum()
}

/// A zero-based column index as Excel's letters: 0 is A, 25 is Z, 26 is AA.
pub(super) fn column(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().map(|&b| char::from(b)).collect()
}
