//! The pull collectors on real files: modification times of files that come and go, JSON files
//! rewritten in place while they are read, a SQLite database in WAL mode that an engine thread
//! writes during collection; failures counted, series dropped, runs cut short at their timeout;
//! and a real exporter serving collected series on `/metrics` without journaling them.

mod support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rusqlite::Connection;
use serde_json::{Value, json};
use tradewatch::config::Config;
use tradewatch::exporter::collectors::{CollectError, Collectors, json::JsonError};
use tradewatch::exporter::{Format, MetricType, Registry};
use tradewatch::telemetry::Telemetry;

/// Collectors for `collectors` (the `exporter.collectors` section, as JSON, which YAML reads).
fn collectors_with(
    collectors: Value,
    trading: Option<Arc<Registry>>,
) -> (Collectors, Arc<Telemetry>) {
    let text = json!({ "exporter": { "collectors": collectors } }).to_string();
    let config = Config::parse(&text, "collectors-test.yaml").unwrap();
    let telemetry = Arc::new(Telemetry::new());
    let collectors = Collectors::new(&config.exporter, trading, telemetry.clone());
    (collectors, telemetry)
}

fn collectors(collectors: Value) -> (Collectors, Arc<Telemetry>) {
    collectors_with(collectors, None)
}

/// The collected samples, keyed by series as written.
fn collected(c: &Collectors) -> BTreeMap<String, f64> {
    support::samples(&c.registry().encode(Format::Text), &[""])
}

fn errors(telemetry: &Telemetry, collector: &str) -> f64 {
    let text = telemetry.registry(None).encode(Format::Text);
    let samples = support::samples(&text, &["tradewatch_collector_errors_total"]);
    support::value_of(
        &samples,
        "tradewatch_collector_errors_total",
        &[("collector", collector)],
    )
    .unwrap_or_else(|| panic!("no error counter for {collector}:\n{text}"))
}

fn durations(telemetry: &Telemetry, collector: &str) -> f64 {
    let text = telemetry.registry(None).encode(Format::Text);
    let samples = support::samples(&text, &["tradewatch_collector_duration_seconds_count"]);
    support::value_of(
        &samples,
        "tradewatch_collector_duration_seconds_count",
        &[("collector", collector)],
    )
    .unwrap_or(0.0)
}

/// Parses `text` with Python's `prometheus_client` when it is installed (always under CI).
fn python_parse(test: &str, format: &str, text: &str) {
    if support::available(test, &[&support::PYTHON_PROMETHEUS_CLIENT]) {
        support::python_parse(format, text);
    }
}

fn set_mtime(path: &Path, unix: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(unix))
        .unwrap();
}

fn pattern(dir: &Path, glob: &str) -> String {
    format!("{}/{glob}", dir.display())
}

// ---------------------------------------------------------------------------------------------
// File freshness
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn file_freshness_reports_modification_times_and_drops_vanished_files() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    fs::create_dir(&models).unwrap();
    let a = models.join("momentum.pkl");
    let b = models.join("mean_reversion.pkl");
    let universe = dir.path().join("universe.csv");
    for (path, t) in [
        (&a, 1_790_000_000),
        (&b, 1_790_000_100),
        (&universe, 1_790_000_200),
    ] {
        fs::write(path, b"x").unwrap();
        set_mtime(path, t);
    }
    fs::write(models.join("notes.txt"), b"not a model").unwrap();
    let (c, telemetry) = collectors(json!({"files": [{
        "name": "models",
        "paths": [pattern(&models, "*.pkl"), universe.display().to_string(), pattern(&models, "momentum.*")],
    }]}));
    c.collect("models").await.unwrap().unwrap();
    let name = "trading_artifact_updated_timestamp_seconds";
    let artifact = |p: &Path| p.display().to_string();
    let samples = collected(&c);
    assert_eq!(samples.len(), 3, "{samples:?}");
    for (path, t) in [
        (&a, 1_790_000_000.0),
        (&b, 1_790_000_100.0),
        (&universe, 1_790_000_200.0),
    ] {
        assert_eq!(
            support::value_of(&samples, name, &[("artifact", &artifact(path))]),
            Some(t),
            "{samples:?}"
        );
    }

    // A file that disappears drops its series; a new one appears.
    fs::remove_file(&b).unwrap();
    let c2 = models.join("breakout.pkl");
    fs::write(&c2, b"x").unwrap();
    set_mtime(&c2, 1_790_000_300);
    c.collect("models").await.unwrap().unwrap();
    let samples = collected(&c);
    assert_eq!(
        support::value_of(&samples, name, &[("artifact", &artifact(&b))]),
        None
    );
    assert_eq!(
        support::value_of(&samples, name, &[("artifact", &artifact(&c2))]),
        Some(1_790_000_300.0)
    );

    // Every file gone: no series and no error.
    fs::remove_dir_all(&models).unwrap();
    fs::remove_file(&universe).unwrap();
    c.collect("models").await.unwrap().unwrap();
    assert!(collected(&c).is_empty());
    assert_eq!(errors(&telemetry, "models"), 0.0);
    assert_eq!(durations(&telemetry, "models"), 3.0);

    let text = c.registry().encode(Format::OpenMetrics);
    assert!(!text.contains(name), "an empty family is left out: {text}");
}

// ---------------------------------------------------------------------------------------------
// JSON snapshot files
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn json_values_and_labels_come_from_fields_and_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let risk = dir.path().join("risk");
    fs::create_dir(&risk).unwrap();
    fs::write(
        risk.join("main.json"),
        json!({"engine": "eng-1", "risk": {"var": 0.021, "halted": false}, "orders": {"sent": "1200"}, "desk": 7})
            .to_string(),
    )
    .unwrap();
    fs::write(
        risk.join("hedge.json"),
        json!({"engine": "eng-2", "risk": {"var": null, "halted": true}, "orders": {"sent": 3}, "desk": ""})
            .to_string(),
    )
    .unwrap();
    let (c, _) = collectors(json!({"json": [{
        "name": "risk",
        "path": pattern(&risk, "*.json"),
        "values": [
            {"metric": "engine_var_ratio", "pointer": "/risk/var", "help": "VaR."},
            {"metric": "engine_halted", "pointer": "/risk/halted"},
            {"metric": "engine_orders_sent_total", "pointer": "/orders/sent", "type": "counter"},
        ],
        "labels": {"engine": {"pointer": "/engine"}, "account": {"file_stem": true}, "desk": {"pointer": "/desk"}},
    }]}));
    c.collect("risk").await.unwrap().unwrap();
    let text = c.registry().encode(Format::Text);
    let expected = [
        "engine_var_ratio{account=\"main\",desk=\"7\",engine=\"eng-1\"} 0.021",
        "engine_halted{account=\"hedge\",engine=\"eng-2\"} 1.0",
        "engine_halted{account=\"main\",desk=\"7\",engine=\"eng-1\"} 0.0",
        "engine_orders_sent_total{account=\"hedge\",engine=\"eng-2\"} 3.0",
        "engine_orders_sent_total{account=\"main\",desk=\"7\",engine=\"eng-1\"} 1200.0",
        "# TYPE engine_orders_sent_total counter",
        "# HELP engine_var_ratio VaR.",
    ];
    for line in expected {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    // `null` leaves the series out.
    assert!(
        !text.contains("engine_var_ratio{account=\"hedge\""),
        "{text}"
    );
    python_parse("json collector", "text", &text);
}

#[tokio::test]
async fn a_json_file_that_never_completes_fails_and_drops_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pnl.json");
    fs::write(&path, br#"{"pnl": {"daily": -120.5}}"#).unwrap();
    let (c, telemetry) = collectors(json!({"json": [{
        "name": "pnl",
        "path": path.display().to_string(),
        "values": [{"metric": "engine_pnl_daily", "pointer": "/pnl/daily"}],
    }]}));
    c.collect("pnl").await.unwrap().unwrap();
    assert_eq!(collected(&c).get("engine_pnl_daily"), Some(&-120.5));

    // The engine died in the middle of a write: the file stays cut.
    fs::write(&path, br#"{"pnl": {"daily": -13"#).unwrap();
    let err = c.collect("pnl").await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            CollectError::Json(JsonError::Unsettled { attempts: 4, .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("did not settle as complete JSON in 4 reads: EOF while parsing"),
        "{err}"
    );
    assert!(collected(&c).is_empty(), "the last good value goes stale");
    assert_eq!(errors(&telemetry, "pnl"), 1.0);

    // A pointer that finds nothing is an error too, naming the file and the pointer.
    fs::write(&path, br#"{"pnl": {}}"#).unwrap();
    let err = c.collect("pnl").await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: nothing at /pnl/daily", path.display())
    );
    assert_eq!(errors(&telemetry, "pnl"), 2.0);

    // And the file coming back heals it.
    fs::write(&path, br#"{"pnl": {"daily": 4}}"#).unwrap();
    c.collect("pnl").await.unwrap().unwrap();
    assert_eq!(collected(&c).get("engine_pnl_daily"), Some(&4.0));
}

#[tokio::test]
async fn a_json_file_completed_during_the_retries_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pnl.json");
    fs::write(&path, br#"{"pnl": {"daily": 1"#).unwrap();
    let (c, telemetry) = collectors(json!({"json": [{
        "name": "pnl",
        "path": path.display().to_string(),
        "values": [{"metric": "engine_pnl_daily", "pointer": "/pnl/daily"}],
    }]}));
    // The engine finishes its write a moment after the collector first reads.
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            let mut f = File::options().append(true).open(&path).unwrap();
            f.write_all(b"7.5}}").unwrap();
        })
    };
    c.collect("pnl").await.unwrap().unwrap();
    writer.join().unwrap();
    assert_eq!(collected(&c).get("engine_pnl_daily"), Some(&17.5));
    assert_eq!(errors(&telemetry, "pnl"), 0.0);
}

#[tokio::test]
async fn a_json_file_rewritten_in_place_while_read_is_never_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let version = |n: u64| {
        // Both values of a version are equal; padding makes each write take several chunks.
        json!({"a": n, "pad": "x".repeat(64 * 1024), "b": n}).to_string()
    };
    fs::write(&path, version(0)).unwrap();
    let (c, telemetry) = collectors(json!({"json": [{
        "name": "state",
        "path": path.display().to_string(),
        "values": [{"metric": "value_a", "pointer": "/a"}, {"metric": "value_b", "pointer": "/b"}],
    }]}));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let engine = {
        let (path, stop, written) = (path.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // In place, as a careless engine does: truncate, then write in chunks.
                let mut f = File::create(&path).unwrap();
                for chunk in version(n).as_bytes().chunks(8 * 1024) {
                    f.write_all(chunk).unwrap();
                    f.flush().unwrap();
                    std::thread::yield_now();
                }
                drop(f);
                written.store(n, Ordering::Relaxed);
                // An engine writes its snapshot every so often, not in a tight loop.
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut ok, mut failed) = (0, 0);
    let mut seen = Vec::new();
    while Instant::now() < deadline || ok < 5 {
        match c.collect("state").await.unwrap() {
            Ok(()) => {
                let s = collected(&c);
                let (a, b) = (s["value_a"], s["value_b"]);
                assert_eq!(a, b, "half-applied: a from one write, b from another");
                seen.push(a);
                ok += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e, CollectError::Json(JsonError::Unsettled { .. })),
                    "{e}"
                );
                assert!(collected(&c).is_empty());
                failed += 1;
            }
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "no clean read in 30s"
        );
    }
    stop.store(true, Ordering::Relaxed);
    engine.join().unwrap();
    assert!(
        written.load(Ordering::Relaxed) > 10,
        "the engine kept writing"
    );
    assert_eq!(errors(&telemetry, "state"), failed as f64);
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "values only move forward: {seen:?}"
    );
    eprintln!("{ok} clean reads, {failed} runs that never settled");
}

// ---------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------

/// A database as an engine makes one: WAL mode, orders and positions.
fn engine_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, venue TEXT NOT NULL, status TEXT NOT NULL, qty REAL);
         CREATE TABLE positions (symbol TEXT PRIMARY KEY, quantity REAL, note TEXT);
         INSERT INTO positions VALUES ('BTC-USD', 0.5, NULL), ('ETH-USD', -3, 'short'), ('SOL-USD', NULL, NULL);",
    )
    .unwrap();
    conn
}

fn sqlite_config(name: &str, db: &Path, timeout: &str, queries: Value) -> Value {
    json!({"sqlite": [{
        "name": name,
        "path": db.display().to_string(),
        "interval": "10s",
        "timeout": timeout,
        "queries": queries,
    }]})
}

#[tokio::test]
async fn sqlite_queries_read_a_wal_database_while_the_engine_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.sqlite");
    drop(engine_db(&db));
    let (c, telemetry) = collectors(sqlite_config(
        "engine",
        &db,
        "5s",
        json!([
            {"metric": "engine_orders_total", "type": "counter",
             "sql": "SELECT venue, status, count(*) AS n FROM orders GROUP BY venue, status",
             "value_column": "n", "label_columns": ["venue", "status"], "help": "Orders logged."},
            {"metric": "engine_position_quantity",
             "sql": "SELECT symbol, quantity, note FROM positions",
             "value_column": "quantity", "label_columns": ["symbol", "note"]},
        ]),
    ));

    // The engine inserts orders, one transaction each, with no busy timeout at all: any lock
    // the collector held against it would fail an insert.
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let engine = {
        let (db, stop, inserted) = (db.clone(), stop.clone(), inserted.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::ZERO).unwrap();
            let venues = ["binance", "coinbase", "kraken"];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let venue = venues[(n % 3) as usize];
                let status = if n.is_multiple_of(4) {
                    "rejected"
                } else {
                    "filled"
                };
                conn.execute(
                    "INSERT INTO orders (venue, status, qty) VALUES (?1, ?2, 1.0)",
                    (venue, status),
                )
                .expect("the engine's write is never blocked by the collector");
                n += 1;
                inserted.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    let wait_for = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while inserted.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the engine is stuck");
            std::thread::yield_now();
        }
    };
    wait_for(100);
    let total = |s: &BTreeMap<String, f64>| -> f64 {
        s.iter()
            .filter(|(k, _)| k.starts_with("engine_orders_total"))
            .map(|(_, v)| v)
            .sum()
    };
    let mut totals = Vec::new();
    for round in 0..20 {
        let before = inserted.load(Ordering::Relaxed);
        c.collect("engine").await.unwrap().unwrap();
        let s = collected(&c);
        let t = total(&s);
        assert!(
            t >= before as f64,
            "round {round}: saw {t} orders, {before} were committed"
        );
        totals.push(t);
        wait_for(before + 50);
    }
    stop.store(true, Ordering::Relaxed);
    let committed = engine.join().unwrap();
    assert!(
        totals.windows(2).all(|w| w[0] < w[1]),
        "collections saw new rows: {totals:?}"
    );

    c.collect("engine").await.unwrap().unwrap();
    let s = collected(&c);
    assert_eq!(total(&s), committed as f64);
    let expected_rejected = committed.div_ceil(4);
    let rejected: f64 = s
        .iter()
        .filter(|(k, _)| k.contains("status=\"rejected\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(rejected, expected_rejected as f64);
    assert_eq!(
        support::value_of(&s, "engine_position_quantity", &[("symbol", "BTC-USD")]),
        Some(0.5)
    );
    assert_eq!(
        support::value_of(
            &s,
            "engine_position_quantity",
            &[("symbol", "ETH-USD"), ("note", "short")]
        ),
        Some(-3.0)
    );
    // A NULL value leaves the row out.
    assert!(!s.keys().any(|k| k.contains("SOL-USD")), "{s:?}");
    assert_eq!(errors(&telemetry, "engine"), 0.0);

    // Read-only: nothing was written by the collector, and the engine's file is intact.
    let conn = Connection::open(&db).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count as u64, committed);
    let text = c.registry().encode(Format::OpenMetrics);
    python_parse("sqlite collector", "openmetrics", &text);
}

#[tokio::test]
async fn sqlite_collectors_refuse_writes_and_name_missing_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.sqlite");
    let engine = engine_db(&db);
    engine
        .execute(
            "INSERT INTO orders (venue, status, qty) VALUES ('binance', 'filled', 2)",
            [],
        )
        .unwrap();
    let cases = [
        (
            "DELETE FROM orders RETURNING qty",
            "qty",
            format!("{}: the query for engine_x is not read-only", db.display()),
        ),
        (
            "SELECT venue, qty AS quantity FROM orders",
            "qty",
            format!(
                "{}: the query for engine_x has no column \"qty\" (it has [\"venue\", \"quantity\"])",
                db.display()
            ),
        ),
        (
            "SELECT venue, status FROM orders",
            "status",
            format!(
                "{}: the query for engine_x: column \"status\" holds the text \"filled\", not a number",
                db.display()
            ),
        ),
        (
            "SELECT nonsense FROM",
            "qty",
            format!("{}: incomplete input", db.display()),
        ),
    ];
    for (sql, value_column, message) in cases {
        let (c, telemetry) = collectors(sqlite_config(
            "bad",
            &db,
            "5s",
            json!([{"metric": "engine_x", "sql": sql, "value_column": value_column, "label_columns": ["venue"]}]),
        ));
        let err = c.collect("bad").await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), message, "{sql}");
        assert_eq!(errors(&telemetry, "bad"), 1.0);
    }
    let rows: i64 = engine
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "nothing was deleted");
}

#[tokio::test]
async fn a_missing_database_fails_counts_and_drops_the_last_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.sqlite");
    drop(engine_db(&db));
    let (c, telemetry) = collectors(sqlite_config(
        "engine",
        &db,
        "5s",
        json!([{"metric": "engine_positions", "sql": "SELECT count(*) AS n FROM positions", "value_column": "n"}]),
    ));
    c.collect("engine").await.unwrap().unwrap();
    assert_eq!(collected(&c).get("engine_positions"), Some(&3.0));
    assert_eq!(errors(&telemetry, "engine"), 0.0, "declared at zero");

    // The engine's database is moved away: the collector fails, never creates one, and its
    // series go.
    let moved = dir.path().join("moved.sqlite");
    fs::rename(&db, &moved).unwrap();
    let err = c.collect("engine").await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("unable to open database file"),
        "{err}"
    );
    assert!(!db.exists(), "a read-only open never creates the database");
    assert!(collected(&c).is_empty());
    assert_eq!(errors(&telemetry, "engine"), 1.0);
    assert_eq!(durations(&telemetry, "engine"), 2.0);

    fs::rename(&moved, &db).unwrap();
    c.collect("engine").await.unwrap().unwrap();
    assert_eq!(collected(&c).get("engine_positions"), Some(&3.0));
}

#[tokio::test]
async fn a_run_past_its_timeout_is_interrupted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.sqlite");
    drop(engine_db(&db));
    let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000000) \
                SELECT count(*) AS n FROM n";
    let (c, telemetry) = collectors(sqlite_config(
        "slow",
        &db,
        "200ms",
        json!([{"metric": "engine_slow", "sql": slow, "value_column": "n"}]),
    ));
    let started = Instant::now();
    let err = c.collect("slow").await.unwrap().unwrap_err();
    assert!(
        matches!(err, CollectError::TimedOut(d) if d == Duration::from_millis(200)),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the query was interrupted, not waited out: {:?}",
        started.elapsed()
    );
    assert_eq!(errors(&telemetry, "slow"), 1.0);
}

// ---------------------------------------------------------------------------------------------
// Rules every collector follows
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_metric_that_events_feed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pnl.json");
    fs::write(&path, br#"{"daily": -5}"#).unwrap();
    let trading = Arc::new(Registry::default());
    let family = trading
        .register("trading_pnl_daily", MetricType::Gauge, "", None, &[])
        .unwrap();
    let (c, telemetry) = collectors_with(
        json!({"json": [{
            "name": "pnl",
            "path": path.display().to_string(),
            "values": [{"metric": "trading_pnl_daily", "pointer": "/daily"}],
            "labels": {"engine": {"file_stem": true}},
        }]}),
        Some(trading.clone()),
    );
    // An engine that does not send `pnl` events may have its PnL collected under the catalog's
    // name, so the rule pack works for it too…
    c.collect("pnl").await.unwrap().unwrap();
    assert_eq!(
        collected(&c).get("trading_pnl_daily{engine=\"pnl\"}"),
        Some(&-5.0)
    );
    // …but once events feed that family, serving both would repeat it.
    family.gauge("engine=\"e\"").unwrap().set(1.0);
    let err = c.collect("pnl").await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "metric trading_pnl_daily is fed by events too; a collector may not write it"
    );
    assert!(collected(&c).is_empty());
    assert_eq!(errors(&telemetry, "pnl"), 1.0);
}

#[tokio::test]
async fn collectors_sharing_a_family_replace_only_their_own_series() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.bin", "b.bin"] {
        fs::write(dir.path().join(name), b"x").unwrap();
    }
    let (c, telemetry) = collectors(json!({"files": [
        {"name": "a", "paths": [pattern(dir.path(), "a.bin")]},
        {"name": "b", "paths": [pattern(dir.path(), "b.bin"), pattern(dir.path(), "[")]},
    ]}));
    assert_eq!(c.names(), ["a", "b"]);
    c.collect("a").await.unwrap().unwrap();
    assert_eq!(collected(&c).len(), 1);
    // `b` has an invalid pattern: it fails every time, and never touches `a`'s series.
    let err = c.collect("b").await.unwrap().unwrap_err();
    assert!(err.to_string().starts_with("invalid glob pattern"), "{err}");
    assert_eq!(collected(&c).len(), 1);
    assert_eq!(errors(&telemetry, "a"), 0.0);
    assert_eq!(errors(&telemetry, "b"), 1.0);
    assert!(c.collect("nope").await.is_none());
}

// ---------------------------------------------------------------------------------------------
// In a running exporter
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_running_exporter_serves_collected_series_and_never_journals_them() {
    tradewatch::server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = dir.path().join("model.pkl");
    fs::write(&model, b"x").unwrap();
    set_mtime(&model, 1_790_000_000);
    let text = json!({
        "server": {"listen": "127.0.0.1:0"},
        "storage": {"data_dir": data.display().to_string(), "fsync": "never"},
        "exporter": {"collectors": {
            "files": [{"name": "models", "paths": [model.display().to_string()], "interval": "1s", "timeout": "1s"}],
            "sqlite": [{
                "name": "broken",
                "path": dir.path().join("missing.sqlite").display().to_string(),
                "interval": "1s",
                "timeout": "1s",
                "queries": [{"metric": "x", "sql": "SELECT 1 AS v", "value_column": "v"}],
            }],
        }},
    })
    .to_string();
    let config = Config::parse(&text, "exporter-test.yaml").unwrap();
    let exporter = tradewatch::roles::Exporter::start(&config).await.unwrap();
    let url = format!("http://{}", exporter.addr);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(exporter.run(async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    client
        .post(format!("{url}/api/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body("{\"type\":\"kill_switch\",\"engine\":\"e\",\"active\":false}\n")
        .send()
        .await
        .unwrap();

    // The collectors' tasks run at once: wait (with a deadline) until both have run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let text = client
            .get(format!("{url}/metrics"))
            .header("accept", "application/openmetrics-text; version=1.0.0")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("tradewatch_collector_errors_total{collector=\"broken\"} 1")
            && text.contains("trading_artifact_updated_timestamp_seconds{")
        {
            break text;
        }
        assert!(Instant::now() < deadline, "collectors did not run:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let samples = support::samples(&metrics, &["trading_artifact"]);
    let artifact = model.display().to_string();
    assert_eq!(
        support::value_of(
            &samples,
            "trading_artifact_updated_timestamp_seconds",
            &[("artifact", &artifact)]
        ),
        Some(1_790_000_000.0)
    );
    // Between the trading metrics and tradewatch's own, each family once.
    let at = |needle: &str| metrics.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("# TYPE trading_kill_switch_active") < at("# TYPE trading_artifact_updated"));
    assert!(at("# TYPE trading_artifact_updated") < at("# TYPE tradewatch_build_info"));
    assert_eq!(
        metrics
            .matches("# TYPE trading_artifact_updated_timestamp_seconds ")
            .count(),
        1
    );
    python_parse("exporter with collectors", "openmetrics", &metrics);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Collected values are read again, not restored: neither journal nor snapshot has them.
    for sub in ["journal", "snapshot"] {
        for entry in fs::read_dir(data.join(sub)).unwrap() {
            let text = fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(!text.contains("trading_artifact_updated"), "{sub}: {text}");
        }
    }
}

#[test]
fn the_readme_collectors_example_is_a_valid_configuration() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme
        .find("\n## Collectors\n")
        .expect("a Collectors section")..];
    let start = section.find("```yaml\n").expect("a yaml example") + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = Config::parse(example, "README.md#collectors").unwrap();
    let c = &config.exporter.collectors;
    assert_eq!((c.files.len(), c.json.len(), c.sqlite.len()), (1, 1, 1));
}
