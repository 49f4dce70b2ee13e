//! Query timeouts on the sidecar's query API, as a user meets them with `tradewatch run`: a
//! heavy `/api/v1/query_range` with `timeout=1ms` is stopped and answered `503` with Prometheus's
//! `timeout` error, the same query with room finishes, a `timeout` that is not a positive
//! duration is `bad_data` (400), and `tradewatch query --timeout` prints the error and exits
//! non-zero.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Exporter};

const RULES: &str = r#"
groups:
  - name: risk
    interval: 1s
    rules:
      - alert: TradingKillSwitchActive
        expr: trading_kill_switch_active == 1
"#;

/// Every series the store holds, counted over an hour-long window at each step.
const HEAVY: &str = r#"count(count_over_time({__name__=~".+"}[1h]))"#;

fn write_config(dir: &Path) -> String {
    let rules = dir.join("trading.rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  rule_files: ['{}']\n  store: {{keep: ['{{__name__=~\".+\"}}']}}\n",
            rules.display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn get(process: &Exporter, path: &str) -> (u16, Value) {
    let r = process
        .client()
        .get(process.url(path))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// How many series the store holds now.
async fn series(process: &Exporter) -> f64 {
    let path = format!(
        "/api/v1/query?query={}",
        encode(r#"count({__name__=~".+"})"#)
    );
    let (_, body) = get(process, &path).await;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_range_query_times_out_as_prometheus_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let run = Exporter::start_role("run", &dir.path().join("data"), &["--config", &config]).await;
    // The process's own series reach the store through the in-process path.
    let started = Instant::now();
    while series(&run).await < 30.0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the store never held 30 series\n{}",
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 11,000 steps over every series, most of them with samples in their window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let range = |timeout: &str| {
        format!(
            "/api/v1/query_range?query={}&start={now}&end={}&step=1{timeout}",
            encode(HEAVY),
            now + 10_999
        )
    };
    let (status, body) = get(&run, &range("&timeout=1ms")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "timeout");
    assert_eq!(body["error"], "query timed out in expression evaluation");

    // With room, the same query answers (a timeout longer than `sidecar.query_timeout` is
    // capped by it, and 2 minutes is plenty).
    let (status, body) = get(&run, &range("&timeout=10m")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    assert!(
        body["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .len()
            > 3_000,
        "a point per step with samples in its window"
    );

    // An instant query past a timeout it cannot meet.
    let path = format!("/api/v1/query?query={}&timeout=0.000000001", encode(HEAVY));
    let (status, body) = get(&run, &path).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errorType"], "timeout");

    for bad in ["abc", "-1", "0", "1x", "NaN"] {
        for path in [
            range(&format!("&timeout={}", encode(bad))),
            format!("/api/v1/query?query=up&timeout={}", encode(bad)),
        ] {
            let (status, body) = get(&run, &path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(body["errorType"], "bad_data", "{path}");
            let error = body["error"].as_str().unwrap();
            assert!(
                error.starts_with(&format!(
                    "invalid parameter \"timeout\": cannot parse {bad:?} to a valid duration"
                )),
                "{error}"
            );
        }
    }

    // The CLI: the error in words, a non-zero exit.
    let url = format!("http://{}", run.addr);
    let out = std::process::Command::new(BIN)
        .args(["query", "--url", &url, "--timeout", "0.000000001", HEAVY])
        .env_remove("TRADEWATCH_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("timeout: query timed out in expression evaluation"),
        "{stderr}"
    );
    let out = std::process::Command::new(BIN)
        .args(["query", "--url", &url, "--timeout", "30s", "vector(1)"])
        .env_remove("TRADEWATCH_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("{} => 1 @["));
}
