//! The real binary against real oracles (DESIGN §1 "Exposition", STYLE habit 7): a batch of
//! every event type posted over HTTP, then `/metrics` read by Python's `prometheus_client`
//! parsers, `promtool check metrics` and a real Prometheus scrape.
//!
//! Each test needs an outside program; see `support::available` for what happens when it is
//! missing.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    ENGINE, Exporter, PROMETHEUS, PROMTOOL, PYTHON_PROMETHEUS_CLIENT, Process, STRATEGY, TRICKY,
    all_samples, assert_every_type, available, every_type, python_parse, run_with_input, samples,
    unix_now,
};

/// An exporter that has taken the every-type batch.
async fn exporter_with_every_type() -> (tempfile::TempDir, Exporter, support::EveryType) {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(dir.path()).await;
    let batch = every_type(unix_now() - 120);
    exporter.post_all(&batch.events).await;
    (dir, exporter, batch)
}

#[tokio::test]
async fn openmetrics_parses_in_prometheus_client() {
    let test = "openmetrics_parses_in_prometheus_client";
    if !available(test, &[&PYTHON_PROMETHEUS_CLIENT]) {
        return;
    }
    let (_dir, exporter, batch) = exporter_with_every_type().await;
    let om = exporter.openmetrics().await;
    assert!(om.ends_with("# EOF\n"), "no # EOF at the end:\n{om}");
    let families = python_parse("openmetrics", &om);
    let samples = all_samples(&families);
    assert_every_type("OpenMetrics", &samples, &batch);

    let family = |name: &str| {
        families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name} in:\n{om}"))
    };
    for (name, kind) in &batch.types {
        assert_eq!(family(name).kind, *kind, "type of {name}");
    }
    assert_eq!(
        family("trading_order_latency_seconds").unit.as_deref(),
        Some("seconds")
    );
    assert_eq!(family("desk_widgets").help, "Widgets made at a desk.");
    // The self-metrics of DESIGN §4 come through the same parser.
    let received = |t: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == "tradewatch_events_received_total"
                    && s.labels.get("type").map(String::as_str) == Some(t)
            })
            .map(|s| s.value())
    };
    assert_eq!(received("order"), Some(2.0));
    assert_eq!(received("metric"), Some(7.0));
    let build = family("tradewatch_build_info");
    assert_eq!(build.samples.len(), 1);
    assert_eq!(
        build.samples[0].labels.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn text_format_parses_in_prometheus_client_like_openmetrics() {
    let test = "text_format_parses_in_prometheus_client_like_openmetrics";
    if !available(test, &[&PYTHON_PROMETHEUS_CLIENT]) {
        return;
    }
    let (_dir, exporter, batch) = exporter_with_every_type().await;
    let text = exporter.text().await;
    assert!(!text.contains("# EOF"), "text 0.0.4 has no # EOF");
    let text_samples = all_samples(&python_parse("text", &text));
    assert_every_type("text 0.0.4", &text_samples, &batch);

    // Both formats carry the same trading samples, label for label.
    let om_samples = all_samples(&python_parse("openmetrics", &exporter.openmetrics().await));
    let trading = |samples: &[support::PySample]| -> BTreeMap<String, f64> {
        samples
            .iter()
            .filter(|s| s.name.starts_with("trading_") || s.name.starts_with("desk_"))
            .map(|s| (format!("{} {:?}", s.name, s.labels), s.value()))
            .collect()
    };
    let (from_text, from_om) = (trading(&text_samples), trading(&om_samples));
    assert!(from_text.len() > 100, "{from_text:#?}");
    assert_eq!(from_text, from_om);
}

/// Lint findings fail this test as parse errors do: the catalog's and the self-metrics' names
/// are designed lint-clean and the batch's own `metric` events carry help, so a finding means
/// a name or a HELP line went wrong.
#[tokio::test]
async fn text_format_passes_promtool_check_metrics() {
    let test = "text_format_passes_promtool_check_metrics";
    if !available(test, &[&PROMTOOL]) {
        return;
    }
    let (_dir, exporter, _batch) = exporter_with_every_type().await;
    let text = exporter.text().await;
    let (status, stdout, stderr) =
        run_with_input("promtool", &["check", "metrics"], text.as_bytes());
    let output = format!("{stdout}{stderr}");
    assert!(
        !output.contains("error while linting") && !output.contains("parsing error"),
        "promtool cannot parse /metrics ({status}):\n{output}\n--- exposition ---\n{text}"
    );
    assert!(
        status.success(),
        "promtool lint findings ({status}):\n{output}"
    );
}

/// `tradewatch check metrics` on our own `/metrics`, in both formats: valid and lint-clean.
#[tokio::test]
async fn tradewatch_check_metrics_passes_our_own_output() {
    let (_dir, exporter, _batch) = exporter_with_every_type().await;
    let bin = env!("CARGO_BIN_EXE_tradewatch");
    for (format, text) in [
        ("openmetrics", exporter.openmetrics().await),
        ("text", exporter.text().await),
    ] {
        let (status, stdout, stderr) = run_with_input(
            bin,
            &["check", "metrics", "--format", format],
            text.as_bytes(),
        );
        assert!(
            status.success(),
            "check metrics --format {format} ({status}):\n{stdout}{stderr}"
        );
    }
    let (status, stdout, _) = run_with_input(bin, &["check", "metrics"], b"a 1\na 2\n# EOF\n");
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("line 2"), "{stdout}");
    let (status, stdout, _) = run_with_input(
        bin,
        &["check", "metrics", "--format", "text"],
        b"# TYPE a counter\na 1\n",
    );
    assert_eq!(status.code(), Some(3), "{stdout}");
    let (status, _, _) = run_with_input(
        bin,
        &["check", "metrics", "--format", "text", "--lint", "none"],
        b"# TYPE a counter\na 1\n",
    );
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn metrics_are_gzipped_when_asked() {
    let (_dir, exporter, _batch) = exporter_with_every_type().await;
    for (accept, plain) in [
        (
            "application/openmetrics-text;version=1.0.0",
            exporter.openmetrics().await,
        ),
        ("text/plain;version=0.0.4", exporter.text().await),
    ] {
        let (status, headers, body) = exporter
            .get(
                "/metrics",
                &[("accept", accept), ("accept-encoding", "gzip, deflate")],
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-encoding"], "gzip", "{accept}");
        let vary = headers["vary"].to_str().unwrap().to_ascii_lowercase();
        assert!(vary.contains("accept-encoding"), "Vary: {vary}");
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut unzipped)
            .expect("a gzip body");
        let prefixes = ["trading_", "desk_"];
        assert_eq!(samples(&unzipped, &prefixes), samples(&plain, &prefixes));
        assert!(samples(&unzipped, &prefixes).len() > 100);
        assert_eq!(
            unzipped.ends_with("# EOF\n"),
            plain.ends_with("# EOF\n"),
            "{accept}"
        );
    }
}

/// A Prometheus server on a free port, scraping `target` every second.
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
                 scrape_configs:\n  - job_name: tradewatch\n    static_configs:\n      \
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
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
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
}

#[tokio::test]
async fn prometheus_scrapes_the_exporter() {
    let test = "prometheus_scrapes_the_exporter";
    if !available(test, &[&PROMETHEUS]) {
        return;
    }
    let (_dir, exporter, _batch) = exporter_with_every_type().await;
    let mut prometheus = Prometheus::start(exporter.addr).await;

    let orders = format!("trading_orders_total{{engine=\"{ENGINE}\",status=\"filled\"}}");
    let started = Instant::now();
    loop {
        let up = prometheus.query("up{job=\"tradewatch\"}").await;
        let scraped = prometheus.query(&orders).await;
        if up.iter().any(|(_, v)| *v == 1.0) && !scraped.is_empty() {
            break;
        }
        assert!(
            up.iter().all(|(_, v)| *v != 0.0),
            "Prometheus's scrape of the exporter failed (up is 0)\n--- log ---\n{}",
            prometheus.process.log()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus has not scraped {orders} within 60s (up: {up:?})\n--- log ---\n{}",
            prometheus.process.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let one = |what: &str, mut v: Vec<(BTreeMap<String, String>, f64)>| {
        assert_eq!(v.len(), 1, "{what}: {v:?}");
        v.remove(0)
    };
    let (labels, value) = one(&orders, prometheus.query(&orders).await);
    assert_eq!(value, 1.0);
    assert_eq!(
        labels["strategy"], STRATEGY,
        "escaped label value in Prometheus"
    );
    assert_eq!(labels["job"], "tradewatch");
    assert_eq!(labels["instance"], exporter.addr.to_string());
    let (_, pnl) = one(
        "pnl",
        prometheus
            .query(&format!(
                "trading_pnl_daily{{engine=\"{ENGINE}\",currency=\"USD\"}}"
            ))
            .await,
    );
    assert_eq!(pnl, -120.5);
    let (labels, widgets) = one("widgets", prometheus.query("desk_widgets_total").await);
    assert_eq!(widgets, 3.5);
    assert_eq!(labels["desk"], TRICKY, "escaped label value in Prometheus");
    let (_, latency) = one(
        "latency count",
        prometheus
            .query("trading_order_latency_seconds_count")
            .await,
    );
    assert_eq!(latency, 2.0);
    let (_, le) = one(
        "bucket",
        prometheus
            .query("trading_order_latency_seconds_bucket{le=\"0.05\"}")
            .await,
    );
    assert_eq!(le, 1.0);

    let status = prometheus.process.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "prometheus exited with {status}");
}
