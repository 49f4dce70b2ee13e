//! The dispatcher on timelines, time given at each step: group_wait, group_interval and
//! repeat_interval as Alertmanager schedules them, dedup per integration (send_resolved),
//! resolved alerts, inhibition, silences (one ending while its alert still fires notifies),
//! time intervals, resolve_timeout, and a restart from a snapshot that sends nothing again.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use tradewatch::notify::Alert;
use tradewatch::notify::config::{AlertmanagerConfig, IntegrationKind};
use tradewatch::notify::dispatch::{Dispatcher, DispatcherState, Flush, Incoming};
use tradewatch::notify::matcher::Matcher;
use tradewatch::notify::silence::{Silence, Silences};

const CONFIG: &str = r#"
route:
  receiver: ops
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [team=quiet]
      receiver: quiet
      mute_time_intervals: [weekends]
    - matchers: [team=office]
      receiver: quiet
      active_time_intervals: [business-hours]
    - matchers: [team=risk]
      receiver: risk
      group_by: ['...']
      continue: true
receivers:
  - name: ops
    webhook_configs: [{url: 'http://127.0.0.1:9/hook'}]
    email_configs: [{to: ops@example.com, from: tw@example.com, smarthost: 'mail.example.com:25'}]
  - name: quiet
    webhook_configs: [{url: 'http://127.0.0.1:9/quiet'}]
  - name: risk
    webhook_configs: [{url: 'http://127.0.0.1:9/risk', send_resolved: false}]
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [strategy]
time_intervals:
  - name: weekends
    time_intervals: [{weekdays: [saturday, sunday]}]
  - name: business-hours
    time_intervals: [{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '17:00'}]}]
"#;

fn config() -> AlertmanagerConfig {
    AlertmanagerConfig::parse(CONFIG, "dispatch.yml").unwrap()
}

/// Monday 2026-11-23 10:00:00 UTC plus `secs`.
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(secs)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An alert as the rule layer sends it: started at `start`, ending `end` (a firing alert is
/// re-sent with an end a few minutes ahead).
fn alert(pairs: &[(&str, &str)], start: i64, end: i64, updated: i64) -> Alert {
    Alert {
        labels: labels(pairs),
        annotations: BTreeMap::from([("summary".to_owned(), "trouble".to_owned())]),
        starts_at: t(start),
        ends_at: t(end),
        updated_at: t(updated),
        generator_url: String::new(),
        timeout: false,
    }
}

/// The names of the alerts of each flush, by receiver.
fn summary(flushes: &[Flush]) -> Vec<(String, Vec<String>)> {
    flushes
        .iter()
        .map(|f| {
            let names = f
                .notification
                .alerts
                .iter()
                .map(|a| {
                    let state = if a.resolved_at(f.notification.created_at) {
                        "resolved"
                    } else {
                        "firing"
                    };
                    format!(
                        "{}:{}",
                        a.labels
                            .get("instance")
                            .or(a.labels.get("alertname"))
                            .unwrap(),
                        state
                    )
                })
                .collect();
            (f.notification.receiver.clone(), names)
        })
        .collect()
}

fn receivers_and_kinds(flush: &Flush) -> Vec<IntegrationKind> {
    flush
        .deliveries
        .iter()
        .map(|d| d.integration.kind)
        .collect()
}

#[test]
fn group_wait_then_group_interval_then_repeat_interval() {
    let mut d = Dispatcher::new(config());
    assert_eq!(d.next_deadline(), None);
    d.insert(
        alert(&[("alertname", "Loss"), ("instance", "a")], 0, 600, 0),
        t(0),
    );
    assert_eq!(d.next_deadline(), Some(t(30)));
    assert!(d.due(t(29)).is_empty());
    let first = d.due(t(30));
    assert_eq!(
        summary(&first),
        [("ops".into(), vec!["a:firing".to_owned()])]
    );
    let n = &first[0].notification;
    assert_eq!(n.group_key, "{}:{alertname=\"Loss\"}");
    assert_eq!(n.group_labels, labels(&[("alertname", "Loss")]));
    assert_eq!(n.id.len(), 32);
    assert!(n.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        receivers_and_kinds(&first[0]),
        [IntegrationKind::Email, IntegrationKind::Webhook]
    );
    assert_eq!(d.next_deadline(), Some(t(330)));

    // A second alert joins: notified at the next group_interval tick, not before.
    d.insert(
        alert(&[("alertname", "Loss"), ("instance", "b")], 60, 660, 60),
        t(60),
    );
    assert_eq!(d.next_deadline(), Some(t(330)));
    let second = d.due(t(330));
    assert_eq!(
        summary(&second),
        [(
            "ops".into(),
            vec!["a:firing".to_owned(), "b:firing".to_owned()]
        )]
    );
    assert_ne!(second[0].notification.id, n.id);

    // Nothing changes: the ticks go on silently until repeat_interval has passed since the
    // last notification (at 330 s): the first tick past 4h after it, at 4h05m30s.
    let mut tick = 330;
    let mut sent_at = Vec::new();
    while tick < 5 * 3600 {
        tick += 300;
        // The rule layer keeps the alerts firing.
        for instance in ["a", "b"] {
            d.insert(
                alert(
                    &[("alertname", "Loss"), ("instance", instance)],
                    0,
                    tick + 600,
                    tick - 1,
                ),
                t(tick - 1),
            );
        }
        assert_eq!(d.next_deadline(), Some(t(tick)));
        if !d.due(t(tick)).is_empty() {
            sent_at.push(tick);
        }
    }
    assert_eq!(sent_at, [330 + 4 * 3600 + 300]);
}

#[test]
fn resolved_alerts_go_to_integrations_that_want_them_then_leave_the_group() {
    let mut d = Dispatcher::new(config());
    d.insert(
        alert(&[("alertname", "Lag"), ("instance", "a")], 0, 600, 0),
        t(0),
    );
    d.insert(
        alert(&[("alertname", "Lag"), ("instance", "b")], 0, 600, 0),
        t(0),
    );
    assert_eq!(d.due(t(30)).len(), 1);
    // b resolves: the webhook (send_resolved) is told, the email is not.
    d.insert(
        alert(&[("alertname", "Lag"), ("instance", "b")], 0, 100, 100),
        t(100),
    );
    let flushes = d.due(t(330));
    assert_eq!(
        summary(&flushes),
        [(
            "ops".into(),
            vec!["a:firing".to_owned(), "b:resolved".to_owned()]
        )]
    );
    assert_eq!(receivers_and_kinds(&flushes[0]), [IntegrationKind::Webhook]);
    let webhook = &flushes[0].deliveries[0];
    assert_eq!(flushes[0].alerts_for(webhook).len(), 2);
    // b left the group once flushed.
    assert_eq!(d.groups()[0].alerts.len(), 1);
    // a resolves too: both integrations log it, only the webhook gets a message.
    d.insert(
        alert(&[("alertname", "Lag"), ("instance", "a")], 0, 400, 400),
        t(400),
    );
    let flushes = d.due(t(630));
    assert_eq!(
        summary(&flushes),
        [("ops".into(), vec!["a:resolved".to_owned()])]
    );
    assert_eq!(receivers_and_kinds(&flushes[0]), [IntegrationKind::Webhook]);
    let email_entry = d
        .nflog()
        .find(|e| e.integration.kind == IntegrationKind::Email)
        .unwrap();
    assert!(email_entry.firing.is_empty());
    assert_eq!(email_entry.timestamp, t(630));
    // The group is empty: not shown, nothing to flush; it stays until the next maintenance
    // (every 30 s, as Alertmanager's dispatcher), the only thing still due.
    assert!(d.groups().is_empty());
    assert_eq!(d.next_deadline(), Some(t(660)));
    assert!(d.due(t(660)).is_empty());
    assert_eq!(d.next_deadline(), None);
    // Firing again: a new group, group_wait again; notified as new.
    d.insert(
        alert(&[("alertname", "Lag"), ("instance", "a")], 700, 1300, 700),
        t(700),
    );
    assert_eq!(d.next_deadline(), Some(t(730)));
    assert_eq!(summary(&d.due(t(730))).len(), 1);
}

#[test]
fn an_alert_firing_again_before_the_maintenance_waits_for_its_groups_tick() {
    let mut d = Dispatcher::new(config());
    let lag = [("alertname", "Lag"), ("instance", "a")];
    d.insert(alert(&lag, 0, 600, 0), t(0));
    assert_eq!(d.due(t(30)).len(), 1);
    d.insert(alert(&lag, 0, 100, 100), t(100));
    // Resolved at the tick of 330: the group is left empty, its ticks go on (630, 930, …).
    assert_eq!(summary(&d.due(t(330))).len(), 1);
    // Maintenance at 360 and 390 would drop it; firing again at 340, within the same
    // maintenance period, it waits for the tick of 630 (not group_wait, not at once).
    d.insert(alert(&lag, 340, 1300, 340), t(340));
    assert_eq!(d.next_deadline(), Some(t(630)));
    assert!(d.due(t(370)).is_empty());
    assert_eq!(
        summary(&d.due(t(630))),
        [("ops".into(), vec!["a:firing".to_owned()])]
    );
}

#[test]
fn a_resolved_only_flush_without_send_resolved_sends_nothing() {
    let mut d = Dispatcher::new(config());
    let risk = [("alertname", "Breach"), ("team", "risk")];
    d.insert(alert(&risk, 0, 600, 0), t(0));
    let flushes = d.due(t(30));
    // team=risk goes to risk only: `continue` goes on among siblings, and none matches.
    assert_eq!(
        summary(&flushes),
        [("risk".into(), vec!["Breach:firing".to_owned()])]
    );
    assert_eq!(
        flushes[0].notification.group_key,
        "{}/{team=\"risk\"}:{alertname=\"Breach\", team=\"risk\"}"
    );
    // Resolved: its only integration has no send_resolved, so nothing goes out, but the log
    // records that nothing fires any more.
    d.insert(alert(&risk, 0, 100, 100), t(100));
    assert!(d.due(t(330)).is_empty());
    let entry = d.nflog().next().unwrap();
    assert_eq!(entry.timestamp, t(330));
    assert!(entry.firing.is_empty());
    assert_eq!(entry.resolved.len(), 1);
}

#[test]
fn inhibited_alerts_are_left_out_until_their_source_resolves() {
    let mut d = Dispatcher::new(config());
    let critical = [
        ("alertname", "Risk"),
        ("severity", "critical"),
        ("strategy", "carry"),
        ("instance", "c"),
    ];
    let warning = [
        ("alertname", "Risk"),
        ("severity", "warning"),
        ("strategy", "carry"),
        ("instance", "w"),
    ];
    let other = [
        ("alertname", "Risk"),
        ("severity", "warning"),
        ("strategy", "momentum"),
        ("instance", "o"),
    ];
    d.insert(alert(&critical, 0, 3600, 0), t(0));
    d.insert(alert(&warning, 0, 3600, 0), t(0));
    d.insert(alert(&other, 0, 3600, 0), t(0));
    assert_eq!(
        summary(&d.due(t(30))),
        [(
            "ops".into(),
            vec!["c:firing".to_owned(), "o:firing".to_owned()]
        )]
    );
    let (silenced, inhibited) = d.muted_by(&labels(&warning), t(31));
    assert!(silenced.is_empty());
    assert_eq!(inhibited.len(), 1);
    // The critical alert resolves: the warning shows up, and the firing set changed.
    d.insert(alert(&critical, 0, 100, 100), t(100));
    assert_eq!(
        summary(&d.due(t(330))),
        [(
            "ops".into(),
            vec![
                "c:resolved".to_owned(),
                "o:firing".to_owned(),
                "w:firing".to_owned()
            ]
        )]
    );
}

#[test]
fn a_silence_ending_while_the_alert_fires_notifies() {
    let mut d = Dispatcher::new(config());
    let id = d
        .silences_mut()
        .set(
            Silence {
                id: String::new(),
                matchers: vec![Matcher::parse("alertname=Stale").unwrap()],
                starts_at: t(0),
                ends_at: t(600),
                created_by: "desk".into(),
                comment: "feed maintenance".into(),
                updated_at: t(0),
            },
            t(0),
        )
        .unwrap();
    d.insert(alert(&[("alertname", "Stale")], 0, 7200, 0), t(0));
    assert!(d.due(t(30)).is_empty());
    assert!(d.due(t(330)).is_empty());
    assert_eq!(
        d.muted_by(&labels(&[("alertname", "Stale")]), t(331)).0,
        [id].into()
    );
    // The silence ended at 600 s; the next tick notifies.
    let flushes = d.due(t(630));
    assert_eq!(
        summary(&flushes),
        [("ops".into(), vec!["Stale:firing".to_owned()])]
    );
}

#[test]
fn a_silence_over_an_alert_already_notified_holds_until_repeat_interval() {
    let mut d = Dispatcher::new(config());
    d.insert(alert(&[("alertname", "Feed")], 0, 20_000, 0), t(0));
    assert_eq!(d.due(t(30)).len(), 1);
    d.silences_mut()
        .set(
            Silence {
                id: String::new(),
                matchers: vec![Matcher::parse("alertname=Feed").unwrap()],
                starts_at: t(100),
                ends_at: t(1000),
                created_by: "desk".into(),
                comment: "known".into(),
                updated_at: t(100),
            },
            t(100),
        )
        .unwrap();
    assert!(d.due(t(330)).is_empty());
    // Unsilenced, it fires as it did when last notified: Alertmanager waits for the repeat
    // (4h after the notification at 30 s: the first tick after it).
    let mut tick = 330;
    let mut sent = Vec::new();
    while tick < 5 * 3600 {
        tick += 300;
        if !d.due(t(tick)).is_empty() {
            sent.push(tick);
        }
    }
    assert_eq!(sent, [30 + 4 * 3600 + 300]);
}

#[test]
fn mute_and_active_time_intervals() {
    let mut d = Dispatcher::new(config());
    // Saturday 2026-11-28 10:00 UTC: the quiet route is muted on weekends.
    let saturday = 5 * 86400;
    d.insert(
        alert(
            &[("alertname", "Q"), ("team", "quiet")],
            saturday,
            saturday + 3 * 86400,
            saturday,
        ),
        t(saturday),
    );
    assert!(d.due(t(saturday + 30)).is_empty());
    // Monday 2026-11-30 00:00 UTC, at the first tick after midnight, it notifies.
    let monday = 7 * 86400 - 10 * 3600;
    let mut tick = saturday + 30;
    let mut first = None;
    while first.is_none() && tick < monday + 3600 {
        tick += 300;
        if !d.due(t(tick)).is_empty() {
            first = Some(tick);
        }
    }
    let first = first.unwrap();
    assert!(first >= monday && first < monday + 300, "{first}");

    // The office route is active only in business hours (Monday 09:00-17:00 UTC).
    let mut d = Dispatcher::new(config());
    d.insert(
        alert(
            &[("alertname", "O"), ("team", "office")],
            7 * 3600,
            86400,
            7 * 3600,
        ),
        t(8 * 3600),
    );
    // 18:00 on Monday (t(0) is 10:00): outside; nothing.
    assert!(d.due(t(8 * 3600 + 30)).is_empty());
    let mut d = Dispatcher::new(config());
    d.insert(
        alert(&[("alertname", "O"), ("team", "office")], 0, 86400, 0),
        t(0),
    );
    assert_eq!(summary(&d.due(t(30))).len(), 1);
}

#[test]
fn alerts_without_an_end_resolve_after_resolve_timeout() {
    let mut d = Dispatcher::new(config());
    let incoming = Incoming {
        labels: labels(&[("alertname", "Feed")]),
        annotations: BTreeMap::new(),
        starts_at: Some(t(0)),
        ends_at: None,
        generator_url: "http://prometheus/graph".into(),
    };
    d.receive(incoming.clone(), t(0));
    let stored = d.alerts().next().unwrap().clone();
    assert!(stored.timeout);
    assert_eq!(stored.ends_at, t(300));
    assert_eq!(
        summary(&d.due(t(30))),
        [("ops".into(), vec!["Feed:firing".to_owned()])]
    );
    // Not refreshed: resolved by the tick after 5 minutes.
    assert_eq!(
        summary(&d.due(t(330))),
        [("ops".into(), vec!["Feed:resolved".to_owned()])]
    );
    // An alert sent without a start starts now; one sent resolved starts at its end.
    let mut late = incoming;
    late.starts_at = None;
    late.ends_at = Some(t(1000));
    let a = late.into_alert(t(2000), std::time::Duration::from_secs(300));
    assert_eq!(
        (a.starts_at, a.ends_at, a.timeout),
        (t(1000), t(1000), false)
    );
}

#[test]
fn an_old_alert_flushes_its_new_group_at_once() {
    let mut d = Dispatcher::new(config());
    // Started ten minutes ago (a rule with `for: 10m`): no group_wait.
    d.insert(alert(&[("alertname", "Old")], -600, 600, 0), t(0));
    assert_eq!(d.next_deadline(), Some(t(0)));
    assert_eq!(d.due(t(0)).len(), 1);
    assert_eq!(d.next_deadline(), Some(t(300)));
}

#[test]
fn a_restart_from_a_snapshot_sends_nothing_already_sent() {
    let mut d = Dispatcher::new(config());
    d.insert(
        alert(&[("alertname", "Loss"), ("instance", "a")], 0, 3600, 0),
        t(0),
    );
    let sent = d.due(t(30));
    assert_eq!(sent.len(), 1);
    let silences = d.silences().clone();
    let json = serde_json::to_string(&d.snapshot()).unwrap();
    let state: DispatcherState = serde_json::from_str(&json).unwrap();
    let silences: Silences =
        serde_json::from_str(&serde_json::to_string(&silences).unwrap()).unwrap();
    let mut restored = Dispatcher::restore(config(), state, silences, t(100));
    assert_eq!(restored.next_deadline(), Some(t(330)));
    // The rule layer re-sends the alert after the restart: still nothing new.
    restored.insert(
        alert(&[("alertname", "Loss"), ("instance", "a")], 0, 3600, 100),
        t(100),
    );
    assert!(restored.due(t(330)).is_empty());
    assert!(restored.due(t(630)).is_empty());

    // A reload (fresh groups, group_wait again) also sends nothing already sent.
    // The alert started long ago, so its new group flushes at once.
    restored.reload(config(), t(700));
    assert_eq!(restored.next_deadline(), Some(t(700)));
    assert!(restored.due(t(700)).is_empty());
    // A new alert in the group is news again.
    restored.insert(
        alert(&[("alertname", "Loss"), ("instance", "b")], 800, 3600, 800),
        t(800),
    );
    assert_eq!(
        summary(&restored.due(t(1000))),
        [(
            "ops".into(),
            vec!["a:firing".to_owned(), "b:firing".to_owned()]
        )]
    );
}

/// One step of a random timeline: which alert, its state, and how far time moves first.
#[derive(Debug, Clone)]
struct Step {
    name: usize,
    instance: usize,
    severity: usize,
    team: usize,
    advance: i64,
    resolved: bool,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    (
        0..3usize,
        0..2usize,
        0..3usize,
        0..3usize,
        0..900i64,
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(name, instance, severity, team, advance, resolved)| Step {
            name,
            instance,
            severity,
            team,
            advance,
            resolved,
        })
}

fn step_alert(s: &Step, now: i64) -> Alert {
    let name = ["Loss", "Lag", "Stale"][s.name];
    let instance = ["a", "b"][s.instance];
    let severity = ["critical", "warning", "info"][s.severity];
    let mut pairs = vec![
        ("alertname", name),
        ("instance", instance),
        ("severity", severity),
        ("strategy", "carry"),
    ];
    if let Some(team) = [None, Some("quiet"), Some("risk")][s.team] {
        pairs.push(("team", team));
    }
    let end = if s.resolved { now } else { now + 600 };
    alert(&pairs, now - 60, end, now)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Whatever the timeline, a dispatcher restored from a snapshot (through JSON) at any
    /// point goes on exactly as the original; and every flush is well formed: due at its time,
    /// with something to deliver, each alert once.
    #[test]
    fn a_restored_dispatcher_goes_on_as_the_original(
        steps in proptest::collection::vec(step(), 1..40),
        cut in 0usize..40,
    ) {
        let mut original = Dispatcher::new(config());
        let mut restored: Option<Dispatcher> = None;
        let mut now = 0;
        for (i, s) in steps.iter().enumerate() {
            if i == cut {
                let json = serde_json::to_string(&original.snapshot()).unwrap();
                let state: DispatcherState = serde_json::from_str(&json).unwrap();
                restored = Some(Dispatcher::restore(
                    config(),
                    state,
                    original.silences().clone(),
                    t(now),
                ));
            }
            now += s.advance;
            let a = step_alert(s, now);
            original.insert(a.clone(), t(now));
            if let Some(r) = restored.as_mut() {
                r.insert(a, t(now));
            }
            while let Some(deadline) = original.next_deadline().filter(|d| *d <= t(now)) {
                let flushes = original.due(deadline);
                for f in &flushes {
                    proptest::prop_assert_eq!(f.notification.created_at, deadline);
                    proptest::prop_assert!(!f.deliveries.is_empty());
                    let fps: std::collections::BTreeSet<_> =
                        f.notification.alerts.iter().map(Alert::fingerprint).collect();
                    proptest::prop_assert_eq!(fps.len(), f.notification.alerts.len());
                    let both: std::collections::BTreeSet<_> =
                        f.firing.union(&f.resolved).copied().collect();
                    proptest::prop_assert_eq!(&fps, &both);
                }
                proptest::prop_assert!(original.next_deadline().is_none_or(|d| d > deadline));
                if let Some(r) = restored.as_mut() {
                    proptest::prop_assert_eq!(r.due(deadline), flushes);
                }
            }
            if let Some(r) = restored.as_ref() {
                proptest::prop_assert_eq!(r.next_deadline(), original.next_deadline());
            }
        }
    }
}

#[test]
fn resolved_alerts_stay_in_the_store_until_its_garbage_collection() {
    let mut d = Dispatcher::new(config());
    let lag = [("alertname", "Lag"), ("instance", "a")];
    d.insert(alert(&lag, 0, 600, 0), t(0));
    assert_eq!(d.due(t(30)).len(), 1);
    d.insert(alert(&lag, 0, 100, 100), t(100));
    assert_eq!(d.due(t(330)).len(), 1);
    // Posted again with a start inside the resolved episode: merged, the earlier start kept.
    d.insert(alert(&lag, 50, 1000, 400), t(400));
    let merged = d.alerts().next().unwrap();
    assert_eq!(merged.starts_at, t(0));
    // Resolved again before any flush saw it fire: at the group's next flush nothing fires
    // and nothing fired at the last notification, so nothing is sent.
    d.insert(alert(&lag, 0, 700, 700), t(700));
    assert!(d.due(t(930)).is_empty());
    assert_eq!(d.alerts().count(), 1);
    // The collection, 30 min after the first flush: the resolved alert is gone, and one
    // posted later starts afresh.
    assert!(d.due(t(30 + 1800)).is_empty());
    assert_eq!(d.alerts().count(), 0);
    d.insert(alert(&lag, 50, 4000, 1900), t(1900));
    assert_eq!(d.alerts().next().unwrap().starts_at, t(50));
}
