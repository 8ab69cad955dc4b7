//! Questions to the projection: which cases (a `Filter`), grouped how (up to two `Dim`s and a time
//! `Bucket`), counted how (`Stats`). One pass over the columns the question needs.

use crate::projection::{channel_index, status_index, Projection, BLOCK, NONE16, NONE8, NO_STAGE};
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
    pub const ALL: [Bucket; 4] = [Bucket::Hour, Bucket::Day, Bucket::Week, Bucket::Month];

    pub fn parse(text: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == text)
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

/// A group's place: its first and second key (as column codes) and the start of its bucket.
type GroupKey = (u32, u32, i64);

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

    /// Whether the filter asks anything besides the time range.
    fn has_rest(&self) -> bool {
        self.within.is_some()
            || self.department.is_some()
            || self.category.is_some()
            || self.matter.is_some()
            || self.channel.is_some()
            || self.status.is_some()
    }

    /// Everything but the time range, for a row that holds a case.
    #[inline]
    fn rest(&self, p: &Projection, row: usize) -> bool {
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

    /// Clears the flags of the rows `first..` (as many as `codes`) that fail anything but the time range.
    fn mask(&self, p: &Projection, first: usize, codes: &mut [u8]) {
        let last = first + codes.len();
        if let Some((level, id)) = self.within {
            let column = match level {
                Level::County => Some(&p.county),
                Level::Township => Some(&p.township),
                Level::Community => Some(&p.community),
                Level::Grid | Level::MicroGrid => Some(&p.grid),
                Level::City => None,
            };
            if let Some(column) = column {
                keep_equal(codes, &column[first..last], id);
            }
        }
        if let Some(d) = self.department {
            keep_equal(codes, &p.lead[first..last], d);
        }
        if let Some(c) = self.category {
            keep_equal(codes, &p.category[first..last], c);
        }
        if let Some(m) = self.matter {
            keep_equal(codes, &p.matter[first..last], m);
        }
        if let Some(c) = self.channel {
            keep_equal(codes, &p.channel[first..last], c);
        }
        if let Some(s) = self.status {
            keep_equal(codes, &p.status[first..last], s);
        }
    }

    #[inline]
    fn in_time(&self, at: i64) -> bool {
        at >= self.from && at < self.to
    }

    /// The stretches of rows that may hold matching cases, from the time index: `(start, end, check_time)`,
    /// where `check_time` is false for stretches whose every case falls within the time range.
    fn ranges(&self, p: &Projection) -> Vec<(usize, usize, bool)> {
        let rows = p.rows();
        let mut out: Vec<(usize, usize, bool)> = Vec::new();
        for (block, (&low, &high)) in p.block_min.iter().zip(&p.block_max).enumerate() {
            if low > high || high < self.from || low >= self.to {
                continue;
            }
            let check = low < self.from || high >= self.to;
            let (start, end) = (block * BLOCK, ((block + 1) * BLOCK).min(rows));
            match out.last_mut() {
                Some(last) if last.1 == start && last.2 == check => last.1 = end,
                _ if start < end => out.push((start, end, check)),
                _ => {}
            }
        }
        out
    }

    /// The earliest and latest report time any matching case can have.
    fn span(&self, p: &Projection, ranges: &[(usize, usize, bool)]) -> (i64, i64) {
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        for &(start, end, _) in ranges {
            for block in start / BLOCK..end.div_ceil(BLOCK) {
                low = low.min(p.block_min[block]);
                high = high.max(p.block_max[block]);
            }
        }
        (low.max(self.from), high.min(self.to.saturating_sub(1)))
    }
}

/// A row's contribution to its group's `Stats`, packed in one word: six fields of `FIELD` bits (cases,
/// closed, open, overdue, rated, satisfied). A group's packed word is moved into wide counters before any
/// field can overflow, that is after `FULL` rows.
const FIELD: u32 = 10;
const FULL: u64 = (1 << FIELD) - 1;
/// Most groups × buckets counted in flat arrays; beyond, a hash map.
const MAX_SLOTS: usize = 1 << 18;

/// Packed counters of each group (× bucket) and lane, and the wide counters they are emptied into.
struct Packed {
    lanes: Vec<u64>,
    wide: Vec<[u64; 6]>,
    /// Packed words per group, used in turn by consecutive rows so that rows of the same group do not wait
    /// for each other's additions: worth it for a few groups, not for many (they take more cache).
    per_slot: usize,
}

impl Packed {
    fn empty(&mut self, slot: usize, value: u64) {
        if let Some(counters) = self.wide.get_mut(slot) {
            empty_into(counters, value);
        }
    }

    fn grow(&mut self, slots: usize) {
        self.lanes.resize(slots * self.per_slot, 0);
        self.wide.resize(slots, [0; 6]);
    }

    fn stats(&mut self, slot: usize) -> Stats {
        for lane in 0..self.per_slot {
            let value = std::mem::take(&mut self.lanes[slot * self.per_slot + lane]);
            self.empty(slot, value);
        }
        let [cases, closed, open, overdue, rated, satisfied] = self.wide[slot];
        Stats { cases, closed, open, overdue, rated, satisfied }
    }
}

/// Dense numbers for the values of a key column, in the order first seen.
struct Keys {
    index: Vec<u32>,
    values: Vec<u32>,
}

impl Keys {
    fn new() -> Keys {
        Keys { index: Vec::new(), values: Vec::new() }
    }

    #[inline]
    fn dense(&mut self, value: u32) -> Option<u32> {
        match self.index.get(value as usize) {
            Some(&dense) if dense != u32::MAX => Some(dense),
            _ => self.add(value),
        }
    }

    #[cold]
    fn add(&mut self, value: u32) -> Option<u32> {
        let at = value as usize;
        if at >= 1 << 24 {
            return None;
        }
        if self.index.len() <= at {
            self.index.resize(at + 1, u32::MAX);
        }
        let dense = self.values.len() as u32;
        self.index[at] = dense;
        self.values.push(value);
        Some(dense)
    }
}

/// Clears the flags of the rows whose value in `column` is not `value`.
#[inline]
fn keep_equal<T: PartialEq + Copy>(codes: &mut [u8], column: &[T], value: T) {
    for (code, &v) in codes.iter_mut().zip(column) {
        *code &= u8::from(v == value).wrapping_neg();
    }
}

/// A key column, read as `u32`; one copy of the counting loop for each type.
trait KeyColumn: Copy {
    /// Packed words per group (a power of two).
    const LANES: usize;
    /// Values small enough to number groups by themselves, without a table of dense numbers (not `u16`,
    /// whose "none" is 65,535).
    const RAW: bool;
    fn get(self, row: usize) -> u32;
}

/// No dimension: every row in one group.
#[derive(Clone, Copy)]
struct NoKey;

impl KeyColumn for NoKey {
    const RAW: bool = true;
    const LANES: usize = 4;
    #[inline]
    fn get(self, _: usize) -> u32 {
        0
    }
}

impl KeyColumn for &[u8] {
    const RAW: bool = true;
    const LANES: usize = 4;
    #[inline]
    fn get(self, row: usize) -> u32 {
        u32::from(self[row])
    }
}

impl KeyColumn for &[u16] {
    const RAW: bool = false;
    const LANES: usize = 4;
    #[inline]
    fn get(self, row: usize) -> u32 {
        u32::from(self[row])
    }
}

impl KeyColumn for &[u32] {
    const RAW: bool = true;
    const LANES: usize = 1;
    #[inline]
    fn get(self, row: usize) -> u32 {
        self[row]
    }
}

/// Time buckets numbered from the first one a question can meet.
struct Buckets {
    bucket: Bucket,
    /// The first hour, day or week (in Beijing time, counted from the epoch).
    first: i64,
    count: usize,
    /// Months: the month of each day from `first`, and each month's start.
    month_of_day: Vec<u32>,
    starts: Vec<i64>,
}

impl Buckets {
    fn new(bucket: Bucket, low: i64, high: i64) -> Buckets {
        let mut out = Buckets { bucket, first: 0, count: 0, month_of_day: Vec::new(), starts: Vec::new() };
        if low > high {
            return out;
        }
        let (first, last) = (out.unit(low), out.unit(high));
        out.first = first;
        out.count = (last - first + 1) as usize;
        if bucket == Bucket::Month {
            let mut month = 0u32;
            for day in first..=last {
                let start = Bucket::Month.start_of(Timestamp(day * DAY_MS - BEIJING_MS)).0;
                if out.starts.last() != Some(&start) {
                    out.starts.push(start);
                    month = out.starts.len() as u32 - 1;
                }
                out.month_of_day.push(month);
            }
            out.count = out.starts.len();
        }
        out
    }

    /// The hour, day or week (months: day) holding `at`, counted from the epoch in Beijing time.
    #[inline]
    fn unit(&self, at: i64) -> i64 {
        let local = at + BEIJING_MS;
        match self.bucket {
            Bucket::Hour => local.div_euclid(HOUR_MS),
            Bucket::Day | Bucket::Month => local.div_euclid(DAY_MS),
            // Day 0 (1970-01-01) was a Thursday: three days after a Monday.
            Bucket::Week => (local.div_euclid(DAY_MS) + 3).div_euclid(7),
        }
    }

    /// The number of the bucket holding `at` (which must lie within the span the buckets were made for).
    #[inline]
    fn index(&self, at: i64) -> usize {
        let unit = (self.unit(at) - self.first).max(0) as usize;
        match self.bucket {
            Bucket::Month => {
                self.month_of_day.get(unit).or(self.month_of_day.last()).copied().unwrap_or(0) as usize
            }
            _ => unit.min(self.count.saturating_sub(1)),
        }
    }

    fn start(&self, index: usize) -> i64 {
        let unit = self.first + index as i64;
        match self.bucket {
            Bucket::Hour => unit * HOUR_MS - BEIJING_MS,
            Bucket::Day => unit * DAY_MS - BEIJING_MS,
            Bucket::Week => (unit * 7 - 3) * DAY_MS - BEIJING_MS,
            Bucket::Month => self.starts.get(index).copied().unwrap_or(0),
        }
    }
}

/// Row flags in one byte, worked out a block at a time; `OVERDUE` is completed with the due time when
/// counting.
const VALID: u8 = 1;
const OVERDUE: u8 = 8;

/// Each flag byte's packed contribution: a case, and closed, open, overdue, rated, satisfied (nothing for
/// a row that does not count).
fn delta_table() -> [u64; 64] {
    let mut table = [0u64; 64];
    for (code, delta) in table.iter_mut().enumerate() {
        if code as u8 & VALID != 0 {
            *delta = (0..6).map(|bit| ((code as u64 >> bit) & 1) << (FIELD * bit)).sum();
        }
    }
    table
}

/// One block's rows, ready to be counted.
struct Rows<'a, K> {
    codes: &'a [u8],
    due: &'a [i64],
    now: i64,
    table: &'a [u64; 64],
    column: K,
    /// The block's first row.
    offset: usize,
}

impl<K: KeyColumn> Rows<'_, K> {
    /// Adds each row's contribution, from row `j` on, to its group's packed counter. Stops at the first row
    /// whose value has no dense number yet or whose group has no counter yet, and returns its position
    /// (`codes.len()` when all are done).
    #[inline(always)]
    fn scatter<const RAW: bool>(
        &self,
        mut j: usize,
        index: &[u32],
        packed: &mut Packed,
        per_key: usize,
        bucket: impl Fn(usize) -> usize,
    ) -> usize {
        let Packed { lanes, wide, .. } = packed;
        let (lanes, wide) = (lanes.as_mut_slice(), wide.as_mut_slice());
        let codes = self.codes;
        let due = &self.due[..codes.len()];
        while j < codes.len() {
            let code = codes[j];
            if code != 0 {
                let value = self.column.get(self.offset + j) as usize;
                let dense = if RAW {
                    value
                } else {
                    match index.get(value) {
                        Some(&dense) if dense != u32::MAX => dense as usize,
                        _ => return j,
                    }
                };
                let code = code | ((u8::from(due[j] < self.now) & (code >> 2) & 1) * OVERDUE);
                let delta = self.table[usize::from(code & 63)];
                let slot = dense * per_key + bucket(j);
                let Some(cell) = lanes.get_mut(slot * K::LANES + j % K::LANES) else { return j };
                let value = *cell + delta;
                if value & FULL == FULL {
                    if let Some(counters) = wide.get_mut(slot) {
                        empty_into(counters, value);
                    }
                    *cell = 0;
                } else {
                    *cell = value;
                }
            }
            j += 1;
        }
        j
    }
}

#[cold]
fn empty_into(counters: &mut [u64; 6], value: u64) {
    for (k, wide) in counters.iter_mut().enumerate() {
        *wide += (value >> (FIELD * k as u32)) & FULL;
    }
}

impl Projection {
    /// The rows `filter` selects, in order.
    pub fn select(&self, filter: &Filter) -> Vec<usize> {
        let matcher = Matcher::new(self, filter);
        if matcher.impossible {
            return Vec::new();
        }
        let rest = matcher.has_rest();
        let mut out = Vec::new();
        for (start, end, check_time) in matcher.ranges(self) {
            for row in start..end {
                if self.received_at[row] != 0
                    && (!check_time || matcher.in_time(self.received_at[row]))
                    && (!rest || matcher.rest(self, row))
                {
                    out.push(row);
                }
            }
        }
        out
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
        let ranges = matcher.ranges(self);
        let (low, high) = matcher.span(self, &ranges);
        let buckets = bucket.map(|b| Buckets::new(b, low, high));
        let counted = match by.as_slice() {
            [] | [_] => self.tally(&matcher, &ranges, by.first().copied(), buckets.as_ref(), now.0),
            _ => None,
        };
        let groups = match counted {
            Some(groups) => groups,
            None => self.group_slowly(&matcher, &ranges, &by, buckets.as_ref(), now.0),
        };
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

    /// Counts by at most one dimension and a bucket in flat arrays. `None` when there would be too many
    /// groups × buckets.
    fn tally(
        &self,
        matcher: &Matcher,
        ranges: &[(usize, usize, bool)],
        dim: Option<Dim>,
        buckets: Option<&Buckets>,
        now: i64,
    ) -> Option<Vec<(GroupKey, Stats)>> {
        match dim {
            None => self.tally_by(matcher, ranges, NoKey, buckets, now),
            Some(Dim::Category) => self.tally_by(matcher, ranges, self.category.as_slice(), buckets, now),
            Some(Dim::Matter) => self.tally_by(matcher, ranges, self.matter.as_slice(), buckets, now),
            Some(Dim::County) => self.tally_by(matcher, ranges, self.county.as_slice(), buckets, now),
            Some(Dim::Township) => self.tally_by(matcher, ranges, self.township.as_slice(), buckets, now),
            Some(Dim::Community) => self.tally_by(matcher, ranges, self.community.as_slice(), buckets, now),
            Some(Dim::Grid) => self.tally_by(matcher, ranges, self.grid.as_slice(), buckets, now),
            Some(Dim::Department) => self.tally_by(matcher, ranges, self.lead.as_slice(), buckets, now),
            Some(Dim::Channel) => self.tally_by(matcher, ranges, self.channel.as_slice(), buckets, now),
            Some(Dim::Status) => self.tally_by(matcher, ranges, self.status.as_slice(), buckets, now),
        }
    }

    fn tally_by<K: KeyColumn>(
        &self,
        matcher: &Matcher,
        ranges: &[(usize, usize, bool)],
        column: K,
        buckets: Option<&Buckets>,
        now: i64,
    ) -> Option<Vec<(GroupKey, Stats)>> {
        let per_key = buckets.map_or(1, |b| b.count.max(1));
        let mut keys = Keys::new();
        let mut packed = Packed { lanes: Vec::new(), wide: Vec::new(), per_slot: K::LANES };
        let rest = matcher.has_rest();
        for &(start, end, check_time) in ranges {
            let args = (matcher, start, end, column, buckets, per_key, now);
            let done = match (check_time, rest) {
                (false, false) => self.tally_rows::<false, false, K>(args, &mut keys, &mut packed),
                (true, false) => self.tally_rows::<true, false, K>(args, &mut keys, &mut packed),
                (false, true) => self.tally_rows::<false, true, K>(args, &mut keys, &mut packed),
                (true, true) => self.tally_rows::<true, true, K>(args, &mut keys, &mut packed),
            };
            if !done {
                return None;
            }
        }
        let mut out = Vec::new();
        for slot in 0..packed.wide.len() {
            let stats = packed.stats(slot);
            if stats.cases == 0 {
                continue;
            }
            let value = if K::RAW && buckets.is_none() { slot as u32 } else { keys.values[slot / per_key] };
            let start = buckets.map_or(0, |b| b.start(slot % per_key));
            out.push(((value, 0, start), stats));
        }
        Some(out)
    }

    /// The counting loop over rows `start..end`, one copy for each key type and combination of checks. Rows
    /// go a block at a time: first each row's packed contribution (plain comparisons the compiler turns into
    /// vector code; 0 for rows that do not match), then its group. When a whole block falls in one time
    /// bucket (rows come nearly in time order), its rows' bucket is not worked out one by one.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    fn tally_rows<const CHECK_TIME: bool, const REST: bool, K: KeyColumn>(
        &self,
        (matcher, start, end, column, buckets, per_key, now): (
            &Matcher,
            usize,
            usize,
            K,
            Option<&Buckets>,
            usize,
            i64,
        ),
        keys: &mut Keys,
        packed: &mut Packed,
    ) -> bool {
        let closed = status_index(Status::Closed);
        let table = delta_table();
        let mut codes = [0u8; BLOCK];
        let mut first = start;
        while first < end {
            let last = ((first / BLOCK + 1) * BLOCK).min(end);
            let count = last - first;
            let codes = &mut codes[..count];
            let status = &self.status[first..last];
            let stage = &self.stage[first..last];
            let late = &self.late[first..last];
            let rating = &self.rating[first..last];
            let received = &self.received_at[first..last];
            let due = &self.due[first..last];
            for ((((code, &s), &g), &l), &r) in codes.iter_mut().zip(status).zip(stage).zip(late).zip(rating)
            {
                *code = u8::from(s != NONE8)
                    | u8::from(s == closed) << 1
                    | u8::from(g != NO_STAGE) << 2
                    | u8::from(l != 0) << 3
                    | u8::from(r != 0) << 4
                    | u8::from(r >= 4) << 5;
            }
            if CHECK_TIME {
                for (code, &at) in codes.iter_mut().zip(received) {
                    *code &= u8::from(matcher.in_time(at)).wrapping_neg();
                }
            }
            if REST {
                matcher.mask(self, first, codes);
            }
            // The block's bucket, when all of it falls in one.
            let block = first / BLOCK;
            let fixed = match buckets {
                None => Some(0),
                Some(b) => {
                    let low = b.index(self.block_min[block]);
                    (low == b.index(self.block_max[block])).then_some(low)
                }
            };
            let mut j = 0;
            loop {
                let rows = Rows { codes, due, now, table: &table, column, offset: first };
                j = match (fixed, buckets) {
                    (_, None) if K::RAW => rows.scatter::<true>(j, &keys.index, packed, 1, |_| 0),
                    (_, None) => rows.scatter::<false>(j, &keys.index, packed, 1, |_| 0),
                    (Some(bucket), Some(_)) => {
                        rows.scatter::<false>(j, &keys.index, packed, per_key, |_| bucket)
                    }
                    (None, Some(b)) => {
                        rows.scatter::<false>(j, &keys.index, packed, per_key, |j| b.index(received[j]))
                    }
                };
                if j == count {
                    break;
                }
                // A value not seen before, or its group not counted yet: make room and go on.
                let value = column.get(first + j);
                let dense = if K::RAW && buckets.is_none() {
                    value
                } else {
                    let Some(dense) = keys.dense(value) else { return false };
                    dense
                };
                let wanted = (dense as usize + 1) * per_key;
                if wanted > MAX_SLOTS {
                    return false;
                }
                if wanted > packed.wide.len() {
                    packed.grow(wanted);
                }
            }
            first = last;
        }
        true
    }

    /// Any grouping, in a hash map: two dimensions, or more groups × buckets than `tally` keeps.
    fn group_slowly(
        &self,
        matcher: &Matcher,
        ranges: &[(usize, usize, bool)],
        by: &[Dim],
        buckets: Option<&Buckets>,
        now: i64,
    ) -> Vec<(GroupKey, Stats)> {
        let mut groups: HashMap<GroupKey, Stats> = HashMap::new();
        let rest = matcher.has_rest();
        for &(start, end, check_time) in ranges {
            for row in start..end {
                let at = self.received_at[row];
                if at == 0 || (check_time && !matcher.in_time(at)) || (rest && !matcher.rest(self, row)) {
                    continue;
                }
                let first = by.first().map_or(0, |d| self.dim_value(*d, row));
                let second = by.get(1).map_or(0, |d| self.dim_value(*d, row));
                let slot = buckets.map_or(0, |b| b.start(b.index(at)));
                groups.entry((first, second, slot)).or_default().add(&self.stats_of(row, now));
            }
        }
        groups.into_iter().collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows filled straight into the columns: times roughly but not strictly in row order, holes, every
    /// kind of value.
    fn projection(rows: usize) -> Projection {
        let mut p = Projection::new();
        let mut state = 0x2026_u64;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let start = Timestamp::from_beijing(Date(20_000), 0).0;
        p.categories.id("a");
        p.categories.id("b");
        p.matters.id("m");
        for row in 0..rows {
            p.received_at.push(if next(20) == 0 {
                0
            } else {
                start + row as i64 * 3_600_000 + next(7_200_000) as i64
            });
            p.stage.push(if next(3) == 0 { next(6) as u8 } else { NO_STAGE });
            p.due.push(start + next(rows as u64 * 3_600_000) as i64);
            p.late.push(if next(10) == 0 { 1 << next(6) } else { 0 });
            p.status.push(next(10) as u8);
            p.rating.push(next(6) as u8);
            p.category.push(if next(5) == 0 { NONE16 } else { next(2) as u16 });
            p.matter.push(0);
            p.county.push(2 + next(3) as u32);
            p.township.push(10 + next(20) as u32);
            p.community.push(100 + next(50) as u32);
            p.grid.push(1_000 + next(300) as u32);
            p.lead.push(next(8) as u32);
            p.channel.push(next(6) as u8);
        }
        for row in 0..rows {
            if p.received_at[row] == 0 {
                p.status[row] = NONE8;
            }
        }
        let blocks = rows.div_ceil(BLOCK);
        p.block_min = vec![i64::MAX; blocks];
        p.block_max = vec![i64::MIN; blocks];
        for (row, &at) in p.received_at.iter().enumerate() {
            if at != 0 {
                p.block_min[row / BLOCK] = p.block_min[row / BLOCK].min(at);
                p.block_max[row / BLOCK] = p.block_max[row / BLOCK].max(at);
            }
        }
        p
    }

    fn sorted(mut groups: Vec<(GroupKey, Stats)>) -> Vec<(GroupKey, [u64; 6])> {
        groups.sort_by_key(|(k, _)| *k);
        groups
            .into_iter()
            .map(|(k, s)| (k, [s.cases, s.closed, s.open, s.overdue, s.rated, s.satisfied]))
            .collect()
    }

    #[test]
    fn flat_counting_equals_the_hash_map() {
        let p = projection(5_000);
        let start = p.block_min[0];
        let now = Timestamp(start + 2_000 * 3_600_000);
        let filters = [
            Filter::default(),
            Filter {
                from: Some(Timestamp(start + 300 * 3_600_000)),
                to: Some(Timestamp(start + 4_321 * 3_600_000)),
                ..Filter::default()
            },
            Filter {
                within: Some((Level::County, JurisdictionId(3))),
                category: Some("b".into()),
                ..Filter::default()
            },
        ];
        for filter in &filters {
            let m = Matcher::new(&p, filter);
            let ranges = m.ranges(&p);
            let (low, high) = m.span(&p, &ranges);
            for dim in std::iter::once(None).chain(Dim::ALL.into_iter().map(Some)) {
                for bucket in
                    [None, Some(Bucket::Hour), Some(Bucket::Day), Some(Bucket::Week), Some(Bucket::Month)]
                {
                    let buckets = bucket.map(|b| Buckets::new(b, low, high));
                    let by: Vec<Dim> = dim.into_iter().collect();
                    let slow = p.group_slowly(&m, &ranges, &by, buckets.as_ref(), now.0);
                    match p.tally(&m, &ranges, dim, buckets.as_ref(), now.0) {
                        Some(fast) => assert_eq!(sorted(fast), sorted(slow), "{dim:?} {bucket:?} {filter:?}"),
                        // Too many groups × buckets for flat arrays: only grids or communities by the hour.
                        None => assert!(
                            bucket == Some(Bucket::Hour) && matches!(dim, Some(Dim::Grid | Dim::Community)),
                            "{dim:?} {bucket:?}"
                        ),
                    }
                    if let Some(b) = bucket {
                        for (_, at) in
                            p.received_at.iter().enumerate().filter(|(_, at)| **at >= low && **at <= high)
                        {
                            let buckets = buckets.as_ref().unwrap();
                            assert_eq!(buckets.start(buckets.index(*at)), b.start_of(Timestamp(*at)).0);
                        }
                    }
                }
            }
            let every: Vec<usize> = (0..p.rows())
                .filter(|&row| {
                    let at = p.received_at[row];
                    at != 0 && m.in_time(at) && m.rest(&p, row)
                })
                .collect();
            assert_eq!(p.select(filter), every);
        }
    }
}
