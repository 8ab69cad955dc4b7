//! Questions to the projection: which cases (a `Filter`), grouped how (up to two `Dim`s and a time
//! `Bucket`), counted how (`Stats`). One pass over the columns the question needs.

use crate::projection::{channel_index, status_index, Projection, NONE16, NO_STAGE};
use serde::{Deserialize, Serialize};
use shiyu_domain::{Channel, Date, DepartmentId, JurisdictionId, Level, Status, Timestamp};
use std::collections::HashMap;

/// What a question may group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Category,
    Matter,
    County,
    Township,
    Community,
    Grid,
    /// The lead department of the current or last dispatch.
    Department,
    Channel,
    Status,
}

impl Dim {
    pub const ALL: [Dim; 9] = [
        Dim::Category,
        Dim::Matter,
        Dim::County,
        Dim::Township,
        Dim::Community,
        Dim::Grid,
        Dim::Department,
        Dim::Channel,
        Dim::Status,
    ];

    pub fn parse(text: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Category => "category",
            Dim::Matter => "matter",
            Dim::County => "county",
            Dim::Township => "township",
            Dim::Community => "community",
            Dim::Grid => "grid",
            Dim::Department => "department",
            Dim::Channel => "channel",
            Dim::Status => "status",
        }
    }
}

/// Time buckets, in Beijing time; weeks start on Monday.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    pub fn parse(text: &str) -> Option<Bucket> {
        [Bucket::Hour, Bucket::Day, Bucket::Week, Bucket::Month].into_iter().find(|b| b.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }

    /// The start of the bucket holding `at`.
    pub fn start_of(self, at: Timestamp) -> Timestamp {
        let (date, minute) = at.to_beijing();
        match self {
            Bucket::Hour => Timestamp::from_beijing(date, minute / 60 * 60),
            Bucket::Day => Timestamp::from_beijing(date, 0),
            Bucket::Week => Timestamp::from_beijing(Date(date.0 - date.weekday() as i32), 0),
            Bucket::Month => {
                let (year, month, _) = date.ymd();
                Timestamp::from_beijing(Date::from_ymd(year, month, 1).unwrap_or(date), 0)
            }
        }
    }
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Beijing is eight hours ahead of UTC all year.
const BEIJING_MS: i64 = 8 * HOUR_MS;

/// Which cases a question is about. Times are the report's (受理时间), `[from, to)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Cases that happened within this jurisdiction (the caller's scope, or a narrower choice). A city
    /// means every case.
    pub within: Option<(Level, JurisdictionId)>,
    /// Cases led by this department (the caller's scope for department users).
    pub department: Option<DepartmentId>,
    pub category: Option<String>,
    pub matter: Option<String>,
    pub channel: Option<Channel>,
    pub status: Option<Status>,
}

/// What is counted for each group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub cases: u64,
    /// Closed (结案).
    pub closed: u64,
    /// Still open (any running stage).
    pub open: u64,
    /// A stage completed late, or the running stage past its deadline at the time of asking.
    pub overdue: u64,
    /// Rated by the reporter, and of those rated 4 or 5.
    pub rated: u64,
    pub satisfied: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.cases += other.cases;
        self.closed += other.closed;
        self.open += other.open;
        self.overdue += other.overdue;
        self.rated += other.rated;
        self.satisfied += other.satisfied;
    }
}

/// A group's key: an id (jurisdictions, departments) or a code (categories, matters, channels, states).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Key {
    Id(i64),
    Code(String),
    /// The case has no value here (not yet classified, not dispatched, no grid).
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    pub keys: Vec<Key>,
    /// The bucket's start, when the question has a bucket.
    pub bucket: Option<Timestamp>,
    pub stats: Stats,
}

/// A resolved filter: the strings and enums turned into the columns' numbers once, before the scan.
struct Matcher {
    from: i64,
    to: i64,
    within: Option<(Level, u32)>,
    department: Option<u32>,
    category: Option<u16>,
    matter: Option<u16>,
    channel: Option<u8>,
    status: Option<u8>,
    /// A named category or matter the projection has never seen: nothing matches.
    impossible: bool,
}

impl Matcher {
    fn new(p: &Projection, filter: &Filter) -> Matcher {
        let lookup = |code: &Option<String>, found: Option<u16>| match code {
            Some(_) => (found, found.is_none()),
            None => (None, false),
        };
        let (category, no_category) =
            lookup(&filter.category, filter.category.as_deref().and_then(|c| p.categories.find(c)));
        let (matter, no_matter) =
            lookup(&filter.matter, filter.matter.as_deref().and_then(|m| p.matters.find(m)));
        Matcher {
            from: filter.from.map_or(i64::MIN, |t| t.0),
            to: filter.to.map_or(i64::MAX, |t| t.0),
            within: filter
                .within
                .filter(|(level, _)| *level != Level::City)
                .map(|(level, j)| (level, j.0 as u32)),
            department: filter.department.map(|d| d.0 as u32),
            category,
            matter,
            channel: filter.channel.map(channel_index),
            status: filter.status.map(status_index),
            impossible: no_category || no_matter,
        }
    }

    #[inline]
    fn matches(&self, p: &Projection, row: usize) -> bool {
        let at = p.received_at[row];
        if at == 0 || at < self.from || at >= self.to {
            return false;
        }
        if let Some((level, id)) = self.within {
            let column = match level {
                Level::County => &p.county,
                Level::Township => &p.township,
                Level::Community => &p.community,
                Level::Grid | Level::MicroGrid => &p.grid,
                Level::City => return true,
            };
            if column[row] != id {
                return false;
            }
        }
        self.department.is_none_or(|d| p.lead[row] == d)
            && self.category.is_none_or(|c| p.category[row] == c)
            && self.matter.is_none_or(|m| p.matter[row] == m)
            && self.channel.is_none_or(|c| p.channel[row] == c)
            && self.status.is_none_or(|s| p.status[row] == s)
    }
}

impl Projection {
    /// The rows `filter` selects, in order.
    pub fn select(&self, filter: &Filter) -> Vec<usize> {
        let matcher = Matcher::new(self, filter);
        if matcher.impossible {
            return Vec::new();
        }
        (0..self.rows()).filter(|row| matcher.matches(self, *row)).collect()
    }

    #[inline]
    fn stats_of(&self, row: usize, now: i64) -> Stats {
        let open = self.stage[row] != NO_STAGE;
        let rating = self.rating[row];
        Stats {
            cases: 1,
            closed: u64::from(self.status[row] == status_index(Status::Closed)),
            open: u64::from(open),
            overdue: u64::from(self.late[row] != 0 || (open && self.due[row] < now)),
            rated: u64::from(rating > 0),
            satisfied: u64::from(rating >= 4),
        }
    }

    #[inline]
    fn dim_value(&self, dim: Dim, row: usize) -> u32 {
        match dim {
            Dim::Category => u32::from(self.category[row]),
            Dim::Matter => u32::from(self.matter[row]),
            Dim::County => self.county[row],
            Dim::Township => self.township[row],
            Dim::Community => self.community[row],
            Dim::Grid => self.grid[row],
            Dim::Department => self.lead[row],
            Dim::Channel => u32::from(self.channel[row]),
            Dim::Status => u32::from(self.status[row]),
        }
    }

    fn key_of(&self, dim: Dim, value: u32) -> Key {
        let code = |text: Option<&str>| text.map_or(Key::None, |t| Key::Code(t.to_string()));
        match dim {
            Dim::Category if value != u32::from(NONE16) => code(self.categories.code(value as u16)),
            Dim::Matter if value != u32::from(NONE16) => code(self.matters.code(value as u16)),
            Dim::Category | Dim::Matter => Key::None,
            Dim::County | Dim::Township | Dim::Community | Dim::Grid | Dim::Department => {
                if value == 0 {
                    Key::None
                } else {
                    Key::Id(i64::from(value))
                }
            }
            Dim::Channel => code(Channel::ALL.get(value as usize).map(channel_name)),
            Dim::Status => code(Status::ALL.get(value as usize).map(|s| s.as_str())),
        }
    }

    /// Counts of the cases `filter` selects, grouped by `by` (at most two dimensions) and, if given, by
    /// time `bucket`; `now` decides which open cases are past their deadline. Groups come sorted by key and
    /// bucket.
    pub fn group(&self, filter: &Filter, by: &[Dim], bucket: Option<Bucket>, now: Timestamp) -> Vec<Group> {
        let matcher = Matcher::new(self, filter);
        if matcher.impossible {
            return Vec::new();
        }
        let by: Vec<Dim> = by.iter().copied().take(2).collect();
        let months = MonthTable::new(self, &matcher, bucket);
        let mut groups: HashMap<(u32, u32, i64), Stats> = HashMap::new();
        // The common case, one dimension of small values and no bucket, counts in a plain array.
        let mut dense: Vec<Stats> = Vec::new();
        let dense_ok = by.len() <= 1 && bucket.is_none();
        for row in 0..self.rows() {
            if !matcher.matches(self, row) {
                continue;
            }
            let stats = self.stats_of(row, now.0);
            let first = by.first().map_or(0, |d| self.dim_value(*d, row));
            if dense_ok && (first as usize) < 1 << 20 {
                let index = first as usize;
                if dense.len() <= index {
                    dense.resize(index + 1, Stats::default());
                }
                dense[index].add(&stats);
                continue;
            }
            let second = by.get(1).map_or(0, |d| self.dim_value(*d, row));
            let slot = bucket.map_or(0, |b| months.bucket_start(b, self.received_at[row]));
            groups.entry((first, second, slot)).or_default().add(&stats);
        }
        for (index, stats) in dense.into_iter().enumerate() {
            if stats.cases > 0 {
                groups.entry((index as u32, 0, 0)).or_default().add(&stats);
            }
        }
        let mut out: Vec<Group> = groups
            .into_iter()
            .map(|((first, second, slot), stats)| Group {
                keys: by.iter().zip([first, second]).map(|(dim, value)| self.key_of(*dim, value)).collect(),
                bucket: bucket.map(|_| Timestamp(slot)),
                stats,
            })
            .collect();
        out.sort_by(|a, b| (&a.keys, a.bucket).cmp(&(&b.keys, b.bucket)));
        out
    }

    /// The `n` groups of `dim` with most cases (grids, communities, matters: 热点), most first.
    pub fn top(&self, filter: &Filter, dim: Dim, n: usize, now: Timestamp) -> Vec<Group> {
        let mut groups = self.group(filter, &[dim], None, now);
        groups.retain(|g| g.keys.first() != Some(&Key::None));
        groups.sort_by(|a, b| b.stats.cases.cmp(&a.stats.cases).then_with(|| a.keys.cmp(&b.keys)));
        groups.truncate(n);
        groups
    }
}

pub fn channel_name(channel: &Channel) -> &'static str {
    match channel {
        Channel::Hotline => "hotline",
        Channel::App => "app",
        Channel::MiniProgram => "mini_program",
        Channel::GridPatrol => "grid_patrol",
        Channel::Sensor => "sensor",
        Channel::Other => "other",
    }
}

/// Bucket starts without calendar arithmetic per row: hours, days and weeks are fixed lengths in Beijing
/// time; months come from a table of days built once per question.
struct MonthTable {
    first_day: i64,
    month_start: Vec<i64>,
}

impl MonthTable {
    fn new(p: &Projection, matcher: &Matcher, bucket: Option<Bucket>) -> MonthTable {
        if bucket != Some(Bucket::Month) {
            return MonthTable { first_day: 0, month_start: Vec::new() };
        }
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        for at in p.received_at.iter().copied().filter(|at| *at != 0) {
            low = low.min(at);
            high = high.max(at);
        }
        let low = low.max(matcher.from);
        let high = high.min(matcher.to.saturating_sub(1));
        if low > high {
            return MonthTable { first_day: 0, month_start: Vec::new() };
        }
        let first_day = (low + BEIJING_MS).div_euclid(DAY_MS);
        let last_day = (high + BEIJING_MS).div_euclid(DAY_MS);
        let month_start = (first_day..=last_day)
            .map(|day| Bucket::Month.start_of(Timestamp(day * DAY_MS - BEIJING_MS)).0)
            .collect();
        MonthTable { first_day, month_start }
    }

    #[inline]
    fn bucket_start(&self, bucket: Bucket, at: i64) -> i64 {
        let local = at + BEIJING_MS;
        match bucket {
            Bucket::Hour => local.div_euclid(HOUR_MS) * HOUR_MS - BEIJING_MS,
            Bucket::Day => local.div_euclid(DAY_MS) * DAY_MS - BEIJING_MS,
            // Day 0 (1970-01-01) was a Thursday: three days after a Monday.
            Bucket::Week => ((local.div_euclid(DAY_MS) + 3).div_euclid(7) * 7 - 3) * DAY_MS - BEIJING_MS,
            Bucket::Month => {
                let day = local.div_euclid(DAY_MS);
                let index = (day - self.first_day).max(0) as usize;
                self.month_start
                    .get(index)
                    .copied()
                    .unwrap_or_else(|| Bucket::Month.start_of(Timestamp(at)).0)
            }
        }
    }
}
