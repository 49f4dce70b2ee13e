//! The rule layer at work, driven with explicit times: alerts handed on as Prometheus sends them
//! (firing re-sent after the resend delay, resolved once), every transition in `state.db` and
//! the alert log, and a restart that keeps a firing alert firing with its `activeAt` and no new
//! firing transition, while a pending alert resumes its timer within the outage tolerance.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tradewatch::alerts::log::AlertLog;
use tradewatch::alerts::persist::AlertDb;
use tradewatch::model::labels::Labels;
use tradewatch::notify::Alert;
use tradewatch::promql::Engine;
use tradewatch::rules::{AlertSink, RuleFile, Rules, Settings, compile};
use tradewatch::store::Store;

const S: i64 = 1000;
/// 2026-11-23T00:00:00Z.
const T0: i64 = 1_795_392_000_000;

const RULES: &str = r#"
groups:
  - name: risk
    interval: 1s
    rules:
      - alert: TradingKillSwitchActive
        expr: trading_kill_switch_active == 1
        labels:
          severity: critical
        annotations:
          summary: 'Kill switch on {{ $labels.engine }}'
      - alert: TradingLossSlow
        expr: trading_pnl_daily < -100
        for: 30s
        labels:
          severity: warning
"#;

#[derive(Default)]
struct Collect(Mutex<Vec<Alert>>);

impl AlertSink for Collect {
    fn send(&self, alerts: Vec<Alert>) {
        self.0.lock().unwrap().extend(alerts);
    }
}

impl Collect {
    fn take(&self) -> Vec<Alert> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Fixture {
    rules: Rules,
    sink: Arc<Collect>,
    store: Arc<Store>,
}

fn fixture(dir: &std::path::Path, store: Arc<Store>) -> Fixture {
    let loaded = RuleFile::parse(RULES, "trading.rules.yml").unwrap();
    let groups = compile(&loaded, "trading.rules.yml", Duration::from_secs(1));
    let sink = Arc::new(Collect::default());
    let settings = Settings {
        external_labels: [("desk".to_string(), "nyc".to_string())].into(),
        external_url: "http://trading-box:9470".to_string(),
        generator_url: String::new(),
        outage_tolerance: Duration::from_secs(3600),
    };
    let log = Arc::new(AlertLog::open(&dir.join("alerts"), Duration::from_secs(86400)).unwrap());
    let rules = Rules::new(
        groups,
        Engine::default(),
        store.clone(),
        settings,
        Some(AlertDb::open(&dir.join("state.db")).unwrap()),
        Some(log),
        Some(sink.clone() as Arc<dyn AlertSink>),
        None,
    );
    Fixture { rules, sink, store }
}

fn set(store: &Store, name: &str, t: i64, v: f64) {
    let labels = Labels::from_pairs([("__name__", name), ("engine", "alpha")]);
    store.append(&labels, t, v).unwrap();
}

fn log_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("alerts")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        out.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    out
}

#[test]
fn firing_alerts_are_sent_at_once_resent_after_the_delay_and_resolved_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::default());
    let f = fixture(dir.path(), store);
    set(&f.store, "trading_kill_switch_active", T0, 1.0);
    f.rules.evaluate(0, T0);
    let sent = f.sink.take();
    assert_eq!(
        sent.len(),
        1,
        "a for: 0s alert is sent at its first evaluation"
    );
    let a = &sent[0];
    assert_eq!(a.labels["alertname"], "TradingKillSwitchActive");
    assert_eq!(a.labels["desk"], "nyc", "external labels are added");
    assert_eq!(a.labels["engine"], "alpha");
    assert_eq!(a.annotations["summary"], "Kill switch on alpha");
    assert_eq!(a.starts_at.timestamp_millis(), T0);
    assert_eq!(
        a.ends_at.timestamp_millis(),
        T0 + 4 * 60 * S,
        "valid for 4 × resend delay"
    );
    assert_eq!(
        a.generator_url,
        "http://trading-box:9470/api/v1/query?query=trading_kill_switch_active+%3D%3D+1"
    );
    for t in 1..60 {
        set(&f.store, "trading_kill_switch_active", T0 + t * S, 1.0);
        f.rules.evaluate(0, T0 + t * S);
    }
    assert!(
        f.sink.take().is_empty(),
        "not re-sent within the resend delay"
    );
    set(&f.store, "trading_kill_switch_active", T0 + 60 * S, 1.0);
    f.rules.evaluate(0, T0 + 60 * S);
    assert_eq!(f.sink.take().len(), 1, "re-sent after a minute");
    set(&f.store, "trading_kill_switch_active", T0 + 61 * S, 0.0);
    f.rules.evaluate(0, T0 + 61 * S);
    let resolved = f.sink.take();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ends_at.timestamp_millis(), T0 + 61 * S);
    set(&f.store, "trading_kill_switch_active", T0 + 62 * S, 0.0);
    f.rules.evaluate(0, T0 + 62 * S);
    assert!(f.sink.take().is_empty(), "resolved alerts are sent once");

    let lines = log_lines(dir.path());
    let moves: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["from"].as_str().unwrap().into(),
                l["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("inactive".into(), "firing".into()),
            ("firing".into(), "resolved".into())
        ]
    );
    assert_eq!(lines[0]["kind"], "transition");
    assert_eq!(lines[0]["ts"], "2026-11-23T00:00:00.000Z");
    assert_eq!(lines[0]["alertname"], "TradingKillSwitchActive");
    assert_eq!(lines[0]["value"], 1.0);
    assert_eq!(lines[0]["fingerprint"].as_str().unwrap().len(), 16);
}

#[test]
fn a_restart_keeps_firing_alerts_and_resumes_pending_timers() {
    let dir = tempfile::tempdir().unwrap();
    {
        let f = fixture(dir.path(), Arc::new(Store::default()));
        for t in 0..=10 {
            set(&f.store, "trading_kill_switch_active", T0 + t * S, 1.0);
            set(&f.store, "trading_pnl_daily", T0 + t * S, -500.0);
            f.rules.evaluate(0, T0 + t * S);
        }
        assert_eq!(f.rules.totals(), (1, 1), "one pending, one firing");
        // Dropped without any shutdown, as after kill -9.
    }
    let f = fixture(dir.path(), Arc::new(Store::default()));
    assert_eq!(f.rules.restore(T0 + 20 * S).unwrap(), 2);
    assert_eq!(f.rules.totals(), (1, 1));
    let before = log_lines(dir.path()).len();
    // The data comes back; the loss has now lasted 30 s since it became active at T0.
    for t in 20..=30 {
        set(&f.store, "trading_kill_switch_active", T0 + t * S, 1.0);
        set(&f.store, "trading_pnl_daily", T0 + t * S, -500.0);
        f.rules.evaluate(0, T0 + t * S);
    }
    let lines = log_lines(dir.path());
    let new: Vec<&serde_json::Value> = lines[before..].iter().collect();
    assert_eq!(new.len(), 1, "only the pending alert moves: {new:?}");
    assert_eq!(new[0]["alertname"], "TradingLossSlow");
    assert_eq!(new[0]["to"], "firing");
    assert_eq!(
        new[0]["ts"], "2026-11-23T00:00:30.000Z",
        "its timer kept running"
    );
    assert_eq!(new[0]["active_at"], "2026-11-23T00:00:00.000Z");
    let sent = f.sink.take();
    let names: Vec<&str> = sent
        .iter()
        .map(|a| a.labels["alertname"].as_str())
        .collect();
    assert_eq!(
        names,
        ["TradingLossSlow"],
        "the restored firing alert is not sent again at once"
    );
    let group = f.rules.groups()[0].snapshot();
    let kill = group.state.alerts[0].values().next().unwrap();
    assert_eq!(kill.alert.active_at, T0, "activeAt survives the restart");
}

#[test]
fn pending_alerts_past_the_outage_tolerance_start_over() {
    let dir = tempfile::tempdir().unwrap();
    {
        let f = fixture(dir.path(), Arc::new(Store::default()));
        set(&f.store, "trading_pnl_daily", T0, -500.0);
        f.rules.evaluate(0, T0);
        assert_eq!(f.rules.totals(), (1, 0));
    }
    let f = fixture(dir.path(), Arc::new(Store::default()));
    assert_eq!(f.rules.restore(T0 + 2 * 3600 * S).unwrap(), 0);
    assert_eq!(f.rules.totals(), (0, 0));
}

#[test]
fn a_rule_whose_query_times_out_fails_alone_and_the_layer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::default());
    let loaded = RuleFile::parse(RULES, "trading.rules.yml").unwrap();
    let groups = compile(&loaded, "trading.rules.yml", Duration::from_secs(1));
    // A timeout no query can meet (`sidecar.query_timeout` bounds every rule's query).
    let engine = Engine::default().with_timeout(Duration::from_nanos(1));
    let rules = Rules::new(
        groups,
        engine,
        store.clone(),
        Settings::default(),
        Some(AlertDb::open(&dir.path().join("state.db")).unwrap()),
        None,
        None,
        None,
    );
    set(&store, "trading_kill_switch_active", T0, 1.0);
    for t in 0..3 {
        let outcome = rules.evaluate(0, T0 + t * S);
        assert_eq!(
            outcome.evaluation.errors.len(),
            2,
            "both rules fail, in turn"
        );
    }
    let run = rules.groups()[0].snapshot();
    for status in &run.rules {
        assert_eq!(status.health.as_str(), "err");
        assert_eq!(
            status.last_error.as_deref(),
            Some("query timed out in expression evaluation")
        );
    }
    assert!(
        run.state.alerts.iter().all(|a| a.is_empty()),
        "no alert from a failed query"
    );
    // The same rules with the default timeout evaluate.
    let loaded = RuleFile::parse(RULES, "trading.rules.yml").unwrap();
    let groups = compile(&loaded, "trading.rules.yml", Duration::from_secs(1));
    let rules = Rules::new(
        groups,
        Engine::default().with_timeout(Duration::from_secs(120)),
        store.clone(),
        Settings::default(),
        None,
        None,
        None,
        None,
    );
    let outcome = rules.evaluate(0, T0 + 3 * S);
    assert!(
        outcome.evaluation.errors.is_empty(),
        "{:?}",
        outcome.evaluation.errors
    );
    assert_eq!(rules.groups()[0].snapshot().rules[0].health.as_str(), "ok");
}
