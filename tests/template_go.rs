//! Core language cases against Go's own `text/template`: each case of
//! `tests/data/template/go_cases.json` rendered by us must give the bytes (output and error)
//! that Go gave, as recorded in `go_expected.json`; where Go is installed the recording is
//! checked against a fresh run of `tests/go/render.go`. After adding cases, record with
//! `go run tests/go/render.go < tests/data/template/go_cases.json > tests/data/template/go_expected.json`.
//! A case's option `html` renders with html/template (ours: an HTML set); the templates may
//! call `goTime` and `goDuration` (Go's time values from text) and Alertmanager's `date`, `tz`,
//! `trimSpace` and `stringSlice`, which are one-line wrappers of Go's standard library there.

mod support;

use serde::Deserialize;
use tradewatch::template::{Duration, Error, Func, Funcs, MissingKey, Templates, Time, Ty, Value};

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

/// Go's `time.ParseDuration` for the forms the cases use: a sign, then numbers with optional
/// fractions, each followed by a unit (`ns`, `us`, `ms`, `s`, `m`, `h`).
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration \"{text}\"");
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let (digits, tail) = rest.split_at(number);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        total += whole.parse::<i128>().map_err(|_| bad())? * scale;
        let mut place = scale;
        for d in frac.bytes() {
            place /= 10;
            total += i128::from(d - b'0') * place;
        }
        rest = tail;
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map(Duration).map_err(|_| bad())
}

/// The functions the Go side registers: `goTime`, `goDuration`, and Alertmanager's `date`,
/// `tz`, `trimSpace` and `stringSlice` (ours, taken from our Alertmanager function map).
fn case_funcs() -> Funcs {
    let mut funcs = Funcs::default();
    funcs.insert(
        "goTime",
        Func::new(&[Ty::String], |_, a| {
            let text = a[0].as_str().unwrap_or("");
            Time::parse_rfc3339(text)
                .map(Value::Time)
                .ok_or_else(|| format!("cannot parse {text:?} as RFC 3339"))
        }),
    );
    funcs.insert(
        "goDuration",
        Func::new(&[Ty::String], |_, a| {
            parse_go_duration(a[0].as_str().unwrap_or("")).map(Value::Duration)
        }),
    );
    let am = tradewatch::template::alertmanager::funcs();
    for name in ["date", "tz", "trimSpace", "stringSlice"] {
        funcs.insert(name, am.get(name).unwrap().clone());
    }
    funcs
}

fn ours(case: &Case) -> Rendered {
    let missing = match case.option.as_str() {
        "missingkey=zero" => MissingKey::Zero,
        "missingkey=error" => MissingKey::Error,
        _ => MissingKey::Invalid,
    };
    let mut set = Templates::new(case_funcs()).missing_key(missing);
    if case.option == "html" {
        set = set.html();
    }
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
