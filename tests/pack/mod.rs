//! What the rule pack, the dashboards and the deployment files may name: the sample names of the
//! trading catalog, of tradewatch's self-metrics and of what Prometheus adds itself, and the
//! metric names a PromQL expression reads.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};
use tradewatch::exporter::Catalog;
use tradewatch::exporter::collectors::files;
use tradewatch::exporter::registry::{MetricType, Registry};
use tradewatch::telemetry::Telemetry;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` (relative to the root) whose names end with `suffix`, sorted.
pub fn files_in(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// A path relative to the root, as a string for command lines.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Self-metrics of DESIGN §4 that the sidecar and notifier register (besides the exporter's,
/// which `Telemetry` registers and are read from it), with their types.
const SIDECAR_SELF_METRICS: &[(&str, MetricType)] = &[
    // Like Prometheus's prometheus_rule_group_last_duration_seconds: the last evaluation's.
    ("tradewatch_rule_group_duration_seconds", MetricType::Gauge),
    (
        "tradewatch_rule_group_last_evaluation_timestamp_seconds",
        MetricType::Gauge,
    ),
    ("tradewatch_rule_evaluation_failures", MetricType::Counter),
    ("tradewatch_alerts", MetricType::Gauge),
    ("tradewatch_notifications", MetricType::Counter),
    (
        "tradewatch_notification_latency_seconds",
        MetricType::Histogram,
    ),
    ("tradewatch_outbox_items", MetricType::Gauge),
    ("tradewatch_outbox_oldest_age_seconds", MetricType::Gauge),
    (
        "tradewatch_config_last_reload_successful",
        MetricType::Gauge,
    ),
    (
        "tradewatch_config_last_reload_success_timestamp_seconds",
        MetricType::Gauge,
    ),
];

/// Series Prometheus (and the sidecar, which records them the same way) adds itself.
const PROMETHEUS_SERIES: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

fn sample_names(out: &mut BTreeSet<String>, name: &str, kind: MetricType) {
    match kind {
        MetricType::Counter => {
            out.insert(format!("{name}_total"));
        }
        MetricType::Histogram => {
            for suffix in ["_bucket", "_sum", "_count"] {
                out.insert(format!("{name}{suffix}"));
            }
        }
        _ => {
            out.insert(name.to_owned());
        }
    }
}

/// Every sample name a rule or a panel may read.
pub fn known_metrics() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let registry = Registry::default();
    Catalog::new(&registry, &Default::default());
    for family in registry.families() {
        sample_names(&mut out, family.name(), family.kind());
    }
    out.insert(files::METRIC.to_owned());
    let telemetry = Telemetry::new();
    for family in telemetry.registry(None).families() {
        sample_names(&mut out, family.name(), family.kind());
    }
    for (name, kind) in SIDECAR_SELF_METRICS {
        sample_names(&mut out, name, *kind);
    }
    out.extend(PROMETHEUS_SERIES.iter().map(|s| s.to_string()));
    out
}

/// The metric names `expr` selects; a selector without a name (`{job="x"}`) or with a regular
/// expression on `__name__` is returned as its text, so that callers refuse it.
pub fn metric_names(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

fn selector(vs: &VectorSelector, out: &mut Vec<String>) {
    if let Some(name) = &vs.name {
        out.push(name.clone());
        return;
    }
    let by_name = vs
        .matchers
        .matchers
        .iter()
        .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal));
    match by_name {
        Some(m) => out.push(m.value.clone()),
        None => out.push(format!("<selector without a metric name: {vs}>")),
    }
}

fn walk(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Aggregate(a) => {
            walk(&a.expr, out);
            if let Some(p) = &a.param {
                walk(p, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            walk(&b.lhs, out);
            walk(&b.rhs, out);
        }
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Subquery(s) => walk(&s.expr, out),
        Expr::VectorSelector(vs) => selector(vs, out),
        Expr::MatrixSelector(ms) => selector(&ms.vs, out),
        Expr::Call(c) => {
            for arg in &c.args.args {
                walk(arg, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
