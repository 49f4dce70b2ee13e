//! The provisioned Grafana dashboards (`grafana/`): every dashboard parses as modern Grafana JSON,
//! every query (panels, variables, annotations) parses with tradewatch's PromQL parser and reads
//! only metrics of the catalog or tradewatch's self-metrics, uids are unique, every data source a
//! dashboard names is provisioned, and the rule pack's `dashboard` links point at dashboards that
//! exist. With `tradewatch demo` running and a real Prometheus scraping it and evaluating the rule
//! pack (deploy/prometheus.yml), every query, sent as Grafana sends it, returns data, and
//! Grafana's Alertmanager data source finds tradewatch's `/api/v2`.

mod pack;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use tradewatch::rules::RuleFile;

/// The panel types a dashboard may use: current ones, none of the deprecated `graph` or
/// `singlestat`.
const PANEL_TYPES: &[&str] = &[
    "row",
    "timeseries",
    "stat",
    "bargauge",
    "gauge",
    "table",
    "state-timeline",
];

fn dashboards() -> Vec<(PathBuf, Value)> {
    let files = pack::files_in("grafana/dashboards", ".json");
    assert_eq!(files.len(), 4, "four dashboards (DESIGN §6)");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", pack::relative(&path)));
            (path, value)
        })
        .collect()
}

fn provisioning(path: &str) -> Value {
    let text = std::fs::read_to_string(pack::root().join(path)).unwrap();
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The provisioned data sources by uid.
fn datasources() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for path in pack::files_in("grafana/provisioning/datasources", ".yml") {
        let doc = provisioning(&pack::relative(&path));
        assert_eq!(doc["apiVersion"], 1);
        for ds in doc["datasources"].as_array().unwrap() {
            let uid = ds["uid"].as_str().expect("every data source has a uid");
            assert!(
                out.insert(uid.to_owned(), ds.clone()).is_none(),
                "uid {uid} twice"
            );
        }
    }
    out
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// A query with Grafana's interval and range variables replaced by durations, as Grafana
/// replaces them before Prometheus sees the query (`$engine` sits inside a string and stays).
fn as_promql(query: &str) -> String {
    query
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
}

/// Every PromQL query of a dashboard with where it is: panel targets and annotations.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {:?}: target without expr", panel["title"]));
            out.push((format!("panel {}", panel["title"]), expr.to_owned()));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = annotation["expr"].as_str() {
            out.push((
                format!("annotation {}", annotation["name"]),
                expr.to_owned(),
            ));
        }
    }
    out
}

#[test]
fn dashboards_are_modern_grafana_json_with_unique_uids() {
    let mut uids = BTreeSet::new();
    for (path, dashboard) in dashboards() {
        let file = pack::relative(&path);
        let uid = dashboard["uid"].as_str().unwrap();
        assert!(uids.insert(uid.to_owned()), "{file}: uid {uid} twice");
        assert_eq!(
            path.file_stem().unwrap().to_string_lossy(),
            uid,
            "{file}: file named after its uid"
        );
        assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 38, "{file}");
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let kind = panel["type"].as_str().unwrap();
            assert!(PANEL_TYPES.contains(&kind), "{file}: panel type {kind}");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{file}: panel id twice"
            );
            if kind != "row" {
                assert!(
                    !panel["targets"].as_array().unwrap().is_empty(),
                    "{file}: panel {} has no query",
                    panel["title"]
                );
            }
        }
    }
}

#[test]
fn panels_do_not_overlap() {
    for (path, dashboard) in dashboards() {
        let mut taken: BTreeSet<(u64, u64)> = BTreeSet::new();
        for panel in panels(&dashboard) {
            let g = &panel["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(
                x + w <= 24,
                "{}: {} is wider than the grid",
                path.display(),
                panel["title"]
            );
            for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
                assert!(
                    taken.insert(cell),
                    "{}: {} overlaps another panel",
                    pack::relative(&path),
                    panel["title"]
                );
            }
        }
    }
}

#[test]
fn every_query_parses_and_reads_known_metrics() {
    let known = pack::known_metrics();
    let mut count = 0;
    for (path, dashboard) in dashboards() {
        let file = pack::relative(&path);
        for (place, query) in queries(&dashboard) {
            let expr = tradewatch::promql::parse(&as_promql(&query))
                .unwrap_or_else(|e| panic!("{file}: {place}: {query}: {e}"));
            let names = pack::metric_names(&expr);
            assert!(
                !names.is_empty(),
                "{file}: {place}: {query} reads no metric"
            );
            for name in names {
                assert!(
                    known.contains(&name),
                    "{file}: {place}: {name} is neither in the catalog nor a self-metric"
                );
            }
            count += 1;
        }
    }
    assert!(count > 50, "only {count} queries");
}

#[test]
fn trading_panels_follow_the_engine_variable() {
    for (path, dashboard) in dashboards() {
        let file = pack::relative(&path);
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let engine = variables
            .iter()
            .find(|v| v["name"] == "engine")
            .unwrap_or_else(|| panic!("{file}: no engine variable"));
        // label_values(<metric>, engine): the metric must exist and carry the label.
        let definition = engine["definition"].as_str().unwrap();
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(", engine)"))
            .unwrap_or_else(|| panic!("{file}: engine variable {definition}"));
        assert!(pack::known_metrics().contains(inner), "{file}: {inner}");
        assert_eq!(engine["includeAll"], true);
        assert_eq!(engine["allValue"], ".*");
        for (place, query) in queries(&dashboard) {
            if query.contains("trading_") && !query.contains("trading_artifact_") {
                assert!(
                    query.contains(r#"engine=~"$engine""#),
                    "{file}: {place}: {query} ignores the engine variable"
                );
            }
        }
    }
}

#[test]
fn every_datasource_a_dashboard_names_is_provisioned() {
    let provisioned = datasources();
    let prometheus = &provisioned["prometheus"];
    assert_eq!(prometheus["type"], "prometheus");
    assert_eq!(prometheus["url"], "http://prometheus:9090");
    let alertmanager = provisioned
        .values()
        .find(|ds| ds["type"] == "alertmanager")
        .expect("an Alertmanager data source on the sidecar");
    assert_eq!(alertmanager["jsonData"]["implementation"], "prometheus");
    assert!(
        alertmanager["url"]
            .as_str()
            .unwrap()
            .starts_with("http://tradewatch:")
    );

    for (path, dashboard) in dashboards() {
        let file = pack::relative(&path);
        let mut named: Vec<&Value> = Vec::new();
        for panel in panels(&dashboard)
            .into_iter()
            .filter(|p| p["type"] != "row")
        {
            named.push(&panel["datasource"]);
            for target in panel["targets"].as_array().into_iter().flatten() {
                named.push(&target["datasource"]);
            }
        }
        named.extend(
            dashboard["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| &v["datasource"]),
        );
        named.extend(
            dashboard["annotations"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| &a["datasource"]),
        );
        for ds in named {
            let uid = ds["uid"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: a data source by name, not uid: {ds}"));
            if uid == "-- Grafana --" {
                continue;
            }
            let provisioned = provisioned
                .get(uid)
                .unwrap_or_else(|| panic!("{file}: data source {uid} is not provisioned"));
            assert_eq!(ds["type"], provisioned["type"], "{file}: {uid}");
        }
    }
}

#[test]
fn the_dashboard_provider_reads_where_compose_mounts_them() {
    let doc = provisioning("grafana/provisioning/dashboards/tradewatch.yml");
    let provider = &doc["providers"][0];
    assert_eq!(provider["type"], "file");
    let path = provider["options"]["path"].as_str().unwrap();
    let compose = std::fs::read_to_string(pack::root().join("deploy/docker-compose.yml")).unwrap();
    assert!(
        compose.contains(&format!("../grafana/dashboards:{path}:ro")),
        "docker-compose.yml mounts grafana/dashboards elsewhere than {path}"
    );
    assert!(compose.contains("../grafana/provisioning:/etc/grafana/provisioning:ro"));
}

#[test]
fn the_rule_packs_dashboard_links_point_at_dashboards() {
    let uids: BTreeSet<String> = dashboards()
        .into_iter()
        .map(|(_, d)| d["uid"].as_str().unwrap().to_owned())
        .collect();
    for path in pack::files_in("rules", ".rules.yml") {
        let loaded = RuleFile::load(&path).unwrap();
        for rule in loaded.file.groups.iter().flat_map(|g| &g.rules) {
            let Some(link) = rule.annotations.get("dashboard") else {
                continue;
            };
            let uid = link
                .split("/d/")
                .nth(1)
                .and_then(|rest| rest.split(['?', '/']).next())
                .unwrap_or_else(|| panic!("{}: {link}", rule.name()));
            assert!(uids.contains(uid), "{}: no dashboard {uid}", rule.name());
            if link.contains("var-engine=") {
                let dashboard = std::fs::read_to_string(
                    pack::root().join(format!("grafana/dashboards/{uid}.json")),
                )
                .unwrap();
                assert!(dashboard.contains(r#""name": "engine""#));
            }
        }
    }
}

/// Whether a panel (or an annotation) shows anything: Grafana draws a panel when any of its
/// queries returns a sample.
#[test]
fn every_panel_shows_data_for_busy_engines() {
    use tradewatch::promql::{Engine, Value as PromValue};

    let (store, now) = pack::busy_store();
    let engine = Engine::default();
    let mut checked = 0;
    for (path, dashboard) in dashboards() {
        let file = pack::relative(&path);
        let mut shown: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (place, query) in queries(&dashboard) {
            let promql = as_promql(&query).replace("$engine", ".*");
            let expr = tradewatch::promql::parse(&promql).unwrap();
            if pack::metric_names(&expr)
                .iter()
                .any(|n| pack::sidecar_only(n))
            {
                continue;
            }
            let result = engine
                .instant(&store, &expr, now)
                .unwrap_or_else(|e| panic!("{file}: {place}: {query}: {e}"));
            let values = shown.entry(place.clone()).or_default();
            match result.value {
                PromValue::Vector(v) => values.extend(v.iter().map(|s| s.f)),
                PromValue::Scalar { f, .. } => values.push(f),
                other => panic!("{file}: {place}: {other:?}"),
            }
        }
        for (place, values) in shown {
            assert!(
                values.iter().any(|f| f.is_finite()),
                "{file}: {place} shows no data: {values:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} panels checked");
}

// ---------------------------------------------------------------------------------------------
// Every panel against a real Prometheus scraping the demo
// ---------------------------------------------------------------------------------------------

/// The demo's speed in the live test: its first 30 scenario seconds (kill switch, breaker, loss
/// limit) pass in 15 wall-clock seconds; alert timers (`for`) and rate windows stay real time,
/// so the lost connection (32 scenario seconds) still outlasts its alert's `for: 10s` by 6 s.
const DEMO_SPEED: f64 = 2.0;

/// Panels whose queries return nothing while the demo runs, with why; each must still be empty
/// (so the list cannot outlive its reason).
const UNREACHABLE_IN_DEMO: &[(&str, &str, &str)] = &[(
    "tradewatch-pipeline",
    "Sidecar scrapes",
    "the demo (like `run`) feeds its rules in-process; only a separate `sidecar` scrapes \
     targets and counts tradewatch_scrapes_total",
)];

/// The width in pixels of the screen a dashboard is looked at on (a panel is its share of 24
/// grid columns of it): what Grafana divides the time range by to pick `$__interval`.
const SCREEN_WIDTH_PX: f64 = 1920.0;

/// Grafana's `rangeutil.roundInterval`: the interval it uses for a panel, from the time range
/// over the panel's data points, rounded to a human step (milliseconds in, milliseconds out).
fn round_interval(ms: f64) -> f64 {
    const STEPS: &[(f64, f64)] = &[
        (15.0, 10.0),
        (35.0, 20.0),
        (75.0, 50.0),
        (150.0, 100.0),
        (350.0, 200.0),
        (750.0, 500.0),
        (1_500.0, 1_000.0),
        (3_500.0, 2_000.0),
        (7_500.0, 5_000.0),
        (12_500.0, 10_000.0),
        (17_500.0, 15_000.0),
        (25_000.0, 20_000.0),
        (45_000.0, 30_000.0),
        (90_000.0, 60_000.0),
        (210_000.0, 120_000.0),
        (450_000.0, 300_000.0),
        (750_000.0, 600_000.0),
        (1_050_000.0, 900_000.0),
        (1_500_000.0, 1_200_000.0),
        (2_700_000.0, 1_800_000.0),
        (5_400_000.0, 3_600_000.0),
        (9_000_000.0, 7_200_000.0),
        (16_200_000.0, 10_800_000.0),
        (32_400_000.0, 21_600_000.0),
        (86_400_000.0, 43_200_000.0),
    ];
    STEPS
        .iter()
        .find(|(below, _)| ms < *below)
        .map_or(86_400_000.0, |(_, step)| *step)
}

/// A Grafana duration (`1s`, `500ms`, `1h`) in milliseconds.
fn grafana_duration_ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or_else(|| panic!("duration {text:?} has no unit"));
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .unwrap_or_else(|e| panic!("duration {text:?}: {e}"));
    let unit_ms = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        "w" => 604_800_000.0,
        _ => panic!("duration {text:?}: unit {unit:?}"),
    };
    number * unit_ms
}

/// Milliseconds as a PromQL duration.
fn promql_duration(ms: f64) -> String {
    if ms % 1_000.0 == 0.0 {
        format!("{}s", ms / 1_000.0)
    } else {
        format!("{ms}ms")
    }
}

/// A dashboard's time range (`now-1h` to `now`) as Unix milliseconds, ending at `now_ms`.
fn time_range(dashboard: &Value, now_ms: f64) -> (f64, f64) {
    let edge = |key: &str| {
        let text = dashboard["time"][key].as_str().unwrap();
        match text.strip_prefix("now") {
            Some("") => now_ms,
            Some(ago) => now_ms - grafana_duration_ms(ago.strip_prefix('-').unwrap()),
            None => panic!("time.{key} {text:?} is not relative to now"),
        }
    };
    (edge("from"), edge("to"))
}

/// One query as Grafana sends it to Prometheus for a panel.
struct Sent {
    place: String,
    expr: String,
    promql: String,
    /// An instant query at the range's end, else a range query over it.
    instant: bool,
    step_s: f64,
}

/// The queries Grafana sends for `dashboard` viewed at `now_ms` with its saved variables:
/// panel targets and annotations, with Grafana's variables replaced as Grafana replaces them
/// (`$__interval` from the range and the panel's width, `$__rate_interval` from it and the
/// data source's scrape interval, `$__range`, and the dashboard's own variables, `values`
/// giving each query variable's current choices).
fn sent_queries(
    dashboard: &Value,
    now_ms: f64,
    scrape_ms: f64,
    values: &BTreeMap<String, Vec<String>>,
) -> Vec<Sent> {
    let (from, to) = time_range(dashboard, now_ms);
    let range_ms = to - from;
    let mut variables: Vec<(String, String)> = Vec::new();
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        let current = &variable["current"]["value"];
        let chosen: Vec<&str> = match current {
            Value::Array(items) => items.iter().map(|v| v.as_str().unwrap()).collect(),
            Value::String(one) => vec![one.as_str()],
            other => panic!("variable {name}: current value {other}"),
        };
        let value = if chosen == ["$__all"] {
            match variable["allValue"].as_str() {
                Some(all) => all.to_owned(),
                None => values[name].join("|"),
            }
        } else {
            chosen.join("|")
        };
        variables.push((format!("${{{name}}}"), value.clone()));
        variables.push((format!("[[{name}]]"), value.clone()));
        variables.push((format!("${name}"), value));
    }
    let substitute = |expr: &str, interval_ms: f64| {
        let rate_interval = (interval_ms + scrape_ms).max(4.0 * scrape_ms);
        let mut out = expr.to_owned();
        // Longer names first: $__interval_ms before $__interval, $__range_s before $__range.
        for (name, value) in [
            ("$__rate_interval", promql_duration(rate_interval)),
            ("$__interval_ms", format!("{interval_ms}")),
            ("$__interval", promql_duration(interval_ms)),
            ("$__range_ms", format!("{range_ms}")),
            ("$__range_s", format!("{}", (range_ms / 1_000.0).round())),
            ("$__range", promql_duration(range_ms)),
        ] {
            out = out.replace(name, &value);
        }
        for (name, value) in &variables {
            out = out.replace(name, value);
        }
        assert!(
            !out.contains('$'),
            "{expr}: a variable the test does not know how Grafana replaces"
        );
        out
    };
    let mut out = Vec::new();
    for panel in panels(dashboard).into_iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        let width_px = panel["gridPos"]["w"].as_f64().unwrap() / 24.0 * SCREEN_WIDTH_PX;
        let points = panel["maxDataPoints"].as_f64().unwrap_or(width_px.round());
        let min_ms = panel["interval"]
            .as_str()
            .map_or(scrape_ms, grafana_duration_ms);
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let min_ms = target["interval"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map_or(min_ms, grafana_duration_ms);
            let interval_ms = round_interval(range_ms / points).max(min_ms);
            out.push(Sent {
                place: format!("panel {title:?}"),
                expr: expr.to_owned(),
                promql: substitute(expr, interval_ms),
                instant: target["instant"] == true && target["range"] != true,
                step_s: (interval_ms / 1_000.0).max((range_ms / 1_000.0 / 11_000.0).ceil()),
            });
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = annotation["expr"].as_str() {
            // Annotations step by their own `step` (Grafana's default 60s).
            let step_ms = annotation["step"]
                .as_str()
                .map_or(60_000.0, grafana_duration_ms);
            out.push(Sent {
                place: format!("annotation {}", annotation["name"]),
                expr: expr.to_owned(),
                promql: substitute(expr, step_ms),
                instant: false,
                step_s: step_ms / 1_000.0,
            });
        }
    }
    out
}

#[test]
fn grafana_intervals_as_grafana_picks_them() {
    // An hour over a third of a 1920-pixel screen (640 points): 5.6 s rounds to 5 s; a minimum
    // of 1 s does not bind; the rate window is the interval plus one scrape, at least four.
    assert_eq!(round_interval(3_600_000.0 / 640.0), 5_000.0);
    assert_eq!(round_interval(3_600_000.0 / 1_920.0), 2_000.0);
    assert_eq!(round_interval(5.0), 10.0);
    assert_eq!(grafana_duration_ms("1s"), 1_000.0);
    assert_eq!(grafana_duration_ms("500ms"), 500.0);
    assert_eq!(promql_duration(6_000.0), "6s");
    assert_eq!(promql_duration(2_500.0), "2500ms");
    let dashboard: Value = serde_json::from_str(
        r#"{"time": {"from": "now-1h", "to": "now"},
            "templating": {"list": [{"name": "engine", "allValue": ".*",
                                     "current": {"value": ["$__all"]}},
                                    {"name": "venue", "current": {"value": "$__all"}}]},
            "annotations": {"list": []},
            "panels": [{"type": "timeseries", "title": "t", "gridPos": {"w": 8},
                        "targets": [{"expr": "rate(x{engine=~\"$engine\", venue=~\"${venue}\"}[$__rate_interval]) / $__range_s + increase(x[$__range])",
                                     "range": true}]}]}"#,
    )
    .unwrap();
    let values = BTreeMap::from([("venue".to_owned(), vec!["a".to_owned(), "b".to_owned()])]);
    let sent = sent_queries(&dashboard, 7_200_000.0, 1_000.0, &values);
    assert_eq!(
        sent[0].promql,
        r#"rate(x{engine=~".*", venue=~"a|b"}[6s]) / 3600 + increase(x[3600s])"#
    );
    assert_eq!(sent[0].step_s, 5.0);
    assert!(!sent[0].instant);
}

/// `text` (a Prometheus configuration) with the commented-out scrape job `job` enabled: its
/// `# - job_name:` line and the commented lines under it.
fn uncomment_job(text: &str, job: &str) -> String {
    let start = format!("  # - job_name: {job}");
    let mut inside = false;
    let mut found = false;
    let mut out = String::new();
    for line in text.lines() {
        inside = if line == start {
            found = true;
            true
        } else {
            inside && line.starts_with("  #   ")
        };
        match line.strip_prefix("  # ").filter(|_| inside) {
            Some(rest) => out.push_str(&format!("  {rest}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    assert!(
        found,
        "deploy/prometheus.yml has no commented-out job {job}"
    );
    out
}

/// A Prometheus server on a free port with `deploy/prometheus.yml` adapted: tradewatch at
/// `target`, its commented-out job for a separate sidecar enabled at `sidecar` when given,
/// evaluation every second, the rule pack copied beside it.
struct Prometheus {
    process: support::Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(
        target: std::net::SocketAddr,
        sidecar: Option<std::net::SocketAddr>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        for path in pack::files_in("rules", ".rules.yml") {
            std::fs::copy(
                &path,
                dir.path().join("rules").join(path.file_name().unwrap()),
            )
            .unwrap();
        }
        let deployed = std::fs::read_to_string(pack::root().join("deploy/prometheus.yml")).unwrap();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = support::free_port();
            let mut text = deployed.clone();
            if let Some(sidecar) = sidecar {
                text = uncomment_job(&text, "tradewatch-sidecar")
                    .replace("tradewatch:9471", &sidecar.to_string());
            }
            for (from, to) in [
                (
                    "evaluation_interval: 5s",
                    "evaluation_interval: 1s".to_owned(),
                ),
                ("tradewatch:9470", target.to_string()),
                ("localhost:9090", format!("127.0.0.1:{port}")),
            ] {
                assert!(text.contains(from), "deploy/prometheus.yml has no {from:?}");
                text = text.replace(from, &to);
            }
            let config = dir.path().join("prometheus.yml");
            std::fs::write(&config, text).unwrap();
            let mut command = std::process::Command::new("prometheus");
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            let mut process = support::Process::spawn("prometheus", command);
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

    /// `GET path` with `params`; the `data` of a successful answer.
    async fn get(&self, path: &str, params: &[(&str, String)]) -> Value {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.url), params).unwrap();
        let body: Value = support::client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body["data"].clone()
    }

    /// What Prometheus answers to `sent` at `now_s`: its series, each with its values.
    async fn series(&self, sent: &Sent, now_s: f64) -> Vec<(Value, Vec<f64>)> {
        let data = if sent.instant {
            self.get(
                "/api/v1/query",
                &[("query", sent.promql.clone()), ("time", now_s.to_string())],
            )
            .await
        } else {
            let step = sent.step_s;
            let (from_ms, to_ms) = (now_s * 1_000.0 - 3_600_000.0, now_s * 1_000.0);
            // Grafana aligns both ends of the range down to a multiple of the step.
            let align = |ms: f64| ((ms / 1_000.0) / step).floor() * step;
            self.get(
                "/api/v1/query_range",
                &[
                    ("query", sent.promql.clone()),
                    ("start", align(from_ms).to_string()),
                    ("end", align(to_ms).to_string()),
                    ("step", step.to_string()),
                ],
            )
            .await
        };
        let number = |v: &Value| {
            let text = v[1].as_str().unwrap();
            text.parse::<f64>()
                .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        };
        let result = match data["resultType"].as_str().unwrap() {
            "scalar" => return vec![(Value::Null, vec![number(&data["result"])])],
            _ => data["result"].as_array().unwrap().clone(),
        };
        result
            .iter()
            .map(|s| {
                let values = match s["values"].as_array() {
                    Some(points) => points.iter().map(number).collect(),
                    None => vec![number(&s["value"])],
                };
                (s["metric"].clone(), values)
            })
            .collect()
    }
}

/// The `(alertname, alertstate)` pairs of every `ALERTS` series Prometheus held in the last hour.
async fn alerts_seen(prometheus: &Prometheus) -> BTreeSet<(String, String, String)> {
    let data = prometheus
        .get(
            "/api/v1/query",
            &[("query", "last_over_time(ALERTS[1h])".to_owned())],
        )
        .await;
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let label = |name: &str| s["metric"][name].as_str().unwrap_or("").to_owned();
            (label("alertname"), label("alertstate"), label("engine"))
        })
        .collect()
}

/// Grafana's Alertmanager data source as provisioned, pointed at `base` (the demo) instead of
/// `http://tradewatch:9470`: Grafana's health check for the `prometheus` implementation (no
/// Mimir path, `/api/v2/status` answers) passes, and the alerts, groups and silences it lists
/// come from tradewatch.
async fn alertmanager_datasource_works(base: &str) {
    let provisioned = datasources();
    let datasource = provisioned
        .values()
        .find(|ds| ds["type"] == "alertmanager")
        .unwrap();
    assert_eq!(datasource["jsonData"]["implementation"], "prometheus");
    assert_eq!(datasource["access"], "proxy");
    // Grafana appends /api/v2/… to the URL itself: the URL is the listener, with no path.
    let url = datasource["url"].as_str().unwrap();
    assert_eq!(
        url, "http://tradewatch:9470",
        "the compose service `tradewatch` (`run`) listens on 9470"
    );
    let url = url.replace("http://tradewatch:9470", base);
    let client = support::client();
    let get = |path: &str| {
        let request = client.get(format!("{url}{path}"));
        async move { request.send().await.unwrap() }
    };
    assert_ne!(
        get("/alertmanager/api/v2/status").await.status(),
        200,
        "Grafana would take tradewatch for Mimir"
    );
    let status = get("/api/v2/status").await;
    assert_eq!(status.status(), 200);
    let status: Value = status.json().await.unwrap();
    assert!(status["config"]["original"].is_string(), "{status}");
    let alerts: Value = get("/api/v2/alerts").await.json().await.unwrap();
    let names: BTreeSet<&str> = alerts
        .as_array()
        .unwrap_or_else(|| panic!("{alerts}"))
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert!(names.contains("Watchdog"), "{names:?}");
    let groups: Value = get("/api/v2/alerts/groups").await.json().await.unwrap();
    assert!(!groups.as_array().unwrap().is_empty(), "{groups}");
    let silences = get("/api/v2/silences").await;
    assert_eq!(silences.status(), 200);
    assert!(silences.json::<Value>().await.unwrap().is_array());
}

/// With `tradewatch demo` running and a real Prometheus (deploy/prometheus.yml: scraping it
/// every second and evaluating the rule pack, so `ALERTS` is Prometheus's own) every query of
/// every dashboard, sent as Grafana sends it for the dashboard's saved view, returns at least
/// one series with a number once the demo's scripted incidents have happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_shows_data_while_the_demo_runs_under_a_real_prometheus() {
    use tradewatch::demo::timeline;

    let test = "every_panel_shows_data_while_the_demo_runs_under_a_real_prometheus";
    if !support::available(test, &[&support::PROMETHEUS]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let mut command = std::process::Command::new(support::BIN);
    command
        .args(["demo", "--duration", "10m", "--speed"])
        .arg(DEMO_SPEED.to_string())
        .arg("--dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(addr.to_string())
        .env("NO_COLOR", "1");
    let mut demo = support::Process::spawn("tradewatch demo", command);
    let base = format!("http://{addr}");
    if let Err(status) = demo
        .wait_ready(&format!("{base}/-/ready"), support::READY_DEADLINE)
        .await
    {
        panic!("the demo exited ({status})\n{}", demo.log());
    }
    let mut prometheus = Prometheus::start(addr, None).await;
    let logs = |demo: &support::Process, prometheus: &Prometheus| {
        format!(
            "--- demo ---\n{}\n--- prometheus ---\n{}",
            demo.log(),
            prometheus.process.log()
        )
    };

    // The scripted incidents, as Prometheus's own evaluation of the rule pack saw them: the
    // breaker, the loss limit and the kill switch firing, and the lost connection firing after
    // waiting out its `for` (10 s) as pending, long enough for any panel's step to see it.
    let engine = timeline::INCIDENT_ENGINE.to_owned();
    let fired = |name: &str| (name.to_owned(), "firing".to_owned(), engine.clone());
    let expected = [
        fired("TradingCircuitBreakerTripped"),
        fired("TradingDailyLossLimitBreached"),
        fired("TradingKillSwitchActive"),
        fired("TradingConnectivityLost"),
    ];
    let deadline =
        std::time::Duration::from_secs_f64(timeline::CONNECTIVITY_DOWN / DEMO_SPEED + 60.0);
    let started = std::time::Instant::now();
    loop {
        let seen = alerts_seen(&prometheus).await;
        if expected.iter().all(|e| seen.contains(e)) {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "within {deadline:?} Prometheus saw only {seen:?}\n{}",
            logs(&demo, &prometheus)
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    alertmanager_datasource_works(&base).await;

    // Grafana's view: the data source's scrape interval sets $__rate_interval.
    let scrape_ms = grafana_duration_ms(
        datasources()["prometheus"]["jsonData"]["timeInterval"]
            .as_str()
            .unwrap(),
    );
    let now_s = chrono::Utc::now().timestamp_millis() as f64 / 1_000.0;
    let mut empty = Vec::new();
    let mut unreachable_seen = Vec::new();
    let mut checked = 0;
    for (path, dashboard) in dashboards() {
        let file = pack::relative(&path);
        let uid = dashboard["uid"].as_str().unwrap();
        // Query variables first, as Grafana resolves them: each offers at least one value.
        let mut values = BTreeMap::new();
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let name = variable["name"].as_str().unwrap();
            let definition = variable["definition"].as_str().unwrap();
            let (metric, label) = definition
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.split_once(", "))
                .unwrap_or_else(|| panic!("{file}: variable {name}: {definition}"));
            let offered: Vec<String> = serde_json::from_value(
                prometheus
                    .get(
                        &format!("/api/v1/label/{label}/values"),
                        &[("match[]", metric.to_owned())],
                    )
                    .await,
            )
            .unwrap();
            assert!(
                !offered.is_empty(),
                "{file}: variable {name} ({definition}) offers nothing"
            );
            values.insert(name.to_owned(), offered);
        }
        for sent in sent_queries(&dashboard, now_s * 1_000.0, scrape_ms, &values) {
            let series = prometheus.series(&sent, now_s).await;
            let shown = series
                .iter()
                .any(|(_, values)| values.iter().any(|v| v.is_finite()));
            let exempt = UNREACHABLE_IN_DEMO
                .iter()
                .find(|(d, title, _)| *d == uid && sent.place == format!("panel {title:?}"));
            match exempt {
                Some((_, title, why)) => {
                    assert!(
                        !shown,
                        "{file}: {title} shows data now; drop it from UNREACHABLE_IN_DEMO ({why})"
                    );
                    unreachable_seen.push(*title);
                }
                None if !shown => empty.push(format!(
                    "{file}: {}: {}\n    sent: {}\n    got: {series:?}",
                    sent.place, sent.expr, sent.promql
                )),
                None => {}
            }
            checked += 1;
        }
    }
    assert!(
        empty.is_empty(),
        "{} queries show no data:\n{}",
        empty.len(),
        empty.join("\n")
    );
    assert_eq!(unreachable_seen.len(), UNREACHABLE_IN_DEMO.len());
    assert!(checked > 60, "only {checked} queries");

    let status = prometheus.process.terminate(support::READY_DEADLINE).await;
    assert!(status.success(), "prometheus exited with {status}");
    let status = demo.terminate(support::READY_DEADLINE).await;
    assert!(
        status.success(),
        "the demo exited with {status}\n{}",
        demo.log()
    );
}

/// What the demo cannot show (UNREACHABLE_IN_DEMO) shows when the roles run apart, as the
/// systemd units and the Kubernetes pod run them: `tradewatch exporter`, a `tradewatch sidecar`
/// scraping it, and Prometheus scraping both (deploy/prometheus.yml's `tradewatch-sidecar` job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_demo_cannot_show_shows_when_the_roles_run_apart() {
    let test = "what_the_demo_cannot_show_shows_when_the_roles_run_apart";
    if !support::available(test, &[&support::PROMETHEUS]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exporter = support::Exporter::start(&dir.path().join("exporter")).await;
    let config = dir.path().join("sidecar.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  evaluation_interval: 1s\n  rule_files: ['{rules}']\n  \
             scrape: {{interval: 1s, timeout: 1s, targets: [{{url: 'http://{exporter}/metrics', job: tradewatch}}]}}\n",
            rules = pack::root().join("rules/trading.rules.yml").display(),
            exporter = exporter.addr,
        ),
    )
    .unwrap();
    let sidecar = support::Exporter::start_role(
        "sidecar",
        &dir.path().join("sidecar"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let prometheus = Prometheus::start(exporter.addr, Some(sidecar.addr)).await;
    let scrape_ms = grafana_duration_ms(
        datasources()["prometheus"]["jsonData"]["timeInterval"]
            .as_str()
            .unwrap(),
    );
    let values = BTreeMap::new();
    for (uid, title, why) in UNREACHABLE_IN_DEMO {
        let (path, dashboard) = dashboards()
            .into_iter()
            .find(|(_, d)| d["uid"] == *uid)
            .unwrap();
        let started = std::time::Instant::now();
        loop {
            let now_s = chrono::Utc::now().timestamp_millis() as f64 / 1_000.0;
            let mut shown = true;
            let mut got = Vec::new();
            for sent in sent_queries(&dashboard, now_s * 1_000.0, scrape_ms, &values)
                .into_iter()
                .filter(|s| s.place == format!("panel {title:?}"))
            {
                let series = prometheus.series(&sent, now_s).await;
                shown &= series
                    .iter()
                    .any(|(_, values)| values.iter().any(|v| v.is_finite()));
                got.push((sent.promql, series));
            }
            assert!(!got.is_empty(), "{uid}: no panel {title:?}");
            if shown {
                break;
            }
            assert!(
                started.elapsed() < support::READY_DEADLINE,
                "{}: {title} ({why}) shows nothing with the roles apart either: {got:?}\n\
                 --- sidecar ---\n{}\n--- prometheus ---\n{}",
                pack::relative(&path),
                sidecar.log(),
                prometheus.process.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

/// The Prometheus data source's `timeInterval` (from which Grafana derives `$__rate_interval`,
/// four of it at least) is the scrape interval of every tradewatch job that deploy/ configures:
/// the exporter's, a separate sidecar's (commented out in prometheus.yml) and the
/// ServiceMonitor's endpoints. A slower scrape would leave the dashboards' rate panels empty.
#[test]
fn every_tradewatch_job_is_scraped_at_the_datasources_interval() {
    let interval = datasources()["prometheus"]["jsonData"]["timeInterval"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(pack::root().join("deploy/prometheus.yml")).unwrap();
    let config: Value = yaml_serde::from_str(&uncomment_job(&text, "tradewatch-sidecar")).unwrap();
    let global = config["global"]["scrape_interval"].as_str().unwrap_or("1m");
    let mut jobs = Vec::new();
    for job in config["scrape_configs"].as_array().unwrap() {
        let name = job["job_name"].as_str().unwrap();
        if name.starts_with("tradewatch") {
            let every = job["scrape_interval"].as_str().unwrap_or(global);
            assert_eq!(every, interval, "deploy/prometheus.yml: job {name}");
            jobs.push(name);
        }
    }
    assert_eq!(jobs, ["tradewatch", "tradewatch-sidecar"]);
    let monitor: Value = yaml_serde::from_str(
        &std::fs::read_to_string(pack::root().join("deploy/kubernetes/servicemonitor.yaml"))
            .unwrap(),
    )
    .unwrap();
    for endpoint in monitor["spec"]["endpoints"].as_array().unwrap() {
        assert_eq!(
            endpoint["interval"], interval,
            "servicemonitor.yaml: port {}",
            endpoint["port"]
        );
    }
}
