//! The report as a list of tables of typed cells, the one source that CSV, XLSX and HTML render, so that a
//! figure reads the same in all three.

use super::{MonthlyReport, RankedUnit};

/// One value with what it means, so that each format can show it its own way (text in CSV and HTML, a number
/// with a number format in XLSX).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Cell {
    Text(String),
    Count(u64),
    /// A fraction 0..=1 shown as a percentage with one decimal.
    Rate(Option<f64>),
    /// The relative change of a count against the previous month, as a fraction (0.125 is +12.5%).
    Growth(Option<f64>),
    /// The change of a rate against the previous month, in percentage points (1.5 is +1.5 个百分点).
    Points(Option<f64>),
    /// Hours, one decimal.
    Hours(Option<f64>),
    /// A composite score 0..=100, two decimals: scores often differ only in the first decimal.
    Score(Option<f64>),
}

impl Cell {
    /// The cell as text; `missing` stands where there is no value (a rate over a zero denominator).
    pub(super) fn display(&self, missing: &str) -> String {
        let or_missing = |v: Option<String>| v.unwrap_or_else(|| missing.to_string());
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Rate(r) => or_missing(finite(*r).map(|r| format!("{}%", decimals(r * 100.0, 1)))),
            Cell::Growth(g) => or_missing(finite(*g).map(|g| format!("{}%", signed(g * 100.0)))),
            Cell::Points(p) => or_missing(finite(*p).map(|p| format!("{}个百分点", signed(p)))),
            Cell::Hours(h) => or_missing(finite(*h).map(|h| decimals(h, 1))),
            Cell::Score(s) => or_missing(finite(*s).map(|s| decimals(s, 2))),
        }
    }
}

/// One section of the report: its title (also the sheet name), column headers and rows.
#[derive(Clone, Debug)]
pub(super) struct Table {
    pub title: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

pub(super) const SUMMARY: &str = "概况";
pub(super) const DAILY: &str = "每日受理量";
pub(super) const CATEGORIES: &str = "类别构成";
pub(super) const DEPARTMENTS: &str = "部门排名";
pub(super) const CENTERS: &str = "下级指挥中心排名";
pub(super) const HOTSPOTS: &str = "高发地点";
pub(super) const DEFINITIONS: &str = "指标说明";

/// The sections in the order every format shows them.
pub(super) fn tables(report: &MonthlyReport) -> Vec<Table> {
    vec![
        summary(report),
        daily(report),
        categories(report),
        departments(report),
        centers(report),
        hotspots(report),
        definitions(report),
    ]
}

fn daily(report: &MonthlyReport) -> Table {
    Table {
        title: DAILY,
        header: vec!["日期", "受理量"],
        rows: report.daily.iter().map(|(day, n)| vec![Cell::Text(day.clone()), Cell::Count(*n)]).collect(),
    }
}

pub(super) fn departments(report: &MonthlyReport) -> Table {
    ranking(DEPARTMENTS, "部门", &report.departments)
}

pub(super) fn centers(report: &MonthlyReport) -> Table {
    ranking(CENTERS, "指挥中心", &report.centers)
}

pub(super) fn hotspots(report: &MonthlyReport) -> Table {
    Table {
        title: HOTSPOTS,
        header: vec!["排名", "地点", "件数"],
        rows: report
            .hotspots
            .iter()
            .zip(1u64..)
            .map(|((place, n), rank)| vec![Cell::Count(rank), Cell::Text(place.clone()), Cell::Count(*n)])
            .collect(),
    }
}

fn definitions(report: &MonthlyReport) -> Table {
    Table {
        title: DEFINITIONS,
        header: vec!["指标", "定义"],
        rows: report
            .definitions
            .iter()
            .map(|(name, definition)| vec![Cell::Text(name.clone()), Cell::Text(definition.clone())])
            .collect(),
    }
}

pub(super) fn summary(report: &MonthlyReport) -> Table {
    let (now, before) = (&report.totals, &report.previous_totals);
    let count = |name: &str, a: u64, b: u64| {
        vec![Cell::Text(name.into()), Cell::Count(a), Cell::Count(b), Cell::Growth(growth(a, b))]
    };
    let rate = |name: &str, a: Option<f64>, b: Option<f64>| {
        let points = finite(a).zip(finite(b)).map(|(a, b)| (a - b) * 100.0);
        vec![Cell::Text(name.into()), Cell::Rate(a), Cell::Rate(b), Cell::Points(points)]
    };
    Table {
        title: SUMMARY,
        header: vec!["指标", "本月", "上月", "较上月"],
        rows: vec![
            count("受理量", now.received, before.received),
            count("办结量", now.closed, before.closed),
            count("超期量", now.overdue, before.overdue),
            rate("响应率", now.response_rate, before.response_rate),
            rate("解决率", now.resolution_rate, before.resolution_rate),
            rate("满意率", now.satisfaction_rate, before.satisfaction_rate),
        ],
    }
}

fn categories(report: &MonthlyReport) -> Table {
    let whole = category_whole(report);
    Table {
        title: CATEGORIES,
        header: vec!["类别", "件数", "占比"],
        rows: report
            .categories
            .iter()
            .map(|(name, n)| vec![Cell::Text(name.clone()), Cell::Count(*n), Cell::Rate(share(*n, whole))])
            .collect(),
    }
}

/// What a category's share is a share of: the month's cases, unless the categories add up to more (a case
/// counted under two categories), so that shares never pass 100%.
pub(super) fn category_whole(report: &MonthlyReport) -> u64 {
    let sum: u64 = report.categories.iter().map(|(_, n)| *n).sum();
    sum.max(report.totals.received)
}

fn ranking(title: &'static str, unit: &'static str, units: &[RankedUnit]) -> Table {
    Table {
        title,
        header: vec![
            "排名",
            unit,
            "受理量",
            "响应率",
            "解决率",
            "满意率",
            "综合按期率",
            "超期量",
            "平均办理时长（小时）",
            "综合得分",
        ],
        rows: units
            .iter()
            .map(|u| {
                vec![
                    Cell::Count(u64::from(u.rank)),
                    Cell::Text(u.name.clone()),
                    Cell::Count(u.cases),
                    Cell::Rate(u.response_rate),
                    Cell::Rate(u.resolution_rate),
                    Cell::Rate(u.satisfaction_rate),
                    Cell::Rate(u.on_time_rate),
                    Cell::Count(u.overdue),
                    Cell::Hours(u.handling_hours),
                    Cell::Score(Some(u.score)),
                ]
            })
            .collect(),
    }
}

/// The relative change from `before` to `now`: none from zero to more, where it would be infinite, and no
/// change from zero to zero.
pub(super) fn growth(now: u64, before: u64) -> Option<f64> {
    match (now, before) {
        (0, 0) => Some(0.0),
        (_, 0) => None,
        _ => Some((now as f64 - before as f64) / before as f64),
    }
}

pub(super) fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A value that can be shown: NaN or infinity from a faulty producer is shown as missing, not as "NaN%".
pub(super) fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// `value` rounded half away from zero to `places` decimals, without a "-0.0" for a tiny negative.
pub(super) fn decimals(value: f64, places: i32) -> String {
    let scale = 10f64.powi(places);
    let rounded = (value * scale).round() / scale;
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    format!("{rounded:.*}", places as usize)
}

/// One decimal with an explicit sign, "+1.5", "-0.4", and "0.0" for no change.
pub(super) fn signed(value: f64) -> String {
    let text = decimals(value, 1);
    if text.starts_with('-') || text == "0.0" {
        text
    } else {
        format!("+{text}")
    }
}

/// "2026-10" as "2026年10月" and "2026-03" as "2026年3月"; anything else as given.
pub(super) fn month_zh(month: &str) -> String {
    let parsed = month.split_once('-').and_then(|(y, m)| {
        let year = y.parse::<u32>().ok()?;
        let m = m.parse::<u32>().ok().filter(|m| (1..=12).contains(m))?;
        Some((year, m))
    });
    match parsed {
        Some((year, m)) => format!("{year}年{m}月"),
        None => month.to_string(),
    }
}
