//! The exporter's HTTP API in-process (no socket): statuses, replies, limits, tokens,
//! idempotency, restart from snapshot and journal.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tradewatch::api::{AppState, router};
use tradewatch::config::{Config, Secret, Tokens};
use tradewatch::exporter::Registry;
use tradewatch::ingest::Ingest;
use tradewatch::telemetry::Telemetry;

struct Exporter {
    router: Router,
    ingest: Arc<Ingest>,
    _dir: Option<tempfile::TempDir>,
}

fn config(dir: &std::path::Path, extra: &str) -> Config {
    let dir = dir.display();
    let text = match extra.strip_prefix("storage:\n") {
        Some(rest) => format!("storage:\n  data_dir: {dir}\n{rest}"),
        None => format!("storage:\n  data_dir: {dir}\n  fsync: never\n{extra}"),
    };
    Config::parse(&text, "test.yaml").unwrap()
}

fn start_in(config: &Config, tokens: Tokens) -> (Router, Arc<Ingest>) {
    let limits = &config.exporter.limits;
    let registry = Arc::new(Registry::with_limits(
        limits.max_series_per_family,
        limits.max_series_total,
    ));
    let telemetry = Arc::new(Telemetry::new());
    let (ingest, _) = Ingest::start(config, registry, telemetry.clone()).unwrap();
    let ingest = Arc::new(ingest);
    let state = AppState::exporter(config, ingest.clone(), Arc::default(), telemetry, tokens);
    (router(state), ingest)
}

fn start(extra: &str) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    let (router, ingest) = start_in(&config(dir.path(), extra), Tokens::default());
    Exporter {
        router,
        ingest,
        _dir: Some(dir),
    }
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn post(body: impl Into<Body>, content_type: &str) -> Request<Body> {
    Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

fn ndjson(body: &str) -> Request<Body> {
    post(body.to_owned(), "application/x-ndjson")
}

async fn metrics(router: &Router) -> String {
    let req = Request::get("/metrics")
        .header(header::ACCEPT, "application/openmetrics-text")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(router, req).await;
    assert_eq!(status, StatusCode::OK);
    body
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

const ORDER: &str = r#"{"type":"order","engine":"e1","strategy":"mom","status":"filled","venue":"binance","side":"buy","latency_seconds":0.012}"#;

#[tokio::test]
async fn good_and_bad_lines_in_one_batch() {
    let x = start("");
    let body = format!(
        "{ORDER}\n\n{{\"type\":\"order\",\"statsu\":\"filled\"}}\n{{\"type\":\"fill\",\"symbol\":\"BTC\",\"side\":\"sell\",\"quantity\":2,\"price\":10.5}}\nnot json\n{{\"type\":\"order\",\"breaker\":\"x\",\"status\":\"filled\",\"venue\":\"v\",\"side\":\"buy\"}}\n{{\"type\":\"fill\",\"symbol\":\"BTC\",\"side\":\"buy\",\"quantity\":1}}\n"
    );
    let (status, _, body) = send(&x.router, ndjson(&body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reply = json(&body);
    assert_eq!(reply["accepted"], 2);
    assert_eq!(reply["duplicates"], 0);
    let rejected = reply["rejected"].as_array().unwrap();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 5, 6, 7]);
    assert_eq!(rejected[0]["error"], "unknown field `statsu`");
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("at column "),
        "{body}"
    );
    assert_eq!(
        rejected[2]["error"],
        "field `breaker` does not apply to type `order`"
    );
    assert_eq!(
        rejected[3]["error"],
        "missing required field `price` for type `fill`"
    );
    let m = metrics(&x.router).await;
    assert!(m.contains("trading_orders_total{engine=\"e1\",strategy=\"mom\",venue=\"binance\",side=\"buy\",status=\"filled\"} 1.0\n"), "{m}");
    assert!(
        m.contains(
            "trading_traded_notional_total{engine=\"default\",symbol=\"BTC\",side=\"sell\"} 21.0\n"
        ),
        "{m}"
    );
    assert!(
        m.contains("tradewatch_events_rejected_total{reason=\"unknown_field\"} 2.0\n"),
        "{m}"
    );
    assert!(
        m.contains("tradewatch_events_rejected_total{reason=\"malformed\"} 1.0\n"),
        "{m}"
    );
    assert!(
        m.contains("tradewatch_events_rejected_total{reason=\"missing_field\"} 1.0\n"),
        "{m}"
    );
    assert!(m.ends_with("# EOF\n"));
}

#[tokio::test]
async fn nothing_applicable_is_400_and_changes_nothing() {
    let x = start("");
    let before = metrics(&x.router).await;
    let (status, _, body) = send(
        &x.router,
        ndjson("{\"type\":\"nope\"}\n{\"type\":\"kill_switch\"}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reply = json(&body);
    assert_eq!(reply["accepted"], 0);
    assert_eq!(reply["rejected"][0]["error"], "unknown event type `nope`");
    assert_eq!(
        reply["rejected"][1]["error"],
        "missing required field `active` for type `kill_switch`"
    );
    let after = metrics(&x.router).await;
    let trading = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("trading_"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(trading(&before), trading(&after));
    let (status, _, body) = send(&x.router, ndjson("  \n")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"], "the body holds no events");
}

#[tokio::test]
async fn json_arrays_and_single_objects() {
    let x = start("");
    let body = format!(
        "[{ORDER},\n  {{\n \"type\": \"heartbeat\",\n \"engine\": \"e2\", \"ts\": \"2026-01-02T03:04:05.250Z\"}}, {{\"type\":\"bad\"}}]"
    );
    let (status, _, body) = send(&x.router, post(body, "application/json; charset=utf-8")).await;
    assert_eq!(status, StatusCode::OK);
    let reply = json(&body);
    assert_eq!(reply["accepted"], 2);
    assert_eq!(reply["rejected"][0]["line"], 3);
    let (status, _, _) = send(&x.router, post(ORDER, "application/json")).await;
    assert_eq!(status, StatusCode::OK);
    let m = metrics(&x.router).await;
    assert!(
        m.contains("trading_engine_heartbeat_timestamp_seconds{engine=\"e2\"} 1767323045.25\n"),
        "{m}"
    );
    assert!(m.contains("status=\"filled\"} 2.0\n"), "{m}");
    // A pretty-printed element is journaled on one line: a restart replays it.
    let journal = std::fs::read_dir(x.ingest.data_dir().join("journal"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(journal).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}

#[tokio::test]
async fn content_types_and_encodings() {
    let x = start("");
    let (status, _, body) = send(&x.router, post(ORDER, "text/plain")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("application/x-ndjson")
    );
    let (status, _, _) = send(
        &x.router,
        Request::post("/api/v1/events")
            .body(Body::from(ORDER))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{ORDER}\n{ORDER}\n").as_bytes())
        .unwrap();
    let req = Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let (status, _, body) = send(&x.router, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["accepted"], 2);

    let req = Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from("not gzip"))
        .unwrap();
    let (status, _, _) = send(&x.router, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn size_limits_are_413() {
    let x = start(
        "exporter:\n  limits:\n    max_body_bytes: 1000\n    max_decoded_body_bytes: 5000\n    max_events_per_batch: 3\n",
    );
    let big = format!("{ORDER}\n").repeat(10);
    let (status, _, body) = send(&x.router, ndjson(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json(&body)["error"],
        "the body is over the limit of 1000 bytes"
    );

    let bomb = " ".repeat(6000) + ORDER;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bomb.as_bytes()).unwrap();
    let req = Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let (status, _, body) = send(&x.router, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json(&body)["error"],
        "the decompressed body is over the limit of 5000 bytes"
    );

    let four = "{\"type\":\"heartbeat\"}\n".repeat(4);
    let (status, _, body) = send(&x.router, ndjson(&four)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&body)["error"], "the batch holds over 3 events");
    assert!(
        metrics(&x.router)
            .await
            .contains("tradewatch_events_rejected_total{reason=\"too_large\"} 3.0")
    );
}

#[tokio::test]
async fn label_and_series_limits() {
    let x = start(
        "exporter:\n  limits:\n    max_series_per_family: 2\n    max_label_value_bytes: 8\n    max_labels_per_metric: 2\n",
    );
    let events = [
        r#"{"type":"decision","decision":"a"}"#,
        r#"{"type":"decision","decision":"b"}"#,
        r#"{"type":"decision","decision":"c"}"#,
        r#"{"type":"decision","decision":"a"}"#,
        r#"{"type":"decision","decision":"waytoolong"}"#,
        r#"{"type":"metric","kind":"gauge","name":"g","value":1,"labels":{"a":"1","b":"2","c":"3"}}"#,
    ];
    let (status, _, body) = send(&x.router, ndjson(&events.join("\n"))).await;
    assert_eq!(status, StatusCode::OK);
    let reply = json(&body);
    assert_eq!(reply["accepted"], 3, "{body}");
    let errors: Vec<(u64, &str)> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "family trading_decisions is at its limit of 2 series"),
            (5, "decision is 10 bytes, over the limit of 8"),
            (6, "3 labels, over the limit of 2"),
        ]
    );
    let m = metrics(&x.router).await;
    assert!(m.contains("trading_decisions_total{engine=\"default\",decision=\"a\"} 2.0"));
    assert!(!m.contains("decision=\"c\""));
}

#[tokio::test]
async fn metric_events_and_reserved_names() {
    let x = start("exporter:\n  buckets:\n    job_seconds: [1, 2]\n");
    let events = [
        r#"{"type":"metric","kind":"counter","name":"jobs_total","value":2,"labels":{"queue":"a\"b\\c\nd"}}"#,
        r#"{"type":"metric","kind":"counter","name":"jobs","value":1.5,"labels":{"queue":"a\"b\\c\nd"}}"#,
        r#"{"type":"metric","kind":"gauge","name":"temp","value":-3.5,"strategy":"s1","help":"A \"temp\"."}"#,
        r#"{"type":"metric","kind":"histogram","name":"job_seconds","value":1.5}"#,
        r#"{"type":"metric","kind":"gauge","name":"jobs","value":1}"#,
        r#"{"type":"metric","kind":"gauge","name":"trading_x","value":1}"#,
        r#"{"type":"metric","kind":"gauge","name":"x","value":1,"labels":{"__a":"1"}}"#,
        r#"{"type":"metric","kind":"counter","name":"c","value":-1}"#,
        r#"{"type":"metric","kind":"gauge","name":"9x","value":1}"#,
        r#"{"type":"metric","kind":"gauge","name":"x","value":1,"labels":{"engine":"1"}}"#,
        r#"{"type":"metric","kind":"summary","name":"x","value":1}"#,
    ];
    let (_, _, body) = send(&x.router, ndjson(&events.join("\n"))).await;
    let reply = json(&body);
    assert_eq!(reply["accepted"], 4, "{body}");
    let errors: Vec<&str> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        vec![
            "metric jobs is already registered as a counter",
            "metric name \"trading_x\" uses the reserved prefix `trading_`",
            "label name \"__a\" uses the reserved prefix `__`",
            "value (a counter increment) must be a finite number ≥ 0, not -1",
            "metric name \"9x\" is not a valid Prometheus metric name",
            "label \"engine\" comes from the event's top-level `engine` field",
            "kind must be counter, gauge or histogram, not \"summary\"",
        ]
    );
    let m = metrics(&x.router).await;
    assert!(
        m.contains("jobs_total{engine=\"default\",queue=\"a\\\"b\\\\c\\nd\"} 3.5\n"),
        "{m}"
    );
    assert!(
        m.contains("# HELP temp A \\\"temp\\\".\ntemp{engine=\"default\",strategy=\"s1\"} -3.5\n")
            || m.contains("temp{engine=\"default\",strategy=\"s1\"} -3.5\n"),
        "{m}"
    );
    assert!(
        m.contains("job_seconds_bucket{engine=\"default\",le=\"2.0\"} 1\n"),
        "{m}"
    );
}

#[tokio::test]
async fn idempotency_within_and_across_batches_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let batch = r#"{"type":"fill","id":"f1","symbol":"X","side":"buy","quantity":1,"price":2}
{"type":"fill","id":"f1","symbol":"X","side":"buy","quantity":1,"price":2}
{"type":"fill","id":"f2","symbol":"X","side":"buy","quantity":1,"price":2}"#;
    {
        let (router, _ingest) = start_in(&cfg, Tokens::default());
        let (_, _, body) = send(&router, ndjson(batch)).await;
        assert_eq!(
            json(&body),
            serde_json::json!({"accepted": 2, "duplicates": 1, "rejected": []})
        );
        let (status, _, body) = send(&router, ndjson(batch)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json(&body),
            serde_json::json!({"accepted": 0, "duplicates": 3, "rejected": []})
        );
    }
    // Dropping the pipeline writes a snapshot; restart from it, then again from the journal only.
    let (router, ingest) = start_in(&cfg, Tokens::default());
    let (_, _, body) = send(&router, ndjson(batch)).await;
    assert_eq!(json(&body)["duplicates"], 3);
    assert!(
        metrics(&router)
            .await
            .contains("trading_fills_total{engine=\"default\",symbol=\"X\",side=\"buy\"} 2.0\n")
    );
    drop(router);
    drop(ingest);
    std::fs::remove_dir_all(dir.path().join("snapshot")).unwrap();
    let (router, _ingest) = start_in(&cfg, Tokens::default());
    let (_, _, body) = send(&router, ndjson(batch)).await;
    assert_eq!(json(&body)["duplicates"], 3);
    assert!(
        metrics(&router)
            .await
            .contains("trading_fills_total{engine=\"default\",symbol=\"X\",side=\"buy\"} 2.0\n")
    );
}

#[tokio::test]
async fn restart_restores_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let events = [
        ORDER,
        r#"{"type":"pnl","daily":-120.5,"realized":10,"strategy":"s"}"#,
        r#"{"type":"portfolio","value":1000,"cash":5,"positions":[{"symbol":"A","quantity":1,"value":2},{"symbol":"B","quantity":3,"value":4}]}"#,
        r#"{"type":"circuit_breaker","breaker":"dd","active":true}"#,
        r#"{"type":"circuit_breaker","breaker":"dd","active":true}"#,
        r#"{"type":"circuit_breaker","breaker":"dd","active":false}"#,
        r#"{"type":"circuit_breaker","breaker":"dd","active":true}"#,
        r#"{"type":"portfolio","positions":[{"symbol":"B","quantity":3,"value":5}]}"#,
        r#"{"type":"span","function":"f","duration_seconds":0.3,"ok":false}"#,
        r#"{"type":"api_call","api":"orders","ok":false,"code":429,"duration_seconds":0.1}"#,
    ];
    let before = {
        let (router, _ingest) = start_in(&cfg, Tokens::default());
        let (_, _, body) = send(&router, ndjson(&events[..5].join("\n"))).await;
        assert_eq!(json(&body)["accepted"], 5);
        _ingest.shutdown();
        let (router, _ingest) = start_in(&cfg, Tokens::default());
        let (_, _, body) = send(&router, ndjson(&events[5..].join("\n"))).await;
        assert_eq!(json(&body)["accepted"], 5);
        metrics(&router).await
    };
    let trading = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("trading_"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        before.contains(
            "trading_circuit_breaker_trips_total{engine=\"default\",breaker=\"dd\"} 2.0\n"
        ),
        "{before}"
    );
    assert!(before.contains("trading_position_value{engine=\"default\",symbol=\"B\"} 5.0\n"));
    assert!(!before.contains("symbol=\"A\""));
    assert!(
        before.contains(
            "trading_api_errors_total{engine=\"default\",api=\"orders\",code=\"429\"} 1.0\n"
        ),
        "{before}"
    );
    // Journal only (no snapshot): the same state.
    std::fs::remove_dir_all(dir.path().join("snapshot")).unwrap();
    let (router, _ingest) = start_in(&cfg, Tokens::default());
    assert_eq!(trading(&before), trading(&metrics(&router).await));
}

#[tokio::test]
async fn tokens_are_enforced_per_scope() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens {
        ingest: Some(Secret::new("in")),
        admin: Some(Secret::new("ad")),
        read: Some(Secret::new("rd")),
    };
    let (router, _ingest) = start_in(&config(dir.path(), ""), tokens);
    let with = |req: Request<Body>, token: Option<&str>| {
        let (mut parts, body) = req.into_parts();
        if let Some(t) = token {
            parts.headers.insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        Request::from_parts(parts, body)
    };
    for (token, expected) in [
        (None, 401),
        (Some("rd"), 401),
        (Some("in"), 200),
        (Some("ad"), 200),
    ] {
        let (status, headers, _) = send(&router, with(ndjson(ORDER), token)).await;
        assert_eq!(status.as_u16(), expected, "{token:?}");
        if expected == 401 {
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(send(&router, get("/api/v1/health")).await.0, 401);
    assert_eq!(
        send(&router, with(get("/api/v1/health"), Some("rd")))
            .await
            .0,
        200
    );
    assert_eq!(
        send(&router, with(get("/api/v1/events/schema"), Some("in")))
            .await
            .0,
        401
    );
    for open in ["/metrics", "/-/healthy", "/-/ready"] {
        assert_eq!(send(&router, get(open)).await.0, 200, "{open}");
    }
}

#[tokio::test]
async fn metrics_negotiation_and_gzip() {
    let x = start("");
    send(&x.router, ndjson(ORDER)).await;
    let (status, headers, body) = send(
        &x.router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(body.contains("# TYPE trading_orders_total counter\n") && !body.contains("# EOF"));
    assert!(body.contains("process_resident_memory_bytes "));
    let req = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .header(header::ACCEPT_ENCODING, "gzip, deflate")
        .body(Body::empty())
        .unwrap();
    let res = x.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    assert!(text.contains("# TYPE trading_orders counter\n") && text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn schema_health_and_changes() {
    let x = start("");
    let (status, headers, body) = send(
        &x.router,
        Request::get("/api/v1/events/schema")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "application/schema+json");
    json(&body);
    let (_, _, body) = send(
        &x.router,
        Request::get("/api/v1/changes?after=0&timeout=10ms")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(json(&body), serde_json::json!({"seq": 0}));
    let router = x.router.clone();
    let waiter = tokio::spawn(async move {
        send(
            &router,
            Request::get("/api/v1/changes?after=0&timeout=30s")
                .body(Body::empty())
                .unwrap(),
        )
        .await
    });
    send(&x.router, ndjson(r#"{"type":"heartbeat","engine":"e9"}"#)).await;
    let (_, _, body) = waiter.await.unwrap();
    assert_eq!(json(&body), serde_json::json!({"seq": 1}));
    let (status, _, body) = send(
        &x.router,
        Request::get("/api/v1/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let report = json(&body);
    assert_eq!(report["status"], "healthy");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["journal", "disk", "heartbeat:e9"]);
}

#[tokio::test]
async fn old_heartbeats_turn_health_critical() {
    let x = start("exporter:\n  heartbeat_timeout: 10s\n");
    send(
        &x.router,
        ndjson(r#"{"type":"heartbeat","engine":"old","ts":1000}"#),
    )
    .await;
    let (status, _, body) = send(
        &x.router,
        Request::get("/api/v1/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["status"], "critical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_is_429_with_retry_after() {
    let x = start("storage:\n  fsync: batch\nexporter:\n  limits:\n    max_queued_events: 10\n");
    let batch: String = (0..10)
        .map(|i| format!("{{\"type\":\"decision\",\"decision\":\"d{}\"}}\n", i % 3))
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let router = x.router.clone();
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = (0, 0);
            for _ in 0..20 {
                let (status, headers, _) = send(&router, ndjson(&batch)).await;
                match status.as_u16() {
                    200 => seen.0 += 1,
                    429 => {
                        assert_eq!(headers[header::RETRY_AFTER], "1");
                        seen.1 += 1;
                    }
                    s => panic!("unexpected status {s}"),
                }
            }
            seen
        }));
    }
    let (mut ok, mut full) = (0, 0);
    for t in tasks {
        let (a, b) = t.await.unwrap();
        ok += a;
        full += b;
    }
    assert!(full > 0, "no 429 in {ok} requests");
    let m = metrics(&x.router).await;
    let total: f64 = m
        .lines()
        .filter(|l| l.starts_with("trading_decisions_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, f64::from(ok * 10));
}

#[tokio::test]
async fn rejected_metric_events_register_nothing() {
    let x = start("exporter:\n  limits:\n    max_series_per_family: 1\n");
    let events = [
        r#"{"type":"metric","kind":"counter","name":"q","value":1,"labels":{"a":"1"}}"#,
        r#"{"type":"metric","kind":"counter","name":"q","value":1,"labels":{"a":"2"}}"#,
        r#"{"type":"metric","kind":"gauge","name":"r","value":1,"ts":null}"#,
        r#"{"type":"metric","kind":"histogram","name":"h","value":1}"#,
        r#"{"type":"metric","kind":"gauge","name":"h_count","value":1}"#,
        r#"{"type":"metric","kind":"counter","name":"_total","value":1}"#,
        r#"{"type":"metric","kind":"histogram","name":"neg","value":-1}"#,
    ];
    let (_, _, body) = send(&x.router, ndjson(&events.join("\n"))).await;
    let reply = json(&body);
    assert_eq!(reply["accepted"], 2, "{body}");
    let errors: Vec<&str> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        vec![
            "family q is at its limit of 1 series",
            "invalid type: null, expected an RFC 3339 time or Unix seconds",
            "metric h_count clashes with the samples of histogram h",
            "metric name \"_total\" leaves an empty family name",
            "value (a histogram observation) must be a finite number ≥ 0, not -1",
        ]
    );
    // `r` was never applied, so a counter of that name is fine; `neg` neither.
    let (_, _, body) = send(&x.router, ndjson("{\"type\":\"metric\",\"kind\":\"counter\",\"name\":\"r\",\"value\":1}\n{\"type\":\"metric\",\"kind\":\"gauge\",\"name\":\"neg\",\"value\":-1}")).await;
    assert_eq!(json(&body)["accepted"], 2, "{body}");
}

#[tokio::test]
async fn an_event_with_an_old_ts_stays_a_duplicate_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "exporter:\n  idempotency_window: 1h\n");
    let event = r#"{"type":"decision","decision":"buy","id":"old-1","ts":"2020-01-01T00:00:00Z"}"#;
    {
        let (router, _ingest) = start_in(&cfg, Tokens::default());
        assert_eq!(json(&send(&router, ndjson(event)).await.2)["accepted"], 1);
        assert_eq!(json(&send(&router, ndjson(event)).await.2)["duplicates"], 1);
    }
    for keep_snapshot in [true, false] {
        if !keep_snapshot {
            std::fs::remove_dir_all(dir.path().join("snapshot")).unwrap();
        }
        let (router, _ingest) = start_in(&cfg, Tokens::default());
        assert_eq!(
            json(&send(&router, ndjson(event)).await.2)["duplicates"],
            1,
            "snapshot kept: {keep_snapshot}"
        );
        assert!(
            metrics(&router)
                .await
                .contains("trading_decisions_total{engine=\"default\",decision=\"buy\"} 1.0\n")
        );
    }
}

#[tokio::test]
async fn positions_listed_without_fields_are_kept() {
    let x = start("");
    send(&x.router, ndjson(r#"{"type":"portfolio","positions":[{"symbol":"A","quantity":1,"value":2},{"symbol":"B","quantity":3,"value":4}]}"#)).await;
    send(
        &x.router,
        ndjson(r#"{"type":"portfolio","positions":[{"symbol":"A","value":5}]}"#),
    )
    .await;
    let m = metrics(&x.router).await;
    assert!(
        m.contains("trading_position_quantity{engine=\"default\",symbol=\"A\"} 1.0\n"),
        "{m}"
    );
    assert!(
        m.contains("trading_position_value{engine=\"default\",symbol=\"A\"} 5.0\n"),
        "{m}"
    );
    assert!(!m.contains("symbol=\"B\""), "{m}");
}
