//! The in-process data path of `run`: the process's own registries read straight into the
//! store, with no HTTP and no parsing, as a scrape of its `/metrics` would record them (`job` and
//! `instance` from `sidecar.self`, `up` 1, `le` normalised as Prometheus 3 does, staleness
//! markers for series that went away), so rules give the same label sets either way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::target::format_openmetrics_float;
use crate::exporter::registry::{MetricType, Registry};
use crate::model::labels::Labels;
use crate::store::{Store, stale_nan};

/// What one series of a family looked like at the last read.
struct Known {
    /// The store labels of each of its samples (one for a counter or gauge; buckets, sum and
    /// count for a histogram).
    labels: Vec<Labels>,
    /// The raw cells last appended.
    bits: Vec<u64>,
    /// The read that last saw it.
    seen: u64,
}

/// Reads registries into a store.
pub struct LocalSource {
    registries: Vec<Arc<Registry>>,
    job: String,
    instance: String,
    known: HashMap<(Arc<str>, Box<str>), Known>,
    read: u64,
    up: Labels,
    filter: Option<super::filter::FilterHandle>,
    /// The filter of the last read: when a reload changes it, series it dropped are looked at
    /// again.
    last_filter: Option<Arc<super::filter::SeriesFilter>>,
}

/// Parses a registry's rendered label block (`engine="a",venue="b\"x"`) into pairs.
fn parse_block(block: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim_start_matches(',').to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name, value));
        rest = &rest[end.min(rest.len())..];
    }
    out
}

impl LocalSource {
    /// A source over `registries` whose series carry `job` and `instance`.
    pub fn new(registries: Vec<Arc<Registry>>, job: &str, instance: &str) -> LocalSource {
        LocalSource {
            registries,
            up: Labels::from_pairs([("__name__", "up"), ("instance", instance), ("job", job)]),
            job: job.to_owned(),
            instance: instance.to_owned(),
            known: HashMap::new(),
            read: 0,
            filter: None,
            last_filter: None,
        }
    }

    /// Keeps only the series `filter` keeps (what rules can read).
    pub fn with_filter(mut self, filter: super::filter::FilterHandle) -> LocalSource {
        self.filter = Some(filter);
        self
    }

    fn store_labels(&self, name: &str, block: &str, extra: Option<(&str, &str)>) -> Labels {
        let mut pairs = parse_block(block);
        // The target's labels win over the exposed ones, as `honor_labels: false` does
        // (Prometheus renames the exposed ones to `exported_*`).
        for target in ["job", "instance"] {
            if let Some(p) = pairs.iter_mut().find(|(n, _)| n == target) {
                p.0 = format!("exported_{target}");
            }
        }
        pairs.push(("__name__".to_owned(), name.to_owned()));
        pairs.push(("job".to_owned(), self.job.clone()));
        pairs.push(("instance".to_owned(), self.instance.clone()));
        if let Some((n, v)) = extra {
            pairs.push((n.to_owned(), v.to_owned()));
        }
        Labels::from_pairs(pairs)
    }

    /// Reads every series at `now` (Unix milliseconds) into `store`. With `full`, every series
    /// is appended, as a scrape would; without, only those whose value changed since the last
    /// read (the fast path between scrapes). Series gone since the last read get a staleness
    /// marker. Gives the metric names that got a new value.
    pub fn read(&mut self, store: &Store, now: i64, full: bool) -> HashSet<String> {
        self.read += 1;
        let read = self.read;
        let mut changed = HashSet::new();
        let _ = store.append(&self.up, now, 1.0);
        let mut counts = Vec::new();
        let filter = self
            .filter
            .as_ref()
            .map(|f| f.read().expect("filter lock").clone());
        let same = match (&filter, &self.last_filter) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.known.retain(|_, k| !k.labels.is_empty());
            self.last_filter.clone_from(&filter);
        }
        for registry in self.registries.clone() {
            for family in registry.families() {
                let name: Arc<str> = family.name().into();
                let kind = family.kind();
                let bounds = family.buckets().to_vec();
                family.for_each(|series| {
                    let bits = series.cell_bits();
                    let key = (name.clone(), Box::<str>::from(series.labels()));
                    let known = match self.known.get_mut(&key) {
                        Some(k) => k,
                        None => {
                            let labels = match kind {
                                MetricType::Counter => vec![self.store_labels(
                                    &format!("{name}_total"),
                                    series.labels(),
                                    None,
                                )],
                                MetricType::Gauge => {
                                    vec![self.store_labels(&name, series.labels(), None)]
                                }
                                MetricType::Histogram => {
                                    let bucket = format!("{name}_bucket");
                                    let mut v: Vec<Labels> = bounds
                                        .iter()
                                        .copied()
                                        .chain([f64::INFINITY])
                                        .map(|b| {
                                            let le = format_openmetrics_float(b);
                                            self.store_labels(
                                                &bucket,
                                                series.labels(),
                                                Some(("le", &le)),
                                            )
                                        })
                                        .collect();
                                    v.push(self.store_labels(
                                        &format!("{name}_sum"),
                                        series.labels(),
                                        None,
                                    ));
                                    v.push(self.store_labels(
                                        &format!("{name}_count"),
                                        series.labels(),
                                        None,
                                    ));
                                    v
                                }
                            };
                            // A series no rule can read is remembered with no labels: skipped.
                            let kept = filter
                                .as_ref()
                                .is_none_or(|f| labels.iter().any(|l| f.keeps(l)));
                            let labels = if kept { labels } else { Vec::new() };
                            self.known.entry(key).or_insert(Known {
                                labels,
                                bits: Vec::new(),
                                seen: 0,
                            })
                        }
                    };
                    known.seen = read;
                    if known.labels.is_empty() {
                        return;
                    }
                    if !full && known.bits == bits {
                        return;
                    }
                    if known.bits != bits {
                        changed.insert(known.labels[0].metric_name().unwrap_or("").to_owned());
                    }
                    match kind {
                        MetricType::Counter | MetricType::Gauge => {
                            let _ = store.append_keeping(&mut known.labels[0], now, series.value());
                        }
                        MetricType::Histogram => {
                            let sum = series.histogram_into(&mut counts);
                            let n = counts.len();
                            for (labels, count) in known.labels[..n].iter_mut().zip(&counts) {
                                let _ = store.append_keeping(labels, now, *count as f64);
                            }
                            let _ = store.append_keeping(&mut known.labels[n], now, sum);
                            let total = counts.last().copied().unwrap_or(0);
                            let _ =
                                store.append_keeping(&mut known.labels[n + 1], now, total as f64);
                            for l in &known.labels {
                                changed.insert(l.metric_name().unwrap_or("").to_owned());
                            }
                        }
                    }
                    known.bits = bits;
                });
            }
        }
        self.known.retain(|_, known| {
            if known.seen == read {
                return true;
            }
            for labels in &known.labels {
                let _ = store.append(labels, now, stale_nan());
                changed.insert(labels.metric_name().unwrap_or("").to_owned());
            }
            false
        });
        changed
    }

    /// Marks every series read so far as stale at `now`, as when a target goes away.
    pub fn stop(&mut self, store: &Store, now: i64) {
        for known in self.known.values() {
            for labels in &known.labels {
                let _ = store.append(labels, now, stale_nan());
            }
        }
        let _ = store.append(&self.up, now, stale_nan());
        self.known.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_blocks_parse_with_escapes() {
        assert_eq!(
            parse_block(r#"engine="a",reason="say \"hi\"\nnow \\ x""#),
            vec![
                ("engine".to_owned(), "a".to_owned()),
                ("reason".to_owned(), "say \"hi\"\nnow \\ x".to_owned())
            ]
        );
        assert!(parse_block("").is_empty());
    }

    fn values(store: &Store, expr: &str, t: i64) -> Vec<(String, f64)> {
        let expr = crate::promql::parse(expr).unwrap();
        match crate::promql::Engine::default()
            .instant(store, &expr, t)
            .unwrap()
            .value
        {
            crate::promql::Value::Vector(v) => {
                let mut out: Vec<(String, f64)> = v
                    .iter()
                    .map(|s| {
                        let l: Vec<String> = s
                            .labels
                            .iter()
                            .map(|l| format!("{}={}", l.name, l.value))
                            .collect();
                        (l.join(","), s.f)
                    })
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registries_read_as_a_scrape_records_them() {
        let registry = Arc::new(Registry::default());
        let orders = registry
            .register("trading_orders", MetricType::Counter, "Orders.", None, &[])
            .unwrap();
        let kill = registry
            .register(
                "trading_kill_switch_active",
                MetricType::Gauge,
                "Kill.",
                None,
                &[],
            )
            .unwrap();
        let latency = registry
            .register(
                "trading_order_latency_seconds",
                MetricType::Histogram,
                "Lat.",
                Some("seconds"),
                &[0.1, 1.0],
            )
            .unwrap();
        orders
            .get_or_create(r#"engine="alpha",job="x""#)
            .unwrap()
            .add(3.0);
        kill.get_or_create(r#"engine="alpha""#).unwrap().set(1.0);
        let h = latency.get_or_create(r#"engine="alpha""#).unwrap();
        latency.observe(&h, 0.5);
        let store = Store::default();
        let mut source = LocalSource::new(vec![registry.clone()], "tradewatch", "127.0.0.1:9470");
        let changed = source.read(&store, 1_000, true);
        assert!(changed.contains("trading_kill_switch_active"));
        assert!(changed.contains("trading_order_latency_seconds_bucket"));
        assert_eq!(
            values(&store, "trading_orders_total", 1_000),
            [("__name__=trading_orders_total,engine=alpha,exported_job=x,instance=127.0.0.1:9470,job=tradewatch".to_owned(), 3.0)]
        );
        assert_eq!(
            values(&store, "trading_order_latency_seconds_bucket", 1_000)
                .into_iter()
                .map(|(l, v)| (
                    l.split(",le=")
                        .nth(1)
                        .unwrap()
                        .split(',')
                        .next()
                        .unwrap()
                        .to_owned(),
                    v
                ))
                .collect::<Vec<_>>(),
            [
                ("+Inf".to_owned(), 1.0),
                ("0.1".to_owned(), 0.0),
                ("1.0".to_owned(), 1.0)
            ]
        );
        assert_eq!(values(&store, "up", 1_000).len(), 1);
        // Nothing changed: the fast path appends nothing and reports nothing.
        assert!(source.read(&store, 1_500, false).is_empty());
        kill.remove_where(|_| true);
        let changed = source.read(&store, 2_000, false);
        assert_eq!(
            changed,
            HashSet::from(["trading_kill_switch_active".to_owned()])
        );
        assert!(
            values(&store, "trading_kill_switch_active", 2_000).is_empty(),
            "stale"
        );
    }
}
