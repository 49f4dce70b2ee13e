//! Runs Prometheus's own PromQL test scripts (`../shared/conformance/promql/*.test`) against our
//! store and engine, and prints passed / failed / skipped `eval` commands per file.
//!
//! Skipped, and only these: commands that touch native histograms (histogram sample values,
//! `load_with_nhcb` histograms, or selectors matching such series) and commands that use
//! experimental functions or aggregations (listed in [`EXPERIMENTAL`]).
//!
//! `PROMQL_CONFORMANCE_VERBOSE=1` prints every failure; `PROMQL_CONFORMANCE_WRITE=1` rewrites
//! `docs/conformance.md` with the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use promql_parser::parser::Expr;
use tradewatch::model::labels::{Labels, METRIC_NAME};
use tradewatch::promql::{Engine, PromqlError, QueryResult, Value, parse};
use tradewatch::rules::notation::{SeriesLine, SeriesValue, parse_series_line};
use tradewatch::store::{Matcher, Store, StoreOptions, stale_nan};

/// Experimental functions and aggregations (Prometheus's `--enable-feature=promql-experimental-functions`).
const EXPERIMENTAL: &[&str] = &[
    "double_exponential_smoothing",
    "holt_winters",
    "info",
    "limitk",
    "limit_ratio",
    "mad_over_time",
    "sort_by_label",
    "sort_by_label_desc",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "histogram_quantiles",
    "min_of",
    "max_of",
    "step",
    "start",
    "end",
    "range",
];

/// Functions that only read native histograms.
const NATIVE_HISTOGRAM_FUNCTIONS: &[&str] = &[
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
];

/// The lowest number of passing `eval` commands accepted: raise it as conformance improves.
const PASS_FLOOR: usize = 837;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Debug, Default)]
struct Expectations {
    fail: bool,
    fail_msg: Option<(bool, String)>,
    warn: Vec<Option<(bool, String)>>,
    info: Vec<Option<(bool, String)>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return Some((n * 1000.0).round() as i64);
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Some(if neg { -total } else { total })
}

fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPS * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

/// Collects selector matchers in an expression.
fn selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) {
    use Expr::*;
    match e {
        Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Unary(u) => selectors(&u.expr, out),
        Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Paren(p) => selectors(&p.expr, out),
        Subquery(s) => selectors(&s.expr, out),
        Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        MatrixSelector(m) => vs_matchers(&m.vs, out),
        VectorSelector(vs) => vs_matchers(vs, out),
        _ => {}
    }
}

fn vs_matchers(vs: &promql_parser::parser::VectorSelector, out: &mut Vec<Vec<Matcher>>) {
    if let Ok(groups) = tradewatch::promql::selector_matchers(vs) {
        out.extend(groups);
    }
}

fn calls(e: &Expr, out: &mut Vec<String>) {
    use Expr::*;
    match e {
        Aggregate(a) => {
            out.push(a.op.to_string());
            calls(&a.expr, out);
            if let Some(p) = &a.param {
                calls(p, out);
            }
        }
        Unary(u) => calls(&u.expr, out),
        Binary(b) => {
            calls(&b.lhs, out);
            calls(&b.rhs, out);
        }
        Paren(p) => calls(&p.expr, out),
        Subquery(s) => calls(&s.expr, out),
        Call(c) => {
            out.push(c.func.name.to_string());
            c.args.args.iter().for_each(|a| calls(a, out));
        }
        _ => {}
    }
}

/// What a script has loaded since its last `clear`.
#[derive(Default)]
struct Data {
    series: BTreeMap<Labels, BTreeMap<i64, f64>>,
    native: Vec<Labels>,
    store: Option<Store>,
}

impl Data {
    fn store(&mut self) -> &Store {
        if self.store.is_none() {
            let store = Store::new(StoreOptions {
                retention_ms: i64::MAX / 4,
            });
            for (labels, samples) in &self.series {
                for (&t, &f) in samples {
                    store.append(labels, t, f).expect("ordered samples");
                }
            }
            self.store = Some(store);
        }
        self.store.as_ref().expect("just built")
    }
}

struct Runner {
    data: Data,
    engine: Engine,
    verbose: bool,
    failures: Vec<String>,
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

impl Runner {
    fn load(&mut self, interval: i64, nhcb: bool, lines: &[&str]) -> Result<(), String> {
        self.data.store = None;
        for line in lines {
            let s =
                parse_series_line(line).map_err(|e| format!("bad series line {line:?}: {e}"))?;
            let labels = s
                .labels
                .ok_or_else(|| format!("series without labels {line:?}"))?;
            if s.native {
                self.data.native.push(labels);
                continue;
            }
            if nhcb && let Some(name) = labels.metric_name() {
                for suffix in ["_bucket", "_sum", "_count"] {
                    if let Some(base) = name.strip_suffix(suffix) {
                        let mut b = labels.builder();
                        b.set(METRIC_NAME, base).del("le");
                        self.data.native.push(b.build());
                    }
                }
            }
            let samples = self.data.series.entry(labels).or_default();
            for (i, p) in s.values.iter().enumerate() {
                let t = i as i64 * interval;
                match p {
                    SeriesValue::Value(v) => {
                        samples.insert(t, *v);
                    }
                    SeriesValue::Stale => {
                        samples.insert(t, stale_nan());
                    }
                    SeriesValue::Omitted => {}
                }
            }
        }
        Ok(())
    }

    fn touches_native(&self, expr: &Expr) -> Option<String> {
        let mut names = Vec::new();
        calls(expr, &mut names);
        if let Some(f) = names
            .iter()
            .find(|n| NATIVE_HISTOGRAM_FUNCTIONS.contains(&n.as_str()))
        {
            return Some(format!("native histogram function {f}"));
        }
        let mut sels = Vec::new();
        selectors(expr, &mut sels);
        for ms in &sels {
            for l in &self.data.native {
                if ms.iter().all(|m| m.matches_labels(l)) {
                    return Some(format!("native histogram series {l}"));
                }
            }
        }
        None
    }

    fn eval(&mut self, header: &str, body: &[&str]) -> Outcome {
        let (variant, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        let rest = rest.trim_start();
        let mut exp = Expectations::default();
        match variant {
            "eval" => {}
            "eval_fail" => exp.fail = true,
            "eval_warn" => exp.warn.push(None),
            "eval_info" => exp.info.push(None),
            "eval_ordered" => exp.ordered = true,
            other => return Outcome::Fail(format!("unknown command {other}")),
        }
        // Timing.
        let (range, query) = if let Some(r) = rest.strip_prefix("instant") {
            let r = r.trim_start();
            let r = r.strip_prefix("at").unwrap_or(r).trim_start();
            let (t, q) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            let Some(t) = parse_duration_ms(t) else {
                return Outcome::Fail(format!("bad time {t}"));
            };
            ((t, t, 0), q.trim())
        } else if let Some(r) = rest.strip_prefix("range") {
            let words: Vec<&str> = r.split_whitespace().collect();
            if words.len() < 7 || words[0] != "from" || words[2] != "to" || words[4] != "step" {
                return Outcome::Fail(format!("bad range header {header}"));
            }
            let (Some(a), Some(b), Some(s)) = (
                parse_duration_ms(words[1]),
                parse_duration_ms(words[3]),
                parse_duration_ms(words[5]),
            ) else {
                return Outcome::Fail(format!("bad range header {header}"));
            };
            let mut q = r.trim_start();
            for _ in 0..6 {
                q = q
                    .split_once(char::is_whitespace)
                    .map(|x| x.1)
                    .unwrap_or("")
                    .trim_start();
            }
            ((a, b, s), q.trim())
        } else {
            return Outcome::Fail(format!("bad eval header {header}"));
        };
        // Expectations and expected series.
        let mut expected = Vec::new();
        for line in body {
            if let Some(e) = line.strip_prefix("expect ") {
                let e = e.trim();
                let (kind, arg) = e.split_once(char::is_whitespace).unwrap_or((e, ""));
                let arg = arg.trim();
                let unquote = |s: &str| {
                    let s = s.trim();
                    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        Some(inner) if !inner.contains('"') => inner.to_string(),
                        _ => s.to_string(),
                    }
                };
                let matcher = || {
                    if let Some(m) = arg.strip_prefix("msg:") {
                        Some((false, unquote(m)))
                    } else {
                        arg.strip_prefix("regex:").map(|r| (true, unquote(r)))
                    }
                };
                match kind {
                    "fail" => {
                        exp.fail = true;
                        exp.fail_msg = matcher();
                    }
                    "warn" => exp.warn.push(matcher()),
                    "info" => exp.info.push(matcher()),
                    "no_warn" => exp.no_warn = true,
                    "no_info" => exp.no_info = true,
                    "ordered" => exp.ordered = true,
                    "string" => {
                        let s = arg.trim();
                        exp.string = Some(s[1..s.len().saturating_sub(1)].to_string());
                    }
                    "range" => {
                        let w: Vec<&str> = arg.split_whitespace().collect();
                        let (Some(a), Some(b), Some(s)) = (
                            w.get(2).and_then(|x| parse_duration_ms(x)),
                            w.get(4).and_then(|x| parse_duration_ms(x)),
                            w.get(6).and_then(|x| parse_duration_ms(x)),
                        ) else {
                            return Outcome::Fail(format!("bad expect range vector {line}"));
                        };
                        exp.range_vector = Some((a, b, s));
                    }
                    other => return Outcome::Fail(format!("unknown expectation {other}")),
                }
                continue;
            }
            match parse_series_line(line) {
                Ok(s) if s.native => return Outcome::Skip("native histogram result".into()),
                Ok(s) => expected.push(s),
                Err(e) => return Outcome::Fail(format!("bad expected line {line:?}: {e}")),
            }
        }
        // Skips.
        let parsed = parse(query);
        if let Ok(expr) = &parsed {
            let mut names = Vec::new();
            calls(expr, &mut names);
            if let Some(f) = names.iter().find(|n| EXPERIMENTAL.contains(&n.as_str())) {
                return Outcome::Skip(format!("experimental function {f}"));
            }
            if let Some(why) = self.touches_native(expr) {
                return Outcome::Skip(why);
            }
        } else if let Some(f) = EXPERIMENTAL
            .iter()
            .find(|f| query.contains(&format!("{f}(")))
        {
            return Outcome::Skip(format!("experimental function {f}"));
        }
        let result: Result<QueryResult, PromqlError> =
            parsed.map_err(PromqlError::from).and_then(|expr| {
                let store = self.data.store();
                if range.2 == 0 {
                    self.engine.instant(store, &expr, range.0)
                } else {
                    self.engine.range(store, &expr, range.0, range.1, range.2)
                }
            });
        let result = match result {
            Err(e) => {
                if !exp.fail {
                    return Outcome::Fail(format!("unexpected error: {e}"));
                }
                let msg = match &e {
                    PromqlError::Parse(p) => p.message.clone(),
                    other => other.to_string(),
                };
                return match &exp.fail_msg {
                    None => Outcome::Pass,
                    Some((false, m)) if &msg == m => Outcome::Pass,
                    Some((true, r)) if regex::Regex::new(r).is_ok_and(|r| r.is_match(&msg)) => {
                        Outcome::Pass
                    }
                    Some((_, m)) => Outcome::Fail(format!("error {msg:?}, expected {m:?}")),
                };
            }
            Ok(r) => r,
        };
        if exp.fail {
            return Outcome::Fail(format!("expected an error, got {:?}", result.value));
        }
        if let Some(why) = check_annotations("warn", &exp.warn, exp.no_warn, &result.warnings) {
            return Outcome::Fail(why);
        }
        if let Some(why) = check_annotations("info", &exp.info, exp.no_info, &result.infos) {
            return Outcome::Fail(why);
        }
        match compare(&exp, range, &expected, &result.value) {
            Ok(()) => Outcome::Pass,
            Err(why) => Outcome::Fail(why),
        }
    }
}

fn check_annotations(
    kind: &str,
    expected: &[Option<(bool, String)>],
    none: bool,
    actual: &[String],
) -> Option<String> {
    if none && !actual.is_empty() {
        return Some(format!("unexpected {kind} annotations {actual:?}"));
    }
    if expected.is_empty() {
        return None;
    }
    let matches = |e: &Option<(bool, String)>, a: &String| match e {
        None => true,
        Some((false, m)) => a == m,
        Some((true, r)) => regex::Regex::new(r).is_ok_and(|r| r.is_match(a)),
    };
    for e in expected {
        if !actual.iter().any(|a| matches(e, a)) {
            return Some(format!("expected {kind} {e:?}, got {actual:?}"));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| matches(e, a)) {
            return Some(format!("unexpected {kind} {a:?}"));
        }
    }
    None
}

fn compare(
    exp: &Expectations,
    (start, end, step): (i64, i64, i64),
    expected: &[SeriesLine],
    value: &Value,
) -> Result<(), String> {
    if let Some(s) = &exp.string {
        return match value {
            Value::String(v) if v == s => Ok(()),
            other => Err(format!("expected string {s:?}, got {other:?}")),
        };
    }
    let fmt_points = |p: &[SeriesValue]| format!("{p:?}");
    match value {
        Value::Scalar { f, .. } => {
            let [line] = expected else {
                return Err(format!("got scalar {f}, expected {} lines", expected.len()));
            };
            match (&line.labels, line.values.as_slice()) {
                (None, [SeriesValue::Value(v)]) if almost_equal(*v, *f) => Ok(()),
                _ => Err(format!(
                    "got scalar {f}, expected {}",
                    fmt_points(&line.values)
                )),
            }
        }
        Value::String(s) => Err(format!("got string {s:?}")),
        Value::Vector(v) => {
            if v.len() != expected.len() {
                return Err(format!(
                    "expected {} series, got {}: {:?}",
                    expected.len(),
                    v.len(),
                    v.iter()
                        .map(|s| format!("{} {}", s.labels, s.f))
                        .collect::<Vec<_>>()
                ));
            }
            for (i, e) in expected.iter().enumerate() {
                let labels = e.labels.clone().unwrap_or_default();
                let Some(pos) = v.iter().position(|s| s.labels == labels) else {
                    return Err(format!(
                        "missing {labels}; got {:?}",
                        v.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
                    ));
                };
                if exp.ordered && pos != i {
                    return Err(format!("{labels} at position {pos}, expected {i}"));
                }
                match e.values.as_slice() {
                    [SeriesValue::Value(x)] if almost_equal(*x, v[pos].f) => {}
                    p => {
                        return Err(format!(
                            "{labels}: expected {}, got {}",
                            fmt_points(p),
                            v[pos].f
                        ));
                    }
                }
            }
            Ok(())
        }
        Value::Matrix(m) => {
            let (start, step) = match exp.range_vector {
                Some((a, _, s)) => (a, s),
                None => (start, step),
            };
            let _ = end;
            if m.len() != expected.len() {
                return Err(format!(
                    "expected {} series, got {}: {:?}",
                    expected.len(),
                    m.len(),
                    m.iter()
                        .map(|s| format!("{} {:?}", s.labels, s.points))
                        .collect::<Vec<_>>()
                ));
            }
            for e in expected {
                let labels = e.labels.clone().unwrap_or_default();
                let Some(series) = m.iter().find(|s| s.labels == labels) else {
                    return Err(format!("missing {labels}"));
                };
                let mut want = Vec::new();
                for (i, p) in e.values.iter().enumerate() {
                    if let SeriesValue::Value(x) = p {
                        want.push((start + i as i64 * step, *x));
                    }
                }
                let ok = want.len() == series.points.len()
                    && want
                        .iter()
                        .zip(&series.points)
                        .all(|((t, x), p)| *t == p.t && almost_equal(*x, p.f));
                if !ok {
                    return Err(format!(
                        "{labels}: expected {want:?}, got {:?}",
                        series.points.iter().map(|p| (p.t, p.f)).collect::<Vec<_>>()
                    ));
                }
            }
            Ok(())
        }
    }
}

fn run_file(path: &Path, verbose: bool) -> (Counts, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("readable test file");
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect();
    let mut runner = Runner {
        data: Data::default(),
        engine: Engine::default(),
        verbose,
        failures: Vec::new(),
    };
    let mut counts = Counts::default();
    let mut i = 0;
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        if line.is_empty() {
            continue;
        }
        let cmd = line.split_whitespace().next().unwrap_or_default();
        let mut block = Vec::new();
        while cmd != "clear" && i < lines.len() && !lines[i].is_empty() {
            block.push(lines[i].as_str());
            i += 1;
        }
        if cmd == "clear" {
            runner.data = Data::default();
        } else if cmd.starts_with("load") {
            let interval = line
                .split_whitespace()
                .nth(1)
                .and_then(parse_duration_ms)
                .expect("load interval");
            if let Err(e) = runner.load(interval, cmd == "load_with_nhcb", &block) {
                runner.failures.push(format!("{file}:{i}: load: {e}"));
            }
        } else if cmd.starts_with("eval") {
            match runner.eval(line, &block) {
                Outcome::Pass => counts.passed += 1,
                Outcome::Skip(why) => {
                    counts.skipped += 1;
                    if verbose {
                        println!("SKIP {file}: {line}: {why}");
                    }
                }
                Outcome::Fail(why) => {
                    counts.failed += 1;
                    runner.failures.push(format!("{file}: {line}\n    {why}"));
                }
            }
        } else {
            runner
                .failures
                .push(format!("{file}: unknown command {line:?}"));
        }
    }
    if runner.verbose {
        for f in &runner.failures {
            println!("FAIL {f}");
        }
    }
    (counts, runner.failures)
}

#[test]
fn prometheus_test_scripts() {
    let dir: PathBuf = match std::env::var_os("PROMQL_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/promql"),
    };
    if !dir.is_dir() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PromQL conformance scripts not found at {}", dir.display());
        }
        println!(
            "skipped: PromQL conformance scripts not found at {}",
            dir.display()
        );
        return;
    }
    let verbose = std::env::var_os("PROMQL_CONFORMANCE_VERBOSE").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("readable folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let mut table = String::from(
        "| file | passed | failed | skipped | in scope | passing |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut total = Counts::default();
    for f in &files {
        let (c, failures) = run_file(f, verbose);
        let bad_loads: Vec<&String> = failures.iter().filter(|f| f.contains(": load: ")).collect();
        assert!(bad_loads.is_empty(), "load commands failed: {bad_loads:?}");
        let in_scope = c.passed + c.failed;
        writeln!(
            table,
            "| {} | {} | {} | {} | {} | {:.1}% |",
            f.file_name().unwrap().to_string_lossy(),
            c.passed,
            c.failed,
            c.skipped,
            in_scope,
            100.0 * c.passed as f64 / in_scope.max(1) as f64
        )
        .unwrap();
        total.passed += c.passed;
        total.failed += c.failed;
        total.skipped += c.skipped;
    }
    let in_scope = total.passed + total.failed;
    writeln!(
        table,
        "| **all** | {} | {} | {} | {} | {:.1}% |",
        total.passed,
        total.failed,
        total.skipped,
        in_scope,
        100.0 * total.passed as f64 / in_scope.max(1) as f64
    )
    .unwrap();
    println!("{table}");
    if std::env::var_os("PROMQL_CONFORMANCE_WRITE").is_some() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/conformance.md");
        let old = std::fs::read_to_string(&doc).unwrap_or_default();
        let marker = "<!-- table -->";
        let new = match old.split_once(marker) {
            Some((head, tail)) => {
                let after = tail.split_once(marker).map(|(_, t)| t).unwrap_or("");
                format!("{head}{marker}\n{table}{marker}{after}")
            }
            None => format!("{marker}\n{table}{marker}\n"),
        };
        std::fs::write(doc, new).expect("docs/conformance.md written");
    }
    assert!(
        total.passed * 100 >= in_scope * 95,
        "fewer than 95% of the in-scope eval commands pass"
    );
    assert!(
        total.passed >= PASS_FLOOR,
        "{} eval commands passed, fewer than the floor of {PASS_FLOOR}",
        total.passed
    );
}
