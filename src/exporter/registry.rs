//! The metrics registry: families of series whose values are atomics, so recording costs one
//! atomic operation, and whose label blocks are rendered once, so encoding is mostly copying.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// A monotonically increasing total; exposed with the `_total` suffix.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into buckets, with their sum and count.
    Histogram,
}

impl MetricType {
    /// The lowercase name used in `# TYPE` lines and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A new series would pass a configured limit.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SeriesLimitError {
    /// The family already holds its maximum number of series.
    #[error("family {family} is at its limit of {limit} series")]
    Family {
        /// The family's name.
        family: String,
        /// The configured limit.
        limit: usize,
    },
    /// The registry already holds its maximum number of series.
    #[error("the registry is at its limit of {limit} series")]
    Total {
        /// The configured limit.
        limit: usize,
    },
}

/// One series: its rendered label block and its value cells.
///
/// A counter or gauge has one cell (the value's `f64` bits); a histogram has the sum's bits
/// followed by one count per bucket, the last being `+Inf` (counts are per bucket, not
/// cumulative, so an observation touches one bucket).
#[derive(Debug)]
pub struct Series {
    labels: Box<str>,
    cells: Box<[AtomicU64]>,
}

impl Series {
    fn new(labels: &str, cells: usize) -> Series {
        Series {
            labels: labels.into(),
            cells: (0..cells).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The label block without braces, escaped: `engine="a",venue="b"`.
    pub fn labels(&self) -> &str {
        &self.labels
    }

    /// The value of a counter or gauge.
    pub fn value(&self) -> f64 {
        f64::from_bits(self.cells[0].load(Ordering::Relaxed))
    }

    /// The raw cells, as `f64` bits for values and sums and as integers for bucket counts.
    pub fn cell_bits(&self) -> Vec<u64> {
        self.cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    fn restore(&self, bits: &[u64]) {
        for (cell, b) in self.cells.iter().zip(bits) {
            cell.store(*b, Ordering::Relaxed);
        }
    }

    pub(crate) fn add(&self, v: f64) {
        add_f64(&self.cells[0], v);
    }

    pub(crate) fn set(&self, v: f64) {
        self.cells[0].store(v.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn set_max(&self, v: f64) {
        let _ = self.cells[0].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            (v > f64::from_bits(old)).then_some(v.to_bits())
        });
    }

    pub(crate) fn observe(&self, bounds: &[f64], v: f64) {
        let i = bounds.partition_point(|b| *b < v);
        add_f64(&self.cells[0], v);
        self.cells[1 + i].fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the cumulative bucket counts of a histogram series into `counts` (the last is
    /// the `+Inf` count) and returns the sum.
    pub fn histogram_into(&self, counts: &mut Vec<u64>) -> f64 {
        counts.clear();
        let mut acc = 0;
        counts.extend(self.cells[1..].iter().map(|c| {
            acc += c.load(Ordering::Relaxed);
            acc
        }));
        f64::from_bits(self.cells[0].load(Ordering::Relaxed))
    }

    /// Sum and cumulative bucket counts of a histogram series (the last is the `+Inf` count).
    pub fn histogram(&self) -> (f64, Vec<u64>) {
        let sum = f64::from_bits(self.cells[0].load(Ordering::Relaxed));
        let mut acc = 0;
        let counts = self.cells[1..]
            .iter()
            .map(|c| {
                acc += c.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (sum, counts)
    }
}

fn add_f64(cell: &AtomicU64, v: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some((f64::from_bits(old) + v).to_bits())
    });
}

#[derive(Default)]
struct SeriesSet {
    index: HashMap<Box<str>, usize>,
    list: Vec<Arc<Series>>,
}

/// A metric family: a name, a type, help text, and its series keyed by label block.
pub struct Family {
    name: String,
    kind: MetricType,
    help: String,
    unit: Option<String>,
    buckets: Arc<[f64]>,
    series: RwLock<SeriesSet>,
    limits: Arc<Limits>,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Family {
    /// The family name: for a counter, without `_total`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family's type.
    pub fn kind(&self) -> MetricType {
        self.kind
    }

    /// The help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// The unit declared for OpenMetrics, if any.
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }

    /// A histogram's finite bucket bounds (empty for other types).
    pub fn buckets(&self) -> &[f64] {
        &self.buckets
    }

    /// How many series the family holds.
    pub fn len(&self) -> usize {
        self.series.read().list.len()
    }

    /// Whether the family holds no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cells(&self) -> usize {
        match self.kind {
            MetricType::Histogram => 2 + self.buckets.len(),
            _ => 1,
        }
    }

    /// The series with this label block, if it exists.
    pub fn lookup(&self, labels: &str) -> Option<Arc<Series>> {
        let set = self.series.read();
        set.index.get(labels).map(|&i| set.list[i].clone())
    }

    /// The series with this label block, created (at zero) if the limits allow.
    pub fn get_or_create(&self, labels: &str) -> Result<Arc<Series>, SeriesLimitError> {
        if let Some(s) = self.lookup(labels) {
            return Ok(s);
        }
        self.check_room(1, 1)?;
        Ok(self.create_unchecked(labels))
    }

    /// Whether `family_new` more series in this family and `total_new` more in the registry fit
    /// under the limits.
    pub fn check_room(&self, family_new: usize, total_new: usize) -> Result<(), SeriesLimitError> {
        if self.len() + family_new > self.limits.per_family {
            return Err(SeriesLimitError::Family {
                family: self.name.clone(),
                limit: self.limits.per_family,
            });
        }
        if self.limits.total.load(Ordering::Relaxed) + total_new > self.limits.max_total {
            return Err(SeriesLimitError::Total {
                limit: self.limits.max_total,
            });
        }
        Ok(())
    }

    /// The series with this label block, created without checking limits (replaying what was
    /// already accepted).
    pub fn create_unchecked(&self, labels: &str) -> Arc<Series> {
        let mut set = self.series.write();
        if let Some(&i) = set.index.get(labels) {
            return set.list[i].clone();
        }
        let series = Arc::new(Series::new(labels, self.cells()));
        let i = set.list.len();
        set.list.push(series.clone());
        set.index.insert(labels.into(), i);
        self.limits.total.fetch_add(1, Ordering::Relaxed);
        series
    }

    /// Removes the series whose label block `remove` accepts; returns how many went.
    pub fn remove_where(&self, mut remove: impl FnMut(&str) -> bool) -> usize {
        let mut set = self.series.write();
        let before = set.list.len();
        set.list.retain(|s| !remove(&s.labels));
        let removed = before - set.list.len();
        if removed > 0 {
            let SeriesSet { index, list } = &mut *set;
            index.clear();
            index.extend(list.iter().enumerate().map(|(i, s)| (s.labels.clone(), i)));
            self.limits.total.fetch_sub(removed, Ordering::Relaxed);
        }
        removed
    }

    /// Replaces the series that `owned` accepts by `values` (label block, value) under one write
    /// lock, so a reader sees either the old series or the new ones, never a mix: owned series
    /// missing from `values` go, the others are set (created when new). For counters and
    /// gauges. Fails, changing nothing, when the result would pass the limits.
    pub fn replace(
        &self,
        mut owned: impl FnMut(&str) -> bool,
        values: &[(String, f64)],
    ) -> Result<(), SeriesLimitError> {
        let mut set = self.series.write();
        let wanted: std::collections::HashSet<&str> =
            values.iter().map(|(l, _)| l.as_str()).collect();
        let keep: Vec<bool> = set
            .list
            .iter()
            .map(|s| !owned(&s.labels) || wanted.contains(&*s.labels))
            .collect();
        let removed = keep.iter().filter(|k| !**k).count();
        let added = wanted
            .iter()
            .filter(|l| !set.index.contains_key(**l))
            .count();
        let total = self.limits.total.load(Ordering::Relaxed);
        if set.list.len() - removed + added > self.limits.per_family {
            return Err(SeriesLimitError::Family {
                family: self.name.clone(),
                limit: self.limits.per_family,
            });
        }
        if (total + added).saturating_sub(removed) > self.limits.max_total {
            return Err(SeriesLimitError::Total {
                limit: self.limits.max_total,
            });
        }
        if removed > 0 {
            let mut keep = keep.into_iter();
            let SeriesSet { index, list } = &mut *set;
            list.retain(|_| keep.next().unwrap_or(true));
            index.clear();
            index.extend(list.iter().enumerate().map(|(i, s)| (s.labels.clone(), i)));
            self.limits.total.fetch_sub(removed, Ordering::Relaxed);
        }
        for (labels, value) in values {
            let series = match set.index.get(labels.as_str()) {
                Some(&i) => set.list[i].clone(),
                None => {
                    let series = Arc::new(Series::new(labels, self.cells()));
                    let i = set.list.len();
                    set.list.push(series.clone());
                    set.index.insert(labels.as_str().into(), i);
                    self.limits.total.fetch_add(1, Ordering::Relaxed);
                    series
                }
            };
            series.set(*value);
        }
        Ok(())
    }

    /// Calls `f` with every series, in creation order, under the family's read lock.
    pub fn for_each(&self, mut f: impl FnMut(&Series)) {
        for s in &self.series.read().list {
            f(s);
        }
    }

    /// Restores a series from its label block and raw cells (snapshot loading).
    pub fn restore_series(&self, labels: &str, bits: &[u64]) -> bool {
        if bits.len() != self.cells() {
            return false;
        }
        self.create_unchecked(labels).restore(bits);
        true
    }
}

struct Limits {
    per_family: usize,
    max_total: usize,
    total: AtomicUsize,
}

impl Limits {
    fn check(
        &self,
        family: &str,
        family_len: usize,
        total_new: usize,
    ) -> Result<(), SeriesLimitError> {
        if family_len > self.per_family {
            return Err(SeriesLimitError::Family {
                family: family.to_owned(),
                limit: self.per_family,
            });
        }
        if self.total.load(Ordering::Relaxed) + total_new > self.max_total {
            return Err(SeriesLimitError::Total {
                limit: self.max_total,
            });
        }
        Ok(())
    }
}

/// An ordered set of metric families with series limits.
pub struct Registry {
    families: RwLock<Vec<Arc<Family>>>,
    by_name: RwLock<HashMap<String, usize>>,
    /// Every sample name a family writes (and its own name), with the family that owns it.
    samples: RwLock<HashMap<String, usize>>,
    limits: Arc<Limits>,
}

/// The names a family of this type occupies in an exposition: its own and its samples'.
pub fn sample_names(name: &str, kind: MetricType) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        MetricType::Counter => &["", "_total", "_created"],
        MetricType::Gauge => &[""],
        MetricType::Histogram => &["", "_bucket", "_count", "_sum", "_created"],
    };
    suffixes.iter().map(|s| format!("{name}{s}")).collect()
}

impl Default for Registry {
    fn default() -> Self {
        Registry::with_limits(usize::MAX, usize::MAX)
    }
}

/// A family could not be registered.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    /// A family of that name exists with another type.
    #[error("metric {name} is already registered as a {existing}")]
    Conflict {
        /// The family name.
        name: String,
        /// The type it was registered with.
        existing: &'static str,
    },
    /// The family's samples would have the same names as another family's.
    #[error("metric {name} clashes with the samples of {existing} {other}")]
    Clash {
        /// The family name.
        name: String,
        /// The other family.
        other: String,
        /// The other family's type.
        existing: &'static str,
    },
}

impl Registry {
    /// A registry that holds at most `per_family` series in a family and `total` in all.
    pub fn with_limits(per_family: usize, total: usize) -> Registry {
        Registry {
            families: RwLock::default(),
            by_name: RwLock::default(),
            samples: RwLock::default(),
            limits: Arc::new(Limits {
                per_family,
                max_total: total,
                total: AtomicUsize::new(0),
            }),
        }
    }

    /// Whether a family `name` of type `kind` could be registered: `Ok(Some)` with the existing
    /// family of that name and type, `Ok(None)` when it is new and clashes with nothing.
    pub fn check(
        &self,
        name: &str,
        kind: MetricType,
    ) -> Result<Option<Arc<Family>>, RegisterError> {
        let families = self.families.read();
        if let Some(&i) = self.by_name.read().get(name) {
            let f = &families[i];
            return if f.kind == kind {
                Ok(Some(f.clone()))
            } else {
                Err(RegisterError::Conflict {
                    name: name.to_owned(),
                    existing: f.kind.as_str(),
                })
            };
        }
        let samples = self.samples.read();
        for sample in sample_names(name, kind) {
            if let Some(&i) = samples.get(&sample) {
                let other = &families[i];
                return Err(RegisterError::Clash {
                    name: name.to_owned(),
                    other: other.name.clone(),
                    existing: other.kind.as_str(),
                });
            }
        }
        Ok(None)
    }

    /// Registers a family, or returns the existing one of the same name and type.
    pub fn register(
        &self,
        name: &str,
        kind: MetricType,
        help: &str,
        unit: Option<&str>,
        buckets: &[f64],
    ) -> Result<Arc<Family>, RegisterError> {
        if let Some(f) = self.check(name, kind)? {
            return Ok(f);
        }
        // Re-check under the write locks: another thread may have registered meanwhile.
        let mut families = self.families.write();
        let mut by_name = self.by_name.write();
        let mut samples = self.samples.write();
        if let Some(&i) = by_name.get(name) {
            let f = families[i].clone();
            return if f.kind == kind {
                Ok(f)
            } else {
                Err(RegisterError::Conflict {
                    name: name.to_owned(),
                    existing: f.kind.as_str(),
                })
            };
        }
        let names = sample_names(name, kind);
        if let Some(&i) = names.iter().find_map(|n| samples.get(n)) {
            let other = &families[i];
            return Err(RegisterError::Clash {
                name: name.to_owned(),
                other: other.name.clone(),
                existing: other.kind.as_str(),
            });
        }
        let family = Arc::new(Family {
            name: name.to_owned(),
            kind,
            help: help.to_owned(),
            unit: unit.map(str::to_owned),
            buckets: if kind == MetricType::Histogram {
                buckets.into()
            } else {
                Arc::from([])
            },
            series: RwLock::default(),
            limits: self.limits.clone(),
        });
        let i = families.len();
        by_name.insert(name.to_owned(), i);
        samples.extend(names.into_iter().map(|n| (n, i)));
        families.push(family.clone());
        Ok(family)
    }

    /// The family of this name (for a counter, the name without `_total`).
    pub fn family(&self, name: &str) -> Option<Arc<Family>> {
        let i = *self.by_name.read().get(name)?;
        Some(self.families.read()[i].clone())
    }

    /// Every family, in registration order.
    pub fn families(&self) -> Vec<Arc<Family>> {
        self.families.read().clone()
    }

    /// Whether family `name` may hold `family_len` series and the registry `total_new` more.
    pub fn check_room(
        &self,
        name: &str,
        family_len: usize,
        total_new: usize,
    ) -> Result<(), SeriesLimitError> {
        self.limits.check(name, family_len, total_new)
    }

    /// Series held across all families.
    pub fn series_total(&self) -> usize {
        self.limits.total.load(Ordering::Relaxed)
    }
}

/// A counter series handle: recording is one atomic operation.
#[derive(Clone, Debug)]
pub struct Counter(pub(crate) Arc<Series>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.add(1.0);
    }

    /// Adds `v`; negative and non-finite increments are ignored, as a counter never decreases.
    pub fn inc_by(&self, v: f64) {
        if v >= 0.0 && v.is_finite() {
            self.0.add(v);
        }
    }

    /// The current total.
    pub fn get(&self) -> f64 {
        self.0.value()
    }
}

/// A gauge series handle.
#[derive(Clone, Debug)]
pub struct Gauge(pub(crate) Arc<Series>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }

    /// Adds `v` (which may be negative).
    pub fn add(&self, v: f64) {
        self.0.add(v);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.0.value()
    }
}

/// A histogram series handle.
#[derive(Clone, Debug)]
pub struct Histogram {
    pub(crate) series: Arc<Series>,
    pub(crate) bounds: Arc<[f64]>,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, v: f64) {
        self.series.observe(&self.bounds, v);
    }

    /// The sum of observations and the cumulative bucket counts (`+Inf` last).
    pub fn get(&self) -> (f64, Vec<u64>) {
        self.series.histogram()
    }
}

impl Family {
    /// A counter handle on the series with these labels.
    pub fn counter(&self, labels: &str) -> Result<Counter, SeriesLimitError> {
        Ok(Counter(self.get_or_create(labels)?))
    }

    /// A gauge handle on the series with these labels.
    pub fn gauge(&self, labels: &str) -> Result<Gauge, SeriesLimitError> {
        Ok(Gauge(self.get_or_create(labels)?))
    }

    /// A histogram handle on the series with these labels.
    pub fn histogram(&self, labels: &str) -> Result<Histogram, SeriesLimitError> {
        Ok(Histogram {
            series: self.get_or_create(labels)?,
            bounds: self.buckets.clone(),
        })
    }

    /// Applies an observation to `series`, which must belong to this family.
    pub fn observe(&self, series: &Series, v: f64) {
        series.observe(&self.buckets, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        let r = Registry::with_limits(2, 3);
        let a = r.register("a", MetricType::Gauge, "", None, &[]).unwrap();
        let b = r.register("b", MetricType::Gauge, "", None, &[]).unwrap();
        a.get_or_create("x=\"1\"").unwrap();
        a.get_or_create("x=\"2\"").unwrap();
        a.get_or_create("x=\"2\"").unwrap();
        assert!(matches!(
            a.get_or_create("x=\"3\""),
            Err(SeriesLimitError::Family { .. })
        ));
        b.get_or_create("y=\"1\"").unwrap();
        assert!(matches!(
            b.get_or_create("y=\"2\""),
            Err(SeriesLimitError::Total { .. })
        ));
        assert_eq!(a.remove_where(|l| l.ends_with("\"1\"")), 1);
        assert_eq!(r.series_total(), 2);
        b.get_or_create("y=\"2\"").unwrap();
    }

    #[test]
    fn conflicting_types_and_clashing_samples_are_refused() {
        let r = Registry::default();
        r.register("a", MetricType::Gauge, "", None, &[]).unwrap();
        assert!(r.register("a", MetricType::Counter, "", None, &[]).is_err());
        r.register("h", MetricType::Histogram, "", None, &[1.0])
            .unwrap();
        let err = r
            .register("h_count", MetricType::Gauge, "", None, &[])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "metric h_count clashes with the samples of histogram h"
        );
        r.register("c", MetricType::Counter, "", None, &[]).unwrap();
        assert!(
            r.register("c_total", MetricType::Gauge, "", None, &[])
                .is_err()
        );
        assert!(
            r.register("c_created", MetricType::Gauge, "", None, &[])
                .is_err()
        );
        assert!(
            r.register("x", MetricType::Histogram, "", None, &[1.0])
                .is_ok()
        );
        assert!(r.check("x", MetricType::Histogram).unwrap().is_some());
        assert!(r.check("y", MetricType::Gauge).unwrap().is_none());
    }

    #[test]
    fn replace_swaps_only_the_owned_series_within_limits() {
        let r = Registry::with_limits(3, 10);
        let f = r.register("g", MetricType::Gauge, "", None, &[]).unwrap();
        f.gauge("o=\"other\"").unwrap().set(9.0);
        f.gauge("m=\"a\"").unwrap().set(1.0);
        f.gauge("m=\"b\"").unwrap().set(2.0);
        let mine = |l: &str| l.starts_with("m=");
        f.replace(mine, &[("m=\"b\"".into(), 3.0), ("m=\"c\"".into(), 4.0)])
            .unwrap();
        let mut seen = Vec::new();
        f.for_each(|s| seen.push((s.labels().to_owned(), s.value())));
        assert_eq!(
            seen,
            [
                ("o=\"other\"".to_owned(), 9.0),
                ("m=\"b\"".to_owned(), 3.0),
                ("m=\"c\"".to_owned(), 4.0)
            ]
        );
        assert_eq!(r.series_total(), 3);
        let over = [
            ("m=\"x\"".into(), 1.0),
            ("m=\"y\"".into(), 1.0),
            ("m=\"z\"".into(), 1.0),
        ];
        assert!(matches!(
            f.replace(mine, &over),
            Err(SeriesLimitError::Family { .. })
        ));
        assert_eq!(f.len(), 3, "a refused replace changes nothing");
        f.replace(mine, &[]).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(r.series_total(), 1);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let r = Registry::default();
        let f = r
            .register("h", MetricType::Histogram, "", None, &[1.0, 2.0])
            .unwrap();
        let h = f.histogram("").unwrap();
        for v in [0.5, 1.0, 1.5, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.get(), (6.0, vec![2, 3, 4]));
    }
}
