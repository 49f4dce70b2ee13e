//! Go's `time.Time` and `time.Duration` as templates see them: `String()`, `Format` with Go's
//! reference layouts, and the accessor methods templates call.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Offset as _, TimeZone as _, Utc};

/// An instant with the zone it is shown in, like Go's `time.Time`.
#[derive(Clone, Debug, PartialEq)]
pub struct Time {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second, 0..1e9.
    pub nanos: u32,
    /// Offset east of UTC in seconds.
    pub offset: i32,
    /// The zone the time is shown in.
    pub zone: Arc<Zone>,
}

/// A time zone as a time carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// The abbreviation (`UTC`, `EST`); empty for an unnamed fixed offset, which Go prints as
    /// `+0200`.
    pub abbr: String,
    /// The location's name, as `.Location` prints it (`UTC`, `America/New_York`, or empty).
    pub location: String,
}

fn zone(abbr: &str, location: &str) -> Arc<Zone> {
    static UTC: std::sync::OnceLock<Arc<Zone>> = std::sync::OnceLock::new();
    if abbr == "UTC" && location == "UTC" {
        return UTC
            .get_or_init(|| {
                Arc::new(Zone {
                    abbr: "UTC".into(),
                    location: "UTC".into(),
                })
            })
            .clone();
    }
    Arc::new(Zone {
        abbr: abbr.into(),
        location: location.into(),
    })
}

/// A span of time in nanoseconds, like Go's `time.Duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub i64);

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Civil fields of a time in its zone.
#[derive(Clone, Copy, Debug)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31.
    pub day: u32,
    /// Day of year, 1..=366.
    pub yday: u32,
    /// Hour, 0..24.
    pub hour: u32,
    /// Minute.
    pub min: u32,
    /// Second.
    pub sec: u32,
    /// Day of week, 0 = Sunday.
    pub weekday: u32,
}

fn days_to_civil(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's civil_from_days.
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

impl Time {
    /// A UTC time from Unix seconds and nanoseconds.
    pub fn utc(secs: i64, nanos: u32) -> Time {
        Time {
            secs,
            nanos,
            offset: 0,
            zone: zone("UTC", "UTC"),
        }
    }

    /// From a chrono UTC time.
    pub fn from_chrono(t: DateTime<Utc>) -> Time {
        Time::utc(t.timestamp(), t.timestamp_subsec_nanos())
    }

    /// Parses RFC 3339 as Go's JSON decoding of `time.Time` does: `Z` is UTC, another offset is an
    /// unnamed fixed zone.
    pub fn parse_rfc3339(s: &str) -> Option<Time> {
        let t = DateTime::parse_from_rfc3339(s).ok()?;
        let offset = t.offset().local_minus_utc();
        // Go gives a zero offset the UTC zone on a UTC host (it matches the local zone).
        let z = offset == 0;
        Some(Time {
            secs: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
            offset,
            zone: if z { zone("UTC", "UTC") } else { zone("", "") },
        })
    }

    /// The same instant in the IANA zone `name` (`UTC`, `Local` treated as UTC, or a tz name).
    pub fn in_zone(&self, name: &str) -> Result<Time, String> {
        if name.is_empty() || name == "UTC" || name == "Local" {
            let mut t = Time::utc(self.secs, self.nanos);
            if name == "Local" {
                t.zone = zone("UTC", "Local");
            }
            return Ok(t);
        }
        let tz: chrono_tz::Tz = name
            .parse()
            .map_err(|_| format!("unknown time zone {name}"))?;
        let utc = DateTime::<Utc>::from_timestamp(self.secs, self.nanos)
            .ok_or_else(|| "time out of range".to_string())?;
        let local = tz.from_utc_datetime(&utc.naive_utc());
        let off = local.offset();
        use chrono_tz::OffsetName as _;
        let offset = off.fix().local_minus_utc();
        let abbr = match off.abbreviation() {
            Some(a) => a.to_string(),
            None => numeric_abbreviation(offset),
        };
        Ok(Time {
            secs: self.secs,
            nanos: self.nanos,
            offset,
            zone: zone(&abbr, name),
        })
    }

    /// The civil fields in the time's own zone.
    pub fn civil(&self) -> Civil {
        let local = self.secs + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400) as u32;
        let (year, month, day) = days_to_civil(days);
        let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let mut yday = cum[(month - 1) as usize] + day;
        if month > 2 && is_leap(year) {
            yday += 1;
        }
        Civil {
            year,
            month,
            day,
            yday,
            hour: rem / 3600,
            min: rem / 60 % 60,
            sec: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Seconds since the epoch as a float.
    pub fn unix_f64(&self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }

    /// Nanoseconds since the epoch (saturating).
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// Adds a duration.
    pub fn add(&self, d: Duration) -> Time {
        let total = self.unix_nanos() + i128::from(d.0);
        let mut t = self.clone();
        t.secs = total.div_euclid(1_000_000_000) as i64;
        t.nanos = total.rem_euclid(1_000_000_000) as u32;
        t
    }

    /// Go's `Time.Truncate`: rounded down to a multiple of `d` since Go's zero time (January 1
    /// of year 1, UTC), whatever the zone; unchanged when `d` is not positive.
    pub fn truncate(&self, d: Duration) -> Time {
        if d.0 <= 0 {
            return self.clone();
        }
        self.add(Duration(-(self.since_zero_mod(d) as i64)))
    }

    /// Go's `Time.Round`: to the nearest multiple of `d` since Go's zero time, halves rounding
    /// up; unchanged when `d` is not positive.
    pub fn round(&self, d: Duration) -> Time {
        if d.0 <= 0 {
            return self.clone();
        }
        let r = self.since_zero_mod(d);
        if less_than_half(r, d.0) {
            self.add(Duration(-(r as i64)))
        } else {
            self.add(Duration(d.0 - r as i64))
        }
    }

    /// The remainder of the time since Go's zero time divided by `d` (positive), in 0..d.
    fn since_zero_mod(&self, d: Duration) -> i128 {
        const ZERO_TO_UNIX: i128 = 62_135_596_800 * 1_000_000_000;
        (self.unix_nanos() + ZERO_TO_UNIX).rem_euclid(i128::from(d.0))
    }

    /// Whether this is Go's zero time (year 1).
    pub fn is_zero(&self) -> bool {
        self.secs == -62_135_596_800 && self.nanos == 0
    }

    /// Appends Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub fn write_string(&self, out: &mut String) {
        self.format_into(out, "2006-01-02 15:04:05.999999999 -0700 MST");
    }

    /// Formats with a Go reference layout (`2006-01-02T15:04:05Z07:00`).
    pub fn format(&self, layout: &str) -> String {
        let mut out = String::with_capacity(layout.len() + 10);
        self.format_into(&mut out, layout);
        out
    }

    /// Appends the time formatted with a Go reference layout.
    pub fn format_into(&self, out: &mut String, mut layout: &str) {
        let c = self.civil();
        while !layout.is_empty() {
            let (prefix, std, suffix) = next_chunk(layout);
            out.push_str(prefix);
            let Some(std) = std else { break };
            layout = suffix;
            match std {
                Std::Year => push_int(out, (c.year.abs() % 100) as u64, 2),
                Std::LongYear => {
                    if c.year < 0 {
                        out.push('-');
                    }
                    push_int(out, c.year.unsigned_abs(), 4)
                }
                Std::Month => out.push_str(&MONTHS[(c.month - 1) as usize][..3]),
                Std::LongMonth => out.push_str(MONTHS[(c.month - 1) as usize]),
                Std::NumMonth => push_int(out, u64::from(c.month), 0),
                Std::ZeroMonth => push_int(out, u64::from(c.month), 2),
                Std::WeekDay => out.push_str(&DAYS[c.weekday as usize][..3]),
                Std::LongWeekDay => out.push_str(DAYS[c.weekday as usize]),
                Std::Day => push_int(out, u64::from(c.day), 0),
                Std::UnderDay => {
                    if c.day < 10 {
                        out.push(' ');
                    }
                    push_int(out, u64::from(c.day), 0)
                }
                Std::ZeroDay => push_int(out, u64::from(c.day), 2),
                Std::UnderYearDay => {
                    if c.yday < 100 {
                        out.push(' ');
                        if c.yday < 10 {
                            out.push(' ');
                        }
                    }
                    push_int(out, u64::from(c.yday), 0)
                }
                Std::ZeroYearDay => push_int(out, u64::from(c.yday), 3),
                Std::Hour => push_int(out, u64::from(c.hour), 2),
                Std::Hour12 | Std::ZeroHour12 => {
                    let h = if c.hour.is_multiple_of(12) {
                        12
                    } else {
                        c.hour % 12
                    };
                    push_int(out, u64::from(h), if std == Std::Hour12 { 0 } else { 2 })
                }
                Std::Minute => push_int(out, u64::from(c.min), 0),
                Std::ZeroMinute => push_int(out, u64::from(c.min), 2),
                Std::Second => push_int(out, u64::from(c.sec), 0),
                Std::ZeroSecond => push_int(out, u64::from(c.sec), 2),
                Std::PmUpper => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Std::PmLower => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Std::Tz => {
                    if !self.zone.abbr.is_empty() {
                        out.push_str(&self.zone.abbr);
                    } else {
                        let zone = self.offset / 60;
                        out.push(if zone < 0 { '-' } else { '+' });
                        let zone = zone.unsigned_abs();
                        push_int(out, u64::from(zone / 60), 2);
                        push_int(out, u64::from(zone % 60), 2);
                    }
                }
                Std::Offset {
                    iso,
                    colon,
                    secs,
                    short,
                } => {
                    if iso && self.offset == 0 {
                        out.push('Z');
                        continue;
                    }
                    let zone = self.offset / 60;
                    out.push(if zone < 0 { '-' } else { '+' });
                    let zone = zone.unsigned_abs();
                    push_int(out, u64::from(zone / 60), 2);
                    if colon {
                        out.push(':');
                    }
                    if !short {
                        push_int(out, u64::from(zone % 60), 2);
                    }
                    if secs {
                        if colon {
                            out.push(':');
                        }
                        push_int(out, u64::from(self.offset.unsigned_abs() % 60), 2);
                    }
                }
                Std::Frac { sep, digits, trim } => {
                    let s = format!("{:09}", self.nanos);
                    let mut n = digits.min(9);
                    if trim {
                        while n > 0 && s.as_bytes()[n - 1] == b'0' {
                            n -= 1;
                        }
                        if n == 0 {
                            continue;
                        }
                    }
                    out.push(sep);
                    out.push_str(&s[..n]);
                }
            }
        }
    }
}

fn push_int(out: &mut String, v: u64, width: usize) {
    let _ = write!(out, "{v:0width$}");
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Std {
    Year,
    LongYear,
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    PmUpper,
    PmLower,
    Tz,
    Offset {
        iso: bool,
        colon: bool,
        secs: bool,
        short: bool,
    },
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

fn starts_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the text before the first layout element, the element, and the rest.
fn next_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    for i in 0..b.len() {
        let hit = |n: usize, std: Std| Some((&layout[..i], Some(std), &layout[i + n..]));
        let r = match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    hit(7, Std::LongMonth)
                } else if !starts_lower(&layout[i + 3..]) {
                    hit(3, Std::Month)
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    hit(6, Std::LongWeekDay)
                } else if !starts_lower(&layout[i + 3..]) {
                    hit(3, Std::WeekDay)
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => hit(3, Std::Tz),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => {
                let std = [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][(b[i + 1] - b'1') as usize];
                hit(2, std)
            }
            b'0' if at(i, "002") => hit(3, Std::ZeroYearDay),
            b'1' => {
                if at(i, "15") {
                    hit(2, Std::Hour)
                } else {
                    hit(1, Std::NumMonth)
                }
            }
            b'2' => {
                if at(i, "2006") {
                    hit(4, Std::LongYear)
                } else {
                    hit(1, Std::Day)
                }
            }
            b'_' if at(i, "_2") => {
                if at(i + 1, "2006") {
                    return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                }
                hit(2, Std::UnderDay)
            }
            b'_' if at(i, "__2") => hit(3, Std::UnderYearDay),
            b'3' => hit(1, Std::Hour12),
            b'4' => hit(1, Std::Minute),
            b'5' => hit(1, Std::Second),
            b'P' if at(i, "PM") => hit(2, Std::PmUpper),
            b'p' if at(i, "pm") => hit(2, Std::PmLower),
            c @ (b'-' | b'Z') => {
                let iso = c == b'Z';
                let off = |colon, secs, short| Std::Offset {
                    iso,
                    colon,
                    secs,
                    short,
                };
                if at(i + 1, "070000") {
                    hit(7, off(false, true, false))
                } else if at(i + 1, "07:00:00") {
                    hit(9, off(true, true, false))
                } else if at(i + 1, "0700") {
                    hit(5, off(false, false, false))
                } else if at(i + 1, "07:00") {
                    hit(6, off(true, false, false))
                } else if at(i + 1, "07") {
                    hit(3, off(false, false, true))
                } else {
                    None
                }
            }
            c @ (b'.' | b',') if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    let std = Std::Frac {
                        sep: c as char,
                        digits: j - (i + 1),
                        trim: ch == b'9',
                    };
                    Some((&layout[..i], Some(std), &layout[j..]))
                }
            }
            _ => None,
        };
        if let Some(r) = r {
            return r;
        }
    }
    (layout, None, "")
}

/// The abbreviation tzdata gives a zone without a name (zic's `%z`): `+11`, `-03`, `+0530`.
fn numeric_abbreviation(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    let (h, m, s) = (o / 3600, o / 60 % 60, o % 60);
    match (m, s) {
        (0, 0) => format!("{sign}{h:02}"),
        (_, 0) => format!("{sign}{h:02}{m:02}"),
        _ => format!("{sign}{h:02}{m:02}{s:02}"),
    }
}

/// Go's `lessThanHalf`: whether `x + x < y`, compared as unsigned so it cannot overflow.
fn less_than_half(x: i128, y: i64) -> bool {
    (x as u64).wrapping_add(x as u64) < y as u64
}

impl Duration {
    /// Go's `Duration.Truncate`: rounded toward zero to a multiple of `m`; unchanged when `m`
    /// is not positive.
    pub fn truncate(self, m: Duration) -> Duration {
        if m.0 <= 0 {
            return self;
        }
        Duration(self.0 - self.0 % m.0)
    }

    /// Go's `Duration.Round`: to the nearest multiple of `m`, halves away from zero, saturating
    /// at the extremes; unchanged when `m` is not positive.
    pub fn round(self, m: Duration) -> Duration {
        if m.0 <= 0 {
            return self;
        }
        let d = self.0;
        let mut r = d % m.0;
        if d < 0 {
            r = -r;
            if less_than_half(i128::from(r), m.0) {
                return Duration(d + r);
            }
            return Duration(d.checked_sub(m.0 - r).unwrap_or(i64::MIN));
        }
        if less_than_half(i128::from(r), m.0) {
            return Duration(d - r);
        }
        Duration(d.checked_add(m.0 - r).unwrap_or(i64::MAX))
    }

    /// Seconds as a float.
    pub fn seconds(self) -> f64 {
        let sec = self.0 / 1_000_000_000;
        let nsec = self.0 % 1_000_000_000;
        sec as f64 + nsec as f64 / 1e9
    }

    /// Appends Go's `Duration.String()`: `72h3m0.5s`, `1.5ms`, `0s`.
    pub fn write_string(self, out: &mut String) {
        let mut buf = [0u8; 32];
        let mut w = buf.len();
        let neg = self.0 < 0;
        let mut u = self.0.unsigned_abs();
        if u < 1_000_000_000 {
            let prec;
            w -= 1;
            buf[w] = b's';
            w -= 1;
            if u == 0 {
                out.push_str("0s");
                return;
            } else if u < 1_000 {
                prec = 0;
                buf[w] = b'n';
            } else if u < 1_000_000 {
                prec = 3;
                w -= 1;
                buf[w..w + 2].copy_from_slice("µ".as_bytes());
            } else {
                prec = 6;
                buf[w] = b'm';
            }
            (w, u) = fmt_frac(&mut buf, w, u, prec);
            w = fmt_int(&mut buf, w, u);
        } else {
            w -= 1;
            buf[w] = b's';
            (w, u) = fmt_frac(&mut buf, w, u, 9);
            w = fmt_int(&mut buf, w, u % 60);
            u /= 60;
            if u > 0 {
                w -= 1;
                buf[w] = b'm';
                w = fmt_int(&mut buf, w, u % 60);
                u /= 60;
                if u > 0 {
                    w -= 1;
                    buf[w] = b'h';
                    w = fmt_int(&mut buf, w, u);
                }
            }
        }
        if neg {
            w -= 1;
            buf[w] = b'-';
        }
        out.push_str(std::str::from_utf8(&buf[w..]).unwrap_or(""));
    }
}

fn fmt_frac(buf: &mut [u8], mut w: usize, mut v: u64, prec: usize) -> (usize, u64) {
    let mut print = false;
    for _ in 0..prec {
        let digit = v % 10;
        print = print || digit != 0;
        if print {
            w -= 1;
            buf[w] = digit as u8 + b'0';
        }
        v /= 10;
    }
    if print {
        w -= 1;
        buf[w] = b'.';
    }
    (w, v)
}

fn fmt_int(buf: &mut [u8], mut w: usize, mut v: u64) -> usize {
    if v == 0 {
        w -= 1;
        buf[w] = b'0';
    } else {
        while v > 0 {
            w -= 1;
            buf[w] = (v % 10) as u8 + b'0';
            v /= 10;
        }
    }
    w
}

/// The English name of a month, 1..=12.
pub fn month_name(m: u32) -> &'static str {
    MONTHS[(m.clamp(1, 12) - 1) as usize]
}

/// The English name of a weekday, 0 = Sunday.
pub fn weekday_name(d: u32) -> &'static str {
    DAYS[(d % 7) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_go_layouts() {
        let t = Time::utc(1_700_000_000, 123_456_000);
        assert_eq!(
            t.format("2006-01-02 15:04:05.999999999 -0700 MST"),
            "2023-11-14 22:13:20.123456 +0000 UTC"
        );
        assert_eq!(t.format(time_rfc3339()), "2023-11-14T22:13:20Z");
        assert_eq!(
            t.format("Mon Jan _2 3:04PM .000 002 __2"),
            "Tue Nov 14 10:13PM .123 318 318"
        );
        let ny = t.in_zone("America/New_York").unwrap();
        assert_eq!(
            ny.format("2006-01-02 15:04:05 -07:00 MST"),
            "2023-11-14 17:13:20 -05:00 EST"
        );
        let fixed = Time::parse_rfc3339("2024-02-29T10:00:00+02:00").unwrap();
        assert_eq!(
            fixed.format("2006-01-02 15:04:05 MST Z07:00"),
            "2024-02-29 10:00:00 +0200 +02:00"
        );
    }

    fn time_rfc3339() -> &'static str {
        "2006-01-02T15:04:05Z07:00"
    }

    #[test]
    fn durations_print_as_go() {
        let s = |n| {
            let mut o = String::new();
            Duration(n).write_string(&mut o);
            o
        };
        assert_eq!(s(0), "0s");
        assert_eq!(s(1_500), "1.5µs");
        assert_eq!(s(1_500_000), "1.5ms");
        assert_eq!(s(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(s(-60_000_000_000), "-1m0s");
    }
}
