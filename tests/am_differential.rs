//! Differential tests against a real Alertmanager 0.25 (Debian's `prometheus-alertmanager`):
//! the same `alertmanager.yml` runs in Alertmanager and in a `tradewatch sidecar`, both with
//! webhook receivers pointed at one HTTP receiver in the test; the same alerts (and silences)
//! are posted to both on a timeline, and what each delivers is compared field by field per
//! receiver and group key: which receivers, `groupKey`, `groupLabels`, the alerts and their
//! order, their status, `commonLabels`, `truncatedAlerts`, and the sequence of notifications.
//!
//! Timers are short (`group_wait: 1s`, `group_interval: 2s`); alerts change only half-way
//! between two flushes, so a few hundred milliseconds of jitter between the two processes
//! cannot move a change to another flush, and each notification must come within 0.8 s of
//! Alertmanager's. A scenario also checks that Alertmanager delivered
//! what it is about, so that two silent notifiers do not pass.
//!
//! Also: `/api/v2/status` after `POST /-/reload` on both, read through the real `amtool
//! config routes`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use support::{Exporter, Needs, Process};

/// The Alertmanager server (Debian's `prometheus-alertmanager`).
const ALERTMANAGER: Needs = Needs {
    what: "prometheus-alertmanager",
    probe: &["prometheus-alertmanager", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

/// `amtool`, from the same package.
const AMTOOL: Needs = Needs {
    what: "amtool",
    probe: &["amtool", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

/// The external URL both notifiers put in their payloads.
const EXTERNAL_URL: &str = "http://trading-box:9470";

/// Which notifier sent a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Alertmanager,
    Tradewatch,
}

/// One webhook request as the receiver got it.
#[derive(Debug, Clone)]
struct Delivery {
    side: Side,
    /// The last path segment: which integration of which receiver.
    path: String,
    /// Seconds since the scenario's start.
    at: f64,
    body: Value,
}

#[derive(Clone)]
struct Hooks {
    got: Arc<Mutex<Vec<Delivery>>>,
    /// The scenario's start, set once both processes are up.
    start: Arc<Mutex<Instant>>,
}

/// Tells the two apart by `User-Agent`: `Alertmanager/0.25.0` or `tradewatch/…`.
async fn hook(
    State(hooks): State<Hooks>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let side = if agent.starts_with("Alertmanager/") {
        Side::Alertmanager
    } else {
        assert!(agent.starts_with("tradewatch/"), "unknown sender {agent:?}");
        Side::Tradewatch
    };
    let body: Value = serde_json::from_slice(&body).expect("a JSON webhook payload");
    hooks.got.lock().unwrap().push(Delivery {
        side,
        path,
        at: hooks.start.lock().unwrap().elapsed().as_secs_f64(),
        body,
    });
    "ok"
}

/// Alertmanager and tradewatch on the same routing file, and the receiver both post to.
struct Pair {
    dir: tempfile::TempDir,
    alertmanager: Process,
    am_url: String,
    tradewatch: Exporter,
    hooks: Hooks,
    client: reqwest::Client,
    /// The wall-clock time of the scenario's start (`Hooks::start`).
    t0: DateTime<Utc>,
}

/// The routing file with `{hook}` replaced by the receiver's base URL.
fn routing_file(template: &str, hook: &str) -> String {
    template.replace("{hook}", hook)
}

/// Starts a real Alertmanager on `config` (a free port; retried when another test took it).
async fn start_alertmanager(config: &Path, storage: &Path) -> (Process, String) {
    for _ in 0..3 {
        let port = support::free_port();
        let mut command = Command::new("prometheus-alertmanager");
        command.args([
            &format!("--config.file={}", config.display()),
            &format!("--storage.path={}", storage.display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=",
            &format!("--web.external-url={EXTERNAL_URL}"),
        ]);
        let mut process = Process::spawn("alertmanager", command);
        let url = format!("http://127.0.0.1:{port}");
        match process
            .wait_ready(&format!("{url}/-/ready"), support::READY_DEADLINE)
            .await
        {
            Ok(()) => return (process, url),
            Err(_) if process.log().contains("address already in use") => continue,
            Err(status) => panic!("alertmanager exited ({status})\n{}", process.log()),
        }
    }
    panic!("no free port for alertmanager");
}

impl Pair {
    async fn start(routing: &str) -> Pair {
        let hooks = Hooks {
            got: Arc::new(Mutex::new(Vec::new())),
            start: Arc::new(Mutex::new(Instant::now())),
        };
        let app = Router::new()
            .route("/hook/{path}", post(hook))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("alertmanager.yml"), routing_file(routing, &base)).unwrap();
        std::fs::write(
            d.join("tradewatch.yaml"),
            format!(
                "sidecar:\n  rule_files: []\nnotifier:\n  config_file: alertmanager.yml\n  external_url: {EXTERNAL_URL}\n"
            ),
        )
        .unwrap();
        let (alertmanager, am_url) =
            start_alertmanager(&d.join("alertmanager.yml"), &d.join("am-data")).await;
        let config = d.join("tradewatch.yaml");
        let tradewatch = Exporter::start_role(
            "sidecar",
            &d.join("tw-data"),
            &["--config", config.to_str().unwrap()],
        )
        .await;
        let mut pair = Pair {
            dir,
            alertmanager,
            am_url,
            tradewatch,
            hooks,
            client: support::client(),
            t0: Utc::now(),
        };
        pair.restart_clock();
        pair
    }

    /// Starts the scenario's clock now (after both processes are up).
    fn restart_clock(&mut self) {
        *self.hooks.start.lock().unwrap() = Instant::now();
        self.t0 = Utc::now();
        self.hooks.got.lock().unwrap().clear();
    }

    /// The wall-clock time `secs` after the scenario's start, as RFC 3339.
    fn ts(&self, secs: f64) -> String {
        let t = self.t0 + chrono::Duration::milliseconds((secs * 1000.0) as i64);
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    fn am(&self, path: &str) -> String {
        format!("{}{path}", self.am_url)
    }

    fn tw(&self, path: &str) -> String {
        self.tradewatch.url(path)
    }

    /// Sleeps until `secs` after the scenario's start.
    async fn until(&self, secs: f64) {
        let target = *self.hooks.start.lock().unwrap() + Duration::from_secs_f64(secs);
        let now = Instant::now();
        assert!(
            target + Duration::from_millis(600) >= now,
            "the scenario fell behind its timeline at {secs}s"
        );
        tokio::time::sleep(target.saturating_duration_since(now)).await;
    }

    /// Posts the same body to `path` on both, at once; gives both replies' bodies.
    async fn post_both(&self, path: &str, body: &Value) -> (Value, Value) {
        let send = |url: String| {
            let client = self.client.clone();
            let body = body.clone();
            async move {
                let r = client.post(&url).json(&body).send().await.unwrap();
                let status = r.status();
                let text = r.text().await.unwrap();
                assert!(status.is_success(), "POST {url}: {status} {text}");
                serde_json::from_str(&text).unwrap_or(Value::Null)
            }
        };
        tokio::join!(send(self.am(path)), send(self.tw(path)))
    }

    /// `POST /api/v2/alerts` to both.
    async fn alerts(&self, alerts: Vec<Value>) {
        self.post_both("/api/v2/alerts", &Value::Array(alerts))
            .await;
    }

    /// Creates the same silence on both; gives (Alertmanager's id, tradewatch's id).
    async fn silence(&self, matchers: Value) -> (String, String) {
        let body = json!({
            "matchers": matchers,
            "startsAt": self.ts(0.0),
            "endsAt": self.ts(3600.0),
            "createdBy": "differential test",
            "comment": "the same on both",
        });
        let (am, tw) = self.post_both("/api/v2/silences", &body).await;
        let id = |v: &Value| v["silenceID"].as_str().unwrap().to_owned();
        (id(&am), id(&tw))
    }

    /// Expires a silence on both.
    async fn expire(&self, ids: &(String, String)) {
        for url in [
            self.am(&format!("/api/v2/silence/{}", ids.0)),
            self.tw(&format!("/api/v2/silence/{}", ids.1)),
        ] {
            let r = self.client.delete(&url).send().await.unwrap();
            assert!(r.status().is_success(), "DELETE {url}: {}", r.status());
        }
    }

    /// An alert that started `start` seconds into the scenario, firing (no end: the
    /// notifiers apply `resolve_timeout`) or ended at `end`.
    fn alert(&self, labels: &[(&str, &str)], start: f64, end: Option<f64>) -> Value {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let mut a = json!({
            "labels": labels,
            "annotations": {"summary": format!("{} is in trouble", labels.get("alertname").unwrap_or(&"?"))},
            "startsAt": self.ts(start),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        });
        if let Some(end) = end {
            a["endsAt"] = json!(self.ts(end));
        }
        a
    }

    /// `GET /api/v2/alerts/groups` on both: the same groups with the same alerts.
    async fn compare_groups(&self) {
        let get = |url: String| {
            let client = self.client.clone();
            async move {
                let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
                groups_view(&v)
            }
        };
        let (am, tw) = tokio::join!(
            get(self.am("/api/v2/alerts/groups")),
            get(self.tw("/api/v2/alerts/groups"))
        );
        assert!(!am.is_empty());
        assert_eq!(
            serde_json::to_string_pretty(&am).unwrap(),
            serde_json::to_string_pretty(&tw).unwrap(),
            "GET /api/v2/alerts/groups"
        );
    }

    /// Every webhook either side sent so far, per side, in arrival order.
    fn deliveries(&self) -> Vec<Delivery> {
        self.hooks.got.lock().unwrap().clone()
    }

    /// Compares what both delivered, per integration (path) and group key: the same
    /// notifications in the same order, field by field, each within [`JITTER`] of the other's
    /// time. At least `expected` notifications from Alertmanager must be there, so that the
    /// scenario does what it says.
    fn compare(&self, expected: usize) {
        let all = self.deliveries();
        let per_key = |side: Side| -> BTreeMap<(String, String), Vec<Value>> {
            let mut out: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
            for d in all.iter().filter(|d| d.side == side) {
                let key = d.body["groupKey"].as_str().unwrap_or("").to_owned();
                out.entry((d.path.clone(), key))
                    .or_default()
                    .push(without_received_ends(&d.body));
            }
            out
        };
        let times = |side: Side| -> BTreeMap<(String, String), Vec<f64>> {
            let mut out: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
            for d in all.iter().filter(|d| d.side == side) {
                let key = d.body["groupKey"].as_str().unwrap_or("").to_owned();
                out.entry((d.path.clone(), key)).or_default().push(d.at);
            }
            out
        };
        let am = per_key(Side::Alertmanager);
        let tw = per_key(Side::Tradewatch);
        let count: usize = am.values().map(Vec::len).sum();
        let timeline = || {
            all.iter()
                .map(|d| {
                    format!(
                        "{:>6.2}s {:?} /{} {}",
                        d.at,
                        d.side,
                        d.path,
                        summary(&d.body)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        if am != tw {
            panic!(
                "tradewatch's notifications differ from Alertmanager's\n--- timeline ---\n{}\n--- alertmanager ---\n{}\n--- tradewatch ---\n{}\n--- tradewatch log ---\n{}",
                timeline(),
                serde_json::to_string_pretty(&keyed(&am)).unwrap(),
                serde_json::to_string_pretty(&keyed(&tw)).unwrap(),
                self.tradewatch.process.log()
            );
        }
        // Ends set from resolve_timeout: the same up to when each received the alert.
        let received_ends = |side: Side| -> Vec<DateTime<Utc>> {
            let mut bodies: Vec<&Delivery> = all.iter().filter(|d| d.side == side).collect();
            bodies.sort_by_key(|d| (d.path.clone(), d.body["groupKey"].to_string()));
            bodies
                .iter()
                .flat_map(|d| received_end_times(&d.body))
                .collect()
        };
        for (a, t) in received_ends(Side::Alertmanager)
            .iter()
            .zip(received_ends(Side::Tradewatch))
        {
            let apart = (*a - t).num_milliseconds().abs() as f64 / 1000.0;
            assert!(apart <= JITTER, "resolve_timeout ends {a} and {t}");
        }
        let (am_times, tw_times) = (times(Side::Alertmanager), times(Side::Tradewatch));
        for (key, theirs) in &am_times {
            for (a, t) in theirs.iter().zip(&tw_times[key]) {
                assert!(
                    (a - t).abs() <= JITTER,
                    "/{} {}: Alertmanager notified at {a:.2}s, tradewatch at {t:.2}s\n{}",
                    key.0,
                    key.1,
                    timeline()
                );
            }
        }
        assert!(
            count >= expected,
            "Alertmanager sent {count} notifications, the scenario expects at least {expected}\n{}\n--- alertmanager ---\n{}",
            timeline(),
            self.alertmanager.log()
        );
    }
}

/// Whether an RFC 3339 time carries more than milliseconds: set by the notifier from the time
/// it received the alert (`resolve_timeout`), not posted by the test.
fn is_received_time(t: &str) -> bool {
    t.trim_end_matches('Z')
        .split_once('.')
        .is_some_and(|(_, fraction)| fraction.len() > 3)
}

/// `body` with each `endsAt` the notifier derived from `resolve_timeout` replaced by a marker
/// (compared within [`JITTER`] by [`received_end_times`]).
fn without_received_ends(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(alerts) = body["alerts"].as_array_mut() {
        for a in alerts {
            if a["endsAt"].as_str().is_some_and(is_received_time) {
                a["endsAt"] = json!("<received + resolve_timeout>");
            }
        }
    }
    body
}

fn received_end_times(body: &Value) -> Vec<DateTime<Utc>> {
    body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["endsAt"].as_str())
        .filter(|t| is_received_time(t))
        .map(|t| t.parse().unwrap())
        .collect()
}

/// `GET /api/v2/alerts/groups` reduced to what both must agree on: per group its receiver,
/// labels, and alerts (fingerprint, state, silenced and inhibited) in the order given.
fn groups_view(v: &Value) -> Vec<Value> {
    let mut groups: Vec<Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            json!({
                "receiver": g["receiver"]["name"],
                "labels": g["labels"],
                "alerts": g["alerts"].as_array().unwrap().iter().map(|a| json!({
                    "fingerprint": a["fingerprint"],
                    "labels": a["labels"],
                    "state": a["status"]["state"],
                    "silencedBy": a["status"]["silencedBy"].as_array().map_or(0, Vec::len),
                    "inhibitedBy": a["status"]["inhibitedBy"].as_array().map_or(0, Vec::len),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    groups.sort_by_key(|g| g.to_string());
    groups
}

fn keyed(m: &BTreeMap<(String, String), Vec<Value>>) -> Value {
    Value::Object(
        m.iter()
            .map(|((p, k), v)| (format!("/{p} {k}"), Value::Array(v.clone())))
            .collect(),
    )
}

/// One line per notification: status, key, alerts with their status.
fn summary(body: &Value) -> String {
    let alerts: Vec<String> = body["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    let labels: Vec<String> = a["labels"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect();
                    format!(
                        "{}[{}]",
                        a["status"].as_str().unwrap_or(""),
                        labels.join(",")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} {} truncated={} {}",
        body["status"].as_str().unwrap_or(""),
        body["groupKey"].as_str().unwrap_or(""),
        body["truncatedAlerts"],
        alerts.join(" ")
    )
}

/// Whether the scenario can run here (Alertmanager installed, or a failure under CI).
fn available(test: &str) -> bool {
    support::available(test, &[&ALERTMANAGER])
}

/// How far apart the two may notify the same thing, in seconds: less than the 1 s between a
/// change and the next flush, so a notification sent at another tick (or at once instead of at
/// a tick) is caught, with room for a loaded machine.
const JITTER: f64 = 0.8;

const TIMERS: &str = "  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n";

// ---------------------------------------------------------------------------------------------
// Scenarios. Flushes fall at about 1, 3, 5, 7 s; changes are posted at 2, 4, 6 s.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_by_labels_and_alert_order() {
    if !available("grouping_by_labels_and_alert_order") {
        return;
    }
    let routing = format!(
        "route:\n  receiver: desk\n  group_by: [alertname, venue]\n{TIMERS}receivers:\n  - name: desk\n    webhook_configs: [{{url: '{{hook}}/desk'}}]\n"
    );
    let p = Pair::start(&routing).await;
    p.alerts(vec![
        p.alert(
            &[
                ("alertname", "VenueDown"),
                ("venue", "xnas"),
                ("job", "gw"),
                ("instance", "2"),
            ],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "VenueDown"),
                ("venue", "xnas"),
                ("job", "gw"),
                ("instance", "1"),
            ],
            0.0,
            None,
        ),
        p.alert(&[("alertname", "VenueDown"), ("venue", "xnas")], 0.0, None),
        p.alert(
            &[("alertname", "VenueDown"), ("venue", "xnas"), ("zone", "a")],
            0.0,
            None,
        ),
        p.alert(
            &[("alertname", "VenueDown"), ("venue", "arca"), ("job", "gw")],
            0.0,
            None,
        ),
        p.alert(
            &[("alertname", "Latency"), ("venue", "xnas"), ("zone", "b")],
            0.0,
            None,
        ),
        // No `venue`: grouped by `alertname` alone.
        p.alert(&[("alertname", "Latency"), ("desk", "fx")], 0.0, None),
    ])
    .await;
    p.until(2.0).await;
    // A new alert joins a flushed group (notified at the next tick); an unchanged one is
    // posted again (no notification of its own).
    p.alerts(vec![
        p.alert(
            &[("alertname", "VenueDown"), ("venue", "xnas"), ("job", "aa")],
            2.0,
            None,
        ),
        p.alert(
            &[("alertname", "VenueDown"), ("venue", "arca"), ("job", "gw")],
            0.0,
            None,
        ),
    ])
    .await;
    p.until(4.5).await;
    p.compare(5);
    p.compare_groups().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_tree_continue_and_group_by_all() {
    if !available("route_tree_continue_and_group_by_all") {
        return;
    }
    let routing = format!(
        r#"route:
  receiver: default
  group_by: [alertname]
{TIMERS}  routes:
    - match: {{team: risk}}
      receiver: risk
      group_by: ['...']
      continue: true
    - matchers: ['severity=~"critical|page"']
      receiver: pager
      group_by: [severity]
      routes:
        - match_re: {{desk: 'fx.*'}}
          receiver: fx-pager
    - matchers: ['team!="risk"', 'desk="eq"']
      receiver: eq
      group_by: []
receivers:
  - name: default
    webhook_configs: [{{url: '{{hook}}/default'}}]
  - name: risk
    webhook_configs: [{{url: '{{hook}}/risk'}}]
  - name: pager
    webhook_configs: [{{url: '{{hook}}/pager'}}]
  - name: fx-pager
    webhook_configs: [{{url: '{{hook}}/fx-pager'}}]
  - name: eq
    webhook_configs: [{{url: '{{hook}}/eq'}}]
"#
    );
    let p = Pair::start(&routing).await;
    p.alerts(vec![
        p.alert(
            &[
                ("alertname", "LossLimit"),
                ("team", "risk"),
                ("severity", "critical"),
                ("desk", "fx-spot"),
            ],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "LossLimit"),
                ("team", "risk"),
                ("severity", "critical"),
                ("desk", "eq"),
            ],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "Exposure"),
                ("team", "risk"),
                ("severity", "info"),
            ],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "FeedStale"),
                ("severity", "page"),
                ("desk", "eq"),
            ],
            0.0,
            None,
        ),
        p.alert(&[("alertname", "OrderReject"), ("desk", "eq")], 0.0, None),
        p.alert(&[("alertname", "FillRatio"), ("desk", "eq")], 0.0, None),
        p.alert(&[("alertname", "Heartbeat")], 0.0, None),
    ])
    .await;
    p.until(2.0).await;
    p.alerts(vec![p.alert(
        &[
            ("alertname", "OrderReject"),
            ("desk", "eq"),
            ("venue", "xnas"),
        ],
        2.0,
        None,
    )])
    .await;
    p.until(4.5).await;
    p.compare(7);
    p.compare_groups().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inhibition_holds_while_the_source_fires() {
    if !available("inhibition_holds_while_the_source_fires") {
        return;
    }
    let routing = format!(
        r#"route:
  receiver: desk
  group_by: [alertname, venue]
{TIMERS}inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [venue]
  - source_matchers: ['alertname="MarketClosed"']
    target_matchers: ['alertname=~"Latency|MarketClosed"']
    equal: [venue]
receivers:
  - name: desk
    webhook_configs: [{{url: '{{hook}}/desk'}}]
"#
    );
    let p = Pair::start(&routing).await;
    p.alerts(vec![
        p.alert(
            &[
                ("alertname", "VenueDown"),
                ("severity", "critical"),
                ("venue", "xnas"),
            ],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "Latency"),
                ("severity", "warning"),
                ("venue", "xnas"),
            ],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "Latency"),
                ("severity", "warning"),
                ("venue", "arca"),
            ],
            0.0,
            None,
        ),
        // The same group as the critical one: inhibited within its own group.
        p.alert(
            &[
                ("alertname", "VenueDown"),
                ("severity", "warning"),
                ("venue", "xnas"),
                ("zone", "b"),
            ],
            0.0,
            None,
        ),
        // Source and target at once: it does not inhibit itself, but inhibits another.
        p.alert(
            &[("alertname", "MarketClosed"), ("venue", "lse")],
            0.0,
            None,
        ),
        p.alert(
            &[
                ("alertname", "Latency"),
                ("severity", "warning"),
                ("venue", "lse"),
            ],
            0.0,
            None,
        ),
    ])
    .await;
    p.until(2.0).await;
    // The source resolves: the targets notify at their next tick.
    p.alerts(vec![p.alert(
        &[
            ("alertname", "VenueDown"),
            ("severity", "critical"),
            ("venue", "xnas"),
        ],
        0.0,
        Some(2.0),
    )])
    .await;
    p.until(4.5).await;
    p.compare(5);
    p.compare_groups().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mute_until_expired() {
    if !available("silences_mute_until_expired") {
        return;
    }
    let routing = format!(
        "route:\n  receiver: desk\n  group_by: [alertname]\n{TIMERS}receivers:\n  - name: desk\n    webhook_configs: [{{url: '{{hook}}/desk'}}]\n"
    );
    let p = Pair::start(&routing).await;
    let silence = p
        .silence(json!([
            {"name": "alertname", "value": "Latency", "isRegex": false, "isEqual": true},
            {"name": "venue", "value": "x.*", "isRegex": true, "isEqual": true},
            {"name": "desk", "value": "fx", "isRegex": false, "isEqual": false},
        ]))
        .await;
    let whole = p
        .silence(json!([
            {"name": "alertname", "value": "Quiet", "isRegex": false, "isEqual": true},
        ]))
        .await;
    p.alerts(vec![
        p.alert(
            &[("alertname", "Latency"), ("venue", "xnas"), ("desk", "eq")],
            0.0,
            None,
        ),
        p.alert(
            &[("alertname", "Latency"), ("venue", "xnas"), ("desk", "fx")],
            0.0,
            None,
        ),
        p.alert(
            &[("alertname", "Latency"), ("venue", "arca"), ("desk", "eq")],
            0.0,
            None,
        ),
        p.alert(&[("alertname", "Quiet"), ("venue", "xnas")], 0.0, None),
    ])
    .await;
    p.until(1.5).await;
    p.compare_groups().await;
    p.until(2.0).await;
    p.expire(&silence).await;
    p.until(4.0).await;
    // Resolved while silenced: nothing about it ever goes out.
    p.alerts(vec![p.alert(
        &[("alertname", "Quiet"), ("venue", "xnas")],
        0.0,
        Some(4.0),
    )])
    .await;
    p.until(6.5).await;
    p.expire(&whole).await;
    p.compare(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_send_resolved_and_max_alerts() {
    if !available("resolution_send_resolved_and_max_alerts") {
        return;
    }
    let routing = format!(
        r#"route:
  receiver: desk
  group_by: [alertname]
{TIMERS}  routes:
    - matchers: ['alertname=~".+"']
      receiver: desk
      continue: true
    - matchers: [alertname="Fill"]
      receiver: limited
receivers:
  - name: desk
    webhook_configs:
      - url: '{{hook}}/desk-resolved'
        max_alerts: 2
      - url: '{{hook}}/desk-firing'
        send_resolved: false
  - name: limited
    webhook_configs:
      - url: '{{hook}}/limited'
        max_alerts: 3
        send_resolved: true
"#
    );
    let p = Pair::start(&routing).await;
    let fill = |i: &str, end: Option<f64>| {
        p.alert(
            &[("alertname", "Fill"), ("strategy", "momentum"), ("leg", i)],
            0.0,
            end,
        )
    };
    let limit = |end: Option<f64>| p.alert(&[("alertname", "Limit"), ("desk", "fx")], 0.0, end);
    p.alerts(vec![
        fill("1", None),
        fill("2", None),
        fill("3", None),
        fill("4", None),
        fill("5", None),
        limit(None),
    ])
    .await;
    p.until(2.0).await;
    // Two of five resolve: resolved alerts go to the send_resolved integrations only.
    p.alerts(vec![fill("1", Some(2.0)), fill("2", Some(2.0))])
        .await;
    p.until(4.0).await;
    // The rest resolve, and so does the lone alert of its own group.
    p.alerts(vec![
        fill("3", Some(4.0)),
        fill("4", Some(4.0)),
        fill("5", Some(4.0)),
        limit(Some(4.0)),
    ])
    .await;
    p.until(6.0).await;
    // Firing again after its group was resolved and notified: the emptied group keeps its
    // ticks, so it is notified at the next one (7 s), not at once.
    p.alerts(vec![fill("1", None)]).await;
    p.until(8.5).await;
    p.compare(13);
}

// ---------------------------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------------------------

/// `amtool config routes ARGS` against `url`: the routing tree as the server's
/// `/api/v2/status` shows it.
fn amtool_routes(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args(["config", "routes"])
        .args(args)
        .env("HOME", dir)
        .output()
        .expect("amtool runs");
    assert!(
        out.status.success(),
        "amtool config routes {args:?} against {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Pair {
    /// `amtool config routes ARGS` against both: (Alertmanager's, tradewatch's).
    fn routes(&self, args: &[&str]) -> (String, String) {
        (
            amtool_routes(self.dir.path(), &self.am_url, args),
            amtool_routes(self.dir.path(), &self.tw(""), args),
        )
    }

    /// Rewrites the routing file and `POST /-/reload`s both.
    async fn reload(&self, routing: &str, hook: &str) {
        std::fs::write(
            self.dir.path().join("alertmanager.yml"),
            routing_file(routing, hook),
        )
        .unwrap();
        self.post_both("/-/reload", &Value::Null).await;
    }

    /// The receiver's base URL, as the routing file has it.
    fn hook_base(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("alertmanager.yml")).unwrap();
        let start = text.find("http://").unwrap();
        let end = start + text[start..].find("/hook").unwrap();
        format!("{}/hook", &text[start..end])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_a_reload() {
    if !support::available("status_follows_a_reload", &[&ALERTMANAGER, &AMTOOL]) {
        return;
    }
    let before = format!(
        "route:\n  receiver: desk\n  group_by: [alertname]\n{TIMERS}receivers:\n  - name: desk\n    webhook_configs: [{{url: '{{hook}}/desk'}}]\n"
    );
    let after = format!(
        r#"route:
  receiver: desk
  group_by: [alertname, venue]
{TIMERS}  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['venue=~"x.*"']
      receiver: xnas-desk
receivers:
  - name: desk
    webhook_configs: [{{url: '{{hook}}/desk'}}]
  - name: pager
    webhook_configs: [{{url: '{{hook}}/pager'}}]
  - name: xnas-desk
    webhook_configs: [{{url: '{{hook}}/xnas-desk'}}]
"#
    );
    let mut p = Pair::start(&before).await;
    let (am, tw) = p.routes(&["show"]);
    assert_eq!(am, tw);
    assert!(!am.contains("pager"), "{am}");

    let hook = p.hook_base();
    p.reload(&after, &hook).await;
    let (am, tw) = p.routes(&["show"]);
    assert!(am.contains("receiver: pager"), "{am}");
    assert_eq!(
        am, tw,
        "the routing tree /api/v2/status shows after a reload"
    );
    let labels = ["alertname=VenueDown", "severity=critical", "venue=xnas"];
    let (am, tw) = p.routes(&[&["test"][..], &labels[..]].concat());
    assert_eq!(am.trim(), "pager,xnas-desk");
    assert_eq!(am, tw);
    let receivers = |url: String| {
        let client = p.client.clone();
        async move {
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            let mut names: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    let am_receivers = receivers(p.am("/api/v2/receivers")).await;
    assert_eq!(am_receivers, ["desk", "pager", "xnas-desk"]);
    assert_eq!(am_receivers, receivers(p.tw("/api/v2/receivers")).await);

    // And the new tree is the one that routes.
    p.restart_clock();
    p.alerts(vec![
        p.alert(
            &[
                ("alertname", "VenueDown"),
                ("severity", "critical"),
                ("venue", "xnas"),
            ],
            0.0,
            None,
        ),
        p.alert(&[("alertname", "Latency"), ("venue", "arca")], 0.0, None),
    ])
    .await;
    p.until(2.5).await;
    p.compare(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_timeout_repeat_interval_and_old_alerts() {
    if !available("resolve_timeout_repeat_interval_and_old_alerts") {
        return;
    }
    let routing = "global:\n  resolve_timeout: 4s\nroute:\n  receiver: desk\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 3s\nreceivers:\n  - name: desk\n    webhook_configs: [{url: '{hook}/desk'}]\n";
    let p = Pair::start(routing).await;
    p.alerts(vec![
        // No end: resolved by resolve_timeout (4 s) unless posted again.
        p.alert(&[("alertname", "Stale"), ("feed", "a")], 0.0, None),
        p.alert(&[("alertname", "Stale"), ("feed", "b")], 0.0, Some(100.0)),
        // Posted already resolved: never notified.
        p.alert(&[("alertname", "Gone")], -10.0, Some(-5.0)),
    ])
    .await;
    p.until(2.0).await;
    // Started a minute ago, in a new group: flushed at once, not after group_wait.
    p.alerts(vec![p.alert(&[("alertname", "Old")], -60.0, None)])
        .await;
    p.until(9.5).await;
    p.compare(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_label_values_and_flapping() {
    if !available("quoted_label_values_and_flapping") {
        return;
    }
    let routing = format!(
        r#"route:
  receiver: desk
  group_by: [alertname, msg]
{TIMERS}  routes:
    - matchers: ['msg=~"(?s)say \"hi\".*"', 'path!~"^/tmp/.+"']
      receiver: quoted
      group_by: ['...']
    - match: {{unit: "€/h é"}}
      receiver: unicode
receivers:
  - name: desk
    webhook_configs: [{{url: '{{hook}}/desk'}}]
  - name: quoted
    webhook_configs: [{{url: '{{hook}}/quoted'}}]
  - name: unicode
    webhook_configs: [{{url: '{{hook}}/unicode'}}]
"#
    );
    let p = Pair::start(&routing).await;
    p.alerts(vec![
        p.alert(
            &[
                ("alertname", "Odd"),
                ("msg", "say \"hi\"\nand\tgo"),
                ("path", "C:\\temp\\x"),
            ],
            0.0,
            None,
        ),
        p.alert(&[("alertname", "Odd"), ("unit", "€/h é")], 0.0, None),
        p.alert(&[("alertname", "Flap"), ("msg", "{a=\"b\"}")], 0.0, None),
        p.alert(&[("alertname", "Relapse")], 0.0, None),
    ])
    .await;
    p.until(2.0).await;
    // Flap resolves and fires again between two ticks: nothing new to say at 3 s.
    p.alerts(vec![
        p.alert(
            &[("alertname", "Flap"), ("msg", "{a=\"b\"}")],
            0.0,
            Some(2.0),
        ),
        p.alert(&[("alertname", "Relapse")], 0.0, Some(2.0)),
    ])
    .await;
    p.until(2.4).await;
    p.alerts(vec![p.alert(
        &[("alertname", "Flap"), ("msg", "{a=\"b\"}")],
        2.4,
        None,
    )])
    .await;
    p.until(4.0).await;
    // Relapse, resolved and notified at 3 s, fires again with a start inside its resolved
    // episode: the store still holds the resolved alert and merges (the earlier start wins).
    p.alerts(vec![p.alert(&[("alertname", "Relapse")], 1.0, None)])
        .await;
    p.until(5.5).await;
    p.compare(6);
}
