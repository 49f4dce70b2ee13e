//! The alert state machine, table-driven with time as a parameter (no clock, no sleeping), after
//! the cases of Prometheus's `rules/alerting_test.go` that apply to one alert; and Alertmanager's
//! fingerprint.

use std::time::Duration;

use tradewatch::alerts::{
    Alert, AlertState, Fingerprint, Observation, RESOLVED_RETENTION, Transition, evaluate, restore,
};
use tradewatch::model::labels::Labels;

use AlertState::{Firing, Inactive, Pending, Resolved};

const MIN: i64 = 60_000;

fn active(value: f64) -> Observation {
    Observation::Active { value }
}

const CLEAR: Observation = Observation::Inactive;

/// One evaluation: when, what the rule returned, the state after it (`Inactive`: no alert kept)
/// and the transition, if any.
type Row = (
    i64,
    Observation,
    AlertState,
    Option<(AlertState, AlertState)>,
);

/// Runs `rows` in order from no alert and checks each step; gives the last alert kept.
fn run(name: &str, hold: Duration, keep: Duration, rows: &[Row]) -> Option<Alert> {
    let mut alert: Option<Alert> = None;
    for (i, (now, observation, want_state, want_transition)) in rows.iter().enumerate() {
        let step = evaluate(alert.as_ref(), *observation, *now, hold, keep);
        let state = step.alert.as_ref().map_or(Inactive, |a| a.state);
        assert_eq!(state, *want_state, "{name}, row {i} at {now}");
        assert_eq!(
            step.transition,
            want_transition.map(|(from, to)| Transition { from, to }),
            "{name}, row {i} at {now}"
        );
        alert = step.alert;
    }
    alert
}

#[test]
fn pending_then_firing_then_resolved() {
    // TestAlertingRule: `for: 10m`; the series is there for 0..=10m then gone.
    let alert = run(
        "for 10m",
        Duration::from_secs(600),
        Duration::ZERO,
        &[
            (0, active(1.0), Pending, Some((Inactive, Pending))),
            (5 * MIN, active(2.0), Pending, None),
            (10 * MIN, active(3.0), Firing, Some((Pending, Firing))),
            (15 * MIN, CLEAR, Resolved, Some((Firing, Resolved))),
        ],
    )
    .unwrap();
    assert_eq!(alert.active_at, 0);
    assert_eq!(alert.fired_at, Some(10 * MIN));
    assert_eq!(alert.resolved_at, Some(15 * MIN));
    assert_eq!(alert.value, 3.0, "the value of the last active evaluation");
}

#[test]
fn value_is_refreshed_and_active_at_kept() {
    let alert = run(
        "refresh",
        Duration::from_secs(600),
        Duration::ZERO,
        &[
            (0, active(1.0), Pending, Some((Inactive, Pending))),
            (MIN, active(7.5), Pending, None),
        ],
    )
    .unwrap();
    assert_eq!((alert.value, alert.active_at), (7.5, 0));
}

#[test]
fn zero_for_fires_at_once() {
    let alert = run(
        "for 0",
        Duration::ZERO,
        Duration::ZERO,
        &[(MIN, active(1.0), Firing, Some((Inactive, Firing)))],
    )
    .unwrap();
    assert_eq!((alert.active_at, alert.fired_at), (MIN, Some(MIN)));
}

#[test]
fn pending_that_clears_is_dropped_without_resolving() {
    run(
        "pending clears",
        Duration::from_secs(600),
        Duration::ZERO,
        &[
            (0, active(1.0), Pending, Some((Inactive, Pending))),
            (MIN, CLEAR, Inactive, Some((Pending, Inactive))),
            (2 * MIN, CLEAR, Inactive, None),
            // Active again: the timer starts over.
            (3 * MIN, active(1.0), Pending, Some((Inactive, Pending))),
            (12 * MIN, active(1.0), Pending, None),
            (13 * MIN, active(1.0), Firing, Some((Pending, Firing))),
        ],
    );
}

#[test]
fn resolved_is_kept_fifteen_minutes() {
    assert_eq!(RESOLVED_RETENTION, Duration::from_secs(15 * 60));
    run(
        "retention",
        Duration::ZERO,
        Duration::ZERO,
        &[
            (0, active(1.0), Firing, Some((Inactive, Firing))),
            (MIN, CLEAR, Resolved, Some((Firing, Resolved))),
            (10 * MIN, CLEAR, Resolved, None),
            // Exactly 15 minutes after resolving: still kept (Prometheus drops when older).
            (16 * MIN, CLEAR, Resolved, None),
            (16 * MIN + 1, CLEAR, Inactive, None),
        ],
    );
}

#[test]
fn resolved_alert_that_returns_starts_a_new_pending_one() {
    let alert = run(
        "returns",
        Duration::from_secs(300),
        Duration::ZERO,
        &[
            (0, active(1.0), Pending, Some((Inactive, Pending))),
            (5 * MIN, active(1.0), Firing, Some((Pending, Firing))),
            (6 * MIN, CLEAR, Resolved, Some((Firing, Resolved))),
            (7 * MIN, active(2.0), Pending, Some((Resolved, Pending))),
        ],
    )
    .unwrap();
    assert_eq!(
        (alert.active_at, alert.fired_at, alert.resolved_at),
        (7 * MIN, None, None)
    );
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    // TestKeepFiringFor: `for: 0`, `keep_firing_for: 5m`.
    let alert = run(
        "keep_firing_for",
        Duration::ZERO,
        Duration::from_secs(300),
        &[
            (0, active(1.0), Firing, Some((Inactive, Firing))),
            (MIN, CLEAR, Firing, None),
            (5 * MIN, CLEAR, Firing, None),
            // Five minutes since the condition cleared (at 1m).
            (6 * MIN, CLEAR, Resolved, Some((Firing, Resolved))),
        ],
    )
    .unwrap();
    assert_eq!(alert.resolved_at, Some(6 * MIN));
}

#[test]
fn keep_firing_for_restarts_when_the_condition_returns() {
    run(
        "keep_firing_for reset",
        Duration::ZERO,
        Duration::from_secs(300),
        &[
            (0, active(1.0), Firing, Some((Inactive, Firing))),
            (MIN, CLEAR, Firing, None),
            (2 * MIN, active(1.0), Firing, None),
            (3 * MIN, CLEAR, Firing, None),
            (7 * MIN, CLEAR, Firing, None),
            (8 * MIN, CLEAR, Resolved, Some((Firing, Resolved))),
        ],
    );
}

#[test]
fn keep_firing_for_does_not_hold_a_pending_alert() {
    run(
        "pending with keep_firing_for",
        Duration::from_secs(600),
        Duration::from_secs(300),
        &[
            (0, active(1.0), Pending, Some((Inactive, Pending))),
            (MIN, CLEAR, Inactive, Some((Pending, Inactive))),
        ],
    );
}

fn saved(state: AlertState) -> Alert {
    Alert {
        state,
        value: 1.0,
        active_at: 0,
        fired_at: (state == Firing).then_some(5 * MIN),
        resolved_at: None,
        keep_firing_since: None,
    }
}

#[test]
fn after_a_restart_a_firing_alert_stays_firing() {
    // DESIGN §2: unlike Prometheus, which puts it back to pending.
    let hold = Duration::from_secs(300);
    let back = restore(saved(Firing), 10 * MIN, 70 * MIN, Duration::from_secs(3600)).unwrap();
    assert_eq!(back, saved(Firing));
    let step = evaluate(Some(&back), active(2.0), 71 * MIN, hold, Duration::ZERO);
    assert_eq!(step.transition, None, "no second firing transition");
    let alert = step.alert.unwrap();
    assert_eq!((alert.state, alert.active_at), (Firing, 0));
}

#[test]
fn after_a_restart_a_pending_alert_resumes_within_the_outage_tolerance() {
    let hold = Duration::from_secs(600);
    let tolerance = Duration::from_secs(3 * 60);
    let back = restore(saved(Pending), 2 * MIN, 4 * MIN, tolerance).unwrap();
    let step = evaluate(Some(&back), active(1.0), 10 * MIN, hold, Duration::ZERO);
    assert_eq!(
        step.transition,
        Some(Transition {
            from: Pending,
            to: Firing
        }),
        "the timer kept its start at 0"
    );
    assert_eq!(restore(saved(Pending), 2 * MIN, 6 * MIN, tolerance), None);
}

#[test]
fn state_names() {
    let names: Vec<_> = [Inactive, Pending, Firing, Resolved]
        .map(AlertState::as_str)
        .to_vec();
    assert_eq!(names, ["inactive", "pending", "firing", "resolved"]);
}

#[test]
fn fingerprint_matches_alertmanager() {
    // prometheus/common's model/fingerprinting_test.go (TestMetricToFingerprint), the function
    // behind Alertmanager's `LabelSet.Fingerprint()`.
    let empty = Fingerprint::of(&Labels::empty());
    assert_eq!(empty.0, 14695981039346656037);
    assert_eq!(empty.to_string(), "cbf29ce484222325");
    let labels = Labels::from_pairs([("name", "garland, briggs"), ("fear", "love is not enough")]);
    let fingerprint = Fingerprint::of(&labels);
    assert_eq!(fingerprint.0, 5799056148416392346);
    assert_eq!(
        fingerprint.to_string(),
        format!("{:016x}", 5799056148416392346u64)
    );
    assert_eq!(
        Fingerprint::of_pairs([("fear", "love is not enough"), ("name", "garland, briggs")]),
        fingerprint,
        "order does not matter"
    );
}
