//! What a rule's expression keeps from one evaluation to the next.
//!
//! A rule evaluates the same expression every interval over, mostly, the same series. Some of
//! the work depends only on which series come in, not on their values: which group of an
//! aggregation each series falls in, which histogram and bucket each `histogram_quantile` input
//! is. [`keep_plans`] wraps those nodes of an expression in [`Planned`] nodes that keep that
//! work (a [`NodePlan`]) between evaluations. The engine uses it while the input is the same
//! series, and works it out again when it is not. An expression without these nodes (an API
//! query) evaluates as before.
//!
//! The input's label sets are the store's own (or a shared or planned value's): the same
//! allocations from one evaluation to the next. A plan holds the input's label sets, so that a
//! pointer seen again is the same set, and compares them by pointer.

use std::any::Any;
use std::sync::{Arc, Mutex};

use promql_parser::parser::ast::ExtensionExpr;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AggregateExpr, Call, Expr, Extension, NumberLiteral};

use super::eval::VSample;
use crate::model::labels::Labels;

pub(crate) use super::aggregate::GroupPlan;
pub(crate) use super::histogram::BucketPlan;

/// The label sets of a node's input when its plan was made.
#[derive(Debug, Default)]
pub(crate) struct Inputs(Vec<Labels>);

impl Inputs {
    /// `vec`'s label sets.
    pub fn of(vec: &[VSample]) -> Inputs {
        Inputs(vec.iter().map(|s| s.labels.clone()).collect())
    }

    /// Whether `vec` is the same label sets, in the same order.
    pub fn fit(&self, vec: &[VSample]) -> bool {
        self.0.len() == vec.len()
            && self
                .0
                .iter()
                .zip(vec)
                .all(|(a, s)| Labels::ptr_eq(a, &s.labels))
    }

    #[cfg(test)]
    pub fn labels(&self) -> &[Labels] {
        &self.0
    }
}

/// What one node keeps: the part its kind uses.
#[derive(Debug, Default)]
pub(crate) struct NodePlan {
    pub groups: GroupPlan,
    pub buckets: BucketPlan,
}

/// A node and what it worked out at its last instant evaluation.
pub struct Planned {
    plan: Mutex<NodePlan>,
    expr: [Expr; 1],
}

impl Planned {
    fn new(expr: Expr) -> Planned {
        Planned {
            plan: Mutex::default(),
            expr: [expr],
        }
    }

    /// The aggregation it wraps, if that is what it wraps.
    pub(crate) fn aggregate(&self) -> Option<&AggregateExpr> {
        match &self.expr[0] {
            Expr::Aggregate(a) => Some(a),
            _ => None,
        }
    }

    /// The function call it wraps, if that is what it wraps.
    pub(crate) fn call(&self) -> Option<&Call> {
        match &self.expr[0] {
            Expr::Call(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn plan(&self) -> &Mutex<NodePlan> {
        &self.plan
    }

    /// The node it wraps.
    pub fn expr(&self) -> &Expr {
        &self.expr[0]
    }
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "planned {}", self.expr[0])
    }
}

impl ExtensionExpr for Planned {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "planned"
    }

    fn value_type(&self) -> ValueType {
        self.expr[0].value_type()
    }

    fn children(&self) -> &[Expr] {
        &self.expr
    }

    fn with_new_children(&self, mut children: Vec<Expr>) -> Arc<dyn ExtensionExpr> {
        let expr = children.pop().unwrap_or_else(|| self.expr[0].clone());
        Arc::new(Planned::new(expr))
    }
}

/// Whether a node keeps a plan: aggregations and `histogram_quantile`.
fn keeps_plan(e: &Expr) -> bool {
    match e {
        Expr::Aggregate(_) => true,
        Expr::Call(c) => c.func.name == "histogram_quantile",
        _ => false,
    }
}

/// Wraps every node of `e` that keeps a plan (inside other marked nodes too) in a [`Planned`].
pub fn keep_plans(e: &mut Expr) {
    match e {
        Expr::Extension(ext) => {
            let mut children = ext.expr.children().to_vec();
            for c in &mut children {
                keep_plans(c);
            }
            ext.expr = ext.expr.with_new_children(children);
            return;
        }
        Expr::Subquery(sq) => keep_plans(&mut sq.expr),
        Expr::Paren(p) => keep_plans(&mut p.expr),
        Expr::Unary(u) => keep_plans(&mut u.expr),
        Expr::Binary(b) => {
            keep_plans(&mut b.lhs);
            keep_plans(&mut b.rhs);
        }
        Expr::Aggregate(a) => {
            keep_plans(&mut a.expr);
            if let Some(p) = a.param.as_deref_mut() {
                keep_plans(p);
            }
        }
        Expr::Call(c) => {
            for a in c.args.args.iter_mut() {
                keep_plans(Box::as_mut(a));
            }
        }
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_) => {}
    }
    if keeps_plan(e) {
        let inner = std::mem::replace(e, Expr::NumberLiteral(NumberLiteral { val: 0.0 }));
        *e = Expr::Extension(Extension {
            expr: Arc::new(Planned::new(inner)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::labels::Labels;
    use crate::promql::{Engine, Value, parse};
    use crate::store::{Store, StoreOptions};

    fn sorted(v: Value) -> Vec<(Labels, u64)> {
        let Value::Vector(v) = v else {
            panic!("not a vector: {v:?}")
        };
        let mut out: Vec<(Labels, u64)> =
            v.into_iter().map(|s| (s.labels, s.f.to_bits())).collect();
        out.sort();
        out
    }

    fn planned(source: &str) -> Expr {
        let mut e = parse(source).unwrap();
        keep_plans(&mut e);
        e
    }

    /// The plan of the outermost node of `e`, a planned aggregation.
    fn plan_of(e: &Expr) -> &Mutex<NodePlan> {
        let Expr::Extension(ext) = e else {
            panic!("not planned: {e}")
        };
        ext.expr
            .as_any()
            .downcast_ref::<Planned>()
            .expect("a planned aggregation")
            .plan()
    }

    #[test]
    fn every_aggregation_is_wrapped_and_means_the_same() {
        let e = planned("sum by (a) (rate(m[1m])) / on () group_left max(topk(2, m))");
        let mut found = Vec::new();
        fn walk(e: &Expr, found: &mut Vec<String>) {
            if let Expr::Extension(ext) = e {
                if let Some(p) = ext.expr.as_any().downcast_ref::<Planned>() {
                    found.push(p.aggregate().expect("an aggregation").op.to_string());
                }
                for c in ext.expr.children() {
                    walk(c, found);
                }
                return;
            }
            match e {
                Expr::Binary(b) => {
                    walk(&b.lhs, found);
                    walk(&b.rhs, found);
                }
                Expr::Aggregate(a) => walk(&a.expr, found),
                Expr::Paren(p) => walk(&p.expr, found),
                _ => {}
            }
        }
        walk(&e, &mut found);
        found.sort();
        assert_eq!(found, ["max", "sum", "topk"]);
    }

    /// What a query answered: its samples, sorted, and its warnings and infos.
    type Answer = (Vec<(Labels, u64)>, Vec<String>, Vec<String>);

    fn answer(engine: &Engine, store: &Store, e: &Expr, at: i64) -> Answer {
        let r = engine.instant(store, e, at).unwrap();
        (sorted(r.value), r.warnings, r.infos)
    }

    /// Rounds of appends where series come, go and change order between evaluations: each
    /// planned expression answers as the same expression without plans (warnings and infos
    /// included), and its outermost node keeps its plan (`inputs`) while its input is the same
    /// series. `series(i)` is the `i`th series of a pool of 40; values are in quarters from -2
    /// to 2.
    fn planned_answer_as_unplanned(
        exprs: &[&str],
        series: impl Fn(usize) -> Labels,
        inputs: impl Fn(&NodePlan) -> Vec<Labels>,
    ) {
        let mut rng = fastrand::Rng::with_seed(7);
        let store = Store::new(StoreOptions::default());
        let engine = Engine::default();
        let plans: Vec<Expr> = exprs.iter().map(|e| planned(e)).collect();
        let plain: Vec<Expr> = exprs.iter().map(|e| parse(e).unwrap()).collect();
        let mut reused = 0;
        // The series written each round: most rounds the same ones; some rounds one series
        // gives way to another (as many as before), some add series, some end series (a stale
        // marker ends a series at once).
        let mut live: Vec<usize> = (0..20).collect();
        for round in 0..60i64 {
            let t = round * 15_000;
            let mut ended = Vec::new();
            match round % 6 {
                2 => {
                    let k = rng.usize(..live.len());
                    ended.push(live[k]);
                    live[k] = 20 + rng.usize(..20);
                }
                4 if live.len() < 30 => live.extend((0..3).map(|_| 20 + rng.usize(..20))),
                5 if live.len() > 10 => ended.extend(live.drain(..2)),
                _ => {}
            }
            live.sort_unstable();
            live.dedup();
            for &i in &ended {
                if !live.contains(&i) {
                    store
                        .append(&series(i), t, crate::store::stale_nan())
                        .unwrap();
                }
            }
            for &i in &live {
                let v = (rng.i32(-8..8) as f64) / 4.0;
                store.append(&series(i), t, v).unwrap();
            }
            let at = t + 1_000;
            for ((p, e), source) in plans.iter().zip(&plain).zip(exprs) {
                let before = inputs(&plan_of(p).lock().unwrap());
                let got = answer(&engine, &store, p, at);
                let want = answer(&engine, &store, e, at);
                assert_eq!(got, want, "{source} at round {round}");
                let after = inputs(&plan_of(p).lock().unwrap());
                if !before.is_empty()
                    && before.len() == after.len()
                    && before.iter().zip(&after).all(|(x, y)| Labels::ptr_eq(x, y))
                {
                    reused += 1;
                }
            }
        }
        // Rounds with the same series as the round before reuse every plan.
        assert!(reused > exprs.len() * 25, "plans reused {reused} times");
    }

    #[test]
    fn planned_aggregations_answer_as_unplanned_ones_while_series_change() {
        let exprs = [
            "sum by (a) (m)",
            "avg without (b) (m)",
            "count(m)",
            "max by (a, b) (m)",
            "min by (__name__, a) ({__name__=~\"m|n\"})",
            "stddev by (b) (m)",
            "quantile by (a) (0.3, m)",
            "group by (c) (m)",
            "sum by (a) (abs(m))",
            "sum(sum by (a, b) (m))",
        ];
        let series = |i: usize| {
            let name = if i.is_multiple_of(5) { "n" } else { "m" };
            let (a, b, id) = (format!("a{}", i % 3), format!("b{}", i % 4), i.to_string());
            Labels::from_pairs([("__name__", name), ("a", &a), ("b", &b), ("id", &id)])
        };
        planned_answer_as_unplanned(&exprs, series, |p| p.groups.inputs.labels().to_vec());
    }

    #[test]
    fn planned_histogram_quantiles_answer_as_unplanned_ones_while_series_change() {
        let exprs = [
            "histogram_quantile(0.5, h_bucket)",
            "histogram_quantile(0.9, sum by (le, a) (h_bucket))",
            "histogram_quantile(0.99, sum without (id) (h_bucket))",
        ];
        // Six buckets a histogram, one with a malformed bound (a warning) and one given twice
        // (`2` and `2.0`); values at random, so that some need fixing for monotonicity (an info).
        let series = |i: usize| {
            let le = ["0.1", "0.5", "2", "+Inf", "x", "2.0"][i % 6];
            let (a, id) = (format!("a{}", (i / 6) % 3), (i / 6).to_string());
            Labels::from_pairs([("__name__", "h_bucket"), ("a", &a), ("id", &id), ("le", le)])
        };
        planned_answer_as_unplanned(&exprs, series, |p| p.buckets.inputs.labels().to_vec());
    }

    #[test]
    fn a_range_query_does_not_use_or_touch_the_plan() {
        let store = Store::new(StoreOptions::default());
        for t in 0..10 {
            for i in 0..6 {
                let a = format!("a{}", i % 2);
                let id = i.to_string();
                let l = Labels::from_pairs([("__name__", "m"), ("a", &a), ("id", &id)]);
                store.append(&l, t * 15_000, (t + i) as f64).unwrap();
            }
        }
        let p = planned("sum by (a) (m)");
        let engine = Engine::default();
        let got = engine.range(&store, &p, 0, 135_000, 15_000).unwrap();
        let want = engine
            .range(
                &store,
                &parse("sum by (a) (m)").unwrap(),
                0,
                135_000,
                15_000,
            )
            .unwrap();
        assert_eq!(format!("{:?}", got.value), format!("{:?}", want.value));
        assert!(
            plan_of(&p)
                .lock()
                .unwrap()
                .groups
                .inputs
                .labels()
                .is_empty()
        );
    }
}
