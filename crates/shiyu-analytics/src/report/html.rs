//! The report as one printable HTML page: inline CSS sized for A4, SVG charts drawn here, no scripts and no
//! external resources, so that it can be mailed, archived and printed as it is.

use super::tables::{
    category_whole, centers, decimals, departments, finite, hotspots, month_zh, share, summary, Cell, Table,
};
use super::xlsx::display_width;
use super::{escape, MonthlyReport, RankedUnit};
use std::fmt::Write as _;

/// Shown where a value is missing (a rate over a zero denominator).
const MISSING: &str = "—";
/// Width of every chart in SVG units: about the printable width of A4 at 96 dpi with 14 mm margins.
const WIDTH: f64 = 680.0;
/// Bars beyond these are summed into 其他 (categories) or left to the table (ranking), to keep a chart on
/// one printed page.
const MAX_CATEGORIES: usize = 10;
const MAX_RANKED: usize = 20;
const BLUE: &str = "#1f5fa8";
const RED: &str = "#cb4335";
const PALETTE: [&str; MAX_CATEGORIES] = [
    "#1f5fa8", "#2e86c1", "#17a589", "#28b463", "#d4ac0d", "#ca6f1e", "#cb4335", "#884ea0", "#5d6d7e",
    "#a04000",
];
const OTHER_COLOR: &str = "#aab7b8";

const CSS: &str = r#"@page{size:A4;margin:15mm 14mm}
*{box-sizing:border-box}
body{font-family:"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",sans-serif;color:#222;margin:0 auto;max-width:190mm;padding:16px;font-size:14px;line-height:1.6}
h1{font-size:22px;text-align:center;margin:8px 0 4px}
.meta{text-align:center;color:#666;margin:0 0 16px}
h2{font-size:17px;border-left:4px solid #1f5fa8;padding-left:8px;margin:24px 0 8px}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}
.card{border:1px solid #ddd;border-radius:4px;padding:8px 12px}
.card .k{color:#666;font-size:13px}
.card .v{font-size:22px;font-weight:600}
.card .d{font-size:12px;color:#666}
figure{margin:0;break-inside:avoid}
figcaption,.note{color:#666;font-size:12px}
svg.chart{display:block;max-width:100%;height:auto;margin:0 auto}
svg.chart text{font-size:12px;fill:#333}
svg.chart .small{font-size:10px}
svg.chart .empty{font-size:16px;fill:#999}
table{width:100%;border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f0f3f8;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dt{font-weight:600}
dd{margin:0 0 6px 2em}
@media print{body{padding:0;max-width:none;font-size:12px}h2{break-after:avoid}thead{display:table-header-group}tr{break-inside:avoid}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"#;

/// The report as a self-contained printable page in Chinese: totals with their change against the previous
/// month, charts of the daily trend, the category mix and the department ranking, the ranking tables and
/// the indicator definitions. Every text from the data is escaped; charts of an empty month say 暂无数据.
pub fn to_html(report: &MonthlyReport) -> String {
    let month = month_zh(&report.month);
    let title = format!("{}{}月度分析报告", report.jurisdiction, month);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<header><h1>{t}</h1><p class=\"meta\">统计月份：{m}　对比月份：{p}</p></header>\n",
        t = escape(&title),
        m = escape(&month),
        p = escape(&month_zh(&report.previous_month)),
    );

    page.push_str("<section><h2>一、总体情况</h2>\n<div class=\"cards\">\n");
    for row in &summary(report).rows {
        if let [name, now, before, change] = row.as_slice() {
            let _ = writeln!(
                page,
                "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}　上月 {}</div></div>",
                escape(&name.display(MISSING)),
                escape(&now.display(MISSING)),
                change_text(change),
                escape(&before.display(MISSING)),
            );
        }
    }
    page.push_str("</div></section>\n");

    let _ = writeln!(
        page,
        "<section><h2>二、每日受理量</h2>\n<figure>{}</figure></section>",
        trend_chart(&report.daily)
    );

    let (bars, merged) = category_bars(report);
    let _ = write!(
        page,
        "<section><h2>三、类别构成</h2>\n<figure>{}",
        category_chart(&bars, category_whole(report))
    );
    if merged > 0 {
        let _ = write!(page, "<figcaption>其余 {merged} 类合计为“其他”。</figcaption>");
    }
    page.push_str("</figure></section>\n");

    let _ =
        write!(page, "<section><h2>四、部门考核排名</h2>\n<figure>{}", ranking_chart(&report.departments));
    if report.departments.len() > MAX_RANKED {
        let _ = write!(page, "<figcaption>图中为前 {MAX_RANKED} 名，完整排名见下表。</figcaption>");
    }
    page.push_str("</figure>\n");
    page.push_str(&table_html(&departments(report)));
    page.push_str("</section>\n");

    let _ =
        writeln!(page, "<section><h2>五、下级指挥中心排名</h2>\n{}</section>", table_html(&centers(report)));
    let _ = writeln!(page, "<section><h2>六、高发地点</h2>\n{}</section>", table_html(&hotspots(report)));

    page.push_str("<section><h2>七、指标说明</h2>\n");
    if report.definitions.is_empty() {
        page.push_str("<p class=\"note\">暂无数据</p>\n");
    } else {
        page.push_str("<dl>\n");
        for (name, definition) in &report.definitions {
            let _ = writeln!(page, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(definition));
        }
        page.push_str("</dl>\n");
    }
    page.push_str("</section>\n</body>\n</html>\n");
    page
}

/// "较上月 ↑12.5%" for a count, "较上月 ↓1.2个百分点" for a rate, "与上月持平", or "较上月 —" without a
/// previous figure to compare with.
fn change_text(change: &Cell) -> String {
    let (value, unit) = match change {
        Cell::Growth(g) => (finite(*g).map(|g| g * 100.0), "%"),
        Cell::Points(p) => (finite(*p), "个百分点"),
        _ => (None, ""),
    };
    match value {
        None => format!("较上月 {MISSING}"),
        Some(v) => match decimals(v.abs(), 1) {
            text if text == "0.0" => "与上月持平".to_string(),
            text if v > 0.0 => format!("较上月 ↑{text}{unit}"),
            text => format!("较上月 ↓{text}{unit}"),
        },
    }
}

fn table_html(table: &Table) -> String {
    let mut html = String::from("<table><thead><tr>");
    for h in &table.header {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr></thead><tbody>\n");
    if table.rows.is_empty() {
        let _ = writeln!(html, "<tr><td colspan=\"{}\">暂无数据</td></tr>", table.header.len());
    }
    for row in &table.rows {
        html.push_str("<tr>");
        for cell in row {
            let class = if matches!(cell, Cell::Text(_)) { "" } else { " class=\"n\"" };
            let _ = write!(html, "<td{class}>{}</td>", escape(&cell.display(MISSING)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table>\n");
    html
}

/// The opening tag of a chart, with a title that screen readers and hovering show.
fn svg_open(height: f64, label: &str) -> String {
    format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{l}\"><title>{l}</title>",
        w = WIDTH,
        h = height,
        l = escape(label),
    )
}

fn empty_chart(label: &str) -> String {
    format!(
        "{}<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"119\" fill=\"#fafafa\" stroke=\"#ddd\"/><text class=\"empty\" x=\"{}\" y=\"66\" text-anchor=\"middle\">暂无数据</text></svg>",
        svg_open(120.0, label),
        WIDTH - 1.0,
        WIDTH / 2.0,
    )
}

/// Cases per day as bars on a axis of round numbers, with the daily average as a dashed line.
fn trend_chart(daily: &[(String, u64)]) -> String {
    const LABEL: &str = "每日受理量趋势";
    let max = daily.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if max == 0 {
        return empty_chart(LABEL);
    }
    let (left, right, top, bottom, height) = (52.0, 16.0, 28.0, 40.0, 280.0);
    let (plot_w, plot_h) = (WIDTH - left - right, height - top - bottom);
    let step = nice_step(max);
    // At most five steps, since five steps cover `max`.
    let y_max = max.div_ceil(step).saturating_mul(step);
    let y = |v: f64| top + plot_h - v / y_max as f64 * plot_h;
    let mut svg = svg_open(height, LABEL);
    let _ = write!(svg, "<text x=\"{left}\" y=\"16\" text-anchor=\"middle\">件</text>");
    for tick in (0..=y_max / step).map(|k| k * step) {
        let ty = y(tick as f64);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{ty:.1}\" x2=\"{x2}\" y2=\"{ty:.1}\" stroke=\"#e5e5e5\"/><text x=\"{tx}\" y=\"{yy:.1}\" text-anchor=\"end\">{tick}</text>",
            x2 = WIDTH - right,
            tx = left - 6.0,
            yy = ty + 4.0,
        );
    }
    let slot = plot_w / daily.len() as f64;
    // Every day is labelled up to a month's worth; a longer series is labelled every few days.
    let every = daily.len().div_ceil(31);
    for (i, (day, n)) in daily.iter().enumerate() {
        let x = left + i as f64 * slot;
        let top_y = y(*n as f64);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BLUE}\"><title>{}：{n} 件</title></rect>",
            x + slot * 0.15,
            slot * 0.7,
            top + plot_h - top_y,
            escape(day),
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + slot / 2.0,
                top + plot_h + 14.0,
                escape(&day_label(day)),
            );
        }
    }
    let total: u64 = daily.iter().map(|(_, n)| *n).sum();
    let average = total as f64 / daily.len() as f64;
    let ay = y(average);
    // The average's label sits in the top margin, as a legend, where no bar can hide it.
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{ay:.1}\" x2=\"{x2}\" y2=\"{ay:.1}\" stroke=\"{RED}\" stroke-dasharray=\"4 3\"/><line x1=\"{lx1}\" y1=\"12\" x2=\"{lx2}\" y2=\"12\" stroke=\"{RED}\" stroke-dasharray=\"4 3\"/><text x=\"{x2}\" y=\"16\" text-anchor=\"end\">日均 {avg} 件</text>",
        x2 = WIDTH - right,
        lx1 = WIDTH - right - 120.0,
        lx2 = WIDTH - right - 96.0,
        avg = decimals(average, 1),
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{x2}\" y2=\"{b}\" stroke=\"#666\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#666\"/><text x=\"{cx}\" y=\"{ly}\" text-anchor=\"middle\">日期</text></svg>",
        b = top + plot_h,
        x2 = WIDTH - right,
        cx = left + plot_w / 2.0,
        ly = height - 6.0,
    );
    svg
}

/// The largest categories, and the rest summed as 其他; with how many categories went into 其他.
fn category_bars(report: &MonthlyReport) -> (Vec<(String, u64)>, usize) {
    let mut bars: Vec<(String, u64)> = report.categories.iter().take(MAX_CATEGORIES).cloned().collect();
    let rest = report.categories.get(MAX_CATEGORIES..).unwrap_or_default();
    if !rest.is_empty() {
        bars.push(("其他".to_string(), rest.iter().map(|(_, n)| *n).sum()));
    }
    (bars, rest.len())
}

fn category_chart(bars: &[(String, u64)], whole: u64) -> String {
    const LABEL: &str = "类别构成";
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if max == 0 || whole == 0 {
        return empty_chart(LABEL);
    }
    let (label_w, value_w, row_h, pad) = (150.0, 130.0, 26.0, 8.0);
    let bar_w = WIDTH - label_w - value_w;
    let mut svg = svg_open(pad * 2.0 + row_h * bars.len() as f64, LABEL);
    for (i, (name, n)) in bars.iter().enumerate() {
        let y = pad + i as f64 * row_h;
        let w = (*n as f64 / max as f64 * bar_w).max(1.0);
        let color = PALETTE.get(i).copied().unwrap_or(OTHER_COLOR);
        let percent =
            share(*n, whole).map_or_else(|| MISSING.to_string(), |s| format!("{}%", decimals(s * 100.0, 1)));
        let _ = write!(
            svg,
            "<g><title>{full}：{n} 件，占 {percent}</title><text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{short}</text><rect x=\"{label_w}\" y=\"{ry:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" fill=\"{color}\"/><text x=\"{vx:.1}\" y=\"{ty:.1}\">{n} 件 · {percent}</text></g>",
            full = escape(name),
            short = escape(&fit(name, 22)),
            lx = label_w - 8.0,
            ty = y + row_h / 2.0 + 4.0,
            ry = y + 4.0,
            bh = row_h - 8.0,
            vx = label_w + w + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The best departments by composite score, on a fixed 0–100 axis so that months compare by eye.
fn ranking_chart(units: &[RankedUnit]) -> String {
    const LABEL: &str = "部门综合得分排名";
    if units.is_empty() {
        return empty_chart(LABEL);
    }
    let shown = &units[..units.len().min(MAX_RANKED)];
    let (label_w, value_w, row_h, pad, axis_h) = (170.0, 60.0, 22.0, 6.0, 22.0);
    let bar_w = WIDTH - label_w - value_w;
    let bars_h = row_h * shown.len() as f64;
    let height = pad + bars_h + axis_h;
    let mut svg = svg_open(height, LABEL);
    for tick in (0..=100).step_by(20) {
        let x = label_w + f64::from(tick) / 100.0 * bar_w;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{pad}\" x2=\"{x:.1}\" y2=\"{b:.1}\" stroke=\"#e5e5e5\"/><text class=\"small\" x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{tick}</text>",
            b = pad + bars_h,
            ty = pad + bars_h + 14.0,
        );
    }
    for (i, unit) in shown.iter().enumerate() {
        let y = pad + i as f64 * row_h;
        let score = finite(Some(unit.score));
        let w = score.map_or(0.0, |s| s.clamp(0.0, 100.0) / 100.0 * bar_w);
        let value = Cell::Score(score).display(MISSING);
        let name = format!("{}. {}", unit.rank, unit.name);
        let _ = write!(
            svg,
            "<g><title>{full}：{value} 分</title><text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{short}</text><rect x=\"{label_w}\" y=\"{ry:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" fill=\"{BLUE}\"/><text x=\"{vx:.1}\" y=\"{ty:.1}\">{value}</text></g>",
            full = escape(&name),
            short = escape(&fit(&name, 26)),
            lx = label_w - 8.0,
            ty = y + row_h / 2.0 + 4.0,
            ry = y + 3.0,
            bh = row_h - 6.0,
            vx = label_w + w + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The step of a chart's value axis: the smallest of 1, 2, 5, 10, 20, 50, … that covers `max` in at most
/// five steps, so that ticks fall on round numbers.
pub(super) fn nice_step(max: u64) -> u64 {
    let mut magnitude: u64 = 1;
    loop {
        for factor in [1, 2, 5] {
            let step = magnitude.saturating_mul(factor);
            if step.saturating_mul(5) >= max {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// "2026-10-01" as "1", the day of the month under its bar; another form of date as it is.
fn day_label(day: &str) -> String {
    match day.rsplit_once('-') {
        Some((_, d)) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
            let trimmed = d.trim_start_matches('0');
            if trimmed.is_empty() { "0" } else { trimmed }.to_string()
        }
        _ => day.to_string(),
    }
}

/// `text` cut to `width` columns (a Chinese character is two) with an ellipsis, so that a long name does not
/// run into its bar; the full name stays in the bar's title.
fn fit(text: &str, width: usize) -> String {
    if display_width(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = display_width(c.encode_utf8(&mut [0; 4]));
        if used + w > width.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}
