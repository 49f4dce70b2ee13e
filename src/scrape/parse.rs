//! One parser for OpenMetrics 1.0 text and Prometheus text 0.0.4: an iterator of metadata and
//! samples that borrow the input, and [`validate`], which collects every problem with its line.
//!
//! The parser is strict to each format's specification: the line syntax is checked by the
//! lexer, the structure (families, metrics, histograms, summaries, duplicate
//! series) by the family checker. It reads the input once, line by line, and keeps
//! per series a 128-bit hash, so its time is linear in the input.
//!
//! ```
//! use tradewatch::scrape::{Entry, Format, parse};
//!
//! let input = b"# TYPE orders counter\norders_total{side=\"buy\"} 3 # {trace_id=\"a1\"} 1\n# EOF\n";
//! let mut samples = 0;
//! for entry in parse(input, Format::OpenMetrics) {
//!     if let Entry::Sample(s) = entry.unwrap() {
//!         assert_eq!((s.family, s.name, s.value), ("orders", "orders_total", 3.0));
//!         assert_eq!(s.label("side"), Some("buy"));
//!         samples += 1;
//!     }
//! }
//! assert_eq!(samples, 1);
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;

use super::error::{ErrorKind, ParseError};
use super::families::Checker;
use super::lexer::{self, Line};

pub use crate::exporter::Format;

/// Label pairs in written order: names borrow the input, values too unless they hold an escape.
pub type Labels<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FamilyType {
    /// `counter`: samples `_total` (and `_created` in OpenMetrics).
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`: `_bucket` with `le`, `_sum`, `_count` (and `_created`).
    Histogram,
    /// `gaugehistogram` (OpenMetrics): `_bucket` with `le`, `_gsum`, `_gcount`.
    GaugeHistogram,
    /// `summary`: samples with a `quantile` label, `_sum`, `_count` (and `_created`).
    Summary,
    /// `info` (OpenMetrics): `_info` samples whose value is 1.
    Info,
    /// `stateset` (OpenMetrics): one 0/1 sample per state, labelled with the family name.
    StateSet,
    /// `unknown` in OpenMetrics, `untyped` in text 0.0.4, and a family without a TYPE line.
    Unknown,
}

impl FamilyType {
    /// The name OpenMetrics gives the type.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Histogram => "histogram",
            FamilyType::GaugeHistogram => "gaugehistogram",
            FamilyType::Summary => "summary",
            FamilyType::Info => "info",
            FamilyType::StateSet => "stateset",
            FamilyType::Unknown => "unknown",
        }
    }

    /// The name the type has in `format` (`untyped` rather than `unknown` in text 0.0.4).
    pub fn name_in(self, format: Format) -> &'static str {
        match (self, format) {
            (FamilyType::Unknown, Format::Text) => "untyped",
            _ => self.as_str(),
        }
    }

    pub(crate) fn from_om(s: &str) -> Option<FamilyType> {
        Some(match s {
            "counter" => FamilyType::Counter,
            "gauge" => FamilyType::Gauge,
            "histogram" => FamilyType::Histogram,
            "gaugehistogram" => FamilyType::GaugeHistogram,
            "summary" => FamilyType::Summary,
            "info" => FamilyType::Info,
            "stateset" => FamilyType::StateSet,
            "unknown" => FamilyType::Unknown,
            _ => return None,
        })
    }

    pub(crate) fn from_text(s: &str) -> Option<FamilyType> {
        Some(match s {
            "counter" => FamilyType::Counter,
            "gauge" => FamilyType::Gauge,
            "histogram" => FamilyType::Histogram,
            "summary" => FamilyType::Summary,
            "untyped" => FamilyType::Unknown,
            _ => return None,
        })
    }
}

/// One item of an exposition.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP`: the family and its unescaped help text.
    Help {
        /// The family name.
        family: &'a str,
        /// The help text, unescaped.
        text: Cow<'a, str>,
    },
    /// `# TYPE`.
    Type {
        /// The family name.
        family: &'a str,
        /// Its type.
        kind: FamilyType,
    },
    /// `# UNIT` (OpenMetrics).
    Unit {
        /// The family name.
        family: &'a str,
        /// The unit (possibly empty).
        unit: &'a str,
    },
    /// A sample.
    Sample(Sample<'a>),
}

/// A sample, borrowing the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The family it belongs to: `orders` for `orders_total` in OpenMetrics, `orders_total`
    /// in text 0.0.4, `latency_seconds` for `latency_seconds_bucket` in both.
    pub family: &'a str,
    /// The sample's metric name as written.
    pub name: &'a str,
    /// Its labels in written order (including `le` and `quantile`).
    pub labels: Labels<'a>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds since the epoch (OpenMetrics seconds are converted,
    /// sub-millisecond digits truncated).
    pub timestamp: Option<i64>,
    /// The exemplar (OpenMetrics counters' `_total` and histograms' `_bucket` samples).
    pub exemplar: Option<Exemplar<'a>>,
}

impl Sample<'_> {
    /// The value of the label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// An OpenMetrics exemplar: `# {labels} value [timestamp]` after a sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    /// Its labels.
    pub labels: Labels<'a>,
    /// Its value.
    pub value: f64,
    /// Its timestamp in milliseconds.
    pub timestamp: Option<i64>,
}

/// Parses `input` in `format`.
///
/// The iterator yields every entry in order and an error for each problem. It goes on after
/// an error where it can (a bad line is skipped), so a caller that only accepts a valid
/// exposition stops at the first `Err`, and [`validate`] sees them all.
pub fn parse(input: &[u8], format: Format) -> Parser<'_> {
    Parser::new(input, format)
}

/// Every problem in `input`, in line order; empty when the exposition is valid.
pub fn validate(input: &[u8], format: Format) -> Vec<ParseError> {
    let mut problems: Vec<ParseError> = parse(input, format).filter_map(Result::err).collect();
    problems.sort_by_key(|p| p.line);
    problems
}

/// The parser: an iterator over the entries of one exposition. See [`parse`].
pub struct Parser<'a> {
    input: &'a [u8],
    /// The whole input when it is valid UTF-8, so lines slice it without another check.
    text: Option<&'a str>,
    format: Format,
    pos: usize,
    line: usize,
    finished: bool,
    checker: Checker<'a>,
    pending: VecDeque<Result<Entry<'a>, ParseError>>,
    scratch: Vec<ParseError>,
}

impl<'a> Parser<'a> {
    /// A parser of `input` in `format`.
    pub fn new(input: &'a [u8], format: Format) -> Parser<'a> {
        Parser {
            input,
            text: std::str::from_utf8(input).ok(),
            format,
            pos: 0,
            line: 0,
            finished: false,
            checker: Checker::new(format),
            pending: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next line without its line feed, or `None` at the end of the input.
    fn next_line(&mut self) -> Option<Result<&'a str, ()>> {
        if self.pos >= self.input.len() {
            return None;
        }
        let start = self.pos;
        let end = find_newline(&self.input[start..]).map_or(self.input.len(), |i| start + i);
        self.pos = end + 1;
        self.line += 1;
        Some(match self.text {
            Some(text) => Ok(&text[start..end]),
            None => std::str::from_utf8(&self.input[start..end]).map_err(|_| ()),
        })
    }

    fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError {
            line: self.line,
            kind,
        }
    }

    /// Runs the end-of-input checks.
    fn finish(&mut self) {
        self.finished = true;
        let mut out = std::mem::take(&mut self.scratch);
        match self.format {
            Format::OpenMetrics => {
                // `# EOF` ends the parse early, so reaching here means it was missing.
                self.checker.finish(&mut out);
                out.push(ParseError {
                    line: self.line + 1,
                    kind: ErrorKind::MissingEof,
                });
            }
            Format::Text => {
                if self.input.last().is_some_and(|b| *b != b'\n') {
                    out.push(self.error(ErrorKind::MissingFinalNewline));
                }
                self.checker.finish(&mut out);
            }
        }
        self.pending.extend(out.drain(..).map(Err));
        self.scratch = out;
    }

    /// Handles `# EOF`: the end, which only a final line feed may follow.
    fn eof(&mut self) {
        self.finished = true;
        let mut out = std::mem::take(&mut self.scratch);
        self.checker.finish(&mut out);
        self.pending.extend(out.drain(..).map(Err));
        self.scratch = out;
        if self.pos < self.input.len() {
            self.pending.push_back(Err(ParseError {
                line: self.line + 1,
                kind: ErrorKind::DataAfterEof,
            }));
        }
    }

    /// Parses one line into `self.pending`, or returns its item when nothing is pending.
    fn step(&mut self, line: &'a str) -> Option<Result<Entry<'a>, ParseError>> {
        let parsed = match lexer::line(line, self.format) {
            Ok(parsed) => parsed,
            Err(kind) => return Some(Err(self.error(kind))),
        };
        let n = self.line;
        let mut out = std::mem::take(&mut self.scratch);
        let entry = match parsed {
            Line::Ignored => None,
            Line::Eof => {
                self.eof();
                None
            }
            Line::Help(family, text) => self
                .checker
                .metadata("HELP", family, None, None, n, &mut out)
                .then_some(Entry::Help { family, text }),
            Line::Type(family, kind) => self
                .checker
                .metadata("TYPE", family, Some(kind), None, n, &mut out)
                .then_some(Entry::Type { family, kind }),
            Line::Unit(family, unit) => self
                .checker
                .metadata("UNIT", family, None, Some(unit), n, &mut out)
                .then_some(Entry::Unit { family, unit }),
            Line::Sample(raw) => self.checker.sample(&raw, n, &mut out).map(|family| {
                Entry::Sample(Sample {
                    family,
                    name: raw.name,
                    labels: raw.labels,
                    value: raw.value,
                    timestamp: raw.timestamp,
                    exemplar: raw.exemplar,
                })
            }),
        };
        let item = if out.is_empty() && self.pending.is_empty() {
            entry.map(Ok)
        } else {
            self.pending.extend(out.drain(..).map(Err));
            self.pending.extend(entry.map(Ok));
            None
        };
        self.scratch = out;
        item
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            match self.next_line() {
                None => self.finish(),
                Some(Err(())) => return Some(Err(self.error(ErrorKind::InvalidUtf8))),
                Some(Ok(line)) => {
                    if let Some(item) = self.step(line) {
                        return Some(item);
                    }
                }
            }
        }
    }
}

/// The position of the first line feed in `s`, eight bytes at a time.
fn find_newline(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = s.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ NL;
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_newlines() {
        let s = b"0123456789abcdef\nxyz";
        assert_eq!(find_newline(s), Some(16));
        for i in 0..40 {
            let mut v = vec![b'a'; 40];
            v[i] = b'\n';
            assert_eq!(find_newline(&v), Some(i));
            v[i] = 0x8a;
            assert_eq!(find_newline(&v), None);
        }
    }

    #[test]
    fn the_first_error_is_where_a_strict_caller_stops() {
        let input = b"a 1\nb{a=1} 2\nc 3\n";
        let items: Vec<_> = parse(input, Format::Text).collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[2].is_ok());
        assert_eq!(
            items[1].as_ref().unwrap_err().to_string(),
            "line 2: expected '\"' at start of label value, got \"1} 2\""
        );
    }
}
