//! An alert storm, side by side: the same `alertmanager.yml` in a release `tradewatch sidecar`
//! and in a real Alertmanager (Debian's `prometheus-alertmanager`), each fed the same ALERTS
//! alerts falling into GROUPS groups through `POST /api/v2/alerts` (batches of BATCH), one
//! after the other on the same machine, a local webhook receiver counting what arrives.
//!
//! For each: wall time of the posts per alert; CPU time (user + system, from `/proc`) from the
//! first post until the last group was notified, per alert: the whole cost of taking, routing,
//! grouping and notifying an alert; resident memory grown over the storm, per group and per
//! alert; time from the first post until the last group was notified (`group_wait` included).
//! Then the ratios tradewatch / Alertmanager.
//!
//! `cargo run --release --example am_storm -- BIN [ALERTS] [GROUPS] [BATCH]` (defaults 10000,
//! 1000, 500); `bench/am_side_by_side.sh` runs it. `FAIL_EVERY=10` makes the receiver answer
//! 500 to every tenth request of each notifier (not counted as delivered: it must be retried);
//! `BACKOFF_MIN=250ms` sets tradewatch's first retry delay (`notifier.outbox.backoff.min`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// group_wait 1s, so the first notification of every group comes after the storm's groups are
/// all formed; group_interval long, so each group notifies once.
const ROUTING: &str = r#"
route:
  receiver: desk
  group_by: [alertname, strategy]
  group_wait: 1s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['desk=~"fx|rates"']
      receiver: desk
inhibit_rules:
  - source_matchers: ['alertname="VenueDown"']
    target_matchers: ['severity="warning"']
    equal: [venue]
receivers:
  - name: desk
    webhook_configs: [{url: 'http://{hook}/desk'}]
  - name: pager
    webhook_configs: [{url: 'http://{hook}/pager'}]
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

/// Group keys (and alert count) notified so far, per `User-Agent` family.
#[derive(Default)]
struct Seen {
    /// Every `fail_every`-th request of each side is answered 500 (0: none), as a receiver that
    /// fails one request in ten does; the notifier must retry it.
    fail_every: usize,
    requests: HashMap<&'static str, usize>,
    failed: HashMap<&'static str, usize>,
    keys: HashMap<&'static str, HashSet<String>>,
    alerts: HashMap<&'static str, usize>,
    last: HashMap<&'static str, Instant>,
}

type Shared = Arc<Mutex<Seen>>;

async fn hook(
    State(seen): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, &'static str) {
    let agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let side = if agent.starts_with("Alertmanager") {
        "alertmanager"
    } else {
        "tradewatch"
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let key = format!(
        "{}|{}",
        v["receiver"].as_str().unwrap_or(""),
        v["groupKey"].as_str().unwrap_or("")
    );
    let n = v["alerts"].as_array().map_or(0, Vec::len);
    let mut s = seen.lock().unwrap();
    let nth = {
        let r = s.requests.entry(side).or_default();
        *r += 1;
        *r
    };
    if s.fail_every > 0 && nth % s.fail_every == 0 {
        *s.failed.entry(side).or_default() += 1;
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "failing on purpose",
        );
    }
    s.keys.entry(side).or_default().insert(key);
    *s.alerts.entry(side).or_default() += n;
    s.last.insert(side, Instant::now());
    (axum::http::StatusCode::OK, "ok")
}

/// (resident bytes, cpu seconds) of `pid` from `/proc`.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    (rss_kb * 1024, ticks / 100.0)
}

/// The storm's alerts: `groups` groups (alertname × strategy), alerts spread round-robin, one
/// in five critical (so also grouped under the pager route), labels as a rule layer sends them.
fn storm(alerts: usize, groups: usize) -> Vec<Value> {
    let names = [
        "TradingLossLimit",
        "OrderRejects",
        "FillLatency",
        "FeedStale",
    ];
    let desks = ["fx", "rates", "eq", "credit"];
    (0..alerts)
        .map(|i| {
            let g = i % groups;
            json!({
                "labels": {
                    "alertname": names[g % names.len()],
                    "strategy": format!("strategy-{g}"),
                    "symbol": format!("SYM{i}"),
                    "desk": desks[i % desks.len()],
                    "venue": format!("venue-{}", i % 7),
                    "severity": if i % 5 == 0 { "critical" } else { "warning" },
                    "job": "tradewatch",
                    "instance": "trading-box:9470",
                },
                "annotations": {"summary": format!("{} on SYM{i}", names[g % names.len()]),
                                 "runbook_url": "http://wiki/runbooks/trading"},
                "generatorURL": "http://trading-box:9470/graph",
            })
        })
        .collect()
}

/// Aggregation groups a storm makes, routed as the file says: the pager route (continue) for
/// critical alerts, the fx/rates desk route, and the root for the alerts no child took.
fn expected_keys(alerts: &[Value]) -> usize {
    let mut keys = HashSet::new();
    for a in alerts {
        let l = &a["labels"];
        let group = format!("{}|{}", l["alertname"], l["strategy"]);
        let mut matched = false;
        if l["severity"] == "critical" {
            keys.insert(format!("pager|{group}"));
            matched = true;
        }
        if l["desk"] == "fx" || l["desk"] == "rates" {
            keys.insert(format!("desk-child|{group}"));
            matched = true;
        }
        if !matched {
            keys.insert(format!("root|{group}"));
        }
    }
    keys.len()
}

struct Measured {
    post_s: f64,
    cpu_s: f64,
    rss_before: u64,
    rss_after: u64,
    last_notified_s: f64,
    alerts_notified: usize,
    failed: usize,
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} not ready");
}

#[allow(clippy::too_many_arguments)]
async fn run_storm(
    side: &'static str,
    pid: u32,
    api: &str,
    client: &reqwest::Client,
    alerts: &[Value],
    batch: usize,
    keys: usize,
    seen: &Shared,
) -> Measured {
    // Let the process settle after start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, cpu_before) = usage(pid);
    let start = Instant::now();
    for chunk in alerts.chunks(batch) {
        let r = client
            .post(format!("{api}/api/v2/alerts"))
            .json(&chunk)
            .send()
            .await
            .expect("POST /api/v2/alerts");
        assert!(r.status().is_success(), "{side}: {}", r.status());
    }
    let post_s = start.elapsed().as_secs_f64();
    let deadline = start + Duration::from_secs(300);
    loop {
        let done = {
            let s = seen.lock().unwrap();
            s.keys.get(side).map_or(0, HashSet::len) >= keys
        };
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{side}: not every group notified"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (last, alerts_notified, failed) = {
        let s = seen.lock().unwrap();
        (
            s.last[side],
            s.alerts[side],
            s.failed.get(side).copied().unwrap_or(0),
        )
    };
    let (_, cpu_after) = usage(pid);
    // Memory once the notifications are out (the groups stay, waiting for group_interval).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, _) = usage(pid);
    Measured {
        post_s,
        cpu_s: cpu_after - cpu_before,
        rss_before,
        rss_after,
        last_notified_s: last.duration_since(start).as_secs_f64(),
        alerts_notified,
        failed,
    }
}

fn row(name: &str, m: &Measured, alerts: usize, groups: usize) -> [f64; 6] {
    let grown = m.rss_after.saturating_sub(m.rss_before) as f64;
    let r = [
        m.post_s / alerts as f64 * 1e6,
        m.cpu_s / alerts as f64 * 1e6,
        grown / groups as f64,
        grown / alerts as f64,
        m.last_notified_s,
        m.rss_after as f64 / 1_048_576.0,
    ];
    println!(
        "{name:<13} post {:>7.1} µs/alert  cpu {:>7.1} µs/alert  rss +{:>8.0} B/group ({:>6.0} B/alert)  last group notified {:>6.2} s  rss {:>6.1} MiB  alerts notified {} (requests answered 500: {})",
        r[0], r[1], r[2], r[3], r[4], r[5], m.alerts_notified, m.failed
    );
    r
}

#[tokio::main]
async fn main() {
    tradewatch::server::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: am_storm BIN [ALERTS] [GROUPS] [BATCH]");
    let n: usize = args.get(2).map_or(10_000, |a| a.parse().unwrap());
    let groups: usize = args.get(3).map_or(1_000, |a| a.parse().unwrap());
    let batch: usize = args.get(4).map_or(500, |a| a.parse().unwrap());

    let seen: Shared = Arc::new(Mutex::new(Seen {
        fail_every: std::env::var("FAIL_EVERY")
            .map_or(0, |v| v.parse().expect("FAIL_EVERY is a count")),
        ..Seen::default()
    }));
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("alertmanager.yml"),
        ROUTING.replace("{hook}", &hook_addr.to_string()),
    )
    .unwrap();
    std::fs::write(
        d.join("tradewatch.yaml"),
        format!(
            "sidecar:\n  rule_files: []\nnotifier:\n  config_file: alertmanager.yml\n{}",
            // BACKOFF_MIN: the outbox's first retry delay (`notifier.outbox.backoff.min`).
            std::env::var("BACKOFF_MIN")
                .map(|min| format!("  outbox: {{backoff: {{min: {min}}}}}\n"))
                .unwrap_or_default()
        ),
    )
    .unwrap();
    let tw_addr = free_addr();
    let am_addr = free_addr();
    let spawn = |cmd: &mut Command| Killed(cmd.stdout(Stdio::null()).spawn().unwrap());
    let tw = spawn(
        Command::new(bin)
            .arg("sidecar")
            .arg("--config")
            .arg(d.join("tradewatch.yaml"))
            .arg("--listen")
            .arg(tw_addr.to_string())
            .arg("--data-dir")
            .arg(d.join("tw"))
            .env("TRADEWATCH_LOG", "warn"),
    );
    let am = spawn(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                Path::new(d).join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", d.join("am").display()))
            .arg(format!("--web.listen-address={am_addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stderr(Stdio::null()),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let tw_api = format!("http://{tw_addr}");
    let am_api = format!("http://{am_addr}");
    wait_ready(&client, &format!("{tw_api}/-/ready")).await;
    wait_ready(&client, &format!("{am_api}/-/ready")).await;

    let alerts = storm(n, groups);
    let keys = expected_keys(&alerts);
    println!(
        "{n} alerts, {groups} label groups ({keys} aggregation groups over two routes), batches of {batch}"
    );
    let t = run_storm(
        "tradewatch",
        tw.0.id(),
        &tw_api,
        &client,
        &alerts,
        batch,
        keys,
        &seen,
    )
    .await;
    let a = run_storm(
        "alertmanager",
        am.0.id(),
        &am_api,
        &client,
        &alerts,
        batch,
        keys,
        &seen,
    )
    .await;
    let rt = row("tradewatch", &t, n, keys);
    let ra = row("alertmanager", &a, n, keys);
    println!(
        "ratio tw/am   post {:.2}  cpu {:.2}  rss/group {:.2}  last group notified {:.2}",
        rt[0] / ra[0],
        rt[1] / ra[1],
        rt[2] / ra[2],
        rt[4] / ra[4]
    );
}
