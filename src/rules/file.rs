//! A rule file: Prometheus 3.x `groups` of recording and alerting rules, loaded strictly through
//! [`crate::config::yaml`] and validated as Prometheus's `rulefmt` does, every error located.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::config::yaml::{self, Diagnostic, PathSeg, Spans};
use crate::model::duration::PromDuration;
use crate::model::labels::METRIC_NAME;
use crate::model::names::{is_valid_label_name, is_valid_metric_name};
use crate::template::prometheus::RuleTemplate;

/// A rule file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rule groups, in file order.
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated together, in order, at one interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    /// The group's name, unique within its file.
    pub name: String,
    /// How often the group is evaluated (the global evaluation interval when absent).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// Most series an alerting rule may produce, or a recording rule may write; 0 means no limit.
    #[serde(default)]
    pub limit: u64,
    /// How far in the past the group's queries look (Prometheus 2.53 and later).
    #[serde(default)]
    pub query_offset: Option<PromDuration>,
    /// Labels added to every rule's output (Prometheus 3.0 and later).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The rules, in evaluation order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A recording rule (`record`) or an alerting rule (`alert`), as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The metric name a recording rule writes.
    #[serde(default)]
    pub record: Option<String>,
    /// The name of an alerting rule's alerts.
    #[serde(default)]
    pub alert: Option<String>,
    /// The PromQL expression.
    #[serde(default)]
    pub expr: Option<String>,
    /// How long an alert stays pending before it fires.
    #[serde(default, rename = "for")]
    pub for_duration: Option<PromDuration>,
    /// How long an alert keeps firing after its condition cleared.
    #[serde(default)]
    pub keep_firing_for: Option<PromDuration>,
    /// Labels added to the output (templates, for alerting rules).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations of an alerting rule (templates).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The rule's name as promtool shows it: the alert name, else the record name.
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(self.record.as_deref())
            .unwrap_or("")
    }

    /// Whether this is an alerting rule.
    pub fn is_alert(&self) -> bool {
        self.alert.as_deref().is_some_and(|a| !a.is_empty())
    }
}

impl RuleFile {
    /// The number of rules in all groups.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }

    /// Reads and validates the rule file at `path`.
    pub fn load(path: &Path) -> Result<LoadedRules, RuleFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RuleFileError {
            diagnostics: vec![Diagnostic {
                origin: origin.clone(),
                location: None,
                message: format!("failed to read rule file: {e}"),
            }],
        })?;
        RuleFile::parse(&text, &origin)
    }

    /// Parses and validates `text` (from `origin`, a file name for messages). A syntax or type
    /// error stops at once; past it, every validation error is reported.
    pub fn parse(text: &str, origin: &str) -> Result<LoadedRules, RuleFileError> {
        let document = yaml::parse::<RuleFile>(text, origin).map_err(|e| RuleFileError {
            diagnostics: vec![e.0],
        })?;
        let diagnostics = validate(&document.value, &document.spans, origin);
        if diagnostics.is_empty() {
            Ok(LoadedRules {
                file: document.value,
                spans: document.spans,
            })
        } else {
            Err(RuleFileError { diagnostics })
        }
    }
}

/// A rule file that parsed and validated, with the positions of its parts.
#[derive(Debug, Clone)]
pub struct LoadedRules {
    /// The rules.
    pub file: RuleFile,
    /// Where each part was written.
    pub spans: Spans,
}

/// Why a rule file was rejected: every problem found, each `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleFileError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks a parsed rule file as Prometheus's `rulefmt` does (group names, then each rule).
fn validate(file: &RuleFile, spans: &Spans, origin: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let at = |p: Vec<PathSeg>, key: bool, message: String| Diagnostic {
        origin: origin.to_owned(),
        location: if key {
            spans.locate_key(&p)
        } else {
            spans.locate(&p)
        },
        message,
    };
    for (g, group) in file.groups.iter().enumerate() {
        let group_path: Vec<PathSeg> = vec!["groups".into(), g.into()];
        if group.name.is_empty() {
            out.push(at(
                group_path.clone(),
                false,
                "Groupname must not be empty".into(),
            ));
        } else if !seen.insert(group.name.as_str()) {
            out.push(at(
                group_path.clone(),
                false,
                format!("groupname: {:?} is repeated in the same file", group.name),
            ));
        }
        for name in group.labels.keys() {
            if !is_valid_label_name(name) || name == METRIC_NAME {
                let mut p = group_path.clone();
                p.extend(["labels".into(), name.into()]);
                out.push(at(
                    p,
                    true,
                    format!("group {:?}: invalid label name: {name}", group.name),
                ));
            }
        }
        for (r, rule) in group.rules.iter().enumerate() {
            let mut rule_path = group_path.clone();
            rule_path.extend(["rules".into(), r.into()]);
            for (field, message) in validate_rule(rule) {
                let mut p = rule_path.clone();
                let key = field.key;
                p.extend(field.path.into_iter().map(PathSeg::from));
                let message = format!(
                    "group {:?}, rule {}, {:?}: {message}",
                    group.name,
                    r + 1,
                    rule.name()
                );
                out.push(at(p, key, message));
            }
        }
    }
    out
}

/// Where in a rule an error points: a path below the rule, at the key or at the value.
struct Field {
    path: Vec<String>,
    key: bool,
}

impl Field {
    fn value(path: &[&str]) -> Field {
        Field {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            key: false,
        }
    }

    fn key(path: &[&str]) -> Field {
        Field {
            key: true,
            ..Field::value(path)
        }
    }
}

/// The errors of one rule, in `rulefmt`'s order, with promtool's wording.
fn validate_rule(rule: &Rule) -> Vec<(Field, String)> {
    let mut out = Vec::new();
    let record = rule.record.as_deref().unwrap_or("");
    let alert = rule.alert.as_deref().unwrap_or("");
    if !record.is_empty() && !alert.is_empty() {
        out.push((
            Field::value(&["record"]),
            "only one of 'record' and 'alert' must be set".to_owned(),
        ));
    }
    if record.is_empty() && alert.is_empty() {
        out.push((
            Field::value(&[]),
            "one of 'record' or 'alert' must be set".to_owned(),
        ));
    }
    match rule.expr.as_deref() {
        None | Some("") => out.push((
            Field::value(&[]),
            "field 'expr' must be set in rule".to_owned(),
        )),
        Some(expr) => {
            if let Err(e) = crate::promql::parse(expr) {
                out.push((
                    Field::value(&["expr"]),
                    format!("could not parse expression: {}", e.prometheus_text()),
                ));
            }
        }
    }
    if !record.is_empty() {
        if !rule.annotations.is_empty() {
            out.push((
                Field::value(&["record"]),
                "invalid field 'annotations' in recording rule".to_owned(),
            ));
        }
        if rule.for_duration.is_some_and(|d| !d.is_zero()) {
            out.push((
                Field::value(&["record"]),
                "invalid field 'for' in recording rule".to_owned(),
            ));
        }
        if rule.keep_firing_for.is_some_and(|d| !d.is_zero()) {
            out.push((
                Field::value(&["record"]),
                "invalid field 'keep_firing_for' in recording rule".to_owned(),
            ));
        }
        if !is_valid_metric_name(record) {
            out.push((
                Field::value(&["record"]),
                format!("invalid recording rule name: {record}"),
            ));
        }
    }
    for name in rule.labels.keys() {
        if !is_valid_label_name(name) || name == METRIC_NAME {
            out.push((
                Field::key(&["labels", name]),
                format!("invalid label name: {name}"),
            ));
        }
    }
    for name in rule.annotations.keys() {
        if !is_valid_label_name(name) {
            out.push((
                Field::key(&["annotations", name]),
                format!("invalid annotation name: {name}"),
            ));
        }
    }
    if !alert.is_empty() {
        for (kind, field, map) in [
            ("label", "labels", &rule.labels),
            ("annotation", "annotations", &rule.annotations),
        ] {
            for (name, text) in map {
                if let Some(error) = RuleTemplate::new(alert, text).parse_error() {
                    out.push((
                        Field::value(&[field, name]),
                        format!("{kind} {name:?}: {error}"),
                    ));
                }
            }
        }
    }
    out
}
