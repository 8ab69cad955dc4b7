//! Filling the monthly report (`report::MonthlyReport`) from the projection: one month of one jurisdiction,
//! against the month before.

use crate::evaluate::{Indicators, Unit, Weights};
use crate::projection::Projection;
use crate::query::{Bucket, Dim, Filter, Key};
use crate::report::{MonthlyReport, RankedUnit, Totals};
use shiyu_domain::{Date, JurisdictionId, Level, Timestamp};

/// The names the report prints, from the reference data.
pub trait Names {
    fn jurisdiction(&self, id: i64) -> Option<String>;
    fn department(&self, id: i64) -> Option<String>;
    fn category(&self, code: &str) -> Option<String>;
}

/// The first moment of `month` ("2026-10") and of the month after, in Beijing time.
pub fn month_bounds(month: &str) -> Option<(Timestamp, Timestamp)> {
    // Exactly `YYYY-MM`, years 1970–2099: `26-11`, `+2026-11` or `2026-011` are typing slips, not months.
    let (year, number) = month.split_once('-')?;
    let digits = |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
    if !digits(year, 4) || !digits(number, 2) {
        return None;
    }
    let (year, number): (i32, u32) = (year.parse().ok()?, number.parse().ok()?);
    if !(1970..=2099).contains(&year) {
        return None;
    }
    let first = Date::from_ymd(year, number, 1)?;
    let next =
        if number == 12 { Date::from_ymd(year + 1, 1, 1)? } else { Date::from_ymd(year, number + 1, 1)? };
    Some((Timestamp::from_beijing(first, 0), Timestamp::from_beijing(next, 0)))
}

fn previous_month(month: &str) -> Option<String> {
    let (start, _) = month_bounds(month)?;
    let (year, number, _) = Timestamp(start.0 - 1).to_beijing().0.ymd();
    Some(format!("{year:04}-{number:02}"))
}

fn ranked(list: &[Indicators], name: impl Fn(i64) -> Option<String>) -> Vec<RankedUnit> {
    list.iter()
        .map(|i| {
            let on_time =
                [i.registration_on_time, i.dispatch_on_time, i.handling_on_time, i.verification_on_time]
                    .iter()
                    .fold(crate::Ratio::default(), |sum, r| crate::Ratio {
                        numerator: sum.numerator + r.numerator,
                        denominator: sum.denominator + r.denominator,
                    });
            RankedUnit {
                rank: i.rank,
                name: name(i.unit).unwrap_or_else(|| format!("#{}", i.unit)),
                cases: i.cases,
                response_rate: i.response.rate(),
                resolution_rate: i.resolution.rate(),
                satisfaction_rate: i.satisfaction.rate(),
                on_time_rate: on_time.rate(),
                overdue: i.overdue,
                handling_hours: i.handling_hours_avg,
                score: i.score.unwrap_or(0.0),
            }
        })
        .collect()
}

fn totals(projection: &Projection, filter: &Filter, now: Timestamp) -> Totals {
    let stats = projection.group(filter, &[], None, now).first().map(|g| g.stats).unwrap_or_default();
    // The jurisdiction as one unit: its counties' indicators summed.
    let sum = |pick: fn(&Indicators) -> crate::Ratio| {
        let parts = projection.evaluate(filter, Unit::County, &Weights::default(), now);
        parts.iter().map(pick).fold(crate::Ratio::default(), |a, b| crate::Ratio {
            numerator: a.numerator + b.numerator,
            denominator: a.denominator + b.denominator,
        })
    };
    Totals {
        received: stats.cases,
        closed: stats.closed,
        overdue: stats.overdue,
        response_rate: sum(|i| i.response).rate(),
        resolution_rate: sum(|i| i.resolution).rate(),
        satisfaction_rate: sum(|i| i.satisfaction).rate(),
    }
}

/// The report of `month` for the cases within `within` (the whole city when `None`). `None` when the month
/// is not `YYYY-MM`.
pub fn monthly_report(
    projection: &Projection,
    month: &str,
    within: Option<(Level, JurisdictionId)>,
    names: &dyn Names,
    weights: &Weights,
    now: Timestamp,
) -> Option<MonthlyReport> {
    let (from, to) = month_bounds(month)?;
    let previous = previous_month(month)?;
    let (previous_from, _) = month_bounds(&previous)?;
    let filter = Filter { from: Some(from), to: Some(to), within, ..Filter::default() };
    let before = Filter { from: Some(previous_from), to: Some(from), ..filter.clone() };
    let daily = projection
        .group(&filter, &[], Some(Bucket::Day), now)
        .iter()
        .filter_map(|g| g.bucket.map(|b| (b, g.stats.cases)))
        .collect::<Vec<_>>();
    let mut days = Vec::new();
    let mut day = from;
    while day < to {
        let (date, _) = day.to_beijing();
        let count = daily.iter().find(|(b, _)| *b == day).map_or(0, |(_, c)| *c);
        days.push((date.to_string(), count));
        day = Timestamp::from_beijing(date.next(), 0);
    }
    let mut categories: Vec<(String, u64)> = projection
        .group(&filter, &[Dim::Category], None, now)
        .into_iter()
        .map(|g| {
            let name = match &g.keys[0] {
                Key::Code(code) => names.category(code).unwrap_or_else(|| code.clone()),
                _ => "未分类".to_string(),
            };
            (name, g.stats.cases)
        })
        .collect();
    categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let departments = projection.evaluate(&filter, Unit::Department, weights, now);
    // The units one level below the report's jurisdiction.
    let below = match within.map(|(level, _)| level) {
        None | Some(Level::City) => Unit::County,
        Some(Level::County) => Unit::Township,
        Some(Level::Township) => Unit::Community,
        Some(_) => Unit::Grid,
    };
    let centers = projection.evaluate(&filter, below, weights, now);
    let hotspots = projection
        .top(&filter, Dim::Community, 10, now)
        .into_iter()
        .filter_map(|g| match g.keys[0] {
            Key::Id(id) => Some((names.jurisdiction(id).unwrap_or_else(|| format!("#{id}")), g.stats.cases)),
            _ => None,
        })
        .collect();
    let jurisdiction =
        within.and_then(|(_, id)| names.jurisdiction(id.0)).unwrap_or_else(|| "全市".to_string());
    Some(MonthlyReport {
        jurisdiction,
        month: month.to_string(),
        previous_month: previous,
        totals: totals(projection, &filter, now),
        previous_totals: totals(projection, &before, now),
        daily: days,
        categories,
        departments: ranked(&departments, |id| names.department(id)),
        centers: ranked(&centers, |id| names.jurisdiction(id)),
        hotspots,
        definitions: crate::evaluate::DEFINITIONS
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::month_bounds;

    #[test]
    fn a_month_is_exactly_four_digits_a_dash_and_two() {
        let (from, to) = month_bounds("2026-11").unwrap();
        assert_eq!(to.0 - from.0, 30 * 86_400_000);
        assert!(month_bounds("2026-12").is_some(), "December ends in the next year");
        for slip in [
            "26-11", "+2026-11", "2026-+11", "2026-011", "02026-11", "99999-01", "2026-13", "2026-00",
            "2026-1", "abcd",
        ] {
            assert!(month_bounds(slip).is_none(), "{slip}");
        }
    }
}
