//! Sizes in bytes written the Prometheus way (`10MB`, `512KiB`), as `body_size_limit` takes them.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The text is empty.
    #[error("empty size")]
    Empty,
    /// A part has no digits where a number must be.
    #[error("not a valid size: {0:?}")]
    Invalid(String),
    /// A number has no unit after it (only `0` may stand alone).
    #[error(
        "missing unit in size {0:?}: use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB"
    )]
    MissingUnit(String),
    /// A unit that is not one of the known ones, or binary and plain units mixed.
    #[error(
        "unknown unit {unit:?} in size {input:?}: use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB, not both kinds in one size"
    )]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole size.
        input: String,
    },
    /// A negative size.
    #[error("size {0:?} must not be negative (0 means no limit)")]
    Negative(String),
    /// More than 2^63 - 1 bytes.
    #[error("size {0:?} is too large")]
    OutOfRange(String),
}

/// A size in bytes, parsed as Prometheus parses `body_size_limit` (`units.ParseBase2Bytes`):
/// a sequence of `<number><unit>` (`1.5MB`, `1MB512KB`), where `KB`, `MB`, … and `KiB`, `MiB`, …
/// are all powers of 1024 (`10MB` is 10 × 1024 × 1024 bytes) and the two spellings do not mix in
/// one size; `0` alone needs no unit.
///
/// ```
/// use tradewatch::model::ByteSize;
///
/// let s: ByteSize = "10MB".parse().unwrap();
/// assert_eq!(s.bytes(), 10 << 20);
/// assert_eq!("512KiB".parse::<ByteSize>().unwrap().bytes(), 512 << 10);
/// assert!("10 MB".parse::<ByteSize>().is_err());
/// assert_eq!(s.to_string(), "10MiB");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// Unit prefixes in increasing powers of 1024.
const PREFIXES: [&str; 6] = ["K", "M", "G", "T", "P", "E"];

/// The multiplier of `unit` when units end in `suffix` (`iB` or `B`); `B` alone is 1 in both.
fn unit_bytes(unit: &str, suffix: &str) -> Option<f64> {
    if unit == "B" {
        return Some(1.0);
    }
    let prefix = unit.strip_suffix(suffix)?;
    let power = PREFIXES.iter().position(|p| *p == prefix)?;
    Some(1024f64.powi(power as i32 + 1))
}

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> ByteSize {
        ByteSize(bytes)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a size as Prometheus does, refusing negative ones.
    pub fn parse(input: &str) -> Result<ByteSize, SizeError> {
        // Binary units (`KiB`) first, then the plain ones (`KB`), as ParseBase2Bytes tries them.
        // When both fail, the first error names the unit that broke the binary reading.
        match parse_with(input, "iB") {
            Ok(size) => Ok(size),
            Err(e @ SizeError::UnknownUnit { .. }) => match parse_with(input, "B") {
                Err(SizeError::UnknownUnit { .. }) => Err(e),
                other => other,
            },
            Err(e) => Err(e),
        }
    }
}

/// `ParseUnit` of github.com/alecthomas/units with the unit map of `suffix`.
fn parse_with(input: &str, suffix: &str) -> Result<ByteSize, SizeError> {
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(ByteSize(0));
    }
    if s.is_empty() {
        return Err(if input.is_empty() {
            SizeError::Empty
        } else {
            SizeError::Invalid(input.to_owned())
        });
    }
    let invalid = || SizeError::Invalid(input.to_owned());
    let mut total = 0f64;
    while !s.is_empty() {
        let number_len = s
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number = &s[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        s = &s[number_len..];
        let unit_len = s
            .bytes()
            .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
            .count();
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        if unit.is_empty() {
            return Err(SizeError::MissingUnit(input.to_owned()));
        }
        let Some(bytes) = unit_bytes(unit, suffix) else {
            return Err(SizeError::UnknownUnit {
                unit: unit.to_owned(),
                input: input.to_owned(),
            });
        };
        total += value * bytes;
    }
    if total >= 9_223_372_036_854_775_807f64 {
        return Err(SizeError::OutOfRange(input.to_owned()));
    }
    if negative && total > 0.0 {
        return Err(SizeError::Negative(input.to_owned()));
    }
    Ok(ByteSize(total as u64))
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<ByteSize, SizeError> {
        ByteSize::parse(s)
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`10MiB`, `1536B`, `0B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut unit = "B".to_owned();
        let mut count = self.0;
        for prefix in PREFIXES {
            if count == 0 || !count.is_multiple_of(1024) {
                break;
            }
            count /= 1024;
            unit = format!("{prefix}iB");
        }
        write!(f, "{count}{unit}")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 10MB or 512KiB")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                ByteSize::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                ByteSize::parse(&v.to_string()).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_prometheus_parses_them() {
        for (text, bytes) in [
            ("0", 0),
            ("0B", 0),
            ("1B", 1),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("512KiB", 512 << 10),
            ("512KB", 512 << 10),
            ("1.5MB", 3 << 19),
            ("1MB512KB", (1 << 20) + (512 << 10)),
            ("2GB", 2 << 30),
            ("1EB", 1 << 60),
            (".5KB", 512),
            ("+1KB", 1024),
        ] {
            assert_eq!(
                ByteSize::parse(text).map(ByteSize::bytes),
                Ok(bytes),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        for (text, message) in [
            ("", "empty size"),
            (
                "10",
                "missing unit in size \"10\": use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB",
            ),
            (
                "10 MB",
                "unknown unit \" MB\" in size \"10 MB\": use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB, not both kinds in one size",
            ),
            (
                "10mb",
                "unknown unit \"mb\" in size \"10mb\": use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB, not both kinds in one size",
            ),
            (
                "1MiB512KB",
                "unknown unit \"KB\" in size \"1MiB512KB\": use B, KB, MB, GB, TB, PB or EB (powers of 1024), or KiB, MiB, GiB, TiB, PiB or EiB, not both kinds in one size",
            ),
            ("MB", "not a valid size: \"MB\""),
            ("1..5MB", "not a valid size: \"1..5MB\""),
            (
                "-1MB",
                "size \"-1MB\" must not be negative (0 means no limit)",
            ),
            ("8EB", "size \"8EB\" is too large"),
        ] {
            assert_eq!(
                ByteSize::parse(text).unwrap_err().to_string(),
                message,
                "{text}"
            );
        }
    }

    #[test]
    fn display_is_the_largest_exact_binary_unit() {
        assert_eq!(ByteSize(0).to_string(), "0B");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(3 << 10).to_string(), "3KiB");
    }
}
