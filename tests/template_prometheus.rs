//! Rule templates against Prometheus: `tests/data/template/rules.yml` has alerts whose
//! annotations and labels exercise every Prometheus template function and the language's
//! constructs; `rules_test.yml` holds, as `exp_annotations`/`exp_labels`, what Prometheus 2.42
//! renders for them. Our expansion must give exactly those strings, and `promtool test rules`
//! must pass on the same file (where promtool is installed).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as Json;
use tradewatch::template::Time;
use tradewatch::template::prometheus::{AlertData, Expansion, QueryFn, RuleTemplate, Sample};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/template");

fn yaml(name: &str) -> Json {
    let text = std::fs::read_to_string(format!("{DIR}/{name}")).unwrap();
    yaml_serde::from_str(&text).unwrap()
}

/// A series of the test's `input_series`: its labels and its first value.
fn parse_series(series: &str, values: &str) -> Sample {
    let (name, rest) = series.split_once('{').unwrap();
    let mut labels = BTreeMap::from([("__name__".to_string(), name.to_string())]);
    for pair in rest.trim_end_matches('}').split(',') {
        let (k, v) = pair.split_once('=').unwrap();
        labels.insert(k.to_string(), v.trim_matches('"').to_string());
    }
    let value = values.split('x').next().unwrap().parse().unwrap();
    Sample { labels, value }
}

/// Answers `query` for a bare metric name with the input series of that name, in input order,
/// and for `sort_desc(name)` with them sorted by value, highest first. The fixture's annotations
/// use `sort_desc` wherever order shows, because promtool's order for a bare selector varies.
struct Fixture(Vec<Sample>);

impl QueryFn for Fixture {
    fn query(&self, expr: &str, _at: &Time) -> Result<Vec<Sample>, String> {
        let (name, sorted) = match expr
            .strip_prefix("sort_desc(")
            .and_then(|e| e.strip_suffix(')'))
        {
            Some(inner) => (inner, true),
            None => (expr, false),
        };
        let mut out: Vec<Sample> = self
            .0
            .iter()
            .filter(|s| s.labels["__name__"] == name)
            .cloned()
            .collect();
        if sorted {
            out.sort_by(|a, b| b.value.total_cmp(&a.value));
        }
        Ok(out)
    }
}

fn strings(v: &Json) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn annotations_and_labels_render_as_prometheus() {
    let rules = yaml("rules.yml");
    let tests = yaml("rules_test.yml");
    let test = &tests["tests"][0];
    let series: Vec<Sample> = test["input_series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| parse_series(s["series"].as_str().unwrap(), s["values"].as_str().unwrap()))
        .collect();
    let external_labels = strings(&test["external_labels"]);
    let external_url = test["external_url"].as_str().unwrap();
    let env = Expansion {
        query: Some(Arc::new(Fixture(series.clone()))),
        timestamp: Some(Time::utc(120, 0)),
        external_url: external_url.to_string(),
    };
    let mut checked = 0;
    for case in test["alert_rule_test"].as_array().unwrap() {
        let alertname = case["alertname"].as_str().unwrap();
        let rule = rules["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["alert"] == alertname)
            .unwrap();
        let metric = rule["expr"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let sample = series
            .iter()
            .find(|s| s.labels["__name__"] == metric)
            .unwrap();
        let data = AlertData::new(&sample.labels, &external_labels, external_url, sample.value);
        let expected = &case["exp_alerts"][0];
        for (name, text) in strings(&rule["annotations"]) {
            let got = RuleTemplate::new(alertname, &text).expand_or_error(&data, &env);
            let want = expected["exp_annotations"][&name].as_str().unwrap();
            assert_eq!(got, want, "{alertname} annotation {name}: {text}");
            checked += 1;
        }
        let mut labels: BTreeMap<String, String> = sample.labels.clone();
        labels.remove("__name__");
        for (name, text) in strings(&rule["labels"]) {
            labels.insert(
                name,
                RuleTemplate::new(alertname, &text).expand_or_error(&data, &env),
            );
        }
        assert_eq!(
            labels,
            strings(&expected["exp_labels"]),
            "{alertname} labels"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} templates checked");
}

#[test]
fn parse_errors_read_as_promtool_reports_them() {
    let t = RuleTemplate::new("A", "{{ nofunc 1 }}");
    assert_eq!(
        t.parse_error().unwrap(),
        "template: __alert_A:1: function \"nofunc\" not defined"
    );
    let data = AlertData::new(&BTreeMap::new(), &BTreeMap::new(), "", 1.0);
    assert_eq!(
        t.expand_or_error(&data, &Expansion::default()),
        "<error expanding template: error parsing template __alert_A: template: __alert_A:1: \
         function \"nofunc\" not defined>"
    );
}

#[test]
fn promtool_agrees_with_the_recorded_renderings() {
    if !support::available(
        "promtool_agrees_with_the_recorded_renderings",
        &[&support::PROMTOOL],
    ) {
        return;
    }
    let out = std::process::Command::new("promtool")
        .args(["test", "rules", "rules_test.yml"])
        .current_dir(DIR)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tmpl` exists only in Prometheus's console templates (`ExpandHTML`); in rule templates it is
/// an undefined function, whatever template name it is given. Checked against `promtool check
/// rules` where promtool is installed.
#[test]
fn tmpl_is_undefined_in_rule_templates_as_in_prometheus() {
    let want = "template: __alert_A:1: function \"tmpl\" not defined";
    for text in [
        r#"{{ tmpl "nope" . }}"#,
        r#"{{ define "x" }}y{{ end }}{{ tmpl "x" . }}"#,
    ] {
        assert_eq!(
            RuleTemplate::new("A", text).parse_error().as_deref(),
            Some(want),
            "{text}"
        );
        if !support::available(
            "tmpl_is_undefined_in_rule_templates_as_in_prometheus",
            &[&support::PROMTOOL],
        ) {
            continue;
        }
        let dir = std::env::temp_dir().join(format!("tradewatch-tmpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rules.yml");
        let rule = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        \
             annotations:\n          summary: '{text}'\n"
        );
        std::fs::write(&file, rule).unwrap();
        let out = std::process::Command::new("promtool")
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "promtool accepted {text}: {report}");
        assert!(
            report.contains(&format!("annotation \"summary\": {want}")),
            "promtool said: {report}"
        );
    }
}
