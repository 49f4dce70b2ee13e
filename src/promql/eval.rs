//! The evaluator's core: the step grid, selectors, subqueries, and the dispatch over the AST.
//!
//! Every expression is evaluated over a grid of steps (one step for an instant query), as
//! Prometheus's engine does: instant vectors are series with at most one point per step, range
//! vectors keep their raw samples and the reference time of each step's window.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use promql_parser::label::MatchOp;
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};

use super::PromqlError;
use super::plan::Planned;
use super::shared::{Grid, Lookup, Shared, SharedExpr};
use crate::model::labels::{FxBuildHasher, Labels, METRIC_NAME};
use crate::store::{MatchKind, Matcher, Queryable, Sample, SeriesFacts, is_stale_nan};

/// Warnings and infos collected while evaluating, deduplicated, in Prometheus's wording.
#[derive(Debug, Default, Clone)]
pub(crate) struct Annotations {
    pub warnings: BTreeSet<String>,
    pub infos: BTreeSet<String>,
}

impl Annotations {
    /// Adds `other`'s warnings and infos.
    pub fn merge(&mut self, other: Annotations) {
        self.warnings.extend(other.warnings);
        self.infos.extend(other.infos);
    }
}

/// A series' points: one, inline, for an instant query (no allocation per series), more on the
/// heap for a range query or a range vector's raw samples.
pub(crate) type Points = smallvec::SmallVec<[Sample; 1]>;

/// A series on the grid (points at step times), or a range vector's raw samples.
#[derive(Debug, Clone)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub points: Points,
    /// `__name__` is to be removed before the result leaves the engine (delayed name removal).
    pub drop_name: bool,
}

/// One element of an instant vector at one step.
#[derive(Debug, Clone)]
pub(crate) struct VSample {
    pub labels: Labels,
    pub f: f64,
    pub drop_name: bool,
}

/// An instant vector a reader only looks at: its own, or one the group's queries share.
pub(crate) enum VectorIn {
    Owned(Vec<StepSeries>),
    /// A [`Val::Vector`] kept for the other queries of a group evaluation.
    Shared(Arc<Val>),
}

/// A range vector: series with raw samples, and per step the end of its window `(end - range, end]`.
#[derive(Debug, Clone)]
pub(crate) struct RangeVal {
    pub series: Vec<StepSeries>,
    pub refs: Vec<i64>,
    pub range: i64,
}

impl RangeVal {
    /// The samples of `points` in step `i`'s window.
    pub fn window<'p>(&self, points: &'p [Sample], i: usize) -> &'p [Sample] {
        window(points, self.refs[i] - self.range, self.refs[i])
    }
}

/// The samples with `lo < t <= hi`.
pub(crate) fn window(points: &[Sample], lo: i64, hi: i64) -> &[Sample] {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return &[];
    };
    // A rule's window usually holds a series' newest sample: no search for that end then.
    let a = if first.t > lo {
        0
    } else {
        points.partition_point(|s| s.t <= lo)
    };
    let b = if last.t <= hi {
        points.len()
    } else {
        points.partition_point(|s| s.t <= hi)
    };
    if a < b { &points[a..b] } else { &[] }
}

/// Appends `s` to `out`, which first makes room for the `expected` series a selection
/// announced (see [`crate::store::Queryable::select_sized`]).
pub(crate) fn push_expected(out: &mut Vec<StepSeries>, expected: &Cell<usize>, s: StepSeries) {
    if out.is_empty() {
        out.reserve(expected.get());
    }
    out.push(s);
}

/// An intermediate value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// A string literal.
    Str(String),
    /// An instant vector over the grid.
    Vector(Vec<StepSeries>),
    /// A range vector.
    Range(RangeVal),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Range(_) => "range vector",
        }
    }
}

/// Work units (points computed, series visited) between two readings of the clock: a reading
/// costs about as much as a few dozen points, so the checks cost nothing measurable while a
/// query still stops within a fraction of a millisecond of its deadline.
const WORK_PER_CLOCK_CHECK: u64 = 1 << 14;

/// When a query must stop, shared by every evaluator of the query (subqueries included).
/// Checked when a node starts, per series of a selector on a grid of several steps, and per step
/// where steps are aggregated or joined: work already in a node runs to its next check.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    work: Cell<u64>,
    expired: Cell<bool>,
}

impl Deadline {
    /// A deadline `timeout` from now, or none.
    pub fn after(timeout: Option<Duration>) -> Deadline {
        Deadline {
            at: timeout.map(|t| Instant::now() + t),
            ..Deadline::default()
        }
    }

    pub fn is_set(&self) -> bool {
        self.at.is_some()
    }

    /// Reads the clock: the timeout error once the deadline has passed.
    pub fn check(&self) -> Result<(), PromqlError> {
        if let Some(at) = self.at
            && (self.expired.get() || Instant::now() >= at)
        {
            self.expired.set(true);
            return Err(PromqlError::Timeout);
        }
        Ok(())
    }

    /// Counts `work` units done and reads the clock every [`WORK_PER_CLOCK_CHECK`] of them;
    /// false once the deadline has passed (for loops that cannot return an error: they skip
    /// their remaining work, and [`Deadline::check`] reports it after them).
    #[inline]
    pub fn tick(&self, work: usize) -> bool {
        if self.at.is_none() {
            return true;
        }
        let done = self.work.get() + work as u64;
        if done < WORK_PER_CLOCK_CHECK {
            self.work.set(done);
            return !self.expired.get();
        }
        self.work.set(0);
        self.check().is_ok()
    }

    /// [`Deadline::tick`] as a result.
    #[inline]
    pub fn step(&self, work: usize) -> Result<(), PromqlError> {
        if self.tick(work) {
            Ok(())
        } else {
            Err(PromqlError::Timeout)
        }
    }
}

/// The evaluation of one expression over one grid.
pub(crate) struct Evaluator<'a> {
    pub q: &'a dyn Queryable,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    /// The outermost query's start and end, which `@ start()` and `@ end()` name.
    pub query_start: i64,
    pub query_end: i64,
    pub lookback: i64,
    pub sub_step: i64,
    pub range_query: bool,
    pub notes: &'a RefCell<Annotations>,
    /// The values of the rule group's shared subexpressions, when evaluating for a group.
    pub shared: Option<&'a Shared>,
    /// When the query must stop.
    pub deadline: &'a Deadline,
}

/// Execution error with Prometheus's message.
pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, PromqlError> {
    Err(PromqlError::Execution(msg.into()))
}

pub(crate) fn duration_ms(d: &Duration) -> i64 {
    d.as_millis() as i64
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The store matchers of a selector: one set per `or` branch, each with the metric name.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, PromqlError> {
    let mut groups: Vec<&Vec<promql_parser::label::Matcher>> = Vec::new();
    if !vs.matchers.matchers.is_empty() || vs.matchers.or_matchers.is_empty() {
        groups.push(&vs.matchers.matchers);
    }
    groups.extend(vs.matchers.or_matchers.iter());
    let mut out = Vec::new();
    for g in groups {
        let mut ms = Vec::new();
        if let Some(name) = &vs.name {
            ms.push(Matcher::equal(METRIC_NAME, name));
        }
        for m in g {
            let kind = match m.op {
                MatchOp::Equal => MatchKind::Equal,
                MatchOp::NotEqual => MatchKind::NotEqual,
                MatchOp::Re(_) => MatchKind::Regex,
                MatchOp::NotRe(_) => MatchKind::NotRegex,
            };
            ms.push(
                Matcher::new(kind, &m.name, &m.value)
                    .map_err(|e| PromqlError::Execution(e.to_string()))?,
            );
        }
        out.push(ms);
    }
    Ok(out)
}

impl<'a> Evaluator<'a> {
    /// How many steps the grid has.
    pub fn n_steps(&self) -> usize {
        ((self.end - self.start) / self.interval) as usize + 1
    }

    /// The time of step `i`.
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    /// The step index of a grid time.
    pub fn step_of(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    pub fn warn(&self, msg: String) {
        self.notes
            .borrow_mut()
            .warnings
            .insert(format!("PromQL warning: {msg}"));
    }

    pub fn info(&self, msg: String) {
        self.notes
            .borrow_mut()
            .infos
            .insert(format!("PromQL info: {msg}"));
    }

    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// Each step's reference time for a node with these modifiers.
    fn refs(&self, at: &Option<AtModifier>, offset: &Option<Offset>) -> Vec<i64> {
        let off = offset_ms(offset);
        let at = self.at_ms(at);
        (0..self.n_steps())
            .map(|i| at.unwrap_or(self.ts(i)) - off)
            .collect()
    }

    /// Calls `visit` for each series the selector matches with samples in `[lo, hi]`, with what
    /// the source knows of them; `expect` hears first how many series there may be, at most.
    fn select(
        &self,
        vs: &VectorSelector,
        lo: i64,
        hi: i64,
        expect: &mut dyn FnMut(usize),
        visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts),
    ) -> Result<(), PromqlError> {
        let groups = selector_matchers(vs)?;
        let steps = self.n_steps();
        let mut bounded;
        let visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts) =
            if self.deadline.is_set() && steps > 1 {
                // On a grid each series costs a pass per step: the deadline is checked as they go.
                bounded = |l: &Labels, s: &[Sample], facts: SeriesFacts| {
                    if self.deadline.tick(steps) {
                        visit(l, s, facts)
                    }
                };
                &mut bounded
            } else {
                visit
            };
        if groups.len() == 1 {
            self.q.select_sized(&groups[0], lo, hi, expect, visit)?;
            return self.deadline.check();
        }
        let mut seen = std::collections::HashSet::new();
        for g in &groups {
            self.q.select_sized(g, lo, hi, expect, &mut |l, s, facts| {
                if seen.insert(l.clone()) {
                    visit(l, s, facts)
                }
            })?;
        }
        self.deadline.check()
    }

    /// An instant vector selector; with `timestamps`, each point's value is its sample's time in
    /// seconds (what `timestamp()` returns).
    pub fn select_vector(
        &self,
        vs: &VectorSelector,
        timestamps: bool,
    ) -> Result<Vec<StepSeries>, PromqlError> {
        let refs = self.refs(&vs.at, &vs.offset);
        let (Some(&min), Some(&max)) = (refs.iter().min(), refs.iter().max()) else {
            return Ok(Vec::new());
        };
        let lookback = self.lookback;
        let mut out = Vec::new();
        let expected = Cell::new(0);
        let mut expect = |n| expected.set(n);
        self.select(
            vs,
            min - lookback + 1,
            max,
            &mut expect,
            &mut |labels, samples, _| {
                let mut points = Points::new();
                if let ([r], Some(&s)) = (&refs[..], samples.last()) {
                    // One step: the selection ends at its time, so its newest sample is the one.
                    if s.t > r - lookback && !is_stale_nan(s.f) {
                        let f = if timestamps { s.t as f64 / 1000.0 } else { s.f };
                        points.push(Sample { t: self.ts(0), f });
                    }
                } else {
                    for (i, &r) in refs.iter().enumerate() {
                        let idx = samples.partition_point(|s| s.t <= r);
                        if idx == 0 {
                            continue;
                        }
                        let s = samples[idx - 1];
                        if s.t > r - lookback && !is_stale_nan(s.f) {
                            let f = if timestamps { s.t as f64 / 1000.0 } else { s.f };
                            points.push(Sample { t: self.ts(i), f });
                        }
                    }
                }
                if !points.is_empty() {
                    let s = StepSeries {
                        labels: labels.clone(),
                        points,
                        drop_name: false,
                    };
                    push_expected(&mut out, &expected, s);
                }
            },
        )?;
        Ok(out)
    }

    /// A range vector selector: raw samples without staleness markers.
    pub fn select_range(&self, ms: &MatrixSelector) -> Result<RangeVal, PromqlError> {
        let mut series = Vec::new();
        let expected = Cell::new(0);
        let (refs, range) =
            self.visit_range(ms, &mut |n| expected.set(n), &mut |labels, points, _| {
                let s = StepSeries {
                    labels: labels.clone(),
                    points: Points::from_slice(points),
                    drop_name: false,
                };
                push_expected(&mut series, &expected, s);
            })?;
        Ok(RangeVal {
            series,
            refs,
            range,
        })
    }

    /// The window ends of each step and the range of a range vector selector.
    pub fn matrix_refs(&self, ms: &MatrixSelector) -> (Vec<i64>, i64) {
        (self.refs(&ms.vs.at, &ms.vs.offset), duration_ms(&ms.range))
    }

    /// A range vector selector read in place: `visit` sees each series' samples without
    /// staleness markers (never empty), borrowed from the store where none had to be removed,
    /// and what the store knows of them. Returns the steps' window ends and the range, as
    /// [`RangeVal`] holds them. `expect` hears first how many series there may be, at most.
    pub fn visit_range(
        &self,
        ms: &MatrixSelector,
        expect: &mut dyn FnMut(usize),
        visit: &mut dyn FnMut(&Labels, &[Sample], SeriesFacts),
    ) -> Result<(Vec<i64>, i64), PromqlError> {
        let (refs, range) = self.matrix_refs(ms);
        if let (Some(&min), Some(&max)) = (refs.iter().min(), refs.iter().max()) {
            let mut scratch: Vec<Sample> = Vec::new();
            self.select(
                &ms.vs,
                min - range + 1,
                max,
                expect,
                &mut |labels, samples, facts| {
                    // Without an early exit, so that the compiler can vectorise the scan.
                    let stale = facts.may_be_stale(samples)
                        && samples.iter().fold(false, |any, s| any | is_stale_nan(s.f));
                    let points = if stale {
                        scratch.clear();
                        scratch.extend(samples.iter().filter(|s| !is_stale_nan(s.f)));
                        &scratch[..]
                    } else {
                        samples
                    };
                    if !points.is_empty() {
                        visit(labels, points, facts);
                    }
                },
            )?;
        }
        Ok((refs, range))
    }

    /// A subquery: the inner expression evaluated over its own grid, read as a range vector.
    pub fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<RangeVal, PromqlError> {
        let refs = self.refs(&sq.at, &sq.offset);
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(d) if !d.is_zero() => duration_ms(d),
            _ => self.sub_step,
        };
        let min = *refs.iter().min().expect("grid has a step");
        let max = *refs.iter().max().expect("grid has a step");
        // The first step-aligned time after min - range, as Prometheus computes it.
        let mut start = step * ((min - range) / step);
        if start <= min - range {
            start += step;
        }
        let mut series = Vec::new();
        if start <= max {
            let inner = Evaluator {
                q: self.q,
                start,
                end: max,
                interval: step,
                query_start: self.query_start,
                query_end: self.query_end,
                lookback: self.lookback,
                sub_step: self.sub_step,
                range_query: self.range_query,
                notes: self.notes,
                shared: self.shared,
                deadline: self.deadline,
            };
            series = match inner.eval(&sq.expr)? {
                Val::Vector(v) => v,
                Val::Scalar(v) => vec![StepSeries {
                    labels: Labels::empty(),
                    points: v
                        .iter()
                        .enumerate()
                        .map(|(i, &f)| Sample { t: inner.ts(i), f })
                        .collect(),
                    drop_name: false,
                }],
                other => {
                    return err(format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        other.type_name()
                    ));
                }
            };
        }
        Ok(RangeVal {
            series,
            refs,
            range,
        })
    }

    /// Evaluates an expression over this evaluator's grid.
    pub fn eval(&self, e: &Expr) -> Result<Val, PromqlError> {
        self.deadline.check()?;
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.n_steps()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|f| -f).collect())),
                Val::Vector(mut v) => {
                    for s in &mut v {
                        s.drop_name = true;
                        for p in &mut s.points {
                            p.f = -p.f;
                        }
                    }
                    Ok(Val::Vector(v))
                }
                other => err(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                    other.type_name()
                )),
            },
            Expr::Binary(b) => super::binary::eval_binary(self, b),
            Expr::Aggregate(a) => super::aggregate::eval_aggregate(self, a, None),
            Expr::Call(c) => super::functions::eval_call(self, c, None),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select_vector(vs, false)?)),
            Expr::MatrixSelector(ms) => Ok(Val::Range(self.select_range(ms)?)),
            Expr::Subquery(sq) => Ok(Val::Range(self.eval_subquery(sq)?)),
            Expr::Extension(ext) => {
                let any = ext.expr.as_any();
                if let Some(s) = any.downcast_ref::<SharedExpr>() {
                    self.eval_shared(s)
                } else if let Some(p) = any.downcast_ref::<Planned>() {
                    if let Some(a) = p.aggregate() {
                        super::aggregate::eval_aggregate(self, a, Some(p.plan()))
                    } else if let Some(c) = p.call() {
                        super::functions::eval_call(self, c, Some(p.plan()))
                    } else {
                        self.eval(p.expr())
                    }
                } else {
                    err("extension expressions are not supported")
                }
            }
        }
    }

    /// A subexpression several rules of the group share: computed once per group evaluation
    /// on a grid, copied after that, with the warnings and infos of its computation repeated.
    fn eval_shared(&self, s: &SharedExpr) -> Result<Val, PromqlError> {
        Ok(Arc::unwrap_or_clone(self.eval_shared_value(s)?))
    }

    /// [`Evaluator::eval_shared`], the value as the group's queries share it.
    fn eval_shared_value(&self, s: &SharedExpr) -> Result<Arc<Val>, PromqlError> {
        let Some(shared) = self.shared else {
            return self.eval(s.expr()).map(Arc::new);
        };
        let grid: Grid = [
            self.start,
            self.end,
            self.interval,
            self.query_start,
            self.query_end,
        ];
        let claim = match shared.lookup(s.slot, grid) {
            Lookup::Hit(val, notes) => {
                self.notes.borrow_mut().merge(notes);
                return Ok(val);
            }
            Lookup::Alone => return self.eval(s.expr()).map(Arc::new),
            Lookup::Compute(claim) => claim,
        };
        let outer = self.notes.replace(Annotations::default());
        let result = self.eval(s.expr()).map(Arc::new);
        let produced = self.notes.replace(outer);
        if let Ok(val) = &result {
            claim.fill(val, &produced);
        }
        self.notes.borrow_mut().merge(produced);
        result
    }

    /// Evaluates an expression that must yield an instant vector, for a reader that needs only
    /// to look at it: a subexpression the group shares is read where it is kept, not copied.
    pub fn eval_vector_in(&self, e: &Expr) -> Result<VectorIn, PromqlError> {
        let shared = match e {
            Expr::Extension(ext) => ext.expr.as_any().downcast_ref::<SharedExpr>(),
            _ => None,
        };
        let Some(s) = shared else {
            return self.eval_vector(e).map(VectorIn::Owned);
        };
        let val = self.eval_shared_value(s)?;
        match &*val {
            Val::Vector(_) => Ok(VectorIn::Shared(val)),
            other => err(format!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }

    /// Evaluates an expression that must yield an instant vector.
    pub fn eval_vector(&self, e: &Expr) -> Result<Vec<StepSeries>, PromqlError> {
        match self.eval(e)? {
            Val::Vector(v) => Ok(v),
            other => err(format!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }

    /// Evaluates an expression that must yield a scalar (one value per step).
    pub fn eval_scalar(&self, e: &Expr) -> Result<Vec<f64>, PromqlError> {
        match self.eval(e)? {
            Val::Scalar(v) => Ok(v),
            other => err(format!("expected scalar, got {}", other.type_name())),
        }
    }

    /// Evaluates an expression that must yield a range vector.
    pub fn eval_range(&self, e: &Expr) -> Result<RangeVal, PromqlError> {
        match self.eval(e)? {
            Val::Range(v) => Ok(v),
            other => err(format!("expected range vector, got {}", other.type_name())),
        }
    }

    /// Splits series on the grid into one vector per step.
    pub fn split_steps_in(&self, input: VectorIn) -> Vec<Vec<VSample>> {
        match input {
            VectorIn::Owned(series) => self.split_steps(series),
            VectorIn::Shared(val) => {
                let Val::Vector(series) = &*val else {
                    unreachable!("a shared vector holds a vector")
                };
                self.split(series.iter(), |s| s.labels.clone())
            }
        }
    }

    pub fn split_steps(&self, series: Vec<StepSeries>) -> Vec<Vec<VSample>> {
        // One element per series of an instant query: its labels are moved rather than shared.
        self.split(series.into_iter(), |s| s.labels)
    }

    /// One vector per step from `series`, each element's labels taken by `labels`.
    fn split<S: std::borrow::Borrow<StepSeries>>(
        &self,
        series: impl ExactSizeIterator<Item = S>,
        labels: impl Fn(S) -> Labels,
    ) -> Vec<Vec<VSample>> {
        let n = self.n_steps();
        if n == 1 {
            let mut step = Vec::with_capacity(series.len());
            for s in series {
                let (f, drop_name) = match s.borrow().points.first() {
                    Some(p) => (p.f, s.borrow().drop_name),
                    None => continue,
                };
                step.push(VSample {
                    labels: labels(s),
                    f,
                    drop_name,
                });
            }
            return vec![step];
        }
        let mut steps: Vec<Vec<VSample>> = vec![Vec::new(); n];
        for s in series {
            let s = s.borrow();
            if !self.deadline.tick(s.points.len()) {
                // What is left is not used: the next check reports the timeout.
                break;
            }
            for p in &s.points {
                steps[self.step_of(p.t)].push(VSample {
                    labels: s.labels.clone(),
                    f: p.f,
                    drop_name: s.drop_name,
                });
            }
        }
        steps
    }

    /// Joins one vector per step back into series; two elements with the same labels at one
    /// step are an error, as in Prometheus.
    pub fn join_steps(&self, steps: Vec<Vec<VSample>>) -> Result<Vec<StepSeries>, PromqlError> {
        self.join(steps, false)
    }

    /// [`Evaluator::join_steps`] for steps whose labels are distinct by construction (one
    /// element per group of an aggregation): an instant query's step is taken as it is.
    pub fn join_distinct_steps(
        &self,
        steps: Vec<Vec<VSample>>,
    ) -> Result<Vec<StepSeries>, PromqlError> {
        self.join(steps, true)
    }

    fn join(
        &self,
        steps: Vec<Vec<VSample>>,
        distinct: bool,
    ) -> Result<Vec<StepSeries>, PromqlError> {
        let mut out: Vec<StepSeries> = Vec::new();
        if steps.len() == 1 && distinct {
            let t = self.ts(0);
            let step = steps.into_iter().next().expect("one step");
            return Ok(step
                .into_iter()
                .map(|s| StepSeries {
                    labels: s.labels,
                    points: smallvec::smallvec![Sample { t, f: s.f }],
                    drop_name: s.drop_name,
                })
                .collect());
        }
        if steps.len() == 1 {
            let t = self.ts(0);
            let step = steps.into_iter().next().expect("one step");
            let mut seen: std::collections::HashSet<Labels, FxBuildHasher> =
                std::collections::HashSet::with_capacity_and_hasher(
                    step.len(),
                    FxBuildHasher::default(),
                );
            for s in step {
                if !seen.insert(s.labels.clone()) {
                    return err("vector cannot contain metrics with the same labelset");
                }
                out.push(StepSeries {
                    labels: s.labels,
                    points: smallvec::smallvec![Sample { t, f: s.f }],
                    drop_name: s.drop_name,
                });
            }
            return Ok(out);
        }
        let mut index: HashMap<Labels, usize, FxBuildHasher> = HashMap::default();
        for (i, step) in steps.into_iter().enumerate() {
            self.deadline.step(step.len())?;
            let t = self.ts(i);
            for s in step {
                match index.get(&s.labels) {
                    Some(&k) => {
                        let series = &mut out[k];
                        if series.points.last().is_some_and(|p| p.t == t) {
                            return err("vector cannot contain metrics with the same labelset");
                        }
                        series.points.push(Sample { t, f: s.f });
                        series.drop_name |= s.drop_name;
                    }
                    None => {
                        index.insert(s.labels.clone(), out.len());
                        out.push(StepSeries {
                            labels: s.labels,
                            points: smallvec::smallvec![Sample { t, f: s.f }],
                            drop_name: s.drop_name,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}
