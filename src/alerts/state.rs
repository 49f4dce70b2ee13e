//! The alert state machine: a pure function of (previous state, this evaluation's result, now,
//! `for`, `keep_firing_for`), as Prometheus's `rules/alerting.go` evaluates one alert. Times are
//! Unix milliseconds; nothing here reads a clock.

use std::time::Duration;

/// How long a resolved alert is kept (and re-sent) after it resolved, as Prometheus does.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertState {
    /// Not active: no alert is kept (the state before the first and after the last step).
    Inactive,
    /// Active, waiting for `for` to pass.
    Pending,
    /// Active for at least `for` (or kept firing by `keep_firing_for`).
    Firing,
    /// Was firing and is no longer; kept for [`RESOLVED_RETENTION`].
    Resolved,
}

impl AlertState {
    /// The name Prometheus's API and the alert log use.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert (one label set of one alerting rule) between evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// The value of the last evaluation that had this alert active.
    pub value: f64,
    /// When the alert became active (pending).
    pub active_at: i64,
    /// When it started firing.
    pub fired_at: Option<i64>,
    /// When it resolved.
    pub resolved_at: Option<i64>,
    /// Since when it has been kept firing by `keep_firing_for` while its condition is clear.
    pub keep_firing_since: Option<i64>,
}

/// This evaluation's result for one alert's label set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// The rule's expression returned a sample with these labels.
    Active {
        /// The sample's value (`$value`).
        value: f64,
    },
    /// It returned none.
    Inactive,
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: AlertState,
    /// The state after.
    pub to: AlertState,
}

/// What one evaluation does to one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The alert to keep, or `None` when it is dropped (inactive).
    pub alert: Option<Alert>,
    /// The state change, if any.
    pub transition: Option<Transition>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Advances one alert by one evaluation at `now`, as Prometheus does:
///
/// - active and not kept (or only resolved): a new pending alert, active since `now`;
/// - active and pending or firing: the value is refreshed, `keep_firing_since` cleared;
/// - pending for at least `hold` (`for`): firing (at once when `hold` is zero);
/// - not active: a pending alert is dropped; a firing one is kept firing while
///   `keep_firing_for` has not passed since its condition cleared, then resolved; a resolved one
///   is dropped once [`RESOLVED_RETENTION`] has passed since it resolved.
pub fn evaluate(
    previous: Option<&Alert>,
    observation: Observation,
    now: i64,
    hold: Duration,
    keep_firing_for: Duration,
) -> Step {
    let from = previous.map_or(AlertState::Inactive, |a| a.state);
    let mut alert = match (previous, observation) {
        (Some(p), Observation::Active { value }) if p.state != AlertState::Resolved => Alert {
            value,
            keep_firing_since: None,
            ..p.clone()
        },
        (_, Observation::Active { value }) => Alert {
            state: AlertState::Pending,
            value,
            active_at: now,
            fired_at: None,
            resolved_at: None,
            keep_firing_since: None,
        },
        (None, Observation::Inactive) => {
            return Step {
                alert: None,
                transition: None,
            };
        }
        (Some(p), Observation::Inactive) => return clear(p, now, keep_firing_for),
    };
    if alert.state == AlertState::Pending && now - alert.active_at >= millis(hold) {
        alert.state = AlertState::Firing;
        alert.fired_at = Some(now);
    }
    let to = alert.state;
    Step {
        alert: Some(alert),
        transition: (to != from).then_some(Transition { from, to }),
    }
}

/// An evaluation that did not return the alert.
fn clear(previous: &Alert, now: i64, keep_firing_for: Duration) -> Step {
    let mut alert = previous.clone();
    match alert.state {
        AlertState::Pending | AlertState::Inactive => Step {
            alert: None,
            transition: Some(Transition {
                from: previous.state,
                to: AlertState::Inactive,
            }),
        },
        AlertState::Resolved => {
            let expired = alert
                .resolved_at
                .is_none_or(|at| now - at > millis(RESOLVED_RETENTION));
            Step {
                alert: (!expired).then_some(alert),
                transition: None,
            }
        }
        AlertState::Firing => {
            if !keep_firing_for.is_zero() {
                let since = *alert.keep_firing_since.get_or_insert(now);
                if now - since < millis(keep_firing_for) {
                    return Step {
                        alert: Some(alert),
                        transition: None,
                    };
                }
            }
            alert.state = AlertState::Resolved;
            alert.resolved_at = Some(now);
            alert.keep_firing_since = None;
            Step {
                alert: Some(alert),
                transition: Some(Transition {
                    from: AlertState::Firing,
                    to: AlertState::Resolved,
                }),
            }
        }
    }
}

/// Brings back an alert saved before a restart, at `now`, when the last evaluation before the
/// restart was at `last_evaluation`. Unlike Prometheus (which puts firing alerts back to pending),
/// a firing or resolved alert comes back as it was, with its original `active_at`; a pending
/// alert keeps its timer when the outage lasted at most `outage_tolerance`, and is dropped
/// otherwise (its timer starts again at the next evaluation that finds it active).
pub fn restore(
    saved: Alert,
    last_evaluation: i64,
    now: i64,
    outage_tolerance: Duration,
) -> Option<Alert> {
    match saved.state {
        AlertState::Pending if now - last_evaluation > millis(outage_tolerance) => None,
        AlertState::Inactive => None,
        _ => Some(saved),
    }
}
