//! The whole pipeline of `tradewatch run` with a real webhook receiver: a kill switch posted
//! over HTTP becomes a rule alert, is routed by an unchanged alertmanager.yml (`group_wait:
//! 0s`), written to the outbox and delivered as Alertmanager's version-4 payload; after
//! `kill -9` nothing is sent again before `repeat_interval`; the resolution is delivered; the
//! alert log and the self-metrics record each delivery.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};
use support::{Exporter, Received};

async fn receiver() -> (String, Received) {
    support::webhook_receiver(0).await
}

fn write_files(dir: &Path, hook: &str) -> String {
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
        annotations:
          summary: 'Kill switch engaged on {{ $labels.engine }}'
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
  repeat_interval: 1h
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
            "sidecar:\n  rule_files: ['{}']\n  self: {{job: tradewatch, instance: 'trading-box:9470'}}\nnotifier:\n  config_file: alertmanager.yml\n  external_url: http://trading-box:9470\n",
            dir.join("trading.rules.yml").display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

async fn wait_for(received: &Received, n: usize, deadline: Duration) -> Vec<(HeaderMap, Value)> {
    let started = Instant::now();
    loop {
        let got = received.lock().unwrap().clone();
        if got.len() >= n || started.elapsed() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn log_lines(data: &Path, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data.join("alerts")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|l| l["kind"] == kind),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_switch_reaches_the_webhook_once_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook, received) = receiver().await;
    let config = write_files(dir.path(), &hook);
    let mut run = Exporter::start_role("run", &data, &["--config", &config]).await;
    let sent_at = Instant::now();
    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    let got = wait_for(&received, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "no notification\n{}", run.log());
    let took = sent_at.elapsed();
    let (headers, body) = &got[0];
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "desk");
    assert_eq!(
        body["groupKey"],
        "{}:{alertname=\"TradingKillSwitchActive\", engine=\"alpha\"}"
    );
    assert_eq!(body["externalURL"], "http://trading-box:9470");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "TradingKillSwitchActive");
    assert_eq!(alert["labels"]["instance"], "trading-box:9470");
    assert_eq!(
        alert["annotations"]["summary"],
        "Kill switch engaged on alpha"
    );
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://trading-box:9470/api/v1/query?query=")
    );
    assert!(headers.contains_key("idempotency-key"));
    // The bound is loose for a loaded CI machine; bench/ measures the latency.
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // The outcome is recorded once the receiver has answered.
    let started = Instant::now();
    let delivered = loop {
        let delivered: Vec<Value> = log_lines(&data, "notification")
            .into_iter()
            .filter(|l| l["outcome"] == "delivered")
            .collect();
        if !delivered.is_empty() || started.elapsed() > Duration::from_secs(5) {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["receiver"], "desk");
    assert_eq!(delivered[0]["integration"], "webhook[0]");
    let metrics = run
        .client()
        .get(run.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "tradewatch_notifications_total{integration=\"webhook\",outcome=\"delivered\",receiver=\"desk\"} 1"
        ),
        "{metrics}"
    );

    run.process.kill9();
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    // The rule layer keeps the alert firing and re-sends it; the notification log keeps the
    // notifier from notifying again before repeat_interval.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received.lock().unwrap().len(), 1, "no second notification");

    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": false})])
        .await;
    let got = wait_for(&received, 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "no resolved notification\n{}", run.log());
    assert_eq!(got[1].1["status"], "resolved");
    assert_ne!(got[1].1["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
}

/// A receiver on `port` (bound now) recording what it gets.
async fn receiver_on(port: u16) -> Received {
    support::webhook_receiver(port).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_notification_is_listed_retried_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = support::free_port();
    let config = write_files(dir.path(), &format!("http://127.0.0.1:{port}/hook"));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("  outbox: {max_age: 1s, backoff: {min: 100ms, max: 200ms}}\n");
    std::fs::write(&config, text).unwrap();
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    run.post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
            .args(args)
            .arg("--url")
            .arg(run.url(""))
            .env_remove("TRADEWATCH_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Nothing listens: the item fails until max_age, then it is dead.
    let started = Instant::now();
    let listed = loop {
        let (code, out, err) = cli(&["outbox", "list"]);
        assert_eq!(code, 0, "{err}");
        if out.lines().count() > 1 || started.elapsed() > Duration::from_secs(10) {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = listed
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no dead item\n{}", run.log()));
    assert!(
        row.contains("dead") && row.contains("desk") && row.contains("webhook[0]"),
        "{listed}"
    );
    let id = row.split_whitespace().next().unwrap().to_owned();
    let (_, health, _) = cli(&["health"]);
    assert!(
        health.contains("warning  outbox: 0 pending (oldest 0s), 1 dead"),
        "{health}"
    );

    let received = receiver_on(port).await;
    let (code, out, err) = cli(&["outbox", "retry", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("outbox item {id}: queued again"));
    let got = wait_for(&received, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the retried item is delivered");
    let (code, _, err) = cli(&["outbox", "retry", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("409") || err.contains("not dead"), "{err}");

    let log = run
        .client()
        .get(run.url("/api/v1/alert-log"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let outcomes: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["kind"] == "notification")
        .map(|l| l["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes.first().map(String::as_str),
        Some("queued"),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"failed".to_owned()), "{outcomes:?}");
    assert!(outcomes.contains(&"dead".to_owned()), "{outcomes:?}");
    let started = Instant::now();
    loop {
        let log = run
            .client()
            .get(run.url("/api/v1/alert-log"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if log
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"outcome\":\"delivered\""))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no delivered line:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // `alerts tail` prints the backlog, then follows.
    let mut tail = std::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
        .args(["alerts", "tail", "--url"])
        .arg(run.url(""))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map(Result::unwrap)
            .collect::<Vec<String>>()
    });
    let started = Instant::now();
    while !lines.is_finished() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let lines = lines.join().unwrap();
    assert!(
        lines[0].contains("  firing    TradingKillSwitchActive  engine=\"alpha\""),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("  queued    desk webhook[0]"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_and_sidecar_as_two_processes_notify_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, received) = receiver().await;
    let exporter = Exporter::start(&dir.path().join("exporter")).await;
    let config = write_files(dir.path(), &hook);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "  self: {job: tradewatch, instance: 'trading-box:9470'}\n",
        &format!(
            "  scrape: {{targets: [{{url: '{}', job: tradewatch}}]}}\n",
            exporter.url("/metrics")
        ),
    );
    std::fs::write(&config, text).unwrap();
    let sidecar = Exporter::start_role(
        "sidecar",
        &dir.path().join("sidecar"),
        &["--config", &config],
    )
    .await;
    // The sidecar follows the exporter's change long poll: no need to wait for a scrape.
    let sent_at = Instant::now();
    exporter
        .post(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    let got = wait_for(&received, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "no notification\n{}", sidecar.log());
    assert!(sent_at.elapsed() < Duration::from_secs(3));
    let body = &got[0].1;
    assert_eq!(body["status"], "firing");
    assert_eq!(
        body["alerts"][0]["labels"]["alertname"],
        "TradingKillSwitchActive"
    );
    assert_eq!(body["alerts"][0]["labels"]["job"], "tradewatch");
    assert_eq!(
        body["alerts"][0]["labels"]["instance"],
        exporter.addr.to_string()
    );
    exporter
        .post(&[json!({"type": "kill_switch", "engine": "alpha", "active": false})])
        .await;
    let got = wait_for(&received, 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "no resolved notification\n{}", sidecar.log());
    assert_eq!(got[1].1["status"], "resolved");
}
