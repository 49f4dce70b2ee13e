//! One sample by itself: its role in its family (from its name's suffix and the family's
//! type), and the rules on its labels (`le`, `quantile`, a stateset's state), its value and
//! its exemplar that need nothing but the sample and its family's type.

use super::error::{ErrorKind, ParseError, clip};
use super::lexer::{self, RawSample};
use super::parse::{FamilyType, Format, Labels};

/// What a sample is within its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The only sample of a gauge or unknown metric.
    Value,
    /// A counter's `_total` (text 0.0.4: the counter's sample, whatever its name).
    Total,
    /// `_created`.
    Created,
    /// A histogram's `_bucket`.
    Bucket,
    /// `_count`.
    Count,
    /// `_sum`.
    Sum,
    /// A gaugehistogram's `_gcount`.
    GCount,
    /// A gaugehistogram's `_gsum`.
    GSum,
    /// A summary's quantile sample.
    Quantile,
    /// An info sample.
    Info,
    /// A stateset's state sample.
    State,
}

/// The sample-name suffixes of a type in a format, with the role of each.
pub(crate) fn suffixes(kind: FamilyType, format: Format) -> &'static [(&'static str, Role)] {
    use FamilyType as T;
    use Role as R;
    match (kind, format) {
        (T::Counter, Format::OpenMetrics) => &[("_total", R::Total), ("_created", R::Created)],
        (T::Counter, Format::Text) => &[("", R::Total)],
        (T::Gauge | T::Unknown, _) => &[("", R::Value)],
        (T::StateSet, _) => &[("", R::State)],
        (T::Info, _) => &[("_info", R::Info)],
        (T::Summary, Format::OpenMetrics) => &[
            ("", R::Quantile),
            ("_count", R::Count),
            ("_sum", R::Sum),
            ("_created", R::Created),
        ],
        (T::Summary, Format::Text) => &[("", R::Quantile), ("_count", R::Count), ("_sum", R::Sum)],
        (T::Histogram, Format::OpenMetrics) => &[
            ("_bucket", R::Bucket),
            ("_count", R::Count),
            ("_sum", R::Sum),
            ("_created", R::Created),
        ],
        (T::Histogram, Format::Text) => &[
            ("_bucket", R::Bucket),
            ("_count", R::Count),
            ("_sum", R::Sum),
        ],
        (T::GaugeHistogram, _) => &[
            ("_bucket", R::Bucket),
            ("_gcount", R::GCount),
            ("_gsum", R::GSum),
        ],
    }
}

pub(crate) fn role_of(name: &str, kind: FamilyType, format: Format, sample: &str) -> Option<Role> {
    let suffix = sample.strip_prefix(name)?;
    suffixes(kind, format)
        .iter()
        .find(|(s, _)| *s == suffix)
        .map(|(_, r)| *r)
}

/// The names a family's samples may have, for an error message.
pub(crate) fn expected_names(name: &str, kind: FamilyType, format: Format) -> String {
    let names: Vec<String> = suffixes(kind, format)
        .iter()
        .map(|(s, _)| format!("{name}{s}"))
        .collect();
    names.join(" or ")
}

/// The `le` values parsed lately: every metric of a histogram repeats the same strings, so
/// most are looked up (the next one is usually the one after the last hit) rather than parsed.
#[derive(Default)]
pub(crate) struct Bounds {
    seen: Vec<(Box<str>, f64)>,
    next: usize,
}

impl Bounds {
    const MAX: usize = 64;

    pub(crate) fn parse(&mut self, v: &str) -> Result<f64, lexer::FloatError> {
        if let Some((s, b)) = self.seen.get(self.next)
            && **s == *v
        {
            let b = *b;
            self.next += 1;
            return Ok(b);
        }
        if let Some(i) = self.seen.iter().position(|(s, _)| **s == *v) {
            self.next = i + 1;
            return Ok(self.seen[i].1);
        }
        let b = lexer::parse_float(v)?;
        if self.seen.len() < Self::MAX {
            self.seen.push((v.into(), b));
            self.next = self.seen.len();
        }
        Ok(b)
    }
}

/// The sample being checked, for messages.
pub(crate) struct At<'s, 'a> {
    pub(crate) s: &'s RawSample<'a>,
    pub(crate) line: usize,
}

impl At<'_, '_> {
    pub(crate) fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError {
            line: self.line,
            kind,
        }
    }

    /// The series as written, clipped.
    pub(crate) fn series(&self) -> String {
        let mut s = String::with_capacity(self.s.name.len() + self.s.label_text.len());
        s.push_str(self.s.name);
        s.push_str(self.s.label_text);
        clip(&s, 120)
    }

    fn value(&self) -> String {
        self.s.value_text.to_owned()
    }
}

impl Role {
    pub(crate) fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Whether a metric has at most one series in this role (not buckets, quantiles, states).
    pub(crate) fn single(self) -> bool {
        !matches!(self, Role::Bucket | Role::Quantile | Role::State)
    }
}

/// The rules on labels: `le` on buckets (a number, not NaN; `+Inf` spelt so in OpenMetrics),
/// `quantile` on quantiles (from 0 to 1), the state label on statesets, and `le`/`quantile`
/// nowhere else in histograms and summaries. Returns the bucket's or quantile's bound.
#[allow(clippy::too_many_arguments)]
pub(crate) fn label_rules(
    at: &At<'_, '_>,
    role: Role,
    kind: FamilyType,
    family: &str,
    excluded: Option<&str>,
    format: Format,
    bounds: &mut Bounds,
    out: &mut Vec<ParseError>,
) -> Option<f64> {
    let labels = &at.s.labels;
    let value = excluded.and_then(|n| label(labels, n));
    let mut bound = None;
    match (role, value) {
        (Role::Bucket, None) => out.push(at.error(ErrorKind::MissingLe(at.series()))),
        (Role::Bucket, Some(v)) => match bounds.parse(v) {
            // OpenMetrics spells +Inf only so in `le`.
            Ok(b) if !(b.is_nan() || (om_inf(format, b) && v != "+Inf")) => {
                bound = Some(b);
            }
            _ => out.push(at.error(ErrorKind::InvalidLe {
                sample: at.series(),
                value: clip(v, 40),
            })),
        },
        (Role::Quantile, None) => out.push(at.error(ErrorKind::MissingQuantile(at.series()))),
        (Role::Quantile, Some(v)) => match lexer::parse_float(v) {
            Ok(q) if (0.0..=1.0).contains(&q) => bound = Some(q),
            _ => out.push(at.error(ErrorKind::InvalidQuantile {
                sample: at.series(),
                value: clip(v, 40),
            })),
        },
        (Role::State, None) => out.push(at.error(ErrorKind::StateSetMissingLabel {
            sample: at.series(),
            family: family.to_owned(),
        })),
        _ => {}
    }
    let histogram = matches!(kind, FamilyType::Histogram | FamilyType::GaugeHistogram);
    if histogram && role != Role::Bucket && label(labels, "le").is_some() {
        out.push(at.error(ErrorKind::ReservedLabel {
            sample: at.series(),
            label: "le",
        }));
    }
    if kind == FamilyType::Summary && role != Role::Quantile && label(labels, "quantile").is_some()
    {
        out.push(at.error(ErrorKind::ReservedLabel {
            sample: at.series(),
            label: "quantile",
        }));
    }
    bound
}

/// Whether `b` is `+Inf` in OpenMetrics.
fn om_inf(format: Format, b: f64) -> bool {
    format == Format::OpenMetrics && b == f64::INFINITY
}

/// OpenMetrics's rules on values: counters, buckets, counts and sums are not NaN or negative,
/// counts are integers, info samples are 1, states 0 or 1, quantile values not negative.
pub(crate) fn value_rules(
    at: &At<'_, '_>,
    role: Role,
    kind: FamilyType,
    out: &mut Vec<ParseError>,
) {
    let v = at.s.value;
    let counter_like = match role {
        Role::Total | Role::Bucket | Role::Count | Role::GCount => true,
        Role::Sum => matches!(kind, FamilyType::Histogram | FamilyType::Summary),
        _ => false,
    };
    if counter_like && (v.is_nan() || v < 0.0) {
        out.push(at.error(ErrorKind::NegativeOrNaN {
            sample: at.series(),
            value: at.value(),
        }));
    } else if matches!(role, Role::Bucket | Role::Count | Role::GCount) && v.fract() != 0.0 {
        out.push(at.error(ErrorKind::NotInteger {
            sample: at.series(),
            value: at.value(),
        }));
    }
    let kind = match role {
        Role::GSum if v.is_nan() => ErrorKind::NaNGsum {
            sample: at.series(),
        },
        Role::Info if v != 1.0 => ErrorKind::InfoValue {
            sample: at.series(),
            value: at.value(),
        },
        Role::State if v != 0.0 && v != 1.0 => ErrorKind::StateSetValue {
            sample: at.series(),
            value: at.value(),
        },
        Role::Quantile if v < 0.0 => ErrorKind::NegativeQuantileValue {
            sample: at.series(),
            value: at.value(),
        },
        _ => return,
    };
    out.push(at.error(kind));
}

/// OpenMetrics's rules on exemplars: only on counters' `_total` and histograms' `_bucket`,
/// with at most 128 characters of label names and values.
pub(crate) fn exemplar_rules(
    at: &At<'_, '_>,
    role: Role,
    kind: FamilyType,
    out: &mut Vec<ParseError>,
) {
    let Some(ex) = &at.s.exemplar else { return };
    let allowed = matches!(
        (role, kind),
        (Role::Total, FamilyType::Counter)
            | (
                Role::Bucket,
                FamilyType::Histogram | FamilyType::GaugeHistogram
            )
    );
    if !allowed {
        out.push(at.error(ErrorKind::ExemplarNotAllowed(at.series())));
    }
    let length: usize = ex
        .labels
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    if length > 128 {
        out.push(at.error(ErrorKind::ExemplarTooLong {
            sample: at.series(),
            length,
        }));
    }
}

/// The value of the label `name`.
pub(crate) fn label<'s>(labels: &'s Labels<'_>, name: &str) -> Option<&'s str> {
    labels
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_ref())
}
