//! The scrape loop against real HTTP targets: a small axum server serving expositions the test
//! changes between scrapes, and our own exporter started in-process. Each test calls
//! `scrape_once` with the time as a parameter; one runs the `Scraper` loop itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use tradewatch::config::{Config, ScrapeConfig, ScrapeTarget};
use tradewatch::model::duration::PromDuration;
use tradewatch::model::labels::Labels;
use tradewatch::scrape::Format;
use tradewatch::scrape::scraper::Scraper;
use tradewatch::scrape::target::{ACCEPT_HEADER, ScrapeError, Target, scrape_once};
use tradewatch::store::{Matcher, Queryable, Sample, Store, StoreOptions, is_stale_nan};
use tradewatch::telemetry::Telemetry;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the test server answers, and what it saw in the last request.
#[derive(Default)]
struct Serving {
    status: u16,
    content_type: String,
    body: String,
    gzip: bool,
    /// When set, requests without `Authorization: Bearer <token>` get a 401.
    token: Option<String>,
    last_request: Option<HeaderMap>,
    /// How long to wait before answering.
    delay: Option<Duration>,
}

type Shared = Arc<Mutex<Serving>>;

async fn metrics(State(serving): State<Shared>, headers: HeaderMap) -> Response {
    let delay = serving.lock().delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut s = serving.lock();
    s.last_request = Some(headers.clone());
    if let Some(token) = &s.token {
        let want = format!("Bearer {token}");
        if headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()) != Some(want.as_bytes()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let status = StatusCode::from_u16(s.status).unwrap();
    if s.gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(s.body.as_bytes()).unwrap();
        (
            status,
            [
                (header::CONTENT_TYPE, s.content_type.clone()),
                (header::CONTENT_ENCODING, "gzip".to_owned()),
            ],
            enc.finish().unwrap(),
        )
            .into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, s.content_type.clone())],
            s.body.clone(),
        )
            .into_response()
    }
}

/// A target server on 127.0.0.1; dropped with the runtime at the end of the test.
async fn serve(content_type: &str, body: &str) -> (SocketAddr, Shared) {
    let serving = Arc::new(Mutex::new(Serving {
        status: 200,
        content_type: content_type.to_owned(),
        body: body.to_owned(),
        ..Serving::default()
    }));
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(serving.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, serving)
}

fn scrape_config(targets: Vec<ScrapeTarget>) -> ScrapeConfig {
    ScrapeConfig {
        interval: PromDuration(Duration::from_secs(1)),
        timeout: PromDuration(Duration::from_secs(1)),
        targets,
        ..ScrapeConfig::default()
    }
}

fn target_config(addr: SocketAddr) -> ScrapeTarget {
    ScrapeTarget {
        labels: BTreeMap::from([("env".to_owned(), "test".to_owned())]),
        ..ScrapeTarget::new(format!("http://{addr}/metrics"), "engine")
    }
}

fn target(addr: SocketAddr) -> Target {
    let config = target_config(addr);
    Target::new(&config, &scrape_config(vec![config.clone()])).unwrap()
}

fn store() -> Store {
    Store::new(StoreOptions {
        retention_ms: 3_600_000,
    })
}

/// Every series matching `matchers`, with all their samples.
fn series(store: &Store, matchers: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
    let mut out = Vec::new();
    store
        .select(matchers, i64::MIN, i64::MAX, &mut |labels, samples| {
            out.push((labels.clone(), samples.to_vec()));
        })
        .unwrap();
    out
}

/// The samples of the one series named `name` with the target's job.
fn samples_of(store: &Store, name: &str) -> Vec<Sample> {
    let found = series(
        store,
        &[
            Matcher::equal("__name__", name),
            Matcher::equal("job", "engine"),
        ],
    );
    assert_eq!(found.len(), 1, "one series {name}: {found:?}");
    found.into_iter().next().unwrap().1
}

/// The value of `name` at `t`.
fn value_at(store: &Store, name: &str, t: i64) -> f64 {
    samples_of(store, name)
        .iter()
        .find(|s| s.t == t)
        .unwrap_or_else(|| panic!("{name} has no sample at {t}"))
        .f
}

const EXPOSITION: &str = "\
# TYPE orders counter
# HELP orders Orders sent.
orders_total{side=\"buy\"} 3
orders_total{side=\"sell\"} 5
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.5\"} 1
latency_seconds_bucket{le=\"1\"} 2
latency_seconds_bucket{le=\"1e6\"} 3
latency_seconds_bucket{le=\"+Inf\"} 3
latency_seconds_sum 4.5
latency_seconds_count 3
# TYPE rtt_seconds summary
rtt_seconds{quantile=\"0.5\"} 0.1
rtt_seconds{quantile=\"1\"} 0.2
rtt_seconds_sum 0.3
rtt_seconds_count 2
# TYPE positions gauge
positions{job=\"theirs\",instance=\"elsewhere\"} 7
# EOF
";

#[tokio::test]
async fn series_carry_job_instance_and_target_labels_with_report_series() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let target = target(addr);
    let store = store();

    let report = scrape_once(&target, &store, 10_000).await;
    assert!(report.is_up(), "{report:?}");
    assert_eq!(report.samples, 13);
    assert_eq!(report.series_added, 13);

    // Prometheus 3's Accept header, and gzip offered.
    let request = serving.lock().last_request.clone().unwrap();
    assert_eq!(request[header::ACCEPT], ACCEPT_HEADER);
    assert!(
        request[header::ACCEPT_ENCODING]
            .to_str()
            .unwrap()
            .contains("gzip")
    );
    assert_eq!(request["x-prometheus-scrape-timeout-seconds"], "1");
    assert!(
        request[header::USER_AGENT]
            .to_str()
            .unwrap()
            .starts_with("tradewatch/")
    );

    let instance = addr.to_string();
    let buy = series(&store, &[Matcher::equal("side", "buy")]);
    assert_eq!(buy.len(), 1);
    let (labels, samples) = &buy[0];
    assert_eq!(
        labels,
        &Labels::from_pairs([
            ("__name__", "orders_total"),
            ("side", "buy"),
            ("job", "engine"),
            ("instance", instance.as_str()),
            ("env", "test"),
        ])
    );
    assert_eq!(samples, &[Sample { t: 10_000, f: 3.0 }]);

    // A scraped label that clashes with a target label is kept as exported_<name>.
    let positions = series(&store, &[Matcher::equal("__name__", "positions")]);
    assert_eq!(positions.len(), 1);
    let labels = &positions[0].0;
    assert_eq!(labels.get("job"), Some("engine"));
    assert_eq!(labels.get("instance"), Some(instance.as_str()));
    assert_eq!(labels.get("exported_job"), Some("theirs"));
    assert_eq!(labels.get("exported_instance"), Some("elsewhere"));

    // The report series, with the target's labels.
    assert_eq!(value_at(&store, "up", 10_000), 1.0);
    assert_eq!(value_at(&store, "scrape_samples_scraped", 10_000), 13.0);
    assert_eq!(
        value_at(&store, "scrape_samples_post_metric_relabeling", 10_000),
        13.0
    );
    assert_eq!(value_at(&store, "scrape_series_added", 10_000), 13.0);
    let took = value_at(&store, "scrape_duration_seconds", 10_000);
    assert!(took > 0.0 && took < 1.0, "{took}");
    let up = series(&store, &[Matcher::equal("__name__", "up")]);
    assert_eq!(
        up[0].0,
        Labels::from_pairs([
            ("__name__", "up"),
            ("job", "engine"),
            ("instance", instance.as_str()),
            ("env", "test"),
        ])
    );

    // A second scrape of the same series adds none.
    let report = scrape_once(&target, &store, 11_000).await;
    assert_eq!(report.series_added, 0);
    assert_eq!(value_at(&store, "scrape_series_added", 11_000), 0.0);
    assert_eq!(value_at(&store, "up", 11_000), 1.0);
}

#[tokio::test]
async fn le_and_quantile_values_are_normalised_as_prometheus_3_does() {
    let (addr, _serving) = serve(OPENMETRICS, EXPOSITION).await;
    let store = store();
    assert!(scrape_once(&target(addr), &store, 1_000).await.is_up());

    let mut les: Vec<String> = series(
        &store,
        &[Matcher::equal("__name__", "latency_seconds_bucket")],
    )
    .into_iter()
    .map(|(l, _)| l.get("le").unwrap().to_owned())
    .collect();
    les.sort();
    assert_eq!(les, ["+Inf", "0.5", "1.0", "1e+06"]);

    let mut quantiles: Vec<String> = series(&store, &[Matcher::equal("__name__", "rtt_seconds")])
        .into_iter()
        .map(|(l, _)| l.get("quantile").unwrap().to_owned())
        .collect();
    quantiles.sort();
    assert_eq!(quantiles, ["0.5", "1.0"]);
}

#[tokio::test]
async fn a_series_that_disappears_gets_a_staleness_marker() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let target = target(addr);
    let store = store();
    assert!(scrape_once(&target, &store, 1_000).await.is_up());

    serving.lock().body = EXPOSITION.replace("orders_total{side=\"sell\"} 5\n", "");
    let report = scrape_once(&target, &store, 2_000).await;
    assert!(report.is_up());
    assert_eq!(report.stale, 1);
    assert_eq!(report.series_added, 0);

    let sell = series(&store, &[Matcher::equal("side", "sell")]);
    let samples = &sell[0].1;
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0], Sample { t: 1_000, f: 5.0 });
    assert_eq!(samples[1].t, 2_000);
    assert!(is_stale_nan(samples[1].f));
    let buy = series(&store, &[Matcher::equal("side", "buy")]);
    assert!(buy[0].1.iter().all(|s| !is_stale_nan(s.f)));

    // It comes back: counted as added again.
    serving.lock().body = EXPOSITION.to_owned();
    let report = scrape_once(&target, &store, 3_000).await;
    assert_eq!(report.series_added, 1);
}

#[tokio::test]
async fn a_failed_scrape_writes_up_0_and_marks_every_series_stale() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let target = target(addr);
    let store = store();
    assert!(scrape_once(&target, &store, 1_000).await.is_up());

    serving.lock().status = 500;
    let report = scrape_once(&target, &store, 2_000).await;
    assert!(matches!(report.error, Some(ScrapeError::Status(s)) if s == 500));
    assert_eq!(report.stale, 13);
    assert_eq!(value_at(&store, "up", 2_000), 0.0);
    assert_eq!(value_at(&store, "scrape_samples_scraped", 2_000), 0.0);
    assert_eq!(value_at(&store, "scrape_series_added", 2_000), 0.0);

    let scraped = series(&store, &[Matcher::equal("env", "test")]);
    let report_names = [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ];
    let mut stale = 0;
    for (labels, samples) in &scraped {
        if report_names.contains(&labels.metric_name().unwrap()) {
            continue;
        }
        let last = samples.last().unwrap();
        assert_eq!(last.t, 2_000, "{labels}");
        assert!(is_stale_nan(last.f), "{labels}");
        stale += 1;
    }
    assert_eq!(stale, 13);

    // A second failure has nothing left to mark.
    let report = scrape_once(&target, &store, 3_000).await;
    assert_eq!(report.stale, 0);
    assert_eq!(value_at(&store, "up", 3_000), 0.0);
}

#[tokio::test]
async fn a_target_nobody_listens_on_is_down() {
    // Bind and drop to get a port with no listener.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let store = store();
    let report = scrape_once(&target(addr), &store, 1_000).await;
    assert!(
        matches!(report.error, Some(ScrapeError::Request(_))),
        "{report:?}"
    );
    assert_eq!(value_at(&store, "up", 1_000), 0.0);
}

#[tokio::test]
async fn a_scrape_slower_than_the_timeout_fails() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    serving.lock().delay = Some(Duration::from_secs(5));
    let mut config = scrape_config(vec![target_config(addr)]);
    config.timeout = PromDuration(Duration::from_millis(100));
    let target = Target::new(&config.targets[0], &config).unwrap();
    let store = store();
    let report = scrape_once(&target, &store, 1_000).await;
    assert!(report.duration < Duration::from_secs(2), "{report:?}");
    let error = report.error.expect("timed out");
    assert_eq!(error.reason(), "timeout", "{error}");
    assert_eq!(value_at(&store, "up", 1_000), 0.0);
}

#[tokio::test]
async fn a_gzipped_body_is_decompressed() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    serving.lock().gzip = true;
    let store = store();
    let report = scrape_once(&target(addr), &store, 1_000).await;
    assert!(report.is_up(), "{report:?}");
    assert_eq!(report.samples, 13);
    let buy = series(&store, &[Matcher::equal("side", "buy")]);
    assert_eq!(buy[0].1, [Sample { t: 1_000, f: 3.0 }]);
}

#[tokio::test]
async fn the_bearer_token_is_read_from_its_file() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    serving.lock().token = Some("s3cret".to_owned());
    let store = store();

    // Without the token: 401, down.
    let report = scrape_once(&target(addr), &store, 1_000).await;
    assert!(matches!(report.error, Some(ScrapeError::Status(s)) if s == 401));

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let mut config = target_config(addr);
    config.bearer_token_file = Some(token_file);
    let with_token = Target::new(&config, &scrape_config(vec![config.clone()])).unwrap();
    let report = scrape_once(&with_token, &store, 2_000).await;
    assert!(report.is_up(), "{report:?}");
    assert_eq!(value_at(&store, "up", 2_000), 1.0);

    // A missing token file fails the scrape.
    config.bearer_token_file = Some(dir.path().join("missing"));
    let missing = Target::new(&config, &scrape_config(vec![config.clone()])).unwrap();
    let report = scrape_once(&missing, &store, 3_000).await;
    assert!(matches!(report.error, Some(ScrapeError::TokenFile { .. })));
}

#[tokio::test]
async fn a_text_0_0_4_target_is_parsed_as_text_and_timestamps_are_honoured() {
    let body = "\
# HELP orders_total Orders sent.
# TYPE orders_total counter
orders_total{side=\"buy\"} 3
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"1\"} 2
latency_seconds_bucket{le=\"+Inf\"} 3
latency_seconds_sum 4.5
latency_seconds_count 3
exposed_at 42 900
";
    let (addr, serving) = serve(TEXT, body).await;
    let target = target(addr);
    let store = store();
    let report = scrape_once(&target, &store, 1_000).await;
    assert!(report.is_up(), "{report:?}");
    assert_eq!(report.samples, 6);
    assert_eq!(value_at(&store, "orders_total", 1_000), 3.0);
    let bucket = series(
        &store,
        &[
            Matcher::equal("__name__", "latency_seconds_bucket"),
            Matcher::equal("le", "1.0"),
        ],
    );
    assert_eq!(bucket.len(), 1);
    // An exposed timestamp is kept (honor_timestamps), and such a series is not tracked
    // for staleness.
    assert_eq!(
        samples_of(&store, "exposed_at"),
        [Sample { t: 900, f: 42.0 }]
    );
    serving.lock().body = body.replace("exposed_at 42 900\n", "");
    let report = scrape_once(&target, &store, 2_000).await;
    assert_eq!(report.stale, 0);

    // The same body sent as OpenMetrics lacks `# EOF`: an invalid exposition fails the scrape.
    serving.lock().content_type = OPENMETRICS.to_owned();
    let report = scrape_once(&target, &store, 3_000).await;
    assert!(
        matches!(report.error, Some(ScrapeError::Parse(_))),
        "{report:?}"
    );
}

#[tokio::test]
async fn an_unknown_content_type_fails_the_scrape() {
    let (addr, _serving) = serve("application/json", "{}").await;
    let store = store();
    let report = scrape_once(&target(addr), &store, 1_000).await;
    assert!(matches!(report.error, Some(ScrapeError::ContentType(_))));
    assert_eq!(value_at(&store, "up", 1_000), 0.0);
}

#[tokio::test]
async fn a_body_reaching_the_limit_fails_the_scrape() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let store = store();
    // As Prometheus's LimitReader check (`n >= limit`): a body of exactly the limit fails.
    let limited = target(addr).with_body_limit(EXPOSITION.len());
    let report = scrape_once(&limited, &store, 1_000).await;
    assert!(
        matches!(report.error, Some(ScrapeError::BodyTooLarge { limit }) if limit == EXPOSITION.len()),
        "{report:?}"
    );
    assert_eq!(
        report.error.as_ref().unwrap().to_string(),
        "body size limit exceeded"
    );
    assert_eq!(value_at(&store, "up", 1_000), 0.0);
    assert!(series(&store, &[Matcher::equal("__name__", "orders_total")]).is_empty());

    // The limit applies to the decompressed body.
    serving.lock().gzip = true;
    let report = scrape_once(&limited, &store, 2_000).await;
    assert!(matches!(
        report.error,
        Some(ScrapeError::BodyTooLarge { .. })
    ));
    let roomy = target(addr).with_body_limit(EXPOSITION.len() + 1);
    assert!(scrape_once(&roomy, &store, 3_000).await.is_up());
    // 0 is no limit.
    let unlimited = target(addr).with_body_limit(0);
    assert!(scrape_once(&unlimited, &store, 4_000).await.is_up());
}

/// A target whose `/metrics` never ends: `# HELP` lines for ever, gzipped when `gzip`.
async fn serve_endless(gzip: bool) -> SocketAddr {
    async fn endless(State(gzip): State<bool>) -> Response {
        let chunk = "# HELP filler Endless.\n".repeat(4096).into_bytes();
        // One gzip stream, flushed after each chunk so that every chunk goes out at once.
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunks = futures_util::stream::unfold(encoder, move |mut encoder| {
            let chunk = chunk.clone();
            async move {
                let out = if gzip {
                    encoder.write_all(&chunk).unwrap();
                    encoder.flush().unwrap();
                    std::mem::take(encoder.get_mut())
                } else {
                    chunk
                };
                Some((
                    Ok::<_, std::convert::Infallible>(bytes::Bytes::from(out)),
                    encoder,
                ))
            }
        });
        let mut response = axum::body::Body::from_stream(chunks).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, OPENMETRICS.parse().unwrap());
        if gzip {
            headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        }
        response
    }
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(endless))
        .with_state(gzip);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn an_endless_body_stops_at_the_limit_plain_and_gzipped() {
    for gzip in [false, true] {
        let addr = serve_endless(gzip).await;
        let store = store();
        // A timeout far beyond what reading 1 MiB takes: the limit ends the read, not it.
        let mut config = target_config(addr);
        config.timeout = Some(PromDuration(Duration::from_secs(30)));
        config.interval = Some(PromDuration(Duration::from_secs(30)));
        let target = Target::new(&config, &scrape_config(vec![]))
            .unwrap()
            .with_body_limit(1 << 20);
        let report = scrape_once(&target, &store, 1_000).await;
        assert!(
            matches!(report.error, Some(ScrapeError::BodyTooLarge { .. })),
            "gzip {gzip}: {report:?}"
        );
        assert!(report.duration < Duration::from_secs(30), "{report:?}");
        assert_eq!(value_at(&store, "up", 1_000), 0.0);
    }
}

#[tokio::test]
async fn a_scrape_over_the_sample_limit_fails_as_a_whole() {
    // EXPOSITION holds 13 samples.
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let telemetry = Arc::new(Telemetry::new());
    let store = store();
    let target = target(addr)
        .with_sample_limit(13)
        .with_telemetry(telemetry.clone());
    let report = scrape_once(&target, &store, 1_000).await;
    assert!(report.is_up(), "{report:?}");

    // One sample more: nothing of it is stored, up is 0, every series of the previous scrape
    // is marked stale as after any failed scrape.
    serving.lock().body = EXPOSITION.replace("# EOF\n", "extra_total 1\n# EOF\n");
    let report = scrape_once(&target, &store, 2_000).await;
    assert!(
        matches!(
            report.error,
            Some(ScrapeError::SampleLimit {
                limit: 13,
                samples: 14
            })
        ),
        "{report:?}"
    );
    assert_eq!(
        report.error.as_ref().unwrap().to_string(),
        "sample limit exceeded"
    );
    assert_eq!(report.stale, 13);
    assert_eq!(value_at(&store, "up", 2_000), 0.0);
    // As Prometheus records it: every sample counted as scraped, the limit's worth appended.
    assert_eq!(value_at(&store, "scrape_samples_scraped", 2_000), 14.0);
    assert_eq!(
        value_at(&store, "scrape_samples_post_metric_relabeling", 2_000),
        13.0
    );
    assert!(series(&store, &[Matcher::equal("__name__", "extra_total")]).is_empty());
    let buy = series(&store, &[Matcher::equal("side", "buy")]);
    let last = buy[0].1.last().unwrap();
    assert_eq!(last.t, 2_000);
    assert!(is_stale_nan(last.f));
    assert!(
        buy[0].1.iter().all(|s| s.t != 2_000 || is_stale_nan(s.f)),
        "no partial append: {buy:?}"
    );

    // Back under the limit: up again, the series come back as added.
    serving.lock().body = EXPOSITION.to_owned();
    let report = scrape_once(&target, &store, 3_000).await;
    assert!(report.is_up(), "{report:?}");
    assert_eq!(report.series_added, 13);

    let text = telemetry.registry(None).encode(Format::Text);
    assert!(
        text.contains(&format!(
            "tradewatch_scrapes_total{{result=\"sample_limit\",target=\"http://{addr}/metrics\"}} 1.0\n"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn limits_and_timing_come_from_the_target_or_the_section() {
    let (addr, _serving) = serve(OPENMETRICS, EXPOSITION).await;
    let store = store();
    let mut section = scrape_config(vec![]);
    section.sample_limit = 10;
    section.interval = PromDuration(Duration::from_secs(5));
    // The section's limit applies to a target that sets none.
    let plain = Target::new(&target_config(addr), &section).unwrap();
    assert_eq!(plain.interval(), Duration::from_secs(5));
    let report = scrape_once(&plain, &store, 1_000).await;
    assert!(
        matches!(report.error, Some(ScrapeError::SampleLimit { .. })),
        "{report:?}"
    );
    // The target's own settings win.
    let mut own = target_config(addr);
    own.job = "own".to_owned();
    own.sample_limit = Some(0);
    own.interval = Some(PromDuration(Duration::from_millis(250)));
    own.body_size_limit = Some("16B".parse().unwrap());
    let target = Target::new(&own, &section).unwrap();
    assert_eq!(target.interval(), Duration::from_millis(250));
    let report = scrape_once(&target, &store, 1_000).await;
    assert!(
        matches!(report.error, Some(ScrapeError::BodyTooLarge { limit: 16 })),
        "{report:?}"
    );
    own.body_size_limit = Some("1KiB".parse().unwrap());
    let target = Target::new(&own, &section).unwrap();
    assert!(scrape_once(&target, &store, 2_000).await.is_up());
}

#[tokio::test]
async fn each_scrape_counts_in_our_own_telemetry() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let telemetry = Arc::new(Telemetry::new());
    let target = target(addr).with_telemetry(telemetry.clone());
    let store = store();
    scrape_once(&target, &store, 1_000).await;
    scrape_once(&target, &store, 2_000).await;
    serving.lock().status = 503;
    scrape_once(&target, &store, 3_000).await;

    let text = telemetry.registry(None).encode(Format::Text);
    let url = format!("http://{addr}/metrics");
    assert!(
        text.contains(&format!(
            "tradewatch_scrapes_total{{result=\"success\",target=\"{url}\"}} 2.0\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tradewatch_scrapes_total{{result=\"status\",target=\"{url}\"}} 1.0\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tradewatch_scrape_duration_seconds_count{{target=\"{url}\"}} 3\n"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn the_scraper_scrapes_every_target_until_stopped() {
    let (addr, _serving) = serve(OPENMETRICS, EXPOSITION).await;
    let mut config = scrape_config(vec![target_config(addr)]);
    config.interval = PromDuration(Duration::from_millis(50));
    config.timeout = PromDuration(Duration::from_millis(50));
    let store = Arc::new(store());
    let scraper = Scraper::start(&config, store.clone(), None).unwrap();

    // Wait (with a deadline) for a few scrapes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ups = series(&store, &[Matcher::equal("__name__", "up")]);
        if ups.first().is_some_and(|(_, s)| s.len() >= 3) {
            break;
        }
        assert!(Instant::now() < deadline, "no three scrapes in 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    scraper.stop().await;
    let ups = samples_of(&store, "up");
    assert!(ups.iter().all(|s| s.f == 1.0));
    assert!(ups.windows(2).all(|w| w[0].t < w[1].t));

    // An invalid target is refused before any loop starts.
    let mut bad = target_config(addr);
    bad.url = "not a url".to_owned();
    let err = Scraper::start(&scrape_config(vec![bad]), store, None).unwrap_err();
    assert!(matches!(err, ScrapeError::InvalidUrl { .. }), "{err}");
}

#[tokio::test]
async fn our_own_exporter_scrapes_cleanly() {
    tradewatch::server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let text = serde_json::json!({
        "server": {"listen": "127.0.0.1:0"},
        "storage": {"data_dir": dir.path().join("data").display().to_string(), "fsync": "never"},
    })
    .to_string();
    let config = Config::parse(&text, "scrape-test.yaml").unwrap();
    let exporter = tradewatch::roles::Exporter::start(&config).await.unwrap();
    let addr = exporter.addr;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(exporter.run(async move {
        let _ = stop_rx.await;
    }));

    let target = target(addr);
    let store = store();
    let report = scrape_once(&target, &store, 1_000).await;
    assert!(report.is_up(), "{report:?}");
    assert!(report.samples > 0);
    assert_eq!(report.refused, 0);
    let build = series(
        &store,
        &[Matcher::equal("__name__", "tradewatch_build_info")],
    );
    assert_eq!(build.len(), 1, "{build:?}");
    let labels = &build[0].0;
    assert_eq!(labels.get("job"), Some("engine"));
    assert_eq!(labels.get("instance"), Some(addr.to_string().as_str()));
    assert_eq!(labels.get("env"), Some("test"));

    // An event posted to it shows up at the next scrape.
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body("{\"type\":\"kill_switch\",\"engine\":\"e\",\"active\":true}\n")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let report = scrape_once(&target, &store, 2_000).await;
    assert!(report.is_up(), "{report:?}");
    assert!(report.series_added >= 1, "{report:?}");
    let kill = series(
        &store,
        &[Matcher::equal("__name__", "trading_kill_switch_active")],
    );
    assert_eq!(kill.len(), 1, "{kill:?}");
    assert_eq!(kill[0].0.get("engine"), Some("e"));
    assert_eq!(kill[0].1, [Sample { t: 2_000, f: 1.0 }]);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_restarted_target_keeps_its_staleness_tracking_and_a_removed_one_marks_everything() {
    let (addr, serving) = serve(OPENMETRICS, EXPOSITION).await;
    let store = store();
    let old = target(addr);
    assert!(scrape_once(&old, &store, 1_000).await.is_up());

    // The same target with new settings (a reload) takes over what the old one saw: a series
    // gone by its first scrape gets its marker, and nothing counts as added.
    let mut config = target_config(addr);
    config.interval = Some(PromDuration(Duration::from_millis(500)));
    let new = Target::new(&config, &scrape_config(vec![])).unwrap();
    new.adopt_history(&old);
    serving.lock().body = EXPOSITION.replace("orders_total{side=\"sell\"} 5\n", "");
    let report = scrape_once(&new, &store, 2_000).await;
    assert!(report.is_up(), "{report:?}");
    assert_eq!(report.series_added, 0);
    assert_eq!(report.stale, 1);
    let sell = series(&store, &[Matcher::equal("side", "sell")]);
    assert!(is_stale_nan(sell[0].1.last().unwrap().f));

    // Removed: its 12 series and the 5 report series are marked stale.
    assert_eq!(new.mark_gone(&store, 3_000), 12 + 5);
    for (labels, samples) in series(&store, &[Matcher::equal("job", "engine")]) {
        let last = samples.last().unwrap();
        assert!(is_stale_nan(last.f), "{labels} {samples:?}");
    }
}
