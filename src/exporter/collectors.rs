//! Pull collectors (DESIGN §1 "Collectors"): file freshness, JSON snapshot files and SQLite
//! queries, for engines that write files instead of calling the event API.
//!
//! Each collector runs in a task of its own, on its own interval and timeout, with its blocking
//! work on tokio's blocking pool: off the ingest path. It writes into the collectors' registry,
//! not the trading one: collected values are read again at each run, never journaled nor
//! snapshotted. A run reads everything first and then swaps the new series in, family by family
//! under the family's lock. A run that fails or times out is logged, counted in
//! `tradewatch_collector_errors_total{collector}` and removes the collector's series, so
//! Prometheus sees them go stale; it is never fatal, and the next run starts afresh.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use tradewatch::config::Config;
//! use tradewatch::exporter::Format;
//! use tradewatch::exporter::collectors::Collectors;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("momentum.pkl"), b"model").unwrap();
//! let yaml = format!(
//!     "exporter:\n  collectors:\n    files:\n      - name: models\n        paths: ['{}/*.pkl']\n",
//!     dir.path().display()
//! );
//! let config = Config::parse(&yaml, "example.yaml").unwrap();
//! let collectors = Collectors::new(&config.exporter, None, Arc::default());
//! collectors.collect("models").await.unwrap().unwrap();
//! let text = collectors.registry().encode(Format::Text);
//! assert!(text.contains("trading_artifact_updated_timestamp_seconds{artifact="));
//! # });
//! ```

pub mod files;
pub mod json;
pub mod sqlite;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use super::registry::{MetricType, RegisterError, Registry, SeriesLimitError};
use crate::config::ExporterConfig;
use crate::config::collectors::CollectedType;
use crate::model::names::render_labels;
use crate::telemetry::Telemetry;

/// Why one run of a collector failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Reading files' modification times.
    #[error(transparent)]
    Files(#[from] files::FilesError),
    /// Reading JSON files.
    #[error(transparent)]
    Json(#[from] json::JsonError),
    /// Querying a SQLite database.
    #[error(transparent)]
    Sqlite(#[from] sqlite::SqliteError),
    /// A glob pattern does not parse.
    #[error("invalid glob pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        source: glob::PatternError,
    },
    /// A directory a glob walks cannot be read.
    #[error("failed to expand {pattern:?}: {source}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// The path that could not be read, and why.
        source: glob::GlobError,
    },
    /// A label value is longer than `exporter.limits.max_label_value_bytes`.
    #[error("label {label} is {len} bytes, over the limit of {limit}")]
    LabelTooLong {
        /// The label name.
        label: String,
        /// Its value's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Two series of one metric have the same labels.
    #[error("two series of {metric} have the labels {{{labels}}}")]
    Duplicate {
        /// The metric.
        metric: String,
        /// The label block.
        labels: String,
    },
    /// A gauge named like a counter.
    #[error("a gauge may not be named {0:?}: the `_total` suffix is for counters")]
    GaugeTotal(String),
    /// The metric exists with another type, or its samples clash with another metric's.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// Events feed the same metric: serving both would repeat the family.
    #[error("metric {0} is fed by events too; a collector may not write it")]
    FedByEvents(String),
    /// The new series would pass the series limits.
    #[error(transparent)]
    Limit(#[from] SeriesLimitError),
    /// The run took longer than the collector's timeout.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The run panicked (a bug).
    #[error("the collection panicked")]
    Panicked,
}

/// What one run of a collector read: every series of every family it writes, built in full
/// before anything is applied.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    families: Vec<CollectedFamily>,
    seen: HashSet<(usize, String)>,
}

/// One family of a collection.
#[derive(Debug)]
struct CollectedFamily {
    /// The metric name as configured (a counter's with or without `_total`).
    name: String,
    kind: CollectedType,
    help: String,
    /// (label block, value), each label block once.
    series: Vec<(String, f64)>,
}

impl Collection {
    /// The index of family `name`, added (empty) when new.
    pub(crate) fn family(&mut self, name: &str, kind: CollectedType, help: &str) -> usize {
        if let Some(i) = self.families.iter().position(|f| f.name == name) {
            return i;
        }
        self.families.push(CollectedFamily {
            name: name.to_owned(),
            kind,
            help: help.to_owned(),
            series: Vec::new(),
        });
        self.families.len() - 1
    }

    /// Adds a series to family `family`; its label block must be new there.
    pub(crate) fn push(
        &mut self,
        family: usize,
        labels: String,
        value: f64,
    ) -> Result<(), CollectError> {
        if !self.seen.insert((family, labels.clone())) {
            return Err(CollectError::Duplicate {
                metric: self.families[family].name.clone(),
                labels,
            });
        }
        self.families[family].series.push((labels, value));
        Ok(())
    }
}

/// Renders a label block from (name, value) pairs; an absent or empty value leaves its label
/// out, as events do.
pub(crate) fn label_block<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    max_value_bytes: usize,
) -> Result<String, CollectError> {
    let pairs: Vec<(&str, Option<&str>)> = pairs
        .into_iter()
        .map(|(n, v)| (n, v.filter(|v| !v.is_empty())))
        .collect();
    for (name, value) in &pairs {
        if let Some(v) = value
            && v.len() > max_value_bytes
        {
            return Err(CollectError::LabelTooLong {
                label: (*name).to_owned(),
                len: v.len(),
                limit: max_value_bytes,
            });
        }
    }
    let mut out = String::new();
    render_labels(pairs, &mut out);
    Ok(out)
}

/// The paths matching a glob pattern, sorted; a literal path matches when it exists.
pub(crate) fn expand(pattern: &str) -> Result<Vec<PathBuf>, CollectError> {
    let paths = glob::glob(pattern).map_err(|source| CollectError::Pattern {
        pattern: pattern.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for path in paths {
        match path {
            Ok(p) => out.push(p),
            // Gone between the directory listing and the check: it disappeared.
            Err(e) if e.error().kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CollectError::Glob {
                    pattern: pattern.to_owned(),
                    source,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A kind of collector: reads its source into a collection (blocking I/O; runs on tokio's
/// blocking pool).
trait Source: Send + Sync + 'static {
    fn collect(&self) -> Result<Collection, CollectError>;

    /// Cuts a run short after its timeout, where the source can.
    fn interrupt(&self) {}
}

/// Where collectors write, and what they read besides their sources.
struct Sink {
    /// The collectors' registry, shared by every collector.
    registry: Arc<Registry>,
    /// The trading registry, to refuse a metric that events feed too.
    trading: Option<Arc<Registry>>,
    telemetry: Arc<Telemetry>,
}

/// One configured collector and the series it wrote last.
struct Collector {
    name: String,
    interval: Duration,
    timeout: Duration,
    source: Arc<dyn Source>,
    /// Label blocks written by the last good run, by family name.
    owned: Mutex<BTreeMap<String, HashSet<String>>>,
    /// Held through a run, so runs of one collector never overlap.
    running: tokio::sync::Mutex<()>,
}

impl Collector {
    fn new(
        name: &str,
        interval: crate::model::PromDuration,
        timeout: crate::model::PromDuration,
        source: Arc<dyn Source>,
    ) -> Arc<Collector> {
        Arc::new(Collector {
            name: name.to_owned(),
            interval: interval.as_duration(),
            timeout: timeout.as_duration(),
            source,
            owned: Mutex::default(),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// One run: collect within the timeout, then swap the series in; on failure, log, count
    /// and remove this collector's series.
    async fn run(&self, sink: &Sink) -> Result<(), CollectError> {
        let _running = self.running.lock().await;
        let started = Instant::now();
        let source = self.source.clone();
        let mut job = tokio::task::spawn_blocking(move || source.collect());
        let mut cut_short = None;
        let outcome = match tokio::time::timeout(self.timeout, &mut job).await {
            Ok(Ok(collected)) => collected.and_then(|c| self.apply(sink, c)),
            Ok(Err(_)) => Err(CollectError::Panicked),
            Err(_) => {
                self.source.interrupt();
                cut_short = Some(job);
                Err(CollectError::TimedOut(self.timeout))
            }
        };
        sink.telemetry
            .collector_duration(&self.name, started.elapsed());
        if let Err(e) = &outcome {
            self.remove_all(sink);
            sink.telemetry.collector_error(&self.name);
            tracing::warn!(collector = %self.name, error = %e, "Collection failed.");
        }
        if let Some(job) = cut_short {
            // Its result is dropped; waiting keeps one run at a time on a stuck source.
            let _ = job.await;
        }
        outcome
    }

    /// Swaps the collected series in, family by family, and forgets the families this
    /// collector no longer writes.
    fn apply(&self, sink: &Sink, collection: Collection) -> Result<(), CollectError> {
        let mut families = Vec::with_capacity(collection.families.len());
        for f in &collection.families {
            let (name, kind) = family_name(&f.name, f.kind)?;
            if let Some(trading) = &sink.trading
                && fed_by_events(trading, name, kind)
            {
                return Err(CollectError::FedByEvents(name.to_owned()));
            }
            let unit = name.ends_with("_seconds").then_some("seconds");
            let family = sink.registry.register(name, kind, &f.help, unit, &[])?;
            families.push((family, &f.series));
        }
        let mut owned = self.owned.lock();
        let gone: Vec<String> = owned
            .keys()
            .filter(|name| !families.iter().any(|(f, _)| f.name() == name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            let labels = owned.remove(&name).unwrap_or_default();
            if let Some(f) = sink.registry.family(&name) {
                f.remove_where(|l| labels.contains(l));
            }
        }
        for (family, series) in families {
            let before = owned.get(family.name());
            family.replace(|l| before.is_some_and(|b| b.contains(l)), series)?;
            let now = series.iter().map(|(l, _)| l.clone()).collect();
            owned.insert(family.name().to_owned(), now);
        }
        Ok(())
    }

    /// Removes every series this collector wrote.
    fn remove_all(&self, sink: &Sink) {
        let mut owned = self.owned.lock();
        for (name, labels) in owned.iter() {
            if let Some(f) = sink.registry.family(name) {
                f.remove_where(|l| labels.contains(l));
            }
        }
        owned.clear();
    }
}

/// The registry name and type of a collected metric: a counter's name loses its `_total`
/// (the encoder adds it back), a gauge may not carry one.
fn family_name(name: &str, kind: CollectedType) -> Result<(&str, MetricType), CollectError> {
    match kind {
        CollectedType::Counter => Ok((
            name.strip_suffix("_total")
                .filter(|n| !n.is_empty())
                .unwrap_or(name),
            MetricType::Counter,
        )),
        CollectedType::Gauge if name.ends_with("_total") => {
            Err(CollectError::GaugeTotal(name.to_owned()))
        }
        CollectedType::Gauge => Ok((name, MetricType::Gauge)),
    }
}

/// Whether the trading registry serves a family whose samples share a name with `name`'s.
fn fed_by_events(trading: &Registry, name: &str, kind: MetricType) -> bool {
    let other = match trading.check(name, kind) {
        Ok(found) => found,
        Err(RegisterError::Conflict { .. }) => trading.family(name),
        Err(RegisterError::Clash { other, .. }) => trading.family(&other),
    };
    other.is_some_and(|f| !f.is_empty())
}

/// The configured collectors, their registry, and their tasks once started.
pub struct Collectors {
    sink: Arc<Sink>,
    collectors: Vec<Arc<Collector>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Collectors {
    /// The collectors of `config.collectors`, not yet running, writing into a registry of
    /// their own under `config.limits`; `trading` is the registry events feed, whose metrics
    /// collectors may not repeat.
    pub fn new(
        config: &ExporterConfig,
        trading: Option<Arc<Registry>>,
        telemetry: Arc<Telemetry>,
    ) -> Collectors {
        let limits = &config.limits;
        let max_label = limits.max_label_value_bytes;
        let mut collectors = Vec::new();
        let c = &config.collectors;
        for f in &c.files {
            let source = Arc::new(files::Files::new(f, max_label));
            collectors.push(Collector::new(&f.name, f.interval, f.timeout, source));
        }
        for j in &c.json {
            let source = Arc::new(json::JsonFiles::new(j, max_label));
            collectors.push(Collector::new(&j.name, j.interval, j.timeout, source));
        }
        for s in &c.sqlite {
            let source = Arc::new(sqlite::Queries::new(s, max_label));
            collectors.push(Collector::new(&s.name, s.interval, s.timeout, source));
        }
        for collector in &collectors {
            telemetry.collector_declared(&collector.name);
        }
        let registry = Registry::with_limits(limits.max_series_per_family, limits.max_series_total);
        Collectors {
            sink: Arc::new(Sink {
                registry: Arc::new(registry),
                trading,
                telemetry,
            }),
            collectors,
            tasks: Vec::new(),
        }
    }

    /// The registry the collectors write, which `/metrics` serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.sink.registry
    }

    /// The collectors' names, in configuration order (files, json, sqlite).
    pub fn names(&self) -> Vec<&str> {
        self.collectors.iter().map(|c| c.name.as_str()).collect()
    }

    /// Starts one task per collector: a run at once, then one every interval (a run that
    /// overruns delays the next rather than piling up). Needs a tokio runtime.
    pub fn start(&mut self) {
        for collector in &self.collectors {
            let collector = collector.clone();
            let sink = self.sink.clone();
            self.tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(collector.interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let _ = collector.run(&sink).await;
                }
            }));
        }
        if !self.collectors.is_empty() {
            tracing::info!(collectors = self.collectors.len(), "Collectors started.");
        }
    }

    /// Runs collector `name` once now (waiting for a run in progress to end first); `None`
    /// when there is no such collector.
    pub async fn collect(&self, name: &str) -> Option<Result<(), CollectError>> {
        let collector = self.collectors.iter().find(|c| c.name == name)?;
        Some(collector.run(&self.sink).await)
    }

    /// Stops every collector's task and waits for them to end.
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Collectors {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_lose_total_and_gauges_may_not_have_it() {
        assert_eq!(
            family_name("x_total", CollectedType::Counter).unwrap(),
            ("x", MetricType::Counter)
        );
        assert_eq!(
            family_name("x", CollectedType::Counter).unwrap(),
            ("x", MetricType::Counter)
        );
        assert!(family_name("x_total", CollectedType::Gauge).is_err());
    }

    #[test]
    fn empty_labels_are_left_out_and_long_ones_refused() {
        let block = label_block([("a", Some("1")), ("b", Some("")), ("c", None)], 8).unwrap();
        assert_eq!(block, "a=\"1\"");
        let err = label_block([("a", Some("123456789"))], 8).unwrap_err();
        assert_eq!(err.to_string(), "label a is 9 bytes, over the limit of 8");
    }

    #[test]
    fn a_family_fed_by_events_is_refused_only_once_it_has_series() {
        let trading = Registry::default();
        let f = trading
            .register("x", MetricType::Counter, "", None, &[])
            .unwrap();
        assert!(!fed_by_events(&trading, "x", MetricType::Counter));
        assert!(!fed_by_events(&trading, "x_total", MetricType::Gauge));
        f.counter("").unwrap().inc();
        assert!(fed_by_events(&trading, "x", MetricType::Counter));
        assert!(fed_by_events(&trading, "x", MetricType::Gauge));
        assert!(fed_by_events(&trading, "x_total", MetricType::Gauge));
        assert!(!fed_by_events(&trading, "y", MetricType::Gauge));
    }
}
