//! One evaluation of an alerting rule, as Prometheus's `AlertingRule.Eval` does it after the
//! query: each result sample becomes an alert identified by its labels after templating, and
//! every alert of the rule goes through the state machine of [`crate::alerts::state`].

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::alerts::{Alert, AlertState, Fingerprint, Observation, Transition, evaluate};
use crate::model::labels::{Label, Labels, METRIC_NAME};
use crate::promql::InstantSample;
use crate::template::Value;
use crate::template::prometheus::{AlertData, Expansion, RuleTemplate};

use super::rule::AlertingRule;

/// The label naming an alert's rule.
pub const ALERT_NAME: &str = "alertname";

/// An alert of a rule between evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// The alert's identity: the sample's labels without `__name__`, the rule's labels after
    /// templating (empty ones dropped), and `alertname`.
    pub labels: Labels,
    /// The annotations, expanded at the last evaluation that had the alert active.
    pub annotations: BTreeMap<String, String>,
    /// Its state and times.
    pub alert: Alert,
    /// The label sets of its `ALERTS` and `ALERTS_FOR_STATE` series, built when first written.
    pub(crate) series: SeriesLabels,
}

impl ActiveAlert {
    /// An alert with these labels, annotations and state.
    pub fn new(labels: Labels, annotations: BTreeMap<String, String>, alert: Alert) -> Self {
        ActiveAlert {
            labels,
            annotations,
            alert,
            series: SeriesLabels::default(),
        }
    }
}

/// The label sets an alert's series are written with, kept from one evaluation to the next so
/// that the store finds each series by the same label set. Only a cache: alerts compare equal
/// whatever it holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesLabels {
    pending: OnceLock<Labels>,
    firing: OnceLock<Labels>,
    for_state: OnceLock<Labels>,
}

impl PartialEq for SeriesLabels {
    fn eq(&self, _: &SeriesLabels) -> bool {
        true
    }
}

/// The alerts of one alerting rule, by fingerprint.
pub type RuleAlerts = BTreeMap<Fingerprint, ActiveAlert>;

/// Why an evaluation of an alerting rule failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertingError {
    /// Two samples gave the same labels.
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabels,
    /// More alerts than the group's `limit`; every alert of the rule was dropped.
    #[error("exceeded limit of {limit} with {count} alerts")]
    LimitExceeded {
        /// The group's limit.
        limit: u64,
        /// The number of pending and firing alerts.
        count: usize,
    },
}

/// What the templates see besides each alert: external labels and URL, and the query engine.
#[derive(Clone, Default)]
pub struct TemplateEnv {
    /// `sidecar.external_labels`.
    pub external_labels: BTreeMap<String, String>,
    /// The external URL (`$externalURL`).
    pub external_url: String,
    /// The engine for `query` and the evaluation time.
    pub expansion: Expansion,
}

impl AlertingRule {
    /// Applies one evaluation's result `samples` at `now` (Unix milliseconds) to the rule's
    /// `alerts`, and gives the transitions, by fingerprint. With `limit` above zero, more
    /// pending and firing alerts than `limit` drop all of the rule's alerts and fail.
    pub fn apply(
        &self,
        alerts: &mut RuleAlerts,
        samples: &[InstantSample],
        now: i64,
        limit: u64,
        env: &TemplateEnv,
    ) -> Result<Vec<(Fingerprint, Transition)>, AlertingError> {
        let mut results: BTreeMap<Fingerprint, (Labels, BTreeMap<String, String>, f64)> =
            BTreeMap::new();
        let external_labels = AlertData::label_map(
            env.external_labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v))),
        );
        let external_url = Value::str(&env.external_url);
        // Templates without actions (`severity: page`) are the same for every alert: their
        // labels are built once, and the template data only when some template needs it.
        let alertname = shared_label(ALERT_NAME, &self.alert);
        let static_labels: Vec<Option<Label>> = self
            .labels
            .iter()
            .map(|(name, t)| t.static_text().map(|text| shared_label(name, text)))
            .collect();
        let needs_data = self
            .labels
            .iter()
            .chain(&self.annotations)
            .any(|(_, t)| t.static_text().is_none());
        for sample in samples {
            let data = needs_data.then(|| {
                // Label values are shared with the sample, not copied.
                let labels = AlertData::label_map(
                    sample
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), Value::Str(l.value.clone()))),
                );
                AlertData::from_values(
                    labels,
                    external_labels.clone(),
                    external_url.clone(),
                    sample.f,
                )
            });
            let expand = |t: &RuleTemplate| match (t.static_text(), &data) {
                (Some(text), _) => text.to_owned(),
                (None, Some(data)) => t.expand_or_error(data, &env.expansion),
                (None, None) => unreachable!("data is built when a template needs it"),
            };
            let mut builder = sample.labels.builder();
            builder.del(METRIC_NAME);
            for ((name, template), fixed) in self.labels.iter().zip(&static_labels) {
                if let Some(label) = fixed {
                    builder.set_label(label.clone());
                    continue;
                }
                let value = expand(template);
                if value.is_empty() {
                    builder.del(name);
                } else {
                    builder.set(name, &value);
                }
            }
            builder.set_label(alertname.clone());
            let labels = builder.build();
            let annotations = self
                .annotations
                .iter()
                .map(|(name, template)| (name.clone(), expand(template)))
                .collect();
            let fingerprint = Fingerprint::of(&labels);
            if results
                .insert(fingerprint, (labels, annotations, sample.f))
                .is_some()
            {
                return Err(AlertingError::DuplicateLabels);
            }
        }
        let mut transitions = Vec::new();
        let mut keys: Vec<Fingerprint> = alerts.keys().chain(results.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        for fingerprint in keys {
            let previous = alerts.remove(&fingerprint);
            let result = results.remove(&fingerprint);
            let observation = match &result {
                Some((_, _, value)) => Observation::Active { value: *value },
                None => Observation::Inactive,
            };
            let step = evaluate(
                previous.as_ref().map(|p| &p.alert),
                observation,
                now,
                self.hold,
                self.keep_firing_for,
            );
            if let Some(transition) = step.transition {
                transitions.push((fingerprint, transition));
            }
            let Some(alert) = step.alert else { continue };
            let active = match (result, previous) {
                // The same labels as before: the label sets built for its series still serve.
                (Some((labels, annotations, _)), Some(p)) if labels == p.labels => ActiveAlert {
                    labels: p.labels,
                    annotations,
                    alert,
                    series: p.series,
                },
                (Some((labels, annotations, _)), _) => ActiveAlert::new(labels, annotations, alert),
                (None, Some(p)) => ActiveAlert { alert, ..p },
                (None, None) => continue,
            };
            alerts.insert(fingerprint, active);
        }
        transitions.sort_by_key(|(fingerprint, _)| *fingerprint);
        let count = alerts
            .values()
            .filter(|a| matches!(a.alert.state, AlertState::Pending | AlertState::Firing))
            .count();
        if limit > 0 && count as u64 > limit {
            alerts.clear();
            return Err(AlertingError::LimitExceeded { limit, count });
        }
        Ok(transitions)
    }
}

/// The labels that `ALERTS` and `ALERTS_FOR_STATE` add, built once.
struct AlertSeriesLabels {
    alerts: Label,
    for_state: Label,
    pending: Label,
    firing: Label,
}

/// A label whose strings later label sets share rather than copy.
fn shared_label(name: &str, value: &str) -> Label {
    Label {
        name: Arc::from(name),
        value: Arc::from(value),
    }
}

/// The `ALERTS` and `ALERTS_FOR_STATE` samples of a rule's pending and firing alerts at `now`,
/// as Prometheus writes them: `ALERTS{<labels>, alertstate="pending"|"firing"} 1` and
/// `ALERTS_FOR_STATE{<labels>}` = `active_at` in whole Unix seconds. Resolved alerts have none.
pub fn alert_series(alerts: &RuleAlerts, now: i64) -> Vec<InstantSample> {
    static FIXED: OnceLock<AlertSeriesLabels> = OnceLock::new();
    let fixed = FIXED.get_or_init(|| AlertSeriesLabels {
        alerts: shared_label(METRIC_NAME, "ALERTS"),
        for_state: shared_label(METRIC_NAME, "ALERTS_FOR_STATE"),
        pending: shared_label("alertstate", AlertState::Pending.as_str()),
        firing: shared_label("alertstate", AlertState::Firing.as_str()),
    });
    let mut out = Vec::with_capacity(alerts.len() * 2);
    let with = |labels: &Labels, extra: &[&Label]| {
        let mut builder = labels.builder();
        for label in extra {
            builder.set_label((*label).clone());
        }
        builder.build()
    };
    for active in alerts.values() {
        let (cached, state) = match active.alert.state {
            AlertState::Pending => (&active.series.pending, &fixed.pending),
            AlertState::Firing => (&active.series.firing, &fixed.firing),
            _ => continue,
        };
        out.push(InstantSample {
            labels: cached
                .get_or_init(|| with(&active.labels, &[&fixed.alerts, state]))
                .clone(),
            t: now,
            f: 1.0,
        });
        out.push(InstantSample {
            labels: active
                .series
                .for_state
                .get_or_init(|| with(&active.labels, &[&fixed.for_state]))
                .clone(),
            t: now,
            f: active.alert.active_at.div_euclid(1000) as f64,
        });
    }
    out
}
