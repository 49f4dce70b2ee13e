//! `tradewatch journal export` on real journal files: CSV read back by Python's `csv` module,
//! JSON lines, filters by time, type and engine, time zones from the flag or the configuration,
//! empty ranges, the files it reads on a 90-day journal, and what a real exporter journaled.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::{Value, json};
use tradewatch::ingest::event::EventType;
use tradewatch::ingest::export::{ExportFormat, Query, Summary, export};

/// Writes `lines` (events as the journal holds them) to `journal/<day>.jsonl` under `data`.
fn journal(data: &Path, day: &str, lines: &[Value]) {
    let dir = data.join("journal");
    fs::create_dir_all(&dir).unwrap();
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    fs::write(dir.join(format!("{day}.jsonl")), text).unwrap();
}

/// Runs `tradewatch journal export ARGS`.
fn tradewatch(args: &[&str]) -> Output {
    Command::new(support::BIN)
        .args(["journal", "export"])
        .args(args)
        .env_remove("TRADEWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs an export that must succeed; its standard output.
fn exported(args: &[&str]) -> String {
    let out = tradewatch(args);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the export is UTF-8")
}

/// A CSV text read by Python's `csv` module: the rows, each a list of fields.
fn python_csv(text: &str) -> Vec<Vec<String>> {
    let script = "import csv, io, json, sys\n\
                  data = sys.stdin.buffer.read().decode('utf-8')\n\
                  print(json.dumps(list(csv.reader(io.StringIO(data, newline='')))))";
    let (status, stdout, stderr) =
        support::run_with_input("python3", &["-c", script], text.as_bytes());
    assert!(status.success(), "python3: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// The CSV rows as maps from column to field.
fn records(rows: &[Vec<String>]) -> Vec<std::collections::BTreeMap<String, String>> {
    let header = &rows[0];
    rows[1..]
        .iter()
        .map(|row| {
            assert_eq!(row.len(), header.len(), "{row:?}");
            header.iter().cloned().zip(row.iter().cloned()).collect()
        })
        .collect()
}

fn trade_day() -> Vec<Value> {
    vec![
        json!({"ts": "2026-11-02T14:30:00.123Z", "type": "fill", "engine": "e1", "strategy": "momentum",
               "id": "f-1", "symbol": "BTC-USD", "side": "buy", "quantity": 0.5, "price": 65000.25,
               "attrs": {"order_id": "o-1", "note": "partial, \"urgent\"\nsecond line",
                         "venue_ref": 12345678901234567u64, "tags": ["a", "b"], "empty": null}}),
        json!({"ts": 1793631000.5, "type": "fill", "engine": "e2", "symbol": "ÉTH-€", "side": "sell",
               "quantity": 2, "price": 3000, "notional": 6001.5, "attrs": {"note": "=SUM(A1:A2)"}}),
        json!({"ts": "2026-11-02T15:00:00Z", "type": "order", "status": "rejected", "venue": "binance",
               "side": "buy", "symbol": "BTC-USD", "latency_seconds": 0.012,
               "attrs": {"reason": "insufficient margin"}}),
        json!({"ts": "2026-11-02T15:00:01Z", "type": "kill_switch", "active": true, "reason": "loss limit"}),
        json!({"ts": "2026-11-02T15:00:02Z", "type": "portfolio", "engine": "e1", "value": 1000,
               "positions": [{"symbol": "BTC-USD", "quantity": 0.5}]}),
    ]
}

#[test]
fn csv_round_trips_through_pythons_csv_module() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), "2026-11-02", &trade_day());
    let data = dir.path().to_str().unwrap();
    let text = exported(&[
        "--data-dir",
        data,
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-02",
        "--format",
        "csv",
    ]);
    // RFC 4180: CRLF line ends, a quoted field keeps its own line break.
    assert!(text.starts_with("ts,type,engine,strategy,id,status,venue,side,symbol,latency_seconds,quantity,price,notional,"), "{text}");
    assert!(text.ends_with("\r\n"));
    assert!(
        text.contains("\"partial, \"\"urgent\"\"\nsecond line\""),
        "{text}"
    );

    let rows = python_csv(&text);
    let header = &rows[0];
    let attrs: Vec<&str> = header
        .iter()
        .filter(|c| c.starts_with("attrs."))
        .map(String::as_str)
        .collect();
    assert_eq!(
        attrs,
        [
            "attrs.empty",
            "attrs.note",
            "attrs.order_id",
            "attrs.reason",
            "attrs.tags",
            "attrs.venue_ref"
        ]
    );
    let records = records(&rows);
    assert_eq!(records.len(), 5);
    let fill = &records[0];
    let expect = [
        ("ts", "2026-11-02T14:30:00.123Z"),
        ("type", "fill"),
        ("engine", "e1"),
        ("strategy", "momentum"),
        ("id", "f-1"),
        ("symbol", "BTC-USD"),
        ("side", "buy"),
        ("quantity", "0.5"),
        ("price", "65000.25"),
        ("notional", "32500.125"),
        ("status", ""),
        ("attrs.order_id", "o-1"),
        ("attrs.note", "partial, \"urgent\"\nsecond line"),
        ("attrs.venue_ref", "12345678901234567"),
        ("attrs.tags", "[\"a\",\"b\"]"),
        ("attrs.empty", ""),
        ("attrs.reason", ""),
    ];
    for (column, value) in expect {
        assert_eq!(fill[column], value, "fill {column}");
    }
    let second = &records[1];
    for (column, value) in [
        ("ts", "2026-11-02T14:50:00.500Z"),
        ("engine", "e2"),
        ("strategy", ""),
        ("symbol", "ÉTH-€"),
        ("quantity", "2"),
        ("notional", "6001.5"),
        ("attrs.note", "=SUM(A1:A2)"),
    ] {
        assert_eq!(second[column], value, "second fill {column}");
    }
    let order = &records[2];
    for (column, value) in [
        ("type", "order"),
        ("engine", "default"),
        ("status", "rejected"),
        ("venue", "binance"),
        ("latency_seconds", "0.012"),
        ("notional", ""),
        ("attrs.reason", "insufficient margin"),
    ] {
        assert_eq!(order[column], value, "order {column}");
    }
    assert_eq!(records[3]["active"], "true");
    assert_eq!(records[3]["reason"], "loss limit");
    assert_eq!(records[4]["currency"], "USD", "ingest's default");
    assert_eq!(
        records[4]["positions"],
        "[{\"quantity\":0.5,\"symbol\":\"BTC-USD\"}]"
    );
}

#[test]
fn jsonl_has_one_flattened_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), "2026-11-02", &trade_day());
    let data = dir.path().to_str().unwrap();
    let text = exported(&[
        "--data-dir",
        data,
        "--from",
        "2026-11-02T00:00:00Z",
        "--to",
        "2026-11-03T00:00:00Z",
        "--format",
        "jsonl",
        "--type",
        "fill",
    ]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with(
        r#"{"ts":"2026-11-02T14:30:00.123Z","type":"fill","engine":"e1","strategy":"momentum","id":"f-1","symbol":"BTC-USD","side":"buy","quantity":0.5,"price":65000.25,"notional":32500.125,"attrs."#
    ), "{}", lines[0]);
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["attrs.tags"], json!(["a", "b"]));
    assert_eq!(first["attrs.venue_ref"], json!(12345678901234567u64));
    assert_eq!(first["attrs.note"], "partial, \"urgent\"\nsecond line");
    assert!(
        first.get("attrs.empty").is_none(),
        "null attrs are left out"
    );
    let second: Value = serde_json::from_str(lines[1]).unwrap();
    assert!(
        second.get("strategy").is_none(),
        "absent fields are left out"
    );
    assert_eq!(second["symbol"], "ÉTH-€");
}

#[test]
fn filters_by_type_engine_and_a_half_open_range() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), "2026-11-02", &trade_day());
    let data = dir.path().to_str().unwrap();
    let rows = |args: &[&str]| {
        let mut all = vec!["--data-dir", data, "--format", "csv"];
        all.extend(args);
        records(&python_csv(&exported(&all)))
    };
    // From inclusive, to exclusive, to the millisecond.
    let r = rows(&[
        "--from",
        "2026-11-02T14:30:00.123Z",
        "--to",
        "2026-11-02T15:00:00Z",
    ]);
    assert_eq!(
        r.iter().map(|r| r["id"].as_str()).collect::<Vec<_>>(),
        ["f-1", ""]
    );
    let r = rows(&[
        "--from",
        "2026-11-02T14:30:00.124Z",
        "--to",
        "2026-11-02T15:00:00.001Z",
    ]);
    assert_eq!(
        r.iter().map(|r| r["type"].as_str()).collect::<Vec<_>>(),
        ["fill", "order"]
    );
    // Types: the columns follow the filter.
    let text = exported(&[
        "--data-dir",
        data,
        "--format",
        "csv",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-02",
        "--type",
        "order",
        "--type",
        "kill_switch",
    ]);
    let parsed = python_csv(&text);
    assert_eq!(
        parsed[0],
        [
            "ts",
            "type",
            "engine",
            "strategy",
            "id",
            "status",
            "venue",
            "side",
            "symbol",
            "latency_seconds",
            "active",
            "reason",
            "attrs.reason"
        ]
    );
    let r = records(&parsed);
    assert_eq!(
        r.iter().map(|r| r["type"].as_str()).collect::<Vec<_>>(),
        ["order", "kill_switch"]
    );
    // Engines, the default one included.
    let r = rows(&[
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-02",
        "--engine",
        "e2",
        "--engine",
        "default",
    ]);
    assert_eq!(
        r.iter().map(|r| r["engine"].as_str()).collect::<Vec<_>>(),
        ["e2", "default", "default"]
    );
    // An unknown type is refused by the command line.
    let out = tradewatch(&[
        "--data-dir",
        data,
        "--format",
        "csv",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-02",
        "--type",
        "fills",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid value 'fills' for '--type <TYPE>'")
    );
}

#[test]
fn times_in_the_zone_of_the_flag_or_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let event = |ts: &str, id: &str| json!({"ts": ts, "type": "heartbeat", "id": id});
    journal(
        dir.path(),
        "2026-11-01",
        &[
            event("2026-11-01T03:59:59.999Z", "before"),
            event("2026-11-01T05:30:00Z", "edt"),
            event("2026-11-01T06:30:00Z", "est"),
        ],
    );
    journal(
        dir.path(),
        "2026-11-02",
        &[
            event("2026-11-02T04:59:59.999Z", "last"),
            event("2026-11-02T05:00:00Z", "after"),
        ],
    );
    let data = dir.path().to_str().unwrap();
    // The day of 2026-11-01 in New York: 25 hours, as daylight saving time ends.
    let text = exported(&[
        "--data-dir",
        data,
        "--format",
        "csv",
        "--type",
        "heartbeat",
        "--timezone",
        "America/New_York",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-01",
    ]);
    let r = records(&python_csv(&text));
    let got: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r["id"].as_str(), r["ts"].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("edt", "2026-11-01T01:30:00.000-04:00"),
            ("est", "2026-11-01T01:30:00.000-05:00"),
            ("last", "2026-11-01T23:59:59.999-05:00"),
        ]
    );
    // The same dates in UTC.
    let text = exported(&[
        "--data-dir",
        data,
        "--format",
        "csv",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-01",
    ]);
    let r = records(&python_csv(&text));
    let got: Vec<&str> = r.iter().map(|r| r["ts"].as_str()).collect();
    assert_eq!(
        got,
        [
            "2026-11-01T03:59:59.999Z",
            "2026-11-01T05:30:00.000Z",
            "2026-11-01T06:30:00.000Z"
        ]
    );
    // `notifier.timezone` of the configuration, whose data directory is used too.
    let config = dir.path().join("tradewatch.yaml");
    fs::write(
        &config,
        format!("storage:\n  data_dir: {data}\nnotifier:\n  timezone: Asia/Tokyo\n"),
    )
    .unwrap();
    let text = exported(&[
        "--config",
        config.to_str().unwrap(),
        "--format",
        "jsonl",
        "--from",
        "2026-11-02T04:59:59.999Z",
        "--to",
        "2026-11-02T05:00:00Z",
    ]);
    let line: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(line["ts"], "2026-11-02T13:59:59.999+09:00");
    // An unknown zone is an error.
    let out = tradewatch(&[
        "--data-dir",
        data,
        "--format",
        "csv",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--timezone",
        "Mars/Olympus",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "tradewatch: unknown time zone \"Mars/Olympus\": expected an IANA name such as America/New_York or UTC"
    );
}

#[test]
fn an_empty_range_gives_a_header_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), "2026-11-02", &trade_day());
    let data = dir.path().to_str().unwrap();
    let csv = exported(&[
        "--data-dir",
        data,
        "--format",
        "csv",
        "--type",
        "fill",
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-31",
    ]);
    assert_eq!(
        csv,
        "ts,type,engine,strategy,id,symbol,side,quantity,price,notional\r\n"
    );
    assert_eq!(python_csv(&csv).len(), 1);
    let same = exported(&[
        "--data-dir",
        data,
        "--format",
        "jsonl",
        "--from",
        "2026-11-02T15:00:00Z",
        "--to",
        "2026-11-02T15:00:00Z",
    ]);
    assert_eq!(same, "");

    // Mistakes are named.
    for (args, message) in [
        (
            vec!["--from", "2026-11-03", "--to", "2026-11-01"],
            "tradewatch: --from (2026-11-03T00:00:00.000Z) is after --to (2026-11-02T00:00:00.000Z)".to_owned(),
        ),
        (
            vec!["--from", "last week", "--to", "2026-11-01"],
            "tradewatch: --from \"last week\" is neither an RFC 3339 time (2026-11-01T09:30:00Z) nor a date (2026-11-01)".to_owned(),
        ),
    ] {
        let mut all = vec!["--data-dir", data, "--format", "csv"];
        all.extend(args);
        let out = tradewatch(&all);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end(), message);
        assert!(out.stdout.is_empty());
    }
    let nowhere = dir.path().join("nowhere");
    let out = tradewatch(&[
        "--data-dir",
        nowhere.to_str().unwrap(),
        "--format",
        "csv",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "tradewatch: no journal in {}/journal: is the data directory right (--data-dir, --config)?",
            nowhere.display()
        )
    );
}

/// A day's events, one a minute from 09:30 UTC.
fn day_of_fills(day: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let ts = format!("{day}T{:02}:{:02}:00Z", 9 + (30 + i) / 60, (30 + i) % 60);
            json!({"ts": ts, "type": "fill", "engine": "e", "symbol": "X", "side": "buy",
                   "quantity": 1, "price": i, "attrs": {"n": i}})
        })
        .collect()
}

#[test]
fn a_90_day_journal_is_read_only_around_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
    let days: Vec<String> = (0..90)
        .map(|i| {
            (start + chrono::Days::new(i))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    for day in &days {
        let mut lines = day_of_fills(day, 200);
        // A line that does not decode, in every file: only the files read count it.
        lines.push(json!({"type": "fill", "ts": "not a time"}));
        journal(dir.path(), day, &lines);
    }
    // An event of 2026-09-15 that arrived (late) on the 16th.
    let late = json!({"ts": "2026-09-15T23:59:00Z", "type": "fill", "engine": "e", "symbol": "LATE",
                      "side": "sell", "quantity": 1, "price": 1});
    let mut next = day_of_fills("2026-09-16", 200);
    next.insert(0, late);
    next.push(json!({"type": "fill", "ts": "not a time"}));
    journal(dir.path(), "2026-09-16", &next);

    let query = Query {
        from: "2026-09-15T00:00:00Z".parse().unwrap(),
        to: "2026-09-16T00:00:00Z".parse().unwrap(),
        types: vec![EventType::Fill],
        engines: vec![],
        timezone: chrono_tz::UTC,
    };
    let mut out = Vec::new();
    let summary = export(
        &dir.path().join("journal"),
        &query,
        ExportFormat::Csv,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        summary,
        Summary {
            rows: 201,
            files: vec![
                "2026-09-14.jsonl".into(),
                "2026-09-15.jsonl".into(),
                "2026-09-16.jsonl".into()
            ],
            skipped: 3,
        }
    );
    let text = String::from_utf8(out).unwrap();
    let rows = records(&python_csv(&text));
    assert_eq!(rows.last().unwrap()["symbol"], "LATE");
    assert_eq!(rows[0]["attrs.n"], "0");

    // The whole journal, streamed: every row, in journal order.
    let all = Query {
        from: "2026-01-01T00:00:00Z".parse().unwrap(),
        to: "2027-01-01T00:00:00Z".parse().unwrap(),
        ..query
    };
    let mut out = Vec::new();
    let summary = export(
        &dir.path().join("journal"),
        &all,
        ExportFormat::Jsonl,
        &mut out,
    )
    .unwrap();
    assert_eq!(summary.rows, 90 * 200 + 1);
    assert_eq!(summary.files.len(), 90);
    assert_eq!(summary.skipped, 90);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 90 * 200 + 1);
}

#[tokio::test]
async fn exports_what_a_real_exporter_journaled() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "storage:\n  data_dir: {}\n  fsync: never\n",
        dir.path().display()
    );
    let config = tradewatch::config::Config::parse(&text, "export-test.yaml").unwrap();
    let registry = Arc::new(tradewatch::exporter::Registry::default());
    let telemetry = Arc::new(tradewatch::telemetry::Telemetry::new());
    let (ingest, _) =
        tradewatch::ingest::Ingest::start(&config, registry, telemetry.clone()).unwrap();
    let ingest = Arc::new(ingest);
    let state = tradewatch::api::AppState::exporter(
        &config,
        ingest.clone(),
        Arc::default(),
        telemetry,
        Default::default(),
    );
    let router = tradewatch::api::router(state);
    let now = chrono::Utc::now();
    let ts = (now - chrono::Duration::seconds(5)).to_rfc3339();
    let body = format!(
        "{}\n{}\n{}\n",
        json!({"type": "fill", "ts": ts, "engine": "live", "symbol": "AAPL", "side": "buy", "quantity": 10, "price": 190.5, "attrs": {"order_id": "A-1"}}),
        json!({"type": "order", "engine": "live", "status": "filled", "venue": "nasdaq", "side": "buy", "symbol": "AAPL"}),
        json!({"type": "fill", "engine": "live", "symbol": "AAPL", "side": "buy", "quantity": 0, "price": 1}),
    );
    let response = router
        .oneshot(
            Request::post("/api/v1/events")
                .header("content-type", "application/x-ndjson")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::task::spawn_blocking(move || ingest.shutdown())
        .await
        .unwrap();

    let from = (now - chrono::Duration::hours(1)).to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    let text = exported(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "csv",
        "--from",
        &from,
        "--to",
        &to,
        "--type",
        "fill",
        "--type",
        "order",
    ]);
    let rows = records(&python_csv(&text));
    assert_eq!(
        rows.len(),
        2,
        "the rejected fill was never journaled: {text}"
    );
    assert_eq!(rows[0]["notional"], "1905");
    assert_eq!(rows[0]["attrs.order_id"], "A-1");
    assert_eq!(rows[1]["status"], "filled");
    // The order had no `ts`: the journal added its arrival time.
    let arrived = chrono::DateTime::parse_from_rfc3339(&rows[1]["ts"]).unwrap();
    assert!(
        (arrived.timestamp() - now.timestamp()).abs() < 60,
        "{arrived}"
    );
}
