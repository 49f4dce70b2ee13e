//! One evaluation of a rule group at a given time: rules in order, recording results written to
//! the store before the next rule runs, alerts advanced through their states, `ALERTS` and
//! `ALERTS_FOR_STATE` written, `limit` enforced. Time is a parameter.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use promql_parser::parser::Expr;

use crate::alerts::{Fingerprint, Transition};
use crate::model::labels::{FxBuildHasher, Labels};
use crate::promql::{Engine, InstantSample, Shared, Value, slots_of};
use crate::store::{Store, stale_nan};

use super::alerting::{RuleAlerts, TemplateEnv, alert_series};
use super::rule::{CompiledRule, Group};

/// What a group keeps between evaluations, by rule position.
#[derive(Debug, Clone, Default)]
pub struct GroupState {
    /// The alerts of each rule (empty for recording rules).
    pub alerts: Vec<RuleAlerts>,
    /// The series each rule wrote at its last successful evaluation, to mark those it no longer
    /// writes as stale.
    pub written: Vec<HashSet<Labels, FxBuildHasher>>,
}

/// What one evaluation of a group did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupEvaluation {
    /// Alert state changes: rule position, fingerprint, transition.
    pub transitions: Vec<(usize, Fingerprint, Transition)>,
    /// Rules that failed: rule position and the error, in Prometheus's wording.
    pub errors: Vec<(usize, String)>,
    /// How long each rule took, by position.
    pub rule_durations: Vec<std::time::Duration>,
    /// Every sample written (recording results, `ALERTS`, `ALERTS_FOR_STATE`, stale markers),
    /// in order; filled only when asked for (remote write).
    pub written: Vec<InstantSample>,
}

/// Where rule expressions are evaluated: the local engine over the store, or a remote
/// Prometheus-compatible API.
pub trait Evaluate: Send + Sync {
    /// The value of `expr` (written `source`) at `at_ms`, or the error in words.
    fn instant(&self, expr: &Expr, source: &str, at_ms: i64) -> Result<Value, String>;

    /// [`Evaluate::instant`] for one rule of a group evaluation: `planned` is `expr` with the
    /// group's common subexpressions marked, whose values `shared` keeps for the evaluation.
    /// Sources that do not evaluate locally send `source` as it is.
    fn instant_planned(
        &self,
        expr: &Expr,
        planned: &Expr,
        source: &str,
        at_ms: i64,
        shared: &Shared,
    ) -> Result<Value, String> {
        let _ = (planned, shared);
        self.instant(expr, source, at_ms)
    }

    /// Whether several rules' queries may run on this source at once (from several threads).
    fn concurrent(&self) -> bool {
        false
    }
}

/// The embedded engine over a store.
pub struct Local<'a> {
    /// The engine.
    pub engine: &'a Engine,
    /// The store it reads.
    pub store: &'a Store,
}

impl Evaluate for Local<'_> {
    fn instant(&self, expr: &Expr, _source: &str, at_ms: i64) -> Result<Value, String> {
        self.engine
            .instant(self.store, expr, at_ms)
            .map(|r| r.value)
            .map_err(|e| e.to_string())
    }

    fn instant_planned(
        &self,
        _expr: &Expr,
        planned: &Expr,
        _source: &str,
        at_ms: i64,
        shared: &Shared,
    ) -> Result<Value, String> {
        self.engine
            .instant_shared(self.store, planned, at_ms, Some(shared))
            .map(|r| r.value)
            .map_err(|e| e.to_string())
    }

    fn concurrent(&self) -> bool {
        true
    }
}

/// Why a rule's query result cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleEvalError {
    /// The expression gave a string or range vector.
    #[error("rule result is not a vector or scalar")]
    NotAVector,
}

/// A query result as rules see it: a vector (a scalar becomes one sample without labels).
fn as_vector(value: Value) -> Result<Vec<InstantSample>, RuleEvalError> {
    match value {
        Value::Vector(v) => Ok(v),
        Value::Scalar { t, f } => Ok(vec![InstantSample {
            labels: Labels::empty(),
            t,
            f,
        }]),
        Value::String(_) | Value::Matrix(_) => Err(RuleEvalError::NotAVector),
    }
}

/// What every rule of one evaluation shares.
#[derive(Clone, Copy)]
struct RuleContext<'a> {
    store: &'a Store,
    now: i64,
    at: i64,
    env: &'a TemplateEnv,
}

/// A rule's query result and how long the query took.
type Answer = (Result<Value, String>, Duration);

/// The most threads one group evaluation runs its rules' queries on.
const MAX_QUERY_THREADS: usize = 4;

impl Group {
    /// Evaluates every rule of the group at `now` (Unix milliseconds) in order, against
    /// `store`: queries run at `now - query_offset`; recording results are appended to the
    /// store (so later rules see them); alerts advance and their `ALERTS` and
    /// `ALERTS_FOR_STATE` samples are appended at `now`; series a rule wrote last time and not
    /// this time get a stale marker, as Prometheus writes. A failing rule is reported and the
    /// others still run.
    pub fn evaluate(
        &self,
        state: &mut GroupState,
        engine: &Engine,
        store: &Store,
        now: i64,
        env: &TemplateEnv,
    ) -> GroupEvaluation {
        self.evaluate_on(state, &Local { engine, store }, store, now, env, false)
    }

    /// [`Group::evaluate`] with expressions evaluated by `source` (a remote API, say); what
    /// rules write still goes to `store`, and also to the result's `written` when
    /// `keep_written`.
    pub fn evaluate_on(
        &self,
        state: &mut GroupState,
        source: &dyn Evaluate,
        store: &Store,
        now: i64,
        env: &TemplateEnv,
        keep_written: bool,
    ) -> GroupEvaluation {
        let mut out = GroupEvaluation::default();
        let mut written = keep_written.then(Vec::new);
        state.alerts.resize_with(self.rules.len(), RuleAlerts::new);
        state
            .written
            .resize_with(self.rules.len(), HashSet::default);
        let at = now - i64::try_from(self.query_offset.as_millis()).unwrap_or(i64::MAX);
        out.rule_durations = Vec::with_capacity(self.rules.len());
        let shared = Shared::new(self.shared_slots);
        let mut answered = if self.independent && source.concurrent() {
            self.query_all(source, at, &shared)
        } else {
            Vec::new()
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let started = std::time::Instant::now();
            let (answer, queried) = match answered.get_mut(i).and_then(Option::take) {
                Some(done) => done,
                None => (self.query(i, source, at, &shared), Duration::ZERO),
            };
            let ctx = RuleContext {
                store,
                now,
                at,
                env,
            };
            self.evaluate_rule(i, rule, state, &ctx, answer, &mut out, written.as_mut());
            out.rule_durations.push(queried + started.elapsed());
        }
        out.written = written.unwrap_or_default();
        out
    }

    /// Rule `i`'s query at `at`.
    fn query(
        &self,
        i: usize,
        source: &dyn Evaluate,
        at: i64,
        shared: &Shared,
    ) -> Result<Value, String> {
        let (expr, text) = match &self.rules[i] {
            CompiledRule::Recording(r) => (&r.expr, &r.source),
            CompiledRule::Alerting(a) => (&a.expr, &a.source),
        };
        source.instant_planned(expr, &self.planned[i], text, at, shared)
    }

    /// Every rule's query, run on up to [`MAX_QUERY_THREADS`] threads at once (the calling one
    /// among them), with how long each took; empty when one thread is all there is.
    fn query_all(&self, source: &dyn Evaluate, at: i64, shared: &Shared) -> Vec<Option<Answer>> {
        let n = self.rules.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .min(n)
            .min(MAX_QUERY_THREADS);
        if threads < 2 {
            return Vec::new();
        }
        // The shared subexpressions each rule reads: a thread picks first a rule that would not
        // wait for one that another thread is computing.
        let reads: Vec<Vec<usize>> = self
            .planned
            .iter()
            .map(|e| {
                let mut slots = Vec::new();
                slots_of(e, &mut slots);
                slots
            })
            .collect();
        let left: Mutex<Vec<usize>> = Mutex::new((0..n).rev().collect());
        let next = || {
            let mut left = left.lock().unwrap_or_else(|e| e.into_inner());
            let pick = left
                .iter()
                .rposition(|&i| !shared.computing_any(&reads[i]))
                .unwrap_or(left.len().checked_sub(1)?);
            Some(left.remove(pick))
        };
        let answers: Vec<Mutex<Option<Answer>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let work = || {
            while let Some(i) = next() {
                let started = std::time::Instant::now();
                let answer = self.query(i, source, at, shared);
                *answers[i].lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((answer, started.elapsed()));
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(work);
            }
            work();
        });
        answers
            .into_iter()
            .map(|a| a.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }

    /// Evaluates rule `i` into `out` (and `written`, when kept).
    #[allow(clippy::too_many_arguments)]
    fn evaluate_rule(
        &self,
        i: usize,
        rule: &CompiledRule,
        state: &mut GroupState,
        ctx: &RuleContext<'_>,
        answer: Result<Value, String>,
        out: &mut GroupEvaluation,
        mut kept: Option<&mut Vec<InstantSample>>,
    ) {
        let RuleContext {
            store,
            now,
            at,
            env,
        } = *ctx;
        {
            let alerts = match rule {
                CompiledRule::Recording(_) => None,
                CompiledRule::Alerting(_) => Some(&mut state.alerts[i]),
            };
            let samples = match answer.and_then(|value| as_vector(value).map_err(|e| e.to_string()))
            {
                Ok(samples) => samples,
                Err(error) => {
                    out.errors.push((i, error));
                    return;
                }
            };
            let written = match (rule, alerts) {
                (CompiledRule::Recording(r), _) => {
                    r.apply(&samples, self.limit).map_err(|e| e.to_string())
                }
                (CompiledRule::Alerting(a), Some(alerts)) => a
                    .apply(alerts, &samples, now, self.limit, env)
                    .map(|transitions| {
                        out.transitions
                            .extend(transitions.into_iter().map(|(f, t)| (i, f, t)));
                        alert_series(alerts, now)
                    })
                    .map_err(|e| e.to_string()),
                (CompiledRule::Alerting(_), None) => Ok(Vec::new()),
            };
            let stale_at = match rule {
                CompiledRule::Recording(_) => at,
                CompiledRule::Alerting(_) => now,
            };
            match written {
                Ok(series) => {
                    let mut now_written =
                        HashSet::with_capacity_and_hasher(series.len(), FxBuildHasher::default());
                    for s in series {
                        if let Err(e) = store.append(&s.labels, s.t, s.f) {
                            out.errors.push((i, e.to_string()));
                        }
                        if let Some(kept) = kept.as_deref_mut() {
                            kept.push(s.clone());
                        }
                        now_written.insert(s.labels);
                    }
                    let before = std::mem::replace(&mut state.written[i], now_written);
                    for gone in before.difference(&state.written[i]) {
                        // A refused marker (out of order) leaves nothing a query would see.
                        let _ = store.append(gone, stale_at, stale_nan());
                        if let Some(kept) = kept.as_deref_mut() {
                            kept.push(InstantSample {
                                labels: gone.clone(),
                                t: stale_at,
                                f: stale_nan(),
                            });
                        }
                    }
                }
                Err(error) => out.errors.push((i, error)),
            }
        }
    }
}
