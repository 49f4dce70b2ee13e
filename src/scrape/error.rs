//! What can be wrong with an exposition: every problem the parser reports, with its line.
//!
//! The wording follows Prometheus's parsers where they have a message for the case
//! (`expfmt`'s "second HELP line for metric name", textparse's "data does not end with # EOF",
//! "unit … not a suffix of metric …"); the checks they leave out read the same way.

use std::fmt;

/// A problem at a line of the exposition (1-based), printed as `line N: message`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// The line the problem is on (for a metric or histogram that is wrong as a whole, its
    /// last line).
    pub line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// The bytes a parser found where it expected something else, as it prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// The line ended.
    EndOfLine,
    /// This text (clipped to a few dozen characters).
    Text(String),
}

impl Got {
    /// What is at the start of `rest`.
    pub(crate) fn at(rest: &str) -> Got {
        if rest.is_empty() {
            Got::EndOfLine
        } else {
            Got::Text(clip(rest, 24))
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::EndOfLine => f.write_str("end of line"),
            Got::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// `s`, cut to at most `max` characters with an ellipsis, so a message about a megabyte-long
/// line stays short.
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// What is wrong at a line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    // ----- Lines and tokens -----
    /// The line is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// An empty line, which OpenMetrics does not allow.
    #[error("empty line")]
    EmptyLine,
    /// Something else than what the grammar allows at this point.
    #[error("expected {expected}, got {got}")]
    Expected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What is there instead.
        got: Got,
    },
    /// A metric name that breaks `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// A label name that breaks `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// A label name starting with `__`, which is reserved.
    #[error("label name {0:?} is reserved")]
    ReservedLabelName(String),
    /// The same label name twice in one label set.
    #[error("duplicate label name {label:?} for metric {metric:?}")]
    DuplicateLabelName {
        /// The sample's metric name.
        metric: String,
        /// The repeated label name.
        label: String,
    },
    /// A backslash sequence the format does not define.
    #[error("invalid escape sequence '\\{0}'")]
    InvalidEscape(char),
    /// A double quote inside OpenMetrics HELP text that is not escaped as `\"`.
    #[error("unescaped double quote in HELP text")]
    UnescapedQuote,
    /// A label value whose closing quote is missing.
    #[error("label value {0:?} is not terminated")]
    UnterminatedLabelValue(String),
    /// A sample value that is not a number.
    #[error("expected float as value, got {0:?}")]
    InvalidValue(String),
    /// A number too large for a 64-bit float.
    #[error("value {0:?} is out of the range of a 64-bit float")]
    ValueOutOfRange(String),
    /// A text 0.0.4 timestamp that is not an integer number of milliseconds.
    #[error("expected integer as timestamp, got {0:?}")]
    InvalidIntegerTimestamp(String),
    /// An OpenMetrics timestamp that is not a real number of seconds.
    #[error("expected a number of seconds as timestamp, got {0:?}")]
    InvalidTimestamp(String),
    /// A timestamp beyond what 64-bit milliseconds hold.
    #[error("timestamp {0:?} is out of range")]
    TimestampOutOfRange(String),
    /// Text after a text 0.0.4 sample's timestamp.
    #[error("spurious string after timestamp: {0:?}")]
    SpuriousText(String),
    /// An exemplar in text 0.0.4, which has none.
    #[error("exemplars are only valid in OpenMetrics")]
    ExemplarInText,
    /// A line starting with `#` that OpenMetrics does not define.
    #[error("invalid comment {0:?}: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF")]
    InvalidComment(String),
    /// A TYPE that the format does not define.
    #[error("unknown metric type {0:?}")]
    UnknownType(String),
    /// A UNIT value with characters a metric name cannot have.
    #[error("invalid unit {0:?}")]
    InvalidUnit(String),

    // ----- The end of the exposition -----
    /// An OpenMetrics exposition that is not terminated by `# EOF`.
    #[error("data does not end with # EOF")]
    MissingEof,
    /// Anything after `# EOF` other than one line feed.
    #[error("unexpected data after # EOF")]
    DataAfterEof,
    /// A text 0.0.4 exposition whose last line has no line feed.
    #[error("unexpected end of input stream: the last line must end with a line feed")]
    MissingFinalNewline,

    // ----- Metric families and their metadata -----
    /// A second HELP, TYPE or UNIT line for one family.
    #[error("second {keyword} line for metric name {name:?}")]
    SecondMetadata {
        /// `HELP`, `TYPE` or `UNIT`.
        keyword: &'static str,
        /// The family name.
        name: String,
    },
    /// Metadata for a family after some of its samples.
    #[error("{keyword} line for metric name {name:?} after its samples")]
    MetadataAfterSamples {
        /// `HELP`, `TYPE` or `UNIT`.
        keyword: &'static str,
        /// The family name.
        name: String,
    },
    /// A UNIT that is not the family name's suffix (after an underscore).
    #[error("unit {unit:?} not a suffix of metric {name:?}")]
    UnitNotSuffix {
        /// The unit.
        unit: String,
        /// The family name.
        name: String,
    },
    /// A UNIT on an info or stateset family, which must have none.
    #[error("{kind} metric {name:?} must not have a unit")]
    UnitNotAllowed {
        /// `info` or `stateset`.
        kind: &'static str,
        /// The family name.
        name: String,
    },
    /// An OpenMetrics family that appears again after another family began.
    #[error(
        "metric family {name:?} is interleaved with other families (it began at line {first_line})"
    )]
    FamilyInterleaved {
        /// The family name.
        name: String,
        /// Where it first appeared.
        first_line: usize,
    },
    /// Two families whose sample names could collide (a gauge `foo_created` beside a counter
    /// `foo`, a gauge `foo` beside a gauge `foo`).
    #[error(
        "metric name {sample:?} of {kind} {name:?} clashes with {other_kind} {other:?} of line {other_line}"
    )]
    NameClash {
        /// The sample name both families can produce.
        sample: String,
        /// The family that came second.
        name: String,
        /// Its type.
        kind: &'static str,
        /// The family that came first.
        other: String,
        /// Its type.
        other_kind: &'static str,
        /// Where it began.
        other_line: usize,
    },
    /// A sample named like its family but without a suffix its type allows.
    #[error("sample name {sample:?} is not valid for {kind} {family:?}: expected {expected}")]
    WrongSuffix {
        /// The sample name.
        sample: String,
        /// The family name.
        family: String,
        /// The family's type.
        kind: &'static str,
        /// The names it allows.
        expected: String,
    },

    // ----- Series and metrics -----
    /// The same series (name and label set) twice.
    #[error("duplicate series {series} (first seen at line {first_line})")]
    DuplicateSeries {
        /// The series as written.
        series: String,
        /// Where it first appeared.
        first_line: usize,
    },
    /// An OpenMetrics metric whose samples are not contiguous.
    #[error(
        "samples of metric {metric} are interleaved with other metrics (it began at line {first_line})"
    )]
    MetricInterleaved {
        /// The metric: family name and label set.
        metric: String,
        /// Where it began.
        first_line: usize,
    },
    /// Some samples of a metric with a timestamp, some without.
    #[error("mix of samples with and without timestamps in metric {0}")]
    TimestampPresenceMixed(String),
    /// A metric's timestamps decrease.
    #[error("timestamps went backwards in metric {0}")]
    TimestampWentBackwards(String),

    // ----- Values -----
    /// A counter-like value (total, bucket, count, sum) that is NaN or negative.
    #[error("{sample} must not be NaN or negative, got {value}")]
    NegativeOrNaN {
        /// The sample name.
        sample: String,
        /// The value as written.
        value: String,
    },
    /// A gaugehistogram `_gsum` that is NaN.
    #[error("{sample} must not be NaN")]
    NaNGsum {
        /// The sample name.
        sample: String,
    },
    /// A bucket or count value with a fraction.
    #[error("{sample} must be an integer, got {value}")]
    NotInteger {
        /// The sample name.
        sample: String,
        /// The value as written.
        value: String,
    },
    /// An info sample whose value is not 1.
    #[error("info sample {sample} must have value 1, got {value}")]
    InfoValue {
        /// The sample name.
        sample: String,
        /// The value as written.
        value: String,
    },
    /// A stateset sample whose value is neither 0 nor 1.
    #[error("stateset sample {sample} must have value 0 or 1, got {value}")]
    StateSetValue {
        /// The sample name.
        sample: String,
        /// The value as written.
        value: String,
    },
    /// A stateset sample without the label that names its state.
    #[error("stateset sample {sample} has no {family:?} label")]
    StateSetMissingLabel {
        /// The sample name.
        sample: String,
        /// The family name, which is the state label's name.
        family: String,
    },
    /// A negative quantile value in a summary.
    #[error("quantile value of {sample} must not be negative, got {value}")]
    NegativeQuantileValue {
        /// The sample name.
        sample: String,
        /// The value as written.
        value: String,
    },

    // ----- Histograms and summaries -----
    /// A histogram bucket without an `le` label.
    #[error("histogram bucket {0} has no \"le\" label")]
    MissingLe(String),
    /// An `le` label value that is not a number (or is NaN, or `+Inf` written another way in
    /// OpenMetrics).
    #[error("invalid \"le\" label value {value:?} in {sample}")]
    InvalidLe {
        /// The sample name.
        sample: String,
        /// The label value.
        value: String,
    },
    /// A summary quantile sample without a `quantile` label.
    #[error("summary sample {0} has no \"quantile\" label")]
    MissingQuantile(String),
    /// A `quantile` label value that is not a number from 0 to 1.
    #[error("invalid \"quantile\" label value {value:?} in {sample}: must be a number from 0 to 1")]
    InvalidQuantile {
        /// The sample name.
        sample: String,
        /// The label value.
        value: String,
    },
    /// `le` or `quantile` on a sample whose type reserves that label for others.
    #[error("{sample} must not have a {label:?} label")]
    ReservedLabel {
        /// The sample name.
        sample: String,
        /// `le` or `quantile`.
        label: &'static str,
    },
    /// Buckets whose `le` values do not increase.
    #[error("buckets of {metric} are not in increasing \"le\" order: {le} after {previous}")]
    BucketsOutOfOrder {
        /// The histogram metric.
        metric: String,
        /// This bucket's bound.
        le: String,
        /// The bound before it.
        previous: String,
    },
    /// Summary quantiles out of order (text 0.0.4 requires increasing order).
    #[error("quantiles of {metric} are not in increasing order: {quantile} after {previous}")]
    QuantilesOutOfOrder {
        /// The summary metric.
        metric: String,
        /// This quantile.
        quantile: String,
        /// The quantile before it.
        previous: String,
    },
    /// A bucket count smaller than the one before it.
    #[error(
        "bucket counts of {metric} are not cumulative: le=\"{le}\" has {count}, less than {previous}"
    )]
    BucketCountDecreases {
        /// The histogram metric.
        metric: String,
        /// The bucket's bound.
        le: String,
        /// Its count.
        count: String,
        /// The count of the bucket before it.
        previous: String,
    },
    /// A histogram without a `+Inf` bucket.
    #[error("histogram {0} has no +Inf bucket")]
    MissingInfBucket(String),
    /// A `_count` (or `_gcount`) that differs from the `+Inf` bucket.
    #[error("{suffix} of {metric} is {count}, but its +Inf bucket is {inf}")]
    CountMismatch {
        /// The histogram metric.
        metric: String,
        /// `_count` or `_gcount`.
        suffix: &'static str,
        /// The count.
        count: String,
        /// The +Inf bucket's count.
        inf: String,
    },
    /// A `_sum` without `_count`, or the reverse (OpenMetrics: both or neither).
    #[error("{metric} has {present} but no {missing}")]
    SumCountPair {
        /// The histogram metric.
        metric: String,
        /// The suffix that is there.
        present: &'static str,
        /// The suffix that is missing.
        missing: &'static str,
    },
    /// A histogram with negative buckets and a `_sum`.
    #[error("{0} has buckets below zero, so it must not have a _sum")]
    SumWithNegativeBuckets(String),
    /// A gaugehistogram with a negative `_gsum` but no negative bucket.
    #[error("{0} has a negative _gsum but no bucket below zero")]
    NegativeGsum(String),

    // ----- Exemplars -----
    /// An exemplar on a sample that may not carry one.
    #[error("exemplar on {0}: only counter _total and histogram _bucket samples may have one")]
    ExemplarNotAllowed(String),
    /// An exemplar label set longer than 128 characters.
    #[error("exemplar label set of {sample} is {length} characters long, over the limit of 128")]
    ExemplarTooLong {
        /// The sample name.
        sample: String,
        /// The combined length of its label names and values.
        length: usize,
    },
    /// An exemplar whose value lies outside its bucket.
    #[error("exemplar value {value} lies outside its bucket {sample} (le=\"{le}\")")]
    ExemplarOutsideBucket {
        /// The bucket sample as written.
        sample: String,
        /// The exemplar's value.
        value: String,
        /// The bucket's bound.
        le: String,
    },
}
