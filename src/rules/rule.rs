//! Rules ready to evaluate: a validated [`RuleFile`](super::file::RuleFile) with each expression
//! parsed and each alert template parsed once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::promql::{Expr, keep_plans, reads_none_of, share_common};
use crate::template::prometheus::RuleTemplate;

use super::alerting::Fixed;
use super::file::{LoadedRules, Rule};

/// A group ready to evaluate.
#[derive(Debug, Clone)]
pub struct Group {
    /// The file the group came from (groups are identified by file and name).
    pub file: String,
    /// The group's name.
    pub name: String,
    /// The evaluation interval: the group's own, else the default given to [`compile`].
    pub interval: Duration,
    /// Most series a rule may produce; 0 means no limit.
    pub limit: u64,
    /// How far back the group's queries look.
    pub query_offset: Duration,
    /// The rules, in evaluation order.
    pub rules: Vec<CompiledRule>,
    /// Each rule's expression as the embedded engine evaluates it: the subexpressions that
    /// several rules compute alike are marked, to be computed once per group evaluation
    /// ([`share_common`]), and each aggregation keeps its grouping between evaluations
    /// ([`keep_plans`]).
    pub planned: Vec<Expr>,
    /// How many shared subexpressions `planned` marks.
    pub shared_slots: usize,
    /// No rule reads what the group writes (recording results, `ALERTS`): the rules' queries
    /// can run at once, before their results are applied in order.
    pub independent: bool,
}

/// A recording or alerting rule ready to evaluate.
#[derive(Debug, Clone)]
pub enum CompiledRule {
    /// Writes its expression's result as a new series.
    Recording(RecordingRule),
    /// Turns its expression's result into alerts.
    Alerting(AlertingRule),
}

impl CompiledRule {
    /// The record or alert name.
    pub fn name(&self) -> &str {
        match self {
            CompiledRule::Recording(r) => &r.record,
            CompiledRule::Alerting(a) => &a.alert,
        }
    }
}

/// A recording rule.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    /// The metric name written.
    pub record: String,
    /// The source text of the expression.
    pub source: String,
    /// The parsed expression.
    pub expr: Expr,
    /// Labels set on the output: the group's, then the rule's (which win).
    pub labels: Vec<(String, String)>,
}

/// An alerting rule.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The alert name (`alertname`).
    pub alert: String,
    /// The source text of the expression.
    pub source: String,
    /// The parsed expression.
    pub expr: Expr,
    /// How long an alert is pending before it fires.
    pub hold: Duration,
    /// How long an alert keeps firing after its condition cleared.
    pub keep_firing_for: Duration,
    /// Label templates: the group's labels, then the rule's (which win), by name.
    pub labels: Vec<(String, RuleTemplate)>,
    /// Annotation templates, by name.
    pub annotations: Vec<(String, RuleTemplate)>,
    /// What the templates give every alert alike, built once.
    pub(crate) fixed: Arc<Fixed>,
}

/// Turns a validated rule file into groups ready to evaluate; `default_interval` applies to
/// groups without their own `interval`. Validation has already parsed every expression, so this
/// cannot fail on a [`LoadedRules`].
pub fn compile(loaded: &LoadedRules, origin: &str, default_interval: Duration) -> Vec<Group> {
    loaded
        .file
        .groups
        .iter()
        .map(|group| {
            let rules: Vec<CompiledRule> = group
                .rules
                .iter()
                .filter_map(|rule| compile_rule(rule, &group.labels))
                .collect();
            let (planned, shared_slots, independent) = plan(&rules);
            Group {
                file: origin.to_owned(),
                name: group.name.clone(),
                interval: group.interval.map_or(default_interval, |d| d.as_duration()),
                limit: group.limit,
                query_offset: group
                    .query_offset
                    .map_or(Duration::ZERO, |d| d.as_duration()),
                rules,
                planned,
                shared_slots,
                independent,
            }
        })
        .collect()
}

/// The rules' expressions with their common subexpressions marked, how many there are, and
/// whether no rule reads what the group writes. What the group writes (recording results,
/// `ALERTS`, `ALERTS_FOR_STATE`) changes between one rule and the next, so nothing that reads
/// it is shared.
fn plan(rules: &[CompiledRule]) -> (Vec<Expr>, usize, bool) {
    let mut written: HashSet<String> = ["ALERTS", "ALERTS_FOR_STATE"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut planned = Vec::with_capacity(rules.len());
    for rule in rules {
        match rule {
            CompiledRule::Recording(r) => {
                written.insert(r.record.clone());
                planned.push(r.expr.clone());
            }
            CompiledRule::Alerting(a) => planned.push(a.expr.clone()),
        }
    }
    let independent = planned.iter().all(|e| reads_none_of(e, &written));
    let slots = share_common(&mut planned, &written);
    for e in &mut planned {
        keep_plans(e);
    }
    (planned, slots, independent)
}

fn compile_rule(
    rule: &Rule,
    group_labels: &std::collections::BTreeMap<String, String>,
) -> Option<CompiledRule> {
    let source = rule.expr.clone()?;
    let expr = crate::promql::parse(&source).ok()?;
    let mut labels = group_labels.clone();
    labels.extend(rule.labels.clone());
    if rule.is_alert() {
        let alert = rule.name().to_owned();
        let templates = |map: &std::collections::BTreeMap<String, String>| -> Vec<_> {
            map.iter()
                .map(|(k, v)| (k.clone(), RuleTemplate::new(&alert, v)))
                .collect()
        };
        let labels = templates(&labels);
        let annotations = templates(&rule.annotations);
        Some(CompiledRule::Alerting(AlertingRule {
            fixed: Arc::new(Fixed::new(&alert, &labels, &annotations)),
            labels,
            annotations,
            hold: rule
                .for_duration
                .map_or(Duration::ZERO, |d| d.as_duration()),
            keep_firing_for: rule
                .keep_firing_for
                .map_or(Duration::ZERO, |d| d.as_duration()),
            alert,
            source,
            expr,
        }))
    } else {
        Some(CompiledRule::Recording(RecordingRule {
            record: rule.record.clone()?,
            source,
            expr,
            labels: labels.into_iter().collect(),
        }))
    }
}
