//! The working calendar: which days are worked (weekends, national holidays and 调休 days per year) and which
//! hours of a working day count towards a time limit.

use crate::time::{Date, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How a time limit is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Only working hours of working days count (工作时).
    Working,
    /// Every minute counts (自然时), e.g. for gas leaks.
    Natural,
}

/// A stage's time limit, in minutes on its basis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeLimit {
    pub minutes: u32,
    pub basis: Basis,
}

impl TimeLimit {
    pub const fn working_hours(hours: u32) -> TimeLimit {
        TimeLimit { minutes: hours * 60, basis: Basis::Working }
    }
    pub const fn natural_hours(hours: u32) -> TimeLimit {
        TimeLimit { minutes: hours * 60, basis: Basis::Natural }
    }
}

/// A working window within a day, in minutes after midnight Beijing time, `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCalendar {
    /// Days off that would otherwise be working days, with the holiday's name.
    holidays: BTreeMap<Date, String>,
    /// Weekend days that are worked (调休).
    workdays: BTreeMap<Date, String>,
    /// Working hours of every working day, sorted and disjoint.
    windows: Vec<Window>,
}

/// The longest search for working time before a limit is judged impossible (ten years of days).
const MAX_DAYS_SEARCHED: i32 = 3660;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "calendar line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CalendarError {}

impl Default for WorkCalendar {
    /// Weekends off, 09:00–12:00 and 13:30–17:30 worked, no holidays.
    fn default() -> Self {
        WorkCalendar {
            holidays: BTreeMap::new(),
            workdays: BTreeMap::new(),
            windows: vec![
                Window { start: 9 * 60, end: 12 * 60 },
                Window { start: 13 * 60 + 30, end: 17 * 60 + 30 },
            ],
        }
    }
}

impl WorkCalendar {
    /// The national calendar the project ships: 2026.
    pub fn china() -> WorkCalendar {
        let mut calendar = WorkCalendar::default();
        // The shipped file is tested below, so a parse failure here cannot happen at run time.
        let _ = calendar.load(include_str!("../calendars/cn-2026.txt"));
        calendar
    }

    /// Adds the lines of a calendar file (see `calendars/cn-2026.txt`) to this calendar. Nothing is changed when
    /// any line is wrong.
    pub fn load(&mut self, text: &str) -> Result<(), CalendarError> {
        let mut next = self.clone();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |message: String| CalendarError { line, message };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let words: Vec<&str> = content.split_whitespace().collect();
            match words[0] {
                "hours" => {
                    let mut windows = Vec::new();
                    for word in &words[1..] {
                        windows.push(parse_window(word).ok_or_else(|| err(format!("bad window `{word}`")))?);
                    }
                    windows.sort_by_key(|w| w.start);
                    if windows.is_empty() || windows.windows(2).any(|pair| pair[0].end > pair[1].start) {
                        return Err(err("working hours must be one or more disjoint windows".into()));
                    }
                    next.windows = windows;
                }
                "holiday" => {
                    let first =
                        words.get(1).and_then(|w| Date::parse(w)).ok_or_else(|| err("bad date".into()))?;
                    let (last, name) = match words.get(2).and_then(|w| Date::parse(w)) {
                        Some(last) => (last, words.get(3..).map(|w| w.join(" ")).unwrap_or_default()),
                        None => (first, words.get(2..).map(|w| w.join(" ")).unwrap_or_default()),
                    };
                    if last < first || last.0 - first.0 > 31 {
                        return Err(err("a holiday runs forwards for at most a month".into()));
                    }
                    let mut day = first;
                    while day <= last {
                        next.workdays.remove(&day);
                        next.holidays.insert(day, name.clone());
                        day = day.next();
                    }
                }
                "workday" => {
                    let day =
                        words.get(1).and_then(|w| Date::parse(w)).ok_or_else(|| err("bad date".into()))?;
                    next.holidays.remove(&day);
                    next.workdays.insert(day, words.get(2..).map(|w| w.join(" ")).unwrap_or_default());
                }
                other => return Err(err(format!("unknown keyword `{other}`"))),
            }
        }
        *self = next;
        Ok(())
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        if self.workdays.contains_key(&date) {
            return true;
        }
        !self.holidays.contains_key(&date) && date.weekday() < 5
    }

    /// The years for which holidays or adjusted working days are configured.
    pub fn configured_years(&self) -> BTreeSet<i32> {
        self.holidays.keys().chain(self.workdays.keys()).map(|d| d.ymd().0).collect()
    }

    /// The moment a limit that starts at `start` runs out. `None` only when the calendar has no working time in
    /// the next ten years.
    pub fn add(&self, start: Timestamp, limit: TimeLimit) -> Option<Timestamp> {
        self.add_minutes(start, i64::from(limit.minutes), limit.basis)
    }

    pub fn add_minutes(&self, start: Timestamp, minutes: i64, basis: Basis) -> Option<Timestamp> {
        if basis == Basis::Natural || minutes <= 0 {
            return Some(start.plus_minutes(minutes.max(0)));
        }
        let (mut date, mut minute) = start.to_beijing();
        let mut remaining = minutes;
        for _ in 0..MAX_DAYS_SEARCHED {
            if self.is_working_day(date) {
                for window in &self.windows {
                    if minute >= window.end {
                        continue;
                    }
                    let begin = minute.max(window.start);
                    let available = i64::from(window.end - begin);
                    if remaining <= available {
                        return Some(Timestamp::from_beijing(date, begin + remaining as u32));
                    }
                    remaining -= available;
                    minute = window.end;
                }
            }
            date = date.next();
            minute = 0;
        }
        None
    }

    /// `minutes` of the basis after `start`, or before it when negative: a stopped clock that was already
    /// late starts again as late as it was. Backwards, a calendar with no working time in the ten years
    /// before gives `start` itself (such a case is simply due at once); forwards, `None` as `add_minutes`.
    pub fn shift_minutes(&self, start: Timestamp, minutes: i64, basis: Basis) -> Option<Timestamp> {
        if minutes >= 0 {
            return self.add_minutes(start, minutes, basis);
        }
        if basis == Basis::Natural {
            return Some(start.plus_minutes(minutes));
        }
        let (mut date, mut minute) = start.to_beijing();
        let mut remaining = -minutes;
        for _ in 0..MAX_DAYS_SEARCHED {
            if self.is_working_day(date) {
                for window in self.windows.iter().rev() {
                    if minute <= window.start {
                        continue;
                    }
                    let end = minute.min(window.end);
                    let available = i64::from(end - window.start);
                    if remaining <= available {
                        return Some(Timestamp::from_beijing(date, end - remaining as u32));
                    }
                    remaining -= available;
                    minute = window.start;
                }
            }
            date = date.previous();
            minute = 24 * 60;
        }
        Some(start)
    }

    /// Minutes of the basis from `from` to `to`, negative when `to` is earlier.
    pub fn signed_minutes_between(&self, from: Timestamp, to: Timestamp, basis: Basis) -> i64 {
        if to < from {
            -self.minutes_between(to, from, basis)
        } else {
            self.minutes_between(from, to, basis)
        }
    }

    /// Minutes of the given basis between two moments (0 when `to` is not after `from`).
    pub fn minutes_between(&self, from: Timestamp, to: Timestamp, basis: Basis) -> i64 {
        if to <= from {
            return 0;
        }
        if basis == Basis::Natural {
            return from.minutes_until(to);
        }
        let (mut date, mut minute) = from.to_beijing();
        let (end_date, end_minute) = to.to_beijing();
        let mut total = 0i64;
        while date <= end_date {
            let day_end = if date == end_date { end_minute } else { 24 * 60 };
            if self.is_working_day(date) {
                for window in &self.windows {
                    let begin = minute.max(window.start);
                    let end = day_end.min(window.end);
                    if end > begin {
                        total += i64::from(end - begin);
                    }
                }
            }
            date = date.next();
            minute = 0;
        }
        total
    }
}

/// The days of one year that differ from the ordinary week: holidays on weekdays' place and 调休 workdays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearDays {
    pub holidays: Vec<(Date, String)>,
    pub workdays: Vec<(Date, String)>,
}

impl WorkCalendar {
    /// The holidays and adjusted working days configured for `year`.
    pub fn year(&self, year: i32) -> YearDays {
        let of = |days: &BTreeMap<Date, String>| {
            days.iter().filter(|(d, _)| d.ymd().0 == year).map(|(d, n)| (*d, n.clone())).collect()
        };
        YearDays { holidays: of(&self.holidays), workdays: of(&self.workdays) }
    }

    /// This calendar with `year`'s special days replaced by `days`. Refuses a day outside the year or a day
    /// that is both a holiday and a workday, changing nothing.
    pub fn with_year(&self, year: i32, days: &YearDays) -> Result<WorkCalendar, CalendarError> {
        let err = |message: String| CalendarError { line: 0, message };
        let mut next = self.clone();
        next.holidays.retain(|d, _| d.ymd().0 != year);
        next.workdays.retain(|d, _| d.ymd().0 != year);
        for (date, name) in &days.holidays {
            if date.ymd().0 != year {
                return Err(err(format!("{date} is not in {year}")));
            }
            next.holidays.insert(*date, name.clone());
        }
        for (date, name) in &days.workdays {
            if date.ymd().0 != year || next.holidays.contains_key(date) {
                return Err(err(format!("{date} is not in {year}, or is also a holiday")));
            }
            next.workdays.insert(*date, name.clone());
        }
        Ok(next)
    }
}

fn parse_window(text: &str) -> Option<Window> {
    let (start, end) = text.split_once('-')?;
    let (start, end) = (parse_clock(start)?, parse_clock(end)?);
    (start < end).then_some(Window { start, end })
}

fn parse_clock(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours <= 24 && minutes < 60 && hours * 60 + minutes <= 24 * 60).then_some(hours * 60 + minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        let (date, clock) = text.split_once(' ').unwrap();
        Timestamp::from_beijing(day(date), parse_clock(clock).unwrap())
    }

    #[test]
    fn shipped_2026_calendar_knows_holidays_and_adjusted_working_days() {
        let calendar = WorkCalendar::china();
        let check =
            |date: &str, working: bool| assert_eq!(calendar.is_working_day(day(date)), working, "{date}");
        check("2026-01-01", false); // 元旦, a Thursday
        check("2026-01-04", true); // Sunday worked for 元旦
        check("2026-02-14", true); // Saturday worked before 春节
        for d in 15..=23 {
            check(&format!("2026-02-{d}"), false); // nine days of 春节
        }
        check("2026-02-24", true);
        check("2026-02-28", true); // Saturday worked after 春节
        check("2026-03-01", false); // an ordinary Sunday
        check("2026-05-09", true);
        check("2026-09-20", true);
        check("2026-10-07", false);
        check("2026-10-10", true);
        check("2026-11-23", true); // an ordinary Monday
        assert_eq!(calendar.configured_years(), BTreeSet::from([2026]));
    }

    #[test]
    fn working_hours_skip_nights_lunch_weekends_and_holidays() {
        let calendar = WorkCalendar::china();
        let cases = [
            // start, limit, due
            ("2026-11-23 10:00", TimeLimit::working_hours(1), "2026-11-23 11:00"),
            ("2026-11-23 11:30", TimeLimit::working_hours(1), "2026-11-23 14:00"), // across lunch
            ("2026-11-23 20:00", TimeLimit::working_hours(2), "2026-11-24 11:00"), // reported at night
            ("2026-11-27 16:30", TimeLimit::working_hours(2), "2026-11-30 10:00"), // Friday → Monday
            ("2026-11-23 09:00", TimeLimit::working_hours(7), "2026-11-23 17:30"), // exactly one working day
            ("2026-11-23 09:00", TimeLimit::working_hours(14), "2026-11-24 17:30"),
            // Friday 2026-02-13, 2 hours left in the day; Saturday the 14th is worked (7 h); then nine days off.
            ("2026-02-13 15:30", TimeLimit::working_hours(10), "2026-02-24 10:00"),
            ("2026-02-13 15:30", TimeLimit::working_hours(9), "2026-02-14 17:30"),
            ("2026-09-30 17:00", TimeLimit::working_hours(1), "2026-10-08 09:30"), // 国庆节
            ("2026-02-15 08:00", TimeLimit::natural_hours(24), "2026-02-16 08:00"), // natural hours ignore holidays
        ];
        for (start, limit, due) in cases {
            assert_eq!(calendar.add(at(start), limit), Some(at(due)), "{start} + {limit:?}");
            let counted = calendar.minutes_between(at(start), at(due), limit.basis);
            assert_eq!(counted, i64::from(limit.minutes), "minutes between {start} and {due}");
            // Backwards: as much time before the due, counted the same way (an evening start goes back to
            // the end of that day's work).
            let minutes = i64::from(limit.minutes);
            let back = calendar.shift_minutes(at(due), -minutes, limit.basis).unwrap();
            assert_eq!(calendar.minutes_between(back, at(due), limit.basis), minutes, "{due} − {limit:?}");
            assert!(
                back <= at(start) || calendar.minutes_between(at(start), back, limit.basis) == 0,
                "{due}"
            );
        }
        let calendar = WorkCalendar::china();
        assert_eq!(
            calendar.shift_minutes(at("2026-11-23 11:00"), -120, Basis::Working),
            Some(at("2026-11-23 09:00"))
        );
        assert_eq!(
            calendar.shift_minutes(at("2026-11-23 11:00"), -180, Basis::Working),
            Some(at("2026-11-20 16:30"))
        );
        assert_eq!(
            calendar.shift_minutes(at("2026-11-23 14:00"), -60, Basis::Working),
            Some(at("2026-11-23 11:30"))
        );
        // From the edges: a window's start, midnight, and back over a weekend and a holiday.
        for (from, minutes, to) in [
            ("2026-11-23 09:00", -60, "2026-11-20 16:30"),
            ("2026-11-23 13:30", -30, "2026-11-23 11:30"),
            ("2026-11-24 00:00", -30, "2026-11-23 17:00"),
            ("2026-10-08 09:30", -60, "2026-09-30 17:00"),
        ] {
            assert_eq!(
                calendar.shift_minutes(at(from), minutes, Basis::Working),
                Some(at(to)),
                "{from} {minutes}"
            );
            assert_eq!(
                calendar.signed_minutes_between(at(from), at(to), Basis::Working),
                minutes,
                "{from} → {to}"
            );
        }
        // A calendar with no working hours at all: a late clock is simply due at once.
        let never = WorkCalendar { windows: Vec::new(), ..WorkCalendar::china() };
        assert_eq!(
            never.shift_minutes(at("2026-11-23 10:00"), -60, Basis::Working),
            Some(at("2026-11-23 10:00"))
        );
    }

    #[test]
    fn bad_calendar_lines_are_refused_and_change_nothing() {
        let mut calendar = WorkCalendar::default();
        let before = calendar.clone();
        for text in [
            "holiday 2026-02-30 春节",
            "holiday 2026-03-05 2026-03-01 backwards",
            "hours 12:00-09:00",
            "hours 09:00-12:00 11:00-13:00",
            "holiday 2027-01-01 元旦\nvacation 2027-01-02",
        ] {
            assert!(calendar.load(text).is_err(), "{text}");
            assert_eq!(calendar, before, "{text}");
        }
        let err = calendar.load("# fine\nworkday 2027-01-02 x\nnonsense").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn a_calendar_without_working_time_gives_no_deadline() {
        let mut calendar = WorkCalendar::default();
        calendar.windows.clear();
        assert_eq!(calendar.add(at("2026-11-23 10:00"), TimeLimit::working_hours(1)), None);
    }
}
