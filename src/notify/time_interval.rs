//! Alertmanager's time intervals (`timeinterval`): times of day, weekdays, days of the month
//! (negative from the month's end), months and years, in an IANA zone; parsed from the strings
//! of `alertmanager.yml` with Alertmanager's messages, and `contains` as its `ContainsTime`.

use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// The zone an interval is read in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Location {
    /// An IANA zone (`UTC` included).
    Zone(Tz),
    /// The machine's local zone (Go's `Local`).
    Local,
}

/// An inclusive range of integers (weekdays from Sunday = 0, days of month, months, years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InclusiveRange {
    /// First member.
    pub begin: i32,
    /// Last member, inclusive.
    pub end: i32,
}

/// Minutes of the day, `[start, end)`, from 0 to 1440.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First minute, inclusive.
    pub start_minute: u32,
    /// Last minute, exclusive.
    pub end_minute: u32,
}

/// One interval: a time is in it when it is in every list that is given (an absent list
/// always matches, an empty one never does), each list matching when one of its ranges does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeInterval {
    /// Times of day.
    pub times: Option<Vec<TimeRange>>,
    /// Days of the week, Sunday = 0.
    pub weekdays: Option<Vec<InclusiveRange>>,
    /// Days of the month; negative counts from the end (-1 is the last day).
    pub days_of_month: Option<Vec<InclusiveRange>>,
    /// Months, January = 1.
    pub months: Option<Vec<InclusiveRange>>,
    /// Years.
    pub years: Option<Vec<InclusiveRange>>,
    /// The zone; UTC when absent.
    pub location: Option<Location>,
}

/// The calendar fields of an instant in some zone.
struct Civil {
    minute_of_day: u32,
    weekday: i32,
    day: i32,
    month: i32,
    year: i32,
    days_in_month: i32,
}

fn civil<Z: TimeZone>(t: DateTime<Z>) -> Civil {
    let (year, month) = (t.year(), t.month());
    let next = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let first = chrono::NaiveDate::from_ymd_opt(year, month, 1);
    let next_first = chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1);
    let days_in_month = match (first, next_first) {
        (Some(a), Some(b)) => (b - a).num_days() as i32,
        _ => 31,
    };
    Civil {
        minute_of_day: t.hour() * 60 + t.minute(),
        weekday: t.weekday().num_days_from_sunday() as i32,
        day: t.day() as i32,
        month: month as i32,
        year,
        days_in_month,
    }
}

impl TimeInterval {
    /// Whether `t` falls in this interval (Alertmanager's `ContainsTime`).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let c = match self.location {
            None => civil(t),
            Some(Location::Zone(tz)) => civil(t.with_timezone(&tz)),
            Some(Location::Local) => civil(t.with_timezone(&Local)),
        };
        let any = |list: &Option<Vec<InclusiveRange>>, f: &dyn Fn(&InclusiveRange) -> bool| {
            list.as_ref().is_none_or(|ranges| ranges.iter().any(f))
        };
        let times_ok = self.times.as_ref().is_none_or(|ranges| {
            ranges
                .iter()
                .any(|r| c.minute_of_day >= r.start_minute && c.minute_of_day < r.end_minute)
        });
        let days_ok = self.days_of_month.as_ref().is_none_or(|ranges| {
            ranges.iter().any(|r| {
                let dim = c.days_in_month;
                let begin = if r.begin < 0 {
                    dim + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { dim + r.end + 1 } else { r.end };
                if begin > dim {
                    return false;
                }
                let (begin, end) = (begin.clamp(-dim, dim), end.clamp(-dim, dim));
                c.day >= begin && c.day <= end
            })
        });
        times_ok
            && days_ok
            && any(&self.months, &|r| c.month >= r.begin && c.month <= r.end)
            && any(&self.weekdays, &|r| {
                c.weekday >= r.begin && c.weekday <= r.end
            })
            && any(&self.years, &|r| c.year >= r.begin && c.year <= r.end)
    }
}

/// Whether any of the intervals contains `t`.
pub fn any_contains(intervals: &[TimeInterval], t: DateTime<Utc>) -> bool {
    intervals.iter().any(|i| i.contains(t))
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits.
fn atoi(s: &str) -> Result<i32, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// Splits `a:b` (or `a`) after lowercasing, mapping each member with `member`.
fn range_from_string(
    input: &str,
    member: impl Fn(&str) -> Result<i32, String>,
) -> Result<InclusiveRange, String> {
    let input = input.to_lowercase();
    if input.contains(':') {
        let parts: Vec<&str> = input.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("couldn't parse range {input}, invalid format"));
        }
        return Ok(InclusiveRange {
            begin: member(parts[0])?,
            end: member(parts[1])?,
        });
    }
    let v = member(&input)?;
    Ok(InclusiveRange { begin: v, end: v })
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A `weekdays` entry: `monday`, `monday:friday`.
pub fn parse_weekday_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, |m| {
        WEEKDAYS
            .iter()
            .position(|d| *d == m)
            .map(|i| i as i32)
            .ok_or_else(|| format!("{m} is not a valid weekday"))
    })?;
    if r.begin > r.end {
        return Err("start day cannot be before end day".to_owned());
    }
    Ok(r)
}

/// A `days_of_month` entry: `1`, `1:5`, `-3:-1`.
pub fn parse_day_of_month_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, atoi)?;
    for v in [r.begin, r.end] {
        if v == 0 || !(-31..=31).contains(&v) {
            return Err(format!("{v} is not a valid day of the month: out of range"));
        }
    }
    if r.begin < 0 && r.end > 0 {
        return Err("end day must be negative if start day is negative".to_owned());
    }
    let check = |v: i32| if v < 0 { 28 + v } else { v };
    if check(r.begin) > check(r.end) {
        return Err(format!(
            "end day {} is always before start day {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

/// A `months` entry: `january`, `1:3`, `may:august`.
pub fn parse_month_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, |m| match MONTHS.iter().position(|x| *x == m) {
        Some(i) => Ok(i as i32 + 1),
        None => atoi(m).map_err(|_| format!("{m} is not a valid month")),
    })?;
    if r.begin > r.end {
        let name = |v: i32| {
            usize::try_from(v - 1)
                .ok()
                .and_then(|i| MONTHS.get(i))
                .copied()
                .unwrap_or("")
        };
        return Err(format!(
            "end month {} is before start month {}",
            name(r.end),
            name(r.begin)
        ));
    }
    Ok(r)
}

/// A `years` entry: `2024`, `2024:2026`.
pub fn parse_year_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, atoi)?;
    if r.begin > r.end {
        return Err(format!(
            "end year {} is before start year {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

/// `HH:MM` (00:00 to 24:00) as minutes of the day.
fn parse_clock(s: &str) -> Result<u32, String> {
    let b = s.as_bytes();
    let valid = s == "24:00"
        || (b.len() == 5
            && b[2] == b':'
            && b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[3].is_ascii_digit()
            && b[4].is_ascii_digit()
            && (b[0] < b'2' || (b[0] == b'2' && b[1] <= b'3'))
            && b[3] <= b'5');
    if !valid {
        return Err(format!("couldn't parse timestamp {s}, invalid format"));
    }
    let hours = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let minutes = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    Ok(hours * 60 + minutes)
}

/// A `times` entry's `start_time` and `end_time`.
pub fn parse_time_range(start: Option<&str>, end: Option<&str>) -> Result<TimeRange, String> {
    let (Some(start), Some(end)) = (
        start.filter(|s| !s.is_empty()),
        end.filter(|s| !s.is_empty()),
    ) else {
        return Err("both start and end times must be provided".to_owned());
    };
    let (start_minute, end_minute) = (parse_clock(start)?, parse_clock(end)?);
    if start_minute >= end_minute {
        return Err("start time cannot be equal or greater than end time".to_owned());
    }
    Ok(TimeRange {
        start_minute,
        end_minute,
    })
}

/// A `location`: an IANA zone name, `UTC` or `Local` (Go's `time.LoadLocation`).
pub fn parse_location(s: &str) -> Result<Location, String> {
    match s {
        "" | "UTC" => Ok(Location::Zone(Tz::UTC)),
        "Local" => Ok(Location::Local),
        _ => s
            .parse::<Tz>()
            .map(Location::Zone)
            .map_err(|_| format!("unknown time zone {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_with_alertmanager_messages() {
        assert_eq!(
            parse_weekday_range("Monday:FRIDAY").unwrap(),
            InclusiveRange { begin: 1, end: 5 }
        );
        assert_eq!(
            parse_weekday_range("friday:monday").unwrap_err(),
            "start day cannot be before end day"
        );
        assert_eq!(
            parse_weekday_range("funday").unwrap_err(),
            "funday is not a valid weekday"
        );
        assert_eq!(
            parse_day_of_month_range("-3:5").unwrap_err(),
            "end day must be negative if start day is negative"
        );
        assert_eq!(
            parse_day_of_month_range("0").unwrap_err(),
            "0 is not a valid day of the month: out of range"
        );
        assert_eq!(
            parse_month_range("march:january").unwrap_err(),
            "end month january is before start month march"
        );
        assert_eq!(
            parse_time_range(Some("10:00"), Some("09:00")).unwrap_err(),
            "start time cannot be equal or greater than end time"
        );
        assert_eq!(
            parse_time_range(Some("9:00"), Some("10:00")).unwrap_err(),
            "couldn't parse timestamp 9:00, invalid format"
        );
        assert_eq!(
            parse_time_range(Some("17:00"), Some("24:00"))
                .unwrap()
                .end_minute,
            1440
        );
        assert!(parse_location("Europe/Paris").is_ok());
        assert_eq!(
            parse_location("Mars/Olympus").unwrap_err(),
            "unknown time zone Mars/Olympus"
        );
    }

    #[test]
    fn contains_in_zone() {
        // Business hours in New York, Monday to Friday.
        let interval = TimeInterval {
            times: Some(vec![
                parse_time_range(Some("09:00"), Some("17:00")).unwrap(),
            ]),
            weekdays: Some(vec![parse_weekday_range("monday:friday").unwrap()]),
            location: Some(parse_location("America/New_York").unwrap()),
            ..TimeInterval::default()
        };
        // 2026-11-23 is a Monday; 14:00Z is 09:00 in New York (EST).
        assert!(interval.contains(at("2026-11-23T14:00:00Z")));
        assert!(!interval.contains(at("2026-11-23T13:59:59Z")));
        assert!(!interval.contains(at("2026-11-23T22:00:00Z")));
        // Saturday.
        assert!(!interval.contains(at("2026-11-28T15:00:00Z")));
    }

    #[test]
    fn negative_days_count_from_the_month_end() {
        let last_two = TimeInterval {
            days_of_month: Some(vec![parse_day_of_month_range("-2:-1").unwrap()]),
            ..TimeInterval::default()
        };
        assert!(last_two.contains(at("2024-02-28T12:00:00Z")));
        assert!(last_two.contains(at("2024-02-29T12:00:00Z")));
        assert!(!last_two.contains(at("2024-02-27T12:00:00Z")));
        assert!(last_two.contains(at("2026-11-30T00:00:00Z")));
        assert!(!last_two.contains(at("2026-11-28T23:59:00Z")));
        // A start past the month's end skips the range.
        let thirty_one = TimeInterval {
            days_of_month: Some(vec![parse_day_of_month_range("31").unwrap()]),
            ..TimeInterval::default()
        };
        assert!(!thirty_one.contains(at("2026-11-30T00:00:00Z")));
        // An empty list never matches; an absent one always does.
        let empty = TimeInterval {
            months: Some(vec![]),
            ..TimeInterval::default()
        };
        assert!(!empty.contains(at("2026-11-30T00:00:00Z")));
        assert!(TimeInterval::default().contains(at("2026-11-30T00:00:00Z")));
    }
}
