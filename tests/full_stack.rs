//! The whole product beside a real Prometheus: `tradewatch run` with the rule pack of `rules/`
//! and an unchanged alertmanager.yml (critical alerts to an email receiver on a real SMTP
//! server written here, everything to a real webhook receiver), and Prometheus 2.42 with
//! `deploy/prometheus.yml` adapted to free loopback ports, scraping tradewatch and evaluating the
//! same rules. A scenario posted to the event API (limits, a loss-limit breach, a circuit breaker,
//! an engine whose heartbeat lapsed, then recovery) must make both evaluate the same alerts (label
//! sets and fingerprints) at the same moments, within one scrape plus one evaluation interval;
//! the emails and the version-4 webhook payloads arrive, and after recovery so do the resolved
//! notifications.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use mail_parser::MessageParser;
use serde_json::{Value, json};
use support::{PROMETHEUS, Process, available};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tradewatch::alerts::Fingerprint;

/// Prometheus's scrape and evaluation intervals in the adapted configuration; tradewatch
/// evaluates every second too.
const INTERVAL: Duration = Duration::from_secs(1);

/// How long any one step of the scenario may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

type Labels = BTreeMap<String, String>;

// ---------------------------------------------------------------------------------------------
// Receivers: a plain SMTP server (RFC 5321, no TLS, no AUTH) and a webhook
// ---------------------------------------------------------------------------------------------

/// The messages (DATA) an SMTP server received, with their recipients.
type Mailbox = Arc<Mutex<Vec<(Vec<String>, Vec<u8>)>>>;

async fn smtp_server() -> (SocketAddr, Mailbox) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mailbox: Mailbox = Arc::default();
    let store = mailbox.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let _ = smtp_session(socket, &store).await;
            });
        }
    });
    (addr, mailbox)
}

async fn smtp_session(socket: tokio::net::TcpStream, store: &Mailbox) -> std::io::Result<()> {
    let mut io = BufReader::new(socket);
    async fn reply(io: &mut BufReader<tokio::net::TcpStream>, text: &str) -> std::io::Result<()> {
        io.get_mut()
            .write_all(format!("{text}\r\n").as_bytes())
            .await?;
        io.get_mut().flush().await
    }
    reply(&mut io, "220 mx.test ESMTP ready").await?;
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .split([' ', '\r', '\n'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                reply(&mut io, "250-mx.test").await?;
                reply(&mut io, "250 8BITMIME").await?;
            }
            "HELO" | "MAIL" | "NOOP" => reply(&mut io, "250 2.0.0 Ok").await?,
            "RSET" => {
                rcpt_to.clear();
                reply(&mut io, "250 2.0.0 Ok").await?;
            }
            "RCPT" => {
                let start = line.find('<').map_or(0, |i| i + 1);
                let end = line.rfind('>').unwrap_or(line.len());
                rcpt_to.push(line[start..end].to_owned());
                reply(&mut io, "250 2.1.5 Ok").await?;
            }
            "DATA" => {
                reply(&mut io, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if io.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    data.extend_from_slice(raw.strip_prefix(b".").unwrap_or(&raw));
                }
                store
                    .lock()
                    .unwrap()
                    .push((std::mem::take(&mut rcpt_to), data));
                reply(&mut io, "250 2.0.0 Ok: queued").await?;
            }
            "QUIT" => {
                reply(&mut io, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut io, "502 5.5.2 Command not recognized").await?,
        }
    }
}

/// The subjects of the messages received so far, in order.
fn subjects(mailbox: &Mailbox) -> Vec<String> {
    mailbox
        .lock()
        .unwrap()
        .iter()
        .map(|(_, data)| {
            MessageParser::default()
                .parse(data)
                .and_then(|m| m.subject().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect()
}

type Hooked = Arc<Mutex<Vec<Value>>>;

async fn webhook() -> (String, Hooked) {
    let received: Hooked = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(r): State<Hooked>, body: axum::body::Bytes| async move {
                    r.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

// ---------------------------------------------------------------------------------------------
// The two evaluators
// ---------------------------------------------------------------------------------------------

/// `deploy/prometheus.yml` with its addresses and intervals replaced; each replaced text must be
/// there, so a change to the deploy file shows here.
fn adapt_prometheus_yml(tradewatch: SocketAddr, prometheus: SocketAddr) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut text = std::fs::read_to_string(format!("{root}/deploy/prometheus.yml")).unwrap();
    for (from, to) in [
        ("scrape_interval: 5s", "scrape_interval: 1s".to_owned()),
        ("scrape_timeout: 4s", "scrape_timeout: 1s".to_owned()),
        (
            "evaluation_interval: 5s",
            "evaluation_interval: 1s".to_owned(),
        ),
        ("tradewatch:9470", tradewatch.to_string()),
        ("localhost:9090", prometheus.to_string()),
    ] {
        assert!(text.contains(from), "deploy/prometheus.yml has no {from:?}");
        text = text.replace(from, &to);
    }
    assert!(text.contains("rules/*.rules.yml"), "{text}");
    text
}

/// Copies `rules/*.rules.yml` into `dir/rules/`.
fn copy_rules(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".rules.yml") {
            std::fs::copy(&path, dir.join("rules").join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn alertmanager_yml(smtp: SocketAddr, hook: &str) -> String {
    format!(
        r#"
global:
  smtp_smarthost: '{smtp}'
  smtp_from: tradewatch@example.com
  smtp_require_tls: false
route:
  receiver: desk-webhook
  group_by: [alertname, engine]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: trader-email
      matchers: ['severity="critical"']
      continue: true
    - receiver: desk-webhook
receivers:
  - name: trader-email
    email_configs:
      - to: trader@example.com
        send_resolved: true
  - name: desk-webhook
    webhook_configs:
      - url: '{hook}'
        send_resolved: true
"#
    )
}

/// An alert as one evaluator reports it: its label set and when it became active.
#[derive(Debug, Clone)]
struct Active {
    labels: Labels,
    active_at: chrono::DateTime<chrono::Utc>,
}

/// The firing alerts of a Prometheus-shaped `/api/v1/alerts`, keyed by fingerprint.
async fn firing(client: &reqwest::Client, base: &str) -> BTreeMap<Fingerprint, Active> {
    let body: Value = client
        .get(format!("{base}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{base}: {body}");
    body["data"]["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("{base}: {body}"))
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let labels: Labels = serde_json::from_value(a["labels"].clone()).unwrap();
            let fingerprint = Fingerprint::of_pairs(labels.iter().map(|(k, v)| (&**k, &**v)));
            let active_at = a["activeAt"].as_str().unwrap().parse().unwrap();
            (fingerprint, Active { labels, active_at })
        })
        .collect()
}

/// The alert names and engines of a set of firing alerts, for messages and expectations.
fn names(alerts: &BTreeMap<Fingerprint, Active>) -> BTreeSet<(String, String)> {
    alerts
        .values()
        .map(|a| {
            (
                a.labels["alertname"].clone(),
                a.labels.get("engine").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// Polls both evaluators until each reports exactly `expected` (alert name, engine) as firing;
/// returns what each reported then and when each first did.
async fn both_reach(
    client: &reqwest::Client,
    tradewatch: &str,
    prometheus: &str,
    expected: &BTreeSet<(String, String)>,
    logs: impl Fn() -> String,
) -> [(BTreeMap<Fingerprint, Active>, Instant); 2] {
    let started = Instant::now();
    let mut reached: [Option<(BTreeMap<Fingerprint, Active>, Instant)>; 2] = [None, None];
    loop {
        for (slot, base) in reached.iter_mut().zip([tradewatch, prometheus]) {
            if slot.is_none() {
                let now = firing(client, base).await;
                if names(&now) == *expected {
                    *slot = Some((now, Instant::now()));
                }
            }
        }
        if let [Some(a), Some(b)] = &reached {
            return [a.clone(), b.clone()];
        }
        if started.elapsed() > DEADLINE {
            let tw = names(&firing(client, tradewatch).await);
            let prom = names(&firing(client, prometheus).await);
            panic!(
                "expected {expected:?}\ntradewatch fires {tw:?}\nprometheus fires {prom:?}\n{}",
                logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both evaluators fire the same alerts (label sets, hence fingerprints), each becoming active
/// at the same moment within one scrape plus one evaluation interval.
fn assert_same(
    tradewatch: &BTreeMap<Fingerprint, Active>,
    prometheus: &BTreeMap<Fingerprint, Active>,
    since: chrono::DateTime<chrono::Utc>,
) {
    let tw: Vec<&Labels> = tradewatch.values().map(|a| &a.labels).collect();
    let prom: Vec<&Labels> = prometheus.values().map(|a| &a.labels).collect();
    assert_eq!(tw, prom, "label sets differ");
    let bound = chrono::Duration::from_std(2 * INTERVAL).unwrap();
    for (fingerprint, a) in tradewatch {
        let b = &prometheus[fingerprint];
        // The Watchdog and anything active before the step keep their first activeAt.
        if a.active_at < since && b.active_at < since {
            continue;
        }
        let gap = (a.active_at - b.active_at).abs();
        assert!(
            gap <= bound,
            "{fingerprint} {:?}: active at {} in tradewatch, {} in prometheus",
            a.labels,
            a.active_at,
            b.active_at
        );
    }
}

/// Waits until `done` holds of what `received` holds, or fails with `what`.
async fn wait_until<T: Clone>(
    received: &Arc<Mutex<Vec<T>>>,
    what: &str,
    done: impl Fn(&[T]) -> bool,
    logs: impl Fn() -> String,
) -> Vec<T> {
    let started = Instant::now();
    loop {
        let got = received.lock().unwrap().clone();
        if done(&got) {
            return got;
        }
        assert!(started.elapsed() < DEADLINE, "{what}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn expected(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, e)| (a.to_string(), e.to_string()))
        .collect()
}

/// The webhook payloads' (status, alertname, engine, per-alert fingerprint) for each alert.
fn hooked_alerts(payloads: &[Value]) -> Vec<(String, String, String, String)> {
    payloads
        .iter()
        .flat_map(|p| {
            p["alerts"].as_array().unwrap().iter().map(|a| {
                (
                    a["status"].as_str().unwrap().to_owned(),
                    a["labels"]["alertname"].as_str().unwrap().to_owned(),
                    a["labels"]["engine"].as_str().unwrap_or("").to_owned(),
                    a["fingerprint"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_tradewatch_fire_the_same_alerts_and_notify() {
    let test = "prometheus_and_tradewatch_fire_the_same_alerts_and_notify";
    if !available(test, &[&PROMETHEUS]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path());
    let (smtp, mailbox) = smtp_server().await;
    let (hook, hooked) = webhook().await;

    // tradewatch run: its own metrics carry the target labels Prometheus gives the scrape.
    let tw_addr: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        alertmanager_yml(smtp, &hook),
    )
    .unwrap();
    let config = dir.path().join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  evaluation_interval: 1s\n  rule_files: ['{rules}/*.rules.yml']\n  \
             self: {{job: tradewatch, instance: '{tw_addr}'}}\n\
             notifier:\n  config_file: alertmanager.yml\n  external_url: http://{tw_addr}\n",
            rules = dir.path().join("rules").display()
        ),
    )
    .unwrap();
    let mut command = Command::new(support::BIN);
    command
        .arg("run")
        .arg("--listen")
        .arg(tw_addr.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env_remove("TRADEWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .env("TRADEWATCH_LOG", "info");
    let mut run = Process::spawn("tradewatch run", command);
    let tradewatch = format!("http://{tw_addr}");
    if let Err(status) = run
        .wait_ready(&format!("{tradewatch}/-/healthy"), support::READY_DEADLINE)
        .await
    {
        panic!("tradewatch run exited ({status})\n{}", run.log());
    }

    // Prometheus with the deploy file, the same rules, and tradewatch as its Alertmanager.
    let prom_addr: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(&prom_config, adapt_prometheus_yml(tw_addr, prom_addr)).unwrap();
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"));
    let mut prom = Process::spawn("prometheus", command);
    let prometheus = format!("http://{prom_addr}");
    if let Err(status) = prom
        .wait_ready(&format!("{prometheus}/-/ready"), support::READY_DEADLINE)
        .await
    {
        panic!("prometheus exited ({status})\n{}", prom.log());
    }
    let logs = || {
        format!(
            "--- tradewatch ---\n{}\n--- prometheus ---\n{}",
            run.log(),
            prom.log()
        )
    };
    let client = support::client();
    let post = |events: Vec<Value>| {
        let client = client.clone();
        let url = format!("{tradewatch}/api/v1/events");
        async move {
            let body = support::ndjson(&events);
            let response = client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{}",
                response.text().await.unwrap()
            );
        }
    };

    // A healthy desk: limits, a small loss, no breaker; beta's last heartbeat is recent.
    let now = || chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    post(vec![
        json!({"type": "limits", "engine": "alpha", "daily_loss_limit": 10000.0,
               "position_limits": {"AAPL": 500.0}}),
        json!({"type": "pnl", "engine": "alpha", "strategy": "momentum", "daily": -2000.0,
               "currency": "USD"}),
        json!({"type": "circuit_breaker", "engine": "alpha", "breaker": "drawdown",
               "active": false}),
        json!({"type": "heartbeat", "engine": "beta", "ts": now()}),
    ])
    .await;
    let calm = expected(&[("Watchdog", "")]);
    let [(tw, _), (pr, _)] = both_reach(&client, &tradewatch, &prometheus, &calm, logs).await;
    assert_same(&tw, &pr, chrono::Utc::now());

    // Prometheus has the metrics, with the target labels tradewatch gives its own.
    let query = |q: &'static str| {
        let client = client.clone();
        let url =
            url::Url::parse_with_params(&format!("{prometheus}/api/v1/query"), [("query", q)])
                .unwrap();
        async move {
            let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            body["data"]["result"].as_array().unwrap().clone()
        }
    };
    for (metric, engine) in [
        ("trading_daily_loss_limit", "alpha"),
        ("trading_pnl_daily", "alpha"),
        ("trading_circuit_breaker_active", "alpha"),
        ("trading_engine_heartbeat_timestamp_seconds", "beta"),
    ] {
        // The next scrape brings them.
        let started = Instant::now();
        loop {
            let series = query(metric).await;
            if series.iter().any(|s| {
                s["metric"]["engine"] == engine
                    && s["metric"]["job"] == "tradewatch"
                    && s["metric"]["instance"] == tw_addr.to_string().as_str()
            }) {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{metric}: {series:?}\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The incident: alpha breaches its loss limit and trips a breaker; gamma's only heartbeat is
    // 90s old (the gauge keeps the newest time an engine reported, so a lapse is an engine
    // whose newest report is old).
    let incident_at = chrono::Utc::now();
    post(vec![
        json!({"type": "pnl", "engine": "alpha", "strategy": "momentum", "daily": -12500.0,
               "currency": "USD"}),
        json!({"type": "circuit_breaker", "engine": "alpha", "breaker": "drawdown",
               "active": true, "reason": "drawdown 6%"}),
        json!({"type": "heartbeat", "engine": "gamma", "ts": now() - 90.0}),
    ])
    .await;
    let incident = expected(&[
        ("Watchdog", ""),
        ("TradingDailyLossLimitBreached", "alpha"),
        ("TradingCircuitBreakerTripped", "alpha"),
        ("TradingEngineHeartbeatLost", "gamma"),
    ]);
    let [(tw, _), (pr, _)] = both_reach(&client, &tradewatch, &prometheus, &incident, logs).await;
    assert_same(&tw, &pr, incident_at);

    // Three critical alerts, three groups: three emails to the trader.
    let critical = [
        "TradingCircuitBreakerTripped",
        "TradingDailyLossLimitBreached",
        "TradingEngineHeartbeatLost",
    ];
    let mails = wait_until(&mailbox, "three firing emails", |m| m.len() >= 3, logs).await;
    let got: BTreeSet<String> = subjects(&mailbox).into_iter().collect();
    let want: BTreeSet<String> = [
        "[FIRING:1] TradingCircuitBreakerTripped engine=alpha",
        "[FIRING:1] TradingDailyLossLimitBreached engine=alpha",
        "[FIRING:1] TradingEngineHeartbeatLost engine=gamma",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(got, want);
    assert!(mails.iter().all(|(to, _)| to == &["trader@example.com"]));

    // Every alert reaches the webhook as Alertmanager's version-4 payload, with the fingerprint
    // both evaluators agree on.
    let payloads = wait_until(
        &hooked,
        "every firing alert at the webhook",
        |p| {
            let names: BTreeSet<String> = hooked_alerts(p).into_iter().map(|a| a.1).collect();
            critical.iter().all(|c| names.contains(*c)) && names.contains("Watchdog")
        },
        logs,
    )
    .await;
    for p in &payloads {
        assert_eq!(p["version"], "4", "{p}");
        assert_eq!(p["receiver"], "desk-webhook", "{p}");
        assert_eq!(p["externalURL"], tradewatch.as_str(), "{p}");
        assert!(
            p["groupKey"].as_str().unwrap().starts_with("{}/{}:{"),
            "{p}"
        );
    }
    for (fingerprint, alert) in &tw {
        let name = &alert.labels["alertname"];
        assert!(
            hooked_alerts(&payloads)
                .iter()
                .any(|a| &a.0 == "firing" && &a.1 == name && a.3 == fingerprint.to_string()),
            "{name} {fingerprint} not at the webhook: {payloads:?}"
        );
    }

    // Prometheus sees tradewatch's own record of the deliveries at its next scrapes.
    let started = Instant::now();
    for q in [
        r#"tradewatch_notifications_total{receiver="trader-email",outcome="delivered"} > 0"#,
        r#"tradewatch_notifications_total{receiver="desk-webhook",outcome="delivered"} > 0"#,
    ] {
        while query(q).await.is_empty() {
            assert!(started.elapsed() < DEADLINE, "{q}: nothing\n{}", logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Recovery: the loss shrinks, the breaker closes, gamma beats again.
    let recovery_at = Instant::now();
    post(vec![
        json!({"type": "pnl", "engine": "alpha", "strategy": "momentum", "daily": -1500.0,
               "currency": "USD"}),
        json!({"type": "circuit_breaker", "engine": "alpha", "breaker": "drawdown",
               "active": false}),
        json!({"type": "heartbeat", "engine": "gamma", "ts": now()}),
    ])
    .await;
    let [(_, tw_at), (_, pr_at)] = both_reach(&client, &tradewatch, &prometheus, &calm, logs).await;
    // Each side resolves within one scrape plus one evaluation of the post (polling adds its
    // 50ms and a request).
    let slack = 2 * INTERVAL + Duration::from_millis(500);
    let (tw_took, pr_took) = (tw_at - recovery_at, pr_at - recovery_at);
    assert!(
        tw_took <= slack && pr_took <= slack,
        "resolved after {tw_took:?} in tradewatch, {pr_took:?} in prometheus"
    );

    let want_resolved: BTreeSet<String> = critical
        .iter()
        .map(|c| {
            let engine = if *c == "TradingEngineHeartbeatLost" {
                "gamma"
            } else {
                "alpha"
            };
            format!("[RESOLVED] {c} engine={engine}")
        })
        .collect();
    wait_until(
        &mailbox,
        "three resolved emails",
        |_| {
            let got: BTreeSet<String> = subjects(&mailbox).into_iter().collect();
            want_resolved.is_subset(&got)
        },
        logs,
    )
    .await;
    let payloads = wait_until(
        &hooked,
        "the resolved notifications at the webhook",
        |p| {
            let resolved: BTreeSet<String> = hooked_alerts(p)
                .into_iter()
                .filter(|a| a.0 == "resolved")
                .map(|a| a.1)
                .collect();
            critical.iter().all(|c| resolved.contains(*c))
        },
        logs,
    )
    .await;
    assert!(
        payloads.iter().any(
            |p| p["status"] == "resolved" && p["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        ),
        "{payloads:?}"
    );
    // The Watchdog never resolves.
    assert!(
        !hooked_alerts(&payloads)
            .iter()
            .any(|a| a.0 == "resolved" && a.1 == "Watchdog")
    );

    let status = prom.terminate(DEADLINE).await;
    assert!(status.success(), "prometheus exited with {status}");
    let status = run.terminate(DEADLINE).await;
    assert!(
        status.success(),
        "tradewatch exited with {status}\n{}",
        run.log()
    );
}
