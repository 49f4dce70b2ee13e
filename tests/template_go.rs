//! Core language cases against Go's own `text/template`: each case of
//! `tests/data/template/go_cases.json` rendered by us must give the bytes (output and error)
//! that Go gave, as recorded in `go_expected.json`; where Go is installed the recording is
//! checked against a fresh run of `tests/go/render.go`. After adding cases, record with
//! `go run tests/go/render.go < tests/data/template/go_cases.json > tests/data/template/go_expected.json`.

mod support;

use serde::Deserialize;
use tradewatch::template::{Error, Funcs, MissingKey, Templates, Value};

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/template/go_cases.json"
);
const EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/template/go_expected.json"
);
const RENDER_GO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go/render.go");

/// Go's toolchain (Debian's `golang-go`).
const GO: support::Needs = support::Needs {
    what: "go",
    probe: &["go", "version"],
    install: "apt-get install golang-go",
};

#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    data: serde_json::Value,
    option: String,
}

#[derive(Deserialize, PartialEq, Debug)]
struct Rendered {
    output: String,
    error: String,
}

fn ours(case: &Case) -> Rendered {
    let missing = match case.option.as_str() {
        "missingkey=zero" => MissingKey::Zero,
        "missingkey=error" => MissingKey::Error,
        _ => MissingKey::Invalid,
    };
    let mut set = Templates::new(Funcs::default()).missing_key(missing);
    if let Err(e) = set.parse("t", &case.template) {
        return Rendered {
            output: String::new(),
            error: Error::from(e).to_string(),
        };
    }
    let data = Value::from_json(&case.data);
    let mut out = String::new();
    match set.execute_into(&mut out, "t", &data, None) {
        Ok(()) => Rendered {
            output: out,
            error: String::new(),
        },
        Err(e) => Rendered {
            output: out,
            error: e.to_string(),
        },
    }
}

fn load() -> (Vec<Case>, Vec<Rendered>) {
    let cases: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(CASES).unwrap()).unwrap();
    let expected: Vec<Rendered> =
        serde_json::from_str(&std::fs::read_to_string(EXPECTED).unwrap()).unwrap();
    assert_eq!(
        cases.len(),
        expected.len(),
        "go_expected.json is stale: rerun tests/go/render.go"
    );
    (cases, expected)
}

#[test]
fn every_case_renders_as_go_recorded() {
    let (cases, expected) = load();
    let mut failures = Vec::new();
    for (case, want) in cases.iter().zip(&expected) {
        let got = ours(case);
        if &got != want {
            failures.push(format!(
                "{}: {:?}\n   go: {:?} / {:?}\n  ours: {:?} / {:?}",
                case.name, case.template, want.output, want.error, got.output, got.error
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn recording_matches_go_itself() {
    if !support::available("recording_matches_go_itself", &[&GO]) {
        return;
    }
    let input = std::fs::read(CASES).unwrap();
    let home = std::env::temp_dir().join("tradewatch-go-home");
    let _ = std::fs::create_dir_all(&home);
    let out = std::process::Command::new("go")
        .args(["run", RENDER_GO])
        .env("HOME", &home)
        .env("GO111MODULE", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&input)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "go run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh: Vec<Rendered> = serde_json::from_slice(&out.stdout).unwrap();
    let (cases, expected) = load();
    for ((case, want), got) in cases.iter().zip(&expected).zip(&fresh) {
        assert_eq!(want, got, "{}: recorded Go output is stale", case.name);
        assert_eq!(&ours(case), got, "{}: ours differs from Go", case.name);
    }
}
