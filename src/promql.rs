//! The PromQL engine: evaluation over `promql-parser`'s AST with Prometheus 3.x semantics
//! (left-open range windows, 5-minute lookback, staleness, delayed `__name__` removal, the same
//! errors for the same mistakes), reading series through [`Queryable`].
//!
//! ```
//! use tradewatch::model::labels::Labels;
//! use tradewatch::promql::{Engine, Value, parse};
//! use tradewatch::store::{Store, StoreOptions};
//!
//! let store = Store::new(StoreOptions::default());
//! for (job, v) in [("a", 1.0), ("b", 2.0)] {
//!     let l = Labels::from_pairs([("__name__", "up"), ("job", job)]);
//!     store.append(&l, 0, v).unwrap();
//! }
//! let expr = parse("sum(up) * 10").unwrap();
//! let result = Engine::default().instant(&store, &expr, 60_000).unwrap();
//! let Value::Vector(v) = result.value else { panic!() };
//! assert_eq!(v[0].f, 30.0);
//! assert_eq!(v[0].labels, Labels::empty());
//! ```

mod aggregate;
mod binary;
mod eval;
mod functions;
mod histogram;
mod parse;
mod plan;
mod range_functions;
mod shared;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

pub use eval::selector_matchers;
pub use parse::{ParseError, Position, diagnose_as_prometheus_2_42, parse};
pub use plan::{Planned, keep_plans};
pub use promql_parser::parser::Expr;
pub use shared::{Shared, SharedExpr, reads_none_of, share_common, slots_of};

use crate::model::labels::{FxBuildHasher, Labels};
use crate::store::{Queryable, Sample, SelectError};
use eval::{Annotations, Deadline, Evaluator, StepSeries, Val, err};

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromqlError {
    /// The expression does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Evaluation failed, with Prometheus's message (`vector cannot contain metrics with the
    /// same labelset`, `many-to-many matching not allowed…`, …).
    #[error("{0}")]
    Execution(String),
    /// The data source failed.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The query ran past its timeout and was stopped (Prometheus's `ErrQueryTimeout`).
    #[error("query timed out in expression evaluation")]
    Timeout,
}

/// Engine settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// How far back an instant vector selector looks for a sample (Prometheus: 5 minutes).
    pub lookback_ms: i64,
    /// The step of a subquery written without one (Prometheus: the global evaluation interval).
    pub default_subquery_step_ms: i64,
    /// How long one query may run before it is stopped with [`PromqlError::Timeout`]
    /// (Prometheus's `--query.timeout`); `None`: as long as it takes.
    pub timeout: Option<Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_ms: 300_000,
            default_subquery_step_ms: 60_000,
            timeout: None,
        }
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// The evaluation time, in milliseconds.
    pub t: i64,
    /// The value.
    pub f: f64,
}

/// A series with its points, in a range query's result or a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Points in time order.
    pub points: Vec<Sample>,
}

/// A query's result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at the evaluation time.
    Scalar {
        /// Evaluation time in milliseconds.
        t: i64,
        /// The value.
        f: f64,
    },
    /// A string literal.
    String(String),
    /// An instant vector, in the order the expression produced it (`sort`, `topk`).
    Vector(Vec<InstantSample>),
    /// A range vector (instant query) or a range query's result, sorted by labels.
    Matrix(Vec<Series>),
}

/// A result with the annotations collected on the way, in Prometheus's wording.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// `PromQL warning: …` annotations.
    pub warnings: Vec<String>,
    /// `PromQL info: …` annotations.
    pub infos: Vec<String>,
}

/// Evaluates expressions against a [`Queryable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Engine {
    options: EngineOptions,
}

/// Removes `__name__` where it was to be dropped; series whose label sets then coincide are
/// merged, unless they share a timestamp.
fn finish_series(series: Vec<StepSeries>) -> Result<Vec<Series>, PromqlError> {
    if !series.iter().any(|s| s.drop_name) {
        // Label sets are unique already: every step that can rewrite them checks.
        return Ok(series
            .into_iter()
            .map(|s| Series {
                labels: s.labels,
                points: s.points.into_vec(),
            })
            .collect());
    }
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index: HashMap<Labels, usize, FxBuildHasher> =
        HashMap::with_capacity_and_hasher(series.len(), FxBuildHasher::default());
    for s in series {
        let labels = if s.drop_name {
            s.labels.without_metric_name()
        } else {
            s.labels
        };
        match index.get(&labels) {
            Some(&i) => {
                let target = &mut out[i];
                let mut merged = Vec::with_capacity(target.points.len() + s.points.len());
                let (mut a, mut b) = (target.points.iter().peekable(), s.points.iter().peekable());
                loop {
                    match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) if x.t == y.t => {
                            return err("vector cannot contain metrics with the same labelset");
                        }
                        (Some(x), Some(y)) if x.t < y.t => merged.push(**x),
                        (Some(_), Some(y)) => merged.push(**y),
                        (Some(x), None) => merged.push(**x),
                        (None, Some(y)) => merged.push(**y),
                        (None, None) => break,
                    }
                    let take_a = match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) => x.t < y.t,
                        (Some(_), None) => true,
                        _ => false,
                    };
                    if take_a {
                        a.next();
                    } else {
                        b.next();
                    }
                }
                target.points = merged;
            }
            None => {
                index.insert(labels.clone(), out.len());
                out.push(Series {
                    labels,
                    points: s.points.into_vec(),
                });
            }
        }
    }
    Ok(out)
}

impl Engine {
    /// An engine with these settings.
    pub fn new(options: EngineOptions) -> Self {
        Engine { options }
    }

    /// This engine with queries stopped after `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Engine {
        Engine {
            options: EngineOptions {
                timeout: Some(timeout),
                ..self.options
            },
        }
    }

    /// How long a query may run, if bounded.
    pub fn timeout(&self) -> Option<Duration> {
        self.options.timeout
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluator<'a>(
        &self,
        q: &'a dyn Queryable,
        notes: &'a RefCell<Annotations>,
        deadline: &'a Deadline,
        start: i64,
        end: i64,
        interval: i64,
        range_query: bool,
    ) -> Evaluator<'a> {
        Evaluator {
            q,
            start,
            end,
            interval,
            query_start: start,
            query_end: end,
            lookback: self.options.lookback_ms,
            sub_step: self.options.default_subquery_step_ms,
            range_query,
            notes,
            shared: None,
            deadline,
        }
    }

    /// Evaluates `expr` at one instant (milliseconds since the Unix epoch).
    pub fn instant(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.instant_shared(q, expr, t_ms, None)
    }

    /// [`Engine::instant`] for one rule of a group evaluation: the subexpressions
    /// [`share_common`] marked in `expr` take their values from `shared` when another rule of
    /// the evaluation has computed them, and leave them there otherwise.
    pub fn instant_shared(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        t_ms: i64,
        shared: Option<&Shared>,
    ) -> Result<QueryResult, PromqlError> {
        let notes = RefCell::new(Annotations::default());
        let deadline = Deadline::after(self.options.timeout);
        let mut ev = self.evaluator(q, &notes, &deadline, t_ms, t_ms, 1, false);
        ev.shared = shared;
        let value = match ev.eval(expr)? {
            Val::Scalar(v) => Value::Scalar { t: t_ms, f: v[0] },
            Val::Str(s) => Value::String(s),
            Val::Vector(v) => Value::Vector(
                finish_series(v)?
                    .into_iter()
                    .map(|s| InstantSample {
                        labels: s.labels,
                        t: t_ms,
                        f: s.points[0].f,
                    })
                    .collect(),
            ),
            Val::Range(rv) => {
                let series = rv
                    .series
                    .iter()
                    .filter_map(|s| {
                        let w = rv.window(&s.points, 0);
                        (!w.is_empty()).then(|| StepSeries {
                            labels: s.labels.clone(),
                            points: eval::Points::from_slice(w),
                            drop_name: s.drop_name,
                        })
                    })
                    .collect();
                let mut m = finish_series(series)?;
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(m)
            }
        };
        let notes = notes.into_inner();
        Ok(QueryResult {
            value,
            warnings: notes.warnings.into_iter().collect(),
            infos: notes.infos.into_iter().collect(),
        })
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms` (inclusive); the result is a
    /// matrix sorted by labels.
    pub fn range(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, PromqlError> {
        if step_ms <= 0 {
            return err("zero or negative query resolution step widths are not accepted");
        }
        if end_ms < start_ms {
            return err("end timestamp must not be before start time");
        }
        let notes = RefCell::new(Annotations::default());
        let deadline = Deadline::after(self.options.timeout);
        let ev = self.evaluator(q, &notes, &deadline, start_ms, end_ms, step_ms, true);
        let mut matrix = match ev.eval(expr)? {
            Val::Scalar(v) => vec![Series {
                labels: Labels::empty(),
                points: v
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| Sample { t: ev.ts(i), f })
                    .collect(),
            }],
            Val::Vector(v) => finish_series(v)?,
            other => {
                return err(format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    other.type_name()
                ));
            }
        };
        matrix.sort_by(|a, b| a.labels.cmp(&b.labels));
        let notes = notes.into_inner();
        Ok(QueryResult {
            value: Value::Matrix(matrix),
            warnings: notes.warnings.into_iter().collect(),
            infos: notes.infos.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions, stale_nan};
    use std::time::Duration;

    type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

    fn store(series: &[SeriesSpec<'_>]) -> Store {
        let s = Store::new(StoreOptions::default());
        for (labels, samples) in series {
            let l = Labels::from_pairs(labels.iter().copied());
            for &(t, f) in *samples {
                s.append(&l, t, f).unwrap();
            }
        }
        s
    }

    fn instant(s: &Store, q: &str, t: i64) -> Result<Value, PromqlError> {
        Engine::default().instant(s, &parse(q)?, t).map(|r| r.value)
    }

    fn vector(s: &Store, q: &str, t: i64) -> Vec<(String, f64)> {
        let Value::Vector(v) = instant(s, q, t).unwrap() else {
            panic!("not a vector")
        };
        let mut out: Vec<(String, f64)> =
            v.into_iter().map(|s| (s.labels.to_string(), s.f)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn lookback_and_staleness() {
        let s = store(&[(&[("__name__", "m")], &[(0, 1.0), (10_000, stale_nan())])]);
        assert_eq!(vector(&s, "m", 5_000), [(r#"{__name__="m"}"#.into(), 1.0)]);
        assert!(vector(&s, "m", 10_000).is_empty());
        let s = store(&[(&[("__name__", "m")], &[(0, 1.0)])]);
        assert_eq!(vector(&s, "m", 299_999).len(), 1);
        assert!(vector(&s, "m", 300_000).is_empty());
    }

    #[test]
    fn rate_drops_the_name_and_extrapolates() {
        let samples: Vec<(i64, f64)> = (0..=10).map(|i| (i * 60_000, i as f64 * 60.0)).collect();
        let s = store(&[(&[("__name__", "c_total"), ("job", "a")], &samples)]);
        assert_eq!(
            vector(&s, "rate(c_total[5m])", 600_000),
            [(r#"{job="a"}"#.into(), 1.0)]
        );
        assert_eq!(
            vector(&s, "increase(c_total[5m])", 600_000),
            [(r#"{job="a"}"#.into(), 300.0)]
        );
    }

    #[test]
    fn matching_errors_as_prometheus() {
        let s = store(&[
            (&[("__name__", "a"), ("job", "x"), ("i", "1")], &[(0, 1.0)]),
            (&[("__name__", "a"), ("job", "x"), ("i", "2")], &[(0, 1.0)]),
            (&[("__name__", "b"), ("job", "x"), ("i", "1")], &[(0, 1.0)]),
            (&[("__name__", "b"), ("job", "x"), ("i", "2")], &[(0, 1.0)]),
        ]);
        let e = instant(&s, "a + on(job) b", 0).unwrap_err();
        assert!(
            e.to_string().contains("many-to-many matching not allowed"),
            "{e}"
        );
        let e = instant(&s, "abs({job=\"x\"})", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vector cannot contain metrics with the same labelset"
        );
        assert_eq!(vector(&s, "a + on(job, i) b", 0).len(), 2);
        assert_eq!(
            vector(&s, "sum by (job) (a)", 0),
            [(r#"{job="x"}"#.into(), 2.0)]
        );
    }

    #[test]
    fn range_query_and_scalars() {
        let s = store(&[(&[("__name__", "m")], &[(0, 1.0), (60_000, 2.0)])]);
        let r = Engine::default()
            .range(&s, &parse("m * 2").unwrap(), 0, 120_000, 60_000)
            .unwrap();
        let Value::Matrix(m) = r.value else { panic!() };
        assert_eq!(m.len(), 1);
        let fs: Vec<f64> = m[0].points.iter().map(|p| p.f).collect();
        assert_eq!(fs, [2.0, 4.0, 4.0]);
        assert_eq!(
            instant(&s, "1 + 2", 0).unwrap(),
            Value::Scalar { t: 0, f: 3.0 }
        );
        assert!(instant(&s, "sum(", 0).is_err());
    }

    /// A store of `n` counters with a sample every 15 s over the hour before `3_600_000`.
    fn counters(n: usize) -> Store {
        let s = Store::new(StoreOptions::default());
        for i in 0..n {
            let l = Labels::from_pairs([
                ("__name__", "c_total".to_owned()),
                ("i", i.to_string()),
                ("g", (i % 7).to_string()),
            ]);
            for k in 0..=240 {
                s.append(&l, k * 15_000, (k * (i as i64 % 5 + 1)) as f64)
                    .unwrap();
            }
        }
        s
    }

    /// Counts the series a selection visits and sleeps past a deadline at the first one.
    struct Slow<'a> {
        store: &'a Store,
        selects: std::cell::Cell<usize>,
        nap: Duration,
    }

    impl Queryable for Slow<'_> {
        fn select(
            &self,
            matchers: &[crate::store::Matcher],
            start_ms: i64,
            end_ms: i64,
            visit: &mut dyn FnMut(&Labels, &[Sample]),
        ) -> Result<(), SelectError> {
            self.selects.set(self.selects.get() + 1);
            let mut first = true;
            self.store.select(matchers, start_ms, end_ms, &mut |l, s| {
                if std::mem::take(&mut first) {
                    std::thread::sleep(self.nap);
                }
                visit(l, s)
            })
        }
    }

    #[test]
    fn a_query_past_its_timeout_stops_with_prometheus_error() {
        let s = counters(200);
        let expr = parse("sum by (g) (rate(c_total[5m]))").unwrap();
        let engine = Engine::default().with_timeout(Duration::from_nanos(1));
        let e = engine.range(&s, &expr, 0, 3_600_000, 1_000).unwrap_err();
        assert_eq!(e, PromqlError::Timeout);
        assert_eq!(e.to_string(), "query timed out in expression evaluation");
        let e = engine.instant(&s, &expr, 3_600_000).unwrap_err();
        assert_eq!(e, PromqlError::Timeout);
        // A generous timeout changes nothing in the answer.
        let bounded = Engine::default()
            .with_timeout(Duration::from_secs(600))
            .range(&s, &expr, 0, 3_600_000, 60_000)
            .unwrap();
        let unbounded = Engine::default()
            .range(&s, &expr, 0, 3_600_000, 60_000)
            .unwrap();
        assert_eq!(bounded, unbounded);
        let Value::Matrix(m) = &bounded.value else {
            panic!("a matrix")
        };
        assert_eq!(m.len(), 7);
    }

    #[test]
    fn evaluation_stops_at_the_deadline_mid_query() {
        let s = counters(50);
        // The deadline passes while the left-hand selector is read: the right-hand one is
        // never selected, on a grid of steps and for an instant query alike.
        for steps in [3_600, 1] {
            let slow = Slow {
                store: &s,
                selects: std::cell::Cell::new(0),
                nap: Duration::from_millis(30),
            };
            let expr = parse("sum(rate(c_total[5m])) / sum(rate(c_total{g=\"1\"}[5m]))").unwrap();
            let engine = Engine::default().with_timeout(Duration::from_millis(10));
            let start = 3_600_000 - (steps - 1) * 1_000;
            let e = engine
                .range(&slow, &expr, start, 3_600_000, 1_000)
                .unwrap_err();
            assert_eq!(e, PromqlError::Timeout, "{steps} steps");
            assert_eq!(slow.selects.get(), 1, "{steps} steps");
            // Without a timeout the same query reads both sides.
            slow.selects.set(0);
            Engine::default()
                .range(&slow, &expr, start, 3_600_000, 1_000)
                .unwrap();
            assert_eq!(slow.selects.get(), 2);
        }
    }

    #[test]
    fn non_counter_info() {
        let s = store(&[(&[("__name__", "gauge")], &[(0, 1.0), (30_000, 2.0)])]);
        let r = Engine::default()
            .instant(&s, &parse("rate(gauge[1m])").unwrap(), 60_000)
            .unwrap();
        assert_eq!(r.infos.len(), 1);
        assert!(r.infos[0].starts_with("PromQL info: metric might not be a counter"));
    }
}
