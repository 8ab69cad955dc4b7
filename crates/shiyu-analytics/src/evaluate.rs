//! Evaluation (行政问效): the indicators of each department and of each unit of a level, their rankings and
//! a weighted composite score. Every indicator's numerator and denominator are written in
//! docs/indicators.md; the names here are the ones used there.

use crate::projection::{stage_index, status_index, Projection, BLOCK, NO_STAGE};
use crate::query::Filter;
use serde::{Deserialize, Serialize};
use shiyu_domain::{Reason, Stage, Status, Timestamp};

/// Who is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Departments, by the cases they lead (承办) and the dispatches they received.
    Department,
    /// The counties, townships, communities or grids where the cases happened.
    County,
    Township,
    Community,
    Grid,
}

impl Unit {
    pub const ALL: [Unit; 5] = [Unit::Department, Unit::County, Unit::Township, Unit::Community, Unit::Grid];

    pub fn parse(text: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Department => "department",
            Unit::County => "county",
            Unit::Township => "township",
            Unit::Community => "community",
            Unit::Grid => "grid",
        }
    }
}

/// A numerator over a denominator; the rate is `None` when the denominator is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    pub fn rate(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

/// One unit's indicators over the cases received in the period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Indicators {
    pub unit: i64,
    pub cases: u64,
    /// 响应率
    pub response: Ratio,
    /// 解决率
    pub resolution: Ratio,
    /// 满意率
    pub satisfaction: Ratio,
    /// 按期立案率, 按期派遣率, 按期处置率, 按期核查率
    pub registration_on_time: Ratio,
    pub dispatch_on_time: Ratio,
    pub handling_on_time: Ratio,
    pub verification_on_time: Ratio,
    /// 返工率
    pub rework: Ratio,
    /// 退回率
    pub returned: Ratio,
    /// 超期件数
    pub overdue: u64,
    /// 延期次数
    pub extensions: u64,
    /// 办结用时: from the report to the first report of the work done, in hours.
    pub handling_hours_avg: Option<f64>,
    pub handling_hours_p90: Option<f64>,
    /// 综合得分, 0–100, by the year's weights.
    pub score: Option<f64>,
    pub rank: u32,
}

/// The composite score's weights (考核权重), per year; each indicator's rate counts as 0–100, rework and
/// return as 100 minus their rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub response: f64,
    pub resolution: f64,
    pub satisfaction: f64,
    pub registration_on_time: f64,
    pub dispatch_on_time: f64,
    pub handling_on_time: f64,
    pub verification_on_time: f64,
    pub rework: f64,
    pub returned: f64,
}

impl Default for Weights {
    /// The three rates of 接诉即办 weigh most; timeliness next; rework and returns least.
    fn default() -> Self {
        Weights {
            response: 20.0,
            resolution: 25.0,
            satisfaction: 25.0,
            registration_on_time: 5.0,
            dispatch_on_time: 5.0,
            handling_on_time: 10.0,
            verification_on_time: 4.0,
            rework: 3.0,
            returned: 3.0,
        }
    }
}

/// The largest weight: weights are relative, and a thousand to one is already more than any ranking needs.
pub const MOST_WEIGHT: f64 = 1_000.0;

impl Weights {
    /// Refuses negative, non-finite or oversized weights and a set that weighs nothing, saying why.
    pub fn check(&self) -> Result<(), Reason> {
        let all = self.pairs(&Indicators::default());
        if all.iter().any(|(w, _)| !w.is_finite() || *w < 0.0) {
            return Err(Reason::new("权重须为有限的非负数", "weights must be finite and not negative"));
        }
        let sum = all.iter().map(|(w, _)| w).sum::<f64>();
        if sum <= 0.0 {
            return Err(Reason::new("至少一项权重须大于零", "at least one weight must be above zero"));
        }
        // Each weight finite is not enough: two near f64::MAX overflow the sum, and every score with it.
        if !sum.is_finite() || all.iter().any(|(w, _)| *w > MOST_WEIGHT) {
            return Err(Reason::new(
                format!("每项权重最大为 {MOST_WEIGHT}"),
                format!("each weight is at most {MOST_WEIGHT}"),
            ));
        }
        Ok(())
    }

    fn pairs(&self, i: &Indicators) -> [(f64, Option<f64>); 9] {
        let inverse = |r: Option<f64>| r.map(|r| 1.0 - r);
        [
            (self.response, i.response.rate()),
            (self.resolution, i.resolution.rate()),
            (self.satisfaction, i.satisfaction.rate()),
            (self.registration_on_time, i.registration_on_time.rate()),
            (self.dispatch_on_time, i.dispatch_on_time.rate()),
            (self.handling_on_time, i.handling_on_time.rate()),
            (self.verification_on_time, i.verification_on_time.rate()),
            (self.rework, inverse(i.rework.rate())),
            (self.returned, inverse(i.returned.rate())),
        ]
    }

    /// The weighted mean of the indicators the unit has, 0–100; indicators without a denominator leave the
    /// score, their weight shared out among the others.
    pub fn score(&self, indicators: &Indicators) -> Option<f64> {
        let (mut sum, mut weight) = (0.0, 0.0);
        for (w, rate) in self.pairs(indicators) {
            if let Some(rate) = rate {
                sum += w * rate * 100.0;
                weight += w;
            }
        }
        (weight > 0.0).then(|| sum / weight)
    }
}

impl Projection {
    /// The indicators of every unit with cases among those `filter` selects, ranked by score (best first,
    /// ties by more cases, then by id). `now` decides which open stages are overdue.
    pub fn evaluate(
        &self,
        filter: &Filter,
        unit: Unit,
        weights: &Weights,
        now: Timestamp,
    ) -> Vec<Indicators> {
        let rows = self.select(filter);
        let closed = status_index(Status::Closed);
        let ended_badly = [Status::Rejected, Status::Merged, Status::Voided].map(status_index);
        let bit = |stage: Stage| 1u8 << stage_index(stage);
        let (register, dispatch, handle, verify) =
            (bit(Stage::Register), bit(Stage::Dispatch), bit(Stage::Handle), bit(Stage::Verify));
        let ids = match unit {
            Unit::Department => &self.lead,
            Unit::County => &self.county,
            Unit::Township => &self.township,
            Unit::Community => &self.community,
            Unit::Grid => &self.grid,
        };
        let mut units = UnitTable::default();
        for &row in &rows {
            let id = ids[row];
            if id == 0 {
                continue;
            }
            let slot = units.slot(id);
            let (done, late, status, rating) =
                (self.done[row], self.late[row], self.status[row], self.rating[row]);
            let open = self.stage[row] != NO_STAGE;
            let c = &mut units.counts[slot];
            c[CASES] += 1;
            if unit != Unit::Department {
                count(c, RESPONSE, true, done & register != 0 && late & register == 0);
                count(c, RETURNED, self.dispatched[row] != 0, self.returns[row] > 0);
            }
            count(c, RESOLUTION, !ended_badly.contains(&status), status == closed);
            count(c, SATISFACTION, rating > 0, rating >= 4);
            for (ratio, stage) in [
                (REGISTRATION_ON_TIME, register),
                (DISPATCH_ON_TIME, dispatch),
                (HANDLING_ON_TIME, handle),
                (VERIFICATION_ON_TIME, verify),
            ] {
                count(c, ratio, done & stage != 0, late & stage == 0);
            }
            count(c, REWORK, done & handle != 0, self.reworks[row] > 0);
            c[OVERDUE] += u32::from(late != 0 || (open && self.due[row] < now.0));
            c[EXTENSIONS] += u32::from(self.extensions[row]);
            let handled = self.ended[row][stage_index(Stage::Handle)];
            if handled != 0 {
                units.handled[slot].push(handled);
            }
        }
        if unit == Unit::Department {
            self.count_dispatches(&rows, &mut units);
        }
        let mut out: Vec<Indicators> = units
            .ids
            .into_iter()
            .zip(units.counts)
            .zip(units.handled)
            .map(|((id, counts), mut seconds)| {
                let mut indicators = Indicators::of(id, &counts);
                if !seconds.is_empty() {
                    let total: u64 = seconds.iter().map(|s| u64::from(*s)).sum();
                    indicators.handling_hours_avg = Some(total as f64 / 3600.0 / seconds.len() as f64);
                    let at = ((seconds.len() as f64 * 0.9).ceil() as usize).clamp(1, seconds.len()) - 1;
                    let (_, p90, _) = seconds.select_nth_unstable(at);
                    indicators.handling_hours_p90 = Some(f64::from(*p90) / 3600.0);
                }
                indicators.score = weights.score(&indicators);
                indicators
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .unwrap_or(-1.0)
                .total_cmp(&a.score.unwrap_or(-1.0))
                .then(b.cases.cmp(&a.cases))
                .then(a.unit.cmp(&b.unit))
        });
        for (index, indicators) in out.iter_mut().enumerate() {
            indicators.rank = index as u32 + 1;
        }
        out
    }

    /// Response and returns of departments count dispatches: each time a department was sent a case it
    /// leads, among the selected cases. Blocks of dispatches whose cases all lie outside the selection's
    /// range of rows are skipped.
    fn count_dispatches(&self, rows: &[usize], units: &mut UnitTable) {
        let (Some(&first), Some(&last)) = (rows.iter().min(), rows.iter().max()) else { return };
        let mut selected = vec![0u64; last / 64 + 1];
        for &row in rows {
            selected[row / 64] |= 1 << (row % 64);
        }
        let is_selected =
            |row: usize| selected.get(row / 64).is_some_and(|word| word & (1 << (row % 64)) != 0);
        for (block, &(least, greatest)) in self.dispatch_rows.iter().enumerate() {
            if (greatest as usize) < first || (least as usize) > last {
                continue;
            }
            let end = ((block + 1) * BLOCK).min(self.dispatches.len());
            for dispatch in &self.dispatches[block * BLOCK..end] {
                if is_selected(dispatch.row as usize) {
                    let slot = units.slot(dispatch.department);
                    let c = &mut units.counts[slot];
                    count(c, RESPONSE, true, dispatch.accepted == 1);
                    count(c, RETURNED, true, dispatch.returned);
                }
            }
        }
    }
}

/// Counters of one unit, added to without branches while the rows are read and made into `Indicators` at the
/// end: the number of cases, overdue cases and extensions, then each ratio's denominator and numerator.
type Counts = [u32; 3 + 2 * 9];
const CASES: usize = 0;
const OVERDUE: usize = 1;
const EXTENSIONS: usize = 2;
const RESPONSE: usize = 0;
const RESOLUTION: usize = 1;
const SATISFACTION: usize = 2;
const REGISTRATION_ON_TIME: usize = 3;
const DISPATCH_ON_TIME: usize = 4;
const HANDLING_ON_TIME: usize = 5;
const VERIFICATION_ON_TIME: usize = 6;
const REWORK: usize = 7;
const RETURNED: usize = 8;

#[inline]
fn count(c: &mut Counts, ratio: usize, counted: bool, hit: bool) {
    c[3 + 2 * ratio] += u32::from(counted);
    c[4 + 2 * ratio] += u32::from(counted && hit);
}

impl Indicators {
    fn of(unit: u32, c: &Counts) -> Indicators {
        let ratio =
            |r: usize| Ratio { denominator: u64::from(c[3 + 2 * r]), numerator: u64::from(c[4 + 2 * r]) };
        Indicators {
            unit: i64::from(unit),
            cases: u64::from(c[CASES]),
            response: ratio(RESPONSE),
            resolution: ratio(RESOLUTION),
            satisfaction: ratio(SATISFACTION),
            registration_on_time: ratio(REGISTRATION_ON_TIME),
            dispatch_on_time: ratio(DISPATCH_ON_TIME),
            handling_on_time: ratio(HANDLING_ON_TIME),
            verification_on_time: ratio(VERIFICATION_ON_TIME),
            rework: ratio(REWORK),
            returned: ratio(RETURNED),
            overdue: u64::from(c[OVERDUE]),
            extensions: u64::from(c[EXTENSIONS]),
            ..Indicators::default()
        }
    }
}

/// Counters by unit, found by the unit's id through a dense table: ids are small integers handed out in
/// order, and this is several times quicker than hashing once per case.
#[derive(Default)]
struct UnitTable {
    slot_of: Vec<u32>,
    ids: Vec<u32>,
    counts: Vec<Counts>,
    /// Handling times in seconds, for the mean and the 90th percentile.
    handled: Vec<Vec<u32>>,
}

impl UnitTable {
    fn slot(&mut self, id: u32) -> usize {
        let index = id as usize;
        if index >= self.slot_of.len() {
            self.slot_of.resize(index + 1, u32::MAX);
        }
        if self.slot_of[index] == u32::MAX {
            self.slot_of[index] = self.ids.len() as u32;
            self.ids.push(id);
            self.counts.push([0; 3 + 2 * 9]);
            self.handled.push(Vec::new());
        }
        self.slot_of[index] as usize
    }
}

/// Each indicator's definition as printed in reports; docs/indicators.md says the same at more length.
pub const DEFINITIONS: &[(&str, &str)] = &[
    ("统计范围", "统计期内受理（以受理时间计）、发生地在该辖区内的事件；部门按事件当前或最后一次派遣的主办部门（承办部门）归属。"),
    ("响应率（部门）", "分子：在签收时限内签收的主办派遣次数；分母：该部门收到的全部主办派遣次数（含之后被退回的）。"),
    ("响应率（层级）", "分子：在立案时限内完成立案、不予立案或就地解决的件数；分母：受理件数。"),
    ("解决率", "分子：结案件数；分母：受理件数减去不予立案、合并和作废的件数。"),
    ("满意率", "分子：评价为4分或5分的件数；分母：有评价的件数。"),
    ("按期立案率、按期派遣率、按期处置率、按期核查率", "分子：该环节已完成且每次完成都未超过该环节期限的件数；分母：该环节已完成的件数。"),
    ("返工率", "分子：核查不通过（返工）至少一次的件数；分母：已完成处置反馈的件数。"),
    ("退回率", "部门：被退回的主办派遣次数÷主办派遣次数；层级：有退回的件数÷曾派遣的件数。"),
    ("超期件数", "任一环节超期完成，或当前环节在统计时刻已超过期限的件数。"),
    ("延期次数", "批准的延期次数之和。"),
    ("办结用时", "从受理到首次处置反馈的自然小时数，取平均值和第90百分位数。"),
    ("综合得分", "各指标按年度权重加权平均（比率×100；返工率、退回率取100减去比率×100）；无分母的指标不计入，其权重按比例分给其余指标。"),
];
