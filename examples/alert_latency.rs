//! Latency from an event to its notification: a kill switch posted to tradewatch, a `for: 0s`
//! rule, `group_wait: 0s`, and a local webhook receiver. Each trial engages the kill switch of a
//! new engine, so each is its own alert group; the latency runs from just before the POST to
//! the webhook request's arrival.
//!
//! `cargo run --release --example alert_latency -- BIN run|split [TRIALS]` where BIN is a
//! release `tradewatch` binary; `run` is one process, `split` an exporter and a sidecar
//! scraping it (with the exporter's change long poll). Prints p50, p90, p99 and max in ms.
//! `bench/alert_latency.sh` runs both.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

const RULES: &str = r#"
groups:
  - name: risk
    interval: 1s
    rules:
      - alert: TradingKillSwitchActive
        expr: trading_kill_switch_active == 1
        labels:
          severity: critical
"#;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, role: &str, config: &Path, listen: SocketAddr, data: &Path) -> Killed {
    Killed(
        Command::new(bin)
            .arg(role)
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--data-dir")
            .arg(data)
            .env("TRADEWATCH_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting tradewatch"),
    )
}

async fn wait_healthy(client: &reqwest::Client, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://{addr}/-/healthy")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tradewatch at {addr} did not start");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    tradewatch::server::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: alert_latency BIN run|split [TRIALS]");
    let mode = args.get(2).map_or("run", String::as_str);
    let trials: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(100);

    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(a): State<Arrivals>, body: axum::body::Bytes| async move {
                    let at = Instant::now();
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if v["status"] == "firing"
                        && let Some(engine) = v["groupLabels"]["engine"].as_str()
                    {
                        a.lock().unwrap().entry(engine.to_owned()).or_insert(at);
                    }
                    "ok"
                },
            ),
        )
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("latency.rules.yml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [engine]\n  group_wait: 0s\n  group_interval: 1m\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook}'\n"
        ),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let ingest_addr = free_addr();
    let mut processes = Vec::new();
    let sidecar_config = |scrape: &str| {
        format!(
            "storage:\n  fsync: batch\nsidecar:\n  rule_files: ['{}']\n{scrape}notifier:\n  config_file: alertmanager.yml\n",
            dir.path().join("latency.rules.yml").display()
        )
    };
    match mode {
        "run" => {
            let config = dir.path().join("run.yaml");
            std::fs::write(&config, sidecar_config("")).unwrap();
            processes.push(spawn(
                bin,
                "run",
                &config,
                ingest_addr,
                &dir.path().join("data"),
            ));
            wait_healthy(&client, ingest_addr).await;
        }
        "split" => {
            let exporter_config = dir.path().join("exporter.yaml");
            std::fs::write(&exporter_config, "storage:\n  fsync: batch\n").unwrap();
            processes.push(spawn(
                bin,
                "exporter",
                &exporter_config,
                ingest_addr,
                &dir.path().join("exporter"),
            ));
            wait_healthy(&client, ingest_addr).await;
            let sidecar_addr = free_addr();
            let config = dir.path().join("sidecar.yaml");
            std::fs::write(
                &config,
                sidecar_config(&format!(
                    "  scrape:\n    targets: [{{url: 'http://{ingest_addr}/metrics', job: tradewatch}}]\n"
                )),
            )
            .unwrap();
            processes.push(spawn(
                bin,
                "sidecar",
                &config,
                sidecar_addr,
                &dir.path().join("sidecar"),
            ));
            wait_healthy(&client, sidecar_addr).await;
            // Let the first scrape and the long poll settle.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        other => panic!("mode {other}: run or split"),
    }

    let url = format!("http://{ingest_addr}/api/v1/events");
    let mut latencies = Vec::with_capacity(trials);
    let mut missing = 0;
    for i in 0..trials {
        let engine = format!("e{i}");
        let body =
            format!("{{\"type\":\"kill_switch\",\"engine\":\"{engine}\",\"active\":true}}\n");
        let started = Instant::now();
        let r = client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "ingest answered {}", r.status());
        let deadline = started + Duration::from_secs(10);
        loop {
            if let Some(at) = arrivals.lock().unwrap().get(&engine) {
                latencies.push(at.duration_since(started).as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > deadline {
                missing += 1;
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        println!("{mode}: no notification arrived in {trials} trials");
        return;
    }
    println!(
        "{mode}: {} trials, {} notified, {missing} missing; latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        trials,
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().unwrap()
    );
    drop(processes);
}
