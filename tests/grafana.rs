//! The provisioned Grafana dashboards (`grafana/`): every dashboard parses as modern Grafana JSON,
//! every query (panels, variables, annotations) parses with tradewatch's PromQL parser and reads
//! only metrics of the catalog or tradewatch's self-metrics, uids are unique, every data source a
//! dashboard names is provisioned, and the rule pack's `dashboard` links point at dashboards that
//! exist.

mod pack;

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
