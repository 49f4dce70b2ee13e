//! `tradewatch sidecar` reloading its scrape targets, as an operator does it: three exporters on
//! loopback, the configuration file rewritten, then `POST /-/reload`. The unchanged target keeps
//! its loop (no missed scrape across the reload), the changed one restarts with its new interval,
//! the removed one's series go stale at once (absent from an instant query after the reload,
//! present before it) and the new one starts; a reload with a bad size changes nothing.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use serde_json::Value;
use support::Exporter;

/// When each request of one exporter came in.
type Requests = Arc<Mutex<Vec<Instant>>>;

/// An exporter on 127.0.0.1 serving one gauge, recording when it is scraped.
async fn exporter() -> (SocketAddr, Requests) {
    async fn metrics(State(requests): State<Requests>) -> impl axum::response::IntoResponse {
        let n = {
            let mut r = requests.lock().unwrap();
            r.push(Instant::now());
            r.len()
        };
        (
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            format!("# TYPE demo_value gauge\ndemo_value {n}\n"),
        )
    }
    let requests = Requests::default();
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(requests.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, requests)
}

fn write_config(path: &Path, targets: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            "sidecar:\n  rule_files: []\n  store: {{keep: ['{{__name__=~\"demo_.*\"}}']}}\n  scrape:\n    interval: 500ms\n    timeout: 400ms\n{extra}    targets:\n{targets}"
        ),
    )
    .unwrap();
}

fn target(addr: SocketAddr, job: &str, more: &str) -> String {
    format!("      - {{url: 'http://{addr}/metrics', job: {job}{more}}}\n")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The result of an instant query, at `time` when given.
async fn query(sidecar: &Exporter, expr: &str, time: Option<f64>) -> Vec<Value> {
    let mut params = vec![("query", expr.to_owned())];
    if let Some(t) = time {
        params.push(("time", format!("{t:.3}")));
    }
    let url = url::Url::parse_with_params(&sidecar.url("/api/v1/query"), &params).unwrap();
    let r = sidecar.client().get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{expr}: {}", r.status());
    let body: Value = r.json().await.unwrap();
    body["data"]["result"].as_array().unwrap().clone()
}

/// The timestamps (seconds) of the raw samples of the one series `selector` names, over `range`.
async fn sample_times(sidecar: &Exporter, selector: &str, range: &str) -> Vec<f64> {
    let result = query(sidecar, &format!("{selector}[{range}]"), None).await;
    assert_eq!(result.len(), 1, "{selector}: {result:?}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_f64().unwrap())
        .collect()
}

async fn reload(sidecar: &Exporter) -> (u16, String) {
    let r = sidecar
        .client()
        .post(sidecar.url("/-/reload"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn wait_for(sidecar: &Exporter, expr: &str, what: &str) {
    let started = Instant::now();
    while query(sidecar, expr, None).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: nothing for {expr}\n{}",
            sidecar.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The longest time between two consecutive requests of `requests` from `since` on.
fn longest_gap(requests: &Requests, since: Instant) -> Duration {
    let r = requests.lock().unwrap();
    let times: Vec<Instant> = r.iter().copied().filter(|t| *t >= since).collect();
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_unchanged_targets_restarts_changed_ones_and_marks_removed_ones_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, kept_requests) = exporter().await;
    let (changed, _) = exporter().await;
    let (removed, removed_requests) = exporter().await;
    let (added, _) = exporter().await;
    let config = dir.path().join("tradewatch.yaml");
    write_config(
        &config,
        &[
            target(kept, "kept", ""),
            target(changed, "changed", ""),
            target(removed, "removed", ""),
        ]
        .concat(),
        "",
    );
    let sidecar = Exporter::start_role(
        "sidecar",
        &dir.path().join("data"),
        &["--config", &config.display().to_string()],
    )
    .await;
    for job in ["kept", "changed", "removed"] {
        wait_for(
            &sidecar,
            &format!("demo_value{{job=\"{job}\"}}"),
            "first scrape",
        )
        .await;
    }
    // A few scrapes of the kept target before the reload, to look for a gap across it.
    let watched_from = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A bad size is refused as a whole: the targets stay as they are.
    write_config(
        &config,
        &target(added, "added", ""),
        "    body_size_limit: 10 MB\n",
    );
    let (status, body) = reload(&sidecar).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("sidecar.scrape.body_size_limit: unknown unit \" MB\" in size \"10 MB\""),
        "{body}"
    );
    let removed_seen = removed_requests.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        removed_requests.lock().unwrap().len() > removed_seen,
        "a refused reload stopped a target"
    );

    // The real change: `kept` as it was, `changed` scraped every 250ms, `removed` gone, `added` new.
    write_config(
        &config,
        &[
            target(kept, "kept", ""),
            target(changed, "changed", ", interval: 250ms, timeout: 200ms"),
            target(added, "added", ""),
        ]
        .concat(),
        "",
    );
    let before = unix_now();
    let (status, body) = reload(&sidecar).await;
    assert_eq!(status, 200, "{body}");
    let reloaded = unix_now();
    assert!(
        sidecar
            .log()
            .contains("kept=1 restarted=1 added=1 removed=1"),
        "{}",
        sidecar.log()
    );

    // The removed target's series were there just before the reload and are stale right after
    // it: an instant query no longer finds them, though the lookback would reach their samples.
    for expr in ["demo_value{job=\"removed\"}", "up{job=\"removed\"}"] {
        assert_eq!(query(&sidecar, expr, Some(before)).await.len(), 1, "{expr}");
        let after = query(&sidecar, expr, Some(reloaded + 0.001)).await;
        assert!(after.is_empty(), "{expr} after the reload: {after:?}");
    }
    let scraped_at_stop = removed_requests.lock().unwrap().len();

    wait_for(&sidecar, "up{job=\"added\"} == 1", "the added target").await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        query(&sidecar, "up{job=\"removed\"}", None)
            .await
            .is_empty()
    );
    assert_eq!(
        removed_requests.lock().unwrap().len(),
        scraped_at_stop,
        "the removed target is still scraped"
    );

    // The kept target never missed a scrape across both reloads: every 500ms, so no gap near
    // two intervals, and every request the exporter saw is a sample in the store.
    let gap = longest_gap(&kept_requests, watched_from);
    assert!(gap < Duration::from_millis(800), "kept target gap {gap:?}");
    let times = sample_times(&sidecar, "up{job=\"kept\"}", "3s").await;
    let ups = query(&sidecar, "min_over_time(up{job=\"kept\"}[10s])", None).await;
    assert_eq!(ups[0]["value"][1], "1", "{ups:?}");
    assert!(times.len() >= 5, "{times:?}");

    // The changed target restarted with its new interval: about 8 scrapes in 2s, not 4.
    let times = sample_times(&sidecar, "up{job=\"changed\"}", "2s").await;
    assert!(times.len() >= 6, "{times:?}");
    let ups = query(&sidecar, "up{job=\"changed\"}", None).await;
    assert_eq!(ups[0]["value"][1], "1", "{ups:?}");
}
