//! `tradewatch rules check` on the fixtures of `tests/data/rules/`: the exact message of each
//! failure kind, and agreement with the real `promtool check rules` (Debian's 2.42) on exit codes
//! and, after removing the file positions, on message text (a PromQL error's own `line:col` included).
//!
//! Differences kept from promtool, by fixture:
//! - positions are always `file:line:col:` (promtool writes `file: line:col:`, sometimes two
//!   positions or `0:0`, and none at all for label, annotation and template errors);
//! - `unknown_field.yml`: the YAML error is yaml_serde's (`unknown field …, expected one of …`),
//!   promtool's is yaml.v3's (`field severity not found in type rulefmt.RuleNode`);
//! - `valid_3x.yml` uses keys newer than 2.42 and is not compared.

use std::path::{Path, PathBuf};
use std::process::Command;

use tradewatch::rules::{Lint, RuleFile, check_files};

const DIR: &str = "tests/data/rules";

/// Each fixture, the exit code both tools give, and our exact message (the file name stripped of
/// its directory); `None` where the file is valid.
const FIXTURES: &[(&str, u8, Option<&str>)] = &[
    ("valid.yml", 0, None),
    (
        "bad_promql.yml",
        1,
        Some(
            r#"bad_promql.yml:5:15: group "g", rule 1, "job:x:sum": could not parse expression: 1:16: parse error: unclosed left parenthesis"#,
        ),
    ),
    (
        "duplicate_group.yml",
        1,
        Some(r#"duplicate_group.yml:6:5: groupname: "g" is repeated in the same file"#),
    ),
    (
        "empty_group_name.yml",
        1,
        Some("empty_group_name.yml:2:5: Groupname must not be empty"),
    ),
    (
        "bad_record_name.yml",
        1,
        Some(
            r#"bad_record_name.yml:4:17: group "g", rule 1, "job-x sum": invalid recording rule name: job-x sum"#,
        ),
    ),
    (
        "bad_label_name.yml",
        1,
        Some(r#"bad_label_name.yml:7:11: group "g", rule 1, "A": invalid label name: bad-name"#),
    ),
    (
        "bad_annotation_name.yml",
        1,
        Some(
            r#"bad_annotation_name.yml:7:11: group "g", rule 1, "A": invalid annotation name: 1summary"#,
        ),
    ),
    (
        "for_on_record.yml",
        1,
        Some(
            r#"for_on_record.yml:4:17: group "g", rule 1, "job:x:sum": invalid field 'for' in recording rule"#,
        ),
    ),
    (
        "keep_firing_for_on_record.yml",
        1,
        Some(
            r#"keep_firing_for_on_record.yml:4:17: group "g", rule 1, "job:x:sum": invalid field 'keep_firing_for' in recording rule"#,
        ),
    ),
    (
        "annotations_on_record.yml",
        1,
        Some(
            r#"annotations_on_record.yml:4:17: group "g", rule 1, "job:x:sum": invalid field 'annotations' in recording rule"#,
        ),
    ),
    (
        "record_and_alert.yml",
        1,
        Some(
            r#"record_and_alert.yml:4:17: group "g", rule 1, "A": only one of 'record' and 'alert' must be set"#,
        ),
    ),
    (
        "neither.yml",
        1,
        Some(r#"neither.yml:4:9: group "g", rule 1, "": one of 'record' or 'alert' must be set"#),
    ),
    (
        "missing_expr.yml",
        1,
        Some(r#"missing_expr.yml:4:9: group "g", rule 1, "A": field 'expr' must be set in rule"#),
    ),
    (
        "bad_template.yml",
        1,
        Some(
            r#"bad_template.yml:7:20: group "g", rule 1, "A": annotation "summary": template: __alert_A:1: unclosed action"#,
        ),
    ),
    (
        "undefined_function.yml",
        1,
        Some(
            r#"undefined_function.yml:7:20: group "g", rule 1, "A": annotation "summary": template: __alert_A:1: function "nosuchfunc" not defined"#,
        ),
    ),
    (
        "unknown_field.yml",
        1,
        Some(
            "unknown_field.yml:6:9: groups[0].rules[0]: unknown field `severity`, expected one of `record`, `alert`, `expr`, `for`, `keep_firing_for`, `labels`, `annotations`",
        ),
    ),
    (
        "several_errors.yml",
        1,
        Some(concat!(
            "several_errors.yml:10:11: group \"g\", rule 1, \"A\": invalid annotation name: a-b\n",
            "several_errors.yml:8:17: group \"g\", rule 1, \"A\": label \"team\": template: __alert_A:1: unclosed action\n",
            "several_errors.yml:10:16: group \"g\", rule 1, \"A\": annotation \"a-b\": template: __alert_A:1: function \"nope\" not defined",
        )),
    ),
    // Lint only: promtool exits 0 without --lint-fatal.
    ("duplicate_rules.yml", 0, None),
];

/// Fixtures whose message text differs from promtool's beyond positions (see the file doc).
const TEXT_DIFFERS: &[&str] = &["unknown_field.yml"];

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

#[test]
fn every_failure_kind_has_its_exact_message() {
    for (name, _, message) in FIXTURES {
        let result = RuleFile::load(&path(name));
        match (result, message) {
            (Ok(_), None) => {}
            (Ok(_), Some(want)) => panic!("{name} loaded, want {want}"),
            (Err(e), None) => panic!("{name} failed: {e}"),
            (Err(e), Some(want)) => {
                assert_eq!(
                    e.to_string().replace(&format!("{DIR}/"), ""),
                    *want,
                    "{name}"
                )
            }
        }
    }
}

#[test]
fn valid_file_counts_its_rules_and_success_output_is_promtools_shape() {
    let (out, code) = check_files(&[path("valid.yml")], Lint::default());
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Checking tests/data/rules/valid.yml\n  SUCCESS: 3 rules found\n\n"
    );
}

#[test]
fn prometheus_3_keys_load() {
    let loaded = RuleFile::load(&path("valid_3x.yml")).unwrap();
    let group = &loaded.file.groups[0];
    assert_eq!(group.query_offset.unwrap().to_string(), "30s");
    assert_eq!(group.labels["team"], "trading");
}

#[test]
fn duplicate_rules_are_a_lint_finding() {
    let lint = Lint::parse("duplicate-rules", false).unwrap();
    let (out, code) = check_files(&[path("duplicate_rules.yml")], lint);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Checking tests/data/rules/duplicate_rules.yml\n  FAILED:\nlint error 1 duplicate rule(s) found.\nMetric: job:x:sum\nLabel(s):\nMight cause inconsistency while recording expressions\n\n"
    );
    let fatal = Lint::parse("all", true).unwrap();
    assert_eq!(check_files(&[path("duplicate_rules.yml")], fatal).1, 3);
    let none = Lint::parse("none", true).unwrap();
    let (out, code) = check_files(&[path("duplicate_rules.yml")], none);
    assert_eq!((out.contains("SUCCESS: 2 rules found"), code), (true, 0));
    assert!(Lint::parse("bogus", false).is_err());
}

#[test]
fn errors_win_over_lint_and_every_file_is_checked() {
    let fatal = Lint::parse("all", true).unwrap();
    let files = [
        path("duplicate_rules.yml"),
        path("bad_promql.yml"),
        path("valid.yml"),
    ];
    let (out, code) = check_files(&files, fatal);
    assert_eq!(code, 1);
    assert_eq!(out.matches("Checking ").count(), 3);
    let (out, code) = check_files(&[path("no_such_file.yml")], Lint::default());
    assert_eq!(code, 1);
    assert!(out.contains("failed to read rule file"), "{out}");
}

/// Strips the file name and every leading `line:col:` from a message line.
fn without_positions(line: &str, name: &str) -> String {
    let mut rest = line.strip_prefix(name).unwrap_or(line);
    rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
    let position = regex::Regex::new(r"^\d+:\d+: ").unwrap();
    while let Some(m) = position.find(rest) {
        rest = &rest[m.end()..];
    }
    rest.to_owned()
}

/// The message lines after `  FAILED:`, positions removed, sorted (promtool reports a rule's
/// labels and annotations in Go's random map order).
fn messages(output: &str, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = output
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("Checking ") && !l.starts_with("  "))
        .map(|l| without_positions(l, name))
        .collect();
    lines.sort();
    lines
}

fn promtool_available() -> bool {
    match Command::new("promtool").arg("--version").output() {
        Ok(out) => out.status.success(),
        Err(_) => false,
    }
}

#[test]
fn agrees_with_promtool() {
    if !promtool_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is required under CI=true (apt-get install prometheus)"
        );
        println!("skipped: promtool not found (apt-get install prometheus)");
        return;
    }
    for (name, code, _) in FIXTURES {
        let theirs = Command::new("promtool")
            .args(["check", "rules", name])
            .current_dir(DIR)
            .output()
            .unwrap();
        let ours = Command::new(env!("CARGO_BIN_EXE_tradewatch"))
            .args(["rules", "check", name])
            .current_dir(DIR)
            .output()
            .unwrap();
        let their_code = theirs.status.code().unwrap();
        let our_code = ours.status.code().unwrap();
        assert_eq!(
            (our_code, their_code),
            (i32::from(*code), i32::from(*code)),
            "{name}"
        );
        let our_text = String::from_utf8(ours.stdout).unwrap();
        assert!(
            our_text.starts_with(&format!("Checking {name}\n")),
            "{our_text}"
        );
        if TEXT_DIFFERS.contains(name) {
            continue;
        }
        let their_text = format!(
            "{}{}",
            String::from_utf8(theirs.stdout).unwrap(),
            String::from_utf8(theirs.stderr).unwrap()
        );
        assert_eq!(
            messages(&our_text, name),
            messages(&their_text, name),
            "{name}"
        );
    }
    // Lint made fatal: both exit 3.
    for (tool, args) in [
        ("promtool", vec!["check", "rules", "--lint-fatal"]),
        (
            env!("CARGO_BIN_EXE_tradewatch"),
            vec!["rules", "check", "--lint-fatal"],
        ),
    ] {
        let out = Command::new(tool)
            .args(args)
            .arg("duplicate_rules.yml")
            .current_dir(DIR)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{tool}");
    }
}
