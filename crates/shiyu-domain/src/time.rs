//! Instants and civil dates without a clock: `now` always comes in from the caller.
//!
//! Cases are timed in UTC milliseconds; working days and hours are judged on Beijing time (UTC+8,
//! no daylight saving), which is the only civil time the platform needs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

const MS_PER_MINUTE: i64 = 60_000;
const MINUTES_PER_DAY: i64 = 24 * 60;
/// Beijing time is UTC+8 all year.
const BEIJING_OFFSET_MINUTES: i64 = 8 * 60;

impl Timestamp {
    pub fn plus_minutes(self, minutes: i64) -> Timestamp {
        Timestamp(self.0 + minutes * MS_PER_MINUTE)
    }

    /// Whole minutes from `self` to `later` (negative when `later` is earlier).
    pub fn minutes_until(self, later: Timestamp) -> i64 {
        (later.0 - self.0).div_euclid(MS_PER_MINUTE)
    }

    /// The Beijing civil date and the minute of that day.
    pub fn to_beijing(self) -> (Date, u32) {
        let minutes = self.0.div_euclid(MS_PER_MINUTE) + BEIJING_OFFSET_MINUTES;
        let day = minutes.div_euclid(MINUTES_PER_DAY);
        let minute = minutes.rem_euclid(MINUTES_PER_DAY);
        (Date(day as i32), minute as u32)
    }

    pub fn from_beijing(date: Date, minute_of_day: u32) -> Timestamp {
        let minutes = i64::from(date.0) * MINUTES_PER_DAY + i64::from(minute_of_day) - BEIJING_OFFSET_MINUTES;
        Timestamp(minutes * MS_PER_MINUTE)
    }
}

impl fmt::Display for Timestamp {
    /// Beijing time, e.g. `2026-02-14 09:30`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (date, minute) = self.to_beijing();
        write!(f, "{} {:02}:{:02}", date, minute / 60, minute % 60)
    }
}

/// A civil date, counted in days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Date(pub i32);

impl Date {
    /// `None` for dates that do not exist (2026-02-30).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Shift the year to start in March so that the leap day is the last day of the year.
        let y = i64::from(if month <= 2 { year - 1 } else { year });
        let era = y.div_euclid(400);
        let year_of_era = y - era * 400;
        let m = i64::from(month);
        let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        Some(Date((era * 146_097 + day_of_era - 719_468) as i32))
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        let z = i64::from(self.0) + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (year_of_era + era * 400 + i64::from(month <= 2)) as i32;
        (year, month, day)
    }

    /// 0 = Monday … 6 = Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday.
        (i64::from(self.0) + 3).rem_euclid(7) as u32
    }

    pub fn next(self) -> Date {
        Date(self.0 + 1)
    }

    pub fn previous(self) -> Date {
        Date(self.0 - 1)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.trim().splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        Date::from_ymd(year, month, day)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_and_know_their_weekday() {
        let cases = [
            ((1970, 1, 1), 0, 3),
            ((2000, 2, 29), 11_016, 1),
            ((2026, 2, 17), 20_501, 1), // 春节 2026 falls on a Tuesday
            ((2026, 11, 23), 20_780, 0),
        ];
        for ((y, m, d), days, weekday) in cases {
            let date = Date::from_ymd(y, m, d).unwrap();
            assert_eq!(date.0, days, "{y}-{m}-{d}");
            assert_eq!(date.ymd(), (y, m, d));
            assert_eq!(date.weekday(), weekday, "{y}-{m}-{d}");
        }
        assert_eq!(Date::from_ymd(2026, 2, 29), None);
        assert_eq!(Date::parse("2026-10-01").unwrap().to_string(), "2026-10-01");
        assert_eq!(Date::parse("2026-13-01"), None);
    }

    #[test]
    fn every_day_for_four_centuries_round_trips() {
        let start = Date::from_ymd(1900, 1, 1).unwrap();
        for n in 0..146_097 {
            let date = Date(start.0 + n);
            let (y, m, d) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, d), Some(date));
        }
    }

    #[test]
    fn beijing_time_is_eight_hours_ahead() {
        let date = Date::from_ymd(2026, 1, 5).unwrap();
        let at = Timestamp::from_beijing(date, 9 * 60);
        assert_eq!(at.to_beijing(), (date, 540));
        assert_eq!(at.to_string(), "2026-01-05 09:00");
        // 09:00 Beijing is 01:00 UTC the same day.
        assert_eq!(at.0 % 86_400_000, 3_600_000);
    }
}
