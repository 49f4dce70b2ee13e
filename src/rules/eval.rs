//! One evaluation of a rule group at a given time: rules in order, recording results written to
//! the store before the next rule runs, alerts advanced through their states, `ALERTS` and
//! `ALERTS_FOR_STATE` written, `limit` enforced. Time is a parameter.

use std::collections::HashSet;

use crate::alerts::{Fingerprint, Transition};
use crate::model::labels::Labels;
use crate::promql::{Engine, InstantSample, Value};
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
    pub written: Vec<HashSet<Labels>>,
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
        let mut out = GroupEvaluation::default();
        state.alerts.resize_with(self.rules.len(), RuleAlerts::new);
        state.written.resize_with(self.rules.len(), HashSet::new);
        let at = now - i64::try_from(self.query_offset.as_millis()).unwrap_or(i64::MAX);
        out.rule_durations = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let started = std::time::Instant::now();
            self.evaluate_rule(i, rule, state, engine, store, now, at, env, &mut out);
            out.rule_durations.push(started.elapsed());
        }
        out
    }

    /// Evaluates rule `i` into `out`.
    #[allow(clippy::too_many_arguments)]
    fn evaluate_rule(
        &self,
        i: usize,
        rule: &CompiledRule,
        state: &mut GroupState,
        engine: &Engine,
        store: &Store,
        now: i64,
        at: i64,
        env: &TemplateEnv,
        out: &mut GroupEvaluation,
    ) {
        {
            let (expr, alerts) = match rule {
                CompiledRule::Recording(r) => (&r.expr, None),
                CompiledRule::Alerting(a) => (&a.expr, Some(&mut state.alerts[i])),
            };
            let samples = match engine
                .instant(store, expr, at)
                .map_err(|e| e.to_string())
                .and_then(|r| as_vector(r.value).map_err(|e| e.to_string()))
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
                    let mut now_written = HashSet::with_capacity(series.len());
                    for s in series {
                        if let Err(e) = store.append(&s.labels, s.t, s.f) {
                            out.errors.push((i, e.to_string()));
                        }
                        now_written.insert(s.labels);
                    }
                    let before = std::mem::replace(&mut state.written[i], now_written);
                    for gone in before.difference(&state.written[i]) {
                        // A refused marker (out of order) leaves nothing a query would see.
                        let _ = store.append(gone, stale_at, stale_nan());
                    }
                }
                Err(error) => out.errors.push((i, error)),
            }
        }
    }
}
