//! `tradewatch rules test`: promtool's rule unit tests. A test file names rule files and holds
//! test groups of input series, alert expectations (`alert_rule_test`) and query expectations
//! (`promql_expr_test`); the rules are evaluated at every `evaluation_interval` from 0 to the
//! largest `eval_time`, and the verdicts, messages and exit codes are `promtool test rules`'s.
//!
//! As promtool does it: input samples enter the store only as evaluation reaches their time (so a
//! `promql_expr_test` sees none past the last evaluation step); alerts are compared after the
//! evaluation at or just before their `eval_time`, firing ones only, sorted, with `alertname`
//! added to the expected labels and annotations compared after templating; expression results
//! are compared sorted by labels, values exactly (NaN never equals NaN) or, with `fuzzy_compare`,
//! one step of the last mantissa bit apart; a rule evaluation error ends its test group.
//!
//! Where it differs: Prometheus 3 semantics throughout (left-open range windows; `interval`
//! defaults to `evaluation_interval`, which 2.42 does not do); groups that `group_eval_order`
//! does not name keep their file order (promtool's order among them is random); messages for
//! PromQL and YAML errors are this crate's parsers' own, and input-series errors are located in
//! the test file.
//!
//! ```
//! use tradewatch::rules::unittest::test_files;
//!
//! let report = test_files(&["tests/data/rules_test/pass_basic.test.yml".into()], &[]);
//! assert_eq!(report.code, 0, "{}", report.stderr());
//! assert!(report.stdout().contains("  SUCCESS"));
//! ```

mod file;
mod format;
pub mod junit;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::yaml::{Diagnostic, PathSeg, Spans};
use crate::model::labels::Labels;
use crate::promql::{Engine, EngineOptions, Value};
use crate::store::{Store, StoreOptions, stale_nan};
use crate::template::Time;
use crate::template::prometheus::{Expansion, QueryFn, Sample as TemplateSample};

use super::alerting::{ALERT_NAME, TemplateEnv};
use super::eval::GroupState;
use super::file::RuleFile;
use super::notation::{
    NotationError, SeriesValue, parse_error_message, parse_series_labels, parse_series_line,
};
use super::rule::{CompiledRule, Group, compile};

pub use file::{
    AlertTest, ExpAlert, ExpSample, ExprTest, InputSeries, LoadedTests, TestFile, TestFileError,
    TestGroup,
};
use format::{AlertList, go_duration, go_quote, samples_string};
use junit::JunitSuite;

/// Which output stream a piece of the report goes to, as promtool splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: `Unit Testing:`, `SUCCESS`, blank lines.
    Stdout,
    /// Standard error: `FAILED:`, the failures, warnings.
    Stderr,
}

/// What a run printed, in order, its exit code (0 all passed, 1 otherwise) and the results for
/// a JUnit report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The text written, piece by piece, with its stream.
    pub chunks: Vec<(Stream, String)>,
    /// The exit code.
    pub code: u8,
    /// Per test file, the results [`junit::junit_xml`] writes.
    pub suites: Vec<JunitSuite>,
}

impl Report {
    fn push(&mut self, stream: Stream, text: impl Into<String>) {
        self.chunks.push((stream, text.into()));
    }

    fn collect(&self, stream: Stream) -> String {
        self.chunks
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, t)| t.as_str())
            .collect()
    }

    /// Everything written to standard output.
    pub fn stdout(&self) -> String {
        self.collect(Stream::Stdout)
    }

    /// Everything written to standard error.
    pub fn stderr(&self) -> String {
        self.collect(Stream::Stderr)
    }

    /// Writes the report to this process's standard output and error, in order.
    pub fn print(&self) {
        for (stream, text) in &self.chunks {
            match stream {
                Stream::Stdout => print!("{text}"),
                Stream::Stderr => eprint!("{text}"),
            }
        }
    }
}

/// Runs the unit tests of each file, as `promtool test rules` does: for each file
/// `Unit Testing:  FILE`, then `  SUCCESS` or `  FAILED:` and every failure. `run` keeps only the
/// test groups whose name matches one of its regular expressions (all when empty).
pub fn test_files(paths: &[PathBuf], run: &[regex::Regex]) -> Report {
    let mut report = Report::default();
    for path in paths {
        report.push(
            Stream::Stdout,
            format!("Unit Testing:  {}\n", path.display()),
        );
        let mut suite = JunitSuite::new(&path.display().to_string());
        let failures = test_file(path, run, &mut report, &mut suite);
        report.suites.push(suite);
        if failures.is_empty() {
            report.push(Stream::Stdout, "  SUCCESS\n");
        } else {
            report.code = 1;
            report.push(Stream::Stderr, "  FAILED:\n");
            for failure in failures {
                report.push(Stream::Stderr, format!("{failure}\n"));
                report.push(Stream::Stdout, "\n");
            }
        }
        report.push(Stream::Stdout, "\n");
    }
    report
}

/// What one test group runs with, from its file.
struct FileSettings {
    /// The test file's name, for messages.
    origin: String,
    /// Where each part of the test file was written.
    spans: Spans,
    evaluation_interval: i64,
    group_order: HashMap<String, usize>,
    rule_files: Vec<PathBuf>,
    fuzzy_compare: bool,
}

/// The failures of one test file, each a message in promtool's shape.
fn test_file(
    path: &Path,
    run: &[regex::Regex],
    report: &mut Report,
    suite: &mut JunitSuite,
) -> Vec<String> {
    let abort = |suite: &mut JunitSuite, message: String| {
        suite.abort(&message);
        vec![message]
    };
    let LoadedTests { file, spans } = match TestFile::load(path) {
        Ok(loaded) => loaded,
        Err(e) => return abort(suite, e.to_string()),
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rule_files = Vec::new();
    for pattern in &file.rule_files {
        match resolve_glob(base, pattern) {
            Ok(matches) => {
                if matches.is_empty() {
                    report.push(
                        Stream::Stderr,
                        format!(
                            "  WARNING: no file match pattern {}\n",
                            join_clean(base, pattern).display()
                        ),
                    );
                }
                // A file matched twice is loaded once, as promtool keys groups by file and name.
                for m in matches {
                    if !rule_files.contains(&m) {
                        rule_files.push(m);
                    }
                }
            }
            Err(e) => return abort(suite, e),
        }
    }
    suite.timed = true;
    let evaluation_interval = file
        .evaluation_interval
        .filter(|d| !d.is_zero())
        .map_or(60_000, |d| millis(d.as_duration()));
    let mut group_order = HashMap::new();
    for (i, name) in file.group_eval_order.iter().enumerate() {
        if group_order.insert(name.clone(), i).is_some() {
            return abort(
                suite,
                format!("group name repeated in evaluation order: {name}"),
            );
        }
    }
    let settings = FileSettings {
        origin: path.display().to_string(),
        spans,
        evaluation_interval,
        group_order,
        rule_files,
        fuzzy_compare: file.fuzzy_compare,
    };
    let mut failures = Vec::new();
    for (index, group) in file.tests.iter().enumerate() {
        if !run.is_empty() && !run.iter().any(|r| r.is_match(&group.name)) {
            continue;
        }
        suite.case(if group.name.is_empty() {
            format!("unnamed#{index}")
        } else {
            group.name.clone()
        });
        for failure in run_group(index, group, &settings) {
            suite.fail(&failure);
            failures.push(failure);
        }
    }
    failures
}

/// `base` joined with `pattern` as Go's `filepath.Join` does (cleaned), unless it is absolute.
fn join_clean(base: &Path, pattern: &str) -> PathBuf {
    let joined = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The rule files a `rule_files` entry names: relative to the test file, globs expanded in
/// lexical order.
fn resolve_glob(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    if pattern.is_empty() {
        return Ok(Vec::new());
    }
    let full = join_clean(base, pattern);
    let text = full.to_string_lossy();
    let paths =
        glob::glob(&text).map_err(|e| format!("invalid rule_files pattern {text:?}: {e}"))?;
    let mut out: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    out.sort();
    Ok(out)
}

impl FileSettings {
    /// `message` as `file:line:col: message`, at `path` in the test file.
    fn at(&self, path: &[PathSeg], message: String) -> String {
        Diagnostic {
            origin: self.origin.clone(),
            location: self.spans.locate(path),
            message,
        }
        .to_string()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The template `query` function over the test's store.
struct StoreQuery {
    engine: Engine,
    store: Arc<Store>,
}

impl QueryFn for StoreQuery {
    fn query(&self, expr: &str, at: &Time) -> Result<Vec<TemplateSample>, String> {
        let parsed = crate::promql::parse(expr).map_err(|e| parse_error_message(&e))?;
        let at_ms = i64::try_from(at.unix_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX);
        let result = self
            .engine
            .instant(self.store.as_ref(), &parsed, at_ms)
            .map_err(|e| e.to_string())?;
        let to_sample = |labels: &Labels, value: f64| TemplateSample {
            labels: labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect(),
            value,
        };
        match result.value {
            Value::Vector(v) => Ok(v.iter().map(|s| to_sample(&s.labels, s.f)).collect()),
            Value::Scalar { f, .. } => Ok(vec![to_sample(&Labels::empty(), f)]),
            Value::String(_) | Value::Matrix(_) => {
                Err("rule result is not a vector or scalar".to_owned())
            }
        }
    }
}

/// Input samples not yet in the store, appended as evaluation time passes them, as promtool's
/// lazy loader does.
struct PendingInput {
    series: Vec<(Labels, Vec<(i64, f64)>)>,
    next: Vec<usize>,
}

impl PendingInput {
    /// The samples of a test group's input series, each at its index times `interval`;
    /// `at` places an error on a field of an input series (`series` or `values`).
    fn parse(
        group: &TestGroup,
        interval: i64,
        at: impl Fn(usize, &str, String) -> String,
    ) -> Result<PendingInput, String> {
        let mut by_labels: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        for (i, input) in group.input_series.iter().enumerate() {
            let line = format!("{} {}", input.series, input.values);
            let parsed = parse_series_line(&line).map_err(|e| match e {
                NotationError::Value(_) => at(i, "values", e.to_string()),
                NotationError::Labels { .. } => at(i, "series", e.to_string()),
            })?;
            let labels = match parsed.labels {
                Some(labels) if !parsed.native => labels,
                _ => {
                    return Err(at(
                        i,
                        "series",
                        format!(
                            "invalid series {:?}: want a label set, then float values",
                            input.series
                        ),
                    ));
                }
            };
            let samples = by_labels.entry(labels).or_default();
            for (i, value) in parsed.values.iter().enumerate() {
                let t = i64::try_from(i)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(interval);
                match value {
                    SeriesValue::Value(v) => {
                        samples.insert(t, *v);
                    }
                    SeriesValue::Stale => {
                        samples.insert(t, stale_nan());
                    }
                    SeriesValue::Omitted => {}
                }
            }
        }
        let series: Vec<(Labels, Vec<(i64, f64)>)> = by_labels
            .into_iter()
            .map(|(labels, samples)| (labels, samples.into_iter().collect()))
            .collect();
        Ok(PendingInput {
            next: vec![0; series.len()],
            series,
        })
    }

    /// Appends every sample at or before `t`.
    fn load_till(&mut self, store: &Store, t: i64) {
        for ((labels, samples), next) in self.series.iter().zip(self.next.iter_mut()) {
            while let Some(&(at, value)) = samples.get(*next) {
                if at > t {
                    break;
                }
                // The store refuses nothing here: samples are in time order per series.
                let _ = store.append(labels, at, value);
                *next += 1;
            }
        }
    }
}

/// A firing alert as the test compares it: labels, then annotations.
type GotAlert = (Labels, Vec<(String, String)>);

/// Runs one test group and gives its failures.
fn run_group(index: usize, group: &TestGroup, settings: &FileSettings) -> Vec<String> {
    let interval = group
        .interval
        .filter(|d| !d.is_zero())
        .map_or(settings.evaluation_interval, |d| millis(d.as_duration()));
    let at = |series: usize, field: &str, message: String| {
        let path: Vec<PathSeg> = vec![
            "tests".into(),
            index.into(),
            "input_series".into(),
            series.into(),
            field.into(),
        ];
        settings.at(
            &path,
            format!("tests[{index}].input_series[{series}].{field}: {message}"),
        )
    };
    let mut input = match PendingInput::parse(group, interval, at) {
        Ok(input) => input,
        Err(e) => return vec![e],
    };
    let mut groups: Vec<Group> = Vec::new();
    let mut load_errors = Vec::new();
    for path in &settings.rule_files {
        match RuleFile::load(path) {
            Ok(loaded) => groups.extend(compile(
                &loaded,
                &path.display().to_string(),
                Duration::from_millis(u64::try_from(interval).unwrap_or(0)),
            )),
            Err(e) => load_errors.extend(e.diagnostics.iter().map(ToString::to_string)),
        }
    }
    if !load_errors.is_empty() {
        return load_errors;
    }
    groups.sort_by_key(|g| settings.group_order.get(&g.name).copied().unwrap_or(0));

    for test in &group.alert_rule_test {
        if test.alertname.is_empty() {
            let in_group = if group.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", group.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                test.eval_time
            )];
        }
    }
    let mut alert_times: Vec<i64> = group
        .alert_rule_test
        .iter()
        .map(|t| millis(t.eval_time.as_duration()))
        .collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let max_time = group
        .alert_rule_test
        .iter()
        .map(|t| t.eval_time)
        .chain(group.promql_expr_test.iter().map(|t| t.eval_time))
        .max()
        .map_or(0, |d| millis(d.as_duration()));

    let store = Arc::new(Store::new(StoreOptions {
        retention_ms: i64::MAX,
    }));
    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: settings.evaluation_interval,
        ..EngineOptions::default()
    });
    let query: Arc<dyn QueryFn> = Arc::new(StoreQuery {
        engine,
        store: Arc::clone(&store),
    });
    let mut states: Vec<GroupState> = vec![GroupState::default(); groups.len()];
    let mut failures = Vec::new();
    let mut next_alert_time = 0;
    let mut ts = 0i64;
    while ts <= max_time {
        input.load_till(&store, ts);
        let env = TemplateEnv {
            external_labels: group.external_labels.clone(),
            external_url: group.external_url.clone(),
            expansion: Expansion {
                query: Some(Arc::clone(&query)),
                timestamp: Some(Time::utc(
                    ts.div_euclid(1000),
                    u32::try_from(ts.rem_euclid(1000) * 1_000_000).unwrap_or(0),
                )),
                external_url: group.external_url.clone(),
            },
        };
        let mut eval_errors = Vec::new();
        for (g, state) in groups.iter().zip(states.iter_mut()) {
            let evaluation = g.evaluate(state, &engine, &store, ts, &env);
            let mut seen = Vec::new();
            for (rule, error) in evaluation.errors {
                if seen.contains(&rule) {
                    continue;
                }
                seen.push(rule);
                eval_errors.push(format!(
                    "    rule: {}, time: {}, err: {error}",
                    g.rules[rule].name(),
                    go_duration(ts)
                ));
            }
        }
        if !eval_errors.is_empty() {
            failures.extend(eval_errors);
            return failures;
        }
        while let Some(&at) = alert_times.get(next_alert_time) {
            if !(ts <= at && at < ts.saturating_add(settings.evaluation_interval)) {
                break;
            }
            failures.extend(check_alerts(group, at, &groups, &states));
            next_alert_time += 1;
        }
        match ts.checked_add(settings.evaluation_interval) {
            Some(next) => ts = next,
            None => break,
        }
    }
    for test in &group.promql_expr_test {
        failures.extend(check_expr(test, &engine, &store, settings.fuzzy_compare));
    }
    failures
}

/// Compares the firing alerts at `at` with every `alert_rule_test` of that time.
fn check_alerts(
    group: &TestGroup,
    at: i64,
    groups: &[Group],
    states: &[GroupState],
) -> Vec<String> {
    let tests: Vec<&AlertTest> = group
        .alert_rule_test
        .iter()
        .filter(|t| millis(t.eval_time.as_duration()) == at)
        .collect();
    // The same alert name can come from several rules and groups: all are collected.
    let mut got: HashMap<&str, Vec<GotAlert>> = HashMap::new();
    for (g, state) in groups.iter().zip(states) {
        for (rule, alerts) in g.rules.iter().zip(&state.alerts) {
            let CompiledRule::Alerting(rule) = rule else {
                continue;
            };
            if !tests.iter().any(|t| t.alertname == rule.alert) {
                continue;
            }
            let entry = got.entry(rule.alert.as_str()).or_default();
            for active in alerts.values() {
                if active.alert.state == crate::alerts::AlertState::Firing {
                    entry.push((
                        active.labels.clone(),
                        active
                            .annotations
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ));
                }
            }
        }
    }
    let mut failures = Vec::new();
    for test in tests {
        let mut got_alerts = got
            .get(test.alertname.as_str())
            .cloned()
            .unwrap_or_default();
        let mut expected: Vec<GotAlert> = test
            .exp_alerts
            .iter()
            .map(|a| {
                let mut labels = a.exp_labels.clone();
                labels.insert(ALERT_NAME.to_owned(), test.alertname.clone());
                (
                    Labels::from_pairs(&labels),
                    a.exp_annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            })
            .collect();
        got_alerts.sort();
        expected.sort();
        if expected != got_alerts {
            let name = if group.name.is_empty() {
                String::new()
            } else {
                format!("    name: {},\n", group.name)
            };
            failures.push(format!(
                "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                test.alertname,
                test.eval_time,
                AlertList(&expected),
                AlertList(&got_alerts)
            ));
        }
    }
    failures
}

/// Whether two values are the same for the test: equal, or with `fuzzy_compare` one step of the
/// last mantissa bit apart.
fn same_value(a: f64, b: f64, fuzzy: bool) -> bool {
    a == b || (fuzzy && (a.next_down() == b || a.next_up() == b))
}

/// Runs one `promql_expr_test` against the store as the evaluations left it.
fn check_expr(test: &ExprTest, engine: &Engine, store: &Store, fuzzy: bool) -> Option<String> {
    let head = format!(
        "    expr: {}, time: {}",
        go_quote(&test.expr),
        test.eval_time
    );
    let at = millis(test.eval_time.as_duration());
    let result = crate::promql::parse(&test.expr)
        .map_err(|e| parse_error_message(&e))
        .and_then(|expr| engine.instant(store, &expr, at).map_err(|e| e.to_string()));
    let mut got: Vec<(Labels, f64)> = match result.map(|r| r.value) {
        Ok(Value::Vector(v)) => v.into_iter().map(|s| (s.labels, s.f)).collect(),
        Ok(Value::Scalar { f, .. }) => vec![(Labels::empty(), f)],
        Ok(Value::String(_) | Value::Matrix(_)) => {
            return Some(format!(
                "{head}, err: rule result is not a vector or scalar"
            ));
        }
        Err(e) => return Some(format!("{head}, err: {e}")),
    };
    let mut expected = Vec::with_capacity(test.exp_samples.len());
    for sample in &test.exp_samples {
        match parse_series_labels(&sample.labels) {
            Ok(labels) => expected.push((labels, sample.value)),
            Err(e) => {
                let reason = match e {
                    NotationError::Labels { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Some(format!(
                    "{head}, err: labels {}: {reason}",
                    go_quote(&sample.labels)
                ));
            }
        }
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let same = expected.len() == got.len()
        && expected
            .iter()
            .zip(&got)
            .all(|(e, g)| e.0 == g.0 && same_value(e.1, g.1, fuzzy));
    (!same).then(|| {
        format!(
            "{head},\n        exp: {}\n        got: {}",
            samples_string(&expected),
            samples_string(&got)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_values_allow_one_step_of_the_last_bit() {
        let a = 0.4;
        assert!(same_value(a, a.next_up(), true));
        assert!(!same_value(a, a.next_up(), false));
        assert!(!same_value(a, a.next_up().next_up(), true));
        assert!(!same_value(f64::NAN, f64::NAN, true));
    }

    #[test]
    fn paths_join_as_go_does() {
        assert_eq!(join_clean(Path::new(""), "r.yml"), PathBuf::from("r.yml"));
        assert_eq!(join_clean(Path::new("."), "r.yml"), PathBuf::from("r.yml"));
        assert_eq!(
            join_clean(Path::new("a/b"), "../r.yml"),
            PathBuf::from("a/r.yml")
        );
        assert_eq!(
            join_clean(Path::new("a"), "/x/r.yml"),
            PathBuf::from("/x/r.yml")
        );
    }
}
