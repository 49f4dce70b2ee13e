//! Prometheus durations (`1h30m`, `90d`, `500ms`): parsed and printed exactly as Prometheus's
//! `model.ParseDuration` and `model.Duration.String` do.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// Why a string is not a Prometheus duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("empty duration string")]
    Empty,
    /// The string does not have the shape `<number><unit>…` with units from largest to smallest.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// A unit other than `ms s m h d w y`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration string.
        input: String,
    },
    /// The duration does not fit in 2^63-1 nanoseconds (about 292 years).
    #[error("duration out of range")]
    OutOfRange,
}

/// A duration written the Prometheus way: a sequence of `<number><unit>` with units
/// `y` (365 days), `w` (7 days), `d`, `h`, `m`, `s`, `ms`, largest first, such as `1h30m`.
///
/// `Display` prints the canonical form Prometheus prints (`90m` becomes `1h30m`, zero is `0s`).
///
/// ```
/// use tradewatch::model::PromDuration;
///
/// let d: PromDuration = "90m".parse().unwrap();
/// assert_eq!(d.as_duration(), std::time::Duration::from_secs(5400));
/// assert_eq!(d.to_string(), "1h30m");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(
    /// The duration; `Display` shows it to the millisecond.
    pub Duration,
);

const MS: u64 = 1_000_000;
/// Units in the order they must appear, with their length in nanoseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000 * MS),
    ("w", 7 * 24 * 3600 * 1000 * MS),
    ("d", 24 * 3600 * 1000 * MS),
    ("h", 3600 * 1000 * MS),
    ("m", 60 * 1000 * MS),
    ("s", 1000 * MS),
    ("ms", MS),
];

impl PromDuration {
    /// The zero duration, printed `0s`.
    pub const ZERO: PromDuration = PromDuration(Duration::ZERO);

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> PromDuration {
        PromDuration(Duration::from_secs(secs))
    }

    /// A duration of whole milliseconds.
    pub const fn from_millis(millis: u64) -> PromDuration {
        PromDuration(Duration::from_millis(millis))
    }

    /// The standard library duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// Whether this is the zero duration.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses a duration as Prometheus's `model.ParseDuration` does; `0` is accepted without a unit.
    pub fn parse(input: &str) -> Result<PromDuration, DurationError> {
        match input {
            "" => return Err(DurationError::Empty),
            "0" => return Ok(PromDuration::ZERO),
            _ => {}
        }
        let invalid = || DurationError::Invalid(input.to_owned());
        let mut rest = input.as_bytes();
        let mut total: u64 = 0;
        // Index into UNITS of the next unit allowed: units go from largest to smallest.
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return Err(invalid());
            }
            // All ASCII digits: only overflow can fail, which Go's ParseUint reports as invalid.
            let number: u64 = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(invalid)?;
            rest = &rest[digits..];
            let unit_len = rest.iter().take_while(|b| !b.is_ascii_digit()).count();
            if unit_len == 0 {
                return Err(invalid());
            }
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let Some(position) = UNITS.iter().position(|(name, _)| name.as_bytes() == unit) else {
                return Err(DurationError::UnknownUnit {
                    unit: String::from_utf8_lossy(unit).into_owned(),
                    input: input.to_owned(),
                });
            };
            if position < next_unit {
                return Err(invalid());
            }
            next_unit = position + 1;
            let nanos_per_unit = UNITS[position].1;
            if number > (1u64 << 63) / nanos_per_unit {
                return Err(DurationError::OutOfRange);
            }
            total = total
                .checked_add(number * nanos_per_unit)
                .filter(|&t| t <= i64::MAX as u64)
                .ok_or(DurationError::OutOfRange)?;
        }
        Ok(PromDuration(Duration::from_nanos(total)))
    }
}

impl std::ops::Deref for PromDuration {
    type Target = Duration;

    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl From<Duration> for PromDuration {
    fn from(duration: Duration) -> PromDuration {
        PromDuration(duration)
    }
}

impl From<PromDuration> for Duration {
    fn from(duration: PromDuration) -> Duration {
        duration.0
    }
}

impl FromStr for PromDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<PromDuration, DurationError> {
        PromDuration::parse(s)
    }
}

impl fmt::Display for PromDuration {
    /// Prometheus's `model.Duration.String`: millisecond resolution, `y` and `w` only when they
    /// divide what is left exactly (`90d`, not `12w6d`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (index, (name, nanos)) in UNITS.iter().enumerate() {
            let per_unit = u128::from(nanos / MS);
            let count = ms / per_unit;
            // Years and weeks only when they leave nothing over.
            let exact_only = index < 2;
            if exact_only && count * per_unit != ms {
                continue;
            }
            if count > 0 {
                write!(f, "{count}{name}")?;
                ms -= count * per_unit;
            }
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PromDuration, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = PromDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 5m or 1h30m")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<PromDuration, E> {
                PromDuration::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PromDuration, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PromDuration, E> {
                self.visit_str(&v.to_string())
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(s: &str) -> u128 {
        PromDuration::parse(s).unwrap().as_duration().as_millis()
    }

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("0s"), 0);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("1h30m"), 90 * 60 * 1000);
        assert_eq!(ms("90d"), 90 * 86_400_000);
        assert_eq!(ms("1y"), 365 * 86_400_000);
        assert_eq!(ms("2w"), 14 * 86_400_000);
        assert_eq!(
            ms("1y2w3d4h5m6s7ms"),
            ((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7
        );
        assert_eq!(ms("120s"), 120_000);
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        let err = |s: &str| PromDuration::parse(s).unwrap_err().to_string();
        assert_eq!(err(""), "empty duration string");
        assert_eq!(err("5"), "not a valid duration string: \"5\"");
        assert_eq!(err("h"), "not a valid duration string: \"h\"");
        assert_eq!(err("-5s"), "not a valid duration string: \"-5s\"");
        assert_eq!(err("1.5h"), "unknown unit \".\" in duration \"1.5h\"");
        assert_eq!(err("5x"), "unknown unit \"x\" in duration \"5x\"");
        assert_eq!(err("30m1h"), "not a valid duration string: \"30m1h\"");
        assert_eq!(err("1m1m"), "not a valid duration string: \"1m1m\"");
        assert_eq!(err(" 5s"), "not a valid duration string: \" 5s\"");
        assert_eq!(err("300y"), "duration out of range");
        assert_eq!(err("292y50w"), "duration out of range");
        assert_eq!(
            err("99999999999999999999s"),
            "not a valid duration string: \"99999999999999999999s\""
        );
    }

    #[test]
    fn prints_canonical_form() {
        let show = |s: &str| PromDuration::parse(s).unwrap().to_string();
        assert_eq!(show("0"), "0s");
        assert_eq!(show("90m"), "1h30m");
        assert_eq!(show("90d"), "90d");
        assert_eq!(show("14d"), "2w");
        assert_eq!(show("365d"), "1y");
        assert_eq!(show("366d"), "366d");
        assert_eq!(show("1500ms"), "1s500ms");
        assert_eq!(show("24h"), "1d");
        assert_eq!(
            PromDuration::from(Duration::from_micros(1500)).to_string(),
            "1ms"
        );
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d: PromDuration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(d, PromDuration::from_secs(5400));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m\"");
        assert_eq!(
            serde_json::from_str::<PromDuration>("0").unwrap(),
            PromDuration::ZERO
        );
        assert!(serde_json::from_str::<PromDuration>("\"5x\"").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(millis in 0u64..=(i64::MAX as u64 / 1_000_000)) {
            let d = PromDuration::from_millis(millis);
            let shown = d.to_string();
            prop_assert_eq!(PromDuration::parse(&shown), Ok(d), "{}", shown);
        }

        #[test]
        fn parse_never_panics(s in "[0-9a-z]{0,12}") {
            let _ = PromDuration::parse(&s);
        }
    }
}
