//! One evaluation of an alerting rule, as Prometheus's `AlertingRule.Eval` does it after the
//! query: each result sample becomes an alert identified by its labels after templating, and
//! every alert of the rule goes through the state machine of [`crate::alerts::state`].

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use crate::alerts::{Alert, AlertState, Fingerprint, Observation, Transition, evaluate};
use crate::model::labels::{FxBuildHasher, Label, Labels, METRIC_NAME};
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
    /// The sample its labels were last made from.
    source: Source,
}

impl ActiveAlert {
    /// An alert with these labels, annotations and state.
    pub fn new(labels: Labels, annotations: BTreeMap<String, String>, alert: Alert) -> Self {
        ActiveAlert {
            labels,
            annotations,
            alert,
            series: SeriesLabels::default(),
            source: Source::default(),
        }
    }

    /// Takes what this evaluation `made` of the alert: labels (the series' label sets are kept
    /// while they are the same), annotations unless they were kept, and the sample they came
    /// from.
    fn take(&mut self, made: Made, fixed: &Arc<Fixed>) {
        if made.labels != self.labels {
            self.labels = made.labels;
            self.series = SeriesLabels::default();
        }
        if let Some(annotations) = made.annotations {
            self.annotations = annotations;
        }
        self.source = Source(Some((fixed.clone(), made.source)));
    }
}

/// The sample an alert's labels were last made from, with the compilation of the rule that made
/// them. While both are the same (and the rule's labels come from templates without actions),
/// the alert's labels are the same; so are its annotations when theirs have no actions either.
/// Only a cache: alerts compare equal whatever it holds.
#[derive(Debug, Clone, Default)]
struct Source(Option<(Arc<Fixed>, Labels)>);

impl Source {
    /// The sample labels, when `fixed`'s compilation made the alert from them.
    fn labels_for(&self, fixed: &Arc<Fixed>) -> Option<&Labels> {
        match &self.0 {
            Some((made_by, labels)) if Arc::ptr_eq(made_by, fixed) => Some(labels),
            _ => None,
        }
    }
}

impl PartialEq for Source {
    fn eq(&self, _: &Source) -> bool {
        true
    }
}

/// What an alerting rule's templates give every alert alike, built once when the rule is
/// compiled. Its allocation also tells one compilation of a rule from another (a reload can
/// change the templates).
#[derive(Debug)]
pub struct Fixed {
    /// `alertname`.
    alertname: Label,
    /// Each label template without actions (`severity: page`) as a label, by position.
    labels: Vec<Option<Label>>,
    /// Every label template is without actions.
    static_labels: bool,
    /// Every annotation template is without actions.
    static_annotations: bool,
}

impl Fixed {
    /// What `alert`'s `labels` and `annotations` templates give every alert alike.
    pub(crate) fn new(
        alert: &str,
        labels: &[(String, RuleTemplate)],
        annotations: &[(String, RuleTemplate)],
    ) -> Fixed {
        Fixed {
            alertname: shared_label(ALERT_NAME, alert),
            labels: labels
                .iter()
                .map(|(name, t)| t.static_text().map(|text| shared_label(name, text)))
                .collect(),
            static_labels: labels.iter().all(|(_, t)| t.static_text().is_some()),
            static_annotations: annotations.iter().all(|(_, t)| t.static_text().is_some()),
        }
    }
}

/// An alert as one evaluation made it from a sample.
struct Made {
    fingerprint: Fingerprint,
    labels: Labels,
    /// `None` when the alert's annotations were kept (templates without actions).
    annotations: Option<BTreeMap<String, String>>,
    value: f64,
    /// The sample's labels.
    source: Labels,
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
        let fixed = &self.fixed;
        // With labels from templates without actions, a sample that made an alert last time
        // makes the same alert again: its labels and fingerprint are not worked out again.
        let by_source: HashMap<&Labels, Fingerprint, FxBuildHasher> = if fixed.static_labels {
            alerts
                .iter()
                .filter_map(|(f, a)| a.source.labels_for(fixed).map(|l| (l, *f)))
                .collect()
        } else {
            HashMap::default()
        };
        let external_labels = AlertData::label_map(
            env.external_labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v))),
        );
        let external_url = Value::str(&env.external_url);
        let mut made = Vec::with_capacity(samples.len());
        for sample in samples {
            // The template data, built only when a template with actions needs it.
            let data = OnceCell::new();
            let expand = |t: &RuleTemplate| match t.static_text() {
                Some(text) => text.to_owned(),
                None => {
                    let data = data.get_or_init(|| {
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
                    t.expand_or_error(data, &env.expansion)
                }
            };
            let known = by_source
                .get(&sample.labels)
                .and_then(|f| alerts.get(f).map(|a| (*f, a)));
            let (fingerprint, labels) = match known {
                Some((fingerprint, alert)) => (fingerprint, alert.labels.clone()),
                None => {
                    let mut builder = sample.labels.builder();
                    builder.del(METRIC_NAME);
                    for ((name, template), label) in self.labels.iter().zip(&fixed.labels) {
                        if let Some(label) = label {
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
                    builder.set_label(fixed.alertname.clone());
                    let labels = builder.build();
                    (Fingerprint::of(&labels), labels)
                }
            };
            let annotations = (known.is_none() || !fixed.static_annotations).then(|| {
                self.annotations
                    .iter()
                    .map(|(name, template)| (name.clone(), expand(template)))
                    .collect()
            });
            made.push(Made {
                fingerprint,
                labels,
                annotations,
                value: sample.f,
                source: sample.labels.clone(),
            });
        }
        drop(by_source);
        made.sort_unstable_by_key(|m| m.fingerprint);
        if made
            .windows(2)
            .any(|w| w[0].fingerprint == w[1].fingerprint)
        {
            return Err(AlertingError::DuplicateLabels);
        }
        // The rule's alerts and this evaluation's, both in fingerprint order, walked together:
        // an alert stays where it is in the map unless it ends or begins.
        let mut transitions = Vec::new();
        let mut made = made.into_iter().peekable();
        let mut fresh = Vec::new();
        alerts.retain(|&fingerprint, active| {
            while let Some(m) = made.next_if(|m| m.fingerprint < fingerprint) {
                fresh.push(m);
            }
            let current = made.next_if(|m| m.fingerprint == fingerprint);
            let observation = match &current {
                Some(m) => Observation::Active { value: m.value },
                None => Observation::Inactive,
            };
            let step = evaluate(
                Some(&active.alert),
                observation,
                now,
                self.hold,
                self.keep_firing_for,
            );
            if let Some(transition) = step.transition {
                transitions.push((fingerprint, transition));
            }
            let Some(alert) = step.alert else {
                return false;
            };
            active.alert = alert;
            if let Some(m) = current {
                active.take(m, fixed);
            }
            true
        });
        fresh.extend(made);
        for m in fresh {
            let observation = Observation::Active { value: m.value };
            let step = evaluate(None, observation, now, self.hold, self.keep_firing_for);
            if let Some(transition) = step.transition {
                transitions.push((m.fingerprint, transition));
            }
            let Some(alert) = step.alert else { continue };
            let fingerprint = m.fingerprint;
            // A new alert's annotations were expanded: only an alert the rule has keeps its own.
            let mut active = ActiveAlert::new(m.labels.clone(), BTreeMap::new(), alert);
            active.take(m, fixed);
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

/// A label whose strings later label sets share rather than copy. The strings are the same
/// allocations for every rule (and every reload) that names them, so the store, which keeps the
/// first copy it saw, finds an alert's series by comparing pointers, not bytes.
fn shared_label(name: &str, value: &str) -> Label {
    static STRINGS: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut strings = STRINGS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut intern = |s: &str| match strings.get(s) {
        Some(kept) => kept.clone(),
        None => {
            let kept: Arc<str> = Arc::from(s);
            strings.insert(kept.clone());
            kept
        }
    };
    Label {
        name: intern(name),
        value: intern(value),
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
