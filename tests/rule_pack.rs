//! The trading rule pack (`rules/`) against its oracles and its promises: `promtool check rules`
//! and `promtool test rules` (Debian's 2.42: the oldest Prometheus the pack must load in),
//! `tradewatch rules check`, the alerts of DESIGN §6 with their annotations, a runbook and unit
//! tests each, only catalog metrics in expressions, and the Kubernetes PrometheusRule in sync.

mod pack;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tradewatch::rules::{Rule, RuleFile};

use support::{PROMTOOL, available};

/// The alerts DESIGN §6 lists, in its order.
const DESIGN_ALERTS: &[&str] = &[
    "TradingKillSwitchActive",
    "TradingCircuitBreakerTripped",
    "TradingDailyLossLimitBreached",
    "TradingDailyLossWarning",
    "TradingEngineHeartbeatLost",
    "TradingExporterDown",
    "TradingOrderFailureRatioHigh",
    "TradingOrderLatencyP95High",
    "TradingApiErrorBurst",
    "TradingConnectivityLost",
    "TradingRebalanceFailed",
    "TradingRebalanceOverdue",
    "TradingPortfolioDriftHigh",
    "TradingArtifactStale",
    "TradingDataProviderFailures",
    "TradingPositionLimitBreached",
    "TradingCycleSlow",
    "Watchdog",
];

/// Alerts a trader wants at once: critical, no `for`.
const IMMEDIATE: &[&str] = &[
    "TradingKillSwitchActive",
    "TradingCircuitBreakerTripped",
    "TradingDailyLossLimitBreached",
];

const RUNBOOK_BASE: &str = "https://github.com/tradewatch/tradewatch/blob/main/docs/runbooks/";

/// The rule files of the pack, as the default `sidecar.rule_files` glob finds them.
fn rule_files() -> Vec<PathBuf> {
    let files = pack::files_in("rules", ".rules.yml");
    assert!(!files.is_empty(), "no rules/*.rules.yml");
    files
}

fn test_files() -> Vec<PathBuf> {
    let files = pack::files_in("rules/tests", ".test.yml");
    assert!(!files.is_empty(), "no rules/tests/*.test.yml");
    files
}

/// Every rule of the pack with the name of its file.
fn rules() -> Vec<(String, Rule)> {
    let mut out = Vec::new();
    for path in rule_files() {
        let loaded = RuleFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        for group in loaded.file.groups {
            out.extend(group.rules.into_iter().map(|r| (pack::relative(&path), r)));
        }
    }
    out
}

fn trading_alerts() -> BTreeMap<String, Rule> {
    let path = pack::root().join("rules/trading.rules.yml");
    let loaded = RuleFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut out = BTreeMap::new();
    for rule in loaded.file.groups.into_iter().flat_map(|g| g.rules) {
        if let Some(name) = rule.alert.clone() {
            assert!(
                out.insert(name.clone(), rule).is_none(),
                "{name} is defined twice"
            );
        }
    }
    out
}

fn run(program: &str, args: &[String]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(pack::root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn relative_all(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| pack::relative(p)).collect()
}

#[test]
fn promtool_checks_the_pack() {
    if !available("promtool_checks_the_pack", &[&PROMTOOL]) {
        return;
    }
    let mut args = vec!["check".to_owned(), "rules".to_owned()];
    args.extend(relative_all(&rule_files()));
    let (ok, out) = run("promtool", &args);
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn promtool_passes_the_unit_tests() {
    if !available("promtool_passes_the_unit_tests", &[&PROMTOOL]) {
        return;
    }
    let mut args = vec!["test".to_owned(), "rules".to_owned()];
    args.extend(relative_all(&test_files()));
    let (ok, out) = run("promtool", &args);
    assert!(ok, "promtool test rules failed:\n{out}");
    assert_eq!(
        out.matches("SUCCESS").count(),
        test_files().len(),
        "every test file passes:\n{out}"
    );
}

#[test]
fn tradewatch_passes_the_unit_tests() {
    let mut args = vec!["rules".to_owned(), "test".to_owned()];
    args.extend(relative_all(&test_files()));
    let (ok, out) = run(support::BIN, &args);
    assert!(ok, "tradewatch rules test failed:\n{out}");
    assert_eq!(
        out.matches("SUCCESS").count(),
        test_files().len(),
        "every test file passes:\n{out}"
    );
}

#[test]
fn tradewatch_checks_the_pack() {
    let mut args = vec!["rules".to_owned(), "check".to_owned()];
    args.extend(relative_all(&rule_files()));
    let (ok, out) = run(support::BIN, &args);
    assert!(ok, "tradewatch rules check failed:\n{out}");
    let trading = trading_alerts().len();
    assert!(
        out.contains(&format!(
            "Checking rules/trading.rules.yml\n  SUCCESS: {trading} rules found\n"
        )),
        "{out}"
    );
}

#[test]
fn the_pack_has_exactly_the_alerts_of_the_design() {
    let alerts = trading_alerts();
    let got: BTreeSet<&str> = alerts.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = DESIGN_ALERTS.iter().copied().collect();
    assert_eq!(got, want);
}

#[test]
fn every_alert_carries_severity_and_annotations() {
    for (file, rule) in rules() {
        let Some(name) = &rule.alert else { continue };
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{file}: {name}: severity {severity:?}"
        );
        for key in ["summary", "description", "runbook_url", "dashboard"] {
            let value = rule.annotations.get(key).map(|s| s.trim()).unwrap_or("");
            assert!(!value.is_empty(), "{file}: {name}: no {key} annotation");
        }
        assert_eq!(
            rule.annotations["runbook_url"],
            format!("{RUNBOOK_BASE}{name}.md"),
            "{file}: {name}"
        );
        let dashboard = &rule.annotations["dashboard"];
        assert!(
            dashboard.starts_with("http://") || dashboard.starts_with("https://"),
            "{file}: {name}: dashboard {dashboard}"
        );
        assert!(dashboard.contains("/d/tradewatch-"), "{file}: {name}");
    }
}

#[test]
fn a_numeric_value_is_shown_humanized() {
    for (file, rule) in rules() {
        let Some(name) = &rule.alert else { continue };
        let description = &rule.annotations["description"];
        if description.contains("$value") {
            assert!(
                description.contains("$value | humanize"),
                "{file}: {name}: $value without a humanize function: {description}"
            );
        }
    }
}

#[test]
fn kill_switch_breaker_and_loss_limit_are_critical_and_immediate() {
    let alerts = trading_alerts();
    for name in IMMEDIATE {
        let rule = &alerts[*name];
        assert_eq!(rule.labels["severity"], "critical", "{name}");
        assert!(
            rule.for_duration.is_none_or(|d| d.is_zero()),
            "{name}: for {:?}",
            rule.for_duration
        );
    }
}

#[test]
fn groups_load_in_prometheus_2_42() {
    for path in rule_files() {
        let loaded = RuleFile::load(&path).unwrap();
        for group in &loaded.file.groups {
            assert!(
                group.query_offset.is_none(),
                "{}: group {}: query_offset needs Prometheus 2.53",
                path.display(),
                group.name
            );
            assert!(
                group.labels.is_empty(),
                "{}: group {}: group labels need Prometheus 3.0",
                path.display(),
                group.name
            );
        }
    }
}

#[test]
fn every_alert_has_a_runbook() {
    for (file, rule) in rules() {
        let Some(name) = &rule.alert else { continue };
        let path = pack::root().join(format!("docs/runbooks/{name}.md"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{file}: {name}: {}: {e}", path.display()));
        assert!(
            text.starts_with(&format!("# {name}\n")),
            "{}: must start with its alert's name",
            path.display()
        );
        for section in ["## What it means", "## Check first", "## Quiet it"] {
            assert!(text.contains(section), "{}: no {section:?}", path.display());
        }
        let index = std::fs::read_to_string(pack::root().join("docs/runbooks/README.md")).unwrap();
        assert!(
            index.contains(&format!("[{name}]({name}.md)")),
            "docs/runbooks/README.md does not list {name}"
        );
    }
}

/// For each alert: the eval times at which the unit tests expect it firing, and those at which
/// they expect it silent.
fn unit_test_verdicts() -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for path in test_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = yaml_serde::from_str(&text).unwrap();
        for test in doc["tests"].as_array().into_iter().flatten() {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap().to_owned();
                let firing = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                let entry = out.entry(name).or_default();
                if firing {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
    }
    out
}

#[test]
fn every_alert_is_unit_tested_firing_and_silent() {
    let verdicts = unit_test_verdicts();
    for (file, rule) in rules() {
        let Some(name) = &rule.alert else { continue };
        let (firing, silent) = verdicts.get(name).copied().unwrap_or_default();
        assert!(firing > 0, "{file}: no unit test expects {name} firing");
        if name != "Watchdog" {
            assert!(
                silent >= 2,
                "{file}: {name} needs tests where it is silent before firing and after resolving"
            );
        }
    }
}

#[test]
fn expressions_read_only_catalog_metrics() {
    let known = pack::known_metrics();
    let recorded: BTreeSet<String> = rules().into_iter().filter_map(|(_, r)| r.record).collect();
    for (file, rule) in rules() {
        let expr_text = rule.expr.as_deref().unwrap();
        let expr = tradewatch::promql::parse(expr_text)
            .unwrap_or_else(|e| panic!("{file}: {}: {e}", rule.name()));
        let names = pack::metric_names(&expr);
        if rule.alert.as_deref() != Some("Watchdog") {
            assert!(!names.is_empty(), "{file}: {} reads no metric", rule.name());
        }
        for name in names {
            assert!(
                known.contains(&name) || recorded.contains(&name),
                "{file}: {} reads {name}, which is neither in the catalog nor a self-metric",
                rule.name()
            );
        }
    }
}

#[test]
fn exporter_down_reads_the_tradewatch_job() {
    let alerts = trading_alerts();
    let expr = alerts["TradingExporterDown"].expr.as_deref().unwrap();
    assert!(expr.contains(r#"up{job="tradewatch"}"#), "{expr}");
    assert_eq!(alerts["Watchdog"].expr.as_deref(), Some("vector(1)"));
}

/// The groups of YAML documents as JSON values.
fn groups_of(value: &Value, path: &str) -> Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{path}: groups is not a list"))
        .clone()
}

#[test]
fn the_prometheus_rule_manifest_embeds_the_pack() {
    let mut want = Vec::new();
    for path in rule_files() {
        let doc: Value = yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        want.extend(groups_of(&doc["groups"], &pack::relative(&path)));
    }
    let manifest = "deploy/kubernetes/prometheusrule.yaml";
    let text = std::fs::read_to_string(pack::root().join(manifest)).unwrap();
    let doc: Value = yaml_serde::from_str(&text).unwrap();
    assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(doc["kind"], "PrometheusRule");
    let got = groups_of(&doc["spec"]["groups"], manifest);
    assert!(
        got == want,
        "{manifest} is out of date with rules/*.rules.yml: run deploy/kubernetes/generate.sh"
    );
}

#[test]
fn every_expression_evaluates_over_busy_engines() {
    // Thirty minutes of two engines and every family: no rule may fail at run time (matching
    // errors such as many-to-many, duplicate label sets after aggregation).
    let (store, now) = pack::busy_store();
    let engine = tradewatch::promql::Engine::default();
    for (file, rule) in rules() {
        let expr = tradewatch::promql::parse(rule.expr.as_deref().unwrap()).unwrap();
        engine
            .instant(&store, &expr, now)
            .unwrap_or_else(|e| panic!("{file}: {}: {e}", rule.name()));
    }
}

/// What Prometheus renders for the risk scenario of the two tests below (a 1.5k loss against
/// a 1k limit, 250 AAPL short against a limit of 100).
const LOSS_DESCRIPTION: &str =
    "Engine alpha has lost 1.5k today, at or past its daily loss limit of 1k.";
const POSITION_DESCRIPTION: &str =
    "Engine alpha holds 250 of AAPL, over its position limit of 100.";

/// A real Prometheus (Debian's 2.42) on a free port, run on `deploy/prometheus.yml` with its
/// targets pointed at `target` and the pack under `rules/` beside it.
struct Prometheus {
    process: support::Process,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(pack::root().join("deploy/prometheus.yml"))
            .unwrap()
            .replace("tradewatch:9470", &target.to_string());
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        for file in rule_files() {
            std::fs::copy(
                &file,
                dir.path().join("rules").join(file.file_name().unwrap()),
            )
            .unwrap();
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = support::free_port();
            let mut command = Command::new("prometheus");
            command
                .current_dir(dir.path())
                .arg("--config.file=prometheus.yml")
                .arg("--storage.tsdb.path=data")
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

    /// The firing alerts of `GET /api/v1/alerts`.
    async fn firing(&self) -> Vec<Value> {
        let body: Value = support::client()
            .get(format!("{}/api/v1/alerts", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect()
    }
}

/// The pack in a real Prometheus, scraping a real exporter that an engine tells of a kill
/// switch, a tripped breaker, a loss past its limit and a position past its limit: those alerts
/// fire with the labels and annotations the unit tests expect, and the loss warning does not.
#[tokio::test]
async fn a_real_prometheus_fires_the_pack_on_a_real_exporter() {
    use std::time::{Duration, Instant};

    let test = "a_real_prometheus_fires_the_pack_on_a_real_exporter";
    if !available(test, &[&support::PROMETHEUS]) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let exporter = support::Exporter::start(data.path()).await;
    let posted = exporter
        .post(&[
            serde_json::json!({"type": "limits", "engine": "alpha", "daily_loss_limit": 1000,
                "position_limits": {"AAPL": 100}}),
            serde_json::json!({"type": "pnl", "engine": "alpha", "strategy": "momentum",
                "daily": -1500.0}),
            serde_json::json!({"type": "portfolio", "engine": "alpha",
                "positions": [{"symbol": "AAPL", "quantity": -250, "value": -40000}]}),
            serde_json::json!({"type": "kill_switch", "engine": "alpha", "active": true,
                "reason": "loss limit"}),
            serde_json::json!({"type": "circuit_breaker", "engine": "alpha",
                "breaker": "max_drawdown", "active": true}),
        ])
        .await;
    assert_eq!(posted.status, 200, "{:?}", posted.body);
    let mut prometheus = Prometheus::start(exporter.addr).await;

    let want = [
        "TradingKillSwitchActive",
        "TradingCircuitBreakerTripped",
        "TradingDailyLossLimitBreached",
        "TradingPositionLimitBreached",
        "Watchdog",
    ];
    let started = Instant::now();
    let firing = loop {
        let firing = prometheus.firing().await;
        let names: BTreeSet<&str> = firing
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap())
            .collect();
        if want.iter().all(|w| names.contains(w)) {
            break firing;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "after 60s only {names:?} fire\n--- log ---\n{}",
            prometheus.process.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let alert = |name: &str| {
        firing
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .unwrap()
    };
    let instance = exporter.addr.to_string();
    for name in &want[..4] {
        let labels = &alert(name)["labels"];
        assert_eq!(labels["engine"], "alpha", "{name}");
        assert_eq!(labels["job"], "tradewatch", "{name}");
        assert_eq!(labels["instance"], instance.as_str(), "{name}");
        assert_eq!(labels["severity"], "critical", "{name}");
    }
    assert_eq!(
        alert("TradingDailyLossLimitBreached")["annotations"]["description"],
        LOSS_DESCRIPTION
    );
    assert_eq!(
        alert("TradingPositionLimitBreached")["annotations"]["description"],
        POSITION_DESCRIPTION
    );
    assert_eq!(
        alert("TradingCircuitBreakerTripped")["labels"]["breaker"],
        "max_drawdown"
    );
    assert!(
        firing
            .iter()
            .all(|a| a["labels"]["alertname"] != "TradingDailyLossWarning"),
        "the warning and the breach never fire together"
    );

    let status = prometheus.process.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "prometheus exited with {status}");
}

/// The `query` template function over tradewatch's own store and engine.
struct StoreQuery(std::sync::Arc<tradewatch::store::Store>);

impl tradewatch::template::prometheus::QueryFn for StoreQuery {
    fn query(
        &self,
        expr: &str,
        at: &tradewatch::template::Time,
    ) -> Result<Vec<tradewatch::template::prometheus::Sample>, String> {
        let parsed = tradewatch::promql::parse(expr).map_err(|e| e.to_string())?;
        let t_ms = (at.unix_nanos() / 1_000_000) as i64;
        let result = tradewatch::promql::Engine::default()
            .instant(&*self.0, &parsed, t_ms)
            .map_err(|e| e.to_string())?;
        let tradewatch::promql::Value::Vector(v) = result.value else {
            return Err(format!("{expr}: not a vector"));
        };
        Ok(v.into_iter()
            .map(|s| tradewatch::template::prometheus::Sample {
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: s.f,
            })
            .collect())
    }
}

/// The risk scenario of the real-Prometheus test through tradewatch's own rule evaluation: the
/// same alerts fire at the first evaluation (`for: 0s`), with the same labels and the same
/// rendered descriptions, `query` template function included.
#[test]
fn the_sidecars_evaluation_fires_the_risk_alerts_as_prometheus_does() {
    use std::sync::Arc;
    use std::time::Duration;
    use tradewatch::alerts::AlertState;
    use tradewatch::model::labels::Labels;
    use tradewatch::rules::{GroupState, TemplateEnv, compile};
    use tradewatch::store::Store;

    let path = pack::root().join("rules/trading.rules.yml");
    let loaded = RuleFile::load(&path).unwrap();
    let group = compile(&loaded, "trading.rules.yml", Duration::from_secs(1))
        .into_iter()
        .find(|g| g.name == "trading-risk")
        .unwrap();
    let store = Arc::new(Store::default());
    let target = [
        ("job", "tradewatch"),
        ("instance", "tw:9470"),
        ("engine", "alpha"),
    ];
    let series: &[(&[(&str, &str)], f64)] = &[
        (&[("__name__", "trading_daily_loss_limit")], 1000.0),
        (
            &[
                ("__name__", "trading_pnl_daily"),
                ("strategy", "momentum"),
                ("currency", "USD"),
            ],
            -1500.0,
        ),
        (
            &[
                ("__name__", "trading_position_quantity"),
                ("symbol", "AAPL"),
            ],
            -250.0,
        ),
        (
            &[("__name__", "trading_position_limit"), ("symbol", "AAPL")],
            100.0,
        ),
        (&[("__name__", "trading_kill_switch_active")], 1.0),
        (
            &[
                ("__name__", "trading_circuit_breaker_active"),
                ("breaker", "max_drawdown"),
            ],
            1.0,
        ),
    ];
    let now = 1_700_000_000_000_i64;
    for (labels, value) in series {
        let mut pairs = labels.to_vec();
        pairs.extend(target);
        store
            .append(&Labels::from_pairs(pairs), now - 500, *value)
            .unwrap();
    }
    let engine = tradewatch::promql::Engine::default();
    let mut env = TemplateEnv::default();
    env.expansion.query = Some(Arc::new(StoreQuery(store.clone())));
    env.expansion.timestamp = Some(tradewatch::template::Time::from_chrono(
        chrono::DateTime::from_timestamp_millis(now).unwrap(),
    ));
    let mut state = GroupState::default();
    let evaluation = group.evaluate(&mut state, &engine, &store, now, &env);
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);

    let mut firing = BTreeMap::new();
    for alerts in &state.alerts {
        for active in alerts.values() {
            assert_eq!(
                active.alert.state,
                AlertState::Firing,
                "{:?}",
                active.labels
            );
            let name = active.labels.get("alertname").unwrap().to_string();
            firing.insert(name, active);
        }
    }
    let names: Vec<&str> = firing.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "TradingCircuitBreakerTripped",
            "TradingDailyLossLimitBreached",
            "TradingKillSwitchActive",
            "TradingPositionLimitBreached",
        ]
    );
    assert_eq!(
        firing["TradingDailyLossLimitBreached"].annotations["description"],
        LOSS_DESCRIPTION
    );
    assert_eq!(
        firing["TradingPositionLimitBreached"].annotations["description"],
        POSITION_DESCRIPTION
    );
    for (name, active) in &firing {
        assert_eq!(active.labels.get("engine"), Some("alpha"), "{name}");
        assert_eq!(active.labels.get("severity"), Some("critical"), "{name}");
    }
}
