//! The three renderings checked by reading them back: CSV with a small RFC 4180 reader, the workbook with a
//! small zip reader, the page and its SVG by balancing their tags.

use super::tables::{decimals, month_zh, signed, CENTERS, DEPARTMENTS, HOTSPOTS, SUMMARY};
use super::zip::crc32;
use super::*;

const TRICKY: &str = "市城管局, \"执法\"<一>队 & 二队";

fn unit(rank: u32, name: &str, score: f64) -> RankedUnit {
    RankedUnit {
        rank,
        name: name.to_string(),
        cases: 1200 - u64::from(rank) * 100,
        response_rate: Some(0.935),
        resolution_rate: Some(0.8812),
        satisfaction_rate: if rank == 3 { None } else { Some(0.9) },
        on_time_rate: Some(0.97),
        overdue: u64::from(rank) * 3,
        handling_hours: Some(18.25),
        score,
    }
}

fn sample() -> MonthlyReport {
    let categories = [
        "市容环境",
        "道路交通",
        "噪声扰民",
        "违章建筑",
        "物业管理",
        "供水供电",
        "园林绿化",
        "市政设施",
        "环境保护",
        "劳动保障",
        "消费维权",
        "其他事项",
    ];
    MonthlyReport {
        jurisdiction: "南通市".into(),
        month: "2026-10".into(),
        previous_month: "2026-09".into(),
        totals: Totals {
            received: 4680,
            closed: 4200,
            overdue: 37,
            response_rate: Some(0.935),
            resolution_rate: Some(0.8812),
            satisfaction_rate: Some(0.9),
        },
        previous_totals: Totals {
            received: 4160,
            closed: 4300,
            overdue: 0,
            response_rate: Some(0.947),
            resolution_rate: None,
            satisfaction_rate: Some(0.9),
        },
        daily: (1..=31).map(|d| (format!("2026-10-{d:02}"), 100 + (d * 37 % 90))).collect(),
        categories: categories.iter().zip((1..=12).rev()).map(|(c, n)| (c.to_string(), n * 60)).collect(),
        departments: vec![
            unit(1, "市住房和城乡建设局", 96.5),
            unit(2, TRICKY, 91.25),
            unit(3, "=HYPERLINK(\"http://x\")", 80.0),
        ],
        centers: vec![unit(1, "崇川区指挥中心", 95.0), unit(2, "海门区指挥中心", 88.4)],
        hotspots: vec![("崇川区和平桥街道\n文峰社区".into(), 88), ("通州区金沙街道".into(), 61)],
        definitions: vec![
            ("响应率".into(), "按时签收的案件数 ÷ 派遣的案件数".into()),
            ("满意率".into(), "评价为满意或基本满意的案件数 ÷ 参与评价的案件数".into()),
        ],
    }
}

fn empty() -> MonthlyReport {
    MonthlyReport {
        jurisdiction: "海安市".into(),
        month: "2026-02".into(),
        previous_month: "2026-01".into(),
        totals: Totals::default(),
        previous_totals: Totals::default(),
        daily: (1..=28).map(|d| (format!("2026-02-{d:02}"), 0)).collect(),
        categories: vec![],
        departments: vec![],
        centers: vec![],
        hotspots: vec![],
        definitions: vec![],
    }
}

/// RFC 4180 records, for checking that what was written reads back as the same fields.
fn read_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = vec![];
    let mut record = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && record.is_empty(), "the CSV ends inside a record");
    records
}

/// The entries of a zip of stored entries, each checked against its CRC and the central directory.
fn read_zip(bytes: &[u8]) -> Vec<(String, String)> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let end = (0..bytes.len() - 21).rev().find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]).unwrap();
    let count = u16_at(end + 10);
    let mut at = u32_at(end + 16) as usize;
    assert_eq!(at + u32_at(end + 12) as usize, end, "the central directory ends where its end record starts");
    let mut entries = vec![];
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50);
        assert_eq!(u16_at(at + 10), 0, "stored");
        let (crc, size) = (u32_at(at + 16), u32_at(at + 24) as usize);
        let name_len = u16_at(at + 28);
        let name = std::str::from_utf8(&bytes[at + 46..at + 46 + name_len]).unwrap().to_string();
        let local = u32_at(at + 42) as usize;
        assert_eq!(u32_at(local), 0x0403_4b50);
        assert_eq!(u32_at(local + 14), crc);
        let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        let data = &bytes[data_at..data_at + size];
        assert_eq!(crc32(data), crc, "CRC of {name}");
        entries.push((name, String::from_utf8(data.to_vec()).unwrap()));
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    entries
}

/// Checks that every element opened in `markup` is closed in order; `void` elements need no end tag.
fn assert_balanced(markup: &str, void: &[&str]) {
    let mut open: Vec<&str> = vec![];
    let mut rest = markup;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("an unclosed tag");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag.trim_start_matches('/').split([' ', '\n']).next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == ':'),
            "tag <{tag}>"
        );
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(closing), "</{closing}> closes another element");
        } else if !void.contains(&name) {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "never closed: {open:?}");
}

fn sheet(entries: &[(String, String)], n: usize) -> &str {
    let name = format!("xl/worksheets/sheet{n}.xml");
    &entries.iter().find(|(entry, _)| *entry == name).unwrap().1
}

#[test]
fn csv_has_a_bom_and_quotes_what_needs_quoting() {
    let csv = to_csv(&sample());
    assert!(csv.starts_with('\u{FEFF}'));
    assert!(csv.contains("\"市城管局, \"\"执法\"\"<一>队 & 二队\""));
    assert!(csv.contains("\"崇川区和平桥街道\n文峰社区\""));

    let records = read_csv(csv.trim_start_matches('\u{FEFF}'));
    let titles: Vec<&str> = records.windows(2).filter(|w| w[0] == [""]).map(|w| w[1][0].as_str()).collect();
    assert_eq!(titles, ["每日受理量", "类别构成", "部门排名", "下级指挥中心排名", "高发地点", "指标说明"]);
    assert_eq!(records[0], [SUMMARY]);
    assert_eq!(records[1], ["指标", "本月", "上月", "较上月"]);
    assert_eq!(records[2], ["受理量", "4680", "4160", "+12.5%"]);
    assert_eq!(records[3], ["办结量", "4200", "4300", "-2.3%"]);
    assert_eq!(records[4], ["超期量", "37", "0", ""], "no change from zero");
    assert_eq!(records[5], ["响应率", "93.5%", "94.7%", "-1.2个百分点"]);
    assert_eq!(records[6], ["解决率", "88.1%", "", ""]);
    assert_eq!(records[7], ["满意率", "90.0%", "90.0%", "0.0个百分点"]);

    let tricky = records.iter().find(|r| r.get(1).map(String::as_str) == Some(TRICKY)).unwrap();
    assert_eq!(tricky, &["2", TRICKY, "1000", "93.5%", "88.1%", "90.0%", "97.0%", "6", "18.3", "91.25"]);
    let formula = records.iter().find(|r| r.first().map(String::as_str) == Some("3")).unwrap();
    assert_eq!(formula[1], "'=HYPERLINK(\"http://x\")", "a formula is neutralised");
    assert_eq!(formula[5], "", "a missing rate is an empty cell");
    assert!(records.iter().any(|r| r == &["市容环境", "720", "15.4%"]));
}

#[test]
fn xlsx_is_a_zip_of_the_sheets_with_their_values() {
    let entries = read_zip(&to_xlsx(&sample()).unwrap());
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..5],
        [
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml"
        ]
    );
    assert_eq!(names.len(), 12);
    for (name, xml) in &entries {
        assert!(xml.starts_with("<?xml"), "{name}");
        assert_balanced(xml, &[]);
    }

    let workbook = &entries[2].1;
    let sheet_names: Vec<&str> =
        workbook.split("<sheet name=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert_eq!(sheet_names, [SUMMARY, "每日受理量", "类别构成", DEPARTMENTS, CENTERS, HOTSPOTS, "指标说明"]);
    for name in sheet_names {
        assert!(name.chars().count() <= 31 && !name.contains(['[', ']', ':', '*', '?', '/', '\\']), "{name}");
    }
    for n in 1..=7 {
        assert!(entries[0].1.contains(&format!("/xl/worksheets/sheet{n}.xml")));
        assert!(entries[3].1.contains(&format!("Target=\"worksheets/sheet{n}.xml\"")));
    }

    let summary = sheet(&entries, 1);
    assert!(
        summary.contains(r#"<c r="A1" s="1" t="inlineStr"><is><t xml:space="preserve">指标</t></is></c>"#),
        "bold header"
    );
    assert!(summary.contains(r#"<c r="B2"><v>4680</v></c>"#));
    assert!(summary.contains(r#"<c r="D2" s="3"><v>0.125</v></c>"#), "growth as a signed percentage");
    assert!(summary.contains(r#"<c r="B5" s="2"><v>0.935</v></c>"#), "a rate as a percentage");
    assert!(!summary.contains(r#"r="C6""#), "a missing rate is a blank cell");
    assert!(!summary.contains(r#"r="D4""#), "no change from zero");

    let departments = sheet(&entries, 4);
    assert!(departments.contains("市城管局, &quot;执法&quot;&lt;一&gt;队 &amp; 二队"));
    assert!(departments.contains(r#"<c r="J3" s="6"><v>91.25</v></c>"#));
    assert!(departments.contains(r#"<c r="I2" s="5"><v>18.25</v></c>"#));
    assert!(sheet(&entries, 6).contains("崇川区和平桥街道\n文峰社区"));
}

#[test]
fn xlsx_refuses_a_cell_longer_than_excel_allows() {
    let mut report = sample();
    report.hotspots[0].0 = "路".repeat(40_000);
    assert!(matches!(to_xlsx(&report), Err(ReportError::CellTooLong { sheet: HOTSPOTS, chars: 40_000 })));
}

#[test]
fn html_is_self_contained_escaped_and_balanced() {
    let html = to_html(&sample());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>南通市2026年10月月度分析报告</title>"));
    assert!(html.contains("<h1>南通市2026年10月月度分析报告</h1>"));
    assert!(html.contains("对比月份：2026年9月"));
    assert!(html.contains("@media print") && html.contains("size:A4"));
    for external in ["<script", "src=", "href=", "url(", "@import", "<link"] {
        assert!(!html.contains(external), "{external}");
    }
    assert!(!html.contains("<一>") && !html.contains("\"执法\""));
    assert!(html.contains("市城管局, &quot;执法&quot;&lt;一&gt;队 &amp; 二队"));
    assert!(html.contains("较上月 ↑12.5%"));
    assert!(html.contains("较上月 ↓1.2个百分点"));
    assert!(html.contains("与上月持平"));
    assert!(html.contains("其余 2 类合计为“其他”"));
    assert_balanced(&html, &["meta"]);

    let svgs: Vec<&str> = html.split("<svg").skip(1).map(|s| &s[..s.find("</svg>").unwrap()]).collect();
    assert_eq!(svgs.len(), 3);
    for svg in &svgs {
        assert_balanced(&format!("<svg{svg}</svg>"), &[]);
        assert!(svg.contains("<rect"));
        assert!(!svg.contains("暂无数据"));
    }
    assert_eq!(svgs[0].matches("<rect").count(), 31, "one bar a day");
    assert!(svgs[0].contains(">31</text>") && svgs[0].contains("日均"));
    assert_eq!(svgs[1].matches("<rect").count(), 11, "ten categories and 其他");
    assert!(svgs[2].contains(">91.25</text>"));
}

#[test]
fn an_empty_month_renders_without_dividing_by_zero() {
    let report = empty();
    let html = to_html(&report);
    assert!(html.contains("<h1>海安市2026年2月月度分析报告</h1>"));
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.matches("暂无数据").count() >= 3 + 3);
    for bad in ["NaN", "inf", "∞"] {
        assert!(!html.contains(bad), "{bad}");
    }
    assert_balanced(&html, &["meta"]);

    let csv = to_csv(&report);
    assert!(!csv.contains("NaN"));
    let records = read_csv(csv.trim_start_matches('\u{FEFF}'));
    assert_eq!(records[2], ["受理量", "0", "0", "0.0%"], "no change from zero to zero");
    assert_eq!(records[5], ["响应率", "", "", ""]);

    let entries = read_zip(&to_xlsx(&report).unwrap());
    assert_eq!(entries.len(), 12);
    assert!(!sheet(&entries, 4).contains("<row r=\"2\""), "a header and no rows");
}

#[test]
fn values_that_are_not_numbers_are_shown_as_missing() {
    let mut report = sample();
    report.totals.response_rate = Some(f64::NAN);
    report.departments[0].score = f64::INFINITY;
    let html = to_html(&report);
    assert!(!html.contains("NaN") && !html.contains("inf"));
    let entries = read_zip(&to_xlsx(&report).unwrap());
    assert!(!sheet(&entries, 1).contains(r#"r="B5""#));
    assert!(!sheet(&entries, 4).contains(r#"r="J2""#));
}

#[test]
fn formats() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the CRC-32 check value");
    assert_eq!(month_zh("2026-10"), "2026年10月");
    assert_eq!(month_zh("2026-03"), "2026年3月");
    assert_eq!(month_zh("十月"), "十月");
    assert_eq!(decimals(-0.04, 1), "0.0");
    assert_eq!(decimals(93.45, 1), "93.5");
    assert_eq!(signed(12.5), "+12.5");
    assert_eq!(signed(-0.01), "0.0");
    assert_eq!(super::xlsx::column(0), "A");
    assert_eq!(super::xlsx::column(25), "Z");
    assert_eq!(super::xlsx::column(26), "AA");
    assert_eq!(super::xlsx::column(701), "ZZ");
    assert_eq!(super::xlsx::column(702), "AAA");
    for (max, step) in [
        (1, 1),
        (5, 1),
        (6, 2),
        (10, 2),
        (11, 5),
        (190, 50),
        (250, 50),
        (251, 100),
        (u64::MAX, 5_000_000_000_000_000_000),
    ] {
        assert_eq!(super::html::nice_step(max), step, "{max}");
    }
}
