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
mod group;
pub mod junit;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use file::{
    AlertTest, ExpAlert, ExpSample, ExprTest, InputSeries, LoadedTests, TestFile, TestFileError,
    TestGroup,
};
use group::{FileSettings, millis, run_group};

use crate::model::labels::Labels;
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

/// What one expression evaluates to: its samples (a scalar as one sample without labels), or
/// its error as promtool words it.
pub type ExprResult = Result<Vec<(Labels, f64)>, String>;

/// What each `promql_expr_test` of `file.tests[group]` evaluates to, before any comparison with
/// its `exp_samples`: its samples (a scalar as one sample without labels) or its error. The
/// input series are loaded as [`test_files`] loads them; `rule_files` are not read, so this is
/// for groups that test expressions over their input series only.
///
/// ```
/// use tradewatch::rules::unittest::{TestFile, expr_results};
///
/// let text = "tests:\n  - input_series:\n      - series: 'up{job=\"a\"}'\n        values: '1 2'\n    promql_expr_test:\n      - expr: up * 2\n        eval_time: 1m\n      - expr: up +\n";
/// let loaded = TestFile::parse(text, "t.test.yml").unwrap();
/// let results = expr_results(&loaded.file, 0).unwrap();
/// let samples = results[0].as_ref().unwrap();
/// assert_eq!((samples[0].0.to_string(), samples[0].1), ("{job=\"a\"}".to_owned(), 4.0));
/// assert!(results[1].is_err());
/// ```
///
/// # Errors
///
/// An input series that does not parse, or no such group.
pub fn expr_results(file: &TestFile, group: usize) -> Result<Vec<ExprResult>, String> {
    let test_group = file
        .tests
        .get(group)
        .ok_or_else(|| format!("no test group {group}"))?;
    let settings = FileSettings {
        origin: String::new(),
        spans: Default::default(),
        evaluation_interval: file
            .evaluation_interval
            .filter(|d| !d.is_zero())
            .map_or(60_000, |d| millis(d.as_duration())),
        group_order: HashMap::new(),
        rule_files: Vec::new(),
        fuzzy_compare: file.fuzzy_compare,
    };
    group::expr_results(group, test_group, &settings)
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

#[cfg(test)]
mod tests {
    use super::*;

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
