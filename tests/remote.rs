//! The sidecar's remote mode against a real Prometheus (Debian's 2.42, with its remote-write
//! receiver on) that scrapes a real `tradewatch exporter`: a kill switch posted to the exporter
//! fires the alert in the sidecar, whose rules Prometheus evaluates (the template `query`
//! function too); recording-rule results and `ALERTS` come back into Prometheus by remote
//! write; Prometheus's error JSON becomes a rule's error; with Prometheus down the rules turn
//! `err`; a rule file with recording rules and no `write_url` is refused at start.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Exporter, PROMETHEUS, Process, available};

const RULES: &str = r#"
groups:
  - name: risk
    interval: 1s
    rules:
      - record: engine:trading_kill_switch_active:max
        expr: max by (engine) (trading_kill_switch_active)
      - alert: TradingKillSwitchActive
        expr: trading_kill_switch_active == 1
        labels:
          severity: critical
        annotations:
          summary: 'Kill switch engaged on {{ $labels.engine }}'
          targets: '{{ with query "count(up)" }}{{ . | first | value }}{{ end }} target(s) up'
      - alert: AmbiguousJoin
        expr: '{__name__=~"up|trading_kill_switch_active"} * on() vector(1)'
"#;

/// A Prometheus server on a free port with the remote-write receiver, scraping `target` every
/// second.
struct Prometheus {
    process: Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: exporter\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = support::free_port();
            let mut command = Command::new("prometheus");
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver");
            let mut process = Process::spawn("prometheus", command);
            let url = format!("http://127.0.0.1:{port}");
            match process
                .wait_ready(&format!("{url}/-/ready"), support::READY_DEADLINE)
                .await
            {
                Ok(()) => {
                    return Prometheus {
                        process,
                        url,
                        _dir: dir,
                    };
                }
                Err(_) if attempt < 3 && process.log().contains("address already in use") => {}
                Err(status) => panic!(
                    "prometheus exited before it was ready ({status})\n--- log ---\n{}",
                    process.log()
                ),
            }
        }
    }

    /// The instant vector of `query`: (labels, value) pairs.
    async fn query(&self, query: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", query)])
                .unwrap();
        let body: Value = support::client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{query}: {body}");
        body["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {body}"))
            .iter()
            .map(|r| {
                let labels = serde_json::from_value(r["metric"].clone()).unwrap();
                let value = r["value"][1].as_str().unwrap();
                (labels, support::parse_value(value).unwrap())
            })
            .collect()
    }

    /// Polls `query` until it gives at least one sample or `deadline` passes.
    async fn eventually(
        &self,
        query: &str,
        deadline: Duration,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let started = Instant::now();
        loop {
            let result = self.query(query).await;
            if !result.is_empty() || started.elapsed() > deadline {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Writes the rule file and a sidecar config whose `sidecar.remote` is `remote`.
fn write_config(dir: &Path, rules: &str, remote: &str) -> String {
    let rule_file = dir.join("risk.rules.yml");
    std::fs::write(&rule_file, rules).unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  evaluation_interval: 1s\n  rule_files: ['{}']\n  remote: {remote}\n",
            rule_file.display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

async fn get_json(process: &Exporter, path: &str) -> Value {
    let r = process
        .client()
        .get(process.url(path))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Polls `/api/v1/alerts` until an alert named `name` fires or `deadline` passes.
async fn firing(process: &Exporter, name: &str, deadline: Duration) -> Option<Value> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        let body = get_json(process, "/api/v1/alerts").await;
        if let Some(a) = body["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
        {
            return Some(a.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The `/api/v1/rules` entry of the rule named `name`.
async fn rule(process: &Exporter, name: &str) -> Value {
    let body = get_json(process, "/api/v1/rules").await;
    body["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name}: {body}"))
        .clone()
}

/// Polls the rule named `name` until `done` holds for it or `deadline` passes.
async fn rule_until(
    process: &Exporter,
    name: &str,
    deadline: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let r = rule(process, name).await;
        if done(&r) || started.elapsed() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_evaluate_on_prometheus_and_write_back_by_remote_write() {
    let test = "rules_evaluate_on_prometheus_and_write_back_by_remote_write";
    if !available(test, &[&PROMETHEUS]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&dir.path().join("exporter")).await;
    let mut prometheus = Prometheus::start(exporter.addr).await;
    let config = write_config(
        dir.path(),
        RULES,
        &format!(
            "{{url: '{0}', timeout: 5s, write_url: '{0}/api/v1/write'}}",
            prometheus.url
        ),
    );
    let sidecar = Exporter::start_role(
        "sidecar",
        &dir.path().join("sidecar"),
        &["--config", &config],
    )
    .await;

    let posted = exporter
        .post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    assert_eq!(posted.status, 200, "{:?}", posted.body);
    // Prometheus scrapes every second and the group evaluates every second.
    let alert = firing(&sidecar, "TradingKillSwitchActive", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no firing alert\n--- sidecar ---\n{}\n--- prometheus ---\n{}",
                sidecar.process.log(),
                prometheus.process.log()
            )
        });
    assert_eq!(alert["labels"]["engine"], "alpha");
    assert_eq!(alert["labels"]["job"], "exporter", "labels from Prometheus");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(
        alert["annotations"]["summary"],
        "Kill switch engaged on alpha"
    );
    // The template's `query` ran on Prometheus: one scrape target is up.
    assert_eq!(alert["annotations"]["targets"], "1 target(s) up");

    let kill = rule(&sidecar, "TradingKillSwitchActive").await;
    assert_eq!(kill["health"], "ok", "{kill}");
    // Prometheus's own error JSON (422, errorType execution) is the rule's error.
    let join = rule_until(&sidecar, "AmbiguousJoin", Duration::from_secs(10), |r| {
        r["health"] == "err"
    })
    .await;
    let error = join["lastError"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("remote query failed: execution: ")
            && error.contains("many-to-one matching must be explicit"),
        "{join}"
    );

    // What the rules wrote reached Prometheus by remote write.
    let recorded = prometheus
        .eventually(
            "engine:trading_kill_switch_active:max",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(recorded.len(), 1, "{recorded:?}\n{}", sidecar.process.log());
    assert_eq!(recorded[0].0["engine"], "alpha");
    assert_eq!(recorded[0].1, 1.0);
    let alerts = prometheus
        .eventually(
            r#"ALERTS{alertname="TradingKillSwitchActive",alertstate="firing"}"#,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}\n{}", sidecar.process.log());
    assert_eq!(alerts[0].0["engine"], "alpha");
    assert_eq!(alerts[0].0["severity"], "critical");
    assert_eq!(alerts[0].1, 1.0);
    let for_state = prometheus
        .eventually(
            r#"ALERTS_FOR_STATE{alertname="TradingKillSwitchActive"}"#,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(for_state.len(), 1, "{for_state:?}");
    assert!(for_state[0].1 > 1.6e9, "activeAt in seconds: {for_state:?}");
    let sent = self_metric(
        &sidecar,
        "tradewatch_remote_write_samples_total{outcome=\"sent\"}",
    )
    .await;
    assert!(
        sent >= 3.0,
        "recorded, ALERTS and ALERTS_FOR_STATE samples counted: {sent}"
    );

    // Prometheus goes away: every rule's evaluation fails with the transport error.
    let status = prometheus.process.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "prometheus exited with {status}");
    let down = rule_until(
        &sidecar,
        "TradingKillSwitchActive",
        Duration::from_secs(15),
        |r| r["health"] == "err",
    )
    .await;
    let error = down["lastError"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("remote query failed: ")
            && error.contains("/api/v1/query")
            && error.to_lowercase().contains("connection refused"),
        "{down}"
    );
    // A failed evaluation keeps the alert as it was (Prometheus does the same).
    assert!(
        firing(&sidecar, "TradingKillSwitchActive", Duration::from_secs(1))
            .await
            .is_some()
    );
}

/// The value of one self-metric line of the sidecar's `/metrics` (0 when absent).
async fn self_metric(process: &Exporter, series: &str) -> f64 {
    let text = process
        .client()
        .get(process.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn recording_rules_without_write_url_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the refusal comes before any query.
    let config = write_config(
        dir.path(),
        RULES,
        "{url: 'http://127.0.0.1:9', timeout: 1s}",
    );
    let port = support::free_port();
    let mut command = Command::new(support::BIN);
    command
        .arg("sidecar")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("TRADEWATCH_CONFIG")
        .env("NO_COLOR", "1");
    let mut process = Process::spawn("tradewatch sidecar", command);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = process.try_wait() {
            break status;
        }
        assert!(
            started.elapsed() < support::READY_DEADLINE,
            "the sidecar did not refuse its rules\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let log = process.log();
    let rule_file = dir.path().join("risk.rules.yml");
    let expected = format!(
        "{}: group \"risk\": recording rule \"engine:trading_kill_switch_active:max\" needs sidecar.remote.write_url",
        rule_file.display()
    );
    assert!(log.contains(&expected), "{log}");
    // The alerting rules alone are not refused.
    assert_eq!(
        log.matches("needs sidecar.remote.write_url").count(),
        1,
        "{log}"
    );
}

#[tokio::test]
async fn remote_and_scrape_targets_together_are_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tradewatch.yaml");
    std::fs::write(
        &config,
        "sidecar:\n  scrape:\n    targets: [{url: 'http://127.0.0.1:9470/metrics', job: x}]\n  remote: {url: 'http://127.0.0.1:9090'}\n",
    )
    .unwrap();
    let out = Command::new(support::BIN)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{}:4:3: ", config.display()))
            && text.contains("remote and scrape.targets are mutually exclusive"),
        "{text}"
    );
}

/// What a group hands to remote write: every recording result and `ALERTS` sample in the
/// order written, and a staleness marker for a series a rule stopped writing, while the store
/// receives the same samples.
#[test]
fn an_evaluation_keeps_what_it_writes_for_remote_write() {
    use tradewatch::model::labels::Labels;
    use tradewatch::promql::Engine;
    use tradewatch::rules::{GroupState, Local, RuleFile, TemplateEnv, compile};
    use tradewatch::store::Store;

    let rules = "groups:\n  - name: g\n    rules:\n      - record: engine:x:max\n        expr: max by (engine) (x)\n      - alert: XHigh\n        expr: x > 1\n";
    let loaded = RuleFile::parse(rules, "g.yml").unwrap();
    let group = compile(&loaded, "g.yml", Duration::from_secs(1)).remove(0);
    let store = Store::default();
    let engine = Engine::default();
    let env = TemplateEnv::default();
    let mut state = GroupState::default();
    let x = |engine: &str| Labels::from_pairs([("__name__", "x"), ("engine", engine)]);
    let local = Local {
        engine: &engine,
        store: &store,
    };
    store.append(&x("a"), 0, 2.0).unwrap();
    store.append(&x("b"), 0, 1.0).unwrap();
    let first = group.evaluate_on(&mut state, &local, &store, 1_000, &env, true);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let names: Vec<String> = first
        .written
        .iter()
        .map(|s| {
            format!(
                "{}{{engine={}}}@{}={}",
                s.labels.get("__name__").unwrap(),
                s.labels.get("engine").unwrap(),
                s.t,
                s.f
            )
        })
        .collect();
    let mut recorded = names[..2].to_vec();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            "engine:x:max{engine=a}@1000=2",
            "engine:x:max{engine=b}@1000=1"
        ]
    );
    let mut alerts = names[2..].to_vec();
    alerts.sort();
    assert_eq!(
        alerts,
        [
            "ALERTS_FOR_STATE{engine=a}@1000=1",
            "ALERTS{engine=a}@1000=1"
        ]
    );
    // Engine b's series goes: the recording rule writes a staleness marker for it.
    store.append(&x("a"), 2_000, 3.0).unwrap();
    store
        .append(&x("b"), 2_000, tradewatch::store::stale_nan())
        .unwrap();
    let second = group.evaluate_on(&mut state, &local, &store, 3_000, &env, true);
    let stale: Vec<&Labels> = second
        .written
        .iter()
        .filter(|s| tradewatch::store::is_stale_nan(s.f))
        .map(|s| &s.labels)
        .collect();
    assert_eq!(
        stale,
        [&Labels::from_pairs([
            ("__name__", "engine:x:max"),
            ("engine", "b")
        ])]
    );
    // Without asking, nothing is kept (the embedded path).
    let third = group.evaluate(&mut state, &engine, &store, 4_000, &env);
    assert!(third.written.is_empty());
}
