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
    (
        "tradewatch_rule_group_duration_seconds",
        MetricType::Histogram,
    ),
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

/// Whether `name` is a self-metric only the sidecar and notifier record, or `ALERTS`: series a
/// busy exporter alone does not produce.
pub fn sidecar_only(name: &str) -> bool {
    name.starts_with("ALERTS")
        || SIDECAR_SELF_METRICS
            .iter()
            .any(|(family, _)| name.starts_with(family))
}

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

/// Thirty minutes of two busy engines (every event type, every family of the catalog, rejected
/// orders, a tripped breaker, a loss), tradewatch's own ingest telemetry and the series a
/// scrape adds, scraped every 15 seconds into tradewatch's store as Prometheus would hold them.
/// Returns the store and the time of the last scrape.
pub fn busy_store() -> (tradewatch::store::Store, i64) {
    use std::time::Duration;
    use tradewatch::exporter::{Catalog, Format, Registry};
    use tradewatch::model::labels::Labels;
    use tradewatch::store::{Store, StoreOptions};
    use tradewatch::telemetry::Telemetry;

    let registry = Registry::default();
    let c = Catalog::new(&registry, &Default::default());
    let telemetry = Telemetry::new();
    let store = Store::new(StoreOptions::default());
    let start = 1_700_000_000_000_i64;
    let step_ms = 15_000;
    let steps = 120;
    let mut last = start;
    for step in 0..=steps {
        let t_ms = start + step * step_ms;
        let now = t_ms as f64 / 1000.0;
        let i = step as f64;
        for (n, engine) in ["alpha", "beta"].into_iter().enumerate() {
            let k = n as f64 + 1.0;
            let s = Some("momentum");
            c.heartbeat(engine).unwrap().set(now);
            c.start_time(engine).unwrap().set(start as f64 / 1000.0);
            for venue in ["binance", "coinbase"] {
                for (status, per_step) in [
                    ("submitted", 10.0),
                    ("filled", 8.0),
                    ("rejected", 1.0),
                    ("failed", 0.5),
                    ("cancelled", 0.5),
                ] {
                    c.orders(engine, s, venue, "buy", status)
                        .unwrap()
                        .inc_by(per_step * k);
                }
                let latency = c.order_latency(engine, venue).unwrap();
                for ms in [3.0, 8.0, 20.0, 70.0] {
                    latency.observe(ms * k / 1000.0);
                }
                c.api_requests(engine, venue, "ok").unwrap().inc_by(20.0);
                c.api_requests(engine, venue, "error").unwrap().inc();
                c.api_errors(engine, venue, Some("429")).unwrap().inc();
                c.api_request_duration(engine, venue)
                    .unwrap()
                    .observe(0.05 * k);
                c.connectivity_up(engine, venue).unwrap().set(1.0);
            }
            for symbol in ["AAPL", "MSFT"] {
                c.fills(engine, s, symbol, "buy").unwrap().inc_by(4.0);
                c.traded_notional(engine, s, symbol, "buy")
                    .unwrap()
                    .inc_by(4000.0);
                c.position_quantity(engine, symbol).unwrap().set(100.0 + i);
                c.position_value(engine, symbol)
                    .unwrap()
                    .set(15_000.0 + i * 10.0);
                c.position_limit(engine, symbol).unwrap().set(500.0);
            }
            c.decisions(engine, s, "buy").unwrap().inc_by(3.0);
            c.cycles(engine, "ok").unwrap().inc_by(15.0);
            c.cycle_duration(engine).unwrap().observe(0.2 * k);
            c.positions_open(engine).unwrap().set(2.0);
            c.portfolio_value(engine, "USD")
                .unwrap()
                .set(1e6 + i * 100.0);
            c.cash_balance(engine, "USD").unwrap().set(2e5);
            c.daily_loss_limit(engine).unwrap().set(10_000.0);
            c.pnl_daily(engine, s, "USD").unwrap().set(-50.0 * i * k);
            c.pnl_realized(engine, s, "USD").unwrap().set(-20.0 * i);
            c.pnl_unrealized(engine, s, "USD").unwrap().set(-30.0 * i);
            c.drawdown_ratio(engine, s, "USD").unwrap().set(0.001 * i);
            c.kill_switch_active(engine).unwrap().set(0.0);
            let tripped = step % 40 == 10;
            c.circuit_breaker_active(engine, "max_drawdown")
                .unwrap()
                .set(f64::from(u8::from(tripped)));
            if tripped {
                c.circuit_breaker_trips(engine, "max_drawdown")
                    .unwrap()
                    .inc();
            }
            if step % 20 == 0 {
                c.rebalances(engine, "success").unwrap().inc();
                c.rebalance_duration(engine).unwrap().observe(4.0);
                c.last_rebalance(engine).unwrap().set(now);
                c.drift_max_ratio(engine).unwrap().set(0.01 * k);
            }
            c.data_provider_failures(engine, "polygon").unwrap().inc();
            c.errors(engine, "broker", "timeout").unwrap().inc();
            c.function_duration(engine, "score").unwrap().observe(0.01);
            c.function_calls(engine, "score", "ok")
                .unwrap()
                .inc_by(15.0);
            c.lock_wait(engine, "book").unwrap().observe(0.0005);
        }
        telemetry.events_received("order", 40);
        telemetry.events_rejected("invalid_field", 1);
        telemetry.events_duplicate("order", 1);
        telemetry.ingest_request(200, Duration::from_millis(2));
        telemetry.journal_fsync(Duration::from_micros(800));
        telemetry.journal_bytes(1_000_000 + step as u64 * 10_000);
        telemetry.collector_duration("models", Duration::from_millis(3));
        telemetry.scrape("exporter", "success", Duration::from_millis(4));

        let target = [("job", "tradewatch"), ("instance", "tw:9470")];
        let mut samples = 0;
        for text in [
            registry.encode(Format::Text),
            telemetry.registry(Some(&registry)).encode(Format::Text),
        ] {
            for entry in tradewatch::scrape::parse(text.as_bytes(), Format::Text) {
                let tradewatch::scrape::Entry::Sample(sample) = entry.unwrap() else {
                    continue;
                };
                let mut pairs: Vec<(&str, &str)> = vec![("__name__", sample.name)];
                pairs.extend(sample.labels.iter().map(|(n, v)| (*n, v.as_ref())));
                pairs.extend(target);
                store
                    .append(&Labels::from_pairs(pairs), t_ms, sample.value)
                    .unwrap();
                samples += 1;
            }
        }
        // What the collector of files and the scrape itself add.
        let extra = [
            ("trading_artifact_updated_timestamp_seconds", now - 3600.0),
            ("up", 1.0),
            ("scrape_duration_seconds", 0.004),
            ("scrape_samples_scraped", samples as f64),
        ];
        for (name, value) in extra {
            let mut pairs = vec![("__name__", name)];
            if name.starts_with("trading_") {
                pairs.push(("artifact", "models/alpha.pkl"));
            }
            pairs.extend(target);
            store
                .append(&Labels::from_pairs(pairs), t_ms, value)
                .unwrap();
        }
        last = t_ms;
    }
    (store, last)
}
