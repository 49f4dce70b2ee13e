//! promtool's lint checks: what `promtool check metrics` reports, from client_golang's
//! `promlint`, with its wording, over a parsed exposition.
//!
//! promlint reads text 0.0.4 only. An OpenMetrics family is linted as it reads in text
//! 0.0.4 (as the Python client writes it): a counter `foo` as the counter `foo_total`, an info
//! `foo` as the gauge `foo_info`, a stateset as a gauge, a gaugehistogram as a histogram, an
//! unknown family as untyped; `_created` samples are left out.
//!
//! promlint's two checks for duplicates ("label names should be unique", "metric not unique")
//! never fire here: duplicates are parse errors, and lint runs on valid expositions.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::parse::{Entry, FamilyType, Format, Sample, parse};

/// A lint finding: the metric family and what is wrong with it, as promtool prints it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LintFinding {
    /// The family name (as text 0.0.4 names it).
    pub metric: String,
    /// promlint's message.
    pub text: String,
}

impl fmt::Display for LintFinding {
    /// `name message`, the line promtool writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.metric, self.text)
    }
}

/// Lints `input`: the findings sorted by metric name, then message, as promtool sorts them.
/// Parse errors are ignored (see [`crate::scrape::check_metrics`] for both together).
pub fn lint(input: &[u8], format: Format) -> Vec<LintFinding> {
    let mut linter = Linter::new(format);
    for entry in parse(input, format).flatten() {
        linter.observe(&entry);
    }
    linter.finish()
}

/// The metric types promlint knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PromType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

struct Family {
    name: String,
    kind: FamilyType,
    help: bool,
    samples: bool,
    /// Findings about labels, one per offending label of each metric, as promlint counts them.
    label_findings: Vec<&'static str>,
    /// Histogram and summary metrics already linted (their samples share one metric).
    linted_metrics: HashSet<Vec<(String, String)>>,
}

/// Accumulates entries, then lints the families they describe.
pub struct Linter {
    format: Format,
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl Linter {
    /// A linter of an exposition in `format`.
    pub fn new(format: Format) -> Linter {
        Linter {
            format,
            families: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn family(&mut self, name: &str) -> &mut Family {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.index.insert(name.to_owned(), self.families.len());
                self.families.push(Family {
                    name: name.to_owned(),
                    kind: FamilyType::Unknown,
                    help: false,
                    samples: false,
                    label_findings: Vec::new(),
                    linted_metrics: HashSet::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// Takes one entry of the exposition.
    pub fn observe(&mut self, entry: &Entry<'_>) {
        match entry {
            Entry::Help { family, text } => self.family(family).help = !text.is_empty(),
            Entry::Type { family, kind } => self.family(family).kind = *kind,
            Entry::Unit { .. } => {}
            Entry::Sample(s) => self.sample(s),
        }
    }

    fn sample(&mut self, s: &Sample<'_>) {
        let om = self.format == Format::OpenMetrics;
        let f = self.family(s.family);
        f.samples = true;
        let suffix = &s.name[s.family.len()..];
        if om && suffix == "_created" {
            return;
        }
        let kind = prom_type(f.kind);
        // The label a histogram's or summary's metric keeps out of its label set.
        let consumed = match kind {
            PromType::Histogram if suffix == "_bucket" => Some("le"),
            PromType::Summary if suffix.is_empty() => Some("quantile"),
            _ => None,
        };
        let mut found = Vec::new();
        for (name, _) in s.labels.iter().filter(|(n, _)| Some(*n) != consumed) {
            if is_camel_case(name) {
                found.push("label names should be written in 'snake_case' not 'camelCase'");
            }
            if kind == PromType::Untyped {
                continue;
            }
            if kind != PromType::Histogram && *name == "le" {
                found.push(r#"non-histogram metrics should not have "le" label"#);
            }
            if kind != PromType::Summary && *name == "quantile" {
                found.push(r#"non-summary metrics should not have "quantile" label"#);
            }
        }
        if found.is_empty() {
            return;
        }
        if matches!(kind, PromType::Histogram | PromType::Summary) {
            let mut metric: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(n, _)| Some(*n) != consumed)
                .map(|(n, v)| ((*n).to_owned(), v.to_string()))
                .collect();
            metric.sort();
            if !f.linted_metrics.insert(metric) {
                return;
            }
        }
        f.label_findings.extend(found);
    }

    /// The findings, sorted by metric name, then message.
    pub fn finish(self) -> Vec<LintFinding> {
        let mut findings = Vec::new();
        for f in self.families.iter().filter(|f| f.samples) {
            let name = match (self.format, f.kind) {
                (Format::OpenMetrics, FamilyType::Counter) => format!("{}_total", f.name),
                (Format::OpenMetrics, FamilyType::Info) => format!("{}_info", f.name),
                _ => f.name.clone(),
            };
            let mut push = |text: String| {
                findings.push(LintFinding {
                    metric: name.clone(),
                    text,
                })
            };
            for text in family_findings(&name, prom_type(f.kind), f.help) {
                push(text);
            }
            for text in &f.label_findings {
                push((*text).to_owned());
            }
        }
        // Stable, as promlint's sort.SliceStable: repeated findings stay repeated.
        findings.sort_by(|a, b| (&a.metric, &a.text).cmp(&(&b.metric, &b.text)));
        findings
    }
}

fn prom_type(kind: FamilyType) -> PromType {
    match kind {
        FamilyType::Counter => PromType::Counter,
        FamilyType::Gauge | FamilyType::Info | FamilyType::StateSet => PromType::Gauge,
        FamilyType::Histogram | FamilyType::GaugeHistogram => PromType::Histogram,
        FamilyType::Summary => PromType::Summary,
        FamilyType::Unknown => PromType::Untyped,
    }
}

/// promlint's checks of a family's name, type and help.
fn family_findings(name: &str, kind: PromType, help: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !help {
        out.push("no help text".to_owned());
    }
    if let Some((unit, base)) = metric_unit(name)
        && unit != base
    {
        out.push(format!("use base unit {base:?} instead of {unit:?}"));
    }
    let untyped = kind == PromType::Untyped;
    let total = name.ends_with("_total");
    if kind == PromType::Counter && !total {
        out.push(r#"counter metrics should have "_total" suffix"#.to_owned());
    } else if !untyped && kind != PromType::Counter && total {
        out.push(r#"non-counter metrics should not have "_total" suffix"#.to_owned());
    }
    if !untyped && kind != PromType::Gauge && name.ends_with("_timestamp_seconds") {
        out.push(r#"non-gauge metrics should not have "_timestamp_seconds" suffix"#.to_owned());
    }
    if !untyped {
        let histogram = kind == PromType::Histogram;
        let summary = kind == PromType::Summary;
        if !histogram && name.ends_with("_bucket") {
            out.push(r#"non-histogram metrics should not have "_bucket" suffix"#.to_owned());
        }
        if !histogram && !summary && name.ends_with("_count") {
            out.push(
                r#"non-histogram and non-summary metrics should not have "_count" suffix"#
                    .to_owned(),
            );
        }
        if !histogram && !summary && name.ends_with("_sum") {
            out.push(
                r#"non-histogram and non-summary metrics should not have "_sum" suffix"#.to_owned(),
            );
        }
    }
    let lower = name.to_ascii_lowercase();
    let has_word =
        |word: &str| lower.contains(&format!("_{word}_")) || lower.ends_with(&format!("_{word}"));
    for t in [
        "counter",
        "gauge",
        "histogram",
        "summary",
        "gauge_histogram",
    ] {
        if has_word(t) {
            out.push(format!("metric name should not include type '{t}'"));
        }
    }
    if name.contains(':') {
        out.push("metric names should not contain ':'".to_owned());
    }
    if is_camel_case(name) {
        out.push("metric names should be written in 'snake_case' not 'camelCase'".to_owned());
    }
    for abbreviation in UNIT_ABBREVIATIONS {
        if has_word(abbreviation) {
            out.push("metric names should not contain abbreviated units".to_owned());
        }
    }
    out
}

/// Whether `s` has a lowercase letter followed by an uppercase one (promlint's `[a-z][A-Z]`).
fn is_camel_case(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// The first unit word of `name` (split at underscores), possibly prefixed, and its base unit.
fn metric_unit(name: &str) -> Option<(&str, &'static str)> {
    for word in name.split('_') {
        if let Some(base) = base_unit(word) {
            return Some((word, base));
        }
        for prefix in UNIT_PREFIXES {
            if let Some(base) = word.strip_prefix(prefix).and_then(base_unit) {
                return Some((word, base));
            }
        }
    }
    None
}

fn base_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "amperes" => "amperes",
        "bytes" => "bytes",
        "celsius" => "celsius",
        "grams" => "grams",
        "joules" => "joules",
        "kelvin" => "kelvin",
        "meters" => "meters",
        "metres" => "metres",
        "seconds" => "seconds",
        "volts" => "volts",
        "minutes" | "hours" | "days" | "weeks" => "seconds",
        "kelvins" => "kelvin",
        "fahrenheit" | "rankine" => "celsius",
        "inches" | "yards" | "miles" => "meters",
        "bits" => "bytes",
        "calories" => "joules",
        "pounds" | "ounces" => "grams",
        _ => return None,
    })
}

const UNIT_PREFIXES: [&str; 18] = [
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

const UNIT_ABBREVIATIONS: [&str; 14] = [
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(input: &str, format: Format) -> Vec<String> {
        lint(input.as_bytes(), format)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn matches_promtool() {
        // The expected lines are promtool 2.42's output for the same input.
        let input = "# TYPE foo_milliseconds counter\nfoo_milliseconds{fooBar=\"1\",le=\"2\"} 1\n\
                     # HELP x_total help\n# TYPE x_total gauge\nx_total 1\n\
                     # TYPE y:z_sum gauge\ny:z_sum 1\n\
                     # TYPE b_s_gauge summary\nb_s_gauge{quantile=\"0.5\"} 1\n";
        assert_eq!(
            findings(input, Format::Text),
            [
                "b_s_gauge metric name should not include type 'gauge'",
                "b_s_gauge metric names should not contain abbreviated units",
                "b_s_gauge no help text",
                "foo_milliseconds counter metrics should have \"_total\" suffix",
                "foo_milliseconds label names should be written in 'snake_case' not 'camelCase'",
                "foo_milliseconds no help text",
                "foo_milliseconds non-histogram metrics should not have \"le\" label",
                "foo_milliseconds use base unit \"seconds\" instead of \"milliseconds\"",
                "x_total non-counter metrics should not have \"_total\" suffix",
                "y:z_sum metric names should not contain ':'",
                "y:z_sum no help text",
                "y:z_sum non-histogram and non-summary metrics should not have \"_sum\" suffix",
            ]
        );
    }

    #[test]
    fn histogram_metrics_count_once_and_repeats_stay() {
        let input = "# HELP h x\n# TYPE h histogram\nh_bucket{aB=\"1\",le=\"1\"} 1\n\
                     h_bucket{aB=\"1\",le=\"+Inf\"} 1\nh_sum{aB=\"1\"} 1\nh_count{aB=\"1\"} 1\n\
                     # HELP g x\n# TYPE g gauge\ng{fooBar=\"1\",bazQux=\"2\"} 1\n";
        assert_eq!(
            findings(input, Format::Text),
            [
                "g label names should be written in 'snake_case' not 'camelCase'",
                "g label names should be written in 'snake_case' not 'camelCase'",
                "h label names should be written in 'snake_case' not 'camelCase'",
            ]
        );
    }

    #[test]
    fn openmetrics_families_are_linted_under_their_text_names() {
        let input = "# HELP orders Orders.\n# TYPE orders counter\norders_total 1\norders_created 1\n\
                     # TYPE build info\nbuild_info{version=\"1\"} 1\n# EOF\n";
        assert_eq!(
            findings(input, Format::OpenMetrics),
            ["build_info no help text"]
        );
    }

    #[test]
    fn units() {
        assert_eq!(
            metric_unit("a_kilobytes_total"),
            Some(("kilobytes", "bytes"))
        );
        assert_eq!(metric_unit("a_seconds_total"), Some(("seconds", "seconds")));
        assert_eq!(metric_unit("thermometers"), None);
        assert_eq!(metric_unit("disk_megabits"), Some(("megabits", "bytes")));
    }
}
