//! The in-memory series store the PromQL engine reads: one append path, bounded retention per
//! series, staleness markers, and selection by label matchers through an inverted index.
//!
//! ```
//! use tradewatch::model::labels::Labels;
//! use tradewatch::store::{Matcher, Queryable, Store, StoreOptions};
//!
//! let store = Store::new(StoreOptions { retention_ms: 600_000 });
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
//! store.append(&up, 1_000, 1.0).unwrap();
//! store.append(&up, 2_000, 0.0).unwrap();
//! assert!(store.append(&up, 1_500, 1.0).is_err()); // older than the last sample
//!
//! let mut seen = Vec::new();
//! store
//!     .select(&[Matcher::equal("job", "api")], 0, 10_000, &mut |labels, samples| {
//!         seen.push((labels.clone(), samples.len()));
//!     })
//!     .unwrap();
//! assert_eq!(seen, vec![(up, 2)]);
//! ```

mod index;
pub mod matcher;

use std::borrow::Cow;
use std::collections::HashMap;

use parking_lot::RwLock;

use crate::model::labels::{FxBuildHasher, Labels};
use index::Postings;
pub use matcher::{InvalidRegex, MatchKind, Matcher};

/// The bit pattern of Prometheus's staleness marker, a NaN that no arithmetic produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Prometheus's staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (and not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a timestamp in milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value (possibly the staleness marker).
    pub f: f64,
}

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    /// Prometheus refuses samples older than a series' newest.
    #[error("out of order sample for {labels}: {t_ms} is before the last sample at {last_ms}")]
    OutOfOrder {
        /// The series.
        labels: Labels,
        /// The refused sample's timestamp.
        t_ms: i64,
        /// The newest timestamp stored.
        last_ms: i64,
    },
    /// A second, different value at a timestamp already stored.
    #[error("duplicate sample for timestamp {t_ms} of {labels}")]
    Duplicate {
        /// The series.
        labels: Labels,
        /// The timestamp.
        t_ms: i64,
    },
    /// A series must have at least one label.
    #[error("empty label set")]
    EmptyLabels,
}

/// Why a selection failed (the store itself never fails; other sources can).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("selecting series failed: {message}")]
pub struct SelectError {
    /// What went wrong.
    pub message: String,
}

/// What a source knows of a series' samples beyond the samples themselves, so that readers can
/// skip scans over them. [`SeriesFacts::UNKNOWN`] is always a correct answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesFacts {
    /// No staleness marker is later than this (milliseconds).
    pub stale_until_ms: i64,
    /// No sample later than this (milliseconds) is lower than the sample before it, staleness
    /// markers left out: a counter has not reset since.
    pub drop_until_ms: i64,
}

impl SeriesFacts {
    /// Nothing known: every scan is needed.
    pub const UNKNOWN: SeriesFacts = SeriesFacts {
        stale_until_ms: i64::MAX,
        drop_until_ms: i64::MAX,
    };

    /// Whether `samples` (in time order, starting with `samples[0]`) may hold a staleness marker.
    pub fn may_be_stale(&self, samples: &[Sample]) -> bool {
        samples.first().is_some_and(|s| self.stale_until_ms >= s.t)
    }

    /// Whether some sample of a window starting at `first_ms` may be lower than the one before it
    /// in the window.
    pub fn may_drop_after(&self, first_ms: i64) -> bool {
        self.drop_until_ms > first_ms
    }
}

/// What the PromQL engine reads through: series matching every matcher, with their samples in a
/// time range. Implemented by [`Store`]; other sources can implement it too.
pub trait Queryable {
    /// [`Queryable::select`], with what the source knows of each series' samples.
    fn select_with_facts(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts),
    ) -> Result<(), SelectError> {
        self.select(matchers, start_ms, end_ms, &mut |l, s| {
            visit(l, s, SeriesFacts::UNKNOWN)
        })
    }

    /// [`Queryable::select_with_facts`] that first tells `expect` how many series it may visit
    /// at most, for the caller to make room for them (sources that do not know skip that).
    fn select_sized(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        expect: &mut dyn FnMut(usize),
        visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts),
    ) -> Result<(), SelectError> {
        let _ = expect;
        self.select_with_facts(matchers, start_ms, end_ms, visit)
    }

    /// Calls `visit` once for each series matching all of `matchers` that has at least one sample
    /// with `start_ms <= t <= end_ms`, with those samples in time order (staleness markers
    /// included).
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(&Labels, &[Sample]),
    ) -> Result<(), SelectError>;
}

/// How the store bounds what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// How far behind a series' newest sample its samples are kept, in milliseconds.
    pub retention_ms: i64,
}

impl Default for StoreOptions {
    /// Keeps an hour per series.
    fn default() -> Self {
        StoreOptions {
            retention_ms: 3_600_000,
        }
    }
}

/// One series in memory: its labels and samples in time order from `start` on.
#[derive(Debug)]
struct MemSeries {
    labels: Labels,
    samples: Vec<Sample>,
    /// Samples before this index are past retention and will be compacted away.
    start: usize,
    /// The newest non-stale value, for telling drops (counter resets) as samples arrive.
    last_value: f64,
    /// The time of the newest staleness marker and of the newest drop, as [`SeriesFacts`].
    facts: SeriesFacts,
    /// The times of the oldest and newest live samples (when there are any), kept beside the
    /// series so that a selection reads only the samples its window holds.
    first_t: i64,
    last_t: i64,
}

impl MemSeries {
    fn live(&self) -> &[Sample] {
        &self.samples[self.start..]
    }

    /// Appends a sample. A full buffer first drops what is past retention (moving the live
    /// samples to its front) and grows only when that leaves room for fewer than an eighth of
    /// them more, by a quarter of them: a series at its retention window holds room for at most
    /// 5/4 of its live samples (plus 4), and a sample is moved at most 8 times. (With doubling,
    /// a window just under a power of two held room for twice its samples: 34 bytes a sample.)
    fn push(&mut self, sample: Sample) {
        let samples = &mut self.samples;
        if samples.len() == samples.capacity() {
            if self.start > 0 {
                samples.drain(..self.start);
                self.start = 0;
            }
            let live = samples.len();
            if samples.capacity() - live < live / 8 + 1 {
                samples.reserve_exact(live / 4 + 4);
            }
        }
        if self.start == samples.len() {
            self.first_t = sample.t;
        }
        self.last_t = sample.t;
        samples.push(sample);
    }

    /// The live samples from `start_ms` to `end_ms` (both included).
    fn window(&self, start_ms: i64, end_ms: i64) -> &[Sample] {
        let live = self.live();
        if live.is_empty() || start_ms > end_ms || start_ms > self.last_t || end_ms < self.first_t {
            return &[];
        }
        // Rule windows usually cover a series' oldest or newest sample: no search then.
        let from = if start_ms <= self.first_t {
            0
        } else {
            first_at_or_after(live, self.first_t, self.last_t, start_ms)
        };
        let to = if end_ms >= self.last_t {
            live.len()
        } else {
            first_at_or_after(live, self.first_t, self.last_t, end_ms + 1)
        };
        &live[from..to]
    }

    /// Drops the samples older than `min_t`.
    fn trim(&mut self, min_t: i64) {
        if self.start == self.samples.len() || self.first_t >= min_t {
            // Nothing past retention (known without reading the samples).
            return;
        }
        let dead = self.live().partition_point(|s| s.t < min_t);
        self.start += dead;
        if let Some(first) = self.live().first() {
            self.first_t = first.t;
        }
        if self.start > 64 && self.start * 2 > self.samples.len() {
            self.samples.drain(..self.start);
            self.start = 0;
        }
    }
}

/// The index of the first of `live` (times strictly increasing, from `first_t` to `last_t`,
/// `first_t < t <= last_t`) at or after `t`. Scraped samples are about evenly spaced, so the
/// index is guessed from the times and then bracketed by doubling steps from the guess: one or
/// two reads near the answer instead of a binary search's reads across the whole buffer.
fn first_at_or_after(live: &[Sample], first_t: i64, last_t: i64, t: i64) -> usize {
    let n = live.len();
    debug_assert!(n > 0 && first_t < t && t <= last_t);
    let span = (last_t - first_t) as u128;
    let guess = ((t - first_t) as u128 * (n - 1) as u128 / span) as usize;
    let (mut lo, mut hi);
    if live[guess].t < t {
        // The answer is after the guess (and at most the last index, whose time is >= t).
        lo = guess + 1;
        hi = n - 1;
        let mut step = 1;
        while guess + step < n - 1 {
            let probe = guess + step;
            if live[probe].t >= t {
                hi = probe;
                break;
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        // The answer is the guess or before it (index 0's time is < t).
        lo = 1;
        hi = guess;
        let mut step = 1;
        while step < guess {
            let probe = guess - step;
            if live[probe].t < t {
                lo = probe + 1;
                break;
            }
            hi = probe;
            step *= 2;
        }
    }
    lo + live[lo..hi].partition_point(|x| x.t < t)
}

#[derive(Debug, Default)]
struct Inner {
    /// Series by id; `None` once collected.
    series: Vec<Option<MemSeries>>,
    ids: HashMap<Labels, u32, FxBuildHasher>,
    postings: Postings,
    live: usize,
}

/// Counts describing what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Series held.
    pub series: usize,
    /// Samples held (staleness markers included).
    pub samples: usize,
}

/// The in-memory series store. Appends and selections may run from several threads.
#[derive(Debug, Default)]
pub struct Store {
    options: StoreOptions,
    inner: RwLock<Inner>,
}

impl Store {
    /// An empty store.
    pub fn new(options: StoreOptions) -> Self {
        Store {
            options,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// Appends one sample. A sample older than the series' newest is refused as Prometheus
    /// refuses it; the same timestamp again is accepted silently when the value is identical and
    /// refused otherwise. Append [`stale_nan`] to mark a series stale.
    ///
    /// When the append creates the series, the answer is the label set the store keeps for it:
    /// equal to `labels`, its strings shared with the other series. A caller that keeps label
    /// sets across appends (the scrape loop) keeps that one instead of its own.
    pub fn append(
        &self,
        labels: &Labels,
        t_ms: i64,
        value: f64,
    ) -> Result<Option<Labels>, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        let retention = self.options.retention_ms;
        let mut inner = self.inner.write();
        let mut created = None;
        let id = match inner.ids.get(labels) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(inner.series.len()).expect("fewer than 2^32 series");
                // The index's copies of the names and values: series share their strings, for
                // less memory and strings that stay in the CPU's caches while queries compare
                // them.
                let labels = labels.with_shared_strings(|l| inner.postings.shared(l));
                created = Some(labels.clone());
                inner.series.push(Some(MemSeries {
                    labels: labels.clone(),
                    samples: Vec::new(),
                    start: 0,
                    last_value: f64::NAN,
                    facts: SeriesFacts {
                        stale_until_ms: i64::MIN,
                        drop_until_ms: i64::MIN,
                    },
                    first_t: 0,
                    last_t: 0,
                }));
                inner.postings.add(id, &labels);
                inner.ids.insert(labels, id);
                inner.live += 1;
                id
            }
        };
        let series = inner.series[id as usize]
            .as_mut()
            .expect("indexed series are present");
        if let Some(last) = series.live().last() {
            if t_ms < last.t {
                return Err(AppendError::OutOfOrder {
                    labels: labels.clone(),
                    t_ms,
                    last_ms: last.t,
                });
            }
            if t_ms == last.t {
                if last.f.to_bits() == value.to_bits() {
                    return Ok(created);
                }
                return Err(AppendError::Duplicate {
                    labels: labels.clone(),
                    t_ms,
                });
            }
        }
        series.push(Sample { t: t_ms, f: value });
        if is_stale_nan(value) {
            series.facts.stale_until_ms = t_ms;
        } else {
            if value < series.last_value {
                series.facts.drop_until_ms = t_ms;
            }
            series.last_value = value;
        }
        series.trim(t_ms.saturating_sub(retention));
        Ok(created)
    }

    /// [`Store::append`], and when that creates the series, `labels` becomes the store's copy
    /// (for callers that keep label sets across appends: their strings are then shared).
    pub fn append_keeping(
        &self,
        labels: &mut Labels,
        t_ms: i64,
        value: f64,
    ) -> Result<(), AppendError> {
        if let Some(shared) = self.append(labels, t_ms, value)? {
            *labels = shared;
        }
        Ok(())
    }

    /// Drops every sample older than `min_t_ms` and every series left without samples.
    pub fn truncate_before(&self, min_t_ms: i64) {
        let mut inner = self.inner.write();
        let mut removed = false;
        let Inner {
            series, ids, live, ..
        } = &mut *inner;
        for slot in series.iter_mut() {
            if let Some(s) = slot {
                s.trim(min_t_ms);
                if s.live().is_empty() {
                    ids.remove(&s.labels);
                    *slot = None;
                    *live -= 1;
                    removed = true;
                }
            }
        }
        if removed {
            let Inner {
                series, postings, ..
            } = &mut *inner;
            postings.retain(|id| series[id as usize].is_some());
        }
    }

    /// Removes every series.
    pub fn clear(&self) {
        *self.inner.write() = Inner::default();
    }

    /// How many series and samples are held.
    pub fn stats(&self) -> StoreStats {
        let inner = self.inner.read();
        StoreStats {
            series: inner.live,
            samples: inner.series.iter().flatten().map(|s| s.live().len()).sum(),
        }
    }

    /// The distinct values of a label, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let inner = self.inner.read();
        let mut v: Vec<String> = inner
            .postings
            .values(name)
            .into_iter()
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// The label names in use, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let inner = self.inner.read();
        let mut v: Vec<String> = inner
            .postings
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        v.sort();
        v
    }
}

/// Up to this many candidate series, a non-equality matcher is checked against each one's labels.
const FILTER_BELOW: usize = 4096;

impl Inner {
    /// The ids of the series matching all matchers, ascending; borrowed from the index when one
    /// postings list answers the matchers.
    fn matching(&self, matchers: &[Matcher]) -> Cow<'_, [u32]> {
        let mut candidates: Option<Cow<'_, [u32]>> = None;
        let mut rest = Vec::new();
        // Equality first: its postings are borrowed as they are. A regex or `!=` matcher after
        // that checks the few candidates' labels rather than merging the postings of every value
        // it matches.
        let (equal, other): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| m.kind == MatchKind::Equal);
        for m in equal.into_iter().chain(other) {
            if m.kind != MatchKind::Equal
                && candidates.as_ref().is_some_and(|c| c.len() <= FILTER_BELOW)
            {
                rest.push(m);
                continue;
            }
            match self.postings.for_matcher(m) {
                Some(ids) => {
                    candidates = Some(match candidates {
                        None => ids,
                        Some(c) => Cow::Owned(index::intersect(&c, &ids)),
                    });
                }
                None => rest.push(m),
            }
            if candidates.as_ref().is_some_and(|c| c.is_empty()) {
                return Cow::Borrowed(&[]);
            }
        }
        let candidates = candidates.unwrap_or_else(|| {
            Cow::Owned(
                (0..self.series.len() as u32)
                    .filter(|&id| self.series[id as usize].is_some())
                    .collect(),
            )
        });
        if rest.is_empty() {
            return candidates;
        }
        Cow::Owned(
            candidates
                .iter()
                .copied()
                .filter(|&id| {
                    let s = self.series[id as usize]
                        .as_ref()
                        .expect("postings name live series");
                    rest.iter().all(|m| m.matches_labels(&s.labels))
                })
                .collect(),
        )
    }
}

impl Queryable for Store {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(&Labels, &[Sample]),
    ) -> Result<(), SelectError> {
        self.select_with_facts(matchers, start_ms, end_ms, &mut |l, s, _| visit(l, s))
    }

    fn select_with_facts(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts),
    ) -> Result<(), SelectError> {
        self.select_sized(matchers, start_ms, end_ms, &mut |_| {}, visit)
    }

    fn select_sized(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        expect: &mut dyn FnMut(usize),
        visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts),
    ) -> Result<(), SelectError> {
        let inner = self.inner.read();
        let ids = inner.matching(matchers);
        expect(ids.len());
        for &id in ids.iter() {
            let Some(s) = inner.series[id as usize].as_ref() else {
                continue;
            };
            let window = s.window(start_ms, end_ms);
            if !window.is_empty() {
                visit(&s.labels, window, s.facts);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn names(store: &Store, matchers: &[Matcher]) -> Vec<String> {
        let mut out = Vec::new();
        store
            .select(matchers, i64::MIN, i64::MAX, &mut |labels, _| {
                out.push(labels.to_string())
            })
            .unwrap();
        out.sort();
        out
    }

    #[test]
    fn out_of_order_and_duplicates() {
        let s = Store::new(StoreOptions::default());
        let a = l(&[("__name__", "a")]);
        s.append(&a, 10, 1.0).unwrap();
        s.append(&a, 10, 1.0).unwrap();
        assert!(matches!(
            s.append(&a, 10, 2.0),
            Err(AppendError::Duplicate { .. })
        ));
        assert!(matches!(
            s.append(&a, 5, 2.0),
            Err(AppendError::OutOfOrder { .. })
        ));
        s.append(&a, 20, stale_nan()).unwrap();
        assert_eq!(s.stats().samples, 2);
        assert!(s.append(&Labels::empty(), 1, 1.0).is_err());
    }

    #[test]
    fn retention_per_series() {
        let s = Store::new(StoreOptions { retention_ms: 100 });
        let a = l(&[("__name__", "a")]);
        for t in 0..1000 {
            s.append(&a, t, t as f64).unwrap();
        }
        let mut got = Vec::new();
        s.select(&[Matcher::equal("__name__", "a")], 0, 2000, &mut |_, xs| {
            got = xs.to_vec()
        })
        .unwrap();
        assert_eq!(got.first().unwrap().t, 899);
        assert_eq!(got.len(), 101);
        s.truncate_before(2000);
        assert_eq!(s.stats(), StoreStats::default());
        assert!(names(&s, &[]).is_empty());
    }

    #[test]
    fn a_series_at_its_window_keeps_little_room_beyond_it() {
        // Windows of 11, 41, 121 and 601 samples: 10 s, 10 min at 15 s, 5 s and 1 s.
        for window in [11_i64, 41, 121, 601] {
            let s = Store::new(StoreOptions {
                retention_ms: window - 1,
            });
            let a = l(&[("__name__", "a")]);
            for t in 0..window * 10 {
                s.append(&a, t, t as f64).unwrap();
                let inner = s.inner.read();
                let series = inner.series[0].as_ref().unwrap();
                let live = series.live();
                assert_eq!(live.len() as i64, (t + 1).min(window));
                assert_eq!(live.last().unwrap().t, t);
                if t >= window * 2 {
                    let room = series.samples.capacity();
                    assert!(
                        room * 4 <= live.len() * 5 + 16,
                        "window {window}: room for {room} samples"
                    );
                }
            }
        }
    }

    #[test]
    fn matchers_with_prometheus_semantics() {
        let s = Store::new(StoreOptions::default());
        s.append(&l(&[("__name__", "m"), ("job", "a")]), 1, 1.0)
            .unwrap();
        s.append(&l(&[("__name__", "m"), ("job", "b"), ("x", "1")]), 1, 1.0)
            .unwrap();
        s.append(&l(&[("__name__", "n"), ("job", "a")]), 1, 1.0)
            .unwrap();
        let re = |n: &str, v: &str| Matcher::new(MatchKind::Regex, n, v).unwrap();
        let nre = |n: &str, v: &str| Matcher::new(MatchKind::NotRegex, n, v).unwrap();
        assert_eq!(names(&s, &[Matcher::equal("__name__", "m")]).len(), 2);
        assert_eq!(
            names(
                &s,
                &[Matcher::equal("__name__", "m"), Matcher::equal("x", "")]
            ),
            [r#"{__name__="m", job="a"}"#]
        );
        assert_eq!(
            names(&s, &[re("job", "a|b"), nre("__name__", "n")]).len(),
            2
        );
        // A regex or `!=` after (or before) an equality checks the candidates' labels.
        assert_eq!(
            names(&s, &[re("job", "a|b"), Matcher::equal("__name__", "m")]).len(),
            2
        );
        assert_eq!(
            names(&s, &[nre("job", "a"), Matcher::equal("__name__", "m")]),
            [r#"{__name__="m", job="b", x="1"}"#]
        );
        assert_eq!(names(&s, &[re("x", ".*")]).len(), 3);
        assert_eq!(names(&s, &[re("x", ".+")]).len(), 1);
        assert_eq!(
            names(
                &s,
                &[Matcher::new(MatchKind::NotEqual, "job", "a").unwrap()]
            )
            .len(),
            1
        );
        assert!(names(&s, &[Matcher::equal("job", "zzz")]).is_empty());
        assert_eq!(s.label_values("job"), ["a", "b"]);
        assert_eq!(s.label_names(), ["__name__", "job", "x"]);
    }

    #[test]
    fn facts_tell_where_drops_and_staleness_markers_can_be() {
        let store = Store::new(StoreOptions::default());
        let c = l(&[("__name__", "c")]);
        let facts = |store: &Store| {
            let mut got = SeriesFacts::UNKNOWN;
            store
                .select_with_facts(
                    &[Matcher::equal("__name__", "c")],
                    0,
                    i64::MAX,
                    &mut |_, _, f| got = f,
                )
                .unwrap();
            got
        };
        for (t, v) in [(1, 1.0), (2, 2.0), (3, 2.0)] {
            store.append(&c, t, v).unwrap();
        }
        assert_eq!(facts(&store).drop_until_ms, i64::MIN);
        assert_eq!(facts(&store).stale_until_ms, i64::MIN);
        // A staleness marker between two values: the drop is against the last value before it.
        store.append(&c, 4, stale_nan()).unwrap();
        store.append(&c, 5, 1.0).unwrap();
        assert_eq!(
            facts(&store),
            SeriesFacts {
                stale_until_ms: 4,
                drop_until_ms: 5
            }
        );
        // A NaN is lower than nothing and nothing is lower than a NaN, as in the engine's scans.
        store.append(&c, 6, f64::NAN).unwrap();
        store.append(&c, 7, 0.5).unwrap();
        store.append(&c, 8, 3.0).unwrap();
        assert_eq!(facts(&store).drop_until_ms, 5);
        assert!(!facts(&store).may_drop_after(5));
        assert!(facts(&store).may_drop_after(4));
    }

    #[test]
    fn series_share_their_strings() {
        let s = Store::new(StoreOptions::default());
        let mut a = l(&[("__name__", "m"), ("venue", "cme"), ("le", "1")]);
        let b = l(&[("__name__", "m"), ("venue", "cme"), ("le", "2")]);
        let kept = a.clone();
        s.append_keeping(&mut a, 1, 1.0).unwrap();
        // The first series is stored with the caller's strings, so the caller's set is kept.
        assert!(Labels::ptr_eq(&a, &kept));
        let stored_b = s.append(&b, 1, 2.0).unwrap().expect("a new series");
        assert_eq!(stored_b, b);
        assert!(!Labels::ptr_eq(&stored_b, &b));
        let shared = |x: &Labels, y: &Labels, i: usize| {
            let (x, y) = (x.iter().nth(i).unwrap(), y.iter().nth(i).unwrap());
            (
                Arc::ptr_eq(&x.name, &y.name),
                Arc::ptr_eq(&x.value, &y.value),
            )
        };
        // `__name__`, `le`, `venue` in name order: names shared, and values where equal.
        assert_eq!(shared(&a, &stored_b, 0), (true, true));
        assert_eq!(shared(&a, &stored_b, 1), (true, false));
        assert_eq!(shared(&a, &stored_b, 2), (true, true));
        // Appending to an existing series creates nothing.
        assert_eq!(s.append(&b, 2, 2.0).unwrap(), None);
        let mut seen = Vec::new();
        s.select(&[Matcher::equal("le", "2")], 0, 10, &mut |labels, _| {
            seen.push(labels.clone())
        })
        .unwrap();
        assert!(Labels::ptr_eq(&seen[0], &stored_b));
        // Once both series are gone, the index holds none of their strings.
        drop((a, kept, stored_b, seen));
        s.truncate_before(100);
        assert!(s.label_names().is_empty());
        s.append(&b, 200, 1.0).unwrap();
        assert_eq!(s.label_names(), ["__name__", "le", "venue"]);
    }

    #[test]
    fn windows_are_the_samples_in_range() {
        // Even, jittered, bursty and gapped spacing, windows anywhere (outside too).
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for case in 0..400 {
            let mut series = MemSeries {
                labels: Labels::empty(),
                samples: Vec::new(),
                start: 0,
                last_value: f64::NAN,
                facts: SeriesFacts::UNKNOWN,
                first_t: 0,
                last_t: 0,
            };
            let len = 1 + next(80);
            let mut t = next(1_000) as i64 - 500;
            for i in 0..len {
                series.push(Sample { t, f: i as f64 });
                t += match case % 4 {
                    0 => 15_000,
                    1 => 14_000 + next(2_000) as i64,
                    2 => 1 + next(3) as i64 * 10_000,
                    _ => 1 + next(60_000) as i64,
                };
            }
            if case % 3 == 0 {
                series.trim(series.samples[next(len) as usize].t);
            }
            let (lo, hi) = (series.samples[0].t - 20_000, t + 20_000);
            for _ in 0..50 {
                let a = lo + next((hi - lo) as u64) as i64;
                let b = a + next(200_000) as i64 - 1_000;
                let want: Vec<Sample> = series
                    .live()
                    .iter()
                    .copied()
                    .filter(|s| s.t >= a && s.t <= b)
                    .collect();
                assert_eq!(series.window(a, b), &want[..], "case {case}, {a}..={b}");
            }
            assert_eq!(series.window(i64::MIN, i64::MAX), series.live());
        }
    }

    #[test]
    fn time_range_selection() {
        let s = Store::new(StoreOptions::default());
        let a = l(&[("__name__", "a")]);
        for t in [10, 20, 30] {
            s.append(&a, t, 1.0).unwrap();
        }
        let mut got = Vec::new();
        s.select(&[], 15, 30, &mut |_, xs| got.extend(xs.iter().map(|x| x.t)))
            .unwrap();
        assert_eq!(got, [20, 30]);
        let mut calls = 0;
        s.select(&[], 31, 40, &mut |_, _| calls += 1).unwrap();
        assert_eq!(calls, 0);
    }
}
