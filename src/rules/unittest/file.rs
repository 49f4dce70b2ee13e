//! A unit-test file as written: promtool's format, read strictly (an unknown field is an error
//! with its line and column, as promtool's strict YAML makes it one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::yaml::{self, Diagnostic, Spans};
use crate::model::duration::PromDuration;

/// A test file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Rule files to test, relative to the test file; globs are expanded.
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// How often the rules are evaluated (1m when absent or zero).
    #[serde(default)]
    pub evaluation_interval: Option<PromDuration>,
    /// Compare expression test values with one step of the last mantissa bit allowed.
    #[serde(default)]
    pub fuzzy_compare: bool,
    /// Groups evaluated first, in this order; the others come after the first named.
    #[serde(default)]
    pub group_eval_order: Vec<String>,
    /// The test groups.
    #[serde(default)]
    pub tests: Vec<TestGroup>,
}

/// A test group: input series and the expectations on them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    /// The step between input values (the evaluation interval when absent or zero).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// The input series.
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    /// Expected firing alerts at given times.
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTest>,
    /// Expected query results at given times.
    #[serde(default)]
    pub promql_expr_test: Vec<ExprTest>,
    /// External labels the alert templates see (`$externalLabels`).
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// External URL the alert templates see (`$externalURL`).
    #[serde(default)]
    pub external_url: String,
    /// The group's name, shown with its alert failures.
    #[serde(default)]
    pub name: String,
}

/// One input series.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    /// The series as a selector with `=` only: `up{job="api"}`.
    #[serde(default)]
    pub series: String,
    /// Its values in the expanding notation (`1+1x10 _ stale`), one per `interval`.
    #[serde(default)]
    pub values: String,
}

/// The alerts of one name expected to fire at one time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTest {
    /// The time from 0.
    #[serde(default)]
    pub eval_time: PromDuration,
    /// The alert name.
    #[serde(default)]
    pub alertname: String,
    /// Every alert of that name firing then (none: it must not fire).
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
}

/// One expected alert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    /// Its labels, without `alertname` (added).
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    /// Its annotations after templating.
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
}

/// An expression and its expected result at one time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprTest {
    /// The PromQL expression.
    #[serde(default)]
    pub expr: String,
    /// The time from 0.
    #[serde(default)]
    pub eval_time: PromDuration,
    /// The expected samples, in any order.
    #[serde(default)]
    pub exp_samples: Vec<ExpSample>,
}

/// One expected sample.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    /// Its labels as a selector with `=` only (`{}` or empty for none).
    #[serde(default)]
    pub labels: String,
    /// Its value.
    #[serde(default)]
    pub value: f64,
}

/// Why a test file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TestFileError(pub Diagnostic);

/// A test file that parsed, with the positions of its parts.
#[derive(Debug, Clone)]
pub struct LoadedTests {
    /// The tests.
    pub file: TestFile,
    /// Where each part was written.
    pub spans: Spans,
}

impl TestFile {
    /// Reads and parses the test file at `path`.
    pub fn load(path: &Path) -> Result<LoadedTests, TestFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            TestFileError(Diagnostic {
                origin: origin.clone(),
                location: None,
                message: format!("failed to read test file: {e}"),
            })
        })?;
        TestFile::parse(&text, &origin)
    }

    /// Parses `text` (from `origin`, a file name for messages).
    pub fn parse(text: &str, origin: &str) -> Result<LoadedTests, TestFileError> {
        yaml::parse::<TestFile>(text, origin)
            .map(|d| LoadedTests {
                file: d.value,
                spans: d.spans,
            })
            .map_err(|e| TestFileError(e.0))
    }
}
