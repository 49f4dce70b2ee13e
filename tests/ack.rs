//! Acknowledgement: on the dispatcher with time as a parameter (an ack stops the
//! repeat_interval re-notification, a new alert in the group still notifies, the ack ends with
//! the firing episode and a new firing notifies again, a snapshot keeps it), then end to end
//! with `tradewatch run`, an alertmanager.yml with a 2 s repeat_interval and a real webhook
//! receiver, acknowledged with `tradewatch ack`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use support::Exporter;
use tradewatch::notify::Alert;
use tradewatch::notify::ack::AckError;
use tradewatch::notify::config::AlertmanagerConfig;
use tradewatch::notify::dispatch::{Dispatcher, Flush};
use tradewatch::notify::escalate;
use tradewatch::notify::silence::Silences;

const CONFIG: &str = r#"
route:
  receiver: ops
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: ops
    webhook_configs: [{url: 'http://127.0.0.1:9/hook'}]
"#;

fn dispatcher() -> Dispatcher {
    Dispatcher::new(AlertmanagerConfig::parse(CONFIG, "ack.yml").unwrap())
}

/// Monday 2026-11-23 10:00:00 UTC plus `secs`.
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(secs)
}

/// Alert `Loss` on `instance`, started at `start`, ending at `end`, sent at `sent`.
fn loss(instance: &str, start: i64, end: i64, sent: i64) -> Alert {
    Alert {
        labels: [("alertname", "Loss"), ("instance", instance)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: BTreeMap::new(),
        starts_at: t(start),
        ends_at: t(end),
        updated_at: t(sent),
        generator_url: String::new(),
        timeout: false,
    }
}

/// Each flush as its alerts, `instance:firing|resolved`.
fn summary(flushes: &[Flush]) -> Vec<Vec<String>> {
    flushes
        .iter()
        .map(|f| {
            f.notification
                .alerts
                .iter()
                .map(|a| {
                    let state = if a.resolved_at(f.notification.created_at) {
                        "resolved"
                    } else {
                        "firing"
                    };
                    format!("{}:{state}", a.labels["instance"])
                })
                .collect()
        })
        .collect()
}

/// Runs the group's ticks from `from` to `to` (every group_interval, 5 min), the rule layer
/// re-sending each firing instance before each tick; gives the ticks that notified.
fn ticks(d: &mut Dispatcher, firing: &[(&str, i64)], from: i64, to: i64) -> Vec<i64> {
    let mut sent = Vec::new();
    let mut tick = from;
    while tick <= to {
        for (instance, start) in firing {
            d.insert(loss(instance, *start, tick + 600, tick - 1), t(tick - 1));
        }
        if !d.due(t(tick)).is_empty() {
            sent.push(tick);
        }
        tick += 300;
    }
    sent
}

#[test]
fn an_ack_stops_the_repeats_of_its_alert() {
    let mut d = dispatcher();
    d.insert(loss("a", 0, 600, 0), t(0));
    assert_eq!(summary(&d.due(t(30))), [["a:firing"]]);
    let mut acked = d.clone();
    let fp = loss("a", 0, 0, 0).fingerprint();
    let ack = acked
        .acknowledge(fp, "ann", "restarting the gateway", t(100))
        .unwrap();
    assert_eq!(ack.fingerprint, fp.to_string());
    assert_eq!(ack.author, "ann");
    assert_eq!(ack.comment, "restarting the gateway");
    assert_eq!(ack.at, t(100));
    assert_eq!(ack.starts_at, t(0));
    assert_eq!(ack.group_key, None);

    // Unacknowledged: repeated at the first tick past an hour after each notification.
    assert_eq!(ticks(&mut d, &[("a", 0)], 330, 3 * 3600), [3930, 7830]);
    // Acknowledged: never repeated while it fires.
    assert_eq!(
        ticks(&mut acked, &[("a", 0)], 330, 3 * 3600),
        Vec::<i64>::new()
    );
    assert_eq!(acked.acks().len(), 1);

    // A new alert in the group is news: notified, with the acked one; the group is no longer
    // wholly acknowledged, so it repeats again.
    acked.insert(loss("a", 0, 11_500, 10_900), t(10_900));
    acked.insert(loss("b", 10_900, 11_500, 10_900), t(10_900));
    assert_eq!(summary(&acked.due(t(11_130))), [["a:firing", "b:firing"]]);
    assert_eq!(
        ticks(
            &mut acked,
            &[("a", 0), ("b", 10_900)],
            11_430,
            11_130 + 3600 + 300
        ),
        [11_130 + 3600 + 300]
    );
}

#[test]
fn the_ack_ends_when_the_alert_resolves_and_a_new_firing_notifies() {
    let mut d = dispatcher();
    d.insert(loss("a", 0, 600, 0), t(0));
    d.due(t(30));
    let fp = loss("a", 0, 0, 0).fingerprint();
    d.acknowledge(fp, "ann", "", t(60)).unwrap();
    assert!(ticks(&mut d, &[("a", 0)], 330, 1230).is_empty());

    // Resolved at 1400: the resolution is sent and the ack is gone.
    d.insert(loss("a", 0, 1400, 1400), t(1400));
    assert_eq!(summary(&d.due(t(1530))), [["a:resolved"]]);
    assert!(d.acks().is_empty());
    assert_eq!(
        d.acknowledge(fp, "ann", "", t(1600)),
        Err(AckError::UnknownAlert(fp.to_string()))
    );

    // Firing again: a new episode, notified, and repeated at repeat_interval.
    d.insert(loss("a", 2000, 3000, 2000), t(2000));
    assert_eq!(summary(&d.due(t(2030))), [["a:firing"]]);
    assert_eq!(
        ticks(&mut d, &[("a", 2000)], 2330, 2030 + 3600 + 300),
        [5930]
    );
}

#[test]
fn a_group_ack_covers_the_alerts_firing_in_it_and_survives_a_restart() {
    let mut d = dispatcher();
    d.insert(loss("a", 0, 600, 0), t(0));
    d.insert(loss("b", 0, 600, 0), t(0));
    let flushes = d.due(t(30));
    let key = flushes[0].notification.group_key.clone();
    assert_eq!(key, "{}:{alertname=\"Loss\"}");
    assert_eq!(
        d.acknowledge_group("{}:{alertname=\"Gain\"}", "ann", "", t(40)),
        Err(AckError::UnknownGroup("{}:{alertname=\"Gain\"}".into()))
    );
    assert_eq!(
        d.acknowledge_group(&key, "", "", t(40)),
        Err(AckError::NoAuthor)
    );
    let acks = d.acknowledge_group(&key, "ann", "looking", t(40)).unwrap();
    assert_eq!(acks.len(), 2);
    assert!(
        acks.iter()
            .all(|a| a.group_key.as_deref() == Some(key.as_str()))
    );

    let restored = |d: &Dispatcher, now| {
        Dispatcher::restore(
            AlertmanagerConfig::parse(CONFIG, "ack.yml").unwrap(),
            d.snapshot(),
            Silences::new(),
            now,
        )
    };
    let mut d = restored(&d, t(100));
    assert_eq!(d.acks().len(), 2);
    assert!(ticks(&mut d, &[("a", 0), ("b", 0)], 330, 3 * 3600).is_empty());
}

const ESCALATING: &str = r#"
route:
  receiver: ops
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: ops
    webhook_configs: [{url: 'http://127.0.0.1:9/hook'}]
  - name: phone
    webhook_configs: [{url: 'http://127.0.0.1:9/phone'}]
"#;

fn escalating() -> Dispatcher {
    let am = AlertmanagerConfig::parse(ESCALATING, "esc.yml").unwrap();
    let notifier: tradewatch::config::notifier::NotifierConfig = yaml_serde::from_str(
        "escalations: [{matchers: ['instance=~\"a|b\"'], after: 10m, receiver: phone}]",
    )
    .unwrap();
    let rules = escalate::rules(&notifier.escalations, &am).unwrap();
    let mut d = Dispatcher::new(am);
    d.set_escalations(rules);
    d
}

#[test]
fn an_unacknowledged_alert_escalates_once_per_episode() {
    let mut d = escalating();
    d.insert(loss("a", 0, 900, 0), t(0));
    d.insert(loss("b", 0, 900, 0), t(0));
    d.insert(loss("c", 0, 900, 0), t(0));
    d.due(t(30));
    d.acknowledge(loss("b", 0, 0, 0).fingerprint(), "ann", "", t(300))
        .unwrap();
    assert_eq!(d.next_deadline(), Some(t(330)));
    d.due(t(330));
    assert_eq!(d.next_deadline(), Some(t(600)));
    let due = d.due(t(600));
    let escalated: Vec<(&str, &str)> = due
        .iter()
        .map(|f| {
            (
                f.notification.receiver.as_str(),
                f.notification.group_key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        escalated,
        [("phone", "escalation:{alertname=\"Loss\", instance=\"a\"}")]
    );
    assert_eq!(due[0].deliveries.len(), 1);
    // Once per episode, across a restart too.
    let mut d = Dispatcher::restore(
        AlertmanagerConfig::parse(ESCALATING, "esc.yml").unwrap(),
        d.snapshot(),
        Silences::new(),
        t(601),
    );
    d.set_escalations(escalating_rules());
    for tick in [630, 930, 1230] {
        d.insert(loss("a", 0, tick + 600, tick - 1), t(tick - 1));
        assert!(
            d.due(t(tick))
                .iter()
                .all(|f| f.notification.receiver == "ops")
        );
    }
    // Resolved, then firing again: a new episode escalates again.
    d.insert(loss("a", 0, 1300, 1300), t(1300));
    d.due(t(1530));
    d.insert(loss("a", 2000, 3000, 2000), t(2000));
    d.due(t(2030));
    assert_eq!(d.next_deadline(), Some(t(2330)));
    d.due(t(2330));
    assert_eq!(d.next_deadline(), Some(t(2600)));
    assert_eq!(d.due(t(2600))[0].notification.receiver, "phone");
}

fn escalating_rules() -> Vec<escalate::EscalationRule> {
    let am = AlertmanagerConfig::parse(ESCALATING, "esc.yml").unwrap();
    let notifier: tradewatch::config::notifier::NotifierConfig = yaml_serde::from_str(
        "escalations: [{matchers: [instance=a], after: 10m, receiver: phone}]",
    )
    .unwrap();
    escalate::rules(&notifier.escalations, &am).unwrap()
}

#[test]
fn an_escalation_to_an_unknown_receiver_is_refused() {
    let am = AlertmanagerConfig::parse(ESCALATING, "esc.yml").unwrap();
    let notifier: tradewatch::config::notifier::NotifierConfig =
        yaml_serde::from_str("escalations: [{matchers: [], after: 10m, receiver: pager}]").unwrap();
    assert_eq!(
        escalate::rules(&notifier.escalations, &am)
            .unwrap_err()
            .to_string(),
        "notifier.escalations[0].receiver: no receiver named \"pager\" in the routing file"
    );
}

// End to end.

type Received = support::Received;

async fn receiver() -> (String, Received) {
    support::webhook_receiver(0).await
}

/// The bodies received so far.
fn bodies(received: &Received) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, v)| v.clone())
        .collect()
}

/// The rule file, routing file and configuration of a `run` process notifying `hook` with a
/// 2 s repeat_interval; `extra` is appended to the `notifier` section.
fn write_files(dir: &std::path::Path, hook: &str, extra: &str) -> String {
    std::fs::write(
        dir.join("trading.rules.yml"),
        r#"
groups:
  - name: risk
    interval: 1s
    rules:
      - alert: TradingKillSwitchActive
        expr: trading_kill_switch_active == 1
        labels:
          severity: critical
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            r#"
route:
  receiver: desk
  group_by: [alertname, engine]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: desk
    webhook_configs:
      - url: '{hook}'
"#
        ),
    )
    .unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  rule_files: ['{}']\n  self: {{job: tradewatch, instance: 'trading-box:9470'}}\nnotifier:\n  config_file: alertmanager.yml\n{extra}",
            dir.join("trading.rules.yml").display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

async fn wait_for(received: &Received, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let got = bodies(received);
        if got.len() >= n || started.elapsed() > StdDuration::from_secs(15) {
            return got;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

fn cli(run: &Exporter, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
        .args(args)
        .arg("--url")
        .arg(run.url(""))
        .env_remove("TRADEWATCH_TOKEN")
        .env("USER", "ann")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn acks(run: &Exporter) -> Vec<Value> {
    let body: Value = run
        .client()
        .get(run.url("/api/v1/acks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["acks"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_alert_is_not_repeated_until_it_fires_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook, received) = receiver().await;
    let config = write_files(dir.path(), &hook, "");
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    // Unacknowledged: notified, then repeated after repeat_interval.
    let got = wait_for(&received, 2).await;
    assert_eq!(got.len(), 2, "no repeat\n{}", run.log());
    assert!(got.iter().all(|n| n["status"] == "firing"));
    let fp = got[0]["alerts"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();

    // Unknown fingerprint and group: 404, said plainly.
    let (code, _, err) = cli(&run, &["ack", "0123456789abcdef"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no firing alert"),
        "{err}"
    );
    let (code, _, err) = cli(&run, &["ack", "--group", "{}:{x=\"y\"}"]);
    assert_eq!(code, 1);
    assert!(err.contains("404") && err.contains("no group"), "{err}");

    let (code, out, err) = cli(&run, &["ack", &fp, "--comment", "flattening the book"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("acknowledged {fp} {{")), "{out}");
    assert!(out.trim_end().ends_with("by ann"), "{out}");
    let listed = acks(&run).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["fingerprint"], fp.as_str());
    assert_eq!(listed[0]["author"], "ann");
    assert_eq!(listed[0]["comment"], "flattening the book");

    // What was queued before the ack is delivered at once; after it, nothing for longer than
    // two repeat intervals.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let before = received.lock().unwrap().len();
    tokio::time::sleep(StdDuration::from_secs(5)).await;
    assert_eq!(received.lock().unwrap().len(), before, "repeated after ack");

    // Resolved: the resolution is sent and the ack is gone.
    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": false})])
        .await;
    let got = wait_for(&received, before + 1).await;
    assert_eq!(got.len(), before + 1, "no resolution\n{}", run.log());
    assert_eq!(got[before]["status"], "resolved");
    let started = Instant::now();
    while !acks(&run).await.is_empty() {
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "ack outlived its alert"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }

    // Firing again: notified again, and repeated again.
    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    let got = wait_for(&received, before + 3).await;
    let alerts = String::from_utf8_lossy(&run.get("/api/v1/alerts", &[]).await.2).into_owned();
    assert_eq!(
        got.len(),
        before + 3,
        "no new firing\n{got:?}\n{alerts:?}\n{}",
        run.log()
    );
    assert_eq!(got[before + 1]["status"], "firing");
    assert_eq!(got[before + 2]["status"], "firing");
    assert_eq!(got[before + 1]["alerts"][0]["fingerprint"], fp.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_alert_escalates_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook, received) = receiver().await;
    let extra =
        "  escalations: [{matchers: ['severity=\"critical\"'], after: 2s, receiver: desk}]\n";
    let config = write_files(dir.path(), &hook, extra);
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    let escalations = |got: &[Value]| -> Vec<Value> {
        got.iter()
            .filter(|n| {
                n["groupKey"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("escalation:"))
            })
            .cloned()
            .collect()
    };
    let started = Instant::now();
    while escalations(&bodies(&received)).is_empty() {
        assert!(
            started.elapsed() < StdDuration::from_secs(15),
            "no escalation\n{}",
            run.log()
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let took = started.elapsed();
    assert!(
        took >= StdDuration::from_millis(1500),
        "escalated after {took:?}"
    );
    // Once per episode: repeats go on, escalations do not.
    tokio::time::sleep(StdDuration::from_secs(4)).await;
    let got = bodies(&received);
    let escalated = escalations(&got);
    assert_eq!(escalated.len(), 1);
    assert_eq!(
        escalated[0]["groupKey"].as_str().unwrap(),
        format!(
            "escalation:{}",
            "{alertname=\"TradingKillSwitchActive\", engine=\"alpha\", instance=\"trading-box:9470\", job=\"tradewatch\", severity=\"critical\"}"
        )
    );
    assert!(got.len() > 2, "the group's repeats go on");
}
