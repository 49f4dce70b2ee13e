//! The demo's simulated engine: the seeded generator sends every event type in its first ten
//! seconds and plays each incident of the timeline at its time (pure: time is a parameter, no
//! sleep); every event it makes validates against schema/events.schema.json (Python's
//! `jsonschema`) and is accepted by the exporter's own ingest path.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tradewatch::demo::scenario::{
    ARTIFACT_REFRESH, DATA_PROVIDER_FIRST_FAILURE, LIMITS_INTERVAL, Output, Scenario, Settings,
    artifact_paths, daily_loss_limit, engines,
};
use tradewatch::demo::timeline::{self, *};
use tradewatch::ingest::event::EVENT_TYPES;

/// Unix seconds of scenario time 0 in these tests.
const EPOCH: f64 = 1_767_225_600.0;
/// How far the pure tests play: past every step of the timeline.
const SESSION: f64 = 180.0;

fn settings(seed: u64, speed: f64) -> Settings {
    Settings {
        seed,
        epoch: EPOCH,
        speed,
        run: "test".into(),
    }
}

fn play(seed: u64, until: f64) -> Output {
    Scenario::new(settings(seed, 1.0)).advance_to(until)
}

/// Scenario time of an event of a speed-1 session.
fn t(event: &Value) -> f64 {
    let ts = event["ts"].as_f64().expect("every event has a numeric ts");
    ((ts - EPOCH) * 1000.0).round() / 1000.0
}

fn of<'a>(events: &'a [Value], kind: &str, engine: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["engine"] == engine)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

#[test]
fn every_event_type_within_ten_seconds() {
    let events = play(1, 10.0).events;
    let seen: BTreeSet<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let all: BTreeSet<&str> = EVENT_TYPES.iter().map(|t| t.as_str()).collect();
    assert_eq!(seen, all);
    for (engine, strategies) in engines() {
        assert!(
            events
                .iter()
                .any(|e| e["engine"] == engine && e["type"] == "engine_start" && t(e) == 0.0)
        );
        for strategy in strategies {
            for kind in ["order", "fill", "decision", "pnl"] {
                assert!(
                    events.iter().any(|e| e["engine"] == engine
                        && e["strategy"] == strategy
                        && e["type"] == kind),
                    "no {kind} of {engine}/{strategy} in 10 s"
                );
            }
        }
    }
}

#[test]
fn one_seed_plays_one_session_however_time_is_cut() {
    let whole = play(42, SESSION);
    let mut scenario = Scenario::new(settings(42, 1.0));
    let mut events = Vec::new();
    let mut artifacts = Vec::new();
    let mut now = 0.0;
    let mut step = 0.013;
    while now < SESSION {
        now = f64::min(now + step, SESSION);
        step = step * 1.7 % 3.1 + 0.01;
        let out = scenario.advance_to(now);
        events.extend(out.events);
        artifacts.extend(out.artifacts);
    }
    assert_eq!(events.len(), whole.events.len());
    assert!(events == whole.events, "the sessions differ");
    assert_eq!(artifacts, whole.artifacts);
    assert!(play(43, SESSION).events != whole.events);
}

#[test]
fn speed_compresses_timestamps() {
    let fast = Scenario::new(settings(1, 20.0)).events_until(KILL_SWITCH_ENGAGED);
    let slow = play(1, KILL_SWITCH_ENGAGED).events;
    assert_eq!(fast.len(), slow.len());
    let engaged = |events: &[Value]| {
        events
            .iter()
            .find(|e| e["type"] == "kill_switch" && e["active"] == true)
            .map(|e| e["ts"].as_f64().unwrap())
            .expect("the kill switch engages")
    };
    assert_eq!(engaged(&slow), EPOCH + KILL_SWITCH_ENGAGED);
    assert_eq!(engaged(&fast), EPOCH + KILL_SWITCH_ENGAGED / 20.0);
}

#[test]
fn kill_switch_and_breaker_at_their_steps() {
    let events = play(7, SESSION).events;
    let switches: Vec<(f64, bool)> = of(&events, "kill_switch", INCIDENT_ENGINE)
        .iter()
        .map(|e| (t(e), e["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        switches,
        [
            (0.0, false),
            (KILL_SWITCH_ENGAGED, true),
            (KILL_SWITCH_RELEASED, false)
        ]
    );
    let engaged = of(&events, "kill_switch", INCIDENT_ENGINE)[1];
    assert_eq!(engaged["reason"], "daily loss limit breached");

    let breaker: Vec<(f64, bool)> = of(&events, "circuit_breaker", INCIDENT_ENGINE)
        .iter()
        .filter(|e| e["breaker"] == TRIPPED_BREAKER)
        .map(|e| (t(e), e["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        breaker,
        [
            (0.0, false),
            (BREAKER_TRIPPED, true),
            (BREAKER_CLEARED, false)
        ]
    );
    // The other engine's switches stay off.
    for e in events
        .iter()
        .filter(|e| e["engine"] == SILENT_ENGINE)
        .filter(|e| e["type"] == "kill_switch" || e["type"] == "circuit_breaker")
    {
        assert_eq!(e["active"], false, "{e}");
    }
    // No order of the halted engine while its kill switch is on.
    let halted: Vec<_> = of(&events, "order", INCIDENT_ENGINE)
        .into_iter()
        .filter(|e| timeline::kill_switch_active(t(e)))
        .collect();
    assert!(halted.is_empty(), "{halted:?}");
    assert!(
        of(&events, "decision", INCIDENT_ENGINE)
            .iter()
            .filter(|e| timeline::kill_switch_active(t(e)))
            .all(|e| e["decision"] == "blocked")
    );
}

/// The incident engine's daily PnL, summed over its strategies, at each time a `pnl` event
/// changes it; and the daily loss limit in force then.
fn daily_pnl(events: &[Value], engine: &str) -> Vec<(f64, f64, f64, f64)> {
    let mut latest: BTreeMap<String, f64> = BTreeMap::new();
    let mut limit = None;
    let mut out: Vec<(f64, f64, f64, f64)> = Vec::new();
    for e in events.iter().filter(|e| e["engine"] == engine) {
        if e["type"] == "limits" {
            limit = e["daily_loss_limit"].as_f64();
        }
        if e["type"] == "pnl" {
            let strategy = e["strategy"].as_str().unwrap().to_owned();
            latest.insert(strategy, e["daily"].as_f64().unwrap());
            let sum = latest.values().sum();
            let losing = latest.get(LOSING_STRATEGY).copied().unwrap_or(0.0);
            let limit = limit.expect("limits come before the first pnl");
            match out.last_mut() {
                Some(last) if last.0 == t(e) => *last = (t(e), sum, losing, limit),
                _ => out.push((t(e), sum, losing, limit)),
            }
        }
    }
    out
}

#[test]
fn daily_loss_limit_breached_then_recovered() {
    for seed in [1, 2, 3, 99] {
        let events = play(seed, SESSION).events;
        let expected_limit = daily_loss_limit(INCIDENT_ENGINE).unwrap();
        let limits: Vec<f64> = of(&events, "limits", INCIDENT_ENGINE)
            .iter()
            .map(|e| t(e))
            .collect();
        let periodic: Vec<f64> = (0..=(SESSION / LIMITS_INTERVAL) as u32)
            .map(|i| f64::from(i) * LIMITS_INTERVAL)
            .collect();
        assert_eq!(limits, periodic);
        let series = daily_pnl(&events, INCIDENT_ENGINE);
        assert!(series.len() as f64 >= SESSION - 1.0);
        for &(at, sum, losing, limit) in &series {
            // Limits are positive amounts; a breach is a daily PnL below minus the limit.
            assert_eq!(limit, expected_limit);
            if (LOSS_LIMIT_BREACHED..LOSS_RECOVERY).contains(&at) {
                assert!(
                    sum < -limit,
                    "seed {seed} at {at}: {sum} not below -{limit}"
                );
                assert!(losing < -limit, "seed {seed} at {at}: {losing}");
            } else if !(LOSS_SLIDE..LOSS_RECOVERED).contains(&at) {
                assert!(sum > -limit, "seed {seed} at {at}: {sum} below -{limit}");
            }
        }
        let first_breach = series.iter().find(|s| s.1 < -s.3).unwrap().0;
        assert!(
            (LOSS_SLIDE..=LOSS_LIMIT_BREACHED).contains(&first_breach),
            "{first_breach}"
        );
        // The other engine never comes near its limit.
        let beta_limit = daily_loss_limit(SILENT_ENGINE).unwrap();
        for (at, sum, _, _) in daily_pnl(&events, SILENT_ENGINE) {
            assert!(sum > -0.5 * beta_limit, "{at}: {sum}");
        }
        // PnL fields are consistent.
        for e in events.iter().filter(|e| e["type"] == "pnl") {
            let (d, r, u) = (
                e["daily"].as_f64().unwrap(),
                e["realized"].as_f64().unwrap(),
                e["unrealized"].as_f64().unwrap(),
            );
            assert!((r + u - d).abs() < 0.011, "{e}");
            let dd = e["drawdown_ratio"].as_f64().unwrap();
            assert!((0.0..1.0).contains(&dd), "{e}");
        }
    }
}

#[test]
fn silent_engine_drops_its_heartbeat_and_comes_back() {
    let events = play(5, SESSION).events;
    for (engine, _) in engines() {
        let times: Vec<f64> = events
            .iter()
            .filter(|e| e["engine"] == engine)
            .map(t)
            .collect();
        let beats: Vec<f64> = of(&events, "heartbeat", engine)
            .iter()
            .map(|e| t(e))
            .collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            if engine == SILENT_ENGINE && pair[0] < HEARTBEAT_LOST && pair[1] >= HEARTBEAT_LOST {
                assert!(gap >= HEARTBEAT_GAP, "{engine}: {pair:?}");
                assert_eq!(pair[1], HEARTBEAT_RESUMED);
            } else {
                assert!(
                    gap <= 1.0,
                    "{engine} silent from {} to {}",
                    pair[0],
                    pair[1]
                );
            }
        }
        // A heartbeat every second it is not silent.
        let expected: Vec<f64> = (0..=SESSION as u32)
            .map(f64::from)
            .filter(|s| engine != SILENT_ENGINE || !timeline::silent(*s))
            .collect();
        assert_eq!(beats, expected, "{engine}");
    }
    let back: Vec<&str> = events
        .iter()
        .filter(|e| e["engine"] == SILENT_ENGINE && t(e) == HEARTBEAT_RESUMED)
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(back.first(), Some(&"engine_start"), "{back:?}");
    assert!(back.contains(&"limits") && back.contains(&"portfolio"));
    assert!(
        !events
            .iter()
            .any(|e| e["engine"] == SILENT_ENGINE && timeline::silent(t(e)))
    );
}

#[test]
fn api_error_burst() {
    let events = play(11, SESSION).events;
    let errors = |from: f64, to: f64| {
        of(&events, "api_call", INCIDENT_ENGINE)
            .iter()
            .filter(|e| (from..to).contains(&t(e)) && e["ok"] == false)
            .count() as f64
            / (to - from)
    };
    let burst = errors(API_ERROR_BURST, API_ERRORS_END);
    let before = errors(0.0, API_ERROR_BURST);
    let after = errors(API_ERRORS_END, SESSION);
    assert!(burst >= 5.0, "{burst} errors a second in the burst");
    assert!(before < 0.2 && after < 0.2, "{before} {after}");
    for e in of(&events, "api_call", INCIDENT_ENGINE) {
        if e["ok"] == false {
            assert!(e["code"].is_u64(), "{e}");
        } else {
            assert!(e.get("code").is_none(), "{e}");
        }
    }
    assert!(
        of(&events, "error", INCIDENT_ENGINE)
            .iter()
            .any(|e| e["kind"] == "rate_limited" && timeline::api_error_burst(t(e)))
    );
}

#[test]
fn connectivity_flaps_then_stays_down_then_recovers() {
    let events = play(13, SESSION).events;
    let changes: Vec<(f64, bool)> = of(&events, "connectivity", INCIDENT_ENGINE)
        .iter()
        .filter(|e| e["target"] == FLAPPING_TARGET)
        .map(|e| (t(e), e["up"].as_bool().unwrap()))
        .collect();
    // The state the events report, between each report and the next, is the timeline's.
    for pair in changes.windows(2) {
        let (at, up) = pair[0];
        let mut s = at;
        while s < pair[1].0 {
            assert_eq!(timeline::flapping_target_up(s), up, "at {s}");
            s += 0.1;
        }
    }
    let downs = changes
        .windows(2)
        .filter(|p| p[0].1 && !p[1].1)
        .map(|p| p[1].0)
        .collect::<Vec<_>>();
    assert!(downs.len() >= 3, "{downs:?}");
    assert!(downs.iter().all(|d| *d >= CONNECTIVITY_FLAPPING));
    assert!(changes.iter().any(|c| c.0 == CONNECTIVITY_RESTORED && c.1));
    // Other targets and the other engine stay up.
    assert!(
        events
            .iter()
            .filter(|e| e["type"] == "connectivity")
            .filter(|e| e["engine"] != INCIDENT_ENGINE || e["target"] != FLAPPING_TARGET)
            .all(|e| e["up"] == true)
    );
}

#[test]
fn orders_fills_and_portfolio_look_like_trading() {
    let events = play(17, 300.0).events;
    let statuses: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "order")
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from([
            "submitted",
            "filled",
            "partially_filled",
            "rejected",
            "cancelled",
            "failed"
        ])
    );
    // Idempotency ids are unique: a resent batch is a duplicate, never a second order.
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    let unique: BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len());
    assert!(ids.iter().all(|id| id.contains(":test:")));
    // Every outcome but `submitted` carries a latency; filled orders have fills.
    let orders = events.iter().filter(|e| e["type"] == "order");
    let (submitted, outcomes): (Vec<&Value>, Vec<&Value>) =
        orders.partition(|e| e["status"] == "submitted");
    assert!(submitted.iter().all(|e| e.get("latency_seconds").is_none()));
    assert!(
        outcomes
            .iter()
            .all(|e| e["latency_seconds"].as_f64() > Some(0.0))
    );
    let fills = events.iter().filter(|e| e["type"] == "fill").count();
    let filled = outcomes.iter().filter(|e| e["status"] == "filled").count();
    assert!(fills >= filled && filled > submitted.len() / 2);
    // Positions stay within their limits.
    let mut limits: BTreeMap<(String, String), f64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "limits") {
        for (symbol, limit) in e["position_limits"].as_object().unwrap() {
            limits.insert(
                (e["engine"].as_str().unwrap().into(), symbol.clone()),
                limit.as_f64().unwrap(),
            );
        }
    }
    for e in events.iter().filter(|e| e["type"] == "portfolio") {
        for p in e["positions"].as_array().unwrap() {
            let key = (
                e["engine"].as_str().unwrap().to_owned(),
                p["symbol"].as_str().unwrap().to_owned(),
            );
            let q = p["quantity"].as_f64().unwrap();
            assert!(q.abs() <= limits[&key], "{e}");
        }
    }
    // Rebalances: mostly successful, with drift.
    let rebalances: Vec<&Value> = events.iter().filter(|e| e["type"] == "rebalance").collect();
    let successes = rebalances
        .iter()
        .filter(|e| e["result"] == "success")
        .count();
    assert!(rebalances.len() >= 15 && successes * 10 >= rebalances.len() * 7);
    assert!(
        rebalances
            .iter()
            .all(|e| e["drift_max_ratio"].as_f64() > Some(0.0))
    );
}

/// Outside its scripted incidents the session stays under the rule pack's thresholds, so the
/// alerts a demo shows are the ones the timeline names.
#[test]
fn steady_state_stays_under_the_alert_thresholds() {
    const LONG: f64 = 1800.0;
    let events = play(31, LONG).events;
    // Each event type's events with their times, once.
    let mut typed: BTreeMap<&str, Vec<(f64, &Value)>> = BTreeMap::new();
    for e in &events {
        typed
            .entry(e["type"].as_str().unwrap())
            .or_default()
            .push((t(e), e));
    }
    let window = |kind: &str, from: f64, to: f64| {
        let all = &typed[kind];
        let start = all.partition_point(|(at, _)| *at < from);
        let end = all.partition_point(|(at, _)| *at < to);
        all[start..end].iter().map(|(_, e)| *e)
    };
    let mut end = 300.0;
    while end <= LONG {
        // TradingOrderFailureRatioHigh: rejected and failed over finished orders above 10 %.
        let mut by_venue: BTreeMap<(&str, &str), (u32, u32)> = BTreeMap::new();
        for e in window("order", end - 300.0, end) {
            let key = (e["engine"].as_str().unwrap(), e["venue"].as_str().unwrap());
            let entry = by_venue.entry(key).or_default();
            match e["status"].as_str().unwrap() {
                "rejected" | "failed" => {
                    entry.0 += 1;
                    entry.1 += 1;
                }
                "filled" | "cancelled" => entry.1 += 1,
                _ => {}
            }
        }
        for (key, (bad, finished)) in by_venue {
            assert!(
                f64::from(bad) <= 0.1 * f64::from(finished),
                "{key:?} to {end}: {bad}/{finished}"
            );
        }
        // TradingApiErrorBurst: 10 errors of one API in a minute, outside the scripted burst.
        if end - 60.0 >= API_ERRORS_END {
            let mut by_api: BTreeMap<(&str, &str), u32> = BTreeMap::new();
            for e in window("api_call", end - 60.0, end).filter(|e| e["ok"] == false) {
                let key = (e["engine"].as_str().unwrap(), e["api"].as_str().unwrap());
                *by_api.entry(key).or_default() += 1;
            }
            assert!(by_api.values().all(|n| *n < 10), "to {end}: {by_api:?}");
        }
        end += 30.0;
    }
    // TradingDailyLossWarning: a loss of 80 % of the limit, outside the scripted slide.
    for (engine, _) in engines() {
        for (at, sum, _, limit) in daily_pnl(&events, engine) {
            if !(LOSS_SLIDE..LOSS_RECOVERED).contains(&at) || engine != INCIDENT_ENGINE {
                assert!(sum > -0.8 * limit, "{engine} at {at}: {sum}");
            }
        }
    }
    // TradingPortfolioDriftHigh and TradingRebalanceFailed.
    for e in window("rebalance", 0.0, LONG) {
        assert!(e["drift_max_ratio"].as_f64().unwrap() <= 0.05, "{e}");
        assert_ne!(e["result"], "failed");
    }
    // TradingOrderLatencyP95High (0.5 s) and TradingCycleSlow (5 s).
    let p95 = |kind: &'static str, field: &str| {
        let mut values: Vec<f64> = window(kind, 0.0, LONG)
            .filter_map(|e| e[field].as_f64())
            .collect();
        values.sort_by(f64::total_cmp);
        values[values.len() * 95 / 100]
    };
    assert!(p95("order", "latency_seconds") < 0.5);
    assert!(p95("cycle", "duration_seconds") < 5.0);
}

#[test]
fn data_provider_fails_now_and_then() {
    let events = play(19, 600.0).events;
    for (engine, _) in engines() {
        let failures: Vec<f64> = of(&events, "data_provider", engine)
            .iter()
            .filter(|e| e["ok"] == false)
            .map(|e| t(e))
            .collect();
        assert_eq!(failures.first(), Some(&DATA_PROVIDER_FIRST_FAILURE));
        // Never the five in five minutes of TradingDataProviderFailures.
        for (i, at) in failures.iter().enumerate() {
            let within = failures[i..]
                .iter()
                .take_while(|f| **f < at + 300.0)
                .count();
            assert!(within < 5, "{engine}: {failures:?}");
        }
        assert!(failures.len() >= 4, "{engine}: {failures:?}");
    }
}

#[test]
fn artifacts_refresh_but_one_goes_stale() {
    let writes = play(3, 60.0).artifacts;
    let paths = artifact_paths();
    for path in paths {
        let times: Vec<f64> = writes
            .iter()
            .filter(|w| w.path == path)
            .map(|w| w.modified)
            .collect();
        if path == STALE_ARTIFACT {
            assert_eq!(times, [EPOCH - ARTIFACT_STALE_AGE]);
        } else {
            let expected: Vec<f64> = (0..=6)
                .map(|i| EPOCH + f64::from(i) * ARTIFACT_REFRESH)
                .collect();
            assert_eq!(times, expected, "{path}");
        }
    }
    for w in &writes {
        let content: Value = serde_json::from_str(&w.content).unwrap();
        assert!(content["strategy"].is_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Every event is valid: against the JSON Schema, and through the exporter's ingest path
// ---------------------------------------------------------------------------------------------

const PYTHON_JSONSCHEMA: support::Needs = support::Needs {
    what: "python3 with jsonschema",
    probe: &["python3", "-c", "import jsonschema"],
    install: "pip install jsonschema",
};

#[test]
fn every_event_validates_against_the_schema() {
    if !support::available(
        "every_event_validates_against_the_schema",
        &[&PYTHON_JSONSCHEMA],
    ) {
        return;
    }
    let events = play(21, SESSION).events;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/validate_schema.py"
    );
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/events.schema.json");
    let input = serde_json::to_vec(&events).unwrap();
    let (status, stdout, stderr) = support::run_with_input("python3", &[script, schema], &input);
    assert!(status.success(), "validate_schema.py: {stderr}");
    let results: Vec<Option<String>> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(results.len(), events.len());
    let invalid: Vec<String> = results
        .iter()
        .zip(&events)
        .filter_map(|(r, e)| r.as_ref().map(|r| format!("{r}: {e}")))
        .take(5)
        .collect();
    assert!(invalid.is_empty(), "{invalid:#?}");
}

#[tokio::test]
async fn every_event_is_accepted_by_the_ingest_path() {
    use tradewatch::api::{AppState, router};
    use tradewatch::config::{Config, Tokens};
    use tradewatch::exporter::Registry;
    use tradewatch::ingest::Ingest;
    use tradewatch::telemetry::Telemetry;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = serde_json::to_string(&dir.path().display().to_string()).unwrap();
    let text = format!("storage:\n  data_dir: {data_dir}\n  fsync: never\n");
    let config = Config::parse(&text, "demo-test.yaml").unwrap();
    let registry = Arc::new(Registry::default());
    let telemetry = Arc::new(Telemetry::new());
    let (ingest, _) = Ingest::start(&config, registry, telemetry.clone()).unwrap();
    let state = AppState::exporter(
        &config,
        Arc::new(ingest),
        Arc::default(),
        telemetry,
        Tokens::default(),
    );
    let app = router(state);

    let mut scenario = Scenario::new(settings(23, 1.0));
    let mut total = 0;
    let mut now = 0.0;
    while now < SESSION {
        now += 0.2;
        let events = scenario.events_until(now);
        if events.is_empty() {
            continue;
        }
        total += events.len();
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        let request = Request::post("/api/v1/events")
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let reply: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, 200, "{reply}");
        if let Some(first) = reply["rejected"].as_array().and_then(|r| r.first()) {
            let line = first["line"].as_u64().unwrap() as usize;
            panic!("at {now}: {first} for {}", events[line - 1]);
        }
        assert_eq!(reply["accepted"], events.len(), "{reply}");
    }
    assert!(total > 5_000, "{total}");
}

// ---------------------------------------------------------------------------------------------
// The driver: retries, rejections and tokens, against a loopback server whose answers the test
// chooses (the real exporter answers 429 only under a load a test cannot time)
// ---------------------------------------------------------------------------------------------

/// What the loopback server received: each request's `Authorization` header and body.
type Received = Arc<std::sync::Mutex<Vec<(Option<String>, String)>>>;

/// A server on loopback that answers the `n`th request (from 0) with `answer(n, body)`.
async fn answering(
    answer: fn(usize, &str) -> (u16, Option<&'static str>, String),
) -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;

    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/api/v1/events",
        post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push((auth, body.clone()));
                    log.len() - 1
                };
                let (status, retry_after, reply) = answer(n, &body);
                let mut response = (StatusCode::from_u16(status).unwrap(), reply).into_response();
                if let Some(r) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", r.parse().unwrap());
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn driver_config(url: String, seed: u64, duration: f64) -> tradewatch::demo::DriverConfig {
    tradewatch::demo::DriverConfig {
        url,
        token: Some("s3cret".into()),
        seed,
        speed: 20.0,
        duration: Some(std::time::Duration::from_secs_f64(duration)),
        artifacts_dir: None,
    }
}

#[tokio::test]
async fn driver_retries_after_429_and_counts_rejections() {
    tradewatch::server::install_crypto_provider();
    // The first request is refused for now, the second has its first line rejected, the rest
    // are accepted whole.
    let (url, received) = answering(|n, body| {
        let lines = body.lines().count();
        match n {
            0 => (
                429,
                Some("1"),
                r#"{"error":"the journal queue is full"}"#.into(),
            ),
            1 => (
                200,
                None,
                format!(
                    r#"{{"accepted":{},"duplicates":0,"rejected":[{{"line":1,"error":"test"}}]}}"#,
                    lines - 1
                ),
            ),
            _ => (
                200,
                None,
                format!(r#"{{"accepted":{lines},"duplicates":0,"rejected":[]}}"#),
            ),
        }
    })
    .await;
    let summary = tradewatch::demo::run(driver_config(url, 9, 30.0), std::future::pending())
        .await
        .unwrap();
    let received = received.lock().unwrap().clone();
    assert!(received.len() >= 3, "{}", received.len());
    // The refused batch is sent again, first in line.
    assert!(received[1].1.starts_with(&received[0].1));
    assert!(
        received
            .iter()
            .all(|(auth, _)| auth.as_deref() == Some("Bearer s3cret"))
    );
    // Everything the scenario made up to the end went out once, the refused batch aside.
    let expected = Scenario::new(settings(9, 20.0)).events_until(30.0);
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for e in &expected {
        *by_type
            .entry(e["type"].as_str().unwrap().into())
            .or_default() += 1;
    }
    let sent_lines: usize = received[1..].iter().map(|(_, b)| b.lines().count()).sum();
    assert_eq!(sent_lines, expected.len());
    assert_eq!(summary.by_type, by_type);
    assert_eq!(summary.sent, expected.len() as u64);
    assert_eq!(summary.accepted, summary.sent - 1);
    assert_eq!(summary.rejected, 1);
    assert_eq!(summary.unsent, 0);
    assert_eq!(
        summary.rejected_by_type,
        BTreeMap::from([("engine_start".to_owned(), 1)])
    );
}

#[tokio::test]
async fn driver_stops_on_a_refusal_retrying_cannot_fix() {
    tradewatch::server::install_crypto_provider();
    let (url, _) = answering(|_, _| {
        (
            401,
            None,
            r#"{"error":"a valid bearer token is required"}"#.into(),
        )
    })
    .await;
    let err = tradewatch::demo::run(driver_config(url, 1, 5.0), std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"the exporter refused the events with status 401: {"error":"a valid bearer token is required"}"#
    );
}

#[tokio::test]
async fn driver_stops_at_the_shutdown_signal() {
    tradewatch::server::install_crypto_provider();
    let (url, received) = answering(|_, body| {
        let lines = body.lines().count();
        (
            200,
            None,
            format!(r#"{{"accepted":{lines},"duplicates":0,"rejected":[]}}"#),
        )
    })
    .await;
    let mut config = driver_config(url, 1, 0.0);
    config.duration = None;
    // Resolves once the first batch arrived: the driver then stops, whatever the duration.
    let seen = received.clone();
    let shutdown = async move {
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    };
    let summary = tradewatch::demo::run(config, shutdown).await.unwrap();
    assert!(summary.sent > 0 && summary.unsent == 0, "{summary}");
    assert_eq!(summary.accepted, summary.sent);
}

// ---------------------------------------------------------------------------------------------
// End to end: `tradewatch demo --engine-only` against a real `tradewatch exporter`
// ---------------------------------------------------------------------------------------------

/// How much scenario time the end-to-end run plays (every step of the timeline), and how fast.
const E2E_DURATION: &str = "150s";
const E2E_SPEED: &str = "20";

#[tokio::test]
async fn engine_only_against_the_real_exporter() {
    use std::process::Command;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    use tradewatch::exporter::registry::sample_names;
    use tradewatch::exporter::{Catalog, Registry};

    // An exporter that wants an ingest token and watches the demo's model files.
    let data = tempfile::tempdir().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let token = data.path().join("ingest.token");
    std::fs::write(&token, "demo-s3cret\n").unwrap();
    let quoted = |p: &std::path::Path| serde_json::to_string(&p.display().to_string()).unwrap();
    let config = data.path().join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  auth:\n    ingest_token_file: {}\n\
             exporter:\n  collectors:\n    files: [{{name: models, paths: [{}], interval: 1s, timeout: 1s}}]\n",
            quoted(&token),
            quoted(&artifacts.path().join("models/*.json")),
        ),
    )
    .unwrap();
    let exporter =
        support::Exporter::start_with(data.path(), &["--config", config.to_str().unwrap()]).await;
    let demo_command = |extra: &[&str]| {
        let mut command = Command::new(support::BIN);
        command
            .args(["demo", "--engine-only", "--url", &exporter.url("")])
            .args(extra)
            .env_remove("TRADEWATCH_TOKEN")
            .env_remove("TRADEWATCH_URL")
            .env("NO_COLOR", "1");
        command
    };

    // Without the token, the demo stops at once and says why.
    let out = demo_command(&["--duration", "1s"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the exporter refused the events with status 401"),
        "{stderr}"
    );

    let command = demo_command(&[
        "--speed",
        E2E_SPEED,
        "--duration",
        E2E_DURATION,
        "--seed",
        "4",
        "--token-file",
        token.to_str().unwrap(),
        "--artifacts-dir",
        artifacts.path().to_str().unwrap(),
    ]);
    let started = Instant::now();
    let mut demo = support::Process::spawn("tradewatch demo", command);
    let status = loop {
        if let Some(status) = demo.try_wait() {
            break status;
        }
        assert!(
            started.elapsed() < support::READY_DEADLINE,
            "the demo did not stop\n--- log ---\n{}",
            demo.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = demo.log();
    assert!(status.success(), "{status}\n--- log ---\n{log}");
    // 150 s of scenario at speed 20: a little over 7.5 s.
    assert!(started.elapsed() >= Duration::from_millis(7_500), "{log}");

    // The summary line: everything sent was accepted.
    let summary = log
        .lines()
        .find(|l| l.starts_with("demo engine: sent "))
        .unwrap_or_else(|| panic!("no summary line\n--- log ---\n{log}"));
    let number = |after: &str| -> u64 {
        let rest = &summary[summary.find(after).unwrap() + after.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let sent = number("sent ");
    assert!(sent > 5_000, "{summary}");
    assert_eq!(number("accepted "), sent, "{summary}");
    assert_eq!(number("rejected "), 0, "{summary}");
    assert_eq!(number("unsent "), 0, "{summary}");
    for kind in EVENT_TYPES {
        assert!(
            summary.contains(&format!(" {}=", kind.as_str())),
            "{kind:?}: {summary}"
        );
    }

    let text = exporter.openmetrics().await;
    let samples = support::samples(&text, &["trading_", "tradewatch_events_", "signals_"]);
    let others = support::samples(&text, &["model_", "engine_"]);
    // Nothing rejected, and the exporter counted what the demo sent.
    let rejected: f64 = samples
        .iter()
        .filter(|(s, _)| s.starts_with("tradewatch_events_rejected_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(rejected, 0.0);
    let received: f64 = samples
        .iter()
        .filter(|(s, _)| s.starts_with("tradewatch_events_received_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(received, sent as f64);

    // Every family of the catalog (all fed by events) has samples.
    let catalog = Catalog::new(&Registry::default(), &Default::default());
    for family in catalog.all() {
        let names = sample_names(family.name(), family.kind());
        assert!(
            samples
                .keys()
                .any(|s| names.contains(&support::split_series(s).0.to_owned())),
            "no sample of {}",
            family.name()
        );
    }
    // The engine's own metrics too.
    for name in ["signals_generated_total", "model_inference_seconds_count"] {
        assert!(
            samples
                .keys()
                .chain(others.keys())
                .any(|s| s.starts_with(name)),
            "{name}"
        );
    }
    assert!(others.keys().any(|s| s.starts_with("engine_queue_depth{")));

    let value = |name: &str, labels: &[(&str, &str)]| {
        support::value_of(&samples, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
    };
    // The incidents, as the exporter recorded them.
    let alpha = [("engine", INCIDENT_ENGINE)];
    assert_eq!(value("trading_kill_switch_active", &alpha), 0.0);
    assert_eq!(
        value(
            "trading_circuit_breaker_trips_total",
            &[("engine", INCIDENT_ENGINE), ("breaker", TRIPPED_BREAKER)]
        ),
        1.0
    );
    assert_eq!(
        value("trading_daily_loss_limit", &alpha),
        daily_loss_limit(INCIDENT_ENGINE).unwrap()
    );
    let api_errors: f64 = samples
        .iter()
        .filter(|(s, _)| s.starts_with("trading_api_errors_total{engine=\"alpha\""))
        .map(|(_, v)| v)
        .sum();
    assert!(api_errors >= 50.0, "{api_errors}");
    assert_eq!(
        value(
            "trading_connectivity_up",
            &[("engine", INCIDENT_ENGINE), ("target", FLAPPING_TARGET)]
        ),
        1.0
    );
    // beta restarted after its silence: its start is HEARTBEAT_RESUMED / speed after alpha's.
    let speed: f64 = E2E_SPEED.parse().unwrap();
    let restart = value(
        "trading_engine_start_time_seconds",
        &[("engine", SILENT_ENGINE)],
    ) - value("trading_engine_start_time_seconds", &alpha);
    assert!(
        (restart - HEARTBEAT_RESUMED / speed).abs() < 0.01,
        "{restart}"
    );

    // The journal holds the kill switch going on and off, and the loss limit breach.
    let mut journal = String::new();
    for entry in std::fs::read_dir(data.path().join("journal")).unwrap() {
        journal.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, sent);
    let switches: Vec<bool> = lines
        .iter()
        .filter(|e| e["type"] == "kill_switch" && e["engine"] == INCIDENT_ENGINE)
        .map(|e| e["active"].as_bool().unwrap())
        .collect();
    assert_eq!(switches, [false, true, false]);
    let limit = daily_loss_limit(INCIDENT_ENGINE).unwrap();
    assert!(lines.iter().any(|e| e["type"] == "pnl"
        && e["strategy"] == LOSING_STRATEGY
        && e["daily"].as_f64().unwrap() < -limit));

    // The file-freshness collector sees the model files: two fresh, one two days old.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let text = exporter.text().await;
    let collected = support::samples(&text, &["trading_artifact_updated_timestamp_seconds"]);
    assert_eq!(collected.len(), artifact_paths().len(), "{collected:?}");
    for path in artifact_paths() {
        let artifact = artifacts.path().join(path).display().to_string();
        let modified = support::value_of(
            &collected,
            "trading_artifact_updated_timestamp_seconds",
            &[("artifact", &artifact)],
        )
        .unwrap_or_else(|| panic!("{artifact} not collected: {collected:?}"));
        let age = now - modified;
        if path == STALE_ARTIFACT {
            assert!(age > ARTIFACT_ALERT_AFTER, "{path}: {age}");
        } else {
            assert!((0.0..60.0).contains(&age), "{path}: {age}");
        }
    }

    // The files themselves.
    for path in artifact_paths() {
        let modified = std::fs::metadata(artifacts.path().join(path))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let age = now - modified;
        if path == STALE_ARTIFACT {
            assert!((age - ARTIFACT_STALE_AGE).abs() < 60.0, "{path}: {age}");
        } else {
            assert!((0.0..60.0).contains(&age), "{path}: {age}");
        }
    }
    exporter.process.signal("TERM");
}

#[test]
fn readme_names_every_step_of_the_timeline() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("### The simulated engine")
        .expect("README.md has a section on the simulated engine");
    let section = &readme[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    for step in TIMELINE {
        assert!(
            section.contains(&format!("`{}`", step.name)),
            "README.md does not name step {}",
            step.name
        );
    }
}
