//! Inhibition as Alertmanager's `inhibit` package does it: an alert that fires and matches a
//! rule's source matchers mutes the alerts that match its target matchers and carry the same
//! values of the `equal` labels; an alert matching both sides never inhibits one that does too
//! (so it cannot inhibit itself).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::matcher::Matchers;
use super::types::Alert;
use crate::alerts::Fingerprint;

/// One of `inhibit_rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// What an inhibiting (source) alert matches; `source_match` and `source_match_re`
    /// included.
    pub source_matchers: Matchers,
    /// What an inhibited (target) alert matches.
    pub target_matchers: Matchers,
    /// Labels whose values must be equal in source and target (absent reads as empty).
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The firing alerts among `alerts` that inhibit `labels` through this rule.
    fn inhibitors<'a>(
        &self,
        labels: &BTreeMap<String, String>,
        alerts: impl IntoIterator<Item = &'a Alert>,
        now: DateTime<Utc>,
    ) -> Vec<Fingerprint> {
        if !self.target_matchers.matches(labels) {
            return Vec::new();
        }
        let exclude_two_sided = self.source_matchers.matches(labels);
        let value = |l: &'a BTreeMap<String, String>, n: &str| -> &'a str {
            l.get(n).map_or("", String::as_str)
        };
        alerts
            .into_iter()
            .filter(|a| !a.resolved_at(now) && self.source_matchers.matches(&a.labels))
            .filter(|a| {
                self.equal
                    .iter()
                    .all(|n| value(&a.labels, n) == labels.get(n).map_or("", String::as_str))
            })
            .filter(|a| !(exclude_two_sided && self.target_matchers.matches(&a.labels)))
            .map(Alert::fingerprint)
            .collect()
    }
}

/// The inhibition rules, applied against a set of known alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inhibitor {
    /// The rules, in file order.
    pub rules: Vec<InhibitRule>,
}

impl Inhibitor {
    /// An inhibitor with these rules.
    pub fn new(rules: Vec<InhibitRule>) -> Inhibitor {
        Inhibitor { rules }
    }

    /// The fingerprints of the alerts that inhibit `labels` at `now` (none: not inhibited),
    /// looking at `alerts` (every alert the notifier holds).
    pub fn inhibited_by<'a>(
        &self,
        labels: &BTreeMap<String, String>,
        alerts: impl IntoIterator<Item = &'a Alert> + Clone,
        now: DateTime<Utc>,
    ) -> Vec<Fingerprint> {
        let mut out: Vec<Fingerprint> = self
            .rules
            .iter()
            .flat_map(|r| r.inhibitors(labels, alerts.clone(), now))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether `labels` is inhibited at `now` (Alertmanager's `Inhibitor.Mutes`).
    pub fn mutes<'a>(
        &self,
        labels: &BTreeMap<String, String>,
        alerts: impl IntoIterator<Item = &'a Alert> + Clone,
        now: DateTime<Utc>,
    ) -> bool {
        !self.inhibited_by(labels, alerts, now).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::matcher::{Matcher, parse_matchers};

    fn alert(pairs: &[(&str, &str)], ends_in_secs: i64) -> Alert {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: now,
            ends_at: now + chrono::Duration::seconds(ends_in_secs),
            updated_at: now,
            generator_url: String::new(),
            timeout: false,
        }
    }

    fn matchers(s: &str) -> Matchers {
        Matchers::sorted(parse_matchers(s).unwrap())
    }

    #[test]
    fn source_inhibits_target_with_equal_labels() {
        let rule = InhibitRule {
            source_matchers: matchers("severity=critical"),
            target_matchers: matchers("severity=warning"),
            equal: vec!["strategy".into()],
        };
        let inhibitor = Inhibitor::new(vec![rule]);
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let critical = alert(&[("severity", "critical"), ("strategy", "momentum")], 60);
        let warning = alert(&[("severity", "warning"), ("strategy", "momentum")], 60);
        let other = alert(&[("severity", "warning"), ("strategy", "carry")], 60);
        let all = [critical.clone(), warning.clone(), other.clone()];
        assert_eq!(
            inhibitor.inhibited_by(&warning.labels, &all, now),
            vec![critical.fingerprint()]
        );
        assert!(!inhibitor.mutes(&other.labels, &all, now));
        assert!(!inhibitor.mutes(&critical.labels, &all, now));
        // A resolved source inhibits nothing.
        let resolved = [alert(
            &[("severity", "critical"), ("strategy", "momentum")],
            0,
        )];
        assert!(!inhibitor.mutes(&warning.labels, &resolved, now));
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_inhibit_itself() {
        let rule = InhibitRule {
            source_matchers: Matchers::sorted(vec![Matcher::parse("alertname=~.+").unwrap()]),
            target_matchers: matchers("alertname=~.+"),
            equal: vec![],
        };
        let inhibitor = Inhibitor::new(vec![rule]);
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let a = alert(&[("alertname", "A")], 60);
        let b = alert(&[("alertname", "B")], 60);
        assert!(!inhibitor.mutes(&a.labels, [&a, &b], now));
    }
}
