//! `tradewatch rules test` on the fixtures of `tests/data/rules_test/`: verdicts and messages
//! through the library, and agreement with the real `promtool test rules` (Debian's 2.42) on
//! exit codes, standard output, and the failures on standard error.
//!
//! Beyond the fixtures, `random_cases_agree_with_promtool` generates rule and test files (seeded,
//! 40 by default, `RULES_TEST_CASES=N` for more) and requires the same exit code and the same
//! standard error, values compared to 12 digits.
//!
//! Differences kept from promtool 2.42, by fixture (the differential compares only the failure
//! headers there, the message after `err:` or the load error being ours):
//! - `fail_expr`: a label set that is not one (`{strategy=~"m.*"}`) is refused in our words
//!   (promtool reads it with its series grammar: `unexpected <op:=~> in label set`);
//! - `bad_rules`: rule-file errors are `tradewatch rules check`'s (`file:line:col:`);
//! - `malformed`: the YAML error is yaml_serde's, with line and column;
//! - `bad_series`: the input-series error is located (`file:line:col: tests[0].input_series[0]
//!   .values: …`) and names the bad value;
//! - `v3/`: Prometheus 3 features (`fuzzy_compare`, `interval` defaulting to
//!   `evaluation_interval`, left-open windows on boundaries) that 2.42 does not have; not compared.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use tradewatch::rules::unittest::{Report, test_files};

const DIR: &str = "tests/data/rules_test";

/// How the differential compares a fixture's standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Byte for byte.
    Exact,
    /// The failure headers only (`name:`, `alertname:`, `expr:`, `rule:` lines up to `, err:`).
    Headers,
}

/// Each fixture compared with promtool, the exit code both give, and how stderr compares.
const FIXTURES: &[(&str, u8, Compare)] = &[
    ("pass_basic.test.yml", 0, Compare::Exact),
    ("pass_alerts.test.yml", 0, Compare::Exact),
    ("pass_group_order.test.yml", 0, Compare::Exact),
    ("pass_group_order_reverse.test.yml", 0, Compare::Exact),
    ("pass_no_rules.test.yml", 0, Compare::Exact),
    ("pass_templates.test.yml", 0, Compare::Exact),
    ("pass_semantics.test.yml", 0, Compare::Exact),
    ("pass_twice.test.yml", 0, Compare::Exact),
    ("fail_limit.test.yml", 1, Compare::Exact),
    ("fail_templates.test.yml", 1, Compare::Exact),
    ("fail_alerts.test.yml", 1, Compare::Exact),
    ("fail_eval.test.yml", 1, Compare::Exact),
    ("fail_expr.test.yml", 1, Compare::Headers),
    ("missing_alertname.test.yml", 1, Compare::Exact),
    ("repeated_group_order.test.yml", 1, Compare::Exact),
    ("bad_rules.test.yml", 1, Compare::Headers),
    ("malformed.test.yml", 1, Compare::Headers),
    ("bad_series.test.yml", 1, Compare::Headers),
];

/// Runs the library on fixtures by name; the report's text has the fixture directory removed
/// from paths, as when run from inside it.
fn run_lib(names: &[&str]) -> Report {
    let paths: Vec<PathBuf> = names.iter().map(|n| Path::new(DIR).join(n)).collect();
    strip_dir(test_files(&paths, &[]))
}

fn strip_dir(mut report: Report) -> Report {
    for (_, text) in &mut report.chunks {
        *text = text.replace(&format!("{DIR}/"), "");
    }
    report
}

/// Runs `program args… file` in the fixture directory: exit code, stdout, stderr.
fn run_tool(program: &str, args: &[&str], files: &[&str]) -> (i32, String, String) {
    let out = Command::new(program)
        .args(args)
        .args(files)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR))
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Our verdict, in-process, as a run inside the fixture directory prints it.
fn ours(files: &[&str]) -> (i32, String, String) {
    let report = run_lib(files);
    (i32::from(report.code), report.stdout(), report.stderr())
}

fn promtool(files: &[&str]) -> (i32, String, String) {
    run_tool("promtool", &["test", "rules"], files)
}

/// The failure headers of a stderr: what failed (test name, alert or expression, time), without
/// the error text that follows `, err:`.
fn headers(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            ["    name: ", "    alertname: ", "    expr: ", "    rule: "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| l.split(", err: ").next().unwrap_or(l).to_owned())
        .collect()
}

/// The names of the test groups with a failing alert test.
fn failing_names(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("    name: "))
        .map(|n| n.trim_end_matches(',').to_owned())
        .collect()
}

#[test]
fn agrees_with_promtool() {
    if !support::available("agrees_with_promtool", &[&support::PROMTOOL]) {
        return;
    }
    for &(name, code, compare) in FIXTURES {
        let theirs = promtool(&[name]);
        let mine = ours(&[name]);
        assert_eq!(
            theirs.0,
            i32::from(code),
            "{name}: promtool's exit code\n{}",
            theirs.2
        );
        assert_eq!(mine.0, i32::from(code), "{name}: our exit code\n{}", mine.2);
        assert_eq!(mine.1, theirs.1, "{name}: stdout");
        assert_eq!(
            failing_names(&mine.2),
            failing_names(&theirs.2),
            "{name}: failing test names"
        );
        match compare {
            Compare::Exact => assert_eq!(mine.2, theirs.2, "{name}: stderr"),
            Compare::Headers => {
                assert_eq!(headers(&mine.2), headers(&theirs.2), "{name}: failures");
                assert_eq!(
                    mine.2.starts_with("  FAILED:\n"),
                    theirs.2.starts_with("  FAILED:\n"),
                    "{name}: FAILED line"
                );
            }
        }
    }
}

#[test]
fn every_passing_fixture_passes_under_both() {
    let passing: Vec<&str> = FIXTURES
        .iter()
        .filter(|f| f.0.starts_with("pass_"))
        .map(|f| f.0)
        .collect();
    let all_in_dir: Vec<String> = std::fs::read_dir(DIR)
        .expect("fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("pass_") && n.ends_with(".test.yml"))
        .collect();
    assert_eq!(
        all_in_dir.len(),
        passing.len(),
        "every pass_ fixture is listed"
    );
    let mine = ours(&passing);
    assert_eq!(mine.0, 0, "{}", mine.2);
    assert_eq!(mine.1.matches("  SUCCESS\n").count(), passing.len());
    if !support::available(
        "every_passing_fixture_passes_under_both",
        &[&support::PROMTOOL],
    ) {
        return;
    }
    let theirs = promtool(&passing);
    assert_eq!(theirs.0, 0, "{}", theirs.2);
    assert_eq!(mine.1, theirs.1);
}

#[test]
fn command_line_writes_promtools_streams() {
    let (code, stdout, stderr) = run_tool(
        support::BIN,
        &["rules", "test"],
        &["pass_basic.test.yml", "fail_eval.test.yml"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stdout,
        "Unit Testing:  pass_basic.test.yml\n  SUCCESS\n\n\
         Unit Testing:  fail_eval.test.yml\n\n\n\n"
    );
    assert!(
        stderr.starts_with("  FAILED:\n    name: twins,\n"),
        "{stderr}"
    );
    let (code, stdout, _) = run_tool(
        support::BIN,
        &["rules", "test", "--run", "^passes$"],
        &["fail_alerts.test.yml"],
    );
    assert_eq!(
        (code, stdout.as_str()),
        (0, "Unit Testing:  fail_alerts.test.yml\n  SUCCESS\n\n")
    );
}

#[test]
fn several_files_report_each_and_fail_together() {
    let report = run_lib(&["pass_basic.test.yml", "fail_eval.test.yml"]);
    assert_eq!(report.code, 1);
    assert_eq!(
        report.stdout(),
        "Unit Testing:  pass_basic.test.yml\n  SUCCESS\n\n\
         Unit Testing:  fail_eval.test.yml\n\n\n\n"
    );
    assert_eq!(report.stderr().matches("  FAILED:\n").count(), 1);
}

#[test]
fn alert_failures_name_their_test_group() {
    let report = run_lib(&["fail_alerts.test.yml"]);
    assert_eq!(report.code, 1);
    let stderr = report.stderr();
    assert_eq!(
        failing_names(&stderr),
        [
            "wrong engine label",
            "wrong engine label",
            "pending is not firing",
            "annotation templates"
        ]
    );
    // The unnamed group's failure has no name line.
    assert!(
        stderr.contains(
            "]\n    alertname: ExporterDown, time: 4m, \n        exp:[], \n        got:[\n"
        )
    );
    // keep_firing_for has run out at 6m.
    assert!(stderr.contains("    alertname: KillSwitch, time: 6m, \n        exp:[\n"));
    assert!(stderr.contains("summary=\"momo rejects 2/s\""));
}

#[test]
fn expression_failures_in_promtools_format() {
    let report = run_lib(&["fail_expr.test.yml"]);
    let stderr = report.stderr();
    let expected = [
        "    expr: \"strategy:orders_rejected:rate1m{strategy=\\\"momo\\\"}\", time: 5m,\n        \
         exp: {__name__=\"strategy:orders_rejected:rate1m\", strategy=\"momo\"} 2E+00\n        \
         got: {__name__=\"strategy:orders_rejected:rate1m\", strategy=\"momo\"} 1E+00\n",
        "    expr: \"\\\"just a string\\\"\", time: 1m, err: rule result is not a vector or scalar\n",
        "    expr: \"trading_orders_rejected_total[5m]\", time: 1m, err: rule result is not a vector or scalar\n",
        "    expr: \"vector(1)\", time: 1m, err: labels \"{strategy=~\\\"m.*\\\"}\": unexpected =~ in label set, expected \"=\"\n",
        "    expr: \"sum(\", time: 1m, err: 1:5: parse error: unclosed left parenthesis\n",
    ];
    for e in expected {
        assert!(stderr.contains(e), "missing {e:?} in\n{stderr}");
    }
    // NaN never equals NaN, as in promtool.
    assert!(stderr.ends_with(
        "    expr: \"vector(0) / 0\", time: 1m,\n        exp: {} NaN\n        got: {} NaN\n"
    ));
    // An empty expectation that matches passes: `nothing_here` is not reported.
    assert!(!stderr.contains("nothing_here"));
    assert_eq!(report.stdout().matches('\n').count(), 1 + 8 + 1);
}

#[test]
fn evaluation_errors_stop_the_group() {
    let report = run_lib(&["fail_eval.test.yml"]);
    let stderr = report.stderr();
    assert!(stderr.ends_with(
        "    rule: Twins, time: 2m0s, err: vector contains metrics with the same labelset after applying alert labels\n"
    ), "{stderr}");
    // The 3m expectation is never checked.
    assert!(!stderr.contains("time: 3m"));
}

#[test]
fn bad_files_are_reported_with_their_position() {
    let cases: &[(&str, &str)] = &[
        (
            "malformed.test.yml",
            "malformed.test.yml:11:9: tests[0].alert_rule_test[0]: unknown field `exp_alert`, expected one of `eval_time`, `alertname`, `exp_alerts`\n",
        ),
        (
            "bad_rules.test.yml",
            "rules/broken.yml:6:15: group \"broken\", rule 1, \"job:x:sum\": could not parse expression: 1:16: parse error: unclosed left parenthesis\n\
             rules/broken.yml:7:9: group \"broken\", rule 2, \"\": one of 'record' or 'alert' must be set\n",
        ),
        (
            "bad_series.test.yml",
            "bad_series.test.yml:8:17: tests[0].input_series[0].values: invalid value \"three\": want a number, _, stale, or a+bxn\n\
             bad_series.test.yml:15:17: tests[1].input_series[0].series: invalid series \"up{job=~\\\"exporter\\\"}\": unexpected =~ in label set, expected \"=\"\n",
        ),
        (
            "missing_alertname.test.yml",
            "an item under alert_rule_test misses required attribute alertname at eval_time 1m30s (in TestGroup nameless alert)\n",
        ),
        (
            "repeated_group_order.test.yml",
            "group name repeated in evaluation order: derive\n",
        ),
    ];
    for (name, message) in cases {
        let report = run_lib(&[name]);
        assert_eq!(report.code, 1, "{name}");
        assert_eq!(report.stderr(), format!("  FAILED:\n{message}"), "{name}");
    }
    let report = run_lib(&["no_such.test.yml"]);
    assert_eq!(report.code, 1);
    assert!(
        report
            .stderr()
            .starts_with("  FAILED:\nno_such.test.yml: failed to read test file: "),
        "{}",
        report.stderr()
    );
}

#[test]
fn unmatched_rule_pattern_is_a_warning() {
    let report = run_lib(&["pass_no_rules.test.yml"]);
    assert_eq!(report.code, 0);
    assert_eq!(
        report.stderr(),
        "  WARNING: no file match pattern rules/none-*.yml\n"
    );
}

#[test]
fn group_eval_order_decides_what_an_alert_sees() {
    for name in [
        "pass_group_order.test.yml",
        "pass_group_order_reverse.test.yml",
    ] {
        assert_eq!(run_lib(&[name]).code, 0, "{name}");
    }
    // Swapping the order breaks each file's expectation at 0m.
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = Path::new(DIR).join("rules/order.yml");
    std::fs::copy(&rules, dir.path().join("order.yml")).expect("copy rules");
    for (name, order) in [
        ("pass_group_order.test.yml", "[alerts, derive]"),
        ("pass_group_order_reverse.test.yml", "[derive, alerts]"),
    ] {
        let text = std::fs::read_to_string(Path::new(DIR).join(name)).expect("fixture");
        let swapped = text
            .replace("rules/order.yml", "order.yml")
            .lines()
            .map(|l| {
                if l.starts_with("group_eval_order:") {
                    format!("group_eval_order: {order}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let path = dir.path().join(name);
        std::fs::write(&path, swapped).expect("write");
        let report = test_files(&[path], &[]);
        assert_eq!(report.code, 1, "{name} with {order}");
        assert!(
            report
                .stderr()
                .contains("alertname: PositionLimit, time: 0s"),
            "{}",
            report.stderr()
        );
    }
}

#[test]
fn run_filters_test_groups_by_name() {
    let path = Path::new(DIR).join("fail_alerts.test.yml");
    let only_passing = [regex::Regex::new("^passes$").expect("regex")];
    let report = test_files(std::slice::from_ref(&path), &only_passing);
    assert_eq!(report.code, 0, "{}", report.stderr());
    let two = [regex::Regex::new("pending").expect("regex")];
    let report = test_files(&[path], &two);
    assert_eq!(failing_names(&report.stderr()), ["pending is not firing"]);
}

#[test]
fn prometheus_3_features() {
    let report = run_lib(&["v3/pass_v3.test.yml"]);
    assert_eq!(report.code, 0, "{}", report.stderr());
    let report = run_lib(&["v3/fail_v3.test.yml"]);
    assert_eq!(report.code, 1);
    let stderr = report.stderr();
    // Without fuzzy_compare a difference in the last bit fails.
    assert!(
        stderr.contains("exp: {} 3E-01\n        got: {} 3.0000000000000004E-01"),
        "{stderr}"
    );
}

#[test]
fn junit_report_has_a_suite_per_file_and_a_case_per_group() {
    let report = run_lib(&[
        "fail_alerts.test.yml",
        "malformed.test.yml",
        "repeated_group_order.test.yml",
    ]);
    let xml = tradewatch::rules::unittest::junit::junit_xml(&report.suites, "2026-11-23T09:30:00");
    let suites: Vec<&str> = xml.split("<testsuite ").skip(1).collect();
    assert_eq!(suites.len(), 3, "{xml}");
    assert!(
        suites[0].starts_with(
            "name=\"tests/data/rules_test/fail_alerts.test.yml\" tests=\"5\" failures=\"5\" \
         errors=\"0\" skipped=\"0\" timestamp=\"2026-11-23T09:30:00\">\
         <testcase name=\"wrong engine label\"><failure>    name: wrong engine label,&#xA;"
        ),
        "{}",
        suites[0]
    );
    assert!(suites[0].contains("<testcase name=\"passes\"></testcase>"));
    assert!(
        suites[0].contains("<testcase name=\"unnamed#4\"><failure>    alertname: ExporterDown")
    );
    assert!(suites[1].starts_with(
        "name=\"tests/data/rules_test/malformed.test.yml\" tests=\"1\" failures=\"0\" errors=\"1\" \
         skipped=\"0\" timestamp=\"\"><testcase name=\"unknown\"><error>tests/data/rules_test/malformed.test.yml:11:9:"
    ), "{}", suites[1]);
    assert!(suites[2].contains("timestamp=\"2026-11-23T09:30:00\""));
    assert!(suites[2].contains("<error>group name repeated in evaluation order: derive</error>"));
}

#[test]
fn command_line_writes_junit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("junit.xml");
    let (code, _, stderr) = run_tool(
        support::BIN,
        &[
            "rules",
            "test",
            "--junit",
            out.to_str().expect("utf-8 path"),
        ],
        &["pass_basic.test.yml"],
    );
    assert_eq!(code, 0, "{stderr}");
    let xml = std::fs::read_to_string(&out).expect("junit written");
    assert!(xml.starts_with(
        "<testsuites><testsuite name=\"pass_basic.test.yml\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" timestamp=\""
    ), "{xml}");
    assert!(xml.ends_with(
        "\"><testcase name=\"reject rate recorded and alerting\"></testcase></testsuite></testsuites>"
    ), "{xml}");
}

/// A small deterministic generator (SplitMix64), so a failing case can be reproduced by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        support::splitmix64(&mut self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A random rule file and test file. Every time and range is chosen so that no sample falls on
/// a window's boundary (ranges are odd multiples of 15s, steps divide 60s, series have no gaps
/// after their start), where Prometheus 3 (left-open) and promtool 2.42 (closed) would differ.
fn random_case(seed: u64) -> (String, String) {
    let mut rng = Rng(seed);
    let hold = |rng: &mut Rng| ["0s", "30s", "1m", "2m"][rng.below(4) as usize];
    let threshold = rng.below(6) + 2;
    let rules = format!(
        "groups:
  - name: derive
    rules:
      - record: inst:a:rate
        expr: sum by (inst) (rate(a_total[{w1}]))
      - record: inst:g:avg
        expr: avg_over_time(g[{w2}])
        labels:
          source: avg
  - name: alerts
    rules:
      - alert: RateHigh
        expr: inst:a:rate > {rate_t}
        for: {for1}
        labels:
          severity: page
        annotations:
          summary: '{{{{ $labels.inst }}}} at {{{{ $value }}}}'
      - alert: GaugeHigh
        expr: g > {threshold}
        for: {for2}
        keep_firing_for: {keep}
        labels:
          band: '{{{{ if gt $value 7.0 }}}}wide{{{{ else }}}}narrow{{{{ end }}}}'
        annotations:
          summary: '{{{{ $labels.inst }}}}: {{{{ $value | humanize }}}}'
      - alert: GaugeMissing
        expr: absent(g{{inst=\"z\"}})
        for: {for3}
        annotations:
          where: '{{{{ $externalLabels.region }}}} {{{{ $labels.inst }}}}'
",
        w1 = rng.pick(&["45s", "75s", "105s", "165s"]),
        w2 = rng.pick(&["45s", "75s", "135s"]),
        rate_t = rng.below(4),
        for1 = hold(&mut rng),
        for2 = hold(&mut rng),
        keep = rng.pick(&["0s", "1m", "90s"]),
        for3 = hold(&mut rng),
    );
    let groups: String = (0..2)
        .map(|k| random_group(&mut rng, &format!("case {seed}.{k}")))
        .collect();
    let test = format!(
        "rule_files: [rules.yml]
evaluation_interval: {eval}
group_eval_order: [{order}]
tests:
{groups}",
        eval = rng.pick(&["30s", "1m"]),
        order = rng.pick(&["derive, alerts", "alerts, derive"]),
    );
    (rules, test)
}

/// One random test group named `name`, with its own interval and external labels.
fn random_group(rng: &mut Rng, name: &str) -> String {
    let interval = rng.pick(&["10s", "20s", "30s", "1m"]);
    let region = rng.pick(&["eu", "us", "ap"]);
    let steps = 40;
    let mut series = String::new();
    for inst in ["x", "y"] {
        let rate = rng.below(5);
        let reset = rng.below(steps);
        let _ = std::fmt::Write::write_fmt(
            &mut series,
            format_args!(
                "      - series: 'a_total{{inst=\"{inst}\"}}'\n        values: '0+{rate}x{reset} 0+{rate}x{}'\n",
                steps - reset
            ),
        );
    }
    for inst in ["x", "y", "z"] {
        let start = rng.below(4);
        let mut values: Vec<String> = vec!["_".to_owned(); start as usize];
        let mut stale = false;
        for _ in start..steps * 2 {
            if stale {
                values.push("_".to_owned());
            } else if rng.below(40) == 0 {
                values.push("stale".to_owned());
                stale = true;
            } else {
                values.push(rng.below(10).to_string());
            }
        }
        let _ = std::fmt::Write::write_fmt(
            &mut series,
            format_args!(
                "      - series: 'g{{inst=\"{inst}\"}}'\n        values: '{}'\n",
                values.join(" ")
            ),
        );
    }
    let mut alerts = String::new();
    for _ in 0..4 {
        let at = rng.below(20) * 30;
        let name = rng.pick(&["RateHigh", "GaugeHigh", "GaugeMissing"]);
        let _ = std::fmt::Write::write_fmt(
            &mut alerts,
            format_args!("      - eval_time: {at}s\n        alertname: {name}\n"),
        );
        if rng.below(2) == 0 {
            alerts.push_str("        exp_alerts:\n          - exp_labels: {inst: x}\n");
        }
    }
    let mut exprs = String::new();
    for _ in 0..4 {
        let at = rng.below(20) * 30;
        let expr = rng.pick(&[
            "inst:a:rate",
            "inst:g:avg",
            "ALERTS",
            "ALERTS_FOR_STATE",
            "g",
            "sum(g)",
            "count(g > 3)",
        ]);
        let _ = std::fmt::Write::write_fmt(
            &mut exprs,
            format_args!(
                "      - expr: '{expr}'\n        eval_time: {at}s\n        exp_samples:\n          - labels: '{{inst=\"x\"}}'\n            value: {}\n",
                rng.below(3)
            ),
        );
    }
    format!(
        "  - name: {name}
    interval: {interval}
    external_labels: {{region: {region}}}
    input_series:
{series}    alert_rule_test:
{alerts}    promql_expr_test:
{exprs}"
    )
}

/// Printed values rounded to 12 significant digits: Prometheus 3 computes some functions
/// (`avg_over_time`: sum then divide) differently from 2.42 (a running mean), which can change
/// the last digit.
fn rounded(text: &str) -> String {
    let number = regex::Regex::new(r"-?[0-9]+(\.[0-9]+)?E[+-][0-9]+").expect("regex");
    number
        .replace_all(text, |c: &regex::Captures<'_>| {
            let v: f64 = c[0].parse().expect("a float");
            format!("{v:.11e}")
        })
        .into_owned()
}

#[test]
fn random_cases_agree_with_promtool() {
    if !support::available("random_cases_agree_with_promtool", &[&support::PROMTOOL]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // RULES_TEST_CASES=N runs more.
    let cases: u64 = std::env::var("RULES_TEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    for seed in 0..cases {
        let (rules, test) = random_case(seed);
        std::fs::write(dir.path().join("rules.yml"), &rules).expect("write rules");
        let test_path = dir.path().join("case.test.yml");
        std::fs::write(&test_path, &test).expect("write test");
        let theirs = Command::new("promtool")
            .args(["test", "rules", "case.test.yml"])
            .current_dir(dir.path())
            .output()
            .expect("promtool");
        let mine = test_files(&[test_path], &[]);
        let mine_stderr = mine
            .stderr()
            .replace(&format!("{}/", dir.path().display()), "");
        let theirs_stderr = String::from_utf8_lossy(&theirs.stderr);
        assert_eq!(
            (i32::from(mine.code), rounded(&mine_stderr)),
            (theirs.status.code().unwrap_or(-1), rounded(&theirs_stderr)),
            "seed {seed}\n--- rules.yml\n{rules}\n--- case.test.yml\n{test}"
        );
    }
}
