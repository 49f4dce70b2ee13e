//! The `exporter.collectors` section: pull collectors for file freshness, JSON snapshot files
//! and SQLite queries. Schema and checks only; the collectors run in `exporter`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::{Checker, is_metric_name, label_name_problem};
use crate::model::PromDuration;

/// All configured collectors, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// File freshness: modification times as `trading_artifact_updated_timestamp_seconds`.
    pub files: Vec<FileCollector>,
    /// JSON snapshot files an engine writes, read through JSON pointers.
    pub json: Vec<JsonCollector>,
    /// Read-only SQL queries on a SQLite database an engine writes.
    pub sqlite: Vec<SqliteCollector>,
}

/// Modification times of files matching globs; each file is one `artifact` series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCollector {
    /// Collector name, the `collector` label of its own metrics; unique among collectors.
    pub name: String,
    /// Glob patterns of the files to watch (`models/*.pkl`).
    pub paths: Vec<String>,
    /// How often the files are checked.
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// How long one collection may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
}

/// Values read from JSON files through JSON pointers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCollector {
    /// Collector name, the `collector` label of its own metrics; unique among collectors.
    pub name: String,
    /// The JSON file, or a glob of files (each read the same way).
    pub path: String,
    /// How often the files are read.
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// How long one collection may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// The values to export.
    pub values: Vec<JsonValue>,
    /// Labels added to every value, by label name.
    #[serde(default)]
    pub labels: BTreeMap<String, JsonLabel>,
}

/// One number in a JSON file, exported as a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonValue {
    /// Metric name.
    pub metric: String,
    /// RFC 6901 JSON pointer to the number (`/pnl/daily`).
    pub pointer: String,
    /// Metric type.
    #[serde(rename = "type", default)]
    pub kind: CollectedType,
    /// The metric's help text.
    #[serde(default)]
    pub help: String,
}

/// Where a label's value comes from: a field of the file (`pointer`) or the file's name without
/// its extension (`file_stem: true`); exactly one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonLabel {
    /// RFC 6901 JSON pointer to a string or number in the file.
    pub pointer: Option<String>,
    /// Use the file's name without its extension.
    pub file_stem: bool,
}

/// Numbers from SQL queries on a SQLite database, opened read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteCollector {
    /// Collector name, the `collector` label of its own metrics; unique among collectors.
    pub name: String,
    /// The database file.
    pub path: PathBuf,
    /// How often the queries run.
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// How long one collection may take before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// The queries; each row of a result is one series.
    pub queries: Vec<SqlQuery>,
}

/// One SQL query and how its rows become series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlQuery {
    /// Metric name.
    pub metric: String,
    /// Metric type.
    #[serde(rename = "type", default)]
    pub kind: CollectedType,
    /// The `SELECT` statement.
    pub sql: String,
    /// Column holding the value.
    pub value_column: String,
    /// Columns whose values become labels of the same name.
    #[serde(default)]
    pub label_columns: Vec<String>,
    /// The metric's help text.
    #[serde(default)]
    pub help: String,
}

/// The type of a collected metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectedType {
    /// A value that can go up and down.
    #[default]
    Gauge,
    /// A monotonically increasing total, read as is.
    Counter,
}

fn default_interval() -> PromDuration {
    PromDuration::from_secs(15)
}

fn default_timeout() -> PromDuration {
    PromDuration::from_secs(5)
}

/// Prefixes of metrics tradewatch itself exports.
const RESERVED_PREFIXES: [&str; 2] = ["tradewatch_", "process_"];

impl CollectorsConfig {
    pub(crate) fn check(&self, c: &mut Checker<'_>) {
        let mut names = BTreeSet::new();
        let mut check_name = |c: &mut Checker<'_>, name: &str| {
            c.non_empty("name", name);
            if !names.insert(name.to_owned()) {
                c.field_error("name", format!("duplicate collector name {name:?}"));
            }
        };
        c.within("files", |c| {
            for (i, collector) in self.files.iter().enumerate() {
                c.within(i, |c| {
                    check_name(c, &collector.name);
                    check_schedule(c, collector.interval, collector.timeout);
                    if collector.paths.is_empty() {
                        c.field_error("paths", "must not be empty");
                    }
                    c.within("paths", |c| {
                        for (j, path) in collector.paths.iter().enumerate() {
                            if path.is_empty() {
                                c.within(j, |c| c.value_error("must not be empty"));
                            }
                        }
                    });
                });
            }
        });
        c.within("json", |c| {
            for (i, collector) in self.json.iter().enumerate() {
                c.within(i, |c| {
                    check_name(c, &collector.name);
                    check_schedule(c, collector.interval, collector.timeout);
                    c.non_empty("path", &collector.path);
                    collector.check(c);
                });
            }
        });
        c.within("sqlite", |c| {
            for (i, collector) in self.sqlite.iter().enumerate() {
                c.within(i, |c| {
                    check_name(c, &collector.name);
                    check_schedule(c, collector.interval, collector.timeout);
                    c.non_empty_path("path", &collector.path);
                    collector.check(c);
                });
            }
        });
    }
}

impl JsonCollector {
    fn check(&self, c: &mut Checker<'_>) {
        if self.values.is_empty() {
            c.field_error("values", "must not be empty");
        }
        let mut metrics = BTreeSet::new();
        c.within("values", |c| {
            for (i, value) in self.values.iter().enumerate() {
                c.within(i, |c| {
                    check_metric(c, &value.metric, &mut metrics);
                    check_pointer(c, "pointer", &value.pointer);
                });
            }
        });
        c.within("labels", |c| {
            for (name, label) in &self.labels {
                c.label_name_key(name);
                c.within(name, |c| match (&label.pointer, label.file_stem) {
                    (Some(pointer), false) => check_pointer(c, "pointer", pointer),
                    (None, true) => {}
                    (Some(_), true) => c.field_key_error(
                        "file_stem",
                        "pointer and file_stem are mutually exclusive",
                    ),
                    (None, false) => c.value_error(format!(
                        "label {name} needs a source: pointer or file_stem: true"
                    )),
                });
            }
        });
    }
}

impl SqliteCollector {
    fn check(&self, c: &mut Checker<'_>) {
        if self.queries.is_empty() {
            c.field_error("queries", "must not be empty");
        }
        let mut metrics = BTreeSet::new();
        c.within("queries", |c| {
            for (i, query) in self.queries.iter().enumerate() {
                c.within(i, |c| {
                    check_metric(c, &query.metric, &mut metrics);
                    c.non_empty("sql", &query.sql);
                    c.non_empty("value_column", &query.value_column);
                    let mut seen = BTreeSet::new();
                    c.within("label_columns", |c| {
                        for (j, column) in query.label_columns.iter().enumerate() {
                            c.within(j, |c| {
                                if let Some(problem) = label_name_problem(column) {
                                    c.value_error(problem);
                                } else if !seen.insert(column) {
                                    c.value_error(format!("duplicate label column {column:?}"));
                                }
                            });
                        }
                    });
                });
            }
        });
    }
}

/// Both durations positive and the timeout within the interval.
fn check_schedule(c: &mut Checker<'_>, interval: PromDuration, timeout: PromDuration) {
    c.positive("interval", interval);
    c.positive("timeout", timeout);
    if timeout > interval {
        c.field_error(
            "timeout",
            format!("timeout ({timeout}) must not be longer than interval ({interval})"),
        );
    }
}

/// A metric name: valid, not one of tradewatch's own, not twice in one collector.
fn check_metric(c: &mut Checker<'_>, metric: &str, seen: &mut BTreeSet<String>) {
    if !is_metric_name(metric) {
        c.field_error("metric", format!("invalid metric name {metric:?}"));
    } else if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| metric.starts_with(**p)) {
        c.field_error(
            "metric",
            format!("metric name {metric:?} uses the reserved prefix {prefix}"),
        );
    } else if !seen.insert(metric.to_owned()) {
        c.field_error(
            "metric",
            format!("duplicate metric {metric:?} in one collector"),
        );
    }
}

/// An RFC 6901 JSON pointer: empty (the whole document) or starting with `/`, with `~` escapes
/// only as `~0` and `~1`.
fn check_pointer(c: &mut Checker<'_>, field: &str, pointer: &str) {
    let bad_escape = pointer
        .split('~')
        .skip(1)
        .any(|rest| !(rest.starts_with('0') || rest.starts_with('1')));
    if !(pointer.is_empty() || pointer.starts_with('/')) || bad_escape {
        c.field_error(field, format!("invalid JSON pointer {pointer:?}"));
    }
}
