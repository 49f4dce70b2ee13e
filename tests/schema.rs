//! The event schema (`schema/events.schema.json`), the README and the decoder agree: every event
//! example of README.md is accepted through the exporter's HTTP API and is valid against the
//! schema; on generated good and bad events the schema accepts exactly what the exporter
//! accepts; the schema, the README's tables and the README's configuration reference name what
//! the code has; and the README's Python example runs.
//!
//! Event examples are README.md's fenced blocks whose info string is exactly `json` (one event
//! or an array of events) or `ndjson` (one event a line), and the `--data-binary '…'` payloads
//! of its `sh` blocks; ingest replies are marked `json reply`. Schema validation runs Python's
//! `jsonschema` (tests/python/validate_schema.py): without python3 or the module, those checks
//! print one `skipped:` line and pass, except under `CI=true`, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Once};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tradewatch::api::{AppState, router};
use tradewatch::config::{Config, Tokens};
use tradewatch::exporter::collectors::files;
use tradewatch::exporter::{Catalog, MetricType, Registry};
use tradewatch::ingest::Ingest;
use tradewatch::ingest::event::EVENT_TYPES;
use tradewatch::telemetry::Telemetry;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The fields every event may carry besides its type's.
const COMMON: [&str; 6] = ["type", "ts", "id", "engine", "strategy", "attrs"];

/// Trading metrics that collectors write and no event feeds (the README says so in their row):
/// listed after the catalog's in the README's table, and not in the catalog.
const COLLECTED: [(&str, MetricType); 1] = [(files::METRIC, MetricType::Gauge)];

// ---------------------------------------------------------------------------------------------
// An exporter in-process
// ---------------------------------------------------------------------------------------------

struct Exporter {
    router: Router,
    _dir: tempfile::TempDir,
}

/// An exporter on the default configuration with a fresh data directory.
fn exporter() -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = serde_json::to_string(&dir.path().display().to_string()).unwrap();
    let text = format!("storage:\n  data_dir: {data_dir}\n  fsync: never\n");
    let config = Config::parse(&text, "schema-test.yaml").unwrap();
    let limits = &config.exporter.limits;
    let registry = Arc::new(Registry::with_limits(
        limits.max_series_per_family,
        limits.max_series_total,
    ));
    let telemetry = Arc::new(Telemetry::new());
    let (ingest, _) = Ingest::start(&config, registry, telemetry.clone()).unwrap();
    let state = AppState::exporter(
        &config,
        Arc::new(ingest),
        Arc::default(),
        telemetry,
        Tokens::default(),
    );
    Exporter {
        router: router(state),
        _dir: dir,
    }
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Posts `body` as `content_type`; returns the status and the reply.
async fn post(router: &Router, body: String, content_type: &str) -> (StatusCode, Value) {
    let request = Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let (status, text) = send(router, request).await;
    let reply = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the reply is not JSON ({e}): {text}"));
    (status, reply)
}

async fn get(router: &Router, uri: &str) -> (StatusCode, String) {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

// ---------------------------------------------------------------------------------------------
// README.md
// ---------------------------------------------------------------------------------------------

fn readme() -> String {
    std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README.md")
}

/// A fenced code block: the line of its opening fence, its info string, its text.
struct Block {
    line: usize,
    info: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        line: i + 1,
                        info: info.trim().to_owned(),
                        text: String::new(),
                    });
                }
            }
            Some(block) => {
                if trimmed.trim_end() == "```" {
                    out.push(open.take().expect("a block is open"));
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "README.md: a code block is never closed");
    out
}

/// One event example: where it is, its body as the README shows it, and its events.
struct Example {
    line: usize,
    ndjson: bool,
    body: String,
    events: Vec<Value>,
}

fn parse_events(line: usize, ndjson: bool, body: &str) -> Vec<Value> {
    let parse = |text: &str, at: usize| -> Value {
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("README.md:{at}: example is not JSON ({e}): {text}"))
    };
    if ndjson {
        body.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| parse(l, line + 1 + i))
            .collect()
    } else {
        match parse(body, line) {
            Value::Array(events) => events,
            event => vec![event],
        }
    }
}

/// Every event example of the README.
fn readme_examples() -> Vec<Example> {
    let mut out = Vec::new();
    for block in blocks(&readme()) {
        match block.info.as_str() {
            "json" | "ndjson" => {
                let ndjson = block.info == "ndjson";
                out.push(Example {
                    line: block.line,
                    ndjson,
                    events: parse_events(block.line, ndjson, &block.text),
                    body: block.text,
                });
            }
            "sh" => {
                let mut rest = block.text.as_str();
                while let Some(at) = rest.find("--data-binary '") {
                    let command = &rest[..at];
                    let command = &command[command.rfind("curl").unwrap_or(0)..];
                    let payload = &rest[at + "--data-binary '".len()..];
                    let end = payload.find('\'').expect("a closing quote");
                    let body = &payload[..end];
                    let ndjson = command.contains("application/x-ndjson");
                    out.push(Example {
                        line: block.line,
                        ndjson,
                        events: parse_events(block.line, ndjson, body.trim_start_matches('\n')),
                        body: body.to_owned(),
                    });
                    rest = &payload[end + 1..];
                }
            }
            _ => {}
        }
    }
    assert!(
        out.len() >= 3,
        "README.md should hold event examples in json and ndjson blocks"
    );
    out
}

/// The lines of the Markdown table that follows `heading`, split into trimmed cells.
fn table_after(markdown: &str, heading: &str) -> Vec<Vec<String>> {
    let start = markdown
        .lines()
        .position(|l| l.trim() == heading)
        .unwrap_or_else(|| panic!("README.md has no heading {heading:?}"));
    markdown
        .lines()
        .skip(start + 1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The backticked words of `text` outside parentheses (`` `a` (`b`), `c` `` gives a and c).
fn backticked(text: &str) -> Vec<String> {
    let mut depth = 0;
    let mut outside = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The schema, through Python's jsonschema
// ---------------------------------------------------------------------------------------------

fn schema() -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/schema/events.schema.json")).unwrap();
    serde_json::from_str(&text).expect("the schema is JSON")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

static SKIPPED: Once = Once::new();

/// Skips the schema checks for `reason`: one line on stderr per run (past the harness's capture,
/// so it shows in a passing run), or a failure under `CI=true`.
fn skip(reason: &str) {
    if ci() {
        panic!("schema validation: {reason}, and nothing may be skipped under CI=true");
    }
    SKIPPED.call_once(|| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: schema validation with python jsonschema: {reason} (pip install jsonschema)"
        );
    });
}

/// Validates `instances` against the schema: for each, `None` when valid or the validator's
/// error; `None` overall when the validator is not installed (the check is skipped).
fn validate(instances: &[Value]) -> Option<Vec<Option<String>>> {
    let script = format!("{ROOT}/tests/python/validate_schema.py");
    let schema = format!("{ROOT}/schema/events.schema.json");
    let child = Command::new("python3")
        .arg(&script)
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            skip(&format!("python3 cannot run ({e})"));
            return None;
        }
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = serde_json::to_vec(instances).unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        skip(stderr.trim());
        return None;
    }
    assert!(out.status.success(), "validate_schema.py failed: {stderr}");
    let results: Vec<Option<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), instances.len());
    Some(results)
}

// ---------------------------------------------------------------------------------------------
// The README's examples
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn readme_examples_are_accepted_by_the_exporter() {
    for example in readme_examples() {
        let exporter = exporter();
        let content_type = if example.ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        let (status, reply) = post(&exporter.router, example.body.clone(), content_type).await;
        assert_eq!(
            reply,
            json!({"accepted": example.events.len(), "duplicates": 0, "rejected": []}),
            "README.md:{}: the example is not accepted whole",
            example.line
        );
        assert_eq!(status, StatusCode::OK, "README.md:{}", example.line);
    }
}

#[test]
fn readme_examples_are_valid_against_the_schema() {
    let mut events = Vec::new();
    let mut lines = Vec::new();
    for example in readme_examples() {
        for event in example.events {
            events.push(event);
            lines.push(example.line);
        }
    }
    let Some(results) = validate(&events) else {
        return;
    };
    let invalid: Vec<String> = results
        .iter()
        .zip(&events)
        .zip(&lines)
        .filter_map(|((r, e), l)| r.as_ref().map(|r| format!("README.md:{l}: {e}\n    {r}")))
        .collect();
    assert!(
        invalid.is_empty(),
        "README examples the schema rejects:\n{}",
        invalid.join("\n")
    );
}

#[test]
fn readme_examples_show_every_event_type() {
    let shown: BTreeSet<String> = readme_examples()
        .iter()
        .flat_map(|e| &e.events)
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect();
    for t in EVENT_TYPES {
        assert!(
            shown.contains(t.as_str()),
            "README.md has no example of `{}`",
            t.as_str()
        );
    }
}

#[test]
fn readme_replies_have_the_reply_shape() {
    let replies: Vec<Block> = blocks(&readme())
        .into_iter()
        .filter(|b| b.info == "json reply")
        .collect();
    assert!(!replies.is_empty());
    for block in replies {
        let reply: Value = serde_json::from_str(&block.text)
            .unwrap_or_else(|e| panic!("README.md:{}: reply is not JSON: {e}", block.line));
        let keys: Vec<&String> = reply.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["accepted", "duplicates", "rejected"],
            "README.md:{}",
            block.line
        );
        assert!(reply["accepted"].is_u64() && reply["duplicates"].is_u64());
        for rejected in reply["rejected"].as_array().unwrap() {
            assert!(rejected["line"].as_u64().is_some_and(|l| l >= 1));
            assert!(rejected["error"].is_string());
        }
    }
    for block in blocks(&readme())
        .iter()
        .filter(|b| b.info.starts_with("json "))
    {
        serde_json::from_str::<Value>(&block.text)
            .unwrap_or_else(|e| panic!("README.md:{}: not JSON: {e}", block.line));
    }
}

#[tokio::test]
async fn readme_examples_feed_every_metric_of_the_readme_catalog() {
    let exporter = exporter();
    for example in readme_examples() {
        let content_type = if example.ndjson {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        post(&exporter.router, example.body, content_type).await;
    }
    let (_, text) = get(&exporter.router, "/metrics").await;
    let readme = readme();
    for row in table_after(&readme, "### Trading metrics") {
        let name = backticked(&row[0]).remove(0);
        if COLLECTED.iter().any(|(collected, _)| *collected == name) {
            continue;
        }
        let fed = text.lines().any(|l| {
            l.strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with("_bucket{"))
        });
        assert!(fed, "no README example feeds {name}:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The README's tables and references against the code
// ---------------------------------------------------------------------------------------------

/// The name a family's samples go by: counters with `_total`.
fn exposed_name(name: &str, kind: MetricType) -> String {
    match kind {
        MetricType::Counter => format!("{name}_total"),
        _ => name.to_owned(),
    }
}

#[test]
fn readme_metric_tables_list_what_the_exporter_serves() {
    let readme = readme();
    let registry = Registry::default();
    let catalog = Catalog::new(&registry, &BTreeMap::new());
    let mut expected: Vec<(String, &str)> = catalog
        .all()
        .iter()
        .map(|f| (exposed_name(f.name(), f.kind()), f.kind().as_str()))
        .collect();
    for (name, kind) in COLLECTED {
        assert!(
            !expected.iter().any(|(n, _)| n == name),
            "{name} is both in the catalog and collected: it would be served twice"
        );
        expected.push((exposed_name(name, kind), kind.as_str()));
    }
    let listed: Vec<(String, String)> = table_after(&readme, "### Trading metrics")
        .iter()
        .map(|row| (backticked(&row[0]).remove(0), row[1].clone()))
        .collect();
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    for ((name, kind), (listed_name, listed_kind)) in expected.iter().zip(&listed) {
        assert_eq!(listed_name, name);
        assert!(
            listed_kind.starts_with(kind),
            "{name}: {listed_kind} ≠ {kind}"
        );
    }

    let telemetry = Telemetry::new();
    let expected: BTreeSet<(String, &str)> = telemetry
        .registry(None)
        .families()
        .iter()
        .map(|f| (exposed_name(f.name(), f.kind()), f.kind().as_str()))
        .collect();
    let listed: BTreeSet<(String, &str)> = table_after(&readme, "### tradewatch's own metrics")
        .iter()
        .map(|row| {
            let kind = match row[1].as_str() {
                "counter" => "counter",
                "gauge" => "gauge",
                "histogram" => "histogram",
                other => panic!("unknown type {other}"),
            };
            (backticked(&row[0]).remove(0), kind)
        })
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn readme_event_table_lists_the_decoders_fields() {
    let rows = table_after(&readme(), "### Event types");
    let listed: Vec<String> = rows.iter().map(|r| backticked(&r[0]).remove(0)).collect();
    let types: Vec<&str> = EVENT_TYPES.iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, types);
    for (row, t) in rows.iter().zip(EVENT_TYPES) {
        let (required, optional) = t.fields();
        assert_eq!(
            backticked(&row[1]),
            required,
            "README required fields of {}",
            t.as_str()
        );
        assert_eq!(
            backticked(&row[2]),
            optional,
            "README optional fields of {}",
            t.as_str()
        );
    }
}

/// Every key name of a configuration, as `serde` writes it (map keys chosen by the user are
/// left out, their values are not).
fn config_keys(value: &Value, parent: &str, out: &mut BTreeSet<String>) {
    const USER_KEYS: [&str; 6] = [
        "buckets",
        "labels",
        "external_labels",
        "receivers",
        "headers",
        "config",
    ];
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if !USER_KEYS.contains(&parent) {
                    out.insert(key.clone());
                }
                // The inline Alertmanager configuration is Alertmanager's, not tradewatch's.
                if key != "config" {
                    config_keys(v, key, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| config_keys(v, parent, out)),
        _ => {}
    }
}

#[test]
fn readme_configuration_reference_names_every_key() {
    let mut keys = BTreeSet::new();
    for fixture in ["full.yaml", "remote.yaml"] {
        let path = format!("{ROOT}/tests/data/config/{fixture}");
        let config = Config::load(std::path::Path::new(&path)).unwrap();
        config_keys(&serde_json::to_value(&config).unwrap(), "", &mut keys);
    }
    let readme = readme();
    let start = readme.find("## Configuration reference").unwrap();
    let end = readme.find("## Event API reference").unwrap();
    let prose: String = readme[start..end]
        .lines()
        .scan(false, |fenced, line| {
            let fence = line.trim_start().starts_with("```");
            *fenced ^= fence;
            Some(if *fenced || fence { "" } else { line })
        })
        .collect::<Vec<_>>()
        .join("\n");
    let words: BTreeSet<&str> = prose
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !words.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README's configuration reference does not name {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The schema against the decoder
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn schema_names_the_decoders_fields_and_is_served() {
    let schema = schema();
    let types: Vec<&str> = schema["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let expected: Vec<&str> = EVENT_TYPES.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, expected);
    for t in EVENT_TYPES {
        let def = &schema["$defs"][t.as_str()];
        let (required, optional) = t.fields();
        let properties: BTreeSet<&str> = def["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no $defs/{}", t.as_str()))
            .keys()
            .map(String::as_str)
            .collect();
        let fields: BTreeSet<&str> = COMMON
            .iter()
            .chain(required)
            .chain(optional)
            .copied()
            .collect();
        assert_eq!(properties, fields, "schema fields of {}", t.as_str());
        let listed: Vec<&str> = def["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut expected = vec!["type"];
        expected.extend(required);
        assert_eq!(listed, expected, "schema required fields of {}", t.as_str());
        assert_eq!(def["additionalProperties"], json!(false));
        for (field, property) in def["properties"].as_object().unwrap() {
            let described = property["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty());
            assert!(described, "{}.{field} has no description", t.as_str());
        }
    }
    let exporter = exporter();
    let (status, served) = get(&exporter.router, "/api/v1/events/schema").await;
    assert_eq!(status, StatusCode::OK);
    let file = std::fs::read_to_string(format!("{ROOT}/schema/events.schema.json")).unwrap();
    assert_eq!(served, file);
}

/// One event of each type with only its required fields.
fn minimal() -> Vec<Value> {
    vec![
        json!({"type": "heartbeat"}),
        json!({"type": "engine_start"}),
        json!({"type": "order", "status": "filled", "venue": "binance", "side": "buy"}),
        json!({"type": "fill", "symbol": "BTCUSDT", "side": "sell", "quantity": 0.5, "price": 64000}),
        json!({"type": "decision", "decision": "hold"}),
        json!({"type": "cycle", "duration_seconds": 0}),
        json!({"type": "rebalance", "result": "failed"}),
        json!({"type": "portfolio"}),
        json!({"type": "limits"}),
        json!({"type": "pnl"}),
        json!({"type": "circuit_breaker", "breaker": "max_order_rate", "active": false}),
        json!({"type": "kill_switch", "active": true}),
        json!({"type": "connectivity", "target": "binance-ws", "up": false}),
        json!({"type": "api_call", "api": "binance.new_order"}),
        json!({"type": "data_provider", "provider": "polygon"}),
        json!({"type": "error", "component": "router", "kind": "timeout"}),
        json!({"type": "span", "function": "compute", "duration_seconds": 0.25}),
        json!({"type": "lock_wait", "lock": "book", "duration_seconds": 1e-6}),
        json!({"type": "metric", "kind": "gauge", "name": "queue_depth", "value": -3}),
    ]
}

/// One event of each type with every field it may carry.
fn full() -> Vec<Value> {
    let common = json!({
        "ts": "2026-03-02T14:30:00.250Z", "id": "x", "engine": "engine-1",
        "strategy": "momentum", "attrs": {"note": "full", "n": [1, 2]}
    });
    let fields = [
        json!({"type": "heartbeat"}),
        json!({"type": "engine_start"}),
        json!({"type": "order", "status": "partially_filled", "venue": "binance", "side": "buy",
               "symbol": "BTCUSDT", "latency_seconds": 0.012}),
        json!({"type": "fill", "symbol": "BTCUSDT", "side": "buy", "quantity": 1, "price": 0,
               "notional": 12.5}),
        json!({"type": "decision", "decision": "buy"}),
        json!({"type": "cycle", "duration_seconds": 0.8, "result": "error"}),
        json!({"type": "rebalance", "result": "success", "duration_seconds": 3,
               "drift_max_ratio": -0.02}),
        json!({"type": "portfolio", "value": 1e6, "cash": -50, "currency": "EUR",
               "positions": [{"symbol": "A", "quantity": 0, "value": 0}, {"symbol": "B"}]}),
        json!({"type": "limits", "daily_loss_limit": 0.01,
               "position_limits": {"A": -1, "B": 2.5}}),
        json!({"type": "pnl", "daily": -1, "realized": 2, "unrealized": -3,
               "drawdown_ratio": 0.1, "currency": "JPY"}),
        json!({"type": "circuit_breaker", "breaker": "loss", "active": true, "reason": ""}),
        json!({"type": "kill_switch", "active": false, "reason": "manual"}),
        json!({"type": "connectivity", "target": "db", "up": true}),
        json!({"type": "api_call", "api": "polygon.quotes", "duration_seconds": 0.2, "ok": false,
               "code": "E_RATE"}),
        json!({"type": "data_provider", "provider": "polygon", "ok": false}),
        json!({"type": "error", "component": "router", "kind": "timeout", "message": "no ack"}),
        json!({"type": "span", "function": "f", "duration_seconds": 0, "ok": false}),
        json!({"type": "lock_wait", "lock": "book", "duration_seconds": 2}),
        json!({"type": "metric", "kind": "histogram", "name": "job:inference_seconds",
               "value": 0.5, "labels": {"model": "xgb", "le_": "x"}, "help": "Inference."}),
    ];
    fields
        .into_iter()
        .map(|mut event| {
            for (k, v) in common.as_object().unwrap() {
                event[k] = v.clone();
            }
            event
        })
        .collect()
}

/// A valid value for each field of any type, taken from [`full`].
fn sample_values() -> BTreeMap<String, Value> {
    let mut values = BTreeMap::new();
    for event in full() {
        for (k, v) in event.as_object().unwrap() {
            values.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    values
}

fn with(event: &Value, field: &str, value: Value) -> Value {
    let mut event = event.clone();
    event[field] = value;
    event
}

fn without(event: &Value, field: &str) -> Value {
    let mut event = event.clone();
    event.as_object_mut().unwrap().remove(field);
    event
}

/// Events the exporter must accept (`+`) or reject (`-`), one a line: `± name | event`.
const MORE_CASES: &str = r#"
- no type | {"engine": "e"}
- unknown type | {"type": "trade"}
- type not a string | {"type": 5}
- an array, not an object | [{"type": "heartbeat"}]
- a number, not an object | 5
+ ts as Unix seconds | {"type": "heartbeat", "ts": 1772461800.25}
+ ts as integer seconds | {"type": "heartbeat", "ts": 1772461800}
+ ts 0 | {"type": "heartbeat", "ts": 0}
+ ts with an offset | {"type": "heartbeat", "ts": "2026-03-02T09:30:00-05:00"}
+ ts lowercase | {"type": "heartbeat", "ts": "2026-03-02t14:30:00z"}
+ ts with a space | {"type": "heartbeat", "ts": "2026-03-02 14:30:00Z"}
+ ts with nanoseconds | {"type": "heartbeat", "ts": "2026-03-02T14:30:00.123456789Z"}
+ ts leap second | {"type": "heartbeat", "ts": "2026-12-31T23:59:60Z"}
- ts negative | {"type": "heartbeat", "ts": -1}
- ts without a zone | {"type": "heartbeat", "ts": "2026-03-02T14:30:00"}
- ts not a time | {"type": "heartbeat", "ts": "yesterday"}
- ts month 13 | {"type": "heartbeat", "ts": "2026-13-02T14:30:00Z"}
- ts hour 24 | {"type": "heartbeat", "ts": "2026-03-02T24:00:00Z"}
- ts offset without a colon | {"type": "heartbeat", "ts": "2026-03-02T14:30:00+0100"}
- ts dot without digits | {"type": "heartbeat", "ts": "2026-03-02T14:30:00.Z"}
- ts a boolean | {"type": "heartbeat", "ts": true}
- id empty | {"type": "heartbeat", "id": ""}
- id a number | {"type": "heartbeat", "id": 7}
- strategy empty | {"type": "heartbeat", "strategy": ""}
- engine a number | {"type": "heartbeat", "engine": 1}
+ attrs empty | {"type": "heartbeat", "attrs": {}}
- attrs an array | {"type": "heartbeat", "attrs": [1]}
- attrs a string | {"type": "heartbeat", "attrs": "x"}
- order status unknown | {"type": "order", "status": "done", "venue": "v", "side": "buy"}
+ order status cancelled | {"type": "order", "status": "cancelled", "venue": "v", "side": "sell"}
- order status a number | {"type": "order", "status": 1, "venue": "v", "side": "buy"}
- order side hold | {"type": "order", "status": "filled", "venue": "v", "side": "hold"}
- order side in capitals | {"type": "order", "status": "filled", "venue": "v", "side": "BUY"}
- order venue empty | {"type": "order", "status": "filled", "venue": "", "side": "buy"}
- order symbol empty | {"type": "order", "status": "filled", "venue": "v", "side": "buy", "symbol": ""}
- order negative latency | {"type": "order", "status": "filled", "venue": "v", "side": "buy", "latency_seconds": -0.001}
- fill side short | {"type": "fill", "symbol": "A", "side": "short", "quantity": 1, "price": 1}
- fill quantity 0 | {"type": "fill", "symbol": "A", "side": "buy", "quantity": 0, "price": 1}
- fill quantity negative | {"type": "fill", "symbol": "A", "side": "buy", "quantity": -1, "price": 1}
- fill quantity a string | {"type": "fill", "symbol": "A", "side": "buy", "quantity": "1", "price": 1}
- fill price negative | {"type": "fill", "symbol": "A", "side": "buy", "quantity": 1, "price": -1}
+ fill price 0 | {"type": "fill", "symbol": "A", "side": "buy", "quantity": 1, "price": 0}
- fill notional negative | {"type": "fill", "symbol": "A", "side": "buy", "quantity": 1, "price": 1, "notional": -1}
- decision empty | {"type": "decision", "decision": ""}
+ cycle result ok | {"type": "cycle", "duration_seconds": 1, "result": "ok"}
- cycle result fail | {"type": "cycle", "duration_seconds": 1, "result": "fail"}
- cycle negative duration | {"type": "cycle", "duration_seconds": -1}
- cycle duration a string | {"type": "cycle", "duration_seconds": "1"}
- rebalance result ok | {"type": "rebalance", "result": "ok"}
+ rebalance result partial | {"type": "rebalance", "result": "partial"}
- rebalance negative duration | {"type": "rebalance", "result": "success", "duration_seconds": -2}
+ rebalance negative drift | {"type": "rebalance", "result": "success", "drift_max_ratio": -0.5}
+ portfolio without positions | {"type": "portfolio", "value": 10}
+ positions empty | {"type": "portfolio", "positions": []}
- position without symbol | {"type": "portfolio", "positions": [{"quantity": 1}]}
- position symbol empty | {"type": "portfolio", "positions": [{"symbol": ""}]}
- position symbol null | {"type": "portfolio", "positions": [{"symbol": null}]}
+ position quantity null | {"type": "portfolio", "positions": [{"symbol": "A", "quantity": null}]}
- position unknown field | {"type": "portfolio", "positions": [{"symbol": "A", "qty": 1}]}
- position quantity a string | {"type": "portfolio", "positions": [{"symbol": "A", "quantity": "1"}]}
- position null | {"type": "portfolio", "positions": [null]}
- positions an object | {"type": "portfolio", "positions": {"symbol": "A"}}
- currency empty | {"type": "portfolio", "currency": ""}
- daily_loss_limit 0 | {"type": "limits", "daily_loss_limit": 0}
- daily_loss_limit negative | {"type": "limits", "daily_loss_limit": -5}
+ position limit negative | {"type": "limits", "position_limits": {"A": -1}}
- position limit a string | {"type": "limits", "position_limits": {"A": "1"}}
- position limit null | {"type": "limits", "position_limits": {"A": null}}
- position limit symbol empty | {"type": "limits", "position_limits": {"": 1}}
- position limits a list | {"type": "limits", "position_limits": [1]}
+ pnl negative | {"type": "pnl", "daily": -100, "realized": -1, "unrealized": -99}
- pnl daily a string | {"type": "pnl", "daily": "-100"}
- breaker active a string | {"type": "circuit_breaker", "breaker": "b", "active": "yes"}
- breaker empty | {"type": "circuit_breaker", "breaker": "", "active": true}
- breaker reason a number | {"type": "circuit_breaker", "breaker": "b", "active": true, "reason": 1}
- kill switch active a number | {"type": "kill_switch", "active": 1}
- connectivity up a number | {"type": "connectivity", "target": "t", "up": 1}
- data provider ok a string | {"type": "data_provider", "provider": "p", "ok": "true"}
+ api code an integer | {"type": "api_call", "api": "a", "ok": false, "code": 503}
+ api code negative | {"type": "api_call", "api": "a", "ok": false, "code": -1}
+ api code a string | {"type": "api_call", "api": "a", "ok": false, "code": "E42"}
+ api code on a success | {"type": "api_call", "api": "a", "code": 200}
- api code empty | {"type": "api_call", "api": "a", "code": ""}
- api code a fraction | {"type": "api_call", "api": "a", "code": 1.5}
- api code a boolean | {"type": "api_call", "api": "a", "code": true}
+ api code past i64 | {"type": "api_call", "api": "a", "code": 9223372036854775808}
- api negative duration | {"type": "api_call", "api": "a", "duration_seconds": -0.1}
- error message a number | {"type": "error", "component": "c", "kind": "k", "message": 1}
- span negative duration | {"type": "span", "function": "f", "duration_seconds": -0.5}
- lock_wait negative duration | {"type": "lock_wait", "lock": "l", "duration_seconds": -1}
- metric kind summary | {"type": "metric", "kind": "summary", "name": "s", "value": 1}
+ counter | {"type": "metric", "kind": "counter", "name": "orders_sent", "value": 2}
+ counter named _total | {"type": "metric", "kind": "counter", "name": "fills_seen_total", "value": 0}
- counter negative | {"type": "metric", "kind": "counter", "name": "c_negative", "value": -1}
+ gauge negative | {"type": "metric", "kind": "gauge", "name": "g_negative", "value": -1}
+ gauge with a colon | {"type": "metric", "kind": "gauge", "name": "job:queue_depth", "value": 1}
- gauge named _total | {"type": "metric", "kind": "gauge", "name": "depth_total", "value": 1}
- histogram named _total | {"type": "metric", "kind": "histogram", "name": "latency_total", "value": 1}
- histogram negative | {"type": "metric", "kind": "histogram", "name": "signed_seconds", "value": -1}
- name trading_ | {"type": "metric", "kind": "gauge", "name": "trading_custom", "value": 1}
- name tradewatch_ | {"type": "metric", "kind": "gauge", "name": "tradewatch_custom", "value": 1}
- name process_ | {"type": "metric", "kind": "gauge", "name": "process_custom", "value": 1}
- name __ | {"type": "metric", "kind": "gauge", "name": "__custom", "value": 1}
- name with a digit first | {"type": "metric", "kind": "gauge", "name": "9lives", "value": 1}
- name with a dash | {"type": "metric", "kind": "gauge", "name": "queue-depth", "value": 1}
- name empty | {"type": "metric", "kind": "gauge", "name": "", "value": 1}
- name not ASCII | {"type": "metric", "kind": "gauge", "name": "tiefe_ö", "value": 1}
- value a string | {"type": "metric", "kind": "gauge", "name": "v_string", "value": "1"}
+ labels | {"type": "metric", "kind": "gauge", "name": "l_ok", "value": 1, "labels": {"queue": "orders", "_x": "y"}}
- label value empty | {"type": "metric", "kind": "gauge", "name": "l_empty", "value": 1, "labels": {"queue": ""}}
- label value a number | {"type": "metric", "kind": "gauge", "name": "l_number", "value": 1, "labels": {"queue": 1}}
- label value null | {"type": "metric", "kind": "gauge", "name": "l_null", "value": 1, "labels": {"queue": null}}
- label name __ | {"type": "metric", "kind": "gauge", "name": "l_reserved", "value": 1, "labels": {"__queue": "a"}}
- label name engine | {"type": "metric", "kind": "gauge", "name": "l_engine", "value": 1, "labels": {"engine": "a"}}
- label name strategy | {"type": "metric", "kind": "gauge", "name": "l_strategy", "value": 1, "labels": {"strategy": "a"}}
- label name with a colon | {"type": "metric", "kind": "gauge", "name": "l_colon", "value": 1, "labels": {"a:b": "a"}}
- label name with a digit first | {"type": "metric", "kind": "gauge", "name": "l_digit", "value": 1, "labels": {"1a": "a"}}
+ label le on a gauge | {"type": "metric", "kind": "gauge", "name": "l_le_gauge", "value": 1, "labels": {"le": "1"}}
- label le on a histogram | {"type": "metric", "kind": "histogram", "name": "l_le_seconds", "value": 1, "labels": {"le": "1"}}
- labels a list | {"type": "metric", "kind": "gauge", "name": "l_list", "value": 1, "labels": ["a"]}
- help a number | {"type": "metric", "kind": "gauge", "name": "h_number", "value": 1, "help": 1}
"#;

/// Events the exporter must accept (`true`) or reject (`false`), named: for each type its
/// required fields alone and every field, each required field left out or null, each optional
/// field null, a misplaced field, an unknown field and an empty engine; then [`MORE_CASES`].
fn cases() -> Vec<(String, Value, bool)> {
    let mut cases: Vec<(String, Value, bool)> = Vec::new();
    let mut case = |name: String, event: Value, ok: bool| cases.push((name, event, ok));
    let minimal = minimal();
    let full = full();
    let values = sample_values();
    let all_fields: BTreeSet<&str> = EVENT_TYPES
        .iter()
        .flat_map(|t| {
            let (r, o) = t.fields();
            r.iter().chain(o).copied()
        })
        .collect();

    for (i, ((kind, min), full)) in EVENT_TYPES.iter().zip(&minimal).zip(&full).enumerate() {
        let t = kind.as_str();
        let (required, optional) = kind.fields();
        case(format!("{t}: required fields only"), min.clone(), true);
        case(format!("{t}: every field"), full.clone(), true);
        for field in required {
            case(format!("{t}: without {field}"), without(min, field), false);
            case(
                format!("{t}: {field} null"),
                with(min, field, Value::Null),
                false,
            );
        }
        for field in optional
            .iter()
            .chain(&["id", "engine", "strategy", "attrs"])
        {
            case(
                format!("{t}: {field} null"),
                with(full, field, Value::Null),
                true,
            );
        }
        let foreign: Vec<&str> = all_fields
            .iter()
            .copied()
            .filter(|f| !required.contains(f) && !optional.contains(f))
            .collect();
        let misplaced = foreign[i * 7 % foreign.len()];
        let value = values[misplaced].clone();
        case(
            format!("{t}: misplaced {misplaced}"),
            with(min, misplaced, value),
            false,
        );
        case(
            format!("{t}: unknown field"),
            with(min, "colour", json!("red")),
            false,
        );
        case(
            format!("{t}: engine empty"),
            with(min, "engine", json!("")),
            false,
        );
    }

    for line in MORE_CASES.lines().filter(|l| !l.trim().is_empty()) {
        let (verdict, rest) = line.split_at(1);
        let (name, event) = rest.split_once(" | ").expect("`+ name | event`");
        let event = serde_json::from_str(event)
            .unwrap_or_else(|e| panic!("MORE_CASES: {name}: not JSON: {e}"));
        case(name.trim().to_owned(), event, verdict == "+");
    }
    // Ids must not make one case a duplicate of another.
    for (i, (_, event, _)) in cases.iter_mut().enumerate() {
        if event
            .get("id")
            .is_some_and(|id| id.as_str().is_some_and(|s| !s.is_empty()))
        {
            event["id"] = json!(format!("case-{i}"));
        }
    }
    cases
}

#[tokio::test]
async fn schema_and_exporter_agree_on_generated_events() {
    let cases = cases();
    let body: String = cases
        .iter()
        .map(|(_, event, _)| format!("{event}\n"))
        .collect();
    let exporter = exporter();
    let (status, reply) = post(&exporter.router, body, "application/x-ndjson").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["duplicates"], 0, "{reply}");
    let rejected: BTreeMap<u64, String> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let events: Vec<Value> = cases.iter().map(|(_, e, _)| e.clone()).collect();
    let schema = validate(&events);

    let mut problems = Vec::new();
    for (i, (name, event, ok)) in cases.iter().enumerate() {
        let server = rejected.get(&(i as u64 + 1));
        if server.is_none() != *ok {
            problems.push(format!(
                "{name}: the exporter {} {event}{}",
                if *ok { "rejects" } else { "accepts" },
                server.map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
        if let Some(results) = &schema {
            let verdict = &results[i];
            if verdict.is_none() != *ok {
                problems.push(format!(
                    "{name}: the schema {} {event}{}",
                    if *ok { "rejects" } else { "accepts" },
                    verdict
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases disagree:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The README's Python example
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_python_example_sends_a_batch() {
    let code = blocks(&readme())
        .into_iter()
        .find(|b| b.info == "python")
        .expect("README.md has a python example")
        .text;
    let exporter = exporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = exporter.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let run = move || {
        Command::new("python3")
            .arg("-c")
            .arg(&code)
            .env("TRADEWATCH_URL", format!("http://{addr}"))
            .env_remove("TRADEWATCH_TOKEN")
            .stdin(Stdio::null())
            .output()
    };
    let first = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    let out = match first {
        Ok(out) => out,
        Err(e) => {
            if ci() {
                panic!("python3 cannot run ({e}), and nothing may be skipped under CI=true");
            }
            let _ = writeln!(
                std::io::stderr().lock(),
                "skipped: README python example: python3 cannot run ({e})"
            );
            server.abort();
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        r#"200 {"accepted": 4, "duplicates": 0, "rejected": []}"#
    );
    let again = tokio::task::spawn_blocking(run).await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        r#"200 {"accepted": 3, "duplicates": 1, "rejected": []}"#
    );
    server.abort();
}
