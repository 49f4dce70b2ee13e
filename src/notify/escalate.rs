//! Escalation (DESIGN §3, `notifier.escalations`): when a firing alert matching an
//! escalation's matchers stays unacknowledged for `after` since it started firing, one
//! notification goes to the escalation's receiver, once per firing episode. An ack before
//! then prevents it; so does a silence or an inhibition in force when it falls due (the
//! episode is then settled without a notification).
//!
//! Pure: time is a parameter; the dispatcher asks [`Escalator::due`] and turns each
//! escalation into a flush with its own group key (`escalation:{labels}`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ack::{Acks, parse_fingerprint};
use super::config::AlertmanagerConfig;
use super::matcher::{Matcher, Matchers};
use super::types::Alert;
use crate::alerts::Fingerprint;
use crate::config::notifier::Escalation;

/// Why `notifier.escalations` cannot be used with the routing file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscalateError {
    /// A matcher does not parse.
    #[error("notifier.escalations[{index}].matchers[{matcher}]: {message}")]
    Matcher {
        /// The escalation's position.
        index: usize,
        /// The matcher's position.
        matcher: usize,
        /// What is wrong.
        message: String,
    },
    /// The receiver is not in the routing file.
    #[error(
        "notifier.escalations[{index}].receiver: no receiver named {receiver:?} in the routing file"
    )]
    UnknownReceiver {
        /// The escalation's position.
        index: usize,
        /// The name given.
        receiver: String,
    },
}

/// One escalation, checked against the routing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRule {
    /// Which alerts it is for.
    pub matchers: Matchers,
    /// How long such an alert must fire unacknowledged.
    pub after: Duration,
    /// Who is notified then.
    pub receiver: String,
}

/// The escalations of the `notifier` section, each receiver checked against `am`.
pub fn rules(
    escalations: &[Escalation],
    am: &AlertmanagerConfig,
) -> Result<Vec<EscalationRule>, EscalateError> {
    let mut out = Vec::new();
    for (index, e) in escalations.iter().enumerate() {
        let mut matchers = Vec::new();
        for (j, text) in e.matchers.iter().enumerate() {
            matchers.push(Matcher::parse(text).map_err(|err| EscalateError::Matcher {
                index,
                matcher: j,
                message: err.to_string(),
            })?);
        }
        if am.receiver(&e.receiver).is_none() {
            return Err(EscalateError::UnknownReceiver {
                index,
                receiver: e.receiver.clone(),
            });
        }
        out.push(EscalationRule {
            matchers: Matchers::sorted(matchers),
            after: Duration::from_std(e.after.as_duration()).unwrap_or(Duration::MAX),
            receiver: e.receiver.clone(),
        });
    }
    Ok(out)
}

/// An escalation already settled (sent, or muted when due) for one firing episode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Escalated {
    /// The escalation's receiver.
    pub receiver: String,
    /// The escalation's position in `notifier.escalations`.
    pub index: usize,
    /// The alert's fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// The start of the episode.
    pub starts_at: DateTime<Utc>,
}

/// The escalations and what they have settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Escalator {
    rules: Vec<EscalationRule>,
    settled: BTreeSet<Escalated>,
}

impl Escalator {
    /// The rules in force (a reload replaces them; what was settled stays).
    pub fn set_rules(&mut self, rules: Vec<EscalationRule>) {
        self.rules = rules;
    }

    /// The rules in force.
    pub fn rules(&self) -> &[EscalationRule] {
        &self.rules
    }

    /// What has been settled, for persistence.
    pub fn settled(&self) -> impl Iterator<Item = &Escalated> {
        self.settled.iter()
    }

    /// Restores what was settled.
    pub fn restore(&mut self, settled: impl IntoIterator<Item = Escalated>) {
        self.settled.extend(settled);
    }

    fn key(&self, index: usize, alert: &Alert) -> Escalated {
        Escalated {
            receiver: self.rules[index].receiver.clone(),
            index,
            fingerprint: alert.fingerprint().to_string(),
            starts_at: alert.starts_at,
        }
    }

    /// The escalations still to come for unacknowledged alerts, with their times.
    fn pending<'a>(
        &'a self,
        alerts: &'a BTreeMap<Fingerprint, Alert>,
        acks: &'a Acks,
    ) -> impl Iterator<Item = (DateTime<Utc>, usize, &'a Alert)> + 'a {
        alerts
            .values()
            .filter(|a| !acks.covers(a))
            .flat_map(move |a| {
                self.rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.matchers.matches(&a.labels))
                    .map(move |(i, r)| (a.starts_at + r.after, i, a))
            })
            .filter(|(_, i, a)| !self.settled.contains(&self.key(*i, a)))
    }

    /// When the next escalation falls due, if any.
    pub fn next_deadline(
        &self,
        alerts: &BTreeMap<Fingerprint, Alert>,
        acks: &Acks,
    ) -> Option<DateTime<Utc>> {
        self.pending(alerts, acks).map(|(at, _, _)| at).min()
    }

    /// The escalations due at `now`, as (receiver, alert): each alert firing, unacknowledged
    /// and not `muted` whose `after` has passed, once per episode.
    pub fn due(
        &mut self,
        alerts: &BTreeMap<Fingerprint, Alert>,
        acks: &Acks,
        muted: impl Fn(&Alert) -> bool,
        now: DateTime<Utc>,
    ) -> Vec<(String, Alert)> {
        let due: Vec<(usize, Alert)> = self
            .pending(alerts, acks)
            .filter(|(at, _, a)| *at <= now && !a.resolved_at(now))
            .map(|(_, i, a)| (i, a.clone()))
            .collect();
        let mut out = Vec::new();
        for (i, alert) in due {
            self.settled.insert(self.key(i, &alert));
            if !muted(&alert) {
                out.push((self.rules[i].receiver.clone(), alert));
            }
        }
        out
    }

    /// Forgets what was settled for episodes that are over (the alert gone, or firing again
    /// with a later start).
    pub fn retain_current(&mut self, alerts: &BTreeMap<Fingerprint, Alert>) {
        self.settled.retain(|e| {
            parse_fingerprint(&e.fingerprint)
                .ok()
                .and_then(|fp| alerts.get(&fp))
                .is_some_and(|a| a.starts_at == e.starts_at)
        });
    }
}
