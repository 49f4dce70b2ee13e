//! Subexpressions that several rules of one group compute alike, evaluated once per group
//! evaluation.
//!
//! Rule packs repeat themselves: four quantiles of one latency histogram each compute
//! `rate(trading_order_latency_seconds_bucket[1m])` over the same buckets at the same instant.
//! [`share_common`] finds the subexpressions (aggregations, function calls, binary operations)
//! that occur more than once across a group's expressions and marks each occurrence with a
//! [`SharedExpr`] node; the engine, given a [`Shared`] for the group evaluation, computes a marked
//! node the first time it meets it and hands out copies afterwards.
//!
//! A value may be reused only while what it read cannot have changed: rules write recording
//! results, `ALERTS` and `ALERTS_FOR_STATE` into the store between one rule and the next. So a
//! subexpression is shared only when every selector in it names its metric (`x{…}` or
//! `{__name__="x"}`) and none of those names is one the group writes.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};

use promql_parser::label::MatchOp;
use promql_parser::parser::ast::ExtensionExpr;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, Extension, NumberLiteral, VectorSelector};

use super::eval::{Annotations, Val};
use crate::model::labels::METRIC_NAME;

/// A subexpression that occurs more than once in a group: its slot in [`Shared`] and the
/// expression itself.
pub struct SharedExpr {
    /// The slot its value is kept in during one group evaluation.
    pub slot: usize,
    expr: [Expr; 1],
}

impl SharedExpr {
    /// The marked subexpression.
    pub fn expr(&self) -> &Expr {
        &self.expr[0]
    }
}

impl std::fmt::Debug for SharedExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shared[{}] {}", self.slot, self.expr[0])
    }
}

impl ExtensionExpr for SharedExpr {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "shared"
    }

    fn value_type(&self) -> ValueType {
        self.expr[0].value_type()
    }

    fn children(&self) -> &[Expr] {
        &self.expr
    }

    fn with_new_children(&self, mut children: Vec<Expr>) -> Arc<dyn ExtensionExpr> {
        let expr = children.pop().unwrap_or_else(|| self.expr[0].clone());
        Arc::new(SharedExpr {
            slot: self.slot,
            expr: [expr],
        })
    }
}

/// The grid a value was computed on: start, end, interval, and the outer query's start and end
/// (which `@ start()` and `@ end()` name).
pub(crate) type Grid = [i64; 5];

/// One computed value: the grid it was computed on, the value, and the warnings and infos its
/// computation gave (repeated to every query that reuses it).
struct Slot {
    grid: Grid,
    val: Arc<Val>,
    notes: Annotations,
}

/// Where a slot stands in one group evaluation.
enum SlotState {
    Empty,
    /// A query is computing it; others wait rather than compute it again.
    Computing,
    Done(Slot),
}

/// The values of a group's shared subexpressions during one group evaluation. Rules may be
/// evaluated on several threads at once: the first to need a value computes it, the others wait
/// for it. Waiting cannot go round in a circle, because a query computing a value only ever waits
/// for values of subexpressions strictly inside it.
pub struct Shared {
    slots: Mutex<Vec<SlotState>>,
    ready: Condvar,
}

/// What a query does about a shared subexpression.
pub(crate) enum Lookup<'a> {
    /// Another query computed it: the value and the notes its computation gave.
    Hit(Arc<Val>, Annotations),
    /// Compute it, and [`Claim::fill`] the slot.
    Compute(Claim<'a>),
    /// Compute it for this query alone (its grid is not the one the slot holds).
    Alone,
}

/// The right and the duty to fill a slot; dropped unfilled (an error, a panic), it frees the
/// slot for the next query to try.
pub(crate) struct Claim<'a> {
    shared: &'a Shared,
    slot: usize,
    grid: Grid,
    filled: bool,
}

impl Shared {
    /// Room for `slots` values, none computed yet.
    pub fn new(slots: usize) -> Shared {
        Shared {
            slots: Mutex::new((0..slots).map(|_| SlotState::Empty).collect()),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SlotState>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `slot` on `grid`, or the claim to compute it.
    pub(crate) fn lookup(&self, slot: usize, grid: Grid) -> Lookup<'_> {
        let mut slots = self.lock();
        loop {
            match slots.get(slot) {
                None => return Lookup::Alone,
                Some(SlotState::Done(s)) if s.grid == grid => {
                    return Lookup::Hit(s.val.clone(), s.notes.clone());
                }
                Some(SlotState::Done(_)) => return Lookup::Alone,
                Some(SlotState::Computing) => {
                    slots = self.ready.wait(slots).unwrap_or_else(|e| e.into_inner());
                }
                Some(SlotState::Empty) => {
                    slots[slot] = SlotState::Computing;
                    return Lookup::Compute(Claim {
                        shared: self,
                        slot,
                        grid,
                        filled: false,
                    });
                }
            }
        }
    }

    /// Whether a query is computing one of `slots` now (a query that reads it would wait).
    pub fn computing_any(&self, slots: &[usize]) -> bool {
        let states = self.lock();
        slots
            .iter()
            .any(|&s| matches!(states.get(s), Some(SlotState::Computing)))
    }

    fn settle(&self, slot: usize, state: SlotState) {
        self.lock()[slot] = state;
        self.ready.notify_all();
    }
}

impl Claim<'_> {
    /// Keeps `val`, computed with `notes`, for the other queries of the evaluation.
    pub(crate) fn fill(mut self, val: &Arc<Val>, notes: &Annotations) {
        let done = SlotState::Done(Slot {
            grid: self.grid,
            val: val.clone(),
            notes: notes.clone(),
        });
        self.shared.settle(self.slot, done);
        self.filled = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.filled {
            self.shared.settle(self.slot, SlotState::Empty);
        }
    }
}

/// Marks the subexpressions that occur more than once across `exprs` (and read none of the
/// metrics in `written`) with [`SharedExpr`] nodes, numbering their slots from 0; returns how
/// many slots there are. Expressions keep their meaning: a marked node evaluates as the node it
/// marks.
pub fn share_common(exprs: &mut [Expr], written: &HashSet<String>) -> usize {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in exprs.iter() {
        count(e, written, &mut counts);
    }
    let mut slots: HashMap<String, usize> = HashMap::new();
    for e in exprs.iter_mut() {
        mark(e, &counts, &mut slots);
    }
    slots.len()
}

/// The slots of the shared subexpressions `e` reads, nested ones included.
pub fn slots_of(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::Extension(ext) => {
            if let Some(s) = ext.expr.as_any().downcast_ref::<SharedExpr>() {
                out.push(s.slot);
            }
            for c in ext.expr.children() {
                slots_of(c, out);
            }
        }
        Expr::Subquery(sq) => slots_of(&sq.expr, out),
        Expr::Paren(p) => slots_of(&p.expr, out),
        Expr::Unary(u) => slots_of(&u.expr, out),
        Expr::Binary(b) => {
            slots_of(&b.lhs, out);
            slots_of(&b.rhs, out);
        }
        Expr::Aggregate(a) => {
            slots_of(&a.expr, out);
            if let Some(p) = a.param.as_deref() {
                slots_of(p, out);
            }
        }
        Expr::Call(c) => {
            for a in c.args.args.iter() {
                slots_of(a, out);
            }
        }
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_) => {}
    }
}

/// Whether every selector of `e` names its metric and none of those names is in `written`: what
/// `e` reads cannot change while a group writes `written`.
pub fn reads_none_of(e: &Expr, written: &HashSet<String>) -> bool {
    count(e, written, &mut HashMap::new())
}

/// A key that tells two subexpressions apart whenever they could differ: the whole AST.
fn key(e: &Expr) -> String {
    format!("{e:?}")
}

/// Whether `e` is a node worth sharing (the nodes that do real work and whose parents never look
/// at their syntax).
fn candidate(e: &Expr) -> bool {
    matches!(e, Expr::Aggregate(_) | Expr::Call(_) | Expr::Binary(_))
}

/// Counts the candidate nodes of `e` that read only metrics outside `written`; returns whether
/// `e` itself reads only such metrics.
fn count(e: &Expr, written: &HashSet<String>, counts: &mut HashMap<String, usize>) -> bool {
    let safe = match e {
        Expr::VectorSelector(vs) => reads_fixed_metric(vs, written),
        Expr::MatrixSelector(ms) => reads_fixed_metric(&ms.vs, written),
        Expr::Subquery(sq) => count(&sq.expr, written, counts),
        Expr::Paren(p) => count(&p.expr, written, counts),
        Expr::Unary(u) => count(&u.expr, written, counts),
        Expr::Binary(b) => count(&b.lhs, written, counts) & count(&b.rhs, written, counts),
        Expr::Aggregate(a) => {
            let param = a.param.as_deref().is_none_or(|p| count(p, written, counts));
            count(&a.expr, written, counts) & param
        }
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .fold(true, |all, a| count(a, written, counts) & all),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::Extension(_) => false,
    };
    if safe && candidate(e) {
        *counts.entry(key(e)).or_default() += 1;
    }
    safe
}

/// Replaces, outermost first, each node of `e` that `counts` saw more than once.
fn mark(e: &mut Expr, counts: &HashMap<String, usize>, slots: &mut HashMap<String, usize>) {
    if candidate(e) {
        let k = key(e);
        if counts.get(&k).is_some_and(|&n| n > 1) {
            let next = slots.len();
            let slot = *slots.entry(k).or_insert(next);
            let mut inner = std::mem::replace(e, Expr::NumberLiteral(NumberLiteral { val: 0.0 }));
            mark_children(&mut inner, counts, slots);
            *e = Expr::Extension(Extension {
                expr: Arc::new(SharedExpr {
                    slot,
                    expr: [inner],
                }),
            });
            return;
        }
    }
    mark_children(e, counts, slots);
}

fn mark_children(
    e: &mut Expr,
    counts: &HashMap<String, usize>,
    slots: &mut HashMap<String, usize>,
) {
    match e {
        Expr::Subquery(sq) => mark(&mut sq.expr, counts, slots),
        Expr::Paren(p) => mark(&mut p.expr, counts, slots),
        Expr::Unary(u) => mark(&mut u.expr, counts, slots),
        Expr::Binary(b) => {
            mark(&mut b.lhs, counts, slots);
            mark(&mut b.rhs, counts, slots);
        }
        Expr::Aggregate(a) => {
            mark(&mut a.expr, counts, slots);
            if let Some(p) = a.param.as_deref_mut() {
                mark(p, counts, slots);
            }
        }
        Expr::Call(c) => {
            for a in c.args.args.iter_mut() {
                mark(Box::as_mut(a), counts, slots);
            }
        }
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

/// Whether a selector names one metric, outside `written`.
fn reads_fixed_metric(vs: &VectorSelector, written: &HashSet<String>) -> bool {
    if !vs.matchers.or_matchers.is_empty() {
        return false;
    }
    let name = vs.name.as_deref().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.as_str())
    });
    name.is_some_and(|n| !written.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::labels::Labels;
    use crate::promql::{Engine, Value, parse};
    use crate::store::{Store, StoreOptions};

    fn marked(e: &Expr, out: &mut Vec<(usize, String)>) {
        if let Expr::Extension(ext) = e {
            let s = ext.expr.as_any().downcast_ref::<SharedExpr>().unwrap();
            out.push((s.slot, s.expr().to_string()));
            marked(s.expr(), out);
            return;
        }
        for c in children(e) {
            marked(c, out);
        }
    }

    fn children(e: &Expr) -> Vec<&Expr> {
        match e {
            Expr::Subquery(sq) => vec![&sq.expr],
            Expr::Paren(p) => vec![&p.expr],
            Expr::Unary(u) => vec![&u.expr],
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Aggregate(a) => vec![&a.expr],
            Expr::Call(c) => c.args.args.iter().map(|a| a.as_ref()).collect(),
            _ => vec![],
        }
    }

    fn plan(exprs: &[&str], written: &[&str]) -> (Vec<Expr>, usize, Vec<(usize, String)>) {
        let mut parsed: Vec<Expr> = exprs.iter().map(|e| parse(e).unwrap()).collect();
        let written = written.iter().map(|w| w.to_string()).collect();
        let n = share_common(&mut parsed, &written);
        let mut marks = Vec::new();
        for e in &parsed {
            marked(e, &mut marks);
        }
        (parsed, n, marks)
    }

    #[test]
    fn repeated_subexpressions_are_marked_outermost_first() {
        const OUTER: &str = "sum by (le) (Extension { expr: shared[1] rate(b[1m]) })";
        let (_, n, marks) = plan(
            &[
                "histogram_quantile(0.99, sum by (le) (rate(b[1m]))) > 1",
                "histogram_quantile(0.5, sum by (le) (rate(b[1m]))) > 1",
                "histogram_quantile(0.9, rate(b[1m]))",
                "rate(b[5m])",
            ],
            &[],
        );
        assert_eq!(n, 2);
        assert_eq!(
            marks,
            vec![
                (0, OUTER.to_string()),
                (1, "rate(b[1m])".to_string()),
                (0, OUTER.to_string()),
                (1, "rate(b[1m])".to_string()),
                (1, "rate(b[1m])".to_string()),
            ]
        );
    }

    #[test]
    fn what_the_group_writes_or_an_unnamed_selector_reads_is_not_shared() {
        let (_, n, _) = plan(
            &["sum(job:up)", "sum(job:up) > 1", "sum(up)", "sum(up) * 2"],
            &["job:up"],
        );
        assert_eq!(n, 1, "only sum(up) is shared");
        let (_, n, _) = plan(&["sum({job=\"a\"})", "sum({job=\"a\"}) > 1"], &[]);
        assert_eq!(n, 0);
        let (_, n, _) = plan(
            &["sum({__name__=\"up\"})", "sum({__name__=\"up\"}) > 1"],
            &[],
        );
        assert_eq!(n, 1);
        // Selectors that differ only in an offset are not the same subexpression.
        let (_, n, _) = plan(&["sum(up offset 1m)", "sum(up) > 1"], &[]);
        assert_eq!(n, 0);
    }

    #[test]
    fn shared_values_equal_unshared_ones_and_keep_their_notes() {
        let store = Store::new(StoreOptions::default());
        for i in 0..4 {
            let l = Labels::from_pairs([("__name__", "gauge"), ("i", &i.to_string())]);
            for t in 0..10 {
                store.append(&l, t * 15_000, (t * i) as f64).unwrap();
            }
        }
        let exprs = [
            "sum(rate(gauge[1m]))",
            "sum(rate(gauge[1m])) > 0",
            "rate(gauge[1m]) * 2",
        ];
        let (planned, n, _) = plan(&exprs, &[]);
        assert_eq!(n, 2);
        let engine = Engine::default();
        let shared = Shared::new(n);
        for (text, p) in exprs.iter().zip(&planned) {
            let plain = engine
                .instant(&store, &parse(text).unwrap(), 120_000)
                .unwrap();
            let got = engine
                .instant_shared(&store, p, 120_000, Some(&shared))
                .unwrap();
            assert_eq!(format!("{:?}", got.value), format!("{:?}", plain.value));
            // rate() over a gauge gives an info; the copy repeats it.
            assert_eq!(got.infos, plain.infos, "{text}");
            assert!(!got.infos.is_empty());
        }
        let Value::Vector(v) = engine
            .instant_shared(&store, &planned[1], 120_000, Some(&shared))
            .unwrap()
            .value
        else {
            panic!()
        };
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn a_query_waits_for_the_value_another_is_computing() {
        let shared = Shared::new(1);
        let grid = [0, 0, 1, 0, 0];
        let val = Arc::new(Val::Scalar(vec![42.0]));
        let Lookup::Compute(claim) = shared.lookup(0, grid) else {
            panic!("the first query computes");
        };
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| match shared.lookup(0, grid) {
                Lookup::Hit(val, _) => match &*val {
                    Val::Scalar(v) => v.clone(),
                    _ => panic!("a scalar was kept"),
                },
                _ => panic!("the second query gets the first one's value"),
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(
                !waiter.is_finished(),
                "it waits while the value is computed"
            );
            claim.fill(&val, &Annotations::default());
            assert_eq!(waiter.join().unwrap(), vec![42.0]);
        });
        // Another grid (a subquery's) computes for itself.
        assert!(matches!(shared.lookup(0, [0, 0, 2, 0, 0]), Lookup::Alone));
    }

    #[test]
    fn a_claim_given_up_lets_the_next_query_compute() {
        let shared = Shared::new(1);
        let grid = [0, 0, 1, 0, 0];
        let Lookup::Compute(claim) = shared.lookup(0, grid) else {
            panic!("the first query computes");
        };
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| matches!(shared.lookup(0, grid), Lookup::Compute(_)));
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(claim); // the computation failed
            assert!(waiter.join().unwrap());
        });
    }
}
