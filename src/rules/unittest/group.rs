//! One test group: its input series loaded as evaluation time passes them, the rules evaluated
//! at every step, alerts compared at their times and expressions at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::yaml::{Diagnostic, PathSeg, Spans};
use crate::model::labels::Labels;
use crate::promql::{Engine, EngineOptions, Value};
use crate::store::{Store, StoreOptions, stale_nan};
use crate::template::Time;
use crate::template::prometheus::{Expansion, QueryFn, Sample as TemplateSample};

use super::file::{AlertTest, ExprTest, TestGroup};
use super::format::{AlertList, go_duration, go_quote, samples_string};
use crate::rules::alerting::{ALERT_NAME, TemplateEnv};
use crate::rules::eval::GroupState;
use crate::rules::file::RuleFile;
use crate::rules::notation::{
    NotationError, SeriesValue, parse_error_message, parse_series_labels, parse_series_line,
};
use crate::rules::rule::{CompiledRule, Group, compile};

/// What one test group runs with, from its file.
pub(super) struct FileSettings {
    /// The test file's name, for messages.
    pub(super) origin: String,
    /// Where each part of the test file was written.
    pub(super) spans: Spans,
    pub(super) evaluation_interval: i64,
    pub(super) group_order: HashMap<String, usize>,
    pub(super) rule_files: Vec<PathBuf>,
    pub(super) fuzzy_compare: bool,
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

pub(super) fn millis(d: Duration) -> i64 {
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
pub(super) fn run_group(index: usize, group: &TestGroup, settings: &FileSettings) -> Vec<String> {
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

/// The result of every `promql_expr_test` of a test group without rule files, as
/// [`run_group`] computes it before comparing: the input series loaded up to the last
/// evaluation step at or before the largest `eval_time`, each expression evaluated at its time.
pub(super) fn expr_results(
    index: usize,
    group: &TestGroup,
    settings: &FileSettings,
) -> Result<Vec<super::ExprResult>, String> {
    let interval = group
        .interval
        .filter(|d| !d.is_zero())
        .map_or(settings.evaluation_interval, |d| millis(d.as_duration()));
    let at = |series: usize, field: &str, message: String| {
        format!("tests[{index}].input_series[{series}].{field}: {message}")
    };
    let mut input = PendingInput::parse(group, interval, at)?;
    let max_time = group
        .promql_expr_test
        .iter()
        .map(|t| millis(t.eval_time.as_duration()))
        .max()
        .unwrap_or(0);
    let store = Store::new(StoreOptions {
        retention_ms: i64::MAX,
    });
    let step = settings.evaluation_interval.max(1);
    input.load_till(&store, max_time - max_time.rem_euclid(step));
    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: settings.evaluation_interval,
        ..EngineOptions::default()
    });
    Ok(group
        .promql_expr_test
        .iter()
        .map(|test| eval_expr(test, &engine, &store))
        .collect())
}

/// One `promql_expr_test`'s expression evaluated at its time: the samples, a scalar as one
/// sample without labels, or the error as promtool words it.
fn eval_expr(
    test: &ExprTest,
    engine: &Engine,
    store: &Store,
) -> Result<Vec<(Labels, f64)>, String> {
    let at = millis(test.eval_time.as_duration());
    let result = crate::promql::parse(&test.expr)
        .map_err(|e| parse_error_message(&e))
        .and_then(|expr| engine.instant(store, &expr, at).map_err(|e| e.to_string()))?;
    match result.value {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.f)).collect()),
        Value::Scalar { f, .. } => Ok(vec![(Labels::empty(), f)]),
        Value::String(_) | Value::Matrix(_) => {
            Err("rule result is not a vector or scalar".to_owned())
        }
    }
}

/// Runs one `promql_expr_test` against the store as the evaluations left it.
fn check_expr(test: &ExprTest, engine: &Engine, store: &Store, fuzzy: bool) -> Option<String> {
    let head = format!(
        "    expr: {}, time: {}",
        go_quote(&test.expr),
        test.eval_time
    );
    let mut got = match eval_expr(test, engine, store) {
        Ok(got) => got,
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
}
