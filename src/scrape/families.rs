//! The structure of an exposition above single lines: which family a sample belongs to,
//! metadata rules, name clashes between families, contiguous families and metrics
//! (OpenMetrics), duplicate series, timestamps, and the rules of each type's values —
//! counters, histogram buckets, summaries' quantiles, info, stateset, exemplars.
//!
//! A *metric* here is what OpenMetrics calls one: the samples of a family that share a label
//! set once `le` (histogram buckets), `quantile` (summaries) or the state label (statesets) is
//! set aside. Metrics and series are known by 128-bit keys (see `identity`); the rules that
//! concern one sample alone are in `sample_rules`.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

use super::error::{ErrorKind, ParseError, clip};
use super::identity::{NoHash, identity};
use super::lexer::{self, RawSample};
use super::parse::{FamilyType, Format};
use super::sample_rules::{
    At, Bounds, Role, exemplar_rules, expected_names, label_rules, role_of, suffixes, value_rules,
};
use crate::model::names::escape_label_value;
use crate::model::value::format_float;

/// A metric family: its metadata so far, and the metrics it has had.
struct Family<'a> {
    name: &'a str,
    kind: FamilyType,
    first_line: usize,
    help: bool,
    typed: bool,
    unit: Option<&'a str>,
    samples: bool,
    sealed: bool,
    /// A second OpenMetrics family of a name already used (reported; not claimed again).
    repeated: bool,
    /// Metrics seen, by key.
    metrics: HashMap<u128, SeenMetric, NoHash>,
    /// Text 0.0.4: histogram and summary metrics, open until the end (their samples may be
    /// interleaved with other metrics' there).
    parked: HashMap<u128, Metric<'a>, NoHash>,
}

/// A metric seen before: where it began and the roles of its samples (as of when it was
/// last left, for metrics with more than one).
#[derive(Clone, Copy)]
struct SeenMetric {
    first_line: usize,
    roles: u16,
}

/// The metric whose samples are being read.
struct Metric<'a> {
    family: usize,
    key: u128,
    first_line: usize,
    /// The first sample's label block as written, and the label its key leaves out.
    label_text: &'a str,
    excluded: Option<&'a str>,
    /// The roles of its samples so far.
    roles: u16,
    /// Its series so far.
    series: SeriesSet,
    /// Whether its samples have timestamps (from the first), and the last timestamp.
    timestamped: Option<bool>,
    last_ts: Option<i64>,
    point: Point,
}

impl<'a> Metric<'a> {
    fn new(
        family: usize,
        key: u128,
        line: usize,
        label_text: &'a str,
        excluded: Option<&'a str>,
    ) -> Self {
        Metric {
            family,
            key,
            first_line: line,
            label_text,
            excluded,
            roles: 0,
            series: SeriesSet::default(),
            timestamped: None,
            last_ts: None,
            point: Point::default(),
        }
    }
}

/// The checks over one MetricPoint of a histogram or summary (OpenMetrics starts a new point
/// when the timestamp changes).
#[derive(Default)]
struct Point {
    ts: Option<i64>,
    last_line: usize,
    samples: bool,
    last_le: Option<f64>,
    last_bucket: f64,
    inf: Option<f64>,
    count: Option<f64>,
    sum: bool,
    gsum: bool,
    negative_bucket: bool,
    negative_gsum: bool,
    last_quantile: Option<f64>,
}

/// Where a series was first seen and its last timestamp.
#[derive(Clone, Copy)]
struct Seen {
    line: usize,
    ts: Option<i64>,
}

/// The series of one metric: usually one (kept inline) or a dozen (a histogram's buckets); a
/// hash map past a few dozen, so a metric with a million buckets stays linear.
#[derive(Default)]
struct SeriesSet {
    first: Option<(u128, Seen)>,
    more: Vec<(u128, Seen)>,
    many: Option<HashMap<u128, Seen, NoHash>>,
}

impl SeriesSet {
    const SMALL: usize = 32;

    fn get_mut(&mut self, key: u128) -> Option<&mut Seen> {
        if let Some(many) = &mut self.many {
            return many.get_mut(&key);
        }
        match &mut self.first {
            Some((k, seen)) if *k == key => return Some(seen),
            None => return None,
            _ => {}
        }
        self.more
            .iter_mut()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| s)
    }

    fn insert(&mut self, key: u128, seen: Seen) {
        if let Some(many) = &mut self.many {
            many.insert(key, seen);
        } else if self.first.is_none() {
            self.first = Some((key, seen));
        } else if self.more.len() < Self::SMALL {
            if self.more.is_empty() {
                self.more.reserve_exact(15);
            }
            self.more.push((key, seen));
        } else {
            let mut many: HashMap<u128, Seen, NoHash> = self.more.drain(..).collect();
            many.extend(self.first.take());
            many.insert(key, seen);
            self.many = Some(many);
        }
    }
}

/// Checks the structure of one exposition, line after line.
pub(crate) struct Checker<'a> {
    format: Format,
    families: Vec<Family<'a>>,
    by_name: HashMap<&'a str, usize>,
    /// OpenMetrics: the family being read. Text 0.0.4: the family of the last line.
    current: Option<usize>,
    metric: Option<Metric<'a>>,
    bounds: Bounds,
    /// Sample names claimed by sealed families, for clashes.
    claims: HashMap<String, usize>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(format: Format) -> Checker<'a> {
        Checker {
            format,
            families: Vec::new(),
            by_name: HashMap::new(),
            current: None,
            metric: None,
            bounds: Bounds::default(),
            claims: HashMap::new(),
        }
    }

    fn om(&self) -> bool {
        self.format == Format::OpenMetrics
    }

    fn new_family(&mut self, name: &'a str, line: usize, repeated: bool) -> usize {
        let i = self.families.len();
        self.families.push(Family {
            name,
            kind: FamilyType::Unknown,
            first_line: line,
            help: false,
            typed: false,
            unit: None,
            samples: false,
            sealed: false,
            repeated,
            metrics: HashMap::default(),
            parked: HashMap::default(),
        });
        if !repeated {
            self.by_name.insert(name, i);
        }
        i
    }

    /// OpenMetrics: ends the current family and begins `name`.
    fn open_om_family(&mut self, name: &'a str, line: usize, out: &mut Vec<ParseError>) -> usize {
        self.close_om_family(out);
        let repeated = match self.by_name.get(name) {
            Some(&i) => {
                out.push(ParseError {
                    line,
                    kind: ErrorKind::FamilyInterleaved {
                        name: name.to_owned(),
                        first_line: self.families[i].first_line,
                    },
                });
                true
            }
            None => false,
        };
        let i = self.new_family(name, line, repeated);
        self.current = Some(i);
        i
    }

    fn close_om_family(&mut self, out: &mut Vec<ParseError>) {
        self.close_metric(out);
        if let Some(i) = self.current.take() {
            let line = self.families[i].first_line;
            self.seal(i, line, out);
            // A closed family cannot come back, so its metric keys are no longer needed.
            self.families[i].metrics = HashMap::default();
        }
    }

    /// Text 0.0.4: the family `name`, created if new.
    fn text_family(&mut self, name: &'a str, line: usize) -> usize {
        let i = match self.by_name.get(name) {
            Some(&i) => i,
            None => self.new_family(name, line, false),
        };
        self.current = Some(i);
        i
    }

    /// Fixes a family's type: checks its unit and claims its sample names.
    fn seal(&mut self, i: usize, line: usize, out: &mut Vec<ParseError>) {
        let format = self.format;
        let f = &mut self.families[i];
        if f.sealed {
            return;
        }
        f.sealed = true;
        if f.repeated {
            return;
        }
        let (name, kind) = (f.name, f.kind);
        if matches!(kind, FamilyType::Info | FamilyType::StateSet)
            && f.unit.is_some_and(|u| !u.is_empty())
        {
            out.push(ParseError {
                line,
                kind: ErrorKind::UnitNotAllowed {
                    kind: kind.as_str(),
                    name: name.to_owned(),
                },
            });
        }
        let mut claimed: Vec<&str> = suffixes(kind, format).iter().map(|(s, _)| *s).collect();
        if !claimed.contains(&"") {
            claimed.push("");
        }
        for suffix in claimed {
            let sample = format!("{name}{suffix}");
            match self.claims.entry(sample) {
                MapEntry::Occupied(e) => {
                    let other = &self.families[*e.get()];
                    out.push(ParseError {
                        line,
                        kind: ErrorKind::NameClash {
                            sample: e.key().clone(),
                            name: name.to_owned(),
                            kind: kind.name_in(format),
                            other: other.name.to_owned(),
                            other_kind: other.kind.name_in(format),
                            other_line: other.first_line,
                        },
                    });
                }
                MapEntry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
    }

    /// A HELP, TYPE or UNIT line; false when it is invalid.
    pub(crate) fn metadata(
        &mut self,
        keyword: &'static str,
        name: &'a str,
        kind: Option<FamilyType>,
        unit: Option<&'a str>,
        line: usize,
        out: &mut Vec<ParseError>,
    ) -> bool {
        let i = match self.format {
            Format::OpenMetrics => match self.current {
                Some(i) if self.families[i].name == name => i,
                _ => self.open_om_family(name, line, out),
            },
            Format::Text => self.text_family(name, line),
        };
        let f = &mut self.families[i];
        let error = |kind| ParseError { line, kind };
        if f.samples {
            out.push(error(ErrorKind::MetadataAfterSamples {
                keyword,
                name: name.to_owned(),
            }));
            return false;
        }
        let seen = match keyword {
            "HELP" => std::mem::replace(&mut f.help, true),
            "TYPE" => std::mem::replace(&mut f.typed, true),
            _ => f.unit.is_some(),
        };
        if seen {
            out.push(error(ErrorKind::SecondMetadata {
                keyword,
                name: name.to_owned(),
            }));
            return false;
        }
        if let Some(kind) = kind {
            f.kind = kind;
        }
        if let Some(unit) = unit {
            f.unit = Some(unit);
            let suffix_ok = unit.is_empty()
                || name
                    .strip_suffix(unit)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('_'));
            if !suffix_ok {
                out.push(error(ErrorKind::UnitNotSuffix {
                    unit: unit.to_owned(),
                    name: name.to_owned(),
                }));
                return false;
            }
        }
        true
    }

    /// Which family `s` belongs to, and as what; `None` (with an error) when its name does not
    /// fit the family it must belong to.
    fn resolve(
        &mut self,
        s: &RawSample<'a>,
        line: usize,
        out: &mut Vec<ParseError>,
    ) -> Option<(usize, Role)> {
        let format = self.format;
        if let Some(i) = self.current {
            let f = &self.families[i];
            if let Some(role) = role_of(f.name, f.kind, format, s.name) {
                return Some((i, role));
            }
            if self.om() && s.name == f.name {
                out.push(self.wrong_suffix(i, s.name, line));
                return None;
            }
        }
        if self.om() {
            // A sample of a family that ended: report that family as interleaved, and read
            // the sample as its own.
            if let Some(&owner) = self.claims.get(s.name)
                && Some(owner) != self.current
            {
                let (name, kind) = (self.families[owner].name, self.families[owner].kind);
                let i = self.open_om_family(name, line, out);
                self.families[i].kind = kind;
                self.families[i].typed = true;
                let role = role_of(name, kind, format, s.name).unwrap_or(Role::Value);
                return Some((i, role));
            }
            let i = self.open_om_family(s.name, line, out);
            return Some((i, Role::Value));
        }
        // Text 0.0.4: the family of that exact name, or a histogram or summary whose sample
        // this is, or a new untyped family.
        if let Some(&i) = self.by_name.get(s.name) {
            let f = &self.families[i];
            self.current = Some(i);
            return match role_of(f.name, f.kind, format, s.name) {
                Some(role) => Some((i, role)),
                None => {
                    out.push(self.wrong_suffix(i, s.name, line));
                    None
                }
            };
        }
        for suffix in ["_bucket", "_count", "_sum"] {
            let Some(base) = s.name.strip_suffix(suffix) else {
                continue;
            };
            if let Some(&i) = self.by_name.get(base) {
                let f = &self.families[i];
                if let Some(role) = role_of(f.name, f.kind, format, s.name) {
                    self.current = Some(i);
                    return Some((i, role));
                }
            }
        }
        Some((self.text_family(s.name, line), Role::Value))
    }

    fn wrong_suffix(&self, i: usize, sample: &str, line: usize) -> ParseError {
        let f = &self.families[i];
        ParseError {
            line,
            kind: ErrorKind::WrongSuffix {
                sample: sample.to_owned(),
                family: f.name.to_owned(),
                kind: f.kind.name_in(self.format),
                expected: expected_names(f.name, f.kind, self.format),
            },
        }
    }

    /// A sample line: checks it, and returns its family's name when it is valid.
    pub(crate) fn sample(
        &mut self,
        s: &RawSample<'a>,
        line: usize,
        out: &mut Vec<ParseError>,
    ) -> Option<&'a str> {
        let own = out.len();
        let (fam, role) = self.resolve(s, line, out)?;
        if !self.families[fam].samples {
            self.families[fam].samples = true;
            self.seal(fam, line, out);
        }
        let (family, kind) = (self.families[fam].name, self.families[fam].kind);
        let at = At { s, line };
        let excluded = match role {
            Role::Bucket => Some("le"),
            Role::Quantile => Some("quantile"),
            Role::State => Some(family),
            _ => None,
        };
        let before = out.len();
        let bound = label_rules(
            &at,
            role,
            kind,
            family,
            excluded,
            self.format,
            &mut self.bounds,
            out,
        );
        let labels_ok = out.len() == before;
        if self.om() {
            value_rules(&at, role, kind, out);
            exemplar_rules(&at, role, kind, out);
        }
        if !labels_ok {
            // Which metric the sample belongs to is unclear: leave the structure alone
            // rather than report what follows from the mistake.
            return None;
        }
        let (key, series_key) = identity(s, excluded);
        let reported = self.enter_metric(fam, key, role, &at, excluded, out);
        if !self.track_series(series_key, role, reported, &at, out) {
            self.accumulate(role, bound, &at, out);
        }
        let own_errors = out[own..].iter().any(|e| e.line == line);
        (!own_errors).then_some(family)
    }

    /// Makes the metric `key` of family `fam` the current one. OpenMetrics reports a metric
    /// that comes back after another; text 0.0.4 reports it as a duplicate unless it is a
    /// histogram or summary (whose samples may interleave there). Returns whether it reported.
    fn enter_metric(
        &mut self,
        fam: usize,
        key: u128,
        role: Role,
        at: &At<'_, 'a>,
        excluded: Option<&'a str>,
        out: &mut Vec<ParseError>,
    ) -> bool {
        if matches!(&self.metric, Some(m) if m.family == fam && m.key == key) {
            return false;
        }
        self.close_metric(out);
        let format = self.format;
        let f = &mut self.families[fam];
        let mut reported = false;
        let mut metric = None;
        match f.metrics.entry(key) {
            MapEntry::Occupied(e) => {
                let seen = *e.get();
                metric = f.parked.remove(&key);
                if metric.is_none() {
                    reported = true;
                    // With a timestamp it may be a later point rather than the same sample.
                    let duplicate = format == Format::Text
                        || (role.single()
                            && seen.roles & role.bit() != 0
                            && at.s.timestamp.is_none());
                    out.push(at.error(if duplicate {
                        ErrorKind::DuplicateSeries {
                            series: at.series(),
                            first_line: seen.first_line,
                        }
                    } else {
                        ErrorKind::MetricInterleaved {
                            metric: metric_name(f.name, at.s.label_text, excluded, format),
                            first_line: seen.first_line,
                        }
                    }));
                }
            }
            MapEntry::Vacant(e) => {
                e.insert(SeenMetric {
                    first_line: at.line,
                    roles: role.bit(),
                });
            }
        }
        self.metric = Some(
            metric.unwrap_or_else(|| Metric::new(fam, key, at.line, at.s.label_text, excluded)),
        );
        reported
    }

    /// Records the sample's series in the current metric: a duplicate is an error, except (in
    /// OpenMetrics) at a later timestamp, which starts a new point. Returns whether it was a
    /// duplicate.
    fn track_series(
        &mut self,
        series_key: u128,
        role: Role,
        mut reported: bool,
        at: &At<'_, 'a>,
        out: &mut Vec<ParseError>,
    ) -> bool {
        let om = self.om();
        let format = self.format;
        let m = self.metric.as_mut().expect("a metric is open");
        m.roles |= role.bit();
        let ts = at.s.timestamp;
        let mut finished = None;
        if om {
            let family = self.families[m.family].name;
            let metric = || metric_name(family, m.label_text, m.excluded, format);
            match m.timestamped {
                None => m.timestamped = Some(ts.is_some()),
                Some(t) if t != ts.is_some() => {
                    reported = true;
                    out.push(at.error(ErrorKind::TimestampPresenceMixed(metric())));
                }
                _ => {}
            }
            if let (Some(last), Some(ts)) = (m.last_ts, ts)
                && ts < last
            {
                reported = true;
                out.push(at.error(ErrorKind::TimestampWentBackwards(metric())));
            }
            if m.point.samples && ts != m.point.ts {
                finished = Some(std::mem::take(&mut m.point));
            }
            m.last_ts = ts;
            m.point.ts = ts;
        }
        let mut duplicate = false;
        match m.series.get_mut(series_key) {
            Some(seen) => {
                if om && matches!((seen.ts, ts), (Some(a), Some(b)) if b > a) {
                    seen.ts = ts;
                } else {
                    duplicate = true;
                    if !reported {
                        out.push(at.error(ErrorKind::DuplicateSeries {
                            series: at.series(),
                            first_line: seen.line,
                        }));
                    }
                }
            }
            None => m.series.insert(series_key, Seen { line: at.line, ts }),
        }
        if let Some(point) = finished {
            let (fam, label_text, excluded) = (m.family, m.label_text, m.excluded);
            self.point_rules(fam, label_text, excluded, &point, out);
        }
        duplicate
    }

    /// Adds the sample to the current point: bucket order and cumulative counts, the +Inf
    /// bucket, `_count`, `_sum`, exemplars within their bucket; quantile order in text 0.0.4.
    fn accumulate(
        &mut self,
        role: Role,
        bound: Option<f64>,
        at: &At<'_, 'a>,
        out: &mut Vec<ParseError>,
    ) {
        let format = self.format;
        let m = self.metric.as_mut().expect("a metric is open");
        let family = self.families[m.family].name;
        let metric = || metric_name(family, m.label_text, m.excluded, format);
        let p = &mut m.point;
        p.samples = true;
        p.last_line = at.line;
        let value = at.s.value;
        match role {
            Role::Bucket => {
                let Some(le) = bound else { return };
                if let Some(prev) = p.last_le
                    && le <= prev
                {
                    out.push(at.error(ErrorKind::BucketsOutOfOrder {
                        metric: metric(),
                        le: format_float(le),
                        previous: format_float(prev),
                    }));
                    return;
                }
                if p.last_le.is_some() && value < p.last_bucket {
                    out.push(at.error(ErrorKind::BucketCountDecreases {
                        metric: metric(),
                        le: format_float(le),
                        count: at.s.value_text.to_owned(),
                        previous: show(p.last_bucket),
                    }));
                }
                if let Some(ex) = &at.s.exemplar
                    && (ex.value > le || p.last_le.is_some_and(|prev| ex.value <= prev))
                {
                    out.push(at.error(ErrorKind::ExemplarOutsideBucket {
                        sample: at.series(),
                        value: format_float(ex.value),
                        le: format_float(le),
                    }));
                }
                p.last_le = Some(le);
                p.last_bucket = value;
                p.negative_bucket |= le < 0.0;
                if le == f64::INFINITY {
                    p.inf = Some(value);
                }
            }
            Role::Count | Role::GCount => p.count = Some(value),
            Role::Sum => p.sum = true,
            Role::GSum => {
                p.gsum = true;
                p.negative_gsum |= value < 0.0;
            }
            Role::Quantile if format == Format::Text => {
                let Some(q) = bound else { return };
                match p.last_quantile {
                    Some(prev) if q <= prev => {
                        out.push(at.error(ErrorKind::QuantilesOutOfOrder {
                            metric: metric(),
                            quantile: format_float(q),
                            previous: format_float(prev),
                        }));
                    }
                    _ => p.last_quantile = Some(q),
                }
            }
            _ => {}
        }
    }

    /// Ends the metric being read: OpenMetrics checks its last point; text 0.0.4 keeps a
    /// histogram or summary open until the end.
    fn close_metric(&mut self, out: &mut Vec<ParseError>) {
        let Some(m) = self.metric.take() else {
            return;
        };
        if m.roles.count_ones() > 1
            && let Some(seen) = self.families[m.family].metrics.get_mut(&m.key)
        {
            seen.roles = m.roles;
        }
        if self.format == Format::Text
            && matches!(
                self.families[m.family].kind,
                FamilyType::Histogram | FamilyType::Summary
            )
        {
            self.families[m.family].parked.insert(m.key, m);
            return;
        }
        self.point_rules(m.family, m.label_text, m.excluded, &m.point, out);
    }

    /// The rules over a whole histogram point: the +Inf bucket, `_count`, `_sum`.
    fn point_rules(
        &self,
        fam: usize,
        label_text: &str,
        excluded: Option<&str>,
        p: &Point,
        out: &mut Vec<ParseError>,
    ) {
        let f = &self.families[fam];
        let gauge = match f.kind {
            FamilyType::Histogram => false,
            FamilyType::GaugeHistogram => true,
            _ => return,
        };
        if !p.samples {
            return;
        }
        let om = self.om();
        let metric = || metric_name(f.name, label_text, excluded, self.format);
        let mut error = |kind| {
            out.push(ParseError {
                line: p.last_line,
                kind,
            })
        };
        let (count, sum) = if gauge {
            ("_gcount", "_gsum")
        } else {
            ("_count", "_sum")
        };
        match (p.inf, p.count) {
            (None, _) => error(ErrorKind::MissingInfBucket(metric())),
            (Some(inf), Some(c)) if inf != c && !(inf.is_nan() && c.is_nan()) => {
                error(ErrorKind::CountMismatch {
                    metric: metric(),
                    suffix: count,
                    count: show(c),
                    inf: show(inf),
                })
            }
            _ => {}
        }
        if !om {
            return;
        }
        let has_sum = p.sum || p.gsum;
        match (has_sum, p.count.is_some()) {
            (true, false) => error(ErrorKind::SumCountPair {
                metric: metric(),
                present: sum,
                missing: count,
            }),
            (false, true) => error(ErrorKind::SumCountPair {
                metric: metric(),
                present: count,
                missing: sum,
            }),
            _ => {}
        }
        if !gauge && p.negative_bucket && p.sum {
            error(ErrorKind::SumWithNegativeBuckets(metric()));
        }
        if gauge && p.negative_gsum && !p.negative_bucket {
            error(ErrorKind::NegativeGsum(metric()));
        }
    }

    /// The end of the input.
    pub(crate) fn finish(&mut self, out: &mut Vec<ParseError>) {
        match self.format {
            Format::OpenMetrics => self.close_om_family(out),
            Format::Text => {
                self.close_metric(out);
                for i in 0..self.families.len() {
                    let line = self.families[i].first_line;
                    self.seal(i, line, out);
                    let mut parked: Vec<Metric<'a>> =
                        self.families[i].parked.drain().map(|(_, m)| m).collect();
                    parked.sort_by_key(|m| m.first_line);
                    for m in parked {
                        self.point_rules(i, m.label_text, m.excluded, &m.point, out);
                    }
                }
            }
        }
    }
}

/// A count as people write it: `3` rather than `3.0`.
fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format_float(v)
    }
}

/// A metric as messages show it: the family name and its labels without the excluded one.
fn metric_name(family: &str, label_text: &str, excluded: Option<&str>, format: Format) -> String {
    let mut out = family.to_owned();
    if label_text.is_empty() {
        return out;
    }
    // The label block parsed once already, so this cannot fail; fall back to the raw text.
    let Some(labels) = lexer::labels(label_text, format) else {
        out.push_str(label_text);
        return clip(&out, 120);
    };
    let kept: Vec<_> = labels
        .iter()
        .filter(|(n, _)| Some(*n) != excluded)
        .collect();
    if !kept.is_empty() {
        out.push('{');
        for (i, (n, v)) in kept.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(n);
            out.push_str("=\"");
            escape_label_value(v, &mut out);
            out.push('"');
        }
        out.push('}');
    }
    clip(&out, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_leave_out_the_excluded_label() {
        assert_eq!(
            metric_name("h", r#"{a="x\"y",le="1"}"#, Some("le"), Format::OpenMetrics),
            r#"h{a="x\"y"}"#
        );
        assert_eq!(
            metric_name("h", r#"{le="1"}"#, Some("le"), Format::Text),
            "h"
        );
    }
}
